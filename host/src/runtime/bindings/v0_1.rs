//! Rust bindings of the frozen `wirehook:plugin@0.1.0` world
//! (`wit/deps/plugin-0.1.0`), and its conversions from the newest one: an
//! event goes down to a 0.1.0 plugin, its reply and failure come back up,
//! and its `host` calls are served by the newest `host`.
//!
//! An event 0.1.0 has no variant for (an order) reaches the plugin as
//! `other`; its `raw-json` still holds everything.

wasmtime::component::bindgen!({
    path: "../wit/deps/plugin-0.1.0/plugin.wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});

pub use self::wirehook::plugin::{host, types};
// The newest version's types and host, which 0.1.0's convert from and to.
use super::super::host::State;
use super::v0_2::host as up_host;
use super::v0_2::types as up;

same_fields!(up::Contact <=> types::Contact { id, phone, name });
same_fields!(up::Message <=> types::Message {
    id, conversation_id, text, content_type, media_url
}, contact);
same_fields!(up::StatusUpdate <=> types::StatusUpdate {
    message_id, status, timestamp_ms
});
same_fields!(up::FlowEvent <=> types::FlowEvent {
    flow_id, flow_name, variables
}, stage, contact);
same_fields!(up::CampaignEvent <=> types::CampaignEvent {
    campaign_id, label, response, chosen_option, keyword
}, contact);
same_fields!(up::Source <=> types::Source {
    provider, route, delivery_id, received_at_ms, attempt
});
same_fields!(@one up::Event => types::Event { kind, raw_json }, source, payload);
same_fields!(@one types::Reply => up::Reply { status, json });
same_variants!(up::FlowStage <=> types::FlowStage { ; Started, Succeeded, Failed });
same_variants!(@one types::Failure => up::Failure { Retry, Drop ; });

impl From<up::Payload> for types::Payload {
    fn from(value: up::Payload) -> Self {
        use up::Payload as P;
        match value {
            P::MessageReceived(inner) => Self::MessageReceived(inner.into()),
            P::MessageStatus(inner) => Self::MessageStatus(inner.into()),
            P::Flow(inner) => Self::Flow(inner.into()),
            P::FlowCall(inner) => Self::FlowCall(inner.into()),
            P::Campaign(inner) => Self::Campaign(inner.into()),
            P::Order(_) | P::Other => Self::Other,
        }
    }
}

same_variants!(@one host::Level => up_host::Level { ; Trace, Debug, Info, Warn, Error });
same_fields!(@one host::OutgoingRequest => up_host::OutgoingRequest {
    method, url, headers, body
});
same_fields!(@one up_host::IncomingResponse => host::IncomingResponse {
    status, headers, body
});

impl types::Host for State {}

/// The `host` interface has not changed since 0.1.0: each call is the
/// newest one's.
impl host::Host for State {
    async fn log(&mut self, level: host::Level, msg: String) {
        up_host::Host::log(self, level.into(), msg).await;
    }

    async fn setting(&mut self, key: String) -> Option<String> {
        up_host::Host::setting(self, key).await
    }

    async fn kv_get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        up_host::Host::kv_get(self, key).await
    }

    async fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        up_host::Host::kv_set(self, key, value).await
    }

    async fn kv_delete(&mut self, key: String) -> Result<(), String> {
        up_host::Host::kv_delete(self, key).await
    }

    async fn kv_list(&mut self, prefix: String) -> Result<Vec<String>, String> {
        up_host::Host::kv_list(self, prefix).await
    }

    async fn fetch(
        &mut self,
        req: host::OutgoingRequest,
    ) -> Result<host::IncomingResponse, String> {
        up_host::Host::fetch(self, req.into()).await.map(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event;

    fn source() -> event::Source {
        event::Source {
            provider: "shopify".to_owned(),
            route: "shop".to_owned(),
            delivery_id: "d-1".to_owned(),
            received_at_ms: 42,
            attempt: 2,
        }
    }

    /// An order has no 0.1.0 variant: it goes down as `other`, with its
    /// raw JSON and everything else about the event unchanged.
    #[test]
    fn an_order_goes_down_as_other_with_its_raw_json() {
        let order = event::Order {
            id: "1".to_owned(),
            number: Some("1001".to_owned()),
            financial_status: Some("paid".to_owned()),
            fulfillment_status: None,
            currency: None,
            total: None,
            subtotal: None,
            tax: None,
            contact: event::Contact::default(),
            line_items: Vec::new(),
        };
        let event = event::Event {
            source: source(),
            kind: "orders/paid".to_owned(),
            payload: event::Payload::Order(order),
            raw_json: r#"{"id":1}"#.to_owned(),
        };
        let older = types::Event::from(up::Event::from(event));
        assert!(matches!(older.payload, types::Payload::Other));
        assert_eq!(older.raw_json, r#"{"id":1}"#);
        assert_eq!(older.kind, "orders/paid");
        assert_eq!(
            (older.source.route.as_str(), older.source.attempt),
            ("shop", 2)
        );
    }

    /// Every payload 0.1.0 has goes down unchanged: converting it up again
    /// gives the event wirehook started from.
    #[test]
    fn every_older_payload_goes_down_unchanged() {
        let contact = event::Contact {
            id: Some("c".to_owned()),
            phone: Some("+1".to_owned()),
            name: Some("Ana".to_owned()),
        };
        let flow = event::FlowEvent {
            flow_id: Some("f".to_owned()),
            flow_name: None,
            stage: event::FlowStage::Failed,
            contact: contact.clone(),
            variables: vec![("order".to_owned(), "CU001".to_owned())],
        };
        let payloads = [
            event::Payload::MessageReceived(event::Message {
                id: Some("m".to_owned()),
                contact: contact.clone(),
                conversation_id: None,
                text: Some("hi".to_owned()),
                content_type: "text".to_owned(),
                media_url: None,
            }),
            event::Payload::MessageStatus(event::StatusUpdate {
                message_id: "m".to_owned(),
                status: "read".to_owned(),
                timestamp_ms: Some(1),
            }),
            event::Payload::Flow(flow.clone()),
            event::Payload::FlowCall(flow),
            event::Payload::Campaign(event::CampaignEvent {
                campaign_id: None,
                label: Some("l".to_owned()),
                contact,
                response: Some("yes".to_owned()),
                chosen_option: None,
                keyword: Some("JOIN".to_owned()),
            }),
            event::Payload::Other,
        ];
        for payload in payloads {
            let newest = up::Payload::from(payload.clone());
            let older = types::Payload::from(newest);
            // Up again through 0.1.0's own types, which match field for field.
            let up: up::Payload = match older {
                types::Payload::MessageReceived(m) => up::Payload::MessageReceived(m.into()),
                types::Payload::MessageStatus(s) => up::Payload::MessageStatus(s.into()),
                types::Payload::Flow(f) => up::Payload::Flow(f.into()),
                types::Payload::FlowCall(f) => up::Payload::FlowCall(f.into()),
                types::Payload::Campaign(c) => up::Payload::Campaign(c.into()),
                types::Payload::Other => up::Payload::Other,
            };
            assert_eq!(event::Payload::from(up), payload);
        }
    }
}
