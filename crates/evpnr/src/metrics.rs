//! evpnr's own Prometheus series (prefix `evpnr_`), next to the common ones
//! (gRPC requests, config, event subscribers and drops).
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PrimaryLabels {
    pub group: String,
    pub instance: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub method: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeldLabels {
    pub held: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstanceLabels {
    pub instance: String,
}

/// The registry's metric handles.
#[derive(Clone)]
pub struct RegistryMetrics {
    pub instances: Family<StateLabels, Gauge>,
    pub instances_ready: Gauge,
    pub groups: Gauge,
    pub group_primary: Family<PrimaryLabels, Gauge>,
    pub moves: Family<ResultLabels, Counter>,
    pub move_duration: Family<ResultLabels, Histogram>,
    pub resyncs: Family<ResultLabels, Counter>,
    pub member_rpcs: Family<RpcLabels, Counter>,
    pub member_rpc_duration: Family<MethodLabels, Histogram>,
    pub liveness: Family<StateLabels, Gauge>,
    pub heartbeat_age: Family<InstanceLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Candidates' reports of a primary's announcement withdrawn.
    pub withdrawal_reports: Family<PrimaryLabels, Counter>,
    /// The failover driver (docs/failover.md).
    pub failover: FailoverMetrics,
}

/// The failover driver's series (`evpnr_failover_*`).
#[derive(Clone, Default)]
pub struct FailoverMetrics {
    pub started: Family<ReasonLabels, Counter>,
    pub finished: Family<ReasonLabels, Counter>,
    pub blocked: Family<ReasonLabels, Counter>,
    pub decisions: Family<DecisionLabels, Counter>,
    pub held: Family<HeldLabels, Counter>,
    pub suspended: Gauge,
}

impl FailoverMetrics {
    fn register(&self, reg: &mut Registry) {
        reg.register(
            "failover_started",
            "Autonomous failovers started, by reason (primary-unhealthy, primary-unreachable, \
             primary-withdrawn, primary-drained, preempt, no-primary)",
            self.started.clone(),
        );
        reg.register(
            "failover_finished",
            "Autonomous failovers finished (the new primary bound), by reason",
            self.finished.clone(),
        );
        reg.register(
            "failover_blocked",
            "Autonomous failovers that failed or were refused (retried with back-off), by reason",
            self.blocked.clone(),
        );
        reg.register(
            "failover_decisions",
            "Decisions of the failover driver, one per group with a GroupBVI per pass \
             (stay, move, held)",
            self.decisions.clone(),
        );
        reg.register(
            "failover_held",
            "Changes of a group's held reason (as the failover-held event), by kind \
             (suspended, hold-down, flapping, no-candidate, preempt-delay, manual)",
            self.held.clone(),
        );
        reg.register(
            "failover_suspended",
            "1 while every autonomous failover is suspended (SetFailoverSuspended)",
            self.suspended.clone(),
        );
    }

    /// Count one failover in `family` (started, finished, blocked).
    pub fn inc(family: &Family<ReasonLabels, Counter>, reason: &str) {
        family
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
    }
}

impl RegistryMetrics {
    /// Create and register in `reg` (which carries the `evpnr` prefix).
    pub fn register(reg: &mut Registry) -> Self {
        let m = RegistryMetrics {
            instances: Family::default(),
            instances_ready: Gauge::default(),
            groups: Gauge::default(),
            group_primary: Family::default(),
            moves: Family::default(),
            move_duration: Family::new_with_constructor(|| {
                Histogram::new([
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
            }),
            resyncs: Family::default(),
            member_rpcs: Family::default(),
            member_rpc_duration: Family::new_with_constructor(|| {
                Histogram::new([
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
            }),
            liveness: Family::default(),
            heartbeat_age: Family::default(),
            withdrawal_reports: Family::default(),
            failover: FailoverMetrics::default(),
        };
        m.failover.register(reg);
        reg.register(
            "failover_withdrawal_reports",
            "Reports by a candidate (instance) that the primary's announcement of a group's vMAC was withdrawn from the fabric",
            m.withdrawal_reports.clone(),
        );
        reg.register(
            "instances_liveness",
            "Registered instances by liveness (unknown, alive, suspect, dead)",
            m.liveness.clone(),
        );
        reg.register(
            "member_heartbeat_age_seconds",
            "Age of each member's last heartbeat (-1: none yet)",
            m.heartbeat_age.clone(),
        );
        reg.register(
            "instances",
            "Registered instances by connection state",
            m.instances.clone(),
        );
        reg.register(
            "instances_ready",
            "Registered instances that reported ready",
            m.instances_ready.clone(),
        );
        reg.register("groups", "Groups in the registry", m.groups.clone());
        reg.register(
            "group_primary",
            "1 for the primary instance of each group that has one",
            m.group_primary.clone(),
        );
        reg.register(
            "moves",
            "GroupBVI moves by result (ok, refused, failed)",
            m.moves.clone(),
        );
        reg.register(
            "move_duration_seconds",
            "Duration of GroupBVI moves, release through bind, by result",
            m.move_duration.clone(),
        );
        reg.register(
            "resyncs",
            "Member resyncs by result (unchanged, changed, failed)",
            m.resyncs.clone(),
        );
        reg.register(
            "member_rpcs",
            "RPCs sent to member evpnds, by method and status code",
            m.member_rpcs.clone(),
        );
        reg.register(
            "member_rpc_duration_seconds",
            "Latency of RPCs to member evpnds (streams: until the stream opened), by method",
            m.member_rpc_duration.clone(),
        );
        m
    }

    /// Count one finished move.
    pub fn moved(&self, result: &str, secs: f64) {
        let l = ResultLabels {
            result: result.into(),
        };
        self.moves.get_or_create(&l).inc();
        self.move_duration.get_or_create(&l).observe(secs);
    }
}
