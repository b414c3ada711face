//! GroupBVI role changes: `MoveGroupBVI` (break-before-make), explicit
//! `BindGroupBVI` / `ReleaseGroupBVI` — each one operation of the group's
//! state machine (`group::machine`), under the group's lock. The events of
//! the evidence-based wait between release and bind are the machine's
//! (`group::settle`).
use std::sync::Arc;

use evpn_daemon::events::Event;
use evpn_model::Error;

use crate::{
    group::{
        driver::Drive,
        machine::{Input, MoveOp},
    },
    model::Group,
    registry::Registry,
    timeline::{self, Timeline},
};

impl Registry {
    /// MoveGroupBVI: make `target` the primary, break-before-make (the
    /// group's machine: `docs/group-machine.md`).
    pub async fn move_bvi(
        self: &Arc<Self>,
        group: &str,
        target: &str,
        force: bool,
    ) -> Result<Group, Error> {
        self.make_primary(group, target, force, MoveOp::Move).await
    }

    /// BindGroupBVI: bind on `target` when the group has no primary (or it
    /// is `target` already); refused if another member is primary.
    pub async fn bind_explicit(
        self: &Arc<Self>,
        group: &str,
        target: &str,
    ) -> Result<Group, Error> {
        self.make_primary(group, target, false, MoveOp::Bind).await
    }

    /// ReleaseGroupBVI: release on `id`; if it was the primary, the GroupBVI
    /// becomes unassigned (persisted first, so a crash still converges).
    pub async fn release_explicit(self: &Arc<Self>, group: &str, id: &str) -> Result<Group, Error> {
        let gl = self.group_lock(group);
        let _g = gl.lock().await;
        let input = Input::Release {
            member: id.to_string(),
            cause: "released",
        };
        self.drive(group, input, Drive::default()).await?;
        self.group(group)
    }

    /// Release on every possible holder but `target`, wait for evidence,
    /// bind on `target`: one operation of the group's machine, under the
    /// group's lock.
    async fn make_primary(
        self: &Arc<Self>,
        group: &str,
        target: &str,
        force: bool,
        op: MoveOp,
    ) -> Result<Group, Error> {
        let tl = Timeline::start();
        let r = tl
            .scope(async {
                let gl = self.group_lock(group);
                let waited = std::time::Instant::now();
                let _g = gl.lock().await;
                timeline::mark("group lock", waited);
                let input = Input::Move {
                    target: target.to_string(),
                    force,
                    op,
                };
                let how = Drive {
                    target: Some(target),
                    ..Drive::default()
                };
                self.drive(group, input, how).await
            })
            .await;
        self.emit_timeline(&tl, group, target, op, &r);
        r?;
        self.group(group)
    }

