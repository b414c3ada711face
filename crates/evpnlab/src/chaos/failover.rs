//! Autonomous failover in the chaos run (`--failover`, docs/chaos.md):
//! before an operation, with probability `failover_rate`, an operator's
//! failover setting — a group's policy (`auto` by the seed for most groups,
//! short timers), a member's priority, a drain or its end, the fleet-wide
//! suspend or resume — or a health fault: one host's operator check command
//! (`/usr/bin/test ! -e <host dir>/unfit`) made to fail for 1–4 operations.
//! The driver in evpnr then moves gateways on its own while everything else
//! goes on; the invariants stay (never two holders, never two announcers),
//! the model lets an autonomous group's primary be any member, and after the
//! faults stop every `auto` group with a GroupBVI and a member that may serve
//! it must get a primary ([`Run::check_failover_settled`]).
use std::time::{Duration, Instant};

use evpn_api::v1;
use rand::{Rng, seq::IndexedRandom};

use super::Run;

/// The file whose existence makes a host's operator check fail.
pub(super) const UNFIT_FILE: &str = "unfit";

/// A failing health check of host `host` until step `until`.
#[derive(Debug, Clone)]
pub(super) struct HealthWindow {
    pub host: usize,
    pub until: usize,
}

/// One failover setting through evpnr's API.
#[derive(Debug, Clone)]
enum FoOp {
    Policy {
        g: String,
        auto: bool,
        preempt: Option<u64>,
        hold_down: u64,
        flap_window: u64,
        flap_limit: u32,
        warm_up: u64,
    },
    Priority {
        g: String,
        h: String,
        prio: u32,
    },
    Drain {
        h: String,
    },
    Resume {
        h: String,
    },
    Suspend {
        on: bool,
    },
}

impl FoOp {
    fn name(&self) -> &'static str {
        match self {
            FoOp::Policy { .. } => "SetGroupFailover",
            FoOp::Priority { .. } => "SetGroupMemberPriority",
            FoOp::Drain { .. } => "DrainInstance",
            FoOp::Resume { .. } => "ResumeInstance",
            FoOp::Suspend { .. } => "SetFailoverSuspended",
        }
    }

    fn describe(&self) -> String {
        match self {
            FoOp::Policy {
                g,
                auto,
                preempt,
                hold_down,
                flap_window,
                flap_limit,
                warm_up,
            } => format!(
                "SetGroupFailover {g} {} preempt {} hold-down {hold_down}ms flap {flap_limit} in {flap_window}ms warm-up {warm_up}ms",
                if *auto { "auto" } else { "manual" },
                preempt.map_or("off".into(), |p| format!("{p}ms"))
            ),
            FoOp::Priority { g, h, prio } => format!("SetGroupMemberPriority {g} {h} {prio}"),
            FoOp::Drain { h } => format!("DrainInstance {h}"),
            FoOp::Resume { h } => format!("ResumeInstance {h}"),
            FoOp::Suspend { on } => format!("SetFailoverSuspended {on}"),
        }
    }
}

/// Whether seed `seed` makes group `gi` fail over automatically: 3 in 4
/// groups (the others stay manual, so drains are seen in manual groups).
fn auto_by_seed(seed: u64, gi: usize) -> bool {
    !seed.wrapping_add(gi as u64).is_multiple_of(4)
}

impl Run {
    fn pick_fo(&mut self) -> Option<FoOp> {
        let gi = self.rng.random_range(0..self.pools.len());
        let g = self.pools[gi].0.clone();
        let gm = self.model.groups[&g].clone();
        let members: Vec<String> = gm
            .members
            .iter()
            .filter(|(_, v)| v.contains(&true))
            .map(|(h, _)| h.clone())
            .collect();
        let h = self.hosts.choose(&mut self.rng).cloned()?;
        let rng = &mut self.rng;
        Some(match rng.random_range(0..100u32) {
            // Mostly the seed's mode for the group, sometimes the other.
            0..=29 => FoOp::Policy {
                auto: if rng.random_bool(0.85) {
                    auto_by_seed(self.cfg.seed, gi)
                } else {
                    rng.random_bool(0.5)
                },
                preempt: rng.random_bool(0.3).then(|| rng.random_range(0..=1000u64)),
                hold_down: rng.random_range(0..=1500u64),
                flap_window: rng.random_range(1000..=4000u64),
                flap_limit: rng.random_range(0..=4u32),
                warm_up: rng.random_range(0..=800u64),
                g,
            },
            30..=59 => FoOp::Priority {
                h: members.choose(rng).cloned().unwrap_or(h),
                prio: *[50u32, 100, 150, 200].choose(rng).unwrap_or(&100),
                g,
            },
            60..=74 => FoOp::Drain { h },
            75..=89 => {
                let drained: Vec<String> = self
                    .model
                    .drained
                    .iter()
                    .filter(|(_, v)| v.contains(&true))
                    .map(|(h, _)| h.clone())
                    .collect();
                FoOp::Resume {
                    h: drained.choose(rng).cloned().unwrap_or(h),
                }
            }
            _ => FoOp::Suspend {
                on: !self.model.suspended.contains(&true) && rng.random_bool(0.7),
            },
        })
    }

