//! The fabric: N router namespaces on one underlay, each with BIRD 2.20
//! (iBGP EVPN, full mesh or router 1 as route reflector) and its own `evpnd`
//! on the Linux dataplane, an optional `evpnr`, and a host namespace hanging
//! off the last router ("the leaf").
//!
//! ```text
//! ns <p>-ul: bridge "ul" (the underlay) ──veth ulK── rK:eth0 10.0.0.K/24 (BGP, BFD, VXLAN)
//! ns <p>-mg: bridge "mgmt" 192.168.0.254/24 (evpnr) ──veth mgK── rK:mgmt0 192.168.0.K/24
//! ns <p>-rK: BIRD 2.20 + evpnd (dataplane linux, gRPC on 192.168.0.K:50051, VTEP 10.0.0.K)
//! ns <p>-h : h-eth0 172.16.0.10/24 fec0::10/64 ──veth── hport, a port of brg-<slug> on the leaf
//! ```
//! Management (gRPC) has its own network, separate from the underlay: the
//! orchestrating runtime's threads live in `<p>-mg`, so evpnr (also in
//! `<p>-mg`) and the lab reach every evpnd at its management address, and a
//! scenario can cut one network without touching the other
//! ([`Fabric::set_link`]). Nothing is added to the root namespace. Every
//! namespace and process is removed on drop.
use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use evpn_api::v1::{self, evpnd_client::EvpndClient};
use tonic::transport::Channel;

use crate::netns::{Netns, Proc};

/// gRPC port of every evpnd (on its underlay address).
pub const EVPND_PORT: u16 = 50051;
/// gRPC port of evpnr (on the management bridge address).
pub const EVPNR_PORT: u16 = 50050;
/// The management bridge's address in `<p>-mg` (evpnr).
pub const MGMT_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 254);

/// Router `k`'s (1-based) management address (`mgmt0`).
pub fn mgmt_addr(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 0, k as u8)
}

/// One of a router's two networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// The underlay (`eth0`: BGP, BFD, VXLAN).
    Underlay,
    /// The management network (`mgmt0`: evpnr ↔ evpnd gRPC).
    Mgmt,
}
/// The host's addresses.
pub const HOST_V4: &str = "172.16.0.10/24";
/// See [`HOST_V4`].
pub const HOST_V6: &str = "fec0::10/64";
/// The host's MAC.
pub const HOST_MAC: &str = "02:00:00:00:00:10";

pub use crate::bfd::Bfd;

/// How to build the fabric.
#[derive(Debug, Clone)]
pub struct FabricOpts {
    /// Number of routers (≥ 3: two gateway candidates and the leaf; more
    /// routers are more candidates). The last one is the leaf with the host.
    pub routers: usize,
    /// iBGP with router 1 as route reflector instead of a full mesh.
    pub route_reflector: bool,
    /// Namespace name prefix (unique per run, e.g. `ef<pid>`).
    pub prefix: String,
    /// The evpnd binary.
    pub evpnd_bin: PathBuf,
    /// The evpnr binary; `None` runs without a registry.
    pub evpnr_bin: Option<PathBuf>,
    /// Register the candidates' evpnds (routers 1..N-1) with evpnr. The
    /// leaf's evpnd never registers (it is not a gateway candidate, and
    /// evpnr would remove its eVPN as stale).
    pub register: bool,
    /// BIRD 2.20 binary.
    pub bird_bin: PathBuf,
    /// BIRD's `protocol device { scan time }` in seconds (evpnd's
    /// `bird.device-scan` is set to match, `docs/bird-notes.md` §4.6).
    pub device_scan_s: u32,
    /// evpnd's announce schedule.
    pub announce: Vec<String>,
    /// evpnd's `reconcile-interval` (e.g. `300s` in a test that must see
    /// drift repaired by something other than the periodic pass).
    pub reconcile_interval: String,
    /// Keep the scratch directory (logs) after the run.
    pub keep_dir: bool,
    /// Where the evpnds' and evpnr's state directories go (`<base>/<prefix>-rK`,
    /// `<base>/<prefix>-evpnr`);
    /// `None`: inside the scratch directory. `/dev/shm` takes the state
    /// store's fsync out of the measurement (diagnosis only: production
    /// keeps state on disk).
    pub state_base: Option<PathBuf>,
    /// BFD on every iBGP session (`None`: off, BGP's own timers only).
    pub bfd: Option<Bfd>,
    /// Also build the keepalived peer's own eVPN (VNI 200, devices made by
    /// the lab, not evpnd) and its host; see [`crate::vrrp_lab`].
    pub keepalived: bool,
    /// Extra lines of every evpnd's configuration under `evpnd:` (each
    /// indented by two spaces), e.g. a `health` section.
    pub evpnd_extra: String,
    /// evpnr's configuration file (`evpnr:` …), passed with `--config`.
    pub evpnr_config: Option<String>,
}

