//! Issue 17 end to end on the real fabric: our autonomous failover (evpnr
//! with the group's failover `auto`, evpnd's health checks with BFD 20 ms ×
//! 5 declared and the underlay tracked) under the host's 1 ms probes and the
//! two-holder monitor, one trial of each of the scenarios 1, 4 and 5
//! through the failover bench's own trial (`evpnfabric::failover`):
//!
//! 1. the primary router dies (management and underlay down, then kill -9
//!    of BIRD and evpnd): r2 takes the gateway and the probes are answered
//!    again by the end of the window;
//! 4. the primary's evpnd is killed: 0 probes lost, and r2 does not take
//!    the gateway (from the trigger until the repair starts, 2.5 s later:
//!    longer than a takeover's wait for evidence);
//! 5. management partition between evpnr and the primary: the same.
//!
//! No two-holder moment in any trial, from the trigger until the baseline
//! is back (the repair included). With the group's failover `manual`,
//! scenario 1 never recovers and the test fails.
//!
//! Needs root, BIRD 2.20, and evpnd and evpnr, which it builds with
//! `cargo build -p evpnd -p evpnr` into this test's target directory and
//! profile (like evpnc's tests).
use std::{path::PathBuf, process::Command, time::Duration};

use evpn_testkit::bird::{Version, bird_bin, require_root};
use evpnfabric::{
    Fabric, FabricOpts, Gateway,
    failover::{self, BenchOpts, Impl, Scenario, Trial},
};

/// Lines of evpnr's log a failure prints (a takeover and its retries).
const EVPNR_LOG_TAIL: usize = 640;
const TEST: &str = "fabric_netns_failover_router_dies_evpnd_killed_and_mgmt_partition";

/// evpnd and evpnr of this workspace, built now (a stale binary from an
/// older build would test old code).
fn daemons() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test> → target/<profile>
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target directory")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "evpnd", "-p", "evpnr"]);
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let st = cmd.status().expect("run cargo build -p evpnd -p evpnr");
    assert!(st.success(), "cargo build -p evpnd -p evpnr failed");
    let (d, r) = (dir.join("evpnd"), dir.join("evpnr"));
    assert!(d.is_file() && r.is_file(), "{d:?} or {r:?} missing");
    (d, r)
}

fn logs(f: &Fabric) -> String {
    let evpnr = std::fs::read_to_string(f.path.join("evpnr").join("evpnr.log")).unwrap_or_default();
    let tail = |s: &str, n: usize| {
        let l: Vec<&str> = s.lines().collect();
        l[l.len().saturating_sub(n)..].join("\n")
    };
    let mut s = format!("---- evpnr log (tail)\n{}", tail(&evpnr, EVPNR_LOG_TAIL));
    for r in &f.routers[..2] {
        s.push_str(&format!(
            "\n---- {} evpnd log (tail)\n{}",
            r.id,
            tail(&r.evpnd_log(), 40)
        ));
    }
    s
}

fn check(r: &Trial) -> Result<(), String> {
    let two: Vec<f64> = r
        .two_holder_ms(true)
        .into_iter()
        .chain(r.two_holder_ms(false))
        .collect();
    if !two.is_empty() {
        return Err(format!("two-holder moments (ms): {two:?}"));
    }
    if !r.recovered {
        return Err("the probes are not answered at the end of the window".into());
    }
    match r.scenario {
        Scenario::RouterDies if !r.moved => {
            Err("r2 did not take the gateway within the window".into())
        }
        Scenario::DaemonKilled | Scenario::MgmtPartition if r.r2_held => {
            Err("r2 held the gateway before the repair: a move where none is allowed".into())
        }
        Scenario::DaemonKilled | Scenario::MgmtPartition if r.v4.lost + r.v6.lost > 0 => Err(
            format!("{} + {} probes lost (must be 0)", r.v4.lost, r.v6.lost),
        ),
        _ => Ok(()),
    }
}

#[test]
fn fabric_netns_failover_router_dies_evpnd_killed_and_mgmt_partition() {
    require_root(TEST);
    let bird = bird_bin(Version::V2_20, TEST);
    let (evpnd, evpnr) = daemons();
    let mut o = FabricOpts::new(&format!("fo{}", std::process::id()));
    o.bird_bin = bird;
    o.evpnd_bin = evpnd;
    o.evpnr_bin = Some(evpnr);
    o.bfd = Some("20x5".parse().unwrap());
    // Health every 100 ms: none of these scenarios needs a health check's
    // speed, and a faster one fails spuriously on a loaded CI machine (a
    // planned move away from a healthy primary).
    failover::evpn::configure(&mut o, 100, None, None);
    let mut f = Fabric::build(o).expect("build the fabric");
    let opts = BenchOpts {
        impls: vec![Impl::Evpn],
        scenarios: vec![
            Scenario::RouterDies,
            Scenario::DaemonKilled,
            Scenario::MgmtPartition,
        ],
        trials: 1,
        // Longer than a takeover's wait for evidence (evpnr's move.max-wait,
        // 2 s): in 4 and 5 the blocked takeover ends inside the window.
        window: Duration::from_millis(2500),
        advert_cs: 1,
        evpn_auto: true,
    };
    let mut lines = Vec::new();
    let rs = match failover::failover_bench(&mut f, &Gateway::default(), &opts, &mut |l| {
        eprintln!("{l}");
        lines.push(l.to_string())
    }) {
        Ok(rs) => rs,
        Err(e) => panic!("{e:#}\n{}", logs(&f)),
    };
    assert_eq!(rs.len(), 3, "{lines:#?}");
    let bad: Vec<String> = rs
        .iter()
        .filter_map(|r| {
            check(r)
                .err()
                .map(|e| format!("scenario {}: {e}: {r:?}", r.scenario.number()))
        })
        .collect();
    assert!(bad.is_empty(), "{bad:#?}\n{lines:#?}\n{}", logs(&f));
}
