//! `[telemetry]`: where OpenTelemetry traces go. Read once at start, like
//! `[log]`: the tracing layer is installed before the rest is loaded.

use serde::Deserialize;

use super::Problem;

/// `[telemetry]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// An OTLP/HTTP collector, `http://host:4318`; spans go to
    /// `<endpoint>/v1/traces`. Unset: no span is made at all.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// The share of new traces recorded, 0 to 1; a trace begun upstream
    /// (a trusted proxy's `traceparent`) keeps its own decision.
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "wirehook".to_owned(),
            sample_ratio: 1.0,
        }
    }
}

impl TelemetryConfig {
    /// What types cannot say; the endpoint itself is never repeated.
    pub(super) fn problems(&self, problems: &mut Vec<Problem>) {
        if let Some(endpoint) = &self.otlp_endpoint {
            match url::Url::parse(endpoint) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
                _ => problems.push(Problem::new(
                    "telemetry.otlp_endpoint",
                    "must be an http:// or https:// URL",
                )),
            }
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            problems.push(Problem::new(
                "telemetry.sample_ratio",
                "must be between 0 and 1",
            ));
        }
        if self.service_name.is_empty() {
            problems.push(Problem::new("telemetry.service_name", "must not be empty"));
        }
    }
}
