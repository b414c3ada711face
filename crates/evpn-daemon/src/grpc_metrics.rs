//! A tower layer that counts gRPC requests by service, method and status code
//! and observes their latency (until response headers). The status comes
//! from the `grpc-status` response header, which tonic sets for every error
//! (trailers-only responses); a response without it is a success (`OK`).
use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use futures::future::BoxFuture;
use tower::{Layer, Service};

use crate::metrics::{CommonMetrics, GrpcLabels, MethodLabels};

/// The layer; add it with `tonic::transport::Server::builder().layer(..)`.
#[derive(Clone)]
pub struct GrpcMetricsLayer {
    metrics: Arc<CommonMetrics>,
}

impl GrpcMetricsLayer {
    pub fn new(metrics: Arc<CommonMetrics>) -> Self {
        GrpcMetricsLayer { metrics }
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service produced by [`GrpcMetricsLayer`].
#[derive(Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    metrics: Arc<CommonMetrics>,
}

/// Split "/evpn.v1.Evpnr/CreateGroup" into ("evpn.v1.Evpnr", "CreateGroup").
pub fn split_path(path: &str) -> (String, String) {
    let p = path.trim_start_matches('/');
    match p.split_once('/') {
        Some((s, m)) => (s.to_string(), m.to_string()),
        None => ("unknown".into(), p.to_string()),
    }
}

/// gRPC status code number to its canonical name ([`evpn_model::code_name`]).
pub fn code_name(code: i32) -> &'static str {
    evpn_model::code_name(tonic::Code::from_i32(code))
}

impl<S, B, R> Service<http::Request<B>> for GrpcMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (service, method) = split_path(req.uri().path());
        let metrics = self.metrics.clone();
        let start = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            let code = match &res {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| s.parse::<i32>().ok())
                    .map_or("OK", code_name),
                Err(_) => "UNAVAILABLE",
            };
            metrics
                .grpc_latency
                .get_or_create(&MethodLabels {
                    service: service.clone(),
                    method: method.clone(),
                })
                .observe(start.elapsed().as_secs_f64());
            metrics
                .grpc_requests
                .get_or_create(&GrpcLabels {
                    service,
                    method,
                    code: code.to_string(),
                })
                .inc();
            res
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_codes() {
        assert_eq!(
            split_path("/evpn.v1.Evpnr/CreateGroup"),
            ("evpn.v1.Evpnr".to_string(), "CreateGroup".to_string())
        );
        assert_eq!(code_name(12), "UNIMPLEMENTED");
        assert_eq!(code_name(0), "OK");
    }
}
