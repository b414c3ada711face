//! Durability of a daemon's state directory, shared by `evpnd` and `evpnr`:
//! the health record of the state store (metrics, events, gRPC health) and
//! the test/chaos fault hook.
//!
//! Fault hook (for tests and the chaos run only, documented in
//! `docs/runbook.md`): while the file `<state-dir>/.fault` exists, every
//! save of the state store fails as if the disk were full (`enospc`, the
//! default) or read-only (the file contains `erofs`). Any process can
//! create and remove it at run time; reads are not affected.
use std::{
    collections::BTreeMap,
    io::{Error, ErrorKind},
    path::Path,
    sync::Mutex,
};

use prometheus_client::{
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};
use tokio::sync::watch;

use crate::events::{Event, EventBroker};

/// Name of the fault-injection file in a state directory.
pub const FAULT_FILE: &str = ".fault";

/// The fault injected into the store at `dir`, if any: an error of the kind
/// a full (`enospc`) or read-only (`erofs`) file system gives.
pub fn injected_fault(dir: &Path) -> std::io::Result<()> {
    let Ok(text) = std::fs::read_to_string(dir.join(FAULT_FILE)) else {
        return Ok(());
    };
    Err(if text.trim().eq_ignore_ascii_case("erofs") {
        Error::new(
            ErrorKind::ReadOnlyFilesystem,
            "Read-only file system (injected by the .fault file)",
        )
    } else {
        Error::new(
            ErrorKind::StorageFull,
            "No space left on device (injected by the .fault file)",
        )
    })
}

/// Health of a daemon's state store: `<prefix>_store_healthy` (1/0),
/// `<prefix>_store_failures_total`, an error-level `state-store-failed`
/// event when saves start failing and an info `state-store-recovered` when
/// one succeeds again, and the daemon's gRPC health (NOT_SERVING while the
/// store fails).
pub struct StoreHealth {
    failing: Mutex<Option<String>>,
    /// A problem only an operator can resolve (e.g. evpnd's state file is
    /// missing while managed objects exist); unhealthy until restart.
    held: Mutex<Option<String>>,
    healthy: Gauge,
    failures: Counter,
    serving: watch::Sender<bool>,
    broker: EventBroker,
}

impl StoreHealth {
    /// Register the metrics in `reg` (which carries the daemon's prefix).
    pub fn register(
        reg: &mut Registry,
        broker: EventBroker,
        serving: watch::Sender<bool>,
    ) -> StoreHealth {
        let h = StoreHealth {
            failing: Mutex::new(None),
            held: Mutex::new(None),
            healthy: Gauge::default(),
            failures: Counter::default(),
            serving,
            broker,
        };
        h.healthy.set(1);
        reg.register(
            "store_healthy",
            "1 while the state store saves, 0 after a save failed until one succeeds again",
            h.healthy.clone(),
        );
        reg.register(
            "store_failures",
            "Failed saves of the state store",
            h.failures.clone(),
        );
        h
    }

    fn failing(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.failing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The error of the last failed save while the store is failing.
    pub fn error(&self) -> Option<String> {
        self.failing().clone()
    }

    fn held_guard(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The operator problem set by [`StoreHealth::hold`], if any.
    pub fn held(&self) -> Option<String> {
        self.held_guard().clone()
    }

    /// Report a problem with the state directory that only an operator can
    /// resolve: unhealthy (metric 0, NOT_SERVING) until the process restarts.
    /// The caller emits its own event.
    pub fn hold(&self, reason: &str) {
        *self.held_guard() = Some(reason.to_string());
        self.healthy.set(0);
        self.serving.send_replace(false);
    }

    /// Record a failed save of `path`. Returns true if the store was healthy
    /// until now.
    pub fn failed(&self, path: &Path, error: &str) -> bool {
        self.failures.inc();
        let first = self.failing().replace(error.to_string()).is_none();
        tracing::error!(error, path = %path.display(), "state-save-failed");
        if first {
            self.healthy.set(0);
            self.serving.send_replace(false);
            self.event(Event::StateStoreFailed, path, &[("error", error)]);
        }
        first
    }

    /// Record a successful save of `path`. Returns true if the store was
    /// failing until now (it recovered).
    pub fn ok(&self, path: &Path) -> bool {
        let Some(was) = self.failing().take() else {
            return false;
        };
        if self.held().is_none() {
            self.healthy.set(1);
            self.serving.send_replace(true);
        }
        self.event(Event::StateStoreRecovered, path, &[("last-error", &was)]);
        true
    }

    fn event(&self, event: Event, path: &Path, kv: &[(&str, &str)]) {
        let mut f: BTreeMap<String, String> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        f.insert("path".into(), path.display().to_string());
        self.broker.emit(event, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fault_file_fails_saves_until_removed() {
        let dir = std::env::temp_dir().join(format!("durable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(injected_fault(&dir).is_ok());
        std::fs::write(dir.join(FAULT_FILE), "").unwrap();
        assert_eq!(
            injected_fault(&dir).unwrap_err().kind(),
            ErrorKind::StorageFull
        );
        std::fs::write(dir.join(FAULT_FILE), "erofs\n").unwrap();
        assert_eq!(
            injected_fault(&dir).unwrap_err().kind(),
            ErrorKind::ReadOnlyFilesystem
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn health_follows_failures_and_recovery() {
        let mut reg = Registry::default();
        let (tx, rx) = watch::channel(true);
        let h = StoreHealth::register(&mut reg, EventBroker::new("", 8), tx);
        let p = Path::new("/x");
        assert!(!h.ok(p));
        assert!(h.failed(p, "full"));
        assert!(!h.failed(p, "still full"));
        assert!(!*rx.borrow());
        assert_eq!(h.error().as_deref(), Some("still full"));
        assert_eq!(h.failures.get(), 2);
        assert!(h.ok(p));
        assert!(*rx.borrow());
        assert_eq!(h.healthy.get(), 1);
        assert!(h.error().is_none());
        h.hold("state file missing");
        assert!(h.failed(p, "full"));
        assert!(h.ok(p));
        assert!(!*rx.borrow(), "held stays unhealthy");
        assert_eq!(h.healthy.get(), 0);
    }
}
