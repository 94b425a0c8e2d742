//! Caps on open WebSockets, in total and per instance. Every socket holds a task, a
//! subscription and an outbox; without a cap any local client could open them until the
//! daemon runs out of memory or file descriptors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Close code sent past a cap: 1013 "try again later".
pub(crate) const CLOSE_TRY_LATER: u16 = 1013;

/// The open-socket counters shared by every worker.
#[derive(Debug, Clone)]
pub struct WsLimits {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    max_total: usize,
    max_per_instance: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_instance: HashMap<String, usize>,
}

/// One open socket's place; freed when dropped (when the socket's task ends).
#[derive(Debug)]
pub(crate) struct WsSlot {
    inner: Arc<Inner>,
    instance: Option<String>,
}

impl Default for WsLimits {
    /// 64 sockets in total, 8 per instance.
    fn default() -> Self {
        Self::new(64, 8)
    }
}

impl WsLimits {
    /// At most `max_total` sockets, of which at most `max_per_instance` for one instance.
    pub fn new(max_total: usize, max_per_instance: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                max_total,
                max_per_instance,
                open: Mutex::new(Open::default()),
            }),
        }
    }

    /// Takes a place for a socket (of `instance`, when it belongs to one); past a cap,
    /// the reason to send with the close.
    pub(crate) fn acquire(&self, instance: Option<&str>) -> Result<WsSlot, String> {
        // A poisoned lock only means a panic between two integer updates; the counts hold.
        let mut open = self.inner.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.inner.max_total {
            return Err(format!(
                "too many WebSockets open ({}, server.ws_max_total); close one and retry",
                self.inner.max_total
            ));
        }
        if let Some(id) = instance {
            let n = open.per_instance.entry(id.to_owned()).or_default();
            if *n >= self.inner.max_per_instance {
                return Err(format!(
                    "too many WebSockets open for this instance ({}, server.ws_max_per_instance); \
                     close one and retry",
                    self.inner.max_per_instance
                ));
            }
            *n += 1;
        }
        open.total += 1;
        Ok(WsSlot {
            inner: self.inner.clone(),
            instance: instance.map(str::to_owned),
        })
    }
}

impl Drop for WsSlot {
    fn drop(&mut self) {
        let mut open = self.inner.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(id) = &self.instance
            && let Some(n) = open.per_instance.get_mut(id)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_instance.remove(id);
            }
        }
    }
}

/// Closes a socket refused past a cap with 1013 and the reason (also as an `error`
/// message first, for clients that do not show close reasons).
pub(crate) async fn refuse(mut ws: actix_ws::Session, reason: String) {
    let msg =
        serde_json::json!({"type": "error", "code": "too_many_websockets", "message": reason});
    let _ = ws.text(msg.to_string()).await;
    let _ = ws
        .close(Some(actix_ws::CloseReason {
            code: actix_ws::CloseCode::Other(CLOSE_TRY_LATER),
            // Close reasons are limited to 123 bytes.
            description: Some(reason.chars().take(100).collect()),
        }))
        .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn caps_in_total_and_per_instance_and_frees_on_drop() {
        let l = WsLimits::new(3, 2);
        let a = l.acquire(Some("i1")).unwrap();
        let _b = l.acquire(Some("i1")).unwrap();
        assert!(
            l.acquire(Some("i1"))
                .unwrap_err()
                .contains("ws_max_per_instance")
        );
        let _c = l.acquire(None).unwrap();
        assert!(l.acquire(Some("i2")).unwrap_err().contains("ws_max_total"));
        drop(a);
        let _d = l.acquire(Some("i1")).unwrap();
    }
}
