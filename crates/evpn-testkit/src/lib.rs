//! Test helpers for vpp-evpn: run a daemon binary as a child process with its
//! own temp dir and ephemeral ports, read its JSON log lines, send signals,
//! and scrape its metrics. Every process is killed in `Drop`, also when a
//! test fails, so one failed test never breaks the next run.
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Condvar, Mutex},
    time::{Duration, Instant},
};

pub mod bird;
pub mod child;
pub mod proxy;
pub mod wait;

pub use wait::{eventually, eventually_blocking};

use child::CleanSpawn;

use anyhow::{Context, bail};
use serde_json::Value;

/// A running daemon process with captured stdout (JSON log lines).
pub struct Daemon {
    child: Child,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
    /// Private temp dir of this daemon (state, sockets, config files).
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// Spawn `bin` with `args` and extra environment `env`; stdout lines are
    /// collected. `EVPNx_*` variables of the test's own environment are
    /// removed so tests do not leak into each other.
    pub fn spawn(bin: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Daemon> {
        let dir = tempfile::Builder::new().prefix("evpn-test-").tempdir()?;
        Self::spawn_in(dir, bin, args, env)
    }

    /// Like [`Daemon::spawn`] with a given temp dir (e.g. one holding a
    /// config file written before the start).
    pub fn spawn_in(
        dir: tempfile::TempDir,
        bin: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Daemon> {
        let mut cmd = Command::new(bin);
        for (k, _) in std::env::vars() {
            if k.starts_with("EVPND_") || k.starts_with("EVPNR_") || k.starts_with("EVPNC_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn_clean().with_context(|| format!("spawn {bin}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let lines = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let (m, cv) = &*l2;
                if let Ok(mut v) = m.lock() {
                    v.push(line);
                }
                cv.notify_all();
            }
        });
        Ok(Daemon { child, lines, dir })
    }

    /// Process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// All stdout lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Wait until a JSON log line with `"message": message` appears after
    /// the first `skip` lines; returns it parsed.
    pub fn wait_log_after(
        &self,
        skip: usize,
        message: &str,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.lines;
        let mut g = m.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        loop {
            for l in g.iter().skip(skip) {
                if let Ok(v) = serde_json::from_str::<Value>(l)
                    && v["message"] == message
                {
                    return Ok(v);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                bail!(
                    "no {message:?} log line within {timeout:?}; got:\n{}",
                    g.join("\n")
                );
            }
            g = cv
                .wait_timeout(g, deadline - now)
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .0;
        }
    }

    /// [`Daemon::wait_log_after`] from the first line.
    pub fn wait_log(&self, message: &str, timeout: Duration) -> anyhow::Result<Value> {
        self.wait_log_after(0, message, timeout)
    }

    /// The address from the `grpc-listening` log line, as `http://addr`.
    pub fn grpc_url(&self) -> anyhow::Result<String> {
        let v = self.wait_log("grpc-listening", Duration::from_secs(20))?;
        Ok(format!("http://{}", v["addr"].as_str().context("addr")?))
    }

    /// The address from the `metrics-listening` log line.
    pub fn metrics_addr(&self) -> anyhow::Result<String> {
        let v = self.wait_log("metrics-listening", Duration::from_secs(20))?;
        Ok(v["addr"].as_str().context("addr")?.to_string())
    }

    /// Send a signal.
    pub fn signal(&self, sig: nix::sys::signal::Signal) -> anyhow::Result<()> {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig)?;
        Ok(())
    }

    /// Wait for the process to exit; returns its exit code (None if killed
    /// by a signal).
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<Option<i32>> {
        let child = &mut self.child;
        let pid = child.id();
        let st = eventually_blocking(format_args!("process {pid} to exit"), timeout, || {
            child.try_wait().transpose()
        })?;
        Ok(st?.code())
    }

    /// Write a file into the daemon's temp dir and return its path.
    pub fn write_file(&self, name: &str, text: &str) -> anyhow::Result<std::path::PathBuf> {
        write_file(self.dir.path(), name, text)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Write `text` to `dir/name`.
pub fn write_file(dir: &Path, name: &str, text: &str) -> anyhow::Result<std::path::PathBuf> {
    let p = dir.join(name);
    std::fs::write(&p, text)?;
    Ok(p)
}

/// HTTP GET `http://addr/path` (plain HTTP/1.0; enough for `/metrics`).
pub fn http_get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let (head, body) = buf.split_once("\r\n\r\n").context("no HTTP header end")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status")?;
    Ok((code, body.to_string()))
}

/// The value of the first sample line of `metric` (full name with labels
/// prefix, e.g. `evpnr_config_last_reload_successful`) that contains all
/// `labels` substrings.
pub fn metric_value(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
        .find(|l| labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Run a binary to completion, returning (exit code, stdout, stderr).
pub fn run(
    bin: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<(i32, String, String)> {
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("EVPND_") || k.starts_with("EVPNR_") || k.starts_with("EVPNC_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

use prost::Message;
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

/// Ask reflection for every service and the methods of `service`.
pub async fn reflect(url: &str, service: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let ch = tonic::transport::Endpoint::from_shared(url.to_string())?
        .connect()
        .await?;
    let mut c = ServerReflectionClient::new(ch);
    let reqs = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(service.into())),
        },
    ];
    let mut stream = c
        .server_reflection_info(futures::stream::iter(reqs))
        .await?
        .into_inner();
    let mut services = Vec::new();
    let mut methods = Vec::new();
    while let Some(r) = stream.message().await? {
        match r.message_response {
            Some(MessageResponse::ListServicesResponse(l)) => {
                services = l.service.into_iter().map(|s| s.name).collect();
            }
            Some(MessageResponse::FileDescriptorResponse(f)) => {
                for bytes in f.file_descriptor_proto {
                    let fd = prost_types::FileDescriptorProto::decode(bytes.as_slice())?;
                    let package = fd.package().to_string();
                    for s in fd.service {
                        if format!("{package}.{}", s.name()) == service {
                            methods.extend(s.method.iter().map(|m| m.name().to_string()));
                        }
                    }
                }
            }
            other => anyhow::bail!("unexpected reflection answer {other:?}"),
        }
    }
    Ok((services, methods))
}
