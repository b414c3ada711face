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

use crate::{
    demo::{self, EvpnrClient},
    fabric::{Fabric, Net},
    holders::{self, HolderWatch, Span, TablePoll},
    prober::{Prober, WindowStats},
    scenario::Gateway,
    vrrp::{self, KaPeer},
};

pub mod evpn;
mod table;

use table::trial_line;
pub use table::{table, untouched_resets};

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
    /// Our side with the group's failover `auto` (`false`: `manual`, only
    /// the planned move and the repair move the gateway).
    pub evpn_auto: bool,
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
    /// Router 2 held the gateway at some moment from the trigger until the
    /// repair started (the window and the wait for its end).
    pub r2_held: bool,
    /// Two-holder moments from the trigger until the baseline was back.
    pub two_holder: Vec<Span>,
    /// The end of the window (µs since the epoch): moments before it are
    /// the failover's, later ones the repair's.
    pub window_end: u64,
    /// Ours: failovers that moved the gateway after the repair began (a
    /// takeover started while r1 was away that found its evidence once r1
    /// was back); the repair moved it back to r1.
    pub moved_after_repair: usize,
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
    /// Ours: evpnr's `move-timeline` events, printed for lossy trials.
    timelines: evpn::Timelines,
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
        evpnr = Some(evpn::setup(f, gw, o.evpn_auto, say)?);
    }
    let timelines = match &evpnr {
        Some((r, _, _)) => evpn::Timelines::watch(f, r)?,
        None => evpn::Timelines::default(),
    };
    say(&format!(
        "load average at the start: {}",
        crate::bench::load_average()
    ));
    let mut out = Vec::new();
    for &sc in &o.scenarios {
        for &imp in &o.impls {
            if sc == Scenario::MgmtPartition && imp == Impl::Keepalived {
                say("scenario 5, keepalived: n/a (keepalived has no management plane)");
                continue;
            }
            if let (Some((r, _, _)), Impl::Keepalived) = (&evpnr, imp) {
                // keepalived's trials fail r1 too: our group stays put.
                evpn::suspend(f, r, true)?;
            }
            let mut side = open_side(f, gw, imp, o, epoch, evpnr.clone())?;
            side.timelines = timelines.clone();
            if let (Some((r, _, _)), Impl::Evpn) = (&evpnr, imp) {
                // After keepalived's trials r1 may have fenced itself (its
                // BIRD was killed): evpnr's resync binds it again once it
                // is healthy. Failover resumes only then, or it would
                // (rightly) take the gateway away from the silent r1.
                wait_baseline(f, &side, Duration::from_secs(60))
                    .context("our baseline before resuming failover")?;
                evpn::suspend(f, r, false)?;
            }
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
        "load average at the end: {}; BGP sessions between routers no trial touches (all but r1) were reset {n} times during the run{}",
        crate::bench::load_average(),
        if n > 0 {
            " (`Received: Cease`): BFD too fast for this machine's load? The numbers above are disturbed."
        } else {
            ""
        }
    ));
    Ok(out)
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
        timelines: evpn::Timelines::default(),
    })
}

/// Router 1 is the only announcer of the MAC at the leaf (BIRD's evpntab),
/// the host's probes are answered, and (ours) evpnr sees every member ready.
fn wait_baseline(f: &Fabric, side: &Side, timeout: Duration) -> anyhow::Result<()> {
    let want = format!("{}:{}", f.routers[0].addr, side.vni);
    let deadline = Instant::now() + timeout;
    let mut last_said = Instant::now();
    loop {
        let ready = evpn::members_ready(f, side);
        let routes = demo::leaf_evpn_routes(f, &side.mac).unwrap_or_default();
        let rds: Vec<String> = routes
            .iter()
            .map(|(n, _)| n.split_whitespace().nth(2).unwrap_or(n).to_string())
            .collect();
        if ready.is_ok()
            && rds == [want.clone()]
            && side.prober.wait_answered(Duration::from_millis(200))
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "baseline not back within {timeout:?}: the leaf has {rds:?}, want only {want}; \
                 evpnr: {ready:?}"
            );
        }
        if last_said.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "evpnfabric: waiting for the baseline: the leaf has {rds:?}, want only {want}; \
                 evpnr: {ready:?}"
            );
            last_said = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
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

