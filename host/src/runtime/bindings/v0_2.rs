//! Rust bindings of the `wirehook:plugin@0.2.0` world, the newest, and the
//! conversions between wirehook's own event model and its types. Both
//! directions move the event's strings rather than copy them: a respond
//! route hands the event to its plugins and then logs it, and the copies
//! cost it a dozen allocations a request.

use crate::event;

wasmtime::component::bindgen!({
    // The file alone: with `wit/deps/` in view, two versions of the
    // package would name every module after its version.
    path: "../wit/plugin.wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});

pub use self::wirehook::plugin::host;
pub use self::wirehook::plugin::types;

same_fields!(event::Contact <=> types::Contact { id, phone, name });
same_fields!(event::Message <=> types::Message {
    id, conversation_id, text, content_type, media_url
}, contact);
same_fields!(event::StatusUpdate <=> types::StatusUpdate { message_id, status, timestamp_ms });
same_fields!(event::FlowEvent <=> types::FlowEvent {
    flow_id, flow_name, variables
}, stage, contact);
same_fields!(event::CampaignEvent <=> types::CampaignEvent {
    campaign_id, label, response, chosen_option, keyword
}, contact);
same_fields!(event::LineItem <=> types::LineItem { id, title, sku, quantity, price });

/// Converts both ways between the orders, whose lines are a list: the
/// macro converts a field with one `into`.
macro_rules! orders {
    ($from:path => $to:path) => {
        impl From<$from> for $to {
            fn from(value: $from) -> Self {
                Self {
                    id: value.id,
                    number: value.number,
                    financial_status: value.financial_status,
                    fulfillment_status: value.fulfillment_status,
                    currency: value.currency,
                    total: value.total,
                    subtotal: value.subtotal,
                    tax: value.tax,
                    contact: value.contact.into(),
                    line_items: value.line_items.into_iter().map(Into::into).collect(),
                }
            }
        }
    };
}
orders!(event::Order => types::Order);
orders!(types::Order => event::Order);
same_fields!(event::Source <=> types::Source {
    provider, route, delivery_id, received_at_ms, attempt
});
same_fields!(event::Event <=> types::Event { kind, raw_json }, source, payload);
same_variants!(event::FlowStage <=> types::FlowStage { ; Started, Succeeded, Failed });
same_variants!(event::Payload <=> types::Payload {
    MessageReceived, MessageStatus, Flow, FlowCall, Campaign, Order ; Other
});

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(id: &str) -> event::Contact {
        event::Contact {
            id: Some(id.to_owned()),
            phone: Some("+12065551212".to_owned()),
            name: None,
        }
    }

    /// Every payload survives the trip to the plugin's types and back
    /// unchanged: a field the macro missed or swapped would not.
    #[test]
    fn events_convert_both_ways_unchanged() {
        use event::Payload as P;
        let flow = event::FlowEvent {
            flow_id: Some("f-1".to_owned()),
            flow_name: Some("Orders".to_owned()),
            stage: event::FlowStage::Succeeded,
            contact: contact("c-1"),
            variables: vec![("order".to_owned(), "CU001".to_owned())],
        };
        let payloads = [
            P::MessageReceived(event::Message {
                id: Some("m-1".to_owned()),
                contact: contact("c-2"),
                conversation_id: Some("conv".to_owned()),
                text: Some("hi".to_owned()),
                content_type: "text".to_owned(),
                media_url: Some("https://example.com/a.jpg".to_owned()),
            }),
            P::MessageStatus(event::StatusUpdate {
                message_id: "m-2".to_owned(),
                status: "read".to_owned(),
                timestamp_ms: Some(7),
            }),
            P::Flow(flow.clone()),
            P::FlowCall(event::FlowEvent {
                stage: event::FlowStage::Failed,
                ..flow
            }),
            P::Campaign(event::CampaignEvent {
                campaign_id: Some("cmp".to_owned()),
                label: Some("label".to_owned()),
                contact: contact("c-3"),
                response: Some("yes".to_owned()),
                chosen_option: Some("1".to_owned()),
                keyword: Some("JOIN".to_owned()),
            }),
            P::Order(event::Order {
                id: "820982911946154508".to_owned(),
                number: Some("1001".to_owned()),
                financial_status: Some("paid".to_owned()),
                fulfillment_status: None,
                currency: Some("USD".to_owned()),
                total: Some("199.00".to_owned()),
                subtotal: Some("189.00".to_owned()),
                tax: Some("10.00".to_owned()),
                contact: contact("c-4"),
                line_items: vec![event::LineItem {
                    id: Some("866550311766439020".to_owned()),
                    title: "IPod Nano - 8GB".to_owned(),
                    sku: Some("IPOD2008PINK".to_owned()),
                    quantity: 2,
                    price: Some("94.50".to_owned()),
                }],
            }),
            P::Other,
        ];
        for payload in payloads {
            let event = event::Event {
                source: event::Source {
                    provider: "goflow".to_owned(),
                    route: "orders".to_owned(),
                    delivery_id: "d-1".to_owned(),
                    received_at_ms: 42,
                    attempt: 3,
                },
                kind: "call_webhook".to_owned(),
                payload,
                raw_json: "{}".to_owned(),
            };
            let there = types::Event::from(event.clone());
            assert_eq!(event::Event::from(there), event);
        }
    }
}
