//! The chaos run: seeded, reproducible, bounded random operations through
//! evpnr's gRPC API while faults are injected (kill -9 of evpnd and evpnr at
//! random moments, VPP latency, hangs, errors and disconnects, failing BIRD
//! configures), with three invariants:
//!
//! 1. **Never two holders** (checked after every step and at the end): the
//!    journals of all hosts' simulated VPPs, merged in wall-clock order,
//!    never show interfaces on two different hosts carrying the same MAC.
//!    A host whose evpnd is dead keeps its dataplane — and counts as a
//!    holder of what it carries (in production its VPP still forwards).
//!    The run never forces a move, so this rule has no exception.
//! 2. **Convergence**: once the faults stop and every process runs again,
//!    within `converge_timeout` every host's dataplane matches what the
//!    registry says (see [`converge`]).
//! 3. **No acknowledged change is lost**: the registry's final record
//!    matches the model of acknowledged operations ([`model`]).
//! 5. **Never two announcers** (checked after every step and at the end;
//!    4 in docs/chaos.md is the refusals of the adversary):
//!    in the simulated fabric (`birdsim::fabric`), no host's EVPN table
//!    ever held one MAC from two VTEPs at the same instant.
//!
//! See docs/chaos.md.
mod adversary;
mod failover;
mod faults;
pub mod fleet;
pub mod model;
mod network;
mod report;

pub use report::{Config, Report};

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use evpn_api::v1;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};

use faults::{DiskWindow, Window};
use fleet::{Fleet, FleetOptions};
use model::Model;
use network::NetWindow;

/// One operation through evpnr's API.
#[derive(Debug, Clone)]
enum Op {
    CreateGroup { g: String, vni: u32 },
    DeleteGroup { g: String },
    AddMember { g: String, h: String },
    RemoveMember { g: String, h: String },
    CreateBvi { g: String, addrs: Vec<String> },
    DeleteBvi { g: String },
    AddAddr { g: String, a: String },
    DelAddr { g: String, a: String },
    SetMtu { g: String, mtu: u32 },
    Bind { g: String, h: String },
    Release { g: String, h: String },
    Move { g: String, h: String },
    SetEnabled { g: String, h: String, on: bool },
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::CreateGroup { .. } => "CreateGroup",
            Op::DeleteGroup { .. } => "DeleteGroup",
            Op::AddMember { .. } => "AddGroupMember",
            Op::RemoveMember { .. } => "RemoveGroupMember",
            Op::CreateBvi { .. } => "CreateGroupBVI",
            Op::DeleteBvi { .. } => "DeleteGroupBVI",
            Op::AddAddr { .. } => "AddGroupBVIAddress",
            Op::DelAddr { .. } => "DeleteGroupBVIAddress",
            Op::SetMtu { .. } => "SetGroupMTU",
            Op::Bind { .. } => "BindGroupBVI",
            Op::Release { .. } => "ReleaseGroupBVI",
            Op::Move { .. } => "MoveGroupBVI",
            Op::SetEnabled { .. } => "SetEvpnInstanceEnabled",
        }
    }

    fn describe(&self) -> String {
        match self {
            Op::CreateGroup { g, vni } => format!("CreateGroup {g} vni {vni}"),
            Op::DeleteGroup { g } => format!("DeleteGroup {g}"),
            Op::AddMember { g, h } => format!("AddGroupMember {g} {h}"),
            Op::RemoveMember { g, h } => format!("RemoveGroupMember {g} {h}"),
            Op::CreateBvi { g, addrs } => format!("CreateGroupBVI {g} [{}]", addrs.join(" ")),
            Op::DeleteBvi { g } => format!("DeleteGroupBVI {g}"),
            Op::AddAddr { g, a } => format!("AddGroupBVIAddress {g} {a}"),
            Op::DelAddr { g, a } => format!("DeleteGroupBVIAddress {g} {a}"),
            Op::SetMtu { g, mtu } => format!("SetGroupMTU {g} {mtu}"),
            Op::Bind { g, h } => format!("BindGroupBVI {g} {h}"),
            Op::Release { g, h } => format!("ReleaseGroupBVI {g} {h}"),
            Op::Move { g, h } => format!("MoveGroupBVI {g} -> {h}"),
            Op::SetEnabled { g, h, on } => format!("SetEvpnInstanceEnabled {h} {g} {on}"),
        }
    }
}

