//! The move benchmark: planned break-before-make moves between r1 and r2
//! with the host probing the gateway every 1 ms; per move the lost probes,
//! the longest reply gap and the time until the leaf's FDB points at the
//! new primary, for the evidence-based wait and for a fixed settle time.
use std::time::{Duration, Instant};

use anyhow::bail;

use evpn_api::v1;

use crate::{
    demo,
    fabric::Fabric,
    prober::{Prober, WindowStats},
    scenario::{self, Clients, FdbWatch, Gateway, MoveTimes, Wait},
};

/// One measured move.
#[derive(Debug, Clone)]
pub struct MoveResult {
    /// The wait variant.
    pub wait: Wait,
    /// Old and new primary (router indexes).
    pub from: usize,
    /// See `from`.
    pub to: usize,
    /// RPC timestamps.
    pub times: MoveTimes,
    /// IPv4 probes over the move.
    pub v4: WindowStats,
    /// IPv6 probes over the move.
    pub v6: WindowStats,
    /// Time from the release until the leaf's FDB pointed at the new
    /// primary, ms.
    pub fdb_switch_ms: Option<f64>,
    /// The move's timeline: through evpnr its `move-timeline` event
    /// (`total-us` and `steps`); on the evpnds' RPCs the steps of their
    /// Release and Bind answers (`BVI.steps`, µs after each received it).
    pub timeline: Option<String>,
}

impl MoveResult {
    /// The longer of the two families' reply gaps, ms.
    pub fn gap_ms(&self) -> f64 {
        self.v4.gap_ms.max(self.v6.gap_ms)
    }
}

/// evpnr's failover events at level debug (the `move-timeline`s among
/// them), subscribed to from the lab's runtime (in the underlay namespace,
/// where evpnr listens).
pub fn watch_failover_debug(
    f: &Fabric,
    r: &crate::demo::EvpnrClient,
) -> anyhow::Result<tonic::Streaming<v1::Event>> {
    let mut rc = r.clone();
    let s = f.block_on(async move {
        rc.watch_events(v1::WatchEventsRequest {
            types: vec!["failover".into()],
            min_level: "debug".into(),
            ..Default::default()
        })
        .await
    })?;
    Ok(s.into_inner())
}

/// The `move-timeline` events of the next `n` moves, collected by a task on
/// the lab's runtime, subscribed before the moves.
fn collect_timelines(
    f: &Fabric,
    r: &crate::demo::EvpnrClient,
    n: usize,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<Vec<v1::Event>>>> {
    let mut s = watch_failover_debug(f, r)?;
    Ok(f.handle().spawn(async move {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            match tokio::time::timeout(Duration::from_secs(30), s.message()).await {
                Ok(Ok(Some(e))) if e.message == "move-timeline" => got.push(e),
                Ok(Ok(Some(_))) => {}
                Ok(Err(e)) => bail!("WatchEvents: {e}"),
                Ok(Ok(None)) => bail!("WatchEvents ended"),
                Err(_) => bail!("no move-timeline event within 30 s"),
            }
        }
        Ok(got)
    }))
}

