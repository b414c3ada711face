//! The chaos fleet: the real `evpnr` and N real `evpnd` processes, each
//! `evpnd` on its own in-process `vppsim` (fault handle, in-memory journal)
//! and in-process `birdsim` (configure failures, kill). The birdsims share
//! one simulated fabric (`birdsim::fabric`, history recorded), fed by the
//! vppsims, so each host sees the MAC routes the others announce; evpnr and
//! each evpnd talk through a cuttable proxy (the management network).
//! Everything runs in one temporary directory, on ephemeral ports, and is
//! killed on drop. With [`FleetOptions::tls`] every program and client uses
//! mutual TLS (`crate::tls`: a development CA in `<dir>/pki`).
use std::{
    fs::File,
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail};
use birdsim::fabric::{Fabric, FabricOptions};
use evpn_api::v1::{self, evpnd_client::EvpndClient, evpnr_client::EvpnrClient};
use evpn_testkit::{child::CleanSpawn, proxy::Proxy};
use evpn_tls::{Expect, Identity};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

use crate::tls::{Dial, LabPki};

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn spawn(bin: &Path, cfg: &Path, log: &Path) -> anyhow::Result<Child> {
    let out = File::options().create(true).append(true).open(log)?;
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("EVPND_") || k.starts_with("EVPNR_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("--config")
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .kill_on_drop(true)
        .spawn_clean()
        .with_context(|| format!("start {}", bin.display()))
}

/// SIGKILL and reap.
async fn kill9(c: &mut Child) {
    let _ = c.start_kill();
    let _ = c.wait().await;
}

/// A lazily connecting channel with a per-request timeout (plaintext, or
/// mutual TLS with `dial`).
pub fn channel(addr: &str, timeout: Duration, dial: &Dial) -> anyhow::Result<Channel> {
    crate::tls::connect_lazy(addr, dial, timeout)
}

/// One router: vppsim + birdsim in process, evpnd as a child process.
pub struct Host {
    /// Instance ID.
    pub id: String,
    /// Working directory.
    pub dir: PathBuf,
    /// evpnd's gRPC address.
    pub grpc: String,
    /// The simulated VPP.
    pub vpp: vppsim::SimHandle,
    /// The simulated BIRD (`None` while killed).
    pub bird: Option<birdsim::SimHandle>,
    /// evpnd, when running.
    pub evpnd: Option<Child>,
    /// The management network: evpnr → this evpnd.
    pub to_evpnd: Proxy,
    /// The management network: this evpnd → evpnr.
    pub to_evpnr: Proxy,
    tls: Option<Arc<LabPki>>,
}

impl Host {
    fn config_path(&self) -> PathBuf {
        self.dir.join("evpnd.yaml")
    }

    /// Cut (`false`) or heal (`true`) the management network between this
    /// evpnd and evpnr, both ways.
    pub fn set_mgmt_link(&self, up: bool) {
        for p in [&self.to_evpnd, &self.to_evpnr] {
            if up {
                p.heal();
            } else {
                p.cut();
            }
        }
    }

    /// A client for this host's evpnd (with TLS: as the operator, a viewer
    /// there).
    pub fn client(&self) -> anyhow::Result<EvpndClient<Channel>> {
        let dial = match &self.tls {
            Some(p) => p.to_evpnd(&self.id)?,
            None => None,
        };
        Ok(EvpndClient::new(channel(
            &self.grpc,
            Duration::from_secs(5),
            &dial,
        )?))
    }

    /// A client for this host's evpnd calling as `who` (a certificate of
    /// the fleet's CA); without TLS the same as [`Host::client`].
    pub fn client_as(&self, who: &Identity) -> anyhow::Result<EvpndClient<Channel>> {
        let dial = match &self.tls {
            Some(p) => Some((
                p.client(Some(who))?,
                Expect::Exactly(Identity::Instance(self.id.clone())),
            )),
            None => None,
        };
        Ok(EvpndClient::new(channel(
            &self.grpc,
            Duration::from_secs(5),
            &dial,
        )?))
    }
}

/// evpnr plus the hosts.
pub struct Fleet {
    /// Working directory (kept if `keep` was asked for, else removed).
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    evpnd_bin: PathBuf,
    evpnr_bin: PathBuf,
    /// evpnr's gRPC address.
    pub evpnr_addr: String,
    /// evpnr's metrics address.
    pub evpnr_metrics: String,
    /// evpnr, when running.
    pub evpnr: Option<Child>,
    /// The hosts.
    pub hosts: Vec<Host>,
    /// The simulated fabric of the hosts' BIRDs.
    pub fabric: Fabric,
    /// The development CA, with TLS on.
    pub tls: Option<Arc<LabPki>>,
}

/// Options of the fleet.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Number of evpnd instances.
    pub instances: usize,
    /// Directory with the `evpnd` and `evpnr` binaries.
    pub bin_dir: PathBuf,
    /// Keep the working directory (logs, journals, state) after the run.
    pub keep_dir: bool,
    /// evpnd's `vpp.timeout` (a hung VPP call fails after this).
    pub vpp_timeout: Duration,
    /// evpnr's `member-timeout`.
    pub member_timeout: Duration,
    /// evpnr's log level.
    pub log_level: String,
    /// The simulated fabric's timing (its history is always recorded).
    pub fabric: FabricOptions,
    /// Autonomous failover on short timers: every evpnd checks its health
    /// every 200 ms (fall 2, rise 2, self-fence hold 300 ms) with an
    /// operator check command that fails while `<host dir>/unfit` exists,
    /// and evpnr asks for heartbeats every 200 ms (suspect after 1 s, dead
    /// after 3 s).
    pub failover: bool,
    /// The heartbeat and health timers used when `failover` is on.
    pub timers: FailoverTimers,
    /// With `failover`: the operator check command that fails while
    /// `<host dir>/unfit` exists (the chaos run's "unfit" fault). It forks a
    /// process per probe: at the fabric's 25 ms interval that is 40 forks
    /// per evpnd per second, so a fleet of hundreds that does not inject
    /// the fault (the CPU bench) leaves it out. Default on.
    pub unfit_check: bool,
    /// Mutual TLS everywhere (`crate::tls`): evpnr, the evpnds, the
    /// driver's clients (the operator `evpn://user/admin`) and evpnr's
    /// `/metrics`.
    pub tls: bool,
}

