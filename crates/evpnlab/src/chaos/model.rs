//! The model of what the registry acknowledged, and the check of the
//! registry's final state against it.
//!
//! Every field the chaos run can change is tracked per group as the set of
//! values the registry may legitimately hold:
//! - an operation that **succeeded** is acknowledged: the whole `Group` it
//!   returns (or, for operations that return nothing, the effect it names:
//!   delete, bind, release, enable/disable) becomes the only allowed value;
//! - an operation that **failed** (any error, including a deadline or evpnr
//!   being killed while it ran) may or may not have taken effect: each field
//!   it names gains the value it asked for (and, where evpnr falls back on
//!   failure, the fallback: a failed bind or move may leave the GroupBVI
//!   unassigned) next to the values allowed before; no other field may
//!   change;
//! - nothing else changes a group record: resyncs change members'
//!   dataplanes, never the registry's record — except evpnr's failover
//!   driver (`--failover`): a group that may have been `auto`, or any group
//!   while a host may be drained, may change its primary on its own; from
//!   then on (until the group is deleted) its primary may be any member or
//!   none (`free`).
use std::collections::{BTreeMap, BTreeSet};

use evpn_api::v1;

/// Allowed values of one field.
pub type Allowed<T> = BTreeSet<T>;

fn one<T: Ord>(v: T) -> Allowed<T> {
    BTreeSet::from([v])
}

/// What the registry may hold for one group.
#[derive(Debug, Clone)]
pub struct GroupModel {
    /// The group exists.
    pub exists: Allowed<bool>,
    /// Per instance: member or not.
    pub members: BTreeMap<String, Allowed<bool>>,
    /// The GroupBVI exists.
    pub bvi: Allowed<bool>,
    /// Per pool address (`addr/len`): configured or not.
    pub addrs: BTreeMap<String, Allowed<bool>>,
    /// The primary (`None`: unassigned).
    pub primary: Allowed<Option<String>>,
    /// The MTU.
    pub mtu: Allowed<u32>,
    /// The failover mode is `auto`.
    pub auto: Allowed<bool>,
    /// The primary may have moved on its own (failover driver): any member
    /// or none is allowed.
    pub free: bool,
}

impl GroupModel {
    fn absent(hosts: &[String], pool: &[String]) -> Self {
        Self {
            exists: one(false),
            members: hosts.iter().map(|h| (h.clone(), one(false))).collect(),
            bvi: one(false),
            addrs: pool.iter().map(|a| (a.clone(), one(false))).collect(),
            primary: one(None),
            mtu: one(1500),
            auto: one(false),
            free: false,
        }
    }

    /// The registry returned `g` for an acknowledged operation.
    pub fn sync(&mut self, g: &v1::Group) {
        self.exists = one(true);
        for (h, v) in &mut self.members {
            *v = one(g.members.contains(h));
        }
        self.bvi = one(g.group_bvi.is_some());
        let have: BTreeSet<String> = g
            .group_bvi
            .iter()
            .flat_map(|b| b.addresses.iter().map(prefix_key))
            .collect();
        for (a, v) in &mut self.addrs {
            *v = one(have.contains(a));
        }
        self.primary = one(Some(g.primary_instance_id.clone()).filter(|p| !p.is_empty()));
        self.mtu = one(g.mtu);
        self.auto = one(g.failover.as_ref().is_some_and(|f| f.mode == "auto"));
    }

    /// The group was deleted (acknowledged).
    pub fn deleted(&mut self) {
        self.exists = one(false);
        for v in self.members.values_mut() {
            *v = one(false);
        }
        self.bvi = one(false);
        for v in self.addrs.values_mut() {
            *v = one(false);
        }
        self.primary = one(None);
        self.mtu = one(1500);
        self.auto = one(false);
        self.free = false;
    }

    /// Every field may be anything it was or anything an operation could
    /// make it (a failed DeleteGroup).
    pub fn anything(&mut self) {
        self.exists.extend([true, false]);
        for v in self.members.values_mut() {
            v.extend([true, false]);
        }
        self.bvi.extend([true, false]);
        for v in self.addrs.values_mut() {
            v.extend([true, false]);
        }
        self.primary.insert(None);
        self.auto.insert(false);
    }
}

/// `addr/len` of a wire prefix, with the address in canonical text form.
pub fn prefix_key(p: &v1::Prefix) -> String {
    let a = p
        .address
        .parse::<std::net::IpAddr>()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| p.address.clone());
    format!("{a}/{}", p.prefix_len)
}

/// The model of the whole registry.
#[derive(Debug, Clone)]
pub struct Model {
    /// Per group.
    pub groups: BTreeMap<String, GroupModel>,
    /// Acknowledged enabled flags per (instance, group), while the
    /// membership is not re-created.
    pub enabled: BTreeMap<(String, String), bool>,
    /// Memberships (instance, group) that may have been disabled since they
    /// were made.
    pub maybe_disabled: BTreeSet<(String, String)>,
    /// Per instance: drained (`DrainInstance`) or not.
    pub drained: BTreeMap<String, Allowed<bool>>,
    /// The fleet-wide failover switch is suspended.
    pub suspended: Allowed<bool>,
}

impl Model {
    /// An empty registry with these group names, hosts and address pools.
    pub fn new(groups: &[(String, Vec<String>)], hosts: &[String]) -> Self {
        Self {
            groups: groups
                .iter()
                .map(|(g, pool)| (g.clone(), GroupModel::absent(hosts, pool)))
                .collect(),
            enabled: BTreeMap::new(),
            maybe_disabled: BTreeSet::new(),
            drained: hosts.iter().map(|h| (h.clone(), one(false))).collect(),
            suspended: one(false),
        }
    }

