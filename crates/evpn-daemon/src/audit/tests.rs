use super::*;
use crate::events::{EventFilter, EventKind};

fn rec(n: usize) -> Record {
    Record {
        ts: now(),
        daemon: "evpnr".into(),
        id: format!("id{n}"),
        direction: Direction::In,
        who: "evpn://user/olga".into(),
        role: Some("operator".into()),
        on_behalf_of: None,
        peer: Some("127.0.0.1:4000".into()),
        target: None,
        parent: None,
        rpc: "Evpnr.MoveGroupBVI".into(),
        fields: [("group".to_string(), format!("g{n}"))].into(),
        result: "ok".into(),
        error: None,
        failed_calls: Vec::new(),
    }
}

/// evpnr's log under `dir` with the default settings, no identity.
fn open_default(dir: &Path) -> Arc<AuditLog> {
    AuditLog::open(
        dir,
        "evpnr",
        "none",
        AuditConfig::default(),
        EventBroker::new("", 64),
    )
    .unwrap()
}

fn lines(p: &Path) -> Vec<Record> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn rotation_keeps_the_newest_records_and_keep_files() {
    let d = tempfile::tempdir().unwrap();
    let cfg = AuditConfig {
        max_bytes: 4096,
        keep: 2,
    };
    let log = AuditLog::open(d.path(), "evpnr", "none", cfg, EventBroker::new("", 64)).unwrap();
    let one = serde_json::to_vec(&rec(0)).unwrap().len() as u64 + 1;
    let per_file = (4096 / one) as usize;
    let total = per_file * 5 + 3;
    for n in 0..total {
        log.append(rec(n)).await.unwrap();
    }
    let dir = d.path().join(DIR);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["audit.log", "audit.log.1", "audit.log.2"]);
    // Newest last: .2, .1, current hold the last records in order, each
    // file within max-bytes.
    let mut kept = Vec::new();
    for f in ["audit.log.2", "audit.log.1", "audit.log"] {
        assert!(std::fs::metadata(dir.join(f)).unwrap().len() <= 4096, "{f}");
        kept.extend(lines(&dir.join(f)).into_iter().map(|r| r.id));
    }
    let want: Vec<String> = (total - kept.len()..total)
        .map(|n| format!("id{n}"))
        .collect();
    assert_eq!(kept, want);
    assert_eq!(kept.len(), 2 * per_file + 3);
}

#[tokio::test]
async fn a_record_is_on_disk_when_append_returns_and_is_published() {
    let d = tempfile::tempdir().unwrap();
    let broker = EventBroker::new("", 64);
    let mut sub = broker.subscribe(EventFilter {
        kinds: [EventKind::Audit].into(),
        ..Default::default()
    });
    let log = AuditLog::open(d.path(), "evpnd", "none", AuditConfig::default(), broker).unwrap();
    log.append(rec(7)).await.unwrap();
    assert_eq!(
        lines(&log.path()),
        [rec(7)].map(|mut r| {
            r.ts = lines(&log.path())[0].ts.clone();
            r
        })
    );
    let e = futures::StreamExt::next(&mut sub).await.unwrap();
    assert_eq!(e.message, "audit");
    assert_eq!(e.fields["rpc"], "Evpnr.MoveGroupBVI");
    assert_eq!(e.fields["args"], "group=g7");
    assert_eq!(e.fields["who"], "evpn://user/olga");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(log.path()).unwrap().permissions(),
    );
    assert_eq!(mode & 0o077, 0, "the audit log is readable by others");
}

#[tokio::test]
async fn a_failed_write_is_reported_until_one_succeeds() {
    let d = tempfile::tempdir().unwrap();
    let log = open_default(d.path());
    // The directory disappears (and a file takes its place): writes fail.
    std::fs::remove_dir_all(d.path().join(DIR)).unwrap();
    *log.current.lock().unwrap() = None;
    std::fs::write(d.path().join(DIR), b"not a directory").unwrap();
    assert!(log.append(rec(1)).await.is_err());
    assert!(log.failing().is_some());
    std::fs::remove_file(d.path().join(DIR)).unwrap();
    std::fs::create_dir(d.path().join(DIR)).unwrap();
    log.append(rec(2)).await.unwrap();
    assert!(log.failing().is_none());
    assert_eq!(lines(&log.path()).len(), 1);
}

