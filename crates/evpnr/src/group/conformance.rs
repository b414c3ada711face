//! Conformance of the group state machine: replays every recorded case in
//! `tests/group-machine/*.txt` (format in `docs/group-machine.md`), and
//! shows the suite has teeth: with any one rule switched off, at least one
//! case fails.
use std::{collections::BTreeSet, fmt::Write, path::PathBuf};

use evpn_model::{
    Error,
    settle::{SettleOutcome, Settled},
};

use super::machine::{
    Core, Event, Facts, Input, Machine, MoveOp, Output, ReleaseEvidence, Rule, Seen, Settle,
    TakeoverSettle,
};
use crate::southbound::BirdSeen;

struct Case {
    file: String,
    line: usize,
    title: String,
    rules: Vec<Rule>,
    core: Core,
    facts: Facts,
    pending: Option<String>,
    /// Each input with the outputs expected and the core checks after it.
    steps: Vec<Step>,
}

struct Step {
    line: usize,
    /// `~ key=value ...`: another operation changed the stored group
    /// before this input (the driver reloads the core before every step).
    changed: Option<String>,
    input: Input,
    want: Vec<String>,
    check: Option<String>,
}

fn set(s: &str) -> BTreeSet<String> {
    s.split(',')
        .filter(|x| !x.is_empty() && *x != "-")
        .map(String::from)
        .collect()
}

fn rule(id: &str) -> Rule {
    let n: usize = id
        .trim_start_matches('R')
        .parse()
        .unwrap_or_else(|_| panic!("bad rule {id}"));
    Rule::ALL[n - 1]
}

fn rule_id(r: Rule) -> String {
    let i = Rule::ALL.iter().position(|x| *x == r).unwrap_or(0);
    format!("R{}", i + 1)
}

fn error(kind: &str) -> Error {
    match kind {
        "unavailable" => Error::Unavailable("down".into()),
        "timeout" => Error::Timeout("slow".into()),
        "refused" => Error::Aborted("refused".into()),
        "disk" => Error::Unavailable("disk full".into()),
        // A takeover's bind refused by the member without evidence.
        "no-evidence" => Error::FailedPrecondition("announced by 192.0.2.9".into()),
        k => panic!("unknown error kind {k}"),
    }
}

/// The evidence wait a member reports with its bind: none named, no other
/// VTEP announces the vMAC (one look, no wait); `announced=V1,V2`: still
/// announced by these; `unreadable`: it could not look; `unreported`: it
/// reported nothing.
fn outcome(w: Option<&str>) -> Option<SettleOutcome> {
    let settled = match w {
        None => Settled::Evidence,
        Some("unreported") => return None,
        Some("unreadable") => Settled::NoEvidence("bird down".into()),
        Some(x) => match x.strip_prefix("announced=") {
            Some(v) => Settled::TimedOut {
                vteps: v.split(',').map(String::from).collect(),
            },
            None => panic!("unknown wait outcome {x}"),
        },
    };
    Some(SettleOutcome {
        settled,
        polls: 1,
        waited: std::time::Duration::ZERO,
    })
}

