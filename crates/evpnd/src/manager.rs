//! The host manager: every write goes through one async mutex (so writes are
//! serialised and a write stuck on a dead VPP never blocks a read), every
//! read is served from an atomically published snapshot, and every committed
//! change is persisted before the write returns.
//!
//! Invariants: reads never take the write lock; a change is persisted only
//! after the dataplane and BIRD accepted it; bind adds the gateway addresses
//! last and release removes them first; a change that fails half-way is
//! rolled back where it can be, and otherwise left for the next reconcile to
//! converge (the persisted state is the desired state).
use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use evpn_daemon::events::{Event, EventBroker};
use evpn_model::{Error, Mac, error::Object};
use tokio::sync::Mutex;

use crate::{
    bird::Bird,
    bvi::{self, Desired},
    config::Config,
    dataplane::{Dataplane, EvpnRef},
    metrics::{EvpndMetrics, RoleLabels},
    state::{Bvi, Evpn, HostState, Store, now_ms},
};

mod binding;
mod converge;
mod linux_side;
mod missing;
mod overlap;

pub use converge::Report;

/// A validated request to create an eVPN (defaults already filled in).
#[derive(Debug, Clone)]
pub struct NewEvpn {
    pub slug: String,
    pub vni: u32,
    pub rd: String,
    pub import_targets: Vec<String>,
    pub export_targets: Vec<String>,
    pub vtep: IpAddr,
    pub enabled: bool,
    pub mtu: u32,
}

/// What the dataplane said about a BVI the last time it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Handle {
    /// Dataplane handle (VPP sw_if_index).
    pub index: u32,
    /// The Linux side's interface name, from the dataplane's answer
    /// (VPP: the linux-cp pair); `None` when it has none.
    pub linux: Option<String>,
}

impl Handle {
    /// From an observation.
    pub fn of(o: &crate::dataplane::ObservedBvi) -> Handle {
        Handle {
            index: o.handle,
            linux: o.linux.clone(),
        }
    }
}

/// What reads see.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub state: HostState,
    /// Observed dataplane handle per slug.
    pub handles: BTreeMap<String, Handle>,
}

/// The published read snapshot. It is replaced whole, never edited in
/// place, so a writer that panicked cannot have left it half-written: a
/// poisoned lock still holds the last snapshot published, and that is what
/// reads get (never an empty state) and what the next write replaces.
#[derive(Debug)]
pub struct Published(RwLock<Arc<Snapshot>>);

impl Published {
    pub fn new(s: Snapshot) -> Published {
        Published(RwLock::new(Arc::new(s)))
    }

    /// The last snapshot published.
    pub fn get(&self) -> Arc<Snapshot> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Publish `f(last)`.
    pub fn replace(&self, f: impl FnOnce(&Snapshot) -> Snapshot) {
        let mut s = self.0.write().unwrap_or_else(|p| p.into_inner());
        *s = Arc::new(f(&s));
    }
}

/// The manager.
pub struct Manager {
    pub cfg: Arc<Config>,
    pub dp: Arc<dyn Dataplane>,
    pub bird: Arc<Bird>,
    persist: Arc<crate::state::Persister>,
    write: Mutex<HostState>,
    snapshot: Published,
    broker: EventBroker,
    pub(crate) metrics: EvpndMetrics,
    /// This host's health (checks, verdicts, self-fence), published by
    /// `health_run`.
    pub health: crate::health::Health,
    ready: AtomicBool,
    /// The state file was missing at start: until a reconcile has seen that
    /// the dataplane and BIRD hold no managed object, nothing is removed
    /// (see [`Manager::hold_missing_state`]).
    state_missing: AtomicBool,
    /// Bumped on every bind/release, so a running announce schedule stops
    /// when the BVI changes role again.
    announce_gen: Arc<std::sync::Mutex<BTreeMap<String, u64>>>,
    /// BVIs whose Linux side VPP refused (`vpp.linux-cp: auto`): slug →
    /// reason ([`Manager::ensure_linux_side`]).
    linux_missing: std::sync::Mutex<BTreeMap<String, String>>,
    /// Bumped each time the write lock is taken: a read made while nobody
    /// held it is still current for the next holder if nobody took it in
    /// between (`binding::Ahead`).
    lock_count: std::sync::atomic::AtomicU64,
    /// Reads started by `PrepareGroupBVI` for the bind that follows, by
    /// slug (`binding::Prepared`).
    prepared: std::sync::Mutex<BTreeMap<String, binding::Prepared>>,
    /// What the fabric witness sees, once the registrar started it.
    witness: std::sync::OnceLock<tokio::sync::watch::Receiver<crate::witness_view::Seen>>,
}

