//! Shopify webhooks: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256 of the
//! body>` with the app's client secret (or the shop's webhook signing
//! secret); JSON bodies only.
//!
//! Shopify signs nothing but the body and sends no timestamp, so a
//! request recorded once can be replayed as it is: the delivery id
//! (`X-Shopify-Webhook-Id`, the same on every retry) is what keeps a
//! replay from running plugins twice, through wirehook's deduplication.
//!
//! The kind is `X-Shopify-Topic` (`orders/create`) and the delivery id
//! `X-Shopify-Webhook-Id`, both headers: they travel in [`Verified`], and
//! the body decodes to one event. A body of the `orders/*` topics is an
//! order, which is what it decodes to (known by its `order_number`, which
//! only an order carries: `orders/delete` sends the id alone, and decodes
//! to `other` like every other topic).

use std::time::SystemTime;

use axum::http::HeaderName;
use serde_json::Value;

use super::mac::BodySignature;
use super::{Provider, Rejection, Request, SignError, Signed, Verified, json};
use crate::algorithm::{HmacAlgorithm, SignatureEncoding};
use crate::event::{Contact, Decoded, LineItem, Order, Payload};
use crate::secret::Secret;

const SIGNATURE: &str = "X-Shopify-Hmac-Sha256";
const TOPIC: &str = "X-Shopify-Topic";
const WEBHOOK_ID: &str = "X-Shopify-Webhook-Id";
/// The kind of a body decoded without its header; the header's kind
/// replaces it.
const KIND: &str = "shopify";

pub fn build(secret: Secret) -> Box<dyn Provider> {
    Box::new(Shopify {
        signature: BodySignature {
            header: HeaderName::from_static("x-shopify-hmac-sha256"),
            header_text: SIGNATURE.to_owned(),
            algorithm: HmacAlgorithm::Sha256,
            encoding: SignatureEncoding::Base64,
            prefix: String::new(),
        },
        secret,
    })
}

struct Shopify {
    signature: BodySignature,
    secret: Secret,
}

impl Provider for Shopify {
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        self.signature.verify(&self.secret, req)?;
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| Rejection::bad_request(format!("missing `{name}` header")))
        };
        Ok(Verified {
            delivery_id: Some(header(WEBHOOK_ID)?),
            kind: Some(header(TOPIC)?),
            ..Verified::body(req)
        })
    }

    /// The topic is the payload's `"x_shopify_topic"` member if it has one
    /// (Shopify's own bodies never do), else `orders/create`.
    fn sign(&self, payload: &[u8], now: SystemTime) -> Result<Signed, SignError> {
        let body: Value =
            serde_json::from_slice(payload).map_err(|e| SignError::NotJson(Some(e.to_string())))?;
        let topic =
            json::text(&body, &["x_shopify_topic"]).unwrap_or_else(|| "orders/create".to_owned());
        let mut signed = self.signature.sign(&self.secret, payload);
        let nanos = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        signed.headers.push((TOPIC.to_owned(), topic));
        signed
            .headers
            .push((WEBHOOK_ID.to_owned(), format!("{:032x}", nanos)));
        Ok(signed)
    }
}

/// Decodes a verified document into its one event, under [`KIND`]; see
/// [`super::Decode`]. The header's kind replaces it.
pub(super) fn decode(document: &[u8]) -> Result<Vec<Decoded>, Rejection> {
    let body = json::object(document)?;
    let payload = order(&body).map_or(Payload::Other, Payload::Order);
    Ok(vec![Decoded {
        kind: KIND.to_owned(),
        payload,
        raw_json: json::document_text(document),
        provider_id: None,
    }])
}

