//! `order-status`: answers a flow engine's "what is the status of order N?".
//!
//! A goflow "Call Webhook" step reaches this plugin as a `flow-call`; the
//! reply `{"number": N, "status": S}` becomes `@webhook` in the flow, which
//! then branches on `@webhook.status`. The status comes from a fixed table so
//! that every language variant of this example gives the same replies.
//!
//! A shop's order (a Shopify `orders/*` webhook) is answered the same way,
//! its status read from the order itself: fulfilled is `Shipped`, refunded
//! or voided `Cancelled`, anything else `Pending`.

wit_bindgen::generate!({ path: "../../wit/plugin.wit", world: "plugin" });

use serde::Serialize;
use wirehook::plugin::types::{FlowEvent, Order, Payload};

struct OrderStatus;

/// The reply, which the flow reads as `@webhook.number` and branches on
/// as `@webhook.status`.
#[derive(Serialize)]
struct Answer<'a> {
    number: &'a str,
    status: &'static str,
}

impl Guest for OrderStatus {
    fn handle(e: Event) -> Result<Option<Reply>, Failure> {
        // A plain `flow` carries the same variables; answering it costs
        // nothing and lets a route use this plugin in either mode.
        let answer = match &e.payload {
            Payload::FlowCall(flow) | Payload::Flow(flow) => {
                let number = order_number(flow);
                Answer {
                    number,
                    status: status_of(number),
                }
            }
            Payload::Order(order) => Answer {
                number: order.number.as_deref().unwrap_or(""),
                status: status_of_order(order),
            },
            _ => return Ok(None),
        };
        // Written straight from the struct: no map of values to build.
        let json = serde_json::to_string(&answer).expect("two strings always serialize");
        Ok(Some(Reply { status: 200, json }))
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

/// One more shipped order, given when the plugin is built
/// (`ORDER_STATUS_EXTRA_ORDER`): copies built with different ones are
/// different components, which the benchmarks load ten of so that a cache
/// keyed on content compiles each (`plugins/build --bench`).
const EXTRA_ORDER: Option<&str> = option_env!("ORDER_STATUS_EXTRA_ORDER");

fn status_of(number: &str) -> &'static str {
    match number {
        "CU001" => "Shipped",
        "CU002" => "Pending",
        "CU003" => "Cancelled",
        _ if EXTRA_ORDER == Some(number) => "Shipped",
        _ => "Unknown",
    }
}

/// A shop's order by its own statuses: the shop's names, as text.
fn status_of_order(order: &Order) -> &'static str {
    let is = |status: &Option<String>, name: &str| status.as_deref() == Some(name);
    if is(&order.fulfillment_status, "fulfilled") {
        "Shipped"
    } else if is(&order.financial_status, "refunded") || is(&order.financial_status, "voided") {
        "Cancelled"
    } else {
        "Pending"
    }
}

export!(OrderStatus);

#[cfg(test)]
mod tests {
    use super::*;
    use wirehook::plugin::types::{Contact, FlowStage, Source};

    fn call(payload: Payload) -> Option<String> {
        let e = Event {
            source: Source {
                provider: "goflow".into(),
                route: "orders".into(),
                delivery_id: "d1".into(),
                received_at_ms: 0,
                attempt: 1,
            },
            kind: "call_webhook".into(),
            payload,
            raw_json: "{}".into(),
        };
        OrderStatus::handle(e)
            .ok()?
            .map(|reply| format!("{} {}", reply.status, reply.json))
    }

    fn flow_call(variables: &[(&str, &str)]) -> Payload {
        Payload::FlowCall(FlowEvent {
            flow_id: None,
            flow_name: None,
            stage: FlowStage::Started,
            contact: Contact {
                id: None,
                phone: None,
                name: None,
            },
            variables: variables
                .iter()
                .map(|&(k, v)| (k.into(), v.into()))
                .collect(),
        })
    }

    #[test]
    fn prefers_the_order_result_over_the_input() {
        let reply = call(flow_call(&[("input", "CU003"), ("order", " CU001 ")]));
        assert_eq!(
            reply.as_deref(),
            Some(r#"200 {"number":"CU001","status":"Shipped"}"#)
        );
    }

    #[test]
    fn falls_back_to_the_input_text() {
        let reply = call(flow_call(&[("input", "CU002\n")]));
        assert_eq!(
            reply.as_deref(),
            Some(r#"200 {"number":"CU002","status":"Pending"}"#)
        );
    }

    #[test]
    fn escapes_an_unknown_number() {
        let reply = call(flow_call(&[("order", r#"x"y"#)]));
        assert_eq!(
            reply.as_deref(),
            Some(r#"200 {"number":"x\"y","status":"Unknown"}"#)
        );
    }

    fn order(number: &str, financial: Option<&str>, fulfillment: Option<&str>) -> Payload {
        Payload::Order(Order {
            id: "1".into(),
            number: Some(number.into()),
            financial_status: financial.map(Into::into),
            fulfillment_status: fulfillment.map(Into::into),
            currency: None,
            total: None,
            subtotal: None,
            tax: None,
            contact: Contact {
                id: None,
                phone: None,
                name: None,
            },
            line_items: Vec::new(),
        })
    }

    #[test]
    fn answers_an_order_by_its_own_status() {
        for (financial, fulfillment, status) in [
            (Some("paid"), Some("fulfilled"), "Shipped"),
            (Some("refunded"), None, "Cancelled"),
            (Some("voided"), Some("partial"), "Cancelled"),
            (Some("paid"), None, "Pending"),
            (None, None, "Pending"),
        ] {
            let reply = call(order("1001", financial, fulfillment));
            let expected = format!(r#"200 {{"number":"1001","status":"{status}"}}"#);
            assert_eq!(reply.as_deref(), Some(expected.as_str()));
        }
    }

    #[test]
    fn ignores_other_payloads() {
        assert_eq!(call(Payload::Other), None);
    }
}
