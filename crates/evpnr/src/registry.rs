//! The registry: members and groups behind one lock (`inner`, never held
//! across an outbound RPC or an `.await`), per-member configuration locks
//! (different members are configured concurrently, one member's operations
//! never interleave), per-group locks (operations on one group, moves above
//! all, are strictly serialised), persistence and observability.
//!
//! Lock order: group lock → member lock → `writer` → `inner`. Resync takes
//! only its member's lock; it never takes a group lock. `writer` serialises
//! changes of the persisted state; the disk write happens under `writer`
//! only, so readers (who take `inner` alone) never wait for an fsync.
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::SystemTime,
};

use evpn_daemon::{
    durable::StoreHealth,
    events::{Event, EventBroker},
};
use evpn_model::Error;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    metrics::{PrimaryLabels, RegistryMetrics, StateLabels},
    model::{Group, State},
    southbound::Southbound,
    store::Store,
};

/// When a change made by [`Registry::mutate_group`] becomes the state in
/// effect (visible to every reader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// At once; written to disk later.
    Now,
    /// Only once it is on disk; not at all if the write fails.
    AfterSave,
}

/// Connection state of a member as seen by evpnr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    Connecting,
    Connected,
    Unreachable,
}

impl Conn {
    pub fn as_str(self) -> &'static str {
        match self {
            Conn::Connecting => "connecting",
            Conn::Connected => "connected",
            Conn::Unreachable => "unreachable",
        }
    }
}

/// Result of the last resync of one membership.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MembershipStatus {
    pub configured: bool,
    pub last_error: String,
    pub last_resync: Option<SystemTime>,
}

/// Run-time (not persisted) state of a member.
pub struct MemberRt {
    pub conn: Conn,
    pub ready: bool,
    pub last_seen: Option<SystemTime>,
    pub last_error: String,
    pub client: crate::client::MemberClient,
    /// Cancels the member's event watcher.
    pub cancel: CancellationToken,
    pub memberships: BTreeMap<String, MembershipStatus>,
    pub resync_pending: bool,
    pub resync_running: bool,
    /// When the last heartbeat arrived (None: none since attach).
    pub last_heartbeat: Option<std::time::Instant>,
    /// Liveness as last derived (`liveness::classify`).
    pub liveness: crate::model::Liveness,
    /// The health reported with the last heartbeat that carried one.
    pub health: Option<evpn_model::health::HealthReport>,
    /// What the member sees of the vMACs it watches (its last heartbeat).
    pub witnesses: Vec<evpn_model::witness::MacWitness>,
    /// The address the client dials.
    pub addr: String,
}

/// Everything behind the registry lock.
pub struct Inner {
    pub state: State,
    pub rt: BTreeMap<String, MemberRt>,
    /// `state` has changes that are not on disk yet (from
    /// [`Registry::mutate_mem`], or kept after a failed save): the next
    /// write saves even if it changes nothing itself.
    dirty: bool,
}

#[derive(Default)]
struct KeyedLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl KeyedLocks {
    fn get(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(key.to_string()).or_default().clone()
    }
}

/// The registry. Shared as `Arc<Registry>`.
pub struct Registry {
    inner: Mutex<Inner>,
    /// Serialises writers of the persisted state, so the disk write happens
    /// outside `inner` and readers never wait for an fsync.
    writer: Mutex<()>,
    store: Store,
    /// Health of `store`. While a save fails, orchestration is paused (no
    /// moves, binds or resyncs; mutating RPCs answer UNAVAILABLE) until a
    /// save succeeds again (`Registry::retry_store`).
    pub health: StoreHealth,
    /// Members to resync when the store recovers (sent by `save`, acted on
    /// by `Registry::retry_store`).
    resume: watch::Sender<Vec<String>>,
    member_locks: KeyedLocks,
    group_locks: KeyedLocks,
    pub broker: EventBroker,
    pub metrics: RegistryMetrics,
    pub config: watch::Receiver<Arc<Config>>,
    pub shutdown: CancellationToken,
    /// What evpnr asks of members (gRPC, `members::Grpc`; a fake in unit
    /// tests).
    pub southbound: Arc<dyn Southbound<Registry>>,
}

