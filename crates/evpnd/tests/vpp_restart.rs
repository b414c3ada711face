//! A VPP restart against vppsim, black-box through gRPC (issue 14 item 6):
//! evpnd sees the connection drop at once, reconnects by itself and
//! reconciles at once (the reconcile interval here is 300 s, so nothing
//! here may wait for a tick); the gateway is bound again and announced
//! (standalone) or the lost binding reported (with a registry).
mod common;

use std::time::Duration;

use common::{Host, T};
use evpn_api::v1;
use vppsim::{SimOptions, VppSim};

const VMAC: &str = "42:6c:fa:d6:82:98";

async fn host(test: &str, registry: bool) -> Host {
    let mut h = Host::new(test, "r1").await;
    h.start_evpnd_with("300s", registry);
    let mut c = h.registry_client(1).await;
    c.create_evpn_instance(v1::CreateEvpnInstanceRequest {
        slug: "test".into(),
        vni: 100,
        ..Default::default()
    })
    .await
    .unwrap();
    c.create_bvi(v1::CreateBviRequest {
        slug: "test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.bind_group_bvi(v1::HostBindGroupBviRequest {
        slug: "test".into(),
        group_id: "test".into(),
        vmac: VMAC.into(),
        addresses: vec![v1::Prefix {
            address: "172.16.0.32".into(),
            prefix_len: 24,
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    h
}

/// Polls `f` until it is true; panics naming `what` after [`T`]. Returns
/// how long it took.
async fn until(what: &str, f: impl AsyncFnMut() -> bool) -> Duration {
    let t0 = std::time::Instant::now();
    evpn_testkit::eventually(what, T, f).await.unwrap();
    t0.elapsed()
}

/// The gateway is on VPP: the loopback carries the vMAC and the address.
fn gateway_on_vpp(h: &Host) -> bool {
    h.sim
        .state()
        .interface_by_name("loop10000")
        .is_some_and(|i| {
            i.mac.to_string() == VMAC
                && i.addresses
                    .iter()
                    .any(|p| p.addr.to_string() == "172.16.0.32")
        })
}

async fn role(h: &Host) -> v1::bvi::Role {
    h.client()
        .await
        .get_bvi(v1::EvpnRef {
            slug: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .role()
}

async fn vpp_health(h: &Host) -> v1::Health {
    h.client()
        .await
        .get_vpp_info(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner()
        .health()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_restart_standalone_gateway_bound_and_announced_again_at_once() {
    let h = host("vpp_restart_at_once", false).await;
    assert!(gateway_on_vpp(&h));
    h.sim.clear_journal();
    h.sim.faults().restart();
    assert!(!gateway_on_vpp(&h), "the restart wiped VPP");
    let took = until("the gateway bound again", || async { gateway_on_vpp(&h) }).await;
    println!(
        "gateway bound again {} ms after VPP came back",
        took.as_millis()
    );
    until("a GARP after the addresses came back", || async {
        h.sim.journal().iter().any(|e| e.msg == "arping")
    })
    .await;
    assert_eq!(role(&h).await, v1::bvi::Role::Primary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_restart_with_a_registry_reports_the_lost_binding_at_once() {
    let h = host("vpp_restart_registry_at_once", true).await;
    h.sim.faults().restart();
    let took = until("the binding reported lost", || async {
        role(&h).await == v1::bvi::Role::Candidate
    })
    .await;
    println!(
        "binding reported lost {} ms after VPP came back",
        took.as_millis()
    );
    h.evpnd()
        .wait_log("groupbvi-dropped", T)
        .expect("the loss is an event");
    // Not re-claimed by evpnd: the loopback is back with the per-host MAC.
    until("the BVI rebuilt as a candidate", || async {
        h.sim
            .state()
            .interface_by_name("loop10000")
            .is_some_and(|i| i.addresses.is_empty())
    })
    .await;
    assert!(!gateway_on_vpp(&h));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_down_is_reported_at_once_and_the_reconnect_needs_no_tick() {
    let mut h = host("vpp_down_reported", false).await;
    assert_eq!(vpp_health(&h).await, v1::Health::Ok);
    // VPP stops: its socket goes away.
    let sock = h.sim.socket_path().to_path_buf();
    let tmp = VppSim::start(h.dir.path().join("tmp.sock"), SimOptions::default())
        .await
        .unwrap();
    std::mem::replace(&mut h.sim, tmp).shutdown().await;
    let took = until("VPP reported down", || async {
        vpp_health(&h).await == v1::Health::Down
    })
    .await;
    println!("VPP reported down after {} ms", took.as_millis());
    // VPP starts again (empty).
    let fresh = VppSim::start(&sock, SimOptions::default()).await.unwrap();
    std::mem::replace(&mut h.sim, fresh).shutdown().await;
    let took = until("the gateway bound again", || async { gateway_on_vpp(&h) }).await;
    println!(
        "gateway bound again {} ms after VPP came back",
        took.as_millis()
    );
    assert_eq!(vpp_health(&h).await, v1::Health::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_set_down_behind_evpnds_back_is_repaired_without_a_tick() {
    let h = host("vpp_if_event_repair", false).await;
    let idx = h
        .sim
        .state()
        .interface_by_name("loop10000")
        .expect("loopback")
        .sw_if_index;
    // An operator (another API client) sets the BVI admin-down.
    let other = vpp_api::Client::connect(vpp_api::ClientConfig::new(h.sim.socket_path()))
        .await
        .unwrap();
    other
        .sw_interface_set_flags(vpp_api::SwIfIndex(idx), false)
        .await
        .unwrap();
    let took = until("the loopback admin-up again", || async {
        h.sim
            .state()
            .interface_by_name("loop10000")
            .is_some_and(|i| i.admin_up)
    })
    .await;
    println!("repaired {} ms after the interface event", took.as_millis());
}
