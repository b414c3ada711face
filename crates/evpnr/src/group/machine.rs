//! The group state machine, sans-IO: who may hold a group's vMAC.
//!
//! One [`Machine`] drives one operation on one group (a move, an explicit
//! bind or release, a member leaving, the GroupBVI deleted, or one resync
//! observation). It works on the group's [`Core`] (primary and `holders`, the
//! only persisted fields it changes) and on facts about the members
//! (connected, the store healthy). It is fed closed [`Input`]s and answers
//! closed [`Output`]s, which a driver executes (`group::driver`) and whose
//! results it feeds back. Every rule of `docs/group-machine.md` is
//! enforced here and nowhere else; the conformance files in
//! `tests/group-machine/` replay recorded inputs against it.
use std::collections::BTreeSet;

use evpn_daemon::events::Event as Ev;
use evpn_model::{Error, settle::SettleOutcome};

use crate::model::{Group, WantedRole};

pub use super::types::*;

#[path = "machine_leave.rs"]
mod leave;
#[path = "machine_resync.rs"]
mod resync;

/// The operation in flight.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Idle,
    Move {
        target: String,
        old: Option<String>,
        force: bool,
        op: MoveOp,
        pending: BTreeSet<String>,
        skipped: Vec<String>,
        /// Confirmed releases, each with whether its answer proved the
        /// member's routes dropped (F15).
        answered: std::collections::BTreeMap<String, bool>,
        /// A confirmed release showed its member cut off (F16).
        cut_off: bool,
        persisted: bool,
        binding: bool,
    },
    /// A bind waiting for its intent to be durable (resync, addresses).
    Bind {
        member: String,
        settle: Settle,
    },
    /// Waiting for an unassignment to be durable; then `then` is output
    /// and the releases in it are awaited.
    Unassign {
        before: Core,
        then: Vec<Output>,
        aggregate: bool,
    },
    /// Releases (explicit, leave, GroupBVI deleted, stray) waiting for
    /// their answers; the failures so far. `notify`: a release that
    /// unblocks the primary resyncs it.
    /// `aggregate`: the reply names every failure ("saved, but not
    /// released everywhere").
    Releasing {
        pending: BTreeSet<String>,
        failed: Vec<(String, Error)>,
        notify: bool,
        aggregate: bool,
    },
    Done,
}

/// One group's machine for one operation.
#[derive(Debug, Clone)]
pub struct Machine {
    pub group: String,
    pub core: Core,
    pub facts: Facts,
    op: Op,
    /// A release or bind was output in this operation: from then on
    /// readers may act on its changes as soon as they are made (R16).
    sent: bool,
    #[cfg(test)]
    disabled: BTreeSet<Rule>,
}

impl Machine {
    pub fn new(group: &str, core: Core, facts: Facts) -> Machine {
        Machine {
            group: group.to_string(),
            core,
            facts,
            op: Op::Idle,
            sent: false,
            #[cfg(test)]
            disabled: BTreeSet::new(),
        }
    }

    /// Switch a rule off (test builds only: the suite's teeth).
    #[cfg(test)]
    pub fn disable(&mut self, r: Rule) {
        self.disabled.insert(r);
    }

    fn on(&self, _r: Rule) -> bool {
        #[cfg(test)]
        if self.disabled.contains(&_r) {
            return false;
        }
        true
    }

    /// The operation is over (its reply was given, or it had none).
    pub fn done(&self) -> bool {
        matches!(self.op, Op::Idle | Op::Done)
    }

    /// Whether `member` should hold the vMAC now: it is the primary of a
    /// group with a GroupBVI and no other member may hold it (R2).
    pub fn may_bind(&self, member: &str) -> bool {
        if self.on(Rule::SoleHolder) {
            may_bind(&self.core, member)
        } else {
            self.core.bvi && self.core.primary.as_deref() == Some(member)
        }
    }

