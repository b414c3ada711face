//! Serving helpers: listeners with errors naming the setting, the `/metrics`
//! HTTP endpoint, and gRPC health + reflection.
use std::{net::SocketAddr, sync::Arc};

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Bind a TCP listener for the setting `key` (e.g. "--grpc-addr").
pub async fn bind(key: &str, addr: &str) -> anyhow::Result<TcpListener> {
    let sa: SocketAddr = addr
        .parse()
        .map_err(|_| anyhow::anyhow!("{key}: {addr:?} is not an address:port"))?;
    TcpListener::bind(sa)
        .await
        .map_err(|e| anyhow::anyhow!("{key}: cannot listen on {addr}: {e}"))
}

/// Serve `GET /metrics` (OpenMetrics text) until `shutdown`: plaintext, or
/// with `tls` over mutual TLS (the daemon's reloadable acceptor: a client
/// certificate the CA signed is required, any identity; SIGHUP rotation
/// applies).
pub fn spawn_metrics(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    tls: Option<Arc<evpn_tls::ServerTls>>,
) -> tokio::task::JoinHandle<()> {
    use axum::{http::header, routing::get};
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let reg = registry.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    crate::metrics::render(&reg),
                )
            }
        }),
    );
    tokio::spawn(async move {
        let stop = async move { shutdown.cancelled().await };
        let r = match tls {
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
            }
            Some(tls) => {
                let local = listener.local_addr();
                let refused: evpn_tls::OnRefused = Arc::new(|peer, reason: &str| {
                    tracing::warn!(peer = %peer, reason, listener = "metrics", "tls-refused");
                });
                let incoming = Box::pin(tls.incoming_http(listener, refused));
                axum::serve(TlsListener { incoming, local }, app)
                    .with_graceful_shutdown(stop)
                    .await
            }
        };
        if let Err(e) = r {
            tracing::error!(error = %e, "metrics-server-failed");
        }
    })
}

type TlsIncoming =
    std::pin::Pin<Box<dyn futures::Stream<Item = std::io::Result<evpn_tls::TlsConn>> + Send>>;

/// The metrics listener over TLS, for `axum::serve`.
struct TlsListener {
    incoming: TlsIncoming,
    local: std::io::Result<SocketAddr>,
}

impl axum::serve::Listener for TlsListener {
    type Io = evpn_tls::TlsConn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match futures::StreamExt::next(&mut self.incoming).await {
                Some(Ok(c)) => {
                    let addr = c.peer().addr;
                    return (c, addr);
                }
                // Refused handshakes are reported by the acceptor and never
                // reach here; the stream yields no errors of its own.
                Some(Err(_)) => continue,
                // The acceptor stopped (cannot happen while we hold the
                // stream): accept nothing more.
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match &self.local {
            Ok(a) => Ok(*a),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        }
    }
}

/// Report `service` and "" as SERVING or NOT_SERVING following `serving`,
/// until the channel closes.
pub fn follow_serving(
    reporter: tonic_health::server::HealthReporter,
    service: &'static str,
    mut serving: tokio::sync::watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            let status = if *serving.borrow_and_update() {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            for s in [service, ""] {
                reporter.set_service_status(s, status).await;
            }
            if serving.changed().await.is_err() {
                return;
            }
        }
    });
}

/// gRPC health (with `services` reported SERVING) and reflection (v1 and
/// v1alpha) listing the evpn.v1 API and the health service.
pub async fn health_and_reflection(
    services: &[&str],
) -> anyhow::Result<(
    tonic_health::server::HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
)> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for s in services {
        reporter
            .set_service_status(*s, tonic_health::ServingStatus::Serving)
            .await;
    }
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(evpn_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(evpn_api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    Ok((reporter, health, v1, v1alpha))
}
