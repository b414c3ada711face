//! The Linux dataplane's FDB rules (sans-IO): what the BVI port and the
//! VXLAN device of an eVPN's bridge may hold, and the plan that makes them
//! so when the BVI's MAC is set (see `linux.rs` and `docs/fabric.md`).
use netif::Mac as MacAddr6;
use netif::{Action, FdbState, FdbTable, Observed};

/// True when the port's managed FDB entries match the BVI's MAC `cur`: one
/// clean static entry for it when it is a vMAC (not `per_host`), none when
/// it is the per-host MAC; and in either case no static entry on the VXLAN
/// device ([`stray_statics`]).
pub fn fdb_consistent(obs: &Observed, cur: MacAddr6, per_host: Option<MacAddr6>) -> bool {
    if !stray_statics(obs).is_empty() {
        return false;
    }
    let entries = obs.port_entries();
    if per_host.is_none_or(|p| p == cur) {
        return entries.is_empty();
    }
    entries.len() == 1 && static_clean(obs, cur)
}

/// Bridge entries on the VXLAN device in the `static` state: never right.
/// BIRD's remote entries are `extern_learn` and not static; a static one is
/// either our own port entry that BIRD moved onto the VXLAN device by
/// installing another VTEP's route over it (the kernel keeps the static
/// flag: `extern_learn … static`, it never ages and points the MAC the
/// wrong way) or one made by hand.
pub fn stray_statics(obs: &Observed) -> Vec<&netif::FdbEntry> {
    let (Some(br), Some(vx)) = (&obs.bridge, &obs.vxlan) else {
        return Vec::new();
    };
    obs.fdb
        .iter()
        .filter(|e| {
            e.index == vx.index
                && e.in_bridge()
                && e.master == Some(br.index)
                && e.state == FdbState::Static
        })
        .collect()
}

fn static_clean(obs: &Observed, mac: MacAddr6) -> bool {
    match (obs.bridge_entry(mac), &obs.port) {
        (Some(e), Some(p)) => e.index == p.index && e.state == FdbState::Static && !e.extern_learn,
        _ => false,
    }
}

fn name_of(obs: &Observed, index: u32) -> Option<String> {
    [&obs.bridge, &obs.vxlan, &obs.port, &obs.bvi]
        .into_iter()
        .flatten()
        .chain(obs.bridge_ports.iter())
        .find(|l| l.index == index)
        .map(|l| l.name.clone())
}

/// Plan setting the BVI's MAC to `mac` (sans-IO). A vMAC (≠ `per_host`):
/// delete the bridge's current entry for it unless it is already our clean
/// static one (BIRD's remote `extern_learn` entry), set the MAC, add the
/// static entry on the port (this is what BIRD advertises), delete any other
/// managed entry on the port. The per-host MAC: delete every managed entry on
/// the port first (the withdrawal), then set the MAC. Either way every
/// [`stray_statics`] entry is deleted first.
pub fn plan_set_mac(obs: &Observed, mac: MacAddr6, per_host: Option<MacAddr6>) -> Vec<Action> {
    let n = &obs.names;
    let mut out = Vec::new();
    let Some(bvi) = &obs.bvi else { return out };
    let vmac = per_host.is_some_and(|p| p != mac);
    for e in stray_statics(obs) {
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
    let clean = static_clean(obs, mac);
    if let Some(e) = obs.bridge_entry(mac)
        && !clean
    {
        out.push(Action::DeleteFdb {
            dev: name_of(obs, e.index).unwrap_or_else(|| n.vxlan.clone()),
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
