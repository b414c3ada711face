//! When reconcile runs: at start-up until it succeeds (then evpnd is
//! ready), every `reconcile-interval`, and at once when the dataplane
//! reports a change behind evpnd's back (paced: [`Pacer`]). What one pass
//! does is `Manager::reconcile_once` (`manager/converge.rs`); what it plans
//! is `bvi.rs`'s. This module depends on the manager, never the reverse.
use std::time::Duration;

use crate::manager::{Manager, Report};

/// Drift-triggered passes: at most one per [`DRIFT_MIN_GAP`]; while
/// consecutive passes each repair something (a change that keeps coming
/// back), the gap doubles up to [`DRIFT_MAX_GAP`]; a pass that finds
/// nothing to repair resets it. Sans-IO: the loop feeds it the times.
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    last: Option<tokio::time::Instant>,
    repairs_in_a_row: u32,
}

/// The least time between two drift-triggered reconcile passes.
pub const DRIFT_MIN_GAP: Duration = Duration::from_millis(100);
/// The most the gap grows to while the same drift keeps coming back.
pub const DRIFT_MAX_GAP: Duration = Duration::from_secs(5);

impl Pacer {
    /// The current gap between two passes.
    pub fn gap(&self) -> Duration {
        let doublings = self.repairs_in_a_row.saturating_sub(1).min(16);
        (DRIFT_MIN_GAP * 2u32.pow(doublings)).min(DRIFT_MAX_GAP)
    }

    /// When the next drift-triggered pass may start (`None`: now).
    pub fn earliest(&self) -> Option<tokio::time::Instant> {
        self.last.map(|t| t + self.gap())
    }

    /// A drift-triggered pass started at `at`; it repaired something or not.
    pub fn done(&mut self, at: tokio::time::Instant, repaired: bool) {
        self.last = Some(at);
        self.repairs_in_a_row = if repaired {
            self.repairs_in_a_row.saturating_add(1)
        } else {
            0
        };
    }
}

/// The next drift reason; `None` when the watch is gone (or there is none:
/// then this never completes).
async fn next_drift(rx: &mut Option<tokio::sync::mpsc::Receiver<String>>) -> Option<String> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Reconcile until it succeeds (back-off 0.5 s .. 15 s), mark ready, then
/// keep reconciling every `interval` (a pass over a matching host only reads)
/// so a restarted VPP or a manual change is repaired, and at once (paced by
/// [`Pacer`]) whenever the dataplane reports a change behind evpnd's back
/// ([`crate::dataplane::Dataplane::drift_events`]).
pub async fn run(m: &Manager, interval: Duration, shutdown: tokio_util::sync::CancellationToken) {
    let mut drift = m.dp.drift_events();
    run_until_ready(m, shutdown.clone()).await;
    if interval.is_zero() && drift.is_none() {
        return;
    }
    let mut pacer = Pacer::default();
    let mut next_tick = tokio::time::Instant::now() + interval;
    // A drift-triggered pass failed: try again once paced, without waiting
    // for another event.
    let mut retry = false;
    loop {
        let tick = async {
            if interval.is_zero() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep_until(next_tick).await;
        };
        let why = tokio::select! {
            _ = tick => None,
            _ = tokio::time::sleep_until(
                pacer.earliest().unwrap_or_else(tokio::time::Instant::now)
            ), if retry => Some("retry after a failed pass".to_string()),
            w = next_drift(&mut drift) => match w {
                Some(w) => Some(w),
                None => {
                    drift = None;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        if why.is_some() {
            if let Some(t) = pacer.earliest() {
                tokio::select! {
                    _ = tokio::time::sleep_until(t) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
            // Whatever arrived meanwhile is covered by this pass.
            if let Some(rx) = drift.as_mut() {
                while rx.try_recv().is_ok() {}
            }
        } else {
            next_tick = tokio::time::Instant::now() + interval;
        }
        let started = tokio::time::Instant::now();
        let result = m.reconcile_once().await;
        let failed = result.is_err();
        let repaired = match result {
            Ok(rep) if rep != Report::default() => {
                tracing::warn!(
                    bridges_created = rep.bridges_created,
                    bvi_fixes = rep.bvi_fixes,
                    orphans_removed = rep.orphans_removed,
                    bird_changed = rep.bird_changed,
                    trigger = why.as_deref().unwrap_or("interval"),
                    "reconcile-repaired-drift"
                );
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(error = %e, "reconcile-failed");
                // Paced like a repair: a failure that persists backs off.
                true
            }
        };
        if why.is_some() {
            pacer.done(started, repaired);
        }
        // Any pass that succeeds covers a pending retry.
        retry = failed && (why.is_some() || retry);
    }
}

/// Reconcile until it succeeds (back-off 0.5 s .. 15 s), then mark ready.
pub async fn run_until_ready(m: &Manager, shutdown: tokio_util::sync::CancellationToken) {
    let mut delay = Duration::from_millis(500);
    loop {
        match m.reconcile_once().await {
            Ok(rep) => {
                tracing::info!(
                    bridges_created = rep.bridges_created,
                    bvi_fixes = rep.bvi_fixes,
                    orphans_removed = rep.orphans_removed,
                    bird_changed = rep.bird_changed,
                    "reconcile-finished"
                );
                m.set_ready();
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?delay, "reconcile-failed");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(15));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_passes_are_paced_and_back_off_while_the_drift_returns() {
        let t0 = tokio::time::Instant::now();
        let ms = Duration::from_millis;
        let mut p = Pacer::default();
        assert_eq!(p.earliest(), None, "the first pass runs at once");
        // (repaired?, gap after the pass)
        let table = [
            (true, 100),
            (true, 200),
            (true, 400),
            (true, 800),
            (true, 1600),
            (true, 3200),
            (true, 5000),
            (true, 5000),
            (false, 100),
            (true, 100),
            (false, 100),
        ];
        for (i, (repaired, gap)) in table.into_iter().enumerate() {
            let at = t0 + ms(i as u64 * 10_000);
            p.done(at, repaired);
            assert_eq!(p.gap(), ms(gap), "pass {i}");
            assert_eq!(p.earliest(), Some(at + ms(gap)), "pass {i}");
        }
        for _ in 0..100 {
            p.done(t0, true);
        }
        assert_eq!(p.gap(), DRIFT_MAX_GAP);
    }
}
