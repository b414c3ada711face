//! evpnr — the vpp-evpn fleet registry. See evpnr(8) and docs/.
use std::process::ExitCode;

use clap::Parser;
use evpn_daemon::runner;
use evpnr::config;

fn main() -> ExitCode {
    let args = config::Args::parse();
    match runner::preflight("evpnr", args.version, args.check, || config::load(&args)) {
        Ok(loaded) => runner::block_on("evpnr", evpnr::run(args, loaded)),
        Err(code) => code,
    }
}
