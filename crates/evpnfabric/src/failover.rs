//! The failover bench (`evpnfabric failover-bench`, a benchmark, not a CI
//! step): the failure scenarios, each run `trials` times for our
//! failover (through evpnr) and for keepalived on the same fabric, in the
//! same run and with the same BFD timers, and per scenario a table with
//! both side by side: lost probes, longest reply gap, duplicate replies,
//! whether replies flowed again by the end of the window, whether the
//! gateway moved, and two-holder moments ([`crate::holders`]).
//!
//! Every trial: wait until router 1 is the only announcer at the leaf and
//! the host's probes are answered, trigger at `t0`, measure the window
//! `[t0, t0 + window]`, repair (links up, processes restarted, the gateway
//! moved back), and wait for the same baseline again; two-holder moments
//! are counted from `t0` until the baseline is back (the repair included:
//! a split brain often shows when a partition heals). The window and the
//! reporting do not depend on what reacts: our side is measured through
//! evpnr exactly as it is, and a side that does not move the gateway is
//! reported as not recovered within the window.
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use evpn_api::v1;

use crate::{
    bench::percentile,
    demo::{self, EvpnrClient},
    fabric::{Fabric, Net},
    holders::{self, HolderWatch, Span, TablePoll},
    prober::{Prober, WindowStats},
    scenario::Gateway,
    vrrp::{self, KaPeer},
};

/// Which failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// keepalived (VRRPv3) with the notify-FIFO FDB helper.
    Keepalived,
    /// Ours: evpnd + evpnr.
    Evpn,
}

impl std::fmt::Display for Impl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Impl::Keepalived => "keepalived",
            Impl::Evpn => "evpn",
        })
    }
}

/// Parse `keepalived`, `evpn` or `both`.
pub fn parse_impls(s: &str) -> Result<Vec<Impl>, String> {
    match s {
        "keepalived" => Ok(vec![Impl::Keepalived]),
        "evpn" => Ok(vec![Impl::Evpn]),
        "both" => Ok(vec![Impl::Evpn, Impl::Keepalived]),
        _ => Err(format!(
            "impl: expected keepalived, evpn or both, got {:?}",
            s.chars().take(16).collect::<String>()
        )),
    }
}

/// The scenarios (its numbering; 6 is the VPP lab's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// 1: the primary's management and underlay links go down, then all
    /// its processes are killed with SIGKILL.
    RouterDies,
    /// 2: the primary's BIRD is killed.
    BirdKilled,
    /// 3: the primary's underlay link goes down (management stays up).
    UnderlayDown,
    /// 4: the primary's evpnd is killed (keepalived: keepalived, the
    /// split brain).
    DaemonKilled,
    /// 5: management partition between evpnr and the primary only.
    MgmtPartition,
    /// 7: a planned move (keepalived: priority lowered).
    Planned,
}

impl Scenario {
    /// All, in order.
    pub const ALL: [Scenario; 6] = [
        Scenario::RouterDies,
        Scenario::BirdKilled,
        Scenario::UnderlayDown,
        Scenario::DaemonKilled,
        Scenario::MgmtPartition,
        Scenario::Planned,
    ];

    /// The number.
    pub fn number(self) -> u8 {
        match self {
            Scenario::RouterDies => 1,
            Scenario::BirdKilled => 2,
            Scenario::UnderlayDown => 3,
            Scenario::DaemonKilled => 4,
            Scenario::MgmtPartition => 5,
            Scenario::Planned => 7,
        }
    }

