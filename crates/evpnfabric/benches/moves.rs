//! The move benchmark on the real fabric (needs root, BIRD 2.20 and a
//! release evpnd): `cargo build --release -p evpnd && cargo bench -p
//! evpnfabric --bench moves` (`MOVES=n` changes the 20 moves per variant,
//! `TIMELINES=n` the five timelines printed;
//! `REGISTRY=1` also needs `-p evpnr` built and measures MoveGroupBVI
//! through evpnr instead). Prints one line per move and a p50/p99/max table:
//! lost probes, longest reply gap, and the time until the leaf's FDB points
//! at the new primary, for the evidence-based wait and a fixed 200 ms
//! settle. Also printed: the load average before and after, where the state
//! directories are (and on what file system), p50/p90/p99/max of the gap and
//! the timelines of the five moves with the longest gap (issue 16).
//!
//! The state directories (every evpnd's and evpnr's) go under
//! `target/fabric-state` of the workspace, on the disk the build uses, so
//! the state stores' fsyncs are measured as in production even where `/tmp`
//! is a tmpfs; `STATE_BASE=<dir>` puts them elsewhere.
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
    let base = std::env::var_os("STATE_BASE").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fabric-state"),
        std::path::PathBuf::from,
    );
    if let Err(e) = std::fs::create_dir_all(&base) {
        eprintln!("moves bench: state base {}: {e}", base.display());
        std::process::exit(1);
    }
    fabric.state_base = Some(base);
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
