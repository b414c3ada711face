//! Typed messages: one struct per VPP message with its `name_crc`, and
//! sans-IO `encode`/`decode` (no tokio here).
//!
//! Layouts follow VPP 25.10 (identical in 26.06 and master). Every struct
//! holds only the payload; the leading header fields (message id,
//! `client_index`, `context`) are handled by [`encode_msg`] / [`decode_msg`]
//! according to the message's [`Shape`].

use std::net::{IpAddr, Ipv6Addr};

use crate::error::DecodeError;
use crate::wire::{Codec, FixedStr, MacAddress, Prefix, Reader, VarStr};

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

// ---------------------------------------------------------------- interface

message! {
    /// `create_loopback_instance`: creates `loop<instance>`.
    Request CreateLoopbackInstance = "create_loopback_instance", "d36a3ee2" {
        /// MAC; all-zero lets VPP pick `de:ad:00:00:00:<instance>`.
        mac_address: MacAddress,
        /// Use `user_instance`.
        is_specified: bool,
        /// Requested instance number.
        user_instance: u32,
    }
}
message! {
    /// `create_loopback_instance_reply`.
    Reply CreateLoopbackInstanceReply = "create_loopback_instance_reply", "5383d31f" {
        /// Result code (-31 when the instance is taken).
        retval: i32,
        /// The new interface.
        sw_if_index: u32,
    }
}
impl_reply!(CreateLoopbackInstanceReply {
    sw_if_index: SW_IF_INDEX_NONE
});

message! {
    /// `create_loopback`: creates a loopback with an automatic instance.
    Request CreateLoopback = "create_loopback", "42bb5d22" {
        /// MAC; all-zero lets VPP pick one.
        mac_address: MacAddress,
    }
}
message! {
    /// `create_loopback_reply`.
    Reply CreateLoopbackReply = "create_loopback_reply", "5383d31f" {
        /// Result code.
        retval: i32,
        /// The new interface.
        sw_if_index: u32,
    }
}
impl_reply!(CreateLoopbackReply {
    sw_if_index: SW_IF_INDEX_NONE
});

message! {
    /// `delete_loopback`.
    Request DeleteLoopback = "delete_loopback", "f9e6675e" {
        /// The loopback to delete.
        sw_if_index: u32,
    }
}
message! {
    /// `sw_interface_set_mac_address`.
    Request SwInterfaceSetMacAddress = "sw_interface_set_mac_address", "c536e7eb" {
        /// Interface.
        sw_if_index: u32,
        /// New MAC.
        mac_address: MacAddress,
    }
}
message! {
    /// `sw_interface_set_flags` (only ADMIN_UP is honoured).
    Request SwInterfaceSetFlags = "sw_interface_set_flags", "f5aec1b8" {
        /// Interface.
        sw_if_index: u32,
        /// `if_status_flags`.
        flags: u32,
    }
}
message! {
    /// `sw_interface_add_del_address`.
    Request SwInterfaceAddDelAddress = "sw_interface_add_del_address", "5463d73b" {
        /// Interface.
        sw_if_index: u32,
        /// Add (true) or delete.
        is_add: bool,
        /// Delete every address (prefix ignored).
        del_all: bool,
        /// The interface address with its prefix length.
        prefix: Prefix,
    }
}
message! {
    /// `sw_interface_set_mtu`: per-protocol MTUs `[L3, IP4, IP6, MPLS]`.
    Request SwInterfaceSetMtu = "sw_interface_set_mtu", "5cbe85e5" {
        /// Interface.
        sw_if_index: u32,
        /// MTUs; 0 = inherit the L3 value.
        mtu: [u32; 4],
    }
}
message! {
    /// `hw_interface_set_mtu` (hardware ethernet interfaces only).
    Request HwInterfaceSetMtu = "hw_interface_set_mtu", "e6746899" {
        /// Interface.
        sw_if_index: u32,
        /// MTU.
        mtu: u16,
    }
}
message! {
    /// `sw_interface_dump`.
    Request SwInterfaceDump = "sw_interface_dump", "aa610c27" {
        /// 0 or `~0` = all, else only that interface.
        sw_if_index: u32,
        /// Apply `name_filter`.
        name_filter_valid: bool,
        /// Case-insensitive substring filter on the name.
        name_filter: String as VarStr,
    }
}
message! {
    /// `sw_interface_details` (295 bytes).
    Reply SwInterfaceDetails = "sw_interface_details", "6c221fc7" {
        /// Interface.
        sw_if_index: u32,
        /// Parent (self for non-sub-interfaces).
        sup_sw_if_index: u32,
        /// MAC.
        l2_address: MacAddress,
        /// `if_status_flags`.
        flags: u32,
        /// `if_type`.
        r#type: u32,
        /// `link_duplex`.
        link_duplex: u32,
        /// Link speed in kbps.
        link_speed: u32,
        /// Link (hardware) MTU.
        link_mtu: u16,
        /// `[L3, IP4, IP6, MPLS]` MTUs.
        mtu: [u32; 4],
        /// Sub-interface id.
        sub_id: u32,
        /// VLAN tag count.
        sub_number_of_tags: u8,
        /// Outer VLAN.
        sub_outer_vlan_id: u16,
        /// Inner VLAN.
        sub_inner_vlan_id: u16,
        /// Sub-interface flags.
        sub_if_flags: u32,
        /// VLAN tag rewrite op.
        vtr_op: u32,
        /// VTR push dot1q.
        vtr_push_dot1q: u32,
        /// VTR tag 1.
        vtr_tag1: u32,
        /// VTR tag 2.
        vtr_tag2: u32,
        /// PBB outer tag.
        outer_tag: u16,
        /// PBB destination MAC.
        b_dmac: MacAddress,
        /// PBB source MAC.
        b_smac: MacAddress,
        /// PBB VLAN.
        b_vlanid: u16,
        /// PBB I-SID.
        i_sid: u32,
        /// Interface name, e.g. `loop100`.
        interface_name: String as FixedStr<64>,
        /// Device type, e.g. `Loopback`.
        interface_dev_type: String as FixedStr<64>,
        /// User tag.
        tag: String as FixedStr<64>,
    }
}
message! {
    /// `want_interface_events`: (un)subscribe to `sw_interface_event`.
    Request WantInterfaceEvents = "want_interface_events", "476f5a08" {
        /// 1 = enable, 0 = disable.
        enable_disable: u32,
        /// Echoed in every event.
        pid: u32,
    }
}
message! {
    /// `sw_interface_event` (no context).
    Event SwInterfaceEvent = "sw_interface_event", "2d3d95a7" {
        /// The subscriber's pid.
        pid: u32,
        /// Interface.
        sw_if_index: u32,
        /// OR of the event kinds since the last event (not necessarily current).
        flags: u32,
        /// Interface deleted.
        deleted: bool,
    }
}

