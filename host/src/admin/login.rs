//! Logging in to the console and out of it: the login form takes the
//! admin token and opens a session cookie (`HttpOnly; SameSite=Strict`,
//! `Secure` with TLS); logging out closes it. Also the form helpers the
//! console's other state-changing pages share.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::auth::{COOKIE, Denied};
use super::html::esc;
use super::{Admin, authorize, body_bytes, denied};

/// Bytes of a form the console reads at most.
pub(super) const MAX_FORM: usize = 64 * 1024;

fn login_page(message: Option<&str>) -> String {
    let message = message
        .map(|m| format!(r#"<p class="error" id="login-error">{}</p>"#, esc(m)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Log in · wirehook</title>
<link rel="stylesheet" href="/static/console.css"></head>
<body class="login"><main>
<h1>wirehook console</h1>
{message}
<form method="post" action="/login">
<label>Admin token <input type="password" name="token" id="token" autocomplete="current-password" autofocus></label>
<button type="submit" id="login">Log in</button>
</form>
</main></body></html>
"#
    )
}

pub(super) async fn login_form() -> Response {
    Html(login_page(None)).into_response()
}

/// The values of `name` in a form body.
pub(super) fn fields(body: &[u8], name: &str) -> Vec<String> {
    url::form_urlencoded::parse(body)
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .collect()
}

pub(super) fn field(body: &[u8], name: &str) -> Option<String> {
    fields(body, name).into_iter().next()
}

pub(super) async fn login(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    let client = super::peer(request.extensions().get());
    let body = match body_bytes(request.into_body(), MAX_FORM).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let token = field(&body, "token").unwrap_or_default();
    match admin
        .auth
        .check_token(client, token.as_bytes(), &admin.metrics)
    {
        Ok(()) => {
            let (id, _) = admin.auth.open_session();
            let secure = if admin.secure_cookie { "; Secure" } else { "" };
            let cookie = format!(
                "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                admin.session_secs
            );
            tracing::info!(remote = %client, "admin: console login");
            let mut response = Redirect::to("/").into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(Denied::Unauthorized) => (
            StatusCode::UNAUTHORIZED,
            Html(login_page(Some("Wrong token."))),
        )
            .into_response(),
        Err(limited) => denied(limited, false),
    }
}

pub(super) async fn logout(State(admin): State<Arc<Admin>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let head = Request::from_parts(parts, ());
    let caller = match authorize(&admin, &head, false) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let body = match body_bytes(body, MAX_FORM).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if !caller.may_change(field(&body, "csrf").as_deref()) {
        return forbidden();
    }
    admin.auth.close_session(head.headers());
    let mut response = Redirect::to("/login").into_response();
    let expired = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

pub(super) fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        Html("<!doctype html><title>Forbidden</title><p>Missing or wrong CSRF token: reload the page and try again.</p>"),
    )
        .into_response()
}
