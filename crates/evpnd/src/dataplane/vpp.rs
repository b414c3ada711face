//! The VPP dataplane: a bridge domain per eVPN, a loopback `loop<bd_id>` as
//! its BVI, mirrored into Linux as `bvi-<slug>` by linux-cp as
//! `vpp.linux-cp` says. Thin: every method is a few VPP API calls through
//! [`vpp_api::Client`], each timed out, counted and mapped to a domain error.
//!
//! The connection is watched: when it drops, [`Dataplane::info`] says so at
//! once and a background task reconnects (100 ms, doubling to 2 s); when it
//! is back (VPP may have restarted with nothing), and when a
//! `sw_interface_event` says one of our loopbacks went down or away, a
//! reconcile is asked for through [`Dataplane::drift_events`].
use std::{
    future::Future,
    net::{IpAddr, Ipv6Addr},
    sync::{Arc, Weak},
    time::{Duration, Instant},
};

use evpn_model::{Error, Mac};
use ipnet::IpNet;
use tokio::sync::Mutex;
use vpp_api::{
    BridgeDomainConfig, Client, ClientConfig, InterfaceFilter, L2PortType, LcpPairConfig,
    RetvalClass, SwIfIndex, VppError, msgs, rv,
    wire::{MacAddress, Prefix},
};

use super::{BviMac, Dataplane, DpInfo, EvpnRef, LinuxSide, ObservedBvi, ObservedEvpn};
use crate::{
    config::LinuxCp,
    metrics::{CallLabels, EvpndMetrics, MsgLabels},
};
use conn::Conn;

#[path = "vpp_conn.rs"]
mod conn;
#[path = "vpp_lookup.rs"]
mod lookup;

/// The VPP dataplane.
pub struct VppDataplane {
    cfg: ClientConfig,
    /// `vpp.linux-cp`.
    linux_cp: LinuxCp,
    conn: Mutex<Conn>,
    /// This dataplane, for the connection watcher.
    me: Weak<VppDataplane>,
    /// Reconcile requests (connection back, contradicting interface event).
    wake: tokio::sync::mpsc::Sender<String>,
    wake_rx: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<String>>>,
    metrics: EvpndMetrics,
    netlink: Option<netif::Netlink>,
    /// `loop<bd_id>` → sw_if_index, so a write needs a one-interface dump
    /// (by index, to check the name: VPP reuses freed indexes) instead of a
    /// dump of every interface filtered by name. Cleared whenever the
    /// connection drops or is re-established (VPP may have restarted and
    /// reused indexes) and on any error; entries of a deleted interface are
    /// dropped on its `sw_interface_event`; filled by dumps and creations.
    index: IndexCache,
    /// When each cached index was last confirmed by VPP (a dump by name or
    /// index, or its creation). A write within `INDEX_CHECK_VALID` of that
    /// uses it without another check; the events above still clear it at
    /// once when one of our interfaces is deleted.
    checked: Arc<std::sync::Mutex<std::collections::HashMap<u32, Instant>>>,
}

type IndexCache = Arc<std::sync::Mutex<std::collections::HashMap<u32, u32>>>;

/// How long a confirmed index is used without checking its name again: the
/// writes of one bind or release step, not longer. A foreign delete and
/// re-create reusing the index inside this window, whose delete event we
/// have not yet seen, is the residual risk (the per-write check had the
/// same window between its dump and its write, only shorter).
const INDEX_CHECK_VALID: Duration = Duration::from_millis(100);

fn map_err(e: VppError) -> Error {
    match e {
        VppError::Timeout { msg } => Error::Timeout(format!("vpp: {msg} got no reply in time")),
        VppError::Disconnected | VppError::Io(_) | VppError::Handshake(_) => {
            Error::Unavailable(format!("vpp: {e}"))
        }
        VppError::MissingMessage { .. } => Error::FailedPrecondition(format!("vpp: {e}")),
        VppError::Retval { msg, retval, name } => refusal(msg, retval, name),
        other => Error::Internal(format!("vpp: {other}")),
    }
}

