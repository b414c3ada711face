//! Typed messages: one struct per VPP message with its `name_crc`, and
//! sans-IO `encode`/`decode` (no tokio here).
//!
//! Layouts follow VPP 25.10 (identical in 26.06 and master). Every struct
//! holds only the payload; the leading header fields (message id,
//! `client_index`, `context`) are handled by [`encode_msg`] / [`decode_msg`]
//! according to the message's [`Shape`].

use crate::error::DecodeError;
use crate::wire::{Codec, FixedStr, Reader};

/// `sw_if_index` value meaning "none" / "all" (`~0`).
pub const SW_IF_INDEX_NONE: u32 = u32::MAX;
/// `if_status_flags`: administratively up.
pub const IF_STATUS_ADMIN_UP: u32 = 1;
/// `if_status_flags`: link up.
pub const IF_STATUS_LINK_UP: u32 = 2;
/// `l2_port_type`: normal bridge port.
pub const L2_PORT_NORMAL: u32 = 0;
/// `l2_port_type`: bridge virtual interface.
pub const L2_PORT_BVI: u32 = 1;
/// `l2_port_type`: unknown-unicast forwarder.
pub const L2_PORT_UU_FWD: u32 = 2;
/// `ip_neighbor_flags`: static entry.
pub const IP_NEIGHBOR_FLAG_STATIC: u8 = 1;
/// `ip_neighbor_flags`: do not install a /32 (/128) FIB entry.
pub const IP_NEIGHBOR_FLAG_NO_FIB_ENTRY: u8 = 2;
/// `lcp_itf_host_type`: TAP (ethernet) host interface.
pub const LCP_HOST_TAP: u8 = 0;
/// `lcp_itf_host_type`: TUN (point-to-point) host interface.
pub const LCP_HOST_TUN: u8 = 1;
/// Hard-coded id of `sockclnt_create` (memclnt, known before the table).
pub const SOCKCLNT_CREATE_ID: u16 = 15;
/// Hard-coded id of `sockclnt_create_reply`.
pub const SOCKCLNT_CREATE_REPLY_ID: u16 = 16;

/// Which header fields lead the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `u16 id, u32 client_index, u32 context` (requests; also `sockclnt_create_reply`).
    Request,
    /// `u16 id, u32 context` (replies and details; also `sockclnt_create`).
    Reply,
    /// `u16 id, u32 client_index` (events; no context).
    Event,
}

impl Shape {
    /// Header length in bytes.
    pub const fn header_len(self) -> usize {
        match self {
            Shape::Request => 10,
            Shape::Reply | Shape::Event => 6,
        }
    }
}

/// Decoded header fields. Fields absent from a shape are 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// Message id (body bytes 0..2).
    pub msg_id: u16,
    /// `client_index` (requests and events).
    pub client_index: u32,
    /// `context` (requests and replies).
    pub context: u32,
}

/// A VPP API message.
pub trait Message: Sized + Clone + std::fmt::Debug {
    /// Message name, e.g. `create_loopback_instance`.
    const NAME: &'static str;
    /// `name_crc` as it appears in VPP's message table.
    const NAME_CRC: &'static str;
    /// Header shape.
    const SHAPE: Shape;
    /// Minimum body length (header + fixed-size payload; variable parts empty).
    const MIN_LEN: usize;
    /// Appends the payload (everything after the header).
    fn encode_payload(&self, out: &mut Vec<u8>);
    /// Decodes the payload from a reader positioned after the header.
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// A reply whose first field is `i32 retval`.
pub trait Reply: Message {
    /// VPP's result code (0 = ok).
    fn retval(&self) -> i32;
    /// A reply carrying only `retval` (other fields zero or `~0` where VPP
    /// uses that on failure). Used by the simulator for injected errors.
    fn with_retval(retval: i32) -> Self;
}

/// A request answered by a single reply.
pub trait Request: Message {
    /// The reply type.
    type Reply: Reply;
}

/// A dump request answered by a stream of details ended by `control_ping_reply`.
pub trait Dump: Message {
    /// The details type.
    type Details: Message;
}

/// Encodes a complete body (header + payload).
pub fn encode_msg<M: Message>(m: &M, msg_id: u16, client_index: u32, context: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(M::MIN_LEN + 16);
    out.extend_from_slice(&msg_id.to_be_bytes());
    match M::SHAPE {
        Shape::Request => {
            out.extend_from_slice(&client_index.to_be_bytes());
            out.extend_from_slice(&context.to_be_bytes());
        }
        Shape::Reply => out.extend_from_slice(&context.to_be_bytes()),
        Shape::Event => out.extend_from_slice(&client_index.to_be_bytes()),
    }
    m.encode_payload(&mut out);
    out
}

/// Decodes a complete body. Trailing bytes are accepted (as VPP does);
/// missing bytes give [`DecodeError::Short`]. Never panics.
pub fn decode_msg<M: Message>(body: &[u8]) -> Result<(Header, M), DecodeError> {
    let mut r = Reader::new(body);
    let mut h = Header {
        msg_id: r.u16()?,
        ..Header::default()
    };
    match M::SHAPE {
        Shape::Request => {
            h.client_index = r.u32()?;
            h.context = r.u32()?;
        }
        Shape::Reply => h.context = r.u32()?,
        Shape::Event => h.client_index = r.u32()?,
    }
    let m = M::decode_payload(&mut r)?;
    Ok((h, m))
}

/// Message id of a body (bytes 0..2), if present.
pub fn body_msg_id(body: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*body.first()?, *body.get(1)?]))
}

