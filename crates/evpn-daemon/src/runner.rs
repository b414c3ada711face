//! The start-up and reload skeleton shared by `evpnd` and `evpnr`:
//! `--version`, `--check` (exit 0/1/2), JSON logging with the `starting`
//! record, metrics, signals, and SIGHUP reloads that refuse invalid files.
use std::{process::ExitCode, sync::Arc};

use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    build,
    config::ConfigError,
    events::EventBroker,
    logging::{self, LogHandle},
    metrics::CommonMetrics,
};

/// A loaded, validated configuration and the text it came from (hashed into
/// `config_info`).
#[derive(Debug, Clone)]
pub struct Loaded<C> {
    pub cfg: C,
    pub text: String,
}

/// Settings every daemon config has.
pub trait CommonSettings {
    fn log_level(&self) -> &str;
    fn grpc_addr(&self) -> &str;
    fn metrics_addr(&self) -> &str;
    /// Dotted keys whose change needs a restart, with their values, so a
    /// reload can warn about them.
    fn restart_keys(&self) -> Vec<(&'static str, String)>;
    /// The state directory (the audit log is under it).
    fn state_dir(&self) -> &std::path::Path;
    /// The `audit:` settings.
    fn audit(&self) -> &crate::audit::AuditConfig;
}

/// Handle `--version` and `--check`. Returns `Err(exit)` when the process
/// should exit now, `Ok(loaded)` to go on.
pub fn preflight<C: Serialize>(
    program: &str,
    version: bool,
    check: bool,
    load: impl FnOnce() -> Result<Loaded<C>, ConfigError>,
) -> Result<Loaded<C>, ExitCode> {
    if version {
        println!("{}", build::version_line(program));
        return Err(ExitCode::SUCCESS);
    }
    match load() {
        Ok(l) => {
            if check {
                match serde_json::to_string_pretty(&l.cfg) {
                    Ok(j) => println!("{j}"),
                    Err(e) => eprintln!("{program}: cannot print the configuration: {e}"),
                }
                eprintln!("{program}: configuration ok");
                return Err(ExitCode::SUCCESS);
            }
            Ok(l)
        }
        Err(e) => {
            eprintln!("{program}: {e}");
            Err(ExitCode::from(e.exit_code() as u8))
        }
    }
}

/// What a running daemon shares: logs, events, metrics, shutdown, config.
pub struct Daemon<C> {
    pub program: &'static str,
    pub broker: EventBroker,
    pub log: LogHandle,
    pub metrics: Arc<CommonMetrics>,
    /// The registry under the daemon's prefix; register daemon metrics here,
    /// then hand it to [`crate::serve::spawn_metrics`].
    pub registry: Registry,
    pub shutdown: CancellationToken,
    /// The configuration in effect (changes on successful SIGHUP reloads).
    pub config: watch::Receiver<Arc<C>>,
    config_tx: watch::Sender<Arc<C>>,
    /// The daemon's gRPC health (SERVING while true); the daemon sets it to
    /// false while it cannot do its job (e.g. its state store fails).
    pub serving: watch::Sender<bool>,
    /// One message per SIGHUP, after the configuration's reload (whatever
    /// its result): what else reloads on SIGHUP (TLS material) listens here.
    pub hangups: tokio::sync::broadcast::Sender<()>,
    /// The audit log, once opened ([`Daemon::open_audit`], else by
    /// [`serve`]).
    audit: Option<Arc<crate::audit::AuditLog>>,
}

impl<C: CommonSettings + Clone + Send + Sync + 'static> Daemon<C> {
    /// Install logging (first record: `starting` with version and commit),
    /// metrics and the config channel. `instance` is stamped on own events.
    pub fn init(program: &'static str, instance: &str, loaded: &Loaded<C>) -> Self {
        let broker = EventBroker::new(instance, 8192);
        let log = logging::init(loaded.cfg.log_level(), broker.layer());
        tracing::info!(
            program,
            version = build::VERSION,
            commit = build::COMMIT,
            pid = std::process::id(),
            "starting"
        );
        let mut registry = Registry::with_prefix(program);
        let metrics = Arc::new(CommonMetrics::register(&mut registry));
        metrics.config_loaded(&loaded.text);
        let (config_tx, config) = watch::channel(Arc::new(loaded.cfg.clone()));
        Daemon {
            program,
            broker,
            log,
            metrics,
            registry,
            shutdown: CancellationToken::new(),
            config,
            config_tx,
            serving: watch::channel(true).0,
            hangups: tokio::sync::broadcast::channel(4).0,
            audit: None,
        }
    }

