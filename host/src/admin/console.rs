//! The delivery console's pages: the event list (filters, search,
//! new events appearing as the script polls the API), an event with its
//! body, payload, reply and attempts, dead letters with bulk replay and
//! purge, routes and plugins, and the last hour per route. Forms that
//! change state carry the session's CSRF token.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::Value;

use super::api::{EventQuery, detail, page, routes_json};
use super::auth::Caller;
use super::html::{attempts, chart, esc, page as frame, time};
use super::login::{MAX_FORM, field, fields, forbidden};
use super::ops::{self, Selection};
use super::{Admin, authorize, body_bytes};
use crate::store::{Filter, Status};

/// Dead letters the page lists at most.
const DEAD_LETTERS_SHOWN: usize = 500;

pub(super) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("console.js"),
    )
        .into_response()
}

pub(super) async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("console.css"),
    )
        .into_response()
}

fn csrf_of(caller: &Caller) -> &str {
    match caller {
        Caller::Session(session) => &session.csrf,
        Caller::Bearer => "",
    }
}

/// A `<select>` of `options`, `chosen` selected, an empty "any" first.
fn select(name: &str, options: &[String], chosen: Option<&str>) -> String {
    let mut out =
        format!(r#"<select name="{name}" id="filter-{name}"><option value="">any {name}</option>"#);
    for option in options {
        let selected = if Some(option.as_str()) == chosen {
            " selected"
        } else {
            ""
        };
        out.push_str(&format!(
            r#"<option value="{0}"{selected}>{0}</option>"#,
            esc(option)
        ));
    }
    out.push_str("</select>");
    out
}

/// The rows of an event table.
fn rows(records: &[Value], checkboxes: bool) -> String {
    let mut out = String::new();
    for r in records {
        let id = r["id"].as_i64().unwrap_or_default();
        let text = |key: &str| esc(r[key].as_str().unwrap_or(""));
        let status = text("status");
        let check = if checkboxes {
            format!(r#"<td><input type="checkbox" name="id" value="{id}"></td>"#)
        } else {
            String::new()
        };
        out.push_str(&format!(
            r#"<tr data-id="{id}">{check}<td><a href="/events/{id}">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td><span class="status status-{status}">{status}</span></td><td>{}</td><td class="mono">{}</td><td class="error">{}</td></tr>"#,
            time(r["received_at_ms"].as_u64().unwrap_or_default()),
            text("route"),
            text("kind"),
            r["attempts"].as_u64().unwrap_or_default(),
            text("delivery_id"),
            text("last_error"),
        ));
    }
    out
}

const HEAD: &str = "<th>id</th><th>received</th><th>route</th><th>kind</th><th>status</th><th>attempts</th><th>delivery id</th><th>last error</th>";

pub(super) async fn events(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    let caller = match authorize(&admin, &request, false) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let query = Query::<EventQuery>::try_from_uri(request.uri())
        .map(|Query(q)| q)
        .unwrap_or_default();
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(e) => return (StatusCode::BAD_REQUEST, Html(esc(&e))).into_response(),
    };
    let page = match page(&admin, filter).await {
        Ok(page) => page,
        Err(response) => return response,
    };
    let records = page["events"].as_array().cloned().unwrap_or_default();
    let mut routes: Vec<String> = admin
        .routes
        .load()
        .routes()
        .map(|r| r.name.to_string())
        .collect();
    routes.sort();
    let statuses: Vec<String> = [
        "queued",
        "running",
        "delivered",
        "dead",
        "responded",
        "failed",
    ]
    .map(String::from)
    .to_vec();
    // The script polls the API with the page's own filters, for the
    // first page only: an older page stays as it was.
    let live = query.cursor.is_none();
    let api_query = request.uri().query().unwrap_or("");
    let older = page["next"]
        .as_str()
        .map(|next| {
            let mut link = url::form_urlencoded::Serializer::new(String::new());
            for (key, value) in url::form_urlencoded::parse(api_query.as_bytes()) {
                if key != "cursor" {
                    link.append_pair(&key, &value);
                }
            }
            link.append_pair("cursor", next);
            format!(
                r#"<p><a id="older" href="/?{}">Older events</a></p>"#,
                esc(&link.finish())
            )
        })
        .unwrap_or_default();
    let body = format!(
        r#"<form method="get" action="/" class="filters">
{}
{}
<input type="text" name="kind" id="filter-kind" placeholder="kind" value="{}">
<input type="search" name="q" id="filter-q" placeholder="search delivery id, contact, text" value="{}">
<button type="submit" id="apply">Filter</button> <a href="/">Clear</a>
</form>
<table class="events"><thead><tr>{HEAD}</tr></thead>
<tbody id="events" data-live="{live}" data-query="{}">{}</tbody></table>
{older}"#,
        select("status", &statuses, query.status.as_deref()),
        select("route", &routes, query.route.as_deref()),
        esc(query.kind.as_deref().unwrap_or("")),
        esc(query.q.as_deref().unwrap_or("")),
        esc(api_query),
        rows(&records, false),
    );
    Html(frame("Events", csrf_of(&caller), &body)).into_response()
}

fn pretty(value: &Value) -> String {
    esc(&serde_json::to_string_pretty(value).unwrap_or_default())
}

pub(super) async fn event(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<i64>,
    request: Request,
) -> Response {
    let caller = match authorize(&admin, &request, false) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let detail = match detail(&admin, id).await {
        Ok(Some(detail)) => detail,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                Html(frame("No such event", csrf_of(&caller), "")),
            )
                .into_response();
        }
        Err(response) => return response,
    };
    let r = &detail["record"];
    let text = |key: &str| esc(r[key].as_str().unwrap_or(""));
    let ms = |key: &str| r[key].as_u64().map(time).unwrap_or_else(|| "—".into());
    let duration = r["duration_us"]
        .as_u64()
        .map(|us| format!("<dt>plugins took</dt><dd>{:.3} ms</dd>", us as f64 / 1000.0))
        .unwrap_or_default();
    let reply = if detail["reply"].is_null() {
        String::new()
    } else {
        format!(
            "<h2>Reply</h2><pre id=\"reply\">{}</pre>",
            pretty(&detail["reply"])
        )
    };
    let body = format!(
        r#"<dl class="record">
<dt>status</dt><dd><span id="event-status" data-id="{id}" class="status status-{status}">{status}</span></dd>
<dt>route</dt><dd>{}</dd><dt>provider</dt><dd>{}</dd><dt>kind</dt><dd>{}</dd>
<dt>delivery id</dt><dd class="mono">{}</dd>
</dl>
<h2>Attempts</h2>
<ol class="timeline">
<li>received {}</li>
<li>attempts: <span id="event-attempts">{}</span>, last at {}</li>
<li>last error: <span id="event-error" class="error">{}</span></li>
<li>next attempt: {}</li>
</ol>
<ol class="timeline" id="attempts">{}</ol>
{duration}
<form method="post" action="/events/{id}/replay">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit" id="replay">Replay</button>
</form>
<h2>Body (verified)</h2><pre id="body">{}</pre>
<h2>Payload (decoded)</h2><pre id="payload">{}</pre>
{reply}"#,
        text("route"),
        text("provider"),
        text("kind"),
        text("delivery_id"),
        ms("received_at_ms"),
        r["attempts"].as_u64().unwrap_or_default(),
        ms("updated_at_ms"),
        text("last_error"),
        ms("next_attempt_at_ms"),
        attempts(&detail["attempts"]),
        pretty(&detail["event"]["body"]),
        pretty(&detail["event"]["payload"]),
        status = text("status"),
        csrf = esc(csrf_of(&caller)),
    );
    Html(frame(&format!("Event {id}"), csrf_of(&caller), &body)).into_response()
}

