//! The evidence wait before a bind claims a vMAC, as domain types: how long
//! and how often to look ([`SettlePolicy`], validated here) and how the wait
//! ended ([`SettleOutcome`]). The wait loop runs in evpnd
//! (`evpn_daemon::settle::wait_for_evidence`); the wire form is converted at
//! the gRPC edges only (`evpn_daemon::settle`).
use std::time::Duration;

use crate::Error;

/// Longest accepted `max_wait` (a bind RPC must not hang for hours).
pub const MAX_WAIT_LIMIT: Duration = Duration::from_secs(600);

/// How long and how often to look for the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlePolicy {
    /// Fixed wait before the first look (0 on a real fabric: the withdrawal
    /// arrives in well under 1 ms, a fixed wait is dead time).
    pub min_settle: Duration,
    /// Upper bound on the whole wait, `min_settle` included.
    pub max_wait: Duration,
    /// Pause between two looks that still showed other VTEPs.
    pub poll_interval: Duration,
    /// Bind only on evidence: when the wait ends without it (still
    /// announced, or the announcers unreadable) the bind is refused instead
    /// of going ahead. Set by evpnr on an autonomous takeover, whose old
    /// primary could not be released.
    pub require_evidence: bool,
    /// Once a look sees no other VTEP, wait this long and look again; the
    /// wait ends with evidence only if that look still sees none (rule
    /// F16: the old primary was cut off from the fabric, so the other
    /// routers drop its routes by their own timers, up to a BFD interval
    /// after this host). Zero: none. Counts against `max_wait`.
    pub clear_hold: Duration,
    /// The fixed wait counted from this host's own first sight of the old
    /// primary's withdrawal of the vMAC (its fabric witness), instead of
    /// `min_settle` from the request's receipt, when this host saw one
    /// (an autonomous takeover's least settle: evpnr's start of the
    /// takeover is only a later proxy for that moment, and the request's
    /// transit would count twice). `None`: `min_settle` as sent.
    pub since_withdrawal: Option<Duration>,
}

impl SettlePolicy {
    /// The field (without prefix) and the reason if the policy is not
    /// usable.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.max_wait.is_zero() || self.max_wait > MAX_WAIT_LIMIT {
            return Err((
                "max_wait",
                format!("must be more than 0 and at most {MAX_WAIT_LIMIT:?}"),
            ));
        }
        if self.poll_interval.is_zero() || self.poll_interval > self.max_wait {
            return Err((
                "poll_interval",
                "must be more than 0 and at most max_wait".into(),
            ));
        }
        if self.min_settle > self.max_wait {
            return Err(("min_settle", "must be at most max_wait".into()));
        }
        if self.clear_hold > self.max_wait {
            return Err(("clear_hold", "must be at most max_wait".into()));
        }
        if self.since_withdrawal.is_some_and(|d| d > self.max_wait) {
            return Err(("since_withdrawal", "must be at most max_wait".into()));
        }
        Ok(())
    }

    /// The fixed wait before the first look, for a host that saw the
    /// vMAC's withdrawal `seen_ago` ago (`None`: it did not): what is left
    /// of `since_withdrawal` after that sight, or `min_settle`.
    pub fn least_wait(&self, seen_ago: Option<Duration>) -> Duration {
        match (self.since_withdrawal, seen_ago) {
            (Some(d), Some(ago)) => d.saturating_sub(ago),
            _ => self.min_settle,
        }
    }

    /// [`SettlePolicy::check`] as an INVALID_ARGUMENT naming `prefix.field`.
    pub fn validate(&self, prefix: &str) -> Result<(), Error> {
        self.check()
            .map_err(|(field, reason)| Error::invalid(format!("{prefix}.{field}"), reason))
    }
}

/// How the wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// No other VTEP announces the vMAC.
    Evidence,
    /// Still announced when `max_wait` ran out, by these VTEPs; the bind goes
    /// ahead.
    TimedOut { vteps: Vec<String> },
    /// The announcers could not be read (the reason); only `min_settle` was
    /// waited.
    NoEvidence(String),
}

/// The outcome of a wait and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettleOutcome {
    pub settled: Settled,
    /// Number of looks.
    pub polls: u32,
    /// The whole wait, `min_settle` included.
    pub waited: Duration,
}

