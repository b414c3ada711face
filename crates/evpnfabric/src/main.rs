//! evpnfabric — run the real-fabric lab (needs root). See docs/fabric.md.
use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use evpnfabric::{FabricOpts, Gateway, Mode, RunOpts};

/// Real BIRD 2.20 EVPN fabric in network namespaces with evpnd on the Linux
/// dataplane and a host probing the gateway every 1 ms.
#[derive(Debug, Parser)]
#[command(name = "evpnfabric", version)]
struct Args {
    /// Number of routers (the last is the leaf with the host).
    #[arg(long, default_value_t = 3)]
    routers: usize,
    /// iBGP through r1 as route reflector instead of a full mesh.
    #[arg(long)]
    route_reflector: bool,
    /// evpnd binary (default: next to this program).
    #[arg(long, env = "EVPND_BIN")]
    evpnd: Option<PathBuf>,
    /// BIRD 2.20 binary.
    #[arg(long, env = "BIRD220_BIN", default_value = "/usr/local/bin/bird-2.20")]
    bird: PathBuf,
    /// Run evpnr (in the underlay namespace) and register the candidates'
    /// evpnds with it; the demo then goes through evpnr.
    #[arg(long)]
    registry: bool,
    /// evpnr binary (default: next to this program).
    #[arg(long, env = "EVPNR_BIN")]
    evpnr: Option<PathBuf>,
    /// Keep the scratch directory with every log.
    #[arg(long)]
    keep: bool,
    /// Put the evpnds' and evpnr's state directories under this directory (e.g.
    /// /dev/shm to measure without the state store's fsync).
    #[arg(long)]
    state_base: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Play the demo of `docs/design.md`, checking every step.
    Demo {
        /// Number of moves.
        #[arg(long, default_value_t = 4)]
        moves: usize,
    },
    /// The move benchmark (evidence-based wait vs a fixed settle).
    Bench {
        /// Moves per variant.
        #[arg(long, default_value_t = 20)]
        moves: usize,
        /// The fixed settle time in ms.
        #[arg(long, default_value_t = 200)]
        fixed_ms: u64,
    },
    /// Build the fabric with the gateway on r1 and keep it up.
    Up {
        /// Seconds to keep it up.
        #[arg(long, default_value_t = 600)]
        seconds: u64,
    },
}

fn main() -> ExitCode {
    let a = Args::parse();
    // Ctrl-C / SIGTERM must not leave namespaces or processes behind.
    if let Err(e) = evpnfabric::netns::cleanup_on_signals() {
        eprintln!("evpnfabric: {e:#}");
        return ExitCode::FAILURE;
    }
    let mut fabric = FabricOpts::new(&format!("ef{}", std::process::id()));
    fabric.routers = a.routers;
    fabric.route_reflector = a.route_reflector;
    if let Some(p) = a.evpnd {
        fabric.evpnd_bin = p;
    }
    fabric.bird_bin = a.bird;
    if a.registry {
        fabric.evpnr_bin = Some(
            a.evpnr
                .unwrap_or_else(|| evpnfabric::fabric::bin_path("evpnr", "EVPNR_BIN")),
        );
        fabric.register = true;
    }
    fabric.keep_dir = a.keep;
    fabric.state_base = a.state_base;
    let mode = match a.cmd {
        Cmd::Demo { moves } => Mode::Demo { moves },
        Cmd::Bench { moves, fixed_ms } => Mode::Bench {
            moves,
            fixed: Duration::from_millis(fixed_ms),
        },
        Cmd::Up { seconds } => Mode::Up {
            hold: Duration::from_secs(seconds),
        },
    };
    match evpnfabric::run(RunOpts {
        fabric,
        gateway: Gateway::default(),
        mode,
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("evpnfabric: {e:#}");
            ExitCode::FAILURE
        }
    }
}
