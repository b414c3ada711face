//! VPP's message table (`name_crc` → message id), learnt from the handshake.

use std::collections::HashMap;

use crate::error::{NameCrc, VppError};
use crate::msgs::Message;

/// The `name_crc` ↔ id map of one VPP connection. Ids differ between VPP
/// builds and plugin sets, so a new table is learnt on every (re)connect.
#[derive(Debug, Clone, Default)]
pub struct MsgTable {
    by_name: HashMap<String, u16>,
    by_id: HashMap<u16, String>,
}

impl MsgTable {
    /// Builds a table from `(id, name_crc)` entries.
    pub fn new<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = (u16, S)>,
        S: Into<String>,
    {
        let mut t = MsgTable::default();
        for (id, name) in entries {
            let name = name.into();
            t.by_id.insert(id, name.clone());
            t.by_name.insert(name, id);
        }
        t
    }

    /// Parses the `name_crc id` text format of `message-table.txt`.
    pub fn parse_text(text: &str) -> Self {
        MsgTable::new(text.lines().filter_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next()?;
            let id = it.next()?.parse::<u16>().ok()?;
            Some((id, name.to_owned()))
        }))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Id for a `name_crc`, if present.
    pub fn get(&self, name_crc: &str) -> Option<u16> {
        self.by_name.get(name_crc).copied()
    }

    /// `name_crc` for an id, if present.
    pub fn name(&self, id: u16) -> Option<&str> {
        self.by_id.get(&id).map(String::as_str)
    }

    /// Id for a `name_crc`, or the error naming the message and the CRC we
    /// expected (and, if VPP has the same message with another CRC, that one).
    pub fn require(&self, name_crc: &str) -> Result<u16, VppError> {
        self.get(name_crc).ok_or_else(|| {
            let wanted = NameCrc(name_crc.to_owned());
            let prefix = format!("{}_", wanted.name());
            let found = self
                .by_name
                .keys()
                .find(|k| {
                    k.strip_prefix(&prefix)
                        .is_some_and(|crc| crc.len() == 8 && !crc.contains('_'))
                })
                .cloned();
            VppError::MissingMessage {
                name_crc: wanted,
                found,
            }
        })
    }

    /// Id of message type `M`.
    pub fn id_of<M: Message>(&self) -> Result<u16, VppError> {
        self.require(M::NAME_CRC)
    }

    /// Iterates `(id, name_crc)` in id order.
    pub fn entries(&self) -> Vec<(u16, &str)> {
        let mut v: Vec<(u16, &str)> = self.by_id.iter().map(|(i, n)| (*i, n.as_str())).collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_reports_other_crc() {
        let t = MsgTable::new([(1u16, "show_version_deadbeef")]);
        let e = t.require("show_version_51077d14");
        let s = e.map(|_| String::new()).unwrap_or_else(|e| e.to_string());
        assert!(s.contains("show_version"), "{s}");
        assert!(s.contains("51077d14"), "{s}");
        assert!(s.contains("deadbeef"), "{s}");
    }
}
