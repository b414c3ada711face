//! The event broker: one structured event per log record, CRUD operation or
//! role change, fanned out to `WatchEvents` subscribers.
//!
//! Invariants: publishing never blocks and never waits for a subscriber (a
//! bounded broadcast ring); a subscriber that falls behind by more than the
//! ring's capacity is dropped and counted, never allowed to stall the
//! producer; `seq` is assigned under one atomic counter so it is strictly
//! increasing in publication order.
use std::{
    collections::{BTreeMap, BTreeSet},
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::SystemTime,
};

use futures::Stream;
use tokio::sync::broadcast;
use tokio_stream::wrappers::{BroadcastStream, errors::BroadcastStreamRecvError};
use tracing::{Level, field::Visit};
use tracing_subscriber::{Layer, layer};

pub use evpn_model::event::{Event, EventKind, EventLevel};

/// In debug builds (every test), panic when `fields` do not match the
/// catalogue's entry for `event`.
pub(crate) fn debug_check(event: Event, fields: &BTreeMap<String, String>) {
    if cfg!(debug_assertions)
        && let Some(why) = event.check_fields(fields.keys().map(String::as_str))
    {
        panic!("{why}");
    }
}

fn level_from_tracing(l: &Level) -> EventLevel {
    match *l {
        Level::ERROR => EventLevel::Error,
        Level::WARN => EventLevel::Warn,
        Level::INFO => EventLevel::Info,
        _ => EventLevel::Debug,
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub seq: u64,
    pub ts: SystemTime,
    pub kind: EventKind,
    pub level: EventLevel,
    /// Origin instance; empty for the registry's own records.
    pub instance: String,
    pub message: String,
    pub fields: BTreeMap<String, String>,
}

/// Which events a subscriber wants.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Empty means all kinds.
    pub kinds: BTreeSet<EventKind>,
    /// Minimum level.
    pub min_level: Option<EventLevel>,
    /// `None` means all instances; `Some(set)` only those ("" = own records).
    pub instances: Option<BTreeSet<String>>,
}

impl EventFilter {
    /// Whether `e` passes the filter.
    pub fn matches(&self, e: &EventRecord) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && self.min_level.is_none_or(|m| e.level >= m)
            && self
                .instances
                .as_ref()
                .is_none_or(|s| s.contains(&e.instance))
    }
}

struct Inner {
    seq: AtomicU64,
    tx: broadcast::Sender<Arc<EventRecord>>,
    dropped: AtomicU64,
    instance: String,
}

/// The broker. Cheap to clone.
#[derive(Clone)]
pub struct EventBroker {
    inner: Arc<Inner>,
}

impl EventBroker {
    /// A broker stamping `instance` on its own events, keeping at most
    /// `capacity` undelivered events per subscriber before dropping it.
    pub fn new(instance: &str, capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        EventBroker {
            inner: Arc::new(Inner {
                seq: AtomicU64::new(0),
                tx,
                dropped: AtomicU64::new(0),
                instance: instance.to_string(),
            }),
        }
    }

    /// Publish a catalogued event of this process (its type and level come
    /// from the catalogue), and write it as one log line with the same
    /// message and fields. In debug builds a field the catalogue does not
    /// list, or a missing required one, panics: the schema is the contract.
    pub fn emit(&self, event: Event, fields: BTreeMap<String, String>) -> u64 {
        debug_check(event, &fields);
        let (kind, json) = (
            event.kind().as_str(),
            serde_json::to_string(&fields).unwrap_or_default(),
        );
        match event.level() {
            EventLevel::Debug => tracing::debug!(kind, fields = %json, "{event}"),
            EventLevel::Info => tracing::info!(kind, fields = %json, "{event}"),
            EventLevel::Warn => tracing::warn!(kind, fields = %json, "{event}"),
            EventLevel::Error => tracing::error!(kind, fields = %json, "{event}"),
        }
        self.publish(
            event.kind(),
            event.level(),
            self.inner.instance.clone(),
            event.name().to_string(),
            fields,
            None,
        )
    }

    /// Publish one log record as a `log` event (free text, not catalogued).
    pub fn log(&self, level: EventLevel, message: &str, fields: BTreeMap<String, String>) -> u64 {
        self.publish(
            EventKind::Log,
            level,
            self.inner.instance.clone(),
            message.to_string(),
            fields,
            None,
        )
    }

    /// Publish an event that originates elsewhere (e.g. a member's stream):
    /// it gets this broker's next `seq`; `instance` is set by the caller,
    /// never taken from the remote record.
    pub fn publish(
        &self,
        kind: EventKind,
        level: EventLevel,
        instance: String,
        message: String,
        fields: BTreeMap<String, String>,
        ts: Option<SystemTime>,
    ) -> u64 {
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let rec = EventRecord {
            seq,
            ts: ts.unwrap_or_else(SystemTime::now),
            kind,
            level,
            instance,
            message,
            fields,
        };
        // No receivers is fine: nobody is watching.
        let _ = self.inner.tx.send(Arc::new(rec));
        seq
    }