/// The caller and the form body of a state-changing console request,
/// its CSRF token checked.
async fn form(admin: &Admin, request: Request) -> Result<axum::body::Bytes, Response> {
    let (parts, body) = request.into_parts();
    let caller = authorize(admin, &Request::from_parts(parts, ()), false)?;
    let body = body_bytes(body, MAX_FORM).await?;
    if caller.may_change(field(&body, "csrf").as_deref()) {
        Ok(body)
    } else {
        Err(forbidden())
    }
}

pub(super) async fn replay_one(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<i64>,
    request: Request,
) -> Response {
    if let Err(refused) = form(&admin, request).await {
        return refused;
    }
    match ops::replay(&*admin.store, vec![id]).await {
        Ok(_) => {
            tracing::info!(id, "admin: event re-queued from the console");
            Redirect::to(&format!("/events/{id}")).into_response()
        }
        Err(e) => super::store_failed(&e),
    }
}

pub(super) async fn dead_letters(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    let caller = match authorize(&admin, &request, false) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let filter = Filter {
        status: Some(Status::Dead),
        limit: DEAD_LETTERS_SHOWN,
        ..Filter::default()
    };
    let page = match page(&admin, filter).await {
        Ok(page) => page,
        Err(response) => return response,
    };
    let records = page["events"].as_array().cloned().unwrap_or_default();
    let body = format!(
        r#"<form method="post" action="/dead-letters">
<input type="hidden" name="csrf" value="{}">
<p>{} dead letters shown.
<button type="submit" name="action" value="replay" id="replay-selected">Replay selected</button>
<button type="submit" name="action" value="purge" id="purge-selected">Purge selected</button>
<button type="submit" name="action" value="replay-all" id="replay-all">Replay all</button>
<button type="submit" name="action" value="purge-all" id="purge-all" class="danger">Purge all</button></p>
<table class="events"><thead><tr><th><input type="checkbox" id="select-all" title="select all"></th>{HEAD}</tr></thead>
<tbody id="dead">{}</tbody></table>
</form>"#,
        esc(csrf_of(&caller)),
        records.len(),
        rows(&records, true),
    );
    Html(frame("Dead letters", csrf_of(&caller), &body)).into_response()
}

