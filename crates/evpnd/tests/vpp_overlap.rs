//! Issue 14 item 5, evpnd: a bind whose gateway address overlaps an address
//! on another interface of VPP's FIB (one evpnd does not manage) is refused
//! up front, FAILED_PRECONDITION naming the address and the interface, and
//! nothing is changed (VPP would refuse the address with -105 after the vMAC
//! was already set).
mod common;

use common::*;
use evpn_api::v1;
use vpp_api::{Client, ClientConfig, MacAddress, Prefix};

const VMAC: &str = "42:6c:fa:d6:82:98";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_overlapping_a_foreign_interface_is_refused_up_front() {
    let mut h = Host::new(
        "a_bind_overlapping_a_foreign_interface_is_refused_up_front",
        "r1",
    )
    .await;
    h.start_evpnd();
    let mut c = h.client().await;
    create_evpn_with_bvi(&mut c, "test", 100).await;
    // An interface evpnd does not manage holds 10.1.1.1/24.
    let op = Client::connect(ClientConfig::new(h.sim.socket_path()))
        .await
        .unwrap();
    let lo = op
        .create_loopback_instance(MacAddress::ZERO, None)
        .await
        .unwrap();
    op.sw_interface_add_del_address(lo, "10.1.1.1/24".parse::<Prefix>().unwrap(), true)
        .await
        .unwrap();
    let before = h.sim.state();
    h.sim.clear_journal();

    let e = c
        .bind_group_bvi(v1::HostBindGroupBviRequest {
            slug: "test".into(),
            group_id: "test".into(),
            vmac: VMAC.into(),
            addresses: vec![v1::Prefix {
                address: "10.1.1.2".into(),
                prefix_len: 24,
            }],
            ..Default::default()
        })
        .await
        .expect_err("overlaps loop0's subnet");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    let m = e.message();
    assert!(
        m.contains("10.1.1.2/24") && m.contains("10.1.1.1/24") && m.contains("loop0"),
        "{m}"
    );
    assert!(h.changes().is_empty(), "changed VPP: {:?}", h.changes());
    assert_eq!(h.sim.state(), before);

    // A disjoint subnet binds.
    c.bind_group_bvi(v1::HostBindGroupBviRequest {
        slug: "test".into(),
        group_id: "test".into(),
        vmac: VMAC.into(),
        addresses: vec![v1::Prefix {
            address: "10.1.2.1".into(),
            prefix_len: 24,
        }],
        ..Default::default()
    })
    .await
    .unwrap();
}
