//! evpnd — the vpp-evpn per-host daemon. See evpnd(8) and docs/.
use std::process::ExitCode;

use clap::Parser;
use evpn_daemon::runner;
use evpnd::config;

fn main() -> ExitCode {
    let args = config::Args::parse();
    match runner::preflight("evpnd", args.version, args.check, || config::load(&args)) {
        Ok(loaded) => runner::block_on("evpnd", evpnd::run(args, loaded)),
        Err(code) => code,
    }
}
