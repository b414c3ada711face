//! The Linux kernel dataplane (`dataplane: linux`): per eVPN a bridge
//! `brg-<slug>` and a VXLAN device `vxl-<slug>` (VNI, local VTEP, port 4789,
//! learning off) for BIRD's `bridge_<slug>` + `evpn_<slug>` protocols, and a
//! veth BVI: `bvp-<slug>` is a bridge port (learning off), `bvi-<slug>`
//! carries the per-host MAC, only a link-local (addrgenmode none,
//! accept_dad 0) and, when bound, the vMAC and the gateway addresses.
//! Everything goes through `netif` (rtnetlink; raw sockets for GARP/NA); no
//! external program is ever run. Names come from `netif::names` (≤ 15 bytes,
//! collision-free).
//!
//! Mapping onto the [`Dataplane`] trait (see `docs/fabric.md`):
//! * `create_evpn` = `netif::Dataplane::ensure_evpn`, then the bridge's alias
//!   is set to `vpp-evpn evpn=<slug> bd=<bd_id>` so `list_bridges` can find
//!   orphans by ID after a crash.
//! * `create_bvi` = `netif::plan_ensure_bvi` without its link-local actions
//!   (the manager sets the link-local right after).
//! * `set_mac` is where BIRD is told: a vMAC ([`BviMac::Gateway`], decided by
//!   the BVI planner) gets a clean `static` FDB entry on the
//!   port — BIRD's remote `extern_learn` entry is deleted first, `replace`
//!   is never used (it would keep `extern_learn` and BIRD would silently not
//!   advertise). Reverting to the per-host MAC deletes every managed entry on
//!   the port explicitly (a learned one would linger for the 300 s ageing
//!   time and keep the vMAC announced).
//! * The link-local follows the current MAC, exactly as on VPP: EUI-64 of the
//!   vMAC while bound, of the per-host MAC otherwise, always the only one.
//!   The unsolicited NAs are sent from it; only the primary holds the vMAC,
//!   so no two hosts share that link-local.
//! * `observe` reports the MAC "as the fabric sees it": the BVI's MAC when
//!   the FDB agrees with it (static entry on the port for a vMAC, none for
//!   the per-host MAC, no static entry on the VXLAN device:
//!   `netif::Observed::fdb_consistent`)
//!   and the all-zero MAC otherwise, so that reconcile re-runs `set_mac`
//!   (idempotent) and repairs the FDB. A matching host yields zero fixes.
//! * `drift_events` watches netlink for changes to the managed devices
//!   (`linux_drift.rs`) so that reconcile repairs them at once.
use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    sync::{Arc, Mutex},
};

use evpn_model::{Error, Mac};
use ipnet::IpNet;
use netif::{
    Action, BviSpec, EvpnSpec, FdbTable, Netlink, Observed, Slug,
    announce::{Announcer, NaFlags},
    plan,
};

use super::{BviMac, Dataplane, DpInfo, EvpnRef, ObservedBvi, ObservedEvpn};
use netif::plan::plan_set_mac;

const ALIAS_PREFIX: &str = "vpp-evpn ";

/// Interface indexes of one eVPN's four devices, cached so the hot path
/// (bind/release: MAC, FDB, link-local, addresses) needs no name lookups.
/// Filled by every full observe; dropped when devices are created or
/// deleted; a cached index that no longer names the expected device falls
/// back to a full observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Idx {
    pub(super) bridge: u32,
    pub(super) vxlan: u32,
    pub(super) port: u32,
    pub(super) bvi: u32,
}

/// The Linux kernel dataplane.
pub struct LinuxDataplane {
    dp: netif::Dataplane,
    info: DpInfo,
    /// Shared with the drift watcher, which maps kernel events to eVPNs by it.
    idx: Arc<Mutex<HashMap<String, Idx>>>,
    /// The managed FDB entries known to be on each eVPN's port (set after a
    /// successful MAC change or an observe that found the port consistent).
    /// When known, a MAC change skips the observe round (fast path).
    port_macs: Mutex<HashMap<String, Vec<Mac>>>,
    /// Each BVI's link-local when it is known to be its only one (set by a
    /// successful change and by every observe or read-back that saw exactly
    /// one). When known, a link-local change needs no read first.
    lls: Mutex<HashMap<String, Ipv6Addr>>,
}

