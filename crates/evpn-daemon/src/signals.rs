//! Signal handling: SIGTERM and SIGINT cancel the shutdown token (streams end,
//! servers drain, exit 0); SIGHUP asks for a configuration reload.
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;

/// Install the handlers. Returns a receiver that yields once per SIGHUP.
pub fn install(shutdown: CancellationToken) -> std::io::Result<mpsc::Receiver<()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!(signal = "SIGTERM", "shutdown-requested"); shutdown.cancel(); break; }
                _ = int.recv() => { tracing::info!(signal = "SIGINT", "shutdown-requested"); shutdown.cancel(); break; }
                _ = hup.recv() => { let _ = tx.try_send(()); }
                _ = shutdown.cancelled() => break,
            }
        }
    });
    Ok(rx)
}
