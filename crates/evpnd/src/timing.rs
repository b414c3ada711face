//! The step timings of one BindGroupBVI / ReleaseGroupBVI (issue 16): where
//! the call's time went, from this daemon's monotonic clock, returned in the
//! answer (`BVI.steps`) so evpnr can assemble a move's timeline.
//!
//! A call runs inside [`scope`]; the code on its path marks steps with
//! [`step`] (start instant → now) or [`timed`]. Outside a scope (reconcile,
//! every other call) marking is a no-op, so the hooks cost nothing there.
//! The recorder is task-local and travels with the call's future, also when
//! `evpn_daemon::detach` hands it to a task of its own.
use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Instant,
};

use evpn_api::v1;

/// One timed step, relative to the call's receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub start_us: u64,
    pub duration_us: u64,
}

#[derive(Debug)]
struct Recorder {
    t0: Instant,
    steps: Vec<Step>,
}

/// The recorder of one call.
#[derive(Debug, Clone)]
pub struct Steps(Arc<Mutex<Recorder>>);

tokio::task_local! {
    static CURRENT: Steps;
}

impl Steps {
    /// A recorder whose offsets count from `t0` (the request's receipt).
    pub fn new(t0: Instant) -> Self {
        Steps(Arc::new(Mutex::new(Recorder {
            t0,
            steps: Vec::new(),
        })))
    }

    /// Run `f` with this recorder as the current one.
    pub async fn scope<F: Future>(&self, f: F) -> F::Output {
        CURRENT.scope(self.clone(), f).await
    }

    fn push(&self, name: String, start: Instant, end: Instant) {
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let start_us = start.saturating_duration_since(r.t0).as_micros() as u64;
        let duration_us = end.saturating_duration_since(start).as_micros() as u64;
        r.steps.push(Step {
            name,
            start_us,
            duration_us,
        });
    }

    /// Close the call: the step `answer` (from `done`, where the call's
    /// work ended, until now: the answer's own preparation) and the step
    /// `handler` (from the receipt until now), so the caller can tell the
    /// two transits from the handler's time that no other step covers.
    pub fn answer(&self, done: Instant) -> &Self {
        let now = Instant::now();
        let t0 = self.0.lock().unwrap_or_else(|p| p.into_inner()).t0;
        self.push("answer".into(), done, now);
        self.push("handler (receipt → answer)".into(), t0, now);
        self
    }

    /// The steps so far, ordered by start.
    pub fn take(&self) -> Vec<Step> {
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut s = std::mem::take(&mut r.steps);
        s.sort_by_key(|s| s.start_us);
        s
    }

    /// The steps as the wire's `BVI.steps`.
    pub fn to_proto(&self) -> Vec<v1::TimelineStep> {
        self.take()
            .into_iter()
            .map(|s| v1::TimelineStep {
                name: s.name,
                start_us: s.start_us,
                duration_us: s.duration_us,
            })
            .collect()
    }
}

/// Mark a step that started at `start` and ends now (no-op outside a scope).
pub fn step(name: impl FnOnce() -> String, start: Instant) {
    let end = Instant::now();
    let _ = CURRENT.try_with(|s| s.push(name(), start, end));
}

/// Whether a recorder is current (to skip building names nobody records).
pub fn active() -> bool {
    CURRENT.try_with(|_| ()).is_ok()
}

/// Run `f` and mark it as one step named `name`.
pub async fn timed<F: Future>(name: &str, f: F) -> F::Output {
    let start = Instant::now();
    let r = f.await;
    step(|| name.to_string(), start);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn steps_are_recorded_in_a_scope_only_and_sorted_by_start() {
        // Outside a scope: nothing happens (and nothing panics).
        timed("outside", async {}).await;
        assert!(!active());
        let t0 = Instant::now();
        let s = Steps::new(t0);
        s.scope(async {
            assert!(active());
            let a = Instant::now();
            timed("inner", async {}).await;
            step(|| "outer".into(), a);
        })
        .await;
        let got = s.take();
        let names: Vec<_> = got.iter().map(|s| s.name.as_str()).collect();
        // "outer" started first (same or earlier instant) and is sorted first
        // only when strictly earlier; both are present either way.
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(names.contains(&"inner") && names.contains(&"outer"));
        assert!(got.windows(2).all(|w| w[0].start_us <= w[1].start_us));
        // Taken: empty afterwards.
        assert!(s.take().is_empty());
    }

    /// The answer closes a call: its own step, and the handler's whole
    /// span from the receipt, which covers every other step (evpnr tells
    /// the transits from the handler by it).
    #[tokio::test]
    async fn the_answer_adds_the_handler_span_covering_every_step() {
        let s = Steps::new(Instant::now());
        s.scope(timed("work", async {})).await;
        let done = Instant::now();
        let got = s.answer(done).take();
        let names: Vec<_> = got.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(names.contains(&"answer"), "{names:?}");
        let h = got
            .iter()
            .find(|s| s.name == "handler (receipt → answer)")
            .expect("handler step");
        assert_eq!(h.start_us, 0);
        let end = |s: &Step| s.start_us + s.duration_us;
        assert!(got.iter().all(|s| end(s) <= end(h)), "{got:?}");
    }
}
