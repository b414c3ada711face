//! Sans-IO planning: desired state + observed kernel state → the ordered [`Action`]s that close
//! the gap. Nothing here talks to the kernel; [`crate::dataplane`] observes and executes.
//!
//! Every planner is idempotent: run on the state its own actions produce, it returns no actions.

use std::fmt;
use std::net::IpAddr;

use evpn_model::Mac;
use ipnet::IpNet;

use crate::addr::{Addr, eui64_link_local};
use crate::error::{Error, Op, Result};
use crate::fdb::{FdbEntry, FdbState, FdbTable};
use crate::link::{AddrGenMode, Link, LinkKind, VXLAN_PORT};
use crate::names::{EvpnNames, Slug};

/// Desired bridge + VXLAN of one eVPN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvpnSpec {
    /// The eVPN slug (names the devices).
    pub slug: Slug,
    /// VNI.
    pub vni: u32,
    /// Local VTEP address.
    pub vtep: IpAddr,
    /// Overlay MTU (bridge, VXLAN device, both veth ends).
    pub mtu: u32,
}

/// Desired BVI (veth pair) of one eVPN, in its unbound form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BviSpec {
    /// The eVPN slug.
    pub slug: Slug,
    /// Per-host MAC of `bvi-<slug>`; its EUI-64 link-local is the BVI's only automatic address.
    pub mac: Mac,
    /// MTU of both veth ends.
    pub mtu: u32,
}

/// One kernel change. Devices are named; the executor resolves names to indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create a bridge (down, STP off, VLAN filtering at the kernel default: off).
    CreateBridge {
        /// Bridge name.
        name: String,
        /// MTU.
        mtu: u32,
    },
    /// Create a VXLAN device (down).
    CreateVxlan {
        /// Device name.
        name: String,
        /// VNI.
        vni: u32,
        /// Local VTEP.
        local: IpAddr,
        /// UDP port.
        port: u16,
        /// MTU.
        mtu: u32,
    },
    /// Create a veth pair (both ends down).
    CreateVeth {
        /// First end.
        name: String,
        /// Peer end.
        peer: String,
        /// MTU of both ends.
        mtu: u32,
    },
    /// Delete a link.
    DeleteLink {
        /// Device name.
        name: String,
    },
    /// Enslave to a bridge.
    SetMaster {
        /// Device name.
        name: String,
        /// Bridge name.
        master: String,
    },
    /// Set bridge-port learning.
    SetLearning {
        /// Port name.
        name: String,
        /// Learning on/off.
        on: bool,
    },
    /// Set the MAC address.
    SetMac {
        /// Device name.
        name: String,
        /// New MAC.
        mac: Mac,
    },
    /// Set the MTU.
    SetMtu {
        /// Device name.
        name: String,
        /// New MTU.
        mtu: u32,
    },
    /// Set administratively up.
    SetUp {
        /// Device name.
        name: String,
    },
    /// Set IPv6 addrgenmode none.
    SetAddrGenModeNone {
        /// Device name.
        name: String,
    },
    /// Write the `accept_dad` sysctl.
    SetAcceptDad {
        /// Device name.
        name: String,
        /// Value.
        value: i32,
    },
    /// Add an address (IPv6 with nodad).
    AddAddress {
        /// Device name.
        name: String,
        /// Address.
        net: IpNet,
    },
    /// Delete an address.
    DeleteAddress {
        /// Device name.
        name: String,
        /// Address.
        net: IpNet,
    },
    /// Add a static bridge FDB entry on a port.
    AddFdbStatic {
        /// Port name.
        port: String,
        /// MAC.
        mac: Mac,
    },
    /// Delete a bridge FDB entry.
    DeleteFdb {
        /// Device the entry is on.
        dev: String,
        /// MAC.
        mac: Mac,
        /// Bridge table or the device's own table.
        table: FdbTable,
    },
}

