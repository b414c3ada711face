//! A gateway address removed from VPP behind evpnd's back (before a
//! reconcile pass noticed it) does not make ReleaseGroupBVI fail: a release
//! plans from the committed state, and deleting an address VPP no longer has
//! (`ADDRESS_NOT_FOUND_FOR_INTERFACE`, -60) is success, as the dataplane
//! trait promises. Before, the release failed with FAILED_PRECONDITION, was
//! healed back to bound (vMAC kept) and a move stalled until reconcile.
mod common;

use common::*;
use evpn_api::v1;
use vpp_api::{Client, ClientConfig, Prefix, SwIfIndex};

const VMAC: &str = "42:6c:fa:d6:82:98";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_succeeds_when_an_address_is_already_gone() {
    let mut h = Host::new("a_release_succeeds_when_an_address_is_already_gone", "r1").await;
    // No periodic pass during the test: the drift stays unnoticed.
    h.start_evpnd_with("1h", false);
    let mut c = h.client().await;
    create_evpn_with_bvi(&mut c, "test", 100).await;
    let prefix = |a: &str| v1::Prefix {
        address: a.into(),
        prefix_len: 24,
    };
    c.bind_group_bvi(v1::HostBindGroupBviRequest {
        slug: "test".into(),
        group_id: "test".into(),
        vmac: VMAC.into(),
        addresses: vec![prefix("172.16.0.1"), prefix("172.16.1.1")],
        ..Default::default()
    })
    .await
    .unwrap();

    // Someone removes one gateway address directly in VPP.
    let bvi = h
        .sim
        .state()
        .interfaces
        .values()
        .find(|i| i.mac.to_string() == VMAC)
        .expect("the bound BVI")
        .sw_if_index;
    let op = Client::connect(ClientConfig::new(h.sim.socket_path()))
        .await
        .unwrap();
    op.sw_interface_add_del_address(
        SwIfIndex(bvi),
        "172.16.1.1/24".parse::<Prefix>().unwrap(),
        false,
    )
    .await
    .unwrap();

    c.release_group_bvi(v1::HostReleaseGroupBviRequest {
        slug: "test".into(),
        group_id: "test".into(),
        ..Default::default()
    })
    .await
    .expect("the release succeeds although one address was already gone");
    let st = h.sim.state();
    let i = &st.interfaces[&bvi];
    assert!(i.addresses.is_empty(), "{:?}", i.addresses);
    assert_ne!(i.mac.to_string(), VMAC, "the vMAC is released");
    assert!(
        !st.interfaces.values().any(|i| i.mac.to_string() == VMAC),
        "no interface keeps the vMAC"
    );
}
