//! High-level typed operations on [`Client`], using domain types.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::client::{Client, check};
use crate::error::{Result, VppError};
use crate::msgs::{self, Message, SW_IF_INDEX_NONE};
use crate::wire::{MacAddress, Prefix};

/// A VPP software interface index.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SwIfIndex(pub u32);

impl SwIfIndex {
    /// `~0`: none / all.
    pub const NONE: SwIfIndex = SwIfIndex(SW_IF_INDEX_NONE);
}

impl fmt::Display for SwIfIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for SwIfIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sw_if_index {}", self.0)
    }
}

/// Which interfaces `sw_interface_dump` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceFilter {
    /// Every interface.
    All,
    /// One interface.
    Index(SwIfIndex),
    /// Interfaces whose name contains this (case-insensitive).
    NameContains(String),
}

/// Bridge port role (`l2_port_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L2PortType {
    /// Ordinary member.
    Normal,
    /// Bridge virtual interface (the BD's L3 interface).
    Bvi,
    /// Unknown-unicast forwarder.
    UuFwd,
}

impl L2PortType {
    fn wire(self) -> u32 {
        match self {
            L2PortType::Normal => msgs::L2_PORT_NORMAL,
            L2PortType::Bvi => msgs::L2_PORT_BVI,
            L2PortType::UuFwd => msgs::L2_PORT_UU_FWD,
        }
    }
}

/// Bridge-domain settings for [`Client::bridge_domain_add`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeDomainConfig {
    /// BD id (`None` = VPP picks one).
    pub bd_id: Option<u32>,
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
    /// MAC age in minutes (0 = off).
    pub mac_age: u8,
    /// Tag (≤ 63 bytes).
    pub tag: String,
}

impl BridgeDomainConfig {
    /// VPP's usual defaults: flood, uu-flood, forward and learn on.
    pub fn new(bd_id: u32) -> Self {
        Self {
            bd_id: Some(bd_id),
            flood: true,
            uu_flood: true,
            forward: true,
            learn: true,
            arp_term: false,
            arp_ufwd: false,
            mac_age: 0,
            tag: String::new(),
        }
    }
}

/// A linux-cp pair to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LcpPairConfig {
    /// The VPP interface to mirror.
    pub sw_if_index: SwIfIndex,
    /// Linux interface name (≤ 15 bytes).
    pub host_if_name: String,
    /// TUN instead of TAP.
    pub tun: bool,
    /// Network namespace ("" = default).
    pub netns: String,
}

/// Result of creating a linux-cp pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcpPairCreated {
    /// Linux ifindex of the host interface.
    pub vif_index: u32,
    /// VPP's TAP interface.
    pub host_sw_if_index: SwIfIndex,
}

/// A static neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbor {
    /// Interface.
    pub sw_if_index: SwIfIndex,
    /// IP address.
    pub ip: IpAddr,
    /// MAC.
    pub mac: MacAddress,
    /// Do not install a host FIB entry.
    pub no_fib_entry: bool,
}

/// A VXLAN tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanTunnel {
    /// Instance (`None` = auto).
    pub instance: Option<u32>,
    /// Local VTEP.
    pub src: IpAddr,
    /// Remote VTEP.
    pub dst: IpAddr,
    /// VNI (24 bits).
    pub vni: u32,
    /// Underlay VRF.
    pub encap_vrf_id: u32,
    /// UDP destination/source port (`None` = 4789).
    pub port: Option<u16>,
}

/// An l2fib entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2fibEntry {
    /// MAC.
    pub mac: MacAddress,
    /// BD id.
    pub bd_id: u32,
    /// Outgoing interface.
    pub sw_if_index: SwIfIndex,
    /// Static entry (not aged, not moved by learning).
    pub static_mac: bool,
    /// Drop frames for this MAC.
    pub filter_mac: bool,
    /// The BVI's own MAC.
    pub bvi_mac: bool,
}

fn ensure_len(what: &str, s: &str, max: usize) -> Result<()> {
    if s.len() > max {
        return Err(VppError::InvalidArgument(format!(
            "{what} {s:?} is longer than {max} bytes"
        )));
    }
    Ok(())
}

impl Client {
    /// `create_loopback_instance`: creates `loop<instance>` (`None` = VPP picks
    /// the lowest free instance). A zero MAC lets VPP pick one.
    pub async fn create_loopback_instance(
        &self,
        mac: MacAddress,
        instance: Option<u32>,
    ) -> Result<SwIfIndex> {
        let r = self
            .call(&msgs::CreateLoopbackInstance {
                mac_address: mac,
                is_specified: instance.is_some(),
                user_instance: instance.unwrap_or(0),
            })
            .await?;
        Ok(SwIfIndex(r.sw_if_index))
    }