impl Action {
    /// True for an action that creates or deletes a device. After an [`crate::Dataplane::ensure_evpn`]
    /// that did this while BIRD was running, BIRD 2.20 may keep the EVPN protocol in `start`
    /// ("Interface … is not VXLAN"): the caller must apply the `docs/bird-notes.md` §4.6 mitigation (wait
    /// for a device scan, then `restart` the evpn protocol).
    pub fn changes_devices(&self) -> bool {
        matches!(
            self,
            Action::CreateBridge { .. }
                | Action::CreateVxlan { .. }
                | Action::CreateVeth { .. }
                | Action::DeleteLink { .. }
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateBridge { name, mtu } => write!(f, "create bridge {name} mtu {mtu}"),
            Action::CreateVxlan {
                name,
                vni,
                local,
                port,
                mtu,
            } => write!(
                f,
                "create vxlan {name} id {vni} local {local} dstport {port} nolearning mtu {mtu}"
            ),
            Action::CreateVeth { name, peer, mtu } => {
                write!(f, "create veth {name} peer {peer} mtu {mtu}")
            }
            Action::DeleteLink { name } => write!(f, "delete link {name}"),
            Action::SetMaster { name, master } => write!(f, "set {name} master {master}"),
            Action::SetLearning { name, on } => {
                write!(f, "set {name} learning {}", if *on { "on" } else { "off" })
            }
            Action::SetMac { name, mac } => write!(f, "set {name} address {mac}"),
            Action::SetMtu { name, mtu } => write!(f, "set {name} mtu {mtu}"),
            Action::SetUp { name } => write!(f, "set {name} up"),
            Action::SetAddrGenModeNone { name } => write!(f, "set {name} addrgenmode none"),
            Action::SetAcceptDad { name, value } => write!(f, "set {name} accept_dad {value}"),
            Action::AddAddress { name, net } => write!(f, "add address {net} dev {name}"),
            Action::DeleteAddress { name, net } => write!(f, "delete address {net} dev {name}"),
            Action::AddFdbStatic { port, mac } => {
                write!(f, "fdb add {mac} dev {port} master static")
            }
            Action::DeleteFdb { dev, mac, table } => write!(
                f,
                "fdb del {mac} dev {dev} {}",
                match table {
                    FdbTable::Master => "master",
                    FdbTable::OwnTable => "self",
                }
            ),
        }
    }
}

/// What the kernel has for one eVPN (the input of every planner and of reconcile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The device names of the eVPN.
    pub names: EvpnNames,
    /// `brg-<slug>`, if present.
    pub bridge: Option<Link>,
    /// `vxl-<slug>`, if present.
    pub vxlan: Option<Link>,
    /// `bvp-<slug>`, if present.
    pub port: Option<Link>,
    /// `bvi-<slug>`, if present.
    pub bvi: Option<Link>,
    /// Every link enslaved to the bridge (to name FDB entries' devices).
    pub bridge_ports: Vec<Link>,
    /// Addresses of the BVI.
    pub bvi_addrs: Vec<Addr>,
    /// Bridge-table entries of the bridge and the VXLAN device's own entries.
    pub fdb: Vec<FdbEntry>,
}

impl Observed {
    /// Nothing exists yet.
    pub fn empty(slug: &Slug) -> Observed {
        Observed {
            names: slug.names(),
            bridge: None,
            vxlan: None,
            port: None,
            bvi: None,
            bridge_ports: Vec::new(),
            bvi_addrs: Vec::new(),
            fdb: Vec::new(),
        }
    }

    /// The bridge-table entry for `mac` in our bridge, if any.
    pub fn bridge_entry(&self, mac: Mac) -> Option<&FdbEntry> {
        let br = self.bridge.as_ref()?.index;
        self.fdb
            .iter()
            .find(|e| e.mac == mac && e.in_bridge() && e.master == Some(br) && e.vlan.is_none())
    }

    /// Bridge-table entries on the BVI port that we manage (everything but the kernel's local
    /// `permanent` entry for the port's own MAC).
    pub fn port_entries(&self) -> Vec<&FdbEntry> {
        let Some(port) = &self.port else {
            return Vec::new();
        };
        self.fdb
            .iter()
            .filter(|e| e.index == port.index && e.in_bridge() && e.state != FdbState::Permanent)
            .collect()
    }

    /// True when the BVI carries `vmac`, the port has a clean static entry for it and all
    /// `addrs` are present and usable: the gateway is bound here.
    pub fn is_bound(&self, vmac: Mac, addrs: &[IpNet]) -> bool {
        let Some(bvi) = &self.bvi else { return false };
        bvi.mac == Some(vmac) && self.static_ok(vmac) && addrs.iter().all(|a| self.addr_ok(a))
    }

    /// True when the port's managed FDB entries match the BVI's MAC `cur`: one clean static
    /// entry for it when it is a vMAC (`gateway`), none when it is the per-host MAC; and in
    /// either case no static entry on the VXLAN device ([`Observed::stray_statics`]).
    pub fn fdb_consistent(&self, cur: Mac, gateway: bool) -> bool {
        if !self.stray_statics().is_empty() {
            return false;
        }
        let entries = self.port_entries();
        if !gateway {
            return entries.is_empty();
        }
        entries.len() == 1 && self.static_ok(cur)
    }

