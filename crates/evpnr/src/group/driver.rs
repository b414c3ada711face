//! The driver of the group state machine: runs one operation of one group
//! by stepping its [`Machine`] and executing the outputs (releases and
//! binds through the member calls, persistence through the state store,
//! events, resync nudges) and feeding their results back.
//!
//! Each step runs under the registry's state writer
//! ([`Registry::mutate_group`]): the machine decides on the group as it is
//! right then, and its change of `primary` / `holders` is stored in the same
//! atomic step. Operator requests run under the group's lock, so one group
//! has one operation in flight at a time; a resync observation is one
//! operation of its own, run under its member's lock. Releases and binds
//! take the member's configuration lock unless the caller holds it
//! (`held`).
use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    sync::Arc,
    time::{Instant, SystemTime},
};

use evpn_daemon::events::Event as Ev;
use evpn_model::{Error, error::Object};
use ipnet::IpNet;

use super::machine::{Core, Event, Facts, Input, Machine, MoveOp, Output, ReleaseEvidence, Settle};
use crate::{
    model::Group,
    registry::{Conn, Publish, Registry},
};

/// How one operation is driven.
#[derive(Default)]
pub struct Drive<'a> {
    /// The member whose configuration lock the caller holds.
    pub held: Option<&'a str>,
    /// The address set a bind sends instead of the stored one (an address
    /// change is applied before it is stored).
    pub addresses: Option<&'a [IpNet]>,
    /// The member that must be usable for a move (its readiness is a fact).
    pub target: Option<&'a str>,
}

/// What an operation did.
#[derive(Debug, Default)]
pub struct Driven {
    /// A bind was answered OK.
    pub bound: bool,
    /// How the operation's bind settles (F15, F16), once it was sent.
    pub settle: Option<Settle>,
}

/// The outputs of one step, and the result of the save it made before
/// publishing its change (None: published at once).
struct Stepped {
    outs: Vec<Output>,
    saved: Option<Result<(), Error>>,
}

fn core(g: &Group) -> Core {
    Core {
        primary: g.primary.clone(),
        holders: g.holders.clone(),
        members: g.members.clone(),
        bvi: g.bvi.is_some(),
    }
}

/// Store the machine's core back into the group. `before` is the group as
/// the operation found it: a GroupBVI the machine took back (its deletion
/// could not be saved) gets its addresses back from there.
fn store(g: &mut Group, c: &Core, before: &Group) {
    let now = SystemTime::now();
    let touched = g.primary != c.primary || g.members != c.members || g.bvi.is_some() != c.bvi;
    if g.primary != c.primary
        && let Some(b) = g.bvi.as_mut()
    {
        b.modified_at = now;
    }
    g.primary = c.primary.clone();
    g.holders = c.holders.clone();
    g.members = c.members.clone();
    // A member that left takes its failover priority with it.
    g.priorities.retain(|m, _| c.members.contains(m));
    if !c.bvi {
        g.bvi = None;
    } else if g.bvi.is_none() {
        g.bvi = before.bvi.clone();
    }
    if touched {
        g.modified_at = now;
    }
}

impl Registry {
    /// The facts a step decides on, read right before it.
    fn facts(&self, target: Option<&str>) -> Facts {
        let connected: BTreeSet<String> = self.read(|i| {
            i.rt.iter()
                .filter(|(_, r)| r.conn == Conn::Connected)
                .map(|(id, _)| id.clone())
                .collect()
        });
        let unusable: BTreeMap<String, Error> = target
            .and_then(|t| self.require_ready(t).err().map(|e| (t.to_string(), e)))
            .into_iter()
            .collect();
        Facts {
            connected,
            store_error: self.health.error(),
            unusable,
            evpn_disabled: BTreeSet::new(),
        }
    }

    /// One step: load the group, step, store it back, atomically. None if
    /// the group does not exist (any more). A step whose change must be on
    /// disk before anyone sees it (a `Persist` with `save_first`, R16) is
    /// published only after the save; the save's result comes back with
    /// the outputs (and answers that `Persist`).
    fn step(&self, m: &mut Machine, input: Input, facts: Facts, before: &Group) -> Option<Stepped> {
        let (outs, saved) = self.mutate_group(&m.group.clone(), |g| {
            m.core = core(g);
            m.facts = facts;
            let out = m.step(input);
            store(g, &m.core, before);
            let first = out
                .iter()
                .any(|o| matches!(o, Output::Persist { save_first, .. } if *save_first));
            let when = if first {
                Publish::AfterSave
            } else {
                Publish::Now
            };
            (out, when)
        })?;
        Some(Stepped { outs, saved })
    }

