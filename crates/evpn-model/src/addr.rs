//! Which IP addresses may be configured: gateway (BVI) addresses with their
//! prefix, and VTEP addresses. The accepted classes, with the RFC behind each
//! refusal, are tabled in `docs/validation.md`; [`gateway_refusal`] and
//! [`vtep_refusal`] are the one place that decides them.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::{Error, validate::excerpt};

/// Longest text an IP address can have (an IPv6 address with a dotted
/// IPv4 tail); longer input is refused before it is parsed.
const ADDRESS_TEXT_MAX: usize = 45;

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// `fe80::/10`, IPv6 link-local unicast (RFC 4291 2.5.6).
const LINK_LOCAL6: (u128, u32) = (0xfe80 << 112, 10);

/// True for an IPv6 link-local address (`fe80::/10`). The one link-local
/// test of the workspace (evpnd, netif and vppsim use it).
pub fn is_link_local6(a: &Ipv6Addr) -> bool {
    in_v6(*a, LINK_LOCAL6.0, LINK_LOCAL6.1)
}

/// [`is_link_local6`] for any address (IPv4 is never link-local here:
/// 169.254.0.0/16 is refused separately where it matters).
pub fn is_link_local(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if is_link_local6(v6))
}

fn in_v6(ip: Ipv6Addr, net: u128, len: u32) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    u128::from(ip) & mask == net & mask
}

/// Whether `a` and `b` cannot sit on two interfaces of one FIB (routing
/// table): their subnets overlap. VPP 25.10 refuses the second one
/// (`-105 ADDRESS_IN_USE` for IPv4 in `ip4_add_del_interface_address_internal`,
/// src/vnet/ip/ip4_forward.c; `-127 DUPLICATE_IF_ADDRESS` for IPv6 in
/// `ip6_add_del_interface_address`, src/vnet/ip/ip6_forward.c); Linux takes
/// it, but which interface a destination is routed to becomes ambiguous.
/// The one rule for evpnr (groups sharing a member) and evpnd (addresses on
/// interfaces it does not own, both dataplanes).
pub fn conflicts_across_interfaces(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

/// Why an address of any use is not a unicast address of a host (the
/// classes refused for both gateways and VTEPs), or `None`.
fn unicast_refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => [
            (
                [0, 0, 0, 0],
                8,
                "is in 0.0.0.0/8, \"this network\" (RFC 1122 3.2.1.3)",
            ),
            ([127, 0, 0, 0], 8, "is loopback, 127.0.0.0/8 (RFC 1122)"),
            (
                [169, 254, 0, 0],
                16,
                "is link-local, 169.254.0.0/16 (RFC 3927)",
            ),
            ([224, 0, 0, 0], 4, "is multicast, 224.0.0.0/4 (RFC 5771)"),
            (
                [240, 0, 0, 0],
                4,
                "is reserved, 240.0.0.0/4 incl. 255.255.255.255 (RFC 1112 4, RFC 919)",
            ),
        ]
        .into_iter()
        .find(|(n, l, _)| in_v4(v4, *n, *l))
        .map(|(_, _, why)| why),
        IpAddr::V6(v6) => [
            (0u128, 128, "is the unspecified address :: (RFC 4291 2.5.2)"),
            (1, 128, "is the loopback address ::1 (RFC 4291 2.5.3)"),
            (
                0xffff_0000_0000,
                96,
                "is IPv4-mapped, ::ffff:0:0/96 (RFC 4291 2.5.5.2); use the IPv4 address",
            ),
            (
                0,
                96,
                "is IPv4-compatible, ::/96 (deprecated, RFC 4291 2.5.5.1)",
            ),
            (0xff00 << 112, 8, "is multicast, ff00::/8 (RFC 4291 2.7)"),
            (
                LINK_LOCAL6.0,
                LINK_LOCAL6.1,
                "is link-local, fe80::/10 (RFC 4291 2.5.6); evpnd derives the link-local itself",
            ),
        ]
        .into_iter()
        .find(|(n, l, _)| in_v6(v6, *n, *l))
        .map(|(_, _, why)| why),
    }
}

