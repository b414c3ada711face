//! The `-json` contract, against a real evpnr: every command prints exactly
//! one JSON object on stdout — the proto-JSON of the answer (canonical
//! camelCase), `{}` for mutations without an answer, or `{"error": "..."}`
//! with a non-zero exit status (1 for evpnr errors, 2 for usage errors).
mod common;

use common::*;
use evpn_testkit::child::CleanSpawn;
use serde_json::{Value, json};

/// One command line per action of the tree (names that do not exist yet).
const EVERY_COMMAND: &[&str] = &[
    "show version",
    "help",
    "quit",
    "show instance",
    "show instance r1",
    "show instance r1 evpn",
    "show instance r1 evpn test",
    "show instance r1 bvi",
    "show instance r1 bvi test",
    "show instance r1 vpp info",
    "show instance r1 bird info",
    "show instance r1 status",
    "show group",
    "show group test",
    "group test create vni 100 mtu 9000 vmac 02:00:00:00:00:01 route-target rt:65000:100",
    "group test mtu 9000",
    "group test member add r1",
    "group test member remove r1",
    "group test bvi create address 172.16.0.32/24",
    "group test bvi address add fec0::32/64",
    "group test bvi address del fec0::32/64",
    "group test bvi set primary r1",
    "group test bvi set primary r1 force",
    "group test bvi bind r1",
    "group test bvi release r1",
    "group test bvi delete",
    "group test delete",
    "instance r1 evpn test disable",
    "instance r1 evpn test enable",
    "instance r1 delete",
    "watch events snapshot num 1",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The guard serialises whole tests (each has its own runtime).
#[allow(clippy::await_holding_lock)]
async fn every_command_honours_the_json_contract() {
    let _s = serial();
    let r = Registry::start();
    let registry = r.has_registry().await;
    let server = r.addr.clone();
    for line in EVERY_COMMAND {
        let out = tokio::task::spawn_blocking({
            let server = server.clone();
            move || json(&server, line)
        })
        .await
        .unwrap();
        if out.code == 0 {
            let v = out.ok();
            match *line {
                "show version" => {
                    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"), "{out:?}");
                    assert!(v["commit"].is_string(), "{out:?}");
                    assert_eq!(v["server"], server.as_str());
                }
                "help" => assert!(v["commands"].as_array().unwrap().len() > 30),
                "quit" => assert_eq!(v, json!({})),
                "watch events snapshot num 1" => {
                    assert_eq!(v["type"], "snapshot", "{out:?}");
                    assert!(v["seq"].is_string() || v["seq"].is_number(), "{out:?}");
                }
                _ => assert!(registry, "{line}: success without a registry: {out:?}"),
            }
        } else {
            let msg = out.err();
            assert_eq!(out.code, 1, "{line}: {out:?}");
            if !registry {
                assert!(
                    msg.starts_with("UNIMPLEMENTED: "),
                    "{line}: {msg:?} ({out:?})"
                );
            }
            assert!(
                !matches!(
                    *line,
                    "show version" | "help" | "quit" | "watch events snapshot num 1"
                ),
                "{line} must not fail: {out:?}"
            );
        }
        // Nothing but the JSON object reaches stdout; stderr stays quiet.
        assert!(out.stderr.is_empty(), "{line}: {out:?}");
    }
}

#[test]
fn usage_errors_are_json_with_status_2() {
    // No server is needed: these fail before any RPC.
    let server = format!("127.0.0.1:{}", free_port());
    for (line, want) in [
        ("show group BAD", "invalid group: "),
        ("group test create vni 0", "invalid vni: "),
        (
            "group test create vni 1 vmac ff:ff:ff:ff:ff:ff",
            "invalid vmac: ",
        ),
        ("group test bvi address add 10.0.0.1/33", "invalid prefix: "),
        ("group test mtu 100", "invalid mtu: "),
        ("frobnicate", "unknown command \"frobnicate\""),
        ("group test", "incomplete command \"group test\""),
        ("group test m 1", "ambiguous \"m\": could be member, mtu"),
        ("show version now", "unknown word \"now\""),
    ] {
        let out = json(&server, line);
        let msg = out.err();
        assert_eq!(out.code, 2, "{line}: {out:?}");
        assert!(msg.contains(want), "{line}: {msg:?}");
    }
    let out = evpnc_raw(&["-json", "-bogus", "show", "version"], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.err().contains("unknown flag \"-bogus\""), "{out:?}");
}

#[test]
fn unreachable_server_is_a_json_error_with_status_1() {
    let server = format!("127.0.0.1:{}", free_port());
    let out = evpnc(&server, &["-timeout", "2s", "-json", "show", "group"]);
    let msg = out.err();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(msg.starts_with("UNAVAILABLE: evpnr at 127.0.0.1:"), "{msg}");
    // Text mode: message on stderr, nothing on stdout, same status.
    let out = evpnc(&server, &["show", "group"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(out.stderr.starts_with("error: UNAVAILABLE"), "{out:?}");
}

#[test]
fn silent_server_hits_the_deadline() {
    // Accepts TCP connections (backlog) but never speaks HTTP/2.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = l.local_addr().unwrap().to_string();
    let t = std::time::Instant::now();
    let out = evpnc_raw(
        &[
            "-server", &server, "-timeout", "500ms", "-json", "show", "group",
        ],
        &[],
    );
    let msg = out.err();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        msg.starts_with(&format!(
            "DEADLINE_EXCEEDED: evpnr at {server}: no answer within 500ms"
        )),
        "{msg}"
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    drop(l);
}

#[test]
fn version_flag_and_environment_server() {
    let out = evpnc_raw(&["-version"], &[]);
    assert_eq!(out.code, 0);
    let line = out.stdout.trim();
    assert!(
        line.starts_with(&format!("evpnc {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{line}"
    );
    let out = evpnc_raw(
        &["--json", "show", "version"],
        &[("EVPNC_SERVER", "192.0.2.1:1")],
    );
    assert_eq!(out.ok()["server"], "192.0.2.1:1");
    let out = evpnc_raw(&["-json", "show", "version"], &[]);
    assert_eq!(out.ok()["server"], "127.0.0.1:9190");
    let out = evpnc_raw(&["-help"], &[]);
    assert_eq!(out.code, 0);
    for w in [
        "USAGE",
        "FLAGS",
        "COMMANDS",
        "EXIT STATUS",
        "group <group> bvi set primary <instance>",
    ] {
        assert!(out.stdout.contains(w), "{w}: {}", out.stdout);
    }
}

/// The demo of `docs/design.md`, every command with `-json`, against evpnr with two
/// real evpnds (vppsim + BIRD 2.20).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The guard serialises whole tests (each has its own runtime).
#[allow(clippy::await_holding_lock)]
async fn article_demo_with_json_against_a_fleet() {
    let _s = serial();
    let f = Fleet::start(
        "article_demo_with_json_against_a_fleet",
        &["dpu0-ddln0", "dpu0-chplo0"],
    )
    .await;
    let s = f.registry.addr.clone();
    let run = |line: &'static str| {
        let s = s.clone();
        async move {
            tokio::task::spawn_blocking(move || json(&s, line))
                .await
                .unwrap()
        }
    };

    let v = run("show instance").await.ok();
    let ids: Vec<&str> = v["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instanceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["dpu0-chplo0", "dpu0-ddln0"]);
    assert_eq!(v["instances"][0]["state"], "STATE_CONNECTED");
    assert_eq!(
        run("show instance dpu0-ddln0").await.ok()["instanceId"],
        "dpu0-ddln0"
    );
    let st = run("show instance dpu0-ddln0 status").await.ok();
    assert_eq!(st["instance"]["instanceId"], "dpu0-ddln0");
    assert_eq!(
        run("show instance dpu0-ddln0 vpp info").await.ok()["health"],
        "HEALTH_OK"
    );
    assert_eq!(
        run("show instance dpu0-ddln0 bird info").await.ok()["health"],
        "HEALTH_OK"
    );

    let g = run("group test create vni 100 mtu 1500 route-target rt:65000:100")
        .await
        .ok();
    assert_eq!(g["groupId"], "test");
    assert_eq!(g["vni"], 100);
    assert_eq!(g["importRouteTargets"], json!(["65000:100"]));
    assert_eq!(g["exportRouteTargets"], json!(["65000:100"]));
    let vmac = g["vmac"].as_str().unwrap().to_string();
    let e = run("group test create vni 100").await.err();
    assert!(e.starts_with("ALREADY_EXISTS: "), "{e}");

    run("group test member add dpu0-ddln0").await.ok();
    let g = run("group test member add dpu0-chplo0").await.ok();
    assert_eq!(g["members"], json!(["dpu0-chplo0", "dpu0-ddln0"]));
    let l = run("show instance dpu0-ddln0 evpn").await.ok();
    assert_eq!(l["evpnInstances"][0]["slug"], "test");
    assert_eq!(
        run("show instance dpu0-ddln0 evpn test").await.ok()["vni"],
        100
    );
    let b = run("show instance dpu0-ddln0 bvi").await.ok();
    assert_eq!(b["bvis"][0]["interfaceName"], "bvi-test");

    assert!(run("group test bvi create").await.ok()["groupBvi"].is_object());
    run("group test bvi address add 172.16.0.32/24").await.ok();
    run("group test bvi address add fec0::32/64").await.ok();
    let g = run("group test bvi set primary dpu0-ddln0").await.ok();
    assert_eq!(g["primaryInstanceId"], "dpu0-ddln0");
    assert_eq!(
        run("show instance dpu0-ddln0 bvi test").await.ok()["role"],
        "ROLE_PRIMARY"
    );

    // The example of `docs/design.md`, as written, through a real pipe and jq.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{EVPNC} -server {s} -json show group test | jq .groupBvi"
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let bvi: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bvi["mac"], vmac.as_str());
    assert_eq!(
        bvi["addresses"],
        json!([
            {"address": "172.16.0.32", "prefixLen": 24},
            {"address": "fec0::32", "prefixLen": 64}
        ])
    );
    assert!(bvi["createdAt"].is_string(), "{bvi}");

    // Move back and forth, break-before-make.
    let g = run("group test bvi set primary dpu0-chplo0").await.ok();
    assert_eq!(g["primaryInstanceId"], "dpu0-chplo0");
    assert_eq!(
        run("show instance dpu0-ddln0 bvi test").await.ok()["role"],
        "ROLE_CANDIDATE"
    );
    let g = run("group test bvi set primary dpu0-ddln0 force")
        .await
        .ok();
    assert_eq!(g["primaryInstanceId"], "dpu0-ddln0");

    // Mutations without an answer print exactly {}.
    assert_eq!(
        run("group test bvi release dpu0-ddln0").await.ok(),
        json!({})
    );
    assert_eq!(run("group test bvi bind dpu0-ddln0").await.ok(), json!({}));

    assert_eq!(run("group test mtu 9000").await.ok()["mtu"], 9000);
    let e = run("instance dpu0-chplo0 evpn test disable").await.ok();
    assert!(e.get("enabled").is_none() || e["enabled"] == false, "{e}");
    assert_eq!(
        run("instance dpu0-chplo0 evpn test enable").await.ok()["enabled"],
        true
    );
    let g = run("group test bvi address del fec0::32/64").await.ok();
    assert_eq!(g["groupBvi"]["addresses"].as_array().unwrap().len(), 1);

    let e = run("show group nope").await.err();
    assert!(e.starts_with("NOT_FOUND: "), "{e}");

    // Deleting the primary leaves the GroupBVI unassigned.
    let g = run("group test member remove dpu0-ddln0").await.ok();
    assert!(
        g.get("primaryInstanceId").is_none() || g["primaryInstanceId"] == "",
        "{g}"
    );
    assert!(
        run("group test bvi delete")
            .await
            .ok()
            .get("groupBvi")
            .is_none()
    );
    assert_eq!(run("group test delete").await.ok(), json!({}));
    assert_eq!(run("show group").await.ok(), json!({}));
    assert_eq!(run("instance dpu0-ddln0 delete").await.ok(), json!({}));
}

/// A script piped into the shell runs line by line; with `-json` every
/// line answers with one object and the exit status is that of the last
/// failure.
#[test]
fn piped_script_runs_line_by_line() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let server = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(EVPNC)
        .args(["-server", &server, "-json"])
        .env("EVPNC_HISTORY", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn_clean()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"show version\nshow group\n\nsh ver\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["server"], server.as_str());
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("UNAVAILABLE: evpnr at "),
        "{lines:?}"
    );
    assert_eq!(lines[2], lines[0]);
}
