//! Table-driven tests of the check state machine and the combination.
use super::*;

fn ok() -> Sample {
    Sample::ok()
}

fn bad(e: &str) -> Sample {
    Sample::fail(e)
}

/// (rise, fall, samples as a string of '+'/'-', the status after each)
#[test]
fn rise_fall_and_flapping() {
    use Status::{Down as D, Up as U};
    let rows: &[(u32, u32, &str, &[Status])] = &[
        // the first result decides at once, either way
        (2, 3, "+", &[U]),
        (2, 3, "-", &[D]),
        // down after `fall` consecutive failures
        (2, 3, "+---", &[U, U, U, D]),
        // a success resets the failure count (flapping never goes down)
        (2, 3, "+--+--+--", &[U, U, U, U, U, U, U, U, U]),
        // never up since start: the first success brings it up
        (2, 3, "----+-++", &[D, D, D, D, U, U, U, U]),
        // up again after `rise` consecutive successes once it has been up
        (2, 3, "+---+-++", &[U, U, U, D, D, D, D, U]),
        // rise 1 / fall 1: every sample decides
        (1, 1, "+-+-", &[U, D, U, D]),
        // a long outage, then recovery
        (3, 2, "+--+++", &[U, U, D, D, D, U]),
        // a hard failure (BIRD gone) is down at once, whatever `fall`
        (2, 3, "+x", &[U, D]),
        (2, 3, "+-x", &[U, U, D]),
        // ... and comes up only after `rise` successes (flap protection)
        (2, 3, "+x+x++", &[U, D, D, D, D, U]),
        (2, 3, "x+", &[D, U]),
    ];
    for (rise, fall, seq, want) in rows {
        let mut c = CheckState::default();
        let got: Vec<Status> = seq
            .chars()
            .map(|ch| {
                let s = match ch {
                    '+' => ok(),
                    'x' => Sample::gone("gone"),
                    _ => bad("x"),
                };
                c.record(*rise, *fall, &s);
                c.status
            })
            .collect();
        assert_eq!(&got, want, "rise {rise} fall {fall} {seq}");
    }
}

/// Samples count in the order their evidence was taken: (rise, fall,
/// samples as (taken at ms, '+' / '-' / 'x'), the status and failure count
/// after each). The `bird` probe's success taken at 10 ms and recorded
/// after the socket watcher's hard failure at 12 ms is dropped: with rise 1
/// it would bring the check up next to a dead BIRD.
#[test]
fn a_sample_taken_before_the_last_recorded_one_is_dropped() {
    use Status::{Down as D, Up as U};
    type Row<'a> = (u32, u32, &'a [(u64, char)], &'a [(Status, u32)]);
    let rows: &[Row] = &[
        // the stale success is dropped: down, one failure counted
        (
            1,
            3,
            &[(0, '+'), (12, 'x'), (10, '+')],
            &[(U, 0), (D, 1), (D, 1)],
        ),
        (
            2,
            3,
            &[(0, '+'), (12, 'x'), (10, '+')],
            &[(U, 0), (D, 1), (D, 1)],
        ),
        // a success taken after the failure counts
        (
            1,
            3,
            &[(0, '+'), (12, 'x'), (13, '+')],
            &[(U, 0), (D, 1), (U, 0)],
        ),
        // the same instant is not older: it counts
        (
            1,
            3,
            &[(0, '+'), (12, 'x'), (12, '+')],
            &[(U, 0), (D, 1), (U, 0)],
        ),
        // a stale failure is dropped as well
        (
            2,
            2,
            &[(0, '+'), (20, '+'), (15, '-')],
            &[(U, 0), (U, 0), (U, 0)],
        ),
    ];
    let t0 = std::time::Instant::now();
    for (rise, fall, seq, want) in rows {
        let mut c = CheckState::default();
        let got: Vec<(Status, u32)> = seq
            .iter()
            .map(|(ms, ch)| {
                let s = match ch {
                    '+' => ok(),
                    'x' => Sample::gone("gone"),
                    _ => bad("x"),
                };
                c.record(*rise, *fall, &s.taken_at(t0 + Duration::from_millis(*ms)));
                (c.status, c.failures)
            })
            .collect();
        assert_eq!(&got, want, "rise {rise} fall {fall} {seq:?}");
    }
    // Unstamped samples count in order of arrival, as before.
    let mut c = CheckState::default();
    c.record(1, 3, &Sample::gone("gone").taken_at(t0));
    assert_eq!(c.record(1, 3, &ok()), Some(Status::Up));
}

#[test]
fn a_change_is_reported_once_with_the_error() {
    let mut c = CheckState::default();
    assert_eq!(c.record(2, 2, &ok()), Some(Status::Up));
    assert_eq!(c.record(2, 2, &bad("refused")), None);
    assert_eq!(c.record(2, 2, &bad("timed out")), Some(Status::Down));
    assert_eq!(c.last_error, "timed out");
    assert_eq!(c.record(2, 2, &bad("timed out")), None);
    assert_eq!(c.record(2, 2, &ok()), None);
    assert_eq!(c.record(2, 2, &ok()), Some(Status::Up));
    assert!(!c.fatal);
}

fn st(status: Status, err: &str) -> CheckState {
    CheckState {
        status,
        last_error: err.into(),
        ..Default::default()
    }
}

