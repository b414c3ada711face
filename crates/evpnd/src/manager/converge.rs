//! Converging the dataplane and BIRD on the persisted state: one reconcile
//! pass ([`Manager::reconcile_once`]), the heal after a failed write, the
//! read-back check after every bind and release ([`Manager::verify`]), and
//! the executor of the BVI planner's steps ([`Manager::execute`]). Reads
//! first (dumps, not assumptions) and changes only what differs: a host
//! that already matches sees zero state-changing calls. The decisions are
//! `bvi.rs`'s; the loop that schedules passes is `reconcile.rs`.
use std::{collections::BTreeMap, time::Duration};

use evpn_daemon::events::Event;
use evpn_model::Error;

use super::{Handle, Manager, ref_of};
use crate::{
    bvi::{self, Desired, Stage, Step},
    dataplane::{EvpnRef, ObservedEvpn, Write},
    state::Evpn,
};

/// Counts of what one reconcile pass changed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub bridges_created: usize,
    pub bvi_fixes: usize,
    pub orphans_removed: usize,
    pub bird_changed: usize,
}

/// How long BIRD may take to withdraw a released vMAC before evpnd
/// restarts its bridge protocol ([`Manager::verify_withdrawn`]), and again after it.
pub const WITHDRAW_GRACE: Duration = Duration::from_millis(500);
/// The first pause between two looks of [`Manager::verify_withdrawn`]
/// (doubling up to [`WITHDRAW_POLL_MAX`]).
pub const WITHDRAW_POLL_FIRST: Duration = Duration::from_millis(1);
/// The longest pause between two looks of [`Manager::verify_withdrawn`].
pub const WITHDRAW_POLL_MAX: Duration = Duration::from_millis(20);
/// The most [`Manager::verify_withdrawn`] adds to a release (a hung BIRD).
pub const WITHDRAW_CHECK_MAX: Duration = Duration::from_secs(2);

/// What [`Manager::execute`] learnt on the way.
#[derive(Debug, Default)]
pub(crate) struct Executed {
    /// The handle of a BVI the steps created.
    pub handle: Option<u32>,
    /// The Linux side's name when a step made it (or found it).
    pub linux: Option<String>,
}

/// A reference to an eVPN the state does not know (an orphan, or one
/// whose creation failed): only its slug and bridge domain.
fn bare(slug: &str, bd_id: u32) -> EvpnRef<'_> {
    EvpnRef {
        slug,
        bd_id,
        vni: 0,
        mtu: 0,
        evpn_mtu: 0,
        vtep: None,
        instance_mac: None,
    }
}

/// A stage as a timeline step's name, e.g. `writes mac,link-local`.
fn stage_name(stage: &Stage) -> String {
    match stage {
        Stage::Writes(w) => {
            let names: Vec<String> = w
                .iter()
                .map(|w| w.label().split(' ').next().unwrap_or_default().to_string())
                .collect();
            format!("writes {}", names.join(","))
        }
        Stage::LinuxSide => "linux side".into(),
        Stage::TellBird => "tell BIRD".into(),
    }
}

impl Manager {
    /// Run planned steps on `e` (addressed as `r`), stage by stage: a stage
    /// starts only when every write of the one before succeeded.
    pub(crate) async fn execute(
        &self,
        e: &Evpn,
        r: &EvpnRef<'_>,
        steps: &[Step],
    ) -> Result<Executed, Error> {
        let mut done = Executed::default();
        for stage in bvi::stages(steps) {
            let start = std::time::Instant::now();
            let name = crate::timing::active().then(|| stage_name(&stage));
            match stage {
                Stage::Writes(w) => match w.as_slice() {
                    // The one write whose answer is kept: the new handle.
                    [Write::Create { mac, attached }] => {
                        done.handle = Some(self.dp.create_bvi(r, *mac, *attached).await?);
                    }
                    _ => self.dp.apply(r, &w).await?,
                },
                Stage::LinuxSide => done.linux = self.ensure_linux_side(e).await?,
                Stage::TellBird => {
                    if let Err(err) = self.bird.notify_mac(&e.slug).await {
                        tracing::warn!(evpn = %e.slug, error = %err, "bird-notify-failed");
                    }
                }
            }
            if let Some(name) = name {
                crate::timing::step(|| name, start);
            }
        }
        Ok(done)
    }