fn nerr(e: netif::Error) -> Error {
    if e.is_not_found() {
        Error::FailedPrecondition(format!("netlink: {e}"))
    } else {
        Error::Internal(format!("netlink: {e}"))
    }
}

fn slug_of(s: &str) -> Result<Slug, Error> {
    Slug::new(s).map_err(|e| Error::invalid("slug", e.to_string()))
}

/// The bridge's alias: who owns it and under which bridge-domain ID.
pub fn alias(slug: &str, bd_id: u32) -> String {
    format!("{ALIAS_PREFIX}evpn={slug} bd={bd_id}")
}

/// Parse [`alias`] back into `(slug, bd_id)`.
pub fn parse_alias(s: &str) -> Option<(String, u32)> {
    let rest = s.strip_prefix(ALIAS_PREFIX)?;
    let mut slug = None;
    let mut bd = None;
    for kv in rest.split_whitespace() {
        match kv.split_once('=') {
            Some(("evpn", v)) => slug = Some(v.to_string()),
            Some(("bd", v)) => bd = v.parse().ok(),
            _ => {}
        }
    }
    Some((slug?, bd?))
}

fn is_ll(net: &IpNet) -> bool {
    evpn_model::is_link_local(&net.addr())
}

/// The BVI pair exists and its two ends are each other's peers.
fn paired(obs: &Observed) -> bool {
    match (&obs.bvi, &obs.port) {
        (Some(b), Some(p)) => b.link == Some(p.index) && p.link == Some(b.index),
        _ => false,
    }
}

/// What `observe` reports for a BVI (sans-IO; see the module docs).
pub fn observed_bvi(obs: &Observed, per_host: Option<Mac>) -> Option<ObservedBvi> {
    if !paired(obs) {
        return None;
    }
    let (bvi, port) = (obs.bvi.as_ref()?, obs.port.as_ref()?);
    let cur = bvi.mac.unwrap_or(Mac::nil());
    let gateway =
        BviMac::classify(Mac(cur.into_array()), per_host.map(|p| Mac(p.into_array()))).is_gateway();
    let mac = if obs.fdb_consistent(cur, gateway) {
        Mac(cur.into_array())
    } else {
        Mac([0; 6])
    };
    let ipv6_ok = |l: &netif::Link| {
        l.addr_gen_mode
            .is_none_or(|m| m == netif::AddrGenMode::None)
            && l.accept_dad.is_none_or(|v| v == 0)
    };
    let mut addresses: Vec<IpNet> = obs
        .bvi_addrs
        .iter()
        .filter(|a| !is_ll(&a.net) && !a.tentative && !a.dad_failed)
        .map(|a| a.net)
        .collect();
    addresses.sort();
    let lls: Vec<Ipv6Addr> = obs
        .bvi_addrs
        .iter()
        .filter(|a| is_ll(&a.net) && a.net.prefix_len() == 64 && !a.tentative)
        .filter_map(|a| match a.net.addr() {
            IpAddr::V6(v6) => Some(v6),
            IpAddr::V4(_) => None,
        })
        .collect();
    let all_ll = obs.bvi_addrs.iter().filter(|a| is_ll(&a.net)).count();
    let link_local = (lls.len() == 1 && all_ll == 1).then(|| lls[0]);
    let attached = obs
        .bridge
        .as_ref()
        .is_some_and(|b| port.master == Some(b.index))
        && port.port.is_some_and(|p| !p.learning);
    Some(ObservedBvi {
        handle: bvi.index,
        mac,
        mtu: if port.mtu != bvi.mtu {
            port.mtu
        } else {
            bvi.mtu
        },
        // The port only needs IPv6 off (addrgenmode none); accept_dad
        // matters on the BVI, which carries addresses.
        up: bvi.up
            && port.up
            && ipv6_ok(bvi)
            && port
                .addr_gen_mode
                .is_none_or(|m| m == netif::AddrGenMode::None),
        attached,
        addresses,
        link_local,
        linux: Some(bvi.name.clone()),
    })
}

