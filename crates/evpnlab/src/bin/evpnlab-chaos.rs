//! evpnlab-chaos — the seeded chaos run (see docs/chaos.md): random
//! operations through evpnr while evpnd/evpnr are killed and the simulated
//! VPPs and BIRDs misbehave; fails (exit 1) on any invariant violation and
//! prints the seed to replay it.
use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use evpnlab::chaos;

#[derive(Debug, Parser)]
#[command(
    name = "evpnlab-chaos",
    version,
    about = "Seeded chaos run against evpnr and N evpnd instances on simulated VPPs and BIRDs"
)]
struct Args {
    /// Seed; the same seed replays the same operations and faults.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of operations.
    #[arg(long, default_value_t = 300)]
    ops: usize,
    /// Number of evpnd instances.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(2..=64))]
    instances: u16,
    /// Number of groups the operations draw from.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=50))]
    groups: u16,
    /// Probability of a fault before each operation.
    #[arg(long, default_value_t = 0.25)]
    fault_rate: f64,
    /// Probability of a kill -9 (evpnd or evpnr) while an operation runs.
    #[arg(long, default_value_t = 0.06)]
    kill_rate: f64,
    /// Probability of an attempt that must be refused (wrong identity,
    /// epoch-less call to an evpnd, invalid operator input) before each
    /// operation.
    #[arg(long, default_value_t = 0.08)]
    adversary_rate: f64,
    /// Probability that the caller of an operation gives up after 2-60 ms
    /// (and retries it).
    #[arg(long, default_value_t = 0.04)]
    cancel_rate: f64,
    /// Seconds the fleet may take to converge after the faults stop.
    #[arg(long, default_value_t = 30)]
    converge_timeout: u64,
    /// Milliseconds a route stays visible to the other hosts of the
    /// simulated fabric after it was withdrawn (BGP/BFD); above
    /// evpnr's `move.max-wait` (200 ms) a move binds before the old route is
    /// gone, which invariant 5 reports.
    #[arg(long, default_value_t = 5)]
    withdraw_delay_ms: u64,
    /// Autonomous failover: groups set to `auto` by the seed, failover
    /// settings (policies, priorities, drains, suspend/resume) and health
    /// faults (a failing check command) between operations, evpnd health
    /// checks and evpnr liveness on short timers.
    #[arg(long)]
    failover: bool,
    /// With --failover: probability of a failover setting or health fault
    /// before each operation.
    #[arg(long, default_value_t = 0.15)]
    failover_rate: f64,
    /// Directory with evpnd and evpnr; default: this binary's own.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Keep the working directory (logs, VPP journals, state files).
    #[arg(long)]
    keep: bool,
    /// Mutual TLS everywhere: a development CA in the working directory's
    /// pki/, certificates for evpnr, every evpnd and the driver (an admin
    /// user); the adversary then calls with the certificates that get it
    /// furthest (docs/chaos.md).
    #[arg(long)]
    tls: bool,
    /// Print every step as it happens (otherwise only on failure).
    #[arg(long, short)]
    verbose: bool,
}

fn main() -> ExitCode {
    let a = Args::parse();
    if [
        a.fault_rate,
        a.kill_rate,
        a.adversary_rate,
        a.cancel_rate,
        a.failover_rate,
    ]
    .iter()
    .any(|p| !(0.0..=1.0).contains(p))
    {
        eprintln!(
            "evpnlab-chaos: --fault-rate, --kill-rate, --adversary-rate, --cancel-rate and --failover-rate are probabilities (0..1)"
        );
        return ExitCode::from(2);
    }
    let bin_dir = match a
        .bin_dir
        .clone()
        .map_or_else(chaos::fleet::default_bin_dir, Ok)
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("evpnlab-chaos: {e:#}");
            return ExitCode::from(2);
        }
    };
    let cfg = chaos::Config {
        seed: a.seed,
        ops: a.ops,
        instances: usize::from(a.instances),
        groups: usize::from(a.groups),
        fault_rate: a.fault_rate,
        kill_rate: a.kill_rate,
        adversary_rate: a.adversary_rate,
        cancel_rate: a.cancel_rate,
        converge_timeout: Duration::from_secs(a.converge_timeout),
        withdraw_delay: Duration::from_millis(a.withdraw_delay_ms),
        failover: a.failover,
        failover_rate: a.failover_rate,
        bin_dir,
        keep_dir: a.keep,
        verbose: a.verbose,
        tls: a.tls,
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("evpnlab-chaos: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(chaos::run(cfg)) {
        Ok(r) => {
            if !r.passed() && !a.verbose {
                for l in &r.log {
                    println!("{l}");
                }
            }
            print!("{}", r.summary());
            if r.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("evpnlab-chaos: harness error (seed {}): {e:#}", a.seed);
            ExitCode::from(2)
        }
    }
}
