//! Issue 13 item 17 on VPP (vppsim and a real BIRD 2.20): a bind or release
//! verifies its effect on the dataplane. Another API client changes the
//! BVI behind evpnd's back; the next BindGroupBVI or ReleaseGroupBVI —
//! even one with nothing to change — finds the difference and heals it
//! instead of answering a silent OK.
mod common;

use common::Host;
use evpn_api::v1;
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

fn mac_of(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

/// The BVI's MAC as VPP has it.
fn vpp_mac(h: &Host, sw_if_index: u32) -> String {
    h.sim
        .state()
        .interfaces
        .get(&sw_if_index)
        .map(|i| i.mac.to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_and_release_heal_a_bvi_changed_behind_their_back() {
    let mut h = Host::new(
        "bind_and_release_heal_a_bvi_changed_behind_their_back",
        "r1",
    )
    .await;
    h.start_evpnd();
    let mut c = h.client().await;
    c.create_evpn_instance(v1::CreateEvpnInstanceRequest {
        slug: "test".into(),
        vni: 100,
        ..Default::default()
    })
    .await
    .unwrap();
    let bvi = c
        .create_bvi(v1::CreateBviRequest {
            slug: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let host_mac = bvi.mac.clone();
    let sw = bvi.sw_if_index;
    c.bind_group_bvi(bind_req()).await.unwrap();
    assert_eq!(vpp_mac(&h, sw), VMAC);

    let other = Client::connect(ClientConfig::new(h.sim.socket_path()))
        .await
        .unwrap();
    let tamper = async |mac: &str| {
        other
            .sw_interface_set_mac_address(SwIfIndex(sw), MacAddress(mac_of(mac)))
            .await
            .unwrap();
    };
    // Bound: the vMAC taken away; a repeated bind puts it back.
    tamper("02:00:00:00:ee:01").await;
    c.bind_group_bvi(bind_req()).await.unwrap();
    assert_eq!(
        vpp_mac(&h, sw),
        VMAC,
        "the bind answered OK over a wrong MAC"
    );

    // Released, then the vMAC put back by someone else: a repeated release
    // takes it off again.
    c.release_group_bvi(v1::HostReleaseGroupBviRequest {
        slug: "test".into(),
        group_id: "test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(vpp_mac(&h, sw), host_mac);
    tamper(VMAC).await;
    c.release_group_bvi(v1::HostReleaseGroupBviRequest {
        slug: "test".into(),
        group_id: "test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        vpp_mac(&h, sw),
        host_mac,
        "the release answered OK with the vMAC still on the BVI"
    );
}
