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
    /// Run evpnr (in the management namespace) and register the candidates'
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
    /// BFD on the iBGP sessions: `off`, or `<interval ms>x<multiplier>`
    /// (10x3, 20x5, 5x3, …).
    #[arg(long, global = true, default_value = "off")]
    bfd: String,
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
    /// The failover bench (long; not a CI step): the scenarios for
    /// our failover (through evpnr) and keepalived, side by side.
    FailoverBench {
        /// keepalived, evpn or both.
        #[arg(long = "impl", default_value = "both")]
        imp: String,
        /// Scenario numbers (1 2 3 4 5 7); repeat or comma-separate; all
        /// when absent.
        #[arg(long, value_delimiter = ',')]
        scenario: Vec<u8>,
        /// Trials per scenario and implementation.
        #[arg(long, default_value_t = 20)]
        trials: usize,
        /// Measured window after the trigger, ms.
        #[arg(long, default_value_t = 1000)]
        window_ms: u64,
        /// keepalived's advert_int in seconds (0.01 … 2.55, centiseconds).
        #[arg(long, default_value = "0.01")]
        advert_int: String,
        /// Our group's failover: auto (evpnr moves the gateway on its own)
        /// or manual (nothing moves it but the planned move: the baseline).
        #[arg(long, default_value = "auto", value_parser = ["auto", "manual"])]
        evpn_failover: String,
        /// Our evpnr's `move.takeover-min-settle` in ms (0 … 10000); by
        /// default one and a half BFD intervals (15 at 10 ms × 3), 100
        /// without BFD.
        #[arg(long, value_parser = clap::value_parser!(u64).range(0..=10_000))]
        takeover_min_settle_ms: Option<u64>,
        /// Our evpnr's `failover.release-wait` in ms (1 … 10000): how long
        /// a takeover waits for the old primary's release (rule F14);
        /// default 10.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        release_wait_ms: Option<u64>,
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
    if a.bfd != "off" {
        match a.bfd.parse() {
            Ok(b) => fabric.bfd = Some(b),
            Err(e) => {
                eprintln!("evpnfabric: --{e}");
                return ExitCode::FAILURE;
            }
        }
    }
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
        Cmd::FailoverBench {
            imp,
            scenario,
            trials,
            window_ms,
            advert_int,
            evpn_failover,
            takeover_min_settle_ms,
            release_wait_ms,
        } => {
            let impls = match evpnfabric::failover::parse_impls(&imp) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("evpnfabric: --{e}");
                    return ExitCode::FAILURE;
                }
            };
            let scenarios = if scenario.is_empty() {
                evpnfabric::failover::Scenario::ALL.to_vec()
            } else {
                match scenario
                    .into_iter()
                    .map(evpnfabric::failover::Scenario::from_number)
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("evpnfabric: --{e}");
                        return ExitCode::FAILURE;
                    }
                }
            };
            let advert_cs = match evpnfabric::vrrp::parse_advert_int(&advert_int) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("evpnfabric: --{e}");
                    return ExitCode::FAILURE;
                }
            };
            if impls.contains(&evpnfabric::failover::Impl::Evpn) {
                evpnfabric::failover::evpn::configure(
                    &mut fabric,
                    evpnfabric::failover::evpn::HEALTH_INTERVAL_MS,
                    takeover_min_settle_ms,
                    release_wait_ms,
                );
            }
            fabric.keepalived = impls.contains(&evpnfabric::failover::Impl::Keepalived);
            Mode::FailoverBench(evpnfabric::failover::BenchOpts {
                impls,
                scenarios,
                trials,
                window: Duration::from_millis(window_ms),
                advert_cs,
                evpn_auto: evpn_failover == "auto",
            })
        }
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
