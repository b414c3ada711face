//! Typed errors: every error names the operation and the interface (or object) it was about.

use std::fmt;
use std::io;

/// The operation that failed; part of every [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Look a link up by name or index.
    GetLink,
    /// Dump all links.
    ListLinks,
    /// Create a bridge.
    CreateBridge,
    /// Create a VXLAN device.
    CreateVxlan,
    /// Create a veth pair.
    CreateVeth,
    /// Delete a link.
    DeleteLink,
    /// Enslave a link to a bridge (or release it).
    SetMaster,
    /// Set bridge-port options (learning, neigh_suppress).
    SetBridgePort,
    /// Change a link's MAC address.
    SetMac,
    /// Change a link's MTU.
    SetMtu,
    /// Set a link administratively up.
    SetUp,
    /// Set a link administratively down.
    SetDown,
    /// Set the IPv6 address generation mode.
    SetAddrGenMode,
    /// Write a per-interface IPv6 sysctl (`accept_dad`).
    SetSysctl,
    /// Read a per-interface IPv6 sysctl.
    GetSysctl,
    /// Add an IP address.
    AddAddress,
    /// Delete an IP address.
    DeleteAddress,
    /// Dump IP addresses.
    ListAddresses,
    /// Dump the bridge FDB.
    ListFdb,
    /// Add a bridge FDB entry.
    AddFdb,
    /// Delete a bridge FDB entry.
    DeleteFdb,
    /// Open the netlink connection or a raw socket.
    Open,
    /// Send a gratuitous ARP.
    SendGarp,
    /// Send an unsolicited neighbour advertisement.
    SendNa,
    /// Receive a frame on a capture socket.
    Capture,
    /// Set a link's alias (`IFLA_IFALIAS`).
    SetAlias,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Op::GetLink => "get link",
            Op::SetAlias => "set alias",
            Op::ListLinks => "list links",
            Op::CreateBridge => "create bridge",
            Op::CreateVxlan => "create vxlan",
            Op::CreateVeth => "create veth",
            Op::DeleteLink => "delete link",
            Op::SetMaster => "set master",
            Op::SetBridgePort => "set bridge port options",
            Op::SetMac => "set mac",
            Op::SetMtu => "set mtu",
            Op::SetUp => "set up",
            Op::SetDown => "set down",
            Op::SetAddrGenMode => "set addrgenmode",
            Op::SetSysctl => "write sysctl",
            Op::GetSysctl => "read sysctl",
            Op::AddAddress => "add address",
            Op::DeleteAddress => "delete address",
            Op::ListAddresses => "list addresses",
            Op::ListFdb => "list fdb",
            Op::AddFdb => "add fdb entry",
            Op::DeleteFdb => "delete fdb entry",
            Op::Open => "open socket",
            Op::SendGarp => "send gratuitous arp",
            Op::SendNa => "send unsolicited na",
            Op::Capture => "capture",
        };
        f.write_str(s)
    }
}

/// Errors of this crate.
///
/// [`Error::Exists`] and [`Error::NotFound`] are separate variants so that callers can be
/// idempotent (`is_exists()` / `is_not_found()`); everything else carries the OS error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object already exists (EEXIST).
    #[error("{op} {target}: already exists")]
    Exists {
        /// Failed operation.
        op: Op,
        /// Interface (and object) concerned, e.g. `bvi-red` or `bvi-red 10.0.0.1/24`.
        target: String,
    },
    /// The object (link, address, FDB entry) does not exist (ENODEV, ENOENT, EADDRNOTAVAIL
    /// on delete).
    #[error("{op} {target}: not found")]
    NotFound {
        /// Failed operation.
        op: Op,
        /// Interface (and object) concerned.
        target: String,
    },
    /// The kernel (netlink, a socket or a sysctl) refused with an OS error.
    #[error("{op} {target}: {source}")]
    Os {
        /// Failed operation.
        op: Op,
        /// Interface (and object) concerned.
        target: String,
        /// The OS error (errno).
        #[source]
        source: io::Error,
    },
    /// A netlink protocol problem that carries no errno (unexpected or undecodable reply).
    #[error("{op} {target}: netlink: {detail}")]
    Netlink {
        /// Failed operation.
        op: Op,
        /// Interface (and object) concerned.
        target: String,
        /// Description from the netlink library.
        detail: String,
    },
    /// The kernel has an object under one of our names that is not what we would create
    /// (e.g. a `bvi-<slug>` that is not a veth); we refuse to touch it.
    #[error("{target}: conflicting kernel object: {detail}")]
    Conflict {
        /// Interface concerned.
        target: String,
        /// What is wrong.
        detail: String,
    },
    /// A slug is not valid (see [`crate::names`]).
    #[error(transparent)]
    InvalidSlug(#[from] crate::names::SlugError),
}

impl Error {
    /// True for [`Error::Exists`].
    pub fn is_exists(&self) -> bool {
        matches!(self, Error::Exists { .. })
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// The operation, when the error has one.
    pub fn op(&self) -> Option<Op> {
        match self {
            Error::Exists { op, .. }
            | Error::NotFound { op, .. }
            | Error::Os { op, .. }
            | Error::Netlink { op, .. } => Some(*op),
            Error::Conflict { .. } | Error::InvalidSlug(_) => None,
        }
    }

    /// Build an error from an errno, mapping EEXIST and the "missing" errnos.
    pub(crate) fn from_errno(op: Op, target: impl Into<String>, errno: i32) -> Error {
        let target = target.into();
        match errno {
            libc::EEXIST => Error::Exists { op, target },
            libc::ENODEV | libc::ENOENT => Error::NotFound { op, target },
            libc::EADDRNOTAVAIL if op == Op::DeleteAddress => Error::NotFound { op, target },
            _ => Error::Os {
                op,
                target,
                source: io::Error::from_raw_os_error(errno),
            },
        }
    }

    /// Build an error from an `io::Error` (raw sockets, sysctl files).
    pub(crate) fn from_io(op: Op, target: impl Into<String>, e: io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENODEV) => Error::NotFound {
                op,
                target: target.into(),
            },
            _ => Error::Os {
                op,
                target: target.into(),
                source: e,
            },
        }
    }

    /// Build an error from an rtnetlink error.
    pub(crate) fn from_rtnl(op: Op, target: impl Into<String>, e: rtnetlink::Error) -> Error {
        match e {
            rtnetlink::Error::NetlinkError(msg) => match msg.code {
                Some(code) => Error::from_errno(op, target, -code.get()),
                None => Error::Netlink {
                    op,
                    target: target.into(),
                    detail: "ack without error code reported as error".into(),
                },
            },
            other => Error::Netlink {
                op,
                target: target.into(),
                detail: other.to_string(),
            },
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping() {
        assert!(Error::from_errno(Op::CreateBridge, "brg-a", libc::EEXIST).is_exists());
        assert!(Error::from_errno(Op::DeleteLink, "brg-a", libc::ENODEV).is_not_found());
        assert!(Error::from_errno(Op::DeleteFdb, "bvp-a", libc::ENOENT).is_not_found());
        assert!(Error::from_errno(Op::DeleteAddress, "bvi-a", libc::EADDRNOTAVAIL).is_not_found());
        let e = Error::from_errno(Op::AddAddress, "bvi-a 10.0.0.1/24", libc::EADDRNOTAVAIL);
        assert!(!e.is_not_found());
        assert_eq!(e.op(), Some(Op::AddAddress));
        let s = Error::from_errno(Op::SetMtu, "bvi-a", libc::EINVAL).to_string();
        assert!(s.starts_with("set mtu bvi-a: "), "{s}");
    }
}
