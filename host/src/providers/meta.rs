//! Meta: the WhatsApp Cloud API webhooks.
//!
//! Proof: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`,
//! keyed with the app secret (the route's `secret`). Before Meta sends
//! events it subscribes the URL with a GET handshake,
//! `?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C`: wirehook
//! answers `C` as text/plain when `T` is the route's `verify_token`
//! (compared in constant time), 403 otherwise.
//!
//! One POST can carry many entries, each with many changes, each with many
//! messages and statuses; each becomes its own event:
//!
//! | element | payload | kind | provider id |
//! |---|---|---|---|
//! | `messages[]` (a WhatsApp Flow reply, `interactive.nfm_reply`) | flow, succeeded | the message `type` | message id |
//! | `messages[]` (any other) | message-received | the message `type` (`text`, `image`, `interactive`, …) | message id |
//! | `statuses[]` | message-status | `status` | status id + `:` + status name |
//! | a change with neither | other | the change's `field` | — |
//!
//! A status id alone is not unique (one message is sent, then delivered,
//! then read), hence the status name in its delivery id. Each event's
//! `raw-json` is the payload narrowed to that one element, in the same
//! shape: one entry, one change, one message or status, and the message's
//! contact, with the envelope's own fields (`object`; the entry's `id` and
//! `time`; the change's `field`; the value's `messaging_product` and
//! `metadata`), so code written for Meta's payloads reads it as is. Other
//! fields of the envelope are not repeated in every event, and a request
//! decodes to at most [`super::MAX_EVENTS_PER_REQUEST`] events and a
//! bounded multiple of its bytes ([`Budget`]); over either it is 413.

use std::collections::HashMap;
use std::time::SystemTime;

use axum::http::HeaderName;
use serde_json::{Map, Value, json};

use super::mac::BodySignature;
use super::{Budget, Handshake, Provider, Rejection, Request, SignError, Signed, Verified, json};
use crate::algorithm::{HmacAlgorithm, SignatureEncoding};
use crate::config::provider::MetaOptions;
use crate::event::{Contact, Decoded, FlowEvent, FlowStage, Message, Payload, StatusUpdate};
use crate::secret::Secret;

const HEADER: &str = "x-hub-signature-256";
/// Meta's challenges are short numbers; anything long or odd is refused
/// rather than echoed.
const MAX_CHALLENGE: usize = 256;

pub fn build(options: &MetaOptions, secret: Secret) -> Box<dyn Provider> {
    // Without one every handshake is refused; the daemon warns at start
    // (routes.rs), while `wirehook sign` needs none.
    Box::new(Meta {
        secret,
        signature: BodySignature {
            header: HeaderName::from_static(HEADER),
            header_text: "X-Hub-Signature-256".to_owned(),
            algorithm: HmacAlgorithm::Sha256,
            encoding: SignatureEncoding::Hex,
            prefix: "sha256=".to_owned(),
        },
        verify_token: options.verify_token.clone(),
    })
}

struct Meta {
    secret: Secret,
    signature: BodySignature,
    verify_token: Option<Secret>,
}

impl Provider for Meta {
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        self.signature.verify(&self.secret, req)?;
        Ok(Verified::body(req))
    }

    fn sign(&self, payload: &[u8], _now: SystemTime) -> Result<Signed, SignError> {
        Ok(self.signature.sign(&self.secret, payload))
    }

    fn handshake(&self) -> Option<&dyn Handshake> {
        Some(self)
    }
}

impl Handshake for Meta {
    fn answer(&self, req: &Request<'_>) -> Result<String, Rejection> {
        self.answer_handshake(req.query)
    }
}

/// Decodes a verified document into its events; see [`super::Decode`].
/// Each event is built from the envelope's few fields and its own element,
/// and counted against the request's [`Budget`] as it is made, so the
/// work and the bytes kept stay proportional to the body.
pub(super) fn decode(document: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    let body = json::object(document)?;
    let mut budget = Budget::for_document(document);
    let mut events = Vec::new();
    let mut keep = |event: Decoded| -> Result<(), Rejection> {
        budget.take(event.raw_json.len())?;
        events.push(event);
        Ok(())
    };
    for entry in array(&body, "entry") {
        for change in array(entry, "changes") {
            let envelope = Envelope {
                body: &body,
                entry,
                change,
            };
            let value = change.get("value").unwrap_or(&Value::Null);
            let contacts = Contacts::of(value);
            let messages = array(value, "messages");
            let statuses = array(value, "statuses");
            for message in messages {
                keep(message_event(&envelope, value, &contacts, message))?;
            }
            for status in statuses {
                keep(status_event(&envelope, value, status))?;
            }
            if messages.is_empty() && statuses.is_empty() {
                keep(Decoded {
                    kind: json::text(change, &["field"]).unwrap_or_else(|| "meta".to_owned()),
                    payload: Payload::Other,
                    raw_json: envelope.wrap(change.clone()).to_string(),
                    provider_id: None,
                })?;
            }
        }
    }
    if events.is_empty() {
        // No entry at all: still an event, so nothing is dropped silently.
        events.push(Decoded {
            kind: json::text(&body, &["object"]).unwrap_or_else(|| "meta".to_owned()),
            payload: Payload::Other,
            raw_json: json::document_text(document),
            provider_id: None,
        });
    }
    Ok(events)
}

