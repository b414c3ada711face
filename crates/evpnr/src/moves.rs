//! GroupBVI role changes: `MoveGroupBVI` (break-before-make), explicit
//! `BindGroupBVI` / `ReleaseGroupBVI`, and the evidence-based wait between
//! release and bind. All of them hold the group's lock, so operations on one
//! group are strictly serialised.
use std::{collections::BTreeSet, sync::Arc, time::Instant};

use evpn_api::v1;
use evpn_daemon::events::{EventKind, EventLevel};
use evpn_model::{Error, Mac, error::Object};

use crate::{
    model::Group,
    registry::{Conn, Registry},
};

/// How the wait between release and bind ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// The new primary's BIRD shows no other VTEP announcing the vMAC.
    Evidence { polls: u32 },
    /// Still announced after `move.max-wait`; the bind goes ahead.
    TimedOut { vteps: Vec<String> },
    /// The member cannot answer GetMacAnnouncers (UNIMPLEMENTED or an
    /// error): only `move.min-settle` was waited.
    NoEvidence(String),
}

impl Registry {
    /// Wait until the fabric has absorbed the withdrawal of `vmac`: first
    /// `move.min-settle`, then poll `target`'s BIRD (through its evpnd) every
    /// `move.poll-interval` until no other VTEP announces the vMAC, for at
    /// most `move.max-wait` in total.
    pub async fn settle(&self, target: &str, group: &str, vmac: Mac) -> Settled {
        let cfg = self.cfg();
        let start = Instant::now();
        let deadline = start + cfg.move_.max_wait.0;
        if !cfg.move_.min_settle.0.is_zero() {
            tokio::time::sleep(cfg.move_.min_settle.0).await;
        }
        let mut polls = 0;
        let mut last: Option<Vec<String>> = None;
        let out = loop {
            polls += 1;
            let req = v1::GetMacAnnouncersRequest {
                instance_id: String::new(),
                slug: group.to_string(),
                mac: vmac.to_string(),
            };
            // A poll never outlasts max-wait, even if the member hangs.
            let left = deadline.saturating_duration_since(Instant::now());
            let poll = self.call(target, "GetMacAnnouncers", |mut c| async move {
                c.get_mac_announcers(req).await
            });
            let answer = match tokio::time::timeout(left, poll).await {
                Ok(a) => a,
                Err(_) => match last {
                    // The wait ran out while the last answer still showed
                    // other VTEPs.
                    Some(vteps) => break Settled::TimedOut { vteps },
                    None => Err(tonic::Status::deadline_exceeded(
                        "no answer within move.max-wait",
                    )),
                },
            };
            match answer {
                Ok(a) if a.vteps.is_empty() => break Settled::Evidence { polls },
                Ok(a) => {
                    if Instant::now() + cfg.move_.poll_interval.0 > deadline {
                        break Settled::TimedOut { vteps: a.vteps };
                    }
                    last = Some(a.vteps);
                    tokio::time::sleep(cfg.move_.poll_interval.0).await;
                }
                Err(s) => break Settled::NoEvidence(format!("{:?}: {}", s.code(), s.message())),
            }
        };
        let waited = format!("{:.3}", start.elapsed().as_secs_f64() * 1e3);
        match &out {
            Settled::Evidence { polls } => self.emit(
                EventKind::Failover,
                EventLevel::Info,
                "move-settled",
                &[
                    ("group", group),
                    ("instance", target),
                    ("polls", &polls.to_string()),
                    ("waited-ms", &waited),
                ],
            ),
            Settled::TimedOut { vteps } => self.emit(
                EventKind::Failover,
                EventLevel::Warn,
                "move-settle-timeout",
                &[
                    ("group", group),
                    ("instance", target),
                    ("vteps", &vteps.join(",")),
                    ("waited-ms", &waited),
                ],
            ),
            Settled::NoEvidence(e) => self.emit(
                EventKind::Failover,
                EventLevel::Warn,
                "move-settle-no-evidence",
                &[
                    ("group", group),
                    ("instance", target),
                    ("error", e),
                    ("waited-ms", &waited),
                ],
            ),
        }
        out
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
        self.mutate(|s| {
            let g = s
                .groups
                .get_mut(group)
                .ok_or_else(|| Error::not_found(Object::Group, group))?;
            if !g.members.contains(id) {
                return Err(Error::not_found(Object::Member, id));
            }
            if g.primary.as_deref() == Some(id) {
                g.primary = None;
                g.modified_at = std::time::SystemTime::now();
                if let Some(b) = g.bvi.as_mut() {
                    b.modified_at = g.modified_at;
                }
            }
            Ok(())
        })?;
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
        let down: Vec<String> = others
            .iter()
            .filter(|h| self.conn(h).is_none_or(|(c, _)| c != Conn::Connected))
            .cloned()
            .collect();
        if !down.is_empty() && !force {
            return Err(self.refuse(group, target, &from, &down, start));
        }
        self.emit(
            EventKind::Failover,
            EventLevel::Info,
            "move-started",
            &[
                ("group", group),
                ("from", &from),
                ("to", target),
                ("force", &force_s),
                ("op", op),
            ],
        );
        // The intent, in memory: from now on a resync of an old holder
        // releases it instead of binding it again, and a resync of `target`
        // binds only once no other possible holder is left. It reaches the
        // disk with the bind below (one fsync per move); a crash before that
        // falls back to the old primary, which is equally consistent.
        self.mutate_mem(|s| {
            if let Some(g) = s.groups.get_mut(group) {
                g.primary = Some(target.to_string());
            }
        });
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
        let results = futures::future::join_all(releases).await;
        let mut skipped = Vec::new();
        for (h, r) in results {
            let Err(e) = r else { continue };
            let cannot_reach = matches!(e, Error::Unavailable(_) | Error::Timeout(_));
            if cannot_reach && force {
                self.emit(
                    EventKind::Failover,
                    EventLevel::Warn,
                    "groupbvi-release-skipped",
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
        // Wait for the fabric to absorb the withdrawal, then make.
        let _ = self.settle(target, group, g.vmac).await;
        let ml = self.member_lock(target);
        let _m = ml.lock().await;
        let bind = self.mutate(|s| {
            let g = s
                .groups
                .get_mut(group)
                .ok_or_else(|| Error::not_found(Object::Group, group))?;
            g.holders.insert(target.to_string());
            g.modified_at = std::time::SystemTime::now();
            let addrs = g.bvi.as_mut().map(|b| {
                b.modified_at = g.modified_at;
                b.addresses.clone()
            });
            Ok((g.vmac, addrs.unwrap_or_default()))
        })?;
        if let Err(e) = self.bind_on(target, group, bind.0, &bind.1).await {
            // Never leave a half-bound target: release it (best effort) and
            // leave the GroupBVI unassigned.
            let _ = self.release_on(target, group, false).await;
            self.restore_primary(group, None);
            return Err(self.move_failed(group, target, &from, e, start));
        }
        let secs = start.elapsed().as_secs_f64();
        self.metrics.moved("ok", secs);
        self.emit(
            EventKind::Failover,
            EventLevel::Info,
            "move-finished",
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

    fn restore_primary(self: &Arc<Self>, group: &str, primary: Option<String>) {
        let touched = self.mutate(|s| {
            let Some(g) = s.groups.get_mut(group) else {
                return Ok(vec![]);
            };
            g.primary = primary;
            Ok(g.members.iter().cloned().collect::<Vec<_>>())
        });
        for m in touched.unwrap_or_default() {
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
            EventKind::Failover,
            EventLevel::Warn,
            "move-refused",
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
            EventKind::Failover,
            EventLevel::Error,
            "move-failed",
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
    //! The evidence wait against a scripted in-process Evpnd.
    use std::time::Duration;

    use evpn_api::v1;
    use tonic::Status;

    use super::Settled;
    use crate::testsupport::registry_with;

    fn announced(n: usize) -> Vec<Result<v1::MacAnnouncers, Status>> {
        (0..n)
            .map(|_| {
                Ok(v1::MacAnnouncers {
                    vteps: vec!["192.0.2.1".into()],
                    local: false,
                })
            })
            .collect()
    }

    #[tokio::test]
    async fn waits_until_no_other_vtep_announces_the_vmac() {
        let mut script = announced(3);
        script.push(Ok(v1::MacAnnouncers::default()));
        let (reg, _d) = registry_with(script, vec![], "2s").await;
        let vmac = "42:6c:fa:d6:82:98".parse().unwrap();
        assert_eq!(
            reg.settle("t", "test", vmac).await,
            Settled::Evidence { polls: 4 }
        );
    }

    #[tokio::test]
    async fn gives_up_after_max_wait_and_names_the_vteps() {
        let (reg, _d) = registry_with(vec![], vec![], "300ms").await;
        let vmac = "42:6c:fa:d6:82:98".parse().unwrap();
        let t = std::time::Instant::now();
        let out = reg.settle("t", "test", vmac).await;
        assert_eq!(
            out,
            Settled::TimedOut {
                vteps: vec!["192.0.2.9".into()]
            }
        );
        // Bounded (generously; not an assertion about speed).
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn unimplemented_means_no_evidence() {
        let (reg, _d) = registry_with(
            vec![Err(Status::unimplemented("GetMacAnnouncers"))],
            vec![],
            "2s",
        )
        .await;
        let vmac = "42:6c:fa:d6:82:98".parse().unwrap();
        assert!(matches!(
            reg.settle("t", "test", vmac).await,
            Settled::NoEvidence(e) if e.contains("Unimplemented")
        ));
    }
}
