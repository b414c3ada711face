//! Waiting in tests: the one way a test waits for something to happen. A bounded poll of
//! the observable condition (never a fixed sleep), with a timeout and an error naming what
//! did not happen and the last thing seen.
//!
//! ```
//! # use std::{sync::atomic::{AtomicU32, Ordering::SeqCst}, time::Duration};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let opened = AtomicU32::new(3);
//! let n = evpn_testkit::eventually("three streams opened", Duration::from_secs(10), async || {
//!     let n = opened.load(SeqCst);
//!     if n >= 3 { Ok(n) } else { Err(format!("{n} streams")) }
//! })
//! .await
//! .unwrap();
//! # assert_eq!(n, 3);
//! # }
//! ```

use std::fmt;
use std::time::{Duration, Instant};

/// What one look at the condition returns: `bool` (holds or not), `Option<T>` (the value
/// once it is there) or `Result<T, E>` (the value, or the latest observation `E`, which the
/// timeout error reports).
pub trait Outcome {
    /// What the wait returns once the condition holds.
    type Value;
    /// `Ok` when the condition holds; otherwise the observation to report, if any.
    fn into_result(self) -> Result<Self::Value, Option<String>>;
}

impl Outcome for bool {
    type Value = ();
    fn into_result(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn into_result(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: fmt::Display> Outcome for Result<T, E> {
    type Value = T;
    fn into_result(self) -> Result<T, Option<String>> {
        self.map_err(|e| Some(e.to_string()))
    }
}

/// The condition did not hold within the timeout. Its `Debug` is its message, so
/// `.unwrap()` on a wait prints what did not happen.
pub struct TimedOut {
    /// What was waited for.
    pub what: String,
    /// The timeout.
    pub after: Duration,
    /// The last observation (from a condition returning `Result`).
    pub last: Option<String>,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for {}",
            self.after, self.what
        )?;
        if let Some(l) = &self.last {
            write!(f, "; last seen: {l}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for TimedOut {}

/// The poll schedule: look at once, then after 5 ms, doubling up to 50 ms, and a last time at
/// the deadline.
struct Schedule {
    deadline: Instant,
    pause: Duration,
}

impl Schedule {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_millis(50);

    fn new(timeout: Duration) -> Schedule {
        Schedule {
            deadline: Instant::now() + timeout,
            pause: Self::FIRST,
        }
    }

    /// How long to pause before the next look; `None` once the deadline has passed.
    fn next(&mut self) -> Option<Duration> {
        let left = self.deadline.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        let p = self.pause.min(left);
        self.pause = (self.pause * 2).min(Self::MAX);
        Some(p)
    }
}

/// Polls `look` until it reports that the condition holds (see [`Outcome`]) and returns the
/// value; after `timeout`, [`TimedOut`] naming `what` and the last observation.
pub async fn eventually<O: Outcome>(
    what: impl fmt::Display,
    timeout: Duration,
    mut look: impl AsyncFnMut() -> O,
) -> Result<O::Value, TimedOut> {
    let mut s = Schedule::new(timeout);
    loop {
        let last = match look().await.into_result() {
            Ok(v) => return Ok(v),
            Err(last) => last,
        };
        match s.next() {
            Some(p) => tokio::time::sleep(p).await,
            None => {
                return Err(TimedOut {
                    what: what.to_string(),
                    after: timeout,
                    last,
                });
            }
        }
    }
}

/// [`eventually`] for code that is not async (it blocks the calling thread between looks;
/// never call it on an async runtime's thread).
pub fn eventually_blocking<O: Outcome>(
    what: impl fmt::Display,
    timeout: Duration,
    mut look: impl FnMut() -> O,
) -> Result<O::Value, TimedOut> {
    let mut s = Schedule::new(timeout);
    loop {
        let last = match look().into_result() {
            Ok(v) => return Ok(v),
            Err(last) => last,
        };
        match s.next() {
            Some(p) => std::thread::sleep(p),
            None => {
                return Err(TimedOut {
                    what: what.to_string(),
                    after: timeout,
                    last,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_value_once_the_condition_holds() {
        let mut n = 0;
        let v = eventually_blocking("n reaches 3", Duration::from_secs(10), || {
            n += 1;
            (n >= 3).then_some(n)
        })
        .unwrap();
        assert_eq!(v, 3);
    }

    #[test]
    fn times_out_naming_what_and_the_last_observation() {
        let t0 = Instant::now();
        let e = eventually_blocking("the impossible", Duration::from_millis(100), || {
            Err::<(), _>("still nothing")
        })
        .unwrap_err();
        assert!(t0.elapsed() >= Duration::from_millis(100));
        assert_eq!(
            e.to_string(),
            "timed out after 100ms waiting for the impossible; last seen: still nothing"
        );
        let e = eventually_blocking("false", Duration::ZERO, || false).unwrap_err();
        assert_eq!(e.to_string(), "timed out after 0ns waiting for false");
    }

    #[tokio::test]
    async fn async_waits_with_a_mutable_borrow() {
        let mut seen = Vec::new();
        eventually("five looks", Duration::from_secs(10), async || {
            seen.push(());
            seen.len() >= 5
        })
        .await
        .unwrap();
        assert_eq!(seen.len(), 5);
        let e = eventually("never", Duration::from_millis(20), async || None::<()>)
            .await
            .unwrap_err();
        assert_eq!(e.last, None);
    }
}