    /// `{target}` if the group's eVPN is disabled on `target` (a fact for
    /// R13). Asked of the member itself; an unanswered question is no
    /// fact (whether the target is usable at all is `unusable`'s).
    async fn evpn_disabled(&self, target: &str, group: &str) -> BTreeSet<String> {
        match self.southbound.evpn_enabled(self, target, group).await {
            Ok(Some(false)) => BTreeSet::from([target.to_string()]),
            _ => BTreeSet::new(),
        }
    }

    /// [`Registry::step`], on a blocking thread when the step may save
    /// (so an fsync never stalls a runtime worker).
    async fn step_async(
        self: &Arc<Self>,
        m: &mut Machine,
        input: Input,
        target: Option<&str>,
        disabled: &BTreeSet<String>,
        before: &Group,
    ) -> Result<Option<Stepped>, Error> {
        let mut facts = self.facts(target);
        facts.evpn_disabled = disabled.clone();
        if !m.may_save_first() {
            return Ok(self.step(m, input, facts, before));
        }
        let (me, mut mm, b) = (self.clone(), m.clone(), before.clone());
        let (mm, r) = tokio::task::spawn_blocking(move || {
            let r = me.step(&mut mm, input, facts, &b);
            (mm, r)
        })
        .await
        .map_err(|e| Error::Internal(format!("state writer: {e}")))?;
        *m = mm;
        Ok(r)
    }

    /// Run one operation on `group`'s machine, starting with `input`, until
    /// it replied and every output it asked for was executed. NOT_FOUND if
    /// the group does not exist.
    pub async fn drive(
        self: &Arc<Self>,
        group: &str,
        input: Input,
        how: Drive<'_>,
    ) -> Result<Driven, Error> {
        let start = Instant::now();
        let before = self.group(group)?;
        let mut m = Machine::new(group, core(&before), Facts::default());
        let moving = match &input {
            Input::Move { target, .. } => Some(target.clone()),
            _ => None,
        };
        // F14: a takeover's releases of other holders (the old primary)
        // are waited for at most `failover.release-wait`; the release of
        // its own target after a failed bind is not (see `effect`).
        let takeover = match &input {
            Input::Move {
                op: MoveOp::Takeover,
                target,
                ..
            } => Some(target.clone()),
            _ => None,
        };
        let disabled = match (&moving, how.target) {
            (Some(t), Some(_)) => self.evpn_disabled(t, group).await,
            _ => BTreeSet::new(),
        };
        let mut queue = VecDeque::from([input]);
        let mut reply = Ok(());
        let mut driven = Driven::default();
        let mut first = true;
        let mut effects_run = 0;
        while let Some(input) = queue.pop_front() {
            let target = if first { how.target } else { None };
            first = false;
            let Some(Stepped { outs, saved }) = self
                .step_async(&mut m, input, target, &disabled, &before)
                .await?
            else {
                return Err(Error::not_found(Object::Group, group));
            };
            let mut effects = Vec::new();
            for o in outs {
                match o {
                    Output::Event(e) => self.machine_event(&before, e, start),
                    Output::Resync { member } => self.trigger_resync(&member),
                    Output::Reply(r) => reply = r,
                    e => {
                        if let Output::Bind { settle, .. } = &e {
                            driven.settle = Some(*settle);
                        }
                        effects.push(e)
                    }
                }
            }
            // Releases (and the persistence running next to them) run
            // concurrently; their answers are fed back in output order.
            effects_run += effects.len();
            let saved = &saved;
            let runs = effects
                .into_iter()
                .map(|e| self.effect(group, e, &how, saved, takeover.as_deref(), start));
            for (input, bound) in futures::future::join_all(runs).await {
                driven.bound |= bound;
                queue.push_back(input);
            }
        }
        if let (Some(target), Ok(()), 0) = (&moving, &reply, effects_run) {
            tracing::info!(group, instance = target, "move-not-needed");
        }
        reply.map(|()| driven)
    }

