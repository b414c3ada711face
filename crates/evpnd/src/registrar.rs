//! Registration with evpnr and liveness: register at start (and whenever the
//! registry forgets this host), then send heartbeats on a stream of their own
//! every `evpnd.heartbeat-interval` and at once when readiness, health
//! (the summary's generation) or what the fabric witness sees of the vMACs
//! evpnr has it watch (`crate::witness`) changes. evpnr
//! derives this member's liveness from the heartbeats' age. Failures back off
//! exponentially with jitter; nothing here ever touches the dataplane, so an
//! evpnr outage never disturbs this host.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use evpn_api::v1::{self, evpnr_client::EvpnrClient};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use evpn_model::witness::WatchedMac;

use crate::{epoch::EpochGuard, manager::Manager, witness::Seen};

/// How often readiness is looked at between heartbeats.
const READY_POLL: Duration = Duration::from_millis(50);

/// Missed acks after which the stream is considered dead and dropped.
const ACK_MISSES: u32 = 3;

/// Back-off after a failed registration: 0.5 s doubling up to 30 s, jittered.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(30));

/// Compare the registry's epoch with the highest this host accepted: a newer
/// one is persisted; an older one means a stale registry (logged loudly; its
/// state-changing calls are refused by the epoch guard).
async fn check_epoch(epoch: &EpochGuard, registry: &str, e: u64) {
    if e == 0 {
        return;
    }
    if let Err(err) = epoch.observe(e).await {
        tracing::error!(registry, epoch = e, error = %err, "registry-epoch-stale");
    }
}

async fn register(
    m: &Manager,
    epoch: &EpochGuard,
    url: &str,
) -> Result<(EvpnrClient<Channel>, v1::RegisterInstanceResponse, bool), tonic::Status> {
    let cfg = &m.cfg;
    // Over mutual TLS when configured: only a registry identity is accepted.
    let ch = evpn_daemon::tls::connect(url, evpn_tls::Expect::AnyRegistry, |e| {
        // HTTP/2 keep-alive: a heartbeat stream stuck behind a partition
        // that has healed (TCP back-off) is closed within ~3 s and the
        // registrar registers again on a new connection.
        e.connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(Duration::from_secs(2))
            .keep_alive_while_idle(true)
    })
    .await
    .map_err(|e| {
        tonic::Status::unavailable(match std::error::Error::source(&e) {
            Some(why) => format!("{e}: {why}"),
            None => e.to_string(),
        })
    })?;
    let mut c = EvpnrClient::new(ch);
    let ready = m.is_ready();
    if cfg.registry_force {
        tracing::warn!(registry = %cfg.registry, "registry-force-register");
    }
    let r = c
        .register_instance(v1::RegisterInstanceRequest {
            instance_id: cfg.instance_id.clone(),
            grpc_address: cfg.advertise_addr.clone(),
            version: evpn_daemon::build::VERSION.into(),
            ready,
            force: cfg.registry_force,
            registry_epoch: epoch.highest().await,
        })
        .await?
        .into_inner();
    Ok((c, r, ready))
}

/// Run until `shutdown`; `registered` mirrors the current registration.
pub async fn run(
    m: Arc<Manager>,
    epoch: Arc<EpochGuard>,
    registered: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let cfg = m.cfg.clone();
    if cfg.registry.is_empty() {
        tracing::info!("registry-disabled");
        return;
    }
    let url = format!("http://{}", cfg.registry);
    // The fabric witness: evpnr names the vMACs to watch on its acks.
    let (targets, targets_rx) = tokio::sync::watch::channel(Vec::new());
    let (seen_tx, seen) = tokio::sync::watch::channel(Seen::default());
    m.set_witness(seen.clone());
    tokio::spawn(crate::witness::run(
        m.clone(),
        targets_rx,
        seen_tx,
        shutdown.clone(),
    ));
    let w = Witness { targets, seen };
    let mut failures: u32 = 0;
    loop {
        let why = match register(&m, &epoch, &url).await {
            Ok((client, r, ready)) => {
                check_epoch(&epoch, &cfg.registry, r.registry_epoch).await;
                if !registered.swap(true, Ordering::SeqCst) || r.new_instance {
                    tracing::info!(registry = %cfg.registry, new_instance = r.new_instance, ready, epoch = r.registry_epoch, "registry-registered");
                }
                let interval = evpn_daemon::settle::duration_in(
                    "heartbeat_interval",
                    r.heartbeat_interval.as_ref(),
                )
                .ok()
                .filter(|d| !d.is_zero())
                .unwrap_or(cfg.heartbeat_interval.0);
                let started = Instant::now();
                let st = heartbeats(&m, &epoch, &w, client, interval, &shutdown).await;
                // Not connected: nothing to report to, so nothing to watch.
                w.targets.send_replace(Vec::new());
                if shutdown.is_cancelled() {
                    return;
                }
                // A stream that ends at once does not reset the back-off.
                if started.elapsed() > interval * 10 {
                    failures = 0;
                }
                st
            }
            Err(st) => st,
        };
        if registered.swap(false, Ordering::SeqCst) || failures == 0 {
            tracing::warn!(registry = %cfg.registry, error = %why.message(), code = ?why.code(), "registry-register-failed");
        }
        let d = evpn_daemon::backoff::jittered(BACKOFF.0, BACKOFF.1, failures);
        failures = failures.saturating_add(1);
        tokio::select! { _ = tokio::time::sleep(d) => {}, _ = shutdown.cancelled() => return }
    }
}

