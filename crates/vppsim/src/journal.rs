//! The ordered journal of state-changing calls, and checks over it.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One state-changing call, in the order VPP processed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Position (1-based, gapless).
    pub seq: u64,
    /// Monotonic nanoseconds since the simulator started.
    pub mono_ns: u64,
    /// Wall-clock nanoseconds since the Unix epoch.
    pub wall_ns: u64,
    /// The caller's `client_index`.
    pub client_index: u32,
    /// Message name without CRC, e.g. `sw_interface_set_mac_address`.
    pub msg: String,
    /// Key decoded fields (`sw_if_index`, `mac`, `prefix`, ...).
    pub fields: serde_json::Map<String, Value>,
    /// The retval sent back.
    pub retval: i32,
    /// True when the retval came from fault injection (state untouched).
    #[serde(default)]
    pub injected: bool,
}

impl JournalEntry {
    /// A field as u32.
    pub fn u32(&self, k: &str) -> Option<u32> {
        self.fields.get(k).and_then(Value::as_u64).map(|v| v as u32)
    }
    /// A field as string.
    pub fn str(&self, k: &str) -> Option<&str> {
        self.fields.get(k).and_then(Value::as_str)
    }
}

/// Journal storage (in memory, optionally appended to a JSON-lines file).
#[derive(Debug)]
pub struct Journal {
    start: Instant,
    entries: Vec<JournalEntry>,
    file: Option<File>,
}

impl Journal {
    /// A journal; with `path`, every entry is also appended there as one JSON line.
    pub fn new(path: Option<&Path>) -> std::io::Result<Self> {
        let file = match path {
            Some(p) => Some(File::options().create(true).append(true).open(p)?),
            None => None,
        };
        Ok(Self {
            start: Instant::now(),
            entries: Vec::new(),
            file,
        })
    }

    /// Appends an entry.
    pub fn record(
        &mut self,
        client_index: u32,
        msg: &str,
        fields: serde_json::Map<String, Value>,
        retval: i32,
        injected: bool,
    ) {
        let e = JournalEntry {
            seq: self.entries.len() as u64 + 1,
            mono_ns: u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX),
            wall_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                .unwrap_or(0),
            client_index,
            msg: msg.to_owned(),
            fields,
            retval,
            injected,
        };
        if let Some(f) = &mut self.file
            && let Ok(line) = serde_json::to_string(&e)
            && let Err(err) = writeln!(f, "{line}")
        {
            tracing::warn!(error = %err, "cannot append to the journal file");
        }
        self.entries.push(e);
    }

    /// All entries.
    pub fn entries(&self) -> &[JournalEntry] {
        &self.entries
    }

    /// Forgets the in-memory entries (the file is kept).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// A MAC held by two interfaces at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MAC {mac} held by sw_if_index {first} and {second} at journal seq {seq}")]
pub struct MacConflict {
    /// The MAC.
    pub mac: String,
    /// The earlier holder.
    pub first: u32,
    /// The new holder.
    pub second: u32,
    /// Journal seq of the call that created the overlap.
    pub seq: u64,
}

/// Replays the journal and fails if two interfaces ever had the same MAC at
/// the same time (successful loopback creations, MAC changes and deletions;
/// `initial` gives holders existing before the journal started). With `only`,
/// only that MAC is checked.
pub fn check_mac_exclusive(
    entries: &[JournalEntry],
    initial: &[(u32, String)],
    only: Option<&str>,
) -> Result<(), MacConflict> {
    let mut holders: HashMap<u32, String> = initial.iter().cloned().collect();
    let norm = |s: &str| s.to_ascii_lowercase();
    for e in entries.iter().filter(|e| e.retval == 0 && !e.injected) {
        let (idx, mac) = match e.msg.as_str() {
            "create_loopback" | "create_loopback_instance" | "sw_interface_set_mac_address" => {
                match (e.u32("sw_if_index"), e.str("mac")) {
                    (Some(i), Some(m)) => (i, norm(m)),
                    _ => continue,
                }
            }
            "delete_loopback" => {
                if let Some(i) = e.u32("sw_if_index") {
                    holders.remove(&i);
                }
                continue;
            }
            _ => continue,
        };
        holders.insert(idx, mac.clone());
        if mac == "00:00:00:00:00:00" || only.is_some_and(|o| norm(o) != mac) {
            continue;
        }
        if let Some((other, _)) = holders.iter().find(|(i, m)| **i != idx && **m == mac) {
            return Err(MacConflict {
                mac,
                first: *other,
                second: idx,
                seq: e.seq,
            });
        }
    }
    Ok(())
}

