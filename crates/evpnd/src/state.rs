//! evpnd's desired state (what this host should have), persisted crash-safely
//! after every committed change, and the snapshot that reads are served from.
//!
//! Invariant: the state file is replaced atomically (temp file in the same
//! directory, fsync, rename, fsync of the directory), so a crash at any
//! moment leaves either the old or the new state, never a torn one.
use std::{
    collections::BTreeMap,
    io::Write,
    net::IpAddr,
    path::{Path, PathBuf},
};

use evpn_model::{Error, Mac};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Format version of the state file.
pub const STATE_VERSION: u32 = 1;

/// Everything this host should have.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostState {
    pub version: u32,
    pub evpns: BTreeMap<String, Evpn>,
}

/// One eVPN on this host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evpn {
    pub slug: String,
    pub vni: u32,
    pub rd: String,
    pub import_targets: Vec<String>,
    pub export_targets: Vec<String>,
    pub vtep: IpAddr,
    pub enabled: bool,
    pub mtu: u32,
    /// Dataplane bridge domain (VPP bd_id; also the loopback instance).
    pub bd_id: u32,
    pub created_ms: u64,
    pub modified_ms: u64,
    pub bvi: Option<Bvi>,
}

/// The BVI of one eVPN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bvi {
    /// The per-host MAC the BVI carries when it is a candidate.
    pub instance_mac: Mac,
    pub mtu: u32,
    /// Set while this host is the group's primary.
    pub binding: Option<Binding>,
    pub created_ms: u64,
    pub modified_ms: u64,
}

/// A bound GroupBVI: the vMAC and gateway addresses this BVI holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    pub group_id: String,
    pub vmac: Mac,
    pub addresses: Vec<IpNet>,
}

impl Bvi {
    /// The MAC the interface must carry now.
    pub fn current_mac(&self) -> Mac {
        self.binding.as_ref().map_or(self.instance_mac, |b| b.vmac)
    }

    /// The addresses the interface must carry now.
    pub fn current_addresses(&self) -> Vec<IpNet> {
        self.binding
            .as_ref()
            .map(|b| b.addresses.clone())
            .unwrap_or_default()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The state file.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    /// A store at `<dir>/state.json`; the directory is created if missing.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Unavailable(format!("state directory {}: {e}", dir.display())))?;
        Ok(Store {
            path: dir.join("state.json"),
        })
    }

    /// Path of the state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Whether the state file exists.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Whether the state directory takes a durable write now (a small file
    /// written, fsynced and removed; fails like a save while a fault is
    /// injected).
    pub fn probe(&self) -> Result<(), Error> {
        let io = |e: std::io::Error| {
            Error::Unavailable(format!("write to {}: {e}", self.dir().display()))
        };
        evpn_daemon::durable::injected_fault(self.dir()).map_err(io)?;
        let mut tmp = tempfile::NamedTempFile::new_in(self.dir()).map_err(io)?;
        tmp.write_all(b"probe").map_err(io)?;
        tmp.as_file().sync_all().map_err(io)
    }

    /// Load the state; a missing file is an empty state. Temp files left by
    /// a crash before their rename are removed.
    pub fn load(&self) -> Result<HostState, Error> {
        if let Err(e) = evpn_base::fs::remove_temps(&self.path) {
            tracing::warn!(error = %e, "state-temp-not-removed");
        }
        match std::fs::read(&self.path) {
            Ok(b) => {
                let s: HostState = serde_json::from_slice(&b).map_err(|e| {
                    Error::Internal(format!(
                        "state file {} is corrupt: {e}",
                        self.path.display()
                    ))
                })?;
                if s.version != STATE_VERSION {
                    return Err(Error::Internal(format!(
                        "state file {} has version {}, expected {STATE_VERSION}",
                        self.path.display(),
                        s.version
                    )));
                }
                Ok(s)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HostState {
                version: STATE_VERSION,
                evpns: BTreeMap::new(),
            }),
            Err(e) => Err(Error::Unavailable(format!(
                "read {}: {e}",
                self.path.display()
            ))),
        }
    }

