//! The evidence wait of a GroupBVI move: after the release on every old
//! holder, wait until the new primary's BIRD shows no other VTEP announcing
//! the vMAC (the fabric has absorbed the withdrawal), bounded in time. The
//! policy and outcome are domain types (`evpn_model::settle`); their wire
//! form is converted here, and only here, at the gRPC edges of evpnr and
//! evpnd.
//!
//! The loop is independent of where the answers come from: evpnd runs it
//! against its own BIRD before a bind that asks for it, and tests run it
//! against scripted answers.
use std::{future::Future, time::Duration};

use evpn_api::v1;
use evpn_model::Error;
use tokio::time::Instant;

pub use evpn_model::settle::{MAX_WAIT_LIMIT, SettleOutcome, SettlePolicy, Settled};

/// Wait for the evidence. `look` answers the VTEPs (other than this host)
/// that announce the vMAC now, or why it cannot tell. A look that does not
/// answer within what is left of `max_wait` ends the wait: as timed out if
/// an earlier look still saw other VTEPs, else as no evidence.
pub async fn wait_for_evidence<F, Fut>(policy: SettlePolicy, mut look: F) -> SettleOutcome
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Vec<String>, String>>,
{
    let start = Instant::now();
    let deadline = start + policy.max_wait;
    if !policy.min_settle.is_zero() {
        tokio::time::sleep(policy.min_settle).await;
    }
    let mut polls = 0;
    let mut last: Option<Vec<String>> = None;
    // The previous look was clear and `clear_hold` has been waited since.
    let mut held = false;
    let settled = loop {
        polls += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = match tokio::time::timeout(left, look()).await {
            Ok(a) => a,
            Err(_) => match last {
                Some(vteps) => break Settled::TimedOut { vteps },
                None => Err("no answer within max-wait".to_string()),
            },
        };
        match answer {
            // F16: a clear look is taken as evidence only when another
            // look `clear_hold` later is clear too.
            Ok(v) if v.is_empty() && (policy.clear_hold.is_zero() || held) => {
                break Settled::Evidence;
            }
            Ok(v) if v.is_empty() => {
                held = true;
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(policy.clear_hold.min(left)).await;
            }
            Ok(v) => {
                held = false;
                if Instant::now() + policy.poll_interval > deadline {
                    break Settled::TimedOut { vteps: v };
                }
                last = Some(v);
                tokio::time::sleep(policy.poll_interval).await;
            }
            Err(e) => break Settled::NoEvidence(e),
        }
    };
    SettleOutcome {
        settled,
        polls,
        waited: start.elapsed(),
    }
}

pub fn duration_in(field: &str, d: Option<&pbjson_types::Duration>) -> Result<Duration, Error> {
    let Some(d) = d else {
        return Ok(Duration::ZERO);
    };
    let bad = |reason: &str| Error::InvalidArgument {
        field: field.to_string(),
        reason: reason.to_string(),
    };
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err(bad("must be a non-negative duration"));
    }
    let secs = u64::try_from(d.seconds).map_err(|_| bad("out of range"))?;
    let nanos = u32::try_from(d.nanos).map_err(|_| bad("out of range"))?;
    Ok(Duration::new(secs, nanos))
}

pub fn duration_out(d: Duration) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// A policy from the wire (validated: INVALID_ARGUMENT naming
/// `settle.<field>`).
pub fn policy_from_proto(w: &v1::SettleWait) -> Result<SettlePolicy, Error> {
    let p = SettlePolicy {
        min_settle: duration_in("settle.min_settle", w.min_settle.as_ref())?,
        max_wait: duration_in("settle.max_wait", w.max_wait.as_ref())?,
        poll_interval: duration_in("settle.poll_interval", w.poll_interval.as_ref())?,
        require_evidence: w.require_evidence,
        clear_hold: duration_in("settle.clear_hold", w.clear_hold.as_ref())?,
        since_withdrawal: w
            .since_withdrawal
            .as_ref()
            .map(|d| duration_in("settle.since_withdrawal", Some(d)))
            .transpose()?,
    };
    p.validate("settle")?;
    Ok(p)
}

/// A policy to the wire.
pub fn policy_to_proto(p: &SettlePolicy) -> v1::SettleWait {
    v1::SettleWait {
        min_settle: Some(duration_out(p.min_settle)),
        max_wait: Some(duration_out(p.max_wait)),
        poll_interval: Some(duration_out(p.poll_interval)),
        require_evidence: p.require_evidence,
        clear_hold: (!p.clear_hold.is_zero()).then(|| duration_out(p.clear_hold)),
        since_withdrawal: p.since_withdrawal.map(duration_out),
    }
}