/// Context of a reply/details body (bytes 2..6), if present.
pub fn reply_context(body: &[u8]) -> Option<u32> {
    let b = body.get(2..6)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// `(client_index, context)` of a request body (bytes 2..10), if present.
pub fn request_header(body: &[u8]) -> Option<(u32, u32)> {
    let b = body.get(2..10)?;
    Some((
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    ))
}

macro_rules! wire_ty {
    ($t:ty) => {
        $t
    };
    ($t:ty, $w:ty) => {
        $w
    };
}

macro_rules! message {
    (
        $(#[$m:meta])*
        $shape:ident $name:ident = $wire:literal, $crc:literal {
            $( $(#[$fm:meta])* $f:ident : $t:ty $(as $w:ty)? ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[$fm])* pub $f: $t, )*
        }

        impl Message for $name {
            const NAME: &'static str = $wire;
            const NAME_CRC: &'static str = concat!($wire, "_", $crc);
            const SHAPE: Shape = Shape::$shape;
            const MIN_LEN: usize =
                Shape::$shape.header_len() $( + <wire_ty!($t $(, $w)?) as Codec<$t>>::MIN )*;
            #[allow(unused_variables)]
            fn encode_payload(&self, out: &mut Vec<u8>) {
                $( <wire_ty!($t $(, $w)?) as Codec<$t>>::put(&self.$f, out); )*
            }
            #[allow(unused_variables)]
            fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self { $( $f: <wire_ty!($t $(, $w)?) as Codec<$t>>::get(r)?, )* })
            }
        }
    };
}

/// Declares a reply type whose payload is only `i32 retval` (CRC e8d4e804).
macro_rules! autoreply {
    ($( $(#[$m:meta])* $name:ident = $wire:literal ;)*) => {
        $(
            message! {
                $(#[$m])*
                Reply $name = $wire, "e8d4e804" {
                    /// VPP's result code (0 = ok).
                    retval: i32,
                }
            }
            impl Reply for $name {
                fn retval(&self) -> i32 { self.retval }
                fn with_retval(retval: i32) -> Self { Self { retval } }
            }
        )*
    };
}

/// Implements [`Reply`] for types whose first field is `retval`; the listed
/// fields are set to the given value in [`Reply::with_retval`].
macro_rules! impl_reply {
    ($name:ident { $($f:ident : $v:expr),* $(,)? }) => {
        impl Reply for $name {
            fn retval(&self) -> i32 { self.retval }
            fn with_retval(retval: i32) -> Self { Self { retval, $($f: $v),* } }
        }
    };
}

macro_rules! pairs {
    ($( $req:ident => $rep:ident ),* $(,)?) => {
        $( impl Request for $req { type Reply = $rep; } )*
    };
}

macro_rules! dumps {
    ($( $req:ident => $det:ident ),* $(,)?) => {
        $( impl Dump for $req { type Details = $det; } )*
    };
}

mod interface;
mod l2;

pub use interface::*;
pub use l2::*;

// ---------------------------------------------------------------- memclnt / vpe

/// `sockclnt_create` (hard-coded id 15): `u16 id, u32 context, string name[64]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SockclntCreate {
    /// Client name (at most 63 bytes are sent).
    pub name: String,
}

impl Message for SockclntCreate {
    const NAME: &'static str = "sockclnt_create";
    const NAME_CRC: &'static str = "sockclnt_create_455fb9c4";
    const SHAPE: Shape = Shape::Reply;
    const MIN_LEN: usize = 70;
    fn encode_payload(&self, out: &mut Vec<u8>) {
        <FixedStr<64> as Codec<String>>::put(&self.name, out);
    }
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            name: <FixedStr<64> as Codec<String>>::get(r)?,
        })
    }
}

/// `sockclnt_create_reply` (hard-coded id 16): `u16 id, u32 client_index (0),
/// u32 context, i32 response, u32 index, u16 count, count × {u16 id, string[64]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct SockclntCreateReply {
    /// 0 = success.
    pub response: i32,
    /// The client handle to put into every later request's `client_index`.
    pub index: u32,
    /// `(message id, name_crc)` for every message VPP knows.
    pub message_table: Vec<(u16, String)>,
}