fn prefix(key: &str) -> v1::Prefix {
    let (a, l) = key.split_once('/').unwrap_or((key, "32"));
    v1::Prefix {
        address: a.into(),
        prefix_len: l.parse().unwrap_or(32),
    }
}

/// What an operation returned.
enum Outcome {
    Group(Box<v1::Group>),
    Done,
    Failed(tonic::Status),
}

type Client = v1::evpnr_client::EvpnrClient<tonic::transport::Channel>;

async fn execute(mut c: Client, op: Op) -> Outcome {
    let grp = |r: Result<tonic::Response<v1::Group>, tonic::Status>| match r {
        Ok(g) => Outcome::Group(Box::new(g.into_inner())),
        Err(e) => Outcome::Failed(e),
    };
    let done = |r: Result<tonic::Response<v1::Empty>, tonic::Status>| match r {
        Ok(_) => Outcome::Done,
        Err(e) => Outcome::Failed(e),
    };
    match op {
        Op::CreateGroup { g, vni } => grp(c
            .create_group(v1::CreateGroupRequest {
                group_id: g,
                vni,
                ..Default::default()
            })
            .await),
        Op::DeleteGroup { g } => done(c.delete_group(v1::GroupRef { group_id: g }).await),
        Op::AddMember { g, h } => grp(c
            .add_group_member(v1::GroupMemberRequest {
                group_id: g,
                instance_id: h,
            })
            .await),
        Op::RemoveMember { g, h } => grp(c
            .remove_group_member(v1::GroupMemberRequest {
                group_id: g,
                instance_id: h,
            })
            .await),
        Op::CreateBvi { g, addrs } => grp(c
            .create_group_bvi(v1::GroupBviRequest {
                group_id: g,
                addresses: addrs.iter().map(|a| prefix(a)).collect(),
            })
            .await),
        Op::DeleteBvi { g } => grp(c.delete_group_bvi(v1::GroupRef { group_id: g }).await),
        Op::AddAddr { g, a } => grp(c
            .add_group_bvi_address(v1::GroupBviAddAddressRequest {
                group_id: g,
                address: Some(prefix(&a)),
            })
            .await),
        Op::DelAddr { g, a } => grp(c
            .delete_group_bvi_address(v1::GroupBviDeleteAddressRequest {
                group_id: g,
                address: Some(prefix(&a)),
            })
            .await),
        Op::SetMtu { g, mtu } => grp(c
            .set_group_mtu(v1::SetGroupMtuRequest { group_id: g, mtu })
            .await),
        Op::Bind { g, h } => done(
            c.bind_group_bvi(v1::BindGroupBviRequest {
                group_id: g,
                instance_id: h,
            })
            .await,
        ),
        Op::Release { g, h } => done(
            c.release_group_bvi(v1::ReleaseGroupBviRequest {
                group_id: g,
                instance_id: h,
            })
            .await,
        ),
        Op::Move { g, h } => grp(c
            .move_group_bvi(v1::MoveGroupBviRequest {
                group_id: g,
                instance_id: h,
                force: false,
            })
            .await),
        Op::SetEnabled { g, h, on } => match c
            .set_evpn_instance_enabled(v1::SetEnabledRequest {
                instance_id: h,
                slug: g,
                enabled: on,
                force: false,
            })
            .await
        {
            Ok(_) => Outcome::Done,
            Err(e) => Outcome::Failed(e),
        },
    }
}

