//! Foundation behaviour of the evpnr binary: reflection lists every RPC,
//! --check exit codes, flag > env > default precedence, SIGHUP reloads that
//! refuse a bad file, JSON logs, /metrics, and a clean SIGTERM that ends
//! open streams.
use std::time::Duration;

use evpn_api::v1;
use evpn_testkit::{Daemon, http_get, metric_value, reflect, run};
use nix::sys::signal::Signal;

const BIN: &str = env!("CARGO_BIN_EXE_evpnr");
const T: Duration = Duration::from_secs(20);

fn ephemeral() -> Vec<&'static str> {
    vec![
        "--grpc-addr",
        "127.0.0.1:0",
        "--metrics-addr",
        "127.0.0.1:0",
    ]
}

/// evpnr on ephemeral ports with its state in its own temp dir.
fn spawn_evpnr() -> anyhow::Result<Daemon> {
    let dir = tempfile::Builder::new().prefix("evpnr-f-").tempdir()?;
    let state = dir.path().join("state").display().to_string();
    let mut args = ephemeral();
    args.extend(["--state-dir", &state]);
    Daemon::spawn_in(dir, BIN, &args, &[])
}

const EVPNR_RPCS: &[&str] = &[
    "RegisterInstance",
    "ListInstances",
    "GetInstance",
    "GetInstanceStatus",
    "DeleteInstance",
    "ListGroups",
    "GetGroup",
    "CreateGroup",
    "DeleteGroup",
    "AddGroupMember",
    "RemoveGroupMember",
    "CreateGroupBVI",
    "DeleteGroupBVI",
    "SetGroupMTU",
    "AddGroupBVIAddress",
    "DeleteGroupBVIAddress",
    "BindGroupBVI",
    "ReleaseGroupBVI",
    "MoveGroupBVI",
    "ReportReady",
    "Heartbeat",
    "ListEvpnInstances",
    "GetEvpnInstance",
    "SetEvpnInstanceEnabled",
    "ListBVIs",
    "GetBVI",
    "GetVPPInfo",
    "GetBirdInfo",
    "WatchEvents",
    "SetGroupFailover",
    "SetGroupMemberPriority",
    "DrainInstance",
    "ResumeInstance",
    "SetFailoverSuspended",
    "GetFailoverStatus",
];

#[tokio::test]
async fn reflection_lists_every_evpnr_rpc() {
    let d = spawn_evpnr().unwrap();
    let url = d.grpc_url().unwrap();
    let (services, methods) = reflect(&url, "evpn.v1.Evpnr").await.unwrap();
    assert!(
        services.contains(&"evpn.v1.Evpnr".to_string()),
        "{services:?}"
    );
    assert!(
        services.contains(&"grpc.health.v1.Health".to_string()),
        "{services:?}"
    );
    for rpc in EVPNR_RPCS {
        assert!(
            methods.iter().any(|m| m == rpc),
            "{rpc} missing from {methods:?}"
        );
    }
    assert_eq!(methods.len(), EVPNR_RPCS.len(), "{methods:?}");
}

