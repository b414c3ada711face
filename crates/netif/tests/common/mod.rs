//! Run a test body in a private network namespace.
//!
//! A dedicated thread unshares its network namespace, brings `lo` up and runs the body on a
//! current-thread tokio runtime. Sockets opened there live in the new namespace. When the
//! thread ends (also by panic: the runtime and sockets are dropped while unwinding), the
//! namespace and every device in it disappear. The panic is then re-raised in the test thread.

#![allow(dead_code)]

use std::future::Future;
use std::process::Command;

use netif::Netlink;

pub fn in_netns<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let h = std::thread::spawn(move || -> anyhow::Result<()> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| anyhow::anyhow!("unshare(CLONE_NEWNET) needs root: {e}"))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let nl = Netlink::connect()?;
            nl.set_up("lo", true).await?;
            body().await
        })
    });
    match h.join() {
        Ok(r) => r.unwrap(),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Run `ip`/`bridge` for cross-checking (tests only; the library never does this).
/// Runs in the calling thread's namespace: `Command` forks from this thread.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
