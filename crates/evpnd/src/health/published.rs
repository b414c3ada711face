//! The published health: the manager owns one; the checks' runner
//! publishes into it, reads and the registrar follow it.
use tokio::sync::watch;

use super::Summary;

/// The published health (the manager owns one).
pub struct Health {
    tx: watch::Sender<Summary>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            tx: watch::channel(Summary::default()).0,
        }
    }
}

impl Health {
    /// The current summary.
    pub fn summary(&self) -> Summary {
        self.tx.borrow().clone()
    }

    /// Follow the summary (the registrar sends a heartbeat on a change).
    pub fn subscribe(&self) -> watch::Receiver<Summary> {
        self.tx.subscribe()
    }

    pub(crate) fn publish(&self, s: Summary) {
        self.tx.send_replace(s);
    }
}
