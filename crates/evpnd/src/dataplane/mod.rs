//! The dataplane behind a small trait: what evpnd needs to realise an eVPN
//! (a bridge domain) and its BVI (an interface in it with a MAC, MTU,
//! link-local and addresses), and to observe what is actually there.
//!
//! The manager speaks to it in planned steps ([`Write`], from the one BVI
//! planner in `bvi.rs`): [`Dataplane::apply`] runs one stage of them;
//! the per-object methods below are how an implementation carries out each
//! step (and what reads and eVPN-level writes use).
//!
//! Invariant: every write is idempotent (creating what exists or deleting
//! what is gone succeeds: VPP's `BD_ALREADY_EXISTS` and `INVALID_REGISTRATION`
//! for our own bridge domain and loopback are success) so reconcile and
//! retries can call them freely, and no write is called unless the planner
//! decided a change is needed — the zero-change restart depends on it.
use std::net::{IpAddr, Ipv6Addr};

use evpn_model::{Error, Mac};
use ipnet::IpNet;

pub mod linux;
mod linux_drift;
mod linux_table;
pub mod vpp;

/// The identity a BVI's MAC carries. The one rule that tells a vMAC from
/// the per-host MAC is [`BviMac::classify`]; the planner and the Linux
/// dataplane's observation both use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BviMac {
    /// The host's own MAC: the BVI is a candidate (linux: no FDB entry).
    PerHost(Mac),
    /// A group's vMAC: the BVI is the gateway (linux: the static FDB entry
    /// BIRD advertises).
    Gateway(Mac),
}

impl BviMac {
    /// `mac` on a BVI whose per-host MAC is `per_host`: any other MAC is a
    /// vMAC.
    pub fn classify(mac: Mac, per_host: Option<Mac>) -> BviMac {
        if per_host.is_none_or(|p| p == mac) {
            BviMac::PerHost(mac)
        } else {
            BviMac::Gateway(mac)
        }
    }

    /// The MAC itself.
    pub fn mac(self) -> Mac {
        match self {
            BviMac::PerHost(m) | BviMac::Gateway(m) => m,
        }
    }

    /// True for a vMAC.
    pub fn is_gateway(self) -> bool {
        matches!(self, BviMac::Gateway(_))
    }

    /// The BVI's link-local with this MAC (EUI-64; it follows the MAC).
    pub fn link_local(self) -> Ipv6Addr {
        self.mac().link_local()
    }
}

impl std::fmt::Display for BviMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BviMac::PerHost(m) => write!(f, "per-host {m}"),
            BviMac::Gateway(m) => write!(f, "vmac {m}"),
        }
    }
}

/// One planned dataplane write on a BVI (see `bvi.rs` for the order).
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Create the BVI with this MAC, admin up, attached when `attached`.
    Create {
        mac: BviMac,
        attached: bool,
    },
    /// Delete the BVI and its Linux side.
    Delete,
    Mtu(u32),
    Up,
    Attach(bool),
    DelAddress(IpNet),
    /// Set the MAC; on the linux dialect this is also where BIRD learns it
    /// (the static FDB entry for a vMAC, none for the per-host MAC).
    Mac(BviMac),
    /// The link-local (on the dataplane and the Linux side).
    LinkLocal(Ipv6Addr),
    AddAddress(IpNet),
}

impl Write {
    /// A short name for timelines and logs, e.g. `mac`, `add-address 10.0.0.1/24`.
    pub fn label(&self) -> String {
        match self {
            Write::Create { .. } => "create".into(),
            Write::Delete => "delete".into(),
            Write::Mtu(_) => "mtu".into(),
            Write::Up => "up".into(),
            Write::Attach(_) => "attach".into(),
            Write::DelAddress(a) => format!("del-address {a}"),
            Write::Mac(_) => "mac".into(),
            Write::LinkLocal(_) => "link-local".into(),
            Write::AddAddress(a) => format!("add-address {a}"),
        }
    }
}

/// What the dataplane needs to know about an eVPN.
#[derive(Debug, Clone, PartialEq)]
pub struct EvpnRef<'a> {
    pub slug: &'a str,
    pub bd_id: u32,
    pub vni: u32,
    /// The BVI's MTU (the eVPN's when there is no BVI).
    pub mtu: u32,
    /// The eVPN's MTU (bridge and VXLAN device; linux).
    pub evpn_mtu: u32,
    /// Local VTEP address (the linux VXLAN device's `local`); None for orphans.
    pub vtep: Option<IpAddr>,
    /// The BVI's per-host MAC, when it has one (linux `observe` judges the
    /// FDB by [`BviMac::classify`] against it).
    pub instance_mac: Option<Mac>,
}

/// What is observed for one eVPN.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedEvpn {
    /// The bridge domain exists.
    pub bridge: bool,
    /// The BVI, if its interface exists.
    pub bvi: Option<ObservedBvi>,
}

/// What a bind's or release's own writes established (replies with
/// success), for [`Dataplane::read_back`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Known {
    pub mac: Option<Mac>,
    pub link_local: Option<Ipv6Addr>,
}