    /// Maybe one failover setting or health fault before step `step`.
    pub(super) async fn failover_step(&mut self, step: usize) -> anyhow::Result<()> {
        if !self.cfg.failover || !self.rng.random_bool(self.cfg.failover_rate) {
            return Ok(());
        }
        // A new group gets its seed's mode at once (most runs would
        // otherwise see few auto groups).
        let fresh: Vec<usize> = (0..self.pools.len())
            .filter(|&gi| {
                let gm = &self.model.groups[&self.pools[gi].0];
                gm.exists.contains(&true)
                    && !gm.auto.contains(&true)
                    && auto_by_seed(self.cfg.seed, gi)
            })
            .collect();
        if self.rng.random_bool(0.25) {
            return self.health_fault(step);
        }
        let op = match fresh.choose(&mut self.rng) {
            Some(&gi) if self.rng.random_bool(0.6) => FoOp::Policy {
                g: self.pools[gi].0.clone(),
                auto: true,
                preempt: None,
                hold_down: self.rng.random_range(0..=1500u64),
                flap_window: self.rng.random_range(1000..=4000u64),
                flap_limit: self.rng.random_range(0..=4u32),
                warm_up: self.rng.random_range(0..=800u64),
            },
            _ => match self.pick_fo() {
                Some(op) => op,
                None => return Ok(()),
            },
        };
        let desc = op.describe();
        let mut c = self.fleet.client(Duration::from_secs(10))?;
        let res: Result<Option<v1::Group>, tonic::Status> = match &op {
            FoOp::Policy {
                g,
                auto,
                preempt,
                hold_down,
                flap_window,
                flap_limit,
                warm_up,
            } => c
                .set_group_failover(v1::SetGroupFailoverRequest {
                    group_id: g.clone(),
                    mode: if *auto { "auto" } else { "manual" }.into(),
                    preempt_ms: *preempt,
                    preempt_off: preempt.is_none(),
                    hold_down_ms: Some(*hold_down),
                    flap_window_ms: Some(*flap_window),
                    flap_limit: Some(*flap_limit),
                    warm_up_ms: Some(*warm_up),
                })
                .await
                .map(|r| Some(r.into_inner())),
            FoOp::Priority { g, h, prio } => c
                .set_group_member_priority(v1::SetGroupMemberPriorityRequest {
                    group_id: g.clone(),
                    instance_id: h.clone(),
                    priority: *prio,
                })
                .await
                .map(|r| Some(r.into_inner())),
            FoOp::Drain { h } => c
                .drain_instance(v1::InstanceRef {
                    instance_id: h.clone(),
                })
                .await
                .map(|_| None),
            FoOp::Resume { h } => c
                .resume_instance(v1::InstanceRef {
                    instance_id: h.clone(),
                })
                .await
                .map(|_| None),
            FoOp::Suspend { on } => c
                .set_failover_suspended(v1::SetFailoverSuspendedRequest { suspended: *on })
                .await
                .map(|_| None),
        };
        let ok = res.is_ok();
        let (code, text) = match &res {
            Ok(_) => ("OK".to_string(), "OK".to_string()),
            Err(e) => (
                format!("{:?}", e.code()),
                format!("{:?}: {}", e.code(), e.message()),
            ),
        };
        *self
            .report
            .outcomes
            .entry(op.name().into())
            .or_default()
            .entry(code)
            .or_default() += 1;
        self.log(format!("step {step}: {desc}: {text}"));
        // Teach the model.
        let m = &mut self.model;
        match (&op, res) {
            // Only the mode: the returned primary may already be stale (the
            // driver moves gateways without the caller).
            (FoOp::Policy { g, auto, .. }, Ok(_)) => m.g(g).auto = [*auto].into(),
            (FoOp::Policy { g, auto, .. }, _) => {
                m.g(g).auto.insert(*auto);
            }
            (FoOp::Drain { h } | FoOp::Resume { h }, _) => {
                let want = matches!(op, FoOp::Drain { .. });
                let v = m.drained.entry(h.clone()).or_default();
                if ok {
                    *v = [want].into();
                } else {
                    v.insert(want);
                }
            }
            (FoOp::Suspend { on }, _) => {
                if ok {
                    m.suspended = [*on].into();
                } else {
                    m.suspended.insert(*on);
                }
            }
            (FoOp::Priority { .. }, _) => {}
        }
        m.mark_autonomous();
        Ok(())
    }

