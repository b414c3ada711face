//! Validation of every identifier and number an API caller or a config file
//! can send. Errors are [`Error::InvalidArgument`] naming the field.
use std::net::IpAddr;

use ipnet::IpNet;

use crate::Error;

/// Longest eVPN slug / group ID. Keeps `bvi-<slug>` (and the Linux
/// dataplane's derived names) within the kernel's 15-byte interface names.
pub const SLUG_MAX_LEN: usize = 10;
/// Longest instance ID (a DNS label).
pub const INSTANCE_ID_MAX_LEN: usize = 63;
/// Largest VXLAN network identifier (24 bits).
pub const VNI_MAX: u32 = (1 << 24) - 1;
/// Smallest accepted MTU (IPv4 minimum datagram size).
pub const MTU_MIN: u32 = 576;
/// Largest accepted MTU (jumbo frames).
pub const MTU_MAX: u32 = 9216;
/// MTU used when none is configured.
pub const MTU_DEFAULT: u32 = 1500;

/// An eVPN slug or group ID: `[a-z]([a-z0-9-]*[a-z0-9])?`, at most
/// [`SLUG_MAX_LEN`] bytes. It becomes part of Linux interface names
/// (`bvi-<slug>`, `brg-<slug>`, ...) and of BIRD protocol names
/// (`evpn_<slug>`, quoted by the renderer when it contains `-`). Nothing else
/// is allowed: no quotes, spaces, braces or semicolons can reach a BIRD
/// config.
pub fn validate_slug(field: &str, s: &str) -> Result<(), Error> {
    if s.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if s.len() > SLUG_MAX_LEN {
        return Err(Error::invalid(
            field,
            format!(
                "{s:?} is {} bytes long; at most {SLUG_MAX_LEN} are allowed",
                s.len()
            ),
        ));
    }
    let b = s.as_bytes();
    if !b[0].is_ascii_lowercase() {
        return Err(Error::invalid(
            field,
            format!("{s:?} must start with a lower-case letter"),
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(Error::invalid(
            field,
            format!("{s:?} contains {c:?}; only a-z, 0-9 and '-' are allowed"),
        ));
    }
    if s.ends_with('-') {
        return Err(Error::invalid(
            field,
            format!("{s:?} must not end with '-'"),
        ));
    }
    Ok(())
}

/// An instance ID: a DNS label, `[a-z0-9]([a-z0-9-]*[a-z0-9])?`, at most 63
/// bytes, e.g. `dpu0-ddln0`.
pub fn validate_instance_id(field: &str, s: &str) -> Result<(), Error> {
    if s.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if s.len() > INSTANCE_ID_MAX_LEN {
        return Err(Error::invalid(
            field,
            format!(
                "{} bytes long; at most {INSTANCE_ID_MAX_LEN} are allowed",
                s.len()
            ),
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(Error::invalid(
            field,
            format!("{s:?} contains {c:?}; only a-z, 0-9 and '-' are allowed"),
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(Error::invalid(
            field,
            format!("{s:?} must not start or end with '-'"),
        ));
    }
    Ok(())
}

/// A VXLAN network identifier: 1..=2^24-1.
pub fn validate_vni(field: &str, vni: u32) -> Result<(), Error> {
    if vni == 0 || vni > VNI_MAX {
        return Err(Error::invalid(
            field,
            format!("{vni} is out of range 1..={VNI_MAX}"),
        ));
    }
    Ok(())
}

/// An MTU in bytes: [`MTU_MIN`]..=[`MTU_MAX`].
pub fn validate_mtu(field: &str, mtu: u32) -> Result<(), Error> {
    if !(MTU_MIN..=MTU_MAX).contains(&mtu) {
        return Err(Error::invalid(
            field,
            format!("{mtu} is out of range {MTU_MIN}..={MTU_MAX}"),
        ));
    }
    Ok(())
}

/// An interface address with prefix length (`address` + `prefix_len`). The
/// address must be a usable unicast host address: not unspecified, multicast,
/// loopback or IPv6 link-local (those are managed by evpnd), and the length
/// must be 1..=32 (IPv4) or 1..=128 (IPv6).
pub fn parse_prefix(field: &str, address: &str, prefix_len: u32) -> Result<IpNet, Error> {
    let ip: IpAddr = address.parse().map_err(|_| {
        Error::invalid(field, format!("{address:?} is not an IPv4 or IPv6 address"))
    })?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix_len == 0 || prefix_len > max {
        return Err(Error::invalid(
            field,
            format!("prefix length {prefix_len} is out of range 1..={max} for {ip}"),
        ));
    }
    if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
        return Err(Error::invalid(
            field,
            format!("{ip} is not a unicast host address"),
        ));
    }
    if let IpAddr::V6(v6) = ip
        && v6.segments()[0] & 0xffc0 == 0xfe80
    {
        return Err(Error::invalid(
            field,
            format!("{ip} is link-local; evpnd manages the link-local itself"),
        ));
    }
    if let IpAddr::V4(v4) = ip
        && v4.is_broadcast()
    {
        return Err(Error::invalid(
            field,
            format!("{ip} is not a unicast host address"),
        ));
    }
    // prefix_len <= max was checked, so this cannot fail.
    IpNet::new(ip, prefix_len as u8).map_err(|e| Error::invalid(field, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slugs() {
        for ok in ["test", "a", "cust-a1", "abcdefghij"] {
            validate_slug("slug", ok).unwrap();
        }
        for bad in [
            "",
            "Test",
            "1abc",
            "abcdefghijk",
            "a_b",
            "ab-",
            "a b",
            "a;b",
            "a\"b",
            "a}b",
            "é",
            "_a",
        ] {
            let e = validate_slug("slug", bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid slug: "), "{bad:?}: {e}");
        }
    }

    #[test]
    fn instance_ids() {
        for ok in ["dpu0-ddln0", "dpu0-chplo0", "r1", "0"] {
            validate_instance_id("instance_id", ok).unwrap();
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(validate_instance_id("instance_id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn numbers() {
        assert!(validate_vni("vni", 0).is_err());
        assert!(validate_vni("vni", 1).is_ok());
        assert!(validate_vni("vni", VNI_MAX).is_ok());
        assert!(validate_vni("vni", VNI_MAX + 1).is_err());
        assert!(validate_mtu("mtu", 575).is_err());
        assert!(validate_mtu("mtu", 1500).is_ok());
        assert!(validate_mtu("mtu", 9217).is_err());
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            parse_prefix("p", "172.16.0.32", 24).unwrap().to_string(),
            "172.16.0.32/24"
        );
        assert_eq!(
            parse_prefix("p", "fec0::32", 64).unwrap().to_string(),
            "fec0::32/64"
        );
        for (a, l) in [
            ("172.16.0.32", 33),
            ("172.16.0.32", 0),
            ("fec0::32", 129),
            ("0.0.0.0", 8),
            ("224.0.0.1", 24),
            ("fe80::1", 64),
            ("::1", 128),
            ("x", 24),
            ("172.16.0.32/24", 24),
        ] {
            let e = parse_prefix("address", a, l).unwrap_err();
            assert!(
                e.to_string().starts_with("invalid address: "),
                "{a}/{l}: {e}"
            );
        }
    }

    proptest! {
        #[test]
        fn accepted_slugs_are_safe_everywhere(s in "\\PC{0,16}") {
            if validate_slug("slug", &s).is_ok() {
                prop_assert!(s.len() <= SLUG_MAX_LEN);
                let name = format!("bvi-{s}");
                prop_assert!(name.len() <= 15);
                prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            }
        }
    }
}
