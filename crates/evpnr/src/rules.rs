//! The registry's rules on what may coexist, checked before anything is
//! stored or sent: the gateway addresses of one GroupBVI, the addresses of
//! GroupBVIs that share a member (one FIB on that host), and the MACs that
//! can meet in one broadcast domain. Sans-IO, tested with tables.
use std::collections::BTreeSet;

use evpn_model::{Error, Mac};
use ipnet::IpNet;

use crate::model::{Group, State, bvi_mac};

/// Whether `new` cannot sit next to `old` on one interface. VPP refuses a
/// second prefix of the same family whose network overlaps one the
/// interface has (`-127 DUPLICATE_IF_ADDRESS` for the same address,
/// `-105 ADDRESS_IN_USE` otherwise), except another address of the same
/// subnet with the same length ("an intf may have >1 addr from the same
/// prefix", `ip4_add_del_interface_address_internal` in
/// src/vnet/ip/ip4_forward.c). The same rule holds for IPv6 here.
pub fn conflicts_on_one_interface(new: &IpNet, old: &IpNet) -> bool {
    if new.addr() == old.addr() {
        return true;
    }
    let overlap = new.contains(old) || old.contains(new);
    overlap && new.prefix_len() != old.prefix_len()
}

pub use evpn_model::addr::conflicts_across_interfaces;

/// Check a GroupBVI's whole address set (`field` names the request field,
/// `fields[i]` the element): no exact duplicate, no two prefixes that one
/// interface cannot hold together.
pub fn check_address_set(field: &str, addrs: &[IpNet]) -> Result<(), Error> {
    for (i, a) in addrs.iter().enumerate() {
        if let Some(b) = addrs[..i].iter().find(|b| conflicts_on_one_interface(a, b)) {
            return Err(Error::invalid(
                format!("{field}[{i}]"),
                overlap_reason(a, b),
            ));
        }
    }
    Ok(())
}

/// The address set of `g`'s GroupBVI after adding (or deleting) `addr`,
/// checked against the whole set. `field` names the request field.
pub fn edit_address_set(
    field: &str,
    current: &[IpNet],
    addr: IpNet,
    add: bool,
) -> Result<Vec<IpNet>, Error> {
    let has = current.contains(&addr);
    match (add, has) {
        (true, true) => Err(Error::exists(
            evpn_model::error::Object::Address,
            addr.to_string(),
        )),
        (false, false) => Err(Error::not_found(
            evpn_model::error::Object::Address,
            addr.to_string(),
        )),
        (false, true) => Ok(current.iter().filter(|a| **a != addr).copied().collect()),
        (true, false) => {
            if let Some(b) = current
                .iter()
                .find(|b| conflicts_on_one_interface(&addr, b))
            {
                return Err(Error::FailedPrecondition(format!(
                    "{field}: {}; nothing was changed",
                    overlap_reason(&addr, b)
                )));
            }
            let mut v = current.to_vec();
            v.push(addr);
            Ok(v)
        }
    }
}

fn overlap_reason(a: &IpNet, b: &IpNet) -> String {
    if a.addr() == b.addr() {
        format!("{a} repeats the address of {b} on the same GroupBVI")
    } else {
        format!(
            "{a} overlaps {b} on the same GroupBVI (VPP refuses overlapping prefixes on one interface)"
        )
    }
}

/// Whether `addrs` (the GroupBVI addresses of group `group`, with `members`)
/// conflict with another group's GroupBVI on a member they share: both
/// GroupBVIs are bound on that host's one FIB when it is primary of both.
/// Returns the refusal naming the other group, the shared member and the
/// two prefixes.
pub fn check_shared_members(
    st: &State,
    group: &str,
    members: &BTreeSet<String>,
    addrs: &[IpNet],
    field: &str,
) -> Result<(), Error> {
    for other in st.groups.values().filter(|o| o.id != group) {
        let Some(m) = other.members.intersection(members).next() else {
            continue;
        };
        let theirs = other.bvi.as_ref().map_or(&[][..], |b| &b.addresses[..]);
        for a in addrs {
            if let Some(b) = theirs.iter().find(|b| conflicts_across_interfaces(a, b)) {
                return Err(Error::FailedPrecondition(format!(
                    "{field}: {a} overlaps {b} of group {} on their shared member {m} \
                     (one host cannot hold overlapping subnets on two interfaces); \
                     nothing was changed",
                    other.id
                )));
            }
        }
    }
    Ok(())
}

