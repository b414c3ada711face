//! The bridge forwarding database (AF_BRIDGE neighbours) over rtnetlink.

use std::net::IpAddr;

use evpn_model::Mac;
use futures::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};

use crate::error::{Error, Op, Result};
use crate::link::Netlink;

/// The state of an FDB entry (`ndm_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdbState {
    /// `NUD_PERMANENT`: in a bridge this is a *local* entry (frames to it go up the bridge
    /// device); also how the VXLAN driver marks its own (`self`) entries.
    Permanent,
    /// `NUD_NOARP`: `bridge fdb add … static` (forwarded to the port, never aged).
    Static,
    /// `NUD_REACHABLE`/`NUD_STALE`: learned, subject to ageing.
    Dynamic,
    /// Any other value.
    Other(u16),
}

/// One FDB entry as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbEntry {
    /// MAC address.
    pub mac: Mac,
    /// Index of the device the entry is on (a bridge port, or the VXLAN device for `self`).
    pub index: u32,
    /// `NDA_MASTER`: the bridge owning a `master` entry.
    pub master: Option<u32>,
    /// VLAN, if any.
    pub vlan: Option<u16>,
    /// Remote VTEP (`dst`), for VXLAN `self` entries.
    pub dst: Option<IpAddr>,
    /// VNI, if reported.
    pub vni: Option<u32>,
    /// `NTF_SELF`: the entry is in the device's own table (VXLAN remote table).
    pub is_self: bool,
    /// `NTF_MASTER`: the entry is in the bridge's table.
    pub is_master: bool,
    /// `NTF_EXT_LEARNED`: installed by a control plane (BIRD's remote entries).
    pub extern_learn: bool,
    /// `NTF_STICKY`.
    pub sticky: bool,
    /// State.
    pub state: FdbState,
}

impl FdbEntry {
    /// True for an entry in the bridge's table (as opposed to a VXLAN device's own table).
    /// Dumps of bridge entries carry `NDA_MASTER`; the `NTF_MASTER` flag is not always set.
    pub fn in_bridge(&self) -> bool {
        self.is_master || (self.master.is_some() && !self.is_self)
    }
}

pub(crate) fn parse_fdb(msg: &NeighbourMessage) -> Option<FdbEntry> {
    if msg.header.family != AddressFamily::Bridge {
        return None;
    }
    let mut e = FdbEntry {
        mac: Mac::ZERO,
        index: msg.header.ifindex,
        master: None,
        vlan: None,
        dst: None,
        vni: None,
        is_self: msg.header.flags.contains(NeighbourFlags::Own),
        is_master: msg.header.flags.contains(NeighbourFlags::Controller),
        extern_learn: msg.header.flags.contains(NeighbourFlags::ExtLearned),
        sticky: msg.header.flags.contains(NeighbourFlags::Sticky),
        state: match msg.header.state {
            NeighbourState::Permanent => FdbState::Permanent,
            NeighbourState::Noarp => FdbState::Static,
            NeighbourState::Reachable | NeighbourState::Stale => FdbState::Dynamic,
            other => FdbState::Other(u16::from(other)),
        },
    };
    let mut have_mac = false;
    for a in &msg.attributes {
        match a {
            NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => {
                let mut b = [0u8; 6];
                b.copy_from_slice(l);
                e.mac = Mac::from(b);
                have_mac = true;
            }
            NeighbourAttribute::Controller(m) => e.master = Some(*m),
            NeighbourAttribute::Vlan(v) => e.vlan = Some(*v),
            NeighbourAttribute::Vni(v) => e.vni = Some(*v),
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                e.dst = Some(IpAddr::V4(*a))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                e.dst = Some(IpAddr::V6(*a))
            }
            // In AF_BRIDGE messages the parser cannot tell the address family of NDA_DST.
            NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
                e.dst = match b.len() {
                    4 => Some(IpAddr::from([b[0], b[1], b[2], b[3]])),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(b);
                        Some(IpAddr::from(a))
                    }
                    _ => None,
                }
            }
            _ => {}
        }
    }
    have_mac.then_some(e)
}

/// Which table an FDB delete targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdbTable {
    /// The bridge's table (`bridge fdb del … master`).
    Master,
    /// The device's own table (`bridge fdb del … self`, e.g. VXLAN remotes).
    OwnTable,
}

