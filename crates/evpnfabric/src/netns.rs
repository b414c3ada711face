//! Network namespaces and child processes of the lab, removed on drop (also
//! after a panic). Setting up the fabric uses `ip` (this is a lab tool; the
//! daemons it runs never shell out).
use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use evpn_testkit::child::CleanSpawn;
use std::sync::Mutex;

/// What exists right now (namespaces, child pids, scratch directories), for
/// the signal handler of [`cleanup_on_signals`].
#[derive(Default)]
struct Live {
    ns: Vec<String>,
    pids: Vec<u32>,
    dirs: Vec<PathBuf>,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    ns: Vec::new(),
    pids: Vec::new(),
    dirs: Vec::new(),
});

fn live() -> std::sync::MutexGuard<'static, Live> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Remember a scratch directory to remove if the program is killed by a
/// signal (see [`cleanup_on_signals`]).
pub fn track_dir(p: &Path) {
    live().dirs.push(p.to_path_buf());
}

/// Forget a scratch directory (it was removed or kept on purpose).
pub fn untrack_dir(p: &Path) {
    live().dirs.retain(|d| d != p);
}

/// For programs (not tests): on SIGINT, SIGTERM or SIGHUP, stop every child
/// process, delete every namespace and scratch directory the lab created,
/// and exit with 128 + the signal number. Drops do the same on a normal
/// exit, an error or a panic.
///
/// The signals are caught by handlers (tokio's, on a thread of its own), not
/// by blocking them for a `sigwait` thread: a blocked mask is inherited by
/// every child, so the evpnds and BIRDs the lab starts would ignore SIGTERM
/// and SIGHUP (issue 13 item 18). Children are started with
/// `evpn_testkit::child::CleanSpawn` as well, so even a mask this program
/// inherited does not reach them.
pub fn cleanup_on_signals() -> anyhow::Result<()> {
    use nix::sys::signal::{Signal, kill};
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Installed here (not in the thread) so that they are in place when this returns.
    let (mut int, mut term, mut hup) = rt.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("cleanup".into())
        .spawn(move || {
            let sig = rt.block_on(async {
                tokio::select! {
                    _ = int.recv() => Signal::SIGINT,
                    _ = term.recv() => Signal::SIGTERM,
                    _ = hup.recv() => Signal::SIGHUP,
                }
            });
            eprintln!("evpnfabric: {sig}: removing the lab");
            let l = std::mem::take(&mut *live());
            for pid in &l.pids {
                let _ = kill(nix::unistd::Pid::from_raw(*pid as i32), Signal::SIGTERM);
            }
            std::thread::sleep(Duration::from_millis(500));
            for pid in &l.pids {
                let _ = kill(nix::unistd::Pid::from_raw(*pid as i32), Signal::SIGKILL);
            }
            for ns in l.ns.iter().rev() {
                let _ = Command::new("ip")
                    .args(["netns", "del", ns])
                    .stderr(Stdio::null())
                    .status();
            }
            for d in &l.dirs {
                let _ = std::fs::remove_dir_all(d);
            }
            std::process::exit(128 + sig as i32);
        })?;
    Ok(())
}