    /// From the number.
    pub fn from_number(n: u8) -> Result<Scenario, String> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.number() == n)
            .ok_or_else(|| format!("scenario: expected 1, 2, 3, 4, 5 or 7, got {n}"))
    }

    /// What happens, per implementation.
    pub fn describe(self, imp: Impl) -> &'static str {
        match (self, imp) {
            (Scenario::RouterDies, _) => {
                "primary router dies (mgmt + underlay down, then kill -9 of everything)"
            }
            (Scenario::BirdKilled, _) => "primary's BIRD killed (-9)",
            (Scenario::UnderlayDown, _) => "primary's underlay down, management up",
            (Scenario::DaemonKilled, Impl::Evpn) => "primary's evpnd killed (-9)",
            (Scenario::DaemonKilled, Impl::Keepalived) => "primary's keepalived killed (-9)",
            (Scenario::MgmtPartition, _) => "management partition between evpnr and the primary",
            (Scenario::Planned, Impl::Evpn) => "planned move (MoveGroupBVI)",
            (Scenario::Planned, Impl::Keepalived) => "planned move (priority lowered)",
        }
    }
}

/// What the bench does.
#[derive(Debug, Clone)]
pub struct BenchOpts {
    /// The implementations, each scenario runs for all of them in turn.
    pub impls: Vec<Impl>,
    /// The scenarios.
    pub scenarios: Vec<Scenario>,
    /// Trials per scenario and implementation.
    pub trials: usize,
    /// The measured window after the trigger.
    pub window: Duration,
    /// keepalived's advertisement interval in centiseconds.
    pub advert_cs: u32,
}

/// One trial.
#[derive(Debug, Clone)]
pub struct Trial {
    /// Implementation.
    pub imp: Impl,
    /// Scenario.
    pub scenario: Scenario,
    /// IPv4 probes over the window.
    pub v4: WindowStats,
    /// IPv6 probes over the window.
    pub v6: WindowStats,
    /// Duplicate replies (both families) over the window.
    pub dups: usize,
    /// Both families answered in the last 50 ms of the window.
    pub recovered: bool,
    /// Router 2 took the gateway during the window.
    pub moved: bool,
    /// Two-holder moments from the trigger until the baseline was back.
    pub two_holder: Vec<Span>,
    /// The end of the window (µs since the epoch): moments before it are
    /// the failover's, later ones the repair's.
    pub window_end: u64,
}

impl Trial {
    /// The two-holder moments (ms) inside the window (`true`) or in the
    /// repair after it, clipped to that part.
    pub fn two_holder_ms(&self, in_window: bool) -> Vec<f64> {
        self.two_holder
            .iter()
            .filter_map(|&(a, b)| {
                let (a, b) = if in_window {
                    (a, b.min(self.window_end))
                } else {
                    (a.max(self.window_end), b)
                };
                (b > a).then(|| (b - a) as f64 / 1000.0)
            })
            .collect()
    }
}

/// State of one implementation's block of trials.
struct Side {
    imp: Impl,
    mac: String,
    vni: u32,
    prober: Prober,
    holders: Vec<HolderWatch>,
    poll: TablePoll,
    ka: Option<KaPeer>,
    evpnr: Option<(EvpnrClient, Vec<String>, String)>,
}

const POLL: Duration = Duration::from_millis(10);