    /// Bridge entries on the VXLAN device in the `static` state: never right. BIRD's remote
    /// entries are `extern_learn` and not static; a static one is either our own port entry
    /// that BIRD moved onto the VXLAN device by installing another VTEP's route over it (the
    /// kernel keeps the static flag: `extern_learn … static`, it never ages and points the MAC
    /// the wrong way) or one made by hand.
    pub fn stray_statics(&self) -> Vec<&FdbEntry> {
        let (Some(br), Some(vx)) = (&self.bridge, &self.vxlan) else {
            return Vec::new();
        };
        self.fdb
            .iter()
            .filter(|e| {
                e.index == vx.index
                    && e.in_bridge()
                    && e.master == Some(br.index)
                    && e.state == FdbState::Static
            })
            .collect()
    }

    fn static_ok(&self, mac: Mac) -> bool {
        match (self.bridge_entry(mac), &self.port) {
            (Some(e), Some(p)) => {
                e.index == p.index && e.state == FdbState::Static && !e.extern_learn
            }
            _ => false,
        }
    }

    fn addr_ok(&self, net: &IpNet) -> bool {
        self.bvi_addrs
            .iter()
            .any(|a| a.net == *net && !a.tentative && !a.dad_failed)
    }

    fn name_of(&self, index: u32) -> Option<String> {
        [&self.bridge, &self.vxlan, &self.port, &self.bvi]
            .into_iter()
            .flatten()
            .chain(self.bridge_ports.iter())
            .find(|l| l.index == index)
            .map(|l| l.name.clone())
    }
}

fn conflict(name: &str, detail: impl Into<String>) -> Error {
    Error::Conflict {
        target: name.to_string(),
        detail: detail.into(),
    }
}

fn expect_kind(link: &Link, kind: LinkKind) -> Result<()> {
    if link.kind == kind {
        Ok(())
    } else {
        Err(conflict(
            &link.name,
            format!("is a {:?} device, expected {kind:?}", link.kind),
        ))
    }
}

/// A new device (`None`) needs addrgenmode none; an existing one only if it reports IPv6
/// information with another mode (no IPv6 information means IPv6 is off on that link).
fn needs_gen_mode_none(link: Option<&Link>) -> bool {
    match link {
        None => true,
        Some(l) => l.addr_gen_mode.is_some_and(|m| m != AddrGenMode::None),
    }
}

/// Like [`needs_gen_mode_none`], for `accept_dad` 0.
fn needs_accept_dad_0(link: Option<&Link>) -> bool {
    match link {
        None => true,
        Some(l) => l.accept_dad.is_some_and(|v| v != 0),
    }
}

/// Common settings of a port device: IPv6 off (addrgenmode none), enslaved, learning off,
/// MTU, up. `fresh` means the device is being created by the same plan.
fn plan_port(
    out: &mut Vec<Action>,
    name: &str,
    link: Option<&Link>,
    bridge: &str,
    bridge_index: Option<u32>,
    mtu: u32,
) {
    let fresh = link.is_none();
    if needs_gen_mode_none(link) {
        out.push(Action::SetAddrGenModeNone { name: name.into() });
    }
    if fresh || bridge_index.is_none() || link.and_then(|l| l.master) != bridge_index {
        out.push(Action::SetMaster {
            name: name.into(),
            master: bridge.into(),
        });
    }
    if fresh
        || bridge_index.is_none()
        || link.and_then(|l| l.master) != bridge_index
        || link.and_then(|l| l.port).is_none_or(|p| p.learning)
    {
        out.push(Action::SetLearning {
            name: name.into(),
            on: false,
        });
    }
    if link.is_some_and(|l| l.mtu != mtu) {
        out.push(Action::SetMtu {
            name: name.into(),
            mtu,
        });
    }
    if !link.is_some_and(|l| l.up) {
        out.push(Action::SetUp { name: name.into() });
    }
}

