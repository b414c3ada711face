//! Bridge domains, l2fib, linux-cp pairs, neighbours, arping and VXLAN.

use serde_json::json;
use vpp_api::MacAddress;
use vpp_api::msgs::{self, SW_IF_INDEX_NONE};

use super::{
    BridgeDomain, DEFAULT_MTU, Fields, IfKind, Interface, L2fib, LcpPair, MAX_BD_ID, Model,
    Neighbor, VXLAN_PORT, Vxlan, rv,
};
use std::time::Instant;

impl Model {
    // ------------------------------------------------------------ l2

    /// `bridge_domain_add_del_v2`.
    pub fn bd_add_del(&mut self, m: &msgs::BridgeDomainAddDelV2) -> (i32, u32, Fields) {
        let f = fields! {"bd_id": m.bd_id, "is_add": m.is_add, "tag": m.bd_tag};
        if m.is_add {
            let id = if m.bd_id == SW_IF_INDEX_NONE {
                match (1..=MAX_BD_ID).find(|i| !self.st.bridge_domains.contains_key(i)) {
                    Some(i) => i,
                    None => return (rv::BD_ID_EXCEED_MAX, SW_IF_INDEX_NONE, f),
                }
            } else {
                m.bd_id
            };
            if id == 0 {
                return (rv::BD_NOT_MODIFIABLE, id, f);
            }
            if id > MAX_BD_ID {
                return (rv::BD_ID_EXCEED_MAX, id, f);
            }
            if self.st.bridge_domains.contains_key(&id) {
                return (rv::BD_ALREADY_EXISTS, id, f);
            }
            self.st.bridge_domains.insert(
                id,
                BridgeDomain {
                    bd_id: id,
                    flags: [
                        m.flood, m.uu_flood, m.forward, m.learn, m.arp_term, m.arp_ufwd,
                    ],
                    mac_age: m.mac_age,
                    tag: m.bd_tag.clone(),
                    bvi: None,
                    members: Vec::new(),
                },
            );
            let mut f = f;
            f.insert("bd_id".into(), json!(id));
            (0, id, f)
        } else {
            if m.bd_id == 0 {
                return (rv::BD_NOT_MODIFIABLE, m.bd_id, f);
            }
            match self.st.bridge_domains.get(&m.bd_id) {
                None => (rv::NO_SUCH_ENTRY, m.bd_id, f),
                Some(bd) if !bd.members.is_empty() => (rv::BD_IN_USE, m.bd_id, f),
                Some(_) => {
                    self.st.bridge_domains.remove(&m.bd_id);
                    (0, m.bd_id, f)
                }
            }
        }
    }

    /// `sw_interface_set_l2_bridge` (creates the BD on the fly, like VPP).
    pub fn set_l2_bridge(&mut self, m: &msgs::SwInterfaceSetL2Bridge) -> (i32, Fields) {
        let idx = m.rx_sw_if_index;
        let f = fields! {"sw_if_index": idx, "bd_id": m.bd_id, "port_type": m.port_type, "shg": m.shg, "enable": m.enable};
        let Some(i) = self.iface(idx) else {
            return (rv::INVALID_SW_IF_INDEX, f);
        };
        if !m.enable {
            self.remove_from_bd(idx);
            return (0, f);
        }
        if m.bd_id > MAX_BD_ID {
            return (rv::BD_ID_EXCEED_MAX, f);
        }
        if m.bd_id == 0 {
            return (rv::BD_NOT_MODIFIABLE, f);
        }
        let is_bvi = m.port_type == msgs::L2_PORT_BVI;
        if is_bvi && !i.is_ethernet() {
            return (rv::NON_ETHERNET, f);
        }
        let mac = i.mac;
        if let Some(bd) = self.st.bridge_domains.get(&m.bd_id)
            && is_bvi
            && bd.bvi.is_some_and(|b| b != idx)
        {
            return (rv::BD_ALREADY_HAS_BVI, f);
        }
        self.remove_from_bd(idx);
        let bd = self
            .st
            .bridge_domains
            .entry(m.bd_id)
            .or_insert_with(|| BridgeDomain {
                bd_id: m.bd_id,
                flags: [true, true, true, true, false, false],
                mac_age: 0,
                tag: String::new(),
                bvi: None,
                members: Vec::new(),
            });
        bd.members.push((idx, m.shg));
        if is_bvi {
            bd.bvi = Some(idx);
            self.st.l2fib.push(L2fib {
                mac,
                bd_id: m.bd_id,
                sw_if_index: idx,
                static_mac: true,
                filter_mac: false,
                bvi_mac: true,
            });
        }
        if let Some(i) = self.iface_mut(idx) {
            i.l2 = Some((m.bd_id, m.port_type, m.shg));
        }
        (0, f)
    }

