//! The log's setup: lines to stderr, human-readable or JSON, filtered by
//! `RUST_LOG` or `[log] level`. Values logged come from requests and
//! plugins, so neither format lets one break a line or reach a terminal
//! as control sequences: the human format escapes control characters in
//! every field ([`SafeFields`]), JSON escapes what serde_json leaves raw.
//! Colours only go to a terminal, and never when `NO_COLOR` is set.

use std::fmt;
use std::io::{self, IsTerminal as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::{FilterExt as _, filter_fn};
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogFormat, TelemetryConfig};
use crate::text;

/// Installs the global subscriber: `RUST_LOG` if set, else `level`, else
/// `info`, and the OpenTelemetry exporter when `telemetry` names a
/// collector. The log shows events alone: spans are the exporter's.
pub fn init(
    format: LogFormat,
    level: Option<&str>,
    telemetry: &TelemetryConfig,
) -> Option<crate::telemetry::Telemetry> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level.unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = filter.and(filter_fn(|meta| !meta.is_span()));
    let log = match format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .fmt_fields(SafeFields)
            .with_ansi(colour(
                io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .with_writer(io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(|| JsonStderr)
            .with_filter(filter)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(log);
    match crate::telemetry::layer(telemetry) {
        Ok(Some((exporter, telemetry))) => {
            registry.with(exporter).init();
            Some(telemetry)
        }
        Ok(None) => {
            registry.init();
            None
        }
        Err(e) => {
            registry.init();
            tracing::error!("telemetry: no spans are exported: {e:#}");
            None
        }
    }
}

/// Colour codes only for a terminal, and not when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Formats an event's or span's fields as `message name=value ...` with
/// every control character escaped. A value that could be mistaken for
/// more than one (it holds whitespace, `=` or `"`) is quoted.
pub struct SafeFields;

impl<'writer> FormatFields<'writer> for SafeFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = SafeVisitor {
            writer,
            result: Ok(()),
            first: true,
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct SafeVisitor<'writer> {
    writer: Writer<'writer>,
    result: fmt::Result,
    first: bool,
}

impl SafeVisitor<'_> {
    fn field(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        self.result = self.write(field.name(), value);
    }

    fn write(&mut self, name: &str, value: &str) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(' ')?;
        }
        if name == "message" {
            return text::write_escaped(&mut self.writer, value);
        }
        // `r#type` is how a field named after a keyword is spelled.
        let name = name.strip_prefix("r#").unwrap_or(name);
        write!(self.writer, "{name}=")?;
        let ambiguous =
            value.is_empty() || value.contains(|c: char| c.is_whitespace() || c == '=' || c == '"');
        if ambiguous && !is_quoted_literal(value) {
            // Debug quotes the value and escapes quotes and backslashes in
            // it; what it leaves is escaped on the way out.
            text::write_escaped(&mut self.writer, &format!("{value:?}"))
        } else {
            text::write_escaped(&mut self.writer, value)
        }
    }
}

/// Whether `value` is one string literal as Debug writes it (a `?value`
/// field of a string): quoted, with every quote inside escaped.
fn is_quoted_literal(value: &str) -> bool {
    let Some(inner) = value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return false;
    };
    let mut escaped = false;
    for c in inner.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return false,
            _ => {}
        }
    }
    !escaped
}

impl Visit for SafeVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here too, their Debug being their Display.
        self.field(field, &format!("{value:?}"));
    }
}

/// Stderr for JSON lines, with the characters serde_json leaves raw
/// escaped (see [`text::escape_json`]). The subscriber writes each line
/// whole, in one call.
struct JsonStderr;

impl io::Write for JsonStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(line) => io::stderr().write_all(text::escape_json(line).as_bytes())?,
            Err(_) => io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn quoted_literals_are_told_from_values_that_pretend() {
        assert!(is_quoted_literal(r#""a \" b""#));
        assert!(!is_quoted_literal(r#""a" forged="b""#));
        assert!(!is_quoted_literal(r#""a\""#));
        assert!(!is_quoted_literal("plain"));
    }

    #[test]
    fn colour_only_for_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
    }

    /// What a human-format subscriber writes for one event.
    fn human_line(log: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl io::Write for Buffer {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(SafeFields)
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn human_lines_escape_every_field_and_stay_one_line() {
        let id = "m1\x1b]0;owned\x07\x1b[2J\nWARN forged\u{9b}31m\u{202e}";
        let line = human_line(|| {
            let plugin = "probe";
            tracing::warn!(plugin, delivery_id = %id, kind = ?id, "seen {id}");
        });
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(line.ends_with('\n'));
        assert!(
            !line.contains(['\x1b', '\x07', '\u{9b}', '\u{202e}']),
            "{line:?}"
        );
        assert!(
            line.contains(r"seen m1\u{1b}]0;owned\u{7}\u{1b}[2J\nWARN forged\u{9b}31m\u{202e}"),
            "{line}"
        );
        assert!(line.contains(" plugin=probe "), "{line}");
        // A Debug field is quoted once, by Debug.
        assert!(line.contains(r#" kind="m1\u{1b}]0;owned"#), "{line}");
        // A value with a space is quoted: it cannot pass for further fields.
        assert!(
            line.contains(
                r#"delivery_id="m1\u{1b}]0;owned\u{7}\u{1b}[2J\nWARN forged\u{9b}31m\u{202e}""#
            ),
            "{line}"
        );
    }
}