/// The registrar's side of the fabric witness: the vMACs evpnr asks this
/// host to watch, and what it sees of them.
struct Witness {
    targets: tokio::sync::watch::Sender<Vec<WatchedMac>>,
    seen: tokio::sync::watch::Receiver<Seen>,
}

/// An ack's watch list → the watcher's targets (an invalid list is logged
/// and ignored: the watcher keeps what it had).
fn set_targets(w: &Witness, ack: &v1::HeartbeatAck) {
    match crate::convert::watch_in(&ack.watch) {
        Ok(t) => {
            w.targets.send_if_modified(|old| {
                let changed = *old != t;
                *old = t;
                changed
            });
        }
        Err(e) => tracing::warn!(error = %e, "registry-watch-invalid"),
    }
}

/// Send heartbeats until the stream ends, acks stop coming or `shutdown`;
/// returns why it ended.
async fn heartbeats(
    m: &Manager,
    epoch: &EpochGuard,
    w: &Witness,
    mut client: EvpnrClient<Channel>,
    interval: Duration,
    shutdown: &CancellationToken,
) -> tonic::Status {
    let cfg = &m.cfg;
    let (tx, rx) = tokio::sync::mpsc::channel::<v1::HeartbeatRequest>(8);
    let mut seq = 0u64;
    let mut ready = m.is_ready();
    let mut health = m.health.subscribe();
    let mut seen = w.seen.clone();
    let beat = |seq: u64, ready: bool, seen: &Seen| v1::HeartbeatRequest {
        instance_id: cfg.instance_id.clone(),
        seq,
        ready,
        health: Some(crate::convert::health_out(
            &m.health.summary(),
            false,
            m.disabled_evpns(),
        )),
        witnesses: evpn_daemon::witness::witnesses_out(&seen.witnesses(Instant::now())),
    };
    // The first heartbeat goes with the stream's opening.
    seq += 1;
    if tx
        .try_send(beat(seq, ready, &seen.borrow_and_update()))
        .is_err()
    {
        return tonic::Status::internal("heartbeat queue");
    }
    let mut acks = match client
        .heartbeat(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(st) => return st,
    };
    let mut last_sent = Instant::now();
    let mut last_ack = Instant::now();
    let mut sent_generation = health.borrow_and_update().generation;
    loop {
        let mut witnessed = false;
        tokio::select! {
            _ = shutdown.cancelled() => return tonic::Status::cancelled("shutdown"),
            a = acks.message() => match a {
                Ok(Some(ack)) => {
                    last_ack = Instant::now();
                    check_epoch(epoch, &cfg.registry, ack.registry_epoch).await;
                    set_targets(w, &ack);
                }
                Ok(None) => return tonic::Status::unavailable("the registry ended the heartbeat stream"),
                Err(st) => return st,
            },
            _ = tokio::time::sleep(READY_POLL.min(interval)) => {}
            // A health change is reported at once.
            c = health.changed() => if c.is_err() {
                return tonic::Status::internal("health publisher gone");
            },
            // So is a change of what the fabric witness sees.
            c = seen.changed() => {
                if c.is_err() {
                    return tonic::Status::internal("fabric witness gone");
                }
                witnessed = true;
            },
        }
        let now_ready = m.is_ready();
        let generation = health.borrow_and_update().generation;
        // A change that came while another branch fired counts too.
        witnessed |= seen.has_changed().unwrap_or(false);
        let snapshot = seen.borrow_and_update().clone();
        if now_ready != ready
            || generation != sent_generation
            || witnessed
            || last_sent.elapsed() >= interval
        {
            sent_generation = generation;
            if now_ready != ready {
                tracing::info!(ready = now_ready, "registry-ready-reported");
            }
            ready = now_ready;
            seq += 1;
            if tx.send(beat(seq, ready, &snapshot)).await.is_err() {
                return tonic::Status::unavailable("heartbeat stream closed");
            }
            last_sent = Instant::now();
        }
        if last_ack.elapsed() > interval * ACK_MISSES + Duration::from_secs(1) {
            return tonic::Status::deadline_exceeded(format!(
                "no heartbeat ack from the registry for {:?}",
                last_ack.elapsed()
            ));
        }
    }
}
