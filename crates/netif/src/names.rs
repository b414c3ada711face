//! Interface names derived from an eVPN slug.
//!
//! # Slugs
//! A slug matches `[a-z0-9][a-z0-9-]*` and is at most [`SLUG_MAX_LEN`] (32) bytes long.
//!
//! # Scheme
//! Every eVPN owns four kernel devices. Each name is a 3-letter role, a `-`, and a body:
//!
//! | role | device | example (`red`) |
//! |---|---|---|
//! | `brg-` | the bridge | `brg-red` |
//! | `vxl-` | the VXLAN device (bridge port) | `vxl-red` |
//! | `bvp-` | the veth end that is a bridge port | `bvp-red` |
//! | `bvi-` | the veth end that carries the gateway MAC and addresses | `bvi-red` |
//!
//! * **Plain form** (slug of at most [`PLAIN_MAX_LEN`] = 11 bytes): the body is the slug, so
//!   the name is at most 15 bytes, the kernel's limit (`IFNAMSIZ` - 1).
//! * **Hashed form** (slug of 12..=32 bytes): the body is the first 2 bytes of the slug, `_`,
//!   and the first 8 lowercase hex digits of SHA-256(slug): `bvi-cu_1a2b3c4d` (exactly 15 bytes).
//!
//! Why names never collide:
//! * different roles differ in their prefix;
//! * two plain names of one role are equal only if the slugs are equal;
//! * a plain name never contains `_` (not in the slug alphabet) and a hashed name always does,
//!   so a plain name never equals a hashed name;
//! * two hashed names are equal only if the slugs share the first two bytes **and** the
//!   32-bit hash prefix. That is not impossible, so [`check_unique`] exists for a daemon that
//!   knows all its slugs; it reports the pair instead of letting two eVPNs share a device.
//!
//! All names use only `[a-z0-9_-]`: valid for the kernel (`dev_valid_name`), for `ip`, and
//! inside BIRD's quoted `device "..."` strings.

use sha2::{Digest, Sha256};
use std::fmt;

/// Longest accepted slug, in bytes.
pub const SLUG_MAX_LEN: usize = 32;
/// Longest slug that keeps the plain (readable) form.
pub const PLAIN_MAX_LEN: usize = 11;
/// Longest kernel interface name (`IFNAMSIZ` - 1).
pub const IFNAME_MAX_LEN: usize = 15;

/// Why a slug is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    /// The slug is empty.
    #[error("invalid slug: empty")]
    Empty,
    /// The slug is longer than [`SLUG_MAX_LEN`].
    #[error("invalid slug {0:?}: longer than {SLUG_MAX_LEN} bytes")]
    TooLong(String),
    /// The slug has a byte outside `[a-z0-9-]`, or starts with `-`.
    #[error("invalid slug {0:?}: must match [a-z0-9][a-z0-9-]*")]
    BadChar(String),
}

/// A validated eVPN slug.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slug(String);

impl Slug {
    /// Validate `s` as a slug.
    pub fn new(s: &str) -> Result<Slug, SlugError> {
        validate_slug(s)?;
        Ok(Slug(s.to_owned()))
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The four device names of this eVPN.
    pub fn names(&self) -> EvpnNames {
        EvpnNames::for_slug(self)
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Slug {
    type Err = SlugError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Slug::new(s)
    }
}

/// Check `s` against the slug rules.
pub fn validate_slug(s: &str) -> Result<(), SlugError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(SlugError::Empty);
    }
    if b.len() > SLUG_MAX_LEN {
        return Err(SlugError::TooLong(s.to_owned()));
    }
    let ok_first = b[0].is_ascii_lowercase() || b[0].is_ascii_digit();
    let ok_rest = b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if !ok_first || !ok_rest {
        return Err(SlugError::BadChar(s.to_owned()));
    }
    Ok(())
}

/// The role of a device within an eVPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The bridge.
    Bridge,
    /// The VXLAN device.
    Vxlan,
    /// The veth end enslaved to the bridge.
    BviPort,
    /// The veth end carrying the MAC and the addresses.
    Bvi,
}

impl Role {
    /// All roles.
    pub const ALL: [Role; 4] = [Role::Bridge, Role::Vxlan, Role::BviPort, Role::Bvi];

    /// The 4-byte name prefix of this role.
    pub fn prefix(self) -> &'static str {
        match self {
            Role::Bridge => "brg-",
            Role::Vxlan => "vxl-",
            Role::BviPort => "bvp-",
            Role::Bvi => "bvi-",
        }
    }
}

