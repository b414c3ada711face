//! Start-up reconcile: bring the dataplane and BIRD to the persisted state,
//! reading first (dumps, not assumptions) and changing only what differs.
//! A host that already matches sees zero state-changing calls.
//!
//! The same pass runs periodically and at once when the dataplane reports a
//! change behind evpnd's back (paced: [`Pacer`]), and [`verify`] applies the
//! same rule after every bind and release.
//!
//! The decision is sans-IO ([`plan_bvi`]); the loop around it is thin.
use std::{collections::BTreeMap, time::Duration};

use evpn_model::Error;
use ipnet::IpNet;

use crate::{
    dataplane::{EvpnRef, ObservedBvi},
    manager::{Handle, Manager, ref_of},
    state::{Bvi, Evpn},
};

/// One dataplane fix for a BVI, in the order they must be applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Fix {
    Create,
    Delete,
    Mtu(u32),
    Up,
    Attach(bool),
    DelAddress(IpNet),
    Mac(evpn_model::Mac),
    /// Make the Linux side (VPP: the linux-cp pair); after MAC and MTU,
    /// before the link-local (which is set on both sides).
    LinuxSide,
    LinkLocal(std::net::Ipv6Addr),
    AddAddress(IpNet),
}

/// What to do so that the observed BVI matches the desired one. Order:
/// structural fixes, then addresses that must go, then MAC and link-local,
/// then addresses that must come (gateway addresses are always last in and
/// first out).
pub fn plan_bvi(enabled: bool, want: Option<&Bvi>, have: Option<&ObservedBvi>) -> Vec<Fix> {
    let mut out = Vec::new();
    match (want, have) {
        (None, None) => {}
        (None, Some(_)) => out.push(Fix::Delete),
        (Some(b), None) => {
            out.push(Fix::Create);
            out.push(Fix::LinkLocal(b.current_mac().link_local()));
            out.extend(b.current_addresses().into_iter().map(Fix::AddAddress));
        }
        (Some(b), Some(o)) => {
            if o.mtu != b.mtu {
                out.push(Fix::Mtu(b.mtu));
            }
            if !o.up {
                out.push(Fix::Up);
            }
            if o.attached != enabled {
                out.push(Fix::Attach(enabled));
            }
            let want_addrs = b.current_addresses();
            out.extend(
                o.addresses
                    .iter()
                    .filter(|a| !want_addrs.contains(a))
                    .map(|a| Fix::DelAddress(*a)),
            );
            let mac = b.current_mac();
            if o.mac != mac {
                out.push(Fix::Mac(mac));
            }
            if o.link_local != Some(mac.link_local()) {
                out.push(Fix::LinkLocal(mac.link_local()));
            }
            out.extend(
                want_addrs
                    .iter()
                    .filter(|a| !o.addresses.contains(a))
                    .map(|a| Fix::AddAddress(*a)),
            );
        }
    }
    out
}

/// [`plan_bvi`] with the Linux side as part of the desired BVI: when
/// `linux` (the dataplane wants a separately made Linux side, see
/// [`crate::dataplane::Dataplane::linux_side_wanted`]) and the observed BVI
/// has none (or there is no BVI yet), [`Fix::LinuxSide`] goes before the
/// link-local and the addresses.
pub fn plan(
    enabled: bool,
    want: Option<&Bvi>,
    have: Option<&ObservedBvi>,
    linux: bool,
) -> Vec<Fix> {
    let mut out = plan_bvi(enabled, want, have);
    if linux && want.is_some() && have.is_none_or(|o| o.linux.is_none()) {
        let at = out
            .iter()
            .position(|f| matches!(f, Fix::LinkLocal(_) | Fix::AddAddress(_)))
            .unwrap_or(out.len());
        out.insert(at, Fix::LinuxSide);
        // The Linux side gets its link-local with the fix (set on both sides).
        if let Some(b) = want
            && !out.iter().any(|f| matches!(f, Fix::LinkLocal(_)))
        {
            out.insert(at + 1, Fix::LinkLocal(b.current_mac().link_local()));
        }
    }
    out
}

