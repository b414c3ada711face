//! Autonomous failover, sans-IO: given a group's failover policy and what
//! evpnr knows of its members right now, which move (if any) should happen.
//!
//! This module decides *whether* and *to whom* a gateway moves on its own;
//! the move itself is an ordinary operation of the group state machine
//! (`group::machine`), so every holder rule (R1–R15) applies to it
//! unchanged. An unplanned takeover (the primary unreachable or its
//! announcement withdrawn) releases the old primary if it can still reach
//! it, skips it if it cannot, and its bind **requires** the fabric's
//! evidence (no other VTEP announces the vMAC, seen by a candidate whose own
//! view of the fabric is trustworthy) — without it, the candidate does not
//! bind and the failover is blocked (`failover-blocked`). A candidate's
//! report of a withdrawal (F11) only triggers a takeover; it is never the
//! evidence.
//!
//! Rules F1–F15 are in `docs/failover.md`; the tables below have at least
//! one row per rule.
use std::{collections::BTreeMap, time::Duration};

use crate::southbound::{BirdSeen, ReleaseEvidence};

/// A group's failover policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `false`: manual (the default; only operators move the gateway).
    pub auto: bool,
    /// Preemption: a recovered member of higher priority takes the gateway
    /// back after it has been eligible for this long. `None`: off.
    pub preempt: Option<Duration>,
    /// After an autonomous move, no other autonomous move for this long.
    pub hold_down: Duration,
    /// Flap damping: more than `flap_limit` autonomous moves within
    /// `flap_window` suspend autonomous moves of the group until the window
    /// has passed.
    pub flap_window: Duration,
    pub flap_limit: u32,
    /// A member that (re)joined or recovered is eligible only after it has
    /// been healthy and reachable for this long.
    pub warm_up: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            auto: false,
            preempt: None,
            hold_down: Duration::from_secs(10),
            flap_window: Duration::from_secs(300),
            flap_limit: 3,
            warm_up: Duration::from_secs(5),
        }
    }
}

impl From<&crate::model::FailoverPolicy> for Policy {
    fn from(p: &crate::model::FailoverPolicy) -> Self {
        let ms = Duration::from_millis;
        Policy {
            auto: p.auto,
            preempt: p.preempt_ms.map(ms),
            hold_down: ms(p.hold_down_ms),
            flap_window: ms(p.flap_window_ms),
            flap_limit: p.flap_limit,
            warm_up: ms(p.warm_up_ms),
        }
    }
}

/// What evpnr knows of one member right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    /// Higher wins; ties go to the smaller ID (deterministic).
    pub priority: u32,
    /// Its member stream is up and heartbeats arrive.
    pub reachable: bool,
    /// Its last health report: `None` healthy, else the reason.
    pub unhealthy: Option<String>,
    /// Since when (evpnr's monotonic clock) it has been reachable and
    /// healthy without a break; `None` if it is not.
    pub fit_since: Option<Duration>,
    /// Drained by an operator (maintenance): never a candidate.
    pub drained: bool,
    /// What this member, watching the vMAC as a candidate, last reported
    /// of the current primary's announcement (trigger 1); `None`: nothing
    /// (or a report about another primary).
    pub witness: Option<Witness>,
    /// Its last health report has no verdict for the group's eVPN: the eVPN
    /// is disabled there, so it announces nothing even while it holds the
    /// vMAC (F12).
    pub silent: bool,
}

/// A candidate's report of the primary's announcement of the vMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Witness {
    /// It saw the vMAC announced and now sees no VTEP announce it.
    pub withdrawn: bool,
    /// How long its own BGP sessions had been established when it looked
    /// (zero: its view of the fabric is not trustworthy).
    pub fabric_up: Duration,
}

/// A group as the decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub primary: Option<String>,
    pub members: Vec<Member>,
    /// Times (evpnr's monotonic clock) of the group's recent autonomous
    /// moves, oldest first.
    pub recent_moves: Vec<Duration>,
    /// The global switch: every autonomous action suspended.
    pub suspended: bool,
    /// The group has a GroupBVI.
    pub bvi: bool,
}