/// Plan the bridge and VXLAN device of an eVPN.
///
/// A device under one of our names with the wrong kind is a [`Error::Conflict`]; a VXLAN device
/// with the wrong VNI, local address, port or learning is deleted and recreated.
pub fn plan_ensure_evpn(spec: &EvpnSpec, obs: &Observed) -> Result<Vec<Action>> {
    let n = &obs.names;
    let mut out = Vec::new();
    // Bridge.
    let br = obs.bridge.as_ref();
    match br {
        None => out.push(Action::CreateBridge {
            name: n.bridge.clone(),
            mtu: spec.mtu,
        }),
        Some(l) => {
            expect_kind(l, LinkKind::Bridge)?;
            if l.bridge_stp == Some(true) || l.bridge_vlan_filtering == Some(true) {
                return Err(conflict(
                    &l.name,
                    "bridge has STP or VLAN filtering enabled",
                ));
            }
            if l.mtu != spec.mtu {
                out.push(Action::SetMtu {
                    name: n.bridge.clone(),
                    mtu: spec.mtu,
                });
            }
        }
    }
    if needs_gen_mode_none(br) {
        out.push(Action::SetAddrGenModeNone {
            name: n.bridge.clone(),
        });
    }
    if needs_accept_dad_0(br) {
        out.push(Action::SetAcceptDad {
            name: n.bridge.clone(),
            value: 0,
        });
    }
    // VXLAN.
    let mut vx = obs.vxlan.as_ref();
    if let Some(l) = vx {
        expect_kind(l, LinkKind::Vxlan)?;
        let ok = l.vxlan.as_ref().is_some_and(|v| {
            v.vni == spec.vni && v.local == Some(spec.vtep) && v.port == VXLAN_PORT && !v.learning
        });
        if !ok {
            out.push(Action::DeleteLink {
                name: n.vxlan.clone(),
            });
            vx = None;
        }
    }
    if vx.is_none() {
        out.push(Action::CreateVxlan {
            name: n.vxlan.clone(),
            vni: spec.vni,
            local: spec.vtep,
            port: VXLAN_PORT,
            mtu: spec.mtu,
        });
    }
    plan_port(
        &mut out,
        &n.vxlan,
        vx,
        &n.bridge,
        br.map(|b| b.index),
        spec.mtu,
    );
    if !br.is_some_and(|l| l.up) {
        out.push(Action::SetUp {
            name: n.bridge.clone(),
        });
    }
    Ok(out)
}

/// Plan the BVI veth pair: `bvp-<slug>` in the bridge with learning off and IPv6 off;
/// `bvi-<slug>` with addrgenmode none, accept_dad 0, MTU, up, and the EUI-64 link-local of
/// `spec.mac` as its only link-local.
///
/// The MAC is set only when the pair is created: on an existing BVI the MAC belongs to
/// [`plan_set_mac`] (it may carry the gateway vMAC right now), so a daemon restart never
/// causes an outage.
pub fn plan_ensure_bvi(spec: &BviSpec, obs: &Observed) -> Result<Vec<Action>> {
    let n = &obs.names;
    let mut out = Vec::new();
    let Some(bridge) = obs.bridge.as_ref() else {
        return Err(Error::NotFound {
            op: Op::SetMaster,
            target: n.bridge.clone(),
        });
    };
    let (mut bvi, mut port) = (obs.bvi.as_ref(), obs.port.as_ref());
    if let Some(l) = bvi {
        expect_kind(l, LinkKind::Veth)?;
    }
    if let Some(l) = port {
        expect_kind(l, LinkKind::Veth)?;
    }
    let paired = match (bvi, port) {
        (Some(b), Some(p)) => b.link == Some(p.index) && p.link == Some(b.index),
        _ => false,
    };
    if !paired {
        for l in [bvi, port].into_iter().flatten() {
            out.push(Action::DeleteLink {
                name: l.name.clone(),
            });
        }
        out.push(Action::CreateVeth {
            name: n.bvi.clone(),
            peer: n.port.clone(),
            mtu: spec.mtu,
        });
        bvi = None;
        port = None;
    }
    plan_port(
        &mut out,
        &n.port,
        port,
        &n.bridge,
        Some(bridge.index),
        spec.mtu,
    );
    // The BVI itself.
    if needs_gen_mode_none(bvi) {
        out.push(Action::SetAddrGenModeNone {
            name: n.bvi.clone(),
        });
    }
    if needs_accept_dad_0(bvi) {
        out.push(Action::SetAcceptDad {
            name: n.bvi.clone(),
            value: 0,
        });
    }
    if bvi.is_none() {
        out.push(Action::SetMac {
            name: n.bvi.clone(),
            mac: spec.mac,
        });
    }
    if bvi.is_some_and(|l| l.mtu != spec.mtu) {
        out.push(Action::SetMtu {
            name: n.bvi.clone(),
            mtu: spec.mtu,
        });
    }
    // IPv6 addresses are flushed when a link goes down: up first, then the link-local.
    if !bvi.is_some_and(|l| l.up) {
        out.push(Action::SetUp {
            name: n.bvi.clone(),
        });
    }
    let addrs: &[Addr] = if bvi.is_some() { &obs.bvi_addrs } else { &[] };
    plan_link_local(&mut out, &n.bvi, spec.mac, addrs, true);
    Ok(out)
}