    /// `create_loopback` (automatic instance).
    pub async fn create_loopback(&self, mac: MacAddress) -> Result<SwIfIndex> {
        let r = self
            .call(&msgs::CreateLoopback { mac_address: mac })
            .await?;
        Ok(SwIfIndex(r.sw_if_index))
    }

    /// `delete_loopback` (also deletes its linux-cp pair).
    pub async fn delete_loopback(&self, sw_if_index: SwIfIndex) -> Result<()> {
        self.call(&msgs::DeleteLoopback {
            sw_if_index: sw_if_index.0,
        })
        .await
        .map(|_| ())
    }

    /// `sw_interface_set_mac_address`.
    pub async fn sw_interface_set_mac_address(
        &self,
        sw_if_index: SwIfIndex,
        mac: MacAddress,
    ) -> Result<()> {
        self.call(&msgs::SwInterfaceSetMacAddress {
            sw_if_index: sw_if_index.0,
            mac_address: mac,
        })
        .await
        .map(|_| ())
    }

    /// `sw_interface_set_flags`: admin up or down.
    pub async fn sw_interface_set_flags(
        &self,
        sw_if_index: SwIfIndex,
        admin_up: bool,
    ) -> Result<()> {
        self.call(&msgs::SwInterfaceSetFlags {
            sw_if_index: sw_if_index.0,
            flags: if admin_up {
                msgs::IF_STATUS_ADMIN_UP
            } else {
                0
            },
        })
        .await
        .map(|_| ())
    }

    /// `sw_interface_add_del_address` for one address.
    pub async fn sw_interface_add_del_address(
        &self,
        sw_if_index: SwIfIndex,
        prefix: Prefix,
        is_add: bool,
    ) -> Result<()> {
        if !prefix.is_valid() {
            return Err(VppError::InvalidArgument(format!("prefix {prefix}")));
        }
        self.call(&msgs::SwInterfaceAddDelAddress {
            sw_if_index: sw_if_index.0,
            is_add,
            del_all: false,
            prefix,
        })
        .await
        .map(|_| ())
    }