/// What is observed for one BVI.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedBvi {
    /// Dataplane handle (VPP sw_if_index; 0 where there is none).
    pub handle: u32,
    pub mac: Mac,
    pub mtu: u32,
    pub up: bool,
    /// In the bridge domain as its BVI.
    pub attached: bool,
    /// Global addresses (no link-local), sorted.
    pub addresses: Vec<IpNet>,
    pub link_local: Option<Ipv6Addr>,
    /// The Linux side's interface name, as the dataplane reports it (VPP:
    /// the linux-cp pair's host interface); `None` when there is none.
    pub linux: Option<String>,
}

/// The outcome of [`Dataplane::ensure_linux_side`].
#[derive(Debug, Clone, PartialEq)]
pub enum LinuxSide {
    /// The Linux side exists (now); its interface name.
    Present(String),
    /// This dataplane or its configuration wants no Linux side.
    NotWanted,
    /// The dataplane refused to create it and the configuration allows a BVI
    /// without it (`vpp.linux-cp: auto`); the reason, for the operator.
    Refused(String),
}

/// Dataplane health for GetVPPInfo / metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DpInfo {
    pub connected: bool,
    pub version: String,
    pub build_date: String,
    pub message_table_size: u32,
    pub linux_cp: bool,
    pub missing_messages: Vec<String>,
    pub last_error: String,
    pub connected_since_ms: u64,
}

