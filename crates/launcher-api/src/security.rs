//! Who may talk to the launcher. The launcher runs programs on the user's machine, so any
//! web page the user visits must not be able to drive it (the Python backend allowed that).
//!
//! One guard runs before every route:
//! - an `Origin` header must be on the allow-list (else 403, no CORS headers, no WebSocket);
//! - a browser request without `Origin` that the browser marks cross-site
//!   (`Sec-Fetch-Site`) is refused, which closes the `<img src=…/start>` hole of GET actions;
//! - on a loopback bind, the `Host` must be a loopback name (defeats DNS rebinding);
//! - when a token is configured (required on non-loopback binds), every request carries it as
//!   `Authorization: Bearer …`; WebSockets may instead offer it as the sub-protocol
//!   `mailauncher.token.<token>` or send `{"type":"auth","token":…}` first.

use crate::error::ApiError;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use std::sync::Arc;

/// The origins the desktop frontend uses, allowed by default.
pub const DEFAULT_ORIGINS: &[&str] = &[
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
    "http://localhost:1420",
    "http://127.0.0.1:1420",
];

/// Prefix of the WebSocket sub-protocol that carries the token.
pub const WS_TOKEN_PROTOCOL: &str = "mailauncher.token.";

/// The security policy of one server.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Exact origins allowed besides loopback ones.
    pub allowed_origins: Vec<String>,
    /// Allow `http(s)://localhost|127.0.0.1|[::1]` on any port.
    pub allow_loopback_origins: bool,
    /// Only loopback `Host` headers are accepted (set when bound to loopback).
    pub loopback_only_hosts: bool,
    /// When set, every request must carry this token.
    pub token: Option<Arc<str>>,
}

/// Marks a WebSocket upgrade that still has to authenticate with its first message.
#[derive(Debug, Clone, Copy)]
pub struct NeedsWsAuth;

fn host_part(hostport: &str) -> &str {
    if let Some(rest) = hostport.strip_prefix('[') {
        // [::1]:port
        return rest.split(']').next().unwrap_or(rest);
    }
    hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
}

fn is_loopback_host(host: &str) -> bool {
    let h = host.to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h.parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

impl Security {
    /// Whether a browser page from `origin` may call the API.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        if self.allowed_origins.iter().any(|o| o == origin) {
            return true;
        }
        if !self.allow_loopback_origins {
            return false;
        }
        let Some(rest) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            return false;
        };
        !rest.contains('/') && is_loopback_host(host_part(rest))
    }

    fn token_ok(&self, presented: &str) -> bool {
        match &self.token {
            Some(t) => constant_time_eq(t.as_bytes(), presented.as_bytes()),
            None => true,
        }
    }

    /// Checks a token sent in a WebSocket's first message.
    pub fn ws_token_ok(&self, presented: &str) -> bool {
        self.token_ok(presented)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn forbidden(code: &str, detail: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, detail)
}

/// The token a WebSocket offered as a sub-protocol, if any.
pub fn offered_ws_token(req: &actix_web::HttpRequest) -> Option<String> {
    let v = req
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)?
        .to_str()
        .ok()?;
    v.split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix(WS_TOKEN_PROTOCOL).map(str::to_owned))
}

fn is_ws_upgrade(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The index page and the API documentation need no token: a browser cannot attach one to
/// a page load, and they hold nothing about the user's instances. Origin rules still apply.
fn is_public_doc(req: &ServiceRequest) -> bool {
    let p = req.path();
    req.method() == actix_web::http::Method::GET
        && (p == "/" || p == "/docs" || p.starts_with("/docs/") || p.ends_with("/openapi.json"))
}

/// The guard middleware (see the module docs).
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let Some(sec) = req.app_data::<web::Data<Security>>().cloned() else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "misconfigured",
            "security policy missing",
        )
        .into());
    };
    let h = req.headers();
    if sec.loopback_only_hosts {
        let host = h
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !host.is_empty() && !is_loopback_host(host_part(host)) {
            return Err(forbidden(
                "host_not_allowed",
                "this launcher only answers requests addressed to a loopback host",
            )
            .into());
        }
    }
    match h.get(header::ORIGIN).map(HeaderValue::to_str) {
        Some(Ok(origin)) if sec.origin_allowed(origin) => {}
        Some(_) => {
            return Err(forbidden(
                "origin_not_allowed",
                "requests from this web page's origin are not allowed; add it to \
                 security.allowed_origins if you trust it",
            )
            .into());
        }
        None => {
            // No Origin: a local tool, or a browser navigation/sub-resource. Browsers
            // label the latter; refuse when it came from another site.
            let site = h
                .get("sec-fetch-site")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none");
            if site == "cross-site" || site == "same-site" {
                return Err(forbidden(
                    "cross_site_request",
                    "cross-site requests without an allowed Origin are refused",
                )
                .into());
            }
        }
    }
    if sec.token.is_some()
        && req.method() != actix_web::http::Method::OPTIONS
        && !is_public_doc(&req)
    {
        let bearer = h
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let ok = match bearer {
            Some(t) => sec.token_ok(t),
            None if is_ws_upgrade(&req) => match offered_ws_token(req.request()) {
                Some(t) => sec.token_ok(&t),
                None => {
                    // The socket authenticates with its first message instead.
                    req.extensions_mut().insert(NeedsWsAuth);
                    true
                }
            },
            None => false,
        };
        if !ok {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this launcher requires its access token (Authorization: Bearer <token>); \
                 `mailauncher token` shows it",
            )
            .into());
        }
    }
    next.call(req).await
}

/// CORS for the allowed origins only (preflights from others never reach it: the guard
/// refuses them first).
pub fn cors(sec: &Security) -> actix_cors::Cors {
    let sec = sec.clone();
    actix_cors::Cors::default()
        .allowed_origin_fn(move |origin, _| {
            origin
                .to_str()
                .map(|o| sec.origin_allowed(o))
                .unwrap_or(false)
        })
        .allow_any_method()
        .allow_any_header()
        .expose_any_header()
        .max_age(3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins_on_any_port_and_listed_ones_only() {
        let s = Security {
            allowed_origins: DEFAULT_ORIGINS.iter().map(|s| s.to_string()).collect(),
            allow_loopback_origins: true,
            ..Default::default()
        };
        for ok in [
            "tauri://localhost",
            "http://tauri.localhost",
            "http://127.0.0.1:5173",
            "http://localhost:1420",
            "http://[::1]:80",
            "https://localhost",
        ] {
            assert!(s.origin_allowed(ok), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example:1420",
            "null",
            "file://",
            "http://192.168.1.2:11111",
        ] {
            assert!(!s.origin_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn host_parts() {
        assert_eq!(host_part("127.0.0.1:23456"), "127.0.0.1");
        assert_eq!(host_part("[::1]:23456"), "::1");
        assert_eq!(host_part("localhost"), "localhost");
        assert!(is_loopback_host("foo.localhost"));
        assert!(!is_loopback_host("evil.example"));
    }
}
