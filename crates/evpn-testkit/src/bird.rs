//! Real BIRD processes for tests: own config, socket and directories, killed
//! on drop (also when a test fails), and network namespaces deleted on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::child::CleanSpawn;
use std::time::Duration;

/// Which BIRD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Debian bookworm's bird2 (2.0.12): control-socket tests.
    V2_0,
    /// BIRD 2.20 from Debian sid (EVPN).
    V2_20,
}

/// Finds the BIRD binary (`$BIRD2_BIN` / `$BIRD220_BIN`, else the path `scripts/install-test-deps.sh`
/// installs). Missing or not running: the test fails (never skips) with a message naming
/// BIRD, the path looked at and the install script, in CI and outside alike.
pub fn bird_bin(v: Version, test: &str) -> PathBuf {
    let (var, default) = match v {
        Version::V2_0 => ("BIRD2_BIN", "/usr/sbin/bird"),
        Version::V2_20 => ("BIRD220_BIN", "/usr/local/bin/bird-2.20"),
    };
    let p = PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.to_string()));
    let run = Command::new(&p)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match run {
        Ok(s) if s.success() => p,
        r => panic!(
            "{test} needs BIRD {v}: {} (${var}) {}; install it with scripts/install-test-deps.sh \
             (as root) or point ${var} at a BIRD {v} binary",
            p.display(),
            match r {
                Ok(s) => format!("does not run (`--version` exited with {s})"),
                Err(e) => format!("is missing ({e})"),
            }
        ),
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V2_0 => "2.0",
            Version::V2_20 => "2.20",
        })
    }
}

/// Fails the test unless it runs as root (network namespaces, mounts). Without root, leave
/// such tests out explicitly (those with namespaces have `netns` or `fabric` in their name:
/// `cargo test -- --skip netns --skip fabric`), so the runner reports them as filtered out.
pub fn require_root(test: &str) {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default();
    assert!(
        uid == "0",
        "{test} must run as root; without root, leave it out explicitly \
         (`cargo test -- --skip {test}`)"
    );
}

/// A running BIRD.
pub struct Bird {
    child: Option<Child>,
    /// Scratch directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// Control socket.
    pub sock: PathBuf,
    /// Main config (`-c`).
    pub main: PathBuf,
    /// Live include directory.
    pub include: PathBuf,
    /// Log file.
    pub log: PathBuf,
    bin: PathBuf,
    netns: Option<String>,
}

impl Bird {
    /// Writes a main config (`router id`, log, device protocol with `scan time 2`, `extra`, and
    /// the include of `conf.d/*.conf`) and starts BIRD in the foreground.
    pub fn start(bin: &Path, extra: &str, netns: Option<&str>) -> Bird {
        Self::start_with_id(bin, "10.0.0.1", extra, netns)
    }

    /// Like [`Bird::start`] with a given router id.
    pub fn start_with_id(bin: &Path, router_id: &str, extra: &str, netns: Option<&str>) -> Bird {
        let dir = tempfile::Builder::new()
            .prefix("evpn-bird-test")
            .tempdir()
            .expect("tempdir");
        let d = dir.path().to_path_buf();
        let include = d.join("conf.d");
        std::fs::create_dir_all(&include).unwrap();
        let main = d.join("bird.conf");
        let log = d.join("bird.log");
        std::fs::write(
            &main,
            format!(
                "router id {router_id};\nlog \"{}\" all;\nprotocol device {{ scan time 2; }}\n{extra}\ninclude \"{}/*.conf\";\n",
                log.display(),
                include.display()
            ),
        )
        .unwrap();
        let mut b = Bird {
            child: None,
            sock: d.join("bird.ctl"),
            main,
            include,
            log,
            dir,
            bin: bin.to_path_buf(),
            netns: netns.map(str::to_string),
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        cmd.arg("-f")
            .arg("-c")
            .arg(&self.main)
            .arg("-s")
            .arg(&self.sock)
            .arg("-P")
            .arg(self.dir.path().join("bird.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let _ = std::fs::remove_file(&self.sock);
        let child = cmd.spawn_clean().expect("spawn bird");
        self.child = Some(child);
        let sock = self.sock.clone();
        let child = self.child.as_mut().expect("just spawned");
        let r = crate::eventually_blocking(
            format_args!("BIRD's control socket {}", sock.display()),
            Duration::from_secs(10),
            || match child.try_wait() {
                Ok(Some(st)) => Some(Err(st)),
                _ => sock.exists().then_some(Ok(())),
            },
        );
        match r {
            Ok(Ok(())) => {}
            Ok(Err(st)) => panic!(
                "bird exited with {st} before creating its socket; log:\n{}",
                self.log_text()
            ),
            Err(e) => panic!("{e}; log:\n{}", self.log_text()),
        }
    }

    /// The BIRD process ID (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills BIRD and starts it again with the same files.
    pub fn restart_process(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Kills the BIRD process.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Writes a file into the live include directory (for tests that bypass the applier).
    pub fn write_snippet(&self, name: &str, text: &str) {
        std::fs::write(self.include.join(name), text).unwrap();
    }

    /// The log contents.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a command, panicking with its output on failure.
pub fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command and returns its stdout.
pub fn output(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted on drop.
pub struct Netns {
    /// Its name.
    pub name: String,
}

impl Netns {
    /// Creates `<test>-<pid>` (truncated to a sane length) with `lo` up.
    pub fn new(test: &str) -> Netns {
        let name = format!("{test}-{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        run(&v);
    }

    /// `ip netns exec <ns> <args>`.
    pub fn exec(&self, args: &[&str]) {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        run(&v);
    }

    /// Creates a bridge and a VXLAN device enslaved to it, both up (`docs/bird-notes.md` §4.5).
    pub fn bridge_vxlan(&self, br: &str, vx: &str, vni: u32, local: &str, port: u16) {
        self.ip(&["link", "add", br, "type", "bridge"]);
        self.ip(&["link", "set", br, "up"]);
        self.ip(&[
            "link",
            "add",
            vx,
            "type",
            "vxlan",
            "id",
            &vni.to_string(),
            "local",
            local,
            "dstport",
            &port.to_string(),
            "nolearning",
        ]);
        self.ip(&["link", "set", vx, "master", br]);
        self.exec(&["bridge", "link", "set", "dev", vx, "learning", "off"]);
        self.ip(&["link", "set", vx, "up"]);
    }

    /// The MAC address of a device.
    pub fn mac(&self, dev: &str) -> String {
        let out = output(&["ip", "-n", &self.name, "-o", "link", "show", dev]);
        let i = out.find("link/ether ").expect("link/ether") + "link/ether ".len();
        out[i..i + 17].to_string()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