impl LinuxDataplane {
    /// Open a netlink connection in this process's network namespace (must
    /// run inside a tokio runtime).
    pub fn new() -> Result<Arc<Self>, Error> {
        let nl = Netlink::connect().map_err(|e| Error::Unavailable(format!("netlink: {e}")))?;
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Ok(Arc::new(LinuxDataplane {
            dp: netif::Dataplane::new(nl),
            idx: Arc::new(Mutex::new(HashMap::new())),
            port_macs: Mutex::new(HashMap::new()),
            lls: Mutex::new(HashMap::new()),
            info: DpInfo {
                connected: true,
                version: format!("linux {release}"),
                build_date: String::new(),
                message_table_size: 0,
                linux_cp: true,
                missing_messages: Vec::new(),
                last_error: String::new(),
                connected_since_ms: crate::state::now_ms(),
            },
        }))
    }

    fn nl(&self) -> &Netlink {
        self.dp.netlink()
    }

    async fn observe_slug(&self, slug: &Slug) -> Result<Observed, Error> {
        let obs = self.dp.observe(slug).await.map_err(nerr)?;
        let idx = match (&obs.bridge, &obs.vxlan, &obs.port, &obs.bvi) {
            (Some(b), Some(v), Some(p), Some(i)) => Some(Idx {
                bridge: b.index,
                vxlan: v.index,
                port: p.index,
                bvi: i.index,
            }),
            _ => None,
        };
        let mut g = self.idx.lock().unwrap_or_else(|p| p.into_inner());
        match idx {
            Some(i) => g.insert(slug.as_str().to_string(), i),
            None => g.remove(slug.as_str()),
        };
        Ok(obs)
    }

    fn cached(&self, slug: &Slug) -> Option<Idx> {
        let g = self.idx.lock().unwrap_or_else(|p| p.into_inner());
        g.get(slug.as_str()).copied()
    }

    fn forget(&self, slug: &Slug) {
        let mut g = self.idx.lock().unwrap_or_else(|p| p.into_inner());
        g.remove(slug.as_str());
        self.set_port_macs(slug, None);
        self.set_link_local_known(slug, None);
    }

    fn set_link_local_known(&self, slug: &Slug, ll: Option<Ipv6Addr>) {
        let mut g = self.lls.lock().unwrap_or_else(|p| p.into_inner());
        match ll {
            Some(ll) => g.insert(slug.as_str().to_string(), ll),
            None => g.remove(slug.as_str()),
        };
    }

    fn link_local_known(&self, slug: &Slug) -> Option<Ipv6Addr> {
        let g = self.lls.lock().unwrap_or_else(|p| p.into_inner());
        g.get(slug.as_str()).copied()
    }

    fn set_port_macs(&self, slug: &Slug, v: Option<Vec<Mac>>) {
        let mut g = self.port_macs.lock().unwrap_or_else(|p| p.into_inner());
        match v {
            Some(v) => g.insert(slug.as_str().to_string(), v),
            None => g.remove(slug.as_str()),
        };
    }

    fn port_macs(&self, slug: &Slug) -> Option<Vec<Mac>> {
        let g = self.port_macs.lock().unwrap_or_else(|p| p.into_inner());
        g.get(slug.as_str()).cloned()
    }

