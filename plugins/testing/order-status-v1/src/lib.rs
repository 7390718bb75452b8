//! `order-status-v1`: a test fixture, `order-status` as it was built for
//! `wirehook:plugin@0.1.0` (the frozen WIT in `wit/deps/plugin-0.1.0`),
//! which the host must keep serving beside plugins for newer versions.
//!
//! It answers a flow call as `order-status` does. It also answers every
//! other event with `{"payload": "other", "kind": K, "raw_json": R}`, so
//! that a test can see how an event 0.1.0 has no variant for (an order)
//! reaches it.

wit_bindgen::generate!({ path: "../../../wit/deps/plugin-0.1.0/plugin.wit", world: "plugin" });

use serde::Serialize;
use wirehook::plugin::types::{FlowEvent, Payload};

struct OrderStatusV1;

#[derive(Serialize)]
struct Answer<'a> {
    number: &'a str,
    status: &'static str,
}

#[derive(Serialize)]
struct Seen<'a> {
    payload: &'static str,
    kind: &'a str,
    raw_json: &'a str,
}

impl Guest for OrderStatusV1 {
    fn handle(e: Event) -> Result<Option<Reply>, Failure> {
        let json = match &e.payload {
            Payload::FlowCall(flow) | Payload::Flow(flow) => {
                let number = order_number(flow);
                serde_json::to_string(&Answer {
                    number,
                    status: status_of(number),
                })
            }
            Payload::Other => serde_json::to_string(&Seen {
                payload: "other",
                kind: &e.kind,
                raw_json: &e.raw_json,
            }),
            _ => return Ok(None),
        };
        let json = json.map_err(|e| Failure::Drop(e.to_string()))?;
        Ok(Some(Reply { status: 200, json }))
    }
}

/// The goflow result `order` if the flow collected one, else the text the
/// contact just typed.
fn order_number(flow: &FlowEvent) -> &str {
    ["order", "input"]
        .into_iter()
        .filter_map(|name| {
            flow.variables
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.trim())
        })
        .find(|value| !value.is_empty())
        .unwrap_or("")
}

fn status_of(number: &str) -> &'static str {
    match number {
        "CU001" => "Shipped",
        "CU002" => "Pending",
        "CU003" => "Cancelled",
        _ => "Unknown",
    }
}

export!(OrderStatusV1);
