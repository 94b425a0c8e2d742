//! The event WebSocket `/events`: typed messages `{type, stream, seq, ts, data}` for job
//! logs and progress, instance state changes and component output, with subscribe and
//! replay-from-`seq`.
//!
//! Streams and their sequences:
//! - `jobs`, `job:<id>`, `instances`, `instance:<id>` are views of the daemon's event bus:
//!   `seq` is the bus position, one order over all of them.
//! - `output:<instanceId>_<component>` is one component's output: `seq` is the record's
//!   number in that component's log (the same numbers as `GET …/logs?since=`).
//!
//! A subscription with `since` replays what is still buffered after it; when some of it is
//! gone, a `gap` message says how much, so the client knows to re-read over HTTP.

use crate::AppState;
use crate::security::Security;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Session};
use launcher_core::events::BusEvent;
use launcher_core::logs::{Event, Replay};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// Largest accepted client frame.
const MAX_FRAME: usize = 64 * 1024;
/// Frames queued for a slow client before its forwarders wait (and then lag).
const OUTBOX: usize = 1024;
/// Output subscriptions one socket may hold.
const MAX_OUTPUT_STREAMS: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMsg {
    Subscribe {
        streams: Vec<String>,
        #[serde(default)]
        since: Option<u64>,
    },
    Unsubscribe {
        streams: Vec<String>,
    },
    Ping {
        #[serde(default)]
        timestamp: Option<Value>,
    },
    Auth {
        token: String,
    },
}

/// A stream name, parsed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Stream {
    Jobs,
    Job(String),
    Instances,
    Instance(String),
    Output(String, String),
}

impl Stream {
    fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("unknown stream {s:?}");
        Ok(match s.split_once(':') {
            None if s == "jobs" => Self::Jobs,
            None if s == "instances" => Self::Instances,
            Some(("job", id)) => Self::Job(crate::ids::instance_id(id).map_err(|_| bad())?.into()),
            Some(("instance", id)) => {
                Self::Instance(crate::ids::instance_id(id).map_err(|_| bad())?.into())
            }
            Some(("output", session)) => {
                let (id, kind) = session
                    .rsplit_once('_')
                    .filter(|(i, k)| {
                        crate::ids::instance_id(i).is_ok() && crate::ids::component(k).is_ok()
                    })
                    .ok_or_else(bad)?;
                Self::Output(id.into(), kind.into())
            }
            _ => return Err(bad()),
        })
    }

    fn name(&self) -> String {
        match self {
            Self::Jobs => "jobs".into(),
            Self::Job(id) => format!("job:{id}"),
            Self::Instances => "instances".into(),
            Self::Instance(id) => format!("instance:{id}"),
            Self::Output(id, kind) => format!("output:{id}_{kind}"),
        }
    }

    /// Whether a bus event belongs to this (bus) stream.
    fn matches(&self, ev: &BusEvent) -> bool {
        match self {
            Self::Jobs => ev.topic.starts_with("job:"),
            Self::Instances => ev.topic.starts_with("instance:"),
            Self::Job(id) => ev.topic.strip_prefix("job:") == Some(id),
            Self::Instance(id) => ev.topic.strip_prefix("instance:") == Some(id),
            Self::Output(..) => false,
        }
    }
}

fn frame(kind: &str, stream: Option<&str>, seq: Option<u64>, data: Value) -> String {
    json!({
        "type": kind,
        "stream": stream,
        "seq": seq,
        "ts": chrono::Utc::now(),
        "data": data,
    })
    .to_string()
}

fn bus_frame(ev: &BusEvent) -> String {
    json!({
        "type": ev.kind,
        "stream": ev.topic,
        "seq": ev.seq,
        "ts": ev.ts,
        "data": ev.data,
    })
    .to_string()
}

/// Bus streams of one socket, each with the last bus sequence its replay covered: the
/// shared forwarder delivers an event for a stream only past that point, so a stream added
/// later gets neither a gap nor a duplicate between its replay and its live events.
type BusStreams = Arc<Mutex<BTreeMap<Stream, u64>>>;

/// One socket's subscriptions. Bus streams share one forwarder that filters on the map;
/// each output stream has its own forwarder task.
struct Subscriptions {
    bus: BusStreams,
    bus_task: Option<JoinHandle<()>>,
    outputs: HashMap<Stream, JoinHandle<()>>,
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        if let Some(t) = self.bus_task.take() {
            t.abort();
        }
        for (_, t) in self.outputs.drain() {
            t.abort();
        }
    }
}

