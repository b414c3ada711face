//! Text output against a real evpnr: aligned tables, labelled detail views
//! with absolute and relative times, colour that changes nothing but the
//! escapes, and compact `watch events` lines.
mod common;

use std::process::{Command, Stdio};

use common::*;
use evpn_testkit::child::CleanSpawn;

/// Column start of `word` in `line` (chars).
fn col(line: &str, word: &str) -> usize {
    line.find(word)
        .unwrap_or_else(|| panic!("{word:?} not in {line:?}"))
}

#[test]
fn watch_prints_compact_lines() {
    let _s = serial();
    let r = Registry::start();
    let out = evpnc(&r.addr, &["watch", "events", "snapshot", "num", "1"]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    // hh:mm:ss.mmm level type origin message
    let l = lines[0];
    assert_eq!(&l[2..3], ":", "{l}");
    assert_eq!(&l[8..9], ".", "{l}");
    assert!(l.contains(" snapshot "), "{l}");
    assert!(l.contains(" evpnr "), "{l}");
    assert!(l.contains("end-of-snapshot"), "{l}");
    assert!(
        !l.contains('\x1b'),
        "piped output has no colour by default: {l:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The guard serialises whole tests (each has its own runtime).
#[allow(clippy::await_holding_lock)]
async fn text_views_against_a_fleet() {
    let _s = serial();
    let f = Fleet::start("text_views_against_a_fleet", &["dpu0-ddln0", "dpu0-chplo0"]).await;
    let s = f.registry.addr.clone();
    let text = move |args: Vec<&'static str>| {
        let s = s.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let o = evpnc(&s, &args);
                assert_eq!(o.code, 0, "{args:?}: {o:?}");
                assert!(o.stderr.is_empty(), "{args:?}: {o:?}");
                o.stdout
            })
            .await
            .unwrap()
        }
    };
    let o = text(vec!["group", "test", "create", "vni", "100"]).await;
    assert!(
        o.starts_with("group test created (vni 100, mtu 1500, vmac "),
        "{o}"
    );
    text(vec!["group", "test", "member", "add", "dpu0-ddln0"]).await;
    text(vec!["g", "test", "mem", "a", "dpu0-chplo0"]).await;
    text(vec![
        "group",
        "test",
        "bvi",
        "create",
        "address",
        "172.16.0.32/24",
    ])
    .await;
    let o = text(vec![
        "group",
        "test",
        "bvi",
        "set",
        "primary",
        "dpu0-chplo0",
    ])
    .await;
    assert_eq!(o, "group test primary is now dpu0-chplo0\n");

    // Table: header and rows aligned.
    let o = text(vec!["show", "instance"]).await;
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines.len(), 3, "{o}");
    assert!(lines[0].starts_with("INSTANCE "), "{o}");
    let c = col(lines[0], "STATE");
    for l in &lines[1..] {
        assert_eq!(col(l, "connected"), c, "{o}");
        assert!(l.ends_with(" ago") || l.ends_with("just now"), "{o}");
    }
    // Colour: blue labels, and nothing else changes.
    let coloured = text(vec!["-color", "show", "instance"]).await;
    assert!(coloured.contains("\x1b[34mINSTANCE"), "{coloured:?}");
    // The heartbeat age moves between the two calls.
    assert_eq!(no_ages(&strip_ansi(&coloured)), no_ages(&o));

    let o = text(vec!["show", "group"]).await;
    assert!(o.lines().nth(1).unwrap().starts_with("test "), "{o}");
    assert!(o.contains("dpu0-chplo0,dpu0-ddln0"), "{o}");
    assert!(o.contains("172.16.0.32/24"), "{o}");

    // Detail view: field order, aligned labels, absolute + relative time.
    let o = text(vec!["show", "group", "test"]).await;
    let first = o.lines().next().unwrap();
    assert!(first.starts_with("group id "), "{o}");
    let created = o
        .lines()
        .find(|l| l.starts_with("created at"))
        .unwrap_or_else(|| panic!("{o}"));
    assert!(created.contains(" UTC ("), "{created}");
    assert!(
        created.ends_with(" ago)") || created.ends_with("just now)"),
        "{created}"
    );
    let vcol = col(first, "test");
    let vni = o.lines().find(|l| l.starts_with("vni ")).unwrap();
    assert_eq!(col(vni, "100"), vcol, "{o}");

    let o = text(vec!["show", "instance", "dpu0-chplo0", "bvi"]).await;
    let row = o.lines().nth(1).unwrap();
    assert!(row.contains("bvi-test") && row.contains("primary"), "{o}");

    // watch events: a crud event from the next change, one line each way.
    let metrics = f.registry.daemon.metrics_addr().unwrap();
    let subscribers = || {
        let (_, m) = evpn_testkit::http_get(&metrics, "/metrics").unwrap();
        evpn_testkit::metric_value(&m, "evpnr_event_subscribers", &[]).unwrap_or(0.0)
    };
    let before = subscribers();
    let w = Command::new(EVPNC)
        .args([
            "-server",
            &f.registry.addr,
            "watch",
            "events",
            "type",
            "crud",
            "num",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn_clean()
        .unwrap();
    let wj = Command::new(EVPNC)
        .args([
            "-server",
            &f.registry.addr,
            "-json",
            "watch",
            "events",
            "type",
            "crud",
            "num",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn_clean()
        .unwrap();
    // The change comes after both watchers have subscribed.
    evpn_testkit::eventually("both watchers subscribed to evpnr", T, async || {
        let n = subscribers();
        (n >= before + 2.0)
            .then_some(())
            .ok_or(format!("{n} subscribers, {before} before"))
    })
    .await
    .unwrap();
    text(vec!["group", "test", "mtu", "9000"]).await;
    let out = tokio::task::spawn_blocking(move || {
        (
            w.wait_with_output().unwrap(),
            wj.wait_with_output().unwrap(),
        )
    })
    .await
    .unwrap();
    assert!(out.0.status.success());
    let line = String::from_utf8(out.0.stdout).unwrap();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.contains(" crud "), "{line}");
    assert!(out.1.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.1.stdout).unwrap();
    assert_eq!(j["type"], "crud", "{j}");
}

/// `alive (0.3s)` → `alive (…s)`: heartbeat ages differ from one call to
/// the next.
fn no_ages(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(" (") {
        out.push_str(&rest[..i + 2]);
        rest = &rest[i + 2..];
        if let Some(j) = rest.find("s)")
            && rest[..j].bytes().all(|b| b.is_ascii_digit() || b == b'.')
        {
            out.push('…');
            rest = &rest[j..];
        }
    }
    out.push_str(rest);
    out
}
