//! Links over rtnetlink: create, delete, change and list bridges, VXLAN devices and veth pairs.

use std::net::IpAddr;

use evpn_model::Mac;
use futures::TryStreamExt;
use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoBridge, InfoBridgePort, InfoData, InfoKind,
    InfoPortData, InfoVeth, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkUnspec, LinkVeth, LinkVxlan};

use crate::error::{Error, Op, Result};

/// The IANA VXLAN UDP port.
pub const VXLAN_PORT: u16 = 4789;

/// A netlink connection (one `NETLINK_ROUTE` socket in the network namespace of the thread
/// that opened it). Cheap to clone.
///
/// Its dumps run one at a time (every clone shares the turn): the kernel refuses a dump on a
/// socket whose previous dump is still being read with `EBUSY` (`__netlink_dump_start`), and
/// one connection serves concurrent callers (evpnd's health checks, reconciles and binds).
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: Handle,
    dumps: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// The kind of a link (`IFLA_INFO_KIND`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    /// Linux bridge.
    Bridge,
    /// VXLAN device.
    Vxlan,
    /// One end of a veth pair.
    Veth,
    /// Any other kind, by its kernel name.
    Other(String),
    /// No kind reported (e.g. `lo`, physical NICs).
    None,
}

/// VXLAN parameters as the kernel reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanInfo {
    /// VNI.
    pub vni: u32,
    /// Local (source) VTEP address.
    pub local: Option<IpAddr>,
    /// UDP destination port.
    pub port: u16,
    /// Whether the device learns remote MACs from the data plane.
    pub learning: bool,
}

/// Bridge-port options of a link enslaved to a bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BridgePortInfo {
    /// MAC learning on this port.
    pub learning: bool,
    /// ARP/ND suppression on this port.
    pub neigh_suppress: bool,
}

/// IPv6 address generation mode (`IFLA_INET6_ADDR_GEN_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrGenMode {
    /// EUI-64 link-local (kernel default).
    Eui64,
    /// No automatic addresses.
    None,
    /// Stable privacy.
    StablePrivacy,
    /// Random.
    Random,
    /// Unknown value.
    Other(u8),
}

/// One link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Kind.
    pub kind: LinkKind,
    /// MAC address, for Ethernet-like links.
    pub mac: Option<Mac>,
    /// MTU.
    pub mtu: u32,
    /// Index of the master (bridge), if enslaved.
    pub master: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// `IFLA_LINK`: for a veth, the peer's index.
    pub link: Option<u32>,
    /// VXLAN parameters, for a VXLAN device.
    pub vxlan: Option<VxlanInfo>,
    /// Bridge STP state is on, for a bridge.
    pub bridge_stp: Option<bool>,
    /// Bridge VLAN filtering, for a bridge.
    pub bridge_vlan_filtering: Option<bool>,
    /// Bridge-port options, for an enslaved link.
    pub port: Option<BridgePortInfo>,
    /// IPv6 address generation mode (absent if IPv6 is disabled).
    pub addr_gen_mode: Option<AddrGenMode>,
    /// IPv6 `accept_dad` from the device configuration (absent if IPv6 is disabled).
    pub accept_dad: Option<i32>,
}

/// Options for [`Netlink::create_vxlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanOpts {
    /// VNI.
    pub vni: u32,
    /// Local VTEP address.
    pub local: IpAddr,
    /// UDP destination port (normally [`VXLAN_PORT`]).
    pub port: u16,
    /// Data-plane learning (BIRD wants it off: `nolearning`).
    pub learning: bool,
    /// MTU, if not the kernel default.
    pub mtu: Option<u32>,
}

