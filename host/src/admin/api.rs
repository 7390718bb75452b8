//! The admin API: JSON over the delivery log, the route table and the
//! last hour's activity, for the console and for scripts. Replays and
//! purges go through [`super::ops`], as the CLI's do.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ops::{self, Selection};
use super::{Admin, api_error, authorize, body_bytes, store_failed};
use crate::store::{Filter, Status, UnixMs};

/// Rows one page of `GET /api/events` holds at most, and by default.
const MAX_LIMIT: usize = 500;
const DEFAULT_LIMIT: usize = 50;

/// Ids a filtered `POST /api/replay` re-queues at most.
const MAX_REPLAY: usize = 10_000;

/// Bytes of a request body the API reads at most.
const MAX_BODY: usize = 256 * 1024;

/// `GET /api/events`'s query, also the filter of `POST /api/replay`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventQuery {
    pub status: Option<String>,
    pub route: Option<String>,
    pub kind: Option<String>,
    pub q: Option<String>,
    /// Milliseconds since the epoch, or RFC 3339.
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl EventQuery {
    /// The store's filter, or what is wrong, by parameter.
    pub(super) fn filter(&self) -> Result<Filter, String> {
        let text = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        let status = match text(&self.status) {
            Some(s) => Some(Status::parse(&s).ok_or("status: unknown status")?),
            None => None,
        };
        let before = match text(&self.cursor) {
            Some(c) => Some(c.parse::<i64>().map_err(|_| "cursor: not a cursor")?),
            None => None,
        };
        Ok(Filter {
            status,
            route: text(&self.route),
            kind: text(&self.kind),
            q: text(&self.q),
            since: time(&self.since).map_err(|e| format!("since: {e}"))?,
            until: time(&self.until).map_err(|e| format!("until: {e}"))?,
            before,
            limit: self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
        })
    }
}

/// A moment given as milliseconds since the epoch or in RFC 3339.
fn time(value: &Option<String>) -> Result<Option<UnixMs>, &'static str> {
    let Some(value) = value.as_deref().filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(ms) = value.parse::<u64>() {
        return Ok(Some(UnixMs(ms)));
    }
    let at = humantime::parse_rfc3339_weak(value).map_err(|_| "not a time")?;
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| "before 1970")?
        .as_millis() as u64;
    Ok(Some(UnixMs(ms)))
}

/// A page of events, newest first, and the cursor of the next.
/// The store's filter a listing's query asks for, or a 400 saying what
/// is wrong with it.
pub(super) fn filter_of(request: &Request) -> Result<Filter, Response> {
    let Query(query) = Query::<EventQuery>::try_from_uri(request.uri())
        .map_err(|e| api_error(StatusCode::BAD_REQUEST, &e.body_text()))?;
    query
        .filter()
        .map_err(|e| api_error(StatusCode::BAD_REQUEST, &e))
}

pub(super) async fn page(admin: &Admin, filter: Filter) -> Result<Value, Response> {
    let limit = filter.limit;
    let records = admin
        .store
        .list(filter)
        .await
        .map_err(|e| store_failed(&e))?;
    Ok(as_page(records, limit))
}

/// A listing's `records`, of at most `limit`, as the API's page.
pub(super) fn as_page(records: Vec<crate::store::Record>, limit: usize) -> Value {
    let next = if records.len() == limit {
        records.last().map(|r| r.id.to_string())
    } else {
        None
    };
    json!({ "events": records, "next": next })
}

pub(super) async fn events(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    if let Err(refused) = authorize(&admin, &request, true) {
        return refused;
    }
    let filter = match filter_of(&request) {
        Ok(filter) => filter,
        Err(refused) => return refused,
    };
    match page(&admin, filter).await {
        Ok(page) => Json(page).into_response(),
        Err(response) => response,
    }
}

/// One event's record, its attempts and its event: the verified body,
/// parsed, and the decoded payload.
pub(super) async fn detail(admin: &Admin, id: i64) -> Result<Option<Value>, Response> {
    let found = admin.store.get(id).await.map_err(|e| store_failed(&e))?;
    let Some((record, event)) = found else {
        return Ok(None);
    };
    let attempts = admin
        .store
        .attempts(id)
        .await
        .map_err(|e| store_failed(&e))?;
    Ok(Some({
        let body = serde_json::from_str::<Value>(&event.raw_json)
            .unwrap_or_else(|_| Value::String(event.raw_json.clone()));
        let reply = (record.reply.as_deref())
            .map(|r| serde_json::from_str::<Value>(r).unwrap_or_else(|_| Value::String(r.into())));
        json!({
            "record": record,
            "attempts": attempts,
            "reply": reply,
            "event": { "kind": event.kind, "source": event.source, "body": body, "payload": event.payload },
        })
    }))
}

pub(super) async fn event(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<i64>,
    request: Request,
) -> Response {
    if let Err(refused) = authorize(&admin, &request, true) {
        return refused;
    }
    match detail(&admin, id).await {
        Ok(Some(detail)) => Json(detail).into_response(),
        Ok(None) => api_error(StatusCode::NOT_FOUND, "no such event"),
        Err(response) => response,
    }
}

