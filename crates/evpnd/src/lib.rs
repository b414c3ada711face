//! evpnd — the vpp-evpn per-host daemon, as a library: the binary
//! (`main.rs`) parses the configuration and calls [`run`]; tests use the
//! core (the BVI planner, the manager, the dataplanes) without a process.
//! See evpnd(8), docs/ and ARCHITECTURE.md.
pub mod bird;
pub mod bvi;
pub mod config;
pub mod convert;
pub mod dataplane;
pub mod epoch;
pub mod health;
pub mod health_run;
pub mod manager;
pub mod metrics;
pub mod reconcile;
pub mod registrar;
pub mod service;
pub mod state;
pub mod timing;
pub mod witness;
pub mod witness_view;

use std::sync::{Arc, atomic::AtomicBool};

use evpn_api::v1::evpnd_server::EvpndServer;
use evpn_daemon::runner;

/// Run the daemon with a loaded configuration until it is shut down.
pub async fn run(args: config::Args, loaded: runner::Loaded<config::Config>) -> anyhow::Result<()> {
    let cfg = Arc::new(loaded.cfg.clone());
    let mut daemon = runner::Daemon::init("evpnd", &cfg.instance_id, &loaded);
    for w in cfg.warnings() {
        tracing::warn!(warning = %w, "config-warning");
    }
    daemon.spawn_reloader(move || config::load(&args))?;
    // Before anything dials evpnr: the client side is installed here.
    let tls = evpn_daemon::tls::load(&cfg.tls, !cfg.registry.is_empty())?;
    let metrics = metrics::EvpndMetrics::register(&mut daemon.registry);
    let dp: Arc<dyn dataplane::Dataplane> = match cfg.dataplane {
        config::Dataplane::Vpp => dataplane::vpp::VppDataplane::new(
            &cfg.vpp.api_socket,
            cfg.vpp.timeout.0,
            cfg.vpp.linux_cp,
            metrics.clone(),
        ),
        config::Dataplane::Linux => dataplane::linux::LinuxDataplane::new()?,
    };
    let bird = Arc::new(bird::Bird::new(&cfg.bird, metrics.clone())?);
    let health = evpn_daemon::durable::StoreHealth::register(
        &mut daemon.registry,
        daemon.broker.clone(),
        daemon.serving.clone(),
    );
    let mgr = manager::Manager::new(
        cfg.clone(),
        dp,
        bird,
        daemon.broker.clone(),
        metrics,
        health,
    )?;
    {
        let mgr = mgr.clone();
        let shutdown = daemon.shutdown.clone();
        let interval = cfg.reconcile_interval.0;
        tokio::spawn(async move { reconcile::run(&mgr, interval, shutdown).await });
    }
    health_run::spawn(mgr.clone(), daemon.shutdown.clone());
    let persister = mgr.persister();
    tokio::spawn(persister.clone().run());
    let registered = Arc::new(AtomicBool::new(false));
    let epoch = epoch::EpochGuard::open(&cfg.state_dir, &cfg.instance_id, &cfg.registry)?;
    tokio::spawn(registrar::run(
        mgr.clone(),
        epoch.clone(),
        registered.clone(),
        daemon.shutdown.clone(),
    ));
    let svc = service::EvpndService {
        cfg: cfg.clone(),
        mgr,
        epoch,
        registered,
        started_at: std::time::SystemTime::now(),
        broker: daemon.broker.clone(),
        metrics: daemon.metrics.clone(),
        shutdown: daemon.shutdown.clone(),
    };
    let r = runner::serve(
        daemon,
        &cfg.grpc_addr,
        &cfg.metrics_addr,
        evpn_api::EVPND_SERVICE,
        EvpndServer::new(svc).max_decoding_message_size(evpn_model::REQUEST_MAX_BYTES),
        tls,
    )
    .await;
    if let Err(e) = persister.flush() {
        tracing::error!(error = %e, "state-save-failed");
    }
    r
}