pub(crate) fn parse_link(msg: &LinkMessage) -> Link {
    let mut l = Link {
        index: msg.header.index,
        name: String::new(),
        kind: LinkKind::None,
        mac: None,
        mtu: 0,
        master: None,
        up: msg.header.flags.contains(LinkFlags::Up),
        link: None,
        vxlan: None,
        bridge_stp: None,
        bridge_vlan_filtering: None,
        port: None,
        addr_gen_mode: None,
        accept_dad: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Address(a) if a.len() == 6 => {
                let mut b = [0u8; 6];
                b.copy_from_slice(a);
                l.mac = Some(Mac::from(b));
            }
            LinkAttribute::Mtu(m) => l.mtu = *m,
            LinkAttribute::Controller(m) if *m != 0 => l.master = Some(*m),
            LinkAttribute::Link(p) if *p != 0 => l.link = Some(*p),
            LinkAttribute::LinkInfo(infos) => parse_link_info(infos, &mut l),
            LinkAttribute::AfSpecUnspec(specs) => {
                for spec in specs {
                    if let AfSpecUnspec::Inet6(v6) = spec {
                        for a in v6 {
                            match a {
                                AfSpecInet6::AddrGenMode(m) => {
                                    l.addr_gen_mode = Some(match m {
                                        In6AddrGenMode::Eui64 => AddrGenMode::Eui64,
                                        In6AddrGenMode::None => AddrGenMode::None,
                                        In6AddrGenMode::StablePrivacy => AddrGenMode::StablePrivacy,
                                        In6AddrGenMode::Random => AddrGenMode::Random,
                                        In6AddrGenMode::Other(o) => AddrGenMode::Other(*o),
                                        _ => AddrGenMode::Other(255),
                                    })
                                }
                                AfSpecInet6::DevConf(c) => l.accept_dad = Some(c.accept_dad),
                                _ => {}
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    l
}

fn parse_link_info(infos: &[LinkInfo], l: &mut Link) {
    for info in infos {
        match info {
            LinkInfo::Kind(k) => {
                l.kind = match k {
                    InfoKind::Bridge => LinkKind::Bridge,
                    InfoKind::Vxlan => LinkKind::Vxlan,
                    InfoKind::Veth => LinkKind::Veth,
                    other => LinkKind::Other(other.to_string()),
                }
            }
            LinkInfo::Data(InfoData::Vxlan(v)) => {
                let mut vx = VxlanInfo {
                    vni: 0,
                    local: None,
                    port: 0,
                    learning: true,
                };
                for a in v {
                    match a {
                        InfoVxlan::Id(id) => vx.vni = *id,
                        InfoVxlan::Local(a) => vx.local = Some(IpAddr::V4(*a)),
                        InfoVxlan::Local6(a) => vx.local = Some(IpAddr::V6(*a)),
                        InfoVxlan::Port(p) => vx.port = *p,
                        InfoVxlan::Learning(b) => vx.learning = *b,
                        _ => {}
                    }
                }
                l.vxlan = Some(vx);
            }
            LinkInfo::Data(InfoData::Bridge(b)) => {
                for a in b {
                    match a {
                        InfoBridge::StpState(s) => {
                            l.bridge_stp = Some(!matches!(
                                s,
                                rtnetlink::packet_route::link::BridgeStpState::Disabled
                            ))
                        }
                        InfoBridge::VlanFiltering(v) => l.bridge_vlan_filtering = Some(*v),
                        _ => {}
                    }
                }
            }
            LinkInfo::PortData(InfoPortData::BridgePort(p)) => {
                let mut port = BridgePortInfo::default();
                for a in p {
                    match a {
                        InfoBridgePort::Learning(b) => port.learning = *b,
                        InfoBridgePort::NeighSupress(b) => port.neigh_suppress = *b,
                        _ => {}
                    }
                }
                l.port = Some(port);
            }
            _ => {}
        }
    }
}

impl Netlink {
    /// Open a netlink connection in the calling thread's network namespace and spawn its
    /// driver task on the current tokio runtime (must be called inside one).
    ///
    /// The socket uses strict checking (`NETLINK_GET_STRICT_CHK`), which lets the kernel
    /// filter dumps, e.g. the FDB of one bridge in [`Netlink::list_fdb_of_bridge`].
    pub fn connect() -> Result<Netlink> {
        let (conn, handle, _) = rtnetlink::new_connection_with_strict_check()
            .map_err(|e| Error::from_io(Op::Open, "netlink", e))?;
        tokio::spawn(conn);
        Ok(Netlink::from_handle(handle))
    }

    /// Wrap an existing rtnetlink handle. The kernel-filtered dumps
    /// ([`Netlink::list_links_of_master`], [`Netlink::list_fdb_of_bridge`], used by
    /// [`crate::Dataplane::observe`]) need one from `rtnetlink::new_connection_with_strict_check`.
    pub fn from_handle(handle: Handle) -> Netlink {
        Netlink {
            handle,
            dumps: Default::default(),
        }
    }

    /// This connection's turn to dump (held until the dump is read to its end).
    pub(crate) async fn dump_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.dumps.lock().await
    }

    /// The underlying rtnetlink handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// All links.
    pub async fn list_links(&self) -> Result<Vec<Link>> {
        let _turn = self.dump_turn().await;
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::from_rtnl(Op::ListLinks, "all", e))?;
        Ok(msgs.iter().map(parse_link).collect())
    }

    /// The links enslaved to `master` (filtered in the kernel; strict-checking connection).
    pub async fn list_links_of_master(&self, master: u32) -> Result<Vec<Link>> {
        let _turn = self.dump_turn().await;
        let mut req = self.handle.link().get();
        req.message_mut()
            .attributes
            .push(LinkAttribute::Controller(master));
        let msgs: Vec<LinkMessage> = req
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::from_rtnl(Op::ListLinks, format!("master #{master}"), e))?;
        Ok(msgs
            .iter()
            .map(parse_link)
            .filter(|l| l.master == Some(master))
            .collect())
    }

    /// The link called `name`, or `None`.
    pub async fn link_by_name(&self, name: &str) -> Result<Option<Link>> {
        let r: std::result::Result<Vec<LinkMessage>, _> = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_collect()
            .await;
        match r {
            Ok(msgs) => Ok(msgs.first().map(parse_link)),
            Err(e) => match Error::from_rtnl(Op::GetLink, name, e) {
                Error::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The link with index `index`, or `None`.
    pub async fn link_by_index(&self, index: u32) -> Result<Option<Link>> {
        let r: std::result::Result<Vec<LinkMessage>, _> = self
            .handle
            .link()
            .get()
            .match_index(index)
            .execute()
            .try_collect()
            .await;
        match r {
            Ok(msgs) => Ok(msgs.first().map(parse_link)),
            Err(e) => match Error::from_rtnl(Op::GetLink, format!("#{index}"), e) {
                Error::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// The index of `name`; [`Error::NotFound`] if there is no such link.
    pub async fn index_of(&self, name: &str) -> Result<u32> {
        match self.link_by_name(name).await? {
            Some(l) => Ok(l.index),
            None => Err(Error::NotFound {
                op: Op::GetLink,
                target: name.to_string(),
            }),
        }
    }

    async fn add(&self, op: Op, name: &str, msg: LinkMessage) -> Result<()> {
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| Error::from_rtnl(op, name, e))
    }

    pub(crate) async fn change_at(&self, op: Op, name: &str, msg: LinkMessage) -> Result<()> {
        self.handle
            .link()
            .change(msg)
            .execute()
            .await
            .map_err(|e| Error::from_rtnl(op, name, e))
    }

    /// Create a bridge (down, STP off). VLAN filtering is left at the kernel default (off):
    /// a kernel built without `CONFIG_BRIDGE_VLAN_FILTERING` rejects even
    /// `vlan_filtering 0` with EOPNOTSUPP.
    pub async fn create_bridge(&self, name: &str, mtu: Option<u32>) -> Result<()> {
        let mut b = LinkBridge::new(name)
            .down()
            .stp_state(rtnetlink::packet_route::link::BridgeStpState::Disabled);
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        self.add(Op::CreateBridge, name, b.build()).await
    }

    /// Create a VXLAN device (down), without a lower device.
    pub async fn create_vxlan(&self, name: &str, opts: &VxlanOpts) -> Result<()> {
        let mut b = LinkVxlan::new(name, opts.vni)
            .port(opts.port)
            .learning(opts.learning);
        b = match opts.local {
            IpAddr::V4(a) => b.local(a),
            IpAddr::V6(a) => b.local6(a),
        };
        if let Some(m) = opts.mtu {
            b = b.mtu(m);
        }
        self.add(Op::CreateVxlan, name, b.build()).await
    }

    /// Create a veth pair `name` <-> `peer` (both down), both ends with `mtu` if given.
    pub async fn create_veth(&self, name: &str, peer: &str, mtu: Option<u32>) -> Result<()> {
        let mut b = LinkVeth::new(name, peer);
        if let Some(m) = mtu {
            let mut p = LinkUnspec::new_with_name(peer);
            p = p.mtu(m);
            b = b
                .mtu(m)
                .set_info_data(InfoData::Veth(InfoVeth::Peer(p.build())));
        }
        self.add(Op::CreateVeth, name, b.build()).await
    }

    /// Delete a link (for a veth, both ends go).
    pub async fn delete_link(&self, name: &str) -> Result<()> {
        let idx = self
            .index_of(name)
            .await
            .map_err(|e| with_op(e, Op::DeleteLink))?;
        self.delete_link_at(idx, name).await
    }

    pub(crate) async fn delete_link_at(&self, index: u32, name: &str) -> Result<()> {
        self.handle
            .link()
            .del(index)
            .execute()
            .await
            .map_err(|e| Error::from_rtnl(Op::DeleteLink, name, e))
    }

    /// Enslave `name` to the bridge `master`, or release it with `None`.
    pub async fn set_master(&self, name: &str, master: Option<&str>) -> Result<()> {
        let idx = self
            .index_of(name)
            .await
            .map_err(|e| with_op(e, Op::SetMaster))?;
        let m = match master {
            Some(m) => self
                .index_of(m)
                .await
                .map_err(|e| with_op(e, Op::SetMaster))?,
            None => 0,
        };
        self.set_master_at(idx, name, m).await
    }

    pub(crate) async fn set_master_at(&self, index: u32, name: &str, master: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).controller(master).build();
        self.change_at(Op::SetMaster, name, msg).await
    }

    /// Set bridge-port options of `name` (which must be enslaved to a bridge).
    /// `None` leaves an option unchanged.
    pub async fn set_bridge_port(
        &self,
        name: &str,
        learning: Option<bool>,
        neigh_suppress: Option<bool>,
    ) -> Result<()> {
        let idx = self
            .index_of(name)
            .await
            .map_err(|e| with_op(e, Op::SetBridgePort))?;
        self.set_bridge_port_at(idx, name, learning, neigh_suppress)
            .await
    }

    pub(crate) async fn set_bridge_port_at(
        &self,
        index: u32,
        name: &str,
        learning: Option<bool>,
        neigh_suppress: Option<bool>,
    ) -> Result<()> {
        let mut b = LinkBridgePort::new(index);
        if let Some(l) = learning {
            b = b.learning(l);
        }
        if let Some(n) = neigh_suppress {
            b = b.neigh_suppress(n);
        }
        self.handle
            .link()
            .set_port(b.build())
            .execute()
            .await
            .map_err(|e| Error::from_rtnl(Op::SetBridgePort, name, e))
    }

    /// Set the MAC address of `name`.
    pub async fn set_mac(&self, name: &str, mac: Mac) -> Result<()> {
        let idx = self
            .index_of(name)
            .await
            .map_err(|e| with_op(e, Op::SetMac))?;
        self.set_mac_at(idx, name, mac).await
    }

    /// [`Netlink::set_mac`] on interface index `index` (`name` is for messages).
    pub async fn set_mac_at(&self, index: u32, name: &str, mac: Mac) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index)
            .address(mac.as_bytes().to_vec())
            .build();
        self.change_at(Op::SetMac, name, msg).await
    }

    /// Set the MTU of `name`.
    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        let idx = self
            .index_of(name)
            .await
            .map_err(|e| with_op(e, Op::SetMtu))?;
        self.set_mtu_at(idx, name, mtu).await
    }

    pub(crate) async fn set_mtu_at(&self, index: u32, name: &str, mtu: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.change_at(Op::SetMtu, name, msg).await
    }

    /// Set `name` administratively up or down.
    pub async fn set_up(&self, name: &str, up: bool) -> Result<()> {
        let op = if up { Op::SetUp } else { Op::SetDown };
        let idx = self.index_of(name).await.map_err(|e| with_op(e, op))?;
        self.set_up_at(idx, name, up).await
    }

    pub(crate) async fn set_up_at(&self, index: u32, name: &str, up: bool) -> Result<()> {
        let b = LinkUnspec::new_with_index(index);
        let (op, b) = if up {
            (Op::SetUp, b.up())
        } else {
            (Op::SetDown, b.down())
        };
        self.change_at(op, name, b.build()).await
    }

    /// Set the IPv6 address generation mode of `name` to `none` (no automatic link-local).
    pub async fn set_addr_gen_mode_none(&self, name: &str) -> Result<()> {
        let idx = self
            .index_of(name)
            .await
            .map_err(|e| with_op(e, Op::SetAddrGenMode))?;
        self.set_addr_gen_mode_none_at(idx, name).await
    }

    pub(crate) async fn set_addr_gen_mode_none_at(&self, index: u32, name: &str) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index)
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
            )]))
            .build();
        self.change_at(Op::SetAddrGenMode, name, msg).await
    }

    /// Set the alias (`IFLA_IFALIAS`, what `ip link set … alias` sets) of link `index`. Owners
    /// use it to tag devices with data the name cannot carry (e.g. an ID).
    pub async fn set_alias_at(&self, index: u32, name: &str, alias: &str) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index)
            .append_extra_attribute(LinkAttribute::IfAlias(alias.to_string()))
            .build();
        self.change_at(Op::SetAlias, name, msg).await
    }

    /// Every link's `(index, name, alias)`; links without an alias are left out.
    pub async fn list_aliases(&self) -> Result<Vec<(u32, String, String)>> {
        let _turn = self.dump_turn().await;
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::from_rtnl(Op::ListLinks, "all", e))?;
        Ok(msgs
            .iter()
            .filter_map(|m| {
                let alias = m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfAlias(s) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                })?;
                let name = m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(s) => Some(s.clone()),
                    _ => None,
                })?;
                Some((m.header.index, name, alias))
            })
            .collect())
    }

    /// Write `/proc/sys/net/ipv6/conf/<name>/accept_dad` (in the calling thread's namespace).
    /// The kernel has no netlink setter for per-device IPv6 sysctls.
    pub fn set_accept_dad(&self, name: &str, value: i32) -> Result<()> {
        crate::sysctl::write_ipv6_conf(name, "accept_dad", value)
    }
}

/// Re-label a lookup error with the operation that needed the lookup.
fn with_op(e: Error, op: Op) -> Error {
    match e {
        Error::NotFound { target, .. } => Error::NotFound { op, target },
        Error::Exists { target, .. } => Error::Exists { op, target },
        Error::Os { target, source, .. } => Error::Os { op, target, source },
        Error::Netlink { target, detail, .. } => Error::Netlink { op, target, detail },
        other => other,
    }
}
