//! A host for evpnd tests: an in-process `vppsim`, a real BIRD 2.20 (linux
//! dialect; stock BIRD cannot parse the vpp dialect's `vppevpn` protocol),
//! and the real `evpnd` binary configured against both.
#![allow(dead_code)]

use std::time::Duration;

use evpn_api::v1::{self, evpnd_client::EvpndClient};
use evpn_testkit::{
    Daemon,
    bird::{Bird, Version, bird_bin},
};
use tonic::transport::Channel;
use vppsim::{SimHandle, SimOptions, VppSim};

pub const BIN: &str = env!("CARGO_BIN_EXE_evpnd");
pub const T: Duration = Duration::from_secs(30);

/// Messages that change VPP state but are not the BVI's identity.
pub fn is_announce(msg: &str) -> bool {
    msg == "arping"
}

pub struct Host {
    pub sim: SimHandle,
    pub bird: Bird,
    pub evpnd: Option<Daemon>,
    pub dir: tempfile::TempDir,
    pub id: String,
}

impl Host {
    /// Start vppsim and BIRD (the test fails when BIRD 2.20 is missing).
    pub async fn new(test: &str, id: &str) -> Host {
        let bin = bird_bin(Version::V2_20, test);
        let dir = tempfile::Builder::new()
            .prefix("evpnd-host-")
            .tempdir()
            .unwrap();
        let sim = VppSim::start(dir.path().join("vpp.sock"), SimOptions::default())
            .await
            .unwrap();
        let bird = Bird::start(&bin, "evpn table evpntab;", None);
        Host {
            sim,
            bird,
            evpnd: None,
            dir,
            id: id.to_string(),
        }
    }

    /// The evpnd config file.
    pub fn config(&self) -> String {
        format!(
            "evpnd:\n  instance-id: {id}\n  grpc-addr: 127.0.0.1:0\n  metrics-addr: 127.0.0.1:0\n  state-dir: {state}\n  dataplane: vpp\n  vpp:\n    api-socket: {vpp}\n    timeout: 2s\n  bird:\n    config: {main}\n    socket: {sock}\n    include-dir: {inc}\n    dialect: linux\n    timeout: 5s\n  evpn:\n    vtep-address: 192.0.2.1\n    local-as: 65000\n  announce:\n    schedule: [0s, 50ms]\n",
            id = self.id,
            state = self.dir.path().join("state").display(),
            vpp = self.sim.socket_path().display(),
            main = self.bird.main.display(),
            sock = self.bird.sock.display(),
            inc = self.bird.include.display(),
        )
    }

    /// Start (or restart) evpnd and wait until its reconcile finished.
    pub fn start_evpnd(&mut self) -> &Daemon {
        let cfg = self.dir.path().join("evpnd.yaml");
        std::fs::write(&cfg, self.config()).unwrap();
        let d = Daemon::spawn(BIN, &["--config", cfg.to_str().unwrap()], &[]).unwrap();
        d.wait_log("reconcile-finished", T).unwrap();
        self.evpnd = Some(d);
        self.evpnd.as_ref().unwrap()
    }

    /// Start evpnd without waiting for readiness.
    pub fn spawn_evpnd(&mut self) -> &Daemon {
        let cfg = self.dir.path().join("evpnd.yaml");
        std::fs::write(&cfg, self.config()).unwrap();
        self.evpnd = Some(Daemon::spawn(BIN, &["--config", cfg.to_str().unwrap()], &[]).unwrap());
        self.evpnd.as_ref().unwrap()
    }

    pub fn evpnd(&self) -> &Daemon {
        self.evpnd.as_ref().expect("evpnd running")
    }

    pub async fn client(&self) -> EvpndClient<Channel> {
        EvpndClient::connect(self.evpnd().grpc_url().unwrap())
            .await
            .unwrap()
    }

