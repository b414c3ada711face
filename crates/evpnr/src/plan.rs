//! Resync decision logic, sans-IO: given what a member's groups require and
//! what the member reports (its eVPNs and BVIs), compute the actions that make
//! it match. A member that already matches yields no actions at all.
use std::collections::{BTreeMap, BTreeSet};

use evpn_model::Mac;
use ipnet::IpNet;

use crate::model::{Group, WantedRole};

/// What one group requires on one member.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub group: String,
    pub vni: u32,
    pub import_rts: Vec<String>,
    pub export_rts: Vec<String>,
    pub mtu: u32,
    /// The member's per-host BVI MAC in this group.
    pub bvi_mac: Mac,
    pub role: WantedRole,
    /// The registry still counts the member as a possible holder of the
    /// vMAC although it should not hold it (a move that never reached its
    /// bind, a release that timed out). Only a confirmed release clears
    /// that, and it may be what keeps the primary blocked.
    pub recorded_holder: bool,
}

impl Desired {
    /// What `group` requires on `member`, whose role there is `role` (the
    /// group machine's [`wanted_role`](crate::group::machine::wanted_role)).
    pub fn of(group: &Group, member: &str, role: WantedRole) -> Desired {
        Desired {
            group: group.id.clone(),
            vni: group.vni,
            import_rts: unique_rts(&group.import_rts),
            export_rts: unique_rts(&group.export_rts),
            mtu: group.mtu,
            bvi_mac: group.bvi_mac(member),
            role,
            recorded_holder: group.holders.contains(member),
        }
    }
}

/// An eVPN as the member reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActualEvpn {
    pub slug: String,
    pub vni: u32,
    pub import_rts: Vec<String>,
    pub export_rts: Vec<String>,
}

/// A BVI as the member reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActualBvi {
    pub slug: String,
    pub mac: Mac,
    pub instance_mac: Mac,
    pub mtu: u32,
    pub primary: bool,
    pub addresses: Vec<IpNet>,
}

/// One step of a resync.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Delete an eVPN (and its BVI): stale, or its parameters differ.
    DeleteEvpn { slug: String },
    /// Create the eVPN, then its BVI, then bind if primary; roll back (delete
    /// the eVPN) if any step fails.
    Configure(Desired),
    /// The eVPN exists without a BVI: create it (then bind if primary); roll
    /// back the eVPN on failure.
    CreateBvi(Desired),
    /// The BVI's per-host MAC or MTU differ.
    ReplaceBvi { group: String, mac: Mac, mtu: u32 },
    /// Bind the GroupBVI (vMAC and addresses).
    Bind {
        group: String,
        vmac: Mac,
        addresses: Vec<IpNet>,
        /// The member holds the vMAC already; only its addresses differ.
        addresses_only: bool,
    },
    /// Release the GroupBVI.
    Release { group: String },
}

impl Action {
    /// The group the action belongs to (an eVPN's slug is its group's ID).
    pub fn group(&self) -> &str {
        match self {
            Action::DeleteEvpn { slug } => slug,
            Action::Configure(d) | Action::CreateBvi(d) => &d.group,
            Action::ReplaceBvi { group, .. }
            | Action::Bind { group, .. }
            | Action::Release { group } => group,
        }
    }
}

/// Canonical form of a route target ("65000:100"), or the text as is.
fn canonical_rt(s: &str) -> String {
    evpn_model::RouteTarget::parse("rt", s).map_or_else(|_| s.to_string(), |r| r.to_string())
}

/// `v` canonical, without repeats: a group stored before repeats were
/// refused must not be refused by its members.
fn unique_rts(v: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    v.iter()
        .map(|s| canonical_rt(s))
        .filter(|s| seen.insert(s.clone()))
        .collect()
}

fn rts_match(want: &[String], have: &[String]) -> bool {
    // Empty means "the member's default", which the member fills in.
    let set = |v: &[String]| v.iter().map(|s| canonical_rt(s)).collect::<BTreeSet<_>>();
    want.is_empty() || set(want) == set(have)
}

