//! The one place wirehook runs `unsafe` code: turning a verified
//! precompiled artifact back into a component. Everything else in the
//! crate is free of `unsafe` (the crate denies it; only this module
//! allows it).

#![allow(unsafe_code)]

use std::os::fd::AsRawFd as _;
use std::os::unix::fs::FileExt as _;

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::Verified;

/// The component whose machine code is the artifact `verified`: mapped
/// from the file itself, or, where the file cannot be opened again by
/// its descriptor (no `/proc`), from a copy read from it.
pub(super) fn deserialize(engine: &Engine, verified: Verified) -> wasmtime::Result<Component> {
    let by_descriptor = format!("/proc/self/fd/{}", verified.file.as_raw_fd());
    if std::path::Path::new(&by_descriptor).exists() {
        // SAFETY: `Component::deserialize_file` trusts the file to hold
        // what `Engine::precompile_component` wrote, since it is mapped
        // and run as machine code, and to stay unchanged while mapped.
        // The path names the very file `super::verified` checked through
        // this descriptor (not the artifact's name, which a rename may
        // have pointed elsewhere since), which (1) is owned by this user
        // or root and writable by no one else, so no other local user can
        // have planted or altered it; (2) ends with wirehook's trailer,
        // which `super::compile` writes only after the output of
        // `Engine::precompile_component`; (3) whose trailer binds it to the
        // SHA-256 of the very `.wasm` being loaded and to the digest of
        // this engine's `precompile_compatibility_hash` (wasmtime version,
        // settings, CPU features); (4) whose code matches the SHA-256 in
        // that trailer, so it is whole and unaltered; and (5) whose ELF
        // header is wasmtime's, for a component. wasmtime checks
        // compatibility with the engine again as it loads, and ignores
        // the trailer after the ELF object. Artifacts are replaced by
        // renaming a new file over them (`super::compile`, `plugins/build`),
        // which leaves a mapped file as it was.
        return unsafe { Component::deserialize_file(engine, &by_descriptor) };
    }
    let len = usize::try_from(verified.code_len)?;
    let mut code = vec![0; len];
    verified.file.read_exact_at(&mut code, 0)?;
    if hex::encode(Sha256::digest(&code)) != verified.code_digest {
        wasmtime::bail!("the artifact changed while it was read");
    }
    // SAFETY: as above, for a copy of the same checked file's code, whose
    // digest is checked again on the copy itself.
    unsafe { Component::deserialize(engine, &code) }
}