/// The body shared by all device names of a slug (the part after the role prefix).
fn body(slug: &Slug) -> String {
    let s = slug.as_str();
    if s.len() <= PLAIN_MAX_LEN {
        return s.to_owned();
    }
    let digest = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(PLAIN_MAX_LEN);
    out.push_str(&s[..2]);
    out.push('_');
    for byte in &digest[..4] {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The device name of `role` for `slug`.
pub fn ifname(slug: &Slug, role: Role) -> String {
    format!("{}{}", role.prefix(), body(slug))
}

/// True when `name` is a valid kernel interface name (`dev_valid_name`).
pub fn is_valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAME_MAX_LEN
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|c| c == b'/' || c == b':' || c.is_ascii_whitespace() || c == 0)
}

/// The four device names of one eVPN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EvpnNames {
    /// Bridge (`brg-…`).
    pub bridge: String,
    /// VXLAN device (`vxl-…`).
    pub vxlan: String,
    /// Veth end that is a bridge port (`bvp-…`).
    pub port: String,
    /// Veth end carrying the gateway (`bvi-…`).
    pub bvi: String,
}

impl EvpnNames {
    /// Derive the names for `slug`.
    pub fn for_slug(slug: &Slug) -> EvpnNames {
        EvpnNames {
            bridge: ifname(slug, Role::Bridge),
            vxlan: ifname(slug, Role::Vxlan),
            port: ifname(slug, Role::BviPort),
            bvi: ifname(slug, Role::Bvi),
        }
    }

    /// The names in role order (bridge, vxlan, port, bvi).
    pub fn all(&self) -> [&str; 4] {
        [&self.bridge, &self.vxlan, &self.port, &self.bvi]
    }
}

/// Split a kernel interface name into its role and body, if it has one of our prefixes.
/// The four prefixes (`brg-`, `vxl-`, `bvp-`, `bvi-`) are reserved for eVPN devices.
pub fn parse_ifname(name: &str) -> Option<(Role, &str)> {
    Role::ALL.into_iter().find_map(|r| {
        name.strip_prefix(r.prefix())
            .filter(|body| !body.is_empty())
            .map(|body| (r, body))
    })
}

/// Names among `existing` that carry one of our prefixes but belong to none of `desired`:
/// the devices a restarted daemon should remove. Returned in a safe deletion order: BVIs
/// (which take their veth peer along), stray ports, VXLAN devices, then bridges.
pub fn orphans<'a>(
    existing: impl IntoIterator<Item = &'a str>,
    desired: impl IntoIterator<Item = &'a Slug>,
) -> Vec<String> {
    let keep: std::collections::HashSet<String> = desired.into_iter().map(body).collect();
    let mut out: Vec<(usize, String)> = existing
        .into_iter()
        .filter_map(|n| {
            let (role, b) = parse_ifname(n)?;
            if keep.contains(b) {
                return None;
            }
            let rank = match role {
                Role::Bvi => 0,
                Role::BviPort => 1,
                Role::Vxlan => 2,
                Role::Bridge => 3,
            };
            Some((rank, n.to_string()))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, n)| n).collect()
}

/// Two slugs whose hashed device names coincide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("slugs {0:?} and {1:?} map to the same interface names")]
pub struct NameCollision(pub Slug, pub Slug);