    /// Make the dataplane and BIRD match one persisted eVPN; returns the
    /// number of changes and the BVI's observed handle. Gateway addresses it
    /// had to add again (VPP restarted) are announced (GARP/NA) on the bind's
    /// schedule. `observed` is a fresh observation of the dataplane when the
    /// caller already made one (it is not repeated).
    pub async fn reconcile_evpn(
        &self,
        e: &Evpn,
        rep: &mut Report,
        observed: Option<ObservedEvpn>,
    ) -> Result<Option<Handle>, Error> {
        let r = ref_of(e);
        let obs = match observed {
            Some(o) => o,
            None => self.dp.observe(&r).await?,
        };
        if !obs.bridge {
            self.dp.create_evpn(&r).await?;
            rep.bridges_created += 1;
        }
        if self.bird.set(e).await? {
            rep.bird_changed += 1;
        } else if !obs.bridge && self.dp.recreated_devices_stall_bird() {
            // Devices recreated under an unchanged snippet: `docs/bird-notes.md` §4.6.
            self.bird.recover_stuck(&e.slug).await?;
        }
        let want = Desired {
            enabled: e.enabled,
            bvi: e.bvi.as_ref(),
            linux_side: self.dp.linux_side_wanted().await,
        };
        let steps = bvi::plan(&want, obs.bvi.as_ref());
        for s in &steps {
            tracing::info!(evpn = %e.slug, fix = ?s, "reconcile-fix");
        }
        self.execute(e, &r, &steps).await?;
        // Dataplane fixes (telling BIRD is not one).
        rep.bvi_fixes += steps.iter().filter(|s| **s != Step::TellBird).count();
        let Some(b) = e.bvi.as_ref() else {
            return Ok(None);
        };
        if b.binding.is_some() {
            let added = bvi::added(&steps);
            if !added.is_empty() {
                self.spawn_announce(e, added);
            }
        }
        if obs.bvi.as_ref().is_some_and(|o| o.linux.is_some()) {
            self.linux_side_ok(&e.slug);
        }
        let remade = steps
            .iter()
            .any(|s| matches!(s, Step::LinuxSide | Step::Write(Write::Create { .. })));
        if remade {
            return Ok(self.dp.observe(&r).await?.bvi.as_ref().map(Handle::of));
        }
        Ok(obs.bvi.as_ref().map(Handle::of))
    }

    /// After a write failed half-way: bring that eVPN back to its persisted
    /// (last committed) state, best effort, so a retry starts clean. Returns
    /// the BVI's handle as observed after the heal (`None` without a BVI or
    /// when the heal failed).
    pub(crate) async fn heal(&self, e: Option<&Evpn>, slug: &str, bd_id: u32) -> Option<Handle> {
        let mut rep = Report::default();
        let mut handle = None;
        let r = match e {
            Some(e) => self
                .reconcile_evpn(e, &mut rep, None)
                .await
                .map(|h| handle = h),
            None => {
                // Not persisted: nothing of it may remain.
                let r = bare(slug, bd_id);
                async {
                    self.dp.delete_bvi(&r).await?;
                    self.bird.remove(slug).await?;
                    self.dp.delete_evpn(&r).await
                }
                .await
            }
        };
        match r {
            Ok(()) => tracing::info!(evpn = slug, fixes = rep.bvi_fixes, "heal-finished"),
            Err(err) => tracing::warn!(evpn = slug, error = %err, "heal-failed"),
        }
        handle
    }

