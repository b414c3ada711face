//! Property tests of the validation layer every program shares (issue 13):
//! whatever the input, errors stay short and name the field; whatever is
//! accepted round-trips and stays within the limits; the refused address
//! classes are always refused.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use evpn_model::{
    Error, Mac, RouteDistinguisher, RouteTarget, addr, parse_prefix, parse_route_targets,
    validate::{self, ERROR_MAX_LEN, EXCERPT_CHARS},
};
use ipnet::IpNet;
use proptest::prelude::*;

/// Longest message a validation error may have. An excerpt is at most
/// EXCERPT_CHARS escaped characters (≤ 10 bytes each) plus its length note;
/// the rest is fixed text.
const MSG_MAX: usize = 512;

/// Any text, from short well-formed-looking to long and hostile.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,80}",
        ".{0,80}",
        "[0-9a-f:.()rt, /-]{0,60}",
        (any::<char>(), 1usize..20_000).prop_map(|(c, n)| c.to_string().repeat(n)),
        ("\\PC{0,8}", 1000usize..70_000).prop_map(|(s, n)| format!("{s}{}", "9".repeat(n))),
    ]
}

fn check_error(e: &Error, field: &str) -> Result<(), TestCaseError> {
    let m = e.to_string();
    prop_assert!(
        m.len() <= MSG_MAX,
        "{} bytes: {}",
        m.len(),
        validate::truncate(&m, 200)
    );
    prop_assert!(
        m.starts_with(&format!("invalid {field}")),
        "does not name {field}: {m}"
    );
    Ok(())
}

fn v4_in(net: [u8; 4], len: u32) -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(move |r| {
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        Ipv4Addr::from((u32::from(Ipv4Addr::from(net)) & mask) | (r & !mask))
    })
}

fn v6_in(net: u128, len: u32) -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(move |r| {
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        };
        Ipv6Addr::from((net & mask) | (r & !mask))
    })
}

/// Addresses of a class no gateway and no VTEP may have.
fn refused_address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        v4_in([0, 0, 0, 0], 8).prop_map(IpAddr::V4),
        v4_in([127, 0, 0, 0], 8).prop_map(IpAddr::V4),
        v4_in([169, 254, 0, 0], 16).prop_map(IpAddr::V4),
        v4_in([224, 0, 0, 0], 4).prop_map(IpAddr::V4),
        v4_in([240, 0, 0, 0], 4).prop_map(IpAddr::V4),
        v6_in(0, 96).prop_map(IpAddr::V6),
        v6_in(0xffff_0000_0000, 96).prop_map(IpAddr::V6),
        v6_in(0xff00 << 112, 8).prop_map(IpAddr::V6),
        v6_in(0xfe80 << 112, 10).prop_map(IpAddr::V6),
    ]
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        refused_address(),
    ]
}

