//! Issue 17 (health): a primary whose BIRD dies fences itself — it releases
//! the gateway after the hold time, says so in a `self-fenced` event,
//! refuses a bind (FAILED_PRECONDITION naming the failing check) while its
//! health is down, and accepts it again once BIRD is back. Black-box:
//! vppsim, a real BIRD 2.20 and the real evpnd binary, through gRPC.
mod common;

use common::{BIN, Host, T, create_evpn_with_bvi};
use evpn_api::v1;
use evpn_testkit::{Daemon, eventually};

const VMAC: &str = "02:00:5e:00:17:01";

/// Fast checks so the test runs in seconds.
const HEALTH: &str = "  health:\n    interval: 100ms\n    timeout: 80ms\n    rise: 2\n    fall: 2\n    \
    self-fence:\n      hold: 300ms\n";

fn start(h: &mut Host) {
    let path = h.dir.path().join("evpnd.yaml");
    std::fs::write(&path, format!("{}{HEALTH}", h.config())).unwrap();
    let d = Daemon::spawn(BIN, &["--config", path.to_str().unwrap()], &[]).unwrap();
    d.wait_log("reconcile-finished", T).unwrap();
    h.evpnd = Some(d);
}

fn bind_req() -> v1::HostBindGroupBviRequest {
    v1::HostBindGroupBviRequest {
        slug: "red".into(),
        group_id: "red".into(),
        vmac: VMAC.into(),
        addresses: vec![v1::Prefix {
            address: "192.0.2.254".into(),
            prefix_len: 24,
        }],
        ..Default::default()
    }
}

