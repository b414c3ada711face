//! The registry's domain types: what is persisted (members, groups and their
//! gateway identities) and the rules on them, and a member's liveness. No
//! I/O, no wire types.
use std::{
    collections::{BTreeMap, BTreeSet},
    time::SystemTime,
};

use evpn_model::Mac;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A registered evpnd (persisted part).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    /// Address evpnr dials ("host:port").
    pub grpc_address: String,
    pub version: String,
    pub registered_at: SystemTime,
}

/// A group's gateway identity: addresses bound on the primary with the vMAC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupBvi {
    pub addresses: Vec<IpNet>,
    pub created_at: SystemTime,
    pub modified_at: SystemTime,
}

/// A group: one eVPN broadcast domain across its members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Group ID; also the eVPN slug on every member.
    pub id: String,
    pub vni: u32,
    pub import_rts: Vec<String>,
    pub export_rts: Vec<String>,
    pub mtu: u32,
    pub vmac: Mac,
    pub members: BTreeSet<String>,
    /// The member that should hold the GroupBVI (intent).
    pub primary: Option<String>,
    /// Members that may hold the vMAC right now: a member is added before a
    /// bind is sent to it and removed only once a release (or the deletion
    /// of its eVPN) is confirmed. The actual holders are always a subset.
    pub holders: BTreeSet<String>,
    pub bvi: Option<GroupBvi>,
    pub created_at: SystemTime,
    pub modified_at: SystemTime,
    /// Autonomous failover (absent in older state files: manual).
    #[serde(default)]
    pub failover: FailoverPolicy,
    /// Member priorities for failover; a member not listed has
    /// [`DEFAULT_PRIORITY`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub priorities: BTreeMap<String, u32>,
}

/// A member's failover priority unless set (higher wins).
pub const DEFAULT_PRIORITY: u32 = 100;

/// A group's failover policy as persisted (times in milliseconds); the
/// decision (`group::failover`) reads it as its `Policy`. Every field has
/// a default, so state files from before failover load as `manual`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FailoverPolicy {
    /// `false`: manual (only operators move the gateway).
    pub auto: bool,
    /// Preemption delay; `None`: no preemption.
    pub preempt_ms: Option<u64>,
    /// No autonomous move for this long after one.
    pub hold_down_ms: u64,
    /// Flap damping: at most `flap_limit` autonomous moves per window.
    pub flap_window_ms: u64,
    pub flap_limit: u32,
    /// A (re)joined or recovered member is eligible after this long fit.
    pub warm_up_ms: u64,
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        FailoverPolicy {
            auto: false,
            preempt_ms: None,
            hold_down_ms: 10_000,
            flap_window_ms: 300_000,
            flap_limit: 3,
            warm_up_ms: 5_000,
        }
    }
}

impl Group {
    /// `member`'s failover priority.
    pub fn priority(&self, member: &str) -> u32 {
        self.priorities
            .get(member)
            .copied()
            .unwrap_or(DEFAULT_PRIORITY)
    }
}

