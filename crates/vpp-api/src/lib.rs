//! Client for VPP's binary API over its unix stream socket.
//!
//! * [`wire`]: frame header, big-endian integers, little-endian `f64`,
//!   17-byte `address`, 18-byte `prefix`, MAC, fixed and variable strings.
//! * [`msgs`]: one typed struct per message with its `name_crc` (sans-IO).
//! * [`table`]: VPP's `name_crc` → id table from the handshake.
//! * [`client`]: async tokio client (request/reply, dumps, cursor gets,
//!   events, timeouts, reconnect) and the typed operations in `ops`.
//! * [`error`]: the client's [`VppError`] type.
//! * [`retval`]: VPP's error codes: names, meanings, classes (one table).

#![warn(missing_docs)]

pub mod client;
pub mod error;
pub mod msgs;
mod ops;
pub mod retval;
pub mod table;
pub mod wire;

pub use client::{Client, ClientConfig, ClientEvent, VersionInfo};
pub use error::{DecodeError, NameCrc, VppError};
pub use ops::{
    BridgeDomainConfig, InterfaceFilter, L2PortType, L2fibEntry, LcpPairConfig, LcpPairCreated,
    Neighbor, SwIfIndex, VxlanTunnel,
};
pub use retval::{RetvalClass, RetvalInfo, retval_class, retval_info, retval_name, rv};
pub use table::MsgTable;
pub use wire::{MacAddress, Prefix};

#[cfg(test)]
mod tests {
    /// The client is shared by a daemon's tasks.
    #[test]
    fn client_is_clone_send_sync() {
        fn check<T: Clone + Send + Sync + 'static>() {}
        check::<crate::Client>();
    }
}