/// A MAC held by interfaces of two different hosts at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "MAC {mac} held by host {first_host} (sw_if_index {first_index}) and host {second_host} \
     (sw_if_index {second_index}) at wall-clock {wall_ns} ns (journal seq {seq} of host {second_host})"
)]
pub struct HostMacConflict {
    /// The MAC.
    pub mac: String,
    /// The earlier holder's host label.
    pub first_host: String,
    /// The earlier holder's interface.
    pub first_index: u32,
    /// The new holder's host label.
    pub second_host: String,
    /// The new holder's interface.
    pub second_index: u32,
    /// Wall-clock ns of the call that created the overlap.
    pub wall_ns: u64,
    /// Journal seq of that call on the new holder's host.
    pub seq: u64,
}

/// What [`check_mac_exclusive_hosts`] saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostMacReport {
    /// State-changing calls replayed (successful MAC-setting calls and
    /// loopback deletions).
    pub replayed: usize,
    /// How often an interface took a MAC that is `watched`.
    pub takes: usize,
}

/// Merges the journals of several simulators (one per host, each labelled)
/// in wall-clock order and fails at the first moment two interfaces on
/// different hosts held the same MAC. All simulators must run on one
/// machine (one wall clock). Within one host the journal order is kept.
/// `watched` MACs are counted in [`HostMacReport::takes`]; the check
/// itself covers every MAC (per-host MACs are unique by construction, so
/// only a shared identity can collide). A host's interfaces keep their MAC
/// until a journal entry changes it: a host whose control plane died keeps
/// forwarding with what it had, and counts as a holder.
pub fn check_mac_exclusive_hosts(
    hosts: &[(&str, &[JournalEntry])],
    watched: &[String],
) -> Result<HostMacReport, HostMacConflict> {
    let norm = |s: &str| s.to_ascii_lowercase();
    let watched: Vec<String> = watched.iter().map(|m| norm(m)).collect();
    let mut ev: Vec<(u64, usize, u64, u32, Option<String>)> = Vec::new();
    for (hi, (_, entries)) in hosts.iter().enumerate() {
        for e in entries.iter().filter(|e| e.retval == 0 && !e.injected) {
            match e.msg.as_str() {
                "create_loopback" | "create_loopback_instance" | "sw_interface_set_mac_address" => {
                    if let (Some(i), Some(m)) = (e.u32("sw_if_index"), e.str("mac")) {
                        ev.push((e.wall_ns, hi, e.seq, i, Some(norm(m))));
                    }
                }
                "delete_loopback" => {
                    if let Some(i) = e.u32("sw_if_index") {
                        ev.push((e.wall_ns, hi, e.seq, i, None));
                    }
                }
                _ => {}
            }
        }
    }
    ev.sort();
    let mut report = HostMacReport::default();
    let mut holders: HashMap<(usize, u32), String> = HashMap::new();
    for (wall_ns, hi, seq, idx, mac) in ev {
        report.replayed += 1;
        let Some(mac) = mac else {
            holders.remove(&(hi, idx));
            continue;
        };
        holders.insert((hi, idx), mac.clone());
        if mac == "00:00:00:00:00:00" {
            continue;
        }
        if watched.contains(&mac) {
            report.takes += 1;
        }
        if let Some(((oh, oi), _)) = holders.iter().find(|((h, _), m)| *h != hi && **m == mac) {
            return Err(HostMacConflict {
                mac,
                first_host: hosts[*oh].0.to_string(),
                first_index: *oi,
                second_host: hosts[hi].0.to_string(),
                second_index: idx,
                wall_ns,
                seq,
            });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn e(seq: u64, msg: &str, idx: u32, mac: &str) -> JournalEntry {
        let mut fields = serde_json::Map::new();
        fields.insert("sw_if_index".into(), json!(idx));
        fields.insert("mac".into(), json!(mac));
        JournalEntry {
            seq,
            mono_ns: seq,
            wall_ns: seq,
            client_index: 1,
            msg: msg.into(),
            fields,
            retval: 0,
            injected: false,
        }
    }

    #[test]
    fn detects_overlap_and_accepts_handover() {
        let a = "02:00:00:00:00:01";
        let ok = vec![
            e(1, "create_loopback_instance", 1, a),
            e(2, "sw_interface_set_mac_address", 1, "02:00:00:00:00:09"),
            e(3, "sw_interface_set_mac_address", 2, a),
        ];
        assert!(check_mac_exclusive(&ok, &[], None).is_ok());
        let bad = vec![
            e(1, "create_loopback_instance", 1, a),
            e(2, "sw_interface_set_mac_address", 2, a),
        ];
        let c = check_mac_exclusive(&bad, &[], Some(a));
        assert_eq!(c.map_err(|c| c.seq), Err(2));
        let deleted = vec![
            e(1, "create_loopback_instance", 1, a),
            e(2, "delete_loopback", 1, a),
            e(3, "create_loopback_instance", 2, a),
        ];
        assert!(check_mac_exclusive(&deleted, &[], None).is_ok());
    }

    fn at(wall: u64, msg: &str, idx: u32, mac: &str) -> JournalEntry {
        JournalEntry {
            wall_ns: wall,
            ..e(wall, msg, idx, mac)
        }
    }

    #[test]
    fn across_hosts_in_wall_clock_order() {
        let v = "02:00:00:00:00:01";
        let a = vec![
            at(10, "create_loopback_instance", 1, "02:00:00:00:00:0a"),
            at(20, "sw_interface_set_mac_address", 1, v),
            at(30, "sw_interface_set_mac_address", 1, "02:00:00:00:00:0a"),
        ];
        // b takes the vMAC after a released it: fine.
        let b = vec![
            at(11, "create_loopback_instance", 1, "02:00:00:00:00:0b"),
            at(31, "sw_interface_set_mac_address", 1, v),
        ];
        let r = check_mac_exclusive_hosts(&[("a", &a), ("b", &b)], &[v.into()]).unwrap();
        assert_eq!(r.takes, 2);
        // b takes it before a released it: two holders.
        let b = vec![
            at(11, "create_loopback_instance", 1, "02:00:00:00:00:0b"),
            at(29, "sw_interface_set_mac_address", 1, v),
        ];
        let c = check_mac_exclusive_hosts(&[("a", &a), ("b", &b)], &[]).unwrap_err();
        assert_eq!(
            (c.first_host.as_str(), c.second_host.as_str(), c.wall_ns),
            ("a", "b", 29)
        );
        // A deleted loopback holds nothing.
        let a2 = vec![
            at(10, "create_loopback_instance", 1, v),
            at(20, "delete_loopback", 1, v),
        ];
        let b2 = vec![at(21, "create_loopback_instance", 7, v)];
        assert!(check_mac_exclusive_hosts(&[("a", &a2), ("b", &b2)], &[]).is_ok());
        // Injected errors never change a MAC.
        let mut inj = at(15, "sw_interface_set_mac_address", 3, v);
        inj.injected = true;
        inj.retval = -1;
        assert!(check_mac_exclusive_hosts(&[("a", &a2), ("b", &[inj])], &[]).is_ok());
    }
}
