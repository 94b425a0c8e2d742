//! The terminal WebSocket `/ws/{instanceId}_{component}`, as the frontend speaks it.
//!
//! A socket is a viewer of a component's output, never its owner: the process and its
//! output pipeline live in the supervisor whether or not anyone watches, so any number of
//! viewers can attach, detach and reconnect. On connect a viewer gets a `status` line, then
//! the recent scrollback as ordinary `output` messages, then live output. No shell is ever
//! spawned: a stopped component's socket stays open and starts flowing when it starts.

use crate::AppState;
use crate::security::{NeedsWsAuth, Security, WS_TOKEN_PROTOCOL, offered_ws_token};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Session};
use launcher_core::logs::{Event, Replay};
use launcher_core::supervisor::{Component, State, Status, SupervisorError};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// Records of scrollback replayed to a new viewer.
const REPLAY_RECORDS: usize = 2000;
/// Largest `output` message when replaying (bytes); keeps frames reasonable.
const REPLAY_CHUNK: usize = 64 * 1024;
/// Largest accepted client frame.
const MAX_FRAME: usize = 256 * 1024;

/// Close code: the session id is malformed.
pub const CLOSE_BAD_SESSION: u16 = 4400;
/// Close code: the token was missing or wrong.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// Close code: no such instance or component.
pub const CLOSE_NOT_FOUND: u16 = 4404;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMsg {
    Input {
        data: String,
    },
    Resize {
        cols: u32,
        rows: u32,
    },
    Ping {
        #[serde(default)]
        timestamp: Option<serde_json::Value>,
    },
    RequestHistory {},
    Auth {
        token: String,
    },
}

fn status_text(kind: &str, s: &Status) -> String {
    match s.state {
        State::Running => format!(
            "{kind} is running{}",
            s.pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        ),
        State::Starting => format!("{kind} is starting"),
        State::Stopping => format!("{kind} is stopping"),
        State::Stopped => match &s.last_exit {
            Some(e) => format!(
                "{kind} is not running (last run: {}); output appears here when it starts",
                e.describe()
            ),
            None => format!("{kind} is not running; output appears here when it starts"),
        },
        State::Backoff => format!("{kind} crashed and will be restarted shortly"),
        State::Failed => format!(
            "{kind} failed: {}; start it again to retry",
            s.failure
                .as_ref()
                .map(|f| f.reason.as_str())
                .unwrap_or("unknown reason")
        ),
    }
}

async fn send(ws: &mut Session, v: serde_json::Value) -> bool {
    ws.text(v.to_string()).await.is_ok()
}

async fn close(mut ws: Session, code: u16, kind: &str, message: &str) {
    let _ = send(&mut ws, json!({"type": kind, "message": message})).await;
    let _ = ws
        .close(Some(CloseReason {
            code: CloseCode::Other(code),
            description: Some(message.chars().take(100).collect()),
        }))
        .await;
}

/// Accepts a WebSocket upgrade, echoing the token sub-protocol when the client offered one
/// (browsers drop a socket whose offered protocol is not answered). The flag says the
/// socket must still authenticate with its first message.
pub(super) fn upgrade(
    req: &HttpRequest,
    body: web::Payload,
) -> Result<(HttpResponse, Session, actix_ws::MessageStream, bool), actix_web::Error> {
    let offered = offered_ws_token(req).map(|t| format!("{WS_TOKEN_PROTOCOL}{t}"));
    let protocols: Vec<&str> = offered.iter().map(String::as_str).collect();
    let (res, ws, stream) = actix_ws::handle_with_protocols(req, body, &protocols)?;
    let needs_auth = req.extensions().get::<NeedsWsAuth>().is_some();
    Ok((res, ws, stream, needs_auth))
}

/// `GET /ws/{session}` (upgrade).
pub(crate) async fn terminal(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    sec: web::Data<Security>,
    path: web::Path<String>,
) -> Result<HttpResponse, actix_web::Error> {
    let (res, ws, stream, needs_auth) = upgrade(&req, body)?;
    let session = path.into_inner();
    // The instance part of `<instance>_<component>` (split at the last '_', as parsed
    // below); a malformed id still counts against a key of its own.
    let instance = session
        .rsplit_once('_')
        .map_or(session.as_str(), |(i, _)| i);
    let slot = state.ws.acquire(Some(instance));
    let state = state.into_inner();
    let sec = sec.into_inner();
    actix_web::rt::spawn(async move {
        let _slot = match slot {
            Ok(slot) => slot,
            Err(reason) => return crate::ws_limits::refuse(ws, reason).await,
        };
        let stream = stream.max_frame_size(MAX_FRAME).aggregate_continuations();
        run(ws, stream, &state, &sec, &session, needs_auth).await;
    });
    Ok(res)
}

async fn authenticate(
    ws: &mut Session,
    stream: &mut actix_ws::AggregatedMessageStream,
    sec: &Security,
) -> bool {
    let first = tokio::time::timeout(Duration::from_secs(5), stream.recv()).await;
    if let Ok(Some(Ok(actix_ws::AggregatedMessage::Text(t)))) = first
        && let Ok(ClientMsg::Auth { token }) = serde_json::from_str::<ClientMsg>(&t)
        && sec.ws_token_ok(&token)
    {
        return send(ws, json!({"type": "status", "message": "authenticated"})).await;
    }
    false
}