impl Message for SockclntCreateReply {
    const NAME: &'static str = "sockclnt_create_reply";
    const NAME_CRC: &'static str = "sockclnt_create_reply_35166268";
    const SHAPE: Shape = Shape::Request;
    const MIN_LEN: usize = 20;
    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.response.to_be_bytes());
        out.extend_from_slice(&self.index.to_be_bytes());
        let n = u16::try_from(self.message_table.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        for (id, name) in self.message_table.iter().take(usize::from(n)) {
            out.extend_from_slice(&id.to_be_bytes());
            crate::wire::put_fixed_str(name, 64, out);
        }
    }
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let response = r.i32()?;
        let index = r.u32()?;
        let count = usize::from(r.u16()?);
        if count * 66 > r.remaining() {
            return Err(DecodeError::Count(count));
        }
        let mut message_table = Vec::with_capacity(count);
        for _ in 0..count {
            let id = r.u16()?;
            let mut name = crate::wire::fixed_str(r.take(64)?);
            // govpp trims a trailing 0x13 byte; harmless to do the same.
            if name.ends_with('\u{13}') {
                name.pop();
            }
            message_table.push((id, name));
        }
        Ok(Self {
            response,
            index,
            message_table,
        })
    }
}

message! {
    /// `sockclnt_delete`: unregister (VPP replies, then closes the socket).
    Request SockclntDelete = "sockclnt_delete", "8ac76db6" {
        /// The client handle from the handshake.
        index: u32,
    }
}
message! {
    /// `sockclnt_delete_reply`: `response` is 1 on success (not a retval).
    Reply SockclntDeleteReply = "sockclnt_delete_reply", "8f38b1ee" {
        /// 1 = success, -1 = unknown index.
        response: i32,
    }
}
message! {
    /// `control_ping`: liveness probe and dump terminator.
    Request ControlPing = "control_ping", "51077d14" {}
}
message! {
    /// `control_ping_reply`.
    Reply ControlPingReply = "control_ping_reply", "f6b0b8ca" {
        /// Result code.
        retval: i32,
        /// Always 0 in practice.
        client_index: u32,
        /// VPP's process id.
        vpe_pid: u32,
    }
}
impl_reply!(ControlPingReply {
    client_index: 0,
    vpe_pid: 0
});

message! {
    /// `show_version`.
    Request ShowVersion = "show_version", "51077d14" {}
}
message! {
    /// `show_version_reply`.
    Reply ShowVersionReply = "show_version_reply", "c919bde1" {
        /// Result code.
        retval: i32,
        /// Program name (`vpe`).
        program: String as FixedStr<32>,
        /// Version, e.g. `25.10-release`.
        version: String as FixedStr<32>,
        /// Build date.
        build_date: String as FixedStr<32>,
        /// Build directory.
        build_directory: String as FixedStr<256>,
    }
}
impl_reply!(ShowVersionReply {
    program: String::new(),
    version: String::new(),
    build_date: String::new(),
    build_directory: String::new(),
});

impl Request for SockclntDelete {
    type Reply = SockclntDeleteReply;
}

impl Reply for SockclntDeleteReply {
    fn retval(&self) -> i32 {
        // `response` is 1 on success.
        if self.response == 1 { 0 } else { self.response }
    }
    fn with_retval(retval: i32) -> Self {
        Self { response: retval }
    }
}