/// The heartbeat (evpnr) and health-check (evpnd) timers of a fleet with
/// failover on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailoverTimers {
    pub heartbeat: Duration,
    pub suspect_after: Duration,
    pub dead_after: Duration,
    pub health_interval: Duration,
    pub health_timeout: Duration,
    pub rise: u32,
    pub fall: u32,
}

impl FailoverTimers {
    /// What the real fabric lab runs with (docs/failover.md, "On the real
    /// fabric"): heartbeats every 20 ms, checks every 25 ms.
    pub const FABRIC: FailoverTimers = FailoverTimers {
        heartbeat: Duration::from_millis(20),
        suspect_after: Duration::from_millis(100),
        dead_after: Duration::from_secs(3),
        health_interval: Duration::from_millis(25),
        health_timeout: Duration::from_millis(25),
        rise: 3,
        fall: 3,
    };

    /// The shipped defaults (evpnr's `liveness`, evpnd's `health`):
    /// heartbeats every 1 s (suspect after 3 s, dead after 10 s), every
    /// health check every 1 s (timeout 500 ms, rise 2, fall 3).
    pub const PRODUCT: FailoverTimers = FailoverTimers {
        heartbeat: Duration::from_secs(1),
        suspect_after: Duration::from_secs(3),
        dead_after: Duration::from_secs(10),
        health_interval: Duration::from_secs(1),
        health_timeout: Duration::from_millis(500),
        rise: 2,
        fall: 3,
    };
}

