//! The Linux read-back after a bind or release (issue 16): what the call's
//! writes did not already prove. The kernel acknowledged each write, so the
//! BVI's MAC is known (its `RTM_SETLINK` was acked on the cached index) and
//! the four devices exist under the cached indexes; bind and release never
//! touch attachment, MTU or admin state, which are reported as the committed
//! state says (reconcile observes them). Two reads stay, because a safety
//! rule needs what no ack can prove:
//! * the BVI's addresses (link-locals included): a release must prove the
//!   BVI holds no gateway address (one added behind evpnd's back would stay;
//!   a delete's ack only covers the address it named), and exactly one
//!   link-local, the MAC's;
//! * the bridge's FDB: the vMAC's entry must be one clean static entry on
//!   the port while bound and none while released, with no static entry on
//!   the VXLAN device — BIRD installing another VTEP's route over our entry
//!   moves it there (`extern_learn … static`), which no ack of ours shows
//!   (`docs/fabric.md`; the FDB rule of ARCHITECTURE.md).
//!
//! Both go out together (one round trip) instead of a full observe (the
//! four links by name, then addresses, bridge ports and FDB: two rounds).
use evpn_model::{Error, Mac};
use netif::{Addr, BridgePortInfo, FdbEntry, Link, LinkKind, Observed, Slug};

use super::{Idx, LinuxDataplane, observed_bvi, slug_of};
use crate::dataplane::{EvpnRef, Known, ObservedBvi};

impl LinuxDataplane {
    /// Remember what an observation or read-back of `slug` showed: the
    /// port's entries when they agree with the MAC, the link-local when it
    /// is the only one.
    pub(super) fn note(&self, slug: &Slug, obs: &Observed, bvi: Option<&ObservedBvi>) {
        let consistent = bvi.is_some_and(|b| b.mac != Mac([0; 6]));
        self.set_port_macs(
            slug,
            consistent.then(|| obs.port_entries().iter().map(|e| e.mac).collect()),
        );
        self.set_link_local_known(slug, bvi.and_then(|b| b.link_local));
    }

    /// The read-back after a bind or release whose MAC write was acked:
    /// the BVI's addresses and the bridge's FDB by the cached indexes, in
    /// one round. Anything else (no MAC written, nothing cached, a read
    /// failing): a full observe.
    pub(super) async fn read_back_acked(
        &self,
        e: &EvpnRef<'_>,
        known: &Known,
        assumed: &ObservedBvi,
    ) -> Result<Option<ObservedBvi>, Error> {
        let slug = slug_of(e.slug)?;
        if let (Some(mac), Some(ix)) = (known.mac, self.cached(&slug)) {
            let start = std::time::Instant::now();
            let nl = self.nl();
            let reads = futures::try_join!(
                nl.list_addresses(Some(ix.bvi)),
                nl.list_fdb_of_bridge(ix.bridge)
            );
            crate::timing::step(|| "read addresses, fdb".into(), start);
            if let Ok((addrs, fdb)) = reads {
                let obs = proven(&slug, ix, mac, assumed, addrs, fdb);
                let bvi = observed_bvi(&obs, e.instance_mac);
                self.note(&slug, &obs, bvi.as_ref());
                return Ok(bvi);
            }
            self.forget(&slug);
        }
        let start = std::time::Instant::now();
        let r = crate::dataplane::Dataplane::observe(self, e)
            .await
            .map(|o| o.bvi);
        crate::timing::step(|| "read observe".into(), start);
        r
    }
}

/// A link as a read-back takes it to be (only what the checks use is set).
fn link(index: u32, name: &str, kind: LinkKind) -> Link {
    Link {
        index,
        name: name.to_string(),
        kind,
        mac: None,
        mtu: 0,
        master: None,
        up: true,
        link: None,
        vxlan: None,
        bridge_stp: None,
        bridge_vlan_filtering: None,
        port: None,
        addr_gen_mode: None,
        accept_dad: None,
    }
}

/// The observation a read-back stands for (sans-IO): the devices under the
/// indexes `ix` the writes used, the BVI carrying `mac` (acked), attachment,
/// MTU and admin state as `assumed` (the committed state) says, and the two
/// reads, `addrs` (the BVI's) and `fdb` (the bridge's). Judge it with
/// [`observed_bvi`], the same rule `observe` uses.
fn proven(
    slug: &Slug,
    ix: Idx,
    mac: Mac,
    assumed: &ObservedBvi,
    addrs: Vec<Addr>,
    mut fdb: Vec<FdbEntry>,
) -> Observed {
    let n = slug.names();
    let mut bvi = link(ix.bvi, &n.bvi, LinkKind::Veth);
    bvi.mac = Some(mac);
    bvi.mtu = assumed.mtu;
    bvi.up = assumed.up;
    bvi.link = Some(ix.port);
    let mut port = link(ix.port, &n.port, LinkKind::Veth);
    port.mtu = assumed.mtu;
    port.up = assumed.up;
    port.link = Some(ix.bvi);
    if assumed.attached {
        port.master = Some(ix.bridge);
        port.port = Some(BridgePortInfo {
            learning: false,
            neigh_suppress: false,
        });
    }
    fdb.retain(|e| {
        (e.in_bridge() && e.master == Some(ix.bridge)) || (e.is_self && e.index == ix.vxlan)
    });
    let mut obs = Observed::empty(slug);
    obs.bridge = Some(link(ix.bridge, &n.bridge, LinkKind::Bridge));
    obs.vxlan = Some(link(ix.vxlan, &n.vxlan, LinkKind::Vxlan));
    obs.port = Some(port);
    obs.bvi = Some(bvi);
    obs.bvi_addrs = addrs;
    obs.fdb = fdb;
    obs
}