/// Run the bench; `say` gets one line per trial and the tables.
pub fn failover_bench(
    f: &mut Fabric,
    gw: &Gateway,
    o: &BenchOpts,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<Trial>> {
    let epoch = Instant::now();
    if let Some(b) = f.opts.bfd {
        let out = crate::netns::run(&[
            &f.opts
                .bird_bin
                .display()
                .to_string()
                .replace("bird-2.20", "birdc-2.20"),
            "-s",
            &f.routers[0].bird_sock.display().to_string(),
            "show",
            "bfd",
            "sessions",
        ])
        .unwrap_or_else(|e| format!("(birdc: {e:#})"));
        say(&format!(
            "BFD {b} on the iBGP sessions; r1's BIRD says:\n{}",
            out.trim_end()
        ));
    } else {
        say("BFD off: an underlay cut is seen only at BGP hold-timer expiry (240 s)");
    }
    let mut evpnr = None;
    if o.impls.contains(&Impl::Evpn) {
        let (r, _cl, members) = demo::setup_registry(f, gw, say)?;
        let mut rc = r.clone();
        let req = v1::BindGroupBviRequest {
            group_id: gw.group.clone(),
            instance_id: members[0].clone(),
        };
        f.block_on(async move { rc.bind_group_bvi(req).await })
            .context("BindGroupBVI")?;
        evpnr = Some((r, members, gw.group.clone()));
    }
    let mut out = Vec::new();
    for &sc in &o.scenarios {
        for &imp in &o.impls {
            if sc == Scenario::MgmtPartition && imp == Impl::Keepalived {
                say("scenario 5, keepalived: n/a (keepalived has no management plane)");
                continue;
            }
            let mut side = open_side(f, gw, imp, o, epoch, evpnr.clone())?;
            for t in 0..o.trials {
                let r = trial(f, &mut side, sc, o.window)
                    .with_context(|| format!("scenario {}, {imp}, trial {}", sc.number(), t + 1))?;
                say(&trial_line(&r, t + 1));
                out.push(r);
            }
        }
        say("");
        say(&table(&out, sc, o));
    }
    let logs: Vec<String> = f
        .routers
        .iter()
        .map(|r| std::fs::read_to_string(r.dir.join("bird.log")).unwrap_or_default())
        .collect();
    let n = untouched_resets(&logs);
    say(&format!(
        "BGP sessions between routers no trial touches (all but r1) were reset {n} times during the run{}",
        if n > 0 {
            " (`Received: Cease`): BFD too fast for this machine's load? The numbers above are disturbed."
        } else {
            ""
        }
    ));
    Ok(out)
}

/// Session resets between routers 2…N (trials only touch r1): `rJ:
/// Received: Cease` lines in router K's BIRD log (`logs[K-1]`), J, K ≠ 1,
/// minus the one per session that every BIRD's shutdown at the end sends.
pub fn untouched_resets(logs: &[String]) -> usize {
    let mut n = 0;
    for (k, log) in logs.iter().enumerate().skip(1) {
        let shutdown_at = log.find("Shutting down").unwrap_or(log.len());
        for (j, _) in logs.iter().enumerate().skip(1) {
            if j == k {
                continue;
            }
            let needle = format!("<RMT> r{}: Received: Cease", j + 1);
            n += log[..shutdown_at].matches(&needle).count();
        }
    }
    n
}

fn open_side(
    f: &Fabric,
    gw: &Gateway,
    imp: Impl,
    o: &BenchOpts,
    epoch: Instant,
    evpnr: Option<(EvpnrClient, Vec<String>, String)>,
) -> anyhow::Result<Side> {
    let cands = f.routers.len() - 1;
    let (mac, vni, port, ns, v4, v6) = match imp {
        Impl::Evpn => (
            gw.vmac.clone(),
            gw.vni,
            netif::Slug::new(&gw.slug)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .names()
                .port,
            f.host.name.clone(),
            gw.v4.0,
            gw.v6.0,
        ),
        Impl::Keepalived => (
            vrrp::KA_VMAC.to_string(),
            vrrp::KA_VNI,
            vrrp::KBVP.to_string(),
            f.host_ka
                .as_ref()
                .context("no keepalived host")?
                .name
                .clone(),
            vrrp::KA_V4,
            vrrp::KA_V6,
        ),
    };
    let ka = match imp {
        Impl::Keepalived => Some(KaPeer::start(f, o.advert_cs, epoch)?),
        Impl::Evpn => None,
    };
    let holders = (0..cands)
        .map(|i| HolderWatch::start(&f.routers[i].ns.name, i, &port, &mac, epoch))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let socks = f.routers.iter().map(|r| r.bird_sock.clone()).collect();
    let poll = TablePoll::start(&f.handle(), socks, &mac, POLL, epoch);
    let prober = Prober::start(&ns, v4, v6, Duration::from_millis(1), epoch)?;
    Ok(Side {
        imp,
        mac,
        vni,
        prober,
        holders,
        poll,
        ka,
        evpnr: if imp == Impl::Evpn { evpnr } else { None },
    })
}

/// Whether evpnr reports every member ready (after a repair its view of
/// the primary comes back a little after the fabric's).
fn members_ready(f: &Fabric, side: &Side) -> bool {
    let Some((r, members, _)) = side.evpnr.clone() else {
        return true;
    };
    let mut r = r;
    let Ok(l) = f.block_on(async move { r.list_instances(v1::Empty {}).await }) else {
        return false;
    };
    let l = l.into_inner().instances;
    members
        .iter()
        .all(|m| l.iter().any(|i| &i.instance_id == m && i.ready))
}

/// Router 1 is the only announcer of the MAC at the leaf (BIRD's evpntab),
/// the host's probes are answered, and (ours) evpnr sees every member ready.
fn wait_baseline(f: &Fabric, side: &Side, timeout: Duration) -> anyhow::Result<()> {
    let want = format!("{}:{}", f.routers[0].addr, side.vni);
    let deadline = Instant::now() + timeout;
    loop {
        let ready = members_ready(f, side);
        let routes = demo::leaf_evpn_routes(f, &side.mac).unwrap_or_default();
        let rds: Vec<String> = routes
            .iter()
            .map(|(n, _)| n.split_whitespace().nth(2).unwrap_or(n).to_string())
            .collect();
        if ready && rds == [want.clone()] && side.prober.wait_answered(Duration::from_millis(200)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "baseline not back within {timeout:?}: the leaf has {rds:?}, want only {want}; \
                 evpnr sees every member ready: {ready}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn move_to(f: &Fabric, side: &Side, to: usize) -> anyhow::Result<()> {
    let (r, members, group) = side.evpnr.clone().context("no evpnr")?;
    let mut rc = r;
    let req = v1::MoveGroupBviRequest {
        group_id: group,
        instance_id: members[to].clone(),
        force: false,
    };
    f.block_on(async move { rc.move_group_bvi(req).await })
        .with_context(|| format!("MoveGroupBVI to {}", members[to]))?;
    Ok(())
}

/// MoveGroupBVI to r2, retried while evpnr refuses it because it cannot
/// reach r1 yet (its channel to r1 reconnects a while after a healed
/// management partition; nothing changes on a refused move). Returns the
/// start of the accepted call and the refusals.
fn planned_move(f: &Fabric, side: &Side) -> anyhow::Result<(u64, Vec<String>)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut refused = Vec::new();
    loop {
        let t = side.prober.now_us();
        match move_to(f, side, 1) {
            Ok(()) => return Ok((t, refused)),
            Err(e)
                if Instant::now() < deadline
                    && e.downcast_ref::<tonic::Status>()
                        .is_some_and(|s| s.code() == tonic::Code::FailedPrecondition) =>
            {
                refused.push(format!("{e:#}"));
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}

fn trigger(f: &mut Fabric, side: &mut Side, sc: Scenario) -> anyhow::Result<()> {
    match (sc, side.imp) {
        (Scenario::RouterDies, imp) => {
            f.set_link(0, Net::Mgmt, false)?;
            f.set_link(0, Net::Underlay, false)?;
            match imp {
                Impl::Evpn => f.kill_evpnd(0)?,
                Impl::Keepalived => side.ka.as_mut().context("no keepalived")?.kill9_router(0)?,
            }
            f.kill_bird(0)?;
        }
        (Scenario::BirdKilled, _) => f.kill_bird(0)?,
        (Scenario::UnderlayDown, _) => f.set_link(0, Net::Underlay, false)?,
        (Scenario::DaemonKilled, Impl::Evpn) => f.kill_evpnd(0)?,
        (Scenario::DaemonKilled, Impl::Keepalived) => {
            side.ka.as_mut().context("no keepalived")?.kill9_router(0)?
        }
        (Scenario::MgmtPartition, _) => f.set_link(0, Net::Mgmt, false)?,
        (Scenario::Planned, Impl::Evpn) => bail!("a planned move of ours is planned_move"),
        (Scenario::Planned, Impl::Keepalived) => side
            .ka
            .as_ref()
            .context("no keepalived")?
            .lower_priority(0, true)?,
    }
    Ok(())
}

/// Repair; returns when router 1 is back on the fabric (links up).
fn repair(f: &mut Fabric, side: &mut Side, sc: Scenario) -> anyhow::Result<u64> {
    let mut back = side.prober.now_us();
    match (sc, side.imp) {
        (Scenario::RouterDies, imp) => {
            f.set_link(0, Net::Underlay, true)?;
            f.set_link(0, Net::Mgmt, true)?;
            back = side.prober.now_us();
            f.start_bird(0)?;
            match imp {
                Impl::Evpn => {
                    f.restart_evpnd(0)?;
                }
                Impl::Keepalived => side.ka.as_mut().context("no keepalived")?.start_router(0)?,
            }
        }
        (Scenario::BirdKilled, _) => f.start_bird(0)?,
        (Scenario::UnderlayDown, _) => {
            f.set_link(0, Net::Underlay, true)?;
            back = side.prober.now_us();
        }
        (Scenario::DaemonKilled, Impl::Evpn) => {
            f.restart_evpnd(0)?;
        }
        (Scenario::DaemonKilled, Impl::Keepalived) => {
            side.ka.as_mut().context("no keepalived")?.start_router(0)?
        }
        (Scenario::MgmtPartition, _) => f.set_link(0, Net::Mgmt, true)?,
        (Scenario::Planned, Impl::Evpn) => {}
        (Scenario::Planned, Impl::Keepalived) => side
            .ka
            .as_ref()
            .context("no keepalived")?
            .lower_priority(0, false)?,
    }
    if side.imp == Impl::Evpn && wait_baseline(f, side, Duration::from_secs(5)).is_err() {
        // The gateway is elsewhere (a planned move, or a failover that
        // happened): move it back.
        f.wait_bgp(Duration::from_secs(30))?;
        // The repair is not measured: a failed move back is reported and
        // retried (twice) rather than ending the run.
        let mut tries = 0;
        while let Err(e) = move_to(f, side, 0) {
            tries += 1;
            eprintln!("evpnfabric: repair, attempt {tries}: {e:#}");
            if tries == 3 {
                return Err(e);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    Ok(back)
}

fn trial(f: &mut Fabric, side: &mut Side, sc: Scenario, window: Duration) -> anyhow::Result<Trial> {
    wait_baseline(f, side, Duration::from_secs(60))?;
    if let Some(ka) = &side.ka {
        ka.wait_master(0, Duration::from_secs(10))?;
    }
    std::thread::sleep(Duration::from_millis(300));
    let n = side.holders.len();
    let mut t0 = side.prober.now_us();
    if (sc, side.imp) == (Scenario::Planned, Impl::Evpn) {
        let (t, refused) = planned_move(f, side)?;
        if !refused.is_empty() {
            eprintln!(
                "evpnfabric: MoveGroupBVI refused {} times over {:.0} ms before evpnr accepted it; first: {}",
                refused.len(),
                (t - t0) as f64 / 1000.0,
                refused[0]
            );
        }
        t0 = t;
    } else {
        trigger(f, side, sc)?;
    }
    let wus = window.as_micros() as u64;
    let t1 = t0 + wus;
    let left = t1.saturating_sub(side.prober.now_us());
    std::thread::sleep(Duration::from_micros(left) + Duration::from_millis(100));
    let (v4, v6) = side.prober.window(t0, t1);
    let dups = side.prober.v4.dups(t0, t1) + side.prober.v6.dups(t0, t1);
    let answered = |l: &crate::prober::ProbeLog| {
        l.snapshot().iter().any(|p| {
            p.sent_us >= t1 - 50_000
                && p.sent_us <= t1
                && p.reply_us.is_some_and(|r| r <= t1 + 5_000)
        })
    };
    let recovered = answered(&side.prober.v4) && answered(&side.prober.v6);
    if let Some(ka) = &side.ka {
        // The helper's view of the window, when it failed or the gateway
        // did not come back: which notifications arrived, which steps failed.
        for r in &ka.routers {
            let evs = r
                .helper
                .events
                .lock()
                .map(|v| v.clone())
                .unwrap_or_default();
            let evs: Vec<_> = evs.iter().filter(|e| e.at >= t0 && e.at <= t1).collect();
            if !recovered || evs.iter().any(|e| e.error.is_some()) {
                eprintln!(
                    "evpnfabric: keepalived helper r{} in the window: {}",
                    r.idx + 1,
                    evs.iter()
                        .map(|e| format!(
                            "{:?} at +{:.1} ms{}",
                            e.state,
                            (e.at - t0) as f64 / 1000.0,
                            e.error
                                .as_ref()
                                .map(|x| format!(" FAILED: {x}"))
                                .unwrap_or_default()
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    let back = repair(f, side, sc)?;
    wait_baseline(f, side, Duration::from_secs(60))?;
    let t2 = side.prober.now_us();
    let mut off: Vec<Vec<Span>> = vec![Vec::new(); f.routers.len()];
    if matches!(sc, Scenario::RouterDies | Scenario::UnderlayDown) {
        off[0].push((t0, back));
    }
    let mut events = Vec::new();
    let mut initial = Vec::new();
    for h in &side.holders {
        events.extend(h.events.lock().map(|v| v.clone()).unwrap_or_default());
        initial.push(h.initial);
    }
    events.sort_by_key(|e| e.at);
    // Each router's state at t0: its initial state and events before t0.
    let at_t0: Vec<bool> = (0..n)
        .map(|r| {
            events
                .iter()
                .rfind(|e| e.router == r && e.at < t0)
                .map_or(initial[r], |e| e.holds)
        })
        .collect();
    let spans = holders::hold_spans(&events, &at_t0, t0, t2);
    let moved = spans
        .get(1)
        .is_some_and(|s| s.iter().any(|&(a, _)| a <= t1));
    let mut two = holders::holder_overlaps(&spans, &off);
    let samples = side
        .poll
        .samples
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    two.extend(holders::table_spans(
        &samples,
        &off,
        POLL.as_micros() as u64,
        t0,
        t2,
    ));
    Ok(Trial {
        imp: side.imp,
        scenario: sc,
        v4,
        v6,
        dups,
        recovered,
        moved,
        two_holder: holders::merge(two, POLL.as_micros() as u64),
        window_end: t1,
    })
}

fn trial_line(r: &Trial, k: usize) -> String {
    format!(
        "scenario {} {:>10} trial {k:>2}: lost v4/v6 {}/{}, gap {:.1}/{:.1} ms, dup {}, {}, {}, two-holder in window {}, in repair {}",
        r.scenario.number(),
        r.imp.to_string(),
        r.v4.lost,
        r.v6.lost,
        r.v4.gap_ms,
        r.v6.gap_ms,
        r.dups,
        if r.recovered {
            "answered at window end"
        } else {
            "NOT recovered within the window"
        },
        if r.moved { "moved" } else { "not moved" },
        ms_list(&r.two_holder_ms(true)),
        ms_list(&r.two_holder_ms(false)),
    )
}

fn ms_list(v: &[f64]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter()
        .map(|m| format!("{m:.1} ms"))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The table of scenario `sc`: one row per implementation.
pub fn table(results: &[Trial], sc: Scenario, o: &BenchOpts) -> String {
    let mut s = format!(
        "scenario {}: window {} ms, keepalived advert_int {}.{:02} s\n\
         | impl | what | n | lost p50/p99/max | gap ms p50/p99/max | dup | answered at window end | moved | two-holder in window: trials / longest ms | in repair: trials / longest ms |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        sc.number(),
        o.window.as_millis(),
        o.advert_cs / 100,
        o.advert_cs % 100,
    );
    for &imp in &o.impls {
        if sc == Scenario::MgmtPartition && imp == Impl::Keepalived {
            s.push_str(&format!(
                "| {imp} | no counterpart | – | n/a | n/a | n/a | n/a | n/a | n/a | n/a |\n"
            ));
            continue;
        }
        let rs: Vec<&Trial> = results
            .iter()
            .filter(|r| r.scenario == sc && r.imp == imp)
            .collect();
        if rs.is_empty() {
            continue;
        }
        let lost: Vec<f64> = rs
            .iter()
            .flat_map(|r| [r.v4.lost as f64, r.v6.lost as f64])
            .collect();
        let gap: Vec<f64> = rs.iter().flat_map(|r| [r.v4.gap_ms, r.v6.gap_ms]).collect();
        let three = |v: &[f64], p: usize| {
            format!(
                "{:.p$} / {:.p$} / {:.p$}",
                percentile(v, 50.0),
                percentile(v, 99.0),
                percentile(v, 100.0)
            )
        };
        let two = |in_window: bool| {
            let with = rs
                .iter()
                .filter(|r| !r.two_holder_ms(in_window).is_empty())
                .count();
            let longest = rs
                .iter()
                .flat_map(|r| r.two_holder_ms(in_window))
                .fold(0.0, f64::max);
            format!("{with} / {longest:.1}")
        };
        s.push_str(&format!(
            "| {imp} | {} | {} | {} | {} | {} | {} of {} | {} of {} | {} | {} |\n",
            sc.describe(imp),
            rs.len(),
            three(&lost, 0),
            three(&gap, 1),
            rs.iter().map(|r| r.dups).sum::<usize>(),
            rs.iter().filter(|r| r.recovered).count(),
            rs.len(),
            rs.iter().filter(|r| r.moved).count(),
            rs.len(),
            two(true),
            two(false),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_between_untouched_routers() {
        let logs = [
            // r1's own log and sessions do not count
            "x <RMT> r2: Received: Cease\n".to_string(),
            "a <RMT> r1: Received: Cease\nb <RMT> r3: Received: Cease\nc <RMT> r3: Received: Cease\n"
                .to_string(),
            "d <RMT> r2: Received: Cease\ne <INFO> Shutting down\nf <RMT> r2: Received: Cease\n"
                .to_string(),
        ];
        assert_eq!(
            untouched_resets(&logs),
            3,
            "two at r2 from r3, one at r3 from r2 before its shutdown"
        );
        assert_eq!(untouched_resets(&[]), 0);
    }

    #[test]
    fn parse_impls_and_scenarios() {
        assert_eq!(parse_impls("both"), Ok(vec![Impl::Evpn, Impl::Keepalived]));
        assert_eq!(parse_impls("keepalived"), Ok(vec![Impl::Keepalived]));
        assert!(parse_impls("vrrp").is_err());
        for s in Scenario::ALL {
            assert_eq!(Scenario::from_number(s.number()), Ok(s));
        }
        assert!(Scenario::from_number(6).is_err(), "6 is the VPP lab's");
    }

    #[test]
    fn table_reports_both_sides_and_na() {
        let w = WindowStats {
            lost: 3,
            sent: 10,
            gap_ms: 4.0,
        };
        let t = |imp, two: Vec<Span>| Trial {
            imp,
            scenario: Scenario::MgmtPartition,
            v4: w,
            v6: w,
            dups: 1,
            recovered: true,
            moved: false,
            two_holder: two,
            window_end: 2000,
        };
        let o = BenchOpts {
            impls: vec![Impl::Evpn, Impl::Keepalived],
            scenarios: vec![Scenario::MgmtPartition],
            trials: 2,
            window: Duration::from_millis(1000),
            advert_cs: 1,
        };
        let s = table(
            &[t(Impl::Evpn, vec![]), t(Impl::Evpn, vec![(500, 2500)])],
            Scenario::MgmtPartition,
            &o,
        );
        assert!(s.contains("| evpn | management partition between evpnr and the primary | 2 | 3 / 3 / 3 | 4.0 / 4.0 / 4.0 | 2 | 2 of 2 | 0 of 2 | 1 / 1.5 | 1 / 0.5 |"), "{s}");
        assert!(s.contains("| keepalived | no counterpart |"), "{s}");
        assert!(s.contains("advert_int 0.01 s"), "{s}");
    }
}
