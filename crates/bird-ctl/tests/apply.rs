//! Atomic apply against real BIRD: 2.20 for the `linux` dialect (in the host namespace the
//! devices do not exist, so enabled protocols sit in `start`), 2.0.12 for generic snippets.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bird_ctl::{
    Applier, ApplierConfig, ApplyError, BirdClient, Change, Dialect, EvpnSnippet, EvpnSpec,
    ProtoState, RenderedSnippet, Renderer,
};
use common::{Bird, BirdExt, Version, bird_bin};

fn spec(slug: &str, vni: u32, enabled: bool) -> EvpnSpec {
    EvpnSpec {
        slug: slug.into(),
        vni,
        rd: format!("10.0.0.1:{vni}"),
        import_targets: vec![format!("65000:{vni}")],
        export_targets: vec![format!("65000:{vni}")],
        router_address: "10.0.0.1".parse().unwrap(),
        enabled,
    }
}

fn linux() -> Renderer {
    Renderer::new(Dialect::linux_default(), "evpntab").unwrap()
}

fn set(r: &Renderer, slug: &str, vni: u32, enabled: bool) -> Change {
    Change::Set(r.render(&EvpnSnippet::new(&spec(slug, vni, enabled)).unwrap()))
}

async fn applier(bird: &Bird) -> Applier<Arc<BirdClient>> {
    let c = Arc::new(bird.client().await);
    Applier::new(c, ApplierConfig::new(&bird.main, &bird.include)).unwrap()
}

fn static_snippet(slug: &str, proto: &str, extra_protocols: &[&str]) -> RenderedSnippet {
    let mut protocols = vec![proto.to_string()];
    protocols.extend(extra_protocols.iter().map(|s| s.to_string()));
    RenderedSnippet {
        slug: slug.into(),
        file_name: format!("evpn-{slug}.conf"),
        text: format!("protocol static {proto} {{ ipv4; route 192.0.2.0/24 blackhole; }}\n"),
        protocols,
        enabled: true,
    }
}

