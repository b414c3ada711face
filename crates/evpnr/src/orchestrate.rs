//! Member configuration: resync (gated on the member being connected and
//! ready), the configure chain (CreateEvpnInstance → CreateBVI → bind if
//! primary) with rollback, and the bind/release calls. What a resync sees of
//! a member's binding is fed to the group's state machine (`group`), which
//! alone decides who binds and keeps the `holders` bookkeeping.
//!
//! Every function here that talks to a member expects the caller to hold
//! that member's configuration lock.
use std::{sync::Arc, time::SystemTime};

use evpn_daemon::events::Event;
use evpn_model::{Error, Mac, settle::SettleOutcome};
use ipnet::IpNet;

use crate::{
    group::{
        driver::Drive,
        machine::{Input, ReleaseEvidence, Seen, Settle, TakeoverSettle, wanted_role},
    },
    model::WantedRole,
    plan::{Action, ActualBvi, ActualEvpn, Desired, plan},
    registry::{Conn, Registry},
    southbound::BindRequest,
};

/// Which of a member's groups [`Registry::converge`] acts on, and which
/// group locks it holds.
#[derive(Clone, Copy, Debug)]
pub enum Scope<'a> {
    /// Every group (a resync); each group's lock is taken for its actions,
    /// and a group whose lock is held (an operation in flight) is deferred
    /// (R18).
    Resync,
    /// Only this group, whose lock the caller holds.
    Locked(&'a str),
}

/// What a member reports: its eVPNs and BVIs.
pub async fn actual(reg: &Registry, id: &str) -> Result<(Vec<ActualEvpn>, Vec<ActualBvi>), Error> {
    reg.southbound.list(reg, id).await
}

impl Registry {
    /// Resync member `id` under its configuration lock: diff its eVPNs and
    /// BVIs against its groups and apply the difference. Skipped (and
    /// retried on the next trigger) while the member is not connected and
    /// ready. Its outcome (`Ok`: converged, or skipped before any call),
    /// for the decision's audit record.
    pub async fn resync(self: &Arc<Self>, id: &str) -> Result<(), Error> {
        let lock = self.member_lock(id);
        let _g = lock.lock().await;
        match self.conn(id) {
            Some((Conn::Connected, true)) => {}
            _ => return Ok(()),
        }
        // Paused while the state store fails; every member is resynced when
        // it recovers.
        if let Err(e) = self.store_ok() {
            tracing::debug!(instance = id, error = %e, "resync-paused");
            return Ok(());
        }
        let groups = self.read(|i| i.state.groups_of(id));
        let r = self.converge(id, Scope::Resync).await;
        match &r {
            Ok(0) => {
                self.metrics.resyncs.get_or_create(&res("unchanged")).inc();
                self.set_status(id, &groups, None);
                tracing::debug!(instance = id, "resync-unchanged");
            }
            Ok(n) => {
                self.metrics.resyncs.get_or_create(&res("changed")).inc();
                self.set_status(id, &groups, None);
                let n = n.to_string();
                self.emit(
                    Event::InstanceResynced,
                    &[("instance", id), ("changes", &n)],
                );
            }
            Err(e) => {
                self.metrics.resyncs.get_or_create(&res("failed")).inc();
                self.set_status(id, &groups, Some(e.to_string()));
                self.emit(
                    Event::InstanceResyncFailed,
                    &[("instance", id), ("error", &e.to_string())],
                );
            }
        }
        r.map(|_| ())
    }

    /// Record the outcome of configuring one membership.
    pub fn mark_membership(&self, id: &str, group: &str, err: Option<String>) {
        self.with_rt(id, |rt| {
            let s = rt.memberships.entry(group.to_string()).or_default();
            s.configured = err.is_none();
            if err.is_none() {
                s.last_resync = Some(SystemTime::now());
            }
            s.last_error = err.unwrap_or_default();
        });
    }

    fn set_status(&self, id: &str, groups: &[String], err: Option<String>) {
        self.with_rt(id, |rt| {
            rt.memberships.retain(|g, _| groups.contains(g));
            for g in groups {
                let s = rt.memberships.entry(g.clone()).or_default();
                s.configured = err.is_none();
                s.last_error = err.clone().unwrap_or_default();
                if err.is_none() {
                    s.last_resync = Some(SystemTime::now());
                }
            }
        });
    }