#[tokio::test]
async fn rpcs_are_counted_in_metrics_by_method_and_code() {
    let d = spawn_evpnr().unwrap();
    let url = d.grpc_url().unwrap();
    let mut c = v1::evpnr_client::EvpnrClient::connect(url).await.unwrap();
    assert!(
        c.list_groups(v1::Empty {})
            .await
            .unwrap()
            .into_inner()
            .groups
            .is_empty()
    );
    let e = c
        .get_group(v1::GroupRef {
            group_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    let (code, body) = http_get(&d.metrics_addr().unwrap(), "/metrics").unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        metric_value(
            &body,
            "evpnr_grpc_requests_total",
            &["method=\"ListGroups\"", "code=\"OK\""]
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        metric_value(
            &body,
            "evpnr_grpc_requests_total",
            &["method=\"GetGroup\"", "code=\"NOT_FOUND\""]
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        metric_value(&body, "evpnr_groups", &[]),
        Some(0.0),
        "{body}"
    );
    assert!(
        body.contains("evpnr_grpc_request_duration_seconds_bucket"),
        "{body}"
    );
    assert_eq!(
        metric_value(&body, "evpnr_build_info", &["version=\"0.1.0\""]),
        Some(1.0),
        "{body}"
    );
    let (code, _) = http_get(&d.metrics_addr().unwrap(), "/nope").unwrap();
    assert_eq!(code, 404);
}

#[test]
fn check_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let good =
        evpn_testkit::write_file(dir.path(), "good.yaml", "evpnr:\n  log-level: debug\n").unwrap();
    let parse = evpn_testkit::write_file(
        dir.path(),
        "parse.yaml",
        "evpnr:\n  log-level: debug\n  colour: red\n",
    )
    .unwrap();
    let broken = evpn_testkit::write_file(dir.path(), "broken.yaml", "evpnr: [\n").unwrap();
    let semantic =
        evpn_testkit::write_file(dir.path(), "sem.yaml", "evpnr:\n  grpc-addr: nowhere\n").unwrap();
    let two_tops =
        evpn_testkit::write_file(dir.path(), "tops.yaml", "evpnr: {}\nevpnd: {}\n").unwrap();

    let (c, out, _) = run(BIN, &["--check", "--config", good.to_str().unwrap()], &[]).unwrap();
    assert_eq!(c, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["log-level"], "debug");

    let (c, _, err) = run(BIN, &["--check", "--config", parse.to_str().unwrap()], &[]).unwrap();
    assert_eq!(c, 1, "{err}");
    assert!(
        err.contains("line 3 column 3") && err.contains("colour"),
        "{err}"
    );
    let (c, _, err) = run(BIN, &["--check", "--config", broken.to_str().unwrap()], &[]).unwrap();
    assert_eq!(c, 1, "{err}");
    let (c, _, err) = run(
        BIN,
        &["--check", "--config", two_tops.to_str().unwrap()],
        &[],
    )
    .unwrap();
    assert_eq!(c, 1, "{err}");
    let (c, _, err) = run(
        BIN,
        &["--check", "--config", semantic.to_str().unwrap()],
        &[],
    )
    .unwrap();
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("evpnr.grpc-addr"), "{err}");
    let (c, _, err) = run(
        BIN,
        &["--check", "--config", "/nonexistent/evpnr.yaml"],
        &[],
    )
    .unwrap();
    assert_eq!(c, 1, "{err}");
    // Semantic errors from flags and environment are exit 2 too.
    let (c, _, err) = run(BIN, &["--check", "--log-level", "loud"], &[]).unwrap();
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("evpnr.log-level"), "{err}");
}

