//! Drift on the Linux dataplane: a `netif::Watcher` (rtnetlink link,
//! address and neighbour groups) in evpnd's namespace; every kernel change
//! to what evpnd manages asks the reconcile loop for a pass at once
//! (`reconcile::run` coalesces and paces the passes).
//!
//! What counts ([`drift_of`], sans-IO): a link event for one of the managed
//! devices (`brg-`/`vxl-`/`bvp-`/`bvi-` names, or a cached index), an
//! address event on a cached BVI, a bridge FDB event on a cached BVI port,
//! and a `static` bridge entry on a cached VXLAN device (our entry that
//! BIRD overwrote, or one made by hand). BIRD's own remote entries
//! (`extern_learn`, not static) and `self` entries of the VXLAN devices do
//! not count: they change with every remote MAC. Changes evpnd makes itself
//! count too; the pass they cause finds nothing to do.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use netif::{Event, FdbState, Watcher};
use tokio::sync::mpsc;

use super::linux::Idx;

const PREFIXES: [&str; 4] = ["brg-", "vxl-", "bvp-", "bvi-"];

/// Why `ev` calls for a reconcile (a short text for the log), or `None`.
/// `idx`: the cached indexes of every observed eVPN's devices.
pub(super) fn drift_of(ev: &Event, idx: &HashMap<String, Idx>) -> Option<String> {
    let any = |f: &dyn Fn(&Idx) -> bool| idx.iter().find(|(_, i)| f(i)).map(|(s, _)| s.clone());
    match ev {
        Event::LinkNew(l) | Event::LinkDel(l) => {
            let ours = PREFIXES.iter().any(|p| l.name.starts_with(p))
                || any(&|i| [i.bridge, i.vxlan, i.port, i.bvi].contains(&l.index)).is_some();
            let what = if matches!(ev, Event::LinkDel(_)) {
                "deleted"
            } else {
                "changed"
            };
            ours.then(|| format!("link {} {what}", l.name))
        }
        Event::AddrNew(a) | Event::AddrDel(a) => {
            any(&|i| i.bvi == a.index).map(|s| format!("address {} on the BVI of {s}", a.net))
        }
        Event::FdbNew(e) | Event::FdbDel(e) => {
            if !e.in_bridge() {
                return None;
            }
            if let Some(s) = any(&|i| i.port == e.index) {
                return Some(format!("FDB entry {} on the BVI port of {s}", e.mac));
            }
            let static_on_vxlan = matches!(ev, Event::FdbNew(_)) && e.state == FdbState::Static;
            any(&|i| i.vxlan == e.index)
                .filter(|_| static_on_vxlan)
                .map(|s| format!("static FDB entry {} on the VXLAN device of {s}", e.mac))
        }
    }
}

/// Open the watcher and forward [`drift_of`]'s reasons into a channel of
/// one (a pending reason is enough: further ones coalesce into it).
/// `None` (logged) when the netlink subscription cannot be opened. If the
/// socket ends later (e.g. its receive buffer overflowed and events were
/// lost), one pass is asked for and the watcher is reopened after 1 s.
pub(super) fn spawn(idx: Arc<Mutex<HashMap<String, Idx>>>) -> Option<mpsc::Receiver<String>> {
    let mut w = match Watcher::open() {
        Ok(w) => w,
        Err(err) => {
            tracing::warn!(error = %err, "drift-watch-unavailable");
            return None;
        }
    };
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            while let Some(ev) = w.next().await {
                let why = {
                    let g = idx.lock().unwrap_or_else(|p| p.into_inner());
                    drift_of(&ev, &g)
                };
                let Some(why) = why else { continue };
                tracing::debug!(reason = %why, "drift-event");
                if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(why) {
                    return;
                }
            }
            tracing::warn!("drift-watch-ended");
            if let Err(mpsc::error::TrySendError::Closed(_)) =
                tx.try_send("drift watch ended: events may be lost".into())
            {
                return;
            }
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                match Watcher::open() {
                    Ok(n) => {
                        w = n;
                        break;
                    }
                    Err(err) => tracing::warn!(error = %err, "drift-watch-unavailable"),
                }
            }
        }
    });
    Some(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netif::{Addr, FdbEntry, Link, LinkKind};

    fn idx() -> HashMap<String, Idx> {
        HashMap::from([(
            "test".to_string(),
            Idx {
                bridge: 10,
                vxlan: 11,
                port: 12,
                bvi: 13,
            },
        )])
    }

    fn link(index: u32, name: &str) -> Link {
        Link {
            index,
            name: name.into(),
            kind: LinkKind::Veth,
            mac: None,
            mtu: 1500,
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

    fn addr(index: u32) -> Addr {
        Addr {
            index,
            net: "172.16.0.32/24".parse().unwrap(),
            nodad: false,
            tentative: false,
            dad_failed: false,
            permanent: true,
        }
    }

    fn fdb(index: u32, state: FdbState, extern_learn: bool, is_self: bool) -> FdbEntry {
        FdbEntry {
            mac: evpn_model::Mac::new(2, 0x42, 0, 0, 0, 1),
            index,
            master: (!is_self).then_some(10),
            vlan: None,
            dst: None,
            vni: None,
            is_self,
            is_master: !is_self,
            extern_learn,
            sticky: false,
            state,
        }
    }

    #[test]
    fn what_counts_as_drift() {
        use FdbState::{Dynamic, Permanent, Static};
        let table: Vec<(Event, bool)> = vec![
            // Managed devices, by name or cached index.
            (Event::LinkDel(link(99, "brg-other")), true),
            (Event::LinkNew(link(13, "renamed")), true),
            (Event::LinkNew(link(2, "eth0")), false),
            // Addresses: on a BVI only.
            (Event::AddrDel(addr(13)), true),
            (Event::AddrNew(addr(13)), true),
            (Event::AddrDel(addr(2)), false),
            // FDB: anything on the BVI port.
            (Event::FdbNew(fdb(12, Static, false, false)), true),
            (Event::FdbDel(fdb(12, Static, false, false)), true),
            (Event::FdbNew(fdb(12, Dynamic, false, false)), true),
            // On the VXLAN device: a static bridge entry (BIRD over ours,
            // or by hand), not BIRD's own entries or the VXLAN table.
            (Event::FdbNew(fdb(11, Static, true, false)), true),
            (Event::FdbNew(fdb(11, Static, false, false)), true),
            (Event::FdbNew(fdb(11, Dynamic, true, false)), false),
            (Event::FdbDel(fdb(11, Dynamic, true, false)), false),
            (Event::FdbNew(fdb(11, Permanent, true, true)), false),
            // Another bridge's port.
            (Event::FdbNew(fdb(40, Static, false, false)), false),
        ];
        for (ev, want) in table {
            assert_eq!(drift_of(&ev, &idx()).is_some(), want, "{ev:?}");
        }
        // Nothing cached yet: only the names tell.
        assert!(drift_of(&Event::AddrDel(addr(13)), &HashMap::new()).is_none());
        assert!(drift_of(&Event::LinkDel(link(13, "bvi-test")), &HashMap::new()).is_some());
    }
}