    /// `bridge_domain_dump`: `sw_if_index` other than `~0` or `bd_id` 0 give nothing.
    pub fn bd_details(&self, bd_id: u32, sw_if_index: u32) -> Vec<msgs::BridgeDomainDetails> {
        if sw_if_index != SW_IF_INDEX_NONE || bd_id == 0 {
            return Vec::new();
        }
        self.st
            .bridge_domains
            .values()
            .filter(|b| bd_id == SW_IF_INDEX_NONE || b.bd_id == bd_id)
            .map(|b| msgs::BridgeDomainDetails {
                bd_id: b.bd_id,
                flood: b.flags[0],
                uu_flood: b.flags[1],
                forward: b.flags[2],
                learn: b.flags[3],
                arp_term: b.flags[4],
                arp_ufwd: b.flags[5],
                mac_age: b.mac_age,
                bd_tag: b.tag.clone(),
                bvi_sw_if_index: b.bvi.unwrap_or(SW_IF_INDEX_NONE),
                uu_fwd_sw_if_index: SW_IF_INDEX_NONE,
                sw_if_details: b
                    .members
                    .iter()
                    .map(|(i, s)| msgs::BridgeDomainSwIf {
                        context: 0,
                        sw_if_index: *i,
                        shg: *s,
                    })
                    .collect(),
            })
            .collect()
    }

    /// `l2fib_add_del`.
    pub fn l2fib_add_del(&mut self, m: &msgs::L2fibAddDel) -> (i32, Fields) {
        let f = fields! {"mac": m.mac.to_string(), "bd_id": m.bd_id, "sw_if_index": m.sw_if_index, "is_add": m.is_add, "static": m.static_mac};
        if !self.st.bridge_domains.contains_key(&m.bd_id) {
            return (rv::NO_SUCH_ENTRY, f);
        }
        let pos = self
            .st
            .l2fib
            .iter()
            .position(|e| e.mac == m.mac && e.bd_id == m.bd_id);
        if m.is_add {
            let in_bridge = self
                .iface(m.sw_if_index)
                .is_some_and(|i| i.l2.is_some_and(|(bd, _, _)| bd == m.bd_id));
            if !in_bridge {
                return (rv::INVALID_SW_IF_INDEX, f);
            }
            let e = L2fib {
                mac: m.mac,
                bd_id: m.bd_id,
                sw_if_index: m.sw_if_index,
                static_mac: m.static_mac,
                filter_mac: m.filter_mac,
                bvi_mac: m.bvi_mac,
            };
            match pos {
                Some(k) => self.st.l2fib[k] = e,
                None => self.st.l2fib.push(e),
            }
            (0, f)
        } else {
            match pos {
                Some(k) => {
                    self.st.l2fib.remove(k);
                    (0, f)
                }
                None => (rv::NO_SUCH_ENTRY, f),
            }
        }
    }

    // ------------------------------------------------------------ linux-cp