/// A timeline as printed lines: the header, then one step per line.
fn timeline_lines(t: &str) -> String {
    t.split("; ")
        .map(|s| format!("      {s}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// How many moves' timelines to print: `TIMELINES=<n>` (default 5; a
/// number above the moves prints every move's, for step statistics).
pub fn timelines_shown() -> usize {
    std::env::var("TIMELINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// The timelines of the `n` moves with the longest reply gap.
pub fn slowest(results: &[MoveResult], n: usize) -> String {
    let mut rs: Vec<&MoveResult> = results.iter().collect();
    rs.sort_by(|a, b| b.gap_ms().total_cmp(&a.gap_ms()));
    let mut s = format!(
        "the {} moves with the longest reply gap, their timelines (µs):\n",
        n.min(rs.len())
    );
    for r in rs.into_iter().take(n) {
        s.push_str(&format!(
            "  {} {}->{}: gap {:.1} ms, RPC {:.1} ms\n{}\n",
            r.wait,
            r.from + 1,
            r.to + 1,
            r.gap_ms(),
            (r.times.bound - r.times.t0) as f64 / 1000.0,
            r.timeline
                .as_deref()
                .map(timeline_lines)
                .unwrap_or_else(|| "      (no timeline)".into())
        ));
    }
    s
}

/// Writes back every dirty page (`sync`) before the first move, so the
/// state stores' fsyncs measure the store and not the writeback of what
/// the build or the fabric's start left in the page cache (a first save
/// once took 126 ms that way). Says how long the writeback took.
pub fn flush_disk() -> String {
    let t = std::time::Instant::now();
    match std::process::Command::new("sync").status() {
        Ok(s) if s.success() => format!(
            "dirty pages written back before the first move (sync: {:.0} ms)",
            t.elapsed().as_secs_f64() * 1000.0
        ),
        Ok(s) => format!("sync before the first move failed: {s}"),
        Err(e) => format!("sync before the first move could not run: {e}"),
    }
}

/// `/proc/loadavg`'s first three fields (1, 5, 15 minutes).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// The file system type `path` lives on (the longest mount point of
/// `/proc/mounts` that contains it), e.g. `ext4` or `tmpfs`.
pub fn fs_type(path: &std::path::Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, at, ty) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(at).then(|| (at.len(), ty.to_string()))
        })
        .max()
        .map_or_else(|| "unknown".into(), |(_, t)| t)
}

/// Where the state directories (every evpnd's and evpnr's) are, and on
/// what file system: the measurement includes their fsyncs only on a disk.
pub fn where_state_lives(f: &Fabric) -> String {
    let dirs = f.state_dirs();
    let mut s = String::from("state directories:");
    for d in &dirs {
        s.push_str(&format!(" {} ({});", d.display(), fs_type(d)));
    }
    if dirs.iter().any(|d| fs_type(d) == "tmpfs") {
        s.push_str(" WARNING: tmpfs, the state stores' fsyncs are not measured");
    }
    s
}

/// Nearest-rank percentile of `v` (sorted copy), `p` in 0..=100.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

/// Run `moves` moves per wait variant (alternating r1 → r2 → r1 …).
pub fn bench(
    f: &Fabric,
    gw: &Gateway,
    moves: usize,
    waits: &[Wait],
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<MoveResult>> {
    let cl = Clients::connect(f)?;
    scenario::setup(f, &cl, gw)?;
    let epoch = Instant::now();
    let prober = Prober::start(
        &f.host.name,
        gw.v4.0,
        gw.v6.0,
        Duration::from_millis(1),
        epoch,
    )?;
    let watch = FdbWatch::start(&f.leaf().ns.name, &gw.vmac, epoch)?;
    let (cl2, gw2) = (cl.clone(), gw.clone());
    f.block_on(async move { scenario::bind(&cl2, 0, &gw2).await })?;
    if !prober.wait_answered(Duration::from_secs(10)) {
        bail!("pings not answered after the first bind");
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut out = Vec::new();
    let mut primary = 0;
    for wait in waits {
        for m in 0..moves {
            let to = 1 - primary;
            let (cl2, gw2, w) = (cl.clone(), gw.clone(), *wait);
            let (times, timeline) =
                f.block_on(
                    async move { scenario::move_gw(&cl2, primary, to, &gw2, w, epoch).await },
                )?;
            // Let the replies (and the FDB events) come in.
            std::thread::sleep(Duration::from_millis(300));
            if !prober.wait_answered(Duration::from_secs(5)) {
                bail!("pings not answered after move {} ({wait})", m + 1);
            }
            let (v4, v6) = prober.window(times.t0, times.bound + 50_000);
            let fdb_switch_ms = watch
                .switched_at(times.t0, f.routers[to].addr)
                .map(|t| (t - times.t0) as f64 / 1000.0);
            let r = MoveResult {
                wait: *wait,
                from: primary,
                to,
                times,
                v4,
                v6,
                fdb_switch_ms,
                timeline: Some(timeline),
            };
            say(&format!(
                "{wait:>12} move {:>2} {}->{}: lost v4/v6 {}/{}, gap {:.1}/{:.1} ms, leaf FDB switch {}, release {:.1} ms, wait {:.1} ms, bind {:.1} ms",
                m + 1,
                f.routers[primary].id,
                f.routers[to].id,
                v4.lost,
                v6.lost,
                v4.gap_ms,
                v6.gap_ms,
                fdb_switch_ms.map_or("-".into(), |v| format!("{v:.1} ms")),
                (times.released - times.t0) as f64 / 1000.0,
                (times.waited - times.released) as f64 / 1000.0,
                (times.bound - times.waited) as f64 / 1000.0,
            ));
            out.push(r);
            primary = to;
        }
    }
    Ok(out)
}

/// The same moves through evpnr: the group set up with CreateGroup,
/// AddGroupMember, CreateGroupBVI and BindGroupBVI, then `moves` ×
/// MoveGroupBVI between r1 and r2 (evpnr's release, evidence poll and bind).
pub fn bench_registry(
    f: &Fabric,
    gw: &Gateway,
    moves: usize,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<MoveResult>> {
    let (r, _cl, members) = demo::setup_registry(f, gw, say)?;
    let epoch = Instant::now();
    let prober = Prober::start(
        &f.host.name,
        gw.v4.0,
        gw.v6.0,
        Duration::from_millis(1),
        epoch,
    )?;
    let watch = FdbWatch::start(&f.leaf().ns.name, &gw.vmac, epoch)?;
    let mut rc = r.clone();
    let req = v1::BindGroupBviRequest {
        group_id: gw.group.clone(),
        instance_id: members[0].clone(),
    };
    f.block_on(async move { rc.bind_group_bvi(req).await })?;
    if !prober.wait_answered(Duration::from_secs(10)) {
        bail!("pings not answered after BindGroupBVI");
    }
    std::thread::sleep(Duration::from_millis(500));
    let timelines = collect_timelines(f, &r, moves)?;
    let mut out = Vec::new();
    let mut primary = 0;
    for m in 0..moves {
        let to = 1 - primary;
        let mut rc = r.clone();
        let req = v1::MoveGroupBviRequest {
            group_id: gw.group.clone(),
            instance_id: members[to].clone(),
            force: false,
        };
        let t0 = prober.now_us();
        f.block_on(async move { rc.move_group_bvi(req).await })?;
        let t1 = prober.now_us();
        std::thread::sleep(Duration::from_millis(300));
        if !prober.wait_answered(Duration::from_secs(5)) {
            bail!("pings not answered after MoveGroupBVI {}", m + 1);
        }
        let (v4, v6) = prober.window(t0, t1 + 50_000);
        let fdb_switch_ms = watch
            .switched_at(t0, f.routers[to].addr)
            .map(|t| (t - t0) as f64 / 1000.0);
        say(&format!(
            "MoveGroupBVI {:>2} {}->{}: lost v4/v6 {}/{}, gap {:.1}/{:.1} ms, leaf FDB switch {}, RPC {:.1} ms",
            m + 1,
            members[primary],
            members[to],
            v4.lost,
            v6.lost,
            v4.gap_ms,
            v6.gap_ms,
            fdb_switch_ms.map_or("-".into(), |v| format!("{v:.1} ms")),
            (t1 - t0) as f64 / 1000.0
        ));
        out.push(MoveResult {
            wait: Wait::Registry,
            from: primary,
            to,
            times: MoveTimes {
                t0,
                released: t0,
                waited: t0,
                bound: t1,
            },
            v4,
            v6,
            fdb_switch_ms,
            timeline: None,
        });
        primary = to;
    }
    let got = f.block_on(timelines)??;
    for (r, e) in out.iter_mut().zip(got) {
        r.timeline = Some(format!(
            "{} µs in evpnr ({}); {}",
            e.fields["total-us"], e.fields["result"], e.fields["steps"]
        ));
    }
    Ok(out)
}

/// A table of p50 / p99 / max per wait variant (v4 and v6 pooled: two
/// samples per move for loss and gap).
pub fn summary(results: &[MoveResult]) -> String {
    let mut s = String::from(
        "| wait | moves | lost p50/p99/max | gap ms p50/p90/p99/max | leaf FDB switch ms p50/p99/max | release / wait / bind ms p50 |\n|---|---|---|---|---|---|\n",
    );
    let mut waits: Vec<Wait> = Vec::new();
    for r in results {
        if !waits.contains(&r.wait) {
            waits.push(r.wait);
        }
    }
    for w in waits {
        let rs: Vec<&MoveResult> = results.iter().filter(|r| r.wait == w).collect();
        let lost: Vec<f64> = rs
            .iter()
            .flat_map(|r| [r.v4.lost as f64, r.v6.lost as f64])
            .collect();
        let gap: Vec<f64> = rs.iter().flat_map(|r| [r.v4.gap_ms, r.v6.gap_ms]).collect();
        let fdb: Vec<f64> = rs.iter().filter_map(|r| r.fdb_switch_ms).collect();
        let ms = |f: fn(&MoveTimes) -> u64| -> f64 {
            percentile(
                &rs.iter()
                    .map(|r| f(&r.times) as f64 / 1000.0)
                    .collect::<Vec<_>>(),
                50.0,
            )
        };
        let three = |v: &[f64], prec: usize| {
            format!(
                "{:.p$} / {:.p$} / {:.p$}",
                percentile(v, 50.0),
                percentile(v, 99.0),
                percentile(v, 100.0),
                p = prec
            )
        };
        let gap4 = format!(
            "{:.1} / {:.1} / {:.1} / {:.1}",
            percentile(&gap, 50.0),
            percentile(&gap, 90.0),
            percentile(&gap, 99.0),
            percentile(&gap, 100.0)
        );
        s.push_str(&format!(
            "| {w} | {} | {} | {} | {} ({} of {} seen) | {:.1} / {:.1} / {:.1} |\n",
            rs.len(),
            three(&lost, 0),
            gap4,
            three(&fdb, 1),
            fdb.len(),
            rs.len(),
            ms(|t| t.released - t.t0),
            ms(|t| t.waited - t.released),
            ms(|t| t.bound - t.waited),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