/// Whether the broadcast domains of two groups can meet: the same VNI, or a
/// route target in common (import or export, either way round; a
/// conservative reading, since a third party importing a shared export
/// target sees both groups' MACs). An empty side means each member's
/// default, `<local-as>:<vni>` (evpnd), which evpnr cannot see the AS of:
/// it meets any target of the other group whose number is this VNI.
pub fn domains_meet(a: &Group, b: &Group) -> Option<String> {
    if a.vni == b.vni {
        return Some(format!("both use vni {}", a.vni));
    }
    let rts = |g: &Group| -> BTreeSet<String> {
        g.import_rts.iter().chain(&g.export_rts).cloned().collect()
    };
    let (ra, rb) = (rts(a), rts(b));
    if let Some(rt) = ra.intersection(&rb).next() {
        return Some(format!("route target {rt} in common"));
    }
    let defaults = |g: &Group, other: &BTreeSet<String>| -> Option<String> {
        let uses_default = g.import_rts.is_empty() || g.export_rts.is_empty();
        let vni = g.vni.to_string();
        other
            .iter()
            .find(|rt| uses_default && rt.rsplit(':').next() == Some(vni.as_str()))
            .map(|rt| format!("route target {rt} may be the default target of {}", g.id))
    };
    defaults(a, &rb).or_else(|| defaults(b, &ra))
}

/// The MACs `g` brings into its broadcast domain: its vMAC and each
/// member's derived per-host MAC, with what each one is.
fn macs(g: &Group) -> Vec<(Mac, String)> {
    let mut v = vec![(g.vmac, format!("the vMAC of group {}", g.id))];
    v.extend(g.members.iter().map(|m| {
        (
            bvi_mac(&g.id, m),
            format!("the per-host MAC of instance {m} in group {}", g.id),
        )
    }));
    v
}

