//! Who may talk to the launcher. The launcher runs programs on the user's machine, so any
//! web page the user visits, and any other account on the machine, must not be able to
//! drive it (the Python backend allowed both).
//!
//! One guard runs before every route:
//! - on a loopback bind, a `Host` header is required and must be a loopback name (defeats
//!   DNS rebinding; a request without one is refused rather than trusted);
//! - an `Origin` header must be on the allow-list: the configured origins (the desktop
//!   frontend's by default), pages the launcher serves itself (`Origin` equal to
//!   `http://<Host>`), and loopback pages on any port only when `allow_loopback_origins` is
//!   set; anything else is 403, no CORS headers, no WebSocket;
//! - a browser request without `Origin` that the browser marks cross-site
//!   (`Sec-Fetch-Site`) is refused, which closes the `<img src=…/start>` hole of GET actions;
//! - on a loopback bind with `same_user_only`, a connection whose client socket belongs to
//!   another OS user (root excepted) must present the token (403 `foreign_user`); the
//!   owner is read from the kernel once per connection (see [`crate::peer`]);
//! - when a token is required (non-loopback binds, or `require_token = "always"`), every
//!   request carries it as `Authorization: Bearer …`; WebSockets may instead offer it as the
//!   sub-protocol `mailauncher.token.<token>` or send `{"type":"auth","token":…}` first.
//!
//! Only the index page and the API documentation (`/`, `{prefix}/openapi.json`, `/docs`,
//! `/docs/…`), exact paths, need no token.

use crate::error::ApiError;
use crate::peer::PeerOwner;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use std::sync::Arc;

/// The origins the desktop frontend uses, allowed by default: the Tauri webview, the Vite
/// dev server of the frontend (port 1420) and the frontend's optional "WebUI" mode (port
/// 11111 on this machine).
pub const DEFAULT_ORIGINS: &[&str] = &[
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
    "http://localhost:1420",
    "http://127.0.0.1:1420",
    "http://localhost:11111",
    "http://127.0.0.1:11111",
];

/// Prefix of the WebSocket sub-protocol that carries the token.
pub const WS_TOKEN_PROTOCOL: &str = "mailauncher.token.";