/// Updates the model with an operation's outcome (see [`model`]).
fn learn(m: &mut Model, op: &Op, out: &Outcome) {
    let ok = !matches!(out, Outcome::Failed(_));
    if let Outcome::Group(g) = out {
        let name = g.group_id.clone();
        m.g(&name).sync(g);
    }
    match op {
        Op::CreateGroup { g, .. } if !ok => {
            m.g(g).exists.insert(true);
        }
        Op::DeleteGroup { g } => {
            if ok {
                m.g(g).deleted();
            } else {
                m.g(g).anything();
            }
            m.forget_enabled(g, None);
        }
        Op::AddMember { g, h } | Op::RemoveMember { g, h } => {
            if !ok {
                let gm = m.g(g);
                gm.members
                    .entry(h.clone())
                    .or_default()
                    .extend([true, false]);
                if matches!(op, Op::RemoveMember { .. }) && gm.primary.contains(&Some(h.clone())) {
                    gm.primary.insert(None);
                }
            }
            m.forget_enabled(g, Some(h));
        }
        Op::CreateBvi { g, addrs } if !ok => {
            let gm = m.g(g);
            gm.bvi.insert(true);
            for a in addrs {
                gm.addrs.entry(a.clone()).or_default().insert(true);
            }
        }
        Op::DeleteBvi { g } if !ok => {
            let gm = m.g(g);
            gm.bvi.insert(false);
            gm.primary.insert(None);
            for v in gm.addrs.values_mut() {
                v.insert(false);
            }
        }
        Op::AddAddr { g, a } | Op::DelAddr { g, a } if !ok => {
            m.g(g)
                .addrs
                .entry(a.clone())
                .or_default()
                .extend([true, false]);
        }
        Op::SetMtu { g, mtu } if !ok => {
            m.g(g).mtu.insert(*mtu);
        }
        Op::Bind { g, h } | Op::Move { g, h } => {
            let gm = m.g(g);
            if ok {
                gm.primary = BTreeSet::from([Some(h.clone())]);
            } else {
                gm.primary.extend([Some(h.clone()), None]);
            }
        }
        Op::Release { g, h } => {
            let gm = m.g(g);
            if gm.primary.contains(&Some(h.clone())) {
                if ok {
                    gm.primary.remove(&Some(h.clone()));
                }
                gm.primary.insert(None);
            }
        }
        Op::SetEnabled { g, h, on } => {
            if !on {
                m.maybe_disabled.insert((h.clone(), g.clone()));
            }
            if ok {
                m.enabled.insert((h.clone(), g.clone()), *on);
            } else {
                m.enabled.remove(&(h.clone(), g.clone()));
            }
        }
        _ => {}
    }
    m.mark_autonomous();
}

struct Run {
    cfg: Config,
    rng: StdRng,
    fleet: Fleet,
    model: Model,
    hosts: Vec<String>,
    pools: Vec<(String, Vec<String>)>,
    vmacs: BTreeSet<String>,
    report: Report,
    windows: Vec<Window>,
    /// Failing state stores.
    disk: Vec<DiskWindow>,
    /// Whether evpnr and evpnd honour the store fault hook (`.fault`).
    disk_hook: bool,
    /// Fake registrations not deleted yet.
    fakes: Vec<String>,
    /// (host, restart at step)
    down: Vec<(usize, usize)>,
    /// Fabric faults (killed BIRDs, partitions) and when they heal.
    net: Vec<NetWindow>,
    /// Failing health checks (`--failover`) and when they pass again.
    health: Vec<failover::HealthWindow>,
    /// Two-announcer moments already reported (host, MAC, instant).
    announcer_moments: BTreeSet<(String, String, Instant)>,
    started: Instant,
}

impl Run {
    fn log(&mut self, line: String) {
        if self.cfg.verbose {
            println!("{line}");
        }
        self.report.log.push(line);
    }

    fn fault(&mut self, kind: &str) {
        *self.report.faults.entry(kind.to_string()).or_default() += 1;
    }