    /// Marks every group whose primary may now move on its own (it may be
    /// `auto`, or a host may be drained) as `free`.
    pub fn mark_autonomous(&mut self) {
        let draining = self.drained.values().any(|v| v.contains(&true));
        for g in self.groups.values_mut() {
            if g.exists.contains(&true) && (draining || g.auto.contains(&true)) {
                g.free = true;
            }
        }
    }

    /// The model of group `g`.
    pub fn g(&mut self, g: &str) -> &mut GroupModel {
        self.groups.get_mut(g).expect("group from the pool")
    }

    /// Forget the enabled flag of every membership of `g` (or of one).
    pub fn forget_enabled(&mut self, g: &str, host: Option<&str>) {
        self.enabled
            .retain(|(h, gg), _| !(gg == g && host.is_none_or(|x| x == h)));
        self.maybe_disabled
            .retain(|(h, gg)| !(gg == g && host.is_none_or(|x| x == h)));
    }

    /// Compares the registry's groups with the model; returns violations.
    pub fn check(&self, actual: &[v1::Group]) -> Vec<String> {
        let mut out = Vec::new();
        for (name, m) in &self.groups {
            let g = actual.iter().find(|g| g.group_id == *name);
            if !m.exists.contains(&g.is_some()) {
                out.push(format!(
                    "group {name}: exists={} but the acknowledged history allows {:?}",
                    g.is_some(),
                    m.exists
                ));
                continue;
            }
            let Some(g) = g else { continue };
            for (h, allowed) in &m.members {
                let is = g.members.contains(h);
                if !allowed.contains(&is) {
                    out.push(format!(
                        "group {name}: member {h} = {is}, acknowledged history allows {allowed:?}"
                    ));
                }
            }
            let has_bvi = g.group_bvi.is_some();
            if !m.bvi.contains(&has_bvi) {
                out.push(format!(
                    "group {name}: GroupBVI present = {has_bvi}, acknowledged history allows {:?}",
                    m.bvi
                ));
            }
            if let Some(b) = &g.group_bvi {
                let have: BTreeSet<String> = b.addresses.iter().map(prefix_key).collect();
                for (a, allowed) in &m.addrs {
                    let is = have.contains(a);
                    if !allowed.contains(&is) {
                        out.push(format!(
                            "group {name}: address {a} = {is}, acknowledged history allows {allowed:?}"
                        ));
                    }
                }
                for a in &have {
                    if !m.addrs.contains_key(a) {
                        out.push(format!("group {name}: address {a} was never asked for"));
                    }
                }
            }
            let p = Some(g.primary_instance_id.clone()).filter(|p| !p.is_empty());
            if m.free {
                if let Some(p) = &p
                    && !g.members.contains(p)
                {
                    out.push(format!("group {name}: primary {p} is not a member"));
                }
            } else if !m.primary.contains(&p) {
                out.push(format!(
                    "group {name}: primary {p:?}, acknowledged history allows {:?}",
                    m.primary
                ));
            }
            let auto = g.failover.as_ref().is_some_and(|f| f.mode == "auto");
            if !m.auto.contains(&auto) {
                out.push(format!(
                    "group {name}: failover auto = {auto}, acknowledged history allows {:?}",
                    m.auto
                ));
            }
            if !m.mtu.contains(&g.mtu) {
                out.push(format!(
                    "group {name}: MTU {}, acknowledged history allows {:?}",
                    g.mtu, m.mtu
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(members: &[&str], primary: &str, addrs: &[(&str, u32)]) -> v1::Group {
        v1::Group {
            group_id: "g0".into(),
            vni: 1000,
            mtu: 1500,
            members: members.iter().map(|m| m.to_string()).collect(),
            primary_instance_id: primary.into(),
            group_bvi: Some(v1::GroupBvi {
                addresses: addrs
                    .iter()
                    .map(|(a, l)| v1::Prefix {
                        address: a.to_string(),
                        prefix_len: *l,
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn acknowledged_changes_must_stay_failed_ones_may() {
        let hosts = vec!["a".to_string(), "b".to_string()];
        let pool = vec!["172.16.0.1/24".to_string(), "fec0::1/64".to_string()];
        let mut m = Model::new(&[("g0".into(), pool)], &hosts);
        // Nothing happened: an absent group matches.
        assert!(m.check(&[]).is_empty());
        let g = group(&["a", "b"], "a", &[("172.16.0.1", 24)]);
        m.g("g0").sync(&g);
        assert!(m.check(std::slice::from_ref(&g)).is_empty());
        // Losing the acknowledged primary or address is a violation.
        let lost = group(&["a", "b"], "", &[]);
        assert_eq!(m.check(std::slice::from_ref(&lost)).len(), 2);
        assert_eq!(m.check(&[]).len(), 1);
        // A failed move to b may have left a, b or nobody primary.
        m.g("g0").primary.extend([Some("b".into()), None]);
        assert!(
            m.check(&[group(&["a", "b"], "b", &[("172.16.0.1", 24)])])
                .is_empty()
        );
        // ... but the address is still acknowledged.
        assert_eq!(m.check(&[lost]).len(), 1);
        // An address nobody asked for.
        let extra = group(&["a", "b"], "a", &[("172.16.0.1", 24), ("10.9.9.9", 8)]);
        assert_eq!(m.check(&[extra]).len(), 1);
        // IPv6 text is compared canonically.
        assert_eq!(
            prefix_key(&v1::Prefix {
                address: "FEC0:0::1".into(),
                prefix_len: 64
            }),
            "fec0::1/64"
        );
    }
}
