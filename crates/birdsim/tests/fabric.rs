//! birdsim on a simulated fabric, through bird-ctl's client (the parser
//! evpnd uses): another host's BVI MAC shows up as a route with that host's
//! VTEP as next hop, goes after the withdrawal delay when the host is cut
//! from the fabric or its BIRD is killed, and BGP protocols follow the link.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::Duration,
};

use bird_ctl::{BirdClient, ClientOptions, Dialect, EvpnSnippet, EvpnSpec, ProtoState, Renderer};
use birdsim::{
    BirdSim, SimHandle,
    fabric::{Fabric, FabricOptions},
};

const MAC: &str = "02:aa:00:00:00:01";
const T: Duration = Duration::from_secs(10);

/// Host `n`'s BIRD files (main with a BGP session, the eVPN `g` snippet in
/// the vpp dialect with router address 192.0.2.`n`).
fn files(dir: &Path, n: u8) -> PathBuf {
    let inc = dir.join(format!("h{n}.d"));
    std::fs::create_dir_all(&inc).unwrap();
    let main = dir.join(format!("h{n}.conf"));
    std::fs::write(
        &main,
        format!(
            "router id 10.0.0.{n};\nevpn table evpntab;\nprotocol bgp rr {{ local as 65000; neighbor 192.0.2.254 as 65000; evpn {{ table evpntab; }}; }}\ninclude \"{}/*.conf\";\n",
            inc.display()
        ),
    )
    .unwrap();
    let spec = EvpnSpec {
        slug: "g".into(),
        vni: 100,
        rd: format!("192.0.2.{n}:100"),
        import_targets: vec!["65000:100".into()],
        export_targets: vec!["65000:100".into()],
        router_address: format!("192.0.2.{n}").parse().unwrap(),
        enabled: true,
    };
    let r = Renderer::new(Dialect::vpp_default(), "evpntab")
        .unwrap()
        .render(&EvpnSnippet::new(&spec).unwrap());
    std::fs::write(inc.join(r.file_name), r.text).unwrap();
    main
}

async fn host(dir: &Path, f: &Fabric, n: u8) -> (SimHandle, BirdClient) {
    let sock = dir.join(format!("h{n}.ctl"));
    let sim = BirdSim::start_on(&files(dir, n), &sock, f, &format!("h{n}"))
        .await
        .unwrap();
    let c = BirdClient::connect(&sock, ClientOptions::default())
        .await
        .unwrap();
    (sim, c)
}

fn bvi(mac: &str) -> BTreeMap<String, BTreeSet<String>> {
    [("evpn-g".to_string(), [mac.to_string()].into())].into()
}

async fn announcers(c: &BirdClient) -> Vec<String> {
    let mut v: Vec<String> = c
        .show_route_mac("ethtab_g", MAC)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|r| r.next_hops)
        .collect();
    v.sort();
    v
}

async fn until(what: &str, c: &BirdClient, want: &[&str]) {
    evpn_testkit::eventually(what, T, async || announcers(c).await == want)
        .await
        .unwrap();
}

async fn bgp(c: &BirdClient) -> (ProtoState, String) {
    let p = c.show_protocols(Some("rr"), false).await.unwrap();
    (p[0].state, p[0].info.clone())
}

#[tokio::test]
async fn sim_fabric_routes_withdrawals_partitions_and_killed_birds() {
    let d = tempfile::tempdir().unwrap();
    let f = Fabric::new(FabricOptions {
        announce_delay: Duration::from_millis(5),
        withdraw_delay: Duration::from_millis(500),
        record: true,
    });
    let (_s1, c1) = host(d.path(), &f, 1).await;
    let (s2, c2) = host(d.path(), &f, 2).await;
    let (_s3, c3) = host(d.path(), &f, 3).await;
    assert!(announcers(&c1).await.is_empty());
    // h2's BVI carries the MAC: h1 and h3 see it from 192.0.2.2, h2 not.
    f.set_dataplane("h2", bvi(MAC));
    until("h1 sees h2's route", &c1, &["192.0.2.2"]).await;
    until("h3 sees h2's route", &c3, &["192.0.2.2"]).await;
    assert!(announcers(&c2).await.is_empty());
    // The filtered form evpnd's linux dialect uses parses the same.
    let r = c1.show_route_eth("ethtab_g", MAC, None).await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].proto, "evpn_g");
    assert!(r[0].primary);
    assert_eq!(r[0].next_hops, vec!["192.0.2.2"]);
    assert_eq!(bgp(&c1).await, (ProtoState::Up, "Established".to_string()));
    // Two announcers: both next hops, one primary route.
    f.set_dataplane("h3", bvi(MAC));
    until("h1 sees both", &c1, &["192.0.2.2", "192.0.2.3"]).await;
    let r = c1.show_route_mac("ethtab_g", MAC).await.unwrap();
    assert_eq!(r.iter().filter(|r| r.primary).count(), 1, "{r:?}");
    f.set_dataplane("h3", BTreeMap::new());
    until("h3's route withdrawn", &c1, &["192.0.2.2"]).await;
    // h2 cut from the fabric: still seen within the withdrawal delay (its
    // BGP session has not timed out yet), then gone; its own BGP session
    // goes down; h2 sees nothing of h1's.
    f.set_dataplane("h1", bvi("02:aa:00:00:00:09"));
    f.set_link("h2", false);
    let cut = std::time::Instant::now();
    assert_eq!(announcers(&c1).await, vec!["192.0.2.2"]);
    assert!(cut.elapsed() < Duration::from_millis(500), "slow machine");
    until("h1 loses h2's route", &c1, &[]).await;
    assert!(cut.elapsed() >= Duration::from_millis(500));
    assert_eq!(bgp(&c2).await.0, ProtoState::Start);
    assert!(
        c2.show_route_mac("ethtab_g", "02:aa:00:00:00:09")
            .await
            .unwrap()
            .is_empty()
    );
    // Healed: back after the announce delay.
    f.set_link("h2", true);
    until("h1 sees h2's route again", &c1, &["192.0.2.2"]).await;
    assert_eq!(bgp(&c2).await.0, ProtoState::Up);
    // h2's BIRD killed: no more answers; its route goes after the delay.
    let killed = std::time::Instant::now();
    s2.kill();
    assert!(c2.show_status().await.is_err());
    until("h1 loses the killed BIRD's route", &c1, &[]).await;
    assert!(killed.elapsed() >= Duration::from_millis(500));
    // The history shows the moment two VTEPs announced the MAC.
    let m = f.two_announcer_moments();
    assert!(
        m.iter()
            .any(|m| m.host == "h1" && m.vteps.len() == 2 && m.mac == MAC),
        "{m:?}"
    );
}