    /// The one `move-timeline` event of an operation (after its answer was
    /// decided; the answer itself is the event's `total-us`).
    pub(crate) fn emit_timeline<T>(
        &self,
        tl: &Timeline,
        group: &str,
        target: &str,
        op: MoveOp,
        r: &Result<T, Error>,
    ) {
        let total = tl.now_us().to_string();
        let steps = timeline::render(&tl.steps());
        let op = op.name();
        // The error itself is in `move-failed` / `move-refused`.
        let result = if r.is_ok() { "ok" } else { "error" };
        self.emit(
            Event::MoveTimeline,
            &[
                ("group", group),
                ("to", target),
                ("op", op),
                ("result", result),
                ("total-us", &total),
                ("steps", &steps),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    //! How a member's evidence wait before a bind becomes events, against a
    //! scripted in-process Evpnd that runs the real wait loop.
    use std::time::Duration;

    use evpn_api::v1;
    use tonic::Status;

    use crate::{
        group::machine::{Settle, TakeoverSettle},
        testsupport::{Answers, registry_with},
    };

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
    /// event the group's machine makes of the outcome it reported.
    async fn bind_and_settle(script: Answers, max_wait: &str) -> Settled {
        bind_mode(script, max_wait, Settle::Move, Duration::ZERO).await
    }

    /// [`bind_and_settle`] in `mode`, for an operation that started `ago`
    /// before the bind.
    async fn bind_mode(script: Answers, max_wait: &str, mode: Settle, ago: Duration) -> Settled {
        let (reg, _d) = registry_with(script, vec![], max_wait).await;
        let vmac = "42:6c:fa:d6:82:98".parse().unwrap();
        let op_start = std::time::Instant::now() - ago;
        let outcome = reg
            .bind_on("t", "test", vmac, &[], mode, op_start)
            .await
            .unwrap();
        let e = crate::group::settle::event("test", "t", mode, outcome.as_ref())
            .expect("a wait was asked for");
        Settled {
            message: e.name.to_string(),
            fields: e.fields.into_iter().collect(),
        }
    }

    /// A settle event: its name and fields.
    struct Settled {
        message: String,
        fields: std::collections::BTreeMap<&'static str, String>,
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

    /// A takeover's least settle (`move.takeover-min-settle`, 100 ms by
    /// default) counts from the takeover's start, not from its bind: time
    /// spent before the bind (the old primary's release) is not waited
    /// again.
    #[tokio::test]
    async fn a_takeovers_least_settle_counts_from_the_takeovers_start() {
        let clean = || vec![Ok(v1::MacAnnouncers::default())];
        let waited = |e: &Settled| e.fields["waited-ms"].parse::<f64>().unwrap();
        let e = bind_mode(
            clean(),
            "2s",
            Settle::Takeover(TakeoverSettle::Least),
            Duration::ZERO,
        )
        .await;
        assert_eq!(e.message, "move-settled");
        assert!(waited(&e) >= 99.0, "{}", waited(&e));
        let e = bind_mode(
            clean(),
            "2s",
            Settle::Takeover(TakeoverSettle::Least),
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(e.message, "move-settled");
        // One look and no fixed wait (the 100 ms were spent before).
        assert!(waited(&e) < 99.0, "{}", waited(&e));
    }

    /// F15: a takeover whose old primary proved its routes dropped binds on
    /// the fabric's evidence alone, without the least settle.
    #[tokio::test]
    async fn a_takeover_on_released_evidence_waits_no_least_settle() {
        let clean = || vec![Ok(v1::MacAnnouncers::default())];
        let waited = |e: &Settled| e.fields["waited-ms"].parse::<f64>().unwrap();
        let how = Settle::Takeover(TakeoverSettle::ReleasedEvidence);
        let e = bind_mode(clean(), "2s", how, Duration::ZERO).await;
        assert_eq!(e.message, "move-settled");
        assert_eq!(e.fields["polls"], "1");
        assert!(waited(&e) < 99.0, "{}", waited(&e));
        // It still looks for the fabric's evidence until max-wait.
        let e = bind_mode(vec![], "300ms", how, Duration::ZERO).await;
        assert_eq!(e.message, "move-settle-timeout");
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

    /// R13's question goes to an evpnd without `PrepareGroupBVI` (the
    /// scripted one answers UNIMPLEMENTED) as `GetEvpnInstance`, and its
    /// answer still counts.
    #[tokio::test]
    async fn r13_asks_an_older_evpnd_with_get_evpn_instance() {
        use crate::southbound::Southbound;
        let (reg, _d) = registry_with(vec![], vec![], "1s").await;
        let sb = crate::members::Grpc;
        assert_eq!(
            sb.evpn_enabled(&reg, "t", "off").await.unwrap(),
            Some(false)
        );
        assert_eq!(
            sb.evpn_enabled(&reg, "t", "test").await.unwrap(),
            Some(true)
        );
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
        reg.release_on("t", "test").await.unwrap();
        assert!(holders(&reg).contains("t"));
        // Not the primary: the confirmed release forgets it.
        reg.mutate(|s| {
            s.groups.get_mut("test").unwrap().primary = None;
            Ok(())
        })
        .unwrap();
        reg.release_on("t", "test").await.unwrap();
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
        assert_eq!(
            reg.converge("t", crate::orchestrate::Scope::Resync)
                .await
                .unwrap(),
            1
        );
        assert!(reg.read(|i| i.state.groups["test"].holders.is_empty()));
        // Nothing left to do.
        assert_eq!(
            reg.converge("t", crate::orchestrate::Scope::Resync)
                .await
                .unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn an_unreadable_bird_means_no_evidence() {
        let e = bind_and_settle(vec![Err(Status::unavailable("bird down"))], "2s").await;
        assert_eq!(e.message, "move-settle-no-evidence");
        assert!(e.fields["error"].contains("bird down"), "{:?}", e.fields);
    }
}