    /// `lcp_itf_pair_add_del_v3`: returns `(retval, vif_index, host_sw_if_index)`.
    pub fn lcp_add_del(&mut self, m: &msgs::LcpItfPairAddDelV3) -> (i32, u32, u32, Fields) {
        let none = SW_IF_INDEX_NONE;
        let mut f = fields! {"sw_if_index": m.sw_if_index, "is_add": m.is_add, "host_if_name": m.host_if_name, "netns": m.netns};
        let Some(phy) = self.iface(m.sw_if_index) else {
            return (rv::INVALID_SW_IF_INDEX, none, none, f);
        };
        let existing = self
            .st
            .lcp_pairs
            .iter()
            .position(|p| p.phy_sw_if_index == m.sw_if_index);
        if !m.is_add {
            return match existing {
                Some(k) => {
                    let p = self.st.lcp_pairs.remove(k);
                    self.delete_interface(p.host_sw_if_index);
                    (0, none, none, f)
                }
                None => (rv::NO_SUCH_ENTRY, none, none, f),
            };
        }
        if existing.is_some() {
            return (rv::VALUE_EXIST, none, none, f);
        }
        let name_ok = !m.host_if_name.is_empty()
            && m.host_if_name.len() <= 15
            && m.host_if_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_%@:.".contains(c));
        let tap = m.host_if_type == msgs::LCP_HOST_TAP;
        if !name_ok || (tap && !phy.is_ethernet()) || m.host_if_type > msgs::LCP_HOST_TUN {
            return (rv::INVALID_ARGUMENT, none, none, f);
        }
        if self
            .st
            .lcp_pairs
            .iter()
            .any(|p| p.host_if_name == m.host_if_name && p.netns == m.netns)
        {
            return (rv::VALUE_EXIST, none, none, f);
        }
        if self.lcp_tap_fail {
            // What a host without /dev/vhost-net answers (golden seq 74):
            // tap_create_if (src/plugins/tap/tap.c) fails to open it with
            // SYSCALL_ERROR_1, lcp_itf_pair_create
            // (src/plugins/linux-cp/lcp_interface.c) returns that retval
            // with no TAP and no pair left, and the v3 handler
            // (src/plugins/linux-cp/lcp_api.c) replies with both indexes ~0.
            return (rv::SYSCALL_ERROR_1, none, none, f);
        }
        let (phy_mac, phy_mtu) = (phy.mac, phy.mtu[0]);
        let tap_id = self.next_tap;
        self.next_tap += 1;
        let vif = self.next_vif;
        self.next_vif += 1;
        let host = self.alloc_if();
        let tap_mtu = if phy_mtu == 0 { 9216 } else { phy_mtu };
        self.st.interfaces.insert(
            host,
            Interface {
                sw_if_index: host,
                name: format!("tap{tap_id}"),
                kind: IfKind::Tap { id: tap_id },
                // VPP's side of the TAP gets its own locally administered MAC.
                mac: MacAddress([0x02, 0xfe, 0x1c, 0x9d, (tap_id >> 8) as u8, tap_id as u8]),
                admin_up: true,
                link_mtu: tap_mtu.min(u32::from(u16::MAX)) as u16,
                mtu: [tap_mtu, 0, 0, 0],
                addresses: Vec::new(),
                ip6_link_local: None,
                l2: None,
            },
        );
        self.event(
            host,
            msgs::IF_STATUS_ADMIN_UP | msgs::IF_STATUS_LINK_UP,
            false,
        );
        self.st.lcp_pairs.push(LcpPair {
            phy_sw_if_index: m.sw_if_index,
            host_sw_if_index: host,
            vif_index: vif,
            host_if_name: m.host_if_name.clone(),
            host_if_type: m.host_if_type,
            netns: m.netns.clone(),
        });
        f.insert("host_mac".into(), json!(phy_mac.to_string()));
        f.insert("host_sw_if_index".into(), json!(host));
        f.insert("vif_index".into(), json!(vif));
        (0, vif, host, f)
    }