    /// Make member `id` match its groups (every group for a resync, or only
    /// the group whose lock the caller holds, in which case eVPNs of other
    /// groups are left alone). Returns the number of changes made, or the
    /// first error (after trying every action).
    ///
    /// R18: a resync changes nothing of a group while an operation on that
    /// group is in flight (its lock is held: a move or takeover may be
    /// waiting for the fabric's evidence, and the stored intent is not the
    /// group's settled state — a takeover's old primary would look like a
    /// stray holder and be released, turning a takeover the fabric refuses
    /// into a move). That group's actions are deferred: the member is
    /// resynced again once the operation has ended.
    pub async fn converge(self: &Arc<Self>, id: &str, scope: Scope<'_>) -> Result<usize, Error> {
        let only = match scope {
            Scope::Resync => None,
            Scope::Locked(g) => Some(g),
        };
        let (mut evpns, mut bvis) = actual(self, id).await?;
        if let Some(g) = only {
            evpns.retain(|e| e.slug == g);
            bvis.retain(|b| b.slug == g);
        }
        // Read the groups right before acting, not from an older snapshot.
        let (desired, left): (Vec<Desired>, Vec<String>) = self.read(|i| {
            let mine = |g: &&crate::model::Group| only.is_none_or(|o| o == g.id);
            let groups = || i.state.groups.values().filter(mine);
            (
                groups()
                    .filter(|g| g.members.contains(id))
                    .map(|g| Desired::of(g, id, wanted_role(g, id)))
                    .collect(),
                // Groups the member left while it could not release; still
                // recorded as a possible holder there.
                groups()
                    .filter(|g| !g.members.contains(id) && g.holders.contains(id))
                    .map(|g| g.id.clone())
                    .collect(),
            )
        });
        let mut actions = plan(&desired, &evpns, &bvis);
        // Such a group's eVPN, if still there, is deleted by the plan (which
        // confirms the release); if it is gone already, a release (answered
        // NOT_FOUND) confirms it, so the group's primary is not blocked for good.
        for g in left {
            if !evpns.iter().any(|e| e.slug == g) {
                actions.push(Action::Release { group: g });
            }
        }
        // One failing group does not hold up the others: every action is
        // tried, the first error is returned (the rest are logged).
        let mut first = None;
        let mut n = 0;
        let mut deferred = std::collections::BTreeSet::new();
        for a in actions {
            // R18 (a resync only): the group's lock, held while the action
            // runs; busy → deferred until the operation in flight ends.
            let _g = match scope {
                Scope::Locked(_) => None,
                Scope::Resync => {
                    let group = a.group().to_string();
                    match self.group_lock(&group).try_lock_owned() {
                        Ok(g) => Some(g),
                        Err(_) => {
                            if deferred.insert(group.clone()) {
                                self.resync_after_op(id, &group);
                            }
                            continue;
                        }
                    }
                }
            };
            n += 1;
            if let Err(e) = self.apply(id, a).await {
                if first.is_some() {
                    tracing::warn!(instance = id, error = %e, "resync-action-failed");
                } else {
                    first = Some(e);
                }
            }
        }
        first.map_or(Ok(n), Err)
    }

    /// R18: resync member `id` again once the operation in flight on
    /// `group` has ended (its lock is free again).
    fn resync_after_op(self: &Arc<Self>, id: &str, group: &str) {
        tracing::debug!(instance = id, group, "resync-deferred");
        let (reg, id, gl) = (self.clone(), id.to_string(), self.group_lock(group));
        tokio::spawn(async move {
            drop(gl.lock_owned().await);
            reg.trigger_resync(&id);
        });
    }

    async fn apply(self: &Arc<Self>, id: &str, a: Action) -> Result<(), Error> {
        match a {
            Action::DeleteEvpn { slug } => self.delete_evpn(id, &slug).await,
            Action::Configure(d) => self.configure(id, &d, true).await,
            Action::CreateBvi(d) => self.configure(id, &d, false).await,
            Action::ReplaceBvi { group, mac, mtu } => self.replace_bvi(id, &group, mac, mtu).await,
            Action::Bind {
                group,
                addresses_only,
                ..
            } => self
                .bind_if_primary(id, &group, addresses_only)
                .await
                .map(|_| ()),
            Action::Release { group } => self.release_stray(id, &group).await,
        }
    }