    /// Whether a step may still ask to save before it publishes (R16):
    /// nothing was sent in this operation yet.
    pub fn may_save_first(&self) -> bool {
        !self.sent
    }

    /// Feed one input; the outputs to execute, in order.
    pub fn step(&mut self, input: Input) -> Vec<Output> {
        let mut out = self.decide(input);
        // R16: a step that sends nothing, in an operation that sent nothing
        // yet, is saved before it is published. Once a release or bind is
        // out, the change is in effect at once (a member may act on it).
        let sends = out
            .iter()
            .any(|o| matches!(o, Output::Release { .. } | Output::Bind { .. }));
        if !self.sent && !sends && self.on(Rule::SaveBeforePublish) {
            for o in &mut out {
                if let Output::Persist { save_first, .. } = o {
                    *save_first = true;
                }
            }
        }
        self.sent |= sends;
        out
    }

    fn decide(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Move { target, force, op } => self.start_move(target, force, op, &mut out),
            Input::Release { member, cause } => self.release_request(member, cause, &mut out),
            Input::Leave { member, cause } => self.leave(member, cause, &mut out),
            Input::DeleteBvi => self.delete_bvi(&mut out),
            Input::Addresses { member } => self.claim(member, true, &mut out),
            Input::Observed { member, seen } => self.observed(member, seen, &mut out),
            Input::BindOk { member, outcome } => self.bind_ok(member, outcome, &mut out),
            Input::BindFailed { member, error } => self.bind_failed(member, error, &mut out),
            Input::Released { member, evidence } => self.released(member, evidence, &mut out),
            Input::ReleaseFailed { member, error } => self.release_failed(member, error, &mut out),
            Input::Persisted => self.persisted(&mut out),
            Input::PersistFailed { error } => self.persist_failed(error, &mut out),
            Input::Connectivity { member, connected } => {
                if connected {
                    self.facts.connected.insert(member);
                } else {
                    self.facts.connected.remove(&member);
                }
            }
            Input::StoreHealth { error } => self.facts.store_error = error,
            Input::Tick => {}
        }
        out
    }

    fn finish(&mut self, r: Result<(), Error>, out: &mut Vec<Output>) {
        self.op = Op::Done;
        out.push(Output::Reply(r));
    }

    fn persist(&self) -> Output {
        Output::Persist {
            primary: self.core.primary.clone(),
            holders: self.core.holders.clone(),
            save_first: false,
        }
    }

    fn event(&self, name: Ev, f: &[(&'static str, &str)]) -> Output {
        let mut fields = vec![("group", self.group.clone())];
        fields.extend(f.iter().map(|(k, v)| (*k, v.to_string())));
        Output::Event(Event { name, fields })
    }

    fn resync_all(&self, out: &mut Vec<Output>) {
        out.extend(
            self.core
                .members
                .iter()
                .map(|m| Output::Resync { member: m.clone() }),
        );
    }

    fn cannot_reach(e: &Error) -> bool {
        matches!(e, Error::Unavailable(_) | Error::Timeout(_))
    }

    fn refuse(&mut self, to: &str, from: &str, down: &[String], out: &mut Vec<Output>) {
        let down = down.join(",");
        out.push(self.event(
            Ev::MoveRefused,
            &[("from", from), ("to", to), ("unreachable", &down)],
        ));
        let g = &self.group;
        let e = Error::FailedPrecondition(format!(
            "group {g}: cannot reach {down}, which may hold the GroupBVI; \
             retry with force if it is dead"
        ));
        self.finish(Err(e), out);
    }

    fn move_failed(&mut self, to: &str, from: &str, e: Error, out: &mut Vec<Output>) {
        out.push(self.event(
            Ev::MoveFailed,
            &[("from", from), ("to", to), ("error", &e.to_string())],
        ));
        self.finish(Err(e), out);
    }

    fn start_move(&mut self, target: String, force: bool, op: MoveOp, out: &mut Vec<Output>) {
        let g = self.group.clone();
        if op == MoveOp::Bind
            && self.on(Rule::BindNotOverPrimary)
            && let Some(p) = self.core.primary.clone().filter(|p| *p != target)
        {
            let e = format!("group {g} is bound on {p}; use MoveGroupBVI to move it");
            return self.finish(Err(Error::FailedPrecondition(e)), out);
        }
        if self.on(Rule::StorePause)
            && let Some(e) = &self.facts.store_error
        {
            return self.finish(Err(paused(e)), out);
        }
        if self.on(Rule::MoveTarget) {
            if !self.core.members.contains(&target) {
                let e = format!("instance {target} is not a member of group {g}");
                return self.finish(Err(Error::FailedPrecondition(e)), out);
            }
            if !self.core.bvi {
                let e = format!("group {g} has no GroupBVI; create it first");
                return self.finish(Err(Error::FailedPrecondition(e)), out);
            }
            if let Some(e) = self.facts.unusable.get(&target) {
                return self.finish(Err(e.clone()), out);
            }
            if self.facts.evpn_disabled.contains(&target) {
                let e = format!(
                    "instance {target}: evpn {g} is disabled there, so it cannot announce \
                     the vMAC; enable it before moving the gateway there (force does not \
                     override this)"
                );
                return self.finish(Err(Error::FailedPrecondition(e)), out);
            }
        }
        let others: BTreeSet<String> = self
            .core
            .holders
            .iter()
            .filter(|h| **h != target)
            .cloned()
            .collect();
        if self.core.primary.as_deref() == Some(target.as_str())
            && others.is_empty()
            && self.core.holders.contains(&target)
        {
            // move-not-needed
            return self.finish(Ok(()), out);
        }
        let old = self.core.primary.clone();
        let from = old.clone().unwrap_or_default();
        let down: Vec<String> = others
            .iter()
            .filter(|h| !self.facts.connected.contains(*h))
            .cloned()
            .collect();
        if !down.is_empty() && !force && self.on(Rule::RefuseUnreachable) {
            return self.refuse(&target, &from, &down, out);
        }
        let op_s = op.name();
        out.push(self.event(
            Ev::MoveStarted,
            &[
                ("from", &from),
                ("to", &target),
                ("force", &force.to_string()),
                ("op", op_s),
            ],
        ));
        // The intent: from now on a resync of an old holder releases it,
        // and one of `target` binds only once no other holder is left.
        self.core.primary = Some(target.clone());
        if self.on(Rule::HolderBeforeBind) {
            self.core.holders.insert(target.clone());
        }
        out.push(self.persist());
        let pending = if self.on(Rule::ReleaseAllFirst) {
            others
        } else {
            BTreeSet::new()
        };
        out.extend(
            pending
                .iter()
                .map(|h| Output::Release { member: h.clone() }),
        );
        self.op = Op::Move {
            target,
            old,
            force,
            op,
            pending,
            skipped: vec![],
            answered: Default::default(),
            cut_off: false,
            persisted: !self.on(Rule::DurableBeforeBind),
            binding: false,
        };
        self.try_bind(out);
    }

    /// A move binds once every release is answered and the intent is on
    /// disk, and only if no holder but the skipped ones is left.
    fn try_bind(&mut self, out: &mut Vec<Output>) {
        let Op::Move {
            target,
            old,
            force,
            op,
            pending,
            skipped,
            answered,
            cut_off,
            persisted,
            binding,
        } = &mut self.op
        else {
            return;
        };
        if !pending.is_empty() || !*persisted || *binding {
            return;
        }
        *binding = true;
        let settle = match op {
            MoveOp::Takeover => Settle::Takeover(super::failover::takeover_settle(
                old.as_deref(),
                answered,
                skipped,
            )),
            _ if *cut_off => Settle::MoveHold,
            _ => Settle::Move,
        };
        let (target, force, skipped) = (target.clone(), *force, skipped.clone());
        let blocked: Vec<String> = self
            .core
            .holders
            .iter()
            .filter(|h| **h != target && !(force && skipped.contains(h)))
            .cloned()
            .collect();
        if !blocked.is_empty() && self.on(Rule::SoleHolder) {
            let e = Error::FailedPrecondition(format!(
                "group {}: {} may still hold the GroupBVI",
                self.group,
                blocked.join(",")
            ));
            return self.undo(e, None, out);
        }
        out.push(Output::Bind {
            member: target,
            settle,
        });
    }

    /// Undo a move's intent (R9): the old primary is the primary again;
    /// refused when `unreachable` could not be released, failed otherwise.
    fn undo(&mut self, e: Error, unreachable: Option<String>, out: &mut Vec<Output>) {
        let Op::Move { target, old, .. } = &self.op else {
            return;
        };
        let (target, old) = (target.clone(), old.clone());
        if self.on(Rule::UndoOnFailure) {
            self.core.primary = old.clone();
            out.push(self.persist());
            self.resync_all(out);
        }
        let from = old.unwrap_or_default();
        match unreachable {
            Some(h) => self.refuse(&target, &from, &[h], out),
            None => self.move_failed(&target, &from, e, out),
        }
    }

    fn bind_ok(&mut self, member: String, outcome: Option<SettleOutcome>, out: &mut Vec<Output>) {
        // The member's evidence wait before the bind, as an event.
        let settled = |settle| {
            super::settle::event(&self.group, &member, settle, outcome.as_ref())
                .filter(|_| self.on(Rule::SettleReported))
                .map(Output::Event)
        };
        match &self.op {
            Op::Move {
                target,
                old,
                skipped,
                op,
                binding: true,
                ..
            } if *target == member => {
                let op_s = op.name();
                let from = old.clone().unwrap_or_default();
                let skipped = skipped.join(",");
                out.extend(settled(Settle::Move));
                out.push(self.event(
                    Ev::MoveFinished,
                    &[
                        ("from", &from),
                        ("to", &member),
                        ("skipped", &skipped),
                        ("op", op_s),
                    ],
                ));
                self.finish(Ok(()), out);
            }
            Op::Bind { member: m, settle } if *m == member => {
                out.extend(settled(*settle));
                self.finish(Ok(()), out);
            }
            _ => {}
        }
    }

    fn bind_failed(&mut self, member: String, error: Error, out: &mut Vec<Output>) {
        match &self.op {
            Op::Move {
                target, old, op, ..
            } if *target == member => {
                // R10: unassigned (a takeover: its old primary), target released.
                let from = old.clone().unwrap_or_default();
                if self.on(Rule::UnassignOnBindFailure) {
                    self.core.primary = old.clone().filter(|_| *op == MoveOp::Takeover);
                    out.push(self.persist());
                    self.resync_all(out);
                    out.push(Output::Release {
                        member: member.clone(),
                    });
                }
                self.move_failed(&member, &from, error, out);
            }
            // A resync's bind that failed: the member stays a possible
            // holder; its next resync tries again.
            Op::Bind { member: m, .. } if *m == member => self.finish(Err(error), out),
            _ => {}
        }
    }

    fn released(
        &mut self,
        member: String,
        evidence: Option<ReleaseEvidence>,
        out: &mut Vec<Output>,
    ) {
        // Forget the holder (R3), but never the primary (R4): a move to it
        // may have written its intent after this release was planned.
        let keep = self.on(Rule::KeepPrimary) && self.core.primary.as_deref() == Some(&member);
        let forgot = !keep && self.core.holders.remove(&member);
        let notify = match &mut self.op {
            Op::Move {
                pending,
                answered,
                cut_off,
                ..
            } => {
                if pending.remove(&member) {
                    let proves = super::failover::release_proves(evidence.as_ref());
                    *cut_off |= super::failover::release_cut_off(evidence.as_ref());
                    answered.insert(member, proves);
                }
                self.try_bind(out);
                return;
            }
            Op::Releasing {
                pending, notify, ..
            } => {
                pending.remove(&member);
                *notify
            }
            Op::Idle => true,
            _ => false,
        };
        if forgot
            && notify
            && self.on(Rule::UnblockPrimary)
            && let Some(p) = self.core.primary.clone().filter(|p| *p != member)
            && self.may_bind(&p)
        {
            out.push(Output::Resync { member: p });
        }
        self.releases_done(out);
    }

    fn release_failed(&mut self, member: String, error: Error, out: &mut Vec<Output>) {
        if !self.on(Rule::ForgetOnlyConfirmed) {
            // What R3 forbids: forgetting a holder whose release failed.
            self.core.holders.remove(&member);
        }
        match &mut self.op {
            Op::Move {
                pending,
                skipped,
                force,
                ..
            } if pending.contains(&member) => {
                pending.remove(&member);
                let reach = Self::cannot_reach(&error);
                if reach && *force {
                    skipped.push(member.clone());
                    out.push(self.event(
                        Ev::GroupBviReleaseSkipped,
                        &[("instance", &member), ("error", &error.to_string())],
                    ));
                    return self.try_bind(out);
                }
                self.undo(error, reach.then_some(member), out);
            }
            Op::Releasing {
                pending, failed, ..
            } if pending.contains(&member) => {
                pending.remove(&member);
                failed.push((member, error));
                self.releases_done(out);
            }
            _ => {}
        }
    }

    /// The reply of a release operation once every release is answered.
    fn releases_done(&mut self, out: &mut Vec<Output>) {
        let Op::Releasing {
            pending,
            failed,
            aggregate,
            ..
        } = &self.op
        else {
            return;
        };
        if !pending.is_empty() {
            return;
        }
        let r = match &failed[..] {
            [] => Ok(()),
            [(_, e)] if !aggregate => Err(e.clone()),
            many => Err(Error::Unavailable(format!(
                "saved, but not released everywhere (resync retries): {}",
                many.iter()
                    .map(|(m, e)| format!("{m}: {e}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))),
        };
        self.finish(r, out);
    }

    fn persisted(&mut self, out: &mut Vec<Output>) {
        match std::mem::replace(&mut self.op, Op::Done) {
            Op::Move {
                target,
                old,
                force,
                op,
                pending,
                skipped,
                answered,
                cut_off,
                binding,
                ..
            } => {
                self.op = Op::Move {
                    target,
                    old,
                    force,
                    op,
                    pending,
                    skipped,
                    answered,
                    cut_off,
                    persisted: true,
                    binding,
                };
                self.try_bind(out);
            }
            Op::Bind { member, settle } => {
                // Re-checked on the state as it is now (R2).
                if self.may_bind(&member) {
                    out.push(Output::Bind {
                        member: member.clone(),
                        settle,
                    });
                    self.op = Op::Bind { member, settle };
                } else {
                    self.finish(Ok(()), out);
                }
            }
            Op::Unassign {
                then, aggregate, ..
            } => self.unassigned(then, aggregate, out),
            other => self.op = other,
        }
    }

    /// The unassignment is durable: output what waited for it and await
    /// its releases.
    fn unassigned(&mut self, then: Vec<Output>, aggregate: bool, out: &mut Vec<Output>) {
        let pending: BTreeSet<String> = then
            .iter()
            .filter_map(|o| match o {
                Output::Release { member } => Some(member.clone()),
                _ => None,
            })
            .collect();
        out.extend(then);
        self.op = Op::Releasing {
            pending,
            failed: vec![],
            notify: false,
            aggregate,
        };
        self.releases_done(out);
    }

    fn persist_failed(&mut self, error: Error, out: &mut Vec<Output>) {
        match std::mem::replace(&mut self.op, Op::Done) {
            op @ Op::Move { .. } => {
                self.op = op;
                self.undo(error, None, out);
            }
            Op::Bind { .. } => self.finish(Err(error), out),
            Op::Unassign { before, .. } => {
                // Nothing was sent: the change is taken back (the holders
                // were not changed by it and stay as they are now).
                self.core.primary = before.primary;
                self.core.members = before.members;
                self.core.bvi = before.bvi;
                self.finish(Err(error), out);
            }
            other => self.op = other,
        }
    }

    /// Leave the GroupBVI unassigned (if `member` is its primary), durably,
    /// then output `then` (R15).
    fn unassign(
        &mut self,
        before: Core,
        member: Option<&str>,
        cause: &'static str,
        mut then: Vec<Output>,
        out: &mut Vec<Output>,
    ) {
        let aggregate = member.is_none();
        let was = before.primary.as_deref();
        if before.bvi && was.is_some() && (member.is_none() || was == member) {
            self.core.primary = None;
            let p = was.unwrap_or_default().to_string();
            then.insert(
                0,
                self.event(Ev::GatewayDown, &[("instance", &p), ("cause", cause)]),
            );
        } else if member.is_some() && was == member {
            self.core.primary = None;
        }
        if self.on(Rule::UnassignBeforeRelease) {
            out.push(self.persist());
            self.op = Op::Unassign {
                before,
                then,
                aggregate,
            };
        } else {
            self.unassigned(then, aggregate, out);
        }
    }

    /// A bind on `member` if it is the primary and may bind (a resync, a
    /// joining primary, a new address set): recorded as a holder, the
    /// intent made durable, then bound.
    fn claim(&mut self, member: String, addresses: bool, out: &mut Vec<Output>) {
        if self.on(Rule::StorePause)
            && let Some(e) = &self.facts.store_error
        {
            return self.finish(Err(paused(e)), out);
        }
        let may = if self.on(Rule::SoleHolder) {
            self.may_bind(&member)
        } else {
            self.core.bvi && self.core.primary.as_deref() == Some(&member)
        };
        if !may {
            return self.finish(Ok(()), out);
        }
        let claim = !self.core.holders.contains(&member);
        if self.on(Rule::HolderBeforeBind) {
            self.core.holders.insert(member.clone());
        }
        let settle = if addresses && !claim {
            Settle::None
        } else {
            Settle::Resync
        };
        out.push(self.persist());
        self.op = Op::Bind { member, settle };
        if !self.on(Rule::DurableBeforeBind) {
            self.persisted(out);
        }
    }
}

/// R2: `member` may hold the vMAC now: it is the primary of a group with
/// a GroupBVI and no other member may hold it. The one statement of the
/// rule; the resync plan asks it too ([`wanted_role`]).
pub fn may_bind(core: &Core, member: &str) -> bool {
    core.bvi && core.primary.as_deref() == Some(member) && core.holders.iter().all(|h| h == member)
}

/// The role `member` should have in this group's eVPN. Whether the
/// primary may bind is the group machine's rule R2
/// ([`may_bind`]): another member that may still hold
/// the vMAC (a move or a release is not finished) blocks it.
pub fn wanted_role(g: &Group, member: &str) -> WantedRole {
    let is_primary = g.primary.as_deref() == Some(member);
    match (&g.bvi, is_primary) {
        (Some(bvi), true) => {
            let core = Core {
                primary: g.primary.clone(),
                holders: g.holders.clone(),
                members: BTreeSet::new(),
                bvi: true,
            };
            if may_bind(&core, member) {
                WantedRole::Primary {
                    vmac: g.vmac,
                    addresses: bvi.addresses.clone(),
                }
            } else {
                WantedRole::PrimaryBlocked
            }
        }
        _ => WantedRole::Candidate,
    }
}
