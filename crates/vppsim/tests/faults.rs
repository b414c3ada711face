//! Timeouts on a hung server, reconnect after a disconnect, the
//! missing-plugin error, injected errors and latency, the control socket.

mod common;

use std::time::{Duration, Instant};

use common::Sim;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use vpp_api::msgs::Message;
use vpp_api::{Client, ClientEvent, LcpPairConfig, MacAddress, SwIfIndex, VppError, msgs};
use vppsim::SimOptions;

#[tokio::test]
async fn hung_server_times_out_and_recovers() {
    let sim = Sim::start(SimOptions::default()).await;
    let c = sim.client_with_timeout(400).await;
    sim.handle.faults().hang("control_ping");
    let t0 = Instant::now();
    match c.ping().await {
        Err(VppError::Timeout { msg }) => assert_eq!(msg, "control_ping"),
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() >= Duration::from_millis(400));
    // Dumps end with a control_ping: they time out too.
    assert!(matches!(
        c.sw_interface_dump(vpp_api::InterfaceFilter::All).await,
        Err(VppError::Timeout {
            msg: "sw_interface_dump"
        })
    ));
    // Other messages still work; after a reset everything does.
    c.show_version().await.expect("show_version");
    sim.handle.faults().reset();
    c.ping().await.expect("ping after reset");
    // Hang everything.
    sim.handle.faults().hang("*");
    assert!(matches!(
        c.create_loopback_instance(MacAddress::ZERO, Some(1)).await,
        Err(VppError::Timeout {
            msg: "create_loopback_instance"
        })
    ));
    sim.handle.faults().reset();
    assert!(
        sim.handle.state().interface_by_name("loop1").is_none(),
        "hung request not processed"
    );
}

#[tokio::test]
async fn reconnect_after_disconnect_resubscribes() {
    let sim = Sim::start(SimOptions::default()).await;
    let c = sim.client().await;
    let mut ev = c.subscribe();
    c.want_interface_events(7).await.expect("want");
    let first = c.client_index();
    sim.handle.faults().disconnect_now();
    match tokio::time::timeout(Duration::from_secs(2), ev.recv()).await {
        Ok(Ok(ClientEvent::Disconnected)) => {}
        other => panic!("{other:?}"),
    }
    assert!(!c.is_connected());
    // The next requests reconnect (one fresh handshake) and re-subscribe.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let c = c.clone();
        set.spawn(async move { c.ping().await });
    }
    while let Some(r) = set.join_next().await {
        r.expect("join").expect("ping after reconnect");
    }
    assert!(c.is_connected());
    assert_eq!(first, Some(0x8000_0001));
    assert_eq!(
        c.client_index(),
        Some(0x8000_0002),
        "exactly one new handshake"
    );
    assert_eq!(sim.handle.event_subscribers(), 1);
    match tokio::time::timeout(Duration::from_secs(2), ev.recv()).await {
        Ok(Ok(ClientEvent::Reconnected)) => {}
        other => panic!("{other:?}"),
    }
    let l = c
        .create_loopback_instance(MacAddress::ZERO, Some(1))
        .await
        .expect("create");
    match tokio::time::timeout(Duration::from_secs(2), ev.recv()).await {
        Ok(Ok(ClientEvent::Interface(e))) => {
            assert_eq!((e.pid, e.sw_if_index), (7, l.0));
        }
        other => panic!("{other:?}"),
    }
    // Disconnect while a request is in flight: it fails fast, not by timeout.
    sim.handle.faults().disconnect_on("sw_interface_set_flags");
    assert!(matches!(
        c.sw_interface_set_flags(l, true).await,
        Err(VppError::Disconnected)
    ));
    // Explicit reconnect without auto-reconnect.
    let mut cfg = sim.config();
    cfg.auto_reconnect = false;
    let c2 = Client::connect(cfg).await.expect("c2");
    sim.handle.faults().disconnect_now();
    evpn_testkit::eventually(
        "c2 to see the disconnect",
        Duration::from_secs(10),
        async || !c2.is_connected(),
    )
    .await
    .unwrap();
    assert!(matches!(c2.ping().await, Err(VppError::Disconnected)));
    c2.reconnect().await.expect("reconnect");
    c2.ping().await.expect("ping");
}

#[tokio::test]
async fn missing_plugin_names_message_and_crc() {
    let sim = Sim::start(SimOptions {
        without_plugins: vec!["linux_cp".into()],
        ..SimOptions::default()
    })
    .await;
    let c = sim.client().await;
    assert_eq!(c.message_table().map(|t| t.len()), Some(866 - 23));
    let l = c
        .create_loopback_instance(MacAddress::ZERO, Some(1))
        .await
        .expect("loop");
    let e = c
        .lcp_itf_pair_add(&LcpPairConfig {
            sw_if_index: l,
            host_if_name: "x".into(),
            tun: false,
            netns: String::new(),
        })
        .await;
    match &e {
        Err(VppError::MissingMessage { name_crc, found }) => {
            assert_eq!(name_crc.name(), "lcp_itf_pair_add_del_v3");
            assert_eq!(name_crc.crc(), "40482b80");
            assert!(found.is_none());
        }
        other => panic!("{other:?}"),
    }
    let s = e.map(|_| ()).expect_err("error").to_string();
    assert!(
        s.contains("lcp_itf_pair_add_del_v3") && s.contains("40482b80"),
        "{s}"
    );
    assert!(matches!(
        c.lcp_itf_pair_get().await,
        Err(VppError::MissingMessage { .. })
    ));
    assert!(
        c.require_messages(&[msgs::LcpItfPairGet::NAME_CRC])
            .await
            .is_err()
            && c.require_messages(&[msgs::ControlPing::NAME_CRC])
                .await
                .is_ok()
    );
    // The connection is unaffected.
    c.ping().await.expect("ping");
}