autoreply! {
    /// `delete_loopback_reply`.
    DeleteLoopbackReply = "delete_loopback_reply";
    /// `sw_interface_set_mac_address_reply`.
    SwInterfaceSetMacAddressReply = "sw_interface_set_mac_address_reply";
    /// `sw_interface_set_flags_reply`.
    SwInterfaceSetFlagsReply = "sw_interface_set_flags_reply";
    /// `sw_interface_add_del_address_reply`.
    SwInterfaceAddDelAddressReply = "sw_interface_add_del_address_reply";
    /// `sw_interface_set_mtu_reply`.
    SwInterfaceSetMtuReply = "sw_interface_set_mtu_reply";
    /// `hw_interface_set_mtu_reply`.
    HwInterfaceSetMtuReply = "hw_interface_set_mtu_reply";
    /// `want_interface_events_reply`.
    WantInterfaceEventsReply = "want_interface_events_reply";
    /// `sw_interface_ip6_set_link_local_address_reply`.
    SwInterfaceIp6SetLinkLocalAddressReply = "sw_interface_ip6_set_link_local_address_reply";
    /// `sw_interface_set_l2_bridge_reply`.
    SwInterfaceSetL2BridgeReply = "sw_interface_set_l2_bridge_reply";
    /// `l2fib_add_del_reply`.
    L2fibAddDelReply = "l2fib_add_del_reply";
}

pairs! {
    ControlPing => ControlPingReply,
    ShowVersion => ShowVersionReply,
    CreateLoopbackInstance => CreateLoopbackInstanceReply,
    CreateLoopback => CreateLoopbackReply,
    DeleteLoopback => DeleteLoopbackReply,
    SwInterfaceSetMacAddress => SwInterfaceSetMacAddressReply,
    SwInterfaceSetFlags => SwInterfaceSetFlagsReply,
    SwInterfaceAddDelAddress => SwInterfaceAddDelAddressReply,
    SwInterfaceSetMtu => SwInterfaceSetMtuReply,
    HwInterfaceSetMtu => HwInterfaceSetMtuReply,
    WantInterfaceEvents => WantInterfaceEventsReply,
    SwInterfaceIp6SetLinkLocalAddress => SwInterfaceIp6SetLinkLocalAddressReply,
    SwInterfaceIp6GetLinkLocalAddress => SwInterfaceIp6GetLinkLocalAddressReply,
    SwInterfaceGetTable => SwInterfaceGetTableReply,
    BridgeDomainAddDelV2 => BridgeDomainAddDelV2Reply,
    SwInterfaceSetL2Bridge => SwInterfaceSetL2BridgeReply,
    L2fibAddDel => L2fibAddDelReply,
    LcpItfPairAddDelV3 => LcpItfPairAddDelV3Reply,
    LcpItfPairGet => LcpItfPairGetReply,
    IpNeighborAddDel => IpNeighborAddDelReply,
    Arping => ArpingReply,
    VxlanAddDelTunnelV3 => VxlanAddDelTunnelV3Reply,
}

dumps! {
    SwInterfaceDump => SwInterfaceDetails,
    IpAddressDump => IpAddressDetails,
    BridgeDomainDump => BridgeDomainDetails,
    IpNeighborDump => IpNeighborDetails,
    VxlanTunnelV2Dump => VxlanTunnelV2Details,
}