// ---------------------------------------------------------------- ip

message! {
    /// `sw_interface_ip6_set_link_local_address` (enables IPv6 if needed).
    Request SwInterfaceIp6SetLinkLocalAddress = "sw_interface_ip6_set_link_local_address", "1c10f15f" {
        /// Interface.
        sw_if_index: u32,
        /// Link-local address.
        ip: Ipv6Addr,
    }
}
message! {
    /// `sw_interface_ip6_get_link_local_address`.
    Request SwInterfaceIp6GetLinkLocalAddress = "sw_interface_ip6_get_link_local_address", "f9e6675e" {
        /// Interface.
        sw_if_index: u32,
    }
}
message! {
    /// `sw_interface_ip6_get_link_local_address_reply`.
    Reply SwInterfaceIp6GetLinkLocalAddressReply = "sw_interface_ip6_get_link_local_address_reply", "d16b7130" {
        /// Result code.
        retval: i32,
        /// Link-local address.
        ip: Ipv6Addr,
    }
}
impl_reply!(SwInterfaceIp6GetLinkLocalAddressReply {
    ip: Ipv6Addr::UNSPECIFIED
});

message! {
    /// `ip_address_dump`: interface addresses of one family.
    Request IpAddressDump = "ip_address_dump", "2d033de4" {
        /// Interface.
        sw_if_index: u32,
        /// IPv6 (true) or IPv4.
        is_ipv6: bool,
    }
}
message! {
    /// `ip_address_details`.
    Reply IpAddressDetails = "ip_address_details", "ee29b797" {
        /// Interface.
        sw_if_index: u32,
        /// Address with prefix length.
        prefix: Prefix,
    }
}

// ---------------------------------------------------------------- l2

