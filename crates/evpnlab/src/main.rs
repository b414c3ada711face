//! evpnlab — run evpnr and N evpnd instances on simulated VPPs (vppsim)
//! and BIRD (real BIRD 2.20 when installed, otherwise birdsim), without
//! root, in one command. Ctrl-C stops and removes everything.
mod lab;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = lab::Args::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("evpnlab: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(lab::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("evpnlab: {e:#}");
            ExitCode::FAILURE
        }
    }
}