    fn pick_op(&mut self) -> Op {
        let gi = self.rng.random_range(0..self.pools.len());
        let (g, pool) = self.pools[gi].clone();
        let gm = self.model.groups[&g].clone();
        if !gm.exists.contains(&true) || (gm.exists.contains(&false) && self.rng.random_bool(0.5)) {
            return Op::CreateGroup {
                g,
                vni: 1000 + gi as u32,
            };
        }
        let pick = |rng: &mut StdRng, v: &[String], or: &[String]| {
            v.choose(rng)
                .or_else(|| or.choose(rng))
                .cloned()
                .unwrap_or_default()
        };
        let members: Vec<String> = gm
            .members
            .iter()
            .filter(|(_, v)| v.contains(&true))
            .map(|(h, _)| h.clone())
            .collect();
        let outsiders: Vec<String> = gm
            .members
            .iter()
            .filter(|(_, v)| v.contains(&false))
            .map(|(h, _)| h.clone())
            .collect();
        let primaries: Vec<String> = gm.primary.iter().flatten().cloned().collect();
        let others: Vec<String> = members
            .iter()
            .filter(|m| !primaries.contains(m))
            .cloned()
            .collect();
        let present: Vec<String> = gm
            .addrs
            .iter()
            .filter(|(_, v)| v.contains(&true))
            .map(|(a, _)| a.clone())
            .collect();
        let absent: Vec<String> = gm
            .addrs
            .iter()
            .filter(|(_, v)| v.contains(&false))
            .map(|(a, _)| a.clone())
            .collect();
        let has_bvi = gm.bvi.contains(&true);
        let rng = &mut self.rng;
        if members.len() < 2 && !outsiders.is_empty() && rng.random_bool(0.7) {
            let h = pick(rng, &outsiders, &self.hosts);
            return Op::AddMember { g, h };
        }
        if !has_bvi && rng.random_bool(0.6) {
            let n = rng.random_range(0..=pool.len());
            let addrs = pool.choose_multiple(rng, n).cloned().collect();
            return Op::CreateBvi { g, addrs };
        }
        match rng.random_range(0..100u32) {
            0..=7 => Op::AddMember {
                h: pick(rng, &outsiders, &self.hosts),
                g,
            },
            8..=12 => Op::RemoveMember {
                h: pick(rng, &members, &self.hosts),
                g,
            },
            13..=14 => Op::DeleteBvi { g },
            15..=24 => Op::AddAddr {
                a: pick(rng, &absent, &pool),
                g,
            },
            25..=30 => Op::DelAddr {
                a: pick(rng, &present, &pool),
                g,
            },
            31..=33 => Op::SetMtu {
                g,
                mtu: *[1500u32, 9000, 1400].choose(rng).unwrap_or(&1500),
            },
            34..=40 => Op::Bind {
                h: pick(rng, &members, &self.hosts),
                g,
            },
            41..=46 => Op::Release {
                h: pick(rng, &primaries, &members),
                g,
            },
            47..=86 => Op::Move {
                h: pick(rng, &others, &members),
                g,
            },
            87..=96 => Op::SetEnabled {
                h: pick(rng, &members, &self.hosts),
                g,
                on: rng.random_bool(0.5),
            },
            _ => Op::DeleteGroup { g },
        }
    }

    /// Restart evpnds that exited on their own; anything but a port taken
    /// before evpnd bound it is a violation (a crash).
    fn respawn(&mut self, when: &str) -> anyhow::Result<()> {
        for (id, why) in self.fleet.respawn_exited()? {
            self.log(format!(
                "{when}: evpnd {id} had exited on its own ({why}); restarted on a new port"
            ));
            if !why.contains("Address already in use") {
                self.report
                    .violations
                    .push(format!("evpnd {id} exited on its own: {why}"));
            }
        }
        Ok(())
    }

    fn check_exclusive(&mut self, when: &str) -> bool {
        let watched: Vec<String> = self.vmacs.iter().cloned().collect();
        match self.fleet.check_exclusive(&watched) {
            Ok(r) => {
                self.report.vmac_takes = r.takes;
                self.report.replayed = r.replayed;
                true
            }
            Err(c) => {
                self.report
                    .violations
                    .push(format!("never two holders ({when}): {c}"));
                false
            }
        }
    }

