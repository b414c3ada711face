//! The design article's demo (`docs/design.md`), played against the lab using only
//! `evpnc -json`, checking every output, and the fleet event stream of the
//! same run: create group `test`; add both instances (each gains
//! `bvi-test`); create the GroupBVI with 172.16.0.32/24 and fec0::32/64;
//! make one primary; move it back and forth; delete the primary's
//! membership (GroupBVI unassigned); delete the group (BVIs cleaned up).
//!
//! The lab runs with mutual TLS (`evpnlab --tls`, as CI should): evpnc uses
//! the lab's admin certificate through the `EVPNC_TLS_*` variables the lab
//! prints, and a call without a client certificate is refused.
use std::{path::PathBuf, process::Command, time::Duration};

use evpn_api::v1::{self, evpnr_client::EvpnrClient};
use evpn_testkit::child::CleanSpawn;
use evpn_tls::{ClientTls, Expect, Identity, TlsFiles};
use serde_json::Value;

fn sibling(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_evpnlab")).with_file_name(name);
    assert!(
        p.is_file(),
        "{} missing: run `cargo build --workspace` first",
        p.display()
    );
    p
}

struct Lab {
    child: tokio::process::Child,
    grpc: String,
    /// The operator's certificate, key and CA (from the ready file).
    tls: TlsFiles,
    work: tempfile::TempDir,
}

/// Stop the lab with SIGTERM so it stops its evpnr and evpnds (a SIGKILL
/// would orphan them), also when the test fails.
impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let child = &mut self.child;
            let stopped = evpn_testkit::eventually_blocking(
                "the lab to stop",
                Duration::from_secs(15),
                || matches!(child.try_wait(), Ok(Some(_))),
            );
            if stopped.is_err() {
                let _ = self.child.start_kill();
            }
        }
    }
}

impl Lab {
    async fn start() -> Lab {
        for b in ["evpnd", "evpnr", "evpnc"] {
            sibling(b);
        }
        let work = tempfile::tempdir().unwrap();
        let ready = work.path().join("ready.json");
        let grpc = format!(
            "127.0.0.1:{}",
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        );
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_evpnlab"))
            .args([
                "--tls",
                "--bird",
                "sim",
                "--metrics-addr",
                "",
                "--grpc-addr",
                &grpc,
            ])
            .arg("--dir")
            .arg(work.path().join("lab"))
            .arg("--ready-file")
            .arg(&ready)
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn_clean()
            .unwrap();
        evpn_testkit::eventually(
            "the lab's ready file",
            Duration::from_secs(30),
            async || ready.exists(),
        )
        .await
        .unwrap();
        let desc: Value = evpn_testkit::eventually(
            "the lab's ready file to be complete",
            Duration::from_secs(10),
            async || {
                std::fs::read(&ready)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            },
        )
        .await
        .unwrap();
        let path = |k: &str| {
            PathBuf::from(
                desc["tls"][k]
                    .as_str()
                    .unwrap_or_else(|| panic!("no tls.{k} in {desc}")),
            )
        };
        let tls = TlsFiles {
            cert: path("cert"),
            key: path("key"),
            ca: path("ca"),
        };
        Lab {
            child,
            grpc,
            tls,
            work,
        }
    }

    /// `evpnc -server <lab> -json <words>` with the operator's certificate
    /// (`EVPNC_TLS_*`, as the lab prints them) or none.
    fn evpnc_as(&self, with_cert: bool, words: &str) -> (i32, Value) {
        let mut cmd = Command::new(sibling("evpnc"));
        for k in ["EVPNC_TLS_CERT", "EVPNC_TLS_KEY", "EVPNC_TLS_CA"] {
            cmd.env_remove(k);
        }
        if with_cert {
            cmd.env("EVPNC_TLS_CERT", &self.tls.cert)
                .env("EVPNC_TLS_KEY", &self.tls.key)
                .env("EVPNC_TLS_CA", &self.tls.ca);
        }
        let out = cmd
            .args(["-server", &self.grpc, "-json"])
            .args(words.split_whitespace())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "evpnc {words}: not JSON ({e}): {text:?} stderr {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), v)
    }

    /// `evpnc -server <lab> -json <words>` as the operator: (exit code,
    /// parsed stdout).
    fn evpnc(&self, words: &str) -> (i32, Value) {
        self.evpnc_as(true, words)
    }

    /// Run a command that must succeed.
    fn ok(&self, words: &str) -> Value {
        let (code, v) = self.evpnc(words);
        assert_eq!(code, 0, "evpnc {words}: {v}");
        assert!(v.get("error").is_none(), "evpnc {words}: {v}");
        v
    }

