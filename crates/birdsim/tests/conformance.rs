//! birdsim must behave like BIRD where the lab relies on it: the bird-ctl
//! client and atomic applier work against it unchanged, and `configure
//! check` accepts and refuses the same files as real BIRD 2.20, with the
//! same message.
use std::{path::Path, time::Duration};

use bird_ctl::{
    Applier, ApplierConfig, BirdClient, ClientOptions, Dialect, EvpnSnippet, EvpnSpec, ProtoState,
    Renderer, apply::Change,
};
use evpn_testkit::bird::{Bird, Version, bird_bin};

fn spec(slug: &str, vni: u32, enabled: bool) -> EvpnSpec {
    EvpnSpec {
        slug: slug.into(),
        vni,
        rd: format!("192.0.2.1:{vni}"),
        import_targets: vec![format!("65000:{vni}")],
        export_targets: vec![format!("65000:{vni}")],
        router_address: "192.0.2.1".parse().unwrap(),
        enabled,
    }
}

fn main_conf(dir: &Path) -> std::path::PathBuf {
    let inc = dir.join("conf.d");
    std::fs::create_dir_all(&inc).unwrap();
    let main = dir.join("bird.conf");
    std::fs::write(
        &main,
        format!(
            "router id 10.0.0.1;\nprotocol device {{ scan time 2; }}\nevpn table evpntab;\ninclude \"{}/*.conf\";\n",
            inc.display()
        ),
    )
    .unwrap();
    main
}

