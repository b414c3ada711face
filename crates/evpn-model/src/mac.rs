//! Ethernet MAC addresses: parsing, canonical form, derivation of
//! deterministic locally administered unicast MACs, and the modified EUI-64
//! IPv6 link-local address. The one MAC type of the workspace: `vpp-api`
//! (as `MacAddress`) and `netif` use it too.
use std::{fmt, net::Ipv6Addr, str::FromStr};

use sha2::{Digest, Sha256};

use crate::{Error, validate::excerpt};

/// A 48-bit MAC address. Displays as lower-case `aa:bb:cc:dd:ee:ff`, and
/// so does its `Debug` (what `?field` in a log line and `{:?}` of a
/// containing type print), never as a byte array.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Mac(pub [u8; 6]);

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Mac {
    /// The all-zero address (asks VPP to pick one where allowed).
    pub const ZERO: Mac = Mac([0; 6]);
    /// The broadcast address.
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    /// A MAC from its six octets.
    pub const fn new(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8) -> Mac {
        Mac([a, b, c, d, e, f])
    }

    /// The all-zero address ([`Mac::ZERO`]).
    pub const fn nil() -> Mac {
        Mac::ZERO
    }

    /// The six octets.
    pub const fn into_array(self) -> [u8; 6] {
        self.0
    }

    /// The six octets, borrowed.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// True for a group (multicast/broadcast) address.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True for ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        *self == Mac::BROADCAST
    }

    /// True for a locally administered address.
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// True for 00:00:00:00:00:00.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// Parse and require a unicast, non-zero MAC; errors name `field`.
    pub fn parse_unicast(field: &str, s: &str) -> Result<Mac, Error> {
        let m: Mac = s.parse().map_err(|r: String| Error::invalid(field, r))?;
        if m.is_multicast() {
            return Err(Error::invalid(
                field,
                format!("{m} is a multicast address; a unicast MAC is required"),
            ));
        }
        if m.is_zero() {
            return Err(Error::invalid(field, "the all-zero MAC is not allowed"));
        }
        Ok(m)
    }

    /// A deterministic locally administered unicast MAC derived from the
    /// SHA-256 of the given parts (joined with a NUL separator): the first
    /// octet has the local bit set and the multicast bit cleared, the other
    /// five octets are the first five bytes of the digest.
    pub fn derived(parts: &[&str]) -> Mac {
        let mut h = Sha256::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                h.update([0u8]);
            }
            h.update(p.as_bytes());
        }
        let d = h.finalize();
        Mac([0x02, d[0], d[1], d[2], d[3], d[4]])
    }

    /// The IPv6 link-local address derived from this MAC (modified EUI-64,
    /// RFC 4291 appendix A): `fe80::/64` with the universal/local bit of the
    /// first octet flipped and `ff:fe` in the middle.
    pub fn link_local(&self) -> Ipv6Addr {
        let m = self.0;
        Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 0x02,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl FromStr for Mac {
    type Err = String;

    /// Accepts `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(format!(
                "{} is not a MAC address (expected six hex octets like 02:00:5e:10:00:01)",
                excerpt(s)
            ));
        }
        let mut out = [0u8; 6];
        for (o, p) in out.iter_mut().zip(&parts) {
            if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "{} is not a MAC address (bad octet {})",
                    excerpt(s),
                    excerpt(p)
                ));
            }
            *o = u8::from_str_radix(p, 16).map_err(|e| e.to_string())?;
        }
        Ok(Mac(out))
    }
}

impl From<[u8; 6]> for Mac {
    fn from(a: [u8; 6]) -> Self {
        Mac(a)
    }
}

impl From<Mac> for [u8; 6] {
    fn from(m: Mac) -> Self {
        m.0
    }
}

crate::serde_as_string!(Mac);

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14 item 7: logs printed `Mac(Mac([66, 108, …]))` (a reconcile
    /// fix `?f`); a MAC prints as a MAC wherever it is formatted.
    #[test]
    fn debug_prints_a_mac_not_bytes() {
        #[derive(Debug)]
        #[allow(dead_code)]
        enum Fix {
            Mac(Mac),
        }
        let m = Mac([0x42, 0x6c, 0xfa, 0xd6, 0x82, 0x98]);
        assert_eq!(format!("{m:?}"), "42:6c:fa:d6:82:98");
        assert_eq!(format!("{:?}", Fix::Mac(m)), "Mac(42:6c:fa:d6:82:98)");
        assert_eq!(format!("{:?}", Some(m)), "Some(42:6c:fa:d6:82:98)");
    }

    #[test]
    fn parse_and_display_round_trip() {
        let m: Mac = "42:6C:FA:d6-82-98".parse().unwrap();
        assert_eq!(m.to_string(), "42:6c:fa:d6:82:98");
        assert!("42:6c:fa:d6:82".parse::<Mac>().is_err());
        assert!("42:6c:fa:d6:82:9".parse::<Mac>().is_err());
        assert!("42:6c:fa:d6:82:zz".parse::<Mac>().is_err());
        assert!("42:6c:fa:d6:82:98:00".parse::<Mac>().is_err());
    }

    #[test]
    fn unicast_is_enforced() {
        let e = Mac::parse_unicast("vmac", "01:00:5e:00:00:01").unwrap_err();
        assert!(e.to_string().starts_with("invalid vmac: "), "{e}");
        assert!(Mac::parse_unicast("vmac", "ff:ff:ff:ff:ff:ff").is_err());
        assert!(Mac::parse_unicast("vmac", "00:00:00:00:00:00").is_err());
        assert!(Mac::parse_unicast("vmac", "02:00:00:00:00:01").is_ok());
    }

    #[test]
    fn derived_is_deterministic_local_unicast() {
        let a = Mac::derived(&["test", "dpu0-ddln0"]);
        assert_eq!(a, Mac::derived(&["test", "dpu0-ddln0"]));
        assert_ne!(a, Mac::derived(&["test", "dpu0-chplo0"]));
        // The separator keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(Mac::derived(&["ab", "c"]), Mac::derived(&["a", "bc"]));
        assert!(a.is_local() && !a.is_multicast());
    }

    #[test]
    fn link_local_is_modified_eui64() {
        let m: Mac = "42:6c:fa:d6:82:98".parse().unwrap();
        assert_eq!(m.link_local().to_string(), "fe80::406c:faff:fed6:8298");
        let m = Mac::new(0x02, 0x00, 0x00, 0x00, 0x01, 0x32);
        assert_eq!(m.link_local().to_string(), "fe80::ff:fe00:132");
        assert!(crate::is_link_local6(&m.link_local()));
    }

    /// One grammar: what `vpp-api` once accepted (`+f` octets through
    /// `u8::from_str_radix`, single digits) is refused everywhere.
    #[test]
    fn signs_and_short_octets_are_refused() {
        for bad in [
            "+f:00:00:00:00:01",
            "02:+0:00:00:00:01",
            "2:0:0:0:0:1",
            "02:00:00:00:00:01:",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
    }
}