    /// Install signal handlers and reload the configuration with `load` on
    /// every SIGHUP. An invalid file is refused (logged, metric set to 0) and
    /// the old configuration stays in effect; a valid one is published, its
    /// log level applied, and changes that need a restart are warned about.
    pub fn spawn_reloader(
        &self,
        load: impl Fn() -> Result<Loaded<C>, ConfigError> + Send + 'static,
    ) -> std::io::Result<()> {
        let mut hup = crate::signals::install(self.shutdown.clone())?;
        let tx = self.config_tx.clone();
        let log = self.log.clone();
        let metrics = self.metrics.clone();
        let shutdown = self.shutdown.clone();
        let hangups = self.hangups.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    got = hup.recv() => if got.is_none() { break },
                }
                // Whatever the configuration's fate, the TLS files are
                // read again (a rotation needs no configuration change).
                let _ = hangups.send(());
                match load() {
                    Ok(new) => {
                        let old = tx.borrow().clone();
                        for ((key, was), (_, now)) in
                            old.restart_keys().into_iter().zip(new.cfg.restart_keys())
                        {
                            if was != now {
                                tracing::warn!(key, was = %was, now = %now, "config-change-needs-restart");
                            }
                        }
                        log.set_level(new.cfg.log_level());
                        metrics.config_loaded(&new.text);
                        tx.send_replace(Arc::new(new.cfg));
                        tracing::info!("config-reloaded");
                    }
                    Err(e) => {
                        metrics.config_refused();
                        tracing::error!(error = %e, "config-reload-failed");
                    }
                }
            }
        });
        Ok(())
    }
}

impl<C: CommonSettings> Daemon<C> {
    /// Open the audit log under the state directory and install it as the
    /// log of this process's outgoing calls (`crate::audit::install`): a
    /// daemon that calls others before it serves (evpnr's start-up
    /// resyncs) opens it first, so those calls are recorded too. `tls`:
    /// the daemon's own identity on its records (`none` without).
    pub fn open_audit(
        &mut self,
        tls: Option<&crate::tls::Serving>,
    ) -> anyhow::Result<Arc<crate::audit::AuditLog>> {
        if let Some(a) = &self.audit {
            return Ok(a.clone());
        }
        let program = self.program;
        let (state_dir, audit_cfg) = {
            let c = self.config.borrow();
            (c.state_dir().to_path_buf(), c.audit().clone())
        };
        let own = tls
            .map(|t| t.tls.material().identity.to_string())
            .unwrap_or_else(|| "none".into());
        let audit =
            crate::audit::AuditLog::open(&state_dir, program, &own, audit_cfg, self.broker.clone())
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{program}.state-dir: cannot open the audit log in {}: {e}",
                        state_dir.join(crate::audit::DIR).display()
                    )
                })?;
        crate::audit::install(audit.clone());
        self.audit = Some(audit.clone());
        Ok(audit)
    }
}