    /// Execute one effect; the input that reports its result. `saved`: the
    /// result of the save its step made before publishing (which answers a
    /// `save_first` persist). `takeover`: the operation is an autonomous
    /// takeover to this target: its releases of the other holders are
    /// bounded by F14, but not the release of the target itself after its
    /// bind failed (R10) — that one cleans up a member that is up and
    /// answering, and a bounded wait would count it as not released, leave
    /// the target a possible holder and report a "late" release of a
    /// member that was never the primary (CI, session 11). `op_start`: when
    /// the operation started (a takeover's least settle counts from it).
    async fn effect(
        self: &Arc<Self>,
        group: &str,
        o: Output,
        how: &Drive<'_>,
        saved: &Option<Result<(), Error>>,
        takeover: Option<&str>,
        op_start: Instant,
    ) -> (Input, bool) {
        let start = Instant::now();
        match o {
            Output::Persist { save_first, .. } => {
                let r = match (save_first, saved) {
                    (true, Some(r)) => r.clone(),
                    _ => self.persist_pending().await,
                };
                match r {
                    Ok(()) => {
                        crate::timeline::mark("intent saved", start);
                        (Input::Persisted, false)
                    }
                    Err(error) => {
                        tracing::error!(group, error = %error, "group-state-not-persisted");
                        (Input::PersistFailed { error }, false)
                    }
                }
            }
            Output::Release { member } if takeover.is_some_and(|t| t != member) => {
                let held = how.held == Some(member.as_str());
                let r = self.takeover_release(group, &member, held).await;
                // The call runs on a task of its own (F14), outside the
                // timeline's scope: its wait is marked here.
                let what = match &r {
                    Ok(_) => "takeover release answered",
                    Err(_) => "takeover release not answered (F14)",
                };
                crate::timeline::mark(what, start);
                match r {
                    Ok(evidence) => (Input::Released { member, evidence }, false),
                    Err(error) => {
                        tracing::warn!(group, instance = member, error = %error, "member-release-failed");
                        (Input::ReleaseFailed { member, error }, false)
                    }
                }
            }
            Output::Release { member } => {
                let ml = self.member_lock(&member);
                let _m = match how.held == Some(member.as_str()) {
                    true => None,
                    false => Some(ml.lock().await),
                };
                match self.release_call(&member, group).await {
                    Ok(evidence) => (Input::Released { member, evidence }, false),
                    Err(error) => {
                        tracing::warn!(group, instance = member, error = %error, "member-release-failed");
                        (Input::ReleaseFailed { member, error }, false)
                    }
                }
            }
            Output::Bind { member, settle } => {
                let ml = self.member_lock(&member);
                let _m = match how.held == Some(member.as_str()) {
                    true => None,
                    false => Some(ml.lock().await),
                };
                let g = match self.group(group) {
                    Ok(g) => g,
                    Err(error) => return (Input::BindFailed { member, error }, false),
                };
                let stored = g.bvi.map(|b| b.addresses).unwrap_or_default();
                let addresses = how.addresses.unwrap_or(&stored);
                match self
                    .bind_on(&member, group, g.vmac, addresses, settle, op_start)
                    .await
                {
                    Ok(outcome) => (Input::BindOk { member, outcome }, true),
                    Err(error) => (Input::BindFailed { member, error }, false),
                }
            }
            // Not effects (handled by `drive`).
            Output::Event(_) | Output::Resync { .. } | Output::Reply(_) => (Input::Tick, false),
        }
    }