impl Registry {
    /// A registry over `state` (already loaded from `store`), talking to
    /// members through `southbound`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        state: State,
        store: Store,
        health: StoreHealth,
        broker: EventBroker,
        metrics: RegistryMetrics,
        config: watch::Receiver<Arc<Config>>,
        shutdown: CancellationToken,
        southbound: Arc<dyn Southbound<Registry>>,
    ) -> Registry {
        let r = Registry {
            inner: Mutex::new(Inner {
                state,
                rt: BTreeMap::new(),
                dirty: false,
            }),
            writer: Mutex::new(()),
            store,
            health,
            resume: watch::channel(Vec::new()).0,
            member_locks: KeyedLocks::default(),
            group_locks: KeyedLocks::default(),
            broker,
            metrics,
            config,
            shutdown,
            southbound,
        };
        r.refresh_gauges(&r.lock());
        r
    }

    /// The configuration in effect.
    pub fn cfg(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// This run's registry epoch (see `State::epoch`).
    pub fn epoch(&self) -> u64 {
        self.read(|i| i.state.epoch)
    }

    /// The registry lock. Never hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Read under the lock.
    pub fn read<T>(&self, f: impl FnOnce(&Inner) -> T) -> T {
        f(&self.lock())
    }

    /// Change the persisted state: `f` works on a copy, which is written to
    /// disk (with any memory-only change still pending) and only then
    /// becomes the state in effect. An error from `f` or from the disk
    /// leaves everything unchanged. A caller that acts on the result (a
    /// bind) therefore acts only on a state that is on disk.
    pub fn mutate<T>(&self, f: impl FnOnce(&mut State) -> Result<T, Error>) -> Result<T, Error> {
        // Writers take `writer` first; `inner` is held only to copy and to
        // publish, never during the disk write.
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let (mut next, dirty) = {
            let g = self.lock();
            (g.state.clone(), g.dirty)
        };
        let out = f(&mut next)?;
        if dirty || next != self.lock().state {
            self.save(&next)?;
            let mut g = self.lock();
            g.state = next;
            g.dirty = false;
            self.refresh_gauges(&g);
        }
        Ok(out)
    }

    /// Write `st` to disk (the caller holds `writer`); a failure is recorded
    /// in [`Registry::health`] (which pauses orchestration) and is
    /// UNAVAILABLE. The first success after failures resumes it: every
    /// member is resynced.
    fn save(&self, st: &State) -> Result<(), Error> {
        let path = self.store.path();
        match self.store.save(st) {
            Ok(()) => {
                if self.health.ok(&path) {
                    let ids: Vec<String> = self.lock().rt.keys().cloned().collect();
                    self.resume.send_replace(ids);
                }
                Ok(())
            }
            Err(e) => {
                self.health.failed(&path, &e.to_string());
                Err(Error::Unavailable(format!(
                    "cannot persist the registry state to {}: {e}",
                    path.display()
                )))
            }
        }
    }

    /// UNAVAILABLE, naming the store's error, while the state store fails:
    /// nothing that needs the disk to justify it may run then.
    pub fn store_ok(&self) -> Result<(), Error> {
        match self.health.error() {
            None => Ok(()),
            Some(e) => Err(Error::Unavailable(format!(
                "the registry state store is failing ({e}); orchestration is paused until \
                 a save succeeds (see docs/runbook.md, \"Disk full\")"
            ))),
        }
    }

    /// Write the state in effect to disk, on a blocking thread (so an
    /// fsync never stalls a runtime worker). Used after
    /// [`Registry::mutate_mem`] when the change must be durable before it
    /// is acknowledged but may run concurrently with other work.
    pub async fn persist(self: &Arc<Self>) -> Result<(), Error> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let _w = me.writer.lock().unwrap_or_else(|e| e.into_inner());
            let st = me.lock().state.clone();
            me.save(&st)?;
            me.lock().dirty = false;
            Ok(())
        })
        .await
        .map_err(|e| Error::Internal(format!("state writer: {e}")))?
    }

    /// Make the state in effect durable: written (as
    /// [`Registry::persist`]) only if it has changes that are not on disk.
    pub async fn persist_pending(self: &Arc<Self>) -> Result<(), Error> {
        if !self.lock().dirty {
            return Ok(());
        }
        self.persist().await
    }

    /// The members to resync once the state store recovers (see
    /// [`Registry::save`]); the store's retry loop
    /// (`members.rs`, `Registry::retry_store`) acts on it.
    pub fn store_resumed(&self) -> watch::Receiver<Vec<String>> {
        self.resume.subscribe()
    }

    /// Change the state in memory only; it reaches the disk with the next
    /// [`Registry::mutate`]. For changes that are safe to lose in a crash:
    /// the in-memory intent of a move (a crash before the move persists its
    /// bind falls back to the old primary), and forgetting a confirmed
    /// holder (a stale entry only causes one more, idempotent release).
    /// Saves an fsync per step on the move path.
    pub fn mutate_mem<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut g = self.lock();
        let out = f(&mut g.state);
        g.dirty = true;
        self.refresh_gauges(&g);
        out
    }

    /// Change group `id`; None if there is no such group. The step of a
    /// group's machine runs here, so each one is atomic with respect to
    /// every other writer. `f` works on a copy and says when its change
    /// becomes the state in effect:
    /// - [`Publish::Now`]: at once, in memory, marked as pending for the
    ///   disk (like [`Registry::mutate_mem`]) if `f` changed the group;
    /// - [`Publish::AfterSave`]: only once the state with the change (and
    ///   any change still pending) is on disk, like [`Registry::mutate`];
    ///   if the save fails nothing changes. The save's result is returned
    ///   (the caller holds no lock of the async runtime: this may fsync).
    pub fn mutate_group<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Group) -> (T, Publish),
    ) -> Option<(T, Option<Result<(), Error>>)> {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let (mut grp, dirty) = {
            let g = self.lock();
            (g.state.groups.get(id)?.clone(), g.dirty)
        };
        let before = grp.clone();
        let (out, when) = f(&mut grp);
        let changed = grp != before;
        match when {
            Publish::Now => {
                if changed {
                    let mut g = self.lock();
                    g.state.groups.insert(id.to_string(), grp);
                    g.dirty = true;
                    self.refresh_gauges(&g);
                }
                Some((out, None))
            }
            Publish::AfterSave if !changed && !dirty => Some((out, Some(Ok(())))),
            Publish::AfterSave => {
                let mut next = self.lock().state.clone();
                next.groups.insert(id.to_string(), grp);
                let saved = self.save(&next).map(|()| {
                    let mut g = self.lock();
                    g.state = next;
                    g.dirty = false;
                    self.refresh_gauges(&g);
                });
                Some((out, Some(saved)))
            }
        }
    }

    /// Change run-time state of member `id` (if it exists). The gauges are
    /// refreshed when its connection state or readiness changed.
    pub fn with_rt<T>(&self, id: &str, f: impl FnOnce(&mut MemberRt) -> T) -> Option<T> {
        let mut g = self.lock();
        let rt = g.rt.get_mut(id)?;
        let before = (rt.conn, rt.ready);
        let out = f(rt);
        if before != (rt.conn, rt.ready) {
            self.refresh_gauges(&g);
        }
        Some(out)
    }

    /// Recompute the state gauges now (after members were added or removed).
    pub fn refresh(&self) {
        self.refresh_gauges(&self.lock());
    }

    /// A group (cloned), or NOT_FOUND.
    pub fn group(&self, id: &str) -> Result<Group, Error> {
        self.read(|i| i.state.groups.get(id).cloned())
            .ok_or_else(|| Error::not_found(evpn_model::error::Object::Group, id))
    }

    /// The configuration lock of one member.
    pub fn member_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.member_locks.get(id)
    }

    /// The lock serialising operations on one group.
    pub fn group_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.group_locks.get(id)
    }

    /// Publish one catalogued event of the registry (and its log line).
    pub fn emit(&self, event: Event, fields: &[(&str, &str)]) {
        let map: BTreeMap<String, String> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.broker.emit(event, map);
    }

    /// Recompute the state gauges (called with the lock held).
    fn refresh_gauges(&self, g: &Inner) {
        let m = &self.metrics;
        for s in [Conn::Connecting, Conn::Connected, Conn::Unreachable] {
            let n = g.rt.values().filter(|r| r.conn == s).count();
            m.instances
                .get_or_create(&StateLabels {
                    state: s.as_str().into(),
                })
                .set(n as i64);
        }
        m.instances_ready
            .set(g.rt.values().filter(|r| r.ready).count() as i64);
        use crate::model::Liveness;
        for s in [
            Liveness::Unknown,
            Liveness::Alive,
            Liveness::Suspect,
            Liveness::Dead,
        ] {
            let n = g.rt.values().filter(|r| r.liveness == s).count();
            m.liveness
                .get_or_create(&StateLabels {
                    state: s.as_str().into(),
                })
                .set(n as i64);
        }
        m.groups.set(g.state.groups.len() as i64);
        m.group_primary.clear();
        for grp in g.state.groups.values() {
            if let Some(p) = &grp.primary {
                m.group_primary
                    .get_or_create(&PrimaryLabels {
                        group: grp.id.clone(),
                        instance: p.clone(),
                    })
                    .set(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn registry(dir: &std::path::Path) -> Registry {
        let cfg = crate::config::load(&crate::config::Args::parse_from(["evpnr"]))
            .unwrap()
            .cfg;
        let (_tx, rx) = watch::channel(Arc::new(cfg));
        let mut reg = prometheus_client::registry::Registry::default();
        Registry::new(
            State::default(),
            Store::open(dir).unwrap(),
            evpn_daemon::durable::StoreHealth::register(
                &mut reg,
                EventBroker::new("", 64),
                watch::channel(true).0,
            ),
            EventBroker::new("", 64),
            RegistryMetrics::register(&mut reg),
            rx,
            CancellationToken::new(),
            Arc::new(crate::members::Grpc),
        )
    }

    fn member(id: &str) -> crate::model::Member {
        crate::model::Member {
            id: id.into(),
            grpc_address: "127.0.0.1:1".into(),
            version: String::new(),
            registered_at: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn mutate_persists_before_publishing_and_a_failed_save_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        let r = registry(&state_dir);
        r.mutate(|s| {
            s.members.insert("a".into(), member("a"));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            Store::open(&state_dir)
                .unwrap()
                .load()
                .unwrap()
                .members
                .len(),
            1
        );
        // An error from the closure leaves everything as it was.
        let e = r.mutate(|s| {
            s.members.clear();
            Err::<(), _>(Error::FailedPrecondition("no".into()))
        });
        assert!(e.is_err());
        assert_eq!(r.read(|i| i.state.members.len()), 1);
        // The disk refuses: the change is not published.
        std::fs::remove_dir_all(&state_dir).unwrap();
        let e = r
            .mutate(|s| {
                s.members.insert("b".into(), member("b"));
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(e, Error::Unavailable(_)), "{e}");
        assert_eq!(r.read(|i| i.state.members.len()), 1);
    }

    #[test]
    fn memory_only_changes_reach_the_disk_with_the_next_save() {
        let dir = tempfile::tempdir().unwrap();
        let r = registry(dir.path());
        r.mutate_mem(|s| {
            s.members.insert("a".into(), member("a"));
        });
        assert!(
            Store::open(dir.path())
                .unwrap()
                .load()
                .unwrap()
                .members
                .is_empty()
        );
        r.mutate(|s| {
            s.members.insert("b".into(), member("b"));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            Store::open(dir.path())
                .unwrap()
                .load()
                .unwrap()
                .members
                .len(),
            2
        );
    }

    #[test]
    fn a_write_that_changes_nothing_still_saves_pending_memory_changes() {
        let dir = tempfile::tempdir().unwrap();
        let r = registry(dir.path());
        r.mutate_mem(|s| {
            s.members.insert("a".into(), member("a"));
        });
        // The caller would act on this result (a bind): it must be on disk.
        r.mutate(|_| Ok(())).unwrap();
        let disk = Store::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(disk.members.len(), 1);
    }

    #[test]
    fn a_failing_store_pauses_until_a_save_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let r = registry(dir.path());
        assert!(r.store_ok().is_ok());
        r.mutate_mem(|s| {
            s.members.insert("a".into(), member("a"));
        });
        std::fs::write(dir.path().join(evpn_daemon::durable::FAULT_FILE), "erofs").unwrap();
        // Nothing new is published, and a no-op write fails too while
        // memory-only changes are pending.
        let e = r
            .mutate(|s| {
                s.members.insert("b".into(), member("b"));
                Ok(())
            })
            .unwrap_err();
        assert!(e.to_string().contains("Read-only file system"), "{e}");
        assert!(r.mutate(|_| Ok(())).is_err());
        assert_eq!(r.read(|i| i.state.members.len()), 1);
        let e = r.store_ok().unwrap_err();
        assert!(matches!(e, Error::Unavailable(_)), "{e}");
        assert!(e.to_string().contains("Read-only file system"), "{e}");
        std::fs::remove_file(dir.path().join(evpn_daemon::durable::FAULT_FILE)).unwrap();
        r.mutate(|_| Ok(())).unwrap();
        assert!(r.store_ok().is_ok());
        assert_eq!(
            Store::open(dir.path())
                .unwrap()
                .load()
                .unwrap()
                .members
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn keyed_locks_serialise_one_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let r = registry(dir.path());
        let a = r.member_lock("a");
        let _held = a.lock().await;
        // Another member's lock is free while "a" is held.
        assert!(r.member_lock("b").try_lock().is_ok());
        assert!(r.member_lock("a").try_lock().is_err());
        // Group locks are a separate space.
        assert!(r.group_lock("a").try_lock().is_ok());
    }
}
