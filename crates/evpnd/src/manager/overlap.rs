//! The one-FIB rule on this host: a gateway address may not overlap an
//! address on another interface of the BVI's routing table (VPP refuses it
//! with ADDRESS_IN_USE; Linux takes it but routes ambiguously). The rule is
//! `evpn_model::addr::conflicts_across_interfaces`, shared with evpnr;
//! this checks a bind's addresses against what the dataplane reports,
//! before anything is changed.
use evpn_model::{Error, addr::conflicts_across_interfaces};
use ipnet::IpNet;

/// FAILED_PRECONDITION naming the first of `addrs` that overlaps an address
/// in `others` (`(interface name, address)`), the address and its interface.
pub(crate) fn check_foreign_overlap(
    addrs: &[IpNet],
    others: &[(String, IpNet)],
) -> Result<(), Error> {
    for a in addrs {
        if let Some((name, b)) = others
            .iter()
            .find(|(_, b)| conflicts_across_interfaces(a, b))
        {
            return Err(Error::FailedPrecondition(format!(
                "addresses: {a} overlaps {b} on interface {name} in the same routing table \
                 (the dataplane refuses overlapping subnets on two interfaces of one FIB); \
                 remove {b} from {name} or choose another subnet; nothing was changed"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn overlaps_with_other_interfaces_are_refused_by_name() {
        let others = vec![
            ("loop0".to_string(), n("10.1.1.1/24")),
            ("loop7".to_string(), n("2001:db8::1/64")),
        ];
        let cases = [
            (vec![n("10.1.2.1/24")], None),
            (vec![n("10.1.1.2/24")], Some(("10.1.1.1/24", "loop0"))),
            (vec![n("10.1.0.1/16")], Some(("10.1.1.1/24", "loop0"))),
            (vec![n("10.1.1.200/25")], Some(("10.1.1.1/24", "loop0"))),
            (
                vec![n("10.9.9.9/24"), n("2001:db8::2/64")],
                Some(("2001:db8::1/64", "loop7")),
            ),
            (vec![n("2001:db8:1::1/64")], None),
        ];
        for (addrs, want) in cases {
            let r = check_foreign_overlap(&addrs, &others);
            match want {
                None => assert!(r.is_ok(), "{addrs:?}: {r:?}"),
                Some((b, name)) => {
                    let e = r.unwrap_err();
                    let s = e.to_string();
                    assert!(matches!(e, Error::FailedPrecondition(_)), "{s}");
                    assert!(s.contains(b) && s.contains(name), "{s}");
                }
            }
        }
        assert!(check_foreign_overlap(&[n("10.1.1.2/24")], &[]).is_ok());
    }
}