/// Why a move is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The primary is reachable but reports itself unhealthy (planned move).
    Unhealthy,
    /// The primary is unreachable (takeover).
    Unreachable,
    /// The primary's announcement was seen withdrawn (takeover).
    Withdrawn,
    /// The primary is drained (planned move; also in manual mode).
    Drained,
    /// A higher-priority member is eligible again (planned move).
    Preempt,
    /// The group has no primary (takeover: nobody to release).
    NoPrimary,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Unhealthy => "primary-unhealthy",
            Reason::Unreachable => "primary-unreachable",
            Reason::Withdrawn => "primary-withdrawn",
            Reason::Drained => "primary-drained",
            Reason::Preempt => "preempt",
            Reason::NoPrimary => "no-primary",
        }
    }

    /// A planned move can release the old primary first (break before
    /// make); a takeover cannot and needs the fabric's evidence.
    pub fn planned(self) -> bool {
        matches!(self, Reason::Unhealthy | Reason::Drained | Reason::Preempt)
    }
}

/// Why nothing happens although something is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// The group is manual (only a drain moves it).
    Manual,
    /// Failover is suspended for the whole fleet.
    Suspended,
    /// Within the hold-down after the last autonomous move, until then.
    HoldDown { until: Duration },
    /// Too many moves within the flap window, until the oldest leaves it.
    Flapping { moves: u32, until: Duration },
    /// No member is eligible (each with the reason).
    NoCandidate { why: Vec<(String, String)> },
    /// A preempting member is waiting out the preemption delay.
    PreemptDelay { until: Duration },
    /// The unreachable primary's eVPN is disabled (F12): it may hold the
    /// vMAC without announcing it, so the fabric's silence is no evidence.
    Silent,
    /// The primary, unreachable by its heartbeats, answered evpnr's direct
    /// call within `failover.release-wait` ready and healthy (F17): its
    /// heartbeats are late, not lost (e.g. their connection still in TCP
    /// back-off after a partition healed). Applied by the driver (I/O).
    PrimaryAnswers,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do.
    Stay,
    /// Move the gateway to `to`.
    Move { to: String, reason: Reason },
    /// A move is wanted but held back.
    Held { reason: Reason, held: Held },
}

/// Why `m` is not eligible now (F3), or `None` if it is.
pub fn ineligible(p: &Policy, now: Duration, m: &Member) -> Option<String> {
    if m.drained {
        return Some("drained".into());
    }
    if !m.reachable {
        return Some("unreachable".into());
    }
    if let Some(r) = &m.unhealthy {
        return Some(format!("unhealthy: {r}"));
    }
    match m.fit_since {
        Some(t) if now.saturating_sub(t) >= p.warm_up => None,
        Some(t) => Some(format!(
            "warming up for {} ms more",
            (p.warm_up - now.saturating_sub(t)).as_millis()
        )),
        None => Some("not fit".into()),
    }
}

/// Whether `m` reports the primary's announcement withdrawn and may be
/// believed (F11): it is reachable and healthy, has been fit for the
/// warm-up, and its own BGP sessions had been established for the warm-up
/// (and at all) when it looked. A drained member is a witness too.
fn trusted_withdrawal(p: &Policy, now: Duration, m: &Member) -> bool {
    let Some(w) = m.witness.filter(|w| w.withdrawn) else {
        return false;
    };
    let fit = m.reachable
        && m.unhealthy.is_none()
        && m.fit_since
            .is_some_and(|t| now.saturating_sub(t) >= p.warm_up);
    fit && !w.fabric_up.is_zero() && w.fabric_up >= p.warm_up
}

/// The best eligible member other than `except` (F4): highest priority,
/// then smallest ID. `Err` lists why each member is not eligible.
fn best<'a>(
    p: &Policy,
    now: Duration,
    v: &'a View,
    except: Option<&str>,
) -> Result<&'a Member, Vec<(String, String)>> {
    let mut why = Vec::new();
    let mut best: Option<&Member> = None;
    for m in v.members.iter().filter(|m| Some(m.id.as_str()) != except) {
        match ineligible(p, now, m) {
            Some(r) => why.push((m.id.clone(), r)),
            None => {
                let better = best.is_none_or(|b| {
                    (m.priority, std::cmp::Reverse(&m.id)) > (b.priority, std::cmp::Reverse(&b.id))
                });
                if better {
                    best = Some(m);
                }
            }
        }
    }
    best.ok_or(why)
}