/// An outcome to the wire.
pub fn outcome_to_proto(o: &SettleOutcome) -> v1::SettleOutcome {
    use v1::settle_outcome::Result as R;
    let (result, vteps, error) = match &o.settled {
        Settled::Evidence => (R::Evidence, vec![], String::new()),
        Settled::TimedOut { vteps } => (R::TimedOut, vteps.clone(), String::new()),
        Settled::NoEvidence(e) => (R::NoEvidence, vec![], e.clone()),
    };
    v1::SettleOutcome {
        result: result.into(),
        polls: o.polls,
        waited: Some(duration_out(o.waited)),
        vteps,
        error,
    }
}

/// An outcome from the wire (None: unspecified, an older evpnd).
pub fn outcome_from_proto(o: &v1::SettleOutcome) -> Option<SettleOutcome> {
    use v1::settle_outcome::Result as R;
    let settled = match R::try_from(o.result).ok()? {
        R::Unspecified => return None,
        R::Evidence => Settled::Evidence,
        R::TimedOut => Settled::TimedOut {
            vteps: o.vteps.clone(),
        },
        R::NoEvidence => Settled::NoEvidence(o.error.clone()),
    };
    Some(SettleOutcome {
        settled,
        polls: o.polls,
        waited: duration_in("waited", o.waited.as_ref()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use std::{
        collections::VecDeque,
        sync::{Arc, Mutex},
    };

    use super::*;

    fn policy(max_wait_ms: u64) -> SettlePolicy {
        SettlePolicy {
            min_settle: Duration::ZERO,
            max_wait: Duration::from_millis(max_wait_ms),
            poll_interval: Duration::from_millis(10),
            require_evidence: false,
            clear_hold: Duration::ZERO,
            since_withdrawal: None,
        }
    }

    /// A look that answers from a script; when the script is exhausted the
    /// vMAC is still announced by 192.0.2.9.
    type Look = Result<Vec<String>, String>;

    fn scripted(answers: Vec<Look>) -> (Arc<Mutex<u32>>, impl FnMut() -> std::future::Ready<Look>) {
        let q = Arc::new(Mutex::new(VecDeque::from(answers)));
        let n = Arc::new(Mutex::new(0));
        let count = n.clone();
        let look = move || {
            *count.lock().unwrap() += 1;
            let a = q
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| Ok(vec!["192.0.2.9".to_string()]));
            std::future::ready(a)
        };
        (n, look)
    }

    fn announced() -> Result<Vec<String>, String> {
        Ok(vec!["192.0.2.1".to_string()])
    }

    #[tokio::test(start_paused = true)]
    async fn waits_until_no_other_vtep_announces() {
        let (n, look) = scripted(vec![announced(), announced(), announced(), Ok(vec![])]);
        let out = wait_for_evidence(policy(2000), look).await;
        assert_eq!(out.settled, Settled::Evidence);
        assert_eq!(out.polls, 4);
        assert_eq!(*n.lock().unwrap(), 4);
        // Three pauses of poll-interval between the four looks.
        assert_eq!(out.waited, Duration::from_millis(30));
    }

    #[tokio::test(start_paused = true)]
    async fn clean_fabric_is_one_look_and_no_wait() {
        let (_, look) = scripted(vec![Ok(vec![])]);
        let out = wait_for_evidence(policy(2000), look).await;
        assert_eq!((out.settled, out.polls), (Settled::Evidence, 1));
        assert_eq!(out.waited, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_max_wait_and_names_the_vteps() {
        let (n, look) = scripted(vec![]);
        let out = wait_for_evidence(policy(300), look).await;
        assert_eq!(
            out.settled,
            Settled::TimedOut {
                vteps: vec!["192.0.2.9".into()]
            }
        );
        assert!(out.waited <= Duration::from_millis(300), "{:?}", out.waited);
        assert!(*n.lock().unwrap() >= 29);
    }

    #[tokio::test(start_paused = true)]
    async fn min_settle_is_waited_first() {
        let (_, look) = scripted(vec![Ok(vec![])]);
        let p = SettlePolicy {
            min_settle: Duration::from_millis(200),
            ..policy(1000)
        };
        let out = wait_for_evidence(p, look).await;
        assert_eq!((out.settled, out.polls), (Settled::Evidence, 1));
        assert_eq!(out.waited, Duration::from_millis(200));
    }

    /// F16: a clear look counts only when a look `clear_hold` later is
    /// clear too; an announcer that comes back in between starts it over.
    #[tokio::test(start_paused = true)]
    async fn clear_hold_takes_a_second_clear_look_after_the_hold() {
        let held = |ms| SettlePolicy {
            clear_hold: Duration::from_millis(ms),
            since_withdrawal: None,
            ..policy(2000)
        };
        let (_, look) = scripted(vec![announced(), Ok(vec![]), Ok(vec![])]);
        let out = wait_for_evidence(held(30), look).await;
        assert_eq!((out.settled, out.polls), (Settled::Evidence, 3));
        // One poll interval, then the hold.
        assert_eq!(out.waited, Duration::from_millis(40));
        // Clear, then announced again after the hold (another router's
        // view was behind): polling goes on, and a new hold follows.
        let (_, look) = scripted(vec![Ok(vec![]), announced(), Ok(vec![]), Ok(vec![])]);
        let out = wait_for_evidence(held(30), look).await;
        assert_eq!((out.settled, out.polls), (Settled::Evidence, 4));
        assert_eq!(out.waited, Duration::from_millis(70));
        // Without a hold the first clear look is the evidence.
        let (_, look) = scripted(vec![announced(), Ok(vec![])]);
        let out = wait_for_evidence(held(0), look).await;
        assert_eq!((out.settled, out.polls), (Settled::Evidence, 2));
    }

    #[test]
    fn proto_round_trip_and_validation() {
        let p = SettlePolicy {
            min_settle: Duration::from_millis(5),
            max_wait: Duration::from_secs(2),
            poll_interval: Duration::from_micros(500),
            require_evidence: true,
            clear_hold: Duration::from_millis(7),
            since_withdrawal: None,
        };
        assert_eq!(policy_from_proto(&policy_to_proto(&p)).unwrap(), p);
        let bad = |f: &dyn Fn(&mut v1::SettleWait)| {
            let mut w = policy_to_proto(&p);
            f(&mut w);
            policy_from_proto(&w).unwrap_err().to_string()
        };
        assert!(bad(&|w| w.max_wait = None).contains("settle.max_wait"));
        assert!(bad(&|w| w.poll_interval = None).contains("settle.poll_interval"));
        assert!(
            bad(&|w| w.clear_hold = Some(duration_out(Duration::from_secs(3))))
                .contains("settle.clear_hold")
        );
        assert!(
            bad(&|w| w.min_settle = Some(duration_out(Duration::from_secs(3))))
                .contains("settle.min_settle")
        );
        assert!(
            bad(&|w| w.max_wait = Some(duration_out(Duration::from_secs(3600))))
                .contains("at most")
        );
        assert!(
            bad(&|w| w.max_wait = Some(pbjson_types::Duration {
                seconds: -1,
                nanos: 0
            }))
            .contains("non-negative")
        );
        for o in [
            SettleOutcome {
                settled: Settled::Evidence,
                polls: 1,
                waited: Duration::from_micros(120),
            },
            SettleOutcome {
                settled: Settled::TimedOut {
                    vteps: vec!["192.0.2.1".into()],
                },
                polls: 40,
                waited: Duration::from_secs(2),
            },
            SettleOutcome {
                settled: Settled::NoEvidence("bird: down".into()),
                polls: 1,
                waited: Duration::ZERO,
            },
        ] {
            assert_eq!(outcome_from_proto(&outcome_to_proto(&o)), Some(o));
        }
        assert_eq!(outcome_from_proto(&v1::SettleOutcome::default()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_means_no_evidence() {
        let (_, look) = scripted(vec![Err("bird: connection refused".into())]);
        let out = wait_for_evidence(policy(1000), look).await;
        assert_eq!(
            out.settled,
            Settled::NoEvidence("bird: connection refused".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_look_never_outlasts_max_wait() {
        // First look sees another VTEP, the second never answers.
        let mut first = true;
        let look = move || {
            let a = first;
            first = false;
            async move {
                if a {
                    announced()
                } else {
                    std::future::pending().await
                }
            }
        };
        let out = wait_for_evidence(policy(500), look).await;
        assert_eq!(
            out.settled,
            Settled::TimedOut {
                vteps: vec!["192.0.2.1".into()]
            }
        );
        assert_eq!(out.waited, Duration::from_millis(500));
        // A first look that hangs: no evidence at all.
        let out = wait_for_evidence(policy(500), std::future::pending).await;
        assert!(matches!(out.settled, Settled::NoEvidence(e) if e.contains("max-wait")));
    }
}
