//! The `vppsim` binary as a separate process: a Python client speaking only
//! the documented wire protocol handshakes and creates a loopback; the
//! control socket and journal file work across processes.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use evpn_testkit::child::CleanSpawn;
use serde_json::{Value, json};

/// A spawned `vppsim`, killed on drop.
struct Proc {
    child: Child,
    dir: tempfile::TempDir,
}

impl Proc {
    fn spawn(extra: &[&str]) -> Proc {
        let dir = tempfile::tempdir().expect("dir");
        let sock = dir.path().join("api.sock");
        let ctl = dir.path().join("ctl.sock");
        let journal = dir.path().join("journal.jsonl");
        let child = Command::new(env!("CARGO_BIN_EXE_vppsim"))
            .arg("--socket")
            .arg(&sock)
            .arg("--control")
            .arg(&ctl)
            .arg("--journal")
            .arg(&journal)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn_clean()
            .expect("spawn vppsim");
        let p = Proc { child, dir };
        evpn_testkit::eventually_blocking(
            "vppsim's API and control sockets",
            Duration::from_secs(10),
            || p.sock().exists() && p.ctl().exists(),
        )
        .unwrap();
        p
    }
    fn sock(&self) -> PathBuf {
        self.dir.path().join("api.sock")
    }
    fn ctl(&self) -> PathBuf {
        self.dir.path().join("ctl.sock")
    }
    fn journal(&self) -> PathBuf {
        self.dir.path().join("journal.jsonl")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn control(path: &Path, req: Value) -> Value {
    let mut s = UnixStream::connect(path).expect("control");
    writeln!(s, "{req}").expect("write");
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).expect("read");
    serde_json::from_str(&line).expect("json")
}

fn python(sock: &Path, instance: u32) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py_client.py");
    Command::new("python3")
        .arg(script)
        .arg(sock)
        .arg(instance.to_string())
        .output()
        .expect("python3 runs")
}

#[test]
fn python_client_handshakes_and_creates_a_loopback() {
    let p = Proc::spawn(&[]);
    let out = python(&p.sock(), 4242);
    assert!(
        out.status.success(),
        "python client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    // The control socket of the separate process sees it.
    let st = control(&p.ctl(), json!({"cmd":"state"}));
    assert_eq!(st["state"]["interfaces"][1]["name"], "loop4242");
    let j = control(&p.ctl(), json!({"cmd":"journal"}));
    assert_eq!(j["entries"][0]["msg"], "create_loopback_instance");
    assert_eq!(j["entries"][0]["fields"]["mac"], "02:fe:00:00:10:92");
    // Journal file, one JSON line per entry.
    let text = std::fs::read_to_string(p.journal()).expect("journal");
    assert_eq!(text.lines().count(), 1);
    // Same instance again: VPP's -31 makes the script fail.
    let again = python(&p.sock(), 4242);
    assert!(!again.status.success());
}

#[test]
fn binary_faults_from_flags() {
    // error on the first create: the python client sees retval -1.
    let p = Proc::spawn(&["--error-on-nth", "create_loopback_instance:1:-1"]);
    let out = python(&p.sock(), 1);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("-1"));
    let out = python(&p.sock(), 1);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = control(&p.ctl(), json!({"cmd":"faults"}));
    assert_eq!(f["ok"], true);
}

#[test]
fn binary_without_linux_cp() {
    let p = Proc::spawn(&["--without-plugin", "linux_cp"]);
    // Handshake with the Rust client and check the table.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let c = vpp_api::Client::connect(vpp_api::ClientConfig::new(p.sock()))
            .await
            .expect("connect");
        let t = c.message_table().expect("table");
        assert!(t.get("lcp_itf_pair_add_del_v3_40482b80").is_none());
        assert!(t.get("vxlan_add_del_tunnel_v3_0072b037").is_some());
    });
}

#[test]
fn help_is_complete() {
    let out = Command::new(env!("CARGO_BIN_EXE_vppsim"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(out.status.success());
    let h = String::from_utf8_lossy(&out.stdout);
    for w in [
        "--socket",
        "--without-plugin",
        "--control",
        "--journal",
        "error_on_nth",
        "JOURNAL",
    ] {
        assert!(h.contains(w), "--help lacks {w}:\n{h}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_vppsim"))
        .args(["--socket", "/nonexistent-dir/x.sock"])
        .output()
        .expect("run");
    assert!(!bad.status.success());
}