message! {
    /// `bridge_domain_add_del_v2`.
    Request BridgeDomainAddDelV2 = "bridge_domain_add_del_v2", "600b7170" {
        /// BD id (`~0` with is_add = VPP picks one).
        bd_id: u32,
        /// Flooding.
        flood: bool,
        /// Unknown-unicast flooding.
        uu_flood: bool,
        /// Forwarding.
        forward: bool,
        /// Learning.
        learn: bool,
        /// ARP termination.
        arp_term: bool,
        /// ARP unicast forwarding.
        arp_ufwd: bool,
        /// MAC age in minutes (0 = off).
        mac_age: u8,
        /// Tag.
        bd_tag: String as FixedStr<64>,
        /// Add or delete.
        is_add: bool,
    }
}
message! {
    /// `bridge_domain_add_del_v2_reply`.
    Reply BridgeDomainAddDelV2Reply = "bridge_domain_add_del_v2_reply", "fcb1e980" {
        /// Result code.
        retval: i32,
        /// BD id created (or deleted).
        bd_id: u32,
    }
}
impl_reply!(BridgeDomainAddDelV2Reply {
    bd_id: SW_IF_INDEX_NONE
});

message! {
    /// `bridge_domain_dump` (`sw_if_index` must be `~0`: 0 returns nothing).
    Request BridgeDomainDump = "bridge_domain_dump", "74396a43" {
        /// BD id (`~0` = all).
        bd_id: u32,
        /// Must be `~0`.
        sw_if_index: u32,
    }
}

/// One member of a bridge domain in [`BridgeDomainDetails`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeDomainSwIf {
    /// Always 0 in practice.
    pub context: u32,
    /// Member interface.
    pub sw_if_index: u32,
    /// Split-horizon group.
    pub shg: u8,
}

/// `bridge_domain_details` (93 bytes + 9 per member).
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeDomainDetails {
    /// BD id.
    pub bd_id: u32,
    /// Flooding.
    pub flood: bool,
    /// Unknown-unicast flooding.
    pub uu_flood: bool,
    /// Forwarding.
    pub forward: bool,
    /// Learning.
    pub learn: bool,
    /// ARP termination.
    pub arp_term: bool,
    /// ARP unicast forwarding.
    pub arp_ufwd: bool,
    /// MAC age.
    pub mac_age: u8,
    /// Tag.
    pub bd_tag: String,
    /// BVI (`~0` = none).
    pub bvi_sw_if_index: u32,
    /// UU-forwarding interface (`~0` = none).
    pub uu_fwd_sw_if_index: u32,
    /// Members (including the BVI).
    pub sw_if_details: Vec<BridgeDomainSwIf>,
}

impl Message for BridgeDomainDetails {
    const NAME: &'static str = "bridge_domain_details";
    const NAME_CRC: &'static str = "bridge_domain_details_0fa506fd";
    const SHAPE: Shape = Shape::Reply;
    const MIN_LEN: usize = 93;
    fn encode_payload(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bd_id.to_be_bytes());
        for b in [
            self.flood,
            self.uu_flood,
            self.forward,
            self.learn,
            self.arp_term,
            self.arp_ufwd,
        ] {
            out.push(u8::from(b));
        }
        out.push(self.mac_age);
        crate::wire::put_fixed_str(&self.bd_tag, 64, out);
        out.extend_from_slice(&self.bvi_sw_if_index.to_be_bytes());
        out.extend_from_slice(&self.uu_fwd_sw_if_index.to_be_bytes());
        let n = u32::try_from(self.sw_if_details.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        for m in &self.sw_if_details {
            out.extend_from_slice(&m.context.to_be_bytes());
            out.extend_from_slice(&m.sw_if_index.to_be_bytes());
            out.push(m.shg);
        }
    }
    fn decode_payload(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bd_id = r.u32()?;
        let f: [u8; 6] = r.array()?;
        let mac_age = r.u8()?;
        let bd_tag = crate::wire::fixed_str(r.take(64)?);
        let bvi_sw_if_index = r.u32()?;
        let uu_fwd_sw_if_index = r.u32()?;
        let n = r.u32()? as usize;
        if n.saturating_mul(9) > r.remaining() {
            return Err(DecodeError::Count(n));
        }
        let mut sw_if_details = Vec::with_capacity(n);
        for _ in 0..n {
            sw_if_details.push(BridgeDomainSwIf {
                context: r.u32()?,
                sw_if_index: r.u32()?,
                shg: r.u8()?,
            });
        }
        Ok(Self {
            bd_id,
            flood: f[0] != 0,
            uu_flood: f[1] != 0,
            forward: f[2] != 0,
            learn: f[3] != 0,
            arp_term: f[4] != 0,
            arp_ufwd: f[5] != 0,
            mac_age,
            bd_tag,
            bvi_sw_if_index,
            uu_fwd_sw_if_index,
            sw_if_details,
        })
    }
}