impl Default for FailoverTimers {
    /// The chaos run's short timers.
    fn default() -> Self {
        FailoverTimers {
            heartbeat: Duration::from_millis(200),
            suspect_after: Duration::from_secs(1),
            dead_after: Duration::from_secs(3),
            health_interval: Duration::from_millis(200),
            health_timeout: Duration::from_millis(200),
            rise: 2,
            fall: 2,
        }
    }
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self {
            instances: 4,
            bin_dir: PathBuf::new(),
            keep_dir: false,
            vpp_timeout: Duration::from_millis(1500),
            member_timeout: Duration::from_secs(3),
            log_level: "info".into(),
            fabric: FabricOptions::default(),
            failover: false,
            timers: FailoverTimers::default(),
            unfit_check: true,
            tls: false,
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Instance names: `chaos-0`, `chaos-1`, ...
pub fn host_name(i: usize) -> String {
    format!("chaos-{i}")
}

/// The directory of the running executable, or of its parent when it runs
/// from `deps/` (tests and benches), where cargo puts sibling binaries.
pub fn default_bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut d = exe
        .parent()
        .context("no executable directory")?
        .to_path_buf();
    if d.file_name().is_some_and(|n| n == "deps") {
        d.pop();
    }
    Ok(d)
}

impl Fleet {
    /// Creates the fleet's simulators and starts evpnr (not the evpnds).
    pub async fn new(o: &FleetOptions) -> anyhow::Result<Fleet> {
        let (evpnd_bin, evpnr_bin) = (o.bin_dir.join("evpnd"), o.bin_dir.join("evpnr"));
        for b in [&evpnd_bin, &evpnr_bin] {
            if !b.is_file() {
                bail!(
                    "{} not found; build it first (cargo build -p evpnd -p evpnr, same profile)",
                    b.display()
                );
            }
        }
        let tmp = tempfile::Builder::new().prefix("evpn-chaos-").tempdir()?;
        let dir = tmp.path().to_path_buf();
        let tmp = if o.keep_dir {
            let _ = tmp.keep();
            None
        } else {
            Some(tmp)
        };
        let evpnr_addr = format!("127.0.0.1:{}", free_port()?);
        let evpnr_metrics = format!("127.0.0.1:{}", free_port()?);
        std::fs::create_dir_all(dir.join("evpnr"))?;
        let pki = if o.tls {
            Some(LabPki::create(&crate::tls::pki_dir(&dir))?)
        } else {
            None
        };
        let tls_of = |id: Option<&str>| -> anyhow::Result<String> {
            match (&pki, id) {
                (None, _) => Ok(String::new()),
                (Some(p), None) => p.evpnr_yaml(""),
                (Some(p), Some(id)) => p.evpnd_yaml(id),
            }
        };
        std::fs::write(
            dir.join("evpnr.yaml"),
            format!(
                "evpnr:\n  grpc-addr: \"{evpnr_addr}\"\n  metrics-addr: \"{evpnr_metrics}\"\n  log-level: {lvl}\n  state-dir: {d}\n  member-timeout: {mt}\n  move:\n    max-wait: 200ms\n",
                lvl = o.log_level,
                d = dir.join("evpnr").display(),
                mt = ms(o.member_timeout),
            ) + &if o.failover {
                let t = &o.timers;
                format!(
                    "  liveness:\n    heartbeat-interval: {}\n    suspect-after: {}\n    dead-after: {}\n",
                    ms(t.heartbeat),
                    ms(t.suspect_after),
                    ms(t.dead_after)
                )
            } else {
                String::new()
            } + &tls_of(None)?,
        )?;
        // evpnr binds its ports now: the ports were picked by binding and
        // releasing them, and each bind of the set-up below (proxies,
        // probes) could otherwise be handed one of them again (CI: "evpnr
        // did not answer within 10 s", its address in use).
        let evpnr = spawn(&evpnr_bin, &dir.join("evpnr.yaml"), &dir.join("evpnr.log"))?;
        let fabric = Fabric::new(FabricOptions {
            record: true,
            ..o.fabric.clone()
        });
        let mut hosts = Vec::new();
        for i in 0..o.instances {
            let id = host_name(i);
            let hdir = dir.join(&id);
            std::fs::create_dir_all(hdir.join("bird.d"))?;
            let vpp = vppsim::VppSim::start(
                hdir.join("vpp.sock"),
                vppsim::SimOptions {
                    journal_path: Some(hdir.join("vpp.journal")),
                    control_path: Some(hdir.join("vpp.ctl")),
                    ..Default::default()
                },
            )
            .await?;
            let (fb, name) = (fabric.clone(), id.clone());
            vpp.observe(move |st| fb.set_dataplane(&name, st.bvi_macs()));
            let main = hdir.join("bird.conf");
            std::fs::write(
                &main,
                format!(
                    "router id 10.{}.{}.1;\nprotocol device {{ scan time 2; }}\nevpn table evpntab;\nprotocol bgp rr {{ local as 65000; neighbor 192.0.2.254 as 65000; evpn {{ table evpntab; }}; }}\ninclude \"{}/*.conf\";\n",
                    i / 250,
                    i % 250,
                    hdir.join("bird.d").display()
                ),
            )?;
            let bird =
                birdsim::BirdSim::start_on(&main, &hdir.join("bird.ctl"), &fabric, &id).await?;
            let grpc = format!("127.0.0.1:{}", free_port()?);
            let to_evpnd = Proxy::start(&grpc).await?;
            let to_evpnr = Proxy::start(&evpnr_addr).await?;
            let health = if o.failover {
                let t = &o.timers;
                let unfit = if o.unfit_check {
                    format!(
                        "    commands:\n      - name: chaos\n        argv: [/usr/bin/test, \"!\", \"-e\", \"{}\"]\n",
                        hdir.join("unfit").display()
                    )
                } else {
                    String::new()
                };
                format!(
                    "  health:\n    interval: {}\n    timeout: {}\n    rise: {}\n    fall: {}\n    bfd: true\n    self-fence:\n      hold: 300ms\n{unfit}",
                    ms(t.health_interval),
                    ms(t.health_timeout),
                    t.rise,
                    t.fall,
                )
            } else {
                String::new()
            };
            std::fs::write(
                hdir.join("evpnd.yaml.in"),
                format!(
                    "evpnd:\n  instance-id: {id}\n  grpc-addr: \"@GRPC@\"\n  advertise-addr: \"{adv}\"\n  metrics-addr: \"\"\n  registry: \"{reg}\"\n  state-dir: {d}/state\n  dataplane: vpp\n  log-level: {lvl}\n  vpp:\n    api-socket: {d}/vpp.sock\n    timeout: {vt}\n  bird:\n    config: {d}/bird.conf\n    socket: {d}/bird.ctl\n    include-dir: {d}/bird.d\n    dialect: vpp\n    timeout: 5s\n  evpn:\n    vtep-address: 192.0.{a}.{b}\n    local-as: 65000\n  announce:\n    schedule: [0s]\n{health}",
                    d = hdir.display(),
                    adv = to_evpnd.addr(),
                    reg = to_evpnr.addr(),
                    lvl = o.log_level,
                    vt = ms(o.vpp_timeout),
                    a = 2 + i / 250,
                    b = 1 + i % 250,
                ) + &tls_of(Some(&id))?,
            )?;
            std::fs::write(
                hdir.join("evpnd.yaml"),
                std::fs::read_to_string(hdir.join("evpnd.yaml.in"))?.replace("@GRPC@", &grpc),
            )?;
            hosts.push(Host {
                id,
                dir: hdir,
                grpc,
                vpp,
                bird: Some(bird),
                evpnd: None,
                to_evpnd,
                to_evpnr,
                tls: pki.clone(),
            });
        }
        let mut f = Fleet {
            dir,
            _tmp: tmp,
            evpnd_bin,
            evpnr_bin,
            evpnr_addr,
            evpnr_metrics,
            evpnr: Some(evpnr),
            hosts,
            fabric,
            tls: pki,
        };
        f.wait_evpnr().await?;
        Ok(f)
    }

