//! The self-fencing rule (sans-IO): a host that holds a group vMAC and
//! whose BIRD control socket stopped answering, or whose BGP sessions are
//! all down, releases every gateway it holds once that condition has lasted
//! `hold` (counted from the moment the check went down, i.e. after `fall`
//! failed probes). Such a host cannot be announcing the vMAC and cannot be
//! reached by the fabric, so the registry may make another member primary;
//! a restarted BIRD must not re-advertise the vMAC next to it.
//!
//! A release that failed counts as not released: the rule asks again at the
//! next tick until every binding is gone.
use std::time::{Duration, Instant};

/// What the runner must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Release every bound gateway of this host; `reason` names the check.
    Release { reason: String },
}

/// The rule's memory.
#[derive(Debug, Clone, Default)]
pub struct Fence {
    /// Since when the fatal condition holds, and its reason.
    since: Option<(Instant, String)>,
    /// The fence is in force (set at the first release; cleared when the
    /// condition clears).
    fenced: Option<String>,
}

impl Fence {
    /// The reason while fenced.
    pub fn fenced(&self) -> Option<&str> {
        self.fenced.as_deref()
    }

    /// One tick. `fatal`: the board's fatal reason ([`super::Board::fatal`]);
    /// `bound`: how many gateways this host holds now; `enabled`: the
    /// `health.self-fence.enabled` setting.
    pub fn tick(
        &mut self,
        now: Instant,
        fatal: Option<String>,
        bound: usize,
        hold: Duration,
        enabled: bool,
    ) -> Action {
        let Some(reason) = fatal else {
            self.since = None;
            self.fenced = None;
            return Action::None;
        };
        let since = match &self.since {
            Some((t, _)) => *t,
            None => {
                self.since = Some((now, reason.clone()));
                now
            }
        };
        if !enabled || now.duration_since(since) < hold {
            return Action::None;
        }
        if self.fenced.is_none() && bound > 0 {
            self.fenced = Some(reason.clone());
        }
        if bound == 0 {
            return Action::None;
        }
        Action::Release { reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (ms since start, fatal reason, bound gateways) -> expected action
    #[test]
    fn self_fencing_table() {
        let hold = Duration::from_millis(1000);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let rel = |r: &str| Action::Release {
            reason: r.to_string(),
        };
        type Row = (
            u64,
            Option<&'static str>,
            usize,
            Action,
            Option<&'static str>,
        );
        let rows: Vec<Row> = vec![
            // healthy: nothing
            (0, None, 1, Action::None, None),
            // BIRD down: the hold starts
            (100, Some("bird: refused"), 1, Action::None, None),
            (1099, Some("bird: refused"), 1, Action::None, None),
            // the hold is over: release
            (
                1100,
                Some("bird: refused"),
                1,
                rel("bird: refused"),
                Some("bird: refused"),
            ),
            // the release failed (still bound): asked again
            (
                1200,
                Some("bird: refused"),
                1,
                rel("bird: refused"),
                Some("bird: refused"),
            ),
            // released: nothing more to do, still fenced
            (
                1300,
                Some("bird: refused"),
                0,
                Action::None,
                Some("bird: refused"),
            ),
            // recovered: the fence is lifted
            (1400, None, 0, Action::None, None),
            // a flap shorter than the hold never fences
            (1500, Some("bgp: 0 of 2"), 1, Action::None, None),
            (2000, None, 1, Action::None, None),
            (2100, Some("bgp: 0 of 2"), 1, Action::None, None),
            (3000, Some("bgp: 0 of 2"), 1, Action::None, None),
            (
                3100,
                Some("bgp: 0 of 2"),
                1,
                rel("bgp: 0 of 2"),
                Some("bgp: 0 of 2"),
            ),
        ];
        let mut f = Fence::default();
        for (i, (ms, fatal, bound, want, fenced)) in rows.into_iter().enumerate() {
            let got = f.tick(at(ms), fatal.map(str::to_string), bound, hold, true);
            assert_eq!(got, want, "row {i} at {ms} ms");
            assert_eq!(f.fenced(), fenced, "row {i} at {ms} ms");
        }
    }

    #[test]
    fn a_candidate_is_never_fenced_and_disabled_fencing_never_releases() {
        let t0 = Instant::now();
        let hold = Duration::ZERO;
        let mut f = Fence::default();
        assert_eq!(
            f.tick(t0, Some("bird: x".into()), 0, hold, true),
            Action::None
        );
        assert_eq!(f.fenced(), None, "holds nothing: not fenced");
        let mut f = Fence::default();
        assert_eq!(
            f.tick(t0, Some("bird: x".into()), 2, hold, false),
            Action::None
        );
        assert_eq!(f.fenced(), None);
    }
}