/// Verify that no two distinct slugs of `slugs` share device names.
pub fn check_unique<'a>(slugs: impl IntoIterator<Item = &'a Slug>) -> Result<(), NameCollision> {
    let mut seen: std::collections::HashMap<String, &Slug> = std::collections::HashMap::new();
    for slug in slugs {
        if let Some(prev) = seen.insert(body(slug), slug)
            && prev != slug
        {
            return Err(NameCollision(prev.clone(), slug.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn slug(s: &str) -> Slug {
        Slug::new(s).unwrap()
    }

    #[test]
    fn slug_validation() {
        assert!(Slug::new("red").is_ok());
        assert!(Slug::new("0").is_ok());
        assert!(Slug::new("a-b-").is_ok());
        assert_eq!(Slug::new(""), Err(SlugError::Empty));
        assert!(matches!(Slug::new("-a"), Err(SlugError::BadChar(_))));
        assert!(matches!(Slug::new("Red"), Err(SlugError::BadChar(_))));
        assert!(matches!(Slug::new("a_b"), Err(SlugError::BadChar(_))));
        assert!(matches!(Slug::new("a.b"), Err(SlugError::BadChar(_))));
        assert!(matches!(Slug::new("a b"), Err(SlugError::BadChar(_))));
        assert!(Slug::new(&"a".repeat(32)).is_ok());
        assert!(matches!(
            Slug::new(&"a".repeat(33)),
            Err(SlugError::TooLong(_))
        ));
    }

    #[test]
    fn plain_form() {
        let n = slug("red").names();
        assert_eq!(n.bridge, "brg-red");
        assert_eq!(n.vxlan, "vxl-red");
        assert_eq!(n.port, "bvp-red");
        assert_eq!(n.bvi, "bvi-red");
        let n = slug("abcdefghijk").names();
        assert_eq!(n.bvi, "bvi-abcdefghijk");
        assert_eq!(n.bvi.len(), 15);
    }

    #[test]
    fn hashed_form_is_stable() {
        // Pinned: the scheme is part of the on-host state; changing it orphans devices.
        let n = slug("customer-blue-prod").names();
        let digest = Sha256::digest(b"customer-blue-prod");
        let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(n.bvi, format!("bvi-cu_{hex}"));
        assert_eq!(n.bvi.len(), 15);
        assert_eq!(n.bridge, format!("brg-cu_{hex}"));
        assert_eq!(slug("abcdefghijkl").names().bvi.len(), 15);
    }

    #[test]
    fn check_unique_reports_duplicates_only_for_distinct() {
        let a = slug("red");
        let b = slug("blue");
        assert!(check_unique([&a, &b, &a]).is_ok());
    }

    #[test]
    fn parse_and_orphans() {
        assert_eq!(parse_ifname("bvi-red"), Some((Role::Bvi, "red")));
        assert_eq!(
            parse_ifname("brg-cu_1a2b3c4d"),
            Some((Role::Bridge, "cu_1a2b3c4d"))
        );
        assert_eq!(parse_ifname("bvi-"), None);
        assert_eq!(parse_ifname("eth0"), None);
        let red = slug("red");
        let long = slug("customer-blue-prod");
        let existing = [
            "lo", "eth0", "brg-red", "vxl-red", "bvp-red", "bvi-red", "brg-old", "vxl-old",
            "bvp-old", "bvi-old",
        ];
        let long_names = long.names();
        let mut all: Vec<&str> = existing.to_vec();
        all.extend(long_names.all());
        assert_eq!(
            orphans(all.iter().copied(), [&red, &long]),
            ["bvi-old", "bvp-old", "vxl-old", "brg-old"]
        );
        assert_eq!(orphans(all.iter().copied(), [&red]).len(), 8);
    }

    fn arb_slug() -> impl Strategy<Value = Slug> {
        "[a-z0-9][a-z0-9-]{0,31}".prop_map(|s| Slug::new(&s).unwrap())
    }

    proptest! {
        #[test]
        fn names_are_valid(s in arb_slug()) {
            for role in Role::ALL {
                let n = ifname(&s, role);
                prop_assert!(is_valid_ifname(&n), "{n}");
                prop_assert!(n.len() <= IFNAME_MAX_LEN);
                prop_assert!(n.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_'));
            }
            let names = s.names();
            let all = names.all();
            for i in 0..4 { for j in 0..4 { if i != j { prop_assert_ne!(all[i], all[j]); } } }
        }

        #[test]
        fn distinct_slugs_distinct_names(a in arb_slug(), b in arb_slug()) {
            prop_assume!(a != b);
            // plain vs plain and plain vs hashed are collision-free by construction;
            // hashed vs hashed has a 2^-32 chance for a shared 2-byte head, never seen here.
            for role in Role::ALL {
                prop_assert_ne!(ifname(&a, role), ifname(&b, role));
            }
            prop_assert!(check_unique([&a, &b]).is_ok());
        }

        #[test]
        fn plain_names_never_have_underscore(s in "[a-z0-9][a-z0-9-]{0,10}") {
            let s = Slug::new(&s).unwrap();
            prop_assert_eq!(ifname(&s, Role::Bvi), format!("bvi-{s}"));
            prop_assert!(!ifname(&s, Role::Bvi).contains('_'));
        }

        #[test]
        fn hashed_names_always_have_underscore(s in "[a-z0-9][a-z0-9-]{11,31}") {
            let s = Slug::new(&s).unwrap();
            for role in Role::ALL {
                let n = ifname(&s, role);
                prop_assert_eq!(n.len(), IFNAME_MAX_LEN);
                prop_assert_eq!(n.as_bytes()[6], b'_');
            }
        }

        #[test]
        fn validation_matches_regex(s in "\\PC{0,40}") {
            let re_ok = !s.is_empty() && s.len() <= SLUG_MAX_LEN
                && s.as_bytes()[0].is_ascii_alphanumeric() && !s.as_bytes()[0].is_ascii_uppercase()
                && s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
            prop_assert_eq!(Slug::new(&s).is_ok(), re_ok);
        }
    }
}
