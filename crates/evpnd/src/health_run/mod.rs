//! Runs the checks: one task per check probes at its interval (bounded by
//! its timeout) and sends the samples to one task that owns the [`Board`]:
//! it applies them, reports every change (log, event, metrics), publishes
//! the [`Summary`] (reads, heartbeats: a change bumps its generation) and
//! applies the self-fencing rule ([`crate::health::fence`]). The checks'
//! logic is sans-IO in [`crate::health`]; this module and [`probe`] are the
//! thin I/O around it.

pub mod probe;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use evpn_daemon::events::Event;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::health::{
    Board, Change, CheckId, HealthConfig, Sample, Scope, Status, Timers,
    fence::{Action, Fence},
    fmt_dur,
};
use crate::{
    config::{Config, Dataplane as DpKind},
    manager::Manager,
    metrics::{CheckLabels, ScopeLabels, TransitionLabels},
};
use probe::Probe;

/// How often the self-fencing rule and the eVPN list are looked at.
const TICK: Duration = Duration::from_millis(100);

/// After a failed self-fencing release, the next try waits this long.
const RETRY: Duration = Duration::from_secs(1);

/// One configured check.
pub struct CheckDef {
    pub name: String,
    pub per_evpn: bool,
    /// A probe that times out is a fencing reason (`bird`: BIRD hangs).
    pub fatal_on_timeout: bool,
    pub timers: Timers,
    pub probe: Arc<dyn Probe>,
}

/// The checks of this configuration: `dataplane` (VPP), `bird`, `bgp`,
/// `protocol` (per eVPN) and `devices` (per eVPN, Linux) always;
/// `underlay:<if>` and `command:<name>` when configured.
pub fn checks(cfg: &Config, m: &Manager) -> Vec<CheckDef> {
    let h: &HealthConfig = &cfg.health;
    let client = m.bird.client.clone();
    let def = |name: &str, per_evpn, timers, probe: Arc<dyn Probe>| CheckDef {
        name: name.to_string(),
        per_evpn,
        fatal_on_timeout: name == "bird",
        timers,
        probe,
    };
    let mut v = vec![
        def(
            "bird",
            false,
            h.bird,
            Arc::new(probe::BirdProbe(client.clone())),
        ),
        def(
            "bgp",
            false,
            h.bgp.timers,
            Arc::new(probe::BgpProbe {
                client: client.clone(),
                min: h.bgp.min_established,
                names: h.bgp.protocols.clone(),
            }),
        ),
        def(
            "protocol",
            true,
            h.protocol,
            Arc::new(probe::ProtocolProbe(client)),
        ),
    ];
    match cfg.dataplane {
        DpKind::Vpp => v.push(def(
            "dataplane",
            false,
            h.dataplane,
            Arc::new(probe::DataplaneProbe(m.dp.clone())),
        )),
        DpKind::Linux => v.push(def(
            "devices",
            true,
            h.dataplane,
            Arc::new(probe::DevicesProbe(m.dp.clone())),
        )),
    }
    for i in &h.underlay.interfaces {
        v.push(def(
            &format!("underlay:{i}"),
            false,
            h.underlay.timers,
            Arc::new(probe::UnderlayProbe {
                dp: m.dp.clone(),
                ifname: i.clone(),
            }),
        ));
    }
    for c in &h.commands {
        v.push(def(
            &format!("command:{}", c.name),
            false,
            c.timers,
            Arc::new(probe::CommandProbe {
                argv: c.argv.clone(),
            }),
        ));
    }
    v
}

/// The enabled eVPNs (per-eVPN checks run on these).
fn enabled_slugs(m: &Manager) -> Vec<String> {
    m.snapshot()
        .state
        .evpns
        .values()
        .filter(|e| e.enabled)
        .map(|e| e.slug.clone())
        .collect()
}

