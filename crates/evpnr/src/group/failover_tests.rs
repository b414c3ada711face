//! Table tests of the failover decision: one or more rows per rule of
//! `docs/failover.md` (the rule is the row's first column).
use std::time::Duration;

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A member from a compact spec: `id:prio` then flags — `down` (not
/// reachable), `sick` (unhealthy), `drained`, `silent` (its eVPN of the
/// group disabled), `fit=<ms>` (fit since; default 0), and its report of
/// the primary's announcement: `gone` (withdrawn, its BGP sessions up for
/// 60 s), `gone-up=<ms>` (withdrawn, sessions up that long), `seen` (still
/// announced).
fn member(spec: &str) -> Member {
    let mut parts = spec.split_whitespace();
    let (id, prio) = parts.next().unwrap().split_once(':').unwrap();
    let mut m = Member {
        id: id.into(),
        priority: prio.parse().unwrap(),
        reachable: true,
        unhealthy: None,
        fit_since: Some(ms(0)),
        drained: false,
        witness: None,
        silent: false,
    };
    let witness = |withdrawn, up| {
        Some(Witness {
            withdrawn,
            fabric_up: ms(up),
        })
    };
    for f in parts {
        match f {
            "down" => m.reachable = false,
            "sick" => m.unhealthy = Some("bgp-sessions: 0 of 2 established".into()),
            "drained" => m.drained = true,
            "gone" => m.witness = witness(true, 60_000),
            "seen" => m.witness = witness(false, 60_000),
            f if f.starts_with("gone-up=") => {
                m.witness = witness(true, f[8..].parse().unwrap());
            }
            "silent" => m.silent = true,
            f => m.fit_since = Some(ms(f.strip_prefix("fit=").unwrap().parse().unwrap())),
        }
        if !m.reachable || m.unhealthy.is_some() {
            m.fit_since = None;
        }
    }
    m
}

fn auto() -> Policy {
    Policy {
        auto: true,
        preempt: None,
        hold_down: ms(10_000),
        flap_window: ms(300_000),
        flap_limit: 3,
        warm_up: ms(5_000),
    }
}

struct Row {
    rule: &'static str,
    what: &'static str,
    policy: Policy,
    primary: Option<&'static str>,
    members: &'static [&'static str],
    recent: &'static [u64],
    suspended: bool,
    now: u64,
    want: &'static str,
}

