//! A VPP restart with a short reconcile interval (200 ms), black-box through
//! gRPC: standalone, evpnd rebuilds everything including the binding; with a
//! registry it does not reclaim the vMAC on its own. (Moved from
//! `lifecycle.rs`; `vpp_restart.rs` covers the reconnect that needs no tick.)
mod common;

use common::{HOST_MAC, Host, T, VMAC, bind_req, create_req};
use evpn_api::v1;

/// Replace the host's vppsim with a fresh, empty one at the same socket (a
/// VPP restart).
async fn restart_vpp(h: &mut Host) {
    let sock = h.sim.socket_path().to_path_buf();
    let tmp = vppsim::VppSim::start(h.dir.path().join("tmp.sock"), vppsim::SimOptions::default())
        .await
        .unwrap();
    let old = std::mem::replace(&mut h.sim, tmp);
    old.shutdown().await;
    let fresh = vppsim::VppSim::start(&sock, vppsim::SimOptions::default())
        .await
        .unwrap();
    let tmp = std::mem::replace(&mut h.sim, fresh);
    tmp.shutdown().await;
}

async fn bound_host_after_vpp_restart(test: &str, registry: bool) -> (Host, v1::Bvi) {
    let mut h = Host::new(test, "r1").await;
    h.start_evpnd_with("200ms", registry);
    let mut c = h.registry_client(1).await;
    c.create_evpn_instance(create_req("test", 100))
        .await
        .unwrap();
    c.create_bvi(v1::CreateBviRequest {
        slug: "test".into(),
        mac: HOST_MAC.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.bind_group_bvi(bind_req()).await.unwrap();
    let n = h.evpnd().lines().len();
    restart_vpp(&mut h).await;
    h.evpnd()
        .wait_log_after(n, "reconcile-repaired-drift", T)
        .unwrap();
    let b = c
        .get_bvi(v1::EvpnRef {
            slug: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    (h, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_restart_standalone_rebuilds_everything_including_the_binding() {
    let (h, b) = bound_host_after_vpp_restart("vpp_restart_standalone", false).await;
    assert_eq!((b.mac.as_str(), b.role()), (VMAC, v1::bvi::Role::Primary));
    let st = h.sim.state();
    let lo = st
        .interfaces
        .values()
        .find(|i| i.name.starts_with("loop"))
        .expect("loopback rebuilt");
    assert_eq!(lo.mac.to_string(), VMAC);
    assert_eq!(lo.addresses.len(), 2);
    assert_eq!(st.bridge_domains.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_restart_with_a_registry_does_not_reclaim_the_vmac() {
    let (h, b) = bound_host_after_vpp_restart("vpp_restart_with_registry", true).await;
    // The registry may have moved the gateway meanwhile: candidate until it binds again.
    assert_eq!(
        (b.mac.as_str(), b.role()),
        (HOST_MAC, v1::bvi::Role::Candidate)
    );
    let st = h.sim.state();
    assert!(
        st.interfaces.values().all(|i| i.mac.to_string() != VMAC),
        "{st:?}"
    );
    let lo = st
        .interfaces
        .values()
        .find(|i| i.name.starts_with("loop"))
        .expect("loopback rebuilt");
    assert!(lo.addresses.is_empty());
    assert!(
        h.evpnd()
            .lines()
            .iter()
            .any(|l| l.contains("groupbvi-dropped"))
    );
}
