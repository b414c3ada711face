//! Test harness for evpnc: the real `evpnr` binary (and for fleet tests
//! real `evpnd` processes, each on an in-process vppsim and a real BIRD
//! 2.20), the `evpnc` binary run one-shot, and a pseudo-terminal driver
//! for the interactive shell.
//!
//! Binaries: evpnc comes from cargo (`CARGO_BIN_EXE_evpnc`); evpnr and
//! evpnd are bin-only crates, so they are built once per test run with
//! `cargo build -p evpnr -p evpnd` into the same target directory and taken
//! from next to evpnc. `EVPNC_TEST_BIN_DIR` points at another directory
//! holding both binaries instead (e.g. a build of another branch).
#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use evpn_api::v1::{self, evpnr_client::EvpnrClient};
use evpn_testkit::child::CleanSpawn;
use evpn_testkit::{
    Daemon,
    bird::{Bird, Version, bird_bin},
    eventually, eventually_blocking,
};
use serde_json::Value;
use tonic::transport::Channel;
use vppsim::{SimHandle, SimOptions, VppSim};

pub const EVPNC: &str = env!("CARGO_BIN_EXE_evpnc");
pub const T: Duration = Duration::from_secs(30);

/// Directory holding evpnr and evpnd, built on first use.
pub fn bin_dir() -> PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        if let Some(d) = std::env::var_os("EVPNC_TEST_BIN_DIR") {
            return PathBuf::from(d);
        }
        let dir = PathBuf::from(EVPNC).parent().unwrap().to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "evpnr", "-p", "evpnd"]);
        // Same profile as evpnc itself (`cargo test --release`).
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("run cargo build -p evpnr -p evpnd");
        assert!(st.success(), "cargo build -p evpnr -p evpnd failed");
        dir
    })
    .clone()
}

pub fn evpnr_bin() -> String {
    let p = bin_dir().join("evpnr");
    assert!(p.exists(), "{} missing", p.display());
    p.to_string_lossy().into_owned()
}

pub fn evpnd_bin() -> String {
    let p = bin_dir().join("evpnd");
    assert!(p.exists(), "{} missing", p.display());
    p.to_string_lossy().into_owned()
}

/// Serialises tests that run daemons (small machine).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real evpnr on an ephemeral port with its own state directory.
pub struct Registry {
    pub daemon: Daemon,
    pub addr: String,
    pub state: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        Self::start_on(0)
    }

    pub fn start_on(port: u16) -> Registry {
        let state = tempfile::Builder::new()
            .prefix("evpnc-evpnr-")
            .tempdir()
            .unwrap();
        let grpc = format!("127.0.0.1:{port}");
        let d = Daemon::spawn(
            &evpnr_bin(),
            &[
                "--grpc-addr",
                &grpc,
                "--metrics-addr",
                "127.0.0.1:0",
                "--log-level",
                "debug",
            ],
            // Older evpnr builds without persistence ignore the variable.
            &[("EVPNR_STATE_DIR", state.path().to_str().unwrap())],
        )
        .unwrap();
        let url = d.grpc_url().unwrap();
        let addr = url.trim_start_matches("http://").to_string();
        Registry {
            daemon: d,
            addr,
            state,
        }
    }

    pub async fn client(&self) -> EvpnrClient<Channel> {
        EvpnrClient::connect(format!("http://{}", self.addr))
            .await
            .unwrap()
    }

    /// Whether this evpnr implements the registry (issue 6): ListGroups
    /// answers instead of UNIMPLEMENTED.
    pub async fn has_registry(&self) -> bool {
        let mut c = self.client().await;
        match c.list_groups(v1::Empty {}).await {
            Ok(_) => true,
            Err(s) => s.code() != tonic::Code::Unimplemented,
        }
    }
}

/// Output of one evpnc run.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// stdout as exactly one JSON object on one line.
    pub fn json(&self) -> Value {
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "want one JSON line, got {self:#?}");
        let v: Value =
            serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"));
        assert!(v.is_object(), "not an object: {self:#?}");
        v
    }

    /// A successful `-json` run: exit 0 and one object without "error".
    pub fn ok(&self) -> Value {
        assert_eq!(self.code, 0, "{self:#?}");
        let v = self.json();
        assert!(v.get("error").is_none(), "{self:#?}");
        v
    }

    /// A failed `-json` run: non-zero exit and exactly {"error": "..."};
    /// returns the message.
    pub fn err(&self) -> String {
        assert_ne!(self.code, 0, "{self:#?}");
        let v = self.json();
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), 1, "{self:#?}");
        let m = o["error"].as_str().expect("error is a string").to_string();
        assert!(!m.is_empty(), "{self:#?}");
        m
    }
}