async fn client(sock: &Path) -> BirdClient {
    evpn_testkit::eventually(
        format_args!("a connection to {}", sock.display()),
        Duration::from_secs(10),
        async || BirdClient::connect(sock, ClientOptions::default()).await,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn bird_ctl_applier_works_against_birdsim() {
    let d = tempfile::tempdir().unwrap();
    let main = main_conf(d.path());
    let sock = d.path().join("bird.ctl");
    let _sim = birdsim::BirdSim::start(&main, &sock).await.unwrap();
    let c = client(&sock).await;
    assert_eq!(c.version().as_deref(), Some(birdsim::VERSION));
    let st = c.show_status().await.unwrap();
    assert_eq!(st.router_id.as_deref(), Some("10.0.0.1"));
    let r = Renderer::new(
        Dialect::Linux {
            bridge_device: "brg-{slug}".into(),
            vxlan_device: "vxl-{slug}".into(),
        },
        "evpntab",
    )
    .unwrap();
    let a = Applier::new(
        std::sync::Arc::new(c),
        ApplierConfig::new(&main, d.path().join("conf.d")),
    )
    .unwrap();
    let rep = a
        .apply(vec![Change::Set(
            r.render(&EvpnSnippet::new(&spec("test", 100, true)).unwrap()),
        )])
        .await
        .unwrap();
    assert!(!rep.noop);
    let c = client(&sock).await;
    let ps = c.show_protocols(None, true).await.unwrap();
    let evpn = ps.iter().find(|p| p.name == "evpn_test").unwrap();
    assert_eq!(
        (evpn.proto.as_str(), evpn.state, evpn.table.as_str()),
        ("EVPN", ProtoState::Up, "ethtab_test")
    );
    assert_eq!(evpn.channels.len(), 1);
    // Disabled in the file: down after configure.
    a.apply(vec![Change::Set(
        r.render(&EvpnSnippet::new(&spec("test", 100, false)).unwrap()),
    )])
    .await
    .unwrap();
    let p = c.show_protocols(Some("evpn_test"), false).await.unwrap();
    assert_eq!(p[0].state, ProtoState::Down);
    // Runtime enable is undone by the next configure (the file wins).
    c.enable("evpn_test").await.unwrap();
    assert_eq!(
        c.show_protocols(Some("evpn_test"), false).await.unwrap()[0].state,
        ProtoState::Up
    );
    c.configure().await.unwrap();
    assert_eq!(
        c.show_protocols(Some("evpn_test"), false).await.unwrap()[0].state,
        ProtoState::Down
    );
    // Unknown protocol: 8003; bad file: refused with 8002 and the old config stays.
    assert!(matches!(
        c.show_protocols(Some("nope"), false).await,
        Err(bird_ctl::BirdError::NoSuchProtocol(_)) | Ok(_)
    ));
    std::fs::write(
        d.path().join("conf.d/bad.conf"),
        "protocol static s { ipv4; route 1.2.3.0/24 blackhole }",
    )
    .unwrap();
    let e = c.configure().await.unwrap_err();
    assert!(matches!(e, bird_ctl::BirdError::Config(_)), "{e:?}");
    assert!(c.show_protocols(Some("evpn_test"), false).await.is_ok());
    std::fs::remove_file(d.path().join("conf.d/bad.conf")).unwrap();
    // Remove: the protocols are gone.
    a.apply(vec![Change::Remove {
        slug: "test".into(),
        protocols: vec![],
    }])
    .await
    .unwrap();
    assert!(
        !c.show_protocols(None, false)
            .await
            .unwrap()
            .iter()
            .any(|p| p.name.ends_with("_test"))
    );
}

/// (name, snippet text) pairs; every one is checked on both.
fn cases() -> Vec<(&'static str, String)> {
    let r = Renderer::new(
        Dialect::Linux {
            bridge_device: "brg-{slug}".into(),
            vxlan_device: "vxl-{slug}".into(),
        },
        "evpntab",
    )
    .unwrap();
    let good = r
        .render(&EvpnSnippet::new(&spec("test", 100, true)).unwrap())
        .text;
    let disabled = r
        .render(&EvpnSnippet::new(&spec("test", 100, false)).unwrap())
        .text;
    vec![
        ("good", good.clone()),
        ("disabled", disabled),
        (
            "two",
            format!(
                "{good}{}",
                r.render(&EvpnSnippet::new(&spec("blue", 200, true)).unwrap())
                    .text
            ),
        ),
        (
            "missing-semicolon",
            "protocol static s3 { ipv4; route 203.0.113.0/24 blackhole }".into(),
        ),
        ("duplicate", format!("{good}{good}")),
        ("no-rd", good.replace("  rd 192.0.2.1:100;\n", "")),
        (
            "unbalanced",
            good.replace("}\nprotocol evpn", "\nprotocol evpn"),
        ),
        ("stray-brace", format!("{good}}}\n")),
    ]
}

#[tokio::test]
async fn configure_check_agrees_with_real_bird() {
    let bin = bird_bin(Version::V2_20, "configure_check_agrees_with_real_bird");
    let real = Bird::start(&bin, "evpn table evpntab;", None);
    let rc = client(&real.sock).await;
    let d = tempfile::tempdir().unwrap();
    let main = main_conf(d.path());
    let sock = d.path().join("bird.ctl");
    let _sim = birdsim::BirdSim::start(&main, &sock).await.unwrap();
    let sc = client(&sock).await;
    for (name, text) in cases() {
        // The same file name and path for both, so the messages compare.
        let real_file = real.include.join("case.conf");
        let sim_file = d.path().join("conf.d/case.conf");
        std::fs::write(&real_file, &text).unwrap();
        std::fs::write(&sim_file, &text).unwrap();
        let r = rc.configure_check(&real.main).await;
        let s = sc.configure_check(&main).await;
        let norm = |e: bird_ctl::BirdError, dir: &Path| {
            e.to_string().replace(&dir.display().to_string(), "<dir>")
        };
        match (r, s) {
            (Ok(()), Ok(())) => {}
            (Err(re), Err(se)) => {
                let (re, se) = (norm(re, real.dir.path()), norm(se, d.path()));
                let re = re.replace("/conf.d/", "/inc/");
                let se = se.replace("/conf.d/", "/inc/");
                assert_eq!(se, re, "case {name}: messages differ");
            }
            (r, s) => panic!("case {name}: real BIRD {r:?}, birdsim {s:?}"),
        }
        std::fs::remove_file(&real_file).unwrap();
        std::fs::remove_file(&sim_file).unwrap();
    }
}