#[tokio::test]
async fn good_and_bad_snippets_2_20() {
    let bin = bird_bin(Version::V2_20, "good_and_bad_snippets_2_20");
    let bird = Bird::start(&bin, "evpn table evpntab;", None);
    let a = applier(&bird).await;
    let r = linux();
    let rep = a
        .apply(vec![set(&r, "alpha", 100, true), set(&r, "b-2", 200, true)])
        .await
        .unwrap();
    assert_eq!(rep.written, vec!["evpn-alpha.conf", "evpn-b-2.conf"]);
    assert_eq!(rep.protocols.len(), 4);
    for p in &rep.protocols {
        assert_eq!(
            p.state,
            ProtoState::Start,
            "no devices in the host ns: {p:?}"
        );
    }
    assert_eq!(
        a.live_files().unwrap(),
        vec!["evpn-alpha.conf", "evpn-b-2.conf"]
    );
    let before = a.control().show_protocols(None, false).await.unwrap();

    // A new snippet that BIRD refuses: nothing changes.
    let bad = RenderedSnippet {
        slug: "bad".into(),
        file_name: "evpn-bad.conf".into(),
        text: "protocol evpn evpn_bad {\n  eth { table ethtab_alpha; };\n  evpn { table evpntab; };\n}\n"
            .into(),
        protocols: vec!["evpn_bad".into()],
        enabled: true,
    };
    match a.apply(vec![Change::Set(bad)]).await {
        Err(ApplyError::Rejected(e)) => {
            assert_eq!(
                e.file,
                bird.include.join("evpn-bad.conf").display().to_string()
            );
            assert!(e.line.is_some(), "{e}");
            assert!(!e.message.is_empty());
        }
        o => panic!("expected Rejected, got {o:?}"),
    }
    assert_eq!(
        a.live_files().unwrap(),
        vec!["evpn-alpha.conf", "evpn-b-2.conf"]
    );
    assert!(!bird.include.join("evpn-bad.conf").exists());
    // A broken replacement of an existing snippet: the old file stays.
    let old = std::fs::read_to_string(bird.include.join("evpn-alpha.conf")).unwrap();
    let mut broken = r.render(&EvpnSnippet::new(&spec("alpha", 100, true)).unwrap());
    broken.text = broken.text.replace("rd 10.0.0.1:100;", "");
    match a.apply(vec![Change::Set(broken)]).await {
        Err(ApplyError::Rejected(e)) => {
            assert!(e.file.ends_with("conf.d/evpn-alpha.conf"), "{e}");
            assert!(e.message.contains("Route distinguisher"), "{e}");
        }
        o => panic!("expected Rejected, got {o:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(bird.include.join("evpn-alpha.conf")).unwrap(),
        old
    );
    // The old config keeps running: same protocols, same Since.
    let after = a.control().show_protocols(None, false).await.unwrap();
    assert_eq!(before, after);
    // No staging leftovers that the include glob could see.
    let leftovers: Vec<_> = std::fs::read_dir(&bird.include)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("evpn-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // BIRD would start with the live tree.
    let out = std::process::Command::new(&bin)
        .args(["-p", "-c"])
        .arg(&bird.main)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn disabled_flag_is_rendered_and_persistent_2_20() {
    let bin = bird_bin(
        Version::V2_20,
        "disabled_flag_is_rendered_and_persistent_2_20",
    );
    let bird = Bird::start(&bin, "evpn table evpntab;", None);
    let a = applier(&bird).await;
    let r = linux();
    let rep = a.apply(vec![set(&r, "d1", 10, false)]).await.unwrap();
    assert!(rep.protocols.iter().all(|p| p.state == ProtoState::Down));
    // A runtime enable is reverted by the next configure of an unrelated change.
    a.control().enable("evpn_d1").await.unwrap();
    a.apply(vec![set(&r, "d2", 20, true)]).await.unwrap();
    let p = a
        .control()
        .show_protocols(Some("evpn_d1"), false)
        .await
        .unwrap();
    assert_eq!(p[0].state, ProtoState::Down);
    // Enabling in the file is persistent.
    let rep = a.apply(vec![set(&r, "d1", 10, true)]).await.unwrap();
    assert!(
        rep.protocols.iter().all(|p| p.state != ProtoState::Down),
        "{rep:?}"
    );
    // Same content again: nothing to do, BIRD is not contacted.
    let rep = a.apply(vec![set(&r, "d1", 10, true)]).await.unwrap();
    assert!(rep.noop);
    // Remove.
    let rep = a
        .apply(vec![Change::Remove {
            slug: "d1".into(),
            protocols: vec!["evpn_d1".into(), "bridge_d1".into()],
        }])
        .await
        .unwrap();
    assert_eq!(rep.removed, vec!["evpn-d1.conf"]);
    assert!(
        a.control()
            .show_protocols(Some("evpn_d1"), false)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(a.live_files().unwrap(), vec!["evpn-d2.conf"]);
}

#[tokio::test]
async fn verify_failure_rolls_back_2_0() {
    let bin = bird_bin(Version::V2_0, "verify_failure_rolls_back_2_0");
    let bird = Bird::start(&bin, "", None);
    let a = applier(&bird).await;
    a.apply(vec![Change::Set(static_snippet("keep", "pkeep", &[]))])
        .await
        .unwrap();
    let old = std::fs::read_to_string(bird.include.join("evpn-keep.conf")).unwrap();
    // Parses fine, but a protocol the snippet claims is missing after configure.
    let mut replaced = static_snippet("keep", "pkeep2", &["pmissing"]);
    replaced.text.push_str("# changed\n");
    let err = a
        .apply(vec![
            Change::Set(static_snippet("new", "pnew", &[])),
            Change::Set(replaced),
        ])
        .await
        .unwrap_err();
    match &err {
        ApplyError::Verify { protocol, .. } => assert_eq!(protocol, "pmissing"),
        o => panic!("{o:?}"),
    }
    // Files restored, BIRD reconfigured back.
    assert_eq!(a.live_files().unwrap(), vec!["evpn-keep.conf"]);
    assert_eq!(
        std::fs::read_to_string(bird.include.join("evpn-keep.conf")).unwrap(),
        old
    );
    let names: Vec<String> = a
        .control()
        .show_protocols(None, false)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, vec!["device1", "pkeep"]);
}

#[tokio::test]
async fn applies_are_serialised_2_0() {
    let bin = bird_bin(Version::V2_0, "applies_are_serialised_2_0");
    let bird = Bird::start(&bin, "", None);
    let a = Arc::new(applier(&bird).await);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            a.apply(vec![Change::Set(static_snippet(
                &format!("s{i}"),
                &format!("ps{i}"),
                &[],
            ))])
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(a.live_files().unwrap().len(), 12);
    let ps = a.control().show_protocols(None, false).await.unwrap();
    assert_eq!(ps.len(), 13);
    assert!(ps.iter().all(|p| p.state == ProtoState::Up));
}

#[tokio::test]
async fn setup_requires_include_of_live_dir() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("bird.conf");
    std::fs::write(
        &main,
        "router id 10.0.0.1;\ninclude \"/elsewhere/*.conf\";\n",
    )
    .unwrap();
    let c = BirdClient::lazy(dir.path().join("nosock"), Default::default());
    let e = Applier::new(c, ApplierConfig::new(&main, dir.path().join("conf.d"))).unwrap_err();
    assert!(matches!(e, ApplyError::Setup(_)), "{e:?}");
}

#[tokio::test]
async fn configure_timeout_setting_is_used() {
    // Sanity: the default configure timeout is generous enough for large trees.
    let cfg = ApplierConfig::new("/a/bird.conf", "/a/conf.d");
    assert!(cfg.configure_timeout >= Duration::from_secs(10));
}

#[tokio::test]
async fn vpp_dialect_on_stock_bird_is_rejected_and_leaves_nothing_2_20() {
    let bin = bird_bin(Version::V2_20, "vpp_dialect_on_stock_bird_is_rejected");
    let bird = Bird::start(&bin, "evpn table evpntab;", None);
    let a = applier(&bird).await;
    let vpp = Renderer::new(Dialect::vpp_default(), "evpntab").unwrap();
    let snip = EvpnSnippet::new(&spec("v1", 500, true)).unwrap();
    match a.apply(vec![Change::Set(vpp.render(&snip))]).await {
        Err(ApplyError::Rejected(e)) => {
            // Stock BIRD has no `vppevpn` protocol.
            assert!(e.file.ends_with("conf.d/evpn-v1.conf"), "{e}");
        }
        o => panic!("expected Rejected, got {o:?}"),
    }
    assert!(a.live_files().unwrap().is_empty());
    assert!(
        a.control()
            .show_protocols(Some("evpn_v1"), false)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn bird_unreachable_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("bird.conf");
    let inc = dir.path().join("conf.d");
    std::fs::write(&main, format!("include \"{}/*.conf\";\n", inc.display())).unwrap();
    let c = BirdClient::lazy(dir.path().join("no.ctl"), Default::default());
    let a = Applier::new(c, ApplierConfig::new(&main, &inc)).unwrap();
    match a.apply(vec![set(&linux(), "x", 1, true)]).await {
        Err(ApplyError::Bird { error, rolled_back }) => {
            assert!(error.is_connection_error(), "{error:?}");
            assert!(!rolled_back);
        }
        o => panic!("{o:?}"),
    }
    assert!(a.live_files().unwrap().is_empty());
}

#[tokio::test]
async fn reconfigure_makes_bird_run_the_live_tree_2_0() {
    let bin = bird_bin(
        Version::V2_0,
        "reconfigure_makes_bird_run_the_live_tree_2_0",
    );
    let bird = Bird::start(&bin, "", None);
    let a = applier(&bird).await;
    // A file that is on disk but not running (e.g. after a failed rollback).
    bird.write_snippet("evpn-r.conf", &static_snippet("r", "pr", &[]).text);
    let rep = a
        .apply(vec![Change::Set(static_snippet("r", "pr", &[]))])
        .await
        .unwrap();
    assert!(rep.noop, "identical files: no-op");
    assert!(
        a.control()
            .show_protocols(Some("pr"), false)
            .await
            .unwrap()
            .is_empty()
    );
    a.reconfigure().await.unwrap();
    assert_eq!(
        a.control().show_protocols(Some("pr"), false).await.unwrap()[0].state,
        ProtoState::Up
    );
    // A broken live tree is reported, and BIRD keeps running the old config.
    bird.write_snippet("evpn-z.conf", "protocol static {");
    assert!(matches!(
        a.reconfigure().await,
        Err(ApplyError::Rejected(_))
    ));
    assert_eq!(
        a.control()
            .show_protocols(Some("pr"), false)
            .await
            .unwrap()
            .len(),
        1
    );
}