    /// Sequence number of the last published event.
    pub fn last_seq(&self) -> u64 {
        self.inner.seq.load(Ordering::Relaxed)
    }

    /// Current number of subscribers.
    pub fn subscribers(&self) -> usize {
        self.inner.tx.receiver_count()
    }

    /// Subscribers dropped for being too slow, since start.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Subscribe with a filter. The stream ends when the subscriber falls
    /// too far behind (it is dropped and counted) or the broker is gone.
    pub fn subscribe(&self, filter: EventFilter) -> Subscription {
        Subscription {
            inner: BroadcastStream::new(self.inner.tx.subscribe()),
            filter,
            broker: self.inner.clone(),
            done: false,
        }
    }

    /// A `tracing` layer that publishes every log record as a `log` event.
    pub fn layer(&self) -> EventLayer {
        EventLayer {
            broker: self.clone(),
        }
    }
}

/// A filtered live stream of events.
pub struct Subscription {
    inner: BroadcastStream<Arc<EventRecord>>,
    filter: EventFilter,
    broker: Arc<Inner>,
    done: bool,
}

impl Stream for Subscription {
    type Item = Arc<EventRecord>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(e))) => {
                    if self.filter.matches(&e) {
                        return Poll::Ready(Some(e));
                    }
                }
                Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(_)))) => {
                    self.broker.dropped.fetch_add(1, Ordering::Relaxed);
                    self.done = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(None) => {
                    self.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Subscription {
    /// True once the subscription ended because it lagged.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// `tracing` layer feeding the broker with `log` events.
pub struct EventLayer {
    broker: EventBroker,
}

#[derive(Default)]
struct FieldCollector {
    message: String,
    fields: BTreeMap<String, String>,
}

impl Visit for FieldCollector {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields
                .insert(field.name().to_string(), value.to_string());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let v = format!("{value:?}");
        if field.name() == "message" {
            self.message = v;
        } else {
            self.fields.insert(field.name().to_string(), v);
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for EventLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: layer::Context<'_, S>) {
        let mut c = FieldCollector::default();
        event.record(&mut c);
        self.broker.log(
            level_from_tracing(event.metadata().level()),
            &c.message,
            c.fields,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn fields(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn filters_by_kind_level_and_instance() {
        let b = EventBroker::new("", 64);
        let mut crud = b.subscribe(EventFilter {
            kinds: [EventKind::Crud].into(),
            ..Default::default()
        });
        let mut warn = b.subscribe(EventFilter {
            min_level: Some(EventLevel::Warn),
            ..Default::default()
        });
        let mut r1 = b.subscribe(EventFilter {
            instances: Some(["r1".to_string()].into()),
            ..Default::default()
        });
        b.log(EventLevel::Info, "hello", fields(&[]));
        b.emit(
            Event::GroupCreated,
            fields(&[
                ("group", "test"),
                ("vni", "1"),
                ("mtu", "1500"),
                ("vmac", "x"),
            ]),
        );
        b.log(EventLevel::Error, "boom", fields(&[]));
        b.publish(
            EventKind::Failover,
            EventLevel::Info,
            "r1".into(),
            "groupbvi-bound".into(),
            fields(&[]),
            None,
        );
        let e = crud.next().await.unwrap();
        assert_eq!((e.seq, e.message.as_str()), (2, "group-created"));
        assert_eq!(e.fields["group"], "test");
        assert_eq!(warn.next().await.unwrap().message, "boom");
        let e = r1.next().await.unwrap();
        assert_eq!((e.seq, e.instance.as_str()), (4, "r1"));
    }

    #[tokio::test]
    async fn slow_subscriber_is_dropped_and_counted_without_blocking() {
        let b = EventBroker::new("", 16);
        let mut slow = b.subscribe(EventFilter::default());
        let mut fast = b.subscribe(EventFilter::default());
        for i in 0..100 {
            b.log(EventLevel::Info, &format!("m{i}"), BTreeMap::new());
            // The fast one keeps up.
            assert_eq!(fast.next().await.unwrap().message, format!("m{i}"));
        }
        // The slow one never read; it ends instead of holding the producer.
        assert!(slow.next().await.is_none());
        assert_eq!(b.dropped(), 1);
        assert_eq!(b.last_seq(), 100);
    }

    #[test]
    fn level_and_kind_names() {
        for l in [
            EventLevel::Debug,
            EventLevel::Info,
            EventLevel::Warn,
            EventLevel::Error,
        ] {
            assert_eq!(EventLevel::parse(l.as_str()).unwrap(), l);
        }
        assert!(EventLevel::parse("loud").is_err());
        assert!(EventKind::parse("snapshot").is_err());
        assert_eq!(EventKind::parse("crud").unwrap(), EventKind::Crud);
    }
}
