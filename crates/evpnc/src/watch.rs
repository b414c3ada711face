//! `watch events`: stream evpnr's merged event stream as compact lines
//! (or one proto-JSON object per line) until a key press, Ctrl-C, `num`
//! events, or the end of the stream.
//!
//! Key presses are read with the terminal in cbreak mode (no line
//! buffering, no echo, but signals still work — not raw mode), and the
//! terminal is restored on every exit path.
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use evpn_api::v1;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};
use tokio::sync::oneshot;

use crate::commands::{CliError, Ctx, json};
use crate::parse::Args;
use crate::render;

/// The request for the captured `watch events` options.
pub fn request(a: &Args) -> v1::WatchEventsRequest {
    v1::WatchEventsRequest {
        types: a.all("type"),
        min_level: a.get("level").unwrap_or_default().to_string(),
        instances: a.all("instance"),
        registrar: false,
        snapshot: a.has("snapshot"),
    }
}

/// Puts stdin in cbreak mode and restores it on drop.
struct Cbreak {
    saved: Termios,
}

impl Cbreak {
    fn enter() -> Option<Cbreak> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut t = saved.clone();
        t.local_flags.remove(LocalFlags::ICANON | LocalFlags::ECHO);
        t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &t).ok()?;
        Some(Cbreak { saved })
    }
}

impl Drop for Cbreak {
    fn drop(&mut self) {
        let stdin = std::io::stdin();
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Watches stdin for one key press on a thread; `stop` ends the thread.
fn key_watcher(stop: Arc<AtomicBool>) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        while !stop.load(Ordering::Relaxed) {
            let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(n) if n > 0 => {
                    let mut b = [0u8; 1];
                    let _ = nix::unistd::read(stdin.as_fd(), &mut b);
                    let _ = tx.send(());
                    return;
                }
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    });
    rx
}

/// Resolves when a key was pressed; never without a key watcher.
async fn pressed(key: &mut Option<oneshot::Receiver<()>>) {
    if let Some(k) = key.as_mut() {
        if k.await.is_ok() {
            return;
        }
        // The watcher gave up (stdin closed): only Ctrl-C stops now.
        *key = None;
    }
    std::future::pending().await
}

/// Run `watch events …`.
pub async fn watch(ctx: &Ctx, a: &Args) -> Result<(), CliError> {
    let limit: Option<u64> = a.get("num").and_then(|n| n.parse().ok());
    let mut c = ctx.client.clone();
    // Only the call that opens the stream has a deadline.
    let mut req = tonic::Request::new(request(a));
    req.set_timeout(ctx.timeout);
    let mut stream = c
        .watch_events(req)
        .await
        .map_err(|s| ctx.rpc_err(s))?
        .into_inner();
    let stop = Arc::new(AtomicBool::new(false));
    // No terminal: never stop on "a key" (stdin may be /dev/null).
    let (_cbreak, mut key) = if ctx.tty {
        (Cbreak::enter(), Some(key_watcher(stop.clone())))
    } else {
        (None, None)
    };
    if ctx.tty && !ctx.json {
        eprintln!(
            "{}",
            ctx.paint
                .label("watching events; press any key or Ctrl-C to stop")
        );
    }
    let mut n = 0u64;
    let result = loop {
        if limit.is_some_and(|l| n >= l) {
            break Ok(());
        }
        tokio::select! {
            m = stream.message() => match m {
                Ok(Some(ev)) => {
                    n += 1;
                    let line = if ctx.json {
                        json(&ev)?
                    } else {
                        render::event_line(&ev, ctx.paint)
                    };
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
                Ok(None) => break Ok(()),
                Err(s) => break Err(ctx.rpc_err(s)),
            },
            () = pressed(&mut key) => break Ok(()),
            _ = tokio::signal::ctrl_c() => break Ok(()),
        }
    };
    stop.store(true, Ordering::Relaxed);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;
    use crate::tree::build;

    #[test]
    fn options_become_the_request() {
        let c = parse(
            &build(),
            "watch events type crud type failover level warn instance r1 snapshot",
        )
        .unwrap()
        .unwrap();
        let r = request(&c.args);
        assert_eq!(r.types, ["crud", "failover"]);
        assert_eq!(r.min_level, "warn");
        assert_eq!(r.instances, ["r1"]);
        assert!(r.snapshot);
        assert!(!r.registrar);
        let c = parse(&build(), "watch events").unwrap().unwrap();
        assert_eq!(request(&c.args), v1::WatchEventsRequest::default());
    }
}