#[cfg(test)]
mod tests {
    use super::*;
    use netif::FdbState;

    // The FDB entry builder of the Linux dataplane's tests.
    use super::super::tests::entry;

    const PER_HOST: Mac = Mac([2, 0, 0, 0, 1, 0x32]);
    const VMAC: Mac = Mac([2, 0x42, 0, 0, 0, 1]);
    const IX: Idx = Idx {
        bridge: 10,
        vxlan: 11,
        port: 12,
        bvi: 13,
    };

    fn addr(net: &str) -> Addr {
        Addr {
            index: 13,
            net: net.parse().unwrap(),
            nodad: true,
            tentative: false,
            dad_failed: false,
            permanent: true,
        }
    }

    fn assumed(mac: Mac, addresses: &[&str]) -> ObservedBvi {
        ObservedBvi {
            handle: 0,
            mac,
            mtu: 1500,
            up: true,
            attached: true,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            link_local: Some(mac.link_local()),
            linux: None,
        }
    }

    fn ll(mac: Mac) -> String {
        format!("{}/64", mac.link_local())
    }

    /// What the read-back reports for a bind (`vmac`) or release, given
    /// what the two reads found.
    fn judge(mac: Mac, addrs: &[String], fdb: Vec<FdbEntry>) -> ObservedBvi {
        let slug = Slug::new("test").unwrap();
        let want: Vec<&str> = if mac == VMAC {
            vec!["192.0.2.1/24"]
        } else {
            vec![]
        };
        let a = addrs.iter().map(|s| addr(s)).collect();
        let obs = proven(&slug, IX, mac, &assumed(mac, &want), a, fdb);
        observed_bvi(&obs, Some(PER_HOST)).expect("the pair is there")
    }

    #[test]
    fn a_clean_read_back_matches_the_committed_state() {
        let clean = [
            (
                VMAC,
                vec![ll(VMAC), "192.0.2.1/24".to_string()],
                vec![entry(VMAC.0, 12, FdbState::Static, false)],
            ),
            (PER_HOST, vec![ll(PER_HOST)], vec![]),
        ];
        for (mac, addrs, fdb) in clean {
            let got = judge(mac, &addrs, fdb);
            let mut want = assumed(mac, if mac == VMAC { &["192.0.2.1/24"] } else { &[] });
            want.handle = IX.bvi;
            want.linux = Some("bvi-test".into());
            assert_eq!(got, want, "{mac}");
        }
    }

    /// What no write's ack proves, the reads show: each case must differ
    /// from the committed state, so `verify` heals it or fails.
    #[test]
    fn what_the_acks_cannot_prove_is_seen() {
        // (case, mac, addresses read, fdb read, check)
        type Check = fn(&ObservedBvi) -> bool;
        type Case = (&'static str, Mac, Vec<String>, Vec<FdbEntry>, Check);
        let cases: Vec<Case> = vec![
            (
                "released, a gateway address added behind evpnd's back",
                PER_HOST,
                vec![ll(PER_HOST), "192.0.2.1/24".into()],
                vec![],
                |o| o.addresses == vec!["192.0.2.1/24".parse::<ipnet::IpNet>().unwrap()],
            ),
            (
                "released, our entry moved onto the VXLAN device by BIRD",
                PER_HOST,
                vec![ll(PER_HOST)],
                vec![entry(VMAC.0, 11, FdbState::Static, true)],
                |o| o.mac == Mac([0; 6]),
            ),
            (
                "bound, BIRD's route over the static entry",
                VMAC,
                vec![ll(VMAC), "192.0.2.1/24".into()],
                vec![entry(VMAC.0, 11, FdbState::Static, true)],
                |o| o.mac == Mac([0; 6]),
            ),
            (
                "bound, no static entry on the port",
                VMAC,
                vec![ll(VMAC), "192.0.2.1/24".into()],
                vec![],
                |o| o.mac == Mac([0; 6]),
            ),
            (
                "released, a stale port entry left",
                PER_HOST,
                vec![ll(PER_HOST)],
                vec![entry(VMAC.0, 12, FdbState::Static, false)],
                |o| o.mac == Mac([0; 6]),
            ),
            (
                "a second link-local",
                PER_HOST,
                vec![ll(PER_HOST), ll(VMAC)],
                vec![],
                |o| o.link_local.is_none(),
            ),
            (
                "bound, a gateway address missing",
                VMAC,
                vec![ll(VMAC)],
                vec![entry(VMAC.0, 12, FdbState::Static, false)],
                |o| o.addresses.is_empty(),
            ),
        ];
        for (case, mac, addrs, fdb, check) in cases {
            let got = judge(mac, &addrs, fdb);
            assert!(check(&got), "{case}: {got:?}");
        }
    }
}