/// The host's health as GetInstance reports it: (status, reason, fenced).
async fn host_health(h: &Host) -> (v1::Health, String, String) {
    let i = h
        .client()
        .await
        .get_instance(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner();
    let s = i.health.expect("GetInstance reports health");
    let host = s.host.expect("host verdict");
    (host.status(), host.reason, s.fenced)
}

/// The fields of an event's log line.
fn fields(v: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(v["fields"].as_str().unwrap_or("{}")).unwrap()
}

/// Consecutive failures of host check `name` (GetInstance).
async fn check_failures(h: &Host, name: &str) -> u32 {
    let i = h
        .client()
        .await
        .get_instance(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner();
    i.health
        .expect("health")
        .checks
        .iter()
        .find(|c| c.name == name && c.evpn.is_empty())
        .map_or(0, |c| c.failures)
}

async fn wait_host(h: &Host, want: v1::Health) {
    eventually(format!("host health {want:?}"), T, async || {
        let got = host_health(h).await;
        if got.0 == want {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await
    .unwrap();
}

async fn role(h: &Host) -> v1::bvi::Role {
    h.client()
        .await
        .get_bvi(v1::EvpnRef {
            slug: "red".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .role()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_whose_bird_dies_fences_itself_and_refuses_binds_until_bird_is_back() {
    let mut h = Host::new(
        "a_primary_whose_bird_dies_fences_itself_and_refuses_binds_until_bird_is_back",
        "r1",
    )
    .await;
    start(&mut h);
    let mut c = h.client().await;
    create_evpn_with_bvi(&mut c, "red", 100).await;
    wait_host(&h, v1::Health::Ok).await;
    let b = c.bind_group_bvi(bind_req()).await.unwrap().into_inner();
    assert_eq!(b.role(), v1::bvi::Role::Primary);

    // BIRD dies: after fall (2 x 100 ms) + hold (300 ms) the gateway is
    // released by evpnd itself.
    h.sim.clear_journal();
    h.bird.kill();
    let ev = fields(&h.evpnd().wait_log("self-fenced", T).unwrap());
    assert_eq!(ev["evpn"], "red", "{ev}");
    assert_eq!(ev["mac"], VMAC, "{ev}");
    assert!(
        ev["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("bird:"),
        "{ev}"
    );
    assert_eq!(role(&h).await, v1::bvi::Role::Candidate);
    let ch = h.changes();
    assert!(
        ch.iter().any(|m| m == "sw_interface_set_mac_address"),
        "the vMAC is taken off the dataplane: {ch:?}"
    );
    let (st, reason, fenced) = host_health(&h).await;
    assert_eq!(st, v1::Health::Down);
    assert!(reason.contains("bird"), "{reason}");
    assert!(fenced.starts_with("bird:"), "{fenced}");

    // While down, a bind (e.g. the registry's resync) is refused.
    let e = c.bind_group_bvi(bind_req()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("bird"), "{}", e.message());
    assert_eq!(role(&h).await, v1::bvi::Role::Candidate);

    // BIRD is back: health recovers (rise 2), the fence is lifted, and a
    // bind is accepted again.
    h.bird.restart_process();
    wait_host(&h, v1::Health::Ok).await;
    h.evpnd().wait_log("self-fence-lifted", T).unwrap();
    assert_eq!(host_health(&h).await.2, "", "not fenced any more");
    let b = c.bind_group_bvi(bind_req()).await.unwrap().into_inner();
    assert_eq!(b.role(), v1::bvi::Role::Primary);

    // Metrics: the release is counted.
    let (_, m) = evpn_testkit::http_get(&h.evpnd().metrics_addr().unwrap(), "/metrics").unwrap();
    let released = evpn_testkit::metric_value(
        &m,
        "evpnd_health_self_fence_total",
        &["result=\"released\""],
    );
    assert_eq!(released, Some(1.0), "{m}");
    assert_eq!(
        evpn_testkit::metric_value(&m, "evpnd_health_up", &["scope=\"host\""]),
        Some(1.0),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_check_command_that_fails_takes_the_host_down_without_fencing() {
    let mut h = Host::new(
        "an_operator_check_command_that_fails_takes_the_host_down_without_fencing",
        "r1",
    )
    .await;
    let flag = h.dir.path().join("healthy");
    std::fs::write(&flag, "").unwrap();
    let path = h.dir.path().join("evpnd.yaml");
    std::fs::write(
        &path,
        format!(
            "{}{HEALTH}    commands:\n      - name: flag\n        argv: [/usr/bin/test, -e, {}]\n",
            h.config(),
            flag.display()
        ),
    )
    .unwrap();
    let d = Daemon::spawn(BIN, &["--config", path.to_str().unwrap()], &[]).unwrap();
    d.wait_log("reconcile-finished", T).unwrap();
    h.evpnd = Some(d);
    let mut c = h.client().await;
    create_evpn_with_bvi(&mut c, "red", 100).await;
    wait_host(&h, v1::Health::Ok).await;
    c.bind_group_bvi(bind_req()).await.unwrap();
    std::fs::remove_file(&flag).unwrap();
    wait_host(&h, v1::Health::Down).await;
    let (_, reason, fenced) = host_health(&h).await;
    assert!(reason.contains("command:flag"), "{reason}");
    // Not a fencing reason: the gateway stays (the registry decides), also
    // well past fall + hold (8 failed probes = 800 ms > 200 + 300 ms)...
    eventually("8 failed probes of command:flag", T, async || {
        let f = check_failures(&h, "command:flag").await;
        if f >= 8 { Ok(()) } else { Err(format!("{f}")) }
    })
    .await
    .unwrap();
    assert_eq!(fenced, "");
    assert_eq!(host_health(&h).await.2, "");
    assert_eq!(role(&h).await, v1::bvi::Role::Primary);
    // ...but a new claim is refused while down.
    let mut other = bind_req();
    other.group_id = "blue".into();
    let e = c.bind_group_bvi(other).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("command:flag"), "{}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_whose_bird_hangs_fences_itself() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let mut h = Host::new("a_primary_whose_bird_hangs_fences_itself", "r1").await;
    start(&mut h);
    let mut c = h.client().await;
    create_evpn_with_bvi(&mut c, "red", 100).await;
    wait_host(&h, v1::Health::Ok).await;
    c.bind_group_bvi(bind_req()).await.unwrap();
    // BIRD stops answering (its socket stays open): the probes time out.
    let bird = Pid::from_raw(h.bird.pid().unwrap() as i32);
    kill(bird, Signal::SIGSTOP).unwrap();
    let ev = h.evpnd().wait_log("self-fenced", T);
    kill(bird, Signal::SIGCONT).unwrap();
    let ev = fields(&ev.unwrap());
    assert_eq!(ev["evpn"], "red", "{ev}");
    // The first probe times out; later ones may fail to connect (a stopped
    // BIRD accepts no connection): both are BIRD not answering.
    assert!(
        ev["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("bird:"),
        "{ev}"
    );
    assert_eq!(role(&h).await, v1::bvi::Role::Candidate);
    wait_host(&h, v1::Health::Ok).await;
}

/// A `protocol bgp` on loopback from `port` to `peer_port` (iBGP, no
/// routes: only the session matters).
fn bgp(port: u16, peer_port: u16) -> String {
    format!(
        "evpn table evpntab;\nprotocol bgp peer {{\n  local 127.0.0.1 port {port} as 65000;\n  \
         neighbor 127.0.0.1 port {peer_port} as 65000;\n  multihop;\n  connect delay time 1;\n  \
         connect retry time 1;\n  error wait time 1,2;\n  ipv4 {{ import none; export none; }};\n}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_whose_bgp_sessions_all_go_down_fences_itself() {
    let test = "a_primary_whose_bgp_sessions_all_go_down_fences_itself";
    let mut h = Host::new(test, "r1").await;
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (p1, p2) = (free(), free());
    // r1's BIRD with one BGP session to a peer BIRD.
    let bin = evpn_testkit::bird::bird_bin(evpn_testkit::bird::Version::V2_20, test);
    h.bird = evpn_testkit::bird::Bird::start_with_id(&bin, "10.0.0.1", &bgp(p1, p2), None);
    let mut peer = evpn_testkit::bird::Bird::start_with_id(&bin, "10.0.0.2", &bgp(p2, p1), None);
    start(&mut h);
    let mut c = h.client().await;
    create_evpn_with_bvi(&mut c, "red", 100).await;
    // Established: the bgp check is up (it counts BIRD's BGP protocols).
    wait_host(&h, v1::Health::Ok).await;
    c.bind_group_bvi(bind_req()).await.unwrap();
    // The peer goes away: r1's only session drops; r1 fences itself.
    peer.kill();
    let ev = fields(&h.evpnd().wait_log("self-fenced", T).unwrap());
    assert!(
        ev["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("bgp: 0 of 1"),
        "{ev}"
    );
    assert_eq!(role(&h).await, v1::bvi::Role::Candidate);
    let e = c.bind_group_bvi(bind_req()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("bgp"), "{}", e.message());
    // The peer is back: the session re-establishes and binds are accepted.
    peer.restart_process();
    wait_host(&h, v1::Health::Ok).await;
    c.bind_group_bvi(bind_req()).await.unwrap();
}

/// Issue 17 item 4: a killed BIRD is noticed at once — the `bird` check
/// goes down on the first failure (BIRD closed its control socket), not
/// after `fall` failed probes. The probes here are slow (every 3 s, fall 3:
/// 6 s or more before the old rule would call it down); the check is down
/// with fewer than `fall` failures counted, and the host verdict follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_bird_is_reported_down_without_waiting_fall() {
    const SLOW: &str = "  health:\n    interval: 3s\n    timeout: 1s\n    rise: 2\n    fall: 3\n";
    let mut h = Host::new("a_killed_bird_is_reported_down_without_waiting_fall", "r1").await;
    let path = h.dir.path().join("evpnd.yaml");
    std::fs::write(&path, format!("{}{SLOW}", h.config())).unwrap();
    let d = Daemon::spawn(BIN, &["--config", path.to_str().unwrap()], &[]).unwrap();
    d.wait_log("reconcile-finished", T).unwrap();
    h.evpnd = Some(d);
    let mut c = h.client().await;
    create_evpn_with_bvi(&mut c, "red", 100).await;
    wait_host(&h, v1::Health::Ok).await;

    let skip = h.evpnd().lines().len();
    h.bird.kill();
    // The `bird` check goes down (others may too, in any order).
    let mut down = serde_json::Value::Null;
    eventually("health-check-down of bird", T, async || {
        let lines = h.evpnd().lines();
        down = lines
            .iter()
            .skip(skip)
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == "health-check-down")
            .map(|v| fields(&v))
            .find(|f| f["check"] == "bird")
            .ok_or_else(|| "not yet".to_string())?;
        Ok::<(), String>(())
    })
    .await
    .unwrap();
    assert!(
        down["error"].as_str().unwrap_or_default().contains("BIRD"),
        "{down}"
    );
    // Fewer than `fall` failures counted, and at least the hard one: a
    // probe that BIRD answered just before it was killed and that is
    // recorded after the hard failure is dropped (its evidence is older),
    // so it cannot reset the count. Before that rule this read 0 in a
    // loaded run (issue 17, session 13).
    let failures = check_failures(&h, "bird").await;
    assert!(
        (1..3).contains(&failures),
        "down after {failures} failures: want the hard failure counted and fall (3) not waited for"
    );
    let (st, reason, _) = host_health(&h).await;
    assert_eq!(st, v1::Health::Down);
    assert!(reason.starts_with("bird: "), "{reason}");
}
