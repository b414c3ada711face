//! Our side of the bench: evpnr with the group's failover `auto`, and the
//! settings it runs with (evpnd's health checks with BFD and the tracked
//! underlay interface, evpnr's heartbeats), the trial's repair that moves
//! the gateway back to r1, and what evpnr said during a trial.
//!
//! With failover `auto` (preemption off, so a trial's repair is an explicit
//! MoveGroupBVI back to r1), evpnr reacts on its own to the triggers built
//! today: the primary's member stream ending, missed heartbeats (suspect
//! after [`SUSPECT_AFTER_MS`]) and a reported health change (the primary's
//! `bird`, `bgp` or `underlay:eth0` check down after `fall` × `interval`).
//! A takeover binds only with the fabric's evidence that no other VTEP
//! announces the vMAC.
use std::time::{Duration, Instant};

use anyhow::Context;
use evpn_api::v1;

use super::Side;
use crate::{
    demo::{self, EvpnrClient},
    fabric::{Fabric, FabricOpts},
    scenario::Gateway,
};

/// evpnr's heartbeat interval for the bench (evpnr's `liveness`).
pub const HEARTBEAT_MS: u64 = 20;
/// A member whose last heartbeat is older is suspect (unreachable: a
/// takeover starts).
pub const SUSPECT_AFTER_MS: u64 = 100;
/// evpnr's `failover.release-wait` (rule F14) unless the bench's
/// `--release-wait-ms` sets it: a takeover waits at most this long for the
/// old primary's answer to its release. A live r1 answers a release in a
/// few ms on this fabric; a dead one (scenario 1: no FIN) never does, and
/// every ms waited here beyond the least settle is gateway outage.
pub const RELEASE_WAIT_MS: u64 = 10;
/// The bench's health check interval (ms; the timeout is the same): with
/// `fall` [`HEALTH_FALL`] a failed check is seen in 75 ms. On a loaded
/// machine a 20 ms timeout fails spuriously (three in a row move the
/// gateway, a planned move: correct, but not what a trial measures).
pub const HEALTH_INTERVAL_MS: u64 = 25;
/// Every health check's `fall`.
pub const HEALTH_FALL: u32 = 3;
/// Every health check's `rise`.
pub const HEALTH_RISE: u32 = 3;
/// The group's warm-up: a member is a candidate after being reachable and
/// healthy this long (more than `rise` × `interval`, less than the trial's
/// 300 ms pause before its trigger).
pub const WARM_UP_MS: u64 = 200;

/// evpnd's configuration lines (under `evpnd:`) for failover: health
/// checks every `interval_ms` (the timeout the same), BFD declared when the
/// fabric runs it, the underlay tracked.
pub fn evpnd_health(bfd: bool, interval_ms: u64) -> String {
    format!(
        "  health:\n    interval: {interval_ms}ms\n    timeout: {interval_ms}ms\n    \
         rise: {HEALTH_RISE}\n    fall: {HEALTH_FALL}\n    underlay:\n      interfaces: [eth0]\n    \
         self-fence:\n      hold: 200ms\n    bfd: {bfd}\n"
    )
}

/// A takeover's least settle (`move.takeover-min-settle`) with `bfd` on
/// the iBGP sessions: one and a half BFD intervals, as docs/config.md
/// advises (the routers' BFD sessions to a dead router expire within one
/// transmit interval of each other; half an interval is the margin);
/// evpnr's default (100 ms) without BFD.
pub fn takeover_min_settle_ms(bfd: Option<&crate::bfd::Bfd>) -> u64 {
    bfd.map_or(100, |b| (u64::from(b.interval_ms) * 3).div_ceil(2))
}