async fn apply_fix(m: &Manager, e: &Evpn, f: &Fix) -> Result<(), Error> {
    let r = ref_of(e);
    match f {
        Fix::Create => {
            let b = e
                .bvi
                .as_ref()
                .ok_or_else(|| Error::Internal("create without BVI".into()))?;
            m.dp.create_bvi(&r, b.current_mac(), e.enabled)
                .await
                .map(|_| ())
        }
        Fix::Delete => m.dp.delete_bvi(&r).await,
        Fix::Mtu(v) => m.dp.set_mtu(&r, *v).await,
        Fix::Up => m.dp.set_up(&r).await,
        Fix::Attach(a) => m.dp.set_attached(&r, *a).await,
        Fix::DelAddress(a) => m.dp.del_address(&r, *a).await,
        Fix::Mac(mac) => m.dp.set_mac(&r, *mac).await,
        Fix::LinuxSide => m.ensure_linux_side(e).await.map(|_| ()),
        Fix::LinkLocal(ll) => m.dp.set_link_local(&r, *ll).await,
        Fix::AddAddress(a) => m.dp.add_address(&r, *a).await,
    }
}

/// Counts of what one reconcile pass changed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub bridges_created: usize,
    pub bvi_fixes: usize,
    pub orphans_removed: usize,
    pub bird_changed: usize,
}

/// Make the dataplane and BIRD match one persisted eVPN; returns the
/// number of changes and the BVI's observed handle. Gateway addresses it
/// had to add again (VPP restarted) are announced (GARP/NA) on the bind's
/// schedule.
/// `observed` is a fresh observation of the dataplane when the caller
/// already made one (it is not repeated).
pub async fn reconcile_evpn(
    m: &Manager,
    e: &Evpn,
    rep: &mut Report,
    observed: Option<crate::dataplane::ObservedEvpn>,
) -> Result<Option<Handle>, Error> {
    let r = ref_of(e);
    let obs = match observed {
        Some(o) => o,
        None => m.dp.observe(&r).await?,
    };
    if !obs.bridge {
        m.dp.create_evpn(&r).await?;
        rep.bridges_created += 1;
    }
    if m.bird.set(e).await? {
        rep.bird_changed += 1;
    } else if !obs.bridge && m.dp.kind() == "linux" {
        // Devices recreated under an unchanged snippet: `docs/bird-notes.md` §4.6.
        m.bird.recover_stuck(&e.slug).await?;
    }
    let linux = m.dp.linux_side_wanted().await;
    let fixes = plan(e.enabled, e.bvi.as_ref(), obs.bvi.as_ref(), linux);
    for f in &fixes {
        tracing::info!(evpn = %e.slug, fix = ?f, "reconcile-fix");
        apply_fix(m, e, f).await?;
    }
    rep.bvi_fixes += fixes.len();
    let Some(b) = e.bvi.as_ref() else {
        return Ok(None);
    };
    if b.binding.is_some() {
        let added: Vec<IpNet> = fixes
            .iter()
            .filter_map(|f| match f {
                Fix::AddAddress(a) => Some(*a),
                _ => None,
            })
            .collect();
        if !added.is_empty() {
            m.spawn_announce(e, added);
        }
    }
    if obs.bvi.as_ref().is_some_and(|o| o.linux.is_some()) {
        m.linux_side_ok(&e.slug);
    }
    if fixes.contains(&Fix::Create) || fixes.contains(&Fix::LinuxSide) {
        return Ok(m.dp.observe(&r).await?.bvi.as_ref().map(Handle::of));
    }
    Ok(obs.bvi.as_ref().map(Handle::of))
}

