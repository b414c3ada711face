//! The failover driver: evpnr's I/O around the sans-IO decision
//! (`group::failover::decide`). On every trigger — a `failover` or `crud`
//! event (a member's health, liveness or connection changed, a drain, a
//! policy change, the switch) and a tick for the timers (hold-down,
//! warm-up, preemption, retries) — it builds each group's `View` from what
//! the registry knows, decides, and runs a `Move` as an ordinary operation
//! of the group's machine with `op=failover` under the group's lock (never
//! while another operation holds it).
//!
//! Kept in memory only (an evpnr restart resets them): when each member
//! became fit, the groups' recent autonomous moves (hold-down, flap
//! damping), the retry back-off of a blocked takeover and the last held
//! reason reported.
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use evpn_daemon::events::{Event, EventFilter};
use evpn_model::{
    Error, EventKind,
    health::{HealthReport, HealthStatus, HealthVerdict},
    witness::WatchedMac,
};
use futures::StreamExt;

use crate::{
    group::{
        driver::Drive,
        failover::{Decision, Held, Member, Policy, Reason, View, Witness, decide, ineligible},
        machine::{Input, MoveOp, Settle},
    },
    metrics::{DecisionLabels, FailoverMetrics, HeldLabels},
    model::{Group, State},
    registry::{Conn, MemberRt, Registry},
};

/// How often the timers are looked at without a trigger.
pub const TICK: Duration = Duration::from_millis(250);
/// Retry back-off of a blocked failover: first and cap.
pub const RETRY_FIRST: Duration = Duration::from_millis(100);
pub const RETRY_MAX: Duration = Duration::from_secs(5);

/// Why `report` makes a member unfit for `group`: fenced, host down, or the
/// group's eVPN down. Unknown health is not a reason (binds are accepted
/// while health is still unknown).
pub fn unhealthy(report: Option<&HealthReport>, group: &str) -> Option<String> {
    let r = report?;
    if !r.fenced.is_empty() {
        return Some(format!("fenced: {}", r.fenced));
    }
    let down = |v: &HealthVerdict| v.status == HealthStatus::Down;
    if down(&r.host) {
        return Some(format!("host: {}", r.host.reason));
    }
    match r.evpns.get(group) {
        Some(v) if down(v) => Some(format!("evpn {group}: {}", v.reason)),
        _ => None,
    }
}

/// The vMACs member `id` is to watch on the fabric (trigger 1): those of
/// the `auto` groups with a GroupBVI and a primary, of which it is a
/// member but not the primary. Sorted by group.
pub fn watch_list(st: &State, id: &str) -> Vec<WatchedMac> {
    st.groups
        .values()
        .filter(|g| g.failover.auto && g.bvi.is_some() && g.members.contains(id))
        .filter_map(|g| {
            let p = g.primary.as_ref().filter(|p| *p != id)?;
            Some(WatchedMac {
                group: g.id.clone(),
                vmac: g.vmac,
                primary: p.clone(),
            })
        })
        .collect()
}

/// Member `m`'s report of group `g`'s primary's announcement, if it has
/// one about the current primary and vMAC.
pub fn witness_of(rt: Option<&MemberRt>, g: &Group) -> Option<Witness> {
    let primary = g.primary.as_ref()?;
    rt?.witnesses
        .iter()
        .find(|w| {
            w.watched.group == g.id && w.watched.vmac == g.vmac && &w.watched.primary == primary
        })
        .map(|w| Witness {
            withdrawn: w.withdrawn,
            fabric_up: w.fabric_up,
        })
}

/// Why `report` makes a member unfit for `group`, as primary (`primary`)
/// or as a candidate: [`unhealthy`], and for a candidate also a report
/// without a verdict for the group's eVPN — evpnd reports every *enabled*
/// eVPN, so the eVPN is disabled there (or not created yet). Such a member
/// announces nothing for the group, and its BIRD's table of the eVPN is
/// empty: "nobody announces the vMAC" from it is no evidence, so it must not
/// take the gateway over (found by the chaos run, seed 1). A primary is not
/// moved for it (its verdict is missing for a moment after evpnd starts).
///
/// A candidate without any report yet (just connected, or evpnr just
/// restarted) is not fit either: nothing says its eVPN is enabled.
pub fn unfit(report: Option<&HealthReport>, group: &str, primary: bool) -> Option<String> {
    if primary {
        return unhealthy(report, group);
    }
    let Some(r) = report else {
        return Some("no health report yet".into());
    };
    unhealthy(report, group).or_else(|| {
        if r.disabled.contains(group) {
            // The list is read from evpnd's state at each heartbeat; the
            // verdicts may lag it by a health interval.
            return Some(format!("evpn {group}: not enabled (listed as disabled)"));
        }
        (!r.evpns.contains_key(group))
            .then(|| format!("evpn {group}: not enabled (no health verdict for it)"))
    })
}