/// The GroupBVI addresses of `g`, comma-separated (empty without a GroupBVI).
pub fn addresses(g: &Group) -> String {
    g.bvi
        .as_ref()
        .map(|b| {
            b.addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

impl Group {
    /// The deterministic per-host MAC of `member`'s BVI in this group.
    pub fn bvi_mac(&self, member: &str) -> Mac {
        bvi_mac(&self.id, member)
    }
}

/// The per-host BVI MAC of a member in a group: a locally administered
/// unicast MAC derived from SHA-256 of (group ID, instance ID).
pub fn bvi_mac(group: &str, member: &str) -> Mac {
    Mac::derived(&[group, member])
}

/// What a member's BVI should be in one group.
#[derive(Debug, Clone, PartialEq)]
pub enum WantedRole {
    /// Per-host MAC, no gateway addresses.
    Candidate,
    /// Holds the vMAC with these addresses.
    Primary { vmac: Mac, addresses: Vec<IpNet> },
    /// Should become primary but another member may still hold the vMAC:
    /// leave its role as it is for now.
    PrimaryBlocked,
}

/// Everything evpnr persists.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub members: BTreeMap<String, Member>,
    pub groups: BTreeMap<String, Group>,
    /// The registry epoch: incremented and saved at every start, before
    /// any member is dialled; every state-changing call to a member carries
    /// it (see `evpn_daemon::identity`).
    #[serde(default)]
    pub epoch: u64,
    /// Instances drained by an operator (maintenance): every gateway they
    /// hold is moved away and they are never a failover candidate.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub drained: BTreeSet<String>,
    /// The fleet-wide switch: every autonomous failover suspended.
    #[serde(default)]
    pub failover_suspended: bool,
}

impl State {
    /// Groups `member` belongs to, sorted.
    pub fn groups_of(&self, member: &str) -> Vec<String> {
        self.groups
            .values()
            .filter(|g| g.members.contains(member))
            .map(|g| g.id.clone())
            .collect()
    }
}

/// A fresh locally administered unicast vMAC from the group ID and the time.
pub fn generate_vmac(group: &str, now: SystemTime) -> Mac {
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        .to_string();
    Mac::derived(&["vmac", group, &nanos, &std::process::id().to_string()])
}

/// A member's liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// No heartbeat since evpnr started or since the member (re)registered.
    Unknown,
    /// Last heartbeat younger than `suspect-after`.
    Alive,
    /// Older than `suspect-after`: calls to it fail fast.
    Suspect,
    /// Older than `dead-after`.
    Dead,
}

impl Liveness {
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Unknown => "unknown",
            Liveness::Alive => "alive",
            Liveness::Suspect => "suspect",
            Liveness::Dead => "dead",
        }
    }

    /// Whether calls to the member should fail at once instead of waiting
    /// for `member-timeout`.
    pub fn unresponsive(self) -> bool {
        matches!(self, Liveness::Suspect | Liveness::Dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> Group {
        let now = SystemTime::UNIX_EPOCH;
        Group {
            id: "test".into(),
            vni: 100,
            import_rts: vec![],
            export_rts: vec![],
            mtu: 1500,
            vmac: "42:6c:fa:d6:82:98".parse().unwrap(),
            members: ["a".to_string(), "b".to_string()].into(),
            primary: Some("a".into()),
            holders: BTreeSet::new(),
            bvi: Some(GroupBvi {
                addresses: vec!["172.16.0.32/24".parse().unwrap()],
                created_at: now,
                modified_at: now,
            }),
            created_at: now,
            modified_at: now,
            failover: FailoverPolicy::default(),
            priorities: BTreeMap::new(),
        }
    }

    #[test]
    fn primary_binds_only_when_no_one_else_may_hold_the_vmac() {
        let mut g = group();
        assert!(matches!(
            crate::group::machine::wanted_role(&g, "a"),
            WantedRole::Primary { .. }
        ));
        assert_eq!(
            crate::group::machine::wanted_role(&g, "b"),
            WantedRole::Candidate
        );
        g.holders.insert("a".into());
        assert!(matches!(
            crate::group::machine::wanted_role(&g, "a"),
            WantedRole::Primary { .. }
        ));
        g.holders.insert("b".into());
        assert_eq!(
            crate::group::machine::wanted_role(&g, "a"),
            WantedRole::PrimaryBlocked
        );
        g.bvi = None;
        assert_eq!(
            crate::group::machine::wanted_role(&g, "a"),
            WantedRole::Candidate
        );
    }

    #[test]
    fn generated_vmacs_are_local_unicast_and_distinct() {
        let t = SystemTime::now();
        let a = generate_vmac("test", t);
        assert!(a.is_local() && !a.is_multicast());
        assert_ne!(
            a,
            generate_vmac("test", t + std::time::Duration::from_nanos(1))
        );
        assert_eq!(bvi_mac("test", "a"), Mac::derived(&["test", "a"]));
    }
}