pub(super) async fn dead_letters_act(
    State(admin): State<Arc<Admin>>,
    request: Request,
) -> Response {
    let body = match form(&admin, request).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let ids: Vec<i64> = fields(&body, "id")
        .iter()
        .filter_map(|id| id.parse().ok())
        .collect();
    let store = &*admin.store;
    let done = match field(&body, "action").as_deref() {
        Some("replay") => ops::replay_dead(store, Selection::Ids(ids)).await.map(|r| {
            tracing::info!(
                replayed = r.replayed.len(),
                "admin: dead letters re-queued from the console"
            );
        }),
        Some("replay-all") => ops::replay_dead(store, Selection::All).await.map(|r| {
            tracing::info!(
                replayed = r.replayed.len(),
                "admin: dead letters re-queued from the console"
            );
        }),
        Some("purge") => ops::purge_dead(store, Selection::Ids(ids))
            .await
            .map(|purged| {
                tracing::info!(purged, "admin: dead letters purged from the console");
            }),
        Some("purge-all") => ops::purge_dead(store, Selection::All).await.map(|purged| {
            tracing::info!(purged, "admin: dead letters purged from the console");
        }),
        _ => return (StatusCode::BAD_REQUEST, Html("unknown action")).into_response(),
    };
    match done {
        Ok(()) => Redirect::to("/dead-letters").into_response(),
        Err(e) => super::store_failed(&e),
    }
}

pub(super) async fn routes(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    let caller = match authorize(&admin, &request, false) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let info = routes_json(&admin);
    let list = |v: &Value| {
        esc(&(v.as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "))
    };
    let mut body = String::from(
        "<h2>Routes</h2><table><thead><tr><th>name</th><th>path</th><th>provider</th><th>mode</th><th>plugins</th></tr></thead><tbody>",
    );
    for r in info["routes"].as_array().into_iter().flatten() {
        let text = |key: &str| esc(r[key].as_str().unwrap_or(""));
        body.push_str(&format!(
            "<tr><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            text("name"),
            text("path"),
            text("provider"),
            text("mode"),
            list(&r["plugins"]),
        ));
    }
    body.push_str("</tbody></table><h2>Plugins</h2><table><thead><tr><th>name</th><th>sha-256</th><th>precompiled</th><th>WIT</th><th>settings</th><th>kv</th><th>fetch</th></tr></thead><tbody>");
    for p in info["plugins"].as_array().into_iter().flatten() {
        let g = &p["grants"];
        body.push_str(&format!(
            "<tr><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(p["name"].as_str().unwrap_or("")),
            esc(p["sha256"].as_str().unwrap_or("")),
            p["precompiled"].as_bool().unwrap_or_default(),
            esc(p["wit"].as_str().unwrap_or("")),
            list(&g["settings"]),
            g["kv"].as_bool().unwrap_or_default(),
            list(&g["http"]),
        ));
    }
    body.push_str("</tbody></table>");
    let reload = &info["last_reload"];
    body.push_str(&if reload.is_null() {
        "<p>No reload since start.</p>".to_owned()
    } else {
        format!(
            "<p>Last reload {} ({}): {}.</p>",
            time(reload["at_ms"].as_u64().unwrap_or_default()),
            esc(reload["cause"].as_str().unwrap_or("")),
            if reload["ok"].as_bool() == Some(true) {
                "ok"
            } else {
                "failed, see the log"
            }
        )
    });
    Html(frame("Routes & plugins", csrf_of(&caller), &body)).into_response()
}

pub(super) async fn charts(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    let caller = match authorize(&admin, &request, false) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let stats =
        match super::stats::compute(&*admin.store, std::time::Duration::from_secs(3600)).await {
            Ok(stats) => stats,
            Err(e) => return super::store_failed(&e),
        };
    let mut body = format!(
        "<p class=\"legend\">Requests per {} minutes (blue), failures (red), plugin latency p50 (green) and p99 (amber) where logged.</p>",
        stats.bucket_secs / 60
    );
    if stats.routes.is_empty() {
        body.push_str("<p>No events in the last hour.</p>");
    }
    for route in &stats.routes {
        let counts: Vec<String> = route
            .counts
            .iter()
            .map(|(status, n)| format!("{status} {n}"))
            .collect();
        body.push_str(&format!(
            "<section class=\"route-chart\"><h2>{}</h2><p>{}</p>{}</section>",
            esc(&route.route),
            esc(&counts.join(" · ")),
            chart(route)
        ));
    }
    Html(frame("Last hour", csrf_of(&caller), &body)).into_response()
}
