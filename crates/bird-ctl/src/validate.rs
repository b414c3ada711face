//! Validation of everything that reaches a BIRD snippet or command.
//!
//! Bounds:
//! * **Slug**: `[a-z0-9][a-z0-9_-]{0,9}` — at most [`SLUG_MAX`] = 10 characters, so that Linux
//!   interface names derived from it (`bvi-<slug>`, `br-<slug>`, `vx-<slug>`: ≤ 14) stay within
//!   the kernel's 15-character limit. BIRD names (`evpn_<slug>`, `bridge_<slug>`,
//!   `vppevpn_<slug>`, `ethtab_<slug>`) have no such limit; slugs containing `-` are rendered as
//!   single-quoted BIRD symbols (`'evpn_a-b'`).
//! * **Linux interface names**: 1–15 bytes of `[A-Za-z0-9_.-]`, not `.`/`..`.
//! * **VNI**: 1 ..= 2^24 − 1. **RD** and **route target**: the grammar shared by every program,
//!   [`evpn_model::rt`] (re-exported here); the IPv4 route-target form is not accepted by BIRD
//!   inside target sets.

pub use evpn_model::rt::{RouteDistinguisher, RouteTarget};
use evpn_model::validate::excerpt;

/// Maximum slug length.
pub const SLUG_MAX: usize = 10;
/// Maximum Linux interface name length.
pub const IFNAME_MAX: usize = 15;
/// Largest VNI.
pub const VNI_MAX: u32 = (1 << 24) - 1;

/// A refused input: which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ValidationError {
    /// The field name (e.g. `slug`, `rd`, `import_targets[1]`).
    pub field: String,
    /// Why it was refused.
    pub reason: String,
}

impl ValidationError {
    /// Builds an error.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Validates an eVPN slug.
pub fn slug(s: &str) -> Result<(), ValidationError> {
    let f = |r: String| Err(ValidationError::new("slug", r));
    if s.is_empty() {
        return f("must not be empty".into());
    }
    if s.len() > SLUG_MAX {
        return f(format!(
            "{} is longer than {SLUG_MAX} characters",
            excerpt(s)
        ));
    }
    let b = s.as_bytes();
    if !(b[0].is_ascii_lowercase() || b[0].is_ascii_digit()) {
        return f(format!(
            "{} must start with a lower-case letter or digit",
            excerpt(s)
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return f(format!(
            "{} contains {c:?}; allowed are a-z, 0-9, '_' and '-'",
            excerpt(s)
        ));
    }
    Ok(())
}

/// Validates a Linux interface name (as used in `bridge device "…"` / `tunnel device "…"`).
pub fn ifname(field: &str, s: &str) -> Result<(), ValidationError> {
    let f = |r: String| Err(ValidationError::new(field, r));
    if s.is_empty() || s.len() > IFNAME_MAX {
        return f(format!(
            "{} must be 1 to {IFNAME_MAX} characters",
            excerpt(s)
        ));
    }
    if s == "." || s == ".." {
        return f(format!("{} is not a valid interface name", excerpt(s)));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return f(format!(
            "{} contains {c:?}; allowed are A-Z, a-z, 0-9, '_', '-', '.'",
            excerpt(s)
        ));
    }
    Ok(())
}

/// Validates a BIRD symbol name made of `[A-Za-z_][A-Za-z0-9_-]*` and returns it in the form
/// to write in config or CLI: bare, or single-quoted when it contains `-`.
pub fn symbol(field: &str, s: &str) -> Result<String, ValidationError> {
    let f = |r: String| Err(ValidationError::new(field, r));
    if s.is_empty() || s.len() > 64 {
        return f(format!("{} must be 1 to 64 characters", excerpt(s)));
    }
    let b = s.as_bytes();
    if !(b[0].is_ascii_alphabetic() || b[0] == b'_') {
        return f(format!("{} must start with a letter or '_'", excerpt(s)));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return f(format!("{} contains {c:?}", excerpt(s)));
    }
    Ok(if s.contains('-') {
        format!("'{s}'")
    } else {
        s.to_string()
    })
}

/// Validates a table name for `show route table`.
pub fn table_name(s: &str) -> Result<String, ValidationError> {
    symbol("table", s)
}

/// Validates a MAC address (`aa:bb:cc:dd:ee:ff`) and returns it lower-cased.
pub fn mac(s: &str) -> Result<String, ValidationError> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return Err(ValidationError::new(
            "mac",
            format!("{} is not of the form aa:bb:cc:dd:ee:ff", excerpt(s)),
        ));
    }
    Ok(s.to_ascii_lowercase())
}

/// Validates a VNI.
pub fn vni(v: u32) -> Result<(), ValidationError> {
    if v == 0 || v > VNI_MAX {
        return Err(ValidationError::new(
            "vni",
            format!("{v} is outside 1..={VNI_MAX}"),
        ));
    }
    Ok(())
}

impl From<evpn_model::Error> for ValidationError {
    fn from(e: evpn_model::Error) -> Self {
        match e {
            evpn_model::Error::InvalidArgument { field, reason } => Self { field, reason },
            other => Self::new("value", other.to_string()),
        }
    }
}

/// The BIRD literal of a route target, e.g. `(rt, 65000, 100)`.
pub trait ToBird {
    /// The BIRD literal.
    fn to_bird(&self) -> String;
}

impl ToBird for RouteTarget {
    fn to_bird(&self) -> String {
        match self {
            Self::As2(a, n) => format!("(rt, {a}, {n})"),
            Self::As4(a, n) => format!("(rt, {a}, {n})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["a", "0", "test", "a-b_c", "abcdefghij"] {
            slug(ok).unwrap();
        }
        for bad in [
            "",
            "A",
            "-a",
            "_a",
            "abcdefghijk",
            "a b",
            "a\"b",
            "a;b",
            "a}",
            "é",
        ] {
            let e = slug(bad).unwrap_err();
            assert_eq!(e.field, "slug");
        }
    }

    #[test]
    fn ifnames() {
        ifname("bridge_device", "br-test").unwrap();
        ifname("bridge_device", "vxlan.100").unwrap();
        assert!(ifname("x", "abcdefghijklmnop").is_err());
        assert!(ifname("x", "a\"b").is_err());
        assert!(ifname("x", "a/b").is_err());
        assert!(ifname("x", "..").is_err());
    }

    /// Parsing is evpn-model's (tested there); this is the BIRD rendering.
    #[test]
    fn rts_render_for_bird() {
        assert_eq!(
            RouteTarget::parse("rt", "rt:65000:100").unwrap().to_bird(),
            "(rt, 65000, 100)"
        );
        assert!(RouteTarget::parse("rt", "10.0.0.1:5").is_err());
        vni(1).unwrap();
        vni(VNI_MAX).unwrap();
        assert!(vni(0).is_err());
        assert!(vni(VNI_MAX + 1).is_err());
    }

    #[test]
    fn symbols_and_macs() {
        assert_eq!(symbol("t", "ethtab_a").unwrap(), "ethtab_a");
        assert_eq!(symbol("t", "ethtab_a-b").unwrap(), "'ethtab_a-b'");
        assert!(symbol("t", "a'b").is_err());
        assert!(symbol("t", "1a").is_err());
        assert_eq!(mac("AA:bb:cc:dd:ee:0F").unwrap(), "aa:bb:cc:dd:ee:0f");
        assert!(mac("aa:bb:cc:dd:ee").is_err());
        assert!(mac("aa:bb:cc:dd:ee:fg").is_err());
    }
}
