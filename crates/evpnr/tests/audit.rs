//! The audit trail, black box (docs/security.md, "Audit"): every
//! state-changing RPC of both services — the list is read from the `.proto`
//! files, so an RPC added later without a record fails here — appears
//! exactly once in the audit log of the daemon that served it, with the
//! caller's identity; a refused call is recorded with its code; a move is
//! recorded at both ends (evpnr's request, evpnr's calls to the members,
//! the members' records of those calls, linked by request IDs); a trusted
//! front-end acts on behalf of a user with the lower of the two roles; the
//! record of an accepted call is on disk when its answer arrives (the file
//! is read right after the call returns); WatchEvents of type `audit`
//! shows the records; the calls evpnr makes on its own (a failover
//! takeover, the resync after its restart) are recorded at both ends too,
//! linked to a record of evpnr's decision.
mod common;

use std::{path::Path, time::Duration};

use common::*;
use evpn_api::v1::{self, evpnr_client::EvpnrClient};
use evpn_tls::{ClientTls, Expect, Identity, TlsFiles, pki::DevCa};
use serde_json::Value;
use tonic::transport::Channel;

const DAY: Duration = Duration::from_secs(24 * 3600);
const OBO: &str = "evpn-on-behalf-of";

fn tls_yaml(f: &TlsFiles) -> String {
    format!(
        "  tls:\n    cert: {}\n    key: {}\n    ca: {}\n",
        f.cert.display(),
        f.key.display(),
        f.ca.display()
    )
}

fn channel(files: &TlsFiles, addr: &str, expect: Expect) -> Channel {
    ClientTls::load(files.clone())
        .unwrap()
        .channel(addr, expect, |e| e)
        .unwrap()
}

