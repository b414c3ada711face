//! The stateful model of a VPP: interfaces (local0, loopbacks, VXLAN tunnels,
//! linux-cp TAPs), bridge domains, l2fib, linux-cp pairs and neighbours.
//!
//! Handlers take a decoded request and return the reply plus the journal
//! fields; they reproduce VPP 25.10's retvals for the cases we know.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

use serde_json::{Value, json};
use vpp_api::msgs::{self, SW_IF_INDEX_NONE};
use vpp_api::{MacAddress, Prefix};

/// `vnet_api_error` codes: vpp-api's table is the one source for the
/// client's names and meanings and for the fake's answers.
pub use vpp_api::rv;

/// Default L3 MTU of new loopbacks (`ethernet { default-mtu }`).
pub const DEFAULT_MTU: u32 = 9000;
const MAX_LOOPBACK_INSTANCE: u32 = 16383;
const MAX_BD_ID: u32 = 0x00FF_FFFF;
const VXLAN_PORT: u16 = 4789;

/// Kind of a simulated interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfKind {
    /// `local0`.
    Local,
    /// `loop<instance>`.
    Loopback {
        /// Instance number.
        instance: u32,
    },
    /// `vxlan_tunnel<instance>`.
    Vxlan {
        /// Instance number.
        instance: u32,
    },
    /// `tap<id>` created for a linux-cp pair.
    Tap {
        /// TAP id (from 4096).
        id: u32,
    },
}

/// An interface.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// Index.
    pub sw_if_index: u32,
    /// Name (`loop100`).
    pub name: String,
    /// Kind.
    pub kind: IfKind,
    /// MAC.
    pub mac: MacAddress,
    /// Admin state.
    pub admin_up: bool,
    /// Link (hardware) MTU.
    pub link_mtu: u16,
    /// `[L3, IP4, IP6, MPLS]`.
    pub mtu: [u32; 4],
    /// Interface addresses (IPv4 and IPv6), in insertion order.
    pub addresses: Vec<Prefix>,
    /// IPv6 link-local (set once IPv6 is enabled).
    pub ip6_link_local: Option<Ipv6Addr>,
    /// Bridge membership `(bd_id, port_type, shg)`.
    pub l2: Option<(u32, u32, u8)>,
}

impl Interface {
    /// `if_status_flags` as VPP reports them (a loopback's link follows admin).
    pub fn flags(&self) -> u32 {
        match (&self.kind, self.admin_up) {
            (IfKind::Local, _) | (_, false) => 0,
            (_, true) => msgs::IF_STATUS_ADMIN_UP | msgs::IF_STATUS_LINK_UP,
        }
    }
    fn is_ethernet(&self) -> bool {
        matches!(self.kind, IfKind::Loopback { .. } | IfKind::Tap { .. })
    }
    fn dev_type(&self) -> &'static str {
        match self.kind {
            IfKind::Local => "local",
            IfKind::Loopback { .. } => "Loopback",
            IfKind::Vxlan { .. } => "VXLAN",
            IfKind::Tap { .. } => "virtio",
        }
    }
}

/// A bridge domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeDomain {
    /// Id.
    pub bd_id: u32,
    /// flood, uu_flood, forward, learn, arp_term, arp_ufwd.
    pub flags: [bool; 6],
    /// MAC age.
    pub mac_age: u8,
    /// Tag.
    pub tag: String,
    /// BVI.
    pub bvi: Option<u32>,
    /// Members `(sw_if_index, shg)` in join order (BVI included).
    pub members: Vec<(u32, u8)>,
}

/// A linux-cp pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LcpPair {
    /// VPP interface.
    pub phy_sw_if_index: u32,
    /// VPP's TAP.
    pub host_sw_if_index: u32,
    /// Linux ifindex.
    pub vif_index: u32,
    /// Linux name.
    pub host_if_name: String,
    /// TAP (0) / TUN (1).
    pub host_if_type: u8,
    /// Namespace.
    pub netns: String,
}

/// A neighbour entry. Static entries survive their interface's deletion (as in VPP).
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbor {
    /// Interface.
    pub sw_if_index: u32,
    /// IP.
    pub ip: IpAddr,
    /// MAC.
    pub mac: MacAddress,
    /// Flags.
    pub flags: u8,
    /// Stats index.
    pub stats_index: u32,
    /// Creation time.
    pub created: Instant,
}

