//! Faults injected before an operation (see docs/chaos.md for the table),
//! and their end: VPP latency, hangs, errors, disconnects and late writes,
//! failing and slow BIRD replies, failing state stores (disk full,
//! read-only) of evpnr and evpnd, and `kill -9` of either daemon; the
//! fabric faults (killed BIRD, partitions) are in `network.rs`.
use std::{path::PathBuf, time::Duration};

use evpn_api::v1;
use rand::{Rng, seq::IndexedRandom};

use super::Run;

/// VPP faults of one host that last for a few operations.
#[derive(Debug, Clone)]
pub(super) struct Window {
    pub host: usize,
    pub until: usize,
}

/// A failing state store of evpnr (`target: None`) or of host `i`'s evpnd
/// (`Some(i)`), until step `until`.
#[derive(Debug, Clone)]
pub(super) struct DiskWindow {
    pub target: Option<usize>,
    pub until: usize,
}

/// The store fault hook of evpnr and evpnd: while `<state-dir>/.fault`
/// exists, every save fails as on a full disk (`enospc`) or a read-only
/// file system (`erofs`); reads are not affected.
pub(super) const FAULT_FILE: &str = ".fault";

pub(super) const VPP_WRITES: &[&str] = &[
    "sw_interface_set_mac_address",
    "sw_interface_add_del_address",
    "create_loopback_instance",
    "sw_interface_set_l2_bridge",
    "bridge_domain_add_del_v2",
    "sw_interface_ip6_set_link_local_address",
    "sw_interface_set_mtu",
    "sw_interface_set_flags",
];

impl Run {
    fn state_dir(&self, target: Option<usize>) -> PathBuf {
        match target {
            None => self.fleet.dir.join("evpnr"),
            Some(i) => self.fleet.hosts[i].dir.join("state"),
        }
    }

    fn store_name(&self, target: Option<usize>) -> String {
        match target {
            None => "evpnr".into(),
            Some(i) => format!("evpnd {}", self.hosts[i]),
        }
    }

    /// Ends the failing-store fault of `target`, if any.
    pub(super) fn clear_disk(&mut self, target: Option<usize>, when: &str) {
        let Some(k) = self.disk.iter().position(|d| d.target == target) else {
            return;
        };
        self.disk.remove(k);
        let _ = std::fs::remove_file(self.state_dir(target).join(FAULT_FILE));
        let name = self.store_name(target);
        self.log(format!("{when}: state store of {name} writable again"));
    }

    /// Ends every fault that lasts (VPP, BIRD, state stores).
    pub(super) fn clear_all_faults(&mut self) {
        for h in &self.fleet.hosts {
            h.vpp.faults().reset();
            if let Some(b) = &h.bird {
                b.fail_next_configures(0);
                b.delay_next_replies(0, Duration::ZERO);
            }
        }
        self.windows.clear();
        for t in self.disk.iter().map(|d| d.target).collect::<Vec<_>>() {
            self.clear_disk(t, "after the last step");
        }
    }

    /// Starts evpnr again (its store healthy: a daemon that cannot write its
    /// state at start is not what this run tests).
    pub(super) async fn restart_evpnr(&mut self, when: &str) -> anyhow::Result<()> {
        self.clear_disk(None, when);
        self.fleet.start_evpnr().await
    }

    /// No acknowledged change may be lost when evpnr restarts (from what it
    /// had saved): its record right after a restart must lie inside the
    /// model, like at the end of the run.
    pub(super) async fn check_durable(&mut self, when: &str) -> anyhow::Result<()> {
        let mut c = self.fleet.client(Duration::from_secs(10))?;
        match c.list_groups(v1::Empty {}).await {
            Ok(l) => {
                let groups = l.into_inner().groups;
                for v in self.model.check(&groups) {
                    self.report.violations.push(format!(
                        "acknowledged change lost ({when}, evpnr restarted from its state file): {v}"
                    ));
                }
                self.report.durability_checks += 1;
            }
            Err(e) => self.log(format!(
                "{when}: durability check skipped: ListGroups failed: {e}"
            )),
        }
        Ok(())
    }