/// Run `evpnc -server <server> <args…>` with stdin from /dev/null.
pub fn evpnc(server: &str, args: &[&str]) -> Out {
    let mut all = vec!["-server", server, "-timeout", "20s"];
    all.extend_from_slice(args);
    evpnc_raw(&all, &[])
}

/// Run evpnc with exactly these arguments and extra environment.
pub fn evpnc_raw(args: &[&str], env: &[(&str, &str)]) -> Out {
    let (code, stdout, stderr) = evpn_testkit::run(EVPNC, args, env).unwrap();
    Out {
        code,
        stdout,
        stderr,
    }
}

/// `evpnc -json <line>` (the line split on spaces).
pub fn json(server: &str, line: &str) -> Out {
    let mut args = vec!["-json"];
    args.extend(line.split_whitespace());
    evpnc(server, &args)
}

/// Remove ANSI escape sequences (CSI … final byte) and carriage returns.
pub fn strip_ansi(s: &str) -> String {
    strip_map(s).0
}

/// [`strip_ansi`] plus, for every kept char, the byte offset just after it
/// in the input.
fn strip_map(s: &str) -> (String, Vec<usize>) {
    let mut out = String::new();
    let mut ends = Vec::new();
    let mut it = s.char_indices().peekable();
    while let Some((_, c)) = it.next() {
        if c == '\x1b' {
            if matches!(it.peek(), Some((_, '['))) {
                it.next();
                for (_, d) in it.by_ref() {
                    if d.is_ascii_alphabetic() || d == '~' {
                        break;
                    }
                }
            }
            continue;
        }
        if c != '\r' {
            out.push(c);
            let end = it.peek().map(|(i, _)| *i).unwrap_or(s.len());
            for _ in 0..c.len_utf8() {
                ends.push(end);
            }
        }
    }
    (out, ends)
}

/// evpnc's interactive shell on a pseudo-terminal.
pub struct Pty {
    child: Child,
    master: std::fs::File,
    buf: Arc<Mutex<Vec<u8>>>,
    /// Bytes of `buf` already consumed by [`Pty::expect`].
    pos: usize,
    pub history: tempfile::TempDir,
}

impl Pty {
    pub fn spawn(args: &[&str]) -> Pty {
        Self::spawn_cmd(Command::new(EVPNC), args)
    }

    /// Like [`Pty::spawn`], but evpnc runs in its own session with the
    /// pseudo-terminal as its controlling terminal (util-linux `setsid -c`),
    /// so Ctrl-C raises SIGINT as in a real terminal.
    pub fn spawn_session(args: &[&str]) -> Pty {
        let mut cmd = Command::new("setsid");
        cmd.args(["-c", EVPNC]);
        Self::spawn_cmd(cmd, args)
    }