/// Every `name_crc` this crate can encode or decode (requests, replies,
/// details, events), used by tests and by the simulator.
pub const ALL_NAME_CRCS: &[&str] = &[
    SockclntCreate::NAME_CRC,
    SockclntCreateReply::NAME_CRC,
    SockclntDelete::NAME_CRC,
    SockclntDeleteReply::NAME_CRC,
    ControlPing::NAME_CRC,
    ControlPingReply::NAME_CRC,
    ShowVersion::NAME_CRC,
    ShowVersionReply::NAME_CRC,
    CreateLoopbackInstance::NAME_CRC,
    CreateLoopbackInstanceReply::NAME_CRC,
    CreateLoopback::NAME_CRC,
    CreateLoopbackReply::NAME_CRC,
    DeleteLoopback::NAME_CRC,
    DeleteLoopbackReply::NAME_CRC,
    SwInterfaceSetMacAddress::NAME_CRC,
    SwInterfaceSetMacAddressReply::NAME_CRC,
    SwInterfaceSetFlags::NAME_CRC,
    SwInterfaceSetFlagsReply::NAME_CRC,
    SwInterfaceAddDelAddress::NAME_CRC,
    SwInterfaceAddDelAddressReply::NAME_CRC,
    SwInterfaceSetMtu::NAME_CRC,
    SwInterfaceSetMtuReply::NAME_CRC,
    HwInterfaceSetMtu::NAME_CRC,
    HwInterfaceSetMtuReply::NAME_CRC,
    SwInterfaceDump::NAME_CRC,
    SwInterfaceDetails::NAME_CRC,
    WantInterfaceEvents::NAME_CRC,
    WantInterfaceEventsReply::NAME_CRC,
    SwInterfaceEvent::NAME_CRC,
    SwInterfaceIp6SetLinkLocalAddress::NAME_CRC,
    SwInterfaceIp6SetLinkLocalAddressReply::NAME_CRC,
    SwInterfaceIp6GetLinkLocalAddress::NAME_CRC,
    SwInterfaceIp6GetLinkLocalAddressReply::NAME_CRC,
    SwInterfaceGetTable::NAME_CRC,
    SwInterfaceGetTableReply::NAME_CRC,
    IpAddressDump::NAME_CRC,
    IpAddressDetails::NAME_CRC,
    BridgeDomainAddDelV2::NAME_CRC,
    BridgeDomainAddDelV2Reply::NAME_CRC,
    BridgeDomainDump::NAME_CRC,
    BridgeDomainDetails::NAME_CRC,
    SwInterfaceSetL2Bridge::NAME_CRC,
    SwInterfaceSetL2BridgeReply::NAME_CRC,
    L2fibAddDel::NAME_CRC,
    L2fibAddDelReply::NAME_CRC,
    LcpItfPairAddDelV3::NAME_CRC,
    LcpItfPairAddDelV3Reply::NAME_CRC,
    LcpItfPairGet::NAME_CRC,
    LcpItfPairGetReply::NAME_CRC,
    LcpItfPairDetails::NAME_CRC,
    IpNeighborAddDel::NAME_CRC,
    IpNeighborAddDelReply::NAME_CRC,
    IpNeighborDump::NAME_CRC,
    IpNeighborDetails::NAME_CRC,
    Arping::NAME_CRC,
    ArpingReply::NAME_CRC,
    VxlanAddDelTunnelV3::NAME_CRC,
    VxlanAddDelTunnelV3Reply::NAME_CRC,
    VxlanTunnelV2Dump::NAME_CRC,
    VxlanTunnelV2Details::NAME_CRC,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_lengths_match_reference() {
        assert_eq!(ControlPing::MIN_LEN, 10);
        assert_eq!(ControlPingReply::MIN_LEN, 18);
        assert_eq!(ShowVersionReply::MIN_LEN, 362);
        assert_eq!(CreateLoopbackInstance::MIN_LEN, 21);
        assert_eq!(SwInterfaceAddDelAddress::MIN_LEN, 34);
        assert_eq!(SwInterfaceDump::MIN_LEN, 19);
        assert_eq!(SwInterfaceDetails::MIN_LEN, 295);
        assert_eq!(SwInterfaceEvent::MIN_LEN, 19);
        assert_eq!(BridgeDomainAddDelV2::MIN_LEN, 86);
        assert_eq!(LcpItfPairAddDelV3::MIN_LEN, 64);
        assert_eq!(LcpItfPairDetails::MIN_LEN, 67);
        assert_eq!(IpNeighborAddDel::MIN_LEN, 39);
        assert_eq!(IpNeighborDetails::MIN_LEN, 42);
        assert_eq!(Arping::MIN_LEN, 44);
        assert_eq!(VxlanAddDelTunnelV3::MIN_LEN, 70);
        assert_eq!(VxlanTunnelV2Details::MIN_LEN, 68);
        assert_eq!(L2fibAddDel::MIN_LEN, 28);
        assert_eq!(SwInterfaceSetL2Bridge::MIN_LEN, 24);
        assert_eq!(HwInterfaceSetMtu::MIN_LEN, 16);
        assert_eq!(IpAddressDetails::MIN_LEN, 28);
    }
}
