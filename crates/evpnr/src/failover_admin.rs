//! The operator's failover settings: a group's policy, member priorities,
//! draining an instance and the fleet-wide suspension. Each is persisted
//! before it is acknowledged (`Registry::mutate`) and emits one event. The
//! decision that acts on them is `group::failover::decide`.
use std::time::Duration;

use evpn_daemon::events::Event;
use evpn_model::{Error, error::Object};

use crate::{
    model::{FailoverPolicy, Group},
    registry::Registry,
};

/// Bounds of the policy's durations (inclusive), in milliseconds.
pub const PREEMPT_MAX: Duration = Duration::from_secs(3600);
pub const HOLD_DOWN_MAX: Duration = Duration::from_secs(3600);
pub const WARM_UP_MAX: Duration = Duration::from_secs(3600);
pub const FLAP_WINDOW_MIN: Duration = Duration::from_secs(1);
pub const FLAP_WINDOW_MAX: Duration = Duration::from_secs(86_400);
/// Flap limit 0 turns flap damping off.
pub const FLAP_LIMIT_MAX: u32 = 100;
/// The highest member priority (0 is the lowest).
pub const PRIORITY_MAX: u32 = 1000;

/// A change of a group's failover policy: `None` leaves a knob unchanged.
/// `preempt: Some(None)` turns preemption off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyChange {
    pub auto: Option<bool>,
    pub preempt: Option<Option<Duration>>,
    pub hold_down: Option<Duration>,
    pub flap_window: Option<Duration>,
    pub flap_limit: Option<u32>,
    pub warm_up: Option<Duration>,
}

fn bounded(field: &str, d: Duration, min: Duration, max: Duration) -> Result<u64, Error> {
    if d < min || d > max {
        return Err(Error::invalid(
            field,
            format!(
                "must be between {} ms and {} ms, got {} ms",
                min.as_millis(),
                max.as_millis(),
                d.as_millis()
            ),
        ));
    }
    Ok(d.as_millis() as u64)
}

impl PolicyChange {
    /// Check every knob (errors name the wire field) and apply the change
    /// to `p`.
    pub fn apply(&self, p: &mut FailoverPolicy) -> Result<(), Error> {
        let z = Duration::ZERO;
        if let Some(a) = self.auto {
            p.auto = a;
        }
        if let Some(pre) = self.preempt {
            p.preempt_ms = pre
                .map(|d| bounded("preempt_ms", d, z, PREEMPT_MAX))
                .transpose()?;
        }
        if let Some(d) = self.hold_down {
            p.hold_down_ms = bounded("hold_down_ms", d, z, HOLD_DOWN_MAX)?;
        }
        if let Some(d) = self.flap_window {
            p.flap_window_ms = bounded("flap_window_ms", d, FLAP_WINDOW_MIN, FLAP_WINDOW_MAX)?;
        }
        if let Some(n) = self.flap_limit {
            if n > FLAP_LIMIT_MAX {
                return Err(Error::invalid(
                    "flap_limit",
                    format!("must be at most {FLAP_LIMIT_MAX} (0: no damping), got {n}"),
                ));
            }
            p.flap_limit = n;
        }
        if let Some(d) = self.warm_up {
            p.warm_up_ms = bounded("warm_up_ms", d, z, WARM_UP_MAX)?;
        }
        Ok(())
    }
}

/// A member priority, checked (the error names `field`).
pub fn validate_priority(field: &str, n: u32) -> Result<u32, Error> {
    if n > PRIORITY_MAX {
        return Err(Error::invalid(
            field,
            format!("must be between 0 and {PRIORITY_MAX}, got {n}"),
        ));
    }
    Ok(n)
}

/// `auto` / `manual`.
pub fn mode(p: &FailoverPolicy) -> &'static str {
    if p.auto { "auto" } else { "manual" }
}

/// A duration in ms as the events show it (`250ms`, `5s`).
fn human(ms: u64) -> String {
    evpn_model::duration::HumanDuration(Duration::from_millis(ms)).to_string()
}

