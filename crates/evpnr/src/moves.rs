//! GroupBVI role changes: `MoveGroupBVI` (break-before-make), explicit
//! `BindGroupBVI` / `ReleaseGroupBVI`, and the evidence-based wait between
//! release and bind. All of them hold the group's lock, so operations on one
//! group are strictly serialised.
use std::{collections::BTreeSet, sync::Arc, time::Instant};

use evpn_api::v1;
use evpn_daemon::{
    events::Event,
    settle::{SettleOutcome, Settled},
};
use evpn_model::{Error, error::Object};

use crate::{
    model::Group,
    orchestrate::BindMode,
    registry::{Conn, Registry},
};

impl Registry {
    /// Report how a member's evidence wait before a bind ended: the
    /// `move-settled`, `move-settle-timeout` or `move-settle-no-evidence`
    /// event for a bind that is part of MoveGroupBVI / BindGroupBVI
    /// (`is_move`), `bind-settled`, `bind-settle-timeout` or
    /// `bind-settle-no-evidence` for any other bind (resync, a joining or
    /// unblocked primary).
    pub fn settled(
        &self,
        target: &str,
        group: &str,
        is_move: bool,
        outcome: Option<&v1::SettleOutcome>,
    ) {
        let pick = |mv: Event, bind: Event| if is_move { mv } else { bind };
        let o = outcome
            .and_then(SettleOutcome::from_proto)
            .unwrap_or(SettleOutcome {
                settled: Settled::NoEvidence(
                    "the member did not report an evidence wait (an evpnd older than evpnr?)"
                        .into(),
                ),
                polls: 0,
                waited: std::time::Duration::ZERO,
            });
        let waited = format!("{:.3}", o.waited.as_secs_f64() * 1e3);
        let polls = o.polls.to_string();
        match &o.settled {
            Settled::Evidence => self.emit(
                pick(Event::MoveSettled, Event::BindSettled),
                &[
                    ("group", group),
                    ("instance", target),
                    ("polls", &polls),
                    ("waited-ms", &waited),
                ],
            ),
            Settled::TimedOut { vteps } => self.emit(
                pick(Event::MoveSettleTimeout, Event::BindSettleTimeout),
                &[
                    ("group", group),
                    ("instance", target),
                    ("vteps", &vteps.join(",")),
                    ("polls", &polls),
                    ("waited-ms", &waited),
                ],
            ),
            Settled::NoEvidence(e) => self.emit(
                pick(Event::MoveSettleNoEvidence, Event::BindSettleNoEvidence),
                &[
                    ("group", group),
                    ("instance", target),
                    ("error", e),
                    ("waited-ms", &waited),
                ],
            ),
        }
    }

    /// MoveGroupBVI: make `target` the primary, break-before-make.
    pub async fn move_bvi(
        self: &Arc<Self>,
        group: &str,
        target: &str,
        force: bool,
    ) -> Result<Group, Error> {
        let gl = self.group_lock(group);
        let _g = gl.lock().await;
        self.make_primary(group, target, force, "move").await
    }

    /// BindGroupBVI: bind on `target` when the group has no primary (or it
    /// is `target` already); refused if another member is primary.
    pub async fn bind_explicit(
        self: &Arc<Self>,
        group: &str,
        target: &str,
    ) -> Result<Group, Error> {
        let gl = self.group_lock(group);
        let _g = gl.lock().await;
        let g = self.group(group)?;
        if let Some(p) = g.primary.as_deref().filter(|p| *p != target) {
            return Err(Error::FailedPrecondition(format!(
                "group {group} is bound on {p}; use MoveGroupBVI to move it"
            )));
        }
        self.make_primary(group, target, false, "bind").await
    }

    /// ReleaseGroupBVI: release on `id`; if it was the primary, the GroupBVI
    /// becomes unassigned (persisted first, so a crash still converges).
    pub async fn release_explicit(self: &Arc<Self>, group: &str, id: &str) -> Result<Group, Error> {
        let gl = self.group_lock(group);
        let _g = gl.lock().await;
        let before = self.mutate(|s| {
            let g = s
                .groups
                .get_mut(group)
                .ok_or_else(|| Error::not_found(Object::Group, group))?;
            if !g.members.contains(id) {
                return Err(Error::not_found(Object::Member, id));
            }
            let before = g.clone();
            if g.primary.as_deref() == Some(id) {
                g.primary = None;
                g.modified_at = std::time::SystemTime::now();
                if let Some(b) = g.bvi.as_mut() {
                    b.modified_at = g.modified_at;
                }
            }
            Ok(before)
        })?;
        self.gateway_down(&before, "released");
        let ml = self.member_lock(id);
        let _m = ml.lock().await;
        self.release_on(id, group, false).await?;
        self.group(group)
    }

