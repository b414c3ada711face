//! The fabric lab's management network and its keepalived peer (issue 17):
//! cutting a router's management link leaves its underlay (BGP with BFD)
//! alone and vice versa, and keepalived with our notify-FIFO FDB helper
//! moves the gateway on a planned move and on an underlay cut. Needs root,
//! BIRD 2.20, keepalived and a built evpnd (`cargo build -p evpnd`; the
//! lab finds it next to the test executable or through `$EVPND_BIN`).
use std::time::{Duration, Instant};

use evpn_testkit::bird::{Version, bird_bin, require_root};
use evpnfabric::{
    Fabric, FabricOpts, Gateway,
    fabric::Net,
    failover::{self, BenchOpts, Impl, Scenario},
    scenario::Clients,
};

const TEST: &str = "fabric_netns_mgmt_and_underlay_cut_apart_and_keepalived_peer_fails_over";

/// Whether router `i`'s evpnd answers a gRPC connect within 1 s.
fn reachable(f: &Fabric, i: usize) -> bool {
    let url = f.routers[i].url.clone();
    f.block_on(async move {
        matches!(
            tokio::time::timeout(Duration::from_secs(1), Fabric::evpnd(url)).await,
            Ok(Ok(_))
        )
    })
}

/// The state of r2's BGP session to r1.
fn r2_session_to_r1(f: &Fabric) -> String {
    let c = f.routers[1].bird_client();
    f.block_on(async move { c.show_protocols(None, false).await })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.name == "r1")
        .map(|p| p.info)
        .unwrap_or_default()
}

#[test]
fn fabric_netns_mgmt_and_underlay_cut_apart_and_keepalived_peer_fails_over() {
    require_root(TEST);
    let mut o = FabricOpts::new(&format!("fk{}", std::process::id()));
    o.bird_bin = bird_bin(Version::V2_20, TEST);
    o.keepalived = true;
    o.bfd = Some("20x5".parse().unwrap());
    let mut f = Fabric::build(o).expect("build the fabric");
    assert!(reachable(&f, 0), "r1's evpnd over the management network");

    // Management cut: r1's evpnd is out of reach, its underlay is not.
    f.set_link(0, Net::Mgmt, false).unwrap();
    assert!(!reachable(&f, 0), "r1's evpnd reachable with mgmt0 cut");
    // Three BFD detection times (100 ms) without a session going down.
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        let s = r2_session_to_r1(&f);
        assert!(
            s.contains("Established"),
            "r2 → r1 during a management cut: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    f.set_link(0, Net::Mgmt, true).unwrap();
    Clients::connect(&f).expect("every evpnd reachable again");

    // Underlay cut: BFD takes r2's session to r1 down, management stays.
    f.set_link(0, Net::Underlay, false).unwrap();
    evpnfabric::demo::eventually(Duration::from_secs(2), "r2's session to r1 down", || {
        Ok(!r2_session_to_r1(&f).contains("Established"))
    })
    .unwrap();
    assert!(
        reachable(&f, 0),
        "r1's evpnd unreachable with only eth0 cut"
    );
    f.set_link(0, Net::Underlay, true).unwrap();
    f.wait_bgp(Duration::from_secs(30)).unwrap();

    // keepalived: a planned move and an underlay cut, two trials each.
    let opts = BenchOpts {
        impls: vec![Impl::Keepalived],
        scenarios: vec![Scenario::Planned, Scenario::UnderlayDown],
        trials: 2,
        window: Duration::from_millis(1000),
        advert_cs: 1,
        evpn_auto: false,
    };
    let mut lines = Vec::new();
    let rs = failover::failover_bench(&mut f, &Gateway::default(), &opts, &mut |l| {
        lines.push(l.to_string())
    })
    .unwrap();
    assert_eq!(rs.len(), 4, "{lines:#?}");
    for r in &rs {
        assert!(r.moved && r.recovered, "{r:?}\n{lines:#?}");
        // VRRP at 0.01 s and BFD at 100 ms: far below the 1 s window.
        let worst = r.v4.gap_ms.max(r.v6.gap_ms);
        let bound = match r.scenario {
            Scenario::Planned => 100.0,
            _ => 500.0,
        };
        assert!(worst < bound, "gap {worst} ms ≥ {bound}: {r:?}\n{lines:#?}");
        assert!(
            r.two_holder_ms(true).iter().all(|m| *m < bound),
            "two holders in the window for longer than the outage bound: {r:?}"
        );
    }
}