    /// Create the eVPN (if `create_evpn`) and the BVI, then bind if the
    /// member is the primary. On any failure the eVPN is deleted again so a
    /// half-built member never passes as configured.
    async fn configure(
        self: &Arc<Self>,
        id: &str,
        d: &Desired,
        create_evpn: bool,
    ) -> Result<(), Error> {
        if create_evpn {
            self.southbound.create_evpn(self, id, d).await?;
        }
        let result = async {
            self.southbound
                .create_bvi(self, id, &d.group, d.bvi_mac, d.mtu)
                .await?;
            if !matches!(d.role, WantedRole::Candidate) {
                self.bind_if_primary(id, &d.group, false).await?;
            }
            Ok::<_, Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                let mac = d.bvi_mac.to_string();
                self.emit(
                    Event::MemberConfigured,
                    &[("instance", id), ("group", &d.group), ("mac", &mac)],
                );
                Ok(())
            }
            Err(e) => {
                let rb = self.delete_evpn(id, &d.group).await;
                let rolled = if rb.is_ok() { "true" } else { "false" };
                self.emit(
                    Event::MemberConfigureRolledBack,
                    &[
                        ("instance", id),
                        ("group", &d.group),
                        ("error", &e.to_string()),
                        ("rolled-back", rolled),
                    ],
                );
                Err(e)
            }
        }
    }

    /// Delete an eVPN (and its BVI, which evpnd releases first) on a member;
    /// NOT_FOUND counts as done.
    pub async fn delete_evpn(self: &Arc<Self>, id: &str, slug: &str) -> Result<(), Error> {
        if self.southbound.delete_evpn(self, id, slug).await? {
            self.emit(
                Event::MemberEvpnDeleted,
                &[("instance", id), ("evpn", slug)],
            );
        }
        self.confirm_released(id, slug).await
    }

    async fn replace_bvi(&self, id: &str, group: &str, mac: Mac, mtu: u32) -> Result<(), Error> {
        self.southbound
            .replace_bvi(self, id, group, mac, mtu)
            .await?;
        let mtu = mtu.to_string();
        self.emit(
            Event::MemberBviReplaced,
            &[("instance", id), ("group", group), ("mtu", &mtu)],
        );
        Ok(())
    }

    /// What a resync saw of `id` in `group` (unbound, or bound with other
    /// addresses when `stale`), fed to the group's machine: it binds if
    /// `id` is the primary and no other member may hold the vMAC. The
    /// caller holds `id`'s lock. Returns whether it bound.
    pub async fn bind_if_primary(
        self: &Arc<Self>,
        id: &str,
        group: &str,
        stale: bool,
    ) -> Result<bool, Error> {
        let seen = if stale {
            Seen::StaleAddresses
        } else {
            Seen::Unbound
        };
        let input = Input::Observed {
            member: id.to_string(),
            seen,
        };
        let how = Drive {
            held: Some(id),
            ..Drive::default()
        };
        match self.drive(group, input, how).await {
            Ok(d) => Ok(d.bound),
            Err(Error::NotFound { .. }) if self.group(group).is_err() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// What a resync saw: `id` holds (some of) `group`'s gateway identity,
    /// or is recorded as a possible holder, and should not. The group's
    /// machine releases it. The caller holds `id`'s lock.
    async fn release_stray(self: &Arc<Self>, id: &str, group: &str) -> Result<(), Error> {
        let input = Input::Observed {
            member: id.to_string(),
            seen: Seen::Holds,
        };
        let how = Drive {
            held: Some(id),
            ..Drive::default()
        };
        match self.drive(group, input, how).await {
            Err(Error::NotFound { .. }) if self.group(group).is_err() => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Give the primary `id` of `group` the address set `addresses` (not
    /// stored yet: the caller stores it once this succeeded). A primary that
    /// is a recorded holder already holds the vMAC and only gets the new
    /// set (no evidence wait, `groupbvi-addresses-applied`); one that is not
    /// is bound for real (evidence wait, `groupbvi-bound`). Nothing is sent
    /// while the bind is blocked by another possible holder. The caller
    /// holds `id`'s lock.
    pub async fn apply_addresses(
        self: &Arc<Self>,
        id: &str,
        group: &str,
        addresses: &[IpNet],
    ) -> Result<(), Error> {
        let input = Input::Addresses {
            member: id.to_string(),
        };
        let how = Drive {
            held: Some(id),
            addresses: Some(addresses),
            ..Drive::default()
        };
        match self.drive(group, input, how).await {
            Err(Error::NotFound { .. }) if self.group(group).is_err() => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Send the bind (the caller has recorded `id` as a holder already).
    /// A claim of the vMAC (`Move`, `Resync`) first waits, on the member,
    /// for evidence that no other VTEP announces the vMAC (`move.*`
    /// settings), in the same round trip; an address change of a holder
    /// (`Addresses`) does not. The wait's outcome as the member reported
    /// it is returned: the group's machine makes it an event.
    pub async fn bind_on(
        &self,
        id: &str,
        group: &str,
        vmac: Mac,
        addresses: &[IpNet],
        mode: Settle,
        op_start: std::time::Instant,
    ) -> Result<Option<SettleOutcome>, Error> {
        let settle = mode != Settle::None;
        let b = BindRequest {
            group: group.to_string(),
            vmac,
            addresses: addresses.to_vec(),
            settle: settle.then(|| {
                let cfg = self.cfg();
                let mut p = cfg.move_.policy();
                // A takeover binds only on the fabric's evidence, and not
                // before every router can have dropped the old primary's
                // route (the candidate's own table may be ahead of theirs):
                // `takeover-min-settle` after the takeover started, which
                // is when its first evidence (the candidate's withdrawal
                // report, or the missed heartbeats) came in. The release
                // of the old primary's, if any, already waited part of it.
                // F15: not when the old primary's answer to its release
                // showed every peer already dropped its routes.
                if matches!(mode, Settle::Takeover(_)) {
                    p.require_evidence = true;
                }
                // F16: the old primary answered its release cut off from
                // the fabric; the other routers drop its routes by their
                // own timers, up to a BFD interval after this candidate.
                if mode == Settle::MoveHold {
                    p.clear_hold = cfg.move_.takeover_min_settle.0.min(p.max_wait);
                }
                // A candidate that saw the withdrawal itself counts the
                // least settle from that sight instead (its own clock; the
                // takeover's start is a later proxy, and this request's
                // transit would count on top) — unless `move.min-settle`
                // asks every bind for a fixed wait from its receipt.
                if mode == Settle::Takeover(TakeoverSettle::Least) {
                    let least = cfg.move_.takeover_min_settle.0;
                    let left = least.saturating_sub(op_start.elapsed());
                    p.since_withdrawal = p.min_settle.is_zero().then_some(least.min(p.max_wait));
                    p.min_settle = p.min_settle.max(left);
                }
                p
            }),
        };
        let outcome = self.southbound.bind(self, id, &b).await?;
        let mac = vmac.to_string();
        let a = addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        if mode == Settle::None {
            self.emit(
                Event::GroupBviAddressesApplied,
                &[("instance", id), ("group", group), ("addresses", &a)],
            );
        } else {
            self.emit(
                Event::GroupBviBound,
                &[
                    ("instance", id),
                    ("group", group),
                    ("mac", &mac),
                    ("addresses", &a),
                ],
            );
        }
        Ok(outcome)
    }

    /// Release the GroupBVI on `id` (the call only; NOT_FOUND counts as
    /// released: no eVPN/BVI on the member, it cannot hold the vMAC). The
    /// group's machine decides what a confirmation means.
    /// The member's look at its links after the release (F15) comes back
    /// with it if it reported one.
    pub async fn release_call(
        &self,
        id: &str,
        group: &str,
    ) -> Result<Option<ReleaseEvidence>, Error> {
        let evidence = self.southbound.release(self, id, group).await?;
        self.emit(
            Event::GroupBviReleased,
            &[("instance", id), ("group", group)],
        );
        Ok(evidence)
    }

    /// Release on `id` and feed the confirmation to the group's machine.
    pub async fn release_on(self: &Arc<Self>, id: &str, group: &str) -> Result<(), Error> {
        self.release_call(id, group).await?;
        self.confirm_released(id, group).await
    }

    /// `id` no longer holds `group`'s vMAC (a release, or the deletion of
    /// its eVPN, was confirmed outside an operation of the group): the
    /// group's machine forgets it as a possible holder (never the primary)
    /// and resyncs the primary if that unblocks it. Nothing to do for a
    /// group that is gone.
    pub async fn confirm_released(self: &Arc<Self>, id: &str, group: &str) -> Result<(), Error> {
        let input = Input::Released {
            member: id.to_string(),
            evidence: None,
        };
        let how = Drive {
            held: Some(id),
            ..Drive::default()
        };
        match self.drive(group, input, how).await {
            Err(Error::NotFound { .. }) if self.group(group).is_err() => Ok(()),
            r => r.map(|_| ()),
        }
    }
}

fn res(r: &str) -> crate::metrics::ResultLabels {
    crate::metrics::ResultLabels { result: r.into() }
}
