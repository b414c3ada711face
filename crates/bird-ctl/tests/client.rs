//! Control-socket client against real BIRD (2.0.12 and 2.20).

mod common;

use std::time::Duration;

use bird_ctl::{
    BirdClient, BirdError, ClientOptions, ConfigureOutcome, DaemonState, ProtoActionOutcome,
    ProtoState,
};
use common::{Bird, BirdExt, Version, bird_bin, eventually};

const STATIC_P1: &str = "protocol static p1 { ipv4; route 192.0.2.0/24 blackhole; }\n";

async fn welcome_and_status(v: Version, want: &str) {
    let bin = bird_bin(v, "welcome_and_status");
    let bird = Bird::start(&bin, "", None);
    let c = bird.client().await;
    assert!(c.version().unwrap().starts_with(want), "{:?}", c.version());
    let st = c.show_status().await.unwrap();
    assert!(st.version.starts_with(want));
    assert_eq!(st.router_id.as_deref(), Some("10.0.0.1"));
    assert_eq!(st.state, DaemonState::Running);
    assert!(st.last_reboot.is_some());
}

#[tokio::test]
async fn welcome_and_status_2_0() {
    welcome_and_status(Version::V2_0, "2.0.").await;
}

#[tokio::test]
async fn welcome_and_status_2_20() {
    welcome_and_status(Version::V2_20, "2.20").await;
}

#[tokio::test]
async fn protocol_state_parsing() {
    let bin = bird_bin(Version::V2_0, "protocol_state_parsing");
    let bird = Bird::start(&bin, "", None);
    bird.write_snippet("p1.conf", STATIC_P1);
    let c = bird.client().await;
    assert_eq!(c.configure().await.unwrap(), ConfigureOutcome::Done);
    let ps = c.show_protocols(Some("p1"), true).await.unwrap();
    assert_eq!(ps.len(), 1);
    let p = &ps[0];
    assert_eq!(p.name, "p1");
    assert_eq!(p.proto, "Static");
    assert_eq!(p.table, "master4");
    assert_eq!(p.state, ProtoState::Up);
    assert!(!p.since.is_empty());
    assert_eq!(p.channels.len(), 1);
    assert_eq!(p.channels[0].name, "ipv4");
    assert_eq!(p.channels[0].state.as_deref(), Some("UP"));
    assert_eq!(p.channels[0].table.as_deref(), Some("master4"));
    assert!(
        p.channels[0]
            .routes
            .as_deref()
            .unwrap()
            .starts_with("1 imported")
    );

    let all = c.show_protocols(None, false).await.unwrap();
    let names: Vec<_> = all.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["device1", "p1"]);
    // Quoted unknown name: 8003, mapped to "no such protocol" (empty list).
    assert!(
        c.show_protocols(Some("nosuch"), true)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        c.command("show protocols \"nosuch\"").await,
        Err(BirdError::NoSuchProtocol(_))
    ));
    // Bare unknown name: 9001 parse error.
    assert!(matches!(
        c.command("show protocols nosuch").await,
        Err(BirdError::Parse(_))
    ));
    // Names that could inject are refused before sending.
    assert!(matches!(
        c.show_protocols(Some("p1\"; configure"), false).await,
        Err(BirdError::InvalidArgument(_))
    ));
    // The connection is still usable after errors.
    assert_eq!(c.show_status().await.unwrap().state, DaemonState::Running);
}

#[tokio::test]
async fn enable_disable_restart() {
    let bin = bird_bin(Version::V2_0, "enable_disable_restart");
    let bird = Bird::start(&bin, "", None);
    bird.write_snippet("p1.conf", STATIC_P1);
    let c = bird.client().await;
    c.configure().await.unwrap();
    assert_eq!(c.disable("p1").await.unwrap(), ProtoActionOutcome::Done);
    assert_eq!(
        c.disable("p1").await.unwrap(),
        ProtoActionOutcome::AlreadyInState
    );
    // `down`, possibly shown as `flush` for a moment while routes are flushed.
    let p = eventually("p1 down", Duration::from_secs(10), async || {
        let p = c.show_protocols(Some("p1"), true).await.unwrap().remove(0);
        assert!(
            matches!(p.state, ProtoState::Down | ProtoState::Flush),
            "{p:?}"
        );
        (p.state == ProtoState::Down).then_some(p)
    })
    .await
    .unwrap();
    assert_eq!(p.channels[0].state.as_deref(), Some("DOWN"), "{p:?}");
    // Message from `disable "<p>" "<msg>"`.
    c.command("enable \"p1\"").await.unwrap();
    c.command("disable \"p1\" \"maintenance by test\"")
        .await
        .unwrap();
    let p = &c.show_protocols(Some("p1"), true).await.unwrap()[0];
    assert_eq!(p.message.as_deref(), Some("maintenance by test"));
    assert_eq!(c.enable("p1").await.unwrap(), ProtoActionOutcome::Done);
    assert_eq!(
        c.enable("p1").await.unwrap(),
        ProtoActionOutcome::AlreadyInState
    );
    assert_eq!(c.restart("p1").await.unwrap(), ProtoActionOutcome::Done);
    eventually("p1 up after restart", Duration::from_secs(10), async || {
        let p = c.show_protocols(Some("p1"), false).await.ok()?;
        (p.first()?.state == ProtoState::Up).then_some(())
    })
    .await
    .unwrap();
    assert!(matches!(
        c.enable("nosuch").await,
        Err(BirdError::NoSuchProtocol(_))
    ));
    // Runtime disable does not survive configure (`docs/bird-notes.md` §3.4).
    c.disable("p1").await.unwrap();
    c.configure().await.unwrap();
    let p = &c.show_protocols(Some("p1"), false).await.unwrap()[0];
    assert_eq!(p.state, ProtoState::Up);
}