/// Decides for one group at `now` (evpnr's monotonic clock).
pub fn decide(p: &Policy, now: Duration, v: &View) -> Decision {
    if !v.bvi {
        return Decision::Stay;
    }
    let primary = v
        .primary
        .as_ref()
        .and_then(|id| v.members.iter().find(|m| &m.id == id));
    // F11: the primary's announcement is withdrawn when a member that may
    // be believed says so.
    let withdrawn = primary.is_some_and(|pm| {
        v.members
            .iter()
            .any(|m| m.id != pm.id && trusted_withdrawal(p, now, m))
    });
    // What is wrong, most urgent first (F10, F6, F5, F2, F9).
    let reason = match primary {
        None => Reason::NoPrimary,
        Some(pm) if withdrawn && !pm.drained => Reason::Withdrawn,
        Some(pm) if !pm.reachable => Reason::Unreachable,
        Some(pm) if pm.unhealthy.is_some() => Reason::Unhealthy,
        Some(pm) if pm.drained => Reason::Drained,
        Some(pm) => {
            // F9: preemption by a strictly higher-priority eligible member.
            let Some(delay) = p.preempt.filter(|_| p.auto) else {
                return Decision::Stay;
            };
            let cand = match best(p, now, v, Some(&pm.id)) {
                Ok(c) if c.priority > pm.priority => c,
                _ => return Decision::Stay,
            };
            let since = cand.fit_since.unwrap_or(now) + p.warm_up.max(delay);
            if now < since {
                return Decision::Held {
                    reason: Reason::Preempt,
                    held: Held::PreemptDelay { until: since },
                };
            }
            Reason::Preempt
        }
    };
    // F1: manual groups and the global switch; a drain is an operator's
    // request and moves a manual or suspended group too (F2).
    if v.suspended && reason != Reason::Drained {
        return Decision::Held {
            reason,
            held: Held::Suspended,
        };
    }
    if !p.auto && reason != Reason::Drained {
        return Decision::Held {
            reason,
            held: Held::Manual,
        };
    }
    // F12: an unreachable primary that does not announce the vMAC even
    // while it holds it (its eVPN is disabled) cannot be taken over: no
    // candidate could see that it still holds it, and a report that its
    // announcement is gone says nothing either (it never announced).
    if matches!(reason, Reason::Unreachable | Reason::Withdrawn)
        && primary.is_some_and(|m| m.silent && !m.reachable)
    {
        return Decision::Held {
            reason,
            held: Held::Silent,
        };
    }
    // F7, F8: hold-down and flap damping (autonomous moves only).
    if reason != Reason::Drained {
        if let Some(&last) = v.recent_moves.last()
            && now < last + p.hold_down
        {
            return Decision::Held {
                reason,
                held: Held::HoldDown {
                    until: last + p.hold_down,
                },
            };
        }
        let window: Vec<&Duration> = v
            .recent_moves
            .iter()
            .filter(|&&t| now < t + p.flap_window)
            .collect();
        if window.len() as u32 >= p.flap_limit && p.flap_limit > 0 {
            return Decision::Held {
                reason,
                held: Held::Flapping {
                    moves: window.len() as u32,
                    until: *window[0] + p.flap_window,
                },
            };
        }
    }
    let cand = match best(p, now, v, primary.map(|m| m.id.as_str())) {
        Ok(c) => c,
        Err(why) => {
            return Decision::Held {
                reason,
                held: Held::NoCandidate { why },
            };
        }
    };
    // F5: an unhealthy primary is left only for a healthier candidate: an
    // eligible candidate is reachable and reports no failing check.
    Decision::Move {
        to: cand.id.clone(),
        reason,
    }
}

#[cfg(test)]
#[path = "failover_tests.rs"]
mod tests;

/// F13: the longest a call may wait on a member whose heartbeats are late
/// (suspect or dead) while its connection is still up.
pub const LATE_RELEASE_DEADLINE: Duration = Duration::from_millis(500);

/// F13: how a call to a member whose heartbeats are late (suspect or dead)
/// is made, with `member_timeout` the normal bound: `Some(deadline)` to
/// send it anyway, `None` to fail it at once (the member is unresponsive).
/// A release (`ReleaseGroupBVI`) is still sent while the member's
/// connection (its event stream) is up — a member that is only late, not
/// dead, then really releases the vMAC before a takeover binds it
/// elsewhere — bounded by [`LATE_RELEASE_DEADLINE`]. A release that fails
/// or runs out counts as not released (the takeover skips it and its
/// evidence rule decides, as for a member it cannot reach). Any other call,
/// and every call while the connection is down, fails at once.
pub fn late_member_call(method: &str, conn_up: bool, member_timeout: Duration) -> Option<Duration> {
    (method == "ReleaseGroupBVI" && conn_up).then(|| member_timeout.min(LATE_RELEASE_DEADLINE))
}