/// evpnr's configuration for failover (heartbeats, suspicion, a
/// takeover's release wait and least settle, in ms).
pub fn evpnr_config(min_settle_ms: u64, release_wait_ms: u64) -> String {
    format!(
        "evpnr:\n  liveness:\n    heartbeat-interval: {HEARTBEAT_MS}ms\n    \
         suspect-after: {SUSPECT_AFTER_MS}ms\n    dead-after: 2s\n  failover:\n    \
         release-wait: {release_wait_ms}ms\n  move:\n    takeover-min-settle: {min_settle_ms}ms\n"
    )
}

/// Set the fabric up for our failover: evpnr (registry) with
/// [`evpnr_config`] (the least settle [`takeover_min_settle_ms`] and the
/// release wait [`RELEASE_WAIT_MS`] unless given), the evpnds with
/// [`evpnd_health`] every `health_interval_ms`.
pub fn configure(
    o: &mut FabricOpts,
    health_interval_ms: u64,
    min_settle_ms: Option<u64>,
    release_wait_ms: Option<u64>,
) {
    if o.evpnr_bin.is_none() {
        o.evpnr_bin = Some(crate::fabric::bin_path("evpnr", "EVPNR_BIN"));
    }
    o.register = true;
    let settle = min_settle_ms.unwrap_or_else(|| takeover_min_settle_ms(o.bfd.as_ref()));
    o.evpnr_config = Some(evpnr_config(
        settle,
        release_wait_ms.unwrap_or(RELEASE_WAIT_MS),
    ));
    o.evpnd_extra = evpnd_health(o.bfd.is_some(), health_interval_ms);
}

