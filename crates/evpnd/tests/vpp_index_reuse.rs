//! Issue 14 item 4: VPP reuses a freed `sw_if_index`. When the BVI's loopback
//! is deleted behind evpnd's back and another interface is created (and gets
//! the freed index), a bind must not put the vMAC or the gateway address on
//! that foreign interface; the BVI is recreated instead.
mod common;

use std::time::Duration;

use common::*;
use evpn_api::v1;
use nix::sys::signal::Signal;
use vpp_api::{Client, ClientConfig, MacAddress, SwIfIndex};

const VMAC: &str = "42:6c:fa:d6:82:98";

fn bind_req() -> v1::HostBindGroupBviRequest {
    v1::HostBindGroupBviRequest {
        slug: "test".into(),
        group_id: "test".into(),
        vmac: VMAC.into(),
        addresses: vec![v1::Prefix {
            address: "172.16.0.32".into(),
            prefix_len: 24,
        }],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_sw_if_index_never_gets_the_vmac() {
    let mut h = Host::new("a_reused_sw_if_index_never_gets_the_vmac", "r1").await;
    h.start_evpnd();
    let mut c = h.client().await;
    let bd = c
        .create_evpn_instance(v1::CreateEvpnInstanceRequest {
            slug: "test".into(),
            vni: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .bridge_domain_id;
    c.create_bvi(v1::CreateBviRequest {
        slug: "test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let ours = format!("loop{bd}");
    let old = h.sim.state().interface_by_name(&ours).unwrap().sw_if_index;

    // An operator, behind evpnd's back: delete the loopback, create another. evpnd is
    // paused meanwhile: otherwise its at-once repair of the deleted BVI may take the
    // freed index first, and the case under test (a foreign interface on it) never arises.
    let op = Client::connect(ClientConfig::new(h.sim.socket_path()))
        .await
        .unwrap();
    h.evpnd().signal(Signal::SIGSTOP).unwrap();
    op.delete_loopback(SwIfIndex(old)).await.unwrap();
    let foreign = op
        .create_loopback_instance(MacAddress::ZERO, None)
        .await
        .unwrap();
    h.evpnd().signal(Signal::SIGCONT).unwrap();
    assert_eq!(foreign.0, old, "VPP hands the freed index out again");
    let created_at = h.sim.journal().last().unwrap().seq;
    let foreign_before = h.sim.state().interfaces[&old].clone();
    assert_ne!(foreign_before.name, ours);

    // The bind may fail (its BVI vanished) but must not touch the foreign interface.
    let first = c.bind_group_bvi(bind_req()).await;
    let touched: Vec<_> = h
        .sim
        .journal()
        .into_iter()
        .filter(|e| e.seq > created_at && e.fields.get("sw_if_index") == Some(&old.into()))
        .collect();
    assert!(
        touched.is_empty(),
        "evpnd wrote to the foreign interface {}: {touched:?} (bind: {first:?})",
        foreign_before.name
    );
    assert_eq!(h.sim.state().interfaces[&old], foreign_before);

    // The BVI comes back as a new interface, and a bind lands on it.
    evpn_testkit::eventually(
        "the BVI recreated and a bind on it",
        Duration::from_secs(10),
        async || c.bind_group_bvi(bind_req()).await,
    )
    .await
    .unwrap();
    let st = h.sim.state();
    let bvi = st.interface_by_name(&ours).expect("BVI recreated");
    assert_ne!(bvi.sw_if_index, old);
    assert_eq!(bvi.mac.to_string(), VMAC);
    assert_eq!(
        bvi.addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["172.16.0.32/24"]
    );
    assert_eq!(
        st.interfaces[&old], foreign_before,
        "foreign interface untouched"
    );
    let touched: Vec<_> = h
        .sim
        .journal()
        .into_iter()
        .filter(|e| e.seq > created_at && e.fields.get("sw_if_index") == Some(&old.into()))
        .collect();
    assert!(touched.is_empty(), "written later: {touched:?}");
    h.sim.check_mac_exclusive(Some(VMAC)).unwrap();
}
