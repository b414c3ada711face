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
        Ok(())
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
        ] {
            assert!(bad(q).contains(field), "{}", bad(q));
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