/// Why `net` (an address with its prefix length) may not be a gateway
/// address, or `None` when it may:
/// * the address classes of [`unicast_refusal`];
/// * IPv4 with a prefix of /30 or shorter: the network address (host bits
///   all zero, RFC 1122 3.2.1.3) and the directed broadcast address (host
///   bits all one, RFC 919 / RFC 922). A /31 has two host addresses and no
///   broadcast (RFC 3021); a /32 is a host;
/// * IPv6 with a prefix of /126 or shorter: the Subnet-Router anycast
///   address (interface identifier all zero, RFC 4291 2.6.1). A /127 has two
///   usable addresses (RFC 6164); a /128 is a host;
/// * IPv6 /64: the reserved subnet anycast addresses, the highest 128
///   interface identifiers (RFC 2526).
pub fn gateway_refusal(net: &IpNet) -> Option<&'static str> {
    if let Some(why) = unicast_refusal(net.addr()) {
        return Some(why);
    }
    match net {
        IpNet::V4(n) if n.prefix_len() <= 30 => {
            let host = u32::MAX >> n.prefix_len();
            let a = u32::from(n.addr()) & host;
            if a == 0 {
                Some(
                    "is the network address of its prefix (RFC 1122 3.2.1.3); only /31 and /32 may use it (RFC 3021)",
                )
            } else if a == host {
                Some(
                    "is the broadcast address of its prefix (RFC 919); only /31 and /32 may use it (RFC 3021)",
                )
            } else {
                None
            }
        }
        IpNet::V6(n) if n.prefix_len() <= 126 => {
            let host = u128::MAX >> n.prefix_len();
            let a = u128::from(n.addr()) & host;
            if a == 0 {
                Some(
                    "is the Subnet-Router anycast address of its prefix (RFC 4291 2.6.1); only /127 and /128 may use it",
                )
            } else if n.prefix_len() == 64 && a >= 0xfdff_ffff_ffff_ff80 {
                Some("is a reserved subnet anycast address of its /64 (RFC 2526)")
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A note for an accepted gateway address that is deprecated: IPv6
/// site-local `fec0::/10` (RFC 3879). Such addresses are accepted (the lab
/// uses `fec0::32/64`) and a warning is emitted.
pub fn gateway_warning(net: &IpNet) -> Option<&'static str> {
    match net.addr() {
        IpAddr::V6(v6) if in_v6(v6, 0xfec0 << 112, 10) => Some(
            "is site-local, fec0::/10, deprecated by RFC 3879; accepted, prefer a unique local address (fc00::/7, RFC 4193)",
        ),
        _ => None,
    }
}

/// Why `ip` may not be a VTEP (VXLAN source) address, or `None`: the
/// classes of [`unicast_refusal`] (unspecified, this-network, loopback,
/// link-local, multicast, reserved and broadcast, v4-mapped/compatible).
pub fn vtep_refusal(ip: IpAddr) -> Option<&'static str> {
    unicast_refusal(ip)
}

fn parse_ip(field: &str, address: &str) -> Result<IpAddr, Error> {
    if address.len() > ADDRESS_TEXT_MAX {
        return Err(Error::invalid(
            field,
            format!("{} is not an IPv4 or IPv6 address", excerpt(address)),
        ));
    }
    address.parse().map_err(|_| {
        Error::invalid(
            field,
            format!("{} is not an IPv4 or IPv6 address", excerpt(address)),
        )
    })
}

/// An address with prefix length, syntax and length only: for naming an
/// existing address (e.g. to remove one stored before a class was refused).
pub fn parse_prefix_syntax(field: &str, address: &str, prefix_len: u32) -> Result<IpNet, Error> {
    let ip = parse_ip(field, address)?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix_len == 0 || prefix_len > max {
        return Err(Error::invalid(
            field,
            format!("prefix length {prefix_len} is out of range 1..={max} for {ip}"),
        ));
    }
    // prefix_len <= max was checked, so this cannot fail.
    IpNet::new(ip, prefix_len as u8).map_err(|e| Error::invalid(field, e.to_string()))
}

/// A gateway address with prefix length (`address` + `prefix_len`): the
/// length must be 1..=32 (IPv4) or 1..=128 (IPv6) and the address must pass
/// [`gateway_refusal`]. Errors name `field` and the reason.
pub fn parse_prefix(field: &str, address: &str, prefix_len: u32) -> Result<IpNet, Error> {
    let net = parse_prefix_syntax(field, address, prefix_len)?;
    if let Some(why) = gateway_refusal(&net) {
        return Err(Error::invalid(field, format!("{net} {why}")));
    }
    Ok(net)
}

/// A VTEP address given as text; see [`vtep_refusal`].
pub fn parse_vtep(field: &str, address: &str) -> Result<IpAddr, Error> {
    let ip = parse_ip(field, address)?;
    validate_vtep(field, ip)?;
    Ok(ip)
}

/// A VTEP address; see [`vtep_refusal`].
pub fn validate_vtep(field: &str, ip: IpAddr) -> Result<(), Error> {
    match vtep_refusal(ip) {
        Some(why) => Err(Error::invalid(
            field,
            format!("{ip} {why}; a VTEP needs a unicast address"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (address, prefix length, accepted?)
    const GATEWAYS: &[(&str, u32, bool)] = &[
        ("172.16.0.32", 24, true),
        ("fec0::32", 64, true),
        ("192.0.2.1", 24, true),
        ("10.0.0.0", 31, true),
        ("10.0.0.1", 31, true),
        ("10.0.0.0", 32, true),
        ("10.0.0.255", 32, true),
        ("10.0.0.0", 8, false),
        ("10.255.255.255", 8, false),
        ("172.16.0.0", 24, false),
        ("172.16.0.255", 24, false),
        ("172.16.0.1", 30, true),
        ("172.16.0.3", 30, false),
        ("0.1.2.3", 24, false),
        ("127.0.0.2", 8, false),
        ("169.254.1.1", 16, false),
        ("224.0.0.1", 24, false),
        ("239.1.1.1", 24, false),
        ("240.0.0.1", 24, false),
        ("255.255.255.255", 32, false),
        ("2001:db8::1", 64, true),
        ("fd00::1", 64, true),
        ("2001:db8::", 64, false),
        ("2001:db8::", 127, true),
        ("2001:db8::1", 127, true),
        ("2001:db8::", 128, true),
        ("2001:db8::fdff:ffff:ffff:ff80", 64, false),
        ("2001:db8::fdff:ffff:ffff:ffff", 64, false),
        ("2001:db8::fdff:ffff:ffff:ff7f", 64, true),
        ("::", 64, false),
        ("::1", 128, false),
        ("::ffff:10.0.0.1", 120, false),
        ("::10.0.0.1", 120, false),
        ("ff02::1", 64, false),
        ("fe80::1", 64, false),
        ("febf::1", 64, false),
    ];

    #[test]
    fn gateway_classes() {
        for &(a, l, ok) in GATEWAYS {
            let r = parse_prefix("address", a, l);
            assert_eq!(r.is_ok(), ok, "{a}/{l}: {r:?}");
            if let Err(e) = r {
                assert!(
                    e.to_string().starts_with("invalid address: "),
                    "{a}/{l}: {e}"
                );
            }
        }
        for (a, l) in [("172.16.0.32", 33), ("172.16.0.32", 0), ("fec0::32", 129)] {
            assert!(parse_prefix("address", a, l).is_err(), "{a}/{l}");
        }
        for a in ["x", "172.16.0.32/24", &"1".repeat(1 << 20)] {
            let e = parse_prefix("address", a, 24).unwrap_err().to_string();
            assert!(e.len() < 120, "{e}");
        }
    }

    #[test]
    fn site_local_is_accepted_with_a_warning() {
        let n = parse_prefix("address", "fec0::32", 64).unwrap();
        assert!(gateway_warning(&n).unwrap().contains("RFC 3879"));
        let n = parse_prefix("address", "fd00::32", 64).unwrap();
        assert!(gateway_warning(&n).is_none());
    }

    #[test]
    fn vteps() {
        for ok in ["192.0.2.1", "10.0.0.1", "2001:db8::1", "fd00::1"] {
            parse_vtep("vtep_address", ok).unwrap();
        }
        for bad in [
            "0.0.0.0",
            "127.0.0.1",
            "169.254.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "ff02::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "nope",
        ] {
            let e = parse_vtep("vtep_address", bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid vtep_address: "), "{e}");
        }
    }
}