/// (check states) -> (verdict status, reason)
#[test]
fn combination() {
    use Status::{Down as D, Unknown as N, Up as U};
    type Row<'a> = (&'a [(&'a str, Status, &'a str)], Status, &'a str);
    let rows: &[Row] = &[
        (&[], U, "all checks up"),
        (&[("bird", U, ""), ("bgp", U, "")], U, "all checks up"),
        (
            &[("bird", U, ""), ("bgp", N, "")],
            N,
            "no result yet from bgp",
        ),
        (
            &[("bird", D, "refused"), ("bgp", N, "")],
            D,
            "bird: refused",
        ),
        (
            &[("bird", D, "refused"), ("bgp", D, "0 of 2")],
            D,
            "bird: refused; bgp: 0 of 2",
        ),
        // a recovered check keeps its last error, but the verdict is up
        (&[("bird", U, "refused")], U, "all checks up"),
    ];
    for (checks, want, reason) in rows {
        let states: Vec<(&str, CheckState)> =
            checks.iter().map(|(n, s, e)| (*n, st(*s, e))).collect();
        let v = combine(states.iter().map(|(n, c)| (*n, c)));
        assert_eq!(
            (v.status, v.reason.as_str()),
            (*want, *reason),
            "{checks:?}"
        );
    }
}

#[test]
fn board_host_and_evpn_verdicts_and_changes() {
    let mut b = Board::default();
    b.add_host_check("bird");
    let ch = b.sync_evpns(&["red".into()], &["protocol"]);
    assert!(ch.is_empty(), "unknown at first is no change: {ch:?}");
    let bird = CheckId::host("bird");
    let proto = CheckId::evpn("red", "protocol");
    // BIRD up: the host is up; red still waits for its protocol check.
    let ch = b.record(&bird, 2, 3, &ok());
    assert!(ch.contains(&Change::Scope {
        scope: Scope::Host,
        verdict: Verdict {
            status: Status::Up,
            reason: "all checks up".into()
        }
    }));
    let ch = b.record(&proto, 2, 3, &ok());
    assert!(
        matches!(&ch[..], [Change::Check { .. }, Change::Scope { scope: Scope::Evpn(s), .. }] if s == "red"),
        "{ch:?}"
    );
    assert_eq!(b.summary(None, 0).bind_refusal("red"), None);
    // BIRD dies (fatal samples): the host and red go down after `fall`.
    for _ in 0..2 {
        assert!(b.record(&bird, 2, 3, &Sample::fatal("refused")).is_empty());
    }
    assert_eq!(b.fatal(), None, "not down yet");
    let ch = b.record(&bird, 2, 3, &Sample::fatal("refused"));
    let scopes: Vec<&Scope> = ch
        .iter()
        .filter_map(|c| match c {
            Change::Scope { scope, .. } => Some(scope),
            _ => None,
        })
        .collect();
    assert_eq!(scopes, [&Scope::Host, &Scope::Evpn("red".into())]);
    assert_eq!(b.fatal().as_deref(), Some("bird: refused"));
    let refusal = b.summary(None, 0).bind_refusal("red").unwrap();
    assert!(refusal.contains("bird: refused"), "{refusal}");
    // The eVPN is deleted: its checks and verdict go.
    b.sync_evpns(&[], &["protocol"]);
    assert!(b.summary(None, 0).evpns.is_empty());
    // A non-fatal down check is no fencing reason.
    let mut b = Board::default();
    b.record(&CheckId::host("bgp"), 1, 1, &bad("1 of 2"));
    assert_eq!(b.fatal(), None);
}

#[test]
fn devices_down_refuses_a_bind_of_that_evpn_only() {
    let mut b = Board::default();
    b.sync_evpns(&["red".into(), "blue".into()], &["devices"]);
    b.record(
        &CheckId::evpn("red", "devices"),
        1,
        1,
        &bad("brg-red is missing"),
    );
    b.record(&CheckId::evpn("blue", "devices"), 1, 1, &ok());
    let s = b.summary(None, 0);
    assert_eq!(
        s.bind_refusal("red").as_deref(),
        Some("devices: brg-red is missing")
    );
    assert_eq!(s.bind_refusal("blue"), None);
}

/// BIRD's protocol list -> the `bgp` check's sample.
#[test]
fn bgp_rule_table() {
    use bird_ctl::{ProtocolInfo, status::ProtoState};
    let p = |name: &str, proto: &str, state: ProtoState, info: &str| ProtocolInfo {
        name: name.into(),
        proto: proto.into(),
        table: "---".into(),
        state,
        since: String::new(),
        info: info.into(),
        message: None,
        channels: Vec::new(),
        details: Vec::new(),
    };
    let up = |n: &str| p(n, "BGP", ProtoState::Up, "Established");
    let down = |n: &str| {
        p(
            n,
            "BGP",
            ProtoState::Start,
            "Active        Socket: Connection refused",
        )
    };
    let dev = p("device1", "Device", ProtoState::Up, "");
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // (protocols, min, names) -> (ok, fatal)
    type Row = (Vec<ProtocolInfo>, u32, Vec<String>, bool, bool);
    let rows: Vec<Row> = vec![
        // no BGP at all: nothing to check
        (vec![dev.clone()], 1, vec![], true, false),
        (vec![up("rr1"), down("rr2")], 1, vec![], true, false),
        (vec![up("rr1"), down("rr2")], 2, vec![], false, false),
        // all down: fatal (a self-fencing reason)
        (vec![down("rr1"), down("rr2")], 1, vec![], false, true),
        // named protocols only
        (
            vec![up("rr1"), down("rr2")],
            1,
            names(&["rr2"]),
            false,
            true,
        ),
        // a named protocol BIRD does not have counts as down
        (vec![up("rr1")], 2, names(&["rr1", "rr9"]), false, false),
        // min 0: never fails
        (vec![down("rr1")], 0, vec![], true, false),
    ];
    for (i, (protos, min, n, ok, fatal)) in rows.into_iter().enumerate() {
        let s = bgp_rule(&protos, min, &n);
        assert_eq!((s.result.is_ok(), s.fatal), (ok, fatal), "row {i}: {s:?}");
    }
}