/// The dataplane operations. Errors are domain errors: `Unavailable` when
/// the dataplane cannot be reached, `Timeout` when it does not answer; a
/// refused operation is classified by the dataplane's reason (VPP: by
/// vpp-api's retval table, docs/vpp.md), `Internal` when unknown.
#[tonic::async_trait]
pub trait Dataplane: Send + Sync + 'static {
    /// "vpp" or "linux" (for GetVPPInfo; behaviour differences are methods).
    fn kind(&self) -> &'static str;
    /// Whether devices the dataplane (re)created under an unchanged BIRD
    /// snippet can leave BIRD's protocols stalled (linux: BIRD 2.20's
    /// hot-added device, `docs/bird-notes.md` §4.6), so reconcile asks BIRD to
    /// recover them.
    fn recreated_devices_stall_bird(&self) -> bool {
        false
    }
    /// Run one planned stage: its writes are independent and sent together
    /// (VPP: pipelined on the API socket, executed in the order sent); the
    /// first error, if any, after all of them finished.
    async fn apply(&self, e: &EvpnRef<'_>, stage: &[Write]) -> Result<(), Error> {
        futures::future::join_all(stage.iter().map(|w| self.write(e, w)))
            .await
            .into_iter()
            .collect()
    }
    /// Carry out one planned write with the methods below.
    async fn write(&self, e: &EvpnRef<'_>, w: &Write) -> Result<(), Error> {
        let start = std::time::Instant::now();
        let r = self.write_one(e, w).await;
        crate::timing::step(|| format!("write {}", w.label()), start);
        r
    }
    /// [`Dataplane::write`] without the timing.
    async fn write_one(&self, e: &EvpnRef<'_>, w: &Write) -> Result<(), Error> {
        match w {
            Write::Create { mac, attached } => {
                self.create_bvi(e, *mac, *attached).await.map(|_| ())
            }
            Write::Delete => self.delete_bvi(e).await,
            Write::Mtu(v) => self.set_mtu(e, *v).await,
            Write::Up => self.set_up(e).await,
            Write::Attach(a) => self.set_attached(e, *a).await,
            Write::DelAddress(a) => self.del_address(e, *a).await,
            Write::Mac(m) => self.set_mac(e, *m).await,
            Write::LinkLocal(ll) => self.set_link_local(e, *ll).await,
            Write::AddAddress(a) => self.add_address(e, *a).await,
        }
    }
    /// Connection and version information; cheap, never blocks on a hung
    /// dataplane for longer than its request timeout.
    async fn info(&self) -> DpInfo;
    /// Try to (re)connect; Ok when usable.
    async fn connect(&self) -> Result<(), Error>;
    /// Observe one eVPN.
    async fn observe(&self, e: &EvpnRef<'_>) -> Result<ObservedEvpn, Error>;
    /// Read back a BVI after a bind or release (`Manager::verify`): what
    /// such a call can change (MAC, link-local, addresses) and what is cheap
    /// to see with it. `known` holds what the call's own writes just
    /// established (their replies said so; not read again). The rest of the
    /// observation (attachment, Linux side, and with a known MAC the MTU and
    /// admin state, which bind and release never write) is reported as
    /// `assumed` says; reconcile observes those. Default: [`Dataplane::observe`].
    async fn read_back(
        &self,
        e: &EvpnRef<'_>,
        known: &Known,
        assumed: &ObservedBvi,
    ) -> Result<Option<ObservedBvi>, Error> {
        let _ = (known, assumed);
        Ok(self.observe(e).await?.bvi)
    }
    /// Bridge domain IDs in `[min, max]` that exist (to find orphans).
    async fn list_bridges(&self, min: u32, max: u32) -> Result<Vec<u32>, Error>;
    /// Create the bridge domain (and whatever else the eVPN needs).
    async fn create_evpn(&self, e: &EvpnRef<'_>) -> Result<(), Error>;
    /// Delete the bridge domain (the BVI must be gone).
    async fn delete_evpn(&self, e: &EvpnRef<'_>) -> Result<(), Error>;
    /// Interfaces in the eVPN's bridge domain other than its BVI and its own
    /// VXLAN side, by name: while there are any, VPP refuses to delete the
    /// bridge domain (BD_IN_USE), so a delete is refused up front. The
    /// Linux kernel detaches other ports when the bridge goes: none.
    async fn bridge_users(&self, e: &EvpnRef<'_>) -> Result<Vec<String>, Error> {
        let _ = e;
        Ok(Vec::new())
    }
    /// Create the BVI interface with `mac` and `mtu`, admin up, attached to
    /// the bridge domain as BVI if `attached`. The Linux side comes with it
    /// where it is part of the interface (linux: the veth); where it is a
    /// separate object (VPP's linux-cp pair) it is made by
    /// [`Dataplane::ensure_linux_side`], after MAC and MTU.
    /// An existing BVI is success (made to match). Returns its handle.
    async fn create_bvi(&self, e: &EvpnRef<'_>, mac: BviMac, attached: bool) -> Result<u32, Error>;
    /// Delete the BVI interface and its Linux side.
    async fn delete_bvi(&self, e: &EvpnRef<'_>) -> Result<(), Error>;
    /// Attach or detach the BVI to/from the bridge domain.
    async fn set_attached(&self, e: &EvpnRef<'_>, attached: bool) -> Result<(), Error>;
    /// Set the BVI's MAC (its identity decides the linux FDB entry).
    async fn set_mac(&self, e: &EvpnRef<'_>, mac: BviMac) -> Result<(), Error>;
    /// Set the BVI's MTU.
    async fn set_mtu(&self, e: &EvpnRef<'_>, mtu: u32) -> Result<(), Error>;
    /// Bring the BVI admin up.
    async fn set_up(&self, e: &EvpnRef<'_>) -> Result<(), Error>;
    /// Set the IPv6 link-local on the dataplane and the Linux side.
    async fn set_link_local(&self, e: &EvpnRef<'_>, ll: Ipv6Addr) -> Result<(), Error>;
    /// Add a global address.
    async fn add_address(&self, e: &EvpnRef<'_>, p: IpNet) -> Result<(), Error>;
    /// Remove a global address.
    async fn del_address(&self, e: &EvpnRef<'_>, p: IpNet) -> Result<(), Error>;
    /// Global addresses (no link-local) on the interfaces of the BVI's
    /// routing table other than the BVI, with each interface's name (a bind
    /// checks its addresses against them: one FIB cannot hold overlapping
    /// subnets on two interfaces).
    async fn other_addresses(&self, e: &EvpnRef<'_>) -> Result<Vec<(String, IpNet)>, Error>;
    /// One round of gratuitous ARP (IPv4) / unsolicited NA (IPv6) for `addrs`.
    async fn announce(&self, e: &EvpnRef<'_>, addrs: &[IpNet]) -> Result<(), Error>;
    /// Whether BVIs must have a separately made Linux side now (VPP: the
    /// `vpp.linux-cp` setting and whether the plugin is loaded). When true,
    /// a BVI observed without it is repaired with `ensure_linux_side`.
    async fn linux_side_wanted(&self) -> bool {
        false
    }
    /// Make the BVI's Linux side if it is wanted and missing (idempotent).
    /// `Err` when it is required and cannot be made, or the dataplane fails.
    async fn ensure_linux_side(&self, _e: &EvpnRef<'_>) -> Result<LinuxSide, Error> {
        Ok(LinuxSide::NotWanted)
    }
    /// Start watching the dataplane for changes made behind evpnd's back to
    /// what it manages; each message (a short reason for the log) asks for
    /// a reconcile. Called once, inside the runtime. `None`: the dataplane
    /// cannot be watched (only the periodic reconcile repairs drift).
    fn drift_events(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
        None
    }
    /// Health check `dataplane`: the dataplane answers (VPP: `control_ping`
    /// on the existing connection). The Linux kernel is always there.
    async fn alive(&self) -> Result<(), Error> {
        Ok(())
    }
    /// Health check `devices` of eVPN `slug` (Linux dataplane): its bridge
    /// and VXLAN devices exist and are up. VPP: nothing to check per eVPN.
    async fn devices_up(&self, slug: &str) -> Result<(), Error> {
        let _ = slug;
        Ok(())
    }
    /// Health check `underlay:<name>`: whether interface `name` has its
    /// link up (Linux: the kernel's operstate; VPP: the interface's
    /// link-up flag). `Err` when there is no such interface.
    async fn link_up(&self, name: &str) -> Result<bool, Error> {
        let p = std::path::Path::new("/sys/class/net")
            .join(name)
            .join("operstate");
        match std::fs::read_to_string(&p) {
            Ok(s) => Ok(matches!(s.trim(), "up" | "unknown")),
            Err(_) => Err(Error::FailedPrecondition(format!("no interface {name:?}"))),
        }
    }
}