    /// Start evpnd with `reconcile-interval: interval` and, with
    /// `registry`, a registry address nobody answers on (so bindings are the
    /// registry's, which never comes); waits for the start-up reconcile.
    pub fn start_evpnd_with(&mut self, interval: &str, registry: bool) -> &Daemon {
        let mut extra = format!("  reconcile-interval: {interval}\n");
        if registry {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            extra.push_str(&format!("  registry: 127.0.0.1:{port}\n"));
        }
        let cfg = self
            .config()
            .replace("evpnd:\n", &format!("evpnd:\n{extra}"));
        let path = self.dir.path().join("evpnd.yaml");
        std::fs::write(&path, cfg).unwrap();
        let d = Daemon::spawn(BIN, &["--config", path.to_str().unwrap()], &[]).unwrap();
        d.wait_log("reconcile-finished", T).unwrap();
        self.evpnd = Some(d);
        self.evpnd()
    }

    /// A client that acts as this host's registry: every call is stamped
    /// with this instance's ID and registry epoch `epoch`, as evpnr's are.
    pub async fn registry_client(
        &self,
        epoch: u64,
    ) -> EvpndClient<
        tonic::service::interceptor::InterceptedService<Channel, evpn_daemon::identity::Stamp>,
    > {
        let ch = Channel::from_shared(self.evpnd().grpc_url().unwrap())
            .unwrap()
            .connect()
            .await
            .unwrap();
        EvpndClient::with_interceptor(ch, evpn_daemon::identity::Stamp::new(&self.id, epoch))
    }

    /// Kill evpnd with SIGKILL (a crash).
    pub fn crash(&mut self) {
        if let Some(d) = self.evpnd.take() {
            d.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
            drop(d);
        }
    }

    /// Waits until VPP has sent at least `n` announcements (journal); returns how many.
    pub async fn announced(&self, n: usize) -> usize {
        evpn_testkit::eventually(format!("{n} announcements"), T, async || {
            let sent = self
                .sim
                .journal()
                .iter()
                .filter(|e| is_announce(&e.msg))
                .count();
            if sent >= n {
                Ok(sent)
            } else {
                Err(format!("{sent} sent"))
            }
        })
        .await
        .unwrap()
    }

    /// Journal entries (message names) that changed state, excluding announcements.
    pub fn changes(&self) -> Vec<String> {
        self.sim
            .journal()
            .into_iter()
            .filter(|e| !is_announce(&e.msg))
            .map(|e| e.msg)
            .collect()
    }

    pub fn snippet(&self, slug: &str) -> Option<String> {
        std::fs::read_to_string(self.bird.include.join(format!("evpn-{slug}.conf"))).ok()
    }
}

/// A CreateEvpnInstance request for `slug` with VNI `vni`, defaults otherwise.
pub fn create_req(slug: &str, vni: u32) -> v1::CreateEvpnInstanceRequest {
    v1::CreateEvpnInstanceRequest {
        slug: slug.into(),
        vni,
        ..Default::default()
    }
}

/// Create eVPN `slug` (VNI `vni`) and its BVI with the default MAC and MTU.
pub async fn create_evpn_with_bvi(c: &mut EvpndClient<Channel>, slug: &str, vni: u32) {
    c.create_evpn_instance(create_req(slug, vni)).await.unwrap();
    c.create_bvi(v1::CreateBviRequest {
        slug: slug.into(),
        ..Default::default()
    })
    .await
    .unwrap();
}

/// The gateway addresses the lifecycle tests bind (IPv4 and IPv6).
pub fn gw() -> Vec<v1::Prefix> {
    vec![
        v1::Prefix {
            address: "172.16.0.32".into(),
            prefix_len: 24,
        },
        v1::Prefix {
            address: "fec0::32".into(),
            prefix_len: 64,
        },
    ]
}

/// The gateway vMAC and the BVI's per-host MAC of those tests.
pub const VMAC: &str = "42:6c:fa:d6:82:98";
pub const HOST_MAC: &str = "02:aa:bb:cc:dd:01";

/// A bind of group `test` on eVPN `test` with [`VMAC`] and [`gw`].
pub fn bind_req() -> v1::HostBindGroupBviRequest {
    v1::HostBindGroupBviRequest {
        slug: "test".into(),
        group_id: "test".into(),
        vmac: VMAC.into(),
        addresses: gw(),
        ..Default::default()
    }
}
