//! Per-eVPN operations for the daemon: observe the kernel, plan ([`crate::plan`]), execute.
//!
//! Each high-level call reads the kernel first, changes only the differences and returns the
//! actions it applied (empty when the kernel already matched). On an error the kernel may be
//! half-way; calling the same operation again continues from what is there.

use std::collections::HashMap;
use std::net::IpAddr;

use evpn_model::Mac;
use ipnet::IpNet;
use tracing::debug;

use crate::announce::{Announcer, NaFlags, Schedule};
use crate::error::{Error, Op, Result};
use crate::link::{Netlink, VxlanOpts};
use crate::names::Slug;
use crate::plan::{self, Action, BviSpec, EvpnSpec, Observed};

/// The Linux dataplane of one host: a netlink connection plus the per-eVPN operations.
#[derive(Debug, Clone)]
pub struct Dataplane {
    nl: Netlink,
}

impl Dataplane {
    /// Use `nl` (the namespace it was opened in is the one managed).
    pub fn new(nl: Netlink) -> Dataplane {
        Dataplane { nl }
    }

    /// The netlink connection.
    pub fn netlink(&self) -> &Netlink {
        &self.nl
    }

    /// What the kernel has for `slug`: its four devices, the bridge's ports, the BVI's
    /// addresses and the bridge/VXLAN FDB entries. The input of reconcile after a restart.
    pub async fn observe(&self, slug: &Slug) -> Result<Observed> {
        let mut obs = Observed::empty(slug);
        let n = &obs.names;
        let (bridge, vxlan, port, bvi) = futures::try_join!(
            self.nl.link_by_name(&n.bridge),
            self.nl.link_by_name(&n.vxlan),
            self.nl.link_by_name(&n.port),
            self.nl.link_by_name(&n.bvi),
        )?;
        (obs.bridge, obs.vxlan, obs.port, obs.bvi) = (bridge, vxlan, port, bvi);
        let br = obs.bridge.as_ref().map(|l| l.index);
        let vx = obs.vxlan.as_ref().map(|l| l.index);
        let bvi = obs.bvi.as_ref().map(|l| l.index);
        // The second round of queries depends only on the indexes: run them concurrently.
        let (addrs, ports, fdb) = futures::try_join!(
            async {
                match bvi {
                    Some(i) => self.nl.list_addresses(Some(i)).await,
                    None => Ok(Vec::new()),
                }
            },
            async {
                match br {
                    Some(i) => self.nl.list_links_of_master(i).await,
                    None => Ok(Vec::new()),
                }
            },
            async {
                match (br, vx) {
                    (Some(i), _) => self.nl.list_fdb_of_bridge(i).await,
                    (None, Some(_)) => self.nl.list_fdb().await,
                    (None, None) => Ok(Vec::new()),
                }
            },
        )?;
        (obs.bvi_addrs, obs.bridge_ports, obs.fdb) = (addrs, ports, fdb);
        obs.fdb.retain(|e| {
            (e.in_bridge() && e.master.is_some() && e.master == br)
                || (e.is_self && Some(e.index) == vx)
        });
        Ok(obs)
    }

    /// Bridge + VXLAN device of an eVPN (see [`plan::plan_ensure_evpn`]). Create them before
    /// the BIRD snippet that names them is applied. If the returned actions include a device
    /// change ([`Action::changes_devices`]) while BIRD was already running, BIRD 2.20 may need
    /// the `docs/bird-notes.md` §4.6 treatment (device scan, then `restart` of the evpn protocol).
    pub async fn ensure_evpn(&self, spec: &EvpnSpec) -> Result<Vec<Action>> {
        let obs = self.observe(&spec.slug).await?;
        let actions = plan::plan_ensure_evpn(spec, &obs)?;
        self.apply(&actions, &obs).await?;
        Ok(actions)
    }

    /// The BVI veth pair of an eVPN (see [`plan::plan_ensure_bvi`]).
    pub async fn ensure_bvi(&self, spec: &BviSpec) -> Result<Vec<Action>> {
        let obs = self.observe(&spec.slug).await?;
        let actions = plan::plan_ensure_bvi(spec, &obs)?;
        self.apply(&actions, &obs).await?;
        Ok(actions)
    }

    /// Set the BVI's MAC with its FDB entry (see [`plan::plan_set_mac`]): a vMAC (`vmac`) or
    /// the per-host MAC. Addresses and the link-local are the caller's.
    pub async fn set_mac(&self, slug: &Slug, mac: Mac, vmac: bool) -> Result<Vec<Action>> {
        let obs = self.observe(slug).await?;
        let actions = plan::plan_set_mac(&obs, mac, vmac);
        self.apply(&actions, &obs).await?;
        Ok(actions)
    }

    /// Delete all devices of an eVPN (after its BIRD snippet is gone).
    pub async fn remove_evpn(&self, slug: &Slug) -> Result<Vec<Action>> {
        let obs = self.observe(slug).await?;
        let actions = plan::plan_remove_evpn(&obs);
        self.apply(&actions, &obs).await?;
        Ok(actions)
    }

    /// Open the raw sockets for announcing on `bvi-<slug>`.
    pub async fn announcer(&self, slug: &Slug) -> Result<Announcer> {
        let name = slug.names().bvi;
        let index = self.nl.index_of(&name).await?;
        Announcer::open(&name, index)
    }