/// What [`configure`] and [`setup`] set, in words (the bench prints it).
pub fn describe(f: &Fabric, auto: bool) -> String {
    let cfg = |key: &str| {
        f.opts
            .evpnr_config
            .as_deref()
            .and_then(|c| c.split(&format!("{key}: ")).nth(1))
            .and_then(|r| r.lines().next())
            .unwrap_or("(evpnr's default)")
            .to_string()
    };
    format!(
        "ours: failover {} (preemption off, hold-down 0, flap damping off, warm-up {WARM_UP_MS} ms); \
         evpnr heartbeats every {HEARTBEAT_MS} ms, suspect after {SUSPECT_AFTER_MS} ms, \
         release wait {}, takeover least settle {}; evpnd {}",
        if auto { "auto" } else { "manual" },
        cfg("release-wait"),
        cfg("takeover-min-settle"),
        f.opts
            .evpnd_extra
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// The group through evpnr ([`demo::setup_registry`]), bound on r1, and
/// with `auto`: failover auto with preemption off (the repair moves the
/// gateway back explicitly), no hold-down and no flap damping (the trials
/// follow each other within seconds) and a warm-up of [`WARM_UP_MS`].
pub fn setup(
    f: &Fabric,
    gw: &Gateway,
    auto: bool,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<(EvpnrClient, Vec<String>, String)> {
    let (r, _cl, members) = demo::setup_registry(f, gw, say)?;
    let mut rc = r.clone();
    let req = v1::BindGroupBviRequest {
        group_id: gw.group.clone(),
        instance_id: members[0].clone(),
    };
    f.block_on(async move { rc.bind_group_bvi(req).await })
        .context("BindGroupBVI")?;
    if auto {
        let mut rc = r.clone();
        let req = v1::SetGroupFailoverRequest {
            group_id: gw.group.clone(),
            mode: "auto".into(),
            preempt_off: true,
            hold_down_ms: Some(0),
            flap_limit: Some(0),
            warm_up_ms: Some(WARM_UP_MS),
            ..Default::default()
        };
        let g = f
            .block_on(async move { rc.set_group_failover(req).await })
            .context("SetGroupFailover")?
            .into_inner();
        say(&format!("group {}: failover {:?}", g.group_id, g.failover));
    }
    say(&describe(f, auto));
    Ok((r, members, gw.group.clone()))
}

/// Suspend (keepalived's block of trials, which fail r1 too) or resume
/// evpnr's autonomous failover.
pub(super) fn suspend(f: &Fabric, r: &EvpnrClient, suspended: bool) -> anyhow::Result<()> {
    let mut r = r.clone();
    let req = v1::SetFailoverSuspendedRequest { suspended };
    f.block_on(async move { r.set_failover_suspended(req).await })
        .context("SetFailoverSuspended")?;
    Ok(())
}

/// Whether evpnr reports every member ready with its host health up, and
/// r1 as the group's primary (after a repair its view comes back a little
/// after the fabric's): `Ok(())`, or what is not yet so, in words (the
/// baseline's timeout prints it).
pub(super) fn members_ready(f: &Fabric, side: &Side) -> Result<(), String> {
    let Some((_, members, _)) = side.evpnr.as_ref() else {
        return Ok(());
    };
    let p = primary(f, side);
    if p.as_ref() != Some(&members[0]) {
        return Err(format!("primary is {p:?}, want {}", members[0]));
    }
    members_up(f, side)
}

/// Whether evpnr reports every member ready with its host health up
/// (wherever the gateway is).
fn members_up(f: &Fabric, side: &Side) -> Result<(), String> {
    let Some((r, members, _)) = side.evpnr.clone() else {
        return Ok(());
    };
    let not: Vec<String> = members
        .iter()
        .filter_map(|m| {
            let mut r = r.clone();
            let req = v1::InstanceRef {
                instance_id: m.clone(),
            };
            let s = match f.block_on(async move { r.get_instance_status(req).await }) {
                Ok(s) => s.into_inner(),
                Err(e) => return Some(format!("{m}: GetInstanceStatus: {}", e.message())),
            };
            let (state, ready) = s
                .instance
                .as_ref()
                .map_or((-1, false), |i| (i.state, i.ready));
            let host = s.health.as_ref().and_then(|h| h.host.clone());
            let ok = host
                .as_ref()
                .is_some_and(|h| h.status == v1::Health::Ok as i32);
            (!ready || !ok).then(|| {
                format!(
                    "{m}: ready {ready}, connection state {state}, host health {}",
                    host.map_or("none reported".into(), |h| format!(
                        "{} {:?}",
                        h.status, h.reason
                    ))
                )
            })
        })
        .collect();
    match not.is_empty() {
        true => Ok(()),
        false => Err(not.join("; ")),
    }
}

/// The autonomous failovers evpnr started after byte `from` of its log
/// that have not ended yet (every `failover-started` ends with a
/// `failover-finished` or a `failover-blocked`).
fn failovers_in_flight(f: &Fabric, from: usize) -> usize {
    let log = std::fs::read_to_string(f.path.join("evpnr").join("evpnr.log")).unwrap_or_default();
    let n = |what: &str| {
        log.get(from..)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!("\"message\":\"{what}\"")))
            .count()
    };
    n("failover-started").saturating_sub(n("failover-finished") + n("failover-blocked"))
}

/// After a repair, before the baseline is judged: every member is back
/// (ready, host health up) and no failover evpnr started since byte
/// `from` of its log is still running. A takeover started while r1's evpnd
/// was down or cut off waits for the fabric's evidence up to evpnr's
/// `move.max-wait` and may still be running when r1 is back; the baseline
/// read during it would be the old one. Returns how many failovers moved
/// the gateway after the repair began (`failover-finished` after
/// `repair_from`).
pub(super) fn wait_quiet(
    f: &Fabric,
    side: &Side,
    from: usize,
    repair_from: usize,
    timeout: Duration,
) -> anyhow::Result<usize> {
    if side.evpnr.is_none() {
        return Ok(0);
    }
    let deadline = Instant::now() + timeout;
    loop {
        let up = members_up(f, side);
        let busy = failovers_in_flight(f, from);
        if up.is_ok() && busy == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "evpnr not quiet within {timeout:?} of the repair: members {up:?}, \
             {busy} failover(s) still running"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(evpnr_said(f, repair_from)
        .iter()
        .filter(|l| l.contains("\"message\":\"failover-finished\""))
        .count())
}

pub(super) fn move_to(f: &Fabric, side: &Side, to: usize) -> anyhow::Result<()> {
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
pub(super) fn planned_move(f: &Fabric, side: &Side) -> anyhow::Result<(u64, Vec<String>)> {
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

/// evpnr's primary of the group (`None`: unassigned or not known).
pub(super) fn primary(f: &Fabric, side: &Side) -> Option<String> {
    let (mut r, _, group) = side.evpnr.clone()?;
    let g = f
        .block_on(async move { r.get_group(v1::GroupRef { group_id: group }).await })
        .ok()?
        .into_inner();
    Some(g.primary_instance_id).filter(|p| !p.is_empty())
}

/// The repair's move back to r1 (the gateway is elsewhere: a planned move
/// or a failover happened). Not measured: a refused or failed move is
/// printed and tried again until `timeout` (evpnr may not reach r1 yet, or
/// r1's health may not be up again).
pub(super) fn move_back(f: &Fabric, side: &Side, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut tries = 0;
    loop {
        if primary(f, side).as_deref() == Some(f.routers[0].id.as_str()) {
            return Ok(());
        }
        match move_to(f, side, 0) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                tries += 1;
                if tries <= 3 || tries % 10 == 0 {
                    eprintln!("evpnfabric: repair, moving back to r1, attempt {tries}: {e:#}");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A dead router comes back by booting: its eVPN devices (and the vMAC on
/// its BVI) are gone when its processes start again. Delete router `i`'s.
pub(super) fn reboot_dataplane(f: &Fabric, i: usize) -> anyhow::Result<()> {
    for l in f.evpn_links(i)? {
        // A BVI goes with its bridge port; a device already gone is fine.
        let _ = f.routers[i].ns.ip(&["link", "del", &l]);
    }
    let left = f.evpn_links(i)?;
    anyhow::ensure!(left.is_empty(), "{}: left {left:?}", f.routers[i].id);
    Ok(())
}

/// evpnr's log length now (see [`evpnr_said`]).
pub(super) fn evpnr_log_len(f: &Fabric) -> usize {
    std::fs::read_to_string(f.path.join("evpnr").join("evpnr.log")).map_or(0, |s| s.len())
}

/// evpnr's failover and move events logged after byte `from` of its log:
/// what our side did during a trial.
pub(super) fn evpnr_said(f: &Fabric, from: usize) -> Vec<String> {
    let log = std::fs::read_to_string(f.path.join("evpnr").join("evpnr.log")).unwrap_or_default();
    log.get(from..)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            ["failover-", "move-", "instance-suspect", "groupbvi-stray"]
                .iter()
                .any(|k| l.contains(k))
        })
        .map(|l| l.chars().take(400).collect())
        .collect()
}

/// evpnr's `move-timeline` events (debug) as they come, for the trials
/// that lost probes: where a takeover's time went.
#[derive(Clone, Default)]
pub(super) struct Timelines(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Timelines {
    /// Subscribe to evpnr's failover events at level debug; the stream
    /// runs on the fabric's runtime until evpnr goes away.
    pub(super) fn watch(f: &Fabric, r: &EvpnrClient) -> anyhow::Result<Self> {
        let mut s = crate::bench::watch_failover_debug(f, r).context("WatchEvents")?;
        let t = Timelines::default();
        let got = t.0.clone();
        f.handle().spawn(async move {
            while let Ok(Some(e)) = s.message().await {
                if e.message != "move-timeline" {
                    continue;
                }
                let field = |k: &str| e.fields.get(k).cloned().unwrap_or_default();
                let line = format!(
                    "{} to {}: {} µs, {}; steps (µs): {}",
                    field("op"),
                    field("to"),
                    field("total-us"),
                    field("result"),
                    field("steps")
                );
                if let Ok(mut v) = got.lock() {
                    v.push(line);
                }
            }
        });
        Ok(t)
    }

    /// The timelines received since the last call.
    pub(super) fn take(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}
