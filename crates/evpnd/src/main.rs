//! evpnd — the vpp-evpn per-host daemon. See evpnd(8) and docs/.
mod bird;
mod bvi;
mod config;
mod convert;
mod dataplane;
mod epoch;
mod manager;
mod metrics;
mod reconcile;
mod registrar;
mod service;
mod state;

use std::{
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
};

use clap::Parser;
use evpn_api::v1::evpnd_server::EvpndServer;
use evpn_daemon::runner;

fn main() -> ExitCode {
    let args = config::Args::parse();
    match runner::preflight("evpnd", args.version, args.check, || config::load(&args)) {
        Ok(loaded) => runner::block_on("evpnd", run(args, loaded)),
        Err(code) => code,
    }
}

async fn run(args: config::Args, loaded: runner::Loaded<config::Config>) -> anyhow::Result<()> {
    let cfg = Arc::new(loaded.cfg.clone());
    let mut daemon = runner::Daemon::init("evpnd", &cfg.instance_id, &loaded);
    for w in cfg.warnings() {
        tracing::warn!(warning = %w, "config-warning");
    }
    daemon.spawn_reloader(move || config::load(&args))?;
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
    )
    .await;
    if let Err(e) = persister.flush() {
        tracing::error!(error = %e, "state-save-failed");
    }
    r
}