    /// Atomically replace the state file. Fails while a fault is injected
    /// (see [`evpn_daemon::durable::injected_fault`]).
    pub fn save(&self, s: &HostState) -> Result<(), Error> {
        let dir = self.dir();
        let io =
            |e: std::io::Error| Error::Unavailable(format!("write {}: {e}", self.path.display()));
        evpn_daemon::durable::injected_fault(dir).map_err(io)?;
        let bytes = serde_json::to_vec_pretty(s).map_err(|e| Error::Internal(e.to_string()))?;
        evpn_base::fs::write_atomic_in_place(&self.path, &bytes).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_and_load_round_trip_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::open(&dir.path().join("sub")).unwrap();
        let empty = st.load().unwrap();
        assert!(empty.evpns.is_empty());
        let mut s = empty.clone();
        s.evpns.insert(
            "test".into(),
            Evpn {
                slug: "test".into(),
                vni: 100,
                rd: "192.0.2.1:100".into(),
                import_targets: vec!["65000:100".into()],
                export_targets: vec!["65000:100".into()],
                vtep: "192.0.2.1".parse().unwrap(),
                enabled: true,
                mtu: 1500,
                bd_id: 10000,
                created_ms: 1,
                modified_ms: 2,
                bvi: Some(Bvi {
                    instance_mac: "02:00:00:00:00:01".parse().unwrap(),
                    mtu: 1500,
                    binding: Some(Binding {
                        group_id: "test".into(),
                        vmac: "02:00:00:00:00:02".parse().unwrap(),
                        addresses: vec!["172.16.0.32/24".parse().unwrap()],
                    }),
                    created_ms: 3,
                    modified_ms: 4,
                }),
            },
        );
        st.save(&s).unwrap();
        assert_eq!(st.load().unwrap(), s);
        // No temp files are left behind.
        let n = std::fs::read_dir(dir.path().join("sub")).unwrap().count();
        assert_eq!(n, 1);
    }

    #[test]
    fn corrupt_file_is_an_error_not_an_empty_state() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::open(dir.path()).unwrap();
        std::fs::write(st.path(), b"{not json").unwrap();
        assert!(matches!(st.load(), Err(Error::Internal(_))));
    }
}

/// Versioned persistence: synchronous saves and write-behind saves of the
/// latest state, never letting an older state overwrite a newer one.
///
/// Write-behind is used only for binding changes when a registry owns the
/// bindings: if evpnd dies before such a save, the state file is one bind or
/// release behind the dataplane, and the start-up reconcile resolves it from
/// what the dataplane actually holds (a binding the dataplane does not hold
/// is dropped, one it holds that the file does not know is released), so
/// the registry re-binds if needed. Every other change is saved before the
/// RPC answers.
pub struct Persister {
    store: Store,
    /// Health of the store (metrics, events, gRPC health); `None` in unit
    /// tests.
    health: Option<evpn_daemon::durable::StoreHealth>,
    version: std::sync::atomic::AtomicU64,
    /// Highest version on disk; held while writing.
    written: std::sync::Mutex<u64>,
    pending: std::sync::Mutex<Option<(u64, HostState)>>,
    wake: tokio::sync::Notify,
}

impl Persister {
    /// A persister over `store`.
    pub fn new(
        store: Store,
        health: Option<evpn_daemon::durable::StoreHealth>,
    ) -> std::sync::Arc<Persister> {
        std::sync::Arc::new(Persister {
            store,
            health,
            version: Default::default(),
            written: std::sync::Mutex::new(0),
            pending: std::sync::Mutex::new(None),
            wake: tokio::sync::Notify::new(),
        })
    }

    fn next(&self) -> u64 {
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1
    }

    fn write(&self, v: u64, st: &HostState) -> Result<(), Error> {
        let mut w = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if v <= *w {
            return Ok(());
        }
        self.record(self.store.save(st))?;
        *w = v;
        Ok(())
    }

