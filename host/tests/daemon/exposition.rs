//! A strict reader of the Prometheus / OpenMetrics text exposition
//! format, so that a test fails on any line a scraper would refuse.

use std::collections::{BTreeMap, HashSet};

use crate::harness::Daemon;

/// Samples by `name{label="value",...}` (labels as written), each value.
pub type Samples = BTreeMap<String, f64>;

const TYPES: [&str; 8] = [
    "counter",
    "gauge",
    "histogram",
    "gaugehistogram",
    "summary",
    "info",
    "stateset",
    "unknown",
];
const SUFFIXES: [&str; 7] = [
    "", "_total", "_created", "_bucket", "_count", "_sum", "_info",
];

fn is_name(s: &str, colons: bool) -> bool {
    let mut chars = s.chars();
    let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':');
    chars.next().is_some_and(first_ok) && chars.all(|c| first_ok(c) || c.is_ascii_digit())
}

/// Parses `text`, panicking with the line at the first violation.
pub fn parse(text: &str) -> Samples {
    let mut samples = Samples::new();
    let mut families = HashSet::new();
    let mut saw_eof = false;
    for line in text.lines() {
        assert!(!saw_eof, "content after # EOF: {line:?}");
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (kind, name, rest) = (parts.next(), parts.next(), parts.next());
            let name = name.unwrap_or_else(|| panic!("metadata without a name: {line:?}"));
            assert!(is_name(name, true), "bad metric name: {line:?}");
            match kind {
                Some("TYPE") => {
                    let kind = rest.unwrap_or_default();
                    assert!(TYPES.contains(&kind), "unknown type: {line:?}");
                    assert!(families.insert(name.to_owned()), "TYPE twice: {line:?}");
                }
                Some("HELP") | Some("UNIT") => {}
                _ => panic!("unknown metadata line: {line:?}"),
            }
            continue;
        }
        // An exemplar follows its sample after ` # `.
        let line = line.split_once(" # ").map_or(line, |(sample, _)| sample);
        let (series, value) = match line.find('{') {
            Some(open) => {
                let close = line
                    .rfind('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line:?}"));
                check_labels(&line[open + 1..close], line);
                (&line[..=close], line[close + 1..].trim_start())
            }
            None => line
                .split_once(' ')
                .unwrap_or_else(|| panic!("sample without a value: {line:?}")),
        };
        let name = series.split('{').next().unwrap();
        assert!(is_name(name, true), "bad metric name: {line:?}");
        assert!(
            SUFFIXES.iter().any(|suffix| name
                .strip_suffix(suffix)
                .is_some_and(|family| families.contains(family))),
            "sample of an undeclared family: {line:?}"
        );
        // A timestamp may follow the value.
        let value = value.split(' ').next().unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            other => other
                .parse()
                .unwrap_or_else(|_| panic!("bad value: {line:?}")),
        };
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "series twice: {line:?}"
        );
    }
    assert!(saw_eof, "no # EOF at the end");
    samples
}

/// `a="x",b="y\"z"`: names, quoting and escapes.
fn check_labels(labels: &str, line: &str) {
    let mut rest = labels;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad label: {line:?}"));
        assert!(is_name(name, false), "bad label name: {line:?}");
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => {
                    let escaped = chars.next().map(|(_, c)| c);
                    assert!(
                        matches!(escaped, Some('\\' | '"' | 'n')),
                        "bad escape: {line:?}"
                    );
                }
                Some((i, '"')) => break i,
                Some(_) => {}
                None => panic!("unterminated label value: {line:?}"),
            }
        };
        rest = &after[end + 1..];
        if let Some(next) = rest.strip_prefix(',') {
            rest = next;
        } else {
            assert!(rest.is_empty(), "junk after a label: {line:?}");
        }
    }
}

#[test]
fn the_reader_refuses_what_a_scraper_would() {
    let good = "# HELP x_total A count\n# TYPE x counter\nx_total{a=\"1\",b=\"q\\\"\"} 2\n# EOF\n";
    assert_eq!(parse(good)[r#"x_total{a="1",b="q\""}"#], 2.0);
    for bad in [
        "x_total 1\n# EOF\n",
        "# TYPE x counter\nx_total{a=1} 1\n# EOF\n",
        "# TYPE x counter\nx_total one\n# EOF\n",
        "# TYPE x counter\nx_total 1\n",
    ] {
        assert!(std::panic::catch_unwind(|| parse(bad)).is_err(), "{bad:?}");
    }
}

/// Where the daemon serves `/metrics`, as its `listening` line says.
pub fn metrics_url(daemon: &Daemon) -> String {
    let listening = daemon.wait_for_log(|l| l["message"] == "listening");
    format!(
        "http://{}/metrics",
        listening["metrics_addr"].as_str().unwrap()
    )
}

pub async fn scrape(client: &reqwest::Client, url: &str) -> Samples {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    parse(&response.text().await.unwrap())
}