#[tokio::test]
async fn async_lines_are_collected() {
    let bin = bird_bin(Version::V2_0, "async_lines_are_collected");
    let bird = Bird::start(&bin, "", None);
    bird.write_snippet("p1.conf", STATIC_P1);
    let c = bird.client().await;
    c.configure().await.unwrap();
    c.command("echo all").await.unwrap();
    c.disable("p1").await.unwrap();
    c.enable("p1").await.unwrap();
    let mut seen = Vec::new();
    eventually(
        "async log lines about p1",
        Duration::from_secs(10),
        async || {
            let r = c.command("show status").await.unwrap();
            assert_eq!(r.code, 13, "the reply itself is intact");
            seen.extend(r.async_lines);
            if seen.iter().any(|l| l.contains("p1")) {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            }
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn configure_check_and_config_errors() {
    let bin = bird_bin(Version::V2_0, "configure_check_and_config_errors");
    let bird = Bird::start(&bin, "", None);
    let c = bird.client().await;
    c.configure_check(&bird.main).await.unwrap();
    let missing = bird.dir.path().join("nonexistent.conf");
    match c.configure_check(&missing).await {
        Err(BirdError::Config(e)) => {
            assert_eq!(e.file, missing.display().to_string());
            assert_eq!(e.line, None);
            assert!(e.message.contains("No such file"), "{e}");
        }
        o => panic!("{o:?}"),
    }
    bird.write_snippet(
        "s3.conf",
        "protocol static s3 { ipv4; route 203.0.113.0/24 blackhole }\n",
    );
    match c.configure().await {
        Err(BirdError::Config(e)) => {
            assert!(e.file.ends_with("conf.d/s3.conf"), "{e}");
            assert_eq!(e.line, Some(1));
            assert!(e.column.is_some());
            assert!(e.message.contains("syntax error"), "{e}");
        }
        o => panic!("{o:?}"),
    }
    let st = c.configure_status().await.unwrap();
    assert!(st.idle);
}

#[tokio::test]
async fn reconnects_after_bird_restart() {
    let bin = bird_bin(Version::V2_0, "reconnects_after_bird_restart");
    let mut bird = Bird::start(&bin, "", None);
    let c = bird.client().await;
    c.show_status().await.unwrap();
    bird.restart_process();
    // Once the new BIRD listens, the first command on the kept (dead)
    // connection does not fail: its request never reached a BIRD, so it is
    // sent again on a fresh connection. (Before, it failed with a broken pipe
    // and an evidence look reported "no evidence" for a BIRD that was up.)
    eventually(
        "the restarted BIRD to listen",
        Duration::from_secs(10),
        async || {
            BirdClient::connect(&bird.sock, ClientOptions::default())
                .await
                .map(drop)
        },
    )
    .await
    .unwrap();
    let st = c
        .show_status()
        .await
        .expect("the kept connection is replaced");
    assert_eq!(st.state, DaemonState::Running);
}

#[tokio::test]
async fn command_timeout_drops_connection() {
    // A socket that greets like BIRD and then never answers.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.ctl");
    let l = tokio::net::UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut conns = Vec::new();
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(b"0001 BIRD 2.0.12 ready.\n").await.unwrap();
            conns.push(s);
        }
    });
    let c = BirdClient::connect(
        &path,
        ClientOptions {
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_millis(100),
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        c.show_status().await,
        Err(BirdError::Timeout { .. })
    ));
    // Reconnects (and times out again, but after a fresh welcome).
    assert!(matches!(
        c.show_status().await,
        Err(BirdError::Timeout { .. })
    ));
    server.abort();
}

#[tokio::test]
async fn configure_in_progress_is_polled_to_completion() {
    let bin = bird_bin(
        Version::V2_0,
        "configure_in_progress_is_polled_to_completion",
    );
    let bird = Bird::start(&bin, "", None);
    bird.write_snippet("p1.conf", STATIC_P1);
    let c = bird.client().await;
    c.configure().await.unwrap();
    // Disabling through the file stops the protocol: 0004 (`docs/bird-notes.md` §3.4), or 0003 if it was
    // already done by the time the reply was written.
    bird.write_snippet(
        "p1.conf",
        "protocol static p1 { disabled; ipv4; route 192.0.2.0/24 blackhole; }\n",
    );
    let o = c.configure().await.unwrap();
    assert!(
        matches!(o, ConfigureOutcome::InProgress | ConfigureOutcome::Done),
        "{o:?}"
    );
    c.wait_configured(Duration::from_millis(5), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(c.configure_status().await.unwrap().idle);
    let p = &c.show_protocols(Some("p1"), false).await.unwrap()[0];
    assert!(
        matches!(p.state, ProtoState::Down | ProtoState::Flush),
        "{p:?}"
    );
}

#[tokio::test]
async fn concurrent_commands_are_serialised_on_one_connection() {
    let bin = bird_bin(
        Version::V2_0,
        "concurrent_commands_are_serialised_on_one_connection",
    );
    let bird = Bird::start(&bin, "", None);
    bird.write_snippet("p1.conf", STATIC_P1);
    let c = std::sync::Arc::new(bird.client().await);
    c.configure().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let s = c.show_status().await.unwrap();
                assert_eq!(s.router_id.as_deref(), Some("10.0.0.1"));
            } else {
                let p = c.show_protocols(Some("p1"), true).await.unwrap();
                assert_eq!(p.len(), 1);
                assert_eq!(p[0].name, "p1");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