    /// F14: a takeover's release of `member` (the old primary). Sent only
    /// while its connection is up, and waited for at most
    /// `failover.release-wait`: after that it counts as not released (a
    /// timeout, so the takeover skips it and binds only on the fabric's
    /// evidence), but it is not cancelled — dropping a call's future would
    /// reset its stream and could abort the member's handler midway. It
    /// runs on in a task of its own (under the member's lock unless the
    /// caller holds it), and its late outcome is logged and reported
    /// (`failover-release-late`); then the member is resynced, so the
    /// group's machine learns what it holds now. The task keeps the audit
    /// cause (the takeover's decision): the late call's `out` record names
    /// the decision as its parent and is fsynced when the call ends. An
    /// answer in time comes with the member's look at its links, if it
    /// reported one (F15).
    async fn takeover_release(
        self: &Arc<Self>,
        group: &str,
        member: &str,
        held: bool,
    ) -> Result<Option<ReleaseEvidence>, Error> {
        let up = self.conn(member).is_some_and(|(c, _)| c == Conn::Connected);
        let cfg = self.cfg();
        let Some(wait) = super::failover::takeover_release_wait(
            up,
            cfg.failover.release_wait.0,
            cfg.member_timeout.0,
        ) else {
            return Err(Error::Unavailable(format!(
                "member {member}: not connected; ReleaseGroupBVI not sent (rule F14)"
            )));
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (reg, g, m) = (self.clone(), group.to_string(), member.to_string());
        let lock = (!held).then(|| self.member_lock(member));
        // The call's own steps go to the takeover's timeline (a late
        // answer's arrive after it was published, unseen).
        let tl =
            crate::timeline::Timeline::current().unwrap_or_else(crate::timeline::Timeline::start);
        tokio::spawn(evpn_daemon::audit::layer::keep_cause(
            tl.clone().scope_owned(async move {
                let _l = match lock {
                    Some(l) => Some(l.lock_owned().await),
                    None => None,
                };
                // Sent late (the member's lock was busy) to a member that has
                // become primary again since: releasing it now would take the
                // gateway down by surprise.
                // The takeover stops waiting after `wait`: a release that
                // reaches the member later than that (held by a partition)
                // is refused there (`evpn-not-after`), not carried out
                // behind evpnr's back; a live member gets it at once.
                let not_after = std::time::SystemTime::now() + wait;
                let r = match reg
                    .group(&g)
                    .is_ok_and(|x| x.primary.as_deref() == Some(m.as_str()))
                {
                    true => None,
                    false => Some(
                        evpn_daemon::identity::expiring(not_after, reg.release_call(&m, &g)).await,
                    ),
                };
                let answer = r.clone().unwrap_or_else(|| {
                    Err(Error::Unavailable(format!(
                        "member {m} is primary again; release not sent"
                    )))
                });
                if tx.send(answer).is_ok() {
                    return;
                }
                // The takeover went on without this answer.
                let (result, error) = match &r {
                    None => ("skipped", String::new()),
                    Some(Ok(_)) => ("released", String::new()),
                    Some(Err(e)) => ("failed", e.to_string()),
                };
                tracing::warn!(
                    group = g,
                    instance = m,
                    result,
                    error,
                    "failover-release-late"
                );
                reg.emit(
                    Ev::FailoverReleaseLate,
                    &[
                        ("group", &g),
                        ("instance", &m),
                        ("result", result),
                        ("error", &error),
                    ],
                );
                // Its resync observes what it holds now, and the group's
                // machine forgets it as a holder once it holds nothing.
                reg.trigger_resync(&m);
            }),
        ));
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::Internal(format!(
                "member {member}: the release task ended without an answer"
            ))),
            Err(_) => Err(Error::Timeout(format!(
                "member {member}: ReleaseGroupBVI not answered within {} ms \
                 (failover.release-wait); counted as not released, the release goes on",
                wait.as_millis()
            ))),
        }
    }

    /// Emit an event the machine asked for (with the timings and the
    /// gateway identity it does not know).
    fn machine_event(&self, before: &Group, e: Event, start: Instant) {
        let mut fields: Vec<(&str, String)> = e.fields;
        let secs = start.elapsed().as_secs_f64();
        match e.name {
            Ev::MoveFinished => {
                self.metrics.moved("ok", secs);
                fields.push(("duration-ms", format!("{:.3}", secs * 1e3)));
            }
            Ev::MoveRefused => self.metrics.moved("refused", secs),
            Ev::MoveFailed => self.metrics.moved("failed", secs),
            Ev::GatewayDown => {
                fields.push(("vmac", before.vmac.to_string()));
                fields.push(("addresses", crate::model::addresses(before)));
            }
            _ => {}
        }
        let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.emit(e.name, &f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member that leaves (the machine's core without it) takes its
    /// failover priority with it; the others keep theirs.
    #[test]
    fn a_member_that_leaves_takes_its_priority_with_it() {
        let t = SystemTime::UNIX_EPOCH;
        let g = Group {
            id: "g".into(),
            vni: 100,
            import_rts: vec![],
            export_rts: vec![],
            mtu: 1500,
            vmac: "42:6c:fa:d6:82:98".parse().unwrap(),
            members: ["a".to_string(), "b".to_string()].into(),
            primary: None,
            holders: Default::default(),
            bvi: None,
            created_at: t,
            modified_at: t,
            failover: Default::default(),
            priorities: [("a".to_string(), 200), ("b".to_string(), 50)].into(),
        };
        let mut c = core(&g);
        c.members.remove("a");
        let mut after = g.clone();
        store(&mut after, &c, &g);
        assert_eq!(after.priority("a"), crate::model::DEFAULT_PRIORITY);
        assert_eq!(after.priority("b"), 50);
    }
}