/// Ensure the EUI-64 link-local of `mac` is present and usable; with `exclusive`, remove any
/// other link-local first.
fn plan_link_local(out: &mut Vec<Action>, bvi: &str, mac: Mac, addrs: &[Addr], exclusive: bool) {
    let ll = eui64_link_local(mac);
    if exclusive {
        for a in addrs
            .iter()
            .filter(|a| a.is_link_local() && a.net.addr() != ll.addr())
        {
            out.push(Action::DeleteAddress {
                name: bvi.into(),
                net: a.net,
            });
        }
    }
    plan_address(out, bvi, ll, addrs);
}

/// Ensure `net` is on the device and usable (not tentative, no DAD failure, right prefix).
fn plan_address(out: &mut Vec<Action>, dev: &str, net: IpNet, addrs: &[Addr]) {
    let mut ok = false;
    for a in addrs.iter().filter(|a| a.net.addr() == net.addr()) {
        if a.net == net && !a.tentative && !a.dad_failed {
            ok = true;
        } else {
            out.push(Action::DeleteAddress {
                name: dev.into(),
                net: a.net,
            });
        }
    }
    if !ok {
        out.push(Action::AddAddress {
            name: dev.into(),
            net,
        });
    }
}

/// The BVI's MAC and the FDB that tells BIRD about it (the "tell BIRD" step of a bind or
/// release; the order around it — addresses, link-local — is the caller's planner's).
///
/// With a vMAC (`vmac`): delete the bridge's current entry for it unless it already is our
/// clean static one (BIRD's remote `extern_learn` entry on the VXLAN device; `replace` would
/// keep `extern_learn` and BIRD would never advertise us), set the MAC, add the static entry
/// on the port (what BIRD advertises), then delete any other managed entry on the port (a
/// stale vMAC). With the per-host MAC: delete every managed entry on the port first (the
/// withdrawal; a learned one would otherwise linger for the 300 s ageing time and keep the
/// vMAC advertised), then set the MAC. Either way every [`Observed::stray_statics`] entry is
/// deleted first. No BVI: nothing.
pub fn plan_set_mac(obs: &Observed, mac: Mac, vmac: bool) -> Vec<Action> {
    let n = &obs.names;
    let mut out = Vec::new();
    let Some(bvi) = &obs.bvi else { return out };
    for e in obs.stray_statics() {
        // The vMAC's own entry is handled below.
        if !(vmac && e.mac == mac) {
            out.push(Action::DeleteFdb {
                dev: n.vxlan.clone(),
                mac: e.mac,
                table: FdbTable::Master,
            });
        }
    }
    if !vmac {
        for e in obs.port_entries() {
            out.push(Action::DeleteFdb {
                dev: n.port.clone(),
                mac: e.mac,
                table: FdbTable::Master,
            });
        }
        if bvi.mac != Some(mac) {
            out.push(Action::SetMac {
                name: n.bvi.clone(),
                mac,
            });
        }
        return out;
    }
    let clean = obs.static_ok(mac);
    if let Some(e) = obs.bridge_entry(mac)
        && !clean
    {
        out.push(Action::DeleteFdb {
            dev: obs.name_of(e.index).unwrap_or_else(|| n.vxlan.clone()),
            mac,
            table: FdbTable::Master,
        });
    }
    if bvi.mac != Some(mac) {
        out.push(Action::SetMac {
            name: n.bvi.clone(),
            mac,
        });
    }
    if !clean {
        out.push(Action::AddFdbStatic {
            port: n.port.clone(),
            mac,
        });
    }
    for e in obs.port_entries() {
        if e.mac != mac {
            out.push(Action::DeleteFdb {
                dev: n.port.clone(),
                mac: e.mac,
                table: FdbTable::Master,
            });
        }
    }
    out
}

/// Plan removing all devices of an eVPN (BVI pair, VXLAN device, bridge). FDB entries and
/// addresses go with their devices.
pub fn plan_remove_evpn(obs: &Observed) -> Vec<Action> {
    let mut out = Vec::new();
    let mut bvi_pair_deleted = false;
    if let Some(l) = &obs.bvi {
        out.push(Action::DeleteLink {
            name: l.name.clone(),
        });
        bvi_pair_deleted = obs.port.as_ref().is_some_and(|p| l.link == Some(p.index));
    }
    if let Some(l) = &obs.port
        && !bvi_pair_deleted
    {
        out.push(Action::DeleteLink {
            name: l.name.clone(),
        });
    }
    for l in [&obs.vxlan, &obs.bridge].into_iter().flatten() {
        out.push(Action::DeleteLink {
            name: l.name.clone(),
        });
    }
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
