//! Interfaces a plugin may import but is never granted: linked as
//! functions that fail, so the plugin loads and only a call is refused.
//!
//! A JavaScript component's runtime (StarlingMonkey) imports
//! `wasi:http/types` for its `fetch` and `Headers` even when the plugin
//! never uses them. wirehook does not offer `wasi:http` (its own `fetch`
//! carries the grants), so without these stubs such a plugin would not
//! load at all.

use wasmtime::Engine;
use wasmtime::component::types::{ComponentInstance, ComponentItem};
use wasmtime::component::{Component, Linker, ResourceType};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, IoError};

/// Imported interfaces (by prefix of their name) linked as refusals.
const UNGRANTED: &[&str] = &["wasi:http/"];

/// Whether `component` imports an interface that [`link_refusals`] covers.
pub fn imports_any(component: &Component, engine: &Engine) -> bool {
    component
        .component_type()
        .imports(engine)
        .any(|(name, _)| is_ungranted(name))
}

/// Defines every function of `component`'s ungranted imports in `linker`
/// as one that fails with an error naming the interface, and every
/// resource as an opaque host resource (or, where the interface only
/// re-exports a `wasi:io` resource, as the one wasmtime-wasi links).
pub fn link_refusals<T: 'static>(
    linker: &mut Linker<T>,
    component: &Component,
    engine: &Engine,
) -> wasmtime::Result<()> {
    let ty = component.component_type();
    let io_resources = wasi_io_resources(&ty, engine);
    for (name, import) in ty.imports(engine) {
        if let (true, ComponentItem::ComponentInstance(instance)) = (is_ungranted(name), &import.ty)
        {
            define_instance(linker, name, instance, &io_resources, engine)?;
        }
    }
    Ok(())
}

fn is_ungranted(name: &str) -> bool {
    UNGRANTED.iter().any(|prefix| name.starts_with(prefix))
}

/// A resource of an ungranted interface; no value of it ever exists.
struct Refused;

/// The `wasi:io` resources the component imports, with the host type
/// wasmtime-wasi links each as, so an ungranted interface that re-exports
/// one (as `wasi:http/types` does `input-stream`) gets the same type.
fn wasi_io_resources(
    ty: &wasmtime::component::types::Component,
    engine: &Engine,
) -> Vec<(ResourceType, ResourceType)> {
    let mut found = Vec::new();
    for (name, import) in ty.imports(engine) {
        let ComponentItem::ComponentInstance(instance) = &import.ty else {
            continue;
        };
        let interface = name
            .split_once('@')
            .map_or(name, |(interface, _)| interface);
        for (item, export) in instance.exports(engine) {
            let ComponentItem::Resource(resource) = export.ty else {
                continue;
            };
            let host = match (interface, item) {
                ("wasi:io/poll", "pollable") => ResourceType::host::<DynPollable>(),
                ("wasi:io/streams", "input-stream") => ResourceType::host::<DynInputStream>(),
                ("wasi:io/streams", "output-stream") => ResourceType::host::<DynOutputStream>(),
                ("wasi:io/error", "error") => ResourceType::host::<IoError>(),
                _ => continue,
            };
            found.push((resource, host));
        }
    }
    found
}

fn define_instance<T: 'static>(
    linker: &mut Linker<T>,
    name: &str,
    instance: &ComponentInstance,
    io_resources: &[(ResourceType, ResourceType)],
    engine: &Engine,
) -> wasmtime::Result<()> {
    let mut root = linker.root();
    let mut scope = root.instance(name)?;
    for (item, export) in instance.exports(engine) {
        match export.ty {
            ComponentItem::ComponentFunc(_) => {
                let refused = format!("{name}#{item} is not available to plugins");
                scope.func_new(item, move |_, _, _, _| {
                    Err(wasmtime::Error::msg(refused.clone()))
                })?;
            }
            ComponentItem::Resource(resource) => {
                let host = io_resources
                    .iter()
                    .find(|(imported, _)| *imported == resource)
                    .map_or_else(ResourceType::host::<Refused>, |(_, host)| *host);
                scope.resource(item, host, |_, _| Ok(()))?;
            }
            _ => {}
        }
    }
    Ok(())
}
