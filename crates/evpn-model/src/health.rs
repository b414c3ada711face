//! The health an evpnd reports to evpnr with its heartbeats
//! (docs/failover.md): its host verdict, each enabled eVPN's, and whether
//! it fenced itself. evpnd's checks decide it; evpnr only stores and shows
//! it.
use std::collections::BTreeMap;

/// A scope's combined health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HealthStatus {
    /// Not reported, or a check has no result yet.
    #[default]
    Unknown,
    Up,
    Down,
}

/// A verdict with its reason (for a down scope: every down check and its
/// last error).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthVerdict {
    pub status: HealthStatus,
    pub reason: String,
}

/// One health report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthReport {
    pub host: HealthVerdict,
    /// Per enabled eVPN (slug).
    pub evpns: BTreeMap<String, HealthVerdict>,
    /// Non-empty while the host has fenced itself: the reason.
    pub fenced: String,
    /// Bumped by the evpnd at every change.
    pub generation: u64,
    /// The eVPNs (slugs) the host has but that are disabled: it announces
    /// nothing for them, even while it holds their vMAC.
    pub disabled: std::collections::BTreeSet<String>,
}
