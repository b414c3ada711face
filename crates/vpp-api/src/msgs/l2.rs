//! Messages of `l2.api`, `lcp.api`, `ip_neighbor.api`, `arping.api` and `vxlan.api`.

use std::net::IpAddr;

use super::{Message, Reply, SW_IF_INDEX_NONE, Shape};
use crate::error::DecodeError;
use crate::wire::{Codec, FixedStr, MacAddress, Reader};

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