impl Meta {
    fn answer_handshake(&self, query: &str) -> Result<String, Rejection> {
        let param = |name| super::token::query_param(query, name);
        if param("hub.mode").as_deref() != Some(b"subscribe") {
            return Err(Rejection::bad_request(
                "not a subscription handshake (hub.mode=subscribe)",
            ));
        }
        let presented = param("hub.verify_token")
            .ok_or_else(|| Rejection::Forbidden("missing hub.verify_token".to_owned()))?;
        let expected = self
            .verify_token
            .as_ref()
            .ok_or_else(|| Rejection::Forbidden("the route has no verify_token".to_owned()))?;
        if !expected.matches(&presented) {
            return Err(Rejection::Forbidden(
                "verify token does not match".to_owned(),
            ));
        }
        let challenge = param("hub.challenge").unwrap_or_default();
        if challenge.is_empty()
            || challenge.len() > MAX_CHALLENGE
            || !challenge.iter().all(u8::is_ascii_graphic)
        {
            return Err(Rejection::bad_request("missing or malformed hub.challenge"));
        }
        Ok(String::from_utf8(challenge).expect("checked ASCII"))
    }
}

/// Where an element sits in the payload, to narrow the payload to it.
struct Envelope<'a> {
    body: &'a Value,
    entry: &'a Value,
    change: &'a Value,
}

/// The envelope's fields an event's raw JSON keeps, at each level; the
/// rest (other entries, changes and elements, and anything else there)
/// belongs to no one event and is not repeated in each.
const BODY_FIELDS: &[&str] = &["object"];
const ENTRY_FIELDS: &[&str] = &["id", "time"];
const CHANGE_FIELDS: &[&str] = &["field"];
const VALUE_FIELDS: &[&str] = &["messaging_product", "metadata"];

impl Envelope<'_> {
    /// The envelope around `change`, as the only change of the only entry.
    fn wrap(&self, change: Value) -> Value {
        let mut entry = fields(self.entry, ENTRY_FIELDS);
        entry.insert("changes".to_owned(), json!([change]));
        let mut body = fields(self.body, BODY_FIELDS);
        body.insert("entry".to_owned(), json!([entry]));
        Value::Object(body)
    }

    /// The envelope around one element of `value`: `key` holds only
    /// `element`, and `contacts` only `contact` (if any).
    fn narrowed_to(
        &self,
        value: &Value,
        key: &str,
        element: &Value,
        contact: Option<&Value>,
    ) -> Value {
        let mut value = fields(value, VALUE_FIELDS);
        value.insert(key.to_owned(), json!([element]));
        if let Some(contact) = contact {
            value.insert("contacts".to_owned(), json!([contact]));
        }
        let mut change = fields(self.change, CHANGE_FIELDS);
        change.insert("value".to_owned(), Value::Object(value));
        self.wrap(Value::Object(change))
    }
}

/// The members of `object` named `keys`, copied.
fn fields(object: &Value, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|key| Some(((*key).to_owned(), object.get(*key)?.clone())))
        .collect()
}

/// A change's `contacts`, found by `wa_id` without a scan per message.
struct Contacts<'v> {
    first: Option<&'v Value>,
    by_wa_id: HashMap<String, &'v Value>,
}

impl<'v> Contacts<'v> {
    fn of(value: &'v Value) -> Self {
        let contacts = array(value, "contacts");
        let mut by_wa_id = HashMap::new();
        for contact in contacts {
            if let Some(wa_id) = json::text(contact, &["wa_id"]) {
                // The first with an id, as a search from the front finds.
                by_wa_id.entry(wa_id).or_insert(contact);
            }
        }
        Self {
            first: contacts.first(),
            by_wa_id,
        }
    }

    /// The contact whose `wa_id` is `from`, else the first.
    fn of_sender(&self, from: Option<&str>) -> Option<&'v Value> {
        from.and_then(|from| self.by_wa_id.get(from).copied())
            .or(self.first)
    }
}

