//! Ahead-of-time compiled plugins: `wirehook compile` writes
//! `NAME.cwasm` beside each `NAME.wasm`, and a start or reload loads it
//! instead of compiling, so that a service start never runs Cranelift.
//!
//! An artifact is machine code that wasmtime maps executable, so it is
//! loaded only when every check below holds; otherwise it is ignored with
//! one log line saying why, and the component is compiled as usual:
//!
//! - the file is owned by this user or root, and no one else may write it;
//! - it ends with wirehook's trailer, which binds it to the SHA-256 of
//!   the `.wasm` beside it (a changed component makes it stale), to a
//!   digest of the engine's compatibility hash (wasmtime version, compiler
//!   settings, CPU features: another build or another machine makes it
//!   stale) and to the SHA-256 of the code before it (a truncated or
//!   altered file is refused);
//! - wasmtime recognises the code as a precompiled component.
//!
//! The code comes first, as wasmtime wrote it, so that wasmtime maps the
//! file itself rather than a copy: its pages are the page cache's, shared
//! and paged in as they are used, and each instance's linear memory
//! starts as a copy-on-write mapping of the data in it. (An interpreter
//! component is tens of megabytes of code and a memory image of ten or
//! more; a copy of it would be resident for as long as the plugin is
//! loaded.) The trailer is text of a fixed length, one `key value` line
//! each:
//!
//! ```text
//!
//! wirehook-precompiled 2
//! component <sha256 of NAME.wasm, hex>
//! engine <sha256 of the engine's compatibility hash, hex>
//! code <sha256 of the bytes before the trailer, hex>
//! ```

use std::hash::{Hash as _, Hasher};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

mod trusted;

/// The first line of every artifact's trailer.
const MAGIC: &str = "wirehook-precompiled 2";

/// The length of every trailer: a blank line, the magic, three lines of
/// a key and 64 hex digits.
const TRAILER_LEN: usize =
    1 + MAGIC.len() + 1 + ("component".len() + 66) + ("engine".len() + 66) + ("code".len() + 66);

/// The file name extension of an artifact.
pub const EXTENSION: &str = "cwasm";

/// Where the artifact of the component at `wasm` lives.
pub fn artifact_path(wasm: &Path) -> PathBuf {
    wasm.with_extension(EXTENSION)
}

/// Why an artifact was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum Stale {
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
    #[error("it is owned by another user (uid {0})")]
    Owner(u32),
    #[error("others may write it (mode {0:o})")]
    Writable(u32),
    #[error("it has no wirehook trailer (written by another wirehook version?)")]
    NoTrailer,
    #[error("the component changed since it was compiled")]
    ComponentChanged,
    #[error(
        "it was compiled by another engine (wasmtime version, settings or CPU features differ)"
    )]
    EngineChanged,
    #[error("its code does not match its trailer (truncated or altered)")]
    Corrupt,
    #[error("its code is not a precompiled component")]
    NotAComponent,
    #[error("wasmtime refused it: {0}")]
    Refused(String),
}

/// What [`compile`] did with one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compiled {
    /// Written: `bytes` long.
    Written { bytes: u64 },
    /// Its artifact was already fresh for this engine.
    UpToDate,
}

/// Why [`compile`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid component: {reason}")]
    Invalid { path: String, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The SHA-256 of the engine's compatibility hash: equal for two engines
/// exactly when an artifact of one loads in the other.
fn engine_digest(engine: &Engine) -> [u8; 32] {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.finalize().into()
}

/// Feeds what `Hash` writes into SHA-256, which, unlike std's hashers,
/// is the same in every build.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"))
    }
}

fn trailer(component: &[u8], engine: &[u8; 32], code: &[u8]) -> String {
    let trailer = format!(
        "\n{MAGIC}\ncomponent {}\nengine {}\ncode {}\n",
        hex::encode(Sha256::digest(component)),
        hex::encode(engine),
        hex::encode(Sha256::digest(code)),
    );
    debug_assert_eq!(trailer.len(), TRAILER_LEN);
    trailer
}

