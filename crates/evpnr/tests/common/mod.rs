//! A fleet for evpnr tests: the real `evpnr` binary and real `evpnd`
//! processes, each on its own in-process `vppsim` and its own real BIRD 2.20
//! (linux dialect). Processes are killed in `Drop`. Tests that use a fleet
//! take [`serial`] so that only one fleet runs at a time on a small machine.
//!
//! [`Fleet::on_fabric`] builds the fleet on a simulated fabric instead:
//! each host's BIRD is an in-process `birdsim` (vpp dialect) on one
//! `birdsim::fabric::Fabric`, fed by the host's vppsim, so a host sees the
//! vMAC routes the others announce; and evpnr and each evpnd talk through a
//! cuttable proxy (the management network), so both kinds of partition can
//! be injected ([`Host::set_fabric_link`], [`Host::set_mgmt_link`]).
#![allow(dead_code)]

use std::{
    collections::HashMap,
    net::TcpListener,
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

use birdsim::fabric::{Fabric, FabricOptions};
use evpn_testkit::proxy::Proxy;

use evpn_api::v1::{self, evpnr_client::EvpnrClient};
use evpn_testkit::{
    Daemon,
    bird::{Bird, Version, bird_bin},
};
use tonic::transport::Channel;
use vppsim::{SimHandle, SimOptions, VppSim};

pub const EVPNR: &str = env!("CARGO_BIN_EXE_evpnr");
pub const T: Duration = Duration::from_secs(30);

/// Serialises fleet tests (each fleet runs several daemons and BIRDs).
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static M: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    M.get_or_init(|| tokio::sync::Mutex::new(())).lock().await
}

/// The evpnd binary next to evpnr's, built once per test run.
pub fn evpnd_bin() -> PathBuf {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| {
        let p = PathBuf::from(EVPNR).with_file_name("evpnd");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // Same profile as evpnr (benchmarks run release builds).
        let release = p
            .parent()
            .and_then(|d| d.file_name())
            .is_some_and(|n| n == "release");
        let mut args = vec!["build", "--quiet", "-p", "evpnd"];
        if release {
            args.push("--release");
        }
        let st = std::process::Command::new(cargo)
            .args(&args)
            .status()
            .expect("run cargo build -p evpnd");
        assert!(st.success(), "cargo build -p evpnd failed");
        assert!(p.exists(), "{} missing", p.display());
        p
    })
    .clone()
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A host's BIRD: real BIRD 2.20 (linux dialect), or birdsim (vpp dialect)
/// on the fleet's simulated fabric.
pub enum HostBird {
    Real(Bird),
    Sim {
        /// `None` while killed.
        sim: Option<birdsim::SimHandle>,
        fabric: Fabric,
        main: PathBuf,
        sock: PathBuf,
        include: PathBuf,
    },
}

impl HostBird {
    /// (main config, control socket, include dir, evpnd dialect).
    fn paths(&self) -> (&Path, &Path, &Path, &'static str) {
        match self {
            HostBird::Real(b) => (&b.main, &b.sock, &b.include, "linux"),
            HostBird::Sim {
                main,
                sock,
                include,
                ..
            } => (main, sock, include, "vpp"),
        }
    }
}

/// The management network of a host on a simulated fabric: evpnr reaches
/// the evpnd through `to_evpnd`, the evpnd reaches evpnr through `to_evpnr`.
pub struct Mgmt {
    pub to_evpnd: Proxy,
    pub to_evpnr: Proxy,
}

/// One router: vppsim + BIRD 2.20 + evpnd registering with evpnr.
pub struct Host {
    pub id: String,
    pub n: u8,
    pub sim: SimHandle,
    pub bird: HostBird,
    pub evpnd: Option<Daemon>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    registry: String,
    pub mgmt: Option<Mgmt>,
    /// Appended to the evpnd configuration (keys under `evpnd:`).
    pub evpnd_extra: String,
}

impl Host {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// This host's VTEP address.
    pub fn vtep(&self) -> String {
        format!("192.0.2.{}", self.n)
    }