#[tokio::test]
async fn injected_errors_and_latency() {
    let sim = Sim::start(SimOptions::default()).await;
    let c = sim.client_with_timeout(400).await;
    let l = c
        .create_loopback_instance(MacAddress::ZERO, Some(1))
        .await
        .expect("l");
    sim.handle
        .faults()
        .error_on_nth("sw_interface_set_flags", 2, -1);
    c.sw_interface_set_flags(l, true).await.expect("1st");
    match c.sw_interface_set_flags(l, false).await {
        Err(VppError::Retval {
            retval: -1,
            name: "UNSPECIFIED",
            msg: "sw_interface_set_flags",
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(
        sim.handle.state().interfaces[&l.0].admin_up,
        "state untouched by an injected error"
    );
    c.sw_interface_set_flags(l, false).await.expect("3rd");
    let j = sim.handle.journal();
    assert_eq!(j.iter().filter(|e| e.injected).count(), 1);

    sim.handle
        .faults()
        .latency("control_ping", Duration::from_millis(60));
    let t0 = Instant::now();
    c.ping().await.expect("ping");
    assert!(t0.elapsed() >= Duration::from_millis(60));
    sim.handle.faults().latency("*", Duration::from_millis(600));
    assert!(matches!(c.ping().await, Err(VppError::Timeout { .. })));
    sim.handle.faults().reset();
    // The timed-out ping is still answered late; pings work again once it is through.
    evpn_testkit::eventually(
        "a ping answered after the reset",
        Duration::from_secs(10),
        async || c.ping().await,
    )
    .await
    .unwrap();
    let _ = SwIfIndex::NONE;
}

async fn control(path: &std::path::Path, req: Value) -> Value {
    let s = tokio::net::UnixStream::connect(path)
        .await
        .expect("control");
    let (rd, mut wr) = s.into_split();
    wr.write_all(format!("{req}\n").as_bytes())
        .await
        .expect("w");
    let mut line = String::new();
    BufReader::new(rd).read_line(&mut line).await.expect("r");
    serde_json::from_str(&line).expect("json")
}

#[tokio::test]
async fn control_socket_drives_faults_and_reads_journal() {
    let dir = tempfile::tempdir().expect("dir");
    let ctl = dir.path().join("ctl.sock");
    let jpath = dir.path().join("journal.jsonl");
    let sim = Sim::start(SimOptions {
        control_path: Some(ctl.clone()),
        journal_path: Some(jpath.clone()),
        ..SimOptions::default()
    })
    .await;
    let c = sim.client_with_timeout(400).await;
    assert_eq!(control(&ctl, json!({"cmd":"ping"})).await["ok"], true);
    assert_eq!(control(&ctl, json!({"cmd":"bogus"})).await["ok"], false);
    let l = c
        .create_loopback_instance(MacAddress([2, 0, 0, 0, 0, 1]), Some(1))
        .await
        .expect("l");
    control(&ctl, json!({"cmd":"hang","msg":"control_ping"})).await;
    assert!(matches!(c.ping().await, Err(VppError::Timeout { .. })));
    control(&ctl, json!({"cmd":"reset_faults"})).await;
    c.ping().await.expect("ping");
    control(
        &ctl,
        json!({"cmd":"error_on_nth","msg":"delete_loopback","n":1,"retval":-2}),
    )
    .await;
    assert!(c.delete_loopback(l).await.is_err());
    control(&ctl, json!({"cmd":"latency","msg":"*","ms":1})).await;
    let f = control(&ctl, json!({"cmd":"faults"})).await;
    assert!(f["faults"]["latency"]["*"].is_object());
    control(&ctl, json!({"cmd":"reset_faults"})).await;
    let st = control(&ctl, json!({"cmd":"state"})).await;
    assert_eq!(st["state"]["interfaces"][1]["name"], "loop1");
    assert_eq!(st["state"]["interfaces"][1]["mac"], "02:00:00:00:00:01");
    let j = control(&ctl, json!({"cmd":"journal"})).await;
    let entries = j["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["msg"], "create_loopback_instance");
    assert_eq!(entries[1]["injected"], true);
    let since = control(&ctl, json!({"cmd":"journal","since":1})).await;
    assert_eq!(since["entries"].as_array().map(Vec::len), Some(1));
    assert_eq!(control(&ctl, json!({"cmd":"check_macs"})).await["ok"], true);
    control(&ctl, json!({"cmd":"lcp_tap_fail","enable":true})).await;
    let e = c
        .lcp_itf_pair_add(&LcpPairConfig {
            sw_if_index: l,
            host_if_name: "h1".into(),
            tun: false,
            netns: String::new(),
        })
        .await;
    assert_eq!(e.err().and_then(|e| e.retval_code()), Some(-11));
    // disconnect via control socket
    let mut ev = c.subscribe();
    control(&ctl, json!({"cmd":"disconnect"})).await;
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(2), ev.recv()).await,
        Ok(Ok(ClientEvent::Disconnected))
    ));
    // The journal file has one JSON line per entry.
    let text = std::fs::read_to_string(&jpath).expect("journal file");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["msg"], "lcp_itf_pair_add_del_v3");
    assert_eq!(lines[2]["retval"], -11);
    control(&ctl, json!({"cmd":"clear_journal"})).await;
    assert!(sim.handle.journal().is_empty());
}