impl Registry {
    /// SetGroupFailover: change the group's policy (validated as a whole
    /// before anything is stored).
    pub fn set_group_failover(&self, group: &str, c: &PolicyChange) -> Result<Group, Error> {
        let g = self.mutate(|s| {
            let g = s
                .groups
                .get_mut(group)
                .ok_or_else(|| Error::not_found(Object::Group, group))?;
            let mut p = g.failover;
            c.apply(&mut p)?;
            g.failover = p;
            Ok(g.clone())
        })?;
        let p = g.failover;
        let preempt = p.preempt_ms.map_or("off".to_string(), human);
        self.emit(
            Event::GroupFailoverSet,
            &[
                ("group", group),
                ("mode", mode(&p)),
                ("preempt", &preempt),
                ("hold-down", &human(p.hold_down_ms)),
                ("flap-window", &human(p.flap_window_ms)),
                ("flap-limit", &p.flap_limit.to_string()),
                ("warm-up", &human(p.warm_up_ms)),
            ],
        );
        Ok(g)
    }

    /// SetGroupMemberPriority: `member` must be a member of `group`.
    pub fn set_member_priority(
        &self,
        group: &str,
        member: &str,
        priority: u32,
    ) -> Result<Group, Error> {
        let priority = validate_priority("priority", priority)?;
        let g = self.mutate(|s| {
            let g = s
                .groups
                .get_mut(group)
                .ok_or_else(|| Error::not_found(Object::Group, group))?;
            if !g.members.contains(member) {
                return Err(Error::FailedPrecondition(format!(
                    "instance {member} is not a member of group {group}"
                )));
            }
            if priority == crate::model::DEFAULT_PRIORITY {
                g.priorities.remove(member);
            } else {
                g.priorities.insert(member.to_string(), priority);
            }
            Ok(g.clone())
        })?;
        self.emit(
            Event::GroupMemberPrioritySet,
            &[
                ("group", group),
                ("instance", member),
                ("priority", &priority.to_string()),
            ],
        );
        Ok(g)
    }

    /// DrainInstance (`drained`) or ResumeInstance: persist the flag. The
    /// failover driver moves the gateways a drained instance holds.
    pub fn set_drained(&self, id: &str, drained: bool) -> Result<(), Error> {
        let changed = self.mutate(|s| {
            if !s.members.contains_key(id) {
                return Err(Error::not_found(Object::Instance, id));
            }
            Ok(if drained {
                s.drained.insert(id.to_string())
            } else {
                s.drained.remove(id)
            })
        })?;
        if changed && drained {
            let held: Vec<String> = self.read(|i| {
                i.state
                    .groups
                    .values()
                    .filter(|g| g.primary.as_deref() == Some(id))
                    .map(|g| g.id.clone())
                    .collect()
            });
            self.emit(
                Event::InstanceDrained,
                &[("instance", id), ("groups", &held.join(","))],
            );
        } else if changed {
            self.emit(Event::InstanceResumed, &[("instance", id)]);
        }
        Ok(())
    }

