//! evpnlab — run evpnr and N evpnd instances on simulated VPPs (vppsim)
//! and BIRD (real BIRD 2.20 when installed, otherwise birdsim), without
//! root, in one command. Ctrl-C stops and removes everything.
//!
//! `evpnlab fabric …` runs the real-fabric lab instead (network namespaces,
//! BIRD 2.20 EVPN, the Linux dataplane; needs root): it executes the
//! `evpnfabric` binary next to this one with the remaining arguments.
//! `evpnlab chaos …` likewise runs `evpnlab-chaos`.
use evpnlab::lab;

use std::os::unix::process::CommandExt;

use std::process::ExitCode;

use clap::Parser;

/// `evpnlab fabric|chaos <args>`: replace this process with the sibling tool.
fn delegate() -> Option<ExitCode> {
    let mut argv = std::env::args_os().skip(1);
    let tool = match argv.next()?.to_str()? {
        "fabric" => "evpnfabric",
        "chaos" => "evpnlab-chaos",
        _ => return None,
    };
    let bin = std::env::current_exe().ok()?.with_file_name(tool);
    // The tool inherits this thread's signal mask: make sure it can be stopped and reloaded.
    if let Err(e) = evpn_testkit::child::unblock_stop_and_reload_signals() {
        eprintln!("evpnlab: {e}");
    }
    let err = std::process::Command::new(&bin).args(argv).exec();
    eprintln!(
        "evpnlab: cannot run {}: {err} (build the workspace first: scripts/lab.sh does)",
        bin.display()
    );
    Some(ExitCode::FAILURE)
}

fn main() -> ExitCode {
    if let Some(code) = delegate() {
        return code;
    }
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
