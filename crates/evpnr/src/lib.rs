//! evpnr, the vpp-evpn fleet registry, as a library: the binary
//! (`src/main.rs`) only parses its configuration and calls [`run`]. See
//! `ARCHITECTURE.md` (crates/evpnr) for the map of the modules.
pub mod client;
pub mod config;
pub mod convert;
pub mod failover_admin;
pub mod failover_driver;
pub mod group;
pub mod groups;
pub mod liveness;
pub mod members;
pub mod metrics;
pub mod model;
pub mod moves;
pub mod orchestrate;
pub mod plan;
pub mod registration;
pub mod registry;
pub mod rules;
pub mod service;
pub mod snapshot;
pub mod southbound;
pub mod store;
#[cfg(test)]
mod testsupport;
pub mod timeline;

use std::sync::Arc;

use evpn_api::v1::evpnr_server::EvpnrServer;
use evpn_daemon::runner;

/// Run the registry until shutdown.
pub async fn run(args: config::Args, loaded: runner::Loaded<config::Config>) -> anyhow::Result<()> {
    let cfg = loaded.cfg.clone();
    let mut daemon = runner::Daemon::init("evpnr", "", &loaded);
    for w in cfg.warnings() {
        tracing::warn!(warning = %w, "config-warning");
    }
    daemon.spawn_reloader(move || config::load(&args))?;
    // Before any member is dialled: the client side is installed here.
    let tls = evpn_daemon::tls::load(&cfg.tls, false)?;
    // Before any member is called (the start-up resyncs): every call evpnr
    // makes is recorded (docs/security.md, "Audit").
    daemon.open_audit(tls.as_ref())?;
    let store = store::Store::open(&cfg.state_dir).map_err(|e| {
        anyhow::anyhow!(
            "evpnr.state-dir: cannot use {}: {e}",
            cfg.state_dir.display()
        )
    })?;
    let state = store.load()?;
    let metrics = metrics::RegistryMetrics::register(&mut daemon.registry);
    let health = evpn_daemon::durable::StoreHealth::register(
        &mut daemon.registry,
        daemon.broker.clone(),
        daemon.serving.clone(),
    );
    let reg = Arc::new(registry::Registry::new(
        state,
        store,
        health,
        daemon.broker.clone(),
        metrics,
        daemon.config.clone(),
        daemon.shutdown.clone(),
        Arc::new(members::Grpc),
    ));
    // A new epoch for this run, so the evpnds can tell this registry from
    // an older one still running. Until it is on disk nothing is sent to a
    // member but reads: a failed save pauses orchestration (`store_ok`) and
    // `retry_store` finishes it when the disk takes writes again.
    let epoch = reg.mutate_mem(|s| {
        s.epoch += 1;
        s.epoch
    });
    match reg.persist().await {
        Ok(()) => tracing::info!(epoch, "registry-epoch"),
        Err(e) => tracing::error!(epoch, error = %e, "registry-epoch-not-saved"),
    }
    // Dial every persisted member; each resyncs once connected and ready.
    let members: Vec<(String, String)> = reg.read(|i| {
        i.state
            .members
            .values()
            .map(|m| (m.id.clone(), m.grpc_address.clone()))
            .collect()
    });
    let (n_members, n_groups) = (members.len(), reg.read(|i| i.state.groups.len()));
    for (id, addr) in members {
        if let Err(e) = reg.attach(&id, &addr, false) {
            tracing::error!(instance = id, error = %e, "instance-attach-failed");
        }
    }
    tracing::info!(
        path = %cfg.state_dir.display(),
        instances = n_members,
        groups = n_groups,
        "state-loaded"
    );
    reg.spawn_liveness();
    // Autonomous failover (docs/failover.md): decides on every trigger.
    let failover = failover_driver::Driver::new(reg.clone());
    failover.spawn();
    tokio::spawn(reg.clone().retry_store());
    let svc = service::EvpnrService {
        reg,
        metrics: daemon.metrics.clone(),
        shutdown: daemon.shutdown.clone(),
        failover,
    };
    runner::serve(
        daemon,
        &cfg.grpc_addr,
        &cfg.metrics_addr,
        evpn_api::EVPNR_SERVICE,
        EvpnrServer::new(svc).max_decoding_message_size(evpn_model::REQUEST_MAX_BYTES),
        tls,
    )
    .await
}