/// An l2fib entry (static entries survive their interface's deletion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2fib {
    /// MAC.
    pub mac: MacAddress,
    /// BD.
    pub bd_id: u32,
    /// Interface.
    pub sw_if_index: u32,
    /// Static.
    pub static_mac: bool,
    /// Filter.
    pub filter_mac: bool,
    /// BVI MAC.
    pub bvi_mac: bool,
}

/// A VXLAN tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vxlan {
    /// Interface.
    pub sw_if_index: u32,
    /// Instance.
    pub instance: u32,
    /// Source.
    pub src: IpAddr,
    /// Destination.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Underlay VRF.
    pub encap_vrf_id: u32,
    /// VNI.
    pub vni: u32,
}

/// A snapshot of the whole model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimState {
    /// Interfaces by sw_if_index.
    pub interfaces: BTreeMap<u32, Interface>,
    /// Bridge domains by id.
    pub bridge_domains: BTreeMap<u32, BridgeDomain>,
    /// linux-cp pairs in pool order.
    pub lcp_pairs: Vec<LcpPair>,
    /// Neighbours.
    pub neighbors: Vec<Neighbor>,
    /// l2fib.
    pub l2fib: Vec<L2fib>,
    /// VXLAN tunnels.
    pub vxlan_tunnels: Vec<Vxlan>,
}

impl SimState {
    /// The interface named `name`.
    pub fn interface_by_name(&self, name: &str) -> Option<&Interface> {
        self.interfaces.values().find(|i| i.name == name)
    }

    /// What the host's BIRD (IPng's `vppevpn` protocol) exports from this
    /// dataplane: per bridge-domain tag, the MACs of the bridge domains'
    /// BVIs that are admin up (lower case). The simulated fabric
    /// (`birdsim::fabric`) derives a host's announcements from it.
    pub fn bvi_macs(&self) -> BTreeMap<String, std::collections::BTreeSet<String>> {
        let mut out: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for bd in self.bridge_domains.values() {
            if let Some(i) = bd.bvi.and_then(|i| self.interfaces.get(&i))
                && i.admin_up
            {
                out.entry(bd.tag.clone())
                    .or_default()
                    .insert(i.mac.to_string().to_lowercase());
            }
        }
        out
    }

