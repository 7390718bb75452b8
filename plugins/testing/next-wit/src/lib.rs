//! `next-wit`: a test fixture, a plugin built against a version of the
//! wirehook:plugin package this wirehook does not serve (a copy of the WIT
//! renumbered 0.3.0), which the host must refuse naming both versions.

wit_bindgen::generate!({ path: "wit", world: "plugin" });

use wirehook::plugin::host::{Level, log};

struct NextWit;

impl Guest for NextWit {
    fn handle(_: Event) -> Result<Option<Reply>, Failure> {
        // Import something from the host too, as real plugins do.
        log(Level::Info, "next-wit handled an event");
        Ok(None)
    }
}

export!(NextWit);