message! {
    /// `sw_interface_set_l2_bridge`: put an interface into (or out of) a BD.
    Request SwInterfaceSetL2Bridge = "sw_interface_set_l2_bridge", "d0678b13" {
        /// Interface.
        rx_sw_if_index: u32,
        /// BD id.
        bd_id: u32,
        /// `l2_port_type` (NORMAL=0, BVI=1, UU_FWD=2).
        port_type: u32,
        /// Split-horizon group.
        shg: u8,
        /// Attach (true) or back to L3.
        enable: bool,
    }
}
message! {
    /// `l2fib_add_del`.
    Request L2fibAddDel = "l2fib_add_del", "eddda487" {
        /// MAC.
        mac: MacAddress,
        /// BD id.
        bd_id: u32,
        /// Outgoing interface.
        sw_if_index: u32,
        /// Add or delete.
        is_add: bool,
        /// Static entry.
        static_mac: bool,
        /// Drop frames for this MAC.
        filter_mac: bool,
        /// BVI MAC.
        bvi_mac: bool,
    }
}

// ---------------------------------------------------------------- linux-cp

message! {
    /// `lcp_itf_pair_add_del_v3`.
    Request LcpItfPairAddDelV3 = "lcp_itf_pair_add_del_v3", "40482b80" {
        /// Add or delete.
        is_add: bool,
        /// The VPP interface ("phy").
        sw_if_index: u32,
        /// Linux interface name (≤ 15 bytes).
        host_if_name: String as FixedStr<16>,
        /// `lcp_itf_host_type` (TAP=0, TUN=1).
        host_if_type: u8,
        /// Network namespace ("" = default).
        netns: String as FixedStr<32>,
    }
}
message! {
    /// `lcp_itf_pair_add_del_v3_reply`.
    Reply LcpItfPairAddDelV3Reply = "lcp_itf_pair_add_del_v3_reply", "c2502663" {
        /// Result code.
        retval: i32,
        /// Linux ifindex.
        vif_index: u32,
        /// VPP's TAP interface.
        host_sw_if_index: u32,
    }
}
impl_reply!(LcpItfPairAddDelV3Reply {
    vif_index: SW_IF_INDEX_NONE,
    host_sw_if_index: SW_IF_INDEX_NONE,
});
message! {
    /// `lcp_itf_pair_get`: cursor-based listing (details, then the reply).
    Request LcpItfPairGet = "lcp_itf_pair_get", "f75ba505" {
        /// Start cursor (0).
        cursor: u32,
    }
}
message! {
    /// `lcp_itf_pair_get_reply` (`cursor` is meaningful only when retval = -165).
    Reply LcpItfPairGetReply = "lcp_itf_pair_get_reply", "53b48f5d" {
        /// Result code (-165 = call again with `cursor`).
        retval: i32,
        /// Resume cursor.
        cursor: u32,
    }
}
impl_reply!(LcpItfPairGetReply { cursor: 0 });
message! {
    /// `lcp_itf_pair_details`.
    Reply LcpItfPairDetails = "lcp_itf_pair_details", "8b5481af" {
        /// VPP interface.
        phy_sw_if_index: u32,
        /// VPP's TAP.
        host_sw_if_index: u32,
        /// Linux ifindex.
        vif_index: u32,
        /// Linux name.
        host_if_name: String as FixedStr<16>,
        /// TAP/TUN.
        host_if_type: u8,
        /// Namespace.
        netns: String as FixedStr<32>,
    }
}

// ---------------------------------------------------------------- neighbours, arping

/// `ip_neighbor` (28 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNeighbor {
    /// Interface.
    pub sw_if_index: u32,
    /// `ip_neighbor_flags` (STATIC=1, NO_FIB_ENTRY=2).
    pub flags: u8,
    /// MAC.
    pub mac_address: MacAddress,
    /// IP address.
    pub ip_address: IpAddr,
}

impl Codec<IpNeighbor> for IpNeighbor {
    const MIN: usize = 28;
    fn put(v: &IpNeighbor, out: &mut Vec<u8>) {
        out.extend_from_slice(&v.sw_if_index.to_be_bytes());
        out.push(v.flags);
        out.extend_from_slice(&v.mac_address.0);
        <IpAddr as Codec<IpAddr>>::put(&v.ip_address, out);
    }
    fn get(r: &mut Reader<'_>) -> Result<IpNeighbor, DecodeError> {
        Ok(IpNeighbor {
            sw_if_index: r.u32()?,
            flags: r.u8()?,
            mac_address: MacAddress(r.array()?),
            ip_address: <IpAddr as Codec<IpAddr>>::get(r)?,
        })
    }
}

