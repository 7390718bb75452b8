//! The one place wirehook runs `unsafe` code: turning a verified
//! precompiled artifact back into a component. Everything else in the
//! crate is free of `unsafe` (the crate denies it; only this module
//! allows it).

#![allow(unsafe_code)]

use wasmtime::Engine;
use wasmtime::component::Component;

/// An artifact's code that passed every check of [`super::verified`]:
/// only that module builds one.
pub(super) struct Verified(pub(super) Vec<u8>);

/// The component whose machine code is `code`.
pub(super) fn deserialize(engine: &Engine, code: Verified) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize` trusts its bytes to be what
    // `Engine::precompile_component` wrote, since they are mapped and run
    // as machine code. `super::verified` made `code` only from a file that
    // (1) is owned by this user or root and writable by no one else, so no
    // other local user can have planted or altered it; (2) carries
    // wirehook's header, which `super::compile` writes only around the
    // output of `Engine::precompile_component`; (3) whose header binds it
    // to the SHA-256 of the very `.wasm` being loaded and to the digest of
    // this engine's `precompile_compatibility_hash` (wasmtime version,
    // settings, CPU features); (4) whose code matches the SHA-256 in that
    // header, so it is whole and unaltered; and (5) that wasmtime detects
    // as a precompiled component. wasmtime checks compatibility with the
    // engine again as it loads.
    unsafe { Component::deserialize(engine, &code.0) }
}
