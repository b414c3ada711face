//! Error types: decoding failures and client-level errors, with VPP's
//! `vnet_api_error` names for retvals.

use std::fmt;

use crate::retval::{RetvalClass, retval_info, retval_name};

/// Why a body could not be decoded. Decoders return this instead of panicking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body ended before the layout did.
    #[error("message too short: need {need} bytes, have {have}")]
    Short {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// An `address_family` byte other than 0 (IPv4) or 1 (IPv6).
    #[error("invalid address family {0}")]
    AddressFamily(u8),
    /// A frame announced a body longer than the codec accepts.
    #[error("frame body of {0} bytes exceeds the limit")]
    TooLong(usize),
    /// A frame carried a message id other than the one expected.
    #[error("unexpected message id {got} (expected {expected})")]
    UnexpectedId {
        /// Id found.
        got: u16,
        /// Id expected.
        expected: u16,
    },
    /// A count field announced more elements than could possibly fit.
    #[error("element count {0} exceeds the body")]
    Count(usize),
}

/// A `name_crc` string such as `lcp_itf_pair_add_del_v3_40482b80`, displayed
/// as "`lcp_itf_pair_add_del_v3` (CRC 0x40482b80)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCrc(pub String);

impl NameCrc {
    /// The message name without the CRC suffix.
    pub fn name(&self) -> &str {
        self.0.rsplit_once('_').map_or(self.0.as_str(), |(n, _)| n)
    }
    /// The CRC suffix (8 hex digits).
    pub fn crc(&self) -> &str {
        self.0.rsplit_once('_').map_or("", |(_, c)| c)
    }
}

impl fmt::Display for NameCrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (CRC 0x{})", self.name(), self.crc())
    }
}

/// Errors returned by the client.
#[derive(Debug, thiserror::Error)]
pub enum VppError {
    /// VPP answered with a negative `retval`.
    #[error("{msg}: VPP returned {retval} ({name})")]
    Retval {
        /// The request's message name.
        msg: &'static str,
        /// The raw retval.
        retval: i32,
        /// VPP's name for it (`vnet_api_error`), or `UNKNOWN`.
        name: &'static str,
    },
    /// No answer arrived in time. VPP silently drops malformed and unknown
    /// messages, so this is also how such messages surface.
    #[error("{msg}: no reply from VPP within the timeout")]
    Timeout {
        /// The request's message name.
        msg: &'static str,
    },
    /// VPP's message table lacks a message we need: its plugin is not loaded
    /// or the VPP version has a different (incompatible) definition.
    #[error(
        "VPP does not know message {name_crc}: plugin not loaded or incompatible VPP version{}",
        found.as_ref().map(|f| format!(" (VPP has {f})")).unwrap_or_default()
    )]
    MissingMessage {
        /// The `name_crc` we expected.
        name_crc: NameCrc,
        /// A same-named message with another CRC found in VPP's table, if any.
        found: Option<String>,
    },
    /// The connection is closed (VPP went away, or `disconnect` was called).
    #[error("not connected to VPP")]
    Disconnected,
    /// A frame could not be decoded.
    #[error("{msg}: cannot decode reply: {source}")]
    Decode {
        /// The message being decoded.
        msg: &'static str,
        /// The decoding failure.
        #[source]
        source: DecodeError,
    },
    /// The handshake failed (`sockclnt_create_reply.response` non-zero or bad reply).
    #[error("handshake with VPP failed: {0}")]
    Handshake(String),
    /// A caller-supplied value cannot be encoded (e.g. a name too long).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Socket I/O error.
    #[error("VPP socket I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl VppError {
    /// Builds a [`VppError::Retval`] with VPP's error name.
    pub fn retval(msg: &'static str, retval: i32) -> Self {
        VppError::Retval {
            msg,
            retval,
            name: retval_name(retval).unwrap_or("UNKNOWN"),
        }
    }
    /// What the retval of a [`VppError::Retval`] means (operator wording),
    /// and its class; `None` for other errors and unknown retvals.
    pub fn retval_meaning(&self) -> Option<(&'static str, RetvalClass)> {
        let r = retval_info(self.retval_code()?)?;
        Some((r.meaning, r.class))
    }
    /// The raw retval if this is a [`VppError::Retval`].
    pub fn retval_code(&self) -> Option<i32> {
        match self {
            VppError::Retval { retval, .. } => Some(*retval),
            _ => None,
        }
    }
}

/// Result alias for client operations.
pub type Result<T, E = VppError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_message_names_message_and_crc() {
        let e = VppError::MissingMessage {
            name_crc: NameCrc("lcp_itf_pair_add_del_v3_40482b80".into()),
            found: None,
        };
        let s = e.to_string();
        assert!(s.contains("lcp_itf_pair_add_del_v3"), "{s}");
        assert!(s.contains("40482b80"), "{s}");
    }

    #[test]
    fn retval_has_name() {
        let e = VppError::retval("delete_loopback", -2);
        assert_eq!(
            e.to_string(),
            "delete_loopback: VPP returned -2 (INVALID_SW_IF_INDEX)"
        );
        assert_eq!(retval_name(-165), Some("EAGAIN"));
    }
}