    /// Record the outcome of a save (or probe) in the store's health.
    fn record(&self, r: Result<(), Error>) -> Result<(), Error> {
        if let Some(h) = &self.health {
            match &r {
                Ok(()) => {
                    h.ok(self.store.path());
                }
                Err(e) => {
                    if h.failed(self.store.path(), &e.to_string()) {
                        // Wake the background writer: it retries from now on.
                        self.wake.notify_one();
                    }
                }
            }
        }
        r
    }

    /// The store's health, if tracked.
    pub fn health(&self) -> Option<&evpn_daemon::durable::StoreHealth> {
        self.health.as_ref()
    }

    /// Path of the state file.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// True while saves fail.
    pub fn failing(&self) -> bool {
        self.health.as_ref().is_some_and(|h| h.error().is_some())
    }

    /// Save now; returns once `st` (or a newer state) is on disk.
    pub fn save(&self, st: &HostState) -> Result<(), Error> {
        let v = self.next();
        self.write(v, st)
    }

    /// Save soon, in the background writer.
    pub fn save_behind(&self, st: &HostState) {
        let v = self.next();
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some((v, st.clone()));
        self.wake.notify_one();
    }

    /// Write whatever is pending (also used at shutdown). A failed write
    /// stays pending (unless a newer state was queued meanwhile).
    pub fn flush(&self) -> Result<(), Error> {
        let p = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match p {
            Some((v, st)) => self.write(v, &st).inspect_err(|_| {
                let mut g = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                if g.is_none() {
                    *g = Some((v, st));
                }
            }),
            None => Ok(()),
        }
    }

    /// The background writer; runs until the task is dropped. While saves
    /// fail it retries (1 s, doubling to 8 s): the pending write-behind
    /// save, or else a probe of the directory, so the store reports healthy
    /// again once the disk takes writes.
    pub async fn run(self: std::sync::Arc<Self>) {
        const MIN: std::time::Duration = std::time::Duration::from_secs(1);
        const MAX: std::time::Duration = std::time::Duration::from_secs(8);
        let mut delay = MIN;
        loop {
            if self.failing() {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(delay) => {}
                }
            } else {
                self.wake.notified().await;
            }
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || {
                me.flush()?;
                if me.failing() {
                    me.record(me.store.probe())?;
                }
                Ok::<(), Error>(())
            })
            .await;
            delay = if self.failing() {
                (delay * 2).min(MAX)
            } else {
                MIN
            };
        }
    }
}

#[cfg(test)]
mod persister_tests {
    use super::*;

    #[tokio::test]
    async fn an_older_state_never_overwrites_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = Persister::new(Store::open(dir.path()).unwrap(), None);
        let mut a = HostState {
            version: STATE_VERSION,
            ..Default::default()
        };
        a.evpns.clear();
        let mut b = a.clone();
        b.version = STATE_VERSION;
        p.save_behind(&a); // version 1, pending
        let mut newer = b.clone();
        newer.evpns.insert(
            "x".into(),
            Evpn {
                slug: "x".into(),
                vni: 1,
                rd: "1:1".into(),
                import_targets: vec![],
                export_targets: vec![],
                vtep: "192.0.2.1".parse().unwrap(),
                enabled: true,
                mtu: 1500,
                bd_id: 1,
                created_ms: 0,
                modified_ms: 0,
                bvi: None,
            },
        );
        p.save(&newer).unwrap(); // version 2, on disk
        p.flush().unwrap(); // the stale version 1 is skipped
        let st = Store::open(dir.path()).unwrap().load().unwrap();
        assert!(st.evpns.contains_key("x"));
        p.save_behind(&a); // version 3 wins
        p.flush().unwrap();
        assert!(
            Store::open(dir.path())
                .unwrap()
                .load()
                .unwrap()
                .evpns
                .is_empty()
        );
    }
}
