//! The interactive shell driven through a pseudo-terminal against a real
//! evpnr: TAB completion, `?` help that keeps the typed line, prefix
//! abbreviation, history, `watch events` stopped by a key press, and
//! leaving with quit or Ctrl-D.
mod common;

use common::*;
use evpn_api::v1;

#[test]
fn tab_help_abbreviation_watch_history_quit() {
    let _s = serial();
    let r = Registry::start();
    let mut sh = Pty::spawn(&["-server", &r.addr]);
    sh.expect(&format!("evpnc {} (commit ", env!("CARGO_PKG_VERSION")));
    sh.expect("evpn> ");

    // TAB completes a fixed word (and adds the space).
    sh.send("sh\t");
    sh.expect("show ");
    // `?` lists what may follow "show ver" and keeps the line.
    sh.send("ver?");
    let help = sh.expect("Show the client version");
    assert!(help.contains("version"), "{help}");
    assert!(!help.contains("instance"), "{help}");
    sh.expect("evpn> show ver");
    // Enter runs the abbreviated command.
    sh.send("\r");
    sh.expect("commit");
    sh.expect(&r.addr);
    sh.expect("evpn> ");

    // `?` on an empty line lists the top-level words.
    sh.send("?");
    let top = sh.expect("Leave the shell");
    for w in ["show", "group", "instance", "watch", "quit"] {
        assert!(top.contains(w), "{w}: {top}");
    }
    sh.expect("evpn> ");

    // `?` after a complete command offers <cr>.
    sh.send("show instance ?");
    sh.expect("<instance>");
    sh.expect("<cr>");
    sh.expect("evpn> show instance ");
    sh.send("\x15"); // Ctrl-U: clear the line

    // Ambiguity is reported with the candidates.
    sh.send("group test m\r");
    sh.expect("ambiguous \"m\": could be member, mtu");
    sh.expect("evpn> ");

    // Client-side validation names the field.
    sh.send("group test mtu 12\r");
    sh.expect("invalid mtu: 12 is out of range");
    sh.expect("evpn> ");

    // watch events runs until a key press.
    sh.send("watch events snapshot\r");
    sh.expect("press any key or Ctrl-C to stop");
    sh.expect("end-of-snapshot");
    sh.send("x");
    sh.expect("evpn> ");

    sh.send("quit\r");
    assert_eq!(sh.wait(), Some(0));
    let hist = std::fs::read_to_string(sh.history.path().join("history")).unwrap();
    assert!(hist.contains("show ver"), "{hist}");
    assert!(hist.contains("watch events snapshot"), "{hist}");
}

#[test]
fn ctrl_d_and_exit_leave_the_shell() {
    let _s = serial();
    let mut sh = Pty::spawn(&["-server", "127.0.0.1:1", "-color=false"]);
    sh.expect("evpn> ");
    sh.send("\x04");
    assert_eq!(sh.wait(), Some(0));
    let mut sh = Pty::spawn(&["-server", "127.0.0.1:1"]);
    sh.expect("evpn> ");
    // An unreachable evpnr is an error, not the end of the shell.
    sh.send("show group\r");
    sh.expect("error: UNAVAILABLE");
    sh.expect("evpn> ");
    sh.send("ex\r");
    assert_eq!(sh.wait(), Some(0));
}

#[test]
fn ctrl_c_stops_watch_and_keeps_the_shell() {
    let _s = serial();
    let r = Registry::start();
    // A real controlling terminal: Ctrl-C is SIGINT while watching (cbreak
    // keeps signals), and a key (not a signal) at the prompt (raw mode).
    let mut sh = Pty::spawn_session(&["-server", &r.addr]);
    sh.expect("evpn> ");
    sh.send("watch events snapshot\r");
    sh.expect("end-of-snapshot");
    sh.send("\x03");
    sh.expect("evpn> ");
    sh.send("half a line\x03");
    sh.expect("evpn> ");
    sh.send("show version\r");
    sh.expect("commit");
    sh.send("quit\r");
    assert_eq!(sh.wait(), Some(0));
}

/// TAB and `?` offer live names from ListInstances, ListGroups and the
/// group's members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The guard serialises whole tests (each has its own runtime).
#[allow(clippy::await_holding_lock)]
async fn tab_completes_live_names() {
    let _s = serial();
    let r = Registry::start();
    let mut c = r.client().await;
    for id in ["dpu0-ddln0", "dpu0-chplo0"] {
        // Registered with an address nobody answers on: listed, unreachable.
        c.register_instance(v1::RegisterInstanceRequest {
            instance_id: id.into(),
            grpc_address: "127.0.0.1:1".into(),
            version: "test".into(),
            ready: false,
            ..Default::default()
        })
        .await
        .unwrap();
    }
    c.create_group(v1::CreateGroupRequest {
        group_id: "test".into(),
        vni: 100,
        ..Default::default()
    })
    .await
    .unwrap();
    let addr = r.addr.clone();
    tokio::task::spawn_blocking(move || {
        let mut sh = Pty::spawn(&["-server", &addr]);
        sh.expect("evpn> ");
        sh.send("show group t\t");
        sh.expect("show group test ");
        sh.send("\x15");
        sh.send("sh in dpu0-d\t");
        sh.expect("dpu0-ddln0 ");
        sh.send("\x15");
        // Two candidates: the common prefix, then the list on a second TAB.
        sh.send("group test member add dpu\t");
        sh.expect("dpu0-");
        sh.send("\t");
        sh.expect("dpu0-chplo0");
        sh.send("\x15");
        sh.send("show group ?");
        sh.expect("<group>");
        let h = sh.expect("evpn> show group ");
        assert!(h.contains("test"), "{h}");
        sh.send("\x15");
        sh.send("quit\r");
        assert_eq!(sh.wait(), Some(0));
    })
    .await
    .unwrap();
}