    /// SetFailoverSuspended: the fleet-wide switch.
    pub fn set_failover_suspended(&self, suspended: bool) -> Result<(), Error> {
        let changed = self.mutate(|s| {
            let changed = s.failover_suspended != suspended;
            s.failover_suspended = suspended;
            Ok(changed)
        })?;
        if changed {
            let e = if suspended {
                Event::FailoverSuspended
            } else {
                Event::FailoverResumed
            };
            self.emit(e, &[]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn policy_changes_are_bounded_and_name_the_field() {
        let cases: &[(PolicyChange, Result<FailoverPolicy, &str>)] = &[
            (
                PolicyChange {
                    auto: Some(true),
                    preempt: Some(Some(ms(30_000))),
                    ..Default::default()
                },
                Ok(FailoverPolicy {
                    auto: true,
                    preempt_ms: Some(30_000),
                    ..Default::default()
                }),
            ),
            (
                PolicyChange {
                    preempt: Some(None),
                    hold_down: Some(ms(0)),
                    flap_limit: Some(0),
                    ..Default::default()
                },
                Ok(FailoverPolicy {
                    hold_down_ms: 0,
                    flap_limit: 0,
                    ..Default::default()
                }),
            ),
            (
                PolicyChange {
                    hold_down: Some(HOLD_DOWN_MAX + ms(1)),
                    ..Default::default()
                },
                Err("hold_down_ms"),
            ),
            (
                PolicyChange {
                    flap_window: Some(ms(999)),
                    ..Default::default()
                },
                Err("flap_window_ms"),
            ),
            (
                PolicyChange {
                    flap_limit: Some(FLAP_LIMIT_MAX + 1),
                    ..Default::default()
                },
                Err("flap_limit"),
            ),
            (
                PolicyChange {
                    warm_up: Some(WARM_UP_MAX + ms(1)),
                    ..Default::default()
                },
                Err("warm_up_ms"),
            ),
            (
                PolicyChange {
                    preempt: Some(Some(PREEMPT_MAX + ms(1))),
                    ..Default::default()
                },
                Err("preempt_ms"),
            ),
        ];
        for (i, (c, want)) in cases.iter().enumerate() {
            let mut p = FailoverPolicy::default();
            match (c.apply(&mut p), want) {
                (Ok(()), Ok(w)) => assert_eq!(p, *w, "row {i}"),
                (Err(e), Err(field)) => {
                    assert!(matches!(e, Error::InvalidArgument { .. }), "row {i}: {e}");
                    assert!(e.to_string().contains(field), "row {i}: {e}");
                }
                (r, w) => panic!("row {i}: got {r:?}, want {w:?}"),
            }
        }
        assert!(validate_priority("priority", PRIORITY_MAX).is_ok());
        assert!(
            validate_priority("priority", PRIORITY_MAX + 1)
                .unwrap_err()
                .to_string()
                .contains("priority")
        );
    }

    /// A state file written before failover existed loads with the
    /// defaults: manual groups, priority 100, nothing drained or suspended.
    #[test]
    fn state_without_failover_fields_loads_with_defaults() {
        let old = r#"{"members":{},"groups":{"g":{"id":"g","vni":100,
            "import_rts":[],"export_rts":[],"mtu":1500,"vmac":"42:6c:fa:d6:82:98",
            "members":["a"],"primary":"a","holders":["a"],"bvi":null,
            "created_at":{"secs_since_epoch":0,"nanos_since_epoch":0},
            "modified_at":{"secs_since_epoch":0,"nanos_since_epoch":0}}},"epoch":3}"#;
        let s: crate::model::State = serde_json::from_str(old).unwrap();
        let g = &s.groups["g"];
        assert_eq!(g.failover, FailoverPolicy::default());
        assert!(!g.failover.auto);
        assert_eq!(g.priority("a"), crate::model::DEFAULT_PRIORITY);
        assert!(s.drained.is_empty() && !s.failover_suspended);
        // And the new fields survive a round trip.
        let mut s2 = s.clone();
        s2.drained.insert("a".into());
        s2.failover_suspended = true;
        s2.groups.get_mut("g").unwrap().failover.auto = true;
        s2.groups
            .get_mut("g")
            .unwrap()
            .priorities
            .insert("a".into(), 200);
        let back: crate::model::State =
            serde_json::from_str(&serde_json::to_string(&s2).unwrap()).unwrap();
        assert_eq!(back, s2);
        assert_eq!(back.groups["g"].priority("a"), 200);
    }

    /// The persisted defaults are the decision's defaults.
    #[test]
    fn persisted_defaults_are_the_decisions() {
        use crate::group::failover::Policy;
        assert_eq!(Policy::from(&FailoverPolicy::default()), Policy::default());
    }
}
