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
    }
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
    let log = AuditLog::open(
        d.path(),
        "evpnr",
        "none",
        AuditConfig::default(),
        EventBroker::new("", 64),
    )
    .unwrap();
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
