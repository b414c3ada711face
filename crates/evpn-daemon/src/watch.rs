//! The gRPC edge of the event broker: request filter conversion, domain →
//! proto conversion, and the `WatchEvents` stream (optional snapshot, live
//! events, clean end on shutdown).
use std::{collections::BTreeMap, pin::Pin, sync::Arc};

use evpn_api::v1;
use evpn_model::Error;
use futures::{FutureExt, Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::{
    events::{Event, EventBroker, EventFilter, EventKind, EventLevel, EventRecord},
    metrics::CommonMetrics,
};

/// How long a `WatchEvents` stream holds an event that ended a quiet spell
/// before sending it (and everything published meanwhile with it). An event
/// is published right where it happens, usually just before the RPC that
/// caused it answers; sending it at once made the stream compete with that
/// answer for the CPU and the connection (measured: +0.3-0.5 ms per member
/// answer in a move). `ts` still says when the event happened.
pub const DELIVERY_DELAY: std::time::Duration = std::time::Duration::from_millis(1);

/// The stream type of every `WatchEvents` implementation.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<v1::Event, tonic::Status>> + Send>>;

/// Convert a request into a filter; unknown types or levels are
/// INVALID_ARGUMENT naming the field.
pub fn filter_from_proto(req: &v1::WatchEventsRequest) -> Result<EventFilter, Error> {
    let mut f = EventFilter::default();
    for t in &req.types {
        f.kinds
            .insert(EventKind::parse(t).map_err(|r| Error::invalid("types", r))?);
    }
    if !req.min_level.is_empty() {
        f.min_level =
            Some(EventLevel::parse(&req.min_level).map_err(|r| Error::invalid("min_level", r))?);
    }
    if !req.instances.is_empty() {
        f.instances = Some(req.instances.iter().cloned().collect());
    }
    Ok(f)
}

/// Domain event → wire event.
pub fn to_proto(e: &EventRecord) -> v1::Event {
    let d =
        e.ts.duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
    v1::Event {
        seq: e.seq,
        ts: Some(pbjson_types::Timestamp {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
        }),
        r#type: e.kind.as_str().to_string(),
        level: e.level.as_str().to_string(),
        instance: e.instance.clone(),
        message: e.message.clone(),
        fields: e.fields.clone().into_iter().collect(),
    }
}

/// A snapshot event (type "snapshot") describing one object; `event` must be
/// one of the catalogue's snapshot events.
pub fn snapshot_event(
    instance: &str,
    event: Event,
    fields: BTreeMap<String, String>,
) -> EventRecord {
    debug_assert_eq!(event.kind(), EventKind::Snapshot, "{event}");
    crate::events::debug_check(event, &fields);
    EventRecord {
        seq: 0,
        ts: std::time::SystemTime::now(),
        kind: event.kind(),
        level: event.level(),
        instance: instance.to_string(),
        message: event.name().to_string(),
        fields,
    }
}

struct SubscriberGuard(Arc<CommonMetrics>);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.event_subscribers.dec();
    }
}

/// Build a `WatchEvents` stream: subscribe first (so nothing is missed), then
/// emit `snapshot` (if any, followed by an "end-of-snapshot" marker), then
/// live events until the subscriber lags (dropped and counted) or
/// `shutdown` fires (the stream ends cleanly with OK). Live events are sent
/// in order, at most about [`DELIVERY_DELAY`] (plus a timer tick) late.
pub fn watch(
    broker: &EventBroker,
    filter: EventFilter,
    snapshot: Option<Vec<EventRecord>>,
    shutdown: CancellationToken,
    metrics: Arc<CommonMetrics>,
) -> EventStream {
    let sub = broker.subscribe(filter);
    metrics.event_subscribers.inc();
    let guard = SubscriberGuard(metrics.clone());
    let head: Vec<Result<v1::Event, tonic::Status>> = match snapshot {
        None => Vec::new(),
        Some(items) => {
            let last = broker.last_seq();
            let mut out: Vec<_> = items.iter().map(|e| Ok(to_proto(e))).collect();
            let mut marker = snapshot_event(
                "",
                Event::EndOfSnapshot,
                [("last-seq".to_string(), last.to_string())].into(),
            );
            marker.seq = last;
            out.push(Ok(to_proto(&marker)));
            out
        }
    };
    // On shutdown, events already published are still delivered (e.g. the
    // `shutdown-requested` record), then the stream ends with OK.
    let live = futures::stream::unfold(
        (sub, shutdown, guard, metrics, false),
        |(mut sub, shutdown, guard, metrics, mut closing)| async move {
            loop {
                // `unconstrained`: a spent task budget must not pass for "no
                // event ready" (which would end a closing stream early).
                let next = if let Some(n) = tokio::task::unconstrained(sub.next()).now_or_never() {
                    n
                } else if closing {
                    return None;
                } else {
                    let n = tokio::select! {
                        biased;
                        _ = shutdown.cancelled() => { closing = true; continue; }
                        next = sub.next() => next,
                    };
                    // After a quiet spell: let the RPC that caused this event
                    // answer first, then send the burst together.
                    if n.is_some() {
                        tokio::select! {
                            biased;
                            _ = shutdown.cancelled() => closing = true,
                            _ = tokio::time::sleep(DELIVERY_DELAY) => {}
                        }
                    }
                    n
                };
                return match next {
                    Some(e) => Some((Ok(to_proto(&e)), (sub, shutdown, guard, metrics, closing))),
                    None => {
                        if sub.is_done() {
                            metrics.event_subscribers_dropped.inc();
                        }
                        None
                    }
                };
            }
        },
    );
    Box::pin(futures::stream::iter(head).chain(live))
}