    /// JSON form (for the control socket).
    pub fn to_json(&self) -> Value {
        let ifs: Vec<Value> = self
            .interfaces
            .values()
            .map(|i| {
                json!({
                    "sw_if_index": i.sw_if_index, "name": i.name, "mac": i.mac.to_string(),
                    "admin_up": i.admin_up, "flags": i.flags(), "link_mtu": i.link_mtu, "mtu": i.mtu,
                    "addresses": i.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "ip6_link_local": i.ip6_link_local.map(|a| a.to_string()),
                    "bridge": i.l2.map(|(bd, pt, shg)| json!({"bd_id": bd, "port_type": pt, "shg": shg})),
                    "dev_type": i.dev_type(),
                })
            })
            .collect();
        let bds: Vec<Value> = self
            .bridge_domains
            .values()
            .map(|b| {
                json!({
                    "bd_id": b.bd_id, "flood": b.flags[0], "uu_flood": b.flags[1], "forward": b.flags[2],
                    "learn": b.flags[3], "arp_term": b.flags[4], "arp_ufwd": b.flags[5],
                    "mac_age": b.mac_age, "tag": b.tag, "bvi": b.bvi,
                    "members": b.members.iter().map(|(i, s)| json!({"sw_if_index": i, "shg": s})).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "interfaces": ifs,
            "bridge_domains": bds,
            "lcp_pairs": self.lcp_pairs.iter().map(|p| json!({
                "phy_sw_if_index": p.phy_sw_if_index, "host_sw_if_index": p.host_sw_if_index,
                "vif_index": p.vif_index, "host_if_name": p.host_if_name, "host_if_type": p.host_if_type,
                "netns": p.netns})).collect::<Vec<_>>(),
            "neighbors": self.neighbors.iter().map(|n| json!({
                "sw_if_index": n.sw_if_index, "ip": n.ip.to_string(), "mac": n.mac.to_string(),
                "flags": n.flags, "stale": !self.interfaces.contains_key(&n.sw_if_index)})).collect::<Vec<_>>(),
            "l2fib": self.l2fib.iter().map(|e| json!({
                "mac": e.mac.to_string(), "bd_id": e.bd_id, "sw_if_index": e.sw_if_index,
                "static": e.static_mac, "filter": e.filter_mac, "bvi": e.bvi_mac,
                "stale": !self.interfaces.contains_key(&e.sw_if_index)})).collect::<Vec<_>>(),
            "vxlan_tunnels": self.vxlan_tunnels.iter().map(|t| json!({
                "sw_if_index": t.sw_if_index, "instance": t.instance, "src": t.src.to_string(),
                "dst": t.dst.to_string(), "src_port": t.src_port, "dst_port": t.dst_port,
                "encap_vrf_id": t.encap_vrf_id, "vni": t.vni})).collect::<Vec<_>>(),
        })
    }
}

/// Journal fields produced by a handler.
pub type Fields = serde_json::Map<String, Value>;

/// The model plus the pending interface events.
#[derive(Debug)]
pub struct Model {
    /// Current state.
    pub st: SimState,
    free_if: Vec<u32>,
    next_if: u32,
    next_tap: u32,
    next_vif: u32,
    next_stats: u32,
    /// Make linux-cp TAP creation fail with -11 (no /dev/vhost-net).
    pub lcp_tap_fail: bool,
    /// Page size of `lcp_itf_pair_get` (None = everything in one call).
    pub lcp_get_page: Option<usize>,
    /// Pending events: sw_if_index → (OR of flags, deleted).
    pending_events: BTreeMap<u32, (u32, bool)>,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! fields {
    ($($k:literal : $v:expr),* $(,)?) => {{
        let mut m = Fields::new();
        $( m.insert($k.to_owned(), json!($v)); )*
        m
    }};
}

mod l2;

impl Model {
    /// A fresh VPP: only `local0` (sw_if_index 0).
    pub fn new() -> Self {
        let mut st = SimState::default();
        st.interfaces.insert(
            0,
            Interface {
                sw_if_index: 0,
                name: "local0".into(),
                kind: IfKind::Local,
                mac: MacAddress::ZERO,
                admin_up: false,
                link_mtu: 0,
                mtu: [0; 4],
                addresses: Vec::new(),
                ip6_link_local: None,
                l2: None,
            },
        );
        Model {
            st,
            free_if: Vec::new(),
            next_if: 1,
            next_tap: 4096,
            next_vif: 100,
            next_stats: 1,
            lcp_tap_fail: false,
            lcp_get_page: None,
            pending_events: BTreeMap::new(),
        }
    }

    /// Takes the coalesced pending events `(sw_if_index, flags, deleted)`.
    pub fn take_events(&mut self) -> Vec<(u32, u32, bool)> {
        std::mem::take(&mut self.pending_events)
            .into_iter()
            .map(|(i, (f, d))| (i, f, d))
            .collect()
    }

    fn event(&mut self, sw_if_index: u32, flags: u32, deleted: bool) {
        let e = self.pending_events.entry(sw_if_index).or_insert((0, false));
        e.0 |= flags;
        e.1 |= deleted;
    }

    fn alloc_if(&mut self) -> u32 {
        // VPP's pools reuse the most recently freed index first: in 25.10,
        // `vnet_create_sw_interface_no_callbacks` (src/vnet/interface.c) takes
        // the index with `pool_get (im->sw_interfaces, sw)`, and `_pool_get`
        // (src/vppinfra/pool.h) pops the last entry of `free_indices`, which
        // `_pool_put_index` appends to (`vnet_delete_sw_interface`'s `pool_put`).
        self.free_if.pop().unwrap_or_else(|| {
            let i = self.next_if;
            self.next_if += 1;
            i
        })
    }

    fn iface(&self, i: u32) -> Option<&Interface> {
        self.st.interfaces.get(&i)
    }

    fn iface_mut(&mut self, i: u32) -> Option<&mut Interface> {
        self.st.interfaces.get_mut(&i)
    }

    fn remove_from_bd(&mut self, sw_if_index: u32) {
        let Some(i) = self.iface_mut(sw_if_index) else {
            return;
        };
        let Some((bd_id, port_type, _)) = i.l2.take() else {
            return;
        };
        let mac = i.mac;
        if let Some(bd) = self.st.bridge_domains.get_mut(&bd_id) {
            bd.members.retain(|(m, _)| *m != sw_if_index);
            if bd.bvi == Some(sw_if_index) {
                bd.bvi = None;
            }
        }
        if port_type == msgs::L2_PORT_BVI {
            self.st
                .l2fib
                .retain(|e| !(e.bvi_mac && e.bd_id == bd_id && e.mac == mac));
        }
    }

    fn delete_interface(&mut self, sw_if_index: u32) {
        self.remove_from_bd(sw_if_index);
        // Deleting the phy deletes its linux-cp pair and TAP.
        if let Some(pos) = self
            .st
            .lcp_pairs
            .iter()
            .position(|p| p.phy_sw_if_index == sw_if_index)
        {
            let p = self.st.lcp_pairs.remove(pos);
            self.delete_interface(p.host_sw_if_index);
        }
        if self.st.interfaces.remove(&sw_if_index).is_some() {
            self.free_if.push(sw_if_index);
            self.event(sw_if_index, 0, true);
        }
    }

    // ------------------------------------------------------------ interfaces

    /// `create_loopback_instance` / `create_loopback`.
    pub fn create_loopback(
        &mut self,
        mac: MacAddress,
        instance: Option<u32>,
    ) -> (i32, u32, Fields) {
        let used = |m: &Model, n: u32| {
            m.st.interfaces
                .values()
                .any(|i| i.kind == IfKind::Loopback { instance: n })
        };
        let inst = match instance {
            Some(n) if n > MAX_LOOPBACK_INSTANCE || used(self, n) => None,
            Some(n) => Some(n),
            None => (0..=MAX_LOOPBACK_INSTANCE).find(|n| !used(self, *n)),
        };
        let Some(inst) = inst else {
            return (
                rv::INVALID_REGISTRATION,
                SW_IF_INDEX_NONE,
                fields! {"instance": instance, "mac": mac.to_string()},
            );
        };
        let mac = if mac == MacAddress::ZERO {
            MacAddress([0xde, 0xad, 0, 0, (inst >> 8) as u8, inst as u8])
        } else {
            mac
        };
        let idx = self.alloc_if();
        self.st.interfaces.insert(
            idx,
            Interface {
                sw_if_index: idx,
                name: format!("loop{inst}"),
                kind: IfKind::Loopback { instance: inst },
                mac,
                admin_up: false,
                link_mtu: DEFAULT_MTU as u16,
                mtu: [DEFAULT_MTU, 0, 0, 0],
                addresses: Vec::new(),
                ip6_link_local: None,
                l2: None,
            },
        );
        self.event(idx, 0, false);
        (
            0,
            idx,
            fields! {"sw_if_index": idx, "instance": inst, "name": format!("loop{inst}"), "mac": mac.to_string()},
        )
    }

    /// `delete_loopback`.
    pub fn delete_loopback(&mut self, idx: u32) -> (i32, Fields) {
        let f = fields! {"sw_if_index": idx};
        match self.iface(idx) {
            Some(i) if matches!(i.kind, IfKind::Loopback { .. }) => {
                let mut f = f;
                f.insert("mac".into(), json!(i.mac.to_string()));
                self.delete_interface(idx);
                (0, f)
            }
            _ => (rv::INVALID_SW_IF_INDEX, f),
        }
    }

    /// `sw_interface_set_mac_address`.
    pub fn set_mac(&mut self, idx: u32, mac: MacAddress) -> (i32, Fields) {
        let mut f = fields! {"sw_if_index": idx, "mac": mac.to_string()};
        let Some(i) = self.iface_mut(idx) else {
            return (rv::INVALID_SW_IF_INDEX, f);
        };
        if !i.is_ethernet() {
            return (rv::UNSUPPORTED, f);
        }
        f.insert("old_mac".into(), json!(i.mac.to_string()));
        let old = i.mac;
        i.mac = mac;
        let l2 = i.l2;
        // A BVI's l2fib entry follows its MAC.
        if let Some((bd, pt, _)) = l2
            && pt == msgs::L2_PORT_BVI
        {
            for e in &mut self.st.l2fib {
                if e.bvi_mac && e.bd_id == bd && e.mac == old {
                    e.mac = mac;
                }
            }
        }
        (0, f)
    }

    /// `sw_interface_set_flags`.
    pub fn set_flags(&mut self, idx: u32, flags: u32) -> (i32, Fields) {
        let up = flags & msgs::IF_STATUS_ADMIN_UP != 0;
        let f = fields! {"sw_if_index": idx, "admin_up": up};
        let Some(i) = self.iface_mut(idx) else {
            return (rv::INVALID_SW_IF_INDEX, f);
        };
        let changed = i.admin_up != up;
        i.admin_up = up;
        let ev = i.flags();
        if changed {
            self.event(idx, ev, false);
        }
        (0, f)
    }

    /// `sw_interface_add_del_address`.
    pub fn add_del_address(
        &mut self,
        idx: u32,
        is_add: bool,
        del_all: bool,
        p: Prefix,
    ) -> (i32, Fields) {
        let f = fields! {"sw_if_index": idx, "is_add": is_add, "del_all": del_all, "prefix": p.to_string()};
        let Some(i) = self.iface_mut(idx) else {
            return (rv::INVALID_SW_IF_INDEX, f);
        };
        if del_all && !is_add {
            i.addresses.clear();
            return (0, f);
        }
        if !p.is_valid() {
            return (rv::INVALID_VALUE, f);
        }
        let pos = i.addresses.iter().position(|a| a.addr == p.addr);
        if is_add {
            if let Some((rv, other)) = self.overlap(idx, p) {
                let mut f = f;
                f.insert("conflicts_with".into(), json!(other));
                return (rv, f);
            }
            let Some(i) = self.iface_mut(idx) else {
                return (rv::INVALID_SW_IF_INDEX, f);
            };
            if p.addr.is_ipv6() && i.ip6_link_local.is_none() {
                // Adding the first IPv6 address enables IPv6 (EUI-64 link-local).
                i.ip6_link_local = Some(i.mac.link_local());
            }
            i.addresses.push(p);
            (0, f)
        } else {
            match pos {
                Some(k) if i.addresses[k].len == p.len => {
                    i.addresses.remove(k);
                    (0, f)
                }
                _ => (rv::ADDRESS_NOT_FOUND_FOR_INTERFACE, f),
            }
        }
    }

    /// VPP 25.10 refuses an interface address that overlaps one already on
    /// any interface of the same FIB (vppsim has one FIB): in either
    /// direction, the one prefix contains the other's address. Only another
    /// address of the same prefix length on the same interface is allowed;
    /// the same address again is refused too. IPv4 answers -105
    /// ADDRESS_IN_USE (`ip4_add_del_interface_address_internal`,
    /// src/vnet/ip/ip4_forward.c), IPv6 -127 DUPLICATE_IF_ADDRESS
    /// (`ip6_add_del_interface_address`, src/vnet/ip/ip6_forward.c).
    /// Returns the retval and `"<prefix> on <interface>"` of the conflict.
    fn overlap(&self, idx: u32, p: Prefix) -> Option<(i32, String)> {
        let covers = |net: &Prefix, a: IpAddr| match (net.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = u32::MAX.checked_shl(32 - u32::from(net.len)).unwrap_or(0);
                u32::from(n) & m == u32::from(a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = u128::MAX.checked_shl(128 - u32::from(net.len)).unwrap_or(0);
                u128::from(n) & m == u128::from(a) & m
            }
            _ => false,
        };
        self.st.interfaces.values().find_map(|i| {
            i.addresses.iter().find_map(|x| {
                if !(covers(x, p.addr) || covers(&p, x.addr)) {
                    return None;
                }
                if i.sw_if_index == idx && x.len == p.len && x.addr != p.addr {
                    return None;
                }
                let rv = if p.addr.is_ipv4() {
                    rv::ADDRESS_IN_USE
                } else {
                    rv::DUPLICATE_IF_ADDRESS
                };
                Some((rv, format!("{x} on {}", i.name)))
            })
        })
    }

    /// `sw_interface_ip6_set_link_local_address`.
    pub fn set_link_local(&mut self, idx: u32, ip: Ipv6Addr) -> (i32, Fields) {
        let f = fields! {"sw_if_index": idx, "ip": ip.to_string()};
        let Some(i) = self.iface_mut(idx) else {
            return (rv::INVALID_SW_IF_INDEX, f);
        };
        if !evpn_model::is_link_local6(&ip) {
            return (rv::INVALID_VALUE, f);
        }
        i.ip6_link_local = Some(ip);
        (0, f)
    }

    /// `sw_interface_ip6_get_link_local_address`.
    pub fn get_link_local(&self, idx: u32) -> (i32, Ipv6Addr) {
        match self.iface(idx) {
            None => (rv::INVALID_SW_IF_INDEX, Ipv6Addr::UNSPECIFIED),
            Some(i) => match i.ip6_link_local {
                Some(a) => (0, a),
                None => (rv::IP6_NOT_ENABLED, Ipv6Addr::UNSPECIFIED),
            },
        }
    }

    /// `sw_interface_set_mtu`: stored verbatim.
    pub fn set_mtu(&mut self, idx: u32, mtu: [u32; 4]) -> (i32, Fields) {
        let f = fields! {"sw_if_index": idx, "mtu": mtu};
        let Some(i) = self.iface_mut(idx) else {
            return (rv::INVALID_SW_IF_INDEX, f);
        };
        if mtu.iter().any(|m| *m > 9216) {
            return (rv::INVALID_VALUE, f);
        }
        i.mtu = mtu;
        (0, f)
    }

    /// `hw_interface_set_mtu`: loopbacks have no max-frame-size hook.
    pub fn hw_set_mtu(&mut self, idx: u32, mtu: u16) -> (i32, Fields) {
        let f = fields! {"sw_if_index": idx, "mtu": mtu};
        let Some(i) = self.iface_mut(idx) else {
            return (rv::INVALID_SW_IF_INDEX, f);
        };
        match i.kind {
            IfKind::Loopback { .. } => (rv::UNSUPPORTED, f),
            IfKind::Tap { .. } => {
                i.link_mtu = mtu;
                i.mtu = [u32::from(mtu), 0, 0, 0];
                (0, f)
            }
            IfKind::Local | IfKind::Vxlan { .. } => (rv::FEATURE_DISABLED, f),
        }
    }

    /// `sw_interface_dump`.
    pub fn interface_details(
        &self,
        idx: u32,
        filter: Option<&str>,
    ) -> Vec<msgs::SwInterfaceDetails> {
        let filter = filter.map(str::to_lowercase);
        self.st
            .interfaces
            .values()
            .filter(|i| idx == 0 || idx == SW_IF_INDEX_NONE || i.sw_if_index == idx)
            .filter(|i| {
                filter
                    .as_ref()
                    .is_none_or(|f| i.name.to_lowercase().contains(f.as_str()))
            })
            .map(|i| msgs::SwInterfaceDetails {
                sw_if_index: i.sw_if_index,
                sup_sw_if_index: i.sw_if_index,
                l2_address: i.mac,
                flags: i.flags(),
                r#type: 0,
                link_duplex: 0,
                link_speed: 0,
                link_mtu: i.link_mtu,
                mtu: i.mtu,
                sub_id: 0,
                sub_number_of_tags: 0,
                sub_outer_vlan_id: 0,
                sub_inner_vlan_id: 0,
                sub_if_flags: 0,
                vtr_op: 0,
                vtr_push_dot1q: 0,
                vtr_tag1: 0,
                vtr_tag2: 0,
                outer_tag: 0,
                b_dmac: MacAddress::ZERO,
                b_smac: MacAddress::ZERO,
                b_vlanid: 0,
                i_sid: 0,
                interface_name: i.name.clone(),
                interface_dev_type: i.dev_type().into(),
                tag: String::new(),
            })
            .collect()
    }

    /// `ip_address_dump`.
    pub fn address_details(&self, idx: u32, is_ipv6: bool) -> Vec<msgs::IpAddressDetails> {
        self.iface(idx)
            .map(|i| {
                i.addresses
                    .iter()
                    .filter(|p| p.addr.is_ipv6() == is_ipv6)
                    .map(|p| msgs::IpAddressDetails {
                        sw_if_index: idx,
                        prefix: *p,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}
