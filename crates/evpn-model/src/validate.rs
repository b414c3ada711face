//! Validation of every identifier and number an API caller or a config file
//! can send. Errors are [`Error::InvalidArgument`] naming the field.
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
/// Longest `version` an instance may register with.
pub const VERSION_MAX_LEN: usize = 64;
/// Longest `grpc_address` (`host:port`: a 253-byte DNS name, or a
/// bracketed IPv6 address, plus `:` and a 5-digit port).
pub const GRPC_ADDRESS_MAX_LEN: usize = 261;
/// Most route targets in one import or export list.
pub const ROUTE_TARGETS_MAX: usize = 64;
/// Most gateway addresses on one GroupBVI / in one bind.
pub const BVI_ADDRESSES_MAX: usize = 32;
/// Largest gRPC request either daemon decodes (`OUT_OF_RANGE` above it).
/// Large enough that an oversized single field still gets a precise
/// `INVALID_ARGUMENT` naming it, three orders of magnitude above any valid
/// request.
pub const REQUEST_MAX_BYTES: usize = 2 * 1024 * 1024;
/// Characters of bad input an error message quotes (see [`excerpt`]).
pub const EXCERPT_CHARS: usize = 32;
/// Longest error message sent to a client; anything longer is cut (the
/// `tonic::Status` conversion enforces it, whatever built the message).
pub const ERROR_MAX_LEN: usize = 1024;

/// Untrusted input as an error message quotes it: Debug-quoted, at most
/// [`EXCERPT_CHARS`] characters, and when cut, followed by `…` and the
/// input's length. Every error that quotes input uses this.
pub fn excerpt(s: &str) -> String {
    let mut it = s.chars();
    let head: String = it.by_ref().take(EXCERPT_CHARS).collect();
    if it.next().is_some() {
        format!("{head:?}… ({} bytes)", s.len())
    } else {
        format!("{head:?}")
    }
}

/// `s` cut to at most `max` bytes on a character boundary, with `…` when
/// cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let ell = "…";
    let mut end = max.saturating_sub(ell.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ell}", &s[..end])
}

/// A free-text field (e.g. a `version`): at most `max` bytes of printable
/// ASCII (no control characters, which would forge log lines).
pub fn validate_text(field: &str, s: &str, max: usize) -> Result<(), Error> {
    if s.len() > max {
        return Err(Error::invalid(
            field,
            format!(
                "{} is {} bytes long; at most {max} are allowed",
                excerpt(s),
                s.len()
            ),
        ));
    }
    if let Some(c) = s.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(Error::invalid(
            field,
            format!(
                "{} contains {c:?}; only printable ASCII is allowed",
                excerpt(s)
            ),
        ));
    }
    Ok(())
}

/// A list field: at most `max` entries.
pub fn validate_count(field: &str, n: usize, max: usize) -> Result<(), Error> {
    if n > max {
        return Err(Error::invalid(
            field,
            format!("{n} entries; at most {max} are allowed"),
        ));
    }
    Ok(())
}

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
                "{} is {} bytes long; at most {SLUG_MAX_LEN} are allowed",
                excerpt(s),
                s.len()
            ),
        ));
    }
    let b = s.as_bytes();
    if !b[0].is_ascii_lowercase() {
        return Err(Error::invalid(
            field,
            format!("{} must start with a lower-case letter", excerpt(s)),
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(Error::invalid(
            field,
            format!(
                "{} contains {c:?}; only a-z, 0-9 and '-' are allowed",
                excerpt(s)
            ),
        ));
    }
    if s.ends_with('-') {
        return Err(Error::invalid(
            field,
            format!("{} must not end with '-'", excerpt(s)),
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
            format!(
                "{} contains {c:?}; only a-z, 0-9 and '-' are allowed",
                excerpt(s)
            ),
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(Error::invalid(
            field,
            format!("{} must not start or end with '-'", excerpt(s)),
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