fn input(s: &str) -> Input {
    let w: Vec<&str> = s.split_whitespace().collect();
    let m = |i: usize| w.get(i).map(|x| x.to_string()).unwrap_or_default();
    match w[0] {
        "move" => Input::Move {
            target: m(1),
            force: w.get(2) == Some(&"force"),
            op: MoveOp::Move,
        },
        "bind" => Input::Move {
            target: m(1),
            force: false,
            op: MoveOp::Bind,
        },
        "failover" => Input::Move {
            target: m(1),
            force: false,
            op: MoveOp::Failover,
        },
        "takeover" => Input::Move {
            target: m(1),
            force: true,
            op: MoveOp::Takeover,
        },
        "release" => Input::Release {
            member: m(1),
            cause: "released",
        },
        "leave" => Input::Leave {
            member: m(1),
            cause: "primary-removed",
        },
        "delete-bvi" => Input::DeleteBvi,
        "addresses" => Input::Addresses { member: m(1) },
        "bind-ok" => Input::BindOk {
            member: m(1),
            outcome: outcome(w.get(2).copied()),
        },
        "bind-failed" => Input::BindFailed {
            member: m(1),
            error: error(&m(2)),
        },
        // `released <m> [proven|bird-running|underlay-down|untracked]`: the
        // member's look at its links after the release (F15); none: an
        // evpnd that reports none.
        "released" => Input::Released {
            member: m(1),
            evidence: w.get(2).map(|e| release_evidence(e)),
        },
        "release-failed" => Input::ReleaseFailed {
            member: m(1),
            error: error(&m(2)),
        },
        "persisted" => Input::Persisted,
        "persist-failed" => Input::PersistFailed {
            error: error("disk"),
        },
        "connected" => Input::Connectivity {
            member: m(1),
            connected: true,
        },
        "disconnected" => Input::Connectivity {
            member: m(1),
            connected: false,
        },
        "store" => Input::StoreHealth {
            error: (m(1) != "ok").then(|| w[1..].join(" ")),
        },
        "observed" => Input::Observed {
            member: m(1),
            seen: match w.get(2).copied() {
                Some("unbound") => Seen::Unbound,
                Some("stale") => Seen::StaleAddresses,
                Some("holds") => Seen::Holds,
                Some("gone") => Seen::Gone,
                x => panic!("unknown observation {x:?}"),
            },
        },
        "tick" => Input::Tick,
        x => panic!("unknown input {x}"),
    }
}

/// A release's evidence named in a case file (F15).
fn release_evidence(name: &str) -> ReleaseEvidence {
    let (bird, up) = match name {
        "proven" => (BirdSeen::NotRunning, Some(true)),
        "bird-running" => (BirdSeen::Running, Some(true)),
        "underlay-down" => (BirdSeen::NotRunning, Some(false)),
        "untracked" => (BirdSeen::NotRunning, None),
        x => panic!("unknown release evidence {x}"),
    };
    ReleaseEvidence {
        bird,
        underlay: up.map(|u| ("eth0".to_string(), u)).into_iter().collect(),
    }
}

fn code(e: &Error) -> &'static str {
    match e {
        Error::InvalidArgument { .. } => "invalid-argument",
        Error::NotFound { .. } => "not-found",
        Error::AlreadyExists { .. } => "already-exists",
        Error::FailedPrecondition(_) => "failed-precondition",
        Error::Unavailable(_) => "unavailable",
        Error::Timeout(_) => "timeout",
        Error::Aborted(_) => "aborted",
        Error::Unimplemented(_) => "unimplemented",
        Error::PermissionDenied(_) => "permission-denied",
        Error::Internal(_) => "internal",
    }
}

/// The text form of an output, as written in the case files.
pub fn render(o: &Output) -> String {
    match o {
        Output::Release { member } => format!("release {member}"),
        Output::Persist {
            primary,
            holders,
            save_first,
        } => format!(
            "persist primary={} holders={}{}",
            primary.as_deref().unwrap_or("-"),
            list(holders),
            if *save_first { " save-first" } else { "" }
        ),
        Output::Bind { member, settle } => format!(
            "bind {member} settle={}",
            match settle {
                Settle::Move => "move",
                Settle::MoveHold => "move-hold",
                Settle::Takeover(TakeoverSettle::Least) => "takeover",
                Settle::Takeover(TakeoverSettle::ReleasedEvidence) => "takeover-released-evidence",
                Settle::Resync => "resync",
                Settle::None => "none",
            }
        ),
        Output::Event(Event { name, fields }) => {
            let mut s = format!("event {name} {}", name.level().as_str());
            for (k, v) in fields.iter().filter(|(k, _)| *k != "group") {
                let _ = write!(s, " {k}={v}");
            }
            s
        }
        Output::Resync { member } => format!("resync {member}"),
        Output::Reply(Ok(())) => "reply ok".into(),
        Output::Reply(Err(e)) => format!("reply {}", code(e)),
    }
}

fn list(s: &BTreeSet<String>) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.iter().cloned().collect::<Vec<_>>().join(",")
    }
}

fn core_text(c: &Core) -> String {
    format!(
        "primary={} holders={} members={}",
        c.primary.as_deref().unwrap_or("-"),
        list(&c.holders),
        list(&c.members)
    )
}

