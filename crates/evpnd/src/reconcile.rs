//! Start-up reconcile: bring the dataplane and BIRD to the persisted state,
//! reading first (dumps, not assumptions) and changing only what differs.
//! A host that already matches sees zero state-changing calls.
//!
//! The decision is sans-IO ([`plan_bvi`]); the loop around it is thin.
use std::{collections::BTreeMap, time::Duration};

use evpn_model::Error;
use ipnet::IpNet;

use crate::{
    dataplane::{EvpnRef, ObservedBvi},
    manager::{Manager, ref_of},
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
/// number of changes and the BVI's observed handle.
/// `observed` is a fresh observation of the dataplane when the caller
/// already made one (it is not repeated).
pub async fn reconcile_evpn(
    m: &Manager,
    e: &Evpn,
    rep: &mut Report,
    observed: Option<crate::dataplane::ObservedEvpn>,
) -> Result<Option<u32>, Error> {
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
        // Devices recreated under an unchanged snippet: bird.md §4.6.
        m.bird.recover_stuck(&e.slug).await?;
    }
    let fixes = plan_bvi(e.enabled, e.bvi.as_ref(), obs.bvi.as_ref());
    for f in &fixes {
        tracing::info!(evpn = %e.slug, fix = ?f, "reconcile-fix");
        apply_fix(m, e, f).await?;
    }
    rep.bvi_fixes += fixes.len();
    if e.bvi.is_none() {
        return Ok(None);
    }
    if fixes.contains(&Fix::Create) {
        return Ok(m.dp.observe(&r).await?.bvi.map(|b| b.handle));
    }
    Ok(obs.bvi.map(|b| b.handle))
}

/// After a write failed half-way: bring that eVPN back to its persisted
/// (last committed) state, best effort, so a retry starts clean. Returns
/// the BVI's handle as observed after the heal (`None` without a BVI or
/// when the heal failed).
pub async fn heal(m: &Manager, e: Option<&Evpn>, slug: &str, bd_id: u32) -> Option<u32> {
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
                    evpn_daemon::events::EventKind::Failover,
                    "groupbvi-dropped",
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

/// Reconcile until it succeeds (back-off 0.5 s .. 15 s), mark ready, then
/// keep reconciling every `interval` (a pass over a matching host only reads)
/// so a restarted VPP or a manual change is repaired.
pub async fn run(m: &Manager, interval: Duration, shutdown: tokio_util::sync::CancellationToken) {
    run_until_ready(m, shutdown.clone()).await;
    if interval.is_zero() {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => return,
        }
        match reconcile_once(m).await {
            Ok(rep) if rep != Report::default() => tracing::warn!(
                bridges_created = rep.bridges_created,
                bvi_fixes = rep.bvi_fixes,
                orphans_removed = rep.orphans_removed,
                bird_changed = rep.bird_changed,
                "reconcile-repaired-drift"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reconcile-failed"),
        }
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
            linux: true,
        }
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
