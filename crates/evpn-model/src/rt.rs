//! Route distinguishers and route targets (RFC 4364 4.2, RFC 4360 3.1,
//! RFC 5668): the one grammar evpnd, evpnr and evpnc accept, the list rules
//! (at most [`ROUTE_TARGETS_MAX`], no duplicates) and the default RD.
use std::{
    fmt,
    net::{IpAddr, Ipv4Addr},
    str::FromStr,
};

use crate::{
    Error,
    validate::{ROUTE_TARGETS_MAX, excerpt, validate_count},
};

fn parse_u<T: FromStr>(field: &str, what: &str, s: &str) -> Result<T, Error> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return Err(Error::invalid(
            field,
            format!("{what} {} is not a decimal number", excerpt(s)),
        ));
    }
    s.parse::<T>()
        .map_err(|_| Error::invalid(field, format!("{what} {} is out of range", excerpt(s))))
}

/// A route distinguisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum RouteDistinguisher {
    /// Type 0: 2-byte ASN : 4-byte number.
    As2(u16, u32),
    /// Type 1: IPv4 address : 2-byte number.
    Ip4(Ipv4Addr, u16),
    /// Type 2: 4-byte ASN (> 65535) : 2-byte number.
    As4(u32, u16),
}

impl RouteDistinguisher {
    /// Parses `65000:100`, `4200000000:100` or `10.0.0.1:100`.
    pub fn parse(field: &str, s: &str) -> Result<Self, Error> {
        let (a, b) = s.split_once(':').ok_or_else(|| {
            Error::invalid(field, format!("{} is not <admin>:<number>", excerpt(s)))
        })?;
        if a.contains('.') {
            let ip = Ipv4Addr::from_str(a).map_err(|_| {
                Error::invalid(field, format!("{} is not an IPv4 address", excerpt(a)))
            })?;
            return Ok(Self::Ip4(ip, parse_u(field, "assigned number", b)?));
        }
        let asn: u32 = parse_u(field, "ASN", a)?;
        if asn <= 0xffff {
            Ok(Self::As2(asn as u16, parse_u(field, "assigned number", b)?))
        } else {
            Ok(Self::As4(
                asn,
                parse_u(field, "assigned number (16 bits for a 4-byte ASN)", b)?,
            ))
        }
    }

    /// The RD evpnd uses when a request leaves `rd` empty: type 1,
    /// `<vtep>:<vni>` (RFC 7432 7.9: the PE's IPv4 address and a number
    /// unique on the PE). An IPv6 VTEP, or a VNI above 65535, cannot be
    /// written that way; both are refused naming the field that prevents it
    /// (an RD derived any other way could collide with another router's,
    /// which would hide its routes, e.g. for the vMAC, behind ours).
    pub fn derived(vtep: IpAddr, vni: u32) -> Result<Self, Error> {
        let IpAddr::V4(v4) = vtep else {
            return Err(Error::invalid(
                "vtep_address",
                format!(
                    "{vtep} is IPv6, so no default rd can be derived (a type-1 RD holds an IPv4 \
                     address, RFC 7432 7.9); set rd, e.g. 65000:{vni}"
                ),
            ));
        };
        let n = u16::try_from(vni).map_err(|_| {
            Error::invalid(
                "vni",
                format!(
                    "{vni} does not fit the default rd <vtep>:<vni> (16-bit number, RFC 4364 \
                     4.2); set rd, e.g. 65000:{vni}"
                ),
            )
        })?;
        Ok(Self::Ip4(v4, n))
    }
}

impl fmt::Display for RouteDistinguisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::As2(a, n) => write!(f, "{a}:{n}"),
            Self::Ip4(a, n) => write!(f, "{a}:{n}"),
            Self::As4(a, n) => write!(f, "{a}:{n}"),
        }
    }
}

/// A route target extended community `(rt, <asn>, <number>)`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum RouteTarget {
    /// 2-byte ASN : 4-byte number.
    As2(u16, u32),
    /// 4-byte ASN (> 65535) : 2-byte number.
    As4(u32, u16),
}

