//! Rust bindings of every `wirehook:plugin` world this host serves, one
//! `bindgen!` per version (as Spin keeps its worlds), and what a loaded
//! plugin is whichever version it targets.
//!
//! wirehook's own event model converts to the newest version; an older
//! plugin is handed the same event converted down, each payload it cannot
//! represent as `other` (its `raw-json` is unchanged).

use wasmtime::Store;
use wasmtime::component::{Component, Linker};

use super::host::State;
use super::version::WitVersion;

/// Converts both ways between two records with the same fields, moving
/// each one; the fields named after the braces are records or enums
/// themselves, converted with their own `From`.
macro_rules! same_fields {
    ($a:ident::$at:ident <=> $b:ident::$bt:ident { $($field:ident),* } $(, $nested:ident)*) => {
        same_fields!(@one $a::$at => $b::$bt { $($field),* } $(, $nested)*);
        same_fields!(@one $b::$bt => $a::$at { $($field),* } $(, $nested)*);
    };
    (@one $from:path => $to:path { $($field:ident),* } $(, $nested:ident)*) => {
        impl From<$from> for $to {
            fn from(value: $from) -> Self {
                Self {
                    $($field: value.$field,)*
                    $($nested: value.$nested.into(),)*
                }
            }
        }
    };
}

/// Converts both ways between two enums with the same variants: those
/// before the `;` wrap a value, converted with its own `From`; those after
/// it carry nothing.
macro_rules! same_variants {
    ($a:ident::$at:ident <=> $b:ident::$bt:ident { $($wrap:ident),* ; $($unit:ident),* }) => {
        same_variants!(@one $a::$at => $b::$bt { $($wrap),* ; $($unit),* });
        same_variants!(@one $b::$bt => $a::$at { $($wrap),* ; $($unit),* });
    };
    (@one $fm:ident::$ft:ident => $tm:ident::$tt:ident { $($wrap:ident),* ; $($unit:ident),* }) => {
        impl From<$fm::$ft> for $tm::$tt {
            fn from(value: $fm::$ft) -> Self {
                match value {
                    $($fm::$ft::$wrap(inner) => Self::$wrap(inner.into()),)*
                    $($fm::$ft::$unit => Self::$unit,)*
                }
            }
        }
    };
}

pub mod v0_1;
pub mod v0_2;

pub use v0_2::{host, types};

/// Adds the host's side of every supported version to `linker`.
pub fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    use wasmtime::component::HasSelf;
    v0_1::Plugin::add_to_linker::<State, HasSelf<State>>(linker, |state| state)?;
    v0_2::Plugin::add_to_linker::<State, HasSelf<State>>(linker, |state| state)?;
    Ok(())
}

/// A plugin pre-instantiated for the version it targets.
pub enum PluginPre {
    V0_1(v0_1::PluginPre<State>),
    V0_2(v0_2::PluginPre<State>),
}

impl PluginPre {
    /// Checks that `component` implements `version`'s world and links it.
    pub fn new(
        version: WitVersion,
        linker: &Linker<State>,
        component: &Component,
    ) -> wasmtime::Result<Self> {
        let pre = linker.instantiate_pre(component)?;
        Ok(match version {
            WitVersion::V0_1 => Self::V0_1(v0_1::PluginPre::new(pre)?),
            WitVersion::V0_2 => Self::V0_2(v0_2::PluginPre::new(pre)?),
        })
    }

    pub fn version(&self) -> WitVersion {
        match self {
            Self::V0_1(_) => WitVersion::V0_1,
            Self::V0_2(_) => WitVersion::V0_2,
        }
    }

    pub async fn instantiate(&self, store: &mut Store<State>) -> wasmtime::Result<Instance> {
        Ok(match self {
            Self::V0_1(pre) => Instance::V0_1(pre.instantiate_async(store).await?),
            Self::V0_2(pre) => Instance::V0_2(pre.instantiate_async(store).await?),
        })
    }
}

/// An instance of a plugin, of the version it targets.
pub enum Instance {
    V0_1(v0_1::Plugin),
    V0_2(v0_2::Plugin),
}

impl Instance {
    /// Calls `handle` with `event`, converted down for an older plugin;
    /// the outer error is a trap, the inner one the plugin's failure.
    pub async fn call_handle(
        &self,
        store: &mut Store<State>,
        event: &types::Event,
    ) -> wasmtime::Result<Result<Option<types::Reply>, types::Failure>> {
        match self {
            Self::V0_2(plugin) => plugin.call_handle(store, event).await,
            Self::V0_1(plugin) => {
                let older = v0_1::types::Event::from(event.clone());
                let outcome = plugin.call_handle(store, &older).await?;
                Ok(outcome
                    .map(|reply| reply.map(Into::into))
                    .map_err(Into::into))
            }
        }
    }
}
