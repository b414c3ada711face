//! The `Dataplane` trait promises idempotent writes: on VPP, creating a
//! bridge domain or a BVI loopback that exists already is success (VPP
//! itself answers `BD_ALREADY_EXISTS` / `INVALID_REGISTRATION`), and the existing
//! loopback is made to match (MAC, MTU, up, attached); a bridge domain
//! tagged for another eVPN stays a refusal. Against vppsim,
//! through evpnd's library (no process).
use std::time::Duration;

use evpn_model::Mac;
use evpnd::{
    config::LinuxCp,
    dataplane::{BviMac, Dataplane, EvpnRef, vpp::VppDataplane},
    metrics::EvpndMetrics,
};
use vppsim::{SimOptions, VppSim};

const BD: u32 = 10_007;

fn red(mac: Mac) -> EvpnRef<'static> {
    EvpnRef {
        slug: "red",
        bd_id: BD,
        vni: 7,
        mtu: 1500,
        evpn_mtu: 1500,
        vtep: None,
        instance_mac: Some(mac),
    }
}

#[tokio::test]
async fn creating_an_existing_bridge_domain_or_loopback_on_vpp_is_success() {
    let dir = tempfile::Builder::new()
        .prefix("evpnd-idem-")
        .tempdir()
        .unwrap();
    let sock = dir.path().join("vpp.sock");
    let sim = VppSim::start(&sock, SimOptions::default()).await.unwrap();
    let mut reg = prometheus_client::registry::Registry::default();
    let dp = VppDataplane::new(
        &sock,
        Duration::from_secs(2),
        LinuxCp::Off,
        EvpndMetrics::register(&mut reg),
    );
    dp.connect().await.unwrap();
    let first = Mac([2, 0, 0, 0, 7, 1]);
    let second = Mac([2, 0, 0, 0, 7, 2]);

    dp.create_evpn(&red(first)).await.unwrap();
    dp.create_evpn(&red(first))
        .await
        .expect("a second create of the same bridge domain is success");
    let st = sim.state();
    assert_eq!(st.bridge_domains.keys().filter(|id| **id == BD).count(), 1);

    let h1 = dp
        .create_bvi(&red(first), BviMac::PerHost(first), true)
        .await
        .unwrap();
    // Again, with another MAC: success, the same loopback, made to match.
    let h2 = dp
        .create_bvi(&red(second), BviMac::PerHost(second), true)
        .await
        .expect("a second create of the same loopback is success");
    assert_eq!(h1, h2, "the existing loopback is the BVI");
    let st = sim.state();
    let loops: Vec<_> = st
        .interfaces
        .values()
        .filter(|i| i.name == format!("loop{BD}"))
        .collect();
    assert_eq!(loops.len(), 1, "no second loopback");
    assert_eq!(loops[0].mac.0, second.0, "the MAC of the second create");
    assert!(loops[0].admin_up);
    assert_eq!(st.bridge_domains[&BD].bvi, Some(h1));

    let obs = dp.observe(&red(second)).await.unwrap();
    assert!(obs.bridge);
    let bvi = obs.bvi.expect("the BVI is observed");
    assert_eq!(
        (bvi.handle, bvi.mac, bvi.up, bvi.attached),
        (h1, second, true, true)
    );
}
