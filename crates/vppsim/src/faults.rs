//! Fault injection rules, shared by the in-process handle, the command line
//! and the control socket.
//!
//! A message pattern is `*` (every message), a message name (`control_ping`)
//! or a full `name_crc` (`control_ping_51077d14`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Does `pattern` match message `name_crc`?
pub fn matches(pattern: &str, name_crc: &str) -> bool {
    if pattern == "*" || pattern == name_crc {
        return true;
    }
    name_crc
        .rsplit_once('_')
        .is_some_and(|(name, _)| name == pattern)
}

/// "Answer the N-th matching call with this retval" (one shot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorOnNth {
    /// Message pattern.
    pub msg: String,
    /// 1-based call number (counted from when the rule was set).
    pub n: u64,
    /// Retval to send (the state is not changed).
    pub retval: i32,
    /// Matching calls seen so far.
    #[serde(default)]
    pub seen: u64,
}

/// The active faults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    /// Delay before handling a matching message (pattern → delay). `*` is
    /// per API call: it does not delay the `control_ping` that closes a
    /// dump (the dump and its ping are one call, see
    /// [`Faults::latency_for`]); a rule naming `control_ping` does.
    pub latency: BTreeMap<String, Duration>,
    /// Matching requests are swallowed: never processed, never answered.
    pub hang: Vec<String>,
    /// Close the connection when a matching message arrives (one shot each).
    pub disconnect_on: Vec<String>,
    /// Injected errors.
    pub error_on_nth: Vec<ErrorOnNth>,
}

/// What to do with one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Handle it normally.
    Handle,
    /// Drop it without a reply.
    Hang,
    /// Close the connection.
    Disconnect,
    /// Reply with this retval without touching the state.
    Error(i32),
}

impl Faults {
    /// Total latency for a message (the largest matching rule);
    /// `closes_dump`: the message is the `control_ping` sent right after a
    /// dump to mark its end. VPP answers that ping with no work of its own,
    /// so `*` ("every call takes this long") does not charge it a second
    /// time; only a rule naming it does.
    pub fn latency_for(&self, name_crc: &str, closes_dump: bool) -> Option<Duration> {
        self.latency
            .iter()
            .filter(|(p, _)| matches(p, name_crc) && !(closes_dump && p.as_str() == "*"))
            .map(|(_, d)| *d)
            .max()
    }

    /// Decides, and advances the counters of, the rules for one message.
    pub fn verdict(&mut self, name_crc: &str) -> Verdict {
        if let Some(k) = self.disconnect_on.iter().position(|p| matches(p, name_crc)) {
            self.disconnect_on.remove(k);
            return Verdict::Disconnect;
        }
        if self.hang.iter().any(|p| matches(p, name_crc)) {
            return Verdict::Hang;
        }
        let mut out = Verdict::Handle;
        let mut fired = None;
        for (k, r) in self.error_on_nth.iter_mut().enumerate() {
            if matches(&r.msg, name_crc) {
                r.seen += 1;
                if r.seen == r.n && out == Verdict::Handle {
                    out = Verdict::Error(r.retval);
                    fired = Some(k);
                }
            }
        }
        if let Some(k) = fired {
            self.error_on_nth.remove(k);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("*", "control_ping_51077d14"));
        assert!(matches("control_ping", "control_ping_51077d14"));
        assert!(matches("control_ping_51077d14", "control_ping_51077d14"));
        assert!(!matches("control", "control_ping_51077d14"));
    }

    #[test]
    fn a_wildcard_latency_is_per_call_and_spares_the_ping_closing_a_dump() {
        let ms = Duration::from_millis;
        let f = |rules: &[(&str, u64)]| Faults {
            latency: rules.iter().map(|(p, d)| (p.to_string(), ms(*d))).collect(),
            ..Faults::default()
        };
        const PING: &str = "control_ping_51077d14";
        const DUMP: &str = "sw_interface_dump_aa610c27";
        /// (rules, message, closes a dump, latency)
        type Case<'a> = (&'a [(&'a str, u64)], &'a str, bool, Option<u64>);
        let cases: [Case; 7] = [
            (&[("*", 1)], DUMP, false, Some(1)),
            (&[("*", 1)], PING, false, Some(1)),
            (&[("*", 1)], PING, true, None),
            (&[("control_ping", 5)], PING, true, Some(5)),
            (&[("*", 1), ("control_ping", 5)], PING, true, Some(5)),
            (&[("*", 9), ("control_ping", 5)], PING, true, Some(5)),
            (&[("*", 9), ("control_ping", 5)], PING, false, Some(9)),
        ];
        for (rules, msg, closes, want) in cases {
            assert_eq!(
                f(rules).latency_for(msg, closes),
                want.map(ms),
                "{rules:?} {msg} {closes}"
            );
        }
    }

    #[test]
    fn nth_fires_once() {
        let mut f = Faults {
            error_on_nth: vec![ErrorOnNth {
                msg: "x".into(),
                n: 2,
                retval: -1,
                seen: 0,
            }],
            ..Faults::default()
        };
        assert_eq!(f.verdict("x_00000000"), Verdict::Handle);
        assert_eq!(f.verdict("x_00000000"), Verdict::Error(-1));
        assert_eq!(f.verdict("x_00000000"), Verdict::Handle);
    }
}