/// The trailer's fields.
struct Parsed<'a> {
    component: &'a str,
    engine: &'a str,
    code_digest: &'a str,
}

fn parse(trailer: &[u8]) -> Option<Parsed<'_>> {
    let text = std::str::from_utf8(trailer).ok()?;
    let mut lines = text.strip_prefix('\n')?.lines();
    if lines.next()? != MAGIC {
        return None;
    }
    let mut field = |key: &str| lines.next()?.strip_prefix(key)?.strip_prefix(' ');
    Some(Parsed {
        component: field("component")?,
        engine: field("engine")?,
        code_digest: field("code")?,
    })
}

/// An artifact that passed every check of [`verified`]: the open file
/// whose bytes were checked, the length of its code and the code's
/// SHA-256 (hex). Only that function builds one.
pub(super) struct Verified {
    pub(super) file: std::fs::File,
    pub(super) code_len: u64,
    pub(super) code_digest: String,
}

/// Checks that the artifact at `path` may be loaded for `component` (the
/// `.wasm`'s bytes) in `engine`.
fn verified(engine: &Engine, path: &Path, component: &[u8]) -> Result<Verified, Stale> {
    // Owner, mode and bytes all from the one open file, which is what
    // wasmtime then maps.
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(Stale::Owner(meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Stale::Writable(meta.mode() & 0o7777));
    }
    let code_len = meta
        .len()
        .checked_sub(TRAILER_LEN as u64)
        .ok_or(Stale::NoTrailer)?;
    let mut trailer = [0; TRAILER_LEN];
    file.read_exact_at(&mut trailer, code_len)?;
    let parsed = parse(&trailer).ok_or(Stale::NoTrailer)?;
    if parsed.component != hex::encode(Sha256::digest(component)) {
        return Err(Stale::ComponentChanged);
    }
    if parsed.engine != hex::encode(engine_digest(engine)) {
        return Err(Stale::EngineChanged);
    }
    // Streamed: the code is not kept in memory (wasmtime maps it).
    let mut hasher = Sha256::new();
    let hashed = std::io::copy(&mut (&file).take(code_len), &mut hasher)?;
    let code_digest = hex::encode(hasher.finalize());
    if hashed != code_len || parsed.code_digest != code_digest {
        return Err(Stale::Corrupt);
    }
    let mut head = vec![0; usize::try_from(code_len.min(1 << 16)).unwrap_or(0)];
    file.read_exact_at(&mut head, 0)?;
    if !is_component(&head) {
        return Err(Stale::NotAComponent);
    }
    Ok(Verified {
        file,
        code_len,
        code_digest,
    })
}

/// Whether `head`, the start of an artifact's code, is an ELF file of
/// wasmtime's for a component: its header's ABI and flags say so.
fn is_component(head: &[u8]) -> bool {
    /// `e_ident[EI_OSABI]` of wasmtime's objects, and the `e_flags` bit
    /// of a component (wasmtime-environ's `obj` module).
    const ELFOSABI_WASMTIME: u8 = 200;
    const EF_WASMTIME_COMPONENT: u32 = 1 << 1;
    head.len() >= 64
        && head[..4] == *b"\x7fELF"
        && head[7] == ELFOSABI_WASMTIME
        && u32::from_le_bytes([head[48], head[49], head[50], head[51]]) & EF_WASMTIME_COMPONENT != 0
}