/// The security policy of one server.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Exact origins allowed (besides the launcher's own pages).
    pub allowed_origins: Vec<String>,
    /// Allow `http(s)://localhost|127.0.0.1|[::1]` on any port: every local web server
    /// (dev servers, notebooks) becomes trusted, so this is off unless configured.
    pub allow_loopback_origins: bool,
    /// A loopback `Host` header is required (set when bound to loopback).
    pub loopback_only_hosts: bool,
    /// The access token, when one is in use (required, or asked of other users).
    pub token: Option<Arc<str>>,
    /// Every request must carry [`Security::token`].
    pub token_required: bool,
    /// The launcher's own uid when `same_user_only` applies (loopback bind, supported
    /// platform): connections owned by another uid (root excepted) need the token.
    pub same_user: Option<u32>,
    /// The API prefix (`/api/v1`), for the exact documentation paths.
    pub api_prefix: String,
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
    /// Whether a browser page from `origin` may call the API, for a request addressed to
    /// `host` (its `Host` header). A page whose origin is `http://<host>` was served by this
    /// very server (the `/docs` page): same-origin, allowed.
    pub fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        if self.allowed_origins.iter().any(|o| o == origin) {
            return true;
        }
        if let Some(host) = host
            && origin
                .strip_prefix("http://")
                .is_some_and(|o| o.eq_ignore_ascii_case(host))
        {
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
        // No token configured while one is asked for: nothing can match.
        self.token
            .as_ref()
            .is_some_and(|t| constant_time_eq(t.as_bytes(), presented.as_bytes()))
    }

    /// Checks a token sent in a WebSocket's first message.
    pub fn ws_token_ok(&self, presented: &str) -> bool {
        self.token_ok(presented)
    }

    /// Whether a connection owned by `owner` counts as another OS user's.
    fn foreign(&self, owner: Option<&PeerOwner>) -> bool {
        let Some(me) = self.same_user else {
            return false;
        };
        match owner.and_then(|o| o.0) {
            Some(uid) => uid != me && uid != 0,
            // Unknown owner: fail closed.
            None => true,
        }
    }

    /// `/`, `{prefix}/openapi.json`, `/docs` and `/docs/…`: the index page and the API
    /// documentation need no token (a browser cannot attach one to a page load, and they
    /// hold nothing about the user's instances). Exact paths only: a suffix match let
    /// `…/person/openapi.json` through. Origin rules still apply.
    fn is_public_doc(&self, req: &ServiceRequest) -> bool {
        let p = req.path();
        req.method() == actix_web::http::Method::GET
            && (p == "/"
                || p == "/docs"
                || p.starts_with("/docs/")
                || p.strip_prefix(self.api_prefix.as_str()) == Some("/openapi.json"))
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
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    if sec.loopback_only_hosts {
        match host {
            None | Some("") => {
                // Without a Host the rebinding check cannot run: refuse instead of trust.
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "host_missing",
                    "this launcher requires a Host header naming a loopback address \
                     (e.g. Host: 127.0.0.1:23456)",
                )
                .into());
            }
            Some(host) if !is_loopback_host(host_part(host)) => {
                return Err(forbidden(
                    "host_not_allowed",
                    "this launcher only answers requests addressed to a loopback host \
                     (127.0.0.1, localhost or [::1])",
                )
                .into());
            }
            Some(_) => {}
        }
    }
    match h.get(header::ORIGIN).map(HeaderValue::to_str) {
        Some(Ok(origin)) if sec.origin_allowed(origin, host) => {}
        Some(_) => {
            return Err(forbidden(
                "origin_not_allowed",
                "requests from this web page's origin are not allowed; add the origin to \
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
    let foreign = sec.foreign(req.conn_data::<PeerOwner>());
    if (sec.token_required || foreign)
        && req.method() != actix_web::http::Method::OPTIONS
        && !sec.is_public_doc(&req)
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
        if !ok && sec.token_required {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this launcher requires its access token (Authorization: Bearer <token>); \
                 `mailauncher token` shows it",
            )
            .into());
        }
        if !ok {
            let uid = req
                .conn_data::<PeerOwner>()
                .and_then(|o| o.0)
                .map_or_else(|| "an unknown user".to_owned(), |u| format!("uid {u}"));
            return Err(forbidden(
                "foreign_user",
                &format!(
                    "this connection belongs to another OS user ({uid}) than the launcher's; \
                     present the access token (Authorization: Bearer <token>, shown by \
                     `mailauncher token` to the launcher's user), or set \
                     security.same_user_only = false"
                ),
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
        .allowed_origin_fn(move |origin, head| {
            let host = head
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok());
            origin
                .to_str()
                .map(|o| sec.origin_allowed(o, host))
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

    fn listed() -> Security {
        Security {
            allowed_origins: DEFAULT_ORIGINS.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_listed_and_own_origins_by_default() {
        let s = listed();
        for ok in [
            "tauri://localhost",
            "http://tauri.localhost",
            "http://localhost:1420",
            "http://127.0.0.1:11111",
        ] {
            assert!(s.origin_allowed(ok, Some("127.0.0.1:23456")), "{ok}");
        }
        // The launcher's own pages: same origin as the address the request went to.
        assert!(s.origin_allowed("http://127.0.0.1:23456", Some("127.0.0.1:23456")));
        assert!(s.origin_allowed("http://localhost:23456", Some("localhost:23456")));
        for bad in [
            "http://127.0.0.1:5173",
            "http://localhost:8888",
            "http://[::1]:80",
            "https://localhost",
            "http://localhost:23456",
            "https://evil.example",
            "null",
        ] {
            assert!(!s.origin_allowed(bad, Some("127.0.0.1:23456")), "{bad}");
        }
        assert!(!s.origin_allowed("http://127.0.0.1:23456", None));
    }

    #[test]
    fn loopback_origins_on_any_port_when_asked() {
        let s = Security {
            allow_loopback_origins: true,
            ..listed()
        };
        for ok in [
            "http://127.0.0.1:5173",
            "http://localhost:1420",
            "http://[::1]:80",
            "https://localhost",
        ] {
            assert!(s.origin_allowed(ok, None), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example:1420",
            "null",
            "file://",
            "http://192.168.1.2:11111",
        ] {
            assert!(!s.origin_allowed(bad, None), "{bad}");
        }
    }

    #[test]
    fn foreign_means_another_uid_than_ours_or_roots_and_unknown_fails_closed() {
        let s = Security {
            same_user: Some(1000),
            ..Default::default()
        };
        assert!(!s.foreign(Some(&PeerOwner(Some(1000)))));
        assert!(!s.foreign(Some(&PeerOwner(Some(0)))));
        assert!(s.foreign(Some(&PeerOwner(Some(1001)))));
        assert!(s.foreign(Some(&PeerOwner(None))));
        assert!(s.foreign(None));
        assert!(!Security::default().foreign(None));
        // No token configured: nothing matches.
        assert!(!s.ws_token_ok(""));
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
