//! The console's HTML: the page frame, escaping, and the charts drawn as
//! inline SVG on the server. Everything the store holds came from
//! requests and plugins, so every value goes through [`esc`] where it is
//! written; markup is only ever this module's and [`super::console`]'s
//! literals.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use super::stats::RouteStats;

/// `text` with the characters HTML gives meaning to replaced by
/// entities: safe in element content and in quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A moment as RFC 3339, to the second.
pub fn time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// An event's attempts as the items of its timeline, oldest first: when
/// each started, how long it took, how it ended, and which plugin failed
/// it with what error.
pub fn attempts(list: &serde_json::Value) -> String {
    let mut out = String::new();
    for a in list.as_array().map(Vec::as_slice).unwrap_or_default() {
        let started = a["started_at_ms"].as_u64().unwrap_or_default();
        let took = a["finished_at_ms"]
            .as_u64()
            .unwrap_or_default()
            .saturating_sub(started);
        let outcome = esc(a["outcome"].as_str().unwrap_or(""));
        let _ = write!(
            out,
            r#"<li class="attempt">#{} at {}, {took} ms: <span class="status status-{outcome}">{outcome}</span>"#,
            a["number"].as_u64().unwrap_or_default(),
            time(started),
        );
        if let Some(plugin) = a["plugin"].as_str() {
            let _ = write!(
                out,
                " by plugin <span class=\"mono\">{}</span>",
                esc(plugin)
            );
        }
        if let Some(error) = a["error"].as_str() {
            let _ = write!(out, " <span class=\"error\">{}</span>", esc(error));
        }
        out.push_str("</li>\n");
    }
    out
}

/// A whole page: the navigation, `body`, and the console's script and
/// style. `csrf` is the session's token, which the script sends with the
/// API calls that change state.
pub fn page(title: &str, csrf: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{csrf}">
<title>{title} · wirehook</title>
<link rel="stylesheet" href="/static/console.css">
<script src="/static/console.js" defer></script>
</head>
<body>
<header>
<strong>wirehook</strong>
<nav>
<a href="/">Events</a>
<a href="/dead-letters">Dead letters</a>
<a href="/routes">Routes &amp; plugins</a>
<a href="/charts">Last hour</a>
</nav>
<form method="post" action="/logout" class="logout">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit">Log out</button>
</form>
</header>
<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"#,
        csrf = esc(csrf),
        title = esc(title),
    )
}

/// A bar chart of one route's requests per bucket, failures stacked in
/// red, and its p50/p99 latency as lines when known.
pub fn chart(route: &RouteStats) -> String {
    const W: f64 = 480.0;
    const H: f64 = 120.0;
    let n = route.buckets.len().max(1) as f64;
    let most = (route.buckets.iter().map(|b| b.requests).max())
        .unwrap_or(0)
        .max(1) as f64;
    let slowest = (route.buckets.iter().filter_map(|b| b.p99_ms))
        .fold(0.0_f64, f64::max)
        .max(0.001);
    let bar = W / n;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{} last hour">"#,
        esc(&route.route)
    );
    for (i, b) in route.buckets.iter().enumerate() {
        let x = i as f64 * bar;
        let h = b.requests as f64 / most * (H - 10.0);
        let f = b.failures as f64 / most * (H - 10.0);
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#4a7bd0"><title>{} requests, {} failed</title></rect>"##,
            H - h,
            bar - 2.0,
            b.requests,
            b.failures
        );
        if f > 0.0 {
            let _ = write!(
                svg,
                r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{f:.1}" fill="#d04a4a"/>"##,
                H - f,
                bar - 2.0
            );
        }
    }
    for (pick, colour) in [(0, "#2a9d4a"), (1, "#e0a020")] {
        let points: Vec<String> = (route.buckets.iter().enumerate())
            .filter_map(|(i, b)| {
                let ms = if pick == 0 { b.p50_ms } else { b.p99_ms }?;
                let y = H - ms / slowest * (H - 10.0);
                Some(format!("{:.1},{y:.1}", i as f64 * bar + bar / 2.0))
            })
            .collect();
        if points.len() > 1 {
            let _ = write!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                points.join(" ")
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_text() {
        assert_eq!(
            esc(r#""><img src=x onerror=alert(1)>&'"#),
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&amp;&#39;"
        );
    }
}