    /// The MAC change without an observe, when the indexes and the port's
    /// entries are known: stage 1 deletes the port's other entries (and,
    /// for a vMAC, BIRD's remote entry on the VXLAN device, if any) and sets
    /// the MAC; stage 2 adds the static entry. `Ok(false)`: not possible or
    /// refused (e.g. EEXIST: someone else's entry); the caller falls back to
    /// the observing path.
    async fn set_mac_fast(&self, slug: &Slug, mac: Mac, vmac: bool) -> Result<bool, Error> {
        let (Some(ix), Some(known)) = (self.cached(slug), self.port_macs(slug)) else {
            return Ok(false);
        };
        let nl = self.nl();
        let n = slug.names();
        let have = vmac && known.contains(&mac);
        let stale: Vec<Mac> = known
            .iter()
            .copied()
            .filter(|m| !vmac || *m != mac)
            .collect();
        let gone: Vec<String> = stale.iter().map(|m| m.to_string().to_lowercase()).collect();
        tracing::debug!(%mac, vmac, stale = %gone.join(","), "netlink-fast-set-mac");
        let dels = futures::future::try_join_all(stale.iter().map(|m| {
            let port = n.port.clone();
            async move {
                match nl
                    .delete_fdb_at(ix.port, &port, *m, FdbTable::Master, None)
                    .await
                {
                    Err(e) if !e.is_not_found() => Err(e),
                    _ => Ok(()),
                }
            }
        }));
        let remote = async {
            if !vmac || have {
                return Ok(());
            }
            match nl
                .delete_fdb_at(ix.vxlan, &n.vxlan, mac, FdbTable::Master, None)
                .await
            {
                Err(e) if !e.is_not_found() => Err(e),
                _ => Ok(()),
            }
        };
        let setmac = nl.set_mac_at(ix.bvi, &n.bvi, mac);
        if futures::try_join!(dels, remote, setmac).is_err() {
            return Ok(false);
        }
        if vmac && !have {
            match nl.add_fdb_static_at(ix.port, &n.port, mac).await {
                Ok(()) => {}
                Err(_) => return Ok(false),
            }
        }
        self.set_port_macs(slug, Some(if vmac { vec![mac] } else { Vec::new() }));
        Ok(true)
    }

    /// What [`plan_set_mac`] needs (the four devices and the bridge's FDB)
    /// in one round of concurrent requests by cached index; a full observe
    /// when nothing is cached or the cache is stale.
    async fn observe_fdb(&self, slug: &Slug) -> Result<Observed, Error> {
        if let Some(ix) = self.cached(slug) {
            let nl = self.nl();
            let r = futures::try_join!(
                nl.link_by_index(ix.bridge),
                nl.link_by_index(ix.vxlan),
                nl.link_by_index(ix.port),
                nl.link_by_index(ix.bvi),
                nl.list_fdb_of_bridge(ix.bridge),
            );
            if let Ok((Some(b), Some(v), Some(p), Some(i), mut fdb)) = r {
                let n = slug.names();
                if b.name == n.bridge && v.name == n.vxlan && p.name == n.port && i.name == n.bvi {
                    fdb.retain(|e| {
                        (e.in_bridge() && e.master == Some(b.index))
                            || (e.is_self && e.index == v.index)
                    });
                    let mut obs = Observed::empty(slug);
                    (obs.bridge, obs.vxlan, obs.port, obs.bvi, obs.fdb) =
                        (Some(b), Some(v), Some(p), Some(i), fdb);
                    return Ok(obs);
                }
            }
            self.forget(slug);
        }
        self.observe_slug(slug).await
    }

    /// The BVI's index (cached) and name.
    async fn bvi_index(&self, slug: &Slug) -> Result<(u32, String), Error> {
        let name = slug.names().bvi;
        if let Some(ix) = self.cached(slug) {
            return Ok((ix.bvi, name));
        }
        let i = self.nl().index_of(&name).await.map_err(nerr)?;
        Ok((i, name))
    }

    async fn apply(&self, actions: &[Action], obs: &Observed) -> Result<(), Error> {
        for a in actions {
            tracing::debug!(action = %a, "netlink-apply");
        }
        self.dp.apply(actions, obs).await.map_err(nerr)
    }

