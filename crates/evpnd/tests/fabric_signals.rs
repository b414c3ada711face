//! Issue 13 item 18: the daemons a lab starts stop gracefully on SIGTERM.
//!
//! BIRD 2.20 and evpnd are started exactly as `evpnfabric` starts them: from a process that
//! set up the lab's signal clean-up (`cleanup_on_signals`, which once blocked SIGINT/SIGTERM/
//! SIGHUP and so made every child ignore them), with `Netns::spawn` (`ip netns exec`). Each must
//! exit 0 within a bounded wait after SIGTERM and log its shutdown, instead of needing SIGKILL.
//! This file holds one test: `cleanup_on_signals` is process-wide.
use std::time::Duration;

use evpn_testkit::bird::{Version, bird_bin, require_root};
use evpnfabric::netns::{Netns, cleanup_on_signals};

const TEST: &str = "netns_fabric_daemons_stop_gracefully_on_sigterm";

#[test]
fn netns_fabric_daemons_stop_gracefully_on_sigterm() {
    require_root(TEST);
    let bird = bird_bin(Version::V2_20, TEST);
    cleanup_on_signals().unwrap();
    let ns = Netns::create(&format!("esig{}", std::process::id())).unwrap();
    let dir = tempfile::Builder::new()
        .prefix("evpnd-sig-")
        .tempdir()
        .unwrap();
    let d = dir.path();
    let include = d.join("conf.d");
    std::fs::create_dir_all(&include).unwrap();
    let (main, sock, bird_log) = (d.join("bird.conf"), d.join("bird.ctl"), d.join("bird.log"));
    std::fs::write(
        &main,
        format!(
            "router id 10.0.0.1;\nlog \"{}\" all;\nprotocol device {{ scan time 2; }}\n\
             evpn table evpntab;\ninclude \"{}/*.conf\";\n",
            bird_log.display(),
            include.display()
        ),
    )
    .unwrap();
    let mut bird = ns
        .spawn(
            &[
                &bird.display().to_string(),
                "-f",
                "-c",
                &main.display().to_string(),
                "-s",
                &sock.display().to_string(),
                "-P",
                &d.join("bird.pid").display().to_string(),
            ],
            &d.join("bird.out"),
        )
        .unwrap();
    let cfg = d.join("evpnd.yaml");
    std::fs::write(
        &cfg,
        format!(
            "evpnd:\n  instance-id: r1\n  grpc-addr: \"127.0.0.1:0\"\n  metrics-addr: \"\"\n  \
             state-dir: {state}\n  dataplane: linux\n  bird:\n    config: {main}\n    \
             socket: {sock}\n    include-dir: {inc}\n    dialect: linux\n    timeout: 5s\n  \
             evpn:\n    vtep-address: 192.0.2.1\n    local-as: 65000\n",
            state = d.join("state").display(),
            main = main.display(),
            sock = sock.display(),
            inc = include.display(),
        ),
    )
    .unwrap();
    let mut evpnd = ns
        .spawn(
            &[
                env!("CARGO_BIN_EXE_evpnd"),
                "--config",
                &cfg.display().to_string(),
            ],
            &d.join("evpnd.log"),
        )
        .unwrap();
    // Up: evpnd finished its start-up reconcile against this BIRD.
    evpnd
        .wait_log("reconcile-finished", Duration::from_secs(30))
        .unwrap();

    // A bounded wait well below the labs' 5 s SIGKILL fallback.
    let grace = Duration::from_secs(3);
    let st = evpnd.terminate(grace).unwrap_or_else(|e| {
        panic!(
            "{e:#}; evpnd log:\n{}",
            std::fs::read_to_string(&evpnd.log).unwrap_or_default()
        )
    });
    assert!(st.success(), "evpnd exited with {st}");
    let log = std::fs::read_to_string(&evpnd.log).unwrap();
    assert!(
        log.contains("\"shutdown-requested\"") && log.contains("\"SIGTERM\""),
        "evpnd must log the SIGTERM it got:\n{log}"
    );
    assert!(
        log.contains("\"stopped\""),
        "evpnd must log its shutdown:\n{log}"
    );

    let st = bird.terminate(grace).unwrap_or_else(|e| {
        panic!(
            "{e:#}; BIRD log:\n{}",
            std::fs::read_to_string(&bird_log).unwrap_or_default()
        )
    });
    assert!(st.success(), "BIRD exited with {st}");
    let log = std::fs::read_to_string(&bird_log).unwrap();
    assert!(
        log.contains("Shutdown completed"),
        "BIRD must log its shutdown:\n{log}"
    );
}