    /// Make host `hi`'s operator check fail for 1–4 operations.
    fn health_fault(&mut self, step: usize) -> anyhow::Result<()> {
        let hi = self.rng.random_range(0..self.hosts.len());
        if self.health.iter().any(|w| w.host == hi) {
            return Ok(());
        }
        let until = step + self.rng.random_range(1..=4usize);
        std::fs::write(self.fleet.hosts[hi].dir.join(UNFIT_FILE), "")?;
        self.health.push(HealthWindow { host: hi, until });
        self.fault("health-check-fail");
        let id = self.hosts[hi].clone();
        self.log(format!(
            "step {step}: fault health-check-fail {id} (its check command fails) until step {until}"
        ));
        Ok(())
    }

    fn heal_health(&mut self, w: &HealthWindow, when: &str) {
        let _ = std::fs::remove_file(self.fleet.hosts[w.host].dir.join(UNFIT_FILE));
        let id = self.hosts[w.host].clone();
        self.log(format!(
            "{when}: health-check-fail {id}: check passes again"
        ));
    }

    /// Ends the health faults whose time has come (`step`), or all.
    pub(super) fn expire_health(&mut self, step: Option<usize>, when: &str) {
        let (done, keep): (Vec<HealthWindow>, Vec<HealthWindow>) = self
            .health
            .drain(..)
            .partition(|w| step.is_none_or(|s| w.until <= s));
        self.health = keep;
        for w in &done {
            self.heal_health(w, when);
        }
    }

    /// Counts the failover events in evpnr's log and the self-fences in the
    /// evpnds' logs (both appended across restarts).
    pub(super) fn count_failover_events(&mut self) {
        let mut logs = vec![self.fleet.dir.join("evpnr.log")];
        logs.extend(self.fleet.hosts.iter().map(|h| h.dir.join("evpnd.log")));
        for log in logs {
            let Ok(text) = std::fs::read_to_string(&log) else {
                continue;
            };
            for l in text.lines() {
                for ev in [
                    "failover-started",
                    "failover-finished",
                    "failover-blocked",
                    "failover-held",
                    "self-fenced",
                ] {
                    if l.contains(&format!("\"message\":\"{ev}\"")) {
                        *self.report.failover_events.entry(ev.into()).or_default() += 1;
                    }
                }
            }
        }
    }

    /// After the faults stopped: the switch and the drains are checked
    /// against the model, then failover is resumed and every drain ended
    /// (the operator's maintenance is over), and within `bound` every `auto`
    /// group with a GroupBVI and a member whose eVPN was never disabled (so
    /// every such member is reachable, healthy and not drained: a candidate
    /// once its warm-up, at most 0.8 s, and the group's hold-down and flap
    /// damping, at most 4 s, have passed) must have a primary.
    pub(super) async fn check_failover_settled(&mut self, bound: Duration) -> anyhow::Result<()> {
        let mut c = self.fleet.client(Duration::from_secs(10))?;
        let st = c.get_failover_status(v1::Empty {}).await?.into_inner();
        if !self.model.suspended.contains(&st.suspended) {
            self.report.violations.push(format!(
                "acknowledged change lost: failover suspended = {}, acknowledged history allows {:?}",
                st.suspended, self.model.suspended
            ));
        }
        for (h, allowed) in &self.model.drained {
            let is = st.drained.contains(h);
            if !allowed.contains(&is) {
                self.report.violations.push(format!(
                    "acknowledged change lost: {h} drained = {is}, acknowledged history allows {allowed:?}"
                ));
            }
        }
        c.set_failover_suspended(v1::SetFailoverSuspendedRequest { suspended: false })
            .await?;
        for h in &st.drained {
            c.resume_instance(v1::InstanceRef {
                instance_id: h.clone(),
            })
            .await?;
        }
        self.model.suspended = [false].into();
        for v in self.model.drained.values_mut() {
            *v = [false].into();
        }
        self.log("failover resumed, every drain ended".into());
        let t0 = Instant::now();
        let mut missing = Vec::new();
        while t0.elapsed() < bound {
            let groups = c.list_groups(v1::Empty {}).await?.into_inner().groups;
            missing = groups
                .iter()
                .filter(|g| {
                    g.failover.as_ref().is_some_and(|f| f.mode == "auto")
                        && g.group_bvi.is_some()
                        && g.primary_instance_id.is_empty()
                        && g.members.iter().any(|h| {
                            !self
                                .model
                                .maybe_disabled
                                .contains(&(h.clone(), g.group_id.clone()))
                        })
                })
                .map(|g| g.group_id.clone())
                .collect();
            if missing.is_empty() {
                self.report.failover_settled = Some(t0.elapsed());
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for g in missing {
            self.report.violations.push(format!(
                "failover: auto group {g} with a GroupBVI and serving members got no primary within {} s after the faults stopped",
                bound.as_secs()
            ));
        }
        Ok(())
    }
}