    async fn step(&mut self, step: usize) -> anyhow::Result<()> {
        self.expire(step).await?;
        self.inject(step).await?;
        self.adversary(step).await?;
        self.failover_step(step).await?;
        let op = self.pick_op();
        // A kill at a random moment while the operation runs.
        let kill = if self.rng.random_bool(self.cfg.kill_rate) {
            let delay = Duration::from_millis(self.rng.random_range(0..25u64));
            let target = if self.rng.random_bool(0.35) {
                None
            } else {
                Some(self.rng.random_range(0..self.hosts.len()))
            };
            Some((delay, target))
        } else {
            None
        };
        // A caller that gives up after a few ms: evpnr's handler is cancelled
        // (its writes run to completion by design).
        let cancel = self
            .rng
            .random_bool(self.cfg.cancel_rate)
            .then(|| Duration::from_millis(self.rng.random_range(2..=60u64)));
        let client = self
            .fleet
            .client(cancel.unwrap_or(Duration::from_secs(20)))?;
        if let Some(d) = cancel {
            self.fault("cancel-evpnr-call");
            self.log(format!(
                "step {step}: fault cancel-evpnr-call: the caller gives up after {} ms",
                d.as_millis()
            ));
        }
        let desc = op.describe();
        let fut = execute(client, op.clone());
        let mut evpnr_killed = false;
        let out = match kill {
            None => fut.await,
            Some((delay, target)) => {
                let fleet = &mut self.fleet;
                let killer = async move {
                    tokio::time::sleep(delay).await;
                    match target {
                        None => fleet.kill_evpnr().await,
                        Some(hi) => fleet.kill_evpnd(hi).await,
                    }
                };
                let (out, ()) = tokio::join!(fut, killer);
                let what = match target {
                    None => {
                        self.restart_evpnr(&format!("step {step}")).await?;
                        self.fault("kill-9-evpnr-mid-op");
                        evpnr_killed = true;
                        "evpnr (restarted)".to_string()
                    }
                    Some(hi) => {
                        let back = step + self.rng.random_range(0..=3usize);
                        self.down.retain(|d| d.0 != hi);
                        self.down.push((hi, back));
                        self.fault("kill-9-evpnd-mid-op");
                        format!("evpnd {} (restart at step {back})", self.hosts[hi])
                    }
                };
                self.log(format!(
                    "step {step}: fault kill -9 {what} {} ms into the operation",
                    delay.as_millis()
                ));
                out
            }
        };
        // Whatever error the impatient caller got (a deadline, a cancel, or
        // an error the operation would have had anyway), its handler may
        // still be running: retry in every case.
        let gave_up = cancel.is_some() && matches!(&out, Outcome::Failed(_));
        self.record(step, &op, &desc, op.name(), &out);
        self.report.ops += 1;
        if evpnr_killed {
            self.check_durable(&format!("step {step}")).await?;
        }
        if gave_up {
            // The operator retries. The retry waits for an abandoned
            // handler (same locks) and asks for the same result, so what it
            // returns is what the registry holds.
            let client = self.fleet.client(Duration::from_secs(20))?;
            let out = execute(client, op.clone()).await;
            self.record(
                step,
                &op,
                &format!("{desc} (retry)"),
                "retry-after-cancel",
                &out,
            );
        }
        Ok(())
    }

    /// Logs an operation's outcome, counts it under `name` and teaches the
    /// model.
    fn record(&mut self, step: usize, op: &Op, desc: &str, name: &str, out: &Outcome) {
        let res = match out {
            Outcome::Group(g) => {
                self.vmacs.insert(g.vmac.to_ascii_lowercase());
                format!(
                    "OK (members [{}], primary {:?})",
                    g.members.join(" "),
                    g.primary_instance_id
                )
            }
            Outcome::Done => "OK".into(),
            Outcome::Failed(e) => format!("{:?}: {}", e.code(), e.message()),
        };
        let code = match out {
            Outcome::Failed(e) => format!("{:?}", e.code()),
            _ => "OK".into(),
        };
        *self
            .report
            .outcomes
            .entry(name.into())
            .or_default()
            .entry(code)
            .or_default() += 1;
        learn(&mut self.model, op, out);
        self.log(format!("step {step}: {desc}: {res}"));
    }

