//! Rust bindings of the `wirehook:plugin@0.1.0` world, and the conversion
//! from wirehook's own event model into its types.

use crate::event;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});

pub use self::wirehook::plugin::host;
pub use self::wirehook::plugin::types;

impl From<&event::Contact> for types::Contact {
    fn from(c: &event::Contact) -> Self {
        Self {
            id: c.id.clone(),
            phone: c.phone.clone(),
            name: c.name.clone(),
        }
    }
}

impl From<&event::FlowEvent> for types::FlowEvent {
    fn from(f: &event::FlowEvent) -> Self {
        Self {
            flow_id: f.flow_id.clone(),
            flow_name: f.flow_name.clone(),
            stage: match f.stage {
                event::FlowStage::Started => types::FlowStage::Started,
                event::FlowStage::Succeeded => types::FlowStage::Succeeded,
                event::FlowStage::Failed => types::FlowStage::Failed,
            },
            contact: (&f.contact).into(),
            variables: f.variables.clone(),
        }
    }
}

impl From<&event::Payload> for types::Payload {
    fn from(p: &event::Payload) -> Self {
        use event::Payload as P;
        match p {
            P::MessageReceived(m) => Self::MessageReceived(types::Message {
                id: m.id.clone(),
                contact: (&m.contact).into(),
                conversation_id: m.conversation_id.clone(),
                text: m.text.clone(),
                content_type: m.content_type.clone(),
                media_url: m.media_url.clone(),
            }),
            P::MessageStatus(s) => Self::MessageStatus(types::StatusUpdate {
                message_id: s.message_id.clone(),
                status: s.status.clone(),
                timestamp_ms: s.timestamp_ms,
            }),
            P::Flow(f) => Self::Flow(f.into()),
            P::FlowCall(f) => Self::FlowCall(f.into()),
            P::Campaign(c) => Self::Campaign(types::CampaignEvent {
                campaign_id: c.campaign_id.clone(),
                label: c.label.clone(),
                contact: (&c.contact).into(),
                response: c.response.clone(),
                chosen_option: c.chosen_option.clone(),
                keyword: c.keyword.clone(),
            }),
            P::Other => Self::Other,
        }
    }
}

impl From<&event::Event> for types::Event {
    fn from(e: &event::Event) -> Self {
        Self {
            source: types::Source {
                provider: e.source.provider.clone(),
                route: e.source.route.clone(),
                delivery_id: e.source.delivery_id.clone(),
                received_at_ms: e.source.received_at_ms,
                attempt: e.source.attempt,
            },
            kind: e.kind.clone(),
            payload: (&e.payload).into(),
            raw_json: e.raw_json.clone(),
        }
    }
}
