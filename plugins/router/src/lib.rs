//! `router`: sends each incoming message to a team by its first word.
//!
//! `sales…` goes to `sales`, `support…` or `help…` to `support`, anything
//! else to `default`. Each destination keeps a running count, and the reply
//! `{"route": D, "count": C}` tells the caller (or a flow, for routes that
//! carry flows) where the message went.

wit_bindgen::generate!({ path: "../../wit/plugin.wit", world: "plugin" });

use std::sync::atomic::{AtomicU64, Ordering};

use wirehook::plugin::host::{kv_get, kv_set};
use wirehook::plugin::types::{FlowEvent, Payload};

struct Router;

impl Guest for Router {
    fn handle(e: Event) -> Result<Option<Reply>, Failure> {
        let text = match &e.payload {
            Payload::MessageReceived(message) => message.text.as_deref(),
            // Flows reach the router too when a route carries them; the text
            // the contact typed is what there is to route on.
            Payload::Flow(flow) | Payload::FlowCall(flow) => input(flow),
            _ => return Ok(None),
        };
        let dest = Destination::of(text.unwrap_or(""));
        // Written out rather than with `json!`, whose map sorts keys, so the
        // body reads in the documented order like the other languages' replies.
        let json = format!(
            r#"{{"route":{},"count":{}}}"#,
            serde_json::Value::from(dest.name()),
            dest.count()
        );
        Ok(Some(Reply { status: 200, json }))
    }
}

fn input(flow: &FlowEvent) -> Option<&str> {
    flow.variables
        .iter()
        .find(|(key, _)| key == "input")
        .map(|(_, value)| value.as_str())
}

#[derive(Clone, Copy)]
enum Destination {
    Sales,
    Support,
    Default,
}

/// Counts kept in the instance when the KV store is unavailable (not
/// granted, or failing). They last only as long as the warm instance, but
/// routing should not stop because counting cannot be durable.
static FALLBACK_COUNTS: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];

impl Destination {
    fn of(text: &str) -> Self {
        let first = text.split_whitespace().next().unwrap_or("").to_lowercase();
        if first.starts_with("sales") {
            Self::Sales
        } else if first.starts_with("support") || first.starts_with("help") {
            Self::Support
        } else {
            Self::Default
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sales => "sales",
            Self::Support => "support",
            Self::Default => "default",
        }
    }

    /// Increments and returns this destination's count.
    fn count(self) -> u64 {
        self.count_in_kv()
            .unwrap_or_else(|_| FALLBACK_COUNTS[self as usize].fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn count_in_kv(self) -> Result<u64, String> {
        let key = format!("count/{}", self.name());
        // A value that is not a decimal number was not written by us; start
        // over rather than fail every message that follows.
        let previous = kv_get(&key)?
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let count = previous + 1;
        kv_set(&key, count.to_string().as_bytes())?;
        Ok(count)
    }
}

export!(Router);

#[cfg(test)]
mod tests {
    use super::Destination;

    #[test]
    fn routes_by_the_first_word() {
        let route = |text| Destination::of(text).name();
        assert_eq!(route("Sales please"), "sales");
        assert_eq!(route("  salesforce question"), "sales");
        assert_eq!(route("HELP!"), "support");
        assert_eq!(route("support"), "support");
        assert_eq!(route("I need sales"), "default");
        assert_eq!(route(""), "default");
    }
}