#[test]
fn settings_are_checked() {
    assert!(AuditConfig::default().validate("evpnr").is_ok());
    for (c, key) in [
        (
            AuditConfig {
                max_bytes: 100,
                keep: 2,
            },
            "evpnr.audit.max-bytes",
        ),
        (
            AuditConfig {
                max_bytes: 1 << 20,
                keep: 0,
            },
            "evpnr.audit.keep",
        ),
    ] {
        assert_eq!(c.validate("evpnr").unwrap_err().key, key);
    }
}

#[test]
fn code_names_are_the_wire_names() {
    assert_eq!(
        code_name(tonic::Code::PermissionDenied),
        "PERMISSION_DENIED"
    );
    assert_eq!(code_name(tonic::Code::Unavailable), "UNAVAILABLE");
    assert_eq!(code_name(tonic::Code::Ok), "OK");
}

/// A fake server behind the layer: counts the calls it runs, answers OK.
fn counting_server(
    calls: Arc<std::sync::atomic::AtomicUsize>,
) -> impl tower::Service<
    http::Request<tonic::body::Body>,
    Response = http::Response<tonic::body::Body>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |_req: http::Request<tonic::body::Body>| {
        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { Ok(http::Response::new(tonic::body::Body::default())) }
    })
}

fn create_group_call() -> http::Request<tonic::body::Body> {
    let msg = prost::Message::encode_to_vec(&evpn_api::v1::GroupRef {
        group_id: "g1".into(),
    });
    let mut body = vec![0];
    body.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    body.extend_from_slice(&msg);
    http::Request::builder()
        .uri("/evpn.v1.Evpnr/CreateGroup")
        .body(tonic::body::Body::new(axum::body::Body::from(body)))
        .unwrap()
}

#[tokio::test]
async fn an_unwritable_log_fails_writes_closed_until_it_takes_records() {
    use tower::{Layer, ServiceExt};
    let d = tempfile::tempdir().unwrap();
    let log = open_default(d.path());
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let svc = layer::AuditLayer::new(log.clone(), None).layer(counting_server(calls.clone()));
    let ran = || calls.load(std::sync::atomic::Ordering::SeqCst);
    let status = |r: http::Response<tonic::body::Body>| {
        tonic::Status::from_header_map(r.headers()).map(|s| (s.code(), s.message().to_string()))
    };

    // Healthy: the call runs, answers OK, and its record is on disk.
    let r = svc.clone().oneshot(create_group_call()).await.unwrap();
    assert_eq!(status(r), None);
    assert_eq!(ran(), 1);
    let recs = lines(&log.path());
    assert_eq!(recs.len(), 1);
    assert_eq!(
        (
            recs[0].rpc.as_str(),
            recs[0].result.as_str(),
            recs[0].who.as_str()
        ),
        ("Evpnr.CreateGroup", "ok", "none")
    );
    assert_eq!(recs[0].fields["group"], "g1");

    // The log's directory becomes unwritable: the change is made but its
    // answer is UNAVAILABLE, and the next change is refused without running.
    let dir = d.path().join(DIR);
    std::fs::remove_dir_all(&dir).unwrap();
    *log.current.lock().unwrap() = None;
    std::fs::write(&dir, b"not a directory").unwrap();
    let (code, msg) = status(svc.clone().oneshot(create_group_call()).await.unwrap()).unwrap();
    assert_eq!(code, tonic::Code::Unavailable);
    assert!(
        msg.contains("the change was made but its audit record"),
        "{msg}"
    );
    assert_eq!(ran(), 2);
    let (code, msg) = status(svc.clone().oneshot(create_group_call()).await.unwrap()).unwrap();
    assert_eq!(code, tonic::Code::Unavailable);
    assert!(msg.contains("changes are refused until it can"), "{msg}");
    assert_eq!(ran(), 2, "a change ran while the audit log was unwritable");

    // Writable again: the refusal is recorded, then changes run again.
    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    let (code, _) = status(svc.clone().oneshot(create_group_call()).await.unwrap()).unwrap();
    assert_eq!(code, tonic::Code::Unavailable);
    assert_eq!(lines(&log.path())[0].result, "UNAVAILABLE");
    assert_eq!(
        status(svc.clone().oneshot(create_group_call()).await.unwrap()),
        None
    );
    assert_eq!(ran(), 3);
    assert_eq!(lines(&log.path()).len(), 2);
}

