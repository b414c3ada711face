//! Per-call service times: when VPP started on each message and when its
//! answer was out, so a benchmark can measure the VPP time a move spent
//! instead of assuming `calls × latency`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One message VPP served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// Message name with CRC, e.g. `control_ping_51077d14`.
    pub msg: String,
    /// When VPP started on it: its arrival, or the end of the message before
    /// it on the same connection (queueing is not service).
    pub start: Instant,
    /// When its answer (reply, details) was queued to the client.
    pub done: Instant,
}

impl Served {
    /// `done - start`.
    pub fn service(&self) -> Duration {
        self.done.saturating_duration_since(self.start)
    }
}

/// The most recent [`ServiceLog::CAP`] served messages.
#[derive(Debug, Default)]
pub(crate) struct ServiceLog {
    entries: VecDeque<Served>,
}

impl ServiceLog {
    /// Bound on the kept entries (a long-running simulator must not grow).
    pub const CAP: usize = 65_536;

    pub fn record(&mut self, s: Served) {
        if self.entries.len() == Self::CAP {
            self.entries.pop_front();
        }
        self.entries.push_back(s);
    }

    pub fn entries(&self) -> Vec<Served> {
        self.entries.iter().cloned().collect()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// The summed service time of the messages served entirely inside
/// `[from, to]` (a move's window at the client), and their count.
pub fn served_within(log: &[Served], from: Instant, to: Instant) -> (usize, Duration) {
    log.iter()
        .filter(|s| s.start >= from && s.done <= to)
        .fold((0, Duration::ZERO), |(n, d), s| (n + 1, d + s.service()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_newest_entries_up_to_its_cap() {
        let t = Instant::now();
        let mut l = ServiceLog::default();
        for i in 0..ServiceLog::CAP + 3 {
            l.record(Served {
                msg: format!("m{i}"),
                start: t,
                done: t,
            });
        }
        let e = l.entries();
        assert_eq!(e.len(), ServiceLog::CAP);
        assert_eq!(e[0].msg, "m3");
        l.clear();
        assert!(l.entries().is_empty());
    }

    #[test]
    fn only_calls_inside_the_window_count() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let s = |a: u64, b: u64| Served {
            msg: "m".into(),
            start: t + ms(a),
            done: t + ms(b),
        };
        // (log, window, expected count, expected sum ms)
        let cases = [
            (vec![s(1, 2), s(2, 4)], (0, 10), 2, 3),
            (vec![s(0, 2), s(9, 11)], (1, 10), 0, 0),
            (vec![s(1, 2), s(5, 8), s(9, 12)], (1, 8), 2, 4),
            (vec![], (0, 10), 0, 0),
        ];
        for (log, (a, b), n, sum) in cases {
            assert_eq!(
                served_within(&log, t + ms(a), t + ms(b)),
                (n, ms(sum)),
                "window {a}..{b}"
            );
        }
    }
}