impl FabricOpts {
    /// Defaults: 3 routers, full mesh, binaries next to the running
    /// executable (or `$EVPND_BIN` / `$EVPNR_BIN` / `$BIRD220_BIN`).
    pub fn new(prefix: &str) -> FabricOpts {
        FabricOpts {
            routers: 3,
            route_reflector: false,
            prefix: prefix.to_string(),
            evpnd_bin: bin_path("evpnd", "EVPND_BIN"),
            evpnr_bin: None,
            register: false,
            bird_bin: std::env::var("BIRD220_BIN")
                .unwrap_or_else(|_| "/usr/local/bin/bird-2.20".into())
                .into(),
            device_scan_s: 1,
            announce: ["0s", "100ms", "500ms", "1s", "2s"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            reconcile_interval: "30s".into(),
            keep_dir: false,
            state_base: None,
            bfd: None,
            keepalived: false,
            evpnd_extra: String::new(),
            evpnr_config: None,
        }
    }
}

/// A workspace binary: `$<var>`, else next to the current executable (or
/// its parent, for test and bench executables in `target/<profile>/deps`).
pub fn bin_path(name: &str, var: &str) -> PathBuf {
    if let Ok(p) = std::env::var(var) {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    for _ in 0..2 {
        let c = dir.join(name);
        if c.is_file() {
            return c;
        }
        dir = dir.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    PathBuf::from(name)
}

/// One router.
pub struct Router {
    /// Instance ID (`r1`…).
    pub id: String,
    /// Underlay / VTEP / router-ID address.
    pub addr: Ipv4Addr,
    /// Management address (evpnd's gRPC).
    pub mgmt_addr: Ipv4Addr,
    /// Its namespace.
    pub ns: Netns,
    /// Its scratch directory.
    pub dir: PathBuf,
    /// BIRD's control socket.
    pub bird_sock: PathBuf,
    /// evpnd's BIRD include directory.
    pub include_dir: PathBuf,
    /// evpnd's gRPC URL.
    pub url: String,
    bird: Option<Proc>,
    evpnd: Option<Proc>,
}

impl Router {
    /// BIRD's pid, while it runs.
    pub fn bird_pid(&self) -> Option<u32> {
        self.bird.as_ref().and_then(Proc::pid)
    }
}

impl Router {
    /// A BIRD control-socket client.
    pub fn bird_client(&self) -> bird_ctl::BirdClient {
        bird_ctl::BirdClient::lazy(&self.bird_sock, bird_ctl::ClientOptions::default())
    }

    /// Its evpnd's log.
    pub fn evpnd_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("evpnd.log")).unwrap_or_default()
    }
}

/// The running fabric.
pub struct Fabric {
    /// The options it was built with.
    pub opts: FabricOpts,
    /// Routers; the last one is the leaf.
    pub routers: Vec<Router>,
    /// evpnr, if started.
    evpnr: Option<Proc>,
    /// The host namespace.
    pub host: Netns,
    /// The keepalived peer's host (`Some` when built with
    /// [`FabricOpts::keepalived`]).
    pub host_ka: Option<Netns>,
    /// The underlay namespace (one bridge, no addresses of its own).
    pub ul: Netns,
    /// The management namespace (the lab's gRPC clients and evpnr live here).
    pub mgmt: Netns,
    rt: Option<tokio::runtime::Runtime>,
    dir: Option<tempfile::TempDir>,
    /// The scratch directory.
    pub path: PathBuf,
}

fn bird_conf(opts: &FabricOpts, k: usize, dir: &Path, include: &Path) -> String {
    let me = k + 1;
    let mut s = format!(
        "router id 10.0.0.{me};\nlog \"{log}\" all;\ntimeformat log \"%F %T.%6f\";\n\
         protocol device {{ scan time {scan}; }}\n\
         protocol direct {{ ipv4; interface \"eth0\"; }}\n\
         evpn table evpntab;\n",
        log = dir.join("bird.log").display(),
        scan = opts.device_scan_s,
    );
    for j in 1..=opts.routers {
        if j == me {
            continue;
        }
        // Route reflector: router 1 peers with everyone, the others only with it.
        let rr = opts.route_reflector;
        if rr && me != 1 && j != 1 {
            continue;
        }
        let client = if rr && me == 1 { " rr client;" } else { "" };
        let bfd = if opts.bfd.is_some() { " bfd on;" } else { "" };
        s.push_str(&format!(
            "protocol bgp r{j} {{ local 10.0.0.{me} as 65000; neighbor 10.0.0.{j} as 65000;{client}{bfd} \
             connect delay time 1; connect retry time 2; error wait time 1, 2; \
             evpn {{ table evpntab; import all; export all; }}; }}\n"
        ));
    }
    if let Some(b) = opts.bfd {
        s.push_str(&b.bird_protocol());
    }
    if opts.keepalived {
        s.push_str(&crate::vrrp_lab::bird_snippet(me));
    }
    s.push_str(&format!("include \"{}/*.conf\";\n", include.display()));
    s
}

/// Router `r`'s evpnd state directory.
fn evpnd_state(opts: &FabricOpts, r: &Router) -> PathBuf {
    match &opts.state_base {
        Some(b) => b.join(format!("{}-{}", opts.prefix, r.id)),
        None => r.dir.join("state"),
    }
}

/// evpnr's state directory (`scratch`: the lab's scratch directory).
fn evpnr_state(opts: &FabricOpts, scratch: &Path) -> PathBuf {
    match &opts.state_base {
        Some(b) => b.join(format!("{}-evpnr", opts.prefix)),
        None => scratch.join("evpnr").join("state"),
    }
}

/// An evpnd's configuration in the lab (plaintext gRPC on the lab's
/// management network, which lives in its own namespaces: `tls.insecure`).
fn evpnd_conf(opts: &FabricOpts, r: &Router, registry: &str) -> String {
    format!(
        "evpnd:\n  instance-id: {id}\n  grpc-addr: \"{m}:{EVPND_PORT}\"\n  metrics-addr: \"127.0.0.1:9291\"\n  \
         registry: \"{registry}\"\n  state-dir: {state}\n  dataplane: linux\n  reconcile-interval: {ri}\n  \
         bird:\n    config: {main}\n    socket: {sock}\n    include-dir: {inc}\n    dialect: linux\n    \
         timeout: 5s\n    device-scan: {scan}s\n  evpn:\n    vtep-address: {a}\n    local-as: 65000\n  \
         announce:\n    schedule: [{sched}]\n  tls:\n    insecure: true\n{extra}",
        id = r.id,
        a = r.addr,
        m = r.mgmt_addr,
        state = evpnd_state(opts, r).display(),
        main = r.dir.join("bird.conf").display(),
        sock = r.bird_sock.display(),
        inc = r.include_dir.display(),
        scan = opts.device_scan_s,
        sched = opts.announce.join(", "),
        ri = opts.reconcile_interval,
        extra = opts.evpnd_extra,
    )
}

impl Fabric {
    /// Build everything and wait until every evpnd finished its start-up
    /// reconcile and every BGP session is established. On error, whatever
    /// was built is removed.
    pub fn build(opts: FabricOpts) -> anyhow::Result<Fabric> {
        if opts.routers < 3 {
            bail!("need at least 3 routers (two candidates and the leaf)");
        }
        for (what, p) in [("evpnd", &opts.evpnd_bin), ("BIRD 2.20", &opts.bird_bin)] {
            if !p.is_file() {
                bail!("{what} binary {} not found", p.display());
            }
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("evpnfabric-{}-", opts.prefix))
            .tempdir()?;
        let path = dir.path().to_path_buf();
        crate::netns::track_dir(&path);
        if let Some(b) = &opts.state_base {
            for k in 1..=opts.routers {
                crate::netns::track_dir(&b.join(format!("{}-r{k}", opts.prefix)));
            }
            crate::netns::track_dir(&evpnr_state(&opts, &path));
        }
        let p = opts.prefix.clone();
        let ul = Netns::create(&format!("{p}-ul"))?;
        let mgmt = Netns::create(&format!("{p}-mg"))?;
        let host = Netns::create(&format!("{p}-h"))?;
        let host_ka = if opts.keepalived {
            Some(Netns::create(&format!("{p}-hk"))?)
        } else {
            None
        };
        let mut f = Fabric {
            routers: Vec::new(),
            evpnr: None,
            host,
            host_ka,
            ul,
            mgmt,
            rt: None,
            dir: Some(dir),
            path,
            opts,
        };
        f.ul.ip(&["link", "add", "ul", "type", "bridge"])?;
        f.ul.ip(&["link", "set", "ul", "mtu", "9000", "up"])?;
        f.mgmt.ip(&["link", "add", "mgmt", "type", "bridge"])?;
        f.mgmt.ip(&["link", "set", "mgmt", "up"])?;
        f.mgmt
            .ip(&["addr", "add", &format!("{MGMT_ADDR}/24"), "dev", "mgmt"])?;
        for k in 0..f.opts.routers {
            let me = k + 1;
            let ns = Netns::create(&format!("{p}-r{me}"))?;
            let ulk = format!("ul{me}");
            f.ul.ip(&[
                "link", "add", &ulk, "mtu", "9000", "type", "veth", "peer", "name", "eth0", "mtu",
                "9000", "netns", &ns.name,
            ])?;
            f.ul.ip(&["link", "set", &ulk, "master", "ul", "up"])?;
            let addr = Ipv4Addr::new(10, 0, 0, me as u8);
            ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
            ns.ip(&["link", "set", "eth0", "up"])?;
            let mgk = format!("mg{me}");
            f.mgmt.ip(&[
                "link", "add", &mgk, "type", "veth", "peer", "name", "mgmt0", "netns", &ns.name,
            ])?;
            f.mgmt.ip(&["link", "set", &mgk, "master", "mgmt", "up"])?;
            let maddr = mgmt_addr(me);
            ns.ip(&["addr", "add", &format!("{maddr}/24"), "dev", "mgmt0"])?;
            ns.ip(&["link", "set", "mgmt0", "up"])?;
            let rdir = f.path.join(format!("r{me}"));
            let include_dir = rdir.join("evpn.d");
            std::fs::create_dir_all(&include_dir)?;
            std::fs::write(
                rdir.join("bird.conf"),
                bird_conf(&f.opts, k, &rdir, &include_dir),
            )?;
            f.routers.push(Router {
                id: format!("r{me}"),
                addr,
                mgmt_addr: maddr,
                bird_sock: rdir.join("bird.ctl"),
                url: format!("http://{maddr}:{EVPND_PORT}"),
                include_dir,
                dir: rdir,
                ns,
                bird: None,
                evpnd: None,
            });
        }
        // The host: a veth whose far end becomes a port of the leaf's bridge
        // once the eVPN exists there (see attach_host).
        let leaf = f.leaf();
        leaf.ns.ip(&[
            "link",
            "add",
            "hport",
            "type",
            "veth",
            "peer",
            "name",
            "h-eth0",
            "netns",
            &f.host.name,
        ])?;
        f.host
            .sysctl("net.ipv6.conf.h-eth0.accept_dad", "0")
            .context("host accept_dad")?;
        f.host
            .ip(&["link", "set", "h-eth0", "address", HOST_MAC, "up"])?;
        f.host.ip(&["addr", "add", HOST_V4, "dev", "h-eth0"])?;
        f.host
            .ip(&["addr", "add", HOST_V6, "dev", "h-eth0", "nodad"])?;
        if f.opts.keepalived {
            // Devices before BIRD starts (docs/bird-notes.md §4.6).
            let nodes: Vec<crate::vrrp_lab::Node<'_>> = f
                .routers
                .iter()
                .map(|r| crate::vrrp_lab::Node {
                    ns: &r.ns,
                    addr: r.addr.to_string(),
                })
                .collect();
            let host = f
                .host_ka
                .as_ref()
                .context("keepalived host namespace missing")?;
            crate::vrrp_lab::build_devices(&nodes, host)?;
        }
        // BIRD and evpnr first, then the evpnds.
        for i in 0..f.routers.len() {
            f.start_bird(i)?;
        }
        let registry = match f.opts.evpnr_bin.clone() {
            Some(bin) => {
                let d = f.path.join("evpnr");
                std::fs::create_dir_all(&d)?;
                let mut argv = vec![
                    bin.display().to_string(),
                    "--grpc-addr".into(),
                    format!("{MGMT_ADDR}:{EVPNR_PORT}"),
                    "--metrics-addr".into(),
                    "127.0.0.1:9290".into(),
                    "--state-dir".into(),
                    evpnr_state(&f.opts, &f.path).display().to_string(),
                    // The lab's management network is inside its own
                    // namespaces: plaintext on purpose.
                    "--tls-insecure".into(),
                ];
                if let Some(c) = &f.opts.evpnr_config {
                    let p = d.join("evpnr.yaml");
                    std::fs::write(&p, c)?;
                    argv.extend(["--config".into(), p.display().to_string()]);
                }
                let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
                let mut pr = f.mgmt.spawn(&argv, &d.join("evpnr.log"))?;
                pr.wait_log("grpc-listening", Duration::from_secs(20))?;
                f.evpnr = Some(pr);
                format!("{MGMT_ADDR}:{EVPNR_PORT}")
            }
            None => String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        for r in &f.routers {
            while !r.bird_sock.exists() {
                if Instant::now() > deadline {
                    bail!("BIRD of {} did not create its socket", r.id);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let evpnd_bin = f.opts.evpnd_bin.display().to_string();
        let n = f.routers.len();
        for k in 0..n {
            let reg = if f.opts.register && k + 1 < n {
                registry.as_str()
            } else {
                ""
            };
            let conf = evpnd_conf(&f.opts, &f.routers[k], reg);
            let r = &mut f.routers[k];
            let cfg = r.dir.join("evpnd.yaml");
            std::fs::write(&cfg, conf)?;
            let pr = r.ns.spawn(
                &[&evpnd_bin, "--config", &cfg.display().to_string()],
                &r.dir.join("evpnd.log"),
            )?;
            r.evpnd = Some(pr);
        }
        for r in &mut f.routers {
            if let Some(p) = r.evpnd.as_mut() {
                p.wait_log("reconcile-finished", Duration::from_secs(30))?;
            }
        }
        let mg_name = f.mgmt.name.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                if let Err(e) = crate::netns::enter(&mg_name) {
                    eprintln!(
                        "evpnfabric: runtime thread cannot enter the management network: {e:#}"
                    );
                }
            })
            .build()?;
        f.rt = Some(rt);
        f.wait_bgp(Duration::from_secs(30))?;
        Ok(f)
    }

    /// Start router `i`'s BIRD (not running: never started or killed).
    pub fn start_bird(&mut self, i: usize) -> anyhow::Result<()> {
        let bird_bin = self.opts.bird_bin.display().to_string();
        let r = &mut self.routers[i];
        if r.bird.is_some() {
            bail!("{}: BIRD runs already", r.id);
        }
        let d = &r.dir;
        let _ = std::fs::remove_file(&r.bird_sock);
        let pr = r.ns.spawn(
            &[
                &bird_bin,
                "-f",
                "-c",
                &d.join("bird.conf").display().to_string(),
                "-s",
                &r.bird_sock.display().to_string(),
                "-P",
                &d.join("bird.pid").display().to_string(),
            ],
            &d.join("bird.out"),
        )?;
        r.bird = Some(pr);
        Ok(())
    }

    /// SIGKILL router `i`'s BIRD (a crash: the kernel closes its sessions).
    pub fn kill_bird(&mut self, i: usize) -> anyhow::Result<()> {
        match self.routers[i].bird.take() {
            Some(mut p) => p.kill9(),
            None => bail!("{}: BIRD is not running", self.routers[i].id),
        }
    }

    /// SIGKILL router `i`'s evpnd (no clean-up of any kind);
    /// [`Fabric::restart_evpnd`] starts it again.
    pub fn kill_evpnd(&mut self, i: usize) -> anyhow::Result<()> {
        match self.routers[i].evpnd.take() {
            Some(mut p) => p.kill9(),
            None => bail!("{}: evpnd is not running", self.routers[i].id),
        }
    }

    /// Stop router `i`'s evpnd gracefully (SIGTERM); [`Fabric::restart_evpnd`]
    /// starts it again (e.g. to change the kernel while no evpnd watches).
    pub fn stop_evpnd(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(mut p) = self.routers[i].evpnd.take() {
            let st = p.terminate(Duration::from_secs(5))?;
            if !st.success() {
                bail!("{}: stopped with {st}", p.what);
            }
        }
        Ok(())
    }

    /// Restart router `i`'s evpnd (SIGTERM unless stopped, then the same
    /// command) and wait for its start-up reconcile; returns that
    /// `reconcile-finished` log line.
    pub fn restart_evpnd(&mut self, i: usize) -> anyhow::Result<String> {
        let r = &mut self.routers[i];
        let log = r.dir.join("evpnd.log");
        let count = |p: &Path| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .matches("reconcile-finished")
                .count()
        };
        if let Some(mut p) = r.evpnd.take() {
            // A restart is graceful: an evpnd that needs SIGKILL is an error.
            let st = p.terminate(Duration::from_secs(5))?;
            if !st.success() {
                bail!("{}: stopped with {st}", p.what);
            }
        }
        let before = count(&log);
        let cfg = r.dir.join("evpnd.yaml");
        let mut pr = r.ns.spawn(
            &[
                &self.opts.evpnd_bin.display().to_string(),
                "--config",
                &cfg.display().to_string(),
            ],
            &log,
        )?;
        pr.wait_log_count("reconcile-finished", before + 1, Duration::from_secs(30))?;
        r.evpnd = Some(pr);
        // The start-up pass's line: a drift-triggered pass may already have
        // followed it (e.g. after the start-up pass removed orphans).
        Ok(std::fs::read_to_string(&log)?
            .lines()
            .filter(|l| l.contains("reconcile-finished"))
            .nth(before)
            .unwrap_or_default()
            .to_string())
    }

    /// Cut (`up == false`) or restore router `i`'s link to network `net`.
    /// The underlay is cut inside the router (`eth0` down, so its BIRD and
    /// keepalived see the link go); the management network on the far side
    /// (`mgK` in `<p>-mg`), so only the path to evpnr and the lab breaks.
    pub fn set_link(&self, i: usize, net: Net, up: bool) -> anyhow::Result<()> {
        let state = if up { "up" } else { "down" };
        match net {
            Net::Underlay => self.routers[i].ns.ip(&["link", "set", "eth0", state])?,
            Net::Mgmt => self
                .mgmt
                .ip(&["link", "set", &format!("mg{}", i + 1), state])?,
        };
        Ok(())
    }

    /// The leaf router (the host hangs off it).
    pub fn leaf(&self) -> &Router {
        &self.routers[self.routers.len() - 1]
    }

    /// Run `fut` on the lab's runtime, whose threads live in the management
    /// namespace (so gRPC reaches evpnr and every evpnd).
    pub fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let rt = self.rt.as_ref().expect("runtime exists after build");
        rt.block_on(async { rt.spawn(fut).await.expect("lab task panicked") })
    }

