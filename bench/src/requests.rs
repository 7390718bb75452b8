//! The requests the load generator sends: realistic provider payloads,
//! each with its own ids so that no request is a duplicate of another, and
//! signed by wirehook's own providers exactly as a route verifies them.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::anyhow;
use wirehook::config::provider::{ProviderId, ProviderOptions};
use wirehook::providers::{self, Provider, ProviderConfig, Signed};
use wirehook::secret::Secret;

/// The order numbers asked about, in turn: three known ones and one not.
const ORDERS: [&str; 4] = ["CU001", "CU002", "CU003", "CU404"];

/// Which provider's requests to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A goflow "Call Webhook" asking for an order's status, with
    /// `Authorization: Token <secret>`.
    Goflow,
    /// A Truora WhatsApp Flows event whose variables name an order: the
    /// body is an HS256 JWT.
    Truora,
    /// A JSON event of type `order.status` naming an order, signed for
    /// the generic `hmac` provider with its defaults: `X-Signature`, the
    /// hex HMAC-SHA256 of the body.
    Hmac,
}

/// Builds request `sequence` of connection `connection` for one of `paths`.
pub struct Requests {
    kind: Kind,
    provider: Arc<dyn Provider>,
    paths: Vec<String>,
    /// Keeps ids unique across runs against the same store.
    run: u128,
}

impl Requests {
    pub fn new(kind: Kind, secret: &str, paths: Vec<String>) -> anyhow::Result<Self> {
        if paths.is_empty() {
            return Err(anyhow!("no path to send to"));
        }
        let id = match kind {
            Kind::Goflow => "goflow",
            Kind::Truora => "truora",
            Kind::Hmac => "hmac",
        };
        let provider = bare_provider(id, secret)?;
        Ok(Self {
            kind,
            provider,
            paths,
            run: crate::load::epoch_ms(),
        })
    }

    /// The path of request `sequence`: the paths in turn.
    pub fn path(&self, sequence: u64) -> &str {
        &self.paths[(sequence % self.paths.len() as u64) as usize]
    }

    /// The order request `sequence` asks about: the orders in turn.
    pub fn order(&self, sequence: u64) -> &'static str {
        ORDERS[(sequence % ORDERS.len() as u64) as usize]
    }

    pub fn next(
        &self,
        connection: usize,
        sequence: u64,
        now: SystemTime,
    ) -> anyhow::Result<Signed> {
        let id = format!("{}-{connection}-{sequence}", self.run);
        let order = self.order(sequence);
        let payload = match self.kind {
            Kind::Goflow => serde_json::json!({
                "contact": {"uuid": format!("c-{id}"), "name": "Ben Haggerty", "urn": "tel:+12065551212"},
                "flow": {"uuid": "5d4e7c0a-4f0e-4b8e-9d43-8f1b3c2a9e10", "name": "Order Status Checker"},
                "run": {"uuid": format!("r-{id}")},
                "results": {"order": {"value": order, "category": "Has Text"}},
                "input": {"text": order},
            }),
            Kind::Truora => serde_json::json!({
                "event_id": format!("ev-{id}"),
                "event": "whatsapp_flow.succeeded",
                "flow_id": "IPF1a2b3c4d",
                "flow_name": "Order status",
                "user_id": format!("u-{id}"),
                "phone_number": "+573001234567",
                "variables": {"order": order},
            }),
            Kind::Hmac => serde_json::json!({
                "type": "order.status",
                "id": format!("evt-{id}"),
                "created_at": "2026-01-15T09:30:00Z",
                "order": order,
                "customer": {"id": format!("cus-{id}"), "phone": "+12065551212"},
            }),
        };
        self.provider
            .sign(payload.to_string().as_bytes(), now)
            .map_err(|reason| anyhow!("cannot sign: {reason}"))
    }
}

/// Provider `id` as a route with nothing but `secret` builds it: what the
/// load and the attack sign with.
pub fn bare_provider(id: &str, secret: &str) -> anyhow::Result<Arc<dyn Provider>> {
    let id: ProviderId = id.parse()?;
    providers::build(&ProviderConfig {
        options: &ProviderOptions::bare(id),
        secret: Some(Secret::new(secret.as_bytes())),
        slow_checks: providers::SlowChecks::default(),
    })
    .map_err(|issue| anyhow!("{}: {}", issue.field, issue.reason))
}
