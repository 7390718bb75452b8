//! Creating the store's directories and files private to the daemon's
//! user (directories 0700, files 0600), whatever the umask: they hold
//! event bodies, KV values and replies. A file is private from the moment
//! it exists, before anything is written to it. SQLite's unix VFS gives a
//! database's `-wal` and `-shm` files the mode of the database file, so
//! creating the database file private covers them too. Directories and
//! files that exist already keep the mode their owner gave them.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) 0700 unless it exists.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    // The umask may have taken bits from the mode asked for.
    std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
}

/// Creates `path` empty and 0600 unless it exists.
pub fn create_file(path: &Path) -> std::io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(file) => file.set_permissions(Permissions::from_mode(FILE_MODE)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
