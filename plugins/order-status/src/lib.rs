//! `order-status`: answers a flow engine's "what is the status of order N?".
//!
//! A goflow "Call Webhook" step reaches this plugin as a `flow-call`; the
//! reply `{"number": N, "status": S}` becomes `@webhook` in the flow, which
//! then branches on `@webhook.status`. The status comes from a fixed table so
//! that every language variant of this example gives the same replies.

wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

use wirehook::plugin::types::{FlowEvent, Payload};

struct OrderStatus;

impl Guest for OrderStatus {
    fn handle(e: Event) -> Result<Option<Reply>, Failure> {
        // A plain `flow` carries the same variables; answering it costs
        // nothing and lets a route use this plugin in either mode.
        let (Payload::FlowCall(flow) | Payload::Flow(flow)) = e.payload else {
            return Ok(None);
        };
        let number = order_number(&flow);
        let json = serde_json::json!({ "number": number, "status": status_of(number) });
        Ok(Some(Reply {
            status: 200,
            json: json.to_string(),
        }))
    }
}

/// The goflow result `order` if the flow collected one, else the text the
/// contact just typed.
fn order_number(flow: &FlowEvent) -> &str {
    ["order", "input"]
        .into_iter()
        .filter_map(|name| variable(flow, name))
        .map(str::trim)
        .find(|value| !value.is_empty())
        .unwrap_or("")
}

fn variable<'a>(flow: &'a FlowEvent, name: &str) -> Option<&'a str> {
    flow.variables
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn status_of(number: &str) -> &'static str {
    match number {
        "CU001" => "Shipped",
        "CU002" => "Pending",
        "CU003" => "Cancelled",
        _ => "Unknown",
    }
}

export!(OrderStatus);