/// Issue 13 item 13: the interactive shell asks before a command that takes
/// a gateway down and names it; `n` changes nothing, `y` goes ahead (a
/// confirmed disable is sent with force). One-shot commands run as typed:
/// evpnr refuses disabling the bound primary's eVPN without `force`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn destructive_commands_ask_naming_the_gateway_one_shot_runs_as_typed() {
    let _s = serial();
    let (a, b) = ("dpu0-ddln0", "dpu0-chplo0");
    let f = Fleet::start(
        "destructive_commands_ask_naming_the_gateway_one_shot_runs_as_typed",
        &[a, b],
    )
    .await;
    let mut c = f.registry.client().await;
    c.create_group(v1::CreateGroupRequest {
        group_id: "test".into(),
        vni: 100,
        ..Default::default()
    })
    .await
    .unwrap();
    for id in [a, b] {
        c.add_group_member(v1::GroupMemberRequest {
            group_id: "test".into(),
            instance_id: id.into(),
        })
        .await
        .unwrap();
    }
    c.create_group_bvi(v1::GroupBviRequest {
        group_id: "test".into(),
        addresses: vec![v1::Prefix {
            address: "172.16.0.32".into(),
            prefix_len: 24,
        }],
    })
    .await
    .unwrap();
    let bc = c.clone();
    let bind = move |id: &'static str| {
        let mut c = bc.clone();
        async move {
            c.bind_group_bvi(v1::BindGroupBviRequest {
                group_id: "test".into(),
                instance_id: id.into(),
            })
            .await
            .unwrap();
        }
    };
    bind(a).await;
    let pc = c.clone();
    let primary = move || {
        let mut c = pc.clone();
        async move {
            c.get_group(v1::GroupRef {
                group_id: "test".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .primary_instance_id
        }
    };

    let addr = f.registry.addr.clone();
    tokio::task::spawn_blocking(move || {
        let mut sh = Pty::spawn(&["-server", &addr]);
        sh.expect("evpn> ");
        sh.send("group test delete\r");
        sh.expect("this takes down:");
        sh.expect("group test: gateway 172.16.0.32/24 (vMAC ");
        sh.expect(") on dpu0-ddln0");
        sh.expect("Proceed? [y/N] ");
        sh.send("n\r");
        sh.expect("not done");
        sh.expect("evpn> ");
        // A command that takes nothing down is not asked.
        sh.send("group test member remove dpu0-chplo0\r");
        sh.expect("member dpu0-chplo0 in group test removed");
        sh.expect("evpn> ");
        sh.send("instance dpu0-ddln0 evpn test disable\r");
        sh.expect("group test: gateway 172.16.0.32/24");
        sh.expect("Proceed? [y/N] ");
        sh.send("y\r");
        sh.expect("instance dpu0-ddln0 evpn test disabled");
        sh.expect("evpn> ");
        sh.send("quit\r");
        assert_eq!(sh.wait(), Some(0));
    })
    .await
    .unwrap();
    assert!(
        c.get_group(v1::GroupRef {
            group_id: "test".into()
        })
        .await
        .is_ok()
    );
    assert_eq!(primary().await, "", "the confirmed disable unassigned it");

    // One-shot: run as typed, never asked.
    let s = f.registry.addr.clone();
    let one = move |args: &'static [&'static str]| {
        let s = s.clone();
        tokio::task::spawn_blocking(move || evpnc(&s, args))
    };
    let o = one(&["instance", "dpu0-ddln0", "evpn", "test", "enable"])
        .await
        .unwrap();
    assert_eq!(o.code, 0, "{o:?}");
    bind(a).await;
    let o = one(&["instance", "dpu0-ddln0", "evpn", "test", "disable"])
        .await
        .unwrap();
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("FAILED_PRECONDITION")
            && o.stderr.contains("172.16.0.32/24")
            && o.stderr.contains("force"),
        "{o:?}"
    );
    assert_eq!(primary().await, a);
    let o = one(&["instance", "dpu0-ddln0", "evpn", "test", "disable", "force"])
        .await
        .unwrap();
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(primary().await, "");
    let o = one(&["instance", "dpu0-ddln0", "evpn", "test", "enable"])
        .await
        .unwrap();
    assert_eq!(o.code, 0, "{o:?}");
    bind(a).await;
    let o = one(&["group", "test", "delete"]).await.unwrap();
    assert_eq!(o.code, 0, "{o:?}");
    assert!(!o.stdout.contains("Proceed"), "{o:?}");
    assert!(
        c.get_group(v1::GroupRef {
            group_id: "test".into()
        })
        .await
        .is_err()
    );
}