/// Start the checks and the board's task; they stop at `shutdown`.
pub fn spawn(m: Arc<Manager>, shutdown: CancellationToken) {
    let defs = checks(&m.cfg, &m);
    let (tx, rx) = mpsc::channel::<(usize, Vec<(Scope, Sample)>)>(64);
    for (i, d) in defs.iter().enumerate() {
        let (probe, timers, per_evpn) = (d.probe.clone(), d.timers, d.per_evpn);
        let fatal_on_timeout = d.fatal_on_timeout;
        let (m, tx, shutdown) = (m.clone(), tx.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                let slugs = if per_evpn {
                    enabled_slugs(&m)
                } else {
                    Vec::new()
                };
                // The samples' evidence is as old as the probe's start.
                let started = Instant::now();
                // No enabled eVPN: nothing to ask for a per-eVPN check.
                let probed = async {
                    if per_evpn && slugs.is_empty() {
                        Vec::new()
                    } else {
                        probe.sample(&slugs).await
                    }
                };
                let samples = match tokio::time::timeout(timers.timeout.0, probed).await {
                    Ok(s) => s,
                    Err(_) => {
                        let why = format!("no answer within {}", fmt_dur(timers.timeout.0));
                        if per_evpn {
                            slugs
                                .iter()
                                .map(|s| (Scope::Evpn(s.clone()), Sample::fail(&why)))
                                .collect()
                        } else {
                            let s = if fatal_on_timeout {
                                Sample::fatal(&why)
                            } else {
                                Sample::fail(&why)
                            };
                            vec![(Scope::Host, s)]
                        }
                    }
                };
                let samples = samples
                    .into_iter()
                    .map(|(scope, s)| (scope, s.taken_at(started)))
                    .collect();
                if tx.send((i, samples)).await.is_err() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(timers.interval.0) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        });
    }
    if let Some(i) = defs.iter().position(|d| d.name == "bird") {
        let path = m.bird.client.path().to_path_buf();
        let every = defs[i].timers.interval.0;
        tokio::spawn(watch_bird(path, i, every, tx, shutdown.clone()));
    }
    tokio::spawn(board_task(m, defs, rx, shutdown));
}