    /// Apply [`plan_set_mac`]'s actions in two stages of concurrent requests
    /// (they go down one netlink socket back to back): every deletion and
    /// the MAC change, then the static entry (which must follow the deletion
    /// of BIRD's remote entry). `obs` holds every index, so no lookups.
    async fn apply_set_mac(&self, actions: &[Action], obs: &Observed) -> Result<(), Error> {
        let (last, first): (Vec<&Action>, Vec<&Action>) = actions
            .iter()
            .partition(|a| matches!(a, Action::AddFdbStatic { .. }));
        for stage in [first, last] {
            for a in &stage {
                tracing::debug!(action = %a, "netlink-apply");
            }
            futures::future::try_join_all(
                stage
                    .iter()
                    .map(|a| self.dp.apply(std::slice::from_ref(*a), obs)),
            )
            .await
            .map_err(nerr)?;
        }
        Ok(())
    }

    /// The slug owning bridge-domain `bd_id` per the bridges' aliases (an
    /// orphan after a crash has no state entry, only its alias).
    async fn slug_for(&self, e: &EvpnRef<'_>) -> Result<Slug, Error> {
        let aliases = self.nl().list_aliases().await.map_err(nerr)?;
        for (_, name, a) in aliases {
            if let Some((s, bd)) = parse_alias(&a)
                && bd == e.bd_id
                && name.starts_with("brg-")
            {
                return slug_of(&s);
            }
        }
        slug_of(e.slug)
    }

    async fn bridge_alias_ok(&self, obs: &Observed, e: &EvpnRef<'_>) -> Result<bool, Error> {
        let Some(br) = &obs.bridge else {
            return Ok(false);
        };
        let aliases = self.nl().list_aliases().await.map_err(nerr)?;
        Ok(aliases
            .iter()
            .any(|(i, _, a)| *i == br.index && *a == alias(e.slug, e.bd_id)))
    }
}