message! {
    /// `ip_neighbor_add_del`.
    Request IpNeighborAddDel = "ip_neighbor_add_del", "0607c257" {
        /// Add or delete.
        is_add: bool,
        /// The entry.
        neighbor: IpNeighbor,
    }
}
message! {
    /// `ip_neighbor_add_del_reply`.
    Reply IpNeighborAddDelReply = "ip_neighbor_add_del_reply", "1992deab" {
        /// Result code.
        retval: i32,
        /// Stats index (`~0` on delete).
        stats_index: u32,
    }
}
impl_reply!(IpNeighborAddDelReply {
    stats_index: SW_IF_INDEX_NONE
});
message! {
    /// `ip_neighbor_dump`.
    Request IpNeighborDump = "ip_neighbor_dump", "d817a484" {
        /// Interface (`~0` = all).
        sw_if_index: u32,
        /// `address_family` (0 = IPv4, 1 = IPv6).
        af: u8,
    }
}
message! {
    /// `ip_neighbor_details` (`age` is a little-endian f64).
    Reply IpNeighborDetails = "ip_neighbor_details", "e29d79f0" {
        /// Seconds since created/refreshed.
        age: f64,
        /// The entry.
        neighbor: IpNeighbor,
    }
}
message! {
    /// `arping`: gratuitous ARP (IPv4) / unsolicited NA (IPv6) when `is_garp`.
    Request Arping = "arping", "48817482" {
        /// Address to announce / probe.
        address: IpAddr,
        /// Interface.
        sw_if_index: u32,
        /// GARP/unsolicited NA (true) or probe.
        is_garp: bool,
        /// Number of packets (send 1).
        repeat: u32,
        /// Seconds between repeats (little-endian f64 on the wire).
        interval: f64,
    }
}
message! {
    /// `arping_reply`.
    Reply ArpingReply = "arping_reply", "bb9d1cbd" {
        /// Result code.
        retval: i32,
        /// Replies received.
        reply_count: u32,
    }
}
impl_reply!(ArpingReply { reply_count: 0 });

// ---------------------------------------------------------------- vxlan

message! {
    /// `vxlan_add_del_tunnel_v3`.
    Request VxlanAddDelTunnelV3 = "vxlan_add_del_tunnel_v3", "0072b037" {
        /// Add or delete.
        is_add: bool,
        /// Instance (`~0` = auto).
        instance: u32,
        /// Local VTEP.
        src_address: IpAddr,
        /// Remote VTEP (may be multicast).
        dst_address: IpAddr,
        /// UDP source port (0 = 4789).
        src_port: u16,
        /// UDP destination port (0 = 4789).
        dst_port: u16,
        /// Multicast interface (`~0` if unicast).
        mcast_sw_if_index: u32,
        /// Underlay VRF.
        encap_vrf_id: u32,
        /// `~0` = l2-input.
        decap_next_index: u32,
        /// VNI (24 bits).
        vni: u32,
        /// L3 mode.
        is_l3: bool,
    }
}
message! {
    /// `vxlan_add_del_tunnel_v3_reply`.
    Reply VxlanAddDelTunnelV3Reply = "vxlan_add_del_tunnel_v3_reply", "5383d31f" {
        /// Result code.
        retval: i32,
        /// Tunnel interface.
        sw_if_index: u32,
    }
}
impl_reply!(VxlanAddDelTunnelV3Reply {
    sw_if_index: SW_IF_INDEX_NONE
});
message! {
    /// `vxlan_tunnel_v2_dump`.
    Request VxlanTunnelV2Dump = "vxlan_tunnel_v2_dump", "f9e6675e" {
        /// Tunnel (`~0` = all).
        sw_if_index: u32,
    }
}
message! {
    /// `vxlan_tunnel_v2_details`.
    Reply VxlanTunnelV2Details = "vxlan_tunnel_v2_details", "d3bdd4d9" {
        /// Tunnel interface.
        sw_if_index: u32,
        /// Instance.
        instance: u32,
        /// Local VTEP.
        src_address: IpAddr,
        /// Remote VTEP.
        dst_address: IpAddr,
        /// UDP source port.
        src_port: u16,
        /// UDP destination port.
        dst_port: u16,
        /// Multicast interface.
        mcast_sw_if_index: u32,
        /// Underlay VRF.
        encap_vrf_id: u32,
        /// Decap next node index.
        decap_next_index: u32,
        /// VNI.
        vni: u32,
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