fn array<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn message_event(
    envelope: &Envelope<'_>,
    value: &Value,
    contacts: &Contacts<'_>,
    message: &Value,
) -> Decoded {
    let kind = json::text(message, &["type"]).unwrap_or_else(|| "unknown".to_owned());
    let from = json::text(message, &["from"]);
    let contact_json = contacts.of_sender(from.as_deref());
    let null = Value::Null;
    let contact_json_or_null = contact_json.unwrap_or(&null);
    let wa_id = json::text(contact_json_or_null, &["wa_id"]);
    let contact = Contact {
        id: wa_id.clone().or_else(|| from.clone()),
        phone: from.or(wa_id),
        name: contact_json_or_null
            .get("profile")
            .and_then(|p| json::text(p, &["name"])),
    };
    let id = json::text(message, &["id"]);
    let detail = message.get(kind.as_str()).unwrap_or(&null);
    let payload = match flow_reply(message) {
        Some(reply) => Payload::Flow(FlowEvent {
            flow_id: reply.token,
            flow_name: json::text(reply.nfm, &["name"]),
            stage: FlowStage::Succeeded,
            contact,
            variables: reply.variables,
        }),
        None => Payload::MessageReceived(Message {
            id: id.clone(),
            contact,
            conversation_id: None,
            text: text_of(&kind, message, detail),
            content_type: kind.clone(),
            media_url: media_of(&kind, detail),
        }),
    };
    Decoded {
        kind,
        payload,
        raw_json: envelope
            .narrowed_to(value, "messages", message, contact_json)
            .to_string(),
        provider_id: id,
    }
}

/// The text a person reads in a message: its body, a caption, the title
/// of the button or list row they tapped, an emoji reaction, a place.
fn text_of(kind: &str, message: &Value, detail: &Value) -> Option<String> {
    match kind {
        "text" => json::text(detail, &["body"]),
        "image" | "video" | "document" | "audio" | "sticker" => json::text(detail, &["caption"]),
        "interactive" => ["button_reply", "list_reply"]
            .iter()
            .find_map(|reply| detail.get(reply).and_then(|r| json::text(r, &["title"]))),
        "button" => json::text(detail, &["text", "payload"]),
        "reaction" => json::text(detail, &["emoji"]),
        "location" => json::text(detail, &["name", "address"]),
        _ => json::text(message, &["text"])
            .or_else(|| message.get("text").and_then(|t| json::text(t, &["body"]))),
    }
}

/// Media messages carry a media id (fetched through the Graph API) and,
/// on newer API versions, a URL; the URL where present, else the id.
fn media_of(kind: &str, detail: &Value) -> Option<String> {
    matches!(kind, "image" | "video" | "document" | "audio" | "sticker")
        .then(|| json::text(detail, &["url", "id"]))
        .flatten()
}

struct FlowReply<'a> {
    nfm: &'a Value,
    token: Option<String>,
    variables: Vec<(String, String)>,
}

/// A WhatsApp Flow's completion: `interactive.nfm_reply`, whose
/// `response_json` is a JSON *string* holding the flow token and the
/// answers.
fn flow_reply(message: &Value) -> Option<FlowReply<'_>> {
    let interactive = message.get("interactive")?;
    if json::text(interactive, &["type"]).as_deref() != Some("nfm_reply") {
        return None;
    }
    let nfm = interactive.get("nfm_reply")?;
    let response: Value = nfm
        .get("response_json")
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null);
    let variables = response
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .filter(|(key, _)| *key != "flow_token")
                .map(|(key, value)| (key.clone(), json::any_text(value)))
                .collect()
        })
        .unwrap_or_default();
    Some(FlowReply {
        nfm,
        token: json::text(&response, &["flow_token"]),
        variables,
    })
}

fn status_event(envelope: &Envelope<'_>, value: &Value, status: &Value) -> Decoded {
    let id = json::text(status, &["id"]);
    let name = json::text(status, &["status"]).unwrap_or_else(|| "unknown".to_owned());
    Decoded {
        kind: name.clone(),
        payload: Payload::MessageStatus(StatusUpdate {
            message_id: id.clone().unwrap_or_default(),
            status: name.clone(),
            timestamp_ms: status
                .get("timestamp")
                .and_then(super::time::unix_seconds_ms),
        }),
        raw_json: envelope
            .narrowed_to(value, "statuses", status, None)
            .to_string(),
        provider_id: id.map(|id| format!("{id}:{name}")),
    }
}

#[cfg(test)]
mod tests;