    /// `lcp_itf_pair_get` from `cursor`: `(details, retval, cursor)`. With
    /// `lcp_get_page` set, at most that many details are sent per call and the
    /// reply is -165 (EAGAIN) with the cursor to resume from, like VPP when its
    /// time slice runs out.
    pub fn lcp_details(&self, cursor: u32) -> (Vec<msgs::LcpItfPairDetails>, i32, u32) {
        if self.st.lcp_pairs.is_empty() {
            // VPP does not write the cursor when the pool is empty.
            return (Vec::new(), 0, 0);
        }
        let start = cursor as usize;
        let left = self.st.lcp_pairs.len().saturating_sub(start);
        let page = self.lcp_get_page.unwrap_or(usize::MAX).max(1);
        let d = self
            .st
            .lcp_pairs
            .iter()
            .skip(start)
            .take(page)
            .map(|p| msgs::LcpItfPairDetails {
                phy_sw_if_index: p.phy_sw_if_index,
                host_sw_if_index: p.host_sw_if_index,
                vif_index: p.vif_index,
                host_if_name: p.host_if_name.clone(),
                host_if_type: p.host_if_type,
                netns: p.netns.clone(),
            })
            .collect();
        if left > page {
            (d, rv::EAGAIN, (start + page) as u32)
        } else {
            (d, 0, SW_IF_INDEX_NONE)
        }
    }

    // ------------------------------------------------------------ neighbours

    /// `ip_neighbor_add_del`: returns `(retval, stats_index)`.
    pub fn neighbor_add_del(&mut self, is_add: bool, n: &msgs::IpNeighbor) -> (i32, u32, Fields) {
        let f = fields! {"sw_if_index": n.sw_if_index, "is_add": is_add, "ip": n.ip_address.to_string(), "mac": n.mac_address.to_string(), "flags": n.flags};
        if self.iface(n.sw_if_index).is_none() {
            return (rv::INVALID_SW_IF_INDEX, SW_IF_INDEX_NONE, f);
        }
        let pos = self
            .st
            .neighbors
            .iter()
            .position(|e| e.sw_if_index == n.sw_if_index && e.ip == n.ip_address);
        if is_add {
            let stats_index = match pos {
                Some(k) => {
                    let e = &mut self.st.neighbors[k];
                    e.mac = n.mac_address;
                    e.flags = n.flags;
                    e.stats_index
                }
                None => {
                    let s = self.next_stats;
                    self.next_stats += 1;
                    self.st.neighbors.push(Neighbor {
                        sw_if_index: n.sw_if_index,
                        ip: n.ip_address,
                        mac: n.mac_address,
                        flags: n.flags,
                        stats_index: s,
                        created: Instant::now(),
                    });
                    s
                }
            };
            (0, stats_index, f)
        } else {
            match pos {
                Some(k) => {
                    self.st.neighbors.remove(k);
                    (0, SW_IF_INDEX_NONE, f)
                }
                None => (rv::NO_SUCH_ENTRY, SW_IF_INDEX_NONE, f),
            }
        }
    }

    /// `ip_neighbor_dump`.
    pub fn neighbor_details(&self, idx: u32, af: u8) -> Vec<msgs::IpNeighborDetails> {
        self.st
            .neighbors
            .iter()
            .filter(|n| idx == SW_IF_INDEX_NONE || n.sw_if_index == idx)
            .filter(|n| u8::from(n.ip.is_ipv6()) == af)
            .map(|n| msgs::IpNeighborDetails {
                age: n.created.elapsed().as_secs_f64(),
                neighbor: msgs::IpNeighbor {
                    sw_if_index: n.sw_if_index,
                    flags: n.flags,
                    mac_address: n.mac,
                    ip_address: n.ip,
                },
            })
            .collect()
    }

    /// `arping`: validated and journaled; never gets replies.
    pub fn arping(&self, m: &msgs::Arping) -> (i32, Fields) {
        let mut f = fields! {"sw_if_index": m.sw_if_index, "address": m.address.to_string(), "is_garp": m.is_garp, "repeat": m.repeat};
        match self.iface(m.sw_if_index) {
            None => (rv::INVALID_SW_IF_INDEX, f),
            Some(i) => {
                f.insert("mac".into(), json!(i.mac.to_string()));
                (0, f)
            }
        }
    }

    // ------------------------------------------------------------ vxlan

