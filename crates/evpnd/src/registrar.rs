//! Registration with evpnr: register at start, report readiness, and keep
//! registering (heartbeat) so a restarted evpnr learns about this host again.
//! Failures back off exponentially with jitter; nothing here ever touches
//! the dataplane, so an evpnr outage never disturbs this host.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use evpn_api::v1::{self, evpnr_client::EvpnrClient};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use crate::manager::Manager;

/// Heartbeat interval while registered.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// Back-off after the `n`-th consecutive failure: 0.5 s doubling up to 30 s,
/// with ±25 % jitter so a fleet does not re-register in lock step.
pub fn backoff(n: u32, jitter: f64) -> Duration {
    let base = 0.5_f64 * 2f64.powi(n.min(6) as i32);
    Duration::from_secs_f64(base.min(30.0) * (1.0 + 0.25 * jitter.clamp(-1.0, 1.0)))
}

/// Run until `shutdown`; `registered` mirrors the current registration.
pub async fn run(m: Arc<Manager>, registered: Arc<AtomicBool>, shutdown: CancellationToken) {
    let cfg = m.cfg.clone();
    if cfg.registry.is_empty() {
        tracing::info!("registry-disabled");
        return;
    }
    let url = format!("http://{}", cfg.registry);
    let mut failures: u32 = 0;
    let mut reported_ready: Option<bool> = None;
    loop {
        let attempt = async {
            let ch = tonic::transport::Endpoint::from_shared(url.clone())
                .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(5))
                .connect()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let mut c = EvpnrClient::new(ch);
            let ready = m.is_ready();
            let r = c
                .register_instance(v1::RegisterInstanceRequest {
                    instance_id: cfg.instance_id.clone(),
                    grpc_address: cfg.advertise_addr.clone(),
                    version: evpn_daemon::build::VERSION.into(),
                    ready,
                })
                .await?
                .into_inner();
            Ok::<_, tonic::Status>((c, r.new_instance, ready))
        };
        let (mut client, new_instance, ready) = match attempt.await {
            Ok(x) => x,
            Err(st) => {
                if registered.swap(false, Ordering::SeqCst) || failures == 0 {
                    tracing::warn!(registry = %cfg.registry, error = %st.message(), code = ?st.code(), "registry-register-failed");
                }
                let d = backoff(failures, rand::rng().random_range(-1.0..1.0));
                failures = failures.saturating_add(1);
                tokio::select! { _ = tokio::time::sleep(d) => continue, _ = shutdown.cancelled() => return }
            }
        };
        if !registered.swap(true, Ordering::SeqCst) || new_instance {
            tracing::info!(registry = %cfg.registry, new_instance, ready, "registry-registered");
            reported_ready = Some(ready);
        }
        failures = 0;
        // Heartbeat: report readiness changes at once, re-register periodically.
        loop {
            let ready = m.is_ready();
            if reported_ready != Some(ready) {
                match client
                    .report_ready(v1::ReportReadyRequest {
                        instance_id: cfg.instance_id.clone(),
                        ready,
                    })
                    .await
                {
                    Ok(_) => {
                        tracing::info!(ready, "registry-ready-reported");
                        reported_ready = Some(ready);
                    }
                    Err(st) => {
                        tracing::warn!(error = %st.message(), "registry-report-ready-failed");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = shutdown.cancelled() => return,
            }
            if m.is_ready() == reported_ready.unwrap_or(false) {
                // Sleep out the heartbeat, waking early when readiness flips.
                let mut waited = Duration::ZERO;
                while waited < HEARTBEAT && m.is_ready() == reported_ready.unwrap_or(false) {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => waited += Duration::from_millis(200),
                        _ = shutdown.cancelled() => return,
                    }
                }
                if waited >= HEARTBEAT {
                    break; // re-register (detects an evpnr that forgot us)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        assert_eq!(backoff(0, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(20, 0.0), Duration::from_secs(30));
        assert!(backoff(3, 1.0) > backoff(3, 0.0));
        assert!(backoff(3, -1.0) < backoff(3, 0.0));
    }
}