    /// Removes every address of an interface (`del_all`).
    pub async fn sw_interface_del_all_addresses(&self, sw_if_index: SwIfIndex) -> Result<()> {
        self.call(&msgs::SwInterfaceAddDelAddress {
            sw_if_index: sw_if_index.0,
            is_add: false,
            del_all: true,
            prefix: Prefix::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0),
        })
        .await
        .map(|_| ())
    }

    /// `sw_interface_ip6_set_link_local_address` (enables IPv6 if needed).
    pub async fn sw_interface_ip6_set_link_local_address(
        &self,
        sw_if_index: SwIfIndex,
        ip: Ipv6Addr,
    ) -> Result<()> {
        self.call(&msgs::SwInterfaceIp6SetLinkLocalAddress {
            sw_if_index: sw_if_index.0,
            ip,
        })
        .await
        .map(|_| ())
    }

    /// `sw_interface_ip6_get_link_local_address`.
    pub async fn sw_interface_ip6_get_link_local_address(
        &self,
        sw_if_index: SwIfIndex,
    ) -> Result<Ipv6Addr> {
        let r = self
            .call(&msgs::SwInterfaceIp6GetLinkLocalAddress {
                sw_if_index: sw_if_index.0,
            })
            .await?;
        Ok(r.ip)
    }

    /// `sw_interface_get_table`: the interface's VRF id for IPv4 or IPv6.
    pub async fn sw_interface_get_table(&self, sw_if_index: SwIfIndex, ipv6: bool) -> Result<u32> {
        let r = self
            .call(&msgs::SwInterfaceGetTable {
                sw_if_index: sw_if_index.0,
                is_ipv6: ipv6,
            })
            .await?;
        Ok(r.vrf_id)
    }

    /// `sw_interface_set_mtu` with `[L3, IP4, IP6, MPLS]` (0 = inherit L3).
    /// Use this one for loopbacks/BVIs, e.g. `[1500, 0, 0, 0]`.
    pub async fn sw_interface_set_mtu(&self, sw_if_index: SwIfIndex, mtu: [u32; 4]) -> Result<()> {
        self.call(&msgs::SwInterfaceSetMtu {
            sw_if_index: sw_if_index.0,
            mtu,
        })
        .await
        .map(|_| ())
    }

    /// `hw_interface_set_mtu` (hardware ethernet only; loopbacks refuse it).
    pub async fn hw_interface_set_mtu(&self, sw_if_index: SwIfIndex, mtu: u16) -> Result<()> {
        self.call(&msgs::HwInterfaceSetMtu {
            sw_if_index: sw_if_index.0,
            mtu,
        })
        .await
        .map(|_| ())
    }

    /// `sw_interface_dump`.
    pub async fn sw_interface_dump(
        &self,
        filter: InterfaceFilter,
    ) -> Result<Vec<msgs::SwInterfaceDetails>> {
        let req = match filter {
            InterfaceFilter::All => msgs::SwInterfaceDump {
                sw_if_index: SW_IF_INDEX_NONE,
                name_filter_valid: false,
                name_filter: String::new(),
            },
            InterfaceFilter::Index(i) => msgs::SwInterfaceDump {
                sw_if_index: i.0,
                name_filter_valid: false,
                name_filter: String::new(),
            },
            InterfaceFilter::NameContains(s) => msgs::SwInterfaceDump {
                sw_if_index: SW_IF_INDEX_NONE,
                name_filter_valid: true,
                name_filter: s,
            },
        };
        self.dump(&req).await
    }

    /// `ip_address_dump`: the interface addresses of one family (the IPv6
    /// link-local is not among them).
    pub async fn ip_address_dump(
        &self,
        sw_if_index: SwIfIndex,
        is_ipv6: bool,
    ) -> Result<Vec<Prefix>> {
        let d = self
            .dump(&msgs::IpAddressDump {
                sw_if_index: sw_if_index.0,
                is_ipv6,
            })
            .await?;
        Ok(d.into_iter().map(|x| x.prefix).collect())
    }

    /// `bridge_domain_add_del_v2` add; returns the BD id.
    pub async fn bridge_domain_add(&self, cfg: &BridgeDomainConfig) -> Result<u32> {
        ensure_len("bd_tag", &cfg.tag, 63)?;
        let r = self
            .call(&msgs::BridgeDomainAddDelV2 {
                bd_id: cfg.bd_id.unwrap_or(SW_IF_INDEX_NONE),
                flood: cfg.flood,
                uu_flood: cfg.uu_flood,
                forward: cfg.forward,
                learn: cfg.learn,
                arp_term: cfg.arp_term,
                arp_ufwd: cfg.arp_ufwd,
                mac_age: cfg.mac_age,
                bd_tag: cfg.tag.clone(),
                is_add: true,
            })
            .await?;
        Ok(r.bd_id)
    }

    /// `bridge_domain_add_del_v2` delete.
    pub async fn bridge_domain_delete(&self, bd_id: u32) -> Result<()> {
        self.call(&msgs::BridgeDomainAddDelV2 {
            bd_id,
            flood: false,
            uu_flood: false,
            forward: false,
            learn: false,
            arp_term: false,
            arp_ufwd: false,
            mac_age: 0,
            bd_tag: String::new(),
            is_add: false,
        })
        .await
        .map(|_| ())
    }

    /// `bridge_domain_dump` (`None` = all BDs); always sends `sw_if_index = ~0`.
    pub async fn bridge_domain_dump(
        &self,
        bd_id: Option<u32>,
    ) -> Result<Vec<msgs::BridgeDomainDetails>> {
        self.dump(&msgs::BridgeDomainDump {
            bd_id: bd_id.unwrap_or(SW_IF_INDEX_NONE),
            sw_if_index: SW_IF_INDEX_NONE,
        })
        .await
    }

    /// `sw_interface_set_l2_bridge`: `enable = false` returns the port to L3.
    pub async fn sw_interface_set_l2_bridge(
        &self,
        sw_if_index: SwIfIndex,
        bd_id: u32,
        port_type: L2PortType,
        shg: u8,
        enable: bool,
    ) -> Result<()> {
        self.call(&msgs::SwInterfaceSetL2Bridge {
            rx_sw_if_index: sw_if_index.0,
            bd_id,
            port_type: port_type.wire(),
            shg,
            enable,
        })
        .await
        .map(|_| ())
    }

    /// `l2fib_add_del`.
    pub async fn l2fib_add_del(&self, e: &L2fibEntry, is_add: bool) -> Result<()> {
        self.call(&msgs::L2fibAddDel {
            mac: e.mac,
            bd_id: e.bd_id,
            sw_if_index: e.sw_if_index.0,
            is_add,
            static_mac: e.static_mac,
            filter_mac: e.filter_mac,
            bvi_mac: e.bvi_mac,
        })
        .await
        .map(|_| ())
    }

    /// `lcp_itf_pair_add_del_v3` add.
    pub async fn lcp_itf_pair_add(&self, p: &LcpPairConfig) -> Result<LcpPairCreated> {
        ensure_len("host_if_name", &p.host_if_name, 15)?;
        ensure_len("netns", &p.netns, 31)?;
        let r = self
            .call(&msgs::LcpItfPairAddDelV3 {
                is_add: true,
                sw_if_index: p.sw_if_index.0,
                host_if_name: p.host_if_name.clone(),
                host_if_type: if p.tun {
                    msgs::LCP_HOST_TUN
                } else {
                    msgs::LCP_HOST_TAP
                },
                netns: p.netns.clone(),
            })
            .await?;
        Ok(LcpPairCreated {
            vif_index: r.vif_index,
            host_sw_if_index: SwIfIndex(r.host_sw_if_index),
        })
    }

    /// `lcp_itf_pair_add_del_v3` delete (only `sw_if_index` matters).
    pub async fn lcp_itf_pair_delete(&self, sw_if_index: SwIfIndex) -> Result<()> {
        self.call(&msgs::LcpItfPairAddDelV3 {
            is_add: false,
            sw_if_index: sw_if_index.0,
            host_if_name: String::new(),
            host_if_type: msgs::LCP_HOST_TAP,
            netns: String::new(),
        })
        .await
        .map(|_| ())
    }

    /// `lcp_itf_pair_get`: all pairs, following the cursor while VPP answers
    /// -165 (EAGAIN).
    pub async fn lcp_itf_pair_get(&self) -> Result<Vec<msgs::LcpItfPairDetails>> {
        let mut cursor = 0u32;
        let mut out = Vec::new();
        loop {
            let (rep, mut details) = self
                .cursor_get::<msgs::LcpItfPairGet, msgs::LcpItfPairDetails>(&msgs::LcpItfPairGet {
                    cursor,
                })
                .await?;
            out.append(&mut details);
            if rep.retval == -165 {
                cursor = rep.cursor;
                continue;
            }
            check(msgs::LcpItfPairGet::NAME, rep.retval)?;
            return Ok(out);
        }
    }

    /// `ip_neighbor_add_del`; returns the stats index.
    pub async fn ip_neighbor_add_del(&self, n: &Neighbor, is_add: bool) -> Result<u32> {
        let mut flags = msgs::IP_NEIGHBOR_FLAG_STATIC;
        if n.no_fib_entry {
            flags |= msgs::IP_NEIGHBOR_FLAG_NO_FIB_ENTRY;
        }
        let r = self
            .call(&msgs::IpNeighborAddDel {
                is_add,
                neighbor: msgs::IpNeighbor {
                    sw_if_index: n.sw_if_index.0,
                    flags,
                    mac_address: n.mac,
                    ip_address: n.ip,
                },
            })
            .await?;
        Ok(r.stats_index)
    }

    /// `ip_neighbor_dump` for one family (`sw_if_index` NONE = all).
    pub async fn ip_neighbor_dump(
        &self,
        sw_if_index: SwIfIndex,
        is_ipv6: bool,
    ) -> Result<Vec<msgs::IpNeighborDetails>> {
        self.dump(&msgs::IpNeighborDump {
            sw_if_index: sw_if_index.0,
            af: u8::from(is_ipv6),
        })
        .await
    }

    /// `arping`: one gratuitous ARP (IPv4) / unsolicited NA (IPv6) when
    /// `is_garp`, else one probe. Returns the reply count.
    pub async fn arping(
        &self,
        sw_if_index: SwIfIndex,
        address: IpAddr,
        is_garp: bool,
    ) -> Result<u32> {
        let r = self
            .call(&msgs::Arping {
                address,
                sw_if_index: sw_if_index.0,
                is_garp,
                repeat: 1,
                interval: 1.0,
            })
            .await?;
        Ok(r.reply_count)
    }

    /// `vxlan_add_del_tunnel_v3`; returns the tunnel interface.
    pub async fn vxlan_add_del_tunnel_v3(
        &self,
        t: &VxlanTunnel,
        is_add: bool,
    ) -> Result<SwIfIndex> {
        if t.src.is_ipv4() != t.dst.is_ipv4() {
            return Err(VppError::InvalidArgument(
                "VXLAN source and destination must be of the same family".into(),
            ));
        }
        let port = t.port.unwrap_or(0);
        let r = self
            .call(&msgs::VxlanAddDelTunnelV3 {
                is_add,
                instance: t.instance.unwrap_or(SW_IF_INDEX_NONE),
                src_address: t.src,
                dst_address: t.dst,
                src_port: port,
                dst_port: port,
                mcast_sw_if_index: SW_IF_INDEX_NONE,
                encap_vrf_id: t.encap_vrf_id,
                decap_next_index: SW_IF_INDEX_NONE,
                vni: t.vni,
                is_l3: false,
            })
            .await?;
        Ok(SwIfIndex(r.sw_if_index))
    }

    /// `vxlan_tunnel_v2_dump` (`NONE` = all).
    pub async fn vxlan_tunnel_dump(
        &self,
        sw_if_index: SwIfIndex,
    ) -> Result<Vec<msgs::VxlanTunnelV2Details>> {
        self.dump(&msgs::VxlanTunnelV2Dump {
            sw_if_index: sw_if_index.0,
        })
        .await
    }
}
