//! Issue 13 item 3, VPP side: a write that times out in evpnd (vppsim's latency fault delays it
//! beyond `vpp.timeout`, 2 s here) is still executed by VPP afterwards. The caller gets an
//! error, and evpnd must re-read and heal, so that once VPP has executed the late write the
//! recorded state and VPP agree again (not only at the next periodic reconcile, 30 s away).
//! VPP executes one connection's messages in order, so the heal's reads see the late write.
mod common;

use std::time::Duration;

use common::*;
use evpn_api::v1;

/// Longer than `vpp.timeout` (2 s), shorter than twice it: the heal's first read, queued behind
/// the late write, is answered within its own timeout.
const LATE: Duration = Duration::from_millis(3000);
/// Well below the 30 s periodic reconcile.
const HEALED_WITHIN: Duration = Duration::from_secs(12);

async fn host_with_bvi(test: &str) -> (Host, u32) {
    let mut h = Host::new(test, "r1").await;
    h.start_evpnd();
    let mut c = h.client().await;
    let e = c
        .create_evpn_instance(v1::CreateEvpnInstanceRequest {
            slug: "test".into(),
            vni: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    c.create_bvi(v1::CreateBviRequest {
        slug: "test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    (h, e.bridge_domain_id)
}

fn evpn_ref() -> v1::EvpnRef {
    v1::EvpnRef {
        slug: "test".into(),
        ..Default::default()
    }
}

/// Polls until VPP has executed `msg` at least `n` times (journal) and `agree()` holds.
async fn wait_healed(h: &Host, msg: &str, n: usize, mut agree: impl AsyncFnMut() -> bool) {
    evpn_testkit::eventually(
        format!("recorded state and VPP to agree after a timed-out {msg}"),
        HEALED_WITHIN,
        async || {
            let executed = h.changes().iter().filter(|m| *m == msg).count();
            if executed >= n && agree().await {
                Ok(())
            } else {
                Err(format!("{msg} executed {executed} times"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}; journal: {:?}\nevpnd log:\n{}",
            h.changes(),
            h.evpnd().lines().join("\n")
        )
    })
}

/// ReplaceBVI's MTU change times out; VPP applies it later; the heal puts VPP back on the
/// recorded MTU.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_mtu_change_that_vpp_executes_later_is_healed() {
    let (h, bd) = host_with_bvi("a_timed_out_mtu_change_that_vpp_executes_later_is_healed").await;
    let mut c = h.client().await;
    let before = c.get_bvi(evpn_ref()).await.unwrap().into_inner().mtu;
    h.sim.clear_journal();
    h.sim.faults().latency("sw_interface_set_mtu", LATE);
    let r = c
        .replace_bvi(v1::ReplaceBviRequest {
            slug: "test".into(),
            mtu: 1400,
            ..Default::default()
        })
        .await;
    assert!(r.is_err(), "the write timed out: {r:?}");
    h.sim.faults().reset();
    let lo = format!("loop{bd}");
    // The late write (1400) and then the heal's correction back to the recorded MTU.
    wait_healed(&h, "sw_interface_set_mtu", 2, async || {
        let recorded = c.get_bvi(evpn_ref()).await.unwrap().into_inner().mtu;
        let vpp = h.sim.state().interface_by_name(&lo).unwrap().mtu[0];
        recorded == before && vpp == recorded
    })
    .await;
}

/// SetEvpnInstanceEnabled(false) detaches the BVI; the detach times out, the write is refused,
/// VPP detaches later; the heal attaches it again (the eVPN is still recorded as enabled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_detach_that_vpp_executes_later_is_healed() {
    let (h, bd) = host_with_bvi("a_timed_out_detach_that_vpp_executes_later_is_healed").await;
    let mut c = h.client().await;
    let lo = format!("loop{bd}");
    let attached = |h: &Host| {
        h.sim
            .state()
            .interface_by_name(&lo)
            .unwrap()
            .l2
            .is_some_and(|(b, _, _)| b == bd)
    };
    assert!(attached(&h));
    h.sim.clear_journal();
    h.sim.faults().latency("sw_interface_set_l2_bridge", LATE);
    let r = c
        .set_evpn_instance_enabled(v1::SetEnabledRequest {
            slug: "test".into(),
            enabled: false,
            ..Default::default()
        })
        .await;
    assert!(r.is_err(), "the write timed out: {r:?}");
    h.sim.faults().reset();
    // The late detach and then the heal's attach.
    wait_healed(&h, "sw_interface_set_l2_bridge", 2, async || {
        let enabled = c
            .get_evpn_instance(evpn_ref())
            .await
            .unwrap()
            .into_inner()
            .enabled;
        enabled && attached(&h)
    })
    .await;
}

/// CreateEvpnInstance's bridge domain times out; VPP creates it later; the eVPN is not recorded,
/// so the heal removes the bridge domain again (no orphan until the periodic reconcile, and a
/// retry does not trip over it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_evpn_creation_that_vpp_executes_later_leaves_nothing() {
    let mut h = Host::new(
        "a_timed_out_evpn_creation_that_vpp_executes_later_leaves_nothing",
        "r1",
    )
    .await;
    h.start_evpnd();
    let mut c = h.client().await;
    h.sim.clear_journal();
    h.sim.faults().latency("bridge_domain_add_del_v2", LATE);
    let req = v1::CreateEvpnInstanceRequest {
        slug: "test".into(),
        vni: 100,
        ..Default::default()
    };
    let r = c.create_evpn_instance(req.clone()).await;
    assert!(r.is_err(), "the write timed out: {r:?}");
    h.sim.faults().reset();
    let ours = |h: &Host| {
        h.sim
            .state()
            .bridge_domains
            .values()
            .any(|b| b.tag == "evpn-test")
    };
    // The late creation and then the heal's deletion.
    wait_healed(&h, "bridge_domain_add_del_v2", 2, async || {
        let recorded = c.get_evpn_instance(evpn_ref()).await;
        matches!(&recorded, Err(s) if s.code() == tonic::Code::NotFound) && !ours(&h)
    })
    .await;
    // A retry succeeds.
    c.create_evpn_instance(req).await.unwrap();
    assert!(ours(&h));
}
