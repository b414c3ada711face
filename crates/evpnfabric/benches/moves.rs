//! The move benchmark on the real fabric (needs root, BIRD 2.20 and a
//! release evpnd): `cargo build --release -p evpnd && cargo bench -p
//! evpnfabric --bench moves` (`MOVES=n` changes the 20 moves per variant;
//! `REGISTRY=1` also needs `-p evpnr` built and measures MoveGroupBVI
//! through evpnr instead). Prints one line per move and a p50/p99/max table:
//! lost probes, longest reply gap, and the time until the leaf's FDB points
//! at the new primary, for the evidence-based wait and a fixed 200 ms
//! settle.
use std::time::Duration;

use evpnfabric::{FabricOpts, Gateway, Mode, RunOpts};

fn main() {
    if !evpnfabric::is_root() {
        eprintln!("moves bench: skipped, needs root");
        return;
    }
    if let Err(e) = evpnfabric::netns::cleanup_on_signals() {
        eprintln!("moves bench: {e:#}");
        std::process::exit(1);
    }
    let moves = std::env::var("MOVES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut fabric = FabricOpts::new(&format!("efb{}", std::process::id()));
    if std::env::var_os("REGISTRY").is_some() {
        fabric.evpnr_bin = Some(evpnfabric::fabric::bin_path("evpnr", "EVPNR_BIN"));
        fabric.register = true;
    }
    eprintln!(
        "moves bench: evpnd {}{}",
        fabric.evpnd_bin.display(),
        fabric
            .evpnr_bin
            .as_ref()
            .map(|p| format!(", evpnr {}", p.display()))
            .unwrap_or_default()
    );
    let r = evpnfabric::run(RunOpts {
        fabric,
        gateway: Gateway::default(),
        mode: Mode::Bench {
            moves,
            fixed: Duration::from_millis(200),
        },
    });
    if let Err(e) = r {
        eprintln!("moves bench failed: {e:#}");
        std::process::exit(1);
    }
}