#[tonic::async_trait]
impl Dataplane for LinuxDataplane {
    fn kind(&self) -> &'static str {
        "linux"
    }

    fn recreated_devices_stall_bird(&self) -> bool {
        true
    }

    async fn info(&self) -> DpInfo {
        self.info.clone()
    }

    async fn connect(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn observe(&self, e: &EvpnRef<'_>) -> Result<ObservedEvpn, Error> {
        let slug = slug_of(e.slug)?;
        let obs = self.observe_slug(&slug).await?;
        let bridge = match e.vtep {
            Some(vtep) => {
                let spec = EvpnSpec {
                    slug: slug.clone(),
                    vni: e.vni,
                    vtep,
                    mtu: e.evpn_mtu,
                };
                plan::plan_ensure_evpn(&spec, &obs).is_ok_and(|a| a.is_empty())
                    && self.bridge_alias_ok(&obs, e).await?
            }
            None => obs.bridge.is_some() && obs.vxlan.is_some(),
        };
        let bvi = observed_bvi(&obs, e.instance_mac);
        self.note(&slug, &obs, bvi.as_ref());
        Ok(ObservedEvpn { bridge, bvi })
    }

    /// After a bind or release: see `linux_readback.rs`.
    async fn read_back(
        &self,
        e: &EvpnRef<'_>,
        known: &super::Known,
        assumed: &ObservedBvi,
    ) -> Result<Option<ObservedBvi>, Error> {
        self.read_back_acked(e, known, assumed).await
    }

    async fn list_bridges(&self, min: u32, max: u32) -> Result<Vec<u32>, Error> {
        let aliases = self.nl().list_aliases().await.map_err(nerr)?;
        let mut v: Vec<u32> = aliases
            .iter()
            .filter(|(_, name, _)| name.starts_with("brg-"))
            .filter_map(|(_, _, a)| parse_alias(a).map(|(_, bd)| bd))
            .filter(|bd| (min..=max).contains(bd))
            .collect();
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }

    async fn create_evpn(&self, e: &EvpnRef<'_>) -> Result<(), Error> {
        let slug = slug_of(e.slug)?;
        let vtep = e.vtep.ok_or_else(|| {
            Error::FailedPrecondition(format!("evpn {:?} has no VTEP address", e.slug))
        })?;
        let spec = EvpnSpec {
            slug: slug.clone(),
            vni: e.vni,
            vtep,
            mtu: e.evpn_mtu,
        };
        self.forget(&slug);
        let actions = self.dp.ensure_evpn(&spec).await.map_err(nerr)?;
        if actions.iter().any(Action::changes_devices) {
            tracing::info!(
                evpn = e.slug,
                actions = actions.len(),
                "linux-evpn-devices-created"
            );
        }
        let br = slug.names().bridge;
        let idx = self.nl().index_of(&br).await.map_err(nerr)?;
        self.nl()
            .set_alias_at(idx, &br, &alias(e.slug, e.bd_id))
            .await
            .map_err(nerr)
    }

    async fn delete_evpn(&self, e: &EvpnRef<'_>) -> Result<(), Error> {
        let slug = self.slug_for(e).await?;
        self.forget(&slug);
        self.dp.remove_evpn(&slug).await.map_err(nerr).map(|_| ())
    }

    async fn create_bvi(&self, e: &EvpnRef<'_>, mac: BviMac, attached: bool) -> Result<u32, Error> {
        let slug = slug_of(e.slug)?;
        self.forget(&slug);
        let obs = self.observe_slug(&slug).await?;
        let spec = BviSpec {
            slug: slug.clone(),
            mac: e.instance_mac.unwrap_or(mac.mac()),
            mtu: e.mtu,
        };
        let n = slug.names();
        let actions: Vec<Action> = plan::plan_ensure_bvi(&spec, &obs)
            .map_err(nerr)?
            .into_iter()
            .filter(|a| match a {
                Action::AddAddress { net, .. } | Action::DeleteAddress { net, .. } => !is_ll(net),
                Action::SetMaster { name, .. } | Action::SetLearning { name, .. } => {
                    attached || *name != n.port
                }
                _ => true,
            })
            .collect();
        self.apply(&actions, &obs).await?;
        // A bound BVI recreated by reconcile: take the vMAC with its FDB entry.
        let obs = self.observe_slug(&slug).await?;
        let fix = plan_set_mac(&obs, mac.mac(), mac.is_gateway());
        self.apply(&fix, &obs).await?;
        if !attached && obs.port.as_ref().is_some_and(|p| p.master.is_some()) {
            self.nl().set_master(&n.port, None).await.map_err(nerr)?;
        }
        self.nl().index_of(&n.bvi).await.map_err(nerr)
    }

    async fn delete_bvi(&self, e: &EvpnRef<'_>) -> Result<(), Error> {
        let slug = self.slug_for(e).await?;
        self.forget(&slug);
        let n = slug.names();
        for name in [&n.bvi, &n.port] {
            match self.nl().delete_link(name).await {
                Ok(()) => {}
                Err(err) if err.is_not_found() => {}
                Err(err) => return Err(nerr(err)),
            }
        }
        Ok(())
    }

    async fn set_attached(&self, e: &EvpnRef<'_>, attached: bool) -> Result<(), Error> {
        let n = slug_of(e.slug)?.names();
        if attached {
            self.nl()
                .set_master(&n.port, Some(&n.bridge))
                .await
                .map_err(nerr)?;
            self.nl()
                .set_bridge_port(&n.port, Some(false), None)
                .await
                .map_err(nerr)
        } else {
            self.nl().set_master(&n.port, None).await.map_err(nerr)
        }
    }

    async fn set_mac(&self, e: &EvpnRef<'_>, id: BviMac) -> Result<(), Error> {
        tracing::debug!(%id, "linux-set-mac");
        let slug = slug_of(e.slug)?;
        let (mac, vmac) = (id.mac(), id.is_gateway());
        if self.set_mac_fast(&slug, mac, vmac).await? {
            return Ok(());
        }
        self.set_port_macs(&slug, None);
        let obs = self.observe_fdb(&slug).await?;
        if obs.bvi.is_none() {
            return Err(Error::FailedPrecondition(format!(
                "{} does not exist",
                slug.names().bvi
            )));
        }
        let actions = plan_set_mac(&obs, mac, vmac);
        self.apply_set_mac(&actions, &obs).await?;
        self.set_port_macs(&slug, Some(if vmac { vec![mac] } else { Vec::new() }));
        Ok(())
    }

    async fn set_mtu(&self, e: &EvpnRef<'_>, mtu: u32) -> Result<(), Error> {
        let n = slug_of(e.slug)?.names();
        for name in [&n.port, &n.bvi] {
            self.nl().set_mtu(name, mtu).await.map_err(nerr)?;
        }
        Ok(())
    }

    async fn set_up(&self, e: &EvpnRef<'_>) -> Result<(), Error> {
        let n = slug_of(e.slug)?.names();
        for name in [&n.port, &n.bvi] {
            self.nl().set_addr_gen_mode_none(name).await.map_err(nerr)?;
            self.nl().set_accept_dad(name, 0).map_err(nerr)?;
            self.nl().set_up(name, true).await.map_err(nerr)?;
        }
        Ok(())
    }

    async fn set_link_local(&self, e: &EvpnRef<'_>, ll: Ipv6Addr) -> Result<(), Error> {
        let slug = slug_of(e.slug)?;
        let (idx, name) = self.bvi_index(&slug).await?;
        let want = IpNet::new(IpAddr::V6(ll), 64).map_err(|e| Error::Internal(e.to_string()))?;
        let (have, stale) = match self.link_local_known(&slug) {
            // The only link-local is known: no read (a read-back after a
            // bind or release sees the addresses and resets this on drift).
            Some(cur) => {
                let cur =
                    IpNet::new(IpAddr::V6(cur), 64).map_err(|e| Error::Internal(e.to_string()))?;
                (cur == want, if cur == want { vec![] } else { vec![cur] })
            }
            None => {
                let addrs = match self.nl().list_addresses(Some(idx)).await {
                    Ok(a) => a,
                    Err(err) => {
                        self.forget(&slug);
                        return Err(nerr(err));
                    }
                };
                let ok = |a: &netif::Addr| a.net == want && !a.tentative && !a.dad_failed;
                let stale: Vec<IpNet> = addrs
                    .iter()
                    .filter(|a| is_ll(&a.net) && !ok(a))
                    .map(|a| a.net)
                    .collect();
                (addrs.iter().any(ok), stale)
            }
        };
        // Deletions and the addition go out together (one round trip).
        let dels = futures::future::try_join_all(stale.iter().map(|net| {
            tracing::debug!(net = %net, dev = %name, "netlink-delete-link-local");
            let name = name.clone();
            async move {
                match self.nl().delete_address_at(idx, &name, *net).await {
                    Err(err) if !err.is_not_found() => Err(err),
                    _ => Ok(()),
                }
            }
        }));
        let add = async {
            if have {
                return Ok(());
            }
            tracing::debug!(net = %want, dev = %name, "netlink-add-link-local");
            match self.nl().add_address_at(idx, &name, want).await {
                Err(err) if !err.is_exists() => Err(err),
                _ => Ok(()),
            }
        };
        if let Err(err) = futures::try_join!(dels, add) {
            self.forget(&slug);
            return Err(nerr(err));
        }
        self.set_link_local_known(&slug, Some(ll));
        Ok(())
    }

    async fn add_address(&self, e: &EvpnRef<'_>, p: IpNet) -> Result<(), Error> {
        tracing::debug!(net = %p, "netlink-add-address");
        let slug = slug_of(e.slug)?;
        let (idx, name) = self.bvi_index(&slug).await?;
        match self.nl().add_address_at(idx, &name, p).await {
            Ok(()) => Ok(()),
            Err(err) if err.is_exists() => Ok(()),
            Err(err) => {
                // A stale cached index: retry by name.
                self.forget(&slug);
                match self.nl().add_address(&name, p).await {
                    Ok(()) => Ok(()),
                    Err(e2) if e2.is_exists() => Ok(()),
                    Err(_) => Err(nerr(err)),
                }
            }
        }
    }

    async fn del_address(&self, e: &EvpnRef<'_>, p: IpNet) -> Result<(), Error> {
        tracing::debug!(net = %p, "netlink-delete-address");
        let slug = slug_of(e.slug)?;
        let (idx, name) = self.bvi_index(&slug).await?;
        match self.nl().delete_address_at(idx, &name, p).await {
            Ok(()) => Ok(()),
            Err(err) => {
                // Not there, or a stale cached index: check by name.
                self.forget(&slug);
                match self.nl().delete_address(&name, p).await {
                    Ok(()) => Ok(()),
                    Err(e2) if e2.is_not_found() => Ok(()),
                    Err(_) if err.is_not_found() => Ok(()),
                    Err(e2) => Err(nerr(e2)),
                }
            }
        }
    }

    async fn other_addresses(&self, e: &EvpnRef<'_>) -> Result<Vec<(String, IpNet)>, Error> {
        super::linux_table::other_addresses(self.nl(), &slug_of(e.slug)?.names().bvi).await
    }

    async fn devices_up(&self, slug: &str) -> Result<(), Error> {
        let n = slug_of(slug)?.names();
        for name in [n.bridge, n.vxlan] {
            match self.nl().link_by_name(&name).await.map_err(nerr)? {
                Some(l) if l.up => {}
                Some(_) => return Err(Error::FailedPrecondition(format!("{name} is down"))),
                None => return Err(Error::FailedPrecondition(format!("{name} is missing"))),
            }
        }
        Ok(())
    }

    fn drift_events(&self) -> Option<tokio::sync::mpsc::Receiver<String>> {
        super::linux_drift::spawn(self.idx.clone())
    }

    async fn announce(&self, e: &EvpnRef<'_>, addrs: &[IpNet]) -> Result<(), Error> {
        let slug = slug_of(e.slug)?;
        let name = slug.names().bvi;
        // Right after a bind the index and the vMAC are known (cached index,
        // the port's one clean entry): no link lookup.
        let known = match (self.cached(&slug), self.port_macs(&slug).as_deref()) {
            (Some(ix), Some([mac])) => Some((ix.bvi, *mac)),
            _ => None,
        };
        let (index, mac) = match known {
            Some(k) => k,
            None => {
                let link = self
                    .nl()
                    .link_by_name(&name)
                    .await
                    .map_err(nerr)?
                    .ok_or_else(|| Error::FailedPrecondition(format!("{name} does not exist")))?;
                (link.index, link.mac.unwrap_or(Mac::nil()))
            }
        };
        let ann = Announcer::open(&name, index).map_err(nerr)?;
        let sent = self
            .dp
            .announce(&ann, mac, addrs, NaFlags::default())
            .map_err(nerr);
        // Closing the packet socket waits for an RCU grace period
        // (`synchronize_net`, ~10 ms): not on this task, which may be a
        // bind's that is about to answer.
        tokio::task::spawn_blocking(move || drop(ann));
        sent
    }

    /// The veth's Linux end is the BVI itself: made with it.
    async fn ensure_linux_side(&self, e: &EvpnRef<'_>) -> Result<super::LinuxSide, Error> {
        Ok(super::LinuxSide::Present(slug_of(e.slug)?.names().bvi))
    }
}

#[path = "linux_readback.rs"]
mod readback;

#[cfg(test)]
#[path = "linux_tests.rs"]
mod tests;