    fn bvis(&self, instance: &str) -> Vec<Value> {
        self.ok(&format!("show instance {instance} bvi"))["bvis"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

const A: &str = "dpu0-ddln0";
const B: &str = "dpu0-chplo0";

fn primary_of(g: &Value) -> &str {
    g["primaryInstanceId"].as_str().unwrap_or("")
}

/// The BVI `bvi-test` of an instance, with its role and MAC.
fn bvi_test(bvis: &[Value]) -> Option<(String, String, usize)> {
    bvis.iter()
        .find(|b| b["interfaceName"] == "bvi-test")
        .map(|b| {
            (
                b["role"].as_str().unwrap_or("").to_string(),
                b["mac"].as_str().unwrap_or("").to_string(),
                b["addresses"].as_array().map_or(0, Vec::len),
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_article_demo_with_evpnc_json_against_the_lab() {
    let lab = Lab::start().await;
    let mut r = EvpnrClient::new(
        ClientTls::load(lab.tls.clone())
            .unwrap()
            .channel(
                &lab.grpc,
                Expect::Exactly(Identity::Registry("evpnr".into())),
                |e| e,
            )
            .unwrap(),
    );
    let mut events = r
        .watch_events(v1::WatchEventsRequest {
            types: vec!["crud".into(), "failover".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    // Both instances are registered and ready.
    let insts = lab.ok("show instance");
    let ids: Vec<&str> = insts["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instanceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [B, A], "sorted by ID");

    // Without a client certificate nothing is served: evpnc (plaintext)
    // fails, and evpnr logs the refused connection.
    let (code, v) = lab.evpnc_as(false, "show instance");
    assert_ne!(code, 0, "served without a client certificate: {v}");
    assert!(
        v.get("instances").is_none() && v.get("error").is_some(),
        "{v}"
    );
    let log = lab.work.path().join("lab").join("evpnr.log");
    evpn_testkit::eventually(
        "evpnr to log the refused connection",
        Duration::from_secs(10),
        async || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("tls-refused")),
    )
    .await
    .unwrap();

    // Create the group; add both members: each gains bvi-test as a candidate.
    let g = lab.ok("group test create vni 100");
    assert_eq!(g["groupId"], "test");
    assert_eq!(g["vni"], 100);
    let vmac = g["vmac"].as_str().unwrap().to_string();
    lab.ok(&format!("group test member add {A}"));
    lab.ok(&format!("group test member add {B}"));
    for i in [A, B] {
        let (role, mac, n) =
            bvi_test(&lab.bvis(i)).unwrap_or_else(|| panic!("{i} has no bvi-test"));
        assert_eq!(role, "ROLE_CANDIDATE");
        assert_ne!(mac, vmac);
        assert_eq!(n, 0);
    }

    // The GroupBVI with an IPv4 and an IPv6 address (the jq example of `docs/design.md`).
    lab.ok("group test bvi create");
    lab.ok("group test bvi address add 172.16.0.32/24");
    let g = lab.ok("group test bvi address add fec0::32/64");
    let gb = &g["groupBvi"];
    assert_eq!(gb["mac"], vmac.as_str());
    let addrs: Vec<(String, u64)> = gb["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["address"].as_str().unwrap().to_string(),
                a["prefixLen"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        addrs,
        [
            ("172.16.0.32".to_string(), 24),
            ("fec0::32".to_string(), 64)
        ]
    );
    assert_eq!(lab.ok("show group test")["groupBvi"], g["groupBvi"]);

    // Make A primary, then move back and forth.
    for (to, from) in [(A, B), (B, A), (A, B), (B, A)] {
        let g = lab.ok(&format!("group test bvi set primary {to}"));
        assert_eq!(primary_of(&g), to);
        let (role, mac, n) = bvi_test(&lab.bvis(to)).unwrap();
        assert_eq!(
            (role.as_str(), mac.as_str(), n),
            ("ROLE_PRIMARY", vmac.as_str(), 2),
            "{to} after the move"
        );
        let (role, mac, n) = bvi_test(&lab.bvis(from)).unwrap();
        assert_eq!(role, "ROLE_CANDIDATE", "{from} after the move");
        assert_ne!(mac, vmac);
        assert_eq!(n, 0);
    }

    // Remove the primary (B) from the group: the GroupBVI is unassigned.
    let g = lab.ok(&format!("group test member remove {B}"));
    assert_eq!(primary_of(&g), "");
    assert!(bvi_test(&lab.bvis(B)).is_none(), "B left the eVPN");
    let (role, _, n) = bvi_test(&lab.bvis(A)).unwrap();
    assert_eq!((role.as_str(), n), ("ROLE_CANDIDATE", 0));

    // Errors: JSON {"error": ...} and a non-zero exit.
    let (code, v) = lab.evpnc("show group nope");
    assert_ne!(code, 0);
    assert!(v["error"].as_str().unwrap().contains("NOT_FOUND"), "{v}");

    // Delete the group: the BVIs are cleaned up everywhere.
    assert_eq!(lab.ok("group test delete"), serde_json::json!({}));
    for i in [A, B] {
        assert!(bvi_test(&lab.bvis(i)).is_none(), "{i} still has bvi-test");
        let evpns = lab.ok(&format!("show instance {i} evpn"));
        assert!(
            evpns["evpnInstances"].as_array().is_none_or(Vec::is_empty),
            "{evpns}"
        );
    }
    assert!(
        lab.ok("show group")["groups"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );

    // The event stream of the same run has the expected CRUD events, in order.
    let want = [
        "group-created",
        "group-member-added",
        "group-member-added",
        "groupbvi-created",
        "groupbvi-address-added",
        "groupbvi-address-added",
        "group-member-removed",
        "group-deleted",
    ];
    let mut got = Vec::new();
    let mut seen_bound = 0;
    while got.len() < want.len() {
        let e = tokio::time::timeout(Duration::from_secs(20), events.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if e.message == "groupbvi-bound" && e.instance.is_empty() {
            seen_bound += 1;
        }
        if e.instance.is_empty() && want.contains(&e.message.as_str()) {
            got.push(e.message);
        }
    }
    assert_eq!(got, want);
    assert!(
        seen_bound >= 3,
        "the registry reported the binds of the moves"
    );
}