    fn config(&self) -> String {
        let (main, sock, inc, dialect) = self.bird.paths();
        let (reg, advertise) = match &self.mgmt {
            Some(m) => (
                m.to_evpnr.addr().to_string(),
                format!("  advertise-addr: {}\n", m.to_evpnd.addr()),
            ),
            None => (self.registry.clone(), String::new()),
        };
        format!(
            "evpnd:\n  instance-id: {id}\n  grpc-addr: 127.0.0.1:{port}\n{advertise}  metrics-addr: 127.0.0.1:0\n  state-dir: {state}\n  registry: {reg}\n  dataplane: vpp\n  vpp:\n    api-socket: {vpp}\n    timeout: 2s\n  bird:\n    config: {main}\n    socket: {sock}\n    include-dir: {inc}\n    dialect: {dialect}\n    timeout: 5s\n  evpn:\n    vtep-address: 192.0.2.{n}\n    local-as: 65000\n  announce:\n    schedule: [0s]\n{extra}",
            extra = self.evpnd_extra,
            id = self.id,
            port = self.port,
            n = self.n,
            state = self.dir.path().join("state").display(),
            vpp = self.sim.socket_path().display(),
            main = main.display(),
            sock = sock.display(),
            inc = inc.display(),
        )
    }

    /// The fabric this host is on (fleets made by [`Fleet::on_fabric`]).
    pub fn fabric(&self) -> &Fabric {
        match &self.bird {
            HostBird::Sim { fabric, .. } => fabric,
            HostBird::Real(_) => panic!("{} is not on a simulated fabric", self.id),
        }
    }

    /// Kill this host's BIRD. A simulated one answers nothing and its routes
    /// are withdrawn after the fabric's delay.
    pub fn kill_bird(&mut self) {
        match &mut self.bird {
            HostBird::Sim { sim, .. } => sim.take().expect("birdsim running").kill(),
            HostBird::Real(b) => b.kill(),
        }
    }

    /// Start this host's (simulated) BIRD again, from its files.
    pub async fn start_bird(&mut self) {
        let id = self.id.clone();
        if let HostBird::Sim {
            sim,
            fabric,
            main,
            sock,
            ..
        } = &mut self.bird
        {
            *sim = Some(
                birdsim::BirdSim::start_on(main, sock, fabric, &id)
                    .await
                    .unwrap(),
            );
        } else {
            panic!("start_bird needs a simulated fabric");
        }
    }

    /// Cut (`false`) or heal (`true`) this host's link to the fabric.
    pub fn set_fabric_link(&self, up: bool) {
        self.fabric().set_link(&self.id, up);
    }

    /// Cut (`false`) or heal (`true`) the management network between this
    /// host's evpnd and evpnr (both directions).
    pub fn set_mgmt_link(&self, up: bool) {
        let m = self.mgmt.as_ref().expect("a fleet on a simulated fabric");
        for p in [&m.to_evpnd, &m.to_evpnr] {
            if up { p.heal() } else { p.cut() }
        }
    }

    /// Hold the management connections open so far for good (both ways),
    /// as TCP connections in retransmission back-off after a partition;
    /// new ones work once the link is up.
    pub fn stall_mgmt_connections(&self) {
        let m = self.mgmt.as_ref().expect("a fleet on a simulated fabric");
        m.to_evpnd.stall_existing();
        m.to_evpnr.stall_existing();
    }

    /// Cut (`false`) or heal (`true`) only the way from this host's evpnd
    /// to evpnr (its heartbeats): evpnr's calls to the evpnd still work.
    pub fn set_heartbeat_link(&self, up: bool) {
        let m = self.mgmt.as_ref().expect("a fleet on a simulated fabric");
        if up {
            m.to_evpnr.heal()
        } else {
            m.to_evpnr.cut()
        }
    }

    /// Slow the way from evpnr to this host's evpnd: evpnr's calls and
    /// their answers are each held `d` (zero ends it); heartbeats are not.
    pub fn set_call_delay(&self, d: Duration) {
        let m = self.mgmt.as_ref().expect("a fleet on a simulated fabric");
        m.to_evpnd.set_delay(d);
    }