#[tokio::test]
async fn restart_wipes_state_indexes_and_connections_and_keeps_host_faults() {
    let dir = tempfile::tempdir().expect("dir");
    let ctl = dir.path().join("ctl.sock");
    let sim = Sim::start(SimOptions {
        control_path: Some(ctl.clone()),
        lcp_tap_fail: true,
        ..SimOptions::default()
    })
    .await;
    let c = sim.client().await;
    let mut ev = c.subscribe();
    c.want_interface_events(7).await.expect("want");
    let first = c
        .create_loopback_instance(MacAddress([2, 0, 0, 0, 0, 1]), Some(1))
        .await
        .expect("loop1");
    c.bridge_domain_add(&vpp_api::BridgeDomainConfig::new(10))
        .await
        .expect("bd");
    for via_control in [false, true] {
        // Events of the previous round (creations) first.
        while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(100), ev.recv()).await {
            assert!(
                matches!(e, ClientEvent::Interface(_) | ClientEvent::Reconnected),
                "{e:?}"
            );
        }
        if via_control {
            assert_eq!(control(&ctl, json!({"cmd":"restart"})).await["ok"], true);
        } else {
            sim.handle.faults().restart();
        }
        match tokio::time::timeout(Duration::from_secs(2), ev.recv()).await {
            Ok(Ok(ClientEvent::Disconnected)) => {}
            other => panic!("{other:?}"),
        }
        let st = sim.handle.state();
        assert!(st.interface_by_name("loop1").is_none(), "state wiped");
        assert!(st.bridge_domains.is_empty());
        assert_eq!(sim.handle.event_subscribers(), 0, "subscriptions gone");
        // Reconnect (auto): a fresh VPP allocates indexes from the start
        // again, so the first loopback gets the index the first one had.
        let again = c
            .create_loopback_instance(MacAddress([2, 0, 0, 0, 0, 1]), Some(1))
            .await
            .expect("loop1 again");
        assert_eq!(again, first, "index allocation restarted");
        c.bridge_domain_add(&vpp_api::BridgeDomainConfig::new(10))
            .await
            .expect("bd again");
        // The host's condition survives a VPP restart.
        let r = c
            .lcp_itf_pair_add(&LcpPairConfig {
                sw_if_index: again,
                host_if_name: "bvi-x".into(),
                tun: false,
                netns: String::new(),
            })
            .await;
        assert!(
            matches!(r, Err(VppError::Retval { retval: -11, .. })),
            "{r:?}"
        );
    }
}

/// Issue 16: a `*` latency is per API call. A dump is one call (the request
/// and the `control_ping` that closes it): it costs the latency once, not
/// twice; a lone ping is a call of its own and costs it. Through the client,
/// with the service times vppsim reports.
#[tokio::test]
async fn a_wildcard_latency_charges_a_dump_once_and_a_lone_ping_once() {
    const LAT: Duration = Duration::from_millis(40);
    let sim = Sim::start(SimOptions::default()).await;
    let c = sim.client().await;
    sim.handle.faults().latency("*", LAT);
    sim.handle.clear_served();
    let t0 = Instant::now();
    c.sw_interface_dump(vpp_api::InterfaceFilter::All)
        .await
        .expect("dump");
    let dump = t0.elapsed();
    assert!(
        dump >= LAT && dump < 2 * LAT,
        "a dump takes one latency, took {dump:?}"
    );
    let t0 = Instant::now();
    c.ping().await.expect("ping");
    assert!(t0.elapsed() >= LAT, "a lone ping is a call");
    // Served: the dump, its closing ping (no latency), the lone ping.
    let served = sim.handle.served();
    let slow = served.iter().filter(|s| s.service() >= LAT).count();
    assert_eq!((served.len(), slow), (3, 2), "{served:?}");
    let (n, sum) = vppsim::served_within(&served, served[0].start, Instant::now());
    assert_eq!(n, 3);
    assert!(sum >= 2 * LAT && sum < 3 * LAT, "service sum {sum:?}");
}
