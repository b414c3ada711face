//! The state snapshot a `WatchEvents(snapshot=true)` stream starts with: one
//! `snapshot` event per instance (instance = its ID) and per group
//! (instance empty), honouring the request's instance filter.
use std::collections::BTreeMap;

use evpn_daemon::{
    events::{Event, EventFilter, EventRecord},
    watch::snapshot_event,
};

use crate::registry::Registry;

fn join<'a>(it: impl Iterator<Item = &'a String>) -> String {
    it.cloned().collect::<Vec<_>>().join(",")
}

/// Snapshot events of the registry's current state.
pub fn snapshot(reg: &Registry, filter: &EventFilter) -> Vec<EventRecord> {
    let wanted = |inst: &str| filter.instances.as_ref().is_none_or(|s| s.contains(inst));
    reg.read(|i| {
        let mut out = Vec::new();
        for m in i.state.members.values() {
            if !wanted(&m.id) {
                continue;
            }
            let rt = i.rt.get(&m.id);
            let f: BTreeMap<String, String> = [
                ("address", m.grpc_address.clone()),
                (
                    "state",
                    rt.map_or("unspecified", |r| r.conn.as_str()).to_string(),
                ),
                ("ready", rt.is_some_and(|r| r.ready).to_string()),
                ("groups", i.state.groups_of(&m.id).join(",")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            out.push(snapshot_event(&m.id, Event::SnapshotInstance, f));
        }
        if wanted("") {
            for g in i.state.groups.values() {
                let f: BTreeMap<String, String> = [
                    ("group", g.id.clone()),
                    ("vni", g.vni.to_string()),
                    ("vmac", g.vmac.to_string()),
                    ("members", join(g.members.iter())),
                    ("primary", g.primary.clone().unwrap_or_default()),
                    ("addresses", crate::model::addresses(g)),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                out.push(snapshot_event("", Event::SnapshotGroup, f));
            }
        }
        out
    })
}