/// The CSRF token a session's script sends, if any.
fn csrf(request: &Request) -> Option<String> {
    (request.headers().get(super::auth::CSRF_HEADER))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The caller, if it may change state: a bearer, or a session with its
/// CSRF token.
fn may_change(admin: &Admin, request: &Request) -> Result<(), Response> {
    let caller = authorize(admin, request, true)?;
    if caller.may_change(csrf(request).as_deref()) {
        Ok(())
    } else {
        Err(api_error(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token",
        ))
    }
}

pub(super) async fn replay_one(
    State(admin): State<Arc<Admin>>,
    Path(id): Path<i64>,
    request: Request,
) -> Response {
    if let Err(refused) = may_change(&admin, &request) {
        return refused;
    }
    match ops::replay(&*admin.store, vec![id]).await {
        Ok(r) if r.replayed.is_empty() => api_error(
            StatusCode::NOT_FOUND,
            "no such event, or it is being delivered right now",
        ),
        Ok(r) => {
            tracing::info!(id, "admin: event re-queued");
            Json(r).into_response()
        }
        Err(e) => store_failed(&e),
    }
}

/// `POST /api/replay`: `{"ids": [...]}` or `{"filter": {...}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    ids: Option<Vec<i64>>,
    filter: Option<EventQuery>,
}

pub(super) async fn replay(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    if let Err(refused) = may_change(&admin, &request) {
        return refused;
    }
    let body = match body_bytes(request.into_body(), MAX_BODY).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let ids = match serde_json::from_slice::<ReplayBody>(&body) {
        Ok(ReplayBody {
            ids: Some(ids),
            filter: None,
        }) => ids,
        Ok(ReplayBody {
            ids: None,
            filter: Some(query),
        }) => {
            let filter = match query.filter() {
                Ok(filter) => Filter {
                    limit: MAX_REPLAY,
                    ..filter
                },
                Err(e) => return api_error(StatusCode::BAD_REQUEST, &e),
            };
            match admin.store.list(filter).await {
                Ok(records) => records.into_iter().map(|r| r.id).collect(),
                Err(e) => return store_failed(&e),
            }
        }
        Ok(_) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "give either `ids` or `filter`, not both",
            );
        }
        Err(e) => return api_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match ops::replay(&*admin.store, ids).await {
        Ok(r) => {
            tracing::info!(
                replayed = r.replayed.len(),
                missing = r.missing.len(),
                "admin: events re-queued"
            );
            Json(r).into_response()
        }
        Err(e) => store_failed(&e),
    }
}

/// `POST /api/dead-letters/purge`: `{"ids": [...]}` or `{"all": true}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeBody {
    #[serde(default)]
    ids: Vec<i64>,
    #[serde(default)]
    all: bool,
}

pub(super) async fn purge(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    if let Err(refused) = may_change(&admin, &request) {
        return refused;
    }
    let body = match body_bytes(request.into_body(), MAX_BODY).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let selection = match serde_json::from_slice::<PurgeBody>(&body) {
        Ok(PurgeBody { ids, all: false }) => Selection::Ids(ids),
        Ok(PurgeBody { ids, all: true }) if ids.is_empty() => Selection::All,
        Ok(_) => return api_error(StatusCode::BAD_REQUEST, "give `ids` or `all`, not both"),
        Err(e) => return api_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match ops::purge_dead(&*admin.store, selection).await {
        Ok(purged) => {
            tracing::info!(purged, "admin: dead letters purged");
            Json(json!({ "purged": purged })).into_response()
        }
        Err(e) => store_failed(&e),
    }
}

/// Routes, plugins (file hash, the WIT version each targets, grants by name) and
/// the last reload. No secret, not even its length.
pub(super) fn routes_json(admin: &Admin) -> Value {
    let table = admin.routes.load();
    let mut routes: Vec<Value> = table
        .routes()
        .map(|r| {
            json!({
                "name": &*r.name,
                "path": r.path,
                "provider": &*r.provider_name,
                "mode": match r.mode { crate::config::Mode::Queue => "queue", crate::config::Mode::Respond => "respond" },
                "plugins": r.plugins.iter().map(|p| &**p.name()).collect::<Vec<_>>(),
                "max_attempts": r.retry.max_attempts,
            })
        })
        .collect();
    routes.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let plugins: Vec<Value> = table
        .plugin_files()
        .map(|(plugin, sha256)| {
            json!({
                "name": &**plugin.name(),
                "sha256": sha256,
                "precompiled": plugin.is_precompiled(),
                "wit": plugin.wit().as_str(),
                "grants": plugin.granted(),
            })
        })
        .collect();
    json!({
        "routes": routes,
        "plugins": plugins,
        "unused_plugins": table.unused_plugins(),
        "last_reload": admin.reloader.last(),
    })
}

pub(super) async fn routes(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    if let Err(refused) = authorize(&admin, &request, true) {
        return refused;
    }
    Json(routes_json(&admin)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    window: Option<String>,
}

pub(super) async fn stats(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    if let Err(refused) = authorize(&admin, &request, true) {
        return refused;
    }
    let window = match Query::<StatsQuery>::try_from_uri(request.uri()) {
        Ok(Query(StatsQuery { window: Some(w) })) => match humantime::parse_duration(&w) {
            Ok(d) if d.as_secs() >= 60 && d.as_secs() <= 7 * 24 * 3600 => d,
            _ => return api_error(StatusCode::BAD_REQUEST, "window: 1m to 7d, e.g. 1h"),
        },
        Ok(_) => std::time::Duration::from_secs(3600),
        Err(e) => return api_error(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    match super::stats::compute(&*admin.store, window).await {
        Ok(stats) => Json(stats).into_response(),
        Err(e) => store_failed(&e),
    }
}