    /// Starts (or restarts) evpnr and waits until it answers.
    pub async fn start_evpnr(&mut self) -> anyhow::Result<()> {
        let c = spawn(
            &self.evpnr_bin,
            &self.dir.join("evpnr.yaml"),
            &self.dir.join("evpnr.log"),
        )?;
        self.evpnr = Some(c);
        self.wait_evpnr().await
    }

    /// Waits until the evpnr started answers; fails at once, with the end
    /// of its log, if it exited.
    async fn wait_evpnr(&mut self) -> anyhow::Result<()> {
        let log = self.dir.join("evpnr.log");
        let tail = || {
            let s = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(5)..].join("\n")
        };
        for _ in 0..400 {
            if let Some(c) = self.evpnr.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                bail!(
                    "evpnr exited ({st}) before it answered; its log ends:\n{}",
                    tail()
                );
            }
            if let Ok(mut c) = crate::tls::connect(&self.evpnr_addr, &self.evpnr_dial()?)
                .await
                .map(EvpnrClient::new)
                && c.list_groups(v1::Empty {}).await.is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!(
            "evpnr did not answer within 10 s; its log ends:\n{}",
            tail()
        )
    }

    /// `kill -9` evpnr.
    pub async fn kill_evpnr(&mut self) {
        if let Some(mut c) = self.evpnr.take() {
            kill9(&mut c).await;
        }
    }

