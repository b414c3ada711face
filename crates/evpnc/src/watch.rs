//! `watch events`: stream evpnr's merged event stream as compact lines
//! (or one proto-JSON object per line) until a key press, Ctrl-C, `num`
//! events, or the end of the stream.
//!
//! Key presses are read with the terminal in cbreak mode (no line
//! buffering, no echo, but signals still work — not raw mode), and the
//! terminal is restored on every exit path.
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use evpn_api::v1;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};
use tokio::sync::oneshot;

use crate::ctx::{CliError, Ctx, json};
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

/// Watches stdin for one key press on a thread. Dropping it wakes the
/// thread through a pipe and joins it, so once a watch is over nothing
/// reads stdin behind the shell's back.
struct KeyWatcher {
    wake: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KeyWatcher {
    fn start() -> Option<(KeyWatcher, oneshot::Receiver<()>)> {
        let (wake_r, wake_w) = nix::unistd::pipe().ok()?;
        let (tx, rx) = oneshot::channel();
        let thread = std::thread::spawn(move || {
            let stdin = std::io::stdin();
            loop {
                let mut fds = [
                    PollFd::new(stdin.as_fd(), PollFlags::POLLIN),
                    PollFd::new(wake_r.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {
                        let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                        if ready(&fds[1]) {
                            return;
                        }
                        if ready(&fds[0]) {
                            let mut b = [0u8; 1];
                            let _ = nix::unistd::read(stdin.as_fd(), &mut b);
                            let _ = tx.send(());
                            return;
                        }
                    }
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return,
                }
            }
        });
        Some((
            KeyWatcher {
                wake: Some(wake_w),
                thread: Some(thread),
            },
            rx,
        ))
    }
}

impl Drop for KeyWatcher {
    fn drop(&mut self) {
        if let Some(w) = self.wake.take() {
            let _ = nix::unistd::write(&w, b"x");
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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
    // No terminal: never stop on "a key" (stdin may be /dev/null). Drop
    // order: the watcher (joined) before the terminal mode is restored.
    let cbreak = if ctx.tty { Cbreak::enter() } else { None };
    let (watcher, mut key) = match ctx.tty.then(KeyWatcher::start).flatten() {
        Some((w, k)) => (Some(w), Some(k)),
        None => (None, None),
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
    drop(watcher);
    drop(cbreak);
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
            "watch events type crud type failover type audit level warn instance r1 snapshot",
        )
        .unwrap()
        .unwrap();
        let r = request(&c.args);
        assert_eq!(r.types, ["crud", "failover", "audit"]);
        assert_eq!(r.min_level, "warn");
        assert_eq!(r.instances, ["r1"]);
        assert!(r.snapshot);
        assert!(!r.registrar);
        let c = parse(&build(), "watch events").unwrap().unwrap();
        assert_eq!(request(&c.args), v1::WatchEventsRequest::default());
    }
}