/// A VPP refusal as a domain error: the code from vpp-api's retval table,
/// the message with VPP's name for it and what it means (docs/vpp.md).
fn refusal(msg: &str, retval: i32, name: &str) -> Error {
    let Some(info) = vpp_api::retval_info(retval) else {
        return Error::Internal(format!("vpp: {msg}: VPP returned {retval} ({name})"));
    };
    let text = format!(
        "vpp: {msg} refused with {name} ({retval}): {}",
        info.meaning
    );
    match info.class {
        RetvalClass::Conflict | RetvalClass::Unsupported => Error::FailedPrecondition(text),
        RetvalClass::Invalid => Error::invalid(
            msg,
            format!("VPP refused it with {name} ({retval}): {}", info.meaning),
        ),
        // VPP answered: not UNAVAILABLE, which callers (evpnr's forced
        // moves) read as "the member cannot be reached".
        RetvalClass::Retry => Error::Aborted(text),
        RetvalClass::Ok | RetvalClass::Internal => Error::Internal(text),
    }
}

fn result_label(r: &Result<impl Sized, VppError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(VppError::Retval { name, .. }) => (*name).to_string(),
        Err(VppError::Timeout { .. }) => "timeout".into(),
        Err(VppError::Disconnected | VppError::Io(_)) => "disconnected".into(),
        Err(_) => "error".into(),
    }
}

fn lo_name(bd_id: u32) -> String {
    format!("loop{bd_id}")
}

/// The Linux name of an eVPN's BVI.
pub fn bvi_name(slug: &str) -> String {
    format!("bvi-{slug}")
}

impl VppDataplane {
    /// A dataplane for `socket` with `timeout` per request and the
    /// `vpp.linux-cp` mode. Does not connect.
    pub fn new(
        socket: &std::path::Path,
        timeout: std::time::Duration,
        linux_cp: LinuxCp,
        metrics: EvpndMetrics,
    ) -> Arc<Self> {
        let mut cfg = ClientConfig::new(socket);
        cfg.request_timeout = timeout;
        cfg.connect_timeout = timeout;
        cfg.client_name = "vpp-evpn-evpnd".into();
        let (wake, rx) = tokio::sync::mpsc::channel(16);
        Arc::new_cyclic(|me| VppDataplane {
            cfg,
            linux_cp,
            conn: Mutex::new(Conn {
                client: None,
                info: DpInfo::default(),
            }),
            me: me.clone(),
            wake,
            wake_rx: std::sync::Mutex::new(Some(rx)),
            metrics,
            netlink: netif::Netlink::connect().ok(),
            index: Default::default(),
            checked: Default::default(),
        })
    }
}

fn prefix(p: IpNet) -> Prefix {
    Prefix::new(p.addr(), p.prefix_len())
}

fn is_link_local(p: &Prefix) -> bool {
    evpn_model::is_link_local(&p.addr)
}