/// Whether evpnr can talk to the member: connected, ready, heartbeats on
/// time.
pub fn reachable(rt: Option<&MemberRt>) -> bool {
    rt.is_some_and(|r| r.conn == Conn::Connected && r.ready && !r.liveness.unresponsive())
}

/// What the driver remembers between passes.
#[derive(Debug, Default)]
pub struct Memory {
    /// Per member: since when it has been reachable and healthy (per group,
    /// as health is per eVPN).
    fit: HashMap<(String, String), Duration>,
    /// Per group: times of its autonomous moves, oldest first.
    moves: HashMap<String, Vec<Duration>>,
    /// Per group: the held reason last reported (`failover-held` once per
    /// change).
    held: HashMap<String, String>,
    /// Per group: a blocked failover's next try and back-off.
    retry: HashMap<String, (Duration, Duration)>,
    /// (group, member) pairs whose member has reported a health verdict for
    /// the group's eVPN: a report without one after that means the eVPN was
    /// disabled (F12), not that it is too new to be in the report yet.
    verdicts: std::collections::HashSet<(String, String)>,
}

impl Memory {
    /// The `View` of group `g` at `now`, updating the fit times.
    pub fn view(
        &mut self,
        st: &State,
        rt: &BTreeMap<String, MemberRt>,
        g: &Group,
        now: Duration,
    ) -> View {
        let members = g
            .members
            .iter()
            .map(|id| {
                let r = rt.get(id);
                let reach = reachable(r);
                let primary = g.primary.as_deref() == Some(id.as_str());
                let sick = unfit(r.and_then(|r| r.health.as_ref()), &g.id, primary);
                let key = (g.id.clone(), id.clone());
                let fit_since = if reach && sick.is_none() {
                    Some(*self.fit.entry(key).or_insert(now))
                } else {
                    self.fit.remove(&key);
                    None
                };
                Member {
                    id: id.clone(),
                    priority: g.priority(id),
                    reachable: reach,
                    unhealthy: sick,
                    fit_since,
                    drained: st.drained.contains(id),
                    witness: witness_of(r, g),
                    silent: self.silent(&g.id, id, r.and_then(|r| r.health.as_ref())),
                }
            })
            .collect();
        View {
            primary: g.primary.clone(),
            members,
            recent_moves: self.moves.get(&g.id).cloned().unwrap_or_default(),
            suspended: st.failover_suspended,
            bvi: g.bvi.is_some(),
        }
    }

    /// Whether `member` may hold the vMAC of `g` without announcing it
    /// (F12): its report says the eVPN is disabled, or has no verdict for
    /// it although an earlier one had, or there is no report at all since
    /// this evpnr started (unknown is treated as silent: only an unreachable
    /// primary's silence matters, and holding it is the safe side).
    fn silent(&mut self, group: &str, member: &str, report: Option<&HealthReport>) -> bool {
        let Some(r) = report else {
            return true;
        };
        let key = (group.to_string(), member.to_string());
        if r.disabled.contains(group) {
            self.verdicts.insert(key);
            true
        } else if r.evpns.contains_key(group) {
            self.verdicts.insert(key);
            false
        } else {
            self.verdicts.contains(&key)
        }
    }

    /// Whether a blocked failover of `group` may be tried again at `now`.
    pub fn may_try(&self, group: &str, now: Duration) -> bool {
        self.retry.get(group).is_none_or(|(at, _)| now >= *at)
    }

    /// A failover of `group` was blocked at `now`: the delay until the next
    /// try (doubling from [`RETRY_FIRST`] up to [`RETRY_MAX`]).
    pub fn blocked(&mut self, group: &str, now: Duration) -> Duration {
        let next = self
            .retry
            .get(group)
            .map_or(RETRY_FIRST, |(_, d)| (*d * 2).min(RETRY_MAX));
        self.retry.insert(group.to_string(), (now + next, next));
        next
    }