fn show(d: &Decision) -> String {
    match d {
        Decision::Stay => "stay".into(),
        Decision::Move { to, reason } => format!("move {to} {}", reason.name()),
        Decision::Held { reason, held } => {
            let h = match held {
                Held::Manual => "manual".to_string(),
                Held::Suspended => "suspended".into(),
                Held::HoldDown { until } => format!("hold-down until={}", until.as_millis()),
                Held::Flapping { moves, until } => {
                    format!("flapping moves={moves} until={}", until.as_millis())
                }
                Held::NoCandidate { why } => format!(
                    "no-candidate {}",
                    why.iter()
                        .map(|(m, r)| format!("{m}={r}"))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                Held::PreemptDelay { until } => {
                    format!("preempt-delay until={}", until.as_millis())
                }
                Held::Silent => "silent".into(),
                Held::PrimaryAnswers => "primary-answers".into(),
            };
            format!("held {} {h}", reason.name())
        }
    }
}

fn row(rule: &'static str, what: &'static str) -> Row {
    Row {
        rule,
        what,
        policy: auto(),
        primary: Some("a"),
        members: &[],
        recent: &[],
        suspended: false,
        now: 60_000,
        want: "",
    }
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            members: &["a:100", "b:50"],
            want: "stay",
            ..row("F0", "a fit primary stays")
        },
        Row {
            policy: Policy::default(),
            members: &["a:100 down", "b:50"],
            want: "held primary-unreachable manual",
            ..row("F1", "a manual group never moves on its own")
        },
        Row {
            members: &["a:100 down", "b:50"],
            suspended: true,
            want: "held primary-unreachable suspended",
            ..row("F1", "the global switch suspends an auto group")
        },
        Row {
            policy: Policy::default(),
            members: &["a:100 drained", "b:50"],
            want: "move b primary-drained",
            ..row("F2", "a drained primary moves away, in a manual group too")
        },
        Row {
            members: &["a:100 drained", "b:50"],
            suspended: true,
            want: "move b primary-drained",
            ..row(
                "F2",
                "a drain is an operator's request: suspension does not hold it",
            )
        },
        Row {
            members: &["a:100 drained", "b:50"],
            recent: &[59_000],
            want: "move b primary-drained",
            ..row("F2", "a drain is not held down")
        },
        Row {
            members: &["a:100 down", "b:90 drained", "c:50"],
            want: "move c primary-unreachable",
            ..row("F3", "a drained member is never a candidate")
        },
        Row {
            members: &["a:100 down", "b:90 fit=58000", "c:50"],
            want: "move c primary-unreachable",
            ..row("F3", "a member still warming up is not a candidate")
        },
        Row {
            members: &["a:100 down", "b:90 fit=58000", "c:50 sick", "d:40 down"],
            want: "held primary-unreachable no-candidate b=warming up for 3000 ms more,c=unhealthy: bgp-sessions: 0 of 2 established,d=unreachable",
            ..row("F3", "no eligible member: held, each member's reason named")
        },
        Row {
            members: &["a:100 down", "c:50", "b:50", "d:70"],
            want: "move d primary-unreachable",
            ..row("F4", "the highest priority wins")
        },
        Row {
            members: &["a:100 down", "c:50", "b:50"],
            want: "move b primary-unreachable",
            ..row("F4", "a tie goes to the smaller ID")
        },
        Row {
            members: &["a:100 sick", "b:50"],
            want: "move b primary-unhealthy",
            ..row(
                "F5",
                "a reachable, unhealthy primary moves to a healthy candidate",
            )
        },
        Row {
            members: &["a:100 sick", "b:50 sick"],
            want: "held primary-unhealthy no-candidate b=unhealthy: bgp-sessions: 0 of 2 established",
            ..row("F5", "never to a candidate that is not healthier")
        },
        Row {
            members: &["a:100 down", "b:50"],
            want: "move b primary-unreachable",
            ..row("F6", "an unreachable primary: takeover")
        },
        Row {
            members: &["a:100 down silent", "b:50"],
            want: "held primary-unreachable silent",
            ..row(
                "F12",
                "an unreachable primary whose eVPN is disabled: its silence is no evidence",
            )
        },
        Row {
            members: &["a:100 down silent", "b:50 gone"],
            want: "held primary-withdrawn silent",
            ..row(
                "F12",
                "an unreachable silent primary reported withdrawn: it never announced (chaos seed 5)",
            )
        },
        Row {
            members: &["a:100 silent", "b:50 gone"],
            want: "move b primary-withdrawn",
            ..row(
                "F12",
                "a reachable silent primary reported withdrawn: released first, then bound",
            )
        },
        Row {
            members: &["a:100 silent", "b:50"],
            want: "stay",
            ..row("F12", "a reachable silent primary stays")
        },
        Row {
            members: &["a:100 down", "b:50 silent"],
            want: "move b primary-unreachable",
            ..row(
                "F12",
                "a silent candidate is the driver's business (unfit), not this rule's",
            )
        },
        Row {
            members: &["a:100", "b:50 gone"],
            want: "move b primary-withdrawn",
            ..row(
                "F6",
                "a withdrawn announcement: takeover (a, which still answers, is released first)",
            )
        },
        Row {
            members: &["a:100 down", "b:50 gone"],
            want: "move b primary-withdrawn",
            ..row(
                "F6",
                "withdrawn and unreachable: named by the fastest trigger",
            )
        },
        Row {
            members: &["a:100 drained", "b:50 gone"],
            want: "move b primary-drained",
            ..row("F6", "a drained primary's withdrawal is still a drain")
        },
        Row {
            members: &["a:100", "b:50 gone-up=0"],
            want: "stay",
            ..row(
                "F11",
                "a witness whose BGP sessions are down (cut off from the fabric) is not believed",
            )
        },
        Row {
            members: &["a:100", "b:50 gone-up=4999"],
            want: "stay",
            ..row(
                "F11",
                "a witness whose sessions are up for less than the warm-up is not believed",
            )
        },
        Row {
            members: &["a:100", "b:50 gone fit=58000"],
            want: "stay",
            ..row("F11", "a witness still warming up is not believed")
        },
        Row {
            members: &["a:100", "b:50 gone down"],
            want: "stay",
            ..row(
                "F11",
                "an unreachable witness's last report is not believed",
            )
        },
        Row {
            members: &["a:100", "b:50 sick gone"],
            want: "stay",
            ..row("F11", "an unhealthy witness is not believed")
        },
        Row {
            members: &["a:100 gone", "b:50"],
            want: "stay",
            ..row("F11", "the primary's own report counts for nothing")
        },
        Row {
            members: &["a:100", "b:50 seen", "c:40 seen"],
            want: "stay",
            ..row("F11", "still announced: nothing to do")
        },
        Row {
            members: &["a:100", "b:50", "c:40 gone"],
            want: "move b primary-withdrawn",
            ..row(
                "F11",
                "any believed witness triggers; the best candidate takes over",
            )
        },
        Row {
            members: &["a:100", "b:50 drained gone", "c:40"],
            want: "move c primary-withdrawn",
            ..row("F11", "a drained member is a witness, not a candidate")
        },
        Row {
            members: &["a:100", "b:50 gone"],
            suspended: true,
            want: "held primary-withdrawn suspended",
            ..row("F11", "a believed withdrawal is held by the switch")
        },
        Row {
            policy: Policy {
                warm_up: ms(0),
                ..auto()
            },
            members: &["a:100", "b:50 gone-up=0"],
            want: "stay",
            ..row(
                "F11",
                "without a warm-up, sessions that are down still make no witness",
            )
        },
        Row {
            policy: Policy {
                warm_up: ms(0),
                ..auto()
            },
            members: &["a:100", "b:50 gone-up=1"],
            want: "move b primary-withdrawn",
            ..row("F11", "without a warm-up, any established session will do")
        },
        Row {
            members: &["a:100 down", "b:50 down"],
            want: "held primary-unreachable no-candidate b=unreachable",
            ..row(
                "F6",
                "simultaneous failures: primary and only candidate down",
            )
        },
        Row {
            members: &["a:100 down", "b:50"],
            recent: &[55_000],
            want: "held primary-unreachable hold-down until=65000",
            ..row("F7", "within the hold-down after the last move")
        },
        Row {
            members: &["a:100 down", "b:50"],
            recent: &[40_000],
            want: "move b primary-unreachable",
            ..row("F7", "after the hold-down")
        },
        Row {
            members: &["a:100 down", "b:50"],
            recent: &[10_000, 20_000, 30_000],
            want: "held primary-unreachable flapping moves=3 until=310000",
            ..row("F8", "flap damping: the limit reached within the window")
        },
        Row {
            members: &["a:100 down", "b:50"],
            recent: &[10_000, 20_000, 30_000],
            now: 310_000,
            want: "move b primary-unreachable",
            ..row("F8", "the oldest move left the window")
        },
        Row {
            primary: Some("b"),
            policy: Policy {
                preempt: Some(ms(2_000)),
                ..auto()
            },
            members: &["a:100 fit=50000", "b:50"],
            want: "move a preempt",
            ..row("F9", "a recovered higher-priority member preempts")
        },
        Row {
            primary: Some("b"),
            policy: Policy {
                preempt: Some(ms(20_000)),
                ..auto()
            },
            members: &["a:100 fit=50000", "b:50"],
            want: "held preempt preempt-delay until=70000",
            ..row("F9", "preemption waits out its delay")
        },
        Row {
            primary: Some("b"),
            members: &["a:100 fit=50000", "b:50"],
            want: "stay",
            ..row("F9", "no preemption when it is off")
        },
        Row {
            primary: Some("b"),
            policy: Policy {
                preempt: Some(ms(0)),
                ..auto()
            },
            members: &["a:50", "b:50", "c:10"],
            want: "stay",
            ..row("F9", "only a strictly higher priority preempts")
        },
        Row {
            primary: None,
            members: &["a:100", "b:50"],
            want: "move a no-primary",
            ..row(
                "F10",
                "an auto group without a primary gets the best candidate",
            )
        },
        Row {
            primary: None,
            policy: Policy::default(),
            members: &["a:100", "b:50"],
            want: "held no-primary manual",
            ..row(
                "F10",
                "a manual group without a primary waits for an operator",
            )
        },
    ]
}