#[tonic::async_trait]
impl Dataplane for VppDataplane {
    fn kind(&self) -> &'static str {
        "vpp"
    }

    async fn info(&self) -> DpInfo {
        let c = self.conn.lock().await;
        let mut i = c.info.clone();
        // True to the socket, not to the last call.
        i.connected &= c.client.as_ref().is_some_and(Client::is_connected);
        i
    }

    async fn connect(&self) -> Result<(), Error> {
        self.connect_now().await
    }

    async fn observe(&self, e: &EvpnRef<'_>) -> Result<ObservedEvpn, Error> {
        let c = self.client().await?;
        let bds = self
            .op("bridge_domain_dump", c.bridge_domain_dump(Some(e.bd_id)))
            .await?;
        let bd = bds.into_iter().find(|b| b.bd_id == e.bd_id);
        let Some(lo) = self.find_loop(&c, e.bd_id).await? else {
            return Ok(ObservedEvpn {
                bridge: bd.is_some(),
                bvi: None,
            });
        };
        let idx = SwIfIndex(lo.sw_if_index);
        let mut addresses = Vec::new();
        for v6 in [false, true] {
            for p in self
                .op("ip_address_dump", c.ip_address_dump(idx, v6))
                .await?
            {
                if !is_link_local(&p)
                    && let Ok(n) = IpNet::new(p.addr, p.len)
                {
                    addresses.push(n);
                }
            }
        }
        addresses.sort();
        let link_local = self
            .op(
                "sw_interface_ip6_get_link_local_address",
                c.sw_interface_ip6_get_link_local_address(idx),
            )
            .await
            .ok()
            .filter(|a| !a.is_unspecified());
        // What VPP says, whatever the mode (a pair made before counts).
        let linux = if self.has_lcp().await {
            self.op("lcp_itf_pair_get", c.lcp_itf_pair_get())
                .await?
                .into_iter()
                .find(|p| p.phy_sw_if_index == lo.sw_if_index)
                .map(|p| p.host_if_name)
        } else {
            None
        };
        Ok(ObservedEvpn {
            bridge: bd.is_some(),
            bvi: Some(ObservedBvi {
                handle: lo.sw_if_index,
                mac: Mac(lo.l2_address.0),
                mtu: lo.mtu[0],
                up: lo.flags & 1 != 0,
                attached: bd
                    .as_ref()
                    .is_some_and(|b| b.bvi_sw_if_index == lo.sw_if_index),
                addresses,
                link_local,
                linux,
            }),
        })
    }

    /// What a bind or release changes, in as few VPP calls as the facts
    /// allow, sent together (VPP answers them in order): the addresses of
    /// both families, the link-local unless the call just set it, and the
    /// interface's MAC, MTU and flags unless the call just set the MAC (then
    /// the index its writes were checked against is used as it is).
    async fn read_back(
        &self,
        e: &EvpnRef<'_>,
        known: &super::Known,
        assumed: &ObservedBvi,
    ) -> Result<Option<ObservedBvi>, Error> {
        let c = self.client().await?;
        let cached = self
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&e.bd_id)
            .copied();
        let (idx, mac, mtu, up) = match (known.mac, cached) {
            (Some(m), Some(i)) => (i, m, assumed.mtu, assumed.up),
            _ => match self.loop_details(&c, e.bd_id).await? {
                Some(d) => (
                    d.sw_if_index,
                    Mac(d.l2_address.0),
                    d.mtu[0],
                    d.flags & 1 != 0,
                ),
                None => return Ok(None),
            },
        };
        let si = SwIfIndex(idx);
        let addrs = |v6| self.op("ip_address_dump", c.ip_address_dump(si, v6));
        let ll = async {
            match known.link_local {
                Some(ll) => Some(ll),
                None => self
                    .op(
                        "sw_interface_ip6_get_link_local_address",
                        c.sw_interface_ip6_get_link_local_address(si),
                    )
                    .await
                    .ok()
                    .filter(|a| !a.is_unspecified()),
            }
        };
        let (v4, v6, link_local) = futures::join!(addrs(false), addrs(true), ll);
        let mut addresses: Vec<IpNet> = v4?
            .into_iter()
            .chain(v6?)
            .filter(|p| !is_link_local(p))
            .filter_map(|p| IpNet::new(p.addr, p.len).ok())
            .collect();
        addresses.sort();
        Ok(Some(ObservedBvi {
            handle: idx,
            mac,
            mtu,
            up,
            attached: assumed.attached,
            addresses,
            link_local,
            linux: assumed.linux.clone(),
        }))
    }

    /// One stage of writes: the index is resolved (checked) once for the
    /// stage, then the writes are sent together.
    async fn apply(&self, e: &EvpnRef<'_>, stage: &[super::Write]) -> Result<(), Error> {
        if stage.len() > 1
            && !stage
                .iter()
                .any(|w| matches!(w, super::Write::Create { .. }))
        {
            let c = self.client().await?;
            self.loop_index(&c, e.bd_id).await?;
        }
        futures::future::join_all(stage.iter().map(|w| self.write(e, w)))
            .await
            .into_iter()
            .collect()
    }

    async fn list_bridges(&self, min: u32, max: u32) -> Result<Vec<u32>, Error> {
        let c = self.client().await?;
        let bds = self
            .op("bridge_domain_dump", c.bridge_domain_dump(None))
            .await?;
        Ok(bds
            .into_iter()
            .map(|b| b.bd_id)
            .filter(|id| (min..=max).contains(id))
            .collect())
    }

    async fn create_evpn(&self, e: &EvpnRef<'_>) -> Result<(), Error> {
        let c = self.client().await?;
        let mut bd = BridgeDomainConfig::new(e.bd_id);
        bd.tag = format!("evpn-{}", e.slug);
        match self
            .op_vpp("bridge_domain_add_del_v2", c.bridge_domain_add(&bd))
            .await
        {
            Ok(_) => Ok(()),
            // Exists: success when it is this eVPN's (its tag), else the
            // refusal (someone else's: the range is not evpnd's alone).
            Err(err @ VppError::Retval { retval, .. }) if retval == rv::BD_ALREADY_EXISTS => {
                let bds = self
                    .op("bridge_domain_dump", c.bridge_domain_dump(Some(e.bd_id)))
                    .await?;
                if bds.iter().any(|b| b.bd_id == e.bd_id && b.bd_tag == bd.tag) {
                    Ok(())
                } else {
                    Err(map_err(err))
                }
            }
            Err(e) => Err(map_err(e)),
        }
    }

    async fn delete_evpn(&self, e: &EvpnRef<'_>) -> Result<(), Error> {
        let c = self.client().await?;
        self.op("bridge_domain_add_del_v2", c.bridge_domain_delete(e.bd_id))
            .await
    }

    /// Members of the bridge domain but `loop<bd_id>` and the VXLAN tunnels
    /// with the eVPN's VNI (BIRD's, which go with its snippet).
    async fn bridge_users(&self, e: &EvpnRef<'_>) -> Result<Vec<String>, Error> {
        let c = self.client().await?;
        let bds = self
            .op("bridge_domain_dump", c.bridge_domain_dump(Some(e.bd_id)))
            .await?;
        let Some(bd) = bds.into_iter().find(|b| b.bd_id == e.bd_id) else {
            return Ok(Vec::new());
        };
        if bd.sw_if_details.is_empty() {
            return Ok(Vec::new());
        }
        let ifs = self
            .op(
                "sw_interface_dump",
                c.sw_interface_dump(InterfaceFilter::All),
            )
            .await?;
        let ours = lo_name(e.bd_id);
        let mut users = Vec::new();
        for m in &bd.sw_if_details {
            let i = ifs.iter().find(|i| i.sw_if_index == m.sw_if_index);
            let name = i.map_or("?", |i| i.interface_name.as_str());
            if name == ours {
                continue;
            }
            if name.starts_with("vxlan_tunnel") {
                let t = self
                    .op(
                        "vxlan_tunnel_v2_dump",
                        c.vxlan_tunnel_dump(SwIfIndex(m.sw_if_index)),
                    )
                    .await?;
                if t.iter().any(|t| t.vni == e.vni) {
                    continue;
                }
            }
            users.push(format!("{name} (sw_if_index {})", m.sw_if_index));
        }
        Ok(users)
    }

    async fn create_bvi(&self, e: &EvpnRef<'_>, mac: BviMac, attached: bool) -> Result<u32, Error> {
        let c = self.client().await?;
        let made = self
            .op_vpp(
                "create_loopback_instance",
                c.create_loopback_instance(MacAddress(mac.mac().0), Some(e.bd_id)),
            )
            .await;
        let idx = match made {
            Ok(idx) => idx,
            // The instance is taken (VPP answers INVALID_REGISTRATION): when
            // it is `loop<bd_id>` (ours: the ID range is evpnd's) it is made to
            // match below, MAC included.
            Err(err @ VppError::Retval { retval, .. }) if retval == rv::INVALID_REGISTRATION => {
                let Ok(idx) = self.loop_index(&c, e.bd_id).await else {
                    return Err(map_err(err));
                };
                self.op(
                    "sw_interface_set_mac_address",
                    c.sw_interface_set_mac_address(idx, MacAddress(mac.mac().0)),
                )
                .await?;
                idx
            }
            Err(err) => return Err(map_err(err)),
        };
        self.remember(e.bd_id, Some(idx.0));
        self.op(
            "sw_interface_set_mtu",
            c.sw_interface_set_mtu(idx, [e.mtu, 0, 0, 0]),
        )
        .await?;
        self.op(
            "sw_interface_set_flags",
            c.sw_interface_set_flags(idx, true),
        )
        .await?;
        if attached {
            self.op(
                "sw_interface_set_l2_bridge",
                c.sw_interface_set_l2_bridge(idx, e.bd_id, L2PortType::Bvi, 0, true),
            )
            .await?;
        }
        Ok(idx.0)
    }

    async fn linux_side_wanted(&self) -> bool {
        self.linux_cp.wanted(self.has_lcp().await)
    }

    async fn ensure_linux_side(&self, e: &EvpnRef<'_>) -> Result<LinuxSide, Error> {
        let plugin = self.has_lcp().await;
        if !self.linux_cp.wanted(plugin) {
            return Ok(LinuxSide::NotWanted);
        }
        let c = self.client().await?;
        if !plugin {
            return Err(Error::FailedPrecondition(
                "vpp.linux-cp is on but VPP has no linux-cp plugin: load it or set \
                 vpp.linux-cp to auto or off"
                    .into(),
            ));
        }
        let idx = self.loop_index(&c, e.bd_id).await?;
        let pairs = self.op("lcp_itf_pair_get", c.lcp_itf_pair_get()).await?;
        if let Some(p) = pairs.into_iter().find(|p| p.phy_sw_if_index == idx.0) {
            return Ok(LinuxSide::Present(p.host_if_name));
        }
        let name = bvi_name(e.slug);
        let r = self
            .op_vpp(
                "lcp_itf_pair_add_del_v3",
                c.lcp_itf_pair_add(&LcpPairConfig {
                    sw_if_index: idx,
                    host_if_name: name.clone(),
                    tun: false,
                    netns: String::new(),
                }),
            )
            .await;
        match r {
            Ok(_) => Ok(LinuxSide::Present(name)),
            // A refusal (a retval), not a lost or hung VPP.
            Err(why @ VppError::Retval { .. }) => {
                let why = format!(
                    "VPP refused the linux-cp pair {name} for {}: {why}",
                    lo_name(e.bd_id)
                );
                if self.linux_cp == LinuxCp::On {
                    Err(Error::FailedPrecondition(format!(
                        "{why}; vpp.linux-cp is on, so a BVI without its Linux side is \
                         an error (set vpp.linux-cp to auto to run without it)"
                    )))
                } else {
                    Ok(LinuxSide::Refused(why))
                }
            }
            Err(other) => Err(map_err(other)),
        }
    }

    async fn alive(&self) -> Result<(), Error> {
        let c = self.client().await?;
        self.op("control_ping", c.ping()).await
    }

    async fn link_up(&self, name: &str) -> Result<bool, Error> {
        let c = self.client().await?;
        let all = self
            .op(
                "sw_interface_dump",
                c.sw_interface_dump(InterfaceFilter::NameContains(name.to_string())),
            )
            .await?;
        let i = all
            .into_iter()
            .find(|d| d.interface_name == name)
            .ok_or_else(|| Error::FailedPrecondition(format!("VPP has no interface {name:?}")))?;
        // if_status_flags: 1 admin up, 2 link up.
        Ok(i.flags & 3 == 3)
    }

    fn drift_events(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
        self.wake_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    async fn delete_bvi(&self, e: &EvpnRef<'_>) -> Result<(), Error> {
        let c = self.client().await?;
        let Some(lo) = self.find_loop(&c, e.bd_id).await? else {
            return Ok(());
        };
        let idx = SwIfIndex(lo.sw_if_index);
        if self.has_lcp().await {
            let pairs = self.op("lcp_itf_pair_get", c.lcp_itf_pair_get()).await?;
            if pairs.iter().any(|p| p.phy_sw_if_index == lo.sw_if_index) {
                self.op("lcp_itf_pair_add_del_v3", c.lcp_itf_pair_delete(idx))
                    .await?;
            }
        }
        self.remember(e.bd_id, None);
        self.op("delete_loopback", c.delete_loopback(idx)).await
    }

    async fn set_attached(&self, e: &EvpnRef<'_>, attached: bool) -> Result<(), Error> {
        let c = self.client().await?;
        let idx = self.loop_index(&c, e.bd_id).await?;
        self.op(
            "sw_interface_set_l2_bridge",
            c.sw_interface_set_l2_bridge(idx, e.bd_id, L2PortType::Bvi, 0, attached),
        )
        .await
    }

    async fn set_mac(&self, e: &EvpnRef<'_>, mac: BviMac) -> Result<(), Error> {
        let c = self.client().await?;
        let idx = self.loop_index(&c, e.bd_id).await?;
        self.op(
            "sw_interface_set_mac_address",
            c.sw_interface_set_mac_address(idx, MacAddress(mac.mac().0)),
        )
        .await
    }

    async fn set_mtu(&self, e: &EvpnRef<'_>, mtu: u32) -> Result<(), Error> {
        let c = self.client().await?;
        let idx = self.loop_index(&c, e.bd_id).await?;
        self.op(
            "sw_interface_set_mtu",
            c.sw_interface_set_mtu(idx, [mtu, 0, 0, 0]),
        )
        .await
    }

    async fn set_up(&self, e: &EvpnRef<'_>) -> Result<(), Error> {
        let c = self.client().await?;
        let idx = self.loop_index(&c, e.bd_id).await?;
        self.op(
            "sw_interface_set_flags",
            c.sw_interface_set_flags(idx, true),
        )
        .await
    }

    async fn set_link_local(&self, e: &EvpnRef<'_>, ll: Ipv6Addr) -> Result<(), Error> {
        let c = self.client().await?;
        let idx = self.loop_index(&c, e.bd_id).await?;
        // The Linux side does not depend on VPP's: both at once.
        let (v, l) = futures::join!(
            self.op(
                "sw_interface_ip6_set_link_local_address",
                c.sw_interface_ip6_set_link_local_address(idx, ll),
            ),
            self.linux_link_local(e.slug, ll)
        );
        v.and(l)
    }

    async fn add_address(&self, e: &EvpnRef<'_>, p: IpNet) -> Result<(), Error> {
        let c = self.client().await?;
        let idx = self.loop_index(&c, e.bd_id).await?;
        self.op(
            "sw_interface_add_del_address",
            c.sw_interface_add_del_address(idx, prefix(p), true),
        )
        .await
    }

    async fn del_address(&self, e: &EvpnRef<'_>, p: IpNet) -> Result<(), Error> {
        let c = self.client().await?;
        let idx = self.loop_index(&c, e.bd_id).await?;
        match self
            .op_vpp(
                "sw_interface_add_del_address",
                c.sw_interface_add_del_address(idx, prefix(p), false),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Already gone (removed behind evpnd's back): deleting what is
            // gone succeeds, as the trait promises, so a release planned from
            // the committed state is not failed by a missing address.
            Err(VppError::Retval { retval, .. })
                if retval == rv::ADDRESS_NOT_FOUND_FOR_INTERFACE =>
            {
                tracing::info!(evpn = %e.slug, address = %p, "vpp-address-already-gone");
                Ok(())
            }
            Err(err) => Err(map_err(err)),
        }
    }

    /// The global addresses on the interfaces in `loop<bd_id>`'s FIB (per
    /// family, from `sw_interface_get_table`) but `loop<bd_id>` itself. VPP
    /// dumps addresses and tables per interface and family: first every
    /// other interface's addresses, then the tables of only those that have
    /// any (and of `loop<bd_id>`), each batch sent at once (one connection,
    /// pipelined). The interface dump also confirms `loop<bd_id>`'s index.
    async fn other_addresses(&self, e: &EvpnRef<'_>) -> Result<Vec<(String, IpNet)>, Error> {
        let c = self.client().await?;
        let ours = lo_name(e.bd_id);
        let ifs = self
            .op(
                "sw_interface_dump",
                c.sw_interface_dump(InterfaceFilter::All),
            )
            .await?;
        let me = ifs.iter().find(|i| i.interface_name == ours);
        self.remember(e.bd_id, me.map(|i| i.sw_if_index));
        let reads = ifs
            .iter()
            .filter(|i| i.interface_name != ours)
            .flat_map(|i| [(i, false), (i, true)])
            .map(|(i, v6)| {
                let c = c.clone();
                async move {
                    let idx = SwIfIndex(i.sw_if_index);
                    let ps: Vec<IpNet> = self
                        .op("ip_address_dump", c.ip_address_dump(idx, v6))
                        .await?
                        .into_iter()
                        .filter(|p| !is_link_local(p))
                        .filter_map(|p| IpNet::new(p.addr, p.len).ok())
                        .collect();
                    Ok::<_, Error>((i, v6, ps))
                }
            });
        let with: Vec<_> = futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .filter(|(_, _, ps)| !ps.is_empty())
            .collect();
        if with.is_empty() {
            return Ok(Vec::new());
        }
        // The tables: loop<bd_id>'s (the default table when it is gone) and
        // those of the interfaces that have addresses of that family.
        let table = |idx: u32, v6: bool| {
            let c = c.clone();
            async move {
                self.op(
                    "sw_interface_get_table",
                    c.sw_interface_get_table(SwIfIndex(idx), v6),
                )
                .await
            }
        };
        let mine = async {
            match me {
                Some(i) => {
                    futures::try_join!(table(i.sw_if_index, false), table(i.sw_if_index, true))
                }
                None => Ok((0, 0)),
            }
        };
        let theirs =
            futures::future::try_join_all(with.iter().map(|(i, v6, _)| table(i.sw_if_index, *v6)));
        let ((t4, t6), tables) = futures::try_join!(mine, theirs)?;
        Ok(with
            .iter()
            .zip(tables)
            .filter(|((_, v6, _), t)| *t == if *v6 { t6 } else { t4 })
            .flat_map(|((i, _, ps), _)| ps.iter().map(|net| (i.interface_name.clone(), *net)))
            .collect())
    }

    async fn announce(&self, e: &EvpnRef<'_>, addrs: &[IpNet]) -> Result<(), Error> {
        let c = self.client().await?;
        let idx = self.loop_index(&c, e.bd_id).await?;
        for a in addrs {
            self.op("arping", c.arping(idx, a.addr(), true)).await?;
        }
        Ok(())
    }
}