    /// A failover of `group` finished at `now`.
    pub fn moved(&mut self, group: &str, now: Duration, window: Duration) {
        self.retry.remove(group);
        let m = self.moves.entry(group.to_string()).or_default();
        m.retain(|t| now < *t + window);
        m.push(now);
    }

    /// The held reason's key if it changed since last reported.
    pub fn held_changed(&mut self, group: &str, reason: Reason, held: &Held) -> Option<String> {
        let key = format!("{} {}", reason.name(), held_key(held));
        match self.held.insert(group.to_string(), key.clone()) {
            Some(k) if k == key => None,
            _ => Some(key),
        }
    }

    /// Nothing is wrong with `group`: forget its held reason and retries.
    pub fn calm(&mut self, group: &str) {
        self.held.remove(group);
        self.retry.remove(group);
    }
}

/// A held decision's kind (the `held` label of `evpnr_failover_held_total`).
pub fn held_kind(h: &Held) -> &'static str {
    match h {
        Held::Manual => "manual",
        Held::Suspended => "suspended",
        Held::HoldDown { .. } => "hold-down",
        Held::Flapping { .. } => "flapping",
        Held::NoCandidate { .. } => "no-candidate",
        Held::PreemptDelay { .. } => "preempt-delay",
        Held::Silent => "silent",
        Held::PrimaryAnswers => "primary-answers",
    }
}

/// One member's standing as a failover candidate (the reads: GetGroup,
/// GetFailoverStatus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub id: String,
    pub priority: u32,
    pub primary: bool,
    /// Why it is not eligible (F3); `None`: eligible.
    pub ineligible: Option<String>,
    /// Since when it has been reachable and healthy (wall clock).
    pub fit_since: Option<SystemTime>,
}

/// What makes a held decision news (`failover-held` once per change): its
/// name and detail, except a warm-up's countdown ("warming up for N ms
/// more" changes at every pass).
fn held_key(h: &Held) -> String {
    match h {
        Held::NoCandidate { why } => format!(
            "no-candidate ({})",
            why.iter()
                .map(|(m, r)| {
                    let r = if r.starts_with("warming up") {
                        "warming up"
                    } else {
                        r.as_str()
                    };
                    format!("{m}: {r}")
                })
                .collect::<Vec<_>>()
                .join("; ")
        ),
        _ => held_name(h),
    }
}