impl SettleOutcome {
    /// Why a bind that required evidence ([`SettlePolicy::require_evidence`])
    /// must not go ahead after this wait (FAILED_PRECONDITION), if it must not.
    pub fn refusal(&self, policy: &SettlePolicy) -> Option<Error> {
        if !policy.require_evidence {
            return None;
        }
        let why = match &self.settled {
            Settled::Evidence => return None,
            Settled::TimedOut { vteps } => format!(
                "the vMAC is still announced by {} after {} ms",
                vteps.join(", "),
                self.waited.as_millis()
            ),
            Settled::NoEvidence(e) => format!("the announcers could not be read: {e}"),
        };
        Some(Error::FailedPrecondition(format!(
            "not bound: evidence required and {why}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_limits() {
        let p = SettlePolicy {
            min_settle: Duration::from_millis(5),
            max_wait: Duration::from_secs(2),
            poll_interval: Duration::from_micros(500),
            require_evidence: false,
            clear_hold: Duration::ZERO,
            since_withdrawal: None,
        };
        assert!(p.validate("settle").is_ok());
        let bad = |q: SettlePolicy| q.validate("settle").unwrap_err().to_string();
        for (q, field) in [
            (
                SettlePolicy {
                    max_wait: Duration::ZERO,
                    ..p
                },
                "settle.max_wait",
            ),
            (
                SettlePolicy {
                    max_wait: MAX_WAIT_LIMIT + Duration::from_secs(1),
                    ..p
                },
                "settle.max_wait",
            ),
            (
                SettlePolicy {
                    poll_interval: Duration::ZERO,
                    ..p
                },
                "settle.poll_interval",
            ),
            (
                SettlePolicy {
                    min_settle: Duration::from_secs(3),
                    ..p
                },
                "settle.min_settle",
            ),
            (
                SettlePolicy {
                    clear_hold: Duration::from_secs(3),
                    ..p
                },
                "settle.clear_hold",
            ),
            (
                SettlePolicy {
                    since_withdrawal: Some(Duration::from_secs(3)),
                    ..p
                },
                "settle.since_withdrawal",
            ),
        ] {
            assert!(bad(q).contains(field), "{}", bad(q));
        }
    }

    /// (since_withdrawal ms, seen ms ago, min_settle ms) → the fixed wait.
    #[test]
    fn the_least_wait_counts_from_this_hosts_sight_of_the_withdrawal() {
        let ms = Duration::from_millis;
        let rows: &[(Option<u64>, Option<u64>, u64, u64)] = &[
            // not asked for: min_settle, whatever was seen
            (None, None, 4, 4),
            (None, Some(10), 4, 4),
            // asked for, nothing seen: min_settle (evpnr's proxy)
            (Some(15), None, 4, 4),
            // seen 3 ms ago: 12 ms left, though evpnr's proxy left 4
            (Some(15), Some(3), 4, 12),
            // seen 14 ms ago: 1 ms left, less than the proxy's 4
            (Some(15), Some(14), 4, 1),
            // seen long ago: no wait
            (Some(15), Some(500), 4, 0),
        ];
        for (since, ago, min, want) in rows {
            let p = SettlePolicy {
                min_settle: ms(*min),
                max_wait: Duration::from_secs(2),
                poll_interval: ms(1),
                require_evidence: true,
                clear_hold: Duration::ZERO,
                since_withdrawal: since.map(ms),
            };
            assert_eq!(
                p.least_wait(ago.map(ms)),
                ms(*want),
                "{since:?} {ago:?} {min}"
            );
        }
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::*;

    #[test]
    fn only_a_bind_that_requires_evidence_is_refused_without_it() {
        let p = SettlePolicy {
            min_settle: Duration::ZERO,
            max_wait: Duration::from_millis(50),
            poll_interval: Duration::from_millis(1),
            require_evidence: true,
            clear_hold: Duration::ZERO,
            since_withdrawal: None,
        };
        let out = |settled| SettleOutcome {
            settled,
            polls: 3,
            waited: Duration::from_millis(50),
        };
        let timed_out = out(Settled::TimedOut {
            vteps: vec!["192.0.2.1".into()],
        });
        let unreadable = out(Settled::NoEvidence("bird: connection refused".into()));
        assert_eq!(out(Settled::Evidence).refusal(&p), None);
        let e = timed_out.refusal(&p).expect("refused").to_string();
        assert!(e.contains("192.0.2.1") && e.contains("50 ms"), "{e}");
        let e = unreadable.refusal(&p).expect("refused").to_string();
        assert!(e.contains("connection refused"), "{e}");
        let lax = SettlePolicy {
            require_evidence: false,
            ..p
        };
        assert_eq!(timed_out.refusal(&lax), None);
        assert_eq!(unreadable.refusal(&lax), None);
    }
}
