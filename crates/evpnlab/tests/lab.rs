//! The lab starts evpnr and N evpnds (birdsim here, so it runs anywhere),
//! writes its description, streams events, restarts a killed evpnd, and
//! removes everything on SIGTERM.
use std::{path::PathBuf, time::Duration};

use evpn_api::v1::{self, evpnd_client::EvpndClient, evpnr_client::EvpnrClient};
use evpn_testkit::child::CleanSpawn;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn bin(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_evpnlab")).with_file_name(name);
    assert!(
        p.is_file(),
        "{} missing: run `cargo build --workspace` first",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_starts_streams_restarts_and_cleans_up() {
    bin("evpnd");
    bin("evpnr");
    let work = tempfile::tempdir().unwrap();
    let ready = work.path().join("ready.json");
    let grpc = format!("127.0.0.1:{}", free_port());
    let mut lab = tokio::process::Command::new(env!("CARGO_BIN_EXE_evpnlab"))
        .args([
            "--bird",
            "sim",
            "--instances",
            "3",
            "--metrics-addr",
            "",
            "--grpc-addr",
            &grpc,
        ])
        .arg("--dir")
        .arg(work.path().join("lab"))
        .arg("--ready-file")
        .arg(&ready)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn_clean()
        .unwrap();
    evpn_testkit::eventually(
        "the lab's ready file",
        Duration::from_secs(30),
        async || {
            if let Ok(Some(st)) = lab.try_wait() {
                panic!("evpnlab exited early: {st}");
            }
            ready.exists()
        },
    )
    .await
    .unwrap();
    let desc: serde_json::Value = serde_json::from_slice(&std::fs::read(&ready).unwrap()).unwrap();
    let insts = desc["instances"].as_array().unwrap();
    let ids: Vec<&str> = insts.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["dpu0-ddln0", "dpu0-chplo0", "dpu0-lab2"]);
    assert_eq!(desc["bird"], "sim");
    for i in insts {
        let mut c = EvpndClient::connect(format!("http://{}", i["grpc"].as_str().unwrap()))
            .await
            .unwrap();
        let me = c
            .get_instance(v1::InstanceRef::default())
            .await
            .unwrap()
            .into_inner();
        assert!(me.ready, "{me:?}");
        assert_eq!(me.registry_address, grpc);
        assert_eq!((me.vpp(), me.bird()), (v1::Health::Ok, v1::Health::Ok));
        assert!(std::path::Path::new(i["vpp_control"].as_str().unwrap()).exists());
    }
    // evpnr answers and streams events.
    let mut r = EvpnrClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let mut s = r
        .watch_events(v1::WatchEventsRequest {
            snapshot: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // The snapshot lists the registered instances, then the marker.
    let mut snap = Vec::new();
    loop {
        let e = s.message().await.unwrap().unwrap();
        assert_eq!(e.r#type, "snapshot");
        if e.message == "end-of-snapshot" {
            break;
        }
        snap.push(e);
    }
    assert!(
        !snap.is_empty(),
        "the registered instances are in the snapshot"
    );

    // A killed evpnd is restarted and becomes ready again.
    let log = std::path::Path::new(insts[0]["log"].as_str().unwrap()).to_path_buf();
    let pid_line = std::fs::read_to_string(&log).unwrap();
    let pid: i32 = pid_line
        .lines()
        .find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .filter(|v| v["message"] == "starting")
        })
        .and_then(|v| v["pid"].as_i64())
        .unwrap() as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let url = format!("http://{}", insts[0]["grpc"].as_str().unwrap());
    evpn_testkit::eventually(
        "the killed evpnd restarted and ready",
        Duration::from_secs(20),
        async || {
            let starts = std::fs::read_to_string(&log)
                .unwrap()
                .matches("\"message\":\"starting\"")
                .count();
            if starts >= 2
                && let Ok(mut c) = EvpndClient::connect(url.clone()).await
            {
                c.get_instance(v1::InstanceRef::default())
                    .await
                    .is_ok_and(|r| r.get_ref().ready)
            } else {
                false
            }
        },
    )
    .await
    .unwrap();

    // SIGTERM: everything stops, exit 0, the ports are free again.
    kill(Pid::from_raw(lab.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let st = tokio::time::timeout(Duration::from_secs(30), lab.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(st.success(), "{st}");
    assert!(
        std::net::TcpListener::bind(&grpc).is_ok(),
        "evpnr still listening"
    );
    for i in insts {
        assert!(
            std::net::TcpListener::bind(i["grpc"].as_str().unwrap()).is_ok(),
            "an evpnd still listens"
        );
    }
}