async fn run(
    mut ws: Session,
    mut stream: actix_ws::AggregatedMessageStream,
    state: &AppState,
    sec: &Security,
    session: &str,
    needs_auth: bool,
) {
    if needs_auth && !authenticate(&mut ws, &mut stream, sec).await {
        close(
            ws,
            CLOSE_UNAUTHORIZED,
            "error",
            "authentication required: send {\"type\":\"auth\",\"token\":…} first",
        )
        .await;
        return;
    }
    // The frontend builds `<instanceId>_<component>` and splits at the last underscore.
    let Some((id, kind)) = session
        .rsplit_once('_')
        .filter(|(i, k)| crate::ids::instance_id(i).is_ok() && crate::ids::component(k).is_ok())
    else {
        close(
            ws,
            CLOSE_BAD_SESSION,
            "error",
            "malformed terminal session id; expected <instanceId>_<component>",
        )
        .await;
        return;
    };
    let component = match state.catalog.supervisor().component(id, kind).await {
        Ok(c) => c,
        Err(e) => {
            close(ws, CLOSE_NOT_FOUND, "error", &e.to_string()).await;
            return;
        }
    };
    let mut status_rx = component.watch();
    let now = status_rx.borrow_and_update().clone();
    if !send(
        &mut ws,
        json!({"type": "status", "message": format!("connected to the {kind} terminal: {}", status_text(kind, &now))}),
    )
    .await
    {
        return;
    }
    let mut sub = component.logs().subscribe(Replay::Tail(REPLAY_RECORDS));
    let replayed = sub.replay.len();
    let mut chunk: Vec<u8> = Vec::new();
    for r in std::mem::take(&mut sub.replay) {
        chunk.extend_from_slice(&r.data);
        if chunk.len() >= REPLAY_CHUNK && !flush(&mut ws, &mut chunk).await {
            return;
        }
    }
    if !flush(&mut ws, &mut chunk).await {
        return;
    }
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            msg = stream.recv() => {
                let keep = match msg {
                    Some(Ok(actix_ws::AggregatedMessage::Text(t))) => {
                        on_text(&mut ws, &component, kind, &t, replayed).await
                    }
                    Some(Ok(actix_ws::AggregatedMessage::Ping(b))) => ws.pong(&b).await.is_ok(),
                    Some(Ok(actix_ws::AggregatedMessage::Binary(b))) => {
                        // Raw bytes are terminal input too (for clients other than the UI).
                        input(&mut ws, &component, b.to_vec()).await
                    }
                    Some(Ok(actix_ws::AggregatedMessage::Pong(_))) => true,
                    Some(Ok(actix_ws::AggregatedMessage::Close(_))) | None | Some(Err(_)) => false,
                };
                if !keep {
                    break;
                }
            }
            ev = sub.recv() => {
                let ok = match ev {
                    Some(Event::Record(r)) => {
                        send(&mut ws, json!({"type": "output", "data": String::from_utf8_lossy(&r.data)})).await
                    }
                    Some(Event::Skipped { missed }) => {
                        send(&mut ws, json!({"type": "status", "message": format!("[{missed} lines skipped: this viewer fell behind]")})).await
                    }
                    None => false,
                };
                if !ok {
                    break;
                }
            }
            changed = status_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                let s = status_rx.borrow_and_update().clone();
                if !send(&mut ws, json!({"type": "status", "message": status_text(kind, &s), "state": s.state.as_str()})).await {
                    break;
                }
            }
            _ = shutdown.changed() => {
                let _ = send(&mut ws, json!({"type": "status", "message": "the launcher is shutting down"})).await;
                let _ = ws.close(Some(CloseReason {
                    code: CloseCode::Away,
                    description: Some("launcher shutting down".into()),
                })).await;
                return;
            }
        }
    }
    let _ = ws.close(None).await;
}

async fn flush(ws: &mut Session, chunk: &mut Vec<u8>) -> bool {
    if chunk.is_empty() {
        return true;
    }
    let data = String::from_utf8_lossy(chunk).into_owned();
    chunk.clear();
    send(ws, json!({"type": "output", "data": data})).await
}

async fn input(ws: &mut Session, c: &Component, bytes: Vec<u8>) -> bool {
    match c.input(bytes).await {
        Ok(()) => true,
        Err(SupervisorError::NotRunning) => {
            send(
                ws,
                json!({"type": "error", "message": "input refused: the component is not running"}),
            )
            .await
        }
        Err(e) => send(ws, json!({"type": "error", "message": e.to_string()})).await,
    }
}

async fn on_text(ws: &mut Session, c: &Component, kind: &str, text: &str, replayed: usize) -> bool {
    let msg = match serde_json::from_str::<ClientMsg>(text) {
        Ok(m) => m,
        Err(e) => {
            return send(
                ws,
                json!({"type": "error", "message": format!("unreadable message: {e}")}),
            )
            .await;
        }
    };
    match msg {
        ClientMsg::Input { data } => input(ws, c, data.into_bytes()).await,
        ClientMsg::Resize { cols, rows } => {
            let (Ok(cols), Ok(rows)) = (u16::try_from(cols), u16::try_from(rows)) else {
                return send(ws, json!({"type": "error", "message": "terminal size out of range"})).await;
            };
            if cols == 0 || rows == 0 {
                return send(ws, json!({"type": "error", "message": "terminal size must be positive"})).await;
            }
            match c.resize(rows, cols).await {
                Ok(()) => true,
                Err(e) => send(ws, json!({"type": "error", "message": e.to_string()})).await,
            }
        }
        ClientMsg::Ping { timestamp } => {
            send(
                ws,
                json!({"type": "pong", "timestamp": timestamp, "server_time": chrono::Utc::now().timestamp_millis()}),
            )
            .await
        }
        ClientMsg::RequestHistory {} => {
            send(
                ws,
                json!({"type": "status", "message": format!("{kind}: {replayed} earlier output records were replayed on connect")}),
            )
            .await
        }
        ClientMsg::Auth { .. } => true,
    }
}
