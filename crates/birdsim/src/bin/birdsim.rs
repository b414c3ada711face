//! birdsim — a stand-in for BIRD's control socket (see the crate docs).
use clap::Parser;

/// A stand-in for BIRD's control socket, for the simulated vpp-evpn lab.
///
/// It parses the configuration subset that evpnd writes (protocol blocks,
/// tables, includes), answers show/configure/enable/disable on the control
/// socket like BIRD does, and runs no routing protocol. Use real BIRD
/// wherever it is available.
#[derive(Parser)]
#[command(name = "birdsim", version)]
struct Args {
    /// Main configuration file (like `bird -c`).
    #[arg(short = 'c', long = "config")]
    config: std::path::PathBuf,
    /// Control socket (like `bird -s`).
    #[arg(short = 's', long = "socket")]
    socket: std::path::PathBuf,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let h = birdsim::BirdSim::start(&a.config, &a.socket).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    h.shutdown();
    Ok(())
}