    /// Maybe inject a fault before step `step`.
    pub(super) async fn inject(&mut self, step: usize) -> anyhow::Result<()> {
        if !self.rng.random_bool(self.cfg.fault_rate) {
            return Ok(());
        }
        let hi = self.rng.random_range(0..self.hosts.len());
        let id = self.hosts[hi].clone();
        let msg = VPP_WRITES.choose(&mut self.rng).copied().unwrap_or("*");
        let k = self.rng.random_range(0..135u32);
        let windowed = self.windows.iter().any(|w| w.host == hi);
        match k {
            0..=14 if !windowed => {
                let ms = self.rng.random_range(1..=20u64);
                let until = step + self.rng.random_range(1..=6usize);
                self.fleet.hosts[hi]
                    .vpp
                    .faults()
                    .latency("*", Duration::from_millis(ms));
                self.windows.push(Window { host: hi, until });
                self.fault("vpp-latency");
                self.log(format!(
                    "step {step}: fault vpp-latency {id} {ms} ms until step {until}"
                ));
            }
            15..=26 if !windowed => {
                let m = if self.rng.random_bool(0.2) { "*" } else { msg };
                let until = step + self.rng.random_range(1..=2usize);
                self.fleet.hosts[hi].vpp.faults().hang(m);
                self.windows.push(Window { host: hi, until });
                self.fault("vpp-hang");
                self.log(format!(
                    "step {step}: fault vpp-hang {id} {m} until step {until}"
                ));
            }
            27..=44 => {
                let n = self.rng.random_range(1..=3u64);
                self.fleet.hosts[hi].vpp.faults().error_on_nth(msg, n, -1);
                self.fault("vpp-error");
                self.log(format!(
                    "step {step}: fault vpp-error {id} {msg} call #{n} answers -1"
                ));
            }
            45..=54 => {
                if self.rng.random_bool(0.5) {
                    self.fleet.hosts[hi].vpp.faults().disconnect_now();
                    self.log(format!("step {step}: fault vpp-disconnect {id} now"));
                } else {
                    self.fleet.hosts[hi].vpp.faults().disconnect_on(msg);
                    self.log(format!(
                        "step {step}: fault vpp-disconnect {id} on the next {msg}"
                    ));
                }
                self.fault("vpp-disconnect");
            }
            55..=69 => {
                let n = self.rng.random_range(1..=2u32);
                let Some(b) = &self.fleet.hosts[hi].bird else {
                    return Ok(());
                };
                b.fail_next_configures(n);
                self.fault("bird-configure-fail");
                self.log(format!(
                    "step {step}: fault bird-configure-fail {id} next {n} configure(s) answer 8002"
                ));
            }
            70..=93 if self.fleet.evpnd_up(hi) => {
                self.fleet.kill_evpnd(hi).await;
                let back = step + self.rng.random_range(0..=4usize);
                self.down.push((hi, back));
                self.fault("kill-9-evpnd");
                self.log(format!(
                    "step {step}: fault kill -9 evpnd {id} (restart at step {back})"
                ));
            }
            94..=99 => {
                self.fleet.kill_evpnr().await;
                self.restart_evpnr(&format!("step {step}")).await?;
                self.fault("kill-9-evpnr");
                self.log(format!("step {step}: fault kill -9 evpnr, restarted"));
                self.check_durable(&format!("step {step}")).await?;
            }
            100..=104 if !windowed => {
                // VPP executes the write after evpnd's `vpp.timeout` gave up
                // on it: evpnd must re-read and heal before it reports.
                let late = self.fleet_vpp_timeout()
                    + Duration::from_millis(self.rng.random_range(100..=1100u64));
                self.fleet.hosts[hi].vpp.faults().latency(msg, late);
                self.windows.push(Window {
                    host: hi,
                    until: step + 1,
                });
                self.fault("vpp-late-write");
                self.log(format!(
                    "step {step}: fault vpp-late-write {id} {msg} executed {} ms after it arrived",
                    late.as_millis()
                ));
            }
            105..=108 => {
                // Some of these replies come after evpnd's bird.timeout (5 s):
                // the command is cancelled half-way on the kept connection.
                let n = self.rng.random_range(1..=2u32);
                let d = Duration::from_millis(self.rng.random_range(2000..=6000u64));
                let Some(b) = &self.fleet.hosts[hi].bird else {
                    return Ok(());
                };
                b.delay_next_replies(n, d);
                self.fault("bird-slow-reply");
                self.log(format!(
                    "step {step}: fault bird-slow-reply {id} next {n} repl(ies) {} ms late",
                    d.as_millis()
                ));
            }
            109..=119 => {
                let target = if k <= 113 { Some(hi) } else { None };
                let full = self.rng.random_bool(0.5);
                let until = step + self.rng.random_range(1..=5usize);
                let kind = format!(
                    "{}-{}",
                    if target.is_some() { "evpnd" } else { "evpnr" },
                    if full { "disk-full" } else { "read-only" }
                );
                if self.disk.iter().any(|d| d.target == target) {
                    return Ok(());
                }
                if !self.disk_hook {
                    self.fault("disk-fault-skipped");
                    return Ok(());
                }
                let dir = self.state_dir(target);
                std::fs::write(
                    dir.join(FAULT_FILE),
                    if full { "enospc\n" } else { "erofs\n" },
                )?;
                self.disk.push(DiskWindow { target, until });
                self.fault(&kind);
                let name = self.store_name(target);
                self.log(format!(
                    "step {step}: fault {kind} {name}: every state save fails until step {until}"
                ));
            }
            120..=134 => self.inject_net(step, hi, k).await?,
            _ => {}
        }
        Ok(())
    }

    fn fleet_vpp_timeout(&self) -> Duration {
        super::fleet::FleetOptions::default().vpp_timeout
    }

    /// End windows and restart evpnds whose time has come.
    pub(super) async fn expire(&mut self, step: usize) -> anyhow::Result<()> {
        let when = format!("step {step}");
        let (done, keep): (Vec<Window>, Vec<Window>) =
            self.windows.drain(..).partition(|w| w.until <= step);
        self.windows = keep;
        for w in done {
            self.fleet.hosts[w.host].vpp.faults().reset();
            let id = self.hosts[w.host].clone();
            self.log(format!("{when}: vpp faults of {id} cleared"));
        }
        let ended: Vec<Option<usize>> = self
            .disk
            .iter()
            .filter(|d| d.until <= step)
            .map(|d| d.target)
            .collect();
        for t in ended {
            self.clear_disk(t, &when);
            // What evpnr acknowledged while its store failed must be on disk.
            if t.is_none() && self.rng.random_bool(0.5) {
                self.fleet.kill_evpnr().await;
                self.restart_evpnr(&when).await?;
                self.fault("kill-9-evpnr");
                self.log(format!(
                    "{when}: fault kill -9 evpnr right after its store recovered, restarted"
                ));
                self.check_durable(&when).await?;
            }
        }
        self.expire_net(step).await?;
        self.expire_health(Some(step), &when);
        let (due, later): (Vec<_>, Vec<_>) = self.down.drain(..).partition(|d| d.1 <= step);
        self.down = later;
        for (hi, _) in due {
            self.clear_disk(Some(hi), &when);
            self.fleet.start_evpnd(hi)?;
            let id = self.hosts[hi].clone();
            self.log(format!("{when}: evpnd {id} restarted"));
        }
        self.respawn(&when)
    }
}