    /// Stop every fault, start every process, wait for convergence.
    async fn settle(&mut self) -> anyhow::Result<()> {
        self.clear_all_faults();
        self.expire_health(None, "after the last step");
        self.clear_net("after the last step").await?;
        self.down.clear();
        if self.fleet.evpnr.is_none() {
            self.fleet.start_evpnr().await?;
        }
        self.delete_fakes().await;
        if !self.fakes.is_empty() {
            self.report.violations.push(format!(
                "fake registrations could not be deleted: {:?}",
                self.fakes
            ));
        }
        self.respawn("after the last step")?;
        self.log("faults stopped; every process running".into());
        if !self.fleet.start_all(Duration::from_secs(60)).await? {
            self.report.violations.push(
                "after the faults stopped, not every evpnd was connected and ready within 60 s"
                    .into(),
            );
            return Ok(());
        }
        if self.cfg.failover {
            self.check_failover_settled(self.cfg.converge_timeout)
                .await?;
        }
        let t0 = Instant::now();
        let mut last = Vec::new();
        while t0.elapsed() < self.cfg.converge_timeout {
            match converge::mismatches(&self.fleet, &self.model).await {
                Ok(v) if v.is_empty() => {
                    self.report.converge = Some(t0.elapsed());
                    break;
                }
                Ok(v) => last = v,
                Err(e) => last = vec![format!("cannot read the fleet: {e:#}")],
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if self.report.converge.is_none() {
            for m in last {
                self.report.violations.push(format!(
                    "not converged {} s after the faults stopped: {m}",
                    self.cfg.converge_timeout.as_secs()
                ));
            }
        }
        // Invariant 3: the registry's record against the acknowledged model.
        let mut c = self.fleet.client(Duration::from_secs(10))?;
        let groups = c.list_groups(v1::Empty {}).await?.into_inner().groups;
        for v in self.model.check(&groups) {
            self.report
                .violations
                .push(format!("acknowledged change lost: {v}"));
        }
        Ok(())
    }
}

pub mod converge;

/// Runs the chaos test. Errors are harness failures (a binary missing, a
/// port in use); invariant violations are in [`Report::violations`].
pub async fn run(cfg: Config) -> anyhow::Result<Report> {
    let started = Instant::now();
    let fleet = Fleet::new(&FleetOptions {
        instances: cfg.instances,
        bin_dir: cfg.bin_dir.clone(),
        keep_dir: cfg.keep_dir,
        fabric: birdsim::fabric::FabricOptions {
            withdraw_delay: cfg.withdraw_delay,
            ..Default::default()
        },
        failover: cfg.failover,
        tls: cfg.tls,
        ..Default::default()
    })
    .await?;
    let hosts: Vec<String> = fleet.hosts.iter().map(|h| h.id.clone()).collect();
    let pools: Vec<(String, Vec<String>)> = (0..cfg.groups)
        .map(|i| {
            (
                format!("g{i}"),
                [
                    format!("172.16.{i}.1/24"),
                    format!("172.16.{i}.2/24"),
                    format!("fec0:{i}::1/64"),
                    format!("fec0:{i}::2/64"),
                ]
                .iter()
                .map(|a| model::prefix_key(&prefix(a)))
                .collect(),
            )
        })
        .collect();
    let mut run = Run {
        model: Model::new(&pools, &hosts),
        rng: StdRng::seed_from_u64(cfg.seed),
        report: Report {
            seed: cfg.seed,
            dir: fleet.dir.clone(),
            ..Default::default()
        },
        cfg,
        fleet,
        hosts,
        pools,
        vmacs: BTreeSet::new(),
        windows: Vec::new(),
        disk: Vec::new(),
        disk_hook: false,
        fakes: Vec::new(),
        down: Vec::new(),
        net: Vec::new(),
        health: Vec::new(),
        announcer_moments: BTreeSet::new(),
        started,
    };
    if !run.fleet.start_all(Duration::from_secs(60)).await? {
        anyhow::bail!(
            "the fleet did not come up; see the logs in {}",
            run.fleet.dir.display()
        );
    }
    // The store fault hook (`<state-dir>/.fault`) is there when evpnr
    // reports its store's health.
    run.disk_hook = run
        .fleet
        .metrics()
        .await
        .is_ok_and(|m| m.contains("evpnr_store_healthy"));
    run.report.disk_hook = run.disk_hook;
    if !run.disk_hook {
        let note = "notice: evpnr does not report evpnr_store_healthy, so these binaries have no \
                    store fault hook (<state-dir>/.fault); disk-full and read-only faults are skipped";
        eprintln!("{note}");
        run.log(note.into());
    }
    run.log(format!(
        "chaos: seed {}, {} operations on {} instances, {} groups",
        run.cfg.seed,
        run.cfg.ops,
        run.hosts.len(),
        run.pools.len()
    ));
    let mut two_holders = false;
    for step in 1..=run.cfg.ops {
        run.step(step).await?;
        let when = format!("after step {step}");
        let announcers = run.check_announcers(&when);
        if !run.check_exclusive(&when) || !announcers {
            two_holders = true;
            break;
        }
    }
    // Convergence and the model are checked even after other violations
    // (a refused attempt that was accepted, say); not after two holders.
    if !two_holders {
        run.settle().await?;
        run.check_exclusive("at the end");
        // The history includes what the delays make visible later.
        run.check_announcers("at the end");
    }
    if run.cfg.failover {
        run.count_failover_events();
    }
    run.report.elapsed = run.started.elapsed();
    // Acknowledged enabled flags, checked on the converged fleet.
    Ok(run.report)
}

#[cfg(test)]
mod tests;