/// BIRD's death is noticed at once, not after `fall` probes: a connection
/// to its control socket is kept open, and when BIRD closes it (BIRD
/// exited or was killed) the `bird` check (index `i`) gets a hard failure
/// ([`Sample::gone`]), so the host is down, and reported on the heartbeat,
/// within a few ms. Re-opened every `every` (the check's interval) after
/// that, or while it cannot be opened; recovery is the probes' (`rise`).
async fn watch_bird(
    path: std::path::PathBuf,
    i: usize,
    every: Duration,
    tx: mpsc::Sender<(usize, Vec<(Scope, Sample)>)>,
    shutdown: CancellationToken,
) {
    loop {
        let closed = tokio::select! {
            c = probe::bird_closed(&path) => c,
            _ = shutdown.cancelled() => return,
        };
        if let Some(why) = closed
            && tx
                .send((
                    i,
                    vec![(Scope::Host, Sample::gone(why).taken_at(Instant::now()))],
                ))
                .await
                .is_err()
        {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

struct Run {
    m: Arc<Manager>,
    board: Board,
    fence: Fence,
    generation: u64,
    retry_at: Option<Instant>,
    per_evpn: Vec<String>,
    /// The enabled eVPNs at the last sync.
    slugs: Vec<String>,
}

async fn board_task(
    m: Arc<Manager>,
    defs: Vec<CheckDef>,
    mut rx: mpsc::Receiver<(usize, Vec<(Scope, Sample)>)>,
    shutdown: CancellationToken,
) {
    let mut r = Run {
        m: m.clone(),
        board: Board::default(),
        fence: Fence::default(),
        generation: 0,
        retry_at: None,
        per_evpn: defs
            .iter()
            .filter(|d| d.per_evpn)
            .map(|d| d.name.clone())
            .collect(),
        slugs: Vec::new(),
    };
    for d in defs.iter().filter(|d| !d.per_evpn) {
        r.board.add_host_check(&d.name);
    }
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            msg = rx.recv() => {
                let Some((i, samples)) = msg else { return };
                let changes = r.sync();
                r.report(changes);
                let d = &defs[i];
                for (scope, s) in samples {
                    // An eVPN deleted or disabled since the probe ran.
                    if let Scope::Evpn(slug) = &scope && !r.slugs.contains(slug) {
                        continue;
                    }
                    let id = CheckId { scope, name: d.name.clone() };
                    let changes = r.board.record(&id, d.timers.rise, d.timers.fall, &s);
                    r.report(changes);
                }
                // Reads see the counters of every probe, not only changes.
                r.publish();
            }
            _ = tick.tick() => {
                let changes = r.sync();
                r.report(changes);
                r.fence_tick().await;
            }
        }
    }
}

impl Run {
    fn sync(&mut self) -> Vec<Change> {
        let names: Vec<&str> = self.per_evpn.iter().map(String::as_str).collect();
        self.slugs = enabled_slugs(&self.m);
        self.board.sync_evpns(&self.slugs, &names)
    }

    fn publish(&self) {
        self.m.health.publish(
            self.board
                .summary(self.fence.fenced().map(str::to_string), self.generation),
        );
    }

    /// Log, event and count every change; publish.
    fn report(&mut self, changes: Vec<Change>) {
        let metrics = &self.m.metrics;
        let mut scope_changed = false;
        for c in &changes {
            match c {
                Change::Check { id, status, error } => {
                    let evpn = match &id.scope {
                        Scope::Evpn(s) => Some(s.clone()),
                        Scope::Host => None,
                    };
                    let mut kv = vec![("check", id.name.clone())];
                    if let Some(e) = &evpn {
                        kv.push(("evpn", e.clone()));
                    }
                    metrics
                        .health_transitions
                        .get_or_create(&TransitionLabels {
                            check: id.name.clone(),
                            to: status.as_str().into(),
                        })
                        .inc();
                    if *status == Status::Down {
                        kv.push(("error", error.clone()));
                        self.m.event(Event::HealthCheckDown, &kv);
                    } else {
                        self.m.event(Event::HealthCheckUp, &kv);
                    }
                }
                Change::Scope { scope, verdict } => {
                    scope_changed = true;
                    let mut kv = Vec::new();
                    match scope {
                        Scope::Host => kv.push(("scope", "host".to_string())),
                        Scope::Evpn(s) => {
                            kv.push(("scope", "evpn".to_string()));
                            kv.push(("evpn", s.clone()));
                        }
                    }
                    match verdict.status {
                        Status::Down => {
                            kv.push(("reason", verdict.reason.clone()));
                            self.m.event(Event::HealthDown, &kv);
                        }
                        Status::Up => self.m.event(Event::HealthUp, &kv),
                        Status::Unknown => {}
                    }
                }
            }
        }
        if scope_changed {
            self.generation += 1;
        }
        if !changes.is_empty() {
            self.update_gauges();
            self.publish();
        }
    }

    fn update_gauges(&self) {
        let s = self.board.summary(None, 0);
        let metrics = &self.m.metrics;
        let up = |st: Status| i64::from(st == Status::Up);
        metrics.health_up.clear();
        metrics
            .health_up
            .get_or_create(&ScopeLabels {
                scope: "host".into(),
                evpn: String::new(),
            })
            .set(up(s.host.status));
        for (slug, v) in &s.evpns {
            metrics
                .health_up
                .get_or_create(&ScopeLabels {
                    scope: "evpn".into(),
                    evpn: slug.clone(),
                })
                .set(up(v.status));
        }
        metrics.health_check_up.clear();
        for (id, c) in &s.checks {
            metrics
                .health_check_up
                .get_or_create(&CheckLabels {
                    check: id.name.clone(),
                    evpn: match &id.scope {
                        Scope::Evpn(e) => e.clone(),
                        Scope::Host => String::new(),
                    },
                })
                .set(up(c.status));
        }
    }

    /// The self-fencing rule, once per tick.
    async fn fence_tick(&mut self) {
        let h = &self.m.cfg.health.self_fence;
        let bound: Vec<crate::state::Evpn> = self
            .m
            .snapshot()
            .state
            .evpns
            .values()
            .filter(|e| e.bvi.as_ref().is_some_and(|b| b.binding.is_some()))
            .cloned()
            .collect();
        let was = self.fence.fenced().map(str::to_string);
        let action = self.fence.tick(
            Instant::now(),
            self.board.fatal(),
            bound.len(),
            h.hold.0,
            h.enabled,
        );
        let now_fenced = self.fence.fenced().map(str::to_string);
        if was != now_fenced {
            self.m
                .metrics
                .health_fenced
                .set(i64::from(now_fenced.is_some()));
            if let (Some(reason), None) = (&was, &now_fenced) {
                self.m
                    .event(Event::SelfFenceLifted, &[("reason", reason.clone())]);
            }
            self.generation += 1;
            self.publish();
        }
        let Action::Release { reason } = action else {
            return;
        };
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let mut failed = false;
        for e in bound {
            let Some(b) = e.bvi.as_ref().and_then(|b| b.binding.clone()) else {
                continue;
            };
            match self.m.release(&e.slug, "").await {
                Ok(_) => {
                    self.m
                        .metrics
                        .health_self_fence
                        .get_or_create(&crate::metrics::ResultLabels {
                            result: "released".into(),
                        })
                        .inc();
                    self.m.event(
                        Event::SelfFenced,
                        &[
                            ("evpn", e.slug.clone()),
                            ("group", b.group_id.clone()),
                            ("mac", b.vmac.to_string()),
                            ("reason", reason.clone()),
                        ],
                    );
                }
                Err(err) => {
                    failed = true;
                    self.m
                        .metrics
                        .health_self_fence
                        .get_or_create(&crate::metrics::ResultLabels {
                            result: "failed".into(),
                        })
                        .inc();
                    self.m.event(
                        Event::SelfFenceFailed,
                        &[
                            ("evpn", e.slug.clone()),
                            ("group", b.group_id.clone()),
                            ("reason", reason.clone()),
                            ("error", err.to_string()),
                        ],
                    );
                }
            }
        }
        self.retry_at = failed.then(|| Instant::now() + RETRY);
    }
}