    /// Starts (or restarts) host `i`'s evpnd (does not wait).
    pub fn start_evpnd(&mut self, i: usize) -> anyhow::Result<()> {
        let h = &mut self.hosts[i];
        if h.evpnd.is_none() {
            h.evpnd = Some(spawn(
                &self.evpnd_bin,
                &h.config_path(),
                &h.dir.join("evpnd.log"),
            )?);
        }
        Ok(())
    }

    /// Restarts every evpnd that exited on its own (typically: its port was
    /// taken between picking it and binding it; it then gets a new one).
    /// Returns, per restarted evpnd, its ID and the last line of its log
    /// (why it exited).
    pub fn respawn_exited(&mut self) -> anyhow::Result<Vec<(String, String)>> {
        let mut n = Vec::new();
        for i in 0..self.hosts.len() {
            let exited = self.hosts[i]
                .evpnd
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if !exited {
                continue;
            }
            let h = &mut self.hosts[i];
            h.evpnd = None;
            let why = std::fs::read_to_string(h.dir.join("evpnd.log"))
                .ok()
                .and_then(|l| l.lines().last().map(str::to_string))
                .unwrap_or_default();
            n.push((h.id.clone(), why));
            h.grpc = format!("127.0.0.1:{}", free_port()?);
            h.to_evpnd.set_target(&h.grpc);
            std::fs::write(
                h.config_path(),
                std::fs::read_to_string(h.dir.join("evpnd.yaml.in"))?.replace("@GRPC@", &h.grpc),
            )?;
            self.start_evpnd(i)?;
        }
        Ok(n)
    }

