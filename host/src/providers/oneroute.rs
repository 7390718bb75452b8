//! OneRoute: `x-oneroute-signature` is the hex HMAC-SHA512, keyed with the
//! OneRoute secret, of `JSON.stringify(body)` (their docs verify it with
//! Express, against the re-serialised parsed body).
//!
//! The signature is checked against the raw bytes first (OneRoute sends
//! the stringified text, so that is the usual match), then against a
//! faithful JavaScript re-serialisation of the parsed body ([`jsjson`]),
//! which is what their reference receiver compares. That second check
//! parses a body nobody has proven yet, so it runs under the daemon's
//! bound on slow checks (`server.max_slow_checks`): over it the request is
//! refused 503 at once. When the second matches, the proven document is
//! that re-serialised text: it is what was signed, and it makes the
//! delivery id independent of insignificant whitespace. An address
//! allowlist (OneRoute sends from 174.138.104.128) is the route's
//! `allow_ips`.
//!
//! Events: `newMessage` → message-received, `compaignDeliveryReport`
//! (their spelling) → campaign; anything else → other.

use std::borrow::Cow;
use std::time::SystemTime;

use serde_json::Value;

use super::{
    Provider, Rejection, Request, SignError, Signed, SlowChecks, Verified, jsjson, json, mac,
};
use crate::algorithm::{HmacAlgorithm, SignatureEncoding};
use crate::event::{CampaignEvent, Contact, Decoded, Message, Payload};
use crate::secret::Secret;

const HEADER: &str = "x-oneroute-signature";

pub fn build(secret: Secret, slow_checks: SlowChecks) -> Box<dyn Provider> {
    Box::new(OneRoute {
        secret,
        slow_checks,
    })
}

struct OneRoute {
    secret: Secret,
    /// The re-serialised check parses and rebuilds a body nobody has proven
    /// yet: it runs under this bound.
    slow_checks: SlowChecks,
}

impl OneRoute {
    fn matches(&self, text: &[u8], signature: &[u8]) -> bool {
        mac::verify(
            HmacAlgorithm::Sha512,
            self.secret.expose(),
            &[text],
            signature,
        )
    }

    /// The `JSON.stringify` form of `body`, if `signature` covers it.
    fn matches_restringified(&self, body: &[u8], signature: &[u8]) -> Result<String, Rejection> {
        let refused = || Rejection::unauthorized("signature does not match");
        let _place = self.slow_checks.start()?;
        let text = jsjson::restringify(body).ok_or_else(refused)?;
        // The same bytes were hashed already, and did not match.
        if text.as_bytes() == body || !self.matches(text.as_bytes(), signature) {
            return Err(refused());
        }
        Ok(text)
    }
}

impl Provider for OneRoute {
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        let header = req
            .headers
            .get(HEADER)
            .ok_or_else(|| Rejection::unauthorized(format!("missing `{HEADER}` header")))?;
        let signature = mac::decode(SignatureEncoding::Hex, header.as_bytes())
            .ok_or_else(|| Rejection::unauthorized(format!("`{HEADER}` is not hex")))?;
        let verified = if self.matches(req.body, &signature) {
            Verified::body(req)
        } else {
            Verified::document(Cow::Owned(
                self.matches_restringified(req.body, &signature)?
                    .into_bytes(),
            ))
        };
        super::require_json_content_type(req.headers)?;
        Ok(verified)
    }

    /// OneRoute sends `JSON.stringify(body)` and signs exactly that text.
    fn sign(&self, payload: &[u8], _now: SystemTime) -> Result<Signed, SignError> {
        let body = jsjson::restringify(payload).ok_or(SignError::NotJson(None))?;
        let digest = mac::sign(
            HmacAlgorithm::Sha512,
            self.secret.expose(),
            &[body.as_bytes()],
        );
        Ok(Signed::json(
            body.as_bytes(),
            [(
                HEADER.to_owned(),
                mac::encode(SignatureEncoding::Hex, &digest),
            )],
        ))
    }
}

/// Decodes a verified document into its events; see [`super::Decode`].
pub(super) fn decode(document: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    let body = json::object(document)?;
    let kind = json::text(&body, &["event"]);
    let payload = match kind.as_deref() {
        Some("newMessage") => Payload::MessageReceived(message(&body)),
        Some("compaignDeliveryReport") => Payload::Campaign(delivery_report(&body)),
        _ => Payload::Other,
    };
    let provider_id = match &payload {
        Payload::MessageReceived(message) => message.id.clone(),
        _ => None,
    };
    Ok(vec![Decoded {
        kind: kind.unwrap_or_else(|| "oneroute".to_owned()),
        payload,
        raw_json: json::document_text(document),
        provider_id,
    }])
}

fn message(body: &Value) -> Message {
    let null = Value::Null;
    let message = body.get("message").unwrap_or(&null);
    let conversation = body.get("conversation").unwrap_or(&null);
    let sender = message.get("sender").unwrap_or(&null);
    let customer = conversation.get("customer").unwrap_or(&null);
    Message {
        id: json::text(message, &["id", "externalId"]),
        contact: Contact {
            id: json::text(customer, &["id", "email"]),
            phone: json::text(sender, &["phone", "phoneNumber"])
                .or_else(|| json::text(customer, &["phone", "phoneNumber"])),
            name: json::text(sender, &["name"]).or_else(|| json::text(customer, &["name"])),
        },
        conversation_id: json::text(message, &["conversation_id"])
            .or_else(|| json::text(conversation, &["id"])),
        text: json::text(message, &["content"]),
        content_type: json::text(message, &["contentType"])
            .map_or_else(|| "text".to_owned(), |t| t.to_ascii_lowercase()),
        media_url: json::text(
            message,
            &["imageUrl", "videoUrl", "documentUrl", "audioUrl"],
        ),
    }
}

/// A campaign's delivery report: the campaign id is only in the report
/// URL's `campaign_id` parameter; the message (`campaign completed.`) is
/// the label.
fn delivery_report(body: &Value) -> CampaignEvent {
    let campaign_id = json::text(body, &["campaignReportUrl"]).and_then(|url| {
        let query = url.split_once('?')?.1;
        let id = super::token::query_param(query, "campaign_id")?;
        String::from_utf8(id).ok().filter(|id| !id.is_empty())
    });
    CampaignEvent {
        campaign_id,
        label: json::text(body, &["message"]),
        contact: Contact::default(),
        response: None,
        chosen_option: None,
        keyword: None,
    }
}

#[cfg(test)]
mod tests;
