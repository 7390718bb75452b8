//! goflow / RapidPro-style flow engines (ilhapush and others): the "Call
//! Webhook" step POSTs the run's contact, flow, results and input, and
//! waits for a JSON reply that becomes `@webhook` / `@extra` in the flow.
//!
//! Proof: a shared token in a header (`Authorization: Token <secret>` by
//! default, or the route's `header`) or a `token` query parameter.
//!
//! The step sends JSON unless the flow is written to send a form; a route
//! with `form = true` accepts `application/x-www-form-urlencoded` too, its
//! fields becoming the JSON object that is the document ([`form`]). The
//! token is checked first either way: the body itself proves nothing.

use std::time::SystemTime;

use axum::http::header::AUTHORIZATION;

use serde_json::value::RawValue;

use super::token::SharedToken;
use super::{ConfigIssue, Provider, Rejection, Request, SignError, Signed, Verified};
use super::{form, json};
use crate::config::provider::GoflowOptions;
use crate::event::{Contact, Decoded, FlowEvent, FlowStage, Payload};
use crate::secret::Secret;

/// The event name goflow itself does not send; wirehook names the step.
const KIND: &str = "call_webhook";

pub fn build(options: &GoflowOptions, secret: Secret) -> Result<Box<dyn Provider>, ConfigIssue> {
    let token = SharedToken::new(&options.token, AUTHORIZATION, secret)?;
    Ok(if options.form {
        Box::new(FormOrJson(token))
    } else {
        Box::new(token)
    })
}

/// A goflow route with `form = true`.
struct FormOrJson(SharedToken);

impl Provider for FormOrJson {
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        self.0.check(req)?;
        Ok(Verified::document(form::document(req)?))
    }

    /// A JSON object payload is sent as a form, one field per member, as
    /// such a route receives it.
    fn sign(&self, payload: &[u8], _now: SystemTime) -> Result<Signed, SignError> {
        let mut headers = self.0.headers()?;
        headers.push((
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ));
        Ok(Signed {
            headers,
            body: form::from_json(payload)?.into_bytes(),
        })
    }
}

/// Decodes a verified document into its events; see [`super::Decode`].
pub(super) fn decode(document: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    // Borrowed members, not a `Value`: a call carries the whole run
    // (contact, flow, results, input, run...) and only a few fields
    // of it are read.
    let text = json::body_text(document)?;
    let [contact, flow, results, input] =
        json::pick(&text, ["contact", "flow", "results", "input"])?;
    let [flow_id, flow_name] = flow
        .and_then(|flow| json::pick_of(flow, ["uuid", "name"]))
        .unwrap_or_default();
    let event = FlowEvent {
        flow_id: flow_id.and_then(json::raw_scalar_text),
        flow_name: flow_name.and_then(json::raw_scalar_text),
        stage: FlowStage::Started,
        contact: contact_of(contact),
        variables: variables(results, input),
    };
    Ok(vec![Decoded {
        kind: KIND.to_owned(),
        payload: Payload::FlowCall(event),
        // The verified text itself, not the mended one.
        raw_json: String::from_utf8_lossy(document).into_owned(),
        provider_id: None,
    }])
}

fn contact_of(contact: Option<&RawValue>) -> Contact {
    let [id, urn, name] = contact
        .and_then(|contact| json::pick_of(contact, ["uuid", "urn", "name"]))
        .unwrap_or_default();
    Contact {
        id: id.and_then(json::raw_scalar_text),
        phone: urn
            .and_then(json::raw_scalar_text)
            .as_deref()
            .and_then(phone_of_urn),
        name: name.and_then(json::raw_scalar_text),
    }
}

/// `tel:+5511…` and `whatsapp:5511…` carry a phone number; other URN
/// schemes (telegram, facebook…) do not.
fn phone_of_urn(urn: &str) -> Option<String> {
    let (scheme, path) = urn.split_once(':')?;
    let number = path.split(['?', '#']).next()?;
    matches!(scheme, "tel" | "whatsapp").then(|| number.to_owned())
}