/// `GET /events` (upgrade).
pub(crate) async fn events(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    sec: web::Data<Security>,
) -> Result<HttpResponse, actix_web::Error> {
    let (res, ws, stream, needs_auth) = super::terminal::upgrade(&req, body)?;
    // Not tied to one instance: only the total cap applies.
    let slot = state.ws.acquire(None);
    let state = state.into_inner();
    let sec = sec.into_inner();
    actix_web::rt::spawn(async move {
        let _slot = match slot {
            Ok(slot) => slot,
            Err(reason) => return crate::ws_limits::refuse(ws, reason).await,
        };
        let stream = stream.max_frame_size(MAX_FRAME).aggregate_continuations();
        run(ws, stream, state, &sec, needs_auth).await;
    });
    Ok(res)
}

async fn authenticate(stream: &mut actix_ws::AggregatedMessageStream, sec: &Security) -> bool {
    let first = tokio::time::timeout(Duration::from_secs(5), stream.recv()).await;
    matches!(
        first,
        Ok(Some(Ok(actix_ws::AggregatedMessage::Text(ref t))))
            if matches!(serde_json::from_str::<ClientMsg>(t), Ok(ClientMsg::Auth { ref token }) if sec.ws_token_ok(token))
    )
}

async fn run(
    mut ws: Session,
    mut stream: actix_ws::AggregatedMessageStream,
    state: Arc<AppState>,
    sec: &Security,
    needs_auth: bool,
) {
    if needs_auth && !authenticate(&mut stream, sec).await {
        let _ = ws
            .text(frame(
                "error",
                None,
                None,
                json!({"code": "unauthorized", "detail": "authentication required: send {\"type\":\"auth\",\"token\":…} first"}),
            ))
            .await;
        let _ = ws
            .close(Some(CloseReason {
                code: CloseCode::Other(super::terminal::CLOSE_UNAUTHORIZED),
                description: Some("authentication required".into()),
            }))
            .await;
        return;
    }
    let (out_tx, mut out_rx) = mpsc::channel::<String>(OUTBOX);
    let mut subs = Subscriptions {
        bus: Arc::new(Mutex::new(BTreeMap::new())),
        bus_task: None,
        outputs: HashMap::new(),
    };
    let hello = frame(
        "hello",
        None,
        None,
        json!({
            "next_seq": state.events.next_seq(),
            "streams": ["jobs", "job:<id>", "instances", "instance:<id>", "output:<instanceId>_<component>"],
        }),
    );
    if ws.text(hello).await.is_err() {
        return;
    }
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            msg = stream.recv() => {
                let keep = match msg {
                    Some(Ok(actix_ws::AggregatedMessage::Text(t))) => {
                        let reply = on_text(&state, &mut subs, &out_tx, &t).await;
                        ws.text(reply).await.is_ok()
                    }
                    Some(Ok(actix_ws::AggregatedMessage::Ping(b))) => ws.pong(&b).await.is_ok(),
                    Some(Ok(actix_ws::AggregatedMessage::Binary(_))) => ws
                        .text(frame("error", None, None, json!({"code": "binary_unsupported", "detail": "send JSON text frames"})))
                        .await
                        .is_ok(),
                    Some(Ok(actix_ws::AggregatedMessage::Pong(_))) => true,
                    Some(Ok(actix_ws::AggregatedMessage::Close(_))) | None | Some(Err(_)) => false,
                };
                if !keep {
                    break;
                }
            }
            Some(text) = out_rx.recv() => {
                if ws.text(text).await.is_err() {
                    break;
                }
            }
            _ = shutdown.changed() => {
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

fn error(code: &str, detail: impl Into<String>) -> String {
    frame(
        "error",
        None,
        None,
        json!({"code": code, "detail": detail.into()}),
    )
}

async fn on_text(
    state: &Arc<AppState>,
    subs: &mut Subscriptions,
    out: &mpsc::Sender<String>,
    text: &str,
) -> String {
    let msg = match serde_json::from_str::<ClientMsg>(text) {
        Ok(m) => m,
        Err(e) => return error("bad_message", format!("unreadable message: {e}")),
    };
    match msg {
        ClientMsg::Ping { timestamp } => frame("pong", None, None, json!({"timestamp": timestamp})),
        ClientMsg::Auth { .. } => frame("ack", None, None, json!({"auth": "not needed"})),
        ClientMsg::Unsubscribe { streams } => {
            let mut gone = Vec::new();
            for s in streams.iter().filter_map(|s| Stream::parse(s).ok()) {
                if let Some(t) = subs.outputs.remove(&s) {
                    t.abort();
                    gone.push(s.name());
                } else if lock(&subs.bus).remove(&s).is_some() {
                    gone.push(s.name());
                }
            }
            frame("unsubscribed", None, None, json!({"streams": gone}))
        }
        ClientMsg::Subscribe { streams, since } => {
            let parsed: Result<Vec<Stream>, String> =
                streams.iter().map(|s| Stream::parse(s)).collect();
            let parsed = match parsed {
                Ok(p) if !p.is_empty() => p,
                Ok(_) => return error("bad_message", "subscribe needs at least one stream"),
                Err(e) => return error("unknown_stream", e),
            };
            let (bus_streams, outputs): (Vec<Stream>, Vec<Stream>) = parsed
                .into_iter()
                .partition(|s| !matches!(s, Stream::Output(..)));
            if subs.outputs.len() + outputs.len() > MAX_OUTPUT_STREAMS {
                return error(
                    "too_many_streams",
                    format!("at most {MAX_OUTPUT_STREAMS} output streams per socket"),
                );
            }
            let mut opened = Vec::new();
            for s in outputs {
                let Stream::Output(id, kind) = &s else {
                    continue;
                };
                let component = match state.catalog.supervisor().component(id, kind).await {
                    Ok(c) => c,
                    Err(e) => return error("not_found", e.to_string()),
                };
                let replay = since.map_or(Replay::Tail(0), |n| Replay::FromSeq(n + 1));
                let sub = component.logs().subscribe(replay);
                let name = s.name();
                if let Some(old) = subs.outputs.remove(&s) {
                    old.abort();
                }
                let task = tokio::spawn(forward_output(
                    sub,
                    name.clone(),
                    id.clone(),
                    kind.clone(),
                    out.clone(),
                ));
                subs.outputs.insert(s, task);
                opened.push(name);
            }
            if !bus_streams.is_empty() {
                let names: Vec<String> = bus_streams.iter().map(Stream::name).collect();
                // Replay is per subscribe call: only the newly named streams replay.
                let sub = state.events.subscribe(since);
                let replay: Vec<String> = sub
                    .replay
                    .iter()
                    .filter(|e| bus_streams.iter().any(|s| s.matches(e)))
                    .map(|e| bus_frame(e))
                    .collect();
                if sub.missed > 0 {
                    let _ = out
                        .send(frame("gap", None, None, json!({"missed": sub.missed, "detail": "older events are no longer buffered; re-read state over HTTP"})))
                        .await;
                }
                for f in replay {
                    if out.send(f).await.is_err() {
                        break;
                    }
                }
                lock(&subs.bus).extend(bus_streams.into_iter().map(|s| (s, sub.covered)));
                if subs.bus_task.is_none() {
                    subs.bus_task = Some(tokio::spawn(forward_bus(
                        sub.live,
                        subs.bus.clone(),
                        out.clone(),
                    )));
                }
                opened.extend(names);
            }
            frame(
                "subscribed",
                None,
                None,
                json!({"streams": opened, "since": since}),
            )
        }
    }
}

fn lock(set: &Mutex<BTreeMap<Stream, u64>>) -> std::sync::MutexGuard<'_, BTreeMap<Stream, u64>> {
    // Only insert/remove/iterate happen under this lock; none can leave it inconsistent.
    set.lock().unwrap_or_else(|e| e.into_inner())
}

async fn forward_bus(
    mut live: broadcast::Receiver<Arc<BusEvent>>,
    streams: BusStreams,
    out: mpsc::Sender<String>,
) {
    loop {
        let text = match live.recv().await {
            Ok(ev) => {
                let wanted = lock(&streams)
                    .iter()
                    .any(|(s, covered)| ev.seq > *covered && s.matches(&ev));
                if !wanted {
                    continue;
                }
                bus_frame(&ev)
            }
            Err(broadcast::error::RecvError::Lagged(n)) => frame(
                "gap",
                None,
                None,
                json!({"missed": n, "detail": "this client fell behind; re-read state over HTTP"}),
            ),
            Err(broadcast::error::RecvError::Closed) => break,
        };
        if out.send(text).await.is_err() {
            break;
        }
    }
}

async fn forward_output(
    mut sub: launcher_core::logs::Subscription,
    stream: String,
    id: String,
    kind: String,
    out: mpsc::Sender<String>,
) {
    let record = |r: &launcher_core::logs::Record| {
        json!({
            "type": "component.output",
            "stream": stream,
            "seq": r.seq,
            "ts": r.ts,
            "data": {"instance_id": id, "component": kind, "text": String::from_utf8_lossy(&r.data)},
        })
        .to_string()
    };
    if sub.evicted > 0 {
        let gap = frame(
            "gap",
            Some(&stream),
            None,
            json!({"missed": sub.evicted, "detail": "older output is no longer buffered"}),
        );
        if out.send(gap).await.is_err() {
            return;
        }
    }
    for r in std::mem::take(&mut sub.replay) {
        if out.send(record(&r)).await.is_err() {
            return;
        }
    }
    while let Some(ev) = sub.recv().await {
        let text = match ev {
            Event::Record(r) => record(&r),
            Event::Skipped { missed } => frame(
                "gap",
                Some(&stream),
                None,
                json!({"missed": missed, "detail": "this client fell behind"}),
            ),
        };
        if out.send(text).await.is_err() {
            return;
        }
    }
}