impl RouteTarget {
    /// Parses `65000:100`, `rt:65000:100`, `target:65000:100`, or BIRD's
    /// `(rt, 65000, 100)`; a 4-byte ASN (> 65535) takes a 2-byte number.
    /// Numbers are decimal without leading zeros. The IPv4-address form is
    /// refused (BIRD does not take it in target sets).
    pub fn parse(field: &str, s: &str) -> Result<Self, Error> {
        let t = s.trim();
        let (a, n) = if let Some(inner) = t.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
            let parts: Vec<&str> = inner.splitn(4, ',').map(str::trim).collect();
            match parts.as_slice() {
                ["rt", a, n] => (*a, *n),
                _ => {
                    return Err(Error::invalid(
                        field,
                        format!("{} is not (rt, <asn>, <number>)", excerpt(s)),
                    ));
                }
            }
        } else {
            let x = t
                .strip_prefix("rt:")
                .or_else(|| t.strip_prefix("target:"))
                .unwrap_or(t);
            x.split_once(':').ok_or_else(|| {
                Error::invalid(
                    field,
                    format!(
                        "{} is not a route target; use <asn>:<number>, e.g. 65000:100",
                        excerpt(s)
                    ),
                )
            })?
        };
        if a.contains('.') {
            return Err(Error::invalid(
                field,
                format!(
                    "{}: IPv4-form route targets are not supported; use <asn>:<number>",
                    excerpt(s)
                ),
            ));
        }
        let asn: u32 = parse_u(field, "ASN", a)?;
        if asn <= 0xffff {
            Ok(Self::As2(asn as u16, parse_u(field, "assigned number", n)?))
        } else {
            Ok(Self::As4(
                asn,
                parse_u(field, "assigned number (16 bits for a 4-byte ASN)", n)?,
            ))
        }
    }
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::As2(a, n) => write!(f, "{a}:{n}"),
            Self::As4(a, n) => write!(f, "{a}:{n}"),
        }
    }
}

/// A route target list as a request gives it: at most
/// [`ROUTE_TARGETS_MAX`] entries, each valid (errors name `field[i]`), no
/// two equal (in any spelling). An empty list is returned empty (the caller
/// decides what it means). The same rule in evpnd, evpnr and evpnc.
pub fn parse_route_targets(field: &str, v: &[String]) -> Result<Vec<RouteTarget>, Error> {
    validate_count(field, v.len(), ROUTE_TARGETS_MAX)?;
    let mut out: Vec<RouteTarget> = Vec::with_capacity(v.len());
    for (i, s) in v.iter().enumerate() {
        let rt = RouteTarget::parse(&format!("{field}[{i}]"), s)?;
        if let Some(j) = out.iter().position(|o| *o == rt) {
            return Err(Error::invalid(
                format!("{field}[{i}]"),
                format!("{rt} repeats {field}[{j}]"),
            ));
        }
        out.push(rt);
    }
    Ok(out)
}

/// [`parse_route_targets`] in canonical text form (`<asn>:<number>`).
pub fn canonical_route_targets(field: &str, v: &[String]) -> Result<Vec<String>, Error> {
    Ok(parse_route_targets(field, v)?
        .iter()
        .map(ToString::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds() {
        assert_eq!(
            RouteDistinguisher::parse("rd", "65000:100").unwrap(),
            RouteDistinguisher::As2(65000, 100)
        );
        assert_eq!(
            RouteDistinguisher::parse("rd", "10.0.0.1:100")
                .unwrap()
                .to_string(),
            "10.0.0.1:100"
        );
        assert_eq!(
            RouteDistinguisher::parse("rd", "4200000000:7").unwrap(),
            RouteDistinguisher::As4(4200000000, 7)
        );
        for bad in [
            "",
            "65000",
            "70000:70000",
            "10.0.0.1:70000",
            "a:1",
            "1:-1",
            "01:1",
            "1:2:3",
        ] {
            assert!(RouteDistinguisher::parse("rd", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn derived_rd() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            RouteDistinguisher::derived(v4, 100).unwrap().to_string(),
            "192.0.2.1:100"
        );
        let e = RouteDistinguisher::derived(v4, 70000).unwrap_err();
        assert!(e.to_string().starts_with("invalid vni: "), "{e}");
        let e = RouteDistinguisher::derived("2001:db8::1".parse().unwrap(), 100).unwrap_err();
        assert!(e.to_string().starts_with("invalid vtep_address: "), "{e}");
        assert!(e.to_string().contains("set rd"), "{e}");
    }

    #[test]
    fn rts() {
        for (i, o) in [
            ("65000:100", "65000:100"),
            ("rt:65000:100", "65000:100"),
            ("target:1:4294967295", "1:4294967295"),
            ("(rt, 65000, 100)", "65000:100"),
            ("(rt,4200000000,7)", "4200000000:7"),
        ] {
            assert_eq!(RouteTarget::parse("rt", i).unwrap().to_string(), o, "{i}");
        }
        for bad in [
            "",
            "65000",
            "rt:a:1",
            "70000:70000",
            "(ro, 1, 2)",
            "(rt, 1, 2, 3)",
            "1:2:3",
            "-1:2",
            "01:2",
            "10.0.0.1:5",
            "65000:1; }",
        ] {
            assert!(RouteTarget::parse("rt", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists() {
        let v = |n: usize| (0..n).map(|i| format!("65000:{i}")).collect::<Vec<_>>();
        assert_eq!(parse_route_targets("import", &v(64)).unwrap().len(), 64);
        let e = parse_route_targets("import", &v(65)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid import: 65 entries; at most 64 are allowed"
        );
        let e =
            parse_route_targets("import", &["65000:1".into(), "rt:65000:1".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid import[1]: 65000:1 repeats import[0]"
        );
        assert!(parse_route_targets("import", &[]).unwrap().is_empty());
    }
}
