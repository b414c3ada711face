//! evpnr — the vpp-evpn fleet registry. See evpnr(8) and docs/.
mod config;
mod service;

use std::process::ExitCode;

use clap::Parser;
use evpn_api::v1::evpnr_server::EvpnrServer;
use evpn_daemon::runner;

fn main() -> ExitCode {
    let args = config::Args::parse();
    match runner::preflight("evpnr", args.version, args.check, || config::load(&args)) {
        Ok(loaded) => runner::block_on("evpnr", run(args, loaded)),
        Err(code) => code,
    }
}

async fn run(args: config::Args, loaded: runner::Loaded<config::Config>) -> anyhow::Result<()> {
    let cfg = loaded.cfg.clone();
    let daemon = runner::Daemon::init("evpnr", "", &loaded);
    daemon.spawn_reloader(move || config::load(&args))?;
    let svc = service::EvpnrService {
        broker: daemon.broker.clone(),
        metrics: daemon.metrics.clone(),
        shutdown: daemon.shutdown.clone(),
    };
    runner::serve(
        daemon,
        &cfg.grpc_addr,
        &cfg.metrics_addr,
        evpn_api::EVPNR_SERVICE,
        EvpnrServer::new(svc),
    )
    .await
}