pub(crate) fn ref_of(e: &Evpn) -> EvpnRef<'_> {
    EvpnRef {
        slug: &e.slug,
        bd_id: e.bd_id,
        vni: e.vni,
        mtu: e.bvi.as_ref().map_or(e.mtu, |b| b.mtu),
        evpn_mtu: e.mtu,
        vtep: Some(e.vtep),
        instance_mac: e.bvi.as_ref().map(|b| b.instance_mac),
    }
}

fn fields(kv: &[(&str, String)]) -> BTreeMap<String, String> {
    kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

impl Manager {
    /// Load the persisted state; nothing is touched yet.
    pub fn new(
        cfg: Arc<Config>,
        dp: Arc<dyn Dataplane>,
        bird: Arc<Bird>,
        broker: EventBroker,
        metrics: EvpndMetrics,
        health: evpn_daemon::durable::StoreHealth,
    ) -> Result<Arc<Manager>, Error> {
        let store = Store::open(&cfg.state_dir)?;
        let state_missing = !store.exists();
        let state = store.load()?;
        let m = Arc::new(Manager {
            cfg,
            dp,
            bird,
            persist: crate::state::Persister::new(store, Some(health)),
            snapshot: Published::new(Snapshot {
                state: state.clone(),
                handles: BTreeMap::new(),
            }),
            write: Mutex::new(state),
            broker,
            metrics,
            health: Default::default(),
            ready: AtomicBool::new(false),
            state_missing: AtomicBool::new(state_missing),
            announce_gen: Arc::default(),
            linux_missing: Default::default(),
            lock_count: Default::default(),
            prepared: Default::default(),
            witness: Default::default(),
        });
        m.update_gauges(&m.snapshot().state);
        Ok(m)
    }

    /// The current read snapshot (never blocks on a write; see
    /// [`Published`] on a poisoned lock).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.get()
    }

    /// The eVPNs (slugs) this host has but that are disabled, sorted: they
    /// announce nothing, even while holding their vMAC (reported with the
    /// health, for evpnr's failover rule F12).
    /// Give reads the fabric witness's view (the registrar starts it).
    pub(crate) fn set_witness(
        &self,
        seen: tokio::sync::watch::Receiver<crate::witness_view::Seen>,
    ) {
        let _ = self.witness.set(seen);
    }

    /// How long ago this host's fabric witness first saw `vmac` of `group`
    /// withdrawn, if it watches it and it is withdrawn now.
    pub fn withdrawn_ago(&self, group: &str, vmac: evpn_model::Mac) -> Option<std::time::Duration> {
        let seen = self.witness.get()?.borrow();
        seen.withdrawn_ago(group, vmac, std::time::Instant::now())
    }

    pub fn disabled_evpns(&self) -> Vec<String> {
        self.snapshot()
            .state
            .evpns
            .values()
            .filter(|e| !e.enabled)
            .map(|e| e.slug.clone())
            .collect()
    }

    /// Replace the published snapshot.
    fn swap_snapshot(&self, f: impl FnOnce(&Snapshot) -> Snapshot) {
        self.snapshot.replace(f);
    }

    /// True once the start-up reconcile finished.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
        self.metrics.ready.set(1);
    }

    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, HostState> {
        let g = self.write.lock().await;
        self.lock_count.fetch_add(1, Ordering::SeqCst);
        g
    }

    /// How often the write lock was taken so far (see `lock_count`).
    pub(crate) fn lock_count(&self) -> u64 {
        self.lock_count.load(Ordering::SeqCst)
    }

    /// The background writer of write-behind saves; spawn it once.
    pub fn persister(&self) -> Arc<crate::state::Persister> {
        self.persist.clone()
    }

    /// Persist a binding change of `slug` and publish it: write-behind when
    /// a registry owns the bindings (see [`crate::state::Persister`]), else
    /// at once (healed back like [`Manager::commit_or_heal`] if the save
    /// fails).
    pub(crate) async fn commit_binding(&self, st: &mut HostState, slug: &str) -> Result<(), Error> {
        if self.cfg.registry.is_empty() {
            return self.commit_or_heal(st, slug, 0).await;
        }
        self.persist.save_behind(st);
        self.publish(st, None);
        Ok(())
    }

    /// Persist `st` (changed in `slug`, whose bridge domain is `bd_id`) and
    /// publish it. If the save fails, `st` goes back to the last committed
    /// state and `slug`'s dataplane and BIRD snippet are healed back to it:
    /// nothing the state file does not have stays behind (a created eVPN is
    /// removed again, a bind is released), so a restart from the file never
    /// contradicts what was answered.
    pub(crate) async fn commit_or_heal(
        &self,
        st: &mut HostState,
        slug: &str,
        bd_id: u32,
    ) -> Result<(), Error> {
        let Err(err) = self.commit(st, None) else {
            return Ok(());
        };
        let bd = st.evpns.get(slug).map_or(bd_id, |e| e.bd_id);
        *st = self.snapshot().state.clone();
        let e = st.evpns.get(slug);
        let h = self.heal(e, slug, bd).await;
        self.set_handle(slug, h);
        Err(err)
    }

    /// Persist `st` and publish it to readers.
    pub(crate) fn commit(
        &self,
        st: &HostState,
        handles: Option<BTreeMap<String, Handle>>,
    ) -> Result<(), Error> {
        self.persist.save(st)?;
        self.publish(st, handles);
        Ok(())
    }

    fn publish(&self, st: &HostState, handles: Option<BTreeMap<String, Handle>>) {
        self.swap_snapshot(|old| Snapshot {
            state: st.clone(),
            handles: handles.unwrap_or_else(|| old.handles.clone()),
        });
        self.update_gauges(st);
    }

    fn set_handle(&self, slug: &str, h: Option<Handle>) {
        self.swap_snapshot(|old| {
            let mut n = old.clone();
            match h {
                Some(h) => n.handles.insert(slug.to_string(), h),
                None => n.handles.remove(slug),
            };
            n
        });
    }

    pub(crate) fn publish_handles(&self, handles: BTreeMap<String, Handle>) {
        self.swap_snapshot(|old| Snapshot {
            state: old.state.clone(),
            handles,
        });
    }

    fn update_gauges(&self, st: &HostState) {
        self.metrics.evpn_instances.set(st.evpns.len() as i64);
        self.metrics.bvi_role.clear();
        for e in st.evpns.values() {
            if let Some(b) = &e.bvi {
                let role = if b.binding.is_some() {
                    "primary"
                } else {
                    "candidate"
                };
                self.metrics
                    .bvi_role
                    .get_or_create(&RoleLabels {
                        evpn: e.slug.clone(),
                        role: role.into(),
                    })
                    .set(1);
            }
        }
    }

    /// Emit one structured log line and one event.
    pub(crate) fn event(&self, event: Event, kv: &[(&str, String)]) {
        self.broker.emit(event, fields(kv));
    }

    fn get<'a>(st: &'a HostState, slug: &str) -> Result<&'a Evpn, Error> {
        st.evpns
            .get(slug)
            .ok_or_else(|| Error::not_found(Object::Evpn, slug))
    }

    fn free_bd(&self, st: &HostState) -> Result<u32, Error> {
        let used: std::collections::BTreeSet<u32> = st.evpns.values().map(|e| e.bd_id).collect();
        (self.cfg.vpp.bridge_domain_min..=self.cfg.vpp.bridge_domain_max)
            .find(|id| !used.contains(id))
            .ok_or_else(|| {
                Error::FailedPrecondition(format!(
                    "no free bridge-domain ID in {}..{}",
                    self.cfg.vpp.bridge_domain_min, self.cfg.vpp.bridge_domain_max
                ))
            })
    }

    /// CreateEvpnInstance.
    pub async fn create_evpn(&self, n: NewEvpn) -> Result<Evpn, Error> {
        let mut st = self.lock().await;
        if st.evpns.contains_key(&n.slug) {
            return Err(Error::exists(Object::Evpn, &n.slug));
        }
        if let Some(o) = st.evpns.values().find(|e| e.vni == n.vni) {
            return Err(Error::invalid(
                "vni",
                format!("VNI {} is already used by evpn {:?}", n.vni, o.slug),
            ));
        }
        let now = now_ms();
        let e = Evpn {
            slug: n.slug.clone(),
            vni: n.vni,
            rd: n.rd,
            import_targets: n.import_targets,
            export_targets: n.export_targets,
            vtep: n.vtep,
            enabled: n.enabled,
            mtu: n.mtu,
            bd_id: self.free_bd(&st)?,
            created_ms: now,
            modified_ms: now,
            bvi: None,
        };
        // Validate the snippet before touching anything.
        self.bird.render(&e)?;
        if let Err(err) = self.dp.create_evpn(&ref_of(&e)).await {
            if matches!(err, Error::Timeout(_)) {
                // VPP may still create it after the timeout (issue 13 item 3); the heal reads
                // behind that call and removes what is not recorded.
                self.heal(None, &e.slug, e.bd_id).await;
            }
            return Err(err);
        }
        if let Err(err) = self.bird.set(&e).await {
            if let Err(rb) = self.dp.delete_evpn(&ref_of(&e)).await {
                tracing::error!(slug = %e.slug, error = %rb, "rollback-failed");
            }
            return Err(err);
        }
        st.evpns.insert(e.slug.clone(), e.clone());
        self.commit_or_heal(&mut st, &e.slug, e.bd_id).await?;
        self.event(
            Event::EvpnCreated,
            &[
                ("evpn", e.slug.clone()),
                ("vni", e.vni.to_string()),
                ("bd", e.bd_id.to_string()),
            ],
        );
        Ok(e)
    }

    /// DeleteEvpnInstance: BVI (released first), BIRD snippet, bridge domain.
    pub async fn delete_evpn(&self, slug: &str) -> Result<(), Error> {
        let mut st = self.lock().await;
        let e = Self::get(&st, slug)?.clone();
        // VPP refuses to delete a bridge domain with members (BD_IN_USE): refused
        // before the BVI is released or anything else is removed.
        let users = self.dp.bridge_users(&ref_of(&e)).await?;
        if !users.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "evpn {slug:?}: bridge domain {} is still used by {}; remove {} from the \
                 bridge domain first; nothing was deleted",
                e.bd_id,
                users.join(", "),
                if users.len() == 1 { "it" } else { "them" }
            )));
        }
        if e.bvi.is_some() {
            self.delete_bvi_locked(&mut st, slug).await?;
        }
        self.bird.remove(slug).await?;
        if let Err(err) = self.dp.delete_evpn(&ref_of(&e)).await {
            return Err(self.heal_after(&st, slug, err).await);
        }
        st.evpns.remove(slug);
        self.commit_or_heal(&mut st, slug, e.bd_id).await?;
        self.event(Event::EvpnDeleted, &[("evpn", slug.to_string())]);
        Ok(())
    }

    /// SetEvpnInstanceEnabled: persisted, rendered into the stanza, and the
    /// BVI follows (attached when enabled).
    pub async fn set_enabled(&self, slug: &str, enabled: bool) -> Result<Evpn, Error> {
        let mut st = self.lock().await;
        let mut e = Self::get(&st, slug)?.clone();
        if e.enabled == enabled {
            return Ok(e);
        }
        e.enabled = enabled;
        e.modified_ms = now_ms();
        self.bird.set(&e).await?;
        let want = Desired {
            enabled,
            bvi: e.bvi.as_ref(),
            linux_side: false,
        };
        let plan = bvi::plan_change(!enabled, e.bvi.as_ref(), &want);
        if let Err(err) = self.execute(&e, &ref_of(&e), &plan).await {
            // Put BIRD back as it was so both sides agree.
            let mut back = e.clone();
            back.enabled = !enabled;
            if let Err(rb) = self.bird.set(&back).await {
                tracing::error!(slug, error = %rb, "rollback-failed");
            }
            // And the dataplane: a call that timed out may still be executed by VPP, after
            // the timeout (issue 13 item 3); the heal reads behind it and undoes it.
            return Err(self.heal_after(&st, slug, err).await);
        }
        st.evpns.insert(slug.to_string(), e.clone());
        self.commit_or_heal(&mut st, slug, e.bd_id).await?;
        let event = if enabled {
            Event::EvpnEnabled
        } else {
            Event::EvpnDisabled
        };
        self.event(event, &[("evpn", slug.to_string())]);
        Ok(e)
    }

    /// CreateBVI.
    pub async fn create_bvi(
        &self,
        slug: &str,
        mac: Option<Mac>,
        mtu: Option<u32>,
    ) -> Result<Evpn, Error> {
        let mut st = self.lock().await;
        let mut e = st.evpns.get(slug).cloned().ok_or_else(|| {
            Error::FailedPrecondition(format!(
                "evpn {slug:?} does not exist; create it before its BVI"
            ))
        })?;
        if e.bvi.is_some() {
            return Err(Error::exists(Object::Bvi, slug));
        }
        let mac = mac.unwrap_or_else(|| Mac::derived(&[&self.cfg.instance_id, slug]));
        let now = now_ms();
        e.bvi = Some(Bvi {
            instance_mac: mac,
            mtu: mtu.unwrap_or(e.mtu),
            binding: None,
            created_ms: now,
            modified_ms: now,
        });
        let r = ref_of(&e);
        // The Linux side is always asked for: the dataplane decides whether
        // it is wanted (`Dataplane::ensure_linux_side`).
        let want = Desired {
            enabled: e.enabled,
            bvi: e.bvi.as_ref(),
            linux_side: true,
        };
        let made = async {
            let plan = bvi::plan(&want, None);
            let done = self.execute(&e, &r, &plan).await?;
            Ok::<Handle, Error>(Handle {
                index: done.handle.unwrap_or_default(),
                linux: done.linux,
            })
        }
        .await;
        let h = match made {
            Ok(h) => h,
            Err(err) => {
                if let Err(rb) = self.dp.delete_bvi(&r).await {
                    tracing::error!(slug, error = %rb, "rollback-failed");
                }
                return Err(err);
            }
        };
        st.evpns.insert(slug.to_string(), e.clone());
        self.commit_or_heal(&mut st, slug, e.bd_id).await?;
        self.set_handle(slug, Some(h));
        self.event(
            Event::BviCreated,
            &[("evpn", slug.to_string()), ("mac", mac.to_string())],
        );
        Ok(e)
    }

    /// ReplaceBVI: new per-host MAC and/or MTU. A bound BVI keeps its vMAC
    /// and addresses; the new per-host MAC is used from the next release.
    pub async fn replace_bvi(
        &self,
        slug: &str,
        mac: Option<Mac>,
        mtu: Option<u32>,
    ) -> Result<Evpn, Error> {
        let mut st = self.lock().await;
        let mut e = Self::get(&st, slug)?.clone();
        let Some(mut b) = e.bvi.clone() else {
            return Err(Error::not_found(Object::Bvi, slug));
        };
        let mac = mac.unwrap_or_else(|| Mac::derived(&[&self.cfg.instance_id, slug]));
        let mtu = mtu.unwrap_or(e.mtu);
        // A bound BVI keeps its vMAC: the new per-host MAC changes nothing
        // on the dataplane until the release.
        let mut n = b.clone();
        n.mtu = mtu;
        n.instance_mac = mac;
        let r = EvpnRef {
            instance_mac: Some(mac),
            ..ref_of(&e)
        };
        let want = Desired {
            enabled: e.enabled,
            bvi: Some(&n),
            linux_side: false,
        };
        let plan = bvi::plan_change(e.enabled, Some(&b), &want);
        if let Err(err) = self.execute(&e, &r, &plan).await {
            return Err(self.heal_after(&st, slug, err).await);
        }
        b.mtu = mtu;
        b.instance_mac = mac;
        b.modified_ms = now_ms();
        e.bvi = Some(b);
        st.evpns.insert(slug.to_string(), e.clone());
        self.commit_or_heal(&mut st, slug, e.bd_id).await?;
        self.event(
            Event::BviReplaced,
            &[
                ("evpn", slug.to_string()),
                ("mac", mac.to_string()),
                ("mtu", mtu.to_string()),
            ],
        );
        Ok(e)
    }

    /// DeleteBVI (released first when bound).
    pub async fn delete_bvi(&self, slug: &str) -> Result<(), Error> {
        let mut st = self.lock().await;
        self.delete_bvi_locked(&mut st, slug).await
    }

    async fn delete_bvi_locked(&self, st: &mut HostState, slug: &str) -> Result<(), Error> {
        let e = Self::get(st, slug)?.clone();
        if e.bvi.is_none() {
            return Err(Error::not_found(Object::Bvi, slug));
        }
        if e.bvi.as_ref().is_some_and(|b| b.binding.is_some()) {
            self.release_locked(st, slug, "", async {}).await?;
        }
        let e = Self::get(st, slug)?.clone();
        let want = Desired {
            enabled: e.enabled,
            bvi: None,
            linux_side: false,
        };
        let plan = bvi::plan_change(e.enabled, e.bvi.as_ref(), &want);
        if let Err(err) = self.execute(&e, &ref_of(&e), &plan).await {
            return Err(self.heal_after(st, slug, err).await);
        }
        let mut n = e.clone();
        n.bvi = None;
        st.evpns.insert(slug.to_string(), n);
        self.commit_or_heal(st, slug, e.bd_id).await?;
        self.set_handle(slug, None);
        self.linux_side_ok(slug);
        self.event(Event::BviDeleted, &[("evpn", slug.to_string())]);
        Ok(())
    }

    /// After a failed write on `slug`, bring it back to its committed state
    /// (best effort) so that a retry starts clean; returns `err`.
    async fn heal_after(&self, st: &HostState, slug: &str, err: Error) -> Error {
        let bd = st.evpns.get(slug).map_or(0, |e| e.bd_id);
        self.heal(st.evpns.get(slug), slug, bd).await;
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_snapshot_lock_still_serves_the_last_published_state() {
        let st = HostState {
            version: 7,
            ..Default::default()
        };
        let p = Arc::new(Published::new(Snapshot::default()));
        p.replace(|_| Snapshot {
            state: st.clone(),
            handles: BTreeMap::new(),
        });
        // A writer panics while it holds the lock.
        let q = p.clone();
        let _ = std::thread::spawn(move || {
            q.replace(|_| panic!("writer dies"));
        })
        .join();
        assert!(p.0.is_poisoned(), "the test must poison the lock");
        assert_eq!(p.get().state.version, 7, "not an empty state");
        // And the next write still publishes.
        p.replace(|old| {
            let mut n = old.clone();
            n.state.version = 8;
            n
        });
        assert_eq!(p.get().state.version, 8);
    }
}