    /// One reconcile pass under the write lock.
    pub async fn reconcile_once(&self) -> Result<Report, Error> {
        let mut st = self.lock().await;
        self.dp.connect().await?;
        let mut rep = Report::default();
        let mut handles = BTreeMap::new();
        let slugs: Vec<String> = st.evpns.keys().cloned().collect();
        for slug in slugs {
            let mut e = st.evpns[&slug].clone();
            let bound = e.bvi.as_ref().and_then(|b| b.binding.clone());
            let mut observed = None;
            if !self.cfg.registry.is_empty()
                && let Some(bind) = bound
            {
                let obs = self.dp.observe(&ref_of(&e)).await?;
                let held = obs.bvi.as_ref().map(|o| o.mac);
                observed = Some(obs);
                if held != Some(bind.vmac)
                    && let Some(b) = e.bvi.as_mut()
                {
                    // The dataplane lost the vMAC (VPP restarted, or a crash
                    // during the bind). With a registry, re-taking it would be a
                    // new claim the registry did not make now (it may have moved
                    // the gateway meanwhile): become a candidate and let the
                    // registry's resync bind again if this host is still primary.
                    b.binding = None;
                    b.modified_ms = crate::state::now_ms();
                    st.evpns.insert(slug.clone(), e.clone());
                    self.commit(&st, None)?;
                    self.event(
                        Event::GroupBviDropped,
                        &[
                            ("evpn", slug.clone()),
                            ("group", bind.group_id.clone()),
                            ("mac", bind.vmac.to_string()),
                            (
                                "reason",
                                "not held by the dataplane at reconcile; waiting for the registry"
                                    .into(),
                            ),
                        ],
                    );
                }
            }
            if let Some(h) = self.reconcile_evpn(&e, &mut rep, observed).await? {
                handles.insert(slug.clone(), h);
            }
        }
        // Orphans: bridge domains in our range (and their loopbacks) that the
        // state does not know, e.g. after a crash between create and persist.
        let used: Vec<u32> = st.evpns.values().map(|e| e.bd_id).collect();
        let orphans: Vec<u32> = self
            .dp
            .list_bridges(
                self.cfg.vpp.bridge_domain_min,
                self.cfg.vpp.bridge_domain_max,
            )
            .await?
            .into_iter()
            .filter(|bd| !used.contains(bd))
            .collect();
        let orphan_snippets: Vec<String> = self
            .bird
            .live_slugs()?
            .into_iter()
            .filter(|s| !st.evpns.contains_key(s))
            .collect();
        if self.state_missing() {
            if orphans.is_empty() && orphan_snippets.is_empty() {
                // A fresh host: write the (empty) file now, so that from here on
                // a missing file means a lost one, while objects a crash leaves
                // before the first save are still orphans.
                self.commit(&st, None)?;
                self.state_missing_resolved();
            } else {
                // A lost state file is not an empty one: remove nothing.
                self.hold_missing_state(&orphans, &orphan_snippets);
                drop(st);
                self.publish_handles(handles);
                return Ok(rep);
            }
        }
        for bd in orphans {
            let r = bare("orphan", bd);
            tracing::warn!(bd, "reconcile-orphan");
            self.dp.delete_bvi(&r).await?;
            self.dp.delete_evpn(&r).await?;
            rep.orphans_removed += 1;
        }
        for slug in orphan_snippets {
            tracing::warn!(evpn = %slug, "reconcile-orphan-snippet");
            self.bird.remove(&slug).await?;
            rep.bird_changed += 1;
        }
        drop(st);
        self.publish_handles(handles);
        Ok(rep)
    }