fn rt_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<u16>(), any::<u32>()).prop_map(|(a, n)| format!("{a}:{n}")),
        (65536u32.., any::<u16>()).prop_map(|(a, n)| format!("rt:{a}:{n}")),
        (any::<u16>(), any::<u32>()).prop_map(|(a, n)| format!("(rt, {a}, {n})")),
        (any::<u32>(), any::<u32>()).prop_map(|(a, n)| format!("target:{a}:{n}")),
        text(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn errors_are_short_and_name_the_field(s in text(), n in any::<u32>()) {
        let checks: [(&str, Result<(), Error>); 10] = [
            ("slug", validate::validate_slug("slug", &s)),
            ("instance_id", validate::validate_instance_id("instance_id", &s)),
            ("version", validate::validate_text("version", &s, validate::VERSION_MAX_LEN)),
            ("address", parse_prefix("address", &s, n % 200).map(|_| ())),
            ("vtep_address", addr::parse_vtep("vtep_address", &s).map(|_| ())),
            ("rt", RouteTarget::parse("rt", &s).map(|_| ())),
            ("rd", RouteDistinguisher::parse("rd", &s).map(|_| ())),
            ("vmac", Mac::parse_unicast("vmac", &s).map(|_| ())),
            ("vni", validate::validate_vni("vni", n)),
            ("mtu", validate::validate_mtu("mtu", n)),
        ];
        for (field, r) in checks {
            if let Err(e) = r {
                check_error(&e, field)?;
            }
        }
        let ex = validate::excerpt(&s);
        prop_assert!(ex.len() <= EXCERPT_CHARS * 10 + 32, "{ex}");
        let t = validate::truncate(&s, ERROR_MAX_LEN);
        prop_assert!(t.len() <= ERROR_MAX_LEN);
        prop_assert!(s.starts_with(t.trim_end_matches('…')));
    }

    #[test]
    fn accepted_identifiers_stay_within_limits(s in text()) {
        if validate::validate_slug("slug", &s).is_ok() {
            prop_assert!(s.len() <= validate::SLUG_MAX_LEN);
        }
        if validate::validate_instance_id("instance_id", &s).is_ok() {
            prop_assert!(s.len() <= 63 && !s.is_empty());
            prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        }
        if validate::validate_text("version", &s, validate::VERSION_MAX_LEN).is_ok() {
            prop_assert!(s.len() <= validate::VERSION_MAX_LEN);
            prop_assert!(!s.chars().any(char::is_control));
        }
    }

    #[test]
    fn numbers_are_exactly_their_ranges(n in any::<u32>()) {
        prop_assert_eq!(validate::validate_vni("vni", n).is_ok(), (1..=validate::VNI_MAX).contains(&n));
        prop_assert_eq!(
            validate::validate_mtu("mtu", n).is_ok(),
            (validate::MTU_MIN..=validate::MTU_MAX).contains(&n)
        );
    }

    #[test]
    fn macs_round_trip(b in any::<[u8; 6]>(), upper in any::<bool>(), dash in any::<bool>()) {
        let m = Mac(b);
        let mut s = m.to_string();
        if upper { s = s.to_uppercase(); }
        if dash { s = s.replace(':', "-"); }
        let r = Mac::parse_unicast("vmac", &s);
        prop_assert_eq!(r.is_ok(), !m.is_multicast() && !m.is_zero());
        if let Ok(p) = r {
            prop_assert_eq!(p, m);
            prop_assert_eq!(p.to_string().parse::<Mac>().unwrap(), m);
        }
    }

    #[test]
    fn route_targets_round_trip(s in rt_text()) {
        if let Ok(rt) = RouteTarget::parse("rt", &s) {
            let canon = rt.to_string();
            prop_assert_eq!(RouteTarget::parse("rt", &canon).unwrap(), rt);
            prop_assert!(canon.len() <= 21);
        }
    }

    #[test]
    fn route_target_lists_are_bounded_and_unique(
        v in prop::collection::vec(rt_text(), 0..80),
        dup in any::<prop::sample::Index>(),
    ) {
        match parse_route_targets("import_route_targets", &v) {
            Ok(rts) => {
                prop_assert!(rts.len() <= validate::ROUTE_TARGETS_MAX);
                let mut u = rts.clone();
                u.sort();
                u.dedup();
                prop_assert_eq!(u.len(), rts.len());
            }
            Err(e) => check_error(&e, "import_route_targets")?,
        }
        if v.len() > validate::ROUTE_TARGETS_MAX {
            prop_assert!(parse_route_targets("import_route_targets", &v).is_err());
        }
        // A list with a repeated entry is always refused.
        if !v.is_empty() {
            let mut w = v.clone();
            w.push(v[dup.index(v.len())].clone());
            prop_assert!(parse_route_targets("import_route_targets", &w).is_err());
        }
    }

    #[test]
    fn refused_classes_are_always_refused(ip in refused_address(), len in 1u32..=128) {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = 1 + (len - 1) % max;
        let e = parse_prefix("address", &ip.to_string(), len).unwrap_err();
        check_error(&e, "address")?;
        prop_assert!(addr::parse_vtep("vtep_address", &ip.to_string()).is_err());
    }

    #[test]
    fn network_broadcast_and_anycast_are_refused(ip in any_ip(), len in 1u32..=128, ones in any::<bool>()) {
        // The same address with its host bits all zero (all one for IPv4).
        let net = match ip {
            IpAddr::V4(v4) => {
                let len = 1 + (len - 1) % 30; // /1../30: a network and a broadcast
                let host = u32::MAX >> len;
                let a = if ones { u32::from(v4) | host } else { u32::from(v4) & !host };
                IpNet::new(IpAddr::V4(Ipv4Addr::from(a)), len as u8).unwrap()
            }
            IpAddr::V6(v6) => {
                let len = 1 + (len - 1) % 126; // /1../126: a Subnet-Router anycast
                let host = u128::MAX >> len;
                let a = u128::from(v6) & !host;
                IpNet::new(IpAddr::V6(Ipv6Addr::from(a)), len as u8).unwrap()
            }
        };
        prop_assert!(
            parse_prefix("address", &net.addr().to_string(), u32::from(net.prefix_len())).is_err(),
            "{net} accepted"
        );
    }

    #[test]
    fn accepted_prefixes_are_unicast_hosts_and_round_trip(ip in any_ip(), len in 1u32..=128) {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = 1 + (len - 1) % max;
        if let Ok(net) = parse_prefix("address", &ip.to_string(), len) {
            let a = net.addr();
            prop_assert!(!(a.is_unspecified() || a.is_loopback() || a.is_multicast()));
            match a {
                IpAddr::V4(v4) => {
                    prop_assert!(!v4.is_link_local() && !v4.is_broadcast() && v4.octets()[0] != 0);
                    prop_assert!(v4.octets()[0] < 240);
                    if len <= 30 {
                        prop_assert!(net.network() != v4 && net.broadcast() != v4);
                    }
                }
                IpAddr::V6(v6) => {
                    prop_assert!(!v6.is_unicast_link_local());
                    prop_assert!(v6.to_ipv4_mapped().is_none());
                    prop_assert!(u128::from(v6) >> 32 != 0, "v4-compatible {v6}");
                    if len <= 126 {
                        prop_assert!(net.network() != IpAddr::V6(v6));
                    }
                }
            }
            let again = parse_prefix("address", &a.to_string(), u32::from(net.prefix_len()));
            prop_assert_eq!(again, Ok(net));
        }
    }
}