/// Run a command; error with its output on failure; returns stdout.
pub fn run(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{args:?}"))?;
    if !out.status.success() {
        bail!(
            "{args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace (`ip netns add`), deleted on drop.
#[derive(Debug)]
pub struct Netns {
    /// Its name (`/run/netns/<name>`).
    pub name: String,
}

impl Netns {
    /// Create `name` (a stale one of the same name is deleted first) with
    /// `lo` up.
    pub fn create(name: &str) -> anyhow::Result<Netns> {
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        run(&["ip", "netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        live().ns.push(name.to_string());
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        run(&v)
    }

    /// `ip netns exec <ns> <args>`.
    pub fn exec(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        run(&v)
    }

    /// `sysctl -qw key=value` inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> anyhow::Result<()> {
        self.exec(&["sysctl", "-qw", &format!("{key}={value}")])
            .map(|_| ())
    }

    /// Names of the links in the namespace.
    pub fn links(&self) -> anyhow::Result<Vec<String>> {
        let out = self.ip(&["-o", "link", "show"])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split(':').nth(1))
            .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
            .collect())
    }

    /// Spawn `args` inside the namespace with stdout and stderr appended to
    /// `log`.
    pub fn spawn(&self, args: &[&str], log: &Path) -> anyhow::Result<Proc> {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        let mut p = spawn_root(&v, log)?;
        p.what = format!("{} in {}", args[0], self.name);
        Ok(p)
    }
}

/// Spawn `args` in the lab program's own namespace (for a program that
/// enters a namespace itself, like keepalived's `net_namespace`), stdout and
/// stderr appended to `log`; killed on drop and by [`cleanup_on_signals`].
pub fn spawn_root(args: &[&str], log: &Path) -> anyhow::Result<Proc> {
    let f = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| log.display().to_string())?;
    let child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        .spawn_clean()
        .with_context(|| format!("spawn {args:?}"))?;
    live().pids.push(child.id());
    Ok(Proc {
        child: Some(child),
        what: args[0].to_string(),
        log: log.to_path_buf(),
    })
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
        live().ns.retain(|n| *n != self.name);
    }
}

/// Move the calling thread into network namespace `name` (threads it
/// creates afterwards inherit it; sockets it opens belong to it).
pub fn enter(name: &str) -> anyhow::Result<()> {
    let f = File::open(Path::new("/run/netns").join(name))
        .with_context(|| format!("open /run/netns/{name}"))?;
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("setns {name}"))?;
    Ok(())
}

/// A child process (`ip netns exec` execs the program, so the pid is the
/// program's), killed on drop.
#[derive(Debug)]
pub struct Proc {
    child: Option<Child>,
    /// What it is, for messages.
    pub what: String,
    /// Its stdout/stderr file.
    pub log: PathBuf,
}

impl Proc {
    /// Process ID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Wait until the log contains `needle` (error if the process exits or
    /// `timeout` passes).
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<()> {
        self.wait_log_count(needle, 1, timeout)
    }

    /// Wait until the log contains `needle` at least `n` times.
    pub fn wait_log_count(
        &mut self,
        needle: &str,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.matches(needle).count() >= n {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut()
                && let Some(st) = c.try_wait()?
            {
                bail!(
                    "{} exited with {st} before {needle:?}; log:\n{text}",
                    self.what
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{}: no {needle:?} within {timeout:?}; log:\n{text}",
                    self.what
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL now (a crash) and reap it.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        let Some(mut c) = self.child.take() else {
            bail!("{} was already stopped", self.what);
        };
        let id = c.id();
        live().pids.retain(|p| *p != id);
        c.kill().with_context(|| format!("SIGKILL {}", self.what))?;
        c.wait()?;
        Ok(())
    }

    /// SIGTERM, then SIGKILL after `grace`; a process that needed the
    /// SIGKILL is reported on stderr (a graceful stop never falls back
    /// silently).
    pub fn stop(&mut self, grace: Duration) {
        if self.child.is_none() {
            return;
        }
        if let Err(e) = self.terminate(grace) {
            eprintln!("evpnfabric: {e:#}");
        }
    }

    /// SIGTERM and wait up to `grace` for the exit; returns the exit status.
    /// Error (after a SIGKILL) when the process did not stop in time.
    pub fn terminate(&mut self, grace: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let Some(mut c) = self.child.take() else {
            bail!("{} was already stopped", self.what);
        };
        let id = c.id();
        live().pids.retain(|p| *p != id);
        let pid = nix::unistd::Pid::from_raw(id as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(st) = c.try_wait()? {
                return Ok(st);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = c.kill();
        let _ = c.wait();
        bail!(
            "{} (pid {id}) did not stop within {grace:?} of SIGTERM and was killed",
            self.what
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}