#[test]
fn failover_decisions() {
    let mut failed = Vec::new();
    for r in rows() {
        let v = View {
            primary: r.primary.map(str::to_string),
            members: r.members.iter().map(|s| member(s)).collect(),
            recent_moves: r.recent.iter().map(|&t| ms(t)).collect(),
            suspended: r.suspended,
            bvi: true,
        };
        let got = show(&decide(&r.policy, ms(r.now), &v));
        if got != r.want {
            failed.push(format!(
                "{} {}: want {:?}, got {got:?}",
                r.rule, r.what, r.want
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn a_group_without_a_gateway_never_moves() {
    let v = View {
        primary: None,
        members: vec![member("a:1")],
        recent_moves: vec![],
        suspended: false,
        bvi: false,
    };
    assert_eq!(decide(&auto(), ms(60_000), &v), Decision::Stay);
}

#[test]
fn every_decision_rule_has_a_row() {
    let have: std::collections::BTreeSet<&str> = rows().iter().map(|r| r.rule).collect();
    let have: std::collections::BTreeSet<&str> = have
        .into_iter()
        .chain(late_call_rows().iter().map(|r| r.0))
        .chain(takeover_release_rows().iter().map(|r| r.0))
        .chain(release_evidence_rows().iter().map(|r| r.0))
        .collect();
    for f in 1..=15 {
        assert!(have.contains(format!("F{f}").as_str()), "no row for F{f}");
    }
}

/// (rule, method, connection up, member timeout ms, the deadline in ms or
/// None: fails at once).
type LateRow = (&'static str, &'static str, bool, u64, Option<u64>);

fn late_call_rows() -> Vec<LateRow> {
    vec![
        // A late member whose connection is up still gets the release,
        // bounded short.
        ("F13", "ReleaseGroupBVI", true, 3_000, Some(500)),
        ("F13", "ReleaseGroupBVI", true, 200, Some(200)),
        // Its connection is down: the release is skipped at once.
        ("F13", "ReleaseGroupBVI", false, 3_000, None),
        // Any other call to a late member fails at once.
        ("F13", "BindGroupBVI", true, 3_000, None),
        ("F13", "ListBVIs", true, 3_000, None),
    ]
}

#[test]
fn a_late_member_is_still_asked_to_release_while_connected() {
    for (rule, method, up, timeout, want) in late_call_rows() {
        let got = late_member_call(method, up, ms(timeout));
        assert_eq!(
            got,
            want.map(ms),
            "{rule}: {method} up={up} timeout={timeout}"
        );
    }
}

/// (rule, connection up, release-wait ms, member timeout ms, the wait in
/// ms or None: not sent).
type TakeoverReleaseRow = (&'static str, bool, u64, u64, Option<u64>);

fn takeover_release_rows() -> Vec<TakeoverReleaseRow> {
    vec![
        // Connection up: sent, and waited for at most release-wait,
        // whatever member-timeout is (a dead host sends no FIN).
        ("F14", true, 100, 5_000, Some(100)),
        ("F14", true, 15, 30_000, Some(15)),
        // Never longer than member-timeout.
        ("F14", true, 500, 200, Some(200)),
        // Connection down: not sent, not released.
        ("F14", false, 100, 5_000, None),
    ]
}

#[test]
fn a_takeover_waits_for_the_release_at_most_release_wait() {
    for (rule, up, wait, timeout, want) in takeover_release_rows() {
        let got = takeover_release_wait(up, ms(wait), ms(timeout));
        assert_eq!(
            got,
            want.map(ms),
            "{rule}: up={up} wait={wait} timeout={timeout}"
        );
    }
}

/// How the old primary's release ended, in a row of [`release_evidence_rows`].
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// Answered OK with the look (bird, underlay).
    Answered,
    /// Answered OK by an evpnd that reports no look.
    NoLook,
    /// Not answered within release-wait (or its connection down): skipped.
    NotAnswered,
    /// Answered with an error it could not reach past: skipped.
    Failed,
}

/// (rule, the old primary's answer, its BIRD, its tracked underlay
/// interfaces — `up`, `down` each, empty: none tracked —, the settle).
type EvidenceRow = (
    &'static str,
    Answer,
    crate::southbound::BirdSeen,
    &'static [bool],
    TakeoverSettle,
);

fn release_evidence_rows() -> Vec<EvidenceRow> {
    use crate::southbound::BirdSeen::{NotRunning as Dead, Running, Unknown};
    use Answer::*;
    use TakeoverSettle::{Least, ReleasedEvidence as Skip};
    vec![
        // Answered, BIRD not running, every tracked link up: its kernel
        // closed its BGP sessions and the closures reached the peers.
        ("F15", Answered, Dead, &[true], Skip),
        ("F15", Answered, Dead, &[true, true], Skip),
        // BIRD running (scenario 3: the peers drop its routes by their own
        // BFD, at skewed times) or unknown (hung, timed out).
        ("F15", Answered, Running, &[true], Least),
        ("F15", Answered, Unknown, &[true], Least),
        // A tracked link down or missing: the closures may not have left.
        ("F15", Answered, Dead, &[false], Least),
        ("F15", Answered, Dead, &[true, false], Least),
        ("F15", Answered, Running, &[false], Least),
        // No link tracked: unknown.
        ("F15", Answered, Dead, &[], Least),
        // An evpnd that reports no look.
        ("F15", NoLook, Dead, &[true], Least),
        // No answer in time, or a failed release: no evidence at all.
        ("F15", NotAnswered, Dead, &[true], Least),
        ("F15", Failed, Dead, &[true], Least),
    ]
}

/// A release look: BIRD as seen, and the tracked links eth0, eth1, … up
/// or not.
fn release_look(
    bird: crate::southbound::BirdSeen,
    links: &[bool],
) -> crate::southbound::ReleaseEvidence {
    crate::southbound::ReleaseEvidence {
        bird,
        underlay: links
            .iter()
            .enumerate()
            .map(|(i, up)| (format!("eth{i}"), *up))
            .collect(),
    }
}

#[test]
fn a_takeover_skips_the_least_settle_only_on_its_old_primarys_evidence() {
    for (rule, answer, bird, links, want) in release_evidence_rows() {
        let look = release_look(bird, links);
        let (mut answered, mut skipped) = (std::collections::BTreeMap::new(), vec![]);
        match answer {
            Answer::Answered => {
                answered.insert("a".to_string(), release_proves(Some(&look)));
            }
            Answer::NoLook => {
                answered.insert("a".to_string(), release_proves(None));
            }
            Answer::NotAnswered | Answer::Failed => skipped.push("a".to_string()),
        }
        let got = takeover_settle(Some("a"), &answered, &skipped);
        assert_eq!(got, want, "{rule}: {answer:?} {bird:?} {links:?}");
    }
}

/// F15 over the whole takeover: the old primary's evidence is needed, and
/// every other member it released must have shown the same, none skipped.
#[test]
fn a_takeover_skips_the_least_settle_only_when_every_release_proved_it() {
    let yes = |ids: &[(&str, bool)]| -> std::collections::BTreeMap<String, bool> {
        ids.iter().map(|(i, p)| (i.to_string(), *p)).collect()
    };
    let skip = TakeoverSettle::ReleasedEvidence;
    let least = TakeoverSettle::Least;
    // (old primary, answers, skipped, want)
    let rows: Vec<(Option<&str>, _, Vec<String>, _)> = vec![
        (Some("a"), yes(&[("a", true)]), vec![], skip),
        (Some("a"), yes(&[("a", true), ("c", true)]), vec![], skip),
        // A stale holder released without the evidence.
        (Some("a"), yes(&[("a", true), ("c", false)]), vec![], least),
        // A stale holder skipped (it may still announce).
        (Some("a"), yes(&[("a", true)]), vec!["c".into()], least),
        // Another member proved it, not the old primary.
        (Some("a"), yes(&[("c", true)]), vec![], least),
        // No old primary: nobody to prove anything.
        (None, yes(&[("c", true)]), vec![], least),
        (None, yes(&[]), vec![], least),
    ];
    for (old, answered, skipped, want) in rows {
        assert_eq!(
            takeover_settle(old, &answered, &skipped),
            want,
            "F15: old={old:?} {answered:?} skipped={skipped:?}"
        );
    }
}

/// F16: a released member is cut off from the fabric when its answer shows
/// a tracked underlay interface down or missing, whatever its BIRD does;
/// no interface tracked or no look is not known to be cut off.
#[test]
fn a_release_shows_its_member_cut_off_only_by_a_tracked_link_down() {
    use crate::southbound::BirdSeen::{NotRunning as Dead, Running, Unknown};
    type Look = Option<(crate::southbound::BirdSeen, &'static [bool])>;
    let rows: &[(Look, bool)] = &[
        (Some((Running, &[false])), true),
        (Some((Dead, &[false])), true),
        (Some((Unknown, &[true, false])), true),
        (Some((Running, &[true])), false),
        (Some((Dead, &[true, true])), false),
        (Some((Running, &[])), false),
        (None, false),
    ];
    for (look, want) in rows {
        let look = look.map(|(bird, links)| release_look(bird, links));
        assert_eq!(release_cut_off(look.as_ref()), *want, "F16: {look:?}");
    }
}
