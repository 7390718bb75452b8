//! Messangi chatbot and campaign webhooks: a POST of JSON with
//! `campaignId`, `label` (the chatbot section), `phoneNumber`, `date` and
//! `response`, plus `option` and `keyword` when the webhook follows a
//! redirect, plus any extra parameters the operator typed in the body
//! editor (kept in `raw-json`).
//!
//! Proof: Messangi documents no signature, only custom headers the
//! operator adds in its webhook editor. The route's `header` (default
//! `X-Messangi-Token`) must carry the route's `secret`, and every header
//! in the route's `headers` table its value; all are compared in constant
//! time. A `token` query parameter stands in for the main header.
//!
//! Messangi sends no event name; wirehook calls the event
//! `campaign_interaction`. A body with none of the campaign fields is
//! `other` under the provider's name.

use axum::http::HeaderName;
use serde_json::Value;

use super::token::SharedToken;
use super::{ConfigIssue, Provider, Rejection, json};
use crate::config::provider::TokenOptions;
use crate::event::{CampaignEvent, Contact, Decoded, Payload};
use crate::secret::Secret;

const DEFAULT_HEADER: HeaderName = HeaderName::from_static("x-messangi-token");
const KIND: &str = "campaign_interaction";
const FIELDS: &[&str] = &[
    "campaignId",
    "label",
    "phoneNumber",
    "response",
    "option",
    "keyword",
];

pub fn build(options: &TokenOptions, secret: Secret) -> Result<Box<dyn Provider>, ConfigIssue> {
    Ok(Box::new(SharedToken::new(options, DEFAULT_HEADER, secret)?))
}

/// Decodes a verified document into its events; see [`super::Decode`].
pub(super) fn decode(document: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    let body = json::object(document)?;
    let raw_json = json::document_text(document);
    if !FIELDS.iter().any(|field| body.get(field).is_some()) {
        return Ok(vec![Decoded {
            kind: "messangi".to_owned(),
            payload: Payload::Other,
            raw_json,
            provider_id: None,
        }]);
    }
    Ok(vec![Decoded {
        kind: KIND.to_owned(),
        payload: Payload::Campaign(campaign(&body)),
        raw_json,
        provider_id: None,
    }])
}

fn campaign(body: &Value) -> CampaignEvent {
    CampaignEvent {
        campaign_id: json::text(body, &["campaignId"]),
        label: json::text(body, &["label"]),
        contact: Contact {
            id: None,
            phone: json::text(body, &["phoneNumber"]),
            name: None,
        },
        response: json::text(body, &["response"]),
        chosen_option: json::text(body, &["option"]),
        keyword: json::text(body, &["keyword"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::provider::{Header, ProviderId, ProviderOptions};
    use crate::providers::testkit::{self, Req};
    use crate::secret::Secret;
    use proptest::prelude::*;

    const TOKEN: &str = "mgi-7b1e55";

    /// The seed document's parameters, with a redirect's option and
    /// keyword and one extra parameter typed in the body editor.
    pub const INTERACTION: &str = r#"{"campaignId":"5f8d0a1b2c3d4e5f6a7b8c9d","label":"Welcome Message","phoneNumber":"+15551234567","date":"2024-03-23T21:41:44.47Z","response":"2","option":"2","keyword":"RAFFLE","store":"downtown"}"#;

    fn messangi() -> std::sync::Arc<dyn Provider> {
        testkit::provider(ProviderOptions::bare(ProviderId::Messangi), TOKEN)
    }

    #[test]
    fn interaction_decodes_to_a_campaign_event() {
        let p = messangi();
        let req = testkit::signed(&*p, INTERACTION);
        assert_eq!(req.headers["x-messangi-token"], TOKEN);
        let events = testkit::receive(&*p, decode, &req).unwrap();
        assert_eq!(events[0].kind, "campaign_interaction");
        assert_eq!(
            events[0].payload,
            Payload::Campaign(CampaignEvent {
                campaign_id: Some("5f8d0a1b2c3d4e5f6a7b8c9d".into()),
                label: Some("Welcome Message".into()),
                contact: Contact {
                    id: None,
                    phone: Some("+15551234567".into()),
                    name: None
                },
                response: Some("2".into()),
                chosen_option: Some("2".into()),
                keyword: Some("RAFFLE".into()),
            })
        );
        assert!(events[0].raw_json.contains(r#""store":"downtown""#));
        // Without the redirect, no option or keyword: still a campaign event.
        let plain = r#"{"campaignId":"c1","label":"Welcome Message","phoneNumber":"+1","date":"2024-03-23T21:41:44.47Z","response":"hi"}"#;
        let events = testkit::receive(&*p, decode, &testkit::signed(&*p, plain)).unwrap();
        let Payload::Campaign(c) = &events[0].payload else {
            panic!()
        };
        assert_eq!((c.chosen_option.as_ref(), c.keyword.as_ref()), (None, None));
        let other =
            testkit::receive(&*p, decode, &testkit::signed(&*p, r#"{"ping":true}"#)).unwrap();
        assert_eq!(
            (other[0].kind.as_str(), &other[0].payload),
            ("messangi", &Payload::Other)
        );
    }

    #[test]
    fn several_custom_headers_all_checked() {
        let p = testkit::provider(
            ProviderOptions::Messangi(TokenOptions {
                header: Some(Header {
                    name: HeaderName::from_static("x-api-key"),
                    written: "X-Api-Key".to_owned(),
                }),
                headers: vec![(
                    HeaderName::from_static("x-client"),
                    Secret::new(&b"acme"[..]),
                )],
            }),
            TOKEN,
        );
        let req = testkit::signed(&*p, INTERACTION);
        assert!(p.verify(&req.request()).is_ok());
        let wrong = req.clone().header("x-client", "acme2");
        assert!(matches!(
            p.verify(&wrong.request()),
            Err(Rejection::Unauthorized(_))
        ));
        let missing = Req {
            headers: {
                let mut h = req.headers.clone();
                h.remove("x-client");
                h
            },
            ..req
        };
        assert!(p.verify(&missing.request()).is_err());
    }

    proptest! {
        /// The body is not signed, only the headers prove anything: every
        /// change to a proof header is refused.
        #[test]
        fn header_mutations_are_refused(mutation in testkit::header_mutation()) {
            let p = testkit::provider(ProviderOptions::Messangi(TokenOptions { header: None, headers: vec![(HeaderName::from_static("x-client"), Secret::new(&b"acme"[..]))] }), TOKEN);
            let original = testkit::signed(&*p, INTERACTION);
            testkit::check_refused(&*p, decode, &original, &mutation, |a, b| {
                // Surrounding whitespace is not part of a header value.
                let trimmed = |r: &Req, h: &str| r.headers.get(h).map(|v| v.as_bytes().trim_ascii().to_vec());
                ["x-messangi-token", "x-client"].iter().all(|h| trimmed(a, h) == trimmed(b, h))
            })?;
        }

        #[test]
        fn arbitrary_requests_never_panic(req in testkit::arbitrary_request()) {
            testkit::exercise(&*messangi(), decode, &req);
        }
    }
}
