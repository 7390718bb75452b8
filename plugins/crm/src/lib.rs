//! `crm`: upserts the contact of each message, flow, campaign or order
//! event into a CRM.
//!
//! `POST {crm_url}/contacts` with the contact as JSON, through the host's
//! `fetch` capability: the plugin needs `allow_http` for the CRM's origin
//! and a `crm_url` setting. A 5xx (or no answer) asks wirehook to retry
//! the event later; a 4xx drops it, since sending it again would not help.

wit_bindgen::generate!({ path: "../../wit/plugin.wit", world: "plugin" });

use serde_json::json;
use wirehook::plugin::host::{self, OutgoingRequest};
use wirehook::plugin::types::{Contact, Payload};

struct Crm;

impl Guest for Crm {
    fn handle(e: Event) -> Result<Option<Reply>, Failure> {
        let contact = match &e.payload {
            Payload::MessageReceived(message) => &message.contact,
            Payload::Flow(flow) | Payload::FlowCall(flow) => &flow.contact,
            Payload::Campaign(campaign) => &campaign.contact,
            Payload::Order(order) => &order.contact,
            _ => return Ok(None),
        };
        if contact.id.is_none() && contact.phone.is_none() {
            return Ok(None);
        }
        let base = host::setting("crm_url")
            .ok_or_else(|| Failure::Drop("setting `crm_url` is not configured".into()))?;
        let body = json!({
            "id": contact.id,
            "phone": contact.phone,
            "name": contact.name,
            "source": { "provider": e.source.provider, "route": e.source.route },
            "delivery_id": e.source.delivery_id,
        });
        upsert(&base, contact, body.to_string())
    }
}

fn upsert(base: &str, contact: &Contact, body: String) -> Result<Option<Reply>, Failure> {
    let request = OutgoingRequest {
        method: "POST".into(),
        url: format!("{}/contacts", base.trim_end_matches('/')),
        headers: vec![("content-type".into(), "application/json".into())],
        body: Some(body.into_bytes()),
    };
    let response = host::fetch(&request).map_err(Failure::Retry)?;
    let who = contact
        .phone
        .as_deref()
        .or(contact.id.as_deref())
        .unwrap_or("?");
    match response.status {
        200..=299 => {
            host::log(host::Level::Info, &format!("upserted contact {who}"));
            Ok(None)
        }
        500..=599 => Err(Failure::Retry(format!("CRM answered {}", response.status))),
        status => Err(Failure::Drop(format!(
            "CRM refused contact {who}: {status}"
        ))),
    }
}

export!(Crm);