    /// `vxlan_add_del_tunnel_v3`: returns `(retval, sw_if_index)`.
    pub fn vxlan_add_del(&mut self, m: &msgs::VxlanAddDelTunnelV3) -> (i32, u32, Fields) {
        let port = |p: u16| if p == 0 { VXLAN_PORT } else { p };
        let (sp, dp) = (port(m.src_port), port(m.dst_port));
        let f = fields! {"is_add": m.is_add, "instance": m.instance, "src": m.src_address.to_string(), "dst": m.dst_address.to_string(), "vni": m.vni, "encap_vrf_id": m.encap_vrf_id};
        let pos = self.st.vxlan_tunnels.iter().position(|t| {
            t.src == m.src_address
                && t.dst == m.dst_address
                && t.encap_vrf_id == m.encap_vrf_id
                && t.vni == m.vni
                && t.src_port == sp
                && t.dst_port == dp
        });
        if !m.is_add {
            let Some(k) = pos else {
                return (rv::NO_SUCH_ENTRY, SW_IF_INDEX_NONE, f);
            };
            let t = self.st.vxlan_tunnels.remove(k);
            self.delete_interface(t.sw_if_index);
            return (0, t.sw_if_index, f);
        }
        if pos.is_some() {
            return (rv::TUNNEL_EXIST, SW_IF_INDEX_NONE, f);
        }
        if m.src_address == m.dst_address {
            return (rv::SAME_SRC_DST, SW_IF_INDEX_NONE, f);
        }
        if m.src_address.is_ipv4() != m.dst_address.is_ipv4() || m.vni > 0x00FF_FFFF {
            return (rv::INVALID_VALUE, SW_IF_INDEX_NONE, f);
        }
        let used = |n: u32| self.st.vxlan_tunnels.iter().any(|t| t.instance == n);
        let inst = if m.instance == SW_IF_INDEX_NONE {
            (0..).find(|n| !used(*n)).unwrap_or(0)
        } else if used(m.instance) {
            return (rv::INSTANCE_IN_USE, SW_IF_INDEX_NONE, f);
        } else {
            m.instance
        };
        let idx = self.alloc_if();
        self.st.interfaces.insert(
            idx,
            Interface {
                sw_if_index: idx,
                name: format!("vxlan_tunnel{inst}"),
                kind: IfKind::Vxlan { instance: inst },
                mac: MacAddress::ZERO,
                admin_up: true,
                link_mtu: 0,
                mtu: [DEFAULT_MTU, 0, 0, 0],
                addresses: Vec::new(),
                ip6_link_local: None,
                l2: None,
            },
        );
        self.st.vxlan_tunnels.push(Vxlan {
            sw_if_index: idx,
            instance: inst,
            src: m.src_address,
            dst: m.dst_address,
            src_port: sp,
            dst_port: dp,
            encap_vrf_id: m.encap_vrf_id,
            vni: m.vni,
        });
        // Tunnels are created admin-up.
        self.event(
            idx,
            msgs::IF_STATUS_ADMIN_UP | msgs::IF_STATUS_LINK_UP,
            false,
        );
        let mut f = f;
        f.insert("sw_if_index".into(), json!(idx));
        (0, idx, f)
    }

    /// `vxlan_tunnel_v2_dump`.
    pub fn vxlan_details(&self, idx: u32) -> Vec<msgs::VxlanTunnelV2Details> {
        self.st
            .vxlan_tunnels
            .iter()
            .filter(|t| idx == SW_IF_INDEX_NONE || t.sw_if_index == idx)
            .map(|t| msgs::VxlanTunnelV2Details {
                sw_if_index: t.sw_if_index,
                instance: t.instance,
                src_address: t.src,
                dst_address: t.dst,
                src_port: t.src_port,
                dst_port: t.dst_port,
                mcast_sw_if_index: SW_IF_INDEX_NONE,
                encap_vrf_id: t.encap_vrf_id,
                // Index of the l2-input next node.
                decap_next_index: 1,
                vni: t.vni,
            })
            .collect()
    }
}