fn same_addresses(a: &[IpNet], b: &[IpNet]) -> bool {
    a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
}

/// The role action needed for `d` given the BVI `b`, if any.
fn role_action(d: &Desired, b: &ActualBvi) -> Option<Action> {
    match &d.role {
        WantedRole::Primary { vmac, addresses } => {
            let ok = b.primary && b.mac == *vmac && same_addresses(&b.addresses, addresses);
            (!ok).then(|| Action::Bind {
                group: d.group.clone(),
                vmac: *vmac,
                addresses: addresses.clone(),
                addresses_only: b.primary && b.mac == *vmac,
            })
        }
        WantedRole::Candidate => {
            let holds = b.primary || !b.addresses.is_empty() || b.mac != b.instance_mac;
            // A release also when the BVI looks clean but the registry still
            // records the member as a holder: the release goes through the
            // member's write path (after any write still running there), is
            // a no-op in VPP when nothing is bound, and its confirmation is
            // what lets the registry forget the holder and unblock the primary.
            (holds || d.recorded_holder).then(|| Action::Release {
                group: d.group.clone(),
            })
        }
        WantedRole::PrimaryBlocked => None,
    }
}

/// Compute the actions that make the member match `desired`. Deletions come
/// first, then the groups in ID order.
pub fn plan(desired: &[Desired], evpns: &[ActualEvpn], bvis: &[ActualBvi]) -> Vec<Action> {
    let want: BTreeMap<&str, &Desired> = desired.iter().map(|d| (d.group.as_str(), d)).collect();
    let have: BTreeMap<&str, &ActualEvpn> = evpns.iter().map(|e| (e.slug.as_str(), e)).collect();
    let bvi: BTreeMap<&str, &ActualBvi> = bvis.iter().map(|b| (b.slug.as_str(), b)).collect();
    let mut out = Vec::new();
    let mut recreate = BTreeSet::new();
    for (slug, e) in &have {
        match want.get(slug) {
            None => out.push(Action::DeleteEvpn {
                slug: slug.to_string(),
            }),
            Some(d) => {
                if e.vni != d.vni
                    || !rts_match(&d.import_rts, &e.import_rts)
                    || !rts_match(&d.export_rts, &e.export_rts)
                {
                    out.push(Action::DeleteEvpn {
                        slug: slug.to_string(),
                    });
                    recreate.insert(*slug);
                }
            }
        }
    }
    for (slug, d) in &want {
        if !have.contains_key(slug) || recreate.contains(slug) {
            out.push(Action::Configure((*d).clone()));
            continue;
        }
        let Some(b) = bvi.get(slug) else {
            out.push(Action::CreateBvi((*d).clone()));
            continue;
        };
        if b.instance_mac != d.bvi_mac || b.mtu != d.mtu {
            out.push(Action::ReplaceBvi {
                group: d.group.clone(),
                mac: d.bvi_mac,
                mtu: d.mtu,
            });
        }
        if let Some(a) = role_action(d, b) {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(s: &str) -> Mac {
        s.parse().unwrap()
    }

    fn desired(group: &str, role: WantedRole) -> Desired {
        Desired {
            group: group.into(),
            vni: 100,
            import_rts: vec![],
            export_rts: vec![],
            mtu: 1500,
            bvi_mac: mac("02:00:00:00:00:01"),
            role,
            recorded_holder: false,
        }
    }

    fn evpn(slug: &str, vni: u32) -> ActualEvpn {
        ActualEvpn {
            slug: slug.into(),
            vni,
            import_rts: vec!["65000:100".into()],
            export_rts: vec!["65000:100".into()],
        }
    }

    fn bvi(slug: &str, primary: bool) -> ActualBvi {
        let inst = mac("02:00:00:00:00:01");
        ActualBvi {
            slug: slug.into(),
            mac: if primary {
                mac("42:00:00:00:00:99")
            } else {
                inst
            },
            instance_mac: inst,
            mtu: 1500,
            primary,
            addresses: if primary {
                vec!["172.16.0.32/24".parse().unwrap()]
            } else {
                vec![]
            },
        }
    }

    fn primary_role() -> WantedRole {
        WantedRole::Primary {
            vmac: mac("42:00:00:00:00:99"),
            addresses: vec!["172.16.0.32/24".parse().unwrap()],
        }
    }

    #[test]
    fn matching_member_needs_nothing() {
        let d = [
            desired("test", primary_role()),
            desired("other", WantedRole::Candidate),
        ];
        let e = [evpn("test", 100), evpn("other", 100)];
        let b = [bvi("test", true), bvi("other", false)];
        assert_eq!(plan(&d, &e, &b), vec![]);
    }

    #[test]
    fn stale_deleted_first_then_missing_configured() {
        let d = [desired("test", primary_role())];
        let e = [evpn("old", 7)];
        assert_eq!(
            plan(&d, &e, &[]),
            vec![
                Action::DeleteEvpn { slug: "old".into() },
                Action::Configure(d[0].clone())
            ]
        );
    }

    #[test]
    fn vni_or_route_target_mismatch_recreates() {
        let d = [desired("test", WantedRole::Candidate)];
        let e = [evpn("test", 200)];
        let b = [bvi("test", false)];
        assert_eq!(
            plan(&d, &e, &b),
            vec![
                Action::DeleteEvpn {
                    slug: "test".into()
                },
                Action::Configure(d[0].clone())
            ]
        );
        let mut d2 = d.clone();
        d2[0].vni = 100;
        d2[0].import_rts = vec!["65000:999".into()];
        assert_eq!(plan(&d2, &[evpn("test", 100)], &b).len(), 2);
        // The same targets in another spelling are a match.
        d2[0].import_rts = vec!["rt:65000:100".into()];
        assert_eq!(plan(&d2, &[evpn("test", 100)], &b), vec![]);
    }

    #[test]
    fn missing_bvi_created_wrong_mtu_replaced() {
        let d = [desired("test", WantedRole::Candidate)];
        let e = [evpn("test", 100)];
        assert_eq!(plan(&d, &e, &[]), vec![Action::CreateBvi(d[0].clone())]);
        let mut b = bvi("test", false);
        b.mtu = 9000;
        assert_eq!(
            plan(&d, &e, &[b]),
            vec![Action::ReplaceBvi {
                group: "test".into(),
                mac: d[0].bvi_mac,
                mtu: 1500
            }]
        );
    }

    #[test]
    fn roles_converge_and_blocked_primary_is_left_alone() {
        let e = [evpn("test", 100)];
        // Should be primary, is candidate: bind.
        let d = [desired("test", primary_role())];
        assert!(matches!(
            plan(&d, &e, &[bvi("test", false)])[..],
            [Action::Bind { .. }]
        ));
        // Primary with a missing address: bind again (converges addresses).
        let mut b = bvi("test", true);
        b.addresses.clear();
        assert!(matches!(plan(&d, &e, &[b])[..], [Action::Bind { .. }]));
        // Should be candidate, holds the vMAC: release.
        let d = [desired("test", WantedRole::Candidate)];
        assert_eq!(
            plan(&d, &e, &[bvi("test", true)]),
            vec![Action::Release {
                group: "test".into()
            }]
        );
        // Clean BVI but still a recorded holder: release (confirms it).
        let mut d = [desired("test", WantedRole::Candidate)];
        assert_eq!(plan(&d, &e, &[bvi("test", false)]), vec![]);
        d[0].recorded_holder = true;
        assert_eq!(
            plan(&d, &e, &[bvi("test", false)]),
            vec![Action::Release {
                group: "test".into()
            }]
        );
        // Blocked: neither bind nor release.
        let d = [desired("test", WantedRole::PrimaryBlocked)];
        assert_eq!(plan(&d, &e, &[bvi("test", false)]), vec![]);
        assert_eq!(plan(&d, &e, &[bvi("test", true)]), vec![]);
    }
}