/// A held decision's name and detail, as the `failover-held` event shows.
pub fn held_name(h: &Held) -> String {
    match h {
        Held::Manual => "manual".into(),
        Held::Suspended => "suspended".into(),
        Held::HoldDown { .. } => "hold-down".into(),
        Held::Flapping { moves, .. } => format!("flapping ({moves} moves)"),
        Held::NoCandidate { why } => format!(
            "no-candidate ({})",
            why.iter()
                .map(|(m, r)| format!("{m}: {r}"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Held::PreemptDelay { .. } => "preempt-delay".into(),
        Held::Silent => {
            "silent (the primary's eVPN is disabled, or it has not reported since evpnr started: the fabric's silence is no evidence)".into()
        }
        Held::PrimaryAnswers => {
            "primary-answers (its heartbeats are late, but it answered evpnr's call ready and healthy: F17)".into()
        }
    }
}

/// The driver: one task per registry.
pub struct Driver {
    reg: Arc<Registry>,
    start: Instant,
    mem: Mutex<Memory>,
}

impl Driver {
    pub fn new(reg: Arc<Registry>) -> Arc<Driver> {
        Arc::new(Driver {
            reg,
            start: Instant::now(),
            mem: Mutex::new(Memory::default()),
        })
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn mem(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.mem.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn metrics(&self) -> &FailoverMetrics {
        &self.reg.metrics.failover
    }

    /// Every member's standing in group `group` now, sorted by instance
    /// (`None`: no such group). Reading records a member that became fit
    /// since the last pass, as the next pass would.
    pub fn standing(&self, group: &str) -> Option<Vec<Standing>> {
        let now = self.now();
        let wall = SystemTime::now();
        let mut mem = self.mem();
        self.reg.read(|i| {
            let g = i.state.groups.get(group)?;
            let p = Policy::from(&g.failover);
            let v = mem.view(&i.state, &i.rt, g, now);
            Some(
                v.members
                    .iter()
                    .map(|m| Standing {
                        id: m.id.clone(),
                        priority: m.priority,
                        primary: v.primary.as_deref() == Some(m.id.as_str()),
                        ineligible: ineligible(&p, now, m),
                        fit_since: m.fit_since.map(|t| wall - now.saturating_sub(t)),
                    })
                    .collect(),
            )
        })
    }

    /// Run until shutdown: a pass on every trigger and every [`TICK`].
    pub fn spawn(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let filter = EventFilter {
                kinds: [EventKind::Failover, EventKind::Crud].into(),
                ..Default::default()
            };
            let mut sub = me.reg.broker.subscribe(filter.clone());
            loop {
                tokio::select! {
                    _ = me.reg.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(TICK) => {}
                    e = sub.next() => match e {
                        // Our own events are no trigger.
                        Some(e) if e.message.starts_with("failover-") => continue,
                        Some(_) => {}
                        None => sub = me.reg.broker.subscribe(filter.clone()),
                    },
                }
                me.pass();
            }
        });
    }

    /// Decide for every group with a GroupBVI; start the moves decided.
    pub fn pass(self: &Arc<Self>) {
        if self.reg.store_ok().is_err() {
            return;
        }
        let now = self.now();
        let ids: Vec<String> = {
            let mut mem = self.mem();
            self.reg.read(|i| {
                self.metrics()
                    .suspended
                    .set(i64::from(i.state.failover_suspended));
                // Fit times of groups without a GroupBVI too (the reads
                // show them).
                for g in i.state.groups.values().filter(|g| g.bvi.is_none()) {
                    mem.view(&i.state, &i.rt, g, now);
                }
                i.state
                    .groups
                    .values()
                    .filter(|g| g.bvi.is_some())
                    .map(|g| g.id.clone())
                    .collect()
            })
        };
        for group in ids {
            // Never while another operation is in flight: its intent is not
            // the group's settled state (and a move of ours may be running).
            let Ok(guard) = self.reg.group_lock(&group).try_lock_owned() else {
                continue;
            };
            let decided = {
                let mut mem = self.mem();
                self.reg.read(|i| {
                    let g = i.state.groups.get(&group)?;
                    let p = Policy::from(&g.failover);
                    let v = mem.view(&i.state, &i.rt, g, now);
                    Some((g.primary.clone(), p, decide(&p, now, &v)))
                })
            };
            let Some((from, p, d)) = decided else {
                continue;
            };
            self.act(guard, group, from, p, d, now);
        }
    }

    /// Act on one group's decision (the group's lock held).
    fn act(
        self: &Arc<Self>,
        guard: tokio::sync::OwnedMutexGuard<()>,
        group: String,
        from: Option<String>,
        p: Policy,
        d: Decision,
        now: Duration,
    ) {
        let decision = match &d {
            Decision::Stay => "stay",
            Decision::Move { .. } => "move",
            Decision::Held { .. } => "held",
        };
        self.metrics()
            .decisions
            .get_or_create(&DecisionLabels {
                decision: decision.into(),
            })
            .inc();
        match d {
            Decision::Stay => self.mem().calm(&group),
            // A manual group without a primary is how every group
            // starts: not news.
            Decision::Held {
                held: Held::Manual,
                reason: Reason::NoPrimary,
            } => self.mem().calm(&group),
            Decision::Held { reason, held } => self.report_held(&group, reason, &held),
            Decision::Move { to, reason } => {
                if !self.mem().may_try(&group, now) {
                    return;
                }
                let me = self.clone();
                let window = p.flap_window;
                tokio::spawn(async move {
                    // Its calls are recorded as `evpnr:failover` (a drain's
                    // too: reason `primary-drained`).
                    let was = from.clone().unwrap_or_default();
                    let f = [
                        ("group", group.as_str()),
                        ("from", was.as_str()),
                        ("to", to.as_str()),
                        ("reason", reason.name()),
                    ];
                    // F17: a primary missing only by its heartbeats that
                    // answers a direct call ready and healthy is not taken
                    // over.
                    if reason == Reason::Unreachable
                        && let Some(p) = &from
                        && me.primary_answers(p, &group).await
                    {
                        me.report_held(&group, reason, &Held::PrimaryAnswers);
                        return;
                    }
                    let mv = me.run_move(guard, &group, from, &to, reason, window);
                    // Its outcome is reported by its events.
                    let _ = evpn_daemon::audit::layer::on_own("failover", &f, mv, |r| {
                        r.clone().map_err(tonic::Status::from)
                    })
                    .await;
                });
            }
        }
    }

    /// A held decision: counted and reported (`failover-held`) once per
    /// change.
    fn report_held(&self, group: &str, reason: Reason, held: &Held) {
        if self.mem().held_changed(group, reason, held).is_none() {
            return;
        }
        self.metrics()
            .held
            .get_or_create(&HeldLabels {
                held: held_kind(held).into(),
            })
            .inc();
        self.reg.emit(
            Event::FailoverHeld,
            &[
                ("group", group),
                ("reason", reason.name()),
                ("held", &held_name(held)),
            ],
        );
    }

    /// F17: whether `primary` (unreachable by its heartbeats) answers a
    /// direct `GetInstance` within `failover.release-wait` as itself, ready,
    /// with its host healthy, not fenced and `group`'s eVPN not down. Not
    /// asked when evpnr's connection to it is down (no answer can come).
    async fn primary_answers(&self, primary: &str, group: &str) -> bool {
        let up = self
            .reg
            .conn(primary)
            .is_some_and(|(c, _)| c == crate::registry::Conn::Connected);
        if !up {
            return false;
        }
        let wait = self.reg.cfg().failover.release_wait.0;
        let call = self.reg.call(primary, "GetInstance", |mut c| async move {
            c.get_instance(evpn_api::v1::InstanceRef {
                instance_id: String::new(),
            })
            .await
        });
        let Ok(Ok(info)) = tokio::time::timeout(wait, call).await else {
            return false;
        };
        let report = info.health.as_ref().map(crate::convert::health_in);
        info.instance_id == primary
            && info.ready
            && report.is_some()
            && unhealthy(report.as_ref(), group).is_none()
    }

    /// One autonomous move under the group's lock; its outcome (`Ok`: the
    /// new primary bound), for the decision's audit record.
    async fn run_move(
        &self,
        _lock: tokio::sync::OwnedMutexGuard<()>,
        group: &str,
        from: Option<String>,
        to: &str,
        reason: Reason,
        window: Duration,
    ) -> Result<(), Error> {
        let from = from.unwrap_or_default();
        let op = if reason.planned() {
            MoveOp::Failover
        } else {
            MoveOp::Takeover
        };
        let fields = [
            ("group", group),
            ("from", from.as_str()),
            ("to", to),
            ("reason", reason.name()),
        ];
        FailoverMetrics::inc(&self.metrics().started, reason.name());
        self.reg.emit(Event::FailoverStarted, &fields);
        let input = Input::Move {
            target: to.to_string(),
            force: op == MoveOp::Takeover,
            op,
        };
        let how = Drive {
            target: Some(to),
            ..Drive::default()
        };
        let started = Instant::now();
        // Its `move-timeline` (debug), as a MoveGroupBVI's: where the
        // takeover's time went (issue 17's slow trials).
        let tl = crate::timeline::Timeline::start();
        let r = tl.scope(self.reg.drive(group, input, how)).await;
        self.reg.emit_timeline(&tl, group, to, op, &r);
        match &r {
            Ok(d) => {
                self.mem().moved(group, self.now(), window);
                FailoverMetrics::inc(&self.metrics().finished, reason.name());
                let ms = format!("{:.3}", started.elapsed().as_secs_f64() * 1e3);
                let mut f = fields.to_vec();
                f.push(("duration-ms", &ms));
                // F15: what decided the takeover's least settle.
                let settle = match d.settle {
                    Some(Settle::Takeover(s)) => s.name(),
                    Some(Settle::MoveHold) => "move-hold",
                    _ => "move",
                };
                f.push(("settle", settle));
                self.reg.emit(Event::FailoverFinished, &f);
            }
            Err(e) => {
                let retry = self.mem().blocked(group, self.now());
                FailoverMetrics::inc(&self.metrics().blocked, reason.name());
                let (e, retry) = (e.to_string(), retry.as_millis().to_string());
                self.reg.emit(
                    Event::FailoverBlocked,
                    &[
                        ("group", group),
                        ("candidate", to),
                        ("reason", reason.name()),
                        ("error", &e),
                        ("retry-ms", &retry),
                    ],
                );
            }
        }
        r.map(|_| ())
    }
}

#[cfg(test)]
#[path = "failover_driver_tests.rs"]
mod tests;
