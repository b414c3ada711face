//! Issue 14 item 7: VPP refusals reach the caller with a precise code and an
//! operator-readable message (VPP's name for the retval and what it means),
//! not INTERNAL with a raw number; a bridge domain that is still used by an
//! interface evpnd does not manage is reported before anything is deleted.
mod common;

use std::net::IpAddr;

use common::*;
use evpn_api::v1;
use vpp_api::{Client, ClientConfig, L2PortType, VxlanTunnel};

const VMAC: &str = "42:6c:fa:d6:82:98";

fn evpn_ref() -> v1::EvpnRef {
    v1::EvpnRef {
        slug: "test".into(),
        ..Default::default()
    }
}

fn bind_req(addr: &str) -> v1::HostBindGroupBviRequest {
    v1::HostBindGroupBviRequest {
        slug: "test".into(),
        group_id: "test".into(),
        vmac: VMAC.into(),
        addresses: vec![v1::Prefix {
            address: addr.into(),
            prefix_len: 24,
        }],
        ..Default::default()
    }
}

async fn bound_host(test: &str) -> (Host, u32) {
    let mut h = Host::new(test, "r1").await;
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
    c.bind_group_bvi(bind_req("172.16.0.32")).await.unwrap();
    (h, bd)
}

/// Before the fix: the BVI was released and deleted and the BIRD snippet
/// removed, then VPP refused the bridge-domain delete (-120) and the caller
/// got INTERNAL "VPP returned -120 (BD_IN_USE)".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_evpn_whose_bridge_domain_is_in_use_names_the_user_and_changes_nothing() {
    let (h, bd) = bound_host(
        "deleting_an_evpn_whose_bridge_domain_is_in_use_names_the_user_and_changes_nothing",
    )
    .await;
    let mut c = h.client().await;
    // An operator puts a VXLAN tunnel of another VNI into the bridge domain.
    let op = Client::connect(ClientConfig::new(h.sim.socket_path()))
        .await
        .unwrap();
    let t = op
        .vxlan_add_del_tunnel_v3(
            &VxlanTunnel {
                instance: Some(7),
                src: "192.0.2.1".parse::<IpAddr>().unwrap(),
                dst: "192.0.2.99".parse::<IpAddr>().unwrap(),
                vni: 4242,
                encap_vrf_id: 0,
                port: None,
            },
            true,
        )
        .await
        .unwrap();
    op.sw_interface_set_l2_bridge(t, bd, L2PortType::Normal, 1, true)
        .await
        .unwrap();
    let before = h.sim.state();
    h.sim.clear_journal();

    let e = c
        .delete_evpn_instance(evpn_ref())
        .await
        .expect_err("the bridge domain is in use");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("vxlan_tunnel7") && e.message().contains(&bd.to_string()),
        "{e:?}"
    );
    assert!(h.changes().is_empty(), "changed VPP: {:?}", h.changes());
    assert_eq!(h.sim.state(), before);
    assert!(h.snippet("test").is_some(), "BIRD snippet removed");
    let b = c.get_bvi(evpn_ref()).await.unwrap().into_inner();
    assert_eq!((b.mac.as_str(), b.group_id.as_str()), (VMAC, "test"));

    // Once the operator's tunnel is out, the delete goes through.
    op.sw_interface_set_l2_bridge(t, bd, L2PortType::Normal, 1, false)
        .await
        .unwrap();
    c.delete_evpn_instance(evpn_ref()).await.unwrap();
    assert!(!h.sim.state().bridge_domains.contains_key(&bd));
}

/// A known retval becomes a precise code with VPP's name and its meaning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vpp_refusal_is_reported_by_name_and_meaning() {
    let (h, _) = bound_host("a_vpp_refusal_is_reported_by_name_and_meaning").await;
    let mut c = h.client().await;
    h.sim
        .faults()
        .error_on_nth("sw_interface_add_del_address", 2, -105);
    let e = c
        .bind_group_bvi(bind_req("172.16.1.32"))
        .await
        .expect_err("VPP refuses");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    let m = e.message();
    assert!(
        m.contains("ADDRESS_IN_USE") && m.contains("-105") && m.contains("overlaps"),
        "{m}"
    );
    assert!(!m.contains("internal error"), "{m}");
}