    fn spawn_cmd(mut cmd: Command, args: &[&str]) -> Pty {
        use nix::pty::{Winsize, openpty};
        let ws = Winsize {
            ws_row: 50,
            ws_col: 200,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(Some(&ws), None).expect("openpty");
        let history = tempfile::tempdir().unwrap();
        let slave = pty.slave;
        for (k, _) in std::env::vars() {
            if k.starts_with("EVPNC_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .args(args)
            .env("TERM", "xterm")
            .env(
                "EVPNC_HISTORY",
                history.path().join("history").to_str().unwrap(),
            )
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn_clean()
            .expect("spawn evpnc");
        let master = std::fs::File::from(pty.master);
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (mut r, b) = (master.try_clone().unwrap(), buf.clone());
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                match r.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => b.lock().unwrap().extend_from_slice(&chunk[..n]),
                }
            }
        });
        Pty {
            child,
            master,
            buf,
            pos: 0,
            history,
        }
    }

    /// Type bytes.
    pub fn send(&mut self, s: &str) {
        self.master.write_all(s.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Everything the terminal showed so far, escapes stripped.
    pub fn screen(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(&self.buf.lock().unwrap()))
    }

    /// Wait until the output after the last match contains `want`
    /// (escapes stripped); consumes up to the end of the match and returns
    /// the stripped text up to and including it.
    pub fn expect(&mut self, want: &str) -> String {
        let (buf, pos) = (&self.buf, self.pos);
        let (skip, seen) = eventually_blocking(format_args!("{want:?}"), T, || {
            let raw = buf.lock().unwrap()[pos..].to_vec();
            // Lossy decoding keeps offsets only for valid UTF-8, which is
            // all evpnc writes.
            let text = String::from_utf8_lossy(&raw).into_owned();
            let (plain, ends) = strip_map(&text);
            match plain.find(want) {
                Some(i) => {
                    let end = i + want.len();
                    Ok((ends[end - 1], plain[..end].to_string()))
                }
                None => Err(format!("screen after last match:\n{plain}")),
            }
        })
        .unwrap();
        self.pos += skip;
        seen
    }

    /// Wait for the process to exit; returns its exit code.
    pub fn wait(&mut self) -> Option<i32> {
        let child = &mut self.child;
        eventually_blocking("evpnc to exit", T, || child.try_wait().unwrap())
            .unwrap()
            .code()
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One router: vppsim + BIRD 2.20 + evpnd registering with evpnr.
pub struct Host {
    pub id: String,
    pub sim: SimHandle,
    pub bird: Bird,
    pub evpnd: Daemon,
    pub dir: tempfile::TempDir,
}

/// evpnr plus hosts, for the full command set.
pub struct Fleet {
    pub hosts: Vec<Host>,
    pub registry: Registry,
}

impl Fleet {
    /// The test fails when BIRD 2.20 is missing.
    pub async fn start(test: &str, ids: &[&str]) -> Fleet {
        let bird = bird_bin(Version::V2_20, test);
        let registry = Registry::start();
        let mut hosts = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let dir = tempfile::Builder::new()
                .prefix("evpnc-host-")
                .tempdir()
                .unwrap();
            let sim = VppSim::start(dir.path().join("vpp.sock"), SimOptions::default())
                .await
                .unwrap();
            let b = Bird::start(&bird, "evpn table evpntab;", None);
            let cfg = format!(
                "evpnd:\n  instance-id: {id}\n  grpc-addr: 127.0.0.1:{port}\n  metrics-addr: 127.0.0.1:0\n  state-dir: {state}\n  registry: {reg}\n  dataplane: vpp\n  vpp:\n    api-socket: {vpp}\n    timeout: 2s\n  bird:\n    config: {main}\n    socket: {sock}\n    include-dir: {inc}\n    dialect: linux\n    timeout: 5s\n  evpn:\n    vtep-address: 192.0.2.{n}\n    local-as: 65000\n  announce:\n    schedule: [0s]\n",
                port = free_port(),
                n = i + 1,
                reg = registry.addr,
                state = dir.path().join("state").display(),
                vpp = sim.socket_path().display(),
                main = b.main.display(),
                sock = b.sock.display(),
                inc = b.include.display(),
            );
            let path = dir.path().join("evpnd.yaml");
            std::fs::write(&path, cfg).unwrap();
            let evpnd =
                Daemon::spawn(&evpnd_bin(), &["--config", path.to_str().unwrap()], &[]).unwrap();
            hosts.push(Host {
                id: id.to_string(),
                sim,
                bird: b,
                evpnd,
                dir,
            });
        }
        let f = Fleet { hosts, registry };
        for id in ids {
            f.wait_ready(id).await;
        }
        f
    }

    /// Wait until `id` is registered, connected and ready.
    pub async fn wait_ready(&self, id: &str) {
        let mut c = self.registry.client().await;
        eventually(
            format!("{id} registered, connected and ready"),
            T,
            async || {
                c.list_instances(v1::Empty {}).await.is_ok_and(|l| {
                    l.into_inner().instances.iter().any(|i| {
                        i.instance_id == id
                            && i.ready
                            && i.state == v1::instance::State::Connected as i32
                    })
                })
            },
        )
        .await
        .unwrap();
    }
}
