//! JSON logging: one object per line on stdout, fields flattened to the top
//! level, kebab-case messages. The stdout level can be changed at run time
//! (SIGHUP reload); an extra layer (the event broker) sees every record at
//! debug and above regardless of the stdout level.
use std::sync::{
    Arc,
    atomic::{AtomicU8, Ordering},
};

use tracing::{Level, Metadata, subscriber::Interest};
use tracing_subscriber::{
    Layer,
    layer::{Context, Filter, SubscriberExt},
    util::SubscriberInitExt,
};

fn level_num(l: &Level) -> u8 {
    match *l {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// Parse a configured level name into its rank (error=1 .. debug=4).
fn parse_level(name: &str) -> u8 {
    match name {
        "error" => 1,
        "warn" => 2,
        "debug" => 4,
        _ => 3,
    }
}

/// Library targets that only log at warn and above.
const NOISY: [&str; 8] = [
    "h2",
    "hyper",
    "hyper_util",
    "tower",
    "tonic",
    "rustls",
    "mio",
    "tokio",
];

fn noisy(target: &str) -> bool {
    NOISY.iter().any(|p| {
        target
            .strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// A per-layer filter whose maximum level can change at run time.
#[derive(Clone)]
struct LevelGate {
    max: Arc<AtomicU8>,
}

impl<S> Filter<S> for LevelGate {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        let n = level_num(meta.level());
        if noisy(meta.target()) {
            return n <= 2;
        }
        n <= self.max.load(Ordering::Relaxed)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        let n = level_num(meta.level());
        // Trace, and a library's records below warn, never pass whatever the
        // run-time level: disable those call sites for good, so the hot
        // paths of h2 and hyper do not ask on every frame.
        if n > 4 || (n > 2 && noisy(meta.target())) {
            return Interest::never();
        }
        // Otherwise ask each time: the level can change at run time.
        Interest::sometimes()
    }
}

/// Handle to change the stdout log level after start-up.
#[derive(Clone)]
pub struct LogHandle {
    max: Arc<AtomicU8>,
}

impl LogHandle {
    /// Set the stdout level ("debug", "info", "warn", "error").
    pub fn set_level(&self, level: &str) {
        self.max.store(parse_level(level), Ordering::Relaxed);
    }
}

/// Install the global subscriber: JSON to stdout at `level`, plus `extra`
/// (e.g. the event broker's layer), which receives debug and above.
pub fn init<L>(level: &str, extra: L) -> LogHandle
where
    L: Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    let max = Arc::new(AtomicU8::new(parse_level(level)));
    let stdout = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_writer(std::io::stdout)
        .with_filter(LevelGate { max: max.clone() });
    let extra = extra.with_filter(LevelGate {
        max: Arc::new(AtomicU8::new(4)),
    });
    let _ = tracing_subscriber::registry()
        .with(extra)
        .with(stdout)
        .try_init();
    LogHandle { max }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noisy_matches_whole_crate_paths_only() {
        assert!(noisy("h2"));
        assert!(noisy("h2::codec::framed_read"));
        assert!(noisy("hyper_util::client"));
        assert!(!noisy("h2x"));
        assert!(!noisy("tonic_health"));
        assert!(!noisy("evpnd::manager"));
    }
}