    /// Release on every possible holder but `target`, wait for evidence,
    /// bind on `target`. With the group lock held.
    async fn make_primary(
        self: &Arc<Self>,
        group: &str,
        target: &str,
        force: bool,
        op: &str,
    ) -> Result<Group, Error> {
        let start = Instant::now();
        // Nothing moves while the state store fails: the intent could not
        // be made durable before the bind.
        self.store_ok()?;
        // Re-read the group under the lock right before acting.
        let g = self.group(group)?;
        if !g.members.contains(target) {
            return Err(Error::FailedPrecondition(format!(
                "instance {target} is not a member of group {group}"
            )));
        }
        if g.bvi.is_none() {
            return Err(Error::FailedPrecondition(format!(
                "group {group} has no GroupBVI; create it first"
            )));
        }
        self.require_ready(target)?;
        let others: BTreeSet<String> = g.holders.iter().filter(|h| *h != target).cloned().collect();
        if g.primary.as_deref() == Some(target) && others.is_empty() && g.holders.contains(target) {
            tracing::info!(group, instance = target, "move-not-needed");
            return Ok(g);
        }
        let old = g.primary.clone();
        let from = old.clone().unwrap_or_default();
        let force_s = force.to_string();
        let down = self.unreachable(others.iter());
        if !down.is_empty() && !force {
            return Err(self.refuse(group, target, &from, &down, start));
        }
        self.emit(
            Event::MoveStarted,
            &[
                ("group", group),
                ("from", &from),
                ("to", target),
                ("force", &force_s),
                ("op", op),
            ],
        );
        // The intent: from now on a resync of an old holder releases it
        // instead of binding it again, and a resync of `target` binds only
        // once no other possible holder is left (`target` joins the possible
        // holders now). It is written to disk while the releases run and is
        // durable before the bind: a crash before that falls back to the old
        // primary, a crash after it completes the move on restart; both are
        // consistent, and nothing acknowledged is lost.
        // The holders are read again in the same step that writes the intent:
        // a resync that bound the old primary since the read above (it may,
        // as long as the intent is not written) is released too.
        let now_others: BTreeSet<String> = self.mutate_mem(|s| {
            let Some(g) = s.groups.get_mut(group) else {
                return BTreeSet::new();
            };
            g.primary = Some(target.to_string());
            g.holders.insert(target.to_string());
            g.modified_at = std::time::SystemTime::now();
            if let Some(b) = g.bvi.as_mut() {
                b.modified_at = g.modified_at;
            }
            g.holders.iter().filter(|h| *h != target).cloned().collect()
        });
        let late = self.unreachable(now_others.difference(&others));
        if !late.is_empty() && !force {
            self.restore_primary(group, old.clone());
            return Err(self.refuse(group, target, &from, &late, start));
        }
        let others: BTreeSet<String> = others.union(&now_others).cloned().collect();
        // Break: release on every possible holder, concurrently, each under
        // its own member lock.
        let releases = others.iter().map(|h| {
            let reg = self.clone();
            async move {
                let ml = reg.member_lock(h);
                let _m = ml.lock().await;
                (h.clone(), reg.release_on(h, group, false).await)
            }
        });
        let (results, saved) = tokio::join!(futures::future::join_all(releases), self.persist());
        let mut skipped = Vec::new();
        for (h, r) in results {
            let Err(e) = r else { continue };
            let cannot_reach = matches!(e, Error::Unavailable(_) | Error::Timeout(_));
            if cannot_reach && force {
                self.emit(
                    Event::GroupBviReleaseSkipped,
                    &[
                        ("group", group),
                        ("instance", &h),
                        ("error", &e.to_string()),
                    ],
                );
                skipped.push(h);
                continue;
            }
            // Undo the intent; resyncs put every member back in line.
            self.restore_primary(group, old.clone());
            if cannot_reach {
                return Err(self.refuse(group, target, &from, &[h], start));
            }
            return Err(self.move_failed(group, target, &from, e, start));
        }
        if let Err(e) = saved {
            self.restore_primary(group, old.clone());
            return Err(self.move_failed(group, target, &from, e, start));
        }
        // Make: the target waits for evidence that the fabric absorbed the
        // withdrawal, then binds (one round trip).
        let ml = self.member_lock(target);
        let _m = ml.lock().await;
        let bind = self.group(group)?;
        let bind = (bind.vmac, bind.bvi.map(|b| b.addresses).unwrap_or_default());
        if let Err(e) = self
            .bind_on(target, group, bind.0, &bind.1, BindMode::Move)
            .await
        {
            // Never leave a half-bound target: leave the GroupBVI unassigned,
            // then release it (best effort; only a non-primary is forgotten
            // as a holder once released).
            self.restore_primary(group, None);
            let _ = self.release_on(target, group, false).await;
            return Err(self.move_failed(group, target, &from, e, start));
        }
        let secs = start.elapsed().as_secs_f64();
        self.metrics.moved("ok", secs);
        self.emit(
            Event::MoveFinished,
            &[
                ("group", group),
                ("from", &from),
                ("to", target),
                ("duration-ms", &format!("{:.3}", secs * 1e3)),
                ("skipped", &skipped.join(",")),
                ("op", op),
            ],
        );
        self.group(group)
    }