fn parse(file: &str, text: &str) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.split(" #").next().unwrap_or("").trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (head, rest) = l.split_once(' ').unwrap_or((l, ""));
        if head == "case" {
            let (ids, title) = rest.split_once(':').expect("case R1,R2: title");
            cases.push(Case {
                file: file.into(),
                line,
                title: title.trim().into(),
                rules: ids.split(',').map(|r| rule(r.trim())).collect(),
                core: Core::default(),
                facts: Facts::default(),
                pending: None,
                steps: vec![],
            });
            continue;
        }
        let c = cases
            .last_mut()
            .unwrap_or_else(|| panic!("{file}:{line}: outside a case"));
        match head {
            "group" => apply(&mut c.core, &mut c.facts, rest),
            "~" => c.pending = Some(rest.to_string()),
            ">" => c.steps.push(Step {
                line,
                changed: c.pending.take(),
                input: input(rest),
                want: vec![],
                check: None,
            }),
            "<" => c
                .steps
                .last_mut()
                .unwrap_or_else(|| panic!("{file}:{line}: output before input"))
                .want
                .push(rest.to_string()),
            "=" => {
                c.steps
                    .last_mut()
                    .unwrap_or_else(|| panic!("{file}:{line}: check before input"))
                    .check = Some(rest.to_string())
            }
            h => panic!("{file}:{line}: unknown line kind {h}"),
        }
    }
    cases
}

/// Apply `key=value` settings to a group's core and facts.
fn apply(core: &mut Core, facts: &mut Facts, kvs: &str) {
    for kv in kvs.split_whitespace() {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "primary" => core.primary = (v != "-").then(|| v.to_string()),
            "holders" => core.holders = set(v),
            "members" => core.members = set(v),
            "connected" => facts.connected = set(v),
            "bvi" => core.bvi = v != "no",
            "store" => facts.store_error = (v != "ok").then(|| v.to_string()),
            "disabled" => facts.evpn_disabled = set(v),
            "unusable" => {
                facts.unusable = set(v)
                    .into_iter()
                    .map(|m| (m, Error::FailedPrecondition("not ready".into())))
                    .collect()
            }
            k => panic!("unknown group key {k}"),
        }
    }
}

fn cases() -> Vec<Case> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/group-machine");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        all.extend(parse(&name, &std::fs::read_to_string(&f).unwrap()));
    }
    assert!(!all.is_empty(), "no cases in {}", dir.display());
    all
}

/// Replay one case; the first difference, if any.
fn run(c: &Case, off: Option<Rule>) -> Result<(), String> {
    let mut m = Machine::new("g", c.core.clone(), c.facts.clone());
    if let Some(r) = off {
        m.disable(r);
    }
    for s in &c.steps {
        if let Some(kvs) = &s.changed {
            apply(&mut m.core, &mut m.facts, kvs);
        }
        let got: Vec<String> = m.step(s.input.clone()).iter().map(render).collect();
        if got != s.want {
            return Err(format!(
                "{}:{}: after {:?}\n  want: {:#?}\n  got:  {:#?}",
                c.file, s.line, s.input, s.want, got
            ));
        }
        if let Some(want) = &s.check {
            let have = core_text(&m.core);
            // Only the keys the check names are compared.
            for kv in want.split_whitespace() {
                if !have.split_whitespace().any(|h| h == kv) {
                    return Err(format!("{}:{}: want {kv}, core is {have}", c.file, s.line));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn every_recorded_case_conforms() {
    let mut failed = Vec::new();
    for c in cases() {
        if let Err(e) = run(&c, None) {
            failed.push(format!("case {:?} ({}:{}): {e}", c.title, c.file, c.line));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

#[test]
fn every_rule_has_a_case() {
    let all = cases();
    for r in Rule::ALL {
        assert!(
            all.iter().any(|c| c.rules.contains(&r)),
            "no case names {} ({r:?})",
            rule_id(r)
        );
    }
}

/// The suite's teeth: switching any one rule off makes at least one case
/// that names it fail.
#[test]
fn disabling_any_rule_fails_a_case() {
    let all = cases();
    let mut toothless = Vec::new();
    for r in Rule::ALL {
        let caught = all
            .iter()
            .filter(|c| c.rules.contains(&r))
            .any(|c| run(c, Some(r)).is_err());
        if !caught {
            toothless.push(format!("{} ({r:?})", rule_id(r)));
        }
    }
    assert!(
        toothless.is_empty(),
        "no case fails with these rules off: {}",
        toothless.join(", ")
    );
}
