//! Error types: decoding failures and client-level errors, with VPP's
//! `vnet_api_error` names for retvals.

use std::fmt;

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

/// Name of a VPP `vnet_api_error` code (`src/vnet/error.h`), e.g. `-2` →
/// `INVALID_SW_IF_INDEX`. Unknown codes give `None`.
pub fn retval_name(retval: i32) -> Option<&'static str> {
    Some(match retval {
        0 => "OK",
        -1 => "UNSPECIFIED",
        -2 => "INVALID_SW_IF_INDEX",
        -3 => "NO_SUCH_FIB",
        -4 => "NO_SUCH_INNER_FIB",
        -5 => "NO_SUCH_LABEL",
        -6 => "NO_SUCH_ENTRY",
        -7 => "INVALID_VALUE",
        -8 => "INVALID_VALUE_2",
        -9 => "UNIMPLEMENTED",
        -10 => "INVALID_SW_IF_INDEX_2",
        -11 => "SYSCALL_ERROR_1",
        -12 => "SYSCALL_ERROR_2",
        -13 => "SYSCALL_ERROR_3",
        -14 => "SYSCALL_ERROR_4",
        -15 => "SYSCALL_ERROR_5",
        -16 => "SYSCALL_ERROR_6",
        -17 => "SYSCALL_ERROR_7",
        -18 => "SYSCALL_ERROR_8",
        -19 => "SYSCALL_ERROR_9",
        -20 => "SYSCALL_ERROR_10",
        -30 => "FEATURE_DISABLED",
        -31 => "INVALID_REGISTRATION",
        -50 => "NEXT_HOP_NOT_IN_FIB",
        -51 => "UNKNOWN_DESTINATION",
        -54 => "NO_MATCHING_INTERFACE",
        -55 => "INVALID_VLAN",
        -56 => "VLAN_ALREADY_EXISTS",
        -57 => "INVALID_SRC_ADDRESS",
        -58 => "INVALID_DST_ADDRESS",
        -59 => "ADDRESS_LENGTH_MISMATCH",
        -60 => "ADDRESS_NOT_FOUND_FOR_INTERFACE",
        -61 => "ADDRESS_NOT_DELETABLE",
        -62 => "IP6_NOT_ENABLED",
        -63 => "NO_SUCH_NODE",
        -65 => "NO_SUCH_TABLE",
        -71 => "INVALID_INTERFACE",
        -73 => "INVALID_ARGUMENT",
        -74 => "UNEXPECTED_INTF_STATE",
        -75 => "TUNNEL_EXIST",
        -76 => "INVALID_DECAP_NEXT",
        -77 => "RESPONSE_NOT_READY",
        -78 => "NOT_CONNECTED",
        -79 => "IF_ALREADY_EXISTS",
        -81 => "VALUE_EXIST",
        -82 => "SAME_SRC_DST",
        -88 => "IP_PREFIX_INVALID",
        -97 => "INVALID_ADDRESS_FAMILY",
        -105 => "ADDRESS_IN_USE",
        -106 => "ADDRESS_NOT_IN_USE",
        -107 => "QUEUE_FULL",
        -114 => "ADDRESS_FOUND_FOR_INTERFACE",
        -116 => "ENTRY_ALREADY_EXISTS",
        -119 => "BD_ALREADY_EXISTS",
        -120 => "BD_IN_USE",
        -121 => "BD_NOT_MODIFIABLE",
        -122 => "BD_ID_EXCEED_MAX",
        -123 => "SUBIF_DOESNT_EXIST",
        -126 => "UNSUPPORTED",
        -127 => "DUPLICATE_IF_ADDRESS",
        -133 => "ILLEGAL_NAME",
        -144 => "INIT_FAILED",
        -145 => "NETLINK_ERROR",
        -147 => "INSTANCE_IN_USE",
        -151 => "NON_ETHERNET",
        -152 => "BD_ALREADY_HAS_BVI",
        -155 => "RSRC_IN_USE",
        -160 => "NO_CHANGE",
        -162 => "LIMIT_EXCEEDED",
        -165 => "EAGAIN",
        -166 => "INVALID_VALUE_4",
        -167 => "BUSY",
        -168 => "BUG",
        -169 => "FEATURE_ALREADY_DISABLED",
        -170 => "FEATURE_ALREADY_ENABLED",
        -171 => "INVALID_PREFIX_LENGTH",
        _ => return None,
    })
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