    /// The members of `ids` that are not connected right now.
    fn unreachable<'a>(&self, ids: impl Iterator<Item = &'a String>) -> Vec<String> {
        ids.filter(|h| self.conn(h).is_none_or(|(c, _)| c != Conn::Connected))
            .cloned()
            .collect()
    }

    /// Undo a move's intent: `primary` becomes the group's primary again.
    /// If that cannot be saved (the store fails), it is still undone in
    /// memory (the state on disk never had the intent, or has it with the
    /// target as a possible holder, so both agree on who may bind); the
    /// store's retry loop saves it, and until then nothing binds.
    fn restore_primary(self: &Arc<Self>, group: &str, primary: Option<String>) {
        let undo = |s: &mut crate::model::State| {
            let Some(g) = s.groups.get_mut(group) else {
                return vec![];
            };
            g.primary = primary.clone();
            g.members.iter().cloned().collect::<Vec<_>>()
        };
        let touched = match self.mutate(|s| Ok(undo(s))) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(group, error = %e, "move-undo-not-persisted");
                self.mutate_mem(undo)
            }
        };
        for m in touched {
            self.trigger_resync(&m);
        }
    }

    fn refuse(
        &self,
        group: &str,
        target: &str,
        from: &str,
        down: &[String],
        start: Instant,
    ) -> Error {
        self.metrics.moved("refused", start.elapsed().as_secs_f64());
        let down = down.join(",");
        self.emit(
            Event::MoveRefused,
            &[
                ("group", group),
                ("from", from),
                ("to", target),
                ("unreachable", &down),
            ],
        );
        Error::FailedPrecondition(format!(
            "group {group}: cannot reach {down}, which may hold the GroupBVI; \
             retry with force if it is dead"
        ))
    }

    fn move_failed(
        &self,
        group: &str,
        target: &str,
        from: &str,
        e: Error,
        start: Instant,
    ) -> Error {
        self.metrics.moved("failed", start.elapsed().as_secs_f64());
        self.emit(
            Event::MoveFailed,
            &[
                ("group", group),
                ("from", from),
                ("to", target),
                ("error", &e.to_string()),
            ],
        );
        e
    }
}

#[cfg(test)]
mod tests {
    //! How a member's evidence wait before a bind becomes events, against a
    //! scripted in-process Evpnd that runs the real wait loop.
    use std::time::Duration;

    use evpn_api::v1;
    use evpn_daemon::events::{EventFilter, EventRecord};
    use futures::StreamExt;
    use tonic::Status;

    use crate::testsupport::{Answers, registry_with};

    fn announced(n: usize) -> Answers {
        (0..n)
            .map(|_| {
                Ok(v1::MacAnnouncers {
                    vteps: vec!["192.0.2.1".into()],
                    local: false,
                })
            })
            .collect()
    }

