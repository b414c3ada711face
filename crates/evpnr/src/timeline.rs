//! The per-move timeline (issue 16): where one MoveGroupBVI / BindGroupBVI
//! spent its time, from evpnr's receipt to its answer, with each member's
//! own step timings (`BVI.steps` in its Bind/Release answer) placed inside
//! evpnr's call to it. Published as ONE `move-timeline` event (debug) per
//! operation.
//!
//! The recorder is task-local: [`Timeline::scope`] runs the operation with
//! it; [`mark`] (evpnr's own steps) and [`member`] (a member call and its
//! steps) are no-ops outside a scope. Releases and binds run inside the
//! operation's task (`futures::join_all`), so they see it. Placing and
//! rendering are sans-IO ([`place`], [`render`]).
use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Instant,
};

use evpn_api::v1;

/// One step of the timeline, in µs after evpnr received the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// `evpnr` or the member's instance ID (whose clock timed it).
    pub who: String,
    pub what: String,
    pub start_us: u64,
    pub duration_us: u64,
}

#[derive(Debug)]
struct Inner {
    t0: Instant,
    steps: Vec<Step>,
}

/// The timeline of one operation.
#[derive(Debug, Clone)]
pub struct Timeline(Arc<Mutex<Inner>>);

tokio::task_local! {
    static CURRENT: Timeline;
}

impl Timeline {
    /// A timeline starting now (evpnr received the request).
    pub fn start() -> Self {
        Timeline(Arc::new(Mutex::new(Inner {
            t0: Instant::now(),
            steps: Vec::new(),
        })))
    }

    /// Run `f` with this timeline as the current one.
    pub async fn scope<F: Future>(&self, f: F) -> F::Output {
        CURRENT.scope(self.clone(), f).await
    }

    /// Run `f` with this timeline as the current one, owning it (for a
    /// task spawned from inside an operation).
    pub async fn scope_owned<F: Future>(self, f: F) -> F::Output {
        CURRENT.scope(self, f).await
    }

    /// The current operation's timeline, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Timeline::clone).ok()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn us(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.inner().t0).as_micros() as u64
    }

    fn push(&self, s: Step) {
        self.inner().steps.push(s);
    }

    /// Microseconds since the request was received.
    pub fn now_us(&self) -> u64 {
        self.us(Instant::now())
    }

    /// The steps, ordered by start (stable: equal starts keep their order).
    pub fn steps(&self) -> Vec<Step> {
        let mut s = self.inner().steps.clone();
        s.sort_by_key(|s| s.start_us);
        s
    }
}

/// Mark evpnr's own step `what`, from `start` until now.
pub fn mark(what: &str, start: Instant) {
    let end = Instant::now();
    let _ = CURRENT.try_with(|t| {
        let start_us = t.us(start);
        t.push(Step {
            who: "evpnr".into(),
            what: what.into(),
            start_us,
            duration_us: t.us(end).saturating_sub(start_us),
        });
    });
}

/// A member call `method` on `id`, sent at `sent` and answered at
/// `answered`, and the member's own steps (offsets from its receipt).
pub fn member(
    id: &str,
    method: &str,
    sent: Instant,
    answered: Instant,
    steps: &[v1::TimelineStep],
) {
    let _ = CURRENT.try_with(|t| {
        let (s, a) = (t.us(sent), t.us(answered));
        t.push(Step {
            who: "evpnr".into(),
            what: format!("{method} {id} (call, sent → answer)"),
            start_us: s,
            duration_us: a.saturating_sub(s),
        });
        for st in place(id, s, a, steps) {
            t.push(st);
        }
    });
}

/// The member's steps on evpnr's time axis: the member's clock starts when
/// it received the call, which evpnr does not see; the round trip minus the
/// member's span is the two transits, assumed equal.
pub fn place(id: &str, sent_us: u64, answered_us: u64, steps: &[v1::TimelineStep]) -> Vec<Step> {
    let span = steps
        .iter()
        .map(|s| s.start_us + s.duration_us)
        .max()
        .unwrap_or(0);
    let rtt = answered_us.saturating_sub(sent_us);
    let offset = sent_us + rtt.saturating_sub(span) / 2;
    steps
        .iter()
        .map(|s| Step {
            who: id.to_string(),
            what: s.name.clone(),
            start_us: offset + s.start_us,
            duration_us: s.duration_us,
        })
        .collect()
}

/// The `steps` field of `move-timeline`: `<start>+<duration> <who> <what>`
/// joined by `; `.
pub fn render(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| format!("{}+{} {} {}", s.start_us, s.duration_us, s.who, s.what))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(name: &str, start: u64, dur: u64) -> v1::TimelineStep {
        v1::TimelineStep {
            name: name.into(),
            start_us: start,
            duration_us: dur,
        }
    }

    #[test]
    fn member_steps_sit_inside_the_call_with_the_transit_split_evenly() {
        // (sent, answered, member steps) → (first start, last start)
        let cases = [
            // 1000 µs round trip, member span 600: 200 µs each way.
            (
                1000,
                2000,
                vec![ts("a", 0, 100), ts("b", 100, 500)],
                (1200, 1300),
            ),
            // No steps: nothing placed.
            (1000, 2000, vec![], (0, 0)),
            // A member span longer than the round trip (clocks disagree):
            // placed at the send, never before it.
            (1000, 1100, vec![ts("a", 0, 500)], (1000, 1000)),
        ];
        for (sent, answered, steps, want) in cases {
            let got = place("r1", sent, answered, &steps);
            assert_eq!(got.len(), steps.len());
            if let (Some(f), Some(l)) = (got.first(), got.last()) {
                assert_eq!((f.start_us, l.start_us), want);
                assert!(got.iter().all(|s| s.who == "r1" && s.start_us >= sent));
            }
        }
    }

    #[tokio::test]
    async fn marks_are_recorded_in_a_scope_only_and_rendered_in_order() {
        let outside = Instant::now();
        mark("outside", outside);
        let t = Timeline::start();
        t.scope(async {
            let a = Instant::now();
            member(
                "r2",
                "BindGroupBVI",
                a,
                Instant::now(),
                &[ts("writes mac", 0, 0)],
            );
            mark("intent saved", a);
        })
        .await;
        let steps = t.steps();
        assert_eq!(steps.len(), 3, "{steps:?}");
        assert!(steps.windows(2).all(|w| w[0].start_us <= w[1].start_us));
        let r = render(&steps);
        assert!(r.contains("evpnr BindGroupBVI r2 (call"), "{r}");
        assert!(r.contains("r2 writes mac"), "{r}");
        assert!(r.contains("evpnr intent saved"), "{r}");
        assert_eq!(r.matches("; ").count(), 2, "{r}");
    }
}
