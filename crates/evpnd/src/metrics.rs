//! evpnd's own Prometheus series (prefix `evpnd_`), next to the common ones.
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Labels of `vpp_api_calls_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub msg: String,
    pub result: String,
}

/// Labels with a message name only.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MsgLabels {
    pub msg: String,
}

/// Labels of `bird_applies_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

/// Labels of `bvi_role`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabels {
    pub evpn: String,
    pub role: String,
}

/// Labels of `health_up`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabels {
    /// `host` or `evpn`.
    pub scope: String,
    /// The eVPN's slug; empty for the host.
    pub evpn: String,
}

/// Labels of `health_check_up`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub check: String,
    /// The eVPN of a per-eVPN check; empty for a host check.
    pub evpn: String,
}

/// Labels of `health_transitions_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub check: String,
    /// `up` or `down`.
    pub to: String,
}

/// evpnd's metric handles.
#[derive(Clone)]
pub struct EvpndMetrics {
    pub vpp_connected: Gauge,
    pub vpp_calls: Family<CallLabels, Counter>,
    pub vpp_latency: Family<MsgLabels, Histogram>,
    pub bird_applies: Family<ResultLabels, Counter>,
    pub evpn_instances: Gauge,
    pub bvi_role: Family<RoleLabels, Gauge>,
    pub ready: Gauge,
    pub health_up: Family<ScopeLabels, Gauge>,
    pub health_check_up: Family<CheckLabels, Gauge>,
    pub health_transitions: Family<TransitionLabels, Counter>,
    pub health_self_fence: Family<ResultLabels, Counter>,
    pub health_fenced: Gauge,
}

impl EvpndMetrics {
    /// Create and register in `reg` (prefix `evpnd`).
    pub fn register(reg: &mut Registry) -> Self {
        let m = EvpndMetrics {
            vpp_connected: Gauge::default(),
            vpp_calls: Family::default(),
            vpp_latency: Family::new_with_constructor(|| {
                Histogram::new([
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 1.0, 5.0,
                ])
            }),
            bird_applies: Family::default(),
            evpn_instances: Gauge::default(),
            bvi_role: Family::default(),
            ready: Gauge::default(),
            health_up: Family::default(),
            health_check_up: Family::default(),
            health_transitions: Family::default(),
            health_self_fence: Family::default(),
            health_fenced: Gauge::default(),
        };
        reg.register(
            "vpp_connected",
            "1 while the VPP API connection is up",
            m.vpp_connected.clone(),
        );
        reg.register(
            "vpp_api_calls",
            "VPP API calls by message and result",
            m.vpp_calls.clone(),
        );
        reg.register(
            "vpp_api_call_duration_seconds",
            "VPP API call latency by message",
            m.vpp_latency.clone(),
        );
        reg.register(
            "bird_applies",
            "BIRD snippet applies by result",
            m.bird_applies.clone(),
        );
        reg.register(
            "evpn_instances",
            "eVPNs configured on this host",
            m.evpn_instances.clone(),
        );
        reg.register(
            "bvi_role",
            "1 for the current role (candidate|primary) of each eVPN's BVI",
            m.bvi_role.clone(),
        );
        reg.register(
            "ready",
            "1 once the start-up reconcile has finished",
            m.ready.clone(),
        );
        reg.register(
            "health_up",
            "1 while the scope (host, or one eVPN) is healthy; 0 when down or not yet checked",
            m.health_up.clone(),
        );
        reg.register(
            "health_check_up",
            "1 while the health check is up; 0 when down or not yet checked",
            m.health_check_up.clone(),
        );
        reg.register(
            "health_transitions",
            "Health check state changes by check and new state",
            m.health_transitions.clone(),
        );
        reg.register(
            "health_self_fence",
            "Self-fencing releases by result (released, failed)",
            m.health_self_fence.clone(),
        );
        reg.register(
            "health_fenced",
            "1 while this host has fenced itself (released its gateways; binds refused)",
            m.health_fenced.clone(),
        );
        m
    }
}
