//! Shared-token proof, used by providers that document no signature: the
//! secret travels in a header (or, failing that, a `token` query
//! parameter) and is compared in constant time. A route may require
//! further headers with their own values (`headers`), for providers that
//! let the sender add several custom headers (Messangi).

use std::time::SystemTime;

use axum::http::HeaderName;
use axum::http::header::AUTHORIZATION;

use super::{ConfigIssue, Provider, Rejection, Request, SignError, Signed, Verified};
use crate::config::provider::TokenOptions;
use crate::secret::Secret;

/// Checks a shared token (and any further required headers) on each
/// request: the whole provider of goflow, messangi and whatsable, whose
/// bodies are JSON proven by the token alone.
#[derive(Debug)]
pub struct SharedToken {
    header: HeaderName,
    secret: Secret,
    extra: Vec<(HeaderName, Secret)>,
}

impl SharedToken {
    /// The route's `header`, else `default_header`; its `headers` as
    /// further required headers.
    pub fn new(
        options: &TokenOptions,
        default_header: HeaderName,
        secret: Secret,
    ) -> Result<Self, ConfigIssue> {
        let header = options
            .header
            .as_ref()
            .map_or(default_header, |header| header.name.clone());
        let extra = options.headers.clone();
        if let Some((name, _)) = extra.iter().find(|(name, _)| *name == header) {
            return Err(ConfigIssue {
                field: "headers",
                reason: format!("`{name}` is already the route's `header`"),
            });
        }
        Ok(Self {
            header,
            secret,
            extra,
        })
    }

    pub fn check(&self, req: &Request<'_>) -> Result<(), Rejection> {
        let query;
        let presented = match req.headers.get(&self.header) {
            Some(value) => self.strip_scheme(value.as_bytes()),
            None => {
                query = query_param(req.query, "token").ok_or_else(|| {
                    Rejection::unauthorized(format!("missing `{}` header", self.header))
                })?;
                &query[..]
            }
        };
        // Every comparison runs, so the time taken does not tell which
        // header was wrong.
        let mut ok = self.secret.matches(presented.trim_ascii());
        for (name, value) in &self.extra {
            let presented = req.headers.get(name).map_or(&b""[..], |v| v.as_bytes());
            ok &= value.matches(presented.trim_ascii());
        }
        if ok {
            Ok(())
        } else {
            Err(Rejection::unauthorized("token does not match"))
        }
    }

    /// The headers a sender puts on a request: the token (with the
    /// `Token` scheme on `Authorization`) and every further header.
    pub fn headers(&self) -> Result<Vec<(String, String)>, SignError> {
        let text = |secret: &Secret| {
            String::from_utf8(secret.expose().to_vec()).map_err(|_| SignError::HeaderNotText)
        };
        let token = text(&self.secret)?;
        let token = if self.header == AUTHORIZATION {
            format!("Token {token}")
        } else {
            token
        };
        let mut headers = vec![(display_name(&self.header), token)];
        for (name, value) in &self.extra {
            headers.push((display_name(name), text(value)?));
        }
        Ok(headers)
    }

    /// The whole proof of a shared-token JSON provider: the token, then a
    /// JSON content type; the body itself is the proven document.
    pub fn verify_json<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        self.check(req)?;
        super::require_json_content_type(req.headers)?;
        Ok(Verified::body(req))
    }

    /// Flow engines send `Authorization: Token <secret>` (or `Bearer`);
    /// the scheme is not part of the secret.
    fn strip_scheme<'v>(&self, value: &'v [u8]) -> &'v [u8] {
        if self.header != AUTHORIZATION {
            return value;
        }
        for scheme in [&b"token "[..], b"bearer "] {
            if value.len() > scheme.len() && value[..scheme.len()].eq_ignore_ascii_case(scheme) {
                return &value[scheme.len()..];
            }
        }
        value
    }
}

impl Provider for SharedToken {
    fn verify<'r>(&self, req: &Request<'r>) -> Result<Verified<'r>, Rejection> {
        self.verify_json(req)
    }

    fn sign(&self, payload: &[u8], _now: SystemTime) -> Result<Signed, SignError> {
        Ok(Signed::json(payload, self.headers()?))
    }
}

/// `x-messangi-token` → `X-Messangi-Token`: header names are
/// case-insensitive, but people read the capitalised form.
fn display_name(name: &HeaderName) -> String {
    name.as_str()
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The first value of query parameter `name`, percent-decoded (`+` is a
/// space, as in forms). Meta's handshake and URL tokens both need it.
pub fn query_param(query: &str, name: &str) -> Option<Vec<u8>> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key.as_bytes()) == name.as_bytes())
            .then(|| percent_decode(value.as_bytes()))
    })
}

fn percent_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < text.len() => match (hex_digit(text[i + 1]), hex_digit(text[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    out
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, Method};

    #[test]
    fn query_parameters_are_percent_decoded() {
        let q = "hub.mode=subscribe&hub.verify_token=a%2Bb+c%zz&hub.challenge=1158201444&flag";
        assert_eq!(query_param(q, "hub.mode").unwrap(), b"subscribe");
        assert_eq!(query_param(q, "hub.verify_token").unwrap(), b"a+b c%zz");
        assert_eq!(query_param(q, "flag").unwrap(), b"");
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param("token=%4", "token").unwrap(), b"%4");
    }

    #[test]
    fn every_required_header_must_match() {
        let token = SharedToken {
            header: HeaderName::from_static("x-api-key"),
            secret: Secret::new(&b"k"[..]),
            extra: vec![(
                HeaderName::from_static("x-client"),
                Secret::new(&b"acme"[..]),
            )],
        };
        let check = |pairs: &[(&'static str, &'static str)], query: &str| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, value.parse().unwrap());
            }
            let req = Request {
                method: &Method::POST,
                headers: &headers,
                query,
                body: b"{}",
            };
            token.check(&req).is_ok()
        };
        assert!(check(&[("x-api-key", "k"), ("x-client", "acme")], ""));
        assert!(check(&[("x-client", "acme")], "token=k"));
        assert!(!check(&[("x-api-key", "k")], ""));
        assert!(!check(&[("x-api-key", "k"), ("x-client", "acm")], ""));
        assert!(!check(&[("x-api-key", "j"), ("x-client", "acme")], ""));
        assert_eq!(
            token.headers().unwrap(),
            vec![
                ("X-Api-Key".to_owned(), "k".to_owned()),
                ("X-Client".to_owned(), "acme".to_owned())
            ]
        );
    }
}