    /// Start (or restart) evpnd.
    pub fn start_evpnd(&mut self) {
        let cfg = self.dir.path().join("evpnd.yaml");
        std::fs::write(&cfg, self.config()).unwrap();
        let d = Daemon::spawn(
            evpnd_bin().to_str().unwrap(),
            &["--config", cfg.to_str().unwrap()],
            &[],
        )
        .unwrap();
        self.evpnd = Some(d);
    }

    /// SIGKILL evpnd (VPP and BIRD keep their state).
    pub fn kill_evpnd(&mut self) {
        if let Some(d) = self.evpnd.take() {
            let _ = d.signal(nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Wall-clock ns of the vppsim journal entries that set a MAC on an
    /// interface, as (wall_ns, sw_if_index, mac).
    pub fn mac_changes(&self) -> Vec<(u64, u32, String)> {
        self.sim
            .journal()
            .into_iter()
            .filter(|e| e.retval == 0 && !e.injected)
            .filter(|e| {
                matches!(
                    e.msg.as_str(),
                    "create_loopback" | "create_loopback_instance" | "sw_interface_set_mac_address"
                )
            })
            .filter_map(|e| {
                Some((
                    e.wall_ns,
                    e.u32("sw_if_index")?,
                    e.str("mac")?.to_lowercase(),
                ))
            })
            .collect()
    }

    /// Names of state-changing VPP calls in the journal (announcements
    /// excluded).
    pub fn changes(&self) -> Vec<String> {
        self.sim
            .journal()
            .into_iter()
            .filter(|e| e.msg != "arping")
            .map(|e| e.msg)
            .collect()
    }

    /// Interfaces that carry `mac` in this host's VPP now.
    pub fn holds(&self, mac: &str) -> bool {
        self.sim
            .state()
            .interfaces
            .values()
            .any(|i| i.mac.to_string().eq_ignore_ascii_case(mac))
    }
}

/// evpnr plus hosts.
pub struct Fleet {
    pub evpnr: Option<Daemon>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub hosts: Vec<Host>,
    /// evpnr's log level: `debug` for tests, the shipped default `info`
    /// for benchmarks.
    pub evpnr_log_level: &'static str,
    /// evpnr's `move.max-wait` (the evidence wait of a move).
    pub move_max_wait: &'static str,
    /// evpnr's `member-timeout` (3 s unless a test needs another).
    pub member_timeout: &'static str,
    /// The simulated fabric (fleets made by [`Fleet::on_fabric`]).
    pub fabric: Option<Fabric>,
    /// Appended to evpnr's configuration (keys under `evpnr:`).
    pub evpnr_extra: String,
    /// Appended to evpnr's `move:` settings (keys indented by 4).
    pub move_extra: String,
    /// The test's own client TLS when evpnr serves mutual TLS.
    pub tls: Option<std::sync::Arc<evpn_tls::ClientTls>>,
}

impl Fleet {
    /// A fleet of hosts named `ids`, evpnr started (the test fails when BIRD 2.20 is
    /// missing).
    pub async fn new(test: &str, ids: &[&str]) -> Fleet {
        Self::with_log_level(test, ids, "debug").await
    }

    /// Like [`Fleet::new`] with evpnr logging at `level`.
    pub async fn with_log_level(test: &str, ids: &[&str], level: &'static str) -> Fleet {
        let bin = bird_bin(Version::V2_20, test);
        let dir = tempfile::Builder::new()
            .prefix("evpnr-fleet-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let mut hosts = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let hdir = tempfile::Builder::new()
                .prefix("evpnr-host-")
                .tempdir()
                .unwrap();
            let sim = VppSim::start(hdir.path().join("vpp.sock"), SimOptions::default())
                .await
                .unwrap();
            let bird = HostBird::Real(Bird::start(&bin, "evpn table evpntab;", None));
            hosts.push(Host {
                id: id.to_string(),
                n: i as u8 + 1,
                sim,
                bird,
                evpnd: None,
                dir: hdir,
                port: free_port(),
                registry: format!("127.0.0.1:{port}"),
                mgmt: None,
                evpnd_extra: String::new(),
            });
        }
        let mut f = Fleet {
            evpnr: None,
            evpnr_log_level: level,
            move_max_wait: "500ms",
            fabric: None,
            member_timeout: "3s",
            evpnr_extra: String::new(),
            move_extra: String::new(),
            tls: None,
            dir,
            port,
            hosts,
        };
        f.start_evpnr();
        f
    }

    /// A fleet of hosts named `ids` on a simulated fabric (see the module
    /// documentation), evpnr started with `move.max-wait` = `max_wait`.
    pub async fn on_fabric(ids: &[&str], opts: FabricOptions, max_wait: &'static str) -> Fleet {
        let fabric = Fabric::new(opts);
        let dir = tempfile::Builder::new()
            .prefix("evpnr-fabric-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let registry = format!("127.0.0.1:{port}");
        let mut hosts = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let n = i as u8 + 1;
            let hdir = tempfile::Builder::new()
                .prefix("evpnr-host-")
                .tempdir()
                .unwrap();
            let sim = VppSim::start(hdir.path().join("vpp.sock"), SimOptions::default())
                .await
                .unwrap();
            let (fb, h) = (fabric.clone(), id.to_string());
            sim.observe(move |st| fb.set_dataplane(&h, st.bvi_macs()));
            let include = hdir.path().join("bird.d");
            std::fs::create_dir_all(&include).unwrap();
            let main = hdir.path().join("bird.conf");
            std::fs::write(
                &main,
                format!(
                    "router id 10.0.0.{n};\nprotocol device {{ scan time 2; }}\nevpn table evpntab;\nprotocol bgp rr {{ local as 65000; neighbor 192.0.2.254 as 65000; evpn {{ table evpntab; }}; }}\ninclude \"{}/*.conf\";\n",
                    include.display()
                ),
            )
            .unwrap();
            let sock = hdir.path().join("bird.ctl");
            let bs = birdsim::BirdSim::start_on(&main, &sock, &fabric, id)
                .await
                .unwrap();
            let grpc = free_port();
            let mgmt = Mgmt {
                to_evpnd: Proxy::start(&format!("127.0.0.1:{grpc}")).await.unwrap(),
                to_evpnr: Proxy::start(&registry).await.unwrap(),
            };
            hosts.push(Host {
                id: id.to_string(),
                n,
                sim,
                bird: HostBird::Sim {
                    sim: Some(bs),
                    fabric: fabric.clone(),
                    main,
                    sock,
                    include,
                },
                evpnd: None,
                dir: hdir,
                port: grpc,
                registry: registry.clone(),
                mgmt: Some(mgmt),
                evpnd_extra: String::new(),
            });
        }
        let mut f = Fleet {
            evpnr: None,
            evpnr_log_level: "debug",
            move_max_wait: max_wait,
            fabric: Some(fabric),
            member_timeout: "3s",
            evpnr_extra: String::new(),
            move_extra: String::new(),
            tls: None,
            dir,
            port,
            hosts,
        };
        f.start_evpnr();
        f
    }

    /// Start (or restart) evpnr on its fixed port with its state dir.
    pub fn start_evpnr(&mut self) {
        let cfg = self.dir.path().join("evpnr.yaml");
        std::fs::write(
            &cfg,
            format!(
                "evpnr:\n  grpc-addr: 127.0.0.1:{}\n  metrics-addr: 127.0.0.1:0\n  log-level: {}\n  state-dir: {}\n  member-timeout: {}\n  move:\n    max-wait: {}\n{}{}",
                self.port,
                self.evpnr_log_level,
                self.dir.path().join("state").display(),
                self.member_timeout,
                self.move_max_wait,
                self.move_extra,
                self.evpnr_extra,
            ),
        )
        .unwrap();
        let d = Daemon::spawn(EVPNR, &["--config", cfg.to_str().unwrap()], &[]).unwrap();
        d.grpc_url().unwrap();
        self.evpnr = Some(d);
    }

    /// SIGKILL evpnr and start it again: how a test applies a changed
    /// `move_extra` / `evpnr_extra` (or crashes evpnr between two steps).
    pub fn restart_evpnr(&mut self) {
        self.kill_evpnr();
        self.start_evpnr();
    }

    /// SIGKILL evpnr.
    pub fn kill_evpnr(&mut self) {
        if let Some(mut d) = self.evpnr.take() {
            d.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
            let _ = d.wait_exit(T);
        }
    }

    pub fn evpnr(&self) -> &Daemon {
        self.evpnr.as_ref().expect("evpnr running")
    }

    pub async fn client(&self) -> EvpnrClient<Channel> {
        let addr = format!("127.0.0.1:{}", self.port);
        match &self.tls {
            Some(t) => EvpnrClient::new(
                t.channel(&addr, evpn_tls::Expect::AnyRegistry, |e| e)
                    .unwrap(),
            ),
            None => EvpnrClient::connect(format!("http://{addr}"))
                .await
                .unwrap(),
        }
    }

    pub fn host(&self, id: &str) -> &Host {
        self.hosts.iter().find(|h| h.id == id).unwrap()
    }

    pub fn host_mut(&mut self, id: &str) -> &mut Host {
        self.hosts.iter_mut().find(|h| h.id == id).unwrap()
    }

    /// Start every evpnd and wait until all are connected and ready.
    pub async fn start_all(&mut self) {
        for h in &mut self.hosts {
            h.start_evpnd();
        }
        let ids: Vec<String> = self.hosts.iter().map(|h| h.id.clone()).collect();
        for id in ids {
            self.wait_ready(&id).await;
        }
    }

    /// Wait until `id` is registered, connected and ready.
    pub async fn wait_ready(&self, id: &str) {
        let mut c = self.client().await;
        let id = id.to_string();
        wait_for(&format!("{id} connected and ready"), || {
            let mut c = c.clone();
            let id = id.clone();
            async move {
                c.list_instances(v1::Empty {}).await.ok().is_some_and(|l| {
                    l.into_inner().instances.iter().any(|i| {
                        i.instance_id == id
                            && i.ready
                            && i.state == v1::instance::State::Connected as i32
                    })
                })
            }
        })
        .await;
        let _ = c.list_instances(v1::Empty {}).await;
    }

    /// A client to host `id`'s evpnd that acts as its registry (stamped with
    /// the epoch the evpnd has accepted): for making drift behind evpnr's
    /// back, which a managed evpnd refuses from anyone else.
    pub async fn evpnd_as_registry(
        &self,
        id: &str,
    ) -> evpn_api::v1::evpnd_client::EvpndClient<
        tonic::service::interceptor::InterceptedService<Channel, evpn_daemon::identity::Stamp>,
    > {
        let ch = Channel::from_shared(format!("http://{}", self.host(id).addr()))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let epoch = evpn_api::v1::evpnd_client::EvpndClient::new(ch.clone())
            .get_instance(v1::InstanceRef::default())
            .await
            .unwrap()
            .into_inner()
            .registry_epoch;
        evpn_api::v1::evpnd_client::EvpndClient::with_interceptor(
            ch,
            evpn_daemon::identity::Stamp::new(id, epoch),
        )
    }

    /// Group `test`'s failover: `mode` (auto or manual), `preempt` (ms),
    /// no hold-down, no warm-up.
    pub async fn set_test_failover(&self, mode: &str, preempt: Option<u64>) {
        self.client()
            .await
            .set_group_failover(v1::SetGroupFailoverRequest {
                group_id: "test".into(),
                mode: mode.into(),
                preempt_ms: preempt,
                hold_down_ms: Some(0),
                warm_up_ms: Some(0),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// Group `test` (VNI 100) with every host as a member and a GroupBVI
    /// with 172.16.0.32/24 and fec0::32/64, bound on `primary` when given;
    /// returns the vMAC.
    pub async fn test_group(&self, primary: Option<&str>) -> String {
        let mut c = self.client().await;
        let g = c
            .create_group(v1::CreateGroupRequest {
                group_id: "test".into(),
                vni: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for h in &self.hosts {
            c.add_group_member(v1::GroupMemberRequest {
                group_id: "test".into(),
                instance_id: h.id.clone(),
            })
            .await
            .unwrap();
        }
        c.create_group_bvi(v1::GroupBviRequest {
            group_id: "test".into(),
            addresses: vec![prefix("172.16.0.32", 24), prefix("fec0::32", 64)],
        })
        .await
        .unwrap();
        if let Some(p) = primary {
            c.bind_group_bvi(v1::BindGroupBviRequest {
                group_id: "test".into(),
                instance_id: p.into(),
            })
            .await
            .unwrap();
        }
        g.vmac
    }

    /// MoveGroupBVI of group `test` to `id`.
    pub async fn move_to(&self, id: &str, force: bool) -> Result<v1::Group, tonic::Status> {
        self.client()
            .await
            .move_group_bvi(v1::MoveGroupBviRequest {
                group_id: "test".into(),
                instance_id: id.into(),
                force,
            })
            .await
            .map(|r| r.into_inner())
    }

    /// One host's BVI for `slug` as its evpnd reports it (through evpnr).
    pub async fn bvi(&self, id: &str, slug: &str) -> Option<v1::Bvi> {
        self.client()
            .await
            .get_bvi(v1::EvpnRef {
                instance_id: id.into(),
                slug: slug.into(),
            })
            .await
            .ok()
            .map(|r| r.into_inner())
    }

    pub async fn group(&self, id: &str) -> v1::Group {
        self.client()
            .await
            .get_group(v1::GroupRef {
                group_id: id.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// The evpnr metrics text.
    pub fn metrics(&self) -> String {
        evpn_testkit::http_get(&self.evpnr().metrics_addr().unwrap(), "/metrics")
            .unwrap()
            .1
    }

    /// Replay every host's MAC changes in wall-clock order and fail if two
    /// hosts ever held `vmac` at the same time. `dead` gives hosts that died
    /// (wall ns): from then on they count as holding nothing. Returns the
    /// number of times a host took the vMAC.
    pub fn check_vmac_exclusive(&self, vmac: &str, dead: &[(&str, u64)]) -> Result<usize, String> {
        let vmac = vmac.to_lowercase();
        let mut ev: Vec<(u64, usize, Option<u32>, String)> = Vec::new();
        for (hi, h) in self.hosts.iter().enumerate() {
            for (t, idx, mac) in h.mac_changes() {
                ev.push((t, hi, Some(idx), mac));
            }
            for (id, t) in dead {
                if *id == h.id {
                    ev.push((*t, hi, None, String::new()));
                }
            }
        }
        ev.sort();
        let mut holders: HashMap<(usize, u32), String> = HashMap::new();
        let mut takes = 0;
        for (t, hi, idx, mac) in ev {
            match idx {
                None => holders.retain(|(h, _), _| *h != hi),
                Some(i) => {
                    if mac == vmac {
                        takes += 1;
                    }
                    holders.insert((hi, i), mac);
                }
            }
            let owners: Vec<usize> = holders
                .iter()
                .filter(|(_, m)| **m == vmac)
                .map(|((h, _), _)| *h)
                .collect();
            if owners.len() > 1 {
                return Err(format!(
                    "two holders of {vmac} at {t}: {:?}",
                    owners
                        .iter()
                        .map(|h| &self.hosts[*h].id)
                        .collect::<Vec<_>>()
                ));
            }
        }
        Ok(takes)
    }
}

/// [`evpn_testkit::eventually`] with this suite's timeout [`T`]; panics naming `what`.
pub async fn wait_for(what: &str, cond: impl AsyncFnMut() -> bool) {
    evpn_testkit::eventually(what, T, cond).await.unwrap()
}

/// Wall-clock now in ns.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

pub fn prefix(a: &str, l: u32) -> v1::Prefix {
    v1::Prefix {
        address: a.into(),
        prefix_len: l,
    }
}

/// A stream of evpnr's events.
pub type Events = tonic::Streaming<v1::Event>;

/// evpnr's events of kind `failover`.
pub async fn failover_events(f: &Fleet) -> Events {
    f.client()
        .await
        .watch_events(v1::WatchEventsRequest {
            types: vec!["failover".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// The next event named one of `names` (others are skipped); fails after
/// [`T`].
pub async fn next_event_of(ev: &mut Events, names: &[&str]) -> v1::Event {
    loop {
        let e = tokio::time::timeout(T, futures::StreamExt::next(ev))
            .await
            .unwrap_or_else(|_| panic!("no {names:?} event within {T:?}"))
            .unwrap()
            .unwrap();
        if names.contains(&e.message.as_str()) {
            return e;
        }
    }
}
