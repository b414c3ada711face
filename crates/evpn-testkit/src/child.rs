//! Child processes start with SIGINT, SIGTERM and SIGHUP deliverable.
//!
//! A child inherits the signal mask of the *thread* that spawns it (across `fork`/`posix_spawn`
//! and `exec`), and neither `std::process::Command` nor `tokio::process::Command` resets it.
//! So a lab or test that blocks those signals (as `evpnfabric` once did for its signal thread),
//! or was itself started with them blocked, starts daemons and BIRD that never see SIGTERM or
//! SIGHUP: "graceful" stops fall back to SIGKILL and reloads never happen (issue 13 item 18).
//!
//! Every child the project's labs, tests and chaos runs start goes through [`CleanSpawn`], which
//! unblocks the three signals on the spawning thread right before the spawn. Why this way:
//! * setting the child's mask between `fork` and `exec` needs `CommandExt::pre_exec`, which is
//!   `unsafe` (not allowed here); `posix_spawn` with `POSIX_SPAWN_SETSIGMASK` would mean
//!   replacing `std`'s and tokio's `Child` (waiting, pipes, `kill_on_drop`) with our own;
//! * the mask is per thread, so unblocking on the calling thread changes nothing for other
//!   threads and is not racy; it is not re-blocked afterwards, because no program of the
//!   project relies on these signals being blocked (they all use handlers: `tokio::signal`,
//!   and `evpnfabric`'s clean-up thread, see `evpnfabric::netns::cleanup_on_signals`), so the
//!   only effect is that an inherited block no longer hides them from our own process either.
//!
//! Dispositions: handlers are reset to the default by `exec`; an *ignored* disposition would
//! survive it, but every program we start (evpnd, evpnr, vppsim, BIRD) installs its own
//! handlers for SIGINT, SIGTERM and SIGHUP, which replaces an inherited `SIG_IGN`. The mask is
//! the one thing a program does not reset by itself.
use std::io;

use nix::sys::signal::{SigSet, Signal};

/// The signals the project's daemons and BIRD stop (SIGINT, SIGTERM) or reload (SIGHUP) on.
pub const STOP_AND_RELOAD_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// Unblocks [`STOP_AND_RELOAD_SIGNALS`] on the calling thread, so that a child spawned (or an
/// image `exec`ed) from it can receive them. [`CleanSpawn`] calls it; call it yourself only
/// right before `CommandExt::exec`.
pub fn unblock_stop_and_reload_signals() -> io::Result<()> {
    let mut set = SigSet::empty();
    for s in STOP_AND_RELOAD_SIGNALS {
        set.add(s);
    }
    set.thread_unblock().map_err(io::Error::from)
}

/// `spawn` with [`STOP_AND_RELOAD_SIGNALS`] deliverable in the child. Use it for every child
/// process (labs, tests, chaos).
pub trait CleanSpawn {
    /// The spawned child.
    type Child;
    /// Unblocks the signals on this thread ([`unblock_stop_and_reload_signals`]), then spawns.
    fn spawn_clean(&mut self) -> io::Result<Self::Child>;
}

impl CleanSpawn for std::process::Command {
    type Child = std::process::Child;
    fn spawn_clean(&mut self) -> io::Result<Self::Child> {
        unblock_stop_and_reload_signals()?;
        self.spawn()
    }
}

impl CleanSpawn for tokio::process::Command {
    type Child = tokio::process::Child;
    fn spawn_clean(&mut self) -> io::Result<Self::Child> {
        unblock_stop_and_reload_signals()?;
        self.spawn()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// Signals blocked in a child, from its `/proc/self/status` `SigBlk:` mask.
    fn child_blocked(spawn: impl FnOnce(&mut Command) -> io::Result<std::process::Child>) -> u64 {
        let mut cmd = Command::new("grep");
        cmd.args(["^SigBlk:", "/proc/self/status"])
            .stdout(Stdio::piped());
        let out = spawn(&mut cmd).unwrap().wait_with_output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let hex = text.trim().trim_start_matches("SigBlk:").trim();
        u64::from_str_radix(hex, 16).unwrap()
    }

    fn bit(s: Signal) -> u64 {
        1 << (s as i32 - 1)
    }

    /// A thread that blocks the signals (as a lab's signal set-up or a parent did) spawns a
    /// child: with a plain `spawn` the child inherits the block (this is what made the fabric
    /// lab's daemons ignore SIGTERM); with `spawn_clean` it does not, and SIGUSR1, which we do
    /// not touch, stays as it was.
    #[test]
    fn spawn_clean_children_receive_stop_and_reload_signals() {
        std::thread::spawn(|| {
            let mut set = SigSet::empty();
            for s in STOP_AND_RELOAD_SIGNALS {
                set.add(s);
            }
            set.add(Signal::SIGUSR1);
            set.thread_block().unwrap();
            let plain = child_blocked(|c| c.spawn());
            for s in STOP_AND_RELOAD_SIGNALS {
                assert_ne!(plain & bit(s), 0, "{s} is inherited by a plain spawn");
            }
            let clean = child_blocked(|c| c.spawn_clean());
            for s in STOP_AND_RELOAD_SIGNALS {
                assert_eq!(
                    clean & bit(s),
                    0,
                    "{s} must be deliverable: mask {clean:#x}"
                );
            }
            assert_ne!(
                clean & bit(Signal::SIGUSR1),
                0,
                "other signals are left alone"
            );
        })
        .join()
        .unwrap();
    }
}