/// The order `body` is, if it is one. Amounts stay Shopify's decimal
/// strings.
fn order(body: &Value) -> Option<Order> {
    let number = json::text(body, &["order_number"])?;
    let id = json::text(body, &["id"])?;
    let customer = body.get("customer").unwrap_or(&Value::Null);
    let name = [
        json::text(customer, &["first_name"]),
        json::text(customer, &["last_name"]),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let contact = Contact {
        id: json::text(customer, &["id"]),
        phone: json::text(customer, &["phone"]).or_else(|| json::text(body, &["phone"])),
        name: (!name.is_empty()).then_some(name),
    };
    let line_items = body
        .get("line_items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|line| LineItem {
            id: json::text(line, &["id"]),
            title: json::text(line, &["title", "name"]).unwrap_or_default(),
            sku: json::text(line, &["sku"]),
            quantity: line
                .get("quantity")
                .and_then(Value::as_u64)
                .map_or(0, |q| u32::try_from(q).unwrap_or(u32::MAX)),
            price: json::text(line, &["price"]),
        })
        .collect();
    Some(Order {
        id,
        number: Some(number),
        financial_status: json::text(body, &["financial_status"]),
        fulfillment_status: json::text(body, &["fulfillment_status"]),
        currency: json::text(body, &["currency"]),
        total: json::text(body, &["total_price"]),
        subtotal: json::text(body, &["subtotal_price"]),
        tax: json::text(body, &["total_tax"]),
        contact,
        line_items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::provider::{ProviderId, ProviderOptions};
    use crate::providers::testkit::{self, Req};
    use proptest::prelude::*;

    const SECRET: &str = "hush";

    fn provider() -> std::sync::Arc<dyn Provider> {
        testkit::provider(ProviderOptions::bare(ProviderId::Shopify), SECRET)
    }

    /// An `orders/create` body modelled on the sample Shopify's webhook
    /// reference shows for that topic (shopify.dev, Webhooks reference,
    /// `orders/create`), trimmed to the fields wirehook reads.
    const ORDER: &str = r##"{"id":820982911946154508,"email":"jon@example.com","order_number":1234,"name":"#9999","currency":"USD","financial_status":"voided","fulfillment_status":"pending","subtotal_price":"388.00","total_price":"403.00","total_tax":"0.00","phone":null,"customer":{"id":115310627314723954,"email":"john@example.com","first_name":"John","last_name":"Smith","phone":null},"line_items":[{"id":866550311766439020,"title":"Aviator sunglasses","quantity":1,"sku":"SKU2006-001","price":"199.00"},{"id":141249953214522974,"title":"Mid-century lounger","quantity":1,"sku":"SKU2006-020","price":"199.00"}]}"##;

    /// Shopify publishes no signed example: this digest was computed
    /// apart from wirehook, with OpenSSL, as Shopify's docs describe it
    /// (`printf %s BODY | openssl dgst -sha256 -hmac hush -binary | base64`).
    #[test]
    fn a_signature_computed_apart_from_wirehook() {
        let p = provider();
        let req = Req::post(&Signed {
            headers: vec![
                (
                    SIGNATURE.to_owned(),
                    "CJM1t8WsY+TMSDBwhdBSl+cUUCeNO8mYC03jPikT4jU=".to_owned(),
                ),
                (TOPIC.to_owned(), "orders/create".to_owned()),
                (WEBHOOK_ID.to_owned(), "b54557e4-bdd9-4b37-8a5f".to_owned()),
            ],
            body: br#"{"id":820982911946154508,"order_number":1234}"#.to_vec(),
        });
        assert!(p.verify(&req.request()).is_ok());
        let mut other = req.clone();
        other.body = br#"{"id":820982911946154508,"order_number":1235}"#.to_vec();
        assert!(matches!(
            p.verify(&other.request()),
            Err(Rejection::Unauthorized(_))
        ));
    }

    #[test]
    fn an_order_decodes_to_the_typed_order() {
        let p = provider();
        let req = testkit::signed(&*p, ORDER).header("x-shopify-topic", "orders/paid");
        let verified = p.verify(&req.request()).unwrap();
        assert_eq!(verified.kind.as_deref(), Some("orders/paid"));
        assert!(verified.delivery_id.is_some());
        let events = testkit::receive(&*p, decode, &req).unwrap();
        let Payload::Order(order) = &events[0].payload else {
            panic!("{:?}", events[0].payload);
        };
        assert_eq!(order.id, "820982911946154508");
        assert_eq!(order.number.as_deref(), Some("1234"));
        assert_eq!(order.financial_status.as_deref(), Some("voided"));
        assert_eq!(order.fulfillment_status.as_deref(), Some("pending"));
        assert_eq!(
            (order.currency.as_deref(), order.total.as_deref()),
            (Some("USD"), Some("403.00"))
        );
        assert_eq!(
            (order.subtotal.as_deref(), order.tax.as_deref()),
            (Some("388.00"), Some("0.00"))
        );
        assert_eq!(order.contact.id.as_deref(), Some("115310627314723954"));
        assert_eq!(order.contact.name.as_deref(), Some("John Smith"));
        assert_eq!(order.contact.phone, None);
        assert_eq!(order.line_items.len(), 2);
        assert_eq!(order.line_items[0].title, "Aviator sunglasses");
        assert_eq!(order.line_items[0].sku.as_deref(), Some("SKU2006-001"));
        assert_eq!(order.line_items[0].quantity, 1);
        assert_eq!(order.line_items[1].price.as_deref(), Some("199.00"));
        // The store finds it again from the raw JSON, under the topic.
        assert_eq!(
            crate::providers::decode_again(decode, "orders/paid", &events[0].raw_json),
            Ok(events[0].payload.clone())
        );
    }

    #[test]
    fn other_topics_are_other_and_the_headers_are_required() {
        let p = provider();
        let deleted =
            testkit::signed(&*p, r#"{"id":450789469}"#).header("x-shopify-topic", "orders/delete");
        let events = testkit::receive(&*p, decode, &deleted).unwrap();
        assert_eq!(events[0].payload, Payload::Other);
        let product = testkit::signed(&*p, r#"{"id":1,"title":"Boots"}"#)
            .header("x-shopify-topic", "products/update");
        let events = testkit::receive(&*p, decode, &product).unwrap();
        assert_eq!(events[0].payload, Payload::Other);
        for header in ["x-shopify-topic", "x-shopify-webhook-id"] {
            let mut missing = product.clone();
            missing.headers.remove(header);
            assert!(matches!(
                p.verify(&missing.request()),
                Err(Rejection::BadRequest(_))
            ));
        }
        let form = product
            .clone()
            .header("content-type", "application/x-www-form-urlencoded");
        assert!(matches!(
            p.verify(&form.request()),
            Err(Rejection::UnsupportedMediaType(_))
        ));
    }

    proptest! {
        #[test]
        fn mutations_are_refused(data in "[ -~]{0,40}", mutation in testkit::mutation()) {
            let p = provider();
            let body = serde_json::json!({"id": 1, "order_number": 1001, "note": data}).to_string();
            let original = testkit::signed(&*p, &body);
            testkit::check_refused(&*p, decode, &original, &mutation, |a, b| {
                // Topic and webhook id are not signed (Shopify signs the
                // body alone); base64 padding is a spelling, not a change.
                let digest = |r: &Req| {
                    let value = r.headers.get("x-shopify-hmac-sha256")?;
                    crate::providers::mac::decode(SignatureEncoding::Base64, value.as_bytes())
                };
                a.body == b.body && digest(a).is_some() && digest(a) == digest(b)
            })?;
        }

        #[test]
        fn arbitrary_requests_never_panic(req in testkit::arbitrary_request()) {
            let p = provider();
            testkit::exercise(&*p, decode, &req);
        }

        /// Whatever an order's fields hold, it decodes without a panic and
        /// again to the same payload from its raw JSON.
        #[test]
        fn any_order_round_trips(
            number in any::<u64>(),
            status in proptest::option::of("[a-z_ ]{0,12}"),
            quantity in any::<i64>(),
            title in "\\PC{0,20}",
        ) {
            let p = provider();
            let body = serde_json::json!({
                "id": 7, "order_number": number, "financial_status": status,
                "line_items": [{"title": title, "quantity": quantity}],
            })
            .to_string();
            let req = testkit::signed(&*p, &body);
            let events = testkit::receive(&*p, decode, &req).unwrap();
            let Payload::Order(order) = &events[0].payload else {
                panic!("not an order: {body}");
            };
            let number = number.to_string();
            prop_assert_eq!(order.number.as_deref(), Some(number.as_str()));
            prop_assert_eq!(order.line_items.len(), 1);
        }
    }
}