/// Check that no MAC of `g` (new or changed: a new vMAC, a joining member)
/// is used twice where it can meet: within `g` (the vMAC against every
/// member's per-host MAC) and in every other group of `st` whose broadcast
/// domain can meet `g`'s. The refusal (FAILED_PRECONDITION, naming
/// `field`) says which two uses collide and why the domains meet.
pub fn check_macs(st: &State, g: &Group, field: &str) -> Result<(), Error> {
    let mine = macs(g);
    for (i, (m, what)) in mine.iter().enumerate() {
        if let Some((_, other)) = mine[..i].iter().find(|(o, _)| o == m) {
            return Err(Error::FailedPrecondition(format!(
                "{field}: {m} would be both {other} and {what}; nothing was changed"
            )));
        }
    }
    for other in st.groups.values().filter(|o| o.id != g.id) {
        let Some(why) = domains_meet(g, other) else {
            continue;
        };
        let theirs = macs(other);
        for (m, what) in &mine {
            if let Some((_, used)) = theirs.iter().find(|(o, _)| o == m) {
                return Err(Error::FailedPrecondition(format!(
                    "{field}: {m} would be {what} but is {used}, and the broadcast domains \
                     of {} and {} can meet ({why}); nothing was changed",
                    g.id, other.id
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::model::GroupBvi;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn one_interface_refuses_overlaps_but_not_a_second_address_of_a_subnet() {
        let cases = [
            ("172.16.0.32/25", "172.16.0.32/24", true),
            ("172.16.0.32/24", "172.16.0.32/24", true),
            ("172.16.0.32/32", "172.16.0.32/24", true),
            ("172.16.0.40/25", "172.16.0.32/24", true),
            ("172.16.0.33/24", "172.16.0.32/24", false),
            ("172.16.1.32/24", "172.16.0.32/24", false),
            ("fec0::32/64", "fec0::32/64", true),
            ("fec0::32/80", "fec0::33/64", true),
            ("fec0::33/64", "fec0::32/64", false),
            ("fec0::32/64", "172.16.0.32/24", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(conflicts_on_one_interface(&n(a), &n(b)), want, "{a} {b}");
            assert_eq!(conflicts_on_one_interface(&n(b), &n(a)), want, "{b} {a}");
        }
    }

    #[test]
    fn two_interfaces_refuse_any_overlap() {
        let cases = [
            ("10.1.1.1/24", "10.1.1.2/24", true),
            ("10.1.1.1/24", "10.1.0.1/16", true),
            ("10.1.1.1/24", "10.1.2.1/24", false),
            // VPP refuses IPv6 overlaps across interfaces too (-127).
            ("fec0::1/64", "fec0::2/64", true),
            ("fec0::1/64", "fec0:0:0:1::1/64", false),
            ("10.1.1.1/24", "fec0::1/64", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(conflicts_across_interfaces(&n(a), &n(b)), want, "{a} {b}");
        }
    }

    #[test]
    fn address_sets_are_checked_whole() {
        let ok = [n("172.16.0.32/24"), n("fec0::32/64"), n("172.16.0.33/24")];
        check_address_set("addresses", &ok).unwrap();
        let e = check_address_set("addresses", &[n("172.16.0.32/24"), n("172.16.0.32/25")])
            .unwrap_err();
        let s = e.to_string();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{s}");
        assert!(
            s.contains("addresses[1]") && s.contains("172.16.0.32/24"),
            "{s}"
        );
        let e = check_address_set("addresses", &[n("fec0::32/64"), n("fec0::32/64")]);
        assert!(e.unwrap_err().to_string().contains("repeats"));

        let cur = [n("172.16.0.32/24")];
        let e = edit_address_set("address", &cur, n("172.16.0.32/25"), true).unwrap_err();
        let s = e.to_string();
        assert!(matches!(e, Error::FailedPrecondition(_)), "{s}");
        assert!(
            s.starts_with("address: ") && s.contains("172.16.0.32/24"),
            "{s}"
        );
        assert!(matches!(
            edit_address_set("address", &cur, cur[0], true),
            Err(Error::AlreadyExists { .. })
        ));
        assert!(matches!(
            edit_address_set("address", &cur, n("10.0.0.1/8"), false),
            Err(Error::NotFound { .. })
        ));
        assert_eq!(
            edit_address_set("address", &cur, n("fec0::32/64"), true).unwrap(),
            vec![cur[0], n("fec0::32/64")]
        );
        assert!(
            edit_address_set("address", &cur, cur[0], false)
                .unwrap()
                .is_empty()
        );
    }

    fn group(id: &str, vni: u32, imp: &[&str], exp: &[&str], members: &[&str]) -> Group {
        let now = SystemTime::UNIX_EPOCH;
        Group {
            id: id.into(),
            vni,
            import_rts: imp.iter().map(|s| s.to_string()).collect(),
            export_rts: exp.iter().map(|s| s.to_string()).collect(),
            mtu: 1500,
            vmac: Mac::derived(&["vmac", id]),
            members: members.iter().map(|s| s.to_string()).collect(),
            primary: None,
            holders: BTreeSet::new(),
            bvi: None,
            created_at: now,
            modified_at: now,
            failover: Default::default(),
            priorities: Default::default(),
        }
    }

    fn state(groups: Vec<Group>) -> State {
        State {
            members: Default::default(),
            groups: groups.into_iter().map(|g| (g.id.clone(), g)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn domains_meet_on_a_vni_or_any_common_route_target() {
        let a = group("a", 100, &["65000:1"], &["65000:2"], &[]);
        let cases = [
            (group("b", 100, &[], &[], &[]), true),
            (group("b", 200, &[], &[], &[]), false),
            (group("b", 200, &["65000:2"], &[], &[]), true),
            (group("b", 200, &[], &["65000:1"], &[]), true),
            (group("b", 200, &["65000:1"], &[], &[]), true),
            (group("b", 200, &["65000:3"], &["65000:4"], &[]), false),
            // An empty side is each member's default, <local-as>:<vni>.
            (group("b", 200, &["65000:100"], &["65000:3"], &[]), false),
            (group("b", 1, &[], &["65000:3"], &[]), true),
        ];
        for (b, want) in cases {
            assert_eq!(domains_meet(&a, &b).is_some(), want, "{b:?}");
            assert_eq!(domains_meet(&b, &a).is_some(), want, "{b:?}");
        }
    }

    #[test]
    fn a_mac_is_used_once_where_domains_can_meet() {
        // The vMAC equals a member's per-host MAC in the same group.
        let mut g = group("test", 100, &[], &[], &["a"]);
        g.vmac = bvi_mac("test", "a");
        let e = check_macs(&state(vec![]), &g, "vmac").unwrap_err();
        let s = e.to_string();
        assert!(matches!(e, Error::FailedPrecondition(_)), "{s}");
        assert!(s.starts_with("vmac: ") && s.contains("instance a"), "{s}");

        // The same vMAC as a group whose domain can meet: refused, naming it.
        let other = group("other", 200, &["65000:1"], &["65000:1"], &["b"]);
        let mut g = group("test", 100, &["65000:1"], &[], &[]);
        g.vmac = other.vmac;
        let s = check_macs(&state(vec![other.clone()]), &g, "vmac")
            .unwrap_err()
            .to_string();
        assert!(s.contains("group other") && s.contains("65000:1"), "{s}");
        // … allowed where the domains cannot meet.
        g.import_rts = vec!["65000:9".into()];
        check_macs(&state(vec![other.clone()]), &g, "vmac").unwrap();

        // The vMAC of one group is another's member-derived MAC.
        let mut g = group("test", 100, &["65000:1"], &[], &[]);
        g.vmac = bvi_mac("other", "b");
        let s = check_macs(&state(vec![other.clone()]), &g, "vmac")
            .unwrap_err()
            .to_string();
        assert!(
            s.contains("per-host MAC of instance b in group other"),
            "{s}"
        );

        // A joining member whose per-host MAC is another group's vMAC.
        let mut other2 = other.clone();
        other2.vmac = bvi_mac("test", "c");
        let g = group("test", 100, &["65000:1"], &[], &["c"]);
        let s = check_macs(&state(vec![other2]), &g, "instance_id")
            .unwrap_err()
            .to_string();
        assert!(
            s.starts_with("instance_id: ") && s.contains("vMAC of group other"),
            "{s}"
        );

        // A group does not conflict with its own stored copy.
        let g = group("test", 100, &["65000:1"], &[], &["a", "b"]);
        check_macs(&state(vec![g.clone()]), &g, "vmac").unwrap();
    }

    #[test]
    fn shared_members_cannot_hold_overlapping_subnets() {
        let mut other = group("other", 200, &[], &[], &["a", "b"]);
        other.bvi = Some(GroupBvi {
            addresses: vec![n("10.1.1.1/24"), n("fec0::1/64")],
            created_at: SystemTime::UNIX_EPOCH,
            modified_at: SystemTime::UNIX_EPOCH,
        });
        let st = state(vec![other]);
        let shared: BTreeSet<String> = ["b".to_string()].into();
        let alone: BTreeSet<String> = ["c".to_string()].into();
        let s = check_shared_members(&st, "test", &shared, &[n("10.1.1.2/24")], "address")
            .unwrap_err()
            .to_string();
        assert!(
            s.starts_with("address: ") && s.contains("group other") && s.contains("member b"),
            "{s}"
        );
        check_shared_members(&st, "test", &alone, &[n("10.1.1.2/24")], "address").unwrap();
        check_shared_members(&st, "test", &shared, &[n("10.1.2.1/24")], "address").unwrap();
        // IPv6 too: VPP refuses an overlapping IPv6 subnet on another interface (-127).
        check_shared_members(&st, "test", &shared, &[n("fec0::2/64")], "address").unwrap_err();
        check_shared_members(&st, "test", &shared, &[n("fec0:0:0:1::2/64")], "address").unwrap();
    }
}