    /// Starts every evpnd that is not running, restarts those that exit
    /// on their own, and waits until evpnr sees all of them connected and
    /// ready; false on timeout.
    pub async fn start_all(&mut self, timeout: Duration) -> anyhow::Result<bool> {
        for i in 0..self.hosts.len() {
            self.start_evpnd(i)?;
        }
        let ids: Vec<String> = self.hosts.iter().map(|h| h.id.clone()).collect();
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            self.respawn_exited()?;
            if self.wait_connected(&ids, Duration::from_millis(500)).await {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `kill -9` host `i`'s evpnd (VPP and BIRD keep their state).
    pub async fn kill_evpnd(&mut self, i: usize) {
        if let Some(mut c) = self.hosts[i].evpnd.take() {
            kill9(&mut c).await;
        }
    }

    /// `kill -9` host `i`'s BIRD: it answers nothing, and the fabric
    /// withdraws its routes after the withdrawal delay.
    pub fn kill_bird(&mut self, i: usize) {
        if let Some(b) = self.hosts[i].bird.take() {
            b.kill();
        }
    }

    /// Starts host `i`'s BIRD again (from its files), if it is not running.
    pub async fn start_bird(&mut self, i: usize) -> anyhow::Result<()> {
        let h = &mut self.hosts[i];
        if h.bird.is_none() {
            h.bird = Some(
                birdsim::BirdSim::start_on(
                    &h.dir.join("bird.conf"),
                    &h.dir.join("bird.ctl"),
                    &self.fabric,
                    &h.id,
                )
                .await?,
            );
        }
        Ok(())
    }

    /// Whether host `i`'s evpnd runs.
    pub fn evpnd_up(&self, i: usize) -> bool {
        self.hosts[i].evpnd.is_some()
    }

    /// How the operator dials evpnr (plaintext without TLS).
    fn evpnr_dial(&self) -> anyhow::Result<Dial> {
        match &self.tls {
            Some(p) => p.to_evpnr(),
            None => Ok(None),
        }
    }

    /// A registry client with a per-request timeout (with TLS: as the
    /// operator, an admin).
    pub fn client(&self, timeout: Duration) -> anyhow::Result<EvpnrClient<Channel>> {
        Ok(EvpnrClient::new(channel(
            &self.evpnr_addr,
            timeout,
            &self.evpnr_dial()?,
        )?))
    }

    /// A registry client calling as `who` (a certificate of the fleet's
    /// CA, issued on first use); without TLS the same as [`Fleet::client`].
    pub fn client_as(
        &self,
        who: &Identity,
        timeout: Duration,
    ) -> anyhow::Result<EvpnrClient<Channel>> {
        let dial = match &self.tls {
            Some(p) => Some((
                p.client(Some(who))?,
                Expect::Exactly(Identity::Registry(crate::tls::REGISTRY.into())),
            )),
            None => None,
        };
        Ok(EvpnrClient::new(channel(&self.evpnr_addr, timeout, &dial)?))
    }

    /// Waits until every instance in `ids` is registered, connected and
    /// ready as evpnr sees it; returns false on timeout.
    pub async fn wait_connected(&self, ids: &[String], timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let Ok(mut c) = self.client(Duration::from_secs(5)) else {
            return false;
        };
        while tokio::time::Instant::now() < deadline {
            if let Ok(l) = c.list_instances(v1::Empty {}).await {
                let l = l.into_inner();
                if ids.iter().all(|id| {
                    l.instances.iter().any(|i| {
                        i.instance_id == *id
                            && i.ready
                            && i.state == v1::instance::State::Connected as i32
                    })
                }) {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Every host's journal, labelled with the host's ID.
    pub fn journals(&self) -> Vec<(String, Vec<vppsim::JournalEntry>)> {
        self.hosts
            .iter()
            .map(|h| (h.id.clone(), h.vpp.journal()))
            .collect()
    }

    /// Merges all journals and checks that no two hosts held one MAC at once.
    pub fn check_exclusive(
        &self,
        watched: &[String],
    ) -> Result<vppsim::HostMacReport, vppsim::HostMacConflict> {
        let j = self.journals();
        let refs: Vec<(&str, &[vppsim::JournalEntry])> =
            j.iter().map(|(h, e)| (h.as_str(), e.as_slice())).collect();
        vppsim::check_mac_exclusive_hosts(&refs, watched)
    }

    /// Resident set size of a process in KiB (from /proc), if it runs.
    pub fn rss_kib(pid: Option<u32>) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// evpnr's process ID.
    pub fn evpnr_pid(&self) -> Option<u32> {
        self.evpnr.as_ref().and_then(Child::id)
    }

    /// CPU time (user + system) a process has used so far, from
    /// `/proc/<pid>/stat`.
    pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
        // After the command name (in parentheses, may hold spaces): field 3
        // on; utime and stime are fields 14 and 15.
        let rest = &s[s.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        // In USER_HZ, which Linux's /proc ABI fixes at 100 per second.
        Some(Duration::from_millis(ticks * 10))
    }

    /// Host `i`'s evpnd process ID.
    pub fn evpnd_pid(&self, i: usize) -> Option<u32> {
        self.hosts[i].evpnd.as_ref().and_then(Child::id)
    }

    /// evpnr's `/metrics` text (with TLS: over mutual TLS, as the
    /// operator).
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let dial = self.evpnr_dial()?;
        crate::tls::http_get(&self.evpnr_metrics, "/metrics", &dial).await
    }
}