/// Repair; returns when router 1 is back on the fabric (links up), and
/// (ours) how many failovers finished after the repair began (see
/// [`evpn::wait_quiet`]). `log_at`: evpnr's log length at the trial's start.
fn repair(
    f: &mut Fabric,
    side: &mut Side,
    sc: Scenario,
    log_at: usize,
) -> anyhow::Result<(u64, usize)> {
    let mut back = side.prober.now_us();
    let repair_at = evpn::evpnr_log_len(f);
    match (sc, side.imp) {
        (Scenario::RouterDies, imp) => {
            if imp == Impl::Evpn {
                evpn::reboot_dataplane(f, 0)?;
            }
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
    let moved_after = match side.imp {
        Impl::Evpn => evpn::wait_quiet(f, side, log_at, repair_at, Duration::from_secs(60))?,
        Impl::Keepalived => 0,
    };
    if side.imp == Impl::Evpn
        && (evpn::primary(f, side).as_deref() != Some(f.routers[0].id.as_str())
            || wait_baseline(f, side, Duration::from_secs(5)).is_err())
    {
        // The gateway is elsewhere (a planned move, or a failover that
        // happened): move it back.
        f.wait_bgp(Duration::from_secs(30))?;
        evpn::move_back(f, side, Duration::from_secs(60))?;
    }
    Ok((back, moved_after))
}

fn trial(f: &mut Fabric, side: &mut Side, sc: Scenario, window: Duration) -> anyhow::Result<Trial> {
    if side.imp == Impl::Evpn
        && let Some(p) = evpn::primary(f, side).filter(|p| *p != f.routers[0].id)
    {
        // evpnr moved the gateway after the previous trial's repair ended
        // (a primary that flapped suspect right after coming back): said
        // here, and undone so this trial starts from the baseline.
        eprintln!(
            "evpnfabric: before this trial the gateway is on {p}: evpnr moved it after the \
             previous repair; moving it back"
        );
        let at = evpn::evpnr_log_len(f);
        evpn::wait_quiet(f, side, at, at, Duration::from_secs(60))?;
        f.wait_bgp(Duration::from_secs(30))?;
        evpn::move_back(f, side, Duration::from_secs(60))?;
    }
    wait_baseline(f, side, Duration::from_secs(60))?;
    if let Some(ka) = &side.ka {
        ka.wait_master(0, Duration::from_secs(10))?;
    }
    std::thread::sleep(Duration::from_millis(300));
    let n = side.holders.len();
    let log_at = evpn::evpnr_log_len(f);
    // Only this trial's timelines are printed.
    side.timelines.take();
    let mut t0 = side.prober.now_us();
    if (sc, side.imp) == (Scenario::Planned, Impl::Evpn) {
        let (t, refused) = evpn::planned_move(f, side)?;
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
    if side.imp == Impl::Evpn {
        // What evpnr did, when the gateway did not come back or the trial
        // lost probes.
        let (v4, v6) = side.prober.window(t0, t1);
        if !recovered || v4.lost + v6.lost > 0 {
            for l in evpn::evpnr_said(f, log_at) {
                eprintln!("evpnfabric: evpnr: {l}");
            }
            for t in side.timelines.take() {
                eprintln!("evpnfabric: evpnr move-timeline: {t}");
            }
        }
    }
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
    let t_repair = side.prober.now_us();
    let (back, moved_after_repair) = repair(f, side, sc, log_at)?;
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
    let r2_held = spans
        .get(1)
        .is_some_and(|s| s.iter().any(|&(a, _)| a <= t_repair));
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
        r2_held,
        two_holder: holders::merge(two, POLL.as_micros() as u64),
        window_end: t1,
        moved_after_repair,
    })
}