#[tokio::test]
async fn reads_and_member_liveness_are_not_recorded() {
    use tower::{Layer, ServiceExt};
    let d = tempfile::tempdir().unwrap();
    let log = open_default(d.path());
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let svc = layer::AuditLayer::new(log.clone(), None).layer(counting_server(calls.clone()));
    for path in [
        "/evpn.v1.Evpnr/ListGroups",
        "/evpn.v1.Evpnr/ReportReady",
        "/grpc.health.v1.Health/Check",
    ] {
        let req = http::Request::builder()
            .uri(path)
            .body(tonic::body::Body::default())
            .unwrap();
        svc.clone().oneshot(req).await.unwrap();
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert!(lines(&log.path()).is_empty());
}

/// Polls `cond` every millisecond for up to 10 s.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn a_deferred_record_is_made_durable_by_the_next_synced_one_or_a_rotation() {
    let d = tempfile::tempdir().unwrap();
    let log = open_default(d.path());
    let unsynced = |log: &AuditLog| log.current.lock().unwrap().as_ref().unwrap().unsynced;
    log.append_deferred(rec(1));
    until("the deferred record in the file", || {
        lines(&log.path()).len() == 1
    })
    .await;
    assert!(unsynced(&log), "a deferred record is written, not fsynced");
    log.append(rec(2)).await.unwrap();
    assert!(!unsynced(&log), "the next synced record covers it");
    let ids: Vec<String> = lines(&log.path()).into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["id1", "id2"]);
}

/// Holds the log's file from another thread, as another record's fsync
/// does, until the returned sender is dropped.
fn hold_file(log: &Arc<AuditLog>) -> std::sync::mpsc::Sender<()> {
    let (held_tx, held) = std::sync::mpsc::channel();
    let (tx, release) = std::sync::mpsc::channel::<()>();
    let l = log.clone();
    std::thread::spawn(move || {
        let _file = l.current.lock().unwrap();
        held_tx.send(()).unwrap();
        let _ = release.recv();
    });
    held.recv().unwrap();
    tx
}

/// Issue 16: a deferred record queued while the file is busy (another
/// record's fsync holds it) is written before any record appended after
/// it, and a synced record's fsync covers it — also when the synced one
/// gets the file first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_deferred_record_is_written_before_a_later_synced_one() {
    let d = tempfile::tempdir().unwrap();
    let broker = EventBroker::new("", 64);
    let mut events = broker.subscribe(EventFilter {
        kinds: [EventKind::Audit].into(),
        ..Default::default()
    });
    let log = AuditLog::open(d.path(), "evpnr", "none", AuditConfig::default(), broker).unwrap();
    let busy = hold_file(&log);
    log.append_deferred(rec(1));
    let l2 = log.clone();
    let synced = tokio::spawn(async move { l2.append(rec(2)).await });
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(
        !synced.is_finished(),
        "the synced record waits for the file"
    );
    drop(busy);
    synced.await.unwrap().unwrap();
    let ids: Vec<String> = lines(&log.path()).into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["id1", "id2"]);
    assert!(!log.current.lock().unwrap().as_ref().unwrap().unsynced);
    let mut published = Vec::new();
    for _ in 0..2 {
        let ev = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            futures::StreamExt::next(&mut events),
        )
        .await
        .expect("two audit events")
        .unwrap();
        published.push(ev.fields["id"].clone());
    }
    published.sort();
    assert_eq!(published, ["id1", "id2"]);
}

/// Issue 16: a member call's answer is handed on without waiting for its
/// outgoing record's write (here the file is held by another record's
/// fsync); the record is written right after, in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_calls_answer_waits_for_no_audit_write() {
    use tower::ServiceExt;
    let d = tempfile::tempdir().unwrap();
    let log = open_default(d.path());
    install(log.clone());
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ch = layer::AuditedChannel::new(counting_server(calls.clone()));
    let busy = hold_file(&log);
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        ch.oneshot(create_group_call()),
    )
    .await
    .expect("the answer waited for the audit log's file");
    assert!(r.is_ok());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    drop(busy);
    until("the outgoing record in the file", || {
        lines(&log.path()).len() == 1
    })
    .await;
    let recs = lines(&log.path());
    assert_eq!(
        (recs[0].rpc.as_str(), recs[0].direction),
        ("Evpnr.CreateGroup", Direction::Out)
    );
}

/// A background write that finds the queue already taken by a synced
/// record writes nothing and so cannot clear a failing log (fail closed).
#[tokio::test]
async fn an_empty_background_write_leaves_a_failing_log_failing() {
    let d = tempfile::tempdir().unwrap();
    let log = open_default(d.path());
    *log.failing.lock().unwrap() = Some("disk gone".into());
    log.write_deferred();
    assert_eq!(log.failing().as_deref(), Some("disk gone"));
    assert!(lines(&log.path()).is_empty());
}

