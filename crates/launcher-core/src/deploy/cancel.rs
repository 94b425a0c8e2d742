//! A cancellation flag the HTTP side can trip while the runner awaits it.

use std::sync::Arc;
use tokio::sync::watch;

/// Cloneable cancellation token: every clone sees `cancel()` from any other.
#[derive(Debug, Clone)]
pub struct CancelToken {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelToken {
    /// A token that is not canceled.
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(false);
        Self { tx: Arc::new(tx) }
    }

    /// Trips the token; idempotent.
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    /// Whether `cancel()` was called.
    pub fn is_canceled(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the token is canceled (at once if it already is).
    pub async fn canceled(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`, so `wait_for` can only end by seeing `true`.
        let _ = rx.wait_for(|c| *c).await;
    }
}