/// Each result by key (`@results.order` → `order`), then the input text
/// under `input`.
fn variables(results: Option<&RawValue>, input: Option<&RawValue>) -> Vec<(String, String)> {
    let mut variables = Vec::new();
    if let Some(results) = results.and_then(json::members_of) {
        for (key, result) in &results {
            let [value] = json::pick_of(result, ["value"]).unwrap_or_default();
            // Some engines flatten results to plain values.
            let value = json::raw_any_text(value.unwrap_or(result));
            variables.push((key.0.clone().into_owned(), value));
        }
    }
    if let Some(text) = input.and_then(|input| match json::pick_of(input, ["text"]) {
        Some([text]) => text.and_then(json::raw_scalar_text),
        None => json::raw_scalar_text(input),
    }) {
        variables.push(("input".to_owned(), text));
    }
    variables
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::provider::{ProviderId, ProviderOptions};
    use crate::providers::testkit;
    use serde_json::{Value, json};

    fn flow_of(body: Value) -> FlowEvent {
        let mut events = decode(body.to_string().as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        let again = crate::providers::decode_again(decode, &events[0].kind, &events[0].raw_json);
        assert_eq!(
            again.as_ref(),
            Ok(&events[0].payload),
            "decodes again from its raw JSON"
        );
        match events.remove(0).payload {
            Payload::FlowCall(flow) => flow,
            other => panic!("expected a flow call, got {other:?}"),
        }
    }

    #[test]
    fn call_webhook_body_becomes_a_flow_call() {
        let flow = flow_of(json!({
            "contact": {"uuid": "c-1", "name": "Ben Haggerty", "urn": "tel:+12065551212"},
            "flow": {"uuid": "f-1", "name": "Order Status Checker"},
            "results": {"order": {"value": "CU001", "category": "Has Text"}},
            "input": {"text": "CU001 please", "urn": "tel:+12065551212"}
        }));
        assert_eq!(flow.flow_id.as_deref(), Some("f-1"));
        assert_eq!(flow.flow_name.as_deref(), Some("Order Status Checker"));
        assert_eq!(flow.contact.phone.as_deref(), Some("+12065551212"));
        assert_eq!(flow.contact.name.as_deref(), Some("Ben Haggerty"));
        assert_eq!(
            flow.variables,
            vec![
                ("order".to_owned(), "CU001".to_owned()),
                ("input".to_owned(), "CU001 please".to_owned())
            ]
        );
    }

    #[test]
    fn missing_fields_are_none_not_errors() {
        let flow = flow_of(json!({}));
        assert_eq!(flow.contact, Contact::default());
        assert!(flow.variables.is_empty());
    }

    proptest::proptest! {
        /// Only the token proves anything (the body is not signed): every
        /// change to it is refused, but for its scheme's case and
        /// surrounding whitespace.
        #[test]
        fn token_mutations_are_refused(mutation in testkit::header_mutation()) {
            let p = testkit::provider(ProviderOptions::bare(ProviderId::Goflow), "flow-token-7f3a");
            let original = testkit::signed(&*p, r#"{"flow":{"uuid":"f"},"input":{"text":"CU001"}}"#);
            testkit::check_refused(&*p, decode, &original, &mutation, |a, b| {
                let presented = |r: &testkit::Req| {
                    let v = r.headers.get(AUTHORIZATION)?.as_bytes().to_ascii_lowercase();
                    Some(v.strip_prefix(b"token ").unwrap_or(&v).trim_ascii().to_vec())
                };
                presented(a) == presented(b)
            })?;
        }

        #[test]
        fn arbitrary_requests_never_panic(req in testkit::arbitrary_request()) {
            let p = testkit::provider(ProviderOptions::bare(ProviderId::Goflow), "flow-token-7f3a");
            testkit::exercise(&*p, decode, &req);
        }
    }

    /// A goflow body read over a parsed `Value`: the borrowed reading
    /// must agree with it.
    fn decode_as_value(body: &[u8]) -> Result<FlowEvent, String> {
        use crate::providers::json::{any_text, object, scalar_text, text};
        let body = object(body).map_err(|e| e.to_string())?;
        let null = Value::Null;
        let flow = body.get("flow").unwrap_or(&null);
        let contact = body.get("contact").unwrap_or(&null);
        let mut variables = Vec::new();
        if let Some(results) = body.get("results").and_then(Value::as_object) {
            for (key, result) in results {
                let value = result
                    .get("value")
                    .map_or_else(|| any_text(result), any_text);
                variables.push((key.clone(), value));
            }
        }
        if let Some(t) = body.get("input").and_then(|input| match input {
            Value::Object(_) => text(input, &["text"]),
            other => scalar_text(other),
        }) {
            variables.push(("input".to_owned(), t));
        }
        Ok(FlowEvent {
            flow_id: text(flow, &["uuid"]),
            flow_name: text(flow, &["name"]),
            stage: FlowStage::Started,
            contact: Contact {
                id: text(contact, &["uuid"]),
                phone: text(contact, &["urn"]).as_deref().and_then(phone_of_urn),
                name: text(contact, &["name"]),
            },
            variables,
        })
    }

    /// JSON text built from goflow's own keys and loose values: strings
    /// (escaped or not, empty), numbers, booleans, null, arrays, nested
    /// objects, repeated keys.
    fn loose_json() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let key = prop_oneof![
            Just("contact"),
            Just("flow"),
            Just("results"),
            Just("input"),
            Just("run"),
            Just("uuid"),
            Just("name"),
            Just("urn"),
            Just("text"),
            Just("value"),
            Just("order"),
            Just("category"),
            Just("\\u006frder"),
        ]
        .prop_map(|k| format!("\"{k}\""));
        let leaf = prop_oneof![
            Just("\"CU001\"".to_owned()),
            Just("\"\"".to_owned()),
            Just("\"tel:+1206\"".to_owned()),
            Just("\"a\\\"b\\u00e9\"".to_owned()),
            Just("12".to_owned()),
            Just("-0.50".to_owned()),
            Just("1e3".to_owned()),
            Just("true".to_owned()),
            Just("null".to_owned()),
            Just("[1,\"x\"]".to_owned()),
        ];
        leaf.prop_recursive(3, 24, 5, move |inner| {
            proptest::collection::vec((key.clone(), inner), 0..5).prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(k, v)| format!("{k} : {v}"))
                    .collect();
                format!("{{ {} }}", members.join(", "))
            })
        })
    }

    proptest::proptest! {
        #[test]
        fn borrowed_reading_agrees_with_values(body in loose_json()) {
            let borrowed = decode(body.as_bytes()).map(|mut events| {
                match events.remove(0).payload {
                    Payload::FlowCall(flow) => flow,
                    other => panic!("expected a flow call, got {other:?}"),
                }
            });
            let expected = decode_as_value(body.as_bytes());
            proptest::prop_assert_eq!(borrowed.map_err(|e| e.to_string()), expected, "{}", body);
        }
    }

    fn form_route(form: bool) -> std::sync::Arc<dyn Provider> {
        let options = crate::config::provider::GoflowOptions {
            form,
            ..Default::default()
        };
        testkit::provider(ProviderOptions::Goflow(options), "flow-token-7f3a")
    }

    #[test]
    fn a_form_is_accepted_only_where_the_route_says_so() {
        let body = "input=CU002&order=CU001&tag=a&tag=b";
        let form = testkit::Req::post(&Signed {
            headers: vec![
                (
                    "Authorization".to_owned(),
                    "Token flow-token-7f3a".to_owned(),
                ),
                (
                    "Content-Type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned(),
                ),
            ],
            body: body.as_bytes().to_vec(),
        });
        assert!(matches!(
            form_route(false).verify(&form.request()),
            Err(Rejection::UnsupportedMediaType(_))
        ));
        let p = form_route(true);
        let events = testkit::receive(&*p, decode, &form).unwrap();
        assert_eq!(
            events[0].raw_json,
            r#"{"input":"CU002","order":"CU001","tag":["a","b"]}"#
        );
        let Payload::FlowCall(flow) = &events[0].payload else {
            panic!("{:?}", events[0].payload)
        };
        assert_eq!(flow.variables, [("input".to_owned(), "CU002".to_owned())]);
        // JSON still passes on such a route; the token is still required.
        let json = testkit::signed(&*p, r#"{"input":{"text":"CU001"}}"#);
        assert_eq!(
            json.headers["content-type"],
            "application/x-www-form-urlencoded"
        );
        let plain = testkit::signed(&*form_route(false), r#"{"input":{"text":"CU001"}}"#);
        assert!(p.verify(&plain.request()).is_ok());
        let mut forged = form.clone();
        forged
            .headers
            .insert(AUTHORIZATION, "Token other".parse().unwrap());
        assert!(matches!(
            p.verify(&forged.request()),
            Err(Rejection::Unauthorized(_))
        ));
    }

    proptest::proptest! {
        /// On a `form = true` route, a form's fields reach the plugin as
        /// the JSON object of them, whatever they hold, and only the token
        /// proves anything.
        #[test]
        fn form_fields_become_the_document(
            pairs in proptest::collection::vec(("[a-z]{1,4}", "\\PC{0,8}"), 0..8),
            mutation in testkit::header_mutation(),
        ) {
            let p = form_route(true);
            let payload: serde_json::Map<String, Value> = pairs
                .iter()
                .map(|(name, value)| (name.clone(), Value::String(value.clone())))
                .collect();
            let original = testkit::signed(&*p, &Value::Object(payload.clone()).to_string());
            let events = testkit::receive(&*p, decode, &original).unwrap();
            let document: serde_json::Map<String, Value> =
                serde_json::from_str(&events[0].raw_json).unwrap();
            proptest::prop_assert_eq!(document, payload);
            testkit::check_refused(&*p, decode, &original, &mutation, |a, b| {
                let presented = |r: &testkit::Req| {
                    let v = r.headers.get(AUTHORIZATION)?.as_bytes().to_ascii_lowercase();
                    Some(v.strip_prefix(b"token ").unwrap_or(&v).trim_ascii().to_vec())
                };
                presented(a) == presented(b)
            })?;
        }
    }

    #[test]
    fn non_phone_urns_give_no_phone() {
        assert_eq!(phone_of_urn("telegram:1234"), None);
        assert_eq!(phone_of_urn("whatsapp:5511999"), Some("5511999".into()));
    }
}
