//! Prometheus metrics common to both daemons: build info, gRPC requests and
//! latency per method and status code, config reload outcome, event
//! subscribers. Each daemon registers these under its own prefix (`evpnd_`,
//! `evpnr_`) and adds its own metrics to the same registry.
use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Labels of `build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub commit: String,
}

/// Labels of `grpc_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    pub service: String,
    pub method: String,
    pub code: String,
}

/// Labels of `grpc_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub service: String,
    pub method: String,
}

/// Labels of `config_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConfigLabels {
    pub sha256: String,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]
    .into_iter()
}

/// The common metric handles.
#[derive(Clone)]
pub struct CommonMetrics {
    pub build_info: Family<BuildLabels, Gauge>,
    pub grpc_requests: Family<GrpcLabels, Counter>,
    pub grpc_latency: Family<MethodLabels, Histogram>,
    pub config_reload_ok: Gauge,
    pub config_reload_ts: Gauge<f64, AtomicU64>,
    pub config_info: Family<ConfigLabels, Gauge>,
    pub event_subscribers: Gauge,
    pub event_subscribers_dropped: Counter,
}

impl CommonMetrics {
    /// Create and register the common metrics in `reg` (which carries the
    /// daemon's prefix).
    pub fn register(reg: &mut Registry) -> Self {
        let m = CommonMetrics {
            build_info: Family::default(),
            grpc_requests: Family::default(),
            grpc_latency: Family::new_with_constructor(|| Histogram::new(latency_buckets())),
            config_reload_ok: Gauge::default(),
            config_reload_ts: Gauge::default(),
            config_info: Family::default(),
            event_subscribers: Gauge::default(),
            event_subscribers_dropped: Counter::default(),
        };
        reg.register(
            "build_info",
            "Build version and commit (always 1)",
            m.build_info.clone(),
        );
        reg.register(
            "grpc_requests",
            "gRPC requests served, by service, method and status code",
            m.grpc_requests.clone(),
        );
        reg.register(
            "grpc_request_duration_seconds",
            "gRPC request latency until response headers, by service and method",
            m.grpc_latency.clone(),
        );
        reg.register(
            "config_last_reload_successful",
            "1 if the last configuration (re)load succeeded, 0 if it was refused",
            m.config_reload_ok.clone(),
        );
        reg.register(
            "config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration (re)load",
            m.config_reload_ts.clone(),
        );
        reg.register(
            "config_info",
            "SHA-256 of the configuration in effect (always 1)",
            m.config_info.clone(),
        );
        reg.register(
            "event_subscribers",
            "Current WatchEvents subscribers",
            m.event_subscribers.clone(),
        );
        reg.register(
            "event_subscribers_dropped",
            "WatchEvents subscribers dropped for falling behind",
            m.event_subscribers_dropped.clone(),
        );
        m.build_info
            .get_or_create(&BuildLabels {
                version: crate::build::VERSION.into(),
                commit: crate::build::COMMIT.into(),
            })
            .set(1);
        m
    }

    /// Record a successful (re)load of a configuration with this text.
    pub fn config_loaded(&self, text: &str) {
        use sha2::Digest;
        let sha: String = sha2::Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.config_info.clear();
        self.config_info
            .get_or_create(&ConfigLabels { sha256: sha })
            .set(1);
        self.config_reload_ok.set(1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.config_reload_ts.set(now);
    }

    /// Record a refused reload (the old configuration stays in effect).
    pub fn config_refused(&self) {
        self.config_reload_ok.set(0);
    }
}

/// Render a registry in the OpenMetrics text format.
pub fn render(reg: &Registry) -> String {
    let mut out = String::new();
    // Encoding into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, reg);
    out
}