    /// After a bind or release: read back what the dataplane now has for `e`
    /// (the state about to be committed) and plan against it with the same
    /// planner ([`bvi::plan`]). A difference is healed once (logged and
    /// reported as an event) and read back; what still differs is an error
    /// naming it, so the call never reports a silent success. `what` names
    /// the call for the log; `written` are the steps the call just executed
    /// (all succeeded): the MAC and link-local they set are established by
    /// the dataplane's replies and not read again
    /// ([`Dataplane::read_back`](crate::dataplane::Dataplane::read_back)).
    pub(crate) async fn verify(&self, e: &Evpn, what: &str, written: &[Step]) -> Result<(), Error> {
        let r = ref_of(e);
        let want = Desired {
            enabled: e.enabled,
            bvi: e.bvi.as_ref(),
            linux_side: false,
        };
        // Read back what a bind or release changes; `known`: what its
        // writes established (nothing on the second look, after a heal).
        let look = async |known: &crate::dataplane::Known| match e.bvi.as_ref() {
            Some(b) => {
                let assumed = bvi::believed(e.enabled, b);
                self.dp.read_back(&r, known, &assumed).await
            }
            None => Ok(self.dp.observe(&r).await?.bvi),
        };
        let obs = look(&crate::bvi::known(written)).await?;
        let fixes = bvi::plan(&want, obs.as_ref());
        if fixes.is_empty() {
            return Ok(());
        }
        tracing::warn!(evpn = %e.slug, call = what, fixes = ?fixes, "dataplane-verify-mismatch");
        self.execute(e, &r, &fixes).await?;
        let obs = look(&crate::dataplane::Known::default()).await?;
        let left = bvi::plan(&want, obs.as_ref());
        if !left.is_empty() {
            return Err(Error::Internal(format!(
                "{what} of evpn {:?} did not take effect on the dataplane; still differs: {left:?}",
                e.slug
            )));
        }
        self.event(
            Event::DataplaneVerifyHealed,
            &[
                ("evpn", e.slug.clone()),
                ("call", what.to_string()),
                ("fixes", format!("{fixes:?}")),
            ],
        );
        Ok(())
    }

    /// After a release (linux dialect): BIRD must no longer announce `vmac`
    /// from this host. BIRD learns the FDB from netlink notifications and
    /// ignores `extern_learn` entries as its own; when another VTEP's route was
    /// installed over our static entry (it moves to the VXLAN device as
    /// `extern_learn … static`), BIRD never sees our entry go and keeps
    /// announcing it — the leaf keeps sending the vMAC here. Poll BIRD for up
    /// to [`WITHDRAW_GRACE`], then restart the bridge protocol (BIRD re-reads
    /// the FDB; on a candidate that only re-announces the ports' own MACs) and
    /// poll again. Still announcing after the restart: an error. BIRD failing
    /// or not answering within [`WITHDRAW_CHECK_MAX`]: logged only (the
    /// dataplane is released; the new primary's evidence wait still sees a
    /// VTEP that announces).
    pub(crate) async fn verify_withdrawn(
        &self,
        slug: &str,
        vmac: evpn_model::Mac,
    ) -> Result<(), Error> {
        let mac = vmac.to_string();
        let gone = async || {
            let until = tokio::time::Instant::now() + WITHDRAW_GRACE;
            // BIRD usually withdraws within a millisecond of the FDB change
            // (it reads netlink): look again soon, then less often.
            let mut pause = WITHDRAW_POLL_FIRST;
            loop {
                if !self.bird.announces_locally(slug, &mac).await? {
                    return Ok::<bool, Error>(true);
                }
                if tokio::time::Instant::now() >= until {
                    return Ok(false);
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(WITHDRAW_POLL_MAX);
            }
        };
        // Ok(withdrawn); Err: BIRD could not be asked.
        let check = async {
            if gone().await? {
                return Ok(true);
            }
            tracing::warn!(evpn = slug, mac = %mac, "bird-stale-local-route");
            self.bird.restart_bridge(slug).await?;
            let withdrawn = gone().await?;
            if withdrawn {
                self.event(
                    Event::BirdStaleRouteCleared,
                    &[("evpn", slug.to_string()), ("mac", mac.clone())],
                );
            }
            Ok::<bool, Error>(withdrawn)
        };
        match tokio::time::timeout(WITHDRAW_CHECK_MAX, check).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(Error::Internal(format!(
                "release of evpn {slug:?} did not take effect in BIRD: it still announces {mac} \
                 from {} after a restart",
                bird_ctl::snippet::bridge_protocol(slug)
            ))),
            Ok(Err(e)) => {
                tracing::warn!(evpn = slug, error = %e, "bird-withdraw-unverified");
                Ok(())
            }
            Err(_) => {
                tracing::warn!(
                    evpn = slug,
                    error = "BIRD did not answer in time",
                    "bird-withdraw-unverified"
                );
                Ok(())
            }
        }
    }
}