/// Every record of a daemon's audit log (current file), in order.
fn records(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("audit/audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn s<'a>(r: &'a Value, k: &str) -> &'a str {
    r[k].as_str().unwrap_or("")
}

/// The state-changing RPCs of `svc` as its `.proto` file declares them:
/// every RPC but the reads (List*, Get*, WatchEvents), a member's
/// liveness reports (Heartbeat, ReportReady) and a bind's preparation
/// (PrepareGroupBVI, which changes nothing).
fn writes(svc: &str) -> Vec<String> {
    let proto = match svc {
        "Evpnr" => include_str!("../../../proto/evpn/v1/evpnr.proto"),
        _ => include_str!("../../../proto/evpn/v1/evpnd.proto"),
    };
    let all: Vec<String> = proto
        .lines()
        .filter_map(|l| l.trim().strip_prefix("rpc "))
        .map(|r| r.split('(').next().unwrap().trim().to_string())
        .collect();
    assert!(all.len() > 10, "{svc}: no RPCs parsed");
    all.into_iter()
        .filter(|m| {
            !(m.starts_with("List")
                || m.starts_with("Get")
                || matches!(
                    m.as_str(),
                    "WatchEvents" | "Heartbeat" | "ReportReady" | "PrepareGroupBVI"
                ))
        })
        .collect()
}

/// Call `/evpn.v1.<svc>/<method>` with an empty request (every field at its
/// default): whatever the answer, the call was made.
async fn raw_call(ch: Channel, svc: &str, method: &str) -> Result<(), tonic::Status> {
    let mut g = tonic::client::Grpc::new(ch);
    g.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path =
        tonic::codegen::http::uri::PathAndQuery::try_from(format!("/evpn.v1.{svc}/{method}"))
            .unwrap();
    g.unary::<v1::Empty, v1::Empty, _>(
        tonic::Request::new(v1::Empty {}),
        path,
        tonic_prost::ProstCodec::default(),
    )
    .await
    .map(|_| ())
}

/// Exactly one record per RPC of `want` from `who`, and none of any other
/// RPC from `who`.
fn exactly_once(log: &[Value], who: &str, prefix: &str, want: &[String]) {
    let got: Vec<&str> = log
        .iter()
        .filter(|r| s(r, "who") == who && s(r, "direction") == "in")
        .map(|r| s(r, "rpc"))
        .collect();
    for m in want {
        let rpc = format!("{prefix}.{m}");
        let n = got.iter().filter(|g| **g == rpc).count();
        assert_eq!(n, 1, "{rpc} is in the audit log {n} times: {got:?}");
    }
    assert_eq!(got.len(), want.len(), "records of {who}: {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_audit_every_write_once_both_ends_and_on_behalf_of() {
    let _s = serial().await;
    let pki = tempfile::tempdir().unwrap();
    let ca = DevCa::create(pki.path(), "audit CA").unwrap();
    let issue = |id: Identity| ca.issue(&id, DAY, false).unwrap();
    let reg = issue(Identity::Registry("evpnr".into()));
    let a = issue(Identity::Instance("audit-a".into()));
    let b = issue(Identity::Instance("audit-b".into()));
    let ada = issue(Identity::User("ada".into()));
    let olga = issue(Identity::User("olga".into()));
    let val = issue(Identity::User("val".into()));
    let dash = issue(Identity::User("dash".into()));

    let mut f = Fleet::new(
        "tls_audit_every_write_once_both_ends_and_on_behalf_of",
        &["audit-a", "audit-b"],
    )
    .await;
    f.kill_evpnr();
    f.evpnr_extra = format!(
        "{}    roles:\n      \"evpn://user/ada\": admin\n      \"evpn://user/olga\": operator\n      \"evpn://user/val\": viewer\n      \"evpn://user/dash\": operator\n    front-ends: [\"evpn://user/dash\"]\n",
        tls_yaml(&reg)
    );
    f.tls = Some(ClientTls::load(olga.clone()).unwrap());
    f.start_evpnr();
    f.host_mut("audit-a").evpnd_extra = tls_yaml(&a);
    f.host_mut("audit-b").evpnd_extra = tls_yaml(&b);
    f.start_all().await;
    let addr = format!("127.0.0.1:{}", f.port);
    let evpnr_state = f.dir.path().join("state");
    let a_state = f.host("audit-a").dir.path().join("state");
    let b_state = f.host("audit-b").dir.path().join("state");

    // The members registered: recorded with their own identities.
    let log = records(&evpnr_state);
    for id in ["audit-a", "audit-b"] {
        assert!(
            log.iter().any(|r| s(r, "rpc") == "Evpnr.RegisterInstance"
                && s(r, "who") == format!("evpn://instance/{id}")
                && s(r, "result") == "ok"
                && r["fields"]["instance"] == id),
            "{id}'s registration is not in the audit log: {log:?}"
        );
    }

    // A watcher of `audit` events, opened before the calls below.
    let mut events = EvpnrClient::new(channel(&val, &addr, Expect::AnyRegistry))
        .watch_events(v1::WatchEventsRequest {
            types: vec!["audit".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    // Coverage: every state-changing RPC of Evpnr by an admin (empty
    // requests: refused by validation, or harmless), and of Evpnd on a
    // member (refused: a managed evpnd takes changes only from evpnr).
    let evpnr_writes = writes("Evpnr");
    let ada_r = channel(&ada, &addr, Expect::AnyRegistry);
    for m in &evpnr_writes {
        let _ = raw_call(ada_r.clone(), "Evpnr", m).await;
    }
    exactly_once(
        &records(&evpnr_state),
        "evpn://user/ada",
        "Evpnr",
        &evpnr_writes,
    );
    let evpnd_writes = writes("Evpnd");
    let ada_a = channel(
        &ada,
        &f.host("audit-a").addr(),
        Expect::Exactly(Identity::Instance("audit-a".into())),
    );
    for m in &evpnd_writes {
        let e = raw_call(ada_a.clone(), "Evpnd", m).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "Evpnd.{m}: {e:?}");
    }
    let a_log = records(&a_state);
    exactly_once(&a_log, "evpn://user/ada", "Evpnd", &evpnd_writes);
    assert!(
        a_log
            .iter()
            .filter(|r| s(r, "who") == "evpn://user/ada")
            .all(|r| s(r, "result") == "PERMISSION_DENIED"),
        "{a_log:?}"
    );

    // The watcher saw the records (the first of ada's calls).
    let ev = tokio::time::timeout(T, async {
        loop {
            let ev = futures::StreamExt::next(&mut events)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(ev.r#type, "audit", "{ev:?}");
            if ev.fields.get("who").is_some_and(|w| w == "evpn://user/ada") {
                return ev;
            }
        }
    })
    .await
    .expect("no audit event of ada's calls");
    assert_eq!(ev.message, "audit", "{ev:?}");
    assert_eq!(ev.fields["who"], "evpn://user/ada", "{ev:?}");
    assert_eq!(
        ev.fields["rpc"],
        format!("Evpnr.{}", evpnr_writes[0]),
        "{ev:?}"
    );

    // A viewer's move is refused and recorded as such.
    let mut val_c = EvpnrClient::new(channel(&val, &addr, Expect::AnyRegistry));
    let e = val_c
        .move_group_bvi(v1::MoveGroupBviRequest {
            group_id: "test".into(),
            instance_id: "audit-b".into(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    let log = records(&evpnr_state);
    let r = log.last().unwrap();
    assert_eq!(
        (s(r, "who"), s(r, "role"), s(r, "rpc"), s(r, "result")),
        (
            "evpn://user/val",
            "viewer",
            "Evpnr.MoveGroupBVI",
            "PERMISSION_DENIED"
        ),
        "{r}"
    );
    assert_eq!(r["fields"]["group"], "test", "{r}");
    assert!(s(r, "error").contains("needs role operator"), "{r}");
    assert!(s(r, "peer").starts_with("127.0.0.1:"), "{r}");

    // An operator's move: on disk when the answer arrives, at both ends.
    f.test_group(Some("audit-a")).await;
    let mut olga_c = f.client().await;
    olga_c
        .move_group_bvi(v1::MoveGroupBviRequest {
            group_id: "test".into(),
            instance_id: "audit-b".into(),
            force: false,
        })
        .await
        .unwrap();
    let log = records(&evpnr_state);
    let mv = log
        .iter()
        .rfind(|r| s(r, "rpc") == "Evpnr.MoveGroupBVI" && s(r, "result") == "ok")
        .unwrap_or_else(|| panic!("the accepted move is not on disk: {log:?}"));
    assert_eq!(
        (s(mv, "who"), s(mv, "role")),
        ("evpn://user/olga", "operator"),
        "{mv}"
    );
    let caused: Vec<&Value> = log
        .iter()
        .filter(|r| s(r, "direction") == "out" && r["parent"] == mv["id"])
        .collect();
    let out_of = |rpc: &str, target: &str| {
        caused
            .iter()
            .copied()
            .find(|r| s(r, "rpc") == rpc && s(r, "target") == target)
            .unwrap_or_else(|| panic!("no {rpc} to {target} caused by the move: {caused:?}"))
    };
    let release = out_of("Evpnd.ReleaseGroupBVI", "audit-a");
    let bind = out_of("Evpnd.BindGroupBVI", "audit-b");
    for r in [release, bind] {
        assert_eq!(
            (s(r, "who"), s(r, "on-behalf-of"), s(r, "result")),
            ("evpn://registry/evpnr", "evpn://user/olga", "ok"),
            "{r}"
        );
        assert_eq!(r["fields"]["group"], "test", "{r}");
    }
    for (state, out) in [(&a_state, release), (&b_state, bind)] {
        let member = records(state);
        let n = member
            .iter()
            .filter(|r| r["parent"] == out["id"])
            .inspect(|r| {
                assert_eq!(
                    (s(r, "who"), s(r, "rpc"), s(r, "result")),
                    ("evpn://registry/evpnr", s(out, "rpc"), "ok"),
                    "{r}"
                )
            })
            .count();
        assert_eq!(n, 1, "the member's record of {out}: {member:?}");
    }

    // On behalf of a user: the front-end's calls have the lower role, name
    // the user, and a header from anyone else is refused.
    let on_behalf = |user: &str| {
        let user = user.to_string();
        EvpnrClient::with_interceptor(
            channel(&dash, &addr, Expect::AnyRegistry),
            move |mut r: tonic::Request<()>| {
                r.metadata_mut().insert(OBO, user.parse().unwrap());
                Ok(r)
            },
        )
    };
    let e = on_behalf("evpn://user/val")
        .move_group_bvi(v1::MoveGroupBviRequest {
            group_id: "test".into(),
            instance_id: "audit-a".into(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("has viewer"), "{e:?}");
    let log = records(&evpnr_state);
    let r = log.last().unwrap();
    assert_eq!(
        (
            s(r, "who"),
            s(r, "on-behalf-of"),
            s(r, "role"),
            s(r, "result")
        ),
        (
            "evpn://user/dash",
            "evpn://user/val",
            "viewer",
            "PERMISSION_DENIED"
        ),
        "{r}"
    );
    on_behalf("evpn://user/ada")
        .create_group(v1::CreateGroupRequest {
            group_id: "dash".into(),
            vni: 4711,
            ..Default::default()
        })
        .await
        .unwrap();
    let log = records(&evpnr_state);
    let r = log.last().unwrap();
    assert_eq!(
        (
            s(r, "who"),
            s(r, "on-behalf-of"),
            s(r, "role"),
            s(r, "rpc"),
            s(r, "result")
        ),
        (
            "evpn://user/dash",
            "evpn://user/ada",
            "operator",
            "Evpnr.CreateGroup",
            "ok"
        ),
        "{r}"
    );
    let e = EvpnrClient::with_interceptor(
        channel(&olga, &addr, Expect::AnyRegistry),
        |mut r: tonic::Request<()>| {
            r.metadata_mut()
                .insert(OBO, "evpn://user/ada".parse().unwrap());
            Ok(r)
        },
    )
    .list_groups(v1::Empty {})
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("not a trusted front-end"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_without_tls_names_no_identity_but_the_peer() {
    let _s = serial().await;
    let f = Fleet::new("audit_without_tls_names_no_identity_but_the_peer", &[]).await;
    let mut c = f.client().await;
    c.create_group(v1::CreateGroupRequest {
        group_id: "plain".into(),
        vni: 4712,
        ..Default::default()
    })
    .await
    .unwrap();
    let log = records(&f.dir.path().join("state"));
    let r = log.last().expect("no audit record");
    assert_eq!(
        (s(r, "who"), s(r, "rpc"), s(r, "result"), s(r, "daemon")),
        ("none", "Evpnr.CreateGroup", "ok", "evpnr"),
        "{r}"
    );
    assert_eq!(r["fields"]["group"], "plain", "{r}");
    assert!(s(r, "peer").starts_with("127.0.0.1:"), "{r}");
    assert!(r.get("role").is_none(), "{r}");
}

/// The decision record of evpnr's own `cause` (`evpnr:failover`) matching
/// `fields`, the calls it made (evpnr's `out` records whose parent it is),
/// if it is in evpnr's log and made a call.
fn own_decision(
    log: &[Value],
    cause: &str,
    fields: &[(&str, &str)],
) -> Option<(Value, Vec<Value>)> {
    let d = log.iter().rfind(|r| {
        s(r, "direction") == "decision"
            && s(r, "rpc") == cause
            && fields.iter().all(|(k, v)| r["fields"][*k] == *v)
    })?;
    let calls: Vec<Value> = log
        .iter()
        .filter(|r| s(r, "direction") == "out" && r["parent"] == d["id"])
        .cloned()
        .collect();
    (!calls.is_empty()).then(|| (d.clone(), calls))
}

/// Both ends of one call evpnr made on its own: evpnr's `out` record of
/// `rpc` to `target` (in `calls`, on behalf of `cause`, accepted) and the
/// member's `in` record naming it as its parent, exactly once.
fn both_ends(calls: &[Value], cause: &str, rpc: &str, target: &str, member_state: &Path) {
    let out = calls
        .iter()
        .find(|r| s(r, "rpc") == rpc && s(r, "target") == target)
        .unwrap_or_else(|| panic!("no {rpc} to {target} among the decision's calls: {calls:?}"));
    assert_eq!(
        (s(out, "who"), s(out, "on-behalf-of"), s(out, "result")),
        ("none", cause, "ok"),
        "{out}"
    );
    let member = records(member_state);
    let ins: Vec<&Value> = member.iter().filter(|r| r["parent"] == out["id"]).collect();
    assert_eq!(ins.len(), 1, "{target}'s record of {out}: {member:?}");
    assert_eq!(
        (
            s(ins[0], "direction"),
            s(ins[0], "rpc"),
            s(ins[0], "result")
        ),
        ("in", rpc, "ok"),
        "{}",
        ins[0]
    );
}

/// Issue 18: an autonomous takeover's calls are recorded by evpnr (`out`,
/// on behalf of `evpnr:failover`, parent = its decision record, which
/// names the group, the candidate and the reason) and by the member that
/// served them (`in`, parent = evpnr's record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_sim_fabric_takeover_is_recorded_at_both_ends_under_its_decision() {
    const A: &str = "aud-fo-a";
    const B: &str = "aud-fo-b";
    let _s = serial().await;
    let mut f = Fleet::on_fabric(
        &[A, B],
        birdsim::fabric::FabricOptions {
            announce_delay: Duration::from_millis(1),
            withdraw_delay: Duration::from_millis(200),
            record: true,
        },
        "1s",
    )
    .await;
    f.start_all().await;
    let vmac = f.test_group(Some(A)).await.to_lowercase();
    f.set_test_failover("auto", None).await;
    let mut ev = failover_events(&f).await;
    f.host_mut(A).kill_evpnd();
    f.host_mut(A).kill_bird();
    let e = next_event_of(&mut ev, &["failover-finished"]).await;
    assert_eq!(e.fields["to"], B, "{e:?}");
    wait_for("B holds the vMAC", async || f.host(B).holds(&vmac)).await;

    let evpnr_state = f.dir.path().join("state");
    let want = [
        ("group", "test"),
        ("from", A),
        ("to", B),
        ("reason", "primary-unreachable"),
    ];
    let mut found = None;
    wait_for("the takeover's decision record", async || {
        found = own_decision(&records(&evpnr_state), "evpnr:failover", &want);
        found.is_some()
    })
    .await;
    let (d, calls) = found.unwrap();
    assert_eq!(
        (s(&d, "daemon"), s(&d, "who"), s(&d, "on-behalf-of")),
        ("evpnr", "none", "evpnr:failover"),
        "{d}"
    );
    // The takeover bound B: the decision reached its aim, whatever failed
    // on the way.
    assert_eq!(s(&d, "result"), "ok", "{d}");
    assert!(d.get("error").is_none(), "{d}");
    // The dead primary's connection is down, so the takeover sends it no
    // release (F14: nothing to record); one sent before evpnr saw the
    // connection go, failed and is listed among the decision's failed
    // calls.
    let releases: Vec<_> = calls
        .iter()
        .filter(|r| s(r, "rpc") == "Evpnd.ReleaseGroupBVI" && s(r, "target") == A)
        .collect();
    let failed: Vec<&str> = d["failed-calls"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match releases.first() {
        None => assert!(failed.is_empty(), "{d}"),
        Some(release) => {
            assert_ne!(s(release, "result"), "ok", "{release}");
            let want = format!("release {A} {}", s(release, "result"));
            assert!(failed.contains(&want.as_str()), "{want} not in {d}");
        }
    }
    both_ends(
        &calls,
        "evpnr:failover",
        "Evpnd.BindGroupBVI",
        B,
        &f.host(B).dir.path().join("state"),
    );
}

/// Issue 18, rule F14: the old primary is alive and connected, but late
/// (its heartbeats are held) and its release is slow (its VPP takes `SLOW`
/// to change a MAC, far more than `failover.release-wait`, 50 ms here);
/// its fabric link is cut (its announcement withdrawn), so the candidate
/// takes over. The takeover
/// finishes without waiting for the release; the release goes on and its
/// late outcome is reported (`failover-release-late`, `released`); the
/// vMAC ends on the new primary only; the late release's `out` record is
/// written under the takeover's decision (parent = its ID, on behalf of
/// `evpnr:failover`), after that decision's record, and A records it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_sim_fabric_late_release_is_reported_and_recorded_under_its_decision() {
    const A: &str = "aud-late-a";
    const B: &str = "aud-late-b";
    // Under F13's 500 ms bound of a release to a late member, over the
    // takeover's (`takeover-min-settle` 100 ms and a bind).
    const SLOW: Duration = Duration::from_millis(300);
    let _s = serial().await;
    let mut f = Fleet::on_fabric(
        &[A, B],
        birdsim::fabric::FabricOptions {
            announce_delay: Duration::from_millis(1),
            withdraw_delay: Duration::from_millis(200),
            record: true,
        },
        "1s",
    )
    .await;
    f.evpnr_extra = "  failover:\n    release-wait: 50ms\n".into();
    f.restart_evpnr();
    f.start_all().await;
    let vmac = f.test_group(Some(A)).await.to_lowercase();
    f.set_test_failover("auto", None).await;
    let mut ev = failover_events(&f).await;
    // A is late (its heartbeats, and with them its health reports, do not
    // reach evpnr; evpnr's calls to it work), so what follows is a takeover,
    // not a planned move (which would wait for the release).
    f.host(A).set_heartbeat_link(false);
    loop {
        let e = next_event_of(&mut ev, &["instance-suspect"]).await;
        if e.fields["instance"] == A {
            break;
        }
    }
    f.host(A)
        .sim
        .faults()
        .latency("sw_interface_set_mac_address", SLOW);
    f.host(A).set_fabric_link(false);

    // The takeover finishes first, well before the slow release could.
    let e = next_event_of(&mut ev, &["failover-finished", "failover-release-late"]).await;
    assert_eq!(e.message, "failover-finished", "{e:?}");
    assert_eq!(
        (e.fields["from"].as_str(), e.fields["to"].as_str()),
        (A, B),
        "{e:?}"
    );
    let ms: f64 = e.fields["duration-ms"].parse().unwrap();
    assert!(
        ms < SLOW.as_millis() as f64,
        "the takeover waited for the release: {e:?}"
    );
    let late = next_event_of(&mut ev, &["failover-release-late"]).await;
    assert_eq!(
        (
            late.fields["group"].as_str(),
            late.fields["instance"].as_str(),
            late.fields["result"].as_str(),
            late.fields["error"].as_str(),
        ),
        ("test", A, "released", ""),
        "{late:?}"
    );
    wait_for("the vMAC on B only", async || {
        f.host(B).holds(&vmac) && !f.host(A).holds(&vmac)
    })
    .await;
    assert_eq!(f.group("test").await.primary_instance_id, B);

    // The late release's record, under the takeover's decision.
    let evpnr_state = f.dir.path().join("state");
    let mut found = None;
    wait_for("the late release's record", async || {
        let log = records(&evpnr_state);
        found = log
            .iter()
            .position(|r| {
                s(r, "direction") == "out"
                    && s(r, "rpc") == "Evpnd.ReleaseGroupBVI"
                    && s(r, "target") == A
                    && s(r, "result") == "ok"
            })
            .map(|i| (log, i));
        found.is_some()
    })
    .await;
    let (log, i) = found.unwrap();
    let out = &log[i];
    let d = log
        .iter()
        .position(|r| r["id"] == out["parent"])
        .unwrap_or_else(|| panic!("the late release's parent is not in the log: {out}"));
    let decision = &log[d];
    assert!(
        d < i,
        "the late release was written before its decision: {log:?}"
    );
    assert_eq!(
        (
            s(decision, "direction"),
            s(decision, "rpc"),
            s(decision, "result")
        ),
        ("decision", "evpnr:failover", "ok"),
        "{decision}"
    );
    assert_eq!(
        (
            decision["fields"]["from"].as_str(),
            decision["fields"]["to"].as_str()
        ),
        (Some(A), Some(B)),
        "{decision}"
    );
    let calls: Vec<Value> = log
        .iter()
        .filter(|r| s(r, "direction") == "out" && r["parent"] == decision["id"])
        .cloned()
        .collect();
    let a_state = f.host(A).dir.path().join("state");
    both_ends(
        &calls,
        "evpnr:failover",
        "Evpnd.ReleaseGroupBVI",
        A,
        &a_state,
    );
    both_ends(
        &calls,
        "evpnr:failover",
        "Evpnd.BindGroupBVI",
        B,
        &f.host(B).dir.path().join("state"),
    );
}

/// Issue 18: the resync after an evpnr restart is recorded at both ends:
/// drift made while evpnr was down (a member's eVPN deleted) is repaired by
/// calls on behalf of `evpnr:resync`, linked to its decision record, and
/// the member's records of them name evpnr's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_restart_resync_is_recorded_at_both_ends_under_its_decision() {
    const A: &str = "aud-rs-a";
    const B: &str = "aud-rs-b";
    let _s = serial().await;
    let mut f = Fleet::new(
        "audit_restart_resync_is_recorded_at_both_ends_under_its_decision",
        &[A, B],
    )
    .await;
    f.start_all().await;
    f.test_group(Some(A)).await;
    f.kill_evpnr();
    f.evpnd_as_registry(B)
        .await
        .delete_evpn_instance(v1::EvpnRef {
            instance_id: B.into(),
            slug: "test".into(),
        })
        .await
        .unwrap();
    f.start_evpnr();

    let evpnr_state = f.dir.path().join("state");
    let mut found = None;
    wait_for("the restart's resync of B, recorded", async || {
        found = own_decision(&records(&evpnr_state), "evpnr:resync", &[("instance", B)]);
        found.as_ref().is_some_and(|(d, _)| s(d, "result") == "ok")
    })
    .await;
    let (d, calls) = found.unwrap();
    assert_eq!(
        (s(&d, "who"), s(&d, "on-behalf-of")),
        ("none", "evpnr:resync"),
        "{d}"
    );
    let b_state = f.host(B).dir.path().join("state");
    both_ends(
        &calls,
        "evpnr:resync",
        "Evpnd.CreateEvpnInstance",
        B,
        &b_state,
    );
    both_ends(&calls, "evpnr:resync", "Evpnd.CreateBVI", B, &b_state);
    assert!(f.bvi(B, "test").await.is_some(), "B's BVI is not back");
}