#[test]
fn precedence_flag_over_env_over_file_over_default() {
    let dir = tempfile::tempdir().unwrap();
    let f = evpn_testkit::write_file(
        dir.path(),
        "c.yaml",
        "evpnr:\n  grpc-addr: 127.0.0.1:7001\n  log-level: warn\n",
    )
    .unwrap();
    let check = |args: &[&str], env: &[(&str, &str)]| -> serde_json::Value {
        let mut a = vec!["--check"];
        a.extend_from_slice(args);
        let (c, out, err) = run(BIN, &a, env).unwrap();
        assert_eq!(c, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    // Built-in default.
    assert_eq!(check(&[], &[])["grpc-addr"], "127.0.0.1:9190");
    // Environment beats the default.
    assert_eq!(
        check(&[], &[("EVPNR_GRPC_ADDR", "127.0.0.1:7002")])["grpc-addr"],
        "127.0.0.1:7002"
    );
    // The file beats the default; the environment beats the file.
    let cfg = f.to_str().unwrap();
    assert_eq!(
        check(&["--config", cfg], &[])["grpc-addr"],
        "127.0.0.1:7001"
    );
    assert_eq!(
        check(&["--config", cfg], &[("EVPNR_GRPC_ADDR", "127.0.0.1:7002")])["grpc-addr"],
        "127.0.0.1:7002"
    );
    // The flag beats the environment.
    let v = check(
        &[
            "--config",
            cfg,
            "--grpc-addr",
            "127.0.0.1:7003",
            "--log-level",
            "error",
        ],
        &[
            ("EVPNR_GRPC_ADDR", "127.0.0.1:7002"),
            ("EVPNR_LOG_LEVEL", "debug"),
        ],
    );
    assert_eq!(v["grpc-addr"], "127.0.0.1:7003");
    assert_eq!(v["log-level"], "error");
    // EVPNR_CONFIG selects the file.
    assert_eq!(check(&[], &[("EVPNR_CONFIG", cfg)])["log-level"], "warn");
}

#[test]
fn sighup_reloads_good_config_and_refuses_bad_one() {
    let dir = tempfile::Builder::new()
        .prefix("evpnr-hup-")
        .tempdir()
        .unwrap();
    let cfg = evpn_testkit::write_file(
        dir.path(),
        "evpnr.yaml",
        &format!(
            "evpnr:\n  grpc-addr: 127.0.0.1:0\n  metrics-addr: 127.0.0.1:0\n  log-level: info\n  state-dir: {}\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let cfg_s = cfg.to_str().unwrap().to_string();
    let d = Daemon::spawn_in(dir, BIN, &["--config", &cfg_s], &[]).unwrap();
    let maddr = d.metrics_addr().unwrap();
    let scrape = || http_get(&maddr, "/metrics").unwrap().1;
    let hash = |body: &str| {
        body.lines()
            .find(|l| l.starts_with("evpnr_config_info{"))
            .map(str::to_string)
            .unwrap()
    };
    let first = scrape();
    assert_eq!(
        metric_value(&first, "evpnr_config_last_reload_successful", &[]),
        Some(1.0)
    );
    let h0 = hash(&first);

    // A good change is applied: the new log level makes debug records appear.
    std::fs::write(
        &cfg,
        "evpnr:\n  grpc-addr: 127.0.0.1:0\n  metrics-addr: 127.0.0.1:0\n  log-level: debug\n",
    )
    .unwrap();
    let n = d.lines().len();
    d.signal(Signal::SIGHUP).unwrap();
    d.wait_log_after(n, "config-reloaded", T).unwrap();
    let body = scrape();
    let h1 = hash(&body);
    assert_ne!(h0, h1, "config hash must change after a good reload");

    // A bad file is refused: old config stays in effect.
    std::fs::write(&cfg, "evpnr:\n  log-level: debug\n  bogus-key: 1\n").unwrap();
    let n = d.lines().len();
    d.signal(Signal::SIGHUP).unwrap();
    let v = d.wait_log_after(n, "config-reload-failed", T).unwrap();
    assert_eq!(v["level"], "ERROR");
    assert!(v["error"].as_str().unwrap().contains("bogus-key"), "{v}");
    let body = scrape();
    assert_eq!(
        metric_value(&body, "evpnr_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert_eq!(
        hash(&body),
        h1,
        "the refused file must not replace the config in effect"
    );
    // A semantically bad file is refused as well.
    std::fs::write(&cfg, "evpnr:\n  log-level: loud\n").unwrap();
    let n = d.lines().len();
    d.signal(Signal::SIGHUP).unwrap();
    let v = d.wait_log_after(n, "config-reload-failed", T).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("evpnr.log-level"),
        "{v}"
    );
    // Still serving.
    assert_eq!(http_get(&maddr, "/metrics").unwrap().0, 200);
}

#[test]
fn every_log_line_is_json_and_the_first_is_starting() {
    let mut d = spawn_evpnr().unwrap();
    d.grpc_url().unwrap();
    d.signal(Signal::SIGTERM).unwrap();
    assert_eq!(d.wait_exit(T).unwrap(), Some(0));
    let lines = d.lines();
    assert!(lines.len() >= 3, "{lines:?}");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
        let msg = v["message"].as_str().unwrap();
        assert!(
            msg.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
            "message {msg:?} is not kebab-case"
        );
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{v}");
    }
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["message"], "starting");
    assert_eq!(first["version"], "0.1.0");
    assert!(first["commit"].is_string());
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(lines.last().unwrap()).unwrap()["message"],
        "stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_streams_cleanly_and_exits_zero() {
    let mut d = spawn_evpnr().unwrap();
    let url = d.grpc_url().unwrap();
    let mut c = v1::evpnr_client::EvpnrClient::connect(url).await.unwrap();
    let mut s = c
        .watch_events(v1::WatchEventsRequest {
            snapshot: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let marker = s.message().await.unwrap().unwrap();
    assert_eq!(
        (marker.r#type.as_str(), marker.message.as_str()),
        ("snapshot", "end-of-snapshot")
    );
    d.signal(Signal::SIGTERM).unwrap();
    // The daemon logs shutdown-requested, which the stream carries as a log
    // event; then the stream ends with OK (None), not an error.
    let mut saw_shutdown = false;
    loop {
        match tokio::time::timeout(T, s.message())
            .await
            .expect("stream did not end")
        {
            Ok(Some(e)) => saw_shutdown |= e.message == "shutdown-requested",
            Ok(None) => break,
            Err(st) => panic!("stream ended with an error: {st:?}"),
        }
    }
    assert!(saw_shutdown);
    assert_eq!(d.wait_exit(T).unwrap(), Some(0));
    assert!(
        !d.lines()
            .iter()
            .any(|l| l.contains("shutdown-drain-timeout")),
        "{:?}",
        d.lines()
    );
}

#[tokio::test]
async fn watch_events_rejects_unknown_filters() {
    let d = spawn_evpnr().unwrap();
    let mut c = v1::evpnr_client::EvpnrClient::connect(d.grpc_url().unwrap())
        .await
        .unwrap();
    let e = c
        .watch_events(v1::WatchEventsRequest {
            types: vec!["gossip".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("types"), "{e:?}");
}

#[test]
fn version_flag() {
    let (c, out, _) = run(BIN, &["--version"], &[]).unwrap();
    assert_eq!(c, 0);
    assert!(out.starts_with("evpnr 0.1.0 (commit "), "{out}");
}