/// After a write failed half-way: bring that eVPN back to its persisted
/// (last committed) state, best effort, so a retry starts clean. Returns
/// the BVI's handle as observed after the heal (`None` without a BVI or
/// when the heal failed).
pub async fn heal(m: &Manager, e: Option<&Evpn>, slug: &str, bd_id: u32) -> Option<Handle> {
    let mut rep = Report::default();
    let mut handle = None;
    let r = match e {
        Some(e) => reconcile_evpn(m, e, &mut rep, None)
            .await
            .map(|h| handle = h),
        None => {
            // Not persisted: nothing of it may remain.
            let r = EvpnRef {
                slug,
                bd_id,
                vni: 0,
                mtu: 0,
                evpn_mtu: 0,
                vtep: None,
                instance_mac: None,
            };
            async {
                m.dp.delete_bvi(&r).await?;
                m.bird.remove(slug).await?;
                m.dp.delete_evpn(&r).await
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
pub async fn reconcile_once(m: &Manager) -> Result<Report, Error> {
    let mut st = m.lock().await;
    m.dp.connect().await?;
    let mut rep = Report::default();
    let mut handles = BTreeMap::new();
    let slugs: Vec<String> = st.evpns.keys().cloned().collect();
    for slug in slugs {
        let mut e = st.evpns[&slug].clone();
        let bound = e.bvi.as_ref().and_then(|b| b.binding.clone());
        let mut observed = None;
        if !m.cfg.registry.is_empty()
            && let Some(bind) = bound
        {
            let obs = m.dp.observe(&ref_of(&e)).await?;
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
                m.commit(&st, None)?;
                m.event(
                    evpn_daemon::events::Event::GroupBviDropped,
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
        if let Some(h) = reconcile_evpn(m, &e, &mut rep, observed).await? {
            handles.insert(slug.clone(), h);
        }
    }
    // Orphans: bridge domains in our range (and their loopbacks) that the
    // state does not know, e.g. after a crash between create and persist.
    let used: Vec<u32> = st.evpns.values().map(|e| e.bd_id).collect();
    let orphans: Vec<u32> =
        m.dp.list_bridges(m.cfg.vpp.bridge_domain_min, m.cfg.vpp.bridge_domain_max)
            .await?
            .into_iter()
            .filter(|bd| !used.contains(bd))
            .collect();
    let orphan_snippets: Vec<String> = m
        .bird
        .live_slugs()?
        .into_iter()
        .filter(|s| !st.evpns.contains_key(s))
        .collect();
    if m.state_missing() {
        if orphans.is_empty() && orphan_snippets.is_empty() {
            // A fresh host: write the (empty) file now, so that from here on
            // a missing file means a lost one, while objects a crash leaves
            // before the first save are still orphans.
            m.commit(&st, None)?;
            m.state_missing_resolved();
        } else {
            // A lost state file is not an empty one: remove nothing.
            m.hold_missing_state(&orphans, &orphan_snippets);
            drop(st);
            m.publish_handles(handles);
            return Ok(rep);
        }
    }
    for bd in orphans {
        let r = EvpnRef {
            slug: "orphan",
            bd_id: bd,
            vni: 0,
            mtu: 0,
            evpn_mtu: 0,
            vtep: None,
            instance_mac: None,
        };
        tracing::warn!(bd, "reconcile-orphan");
        m.dp.delete_bvi(&r).await?;
        m.dp.delete_evpn(&r).await?;
        rep.orphans_removed += 1;
    }
    for slug in orphan_snippets {
        tracing::warn!(evpn = %slug, "reconcile-orphan-snippet");
        m.bird.remove(&slug).await?;
        rep.bird_changed += 1;
    }
    drop(st);
    m.publish_handles(handles);
    Ok(rep)
}

/// After a bind or release: read back what the dataplane now has for `e`
/// (the state about to be committed) and compare it with what `e` wants
/// (the same rule as reconcile: [`plan_bvi`]). A difference is healed once
/// (logged and reported as an event) and read back again; what still
/// differs is an error naming it, so the call never reports a silent
/// success. `what` names the call for the log.
pub async fn verify(m: &Manager, e: &Evpn, what: &str) -> Result<(), Error> {
    let r = ref_of(e);
    let obs = m.dp.observe(&r).await?;
    let fixes = plan_bvi(e.enabled, e.bvi.as_ref(), obs.bvi.as_ref());
    if fixes.is_empty() {
        return Ok(());
    }
    tracing::warn!(evpn = %e.slug, call = what, fixes = ?fixes, "dataplane-verify-mismatch");
    for f in &fixes {
        apply_fix(m, e, f).await?;
    }
    let obs = m.dp.observe(&r).await?;
    let left = plan_bvi(e.enabled, e.bvi.as_ref(), obs.bvi.as_ref());
    if !left.is_empty() {
        return Err(Error::Internal(format!(
            "{what} of evpn {:?} did not take effect on the dataplane; still differs: {left:?}",
            e.slug
        )));
    }
    m.event(
        evpn_daemon::events::Event::DataplaneVerifyHealed,
        &[
            ("evpn", e.slug.clone()),
            ("call", what.to_string()),
            ("fixes", format!("{fixes:?}")),
        ],
    );
    Ok(())
}

/// How long BIRD may take to withdraw a released vMAC before evpnd
/// restarts its bridge protocol ([`verify_withdrawn`]), and again after it.
pub const WITHDRAW_GRACE: Duration = Duration::from_millis(500);
/// The most [`verify_withdrawn`] adds to a release (a hung BIRD).
pub const WITHDRAW_CHECK_MAX: Duration = Duration::from_secs(2);

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
pub async fn verify_withdrawn(m: &Manager, slug: &str, vmac: evpn_model::Mac) -> Result<(), Error> {
    let mac = vmac.to_string();
    let gone = async || {
        let until = tokio::time::Instant::now() + WITHDRAW_GRACE;
        loop {
            if !m.bird.announces_locally(slug, &mac).await? {
                return Ok::<bool, Error>(true);
            }
            if tokio::time::Instant::now() >= until {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    // Ok(withdrawn); Err: BIRD could not be asked.
    let check = async {
        if gone().await? {
            return Ok(true);
        }
        tracing::warn!(evpn = slug, mac = %mac, "bird-stale-local-route");
        m.bird.restart_bridge(slug).await?;
        let withdrawn = gone().await?;
        if withdrawn {
            m.event(
                evpn_daemon::events::Event::BirdStaleRouteCleared,
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

/// Drift-triggered passes: at most one per [`DRIFT_MIN_GAP`]; while
/// consecutive passes each repair something (a change that keeps coming
/// back), the gap doubles up to [`DRIFT_MAX_GAP`]; a pass that finds
/// nothing to repair resets it. Sans-IO: the loop feeds it the times.
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    last: Option<tokio::time::Instant>,
    repairs_in_a_row: u32,
}

/// The least time between two drift-triggered reconcile passes.
pub const DRIFT_MIN_GAP: Duration = Duration::from_millis(100);
/// The most the gap grows to while the same drift keeps coming back.
pub const DRIFT_MAX_GAP: Duration = Duration::from_secs(5);

impl Pacer {
    /// The current gap between two passes.
    pub fn gap(&self) -> Duration {
        let doublings = self.repairs_in_a_row.saturating_sub(1).min(16);
        (DRIFT_MIN_GAP * 2u32.pow(doublings)).min(DRIFT_MAX_GAP)
    }

    /// When the next drift-triggered pass may start (`None`: now).
    pub fn earliest(&self) -> Option<tokio::time::Instant> {
        self.last.map(|t| t + self.gap())
    }

    /// A drift-triggered pass started at `at`; it repaired something or not.
    pub fn done(&mut self, at: tokio::time::Instant, repaired: bool) {
        self.last = Some(at);
        self.repairs_in_a_row = if repaired {
            self.repairs_in_a_row.saturating_add(1)
        } else {
            0
        };
    }
}

/// The next drift reason; `None` when the watch is gone (or there is none:
/// then this never completes).
async fn next_drift(rx: &mut Option<tokio::sync::mpsc::Receiver<String>>) -> Option<String> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Reconcile until it succeeds (back-off 0.5 s .. 15 s), mark ready, then
/// keep reconciling every `interval` (a pass over a matching host only reads)
/// so a restarted VPP or a manual change is repaired, and at once (paced by
/// [`Pacer`]) whenever the dataplane reports a change behind evpnd's back
/// ([`crate::dataplane::Dataplane::drift_events`]).
pub async fn run(m: &Manager, interval: Duration, shutdown: tokio_util::sync::CancellationToken) {
    let mut drift = m.dp.drift_events();
    run_until_ready(m, shutdown.clone()).await;
    if interval.is_zero() && drift.is_none() {
        return;
    }
    let mut pacer = Pacer::default();
    let mut next_tick = tokio::time::Instant::now() + interval;
    // A drift-triggered pass failed: try again once paced, without waiting
    // for another event.
    let mut retry = false;
    loop {
        let tick = async {
            if interval.is_zero() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep_until(next_tick).await;
        };
        let why = tokio::select! {
            _ = tick => None,
            _ = tokio::time::sleep_until(
                pacer.earliest().unwrap_or_else(tokio::time::Instant::now)
            ), if retry => Some("retry after a failed pass".to_string()),
            w = next_drift(&mut drift) => match w {
                Some(w) => Some(w),
                None => {
                    drift = None;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        if why.is_some() {
            if let Some(t) = pacer.earliest() {
                tokio::select! {
                    _ = tokio::time::sleep_until(t) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
            // Whatever arrived meanwhile is covered by this pass.
            if let Some(rx) = drift.as_mut() {
                while rx.try_recv().is_ok() {}
            }
        } else {
            next_tick = tokio::time::Instant::now() + interval;
        }
        let started = tokio::time::Instant::now();
        let result = reconcile_once(m).await;
        let failed = result.is_err();
        let repaired = match result {
            Ok(rep) if rep != Report::default() => {
                tracing::warn!(
                    bridges_created = rep.bridges_created,
                    bvi_fixes = rep.bvi_fixes,
                    orphans_removed = rep.orphans_removed,
                    bird_changed = rep.bird_changed,
                    trigger = why.as_deref().unwrap_or("interval"),
                    "reconcile-repaired-drift"
                );
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(error = %e, "reconcile-failed");
                // Paced like a repair: a failure that persists backs off.
                true
            }
        };
        if why.is_some() {
            pacer.done(started, repaired);
        }
        // Any pass that succeeds covers a pending retry.
        retry = failed && (why.is_some() || retry);
    }
}

/// Reconcile until it succeeds (back-off 0.5 s .. 15 s), then mark ready.
pub async fn run_until_ready(m: &Manager, shutdown: tokio_util::sync::CancellationToken) {
    let mut delay = Duration::from_millis(500);
    loop {
        match reconcile_once(m).await {
            Ok(rep) => {
                tracing::info!(
                    bridges_created = rep.bridges_created,
                    bvi_fixes = rep.bvi_fixes,
                    orphans_removed = rep.orphans_removed,
                    bird_changed = rep.bird_changed,
                    "reconcile-finished"
                );
                m.set_ready();
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "reconcile-failed");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(15));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Binding;
    use evpn_model::Mac;

    fn bvi(bound: bool) -> Bvi {
        Bvi {
            instance_mac: "02:00:00:00:00:01".parse().unwrap(),
            mtu: 1500,
            binding: bound.then(|| Binding {
                group_id: "g".into(),
                vmac: "02:00:00:00:00:99".parse().unwrap(),
                addresses: vec![
                    "172.16.0.32/24".parse().unwrap(),
                    "fec0::32/64".parse().unwrap(),
                ],
            }),
            created_ms: 0,
            modified_ms: 0,
        }
    }

    fn obs_of(b: &Bvi) -> ObservedBvi {
        let mut addresses = b.current_addresses();
        addresses.sort();
        ObservedBvi {
            handle: 1,
            mac: b.current_mac(),
            mtu: b.mtu,
            up: true,
            attached: true,
            addresses,
            link_local: Some(b.current_mac().link_local()),
            linux: Some("bvi-test".into()),
        }
    }

    #[test]
    fn the_linux_side_is_part_of_the_desired_bvi() {
        let b = bvi(true);
        let ll = Fix::LinkLocal(b.current_mac().link_local());
        let full = obs_of(&b);
        let mut no_lcp = obs_of(&b);
        no_lcp.linux = None;
        let mut no_lcp_no_ll = no_lcp.clone();
        no_lcp_no_ll.link_local = None;
        let addrs: Vec<Fix> = b
            .current_addresses()
            .into_iter()
            .map(Fix::AddAddress)
            .collect();
        // (linux wanted, observed) -> plan
        let table: Vec<(bool, Option<&ObservedBvi>, Vec<Fix>)> = vec![
            // Missing pair: made, then the link-local on both sides.
            (true, Some(&no_lcp), vec![Fix::LinuxSide, ll.clone()]),
            (true, Some(&no_lcp_no_ll), vec![Fix::LinuxSide, ll.clone()]),
            // Not wanted (off, or auto without the plugin): nothing.
            (false, Some(&no_lcp), vec![]),
            // Present: nothing.
            (true, Some(&full), vec![]),
            // No BVI yet: create, pair, link-local, then addresses.
            (
                true,
                None,
                [vec![Fix::Create, Fix::LinuxSide, ll.clone()], addrs.clone()].concat(),
            ),
            (false, None, [vec![Fix::Create, ll.clone()], addrs].concat()),
        ];
        for (i, (linux, have, want)) in table.into_iter().enumerate() {
            assert_eq!(plan(true, Some(&b), have, linux), want, "row {i}");
        }
        // No desired BVI: a pair never matters.
        assert_eq!(plan(true, None, Some(&no_lcp), true), vec![Fix::Delete]);
    }

    #[test]
    fn matching_host_needs_nothing() {
        for bound in [false, true] {
            let b = bvi(bound);
            assert!(plan_bvi(true, Some(&b), Some(&obs_of(&b))).is_empty());
        }
        assert!(plan_bvi(true, None, None).is_empty());
    }

    #[test]
    fn crash_mid_bind_completes_the_bind_with_addresses_last() {
        let want = bvi(true);
        // The MAC was set, nothing else.
        let mut o = obs_of(&bvi(false));
        o.mac = want.current_mac();
        let plan = plan_bvi(true, Some(&want), Some(&o));
        assert_eq!(
            plan.first(),
            Some(&Fix::LinkLocal(want.current_mac().link_local()))
        );
        assert!(matches!(plan.last(), Some(Fix::AddAddress(_))));
        assert_eq!(plan.len(), 3);
    }

    #[test]
    fn crash_mid_release_removes_addresses_before_the_mac() {
        let want = bvi(false);
        let mut o = obs_of(&bvi(true));
        // One address already removed.
        o.addresses.truncate(1);
        let plan = plan_bvi(true, Some(&want), Some(&o));
        let mac_at = plan.iter().position(|f| matches!(f, Fix::Mac(_))).unwrap();
        let del_at = plan
            .iter()
            .position(|f| matches!(f, Fix::DelAddress(_)))
            .unwrap();
        assert!(del_at < mac_at, "{plan:?}");
        assert!(!plan.iter().any(|f| matches!(f, Fix::AddAddress(_))));
    }

    #[test]
    fn drift_passes_are_paced_and_back_off_while_the_drift_returns() {
        let t0 = tokio::time::Instant::now();
        let ms = Duration::from_millis;
        let mut p = Pacer::default();
        assert_eq!(p.earliest(), None, "the first pass runs at once");
        // (repaired?, gap after the pass)
        let table = [
            (true, 100),
            (true, 200),
            (true, 400),
            (true, 800),
            (true, 1600),
            (true, 3200),
            (true, 5000),
            (true, 5000),
            (false, 100),
            (true, 100),
            (false, 100),
        ];
        for (i, (repaired, gap)) in table.into_iter().enumerate() {
            let at = t0 + ms(i as u64 * 10_000);
            p.done(at, repaired);
            assert_eq!(p.gap(), ms(gap), "pass {i}");
            assert_eq!(p.earliest(), Some(at + ms(gap)), "pass {i}");
        }
        for _ in 0..100 {
            p.done(t0, true);
        }
        assert_eq!(p.gap(), DRIFT_MAX_GAP);
    }

    #[test]
    fn missing_bvi_is_recreated_and_orphan_deleted() {
        let want = bvi(true);
        let plan = plan_bvi(true, Some(&want), None);
        assert_eq!(plan[0], Fix::Create);
        assert_eq!(
            plan.iter()
                .filter(|f| matches!(f, Fix::AddAddress(_)))
                .count(),
            2
        );
        assert_eq!(
            plan_bvi(true, None, Some(&obs_of(&want))),
            vec![Fix::Delete]
        );
        let mut o = obs_of(&bvi(false));
        o.attached = true;
        o.mac = Mac([2, 0, 0, 0, 0, 7]);
        o.up = false;
        let plan = plan_bvi(false, Some(&bvi(false)), Some(&o));
        assert_eq!(&plan[..2], &[Fix::Up, Fix::Attach(false)]);
    }
}