    /// Send one round of announcements: a gratuitous ARP per IPv4 address and an unsolicited
    /// NA per IPv6 address of `addrs`, from `vmac`. Pace rounds with
    /// [`crate::announce::Schedule`].
    pub fn announce(
        &self,
        announcer: &Announcer,
        vmac: Mac,
        addrs: &[IpNet],
        flags: NaFlags,
    ) -> Result<()> {
        for a in addrs {
            match a.addr() {
                IpAddr::V4(ip) => announcer.send_garp(vmac, ip)?,
                IpAddr::V6(ip) => announcer.send_na(vmac, ip, flags)?,
            }
        }
        Ok(())
    }

    /// Send the announcement rounds of `schedule` (see [`Dataplane::announce`]), sleeping
    /// between rounds. Dropping the future stops it (e.g. when the gateway is released).
    pub async fn announce_paced(
        &self,
        announcer: &Announcer,
        vmac: Mac,
        addrs: &[IpNet],
        flags: NaFlags,
        schedule: &Schedule,
    ) -> Result<()> {
        let start = tokio::time::Instant::now();
        for offset in schedule.offsets() {
            tokio::time::sleep_until(start + offset).await;
            self.announce(announcer, vmac, addrs, flags)?;
        }
        Ok(())
    }

    /// Delete the devices with our name prefixes that belong to none of `desired` (see
    /// [`crate::names::orphans`]); returns the deleted names. For reconcile after a restart.
    pub async fn remove_orphans(&self, desired: &[Slug]) -> Result<Vec<String>> {
        let links = self.nl.list_links().await?;
        let names = crate::names::orphans(links.iter().map(|l| l.name.as_str()), desired);
        let mut deleted = Vec::new();
        for n in names {
            match self.nl.delete_link(&n).await {
                Ok(()) => deleted.push(n),
                // the peer of an already deleted BVI
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    /// Execute `actions` in order; `obs` seeds the name → index cache. Stops at the first
    /// error.
    pub async fn apply(&self, actions: &[Action], obs: &Observed) -> Result<()> {
        let mut idx: HashMap<String, u32> = [&obs.bridge, &obs.vxlan, &obs.port, &obs.bvi]
            .into_iter()
            .flatten()
            .chain(obs.bridge_ports.iter())
            .map(|l| (l.name.clone(), l.index))
            .collect();
        for a in actions {
            debug!(action = %a, "netif apply");
            self.apply_one(a, &mut idx).await?;
        }
        Ok(())
    }

    async fn index(&self, cache: &mut HashMap<String, u32>, name: &str, op: Op) -> Result<u32> {
        if let Some(i) = cache.get(name) {
            return Ok(*i);
        }
        let i = self.nl.index_of(name).await.map_err(|e| match e {
            Error::NotFound { target, .. } => Error::NotFound { op, target },
            other => other,
        })?;
        cache.insert(name.to_string(), i);
        Ok(i)
    }

    async fn apply_one(&self, a: &Action, cache: &mut HashMap<String, u32>) -> Result<()> {
        let nl = &self.nl;
        match a {
            Action::CreateBridge { name, mtu } => nl.create_bridge(name, Some(*mtu)).await,
            Action::CreateVxlan {
                name,
                vni,
                local,
                port,
                mtu,
            } => {
                let opts = VxlanOpts {
                    vni: *vni,
                    local: *local,
                    port: *port,
                    learning: false,
                    mtu: Some(*mtu),
                };
                nl.create_vxlan(name, &opts).await
            }
            Action::CreateVeth { name, peer, mtu } => nl.create_veth(name, peer, Some(*mtu)).await,
            Action::DeleteLink { name } => {
                let i = self.index(cache, name, Op::DeleteLink).await?;
                // A veth takes its peer along; a stale cache entry would point nowhere.
                cache.clear();
                nl.delete_link_at(i, name).await
            }
            Action::SetMaster { name, master } => {
                let i = self.index(cache, name, Op::SetMaster).await?;
                let m = self.index(cache, master, Op::SetMaster).await?;
                nl.set_master_at(i, name, m).await
            }
            Action::SetLearning { name, on } => {
                let i = self.index(cache, name, Op::SetBridgePort).await?;
                nl.set_bridge_port_at(i, name, Some(*on), None).await
            }
            Action::SetMac { name, mac } => {
                let i = self.index(cache, name, Op::SetMac).await?;
                nl.set_mac_at(i, name, *mac).await
            }
            Action::SetMtu { name, mtu } => {
                let i = self.index(cache, name, Op::SetMtu).await?;
                nl.set_mtu_at(i, name, *mtu).await
            }
            Action::SetUp { name } => {
                let i = self.index(cache, name, Op::SetUp).await?;
                nl.set_up_at(i, name, true).await
            }
            Action::SetAddrGenModeNone { name } => {
                let i = self.index(cache, name, Op::SetAddrGenMode).await?;
                nl.set_addr_gen_mode_none_at(i, name).await
            }
            Action::SetAcceptDad { name, value } => nl.set_accept_dad(name, *value),
            Action::AddAddress { name, net } => {
                let i = self.index(cache, name, Op::AddAddress).await?;
                nl.add_address_at(i, name, *net).await
            }
            Action::DeleteAddress { name, net } => {
                let i = self.index(cache, name, Op::DeleteAddress).await?;
                nl.delete_address_at(i, name, *net).await
            }
            Action::AddFdbStatic { port, mac } => {
                let i = self.index(cache, port, Op::AddFdb).await?;
                nl.add_fdb_static_at(i, port, *mac).await
            }
            Action::DeleteFdb { dev, mac, table } => {
                let i = self.index(cache, dev, Op::DeleteFdb).await?;
                nl.delete_fdb_at(i, dev, *mac, *table, None).await
            }
        }
    }
}