impl Netlink {
    /// Dump the whole bridge FDB (all bridges, all ports, VXLAN `self` entries).
    pub async fn list_fdb(&self) -> Result<Vec<FdbEntry>> {
        let _turn = self.dump_turn().await;
        let msgs: Vec<NeighbourMessage> = self
            .handle()
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Bridge)
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::from_rtnl(Op::ListFdb, "all", e))?;
        Ok(msgs.iter().filter_map(parse_fdb).collect())
    }

    /// Dump the FDB entries of bridge `bridge` only (filtered in the kernel): its own table
    /// (`master` entries on every port) and the own tables (`self`) of its ports, such as the
    /// VXLAN remotes. Needs a strict-checking connection ([`Netlink::connect`] opens one).
    pub async fn list_fdb_of_bridge(&self, bridge: u32) -> Result<Vec<FdbEntry>> {
        let _turn = self.dump_turn().await;
        let mut req = self
            .handle()
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Bridge);
        req.message_mut()
            .attributes
            .push(NeighbourAttribute::Controller(bridge));
        let msgs: Vec<NeighbourMessage> = req
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::from_rtnl(Op::ListFdb, format!("#{bridge}"), e))?;
        Ok(msgs.iter().filter_map(parse_fdb).collect())
    }

    /// Add a static entry for `mac` on bridge port `port` (`bridge fdb add MAC dev PORT master
    /// static`). Fails with [`Error::Exists`] if the bridge already has an entry for `mac`,
    /// e.g. BIRD's remote one: delete that first, never `replace` it (a replaced entry keeps
    /// `extern_learn` and BIRD stops advertising it).
    pub async fn add_fdb_static(&self, port: &str, mac: Mac) -> Result<()> {
        let idx = self
            .index_of(port)
            .await
            .map_err(|e| relabel(e, Op::AddFdb))?;
        self.add_fdb_static_at(idx, port, mac).await
    }

    /// [`Netlink::add_fdb_static`] on port index `index` (`port` is for messages).
    pub async fn add_fdb_static_at(&self, index: u32, port: &str, mac: Mac) -> Result<()> {
        self.add_fdb_at(index, port, mac, FdbState::Static, false)
            .await
    }

    /// Add a bridge-table entry for `mac` on bridge port `dev` in `state`, optionally marked
    /// `extern_learn` the way a control plane (BIRD) installs remote MACs. Beware:
    /// [`FdbState::Permanent`] makes a *local* entry (frames go up the bridge, not to `dev`).
    pub async fn add_fdb(
        &self,
        dev: &str,
        mac: Mac,
        state: FdbState,
        extern_learn: bool,
    ) -> Result<()> {
        let idx = self
            .index_of(dev)
            .await
            .map_err(|e| relabel(e, Op::AddFdb))?;
        self.add_fdb_at(idx, dev, mac, state, extern_learn).await
    }

    async fn add_fdb_at(
        &self,
        index: u32,
        dev: &str,
        mac: Mac,
        state: FdbState,
        extern_learn: bool,
    ) -> Result<()> {
        let mut flags = NeighbourFlags::Controller;
        if extern_learn {
            flags |= NeighbourFlags::ExtLearned;
        }
        let state = match state {
            FdbState::Permanent => NeighbourState::Permanent,
            FdbState::Static => NeighbourState::Noarp,
            FdbState::Dynamic => NeighbourState::Reachable,
            FdbState::Other(v) => NeighbourState::from(v),
        };
        self.handle()
            .neighbours()
            .add_bridge(index, mac.as_bytes())
            .state(state)
            .flags(flags)
            .execute()
            .await
            .map_err(|e| Error::from_rtnl(Op::AddFdb, format!("{dev} {mac}"), e))
    }

    /// Delete the entry for `mac` on device `dev` from `table`. For a VXLAN device's own table,
    /// `dst` selects one remote (all remotes of the MAC go when `None`).
    /// [`Error::NotFound`] if there is no such entry.
    pub async fn delete_fdb(
        &self,
        dev: &str,
        mac: Mac,
        table: FdbTable,
        dst: Option<IpAddr>,
    ) -> Result<()> {
        let idx = self
            .index_of(dev)
            .await
            .map_err(|e| relabel(e, Op::DeleteFdb))?;
        self.delete_fdb_at(idx, dev, mac, table, dst).await
    }

    /// [`Netlink::delete_fdb`] on device index `index` (`dev` is for messages).
    pub async fn delete_fdb_at(
        &self,
        index: u32,
        dev: &str,
        mac: Mac,
        table: FdbTable,
        dst: Option<IpAddr>,
    ) -> Result<()> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Bridge;
        msg.header.ifindex = index;
        msg.header.flags = match table {
            FdbTable::Master => NeighbourFlags::Controller,
            FdbTable::OwnTable => NeighbourFlags::Own,
        };
        msg.attributes.push(NeighbourAttribute::LinkLayerAddress(
            mac.as_bytes().to_vec(),
        ));
        match dst {
            Some(IpAddr::V4(a)) => msg
                .attributes
                .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(a))),
            Some(IpAddr::V6(a)) => msg
                .attributes
                .push(NeighbourAttribute::Destination(NeighbourAddress::Inet6(a))),
            None => {}
        }
        self.handle()
            .neighbours()
            .del(msg)
            .execute()
            .await
            .map_err(|e| Error::from_rtnl(Op::DeleteFdb, format!("{dev} {mac}"), e))
    }
}

fn relabel(e: Error, op: Op) -> Error {
    match e {
        Error::NotFound { target, .. } => Error::NotFound { op, target },
        other => other,
    }
}