/// The component from the artifact beside `wasm`, when there is one and
/// it passes every check; `None` (with a log line when an artifact was
/// there) means compile as usual.
pub(super) fn load(engine: &Engine, wasm: &Path, component: &[u8]) -> Option<Component> {
    let path = artifact_path(wasm);
    let result = verified(engine, &path, component).and_then(|artifact| {
        trusted::deserialize(engine, artifact).map_err(|e| Stale::Refused(format!("{e:#}")))
    });
    match result {
        Ok(component) => Some(component),
        Err(Stale::Read(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(reason) => {
            tracing::warn!(
                artifact = %path.display(),
                "precompiled artifact ignored, compiling instead: {reason}"
            );
            None
        }
    }
}

/// Writes the artifact of the component at `wasm` for `engine`, unless a
/// fresh one is already there. Written to a temporary file and renamed,
/// so that a daemon never reads half an artifact.
pub fn compile(engine: &Engine, wasm: &Path) -> Result<Compiled, CompileError> {
    let component = std::fs::read(wasm).map_err(|source| CompileError::Read {
        path: wasm.display().to_string(),
        source,
    })?;
    let path = artifact_path(wasm);
    if verified(engine, &path, &component).is_ok() {
        return Ok(Compiled::UpToDate);
    }
    let code = engine
        .precompile_component(&component)
        .map_err(|e| CompileError::Invalid {
            path: wasm.display().to_string(),
            reason: format!("{e:#}"),
        })?;
    let trailer = trailer(&component, &engine_digest(engine), &code);
    let write_error = |source| CompileError::Write {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension(format!("{EXTENSION}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(write_error)?;
    let written = file
        .write_all(&code)
        .and_then(|()| file.write_all(trailer.as_bytes()))
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_error(e));
    }
    Ok(Compiled::Written {
        bytes: (trailer.len() + code.len()) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: the header of the component binary format
    /// (no imports, no exports).
    const EMPTY: &[u8] = b"\0asm\x0d\x00\x01\x00";

    /// The same component with a custom section `x` (empty) after it:
    /// other bytes, the same behaviour.
    const EMPTY_WITH_SECTION: &[u8] = b"\0asm\x0d\x00\x01\x00\x00\x02\x01x";

    fn engine() -> Engine {
        Engine::new(&super::super::engine_config()).unwrap()
    }

    #[test]
    fn a_fresh_artifact_loads_and_a_changed_component_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("p.wasm");
        std::fs::write(&wasm, EMPTY).unwrap();
        let engine = engine();
        assert!(matches!(
            compile(&engine, &wasm).unwrap(),
            Compiled::Written { .. }
        ));
        assert_eq!(compile(&engine, &wasm).unwrap(), Compiled::UpToDate);
        assert!(load(&engine, &wasm, EMPTY).is_some());

        assert!(matches!(
            verified(&engine, &artifact_path(&wasm), EMPTY_WITH_SECTION),
            Err(Stale::ComponentChanged)
        ));
        assert!(load(&engine, &wasm, EMPTY_WITH_SECTION).is_none());
    }

    #[test]
    fn an_artifact_of_an_engine_with_other_settings_is_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("p.wasm");
        std::fs::write(&wasm, EMPTY).unwrap();
        let mut other = super::super::engine_config();
        other.epoch_interruption(false);
        let other = Engine::new(&other).unwrap();
        compile(&other, &wasm).unwrap();
        let engine = engine();
        assert!(matches!(
            verified(&engine, &artifact_path(&wasm), EMPTY),
            Err(Stale::EngineChanged)
        ));
        assert!(load(&engine, &wasm, EMPTY).is_none());
        // Compiling again for this engine replaces it.
        assert!(matches!(
            compile(&engine, &wasm).unwrap(),
            Compiled::Written { .. }
        ));
        assert!(load(&engine, &wasm, EMPTY).is_some());
    }

    #[test]
    fn an_altered_or_writable_artifact_is_not_loaded() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("p.wasm");
        std::fs::write(&wasm, EMPTY).unwrap();
        let engine = engine();
        compile(&engine, &wasm).unwrap();
        let path = artifact_path(&wasm);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(
            verified(&engine, &path, EMPTY),
            Err(Stale::Writable(0o666))
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        // The code's last byte, before the trailer.
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - TRAILER_LEN - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            verified(&engine, &path, EMPTY),
            Err(Stale::Corrupt)
        ));

        std::fs::write(&path, b"\x7fELF not ours").unwrap();
        assert!(matches!(
            verified(&engine, &path, EMPTY),
            Err(Stale::NoTrailer)
        ));
    }
}
