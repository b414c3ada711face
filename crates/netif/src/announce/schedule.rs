//! A pure, paced announcement schedule: when to send the N gratuitous ARPs / NAs of one bind.

use std::time::{Duration, Instant};

/// How many announcements to send and how far apart.
///
/// Send times (offsets from the bind) are `0`, `i1`, `i1+i2`, … where `i1 = interval` and each
/// following gap is the previous one multiplied by `backoff`, capped at `max_interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Number of announcements (0 sends nothing).
    pub count: u32,
    /// Gap between the first and the second announcement.
    pub interval: Duration,
    /// Gap multiplier (1 = constant pacing, 2 = doubling).
    pub backoff: u32,
    /// Largest gap.
    pub max_interval: Duration,
}

impl Default for Schedule {
    /// 3 announcements, 0 / 100 ms / 300 ms (doubling gaps, capped at 1 s).
    fn default() -> Self {
        Schedule {
            count: 3,
            interval: Duration::from_millis(100),
            backoff: 2,
            max_interval: Duration::from_secs(1),
        }
    }
}

impl Schedule {
    /// A schedule with constant gaps.
    pub fn constant(count: u32, interval: Duration) -> Schedule {
        Schedule {
            count,
            interval,
            backoff: 1,
            max_interval: interval,
        }
    }

    /// The send offsets from the start, ascending; `count` entries.
    pub fn offsets(&self) -> Vec<Duration> {
        let mut out = Vec::with_capacity(self.count as usize);
        let mut t = Duration::ZERO;
        let mut gap = self.interval.min(self.max_interval);
        for i in 0..self.count {
            if i > 0 {
                t += gap;
                gap = gap
                    .saturating_mul(self.backoff.max(1))
                    .min(self.max_interval);
            }
            out.push(t);
        }
        out
    }

    /// The send instants for a bind that happened at `start`.
    pub fn times_from(&self, start: Instant) -> Vec<Instant> {
        self.offsets().into_iter().map(|d| start + d).collect()
    }

    /// The sends that are due at `now` for a bind at `start`, given that `sent` have already
    /// gone out: returns how many to send now (0 or more, catching up after a stall).
    pub fn due(&self, start: Instant, now: Instant, sent: u32) -> u32 {
        let elapsed = now.saturating_duration_since(start);
        let due = self.offsets().iter().filter(|o| **o <= elapsed).count() as u32;
        due.saturating_sub(sent)
    }

    /// When the next send after `sent` is due, or `None` when the schedule is done.
    pub fn next_at(&self, start: Instant, sent: u32) -> Option<Instant> {
        self.offsets().get(sent as usize).map(|d| start + *d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn default_doubles() {
        assert_eq!(Schedule::default().offsets(), vec![ms(0), ms(100), ms(300)]);
    }

    #[test]
    fn constant_and_zero() {
        assert_eq!(
            Schedule::constant(4, ms(50)).offsets(),
            vec![ms(0), ms(50), ms(100), ms(150)]
        );
        assert!(Schedule::constant(0, ms(50)).offsets().is_empty());
        assert_eq!(Schedule::constant(1, ms(50)).offsets(), vec![ms(0)]);
    }

    #[test]
    fn capped() {
        let s = Schedule {
            count: 6,
            interval: ms(100),
            backoff: 3,
            max_interval: ms(500),
        };
        assert_eq!(
            s.offsets(),
            vec![ms(0), ms(100), ms(400), ms(900), ms(1400), ms(1900)]
        );
        // backoff 0 behaves like 1
        let s0 = Schedule { backoff: 0, ..s };
        assert_eq!(s0.offsets()[2], ms(200));
    }

    #[test]
    fn due_and_next() {
        let s = Schedule::default();
        let t0 = Instant::now();
        assert_eq!(s.due(t0, t0, 0), 1);
        assert_eq!(s.due(t0, t0 + ms(99), 1), 0);
        assert_eq!(s.due(t0, t0 + ms(350), 1), 2);
        assert_eq!(s.next_at(t0, 1), Some(t0 + ms(100)));
        assert_eq!(s.next_at(t0, 3), None);
        assert_eq!(s.times_from(t0).len(), 3);
    }
}
