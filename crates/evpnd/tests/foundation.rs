//! Foundation behaviour of the evpnd binary: reflection lists every RPC,
//! identity over GetInstance, --check with evpnd's own keys, EVPND_*
//! environment precedence, and UNIMPLEMENTED for the lifecycle RPCs.
use std::time::Duration;

use evpn_api::v1;
use evpn_testkit::{Daemon, reflect, run};
use nix::sys::signal::Signal;

const BIN: &str = env!("CARGO_BIN_EXE_evpnd");

const EVPND_RPCS: &[&str] = &[
    "CreateEvpnInstance",
    "ListEvpnInstances",
    "GetEvpnInstance",
    "SetEvpnInstanceEnabled",
    "DeleteEvpnInstance",
    "CreateBVI",
    "ListBVIs",
    "GetBVI",
    "ReplaceBVI",
    "DeleteBVI",
    "BindGroupBVI",
    "ReleaseGroupBVI",
    "PrepareGroupBVI",
    "GetMacAnnouncers",
    "GetVPPInfo",
    "GetBirdInfo",
    "GetInstance",
    "WatchEvents",
];

fn args(state: &std::path::Path) -> Vec<String> {
    let s = state.to_str().unwrap();
    let v = [
        "--instance-id".to_string(),
        "dpu0-ddln0".into(),
        "--grpc-addr".into(),
        "127.0.0.1:0".into(),
        "--metrics-addr".into(),
        String::new(),
        "--state-dir".into(),
        s.into(),
        "--vpp-api-socket".into(),
        format!("{s}/no-vpp.sock"),
        "--bird-socket".into(),
        format!("{s}/no-bird.ctl"),
        "--bird-include-dir".into(),
        format!("{s}/evpn.d"),
    ];
    v.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_every_evpnd_rpc_and_get_instance_answers() {
    let state = tempfile::tempdir().unwrap();
    let a = args(state.path());
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut d = Daemon::spawn(BIN, &a, &[]).unwrap();
    let url = d.grpc_url().unwrap();
    let (services, methods) = reflect(&url, "evpn.v1.Evpnd").await.unwrap();
    assert!(
        services.contains(&"evpn.v1.Evpnd".to_string()),
        "{services:?}"
    );
    for rpc in EVPND_RPCS {
        assert!(
            methods.iter().any(|m| m == rpc),
            "{rpc} missing from {methods:?}"
        );
    }
    assert_eq!(methods.len(), EVPND_RPCS.len(), "{methods:?}");

    let mut c = v1::evpnd_client::EvpndClient::connect(url).await.unwrap();
    let me = c
        .get_instance(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.instance_id, "dpu0-ddln0");
    assert_eq!(me.dataplane, "vpp");
    assert!(
        !me.ready,
        "no reconcile exists yet, so the host must not claim readiness"
    );
    let e = c
        .get_instance(v1::InstanceRef {
            instance_id: "someone-else".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let l = c
        .list_evpn_instances(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner();
    assert!(l.evpn_instances.is_empty());
    // A write needs VPP: UNAVAILABLE, never a fake success.
    let e = c
        .create_evpn_instance(v1::CreateEvpnInstanceRequest {
            slug: "test".into(),
            vni: 100,
            vtep_address: "192.0.2.1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    // Metrics disabled by an empty --metrics-addr: no listener line.
    assert!(!d.lines().iter().any(|l| l.contains("metrics-listening")));
    d.signal(Signal::SIGINT).unwrap();
    assert_eq!(d.wait_exit(Duration::from_secs(20)).unwrap(), Some(0));
}

#[test]
fn check_names_evpnd_keys_and_env_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let f = evpn_testkit::write_file(
        dir.path(),
        "d.yaml",
        "evpnd:\n  instance-id: r1\n  vpp:\n    api-socket: /run/vpp/other.sock\n",
    )
    .unwrap();
    let cfg = f.to_str().unwrap();
    let (c, out, err) = run(BIN, &["--check", "--config", cfg], &[]).unwrap();
    assert_eq!(c, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["vpp"]["api-socket"], "/run/vpp/other.sock");
    let (_, out, _) = run(
        BIN,
        &["--check", "--config", cfg],
        &[("EVPND_VPP_API_SOCKET", "/tmp/env.sock")],
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["vpp"]["api-socket"], "/tmp/env.sock");
    let (_, out, _) = run(
        BIN,
        &[
            "--check",
            "--config",
            cfg,
            "--vpp-api-socket",
            "/tmp/flag.sock",
        ],
        &[("EVPND_VPP_API_SOCKET", "/tmp/env.sock")],
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["vpp"]["api-socket"], "/tmp/flag.sock");

    let bad = evpn_testkit::write_file(
        dir.path(),
        "b.yaml",
        "evpnd:\n  instance-id: r1\n  vpp:\n    bridge-domain-min: 0\n",
    )
    .unwrap();
    let (c, _, err) = run(BIN, &["--check", "--config", bad.to_str().unwrap()], &[]).unwrap();
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("evpnd.vpp.bridge-domain-min"), "{err}");
    let rel = evpn_testkit::write_file(
        dir.path(),
        "r.yaml",
        "evpnd:\n  instance-id: r1\n  state-dir: relative/dir\n",
    )
    .unwrap();
    let (c, _, err) = run(BIN, &["--check", "--config", rel.to_str().unwrap()], &[]).unwrap();
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("evpnd.state-dir"), "{err}");
    let unknown =
        evpn_testkit::write_file(dir.path(), "u.yaml", "evpnd:\n  vpp:\n    api-sock: /x\n")
            .unwrap();
    let (c, _, err) = run(
        BIN,
        &["--check", "--config", unknown.to_str().unwrap()],
        &[],
    )
    .unwrap();
    assert_eq!(c, 1, "{err}");
    assert!(err.contains("line 3 column 5"), "{err}");
}