    /// Bind on the scripted member "t" with the evidence wait; the settle
    /// event it produced.
    async fn bind_and_settle(script: Answers, max_wait: &str) -> EventRecord {
        let (reg, _d) = registry_with(script, vec![], max_wait).await;
        let mut sub = reg.broker.subscribe(EventFilter::default());
        let vmac = "42:6c:fa:d6:82:98".parse().unwrap();
        reg.bind_on("t", "test", vmac, &[], crate::orchestrate::BindMode::Move)
            .await
            .unwrap();
        loop {
            let e = tokio::time::timeout(Duration::from_secs(10), sub.next())
                .await
                .unwrap()
                .unwrap();
            if e.message.starts_with("move-settle") {
                return (*e).clone();
            }
        }
    }

    #[tokio::test]
    async fn waits_until_no_other_vtep_announces_the_vmac() {
        let mut script = announced(3);
        script.push(Ok(v1::MacAnnouncers::default()));
        let e = bind_and_settle(script, "2s").await;
        assert_eq!(e.message, "move-settled");
        assert_eq!(e.fields["polls"], "4");
        assert_eq!(e.fields["instance"], "t");
    }

    #[tokio::test]
    async fn gives_up_after_max_wait_and_names_the_vteps() {
        let t = std::time::Instant::now();
        let e = bind_and_settle(vec![], "300ms").await;
        assert_eq!(e.message, "move-settle-timeout");
        assert_eq!(e.fields["vteps"], "192.0.2.9");
        // Bounded (generously; not an assertion about speed).
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_max_wait_longer_than_member_timeout_does_not_cut_the_bind() {
        // member-timeout is 500 ms here; the wait runs its full 1.5 s.
        let e = bind_and_settle(vec![], "1500ms").await;
        assert_eq!(e.message, "move-settle-timeout");
        let waited: f64 = e.fields["waited-ms"].parse().unwrap();
        assert!(waited >= 1400.0, "{waited}");
    }

    /// Group "test" (no members yet).
    fn new_group(reg: &crate::registry::Registry) {
        reg.create_group(crate::groups::NewGroup {
            id: "test".into(),
            vni: 100,
            mtu: 1500,
            vmac: None,
            import_rts: vec![],
            export_rts: vec![],
        })
        .unwrap();
    }

    /// A confirmed release forgets a possible holder, but never the primary:
    /// a move to that member may have written its intent after the release
    /// was planned (a resync) and be about to bind it.
    #[tokio::test]
    async fn a_confirmed_release_never_forgets_the_primary() {
        let (reg, _d) = registry_with(vec![], vec![], "1s").await;
        new_group(&reg);
        let holders =
            |reg: &crate::registry::Registry| reg.read(|i| i.state.groups["test"].holders.clone());
        // "t" is the primary and a possible holder: a release keeps it.
        reg.mutate(|s| {
            let g = s.groups.get_mut("test").unwrap();
            g.members.insert("t".into());
            g.primary = Some("t".into());
            g.holders.insert("t".into());
            Ok(())
        })
        .unwrap();
        reg.release_on("t", "test", true).await.unwrap();
        assert!(holders(&reg).contains("t"));
        // Not the primary: the confirmed release forgets it.
        reg.mutate(|s| {
            s.groups.get_mut("test").unwrap().primary = None;
            Ok(())
        })
        .unwrap();
        reg.release_on("t", "test", true).await.unwrap();
        assert!(holders(&reg).is_empty());
    }

    /// A member that left a group while it could not release stays a
    /// possible holder there; once its eVPN is gone, its resync confirms a
    /// release, so the group's primary is not blocked for good.
    #[tokio::test]
    async fn resync_clears_a_holder_that_left_the_group() {
        let (reg, _d) = registry_with(vec![], vec![], "1s").await;
        new_group(&reg);
        reg.mutate(|s| {
            s.groups.get_mut("test").unwrap().holders.insert("t".into());
            Ok(())
        })
        .unwrap();
        assert_eq!(reg.converge("t", None).await.unwrap(), 1);
        assert!(reg.read(|i| i.state.groups["test"].holders.is_empty()));
        // Nothing left to do.
        assert_eq!(reg.converge("t", None).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn an_unreadable_bird_means_no_evidence() {
        let e = bind_and_settle(vec![Err(Status::unavailable("bird down"))], "2s").await;
        assert_eq!(e.message, "move-settle-no-evidence");
        assert!(e.fields["error"].contains("bird down"), "{:?}", e.fields);
    }
}
