//! evpnd — the vpp-evpn per-host daemon. See evpnd(8) and docs/.
mod config;
mod service;

use std::{process::ExitCode, sync::Arc};

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
    let daemon = runner::Daemon::init("evpnd", &cfg.instance_id, &loaded);
    daemon.spawn_reloader(move || config::load(&args))?;
    let svc = service::EvpndService {
        cfg: cfg.clone(),
        started_at: std::time::SystemTime::now(),
        broker: daemon.broker.clone(),
        metrics: daemon.metrics.clone(),
        shutdown: daemon.shutdown.clone(),
    };
    runner::serve(
        daemon,
        &cfg.grpc_addr,
        &cfg.metrics_addr,
        evpn_api::EVPND_SERVICE,
        EvpndServer::new(svc),
    )
    .await
}