/// F14: how an autonomous takeover asks the old primary to release the
/// vMAC, whatever its liveness: `Some(wait)` to send the release and wait
/// for its answer at most `wait` (`failover.release-wait`, never above
/// `member_timeout`), `None` to skip it at once (its connection is down).
/// When the wait runs out the release is not cancelled — it keeps running
/// on its own (with its own bound, [`late_member_call`] or
/// `member-timeout`) and its late outcome is reported — but the takeover
/// counts it as not released and its evidence rule decides (F6), as for a
/// member it cannot reach: a dead primary whose connection looks up (a
/// dead host sends no FIN) costs the takeover `release_wait`, not
/// `member-timeout`. Planned moves and drains do not use this: they wait
/// for a reachable primary's answer as any move does.
pub fn takeover_release_wait(
    conn_up: bool,
    release_wait: Duration,
    member_timeout: Duration,
) -> Option<Duration> {
    conn_up.then(|| release_wait.min(member_timeout))
}

/// How a takeover's bind settles (F15). Either way the candidate binds only
/// on the fabric's evidence (F6: no other VTEP announces the vMAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeoverSettle {
    /// Not before `move.takeover-min-settle` after the takeover started:
    /// the candidate may have seen the old primary's routes go before the
    /// other routers did.
    Least,
    /// The old primary answered its release with evidence that every peer
    /// already dropped its routes (its BGP sessions were closed): no least
    /// settle.
    ReleasedEvidence,
}

impl TakeoverSettle {
    /// The `settle` field of `failover-finished`.
    pub fn name(self) -> &'static str {
        match self {
            TakeoverSettle::Least => "least",
            TakeoverSettle::ReleasedEvidence => "released-evidence",
        }
    }
}

/// F15: whether a member's successful answer to its release (`answer`: the
/// evidence it reported, None from an evpnd that reports none) shows that
/// its peers already dropped its routes by the closing of its BGP
/// sessions: its BIRD was not running at release time (its kernel closed
/// every session, FIN/RST to each peer, at one instant) and every tracked
/// underlay interface existed and was up (the closures could reach the
/// peers). BIRD running or unknown, an interface down or missing, or no
/// interface tracked: no evidence.
pub fn release_proves(answer: Option<&ReleaseEvidence>) -> bool {
    answer.is_some_and(|e| {
        e.bird == BirdSeen::NotRunning
            && !e.underlay.is_empty()
            && e.underlay.iter().all(|(_, up)| *up)
    })
}

/// F16: whether a member's successful answer to its release shows it cut
/// off from the fabric: a tracked underlay interface down or missing. Its
/// peers then drop its routes by their own BFD (or hold) timers, not by a
/// BGP withdrawal or the closing of its sessions, and those timers run out
/// up to one BFD transmit interval apart: the candidate's own view may be
/// ahead of the other routers'. No interface tracked, or no look: not
/// known to be cut off.
pub fn release_cut_off(answer: Option<&ReleaseEvidence>) -> bool {
    answer.is_some_and(|e| e.underlay.iter().any(|(_, up)| !*up))
}

/// F15: how a takeover binds, from the answers to its releases. `old`: the
/// old primary (None: the group had none); `answered`: each member whose
/// release was confirmed in this takeover, and whether its answer proved
/// its routes dropped ([`release_proves`]); `skipped`: the members whose
/// release failed or was not answered within `failover.release-wait`.
/// Without the least settle only when the old primary answered with that
/// evidence, so did every other member the takeover released, and none
/// was skipped.
pub fn takeover_settle(
    old: Option<&str>,
    answered: &BTreeMap<String, bool>,
    skipped: &[String],
) -> TakeoverSettle {
    let proven = old.is_some_and(|o| answered.get(o) == Some(&true))
        && answered.values().all(|p| *p)
        && skipped.is_empty();
    if proven {
        TakeoverSettle::ReleasedEvidence
    } else {
        TakeoverSettle::Least
    }
}