/// How long a shutdown waits for gRPC connections to close.
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Serve `svc` (plus health and reflection) on `grpc_addr`, and `/metrics` on
/// `metrics_addr` (empty disables it), until SIGTERM/SIGINT. Streams end
/// cleanly on shutdown and the function returns `Ok(())`. With `tls`, the
/// gRPC listener (and `/metrics`, unless `tls.metrics: false`) accepts only
/// mutual-TLS peers (`evpn_tls`), and the TLS material (server and client
/// side) is read again on every SIGHUP. Every state-changing call is
/// recorded in the audit log under the state directory (`crate::audit`),
/// TLS or not.
pub async fn serve<C: CommonSettings, S>(
    mut daemon: Daemon<C>,
    grpc_addr: &str,
    metrics_addr: &str,
    service_name: &'static str,
    svc: S,
    tls: Option<crate::tls::Serving>,
) -> anyhow::Result<()>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    use tokio_stream::wrappers::TcpListenerStream;
    let program = daemon.program;
    // Subscribed before anything is announced as listening: a SIGHUP sent
    // as soon as `metrics-listening` is logged must reload the TLS files
    // (a broadcast sent before the subscription is lost to it).
    if let Some(t) = &tls {
        spawn_tls_reloader(
            t.tls.clone(),
            daemon.hangups.subscribe(),
            daemon.shutdown.clone(),
        );
    }
    let audit = daemon.open_audit(tls.as_ref())?;
    let grpc = crate::serve::bind(&format!("{program}.grpc-addr"), grpc_addr).await?;
    let grpc_local = grpc.local_addr()?;
    let metrics_task = if metrics_addr.is_empty() {
        None
    } else {
        let l = crate::serve::bind(&format!("{program}.metrics-addr"), metrics_addr).await?;
        let metrics_tls = tls
            .as_ref()
            .filter(|t| t.metrics_tls)
            .map(|t| t.tls.clone());
        tracing::info!(addr = %l.local_addr()?, tls = metrics_tls.is_some(), "metrics-listening");
        Some(crate::serve::spawn_metrics(
            l,
            Arc::new(daemon.registry),
            daemon.shutdown.clone(),
            metrics_tls,
        ))
    };
    let (reporter, health, refl_v1, refl_v1alpha) =
        crate::serve::health_and_reflection(&[service_name, ""]).await?;
    crate::serve::follow_serving(reporter, service_name, daemon.serving.subscribe());
    tracing::info!(addr = %grpc_local, "grpc-listening");
    let shutdown = daemon.shutdown.clone();
    // Small request/response RPCs: disable Nagle, or every answer waits for
    // the peer's delayed ACK (~40 ms).
    let (tls, authz, audit) = match tls {
        Some(t) => (
            Some(t.tls),
            Some(crate::authz::AuthzLayer::new(t.policy.clone())),
            crate::audit::layer::AuditLayer::new(audit, Some(t.policy)),
        ),
        None => (
            None,
            None,
            crate::audit::layer::AuditLayer::new(audit, None),
        ),
    };
    // Outside authorization, so the audit log sees its refusals too.
    let router = tonic::transport::Server::builder()
        .layer(crate::grpc_metrics::GrpcMetricsLayer::new(
            daemon.metrics.clone(),
        ))
        .layer(audit)
        .layer(tower::util::option_layer(authz))
        .add_service(health)
        .add_service(refl_v1)
        .add_service(refl_v1alpha)
        .add_service(svc);
    let stop = async move { shutdown.cancelled().await };
    let server: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>> = match tls {
        None => {
            let incoming = futures::StreamExt::map(TcpListenerStream::new(grpc), |s| {
                s.inspect(|s| {
                    let _ = s.set_nodelay(true);
                })
            });
            Box::pin(router.serve_with_incoming_shutdown(incoming, stop))
        }
        Some(tls) => {
            tracing::info!(identity = %tls.material().identity, "grpc-tls");
            let refused: evpn_tls::OnRefused = Arc::new(|peer, reason: &str| {
                tracing::warn!(peer = %peer, reason, "tls-refused");
            });
            Box::pin(router.serve_with_incoming_shutdown(tls.incoming(grpc, refused), stop))
        }
    };
    tokio::pin!(server);
    // Streams end on shutdown; a client that keeps an idle connection open
    // must not keep the process alive: drain for at most DRAIN_TIMEOUT.
    tokio::select! {
        r = &mut server => r?,
        _ = async {
            daemon.shutdown.cancelled().await;
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } => {
            tracing::warn!(timeout = ?DRAIN_TIMEOUT, "shutdown-drain-timeout");
        }
    }
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Read the TLS files again on every SIGHUP: new connections use the new
/// material, open ones keep theirs; broken files change nothing.
fn spawn_tls_reloader(
    tls: Arc<evpn_tls::ServerTls>,
    mut hangups: tokio::sync::broadcast::Receiver<()>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = hangups.recv() => if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r { return },
            }
            let client = crate::tls::reload_client();
            match (tls.reload(), client) {
                (Ok(id), None | Some(Ok(_))) => {
                    let m = tls.material();
                    let left = m
                        .not_after
                        .duration_since(std::time::SystemTime::now())
                        .unwrap_or_default();
                    tracing::info!(identity = %id, expires_in_days = left.as_secs() / 86400, "tls-reloaded");
                }
                (Err(e), _) | (_, Some(Err(e))) => {
                    tracing::error!(error = %e, "tls-reload-failed");
                }
            }
        }
    });
}

/// Run `fut` on a new multi-threaded runtime and turn its result into the
/// process exit code (errors are logged as `fatal` and printed to stderr).
pub fn block_on(
    program: &str,
    fut: impl std::future::Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{program}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "fatal");
            eprintln!("{program}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
