//! `{{name}}`: a wirehook plugin. wirehook calls `handle` once per event
//! of each route that names this plugin; see wit/plugin.wit for every type.

wit_bindgen::generate!({ path: "wit", world: "plugin" });

use wirehook::plugin::host::{Level, log};
use wirehook::plugin::types::Payload;

struct Plugin;

impl Guest for Plugin {
    fn handle(e: Event) -> Result<Option<Reply>, Failure> {
        if let Payload::MessageReceived(message) = &e.payload {
            log(Level::Info, &format!("message from {:?}", message.contact.phone));
        }
        // On a `respond` route this reply is the HTTP response.
        let json = serde_json::json!({ "plugin": "{{name}}", "kind": e.kind });
        Ok(Some(Reply {
            status: 200,
            json: json.to_string(),
        }))
    }
}

export!(Plugin);