#[test]
fn a_calls_step_is_its_method_in_kebab_case() {
    for (rpc, step) in [
        ("Evpnd.BindGroupBVI", "bind"),
        ("Evpnd.ReleaseGroupBVI", "release"),
        ("Evpnd.CreateBVI", "create-bvi"),
        ("Evpnd.CreateEvpnInstance", "create-evpn-instance"),
        ("Evpnd.DeleteEvpnInstance", "delete-evpn-instance"),
        ("Evpnd.SetBVIAddresses", "set-bvi-addresses"),
        ("Bare", "bare"),
    ] {
        assert_eq!(layer::step_of(rpc), step, "{rpc}");
    }
}

/// Issue 18: a decision's record tells what the decision came to, not its
/// first failed call; every failed call is still listed.
#[test]
fn a_decisions_result_is_its_outcome_and_lists_the_failed_calls() {
    use layer::{FailedCall, decision_result};
    use tonic::Code;
    let call = |step: &str, target: &str, code: &str| FailedCall {
        step: step.into(),
        target: target.into(),
        code: code.into(),
    };
    let release_r1 = call("release", "r1", "UNAVAILABLE");
    let bind_r2 = call("bind", "r2", "UNAVAILABLE");
    let bind_r2_late = call("bind", "r2", "DEADLINE_EXCEEDED");
    let err = |c: Code| Err((c, "why".to_string()));
    #[allow(clippy::type_complexity)]
    let table: &[(
        &str,
        Result<(), (Code, String)>,
        Vec<FailedCall>,
        &str,
        &[&str],
    )] = &[
        // A takeover that bound after its release to a dead primary failed.
        (
            "failover",
            Ok(()),
            vec![release_r1.clone()],
            "ok",
            &["release r1 UNAVAILABLE"],
        ),
        ("resync", Ok(()), vec![], "ok", &[]),
        // The bind failed: the last failed call with the decision's code.
        (
            "failover",
            err(Code::Unavailable),
            vec![release_r1.clone(), bind_r2.clone()],
            "bind: UNAVAILABLE",
            &["release r1 UNAVAILABLE", "bind r2 UNAVAILABLE"],
        ),
        (
            "failover",
            err(Code::DeadlineExceeded),
            vec![release_r1.clone(), bind_r2_late],
            "bind: DEADLINE_EXCEEDED",
            &["release r1 UNAVAILABLE", "bind r2 DEADLINE_EXCEEDED"],
        ),
        // Refused by the rules after a failed release: no call failed so.
        (
            "failover",
            err(Code::FailedPrecondition),
            vec![release_r1],
            "failover: FAILED_PRECONDITION",
            &["release r1 UNAVAILABLE"],
        ),
        (
            "resync",
            err(Code::Cancelled),
            vec![],
            "resync: CANCELLED",
            &[],
        ),
        (
            "resync",
            err(Code::Unavailable),
            vec![call("create-bvi", "", "UNAVAILABLE")],
            "create-bvi: UNAVAILABLE",
            &["create-bvi UNAVAILABLE"],
        ),
    ];
    for (cause, outcome, failed, result, listed) in table {
        let (r, e, l) = decision_result(cause, outcome, failed);
        assert_eq!(r, *result, "{cause} {outcome:?} {failed:?}");
        assert_eq!(l, *listed, "{cause} {outcome:?} {failed:?}");
        assert_eq!(e.is_some(), outcome.is_err(), "{cause} {outcome:?}");
    }
    // A long list is cut, saying how many more failed.
    let many: Vec<FailedCall> = (0..10)
        .map(|i| call("bind", &format!("m{i}"), "UNAVAILABLE"))
        .collect();
    let (_, _, l) = decision_result("resync", &Ok(()), &many);
    assert_eq!(l.len(), 9);
    assert_eq!(l[8], "… and 2 more");
    // The record and its event carry the list.
    let mut r = rec(1);
    r.failed_calls = vec![
        "release r1 UNAVAILABLE".into(),
        "bind r2 UNAVAILABLE".into(),
    ];
    assert_eq!(
        r.event_fields()["failed-calls"],
        "release r1 UNAVAILABLE, bind r2 UNAVAILABLE"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["failed-calls"][1], "bind r2 UNAVAILABLE");
    assert!(
        serde_json::to_value(rec(2))
            .unwrap()
            .get("failed-calls")
            .is_none()
    );
}