    /// A runtime handle (tasks spawned on it run in the management namespace).
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.rt
            .as_ref()
            .expect("runtime exists after build")
            .handle()
            .clone()
    }

    /// The state directories: every evpnd's, and evpnr's when it runs.
    pub fn state_dirs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self
            .routers
            .iter()
            .map(|r| evpnd_state(&self.opts, r))
            .collect();
        if self.evpnr.is_some() {
            v.push(evpnr_state(&self.opts, &self.path));
        }
        v
    }

    /// evpnr's gRPC URL.
    pub fn evpnr_url(&self) -> String {
        format!("http://{MGMT_ADDR}:{EVPNR_PORT}")
    }

    /// Wait until every router's BGP sessions are established.
    pub fn wait_bgp(&self, timeout: Duration) -> anyhow::Result<()> {
        let socks: Vec<(String, PathBuf)> = self
            .routers
            .iter()
            .map(|r| (r.id.clone(), r.bird_sock.clone()))
            .collect();
        self.block_on(async move {
            let deadline = Instant::now() + timeout;
            for (id, sock) in socks {
                let c = bird_ctl::BirdClient::lazy(&sock, bird_ctl::ClientOptions::default());
                loop {
                    let ps = c.show_protocols(None, false).await.unwrap_or_default();
                    let bgp: Vec<_> = ps.iter().filter(|p| p.proto == "BGP").collect();
                    if !bgp.is_empty() && bgp.iter().all(|p| p.info.contains("Established")) {
                        break;
                    }
                    if Instant::now() > deadline {
                        bail!("{id}: BGP not established: {bgp:?}");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Ok(())
        })
    }

    /// Attach the host to the leaf's bridge of eVPN `slug` (after the eVPN
    /// exists on the leaf).
    pub fn attach_host(&self, slug: &str) -> anyhow::Result<()> {
        let br = netif::Slug::new(slug)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .names()
            .bridge;
        let leaf = self.leaf();
        leaf.ns.ip(&["link", "set", "hport", "master", &br])?;
        leaf.ns.ip(&["link", "set", "hport", "up"])?;
        Ok(())
    }

    /// A client for router `i`'s evpnd (call inside [`Fabric::block_on`]).
    pub async fn evpnd(url: String) -> anyhow::Result<EvpndClient<Channel>> {
        let ep = tonic::transport::Endpoint::from_shared(url.clone())?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        Ok(EvpndClient::new(
            ep.connect().await.with_context(|| url.clone())?,
        ))
    }

    /// Stop every evpnd, evpnr and BIRD, and delete every namespace. Also
    /// done on drop.
    pub fn shutdown(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
        for r in &mut self.routers {
            if let Some(mut p) = r.evpnd.take() {
                p.stop(Duration::from_secs(2));
            }
        }
        if let Some(mut p) = self.evpnr.take() {
            p.stop(Duration::from_secs(2));
        }
        for r in &mut self.routers {
            if let Some(mut p) = r.bird.take() {
                p.stop(Duration::from_secs(1));
            }
        }
        if let Some(b) = &self.opts.state_base {
            for r in &self.routers {
                let _ = std::fs::remove_dir_all(b.join(format!("{}-{}", self.opts.prefix, r.id)));
            }
            let e = evpnr_state(&self.opts, &self.path);
            let _ = std::fs::remove_dir_all(&e);
            crate::netns::untrack_dir(&e);
        }
        // Namespaces go with their Netns values; routers first.
        self.routers.clear();
        crate::netns::untrack_dir(&self.path);
        if let Some(b) = &self.opts.state_base {
            for r in &self.routers {
                crate::netns::untrack_dir(&b.join(format!("{}-{}", self.opts.prefix, r.id)));
            }
        }
        if self.opts.keep_dir
            && let Some(d) = self.dir.take()
        {
            let p = d.keep();
            eprintln!("evpnfabric: logs kept in {}", p.display());
        }
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A CreateEvpnInstance request for `slug`/`vni` (RD, route targets and
/// VTEP from evpnd's defaults).
pub fn create_evpn_req(id: &str, slug: &str, vni: u32) -> v1::CreateEvpnInstanceRequest {
    v1::CreateEvpnInstanceRequest {
        instance_id: id.into(),
        slug: slug.into(),
        vni,
        ..Default::default()
    }
}
