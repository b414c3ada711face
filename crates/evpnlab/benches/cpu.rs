//! CPU cost of liveness and health at fleet scale (issue 17): N real evpnd
//! processes (default 200), each on its own in-process vppsim and birdsim,
//! and the real evpnr, with failover on at the real fabric's timers
//! (`FailoverTimers::FABRIC`: heartbeats every 20 ms, every health check
//! every 25 ms). G groups (default 50) of M members (default 4), each with
//! a GroupBVI bound on its first member and failover `auto` (so the
//! candidates' fabric witnesses run too). After a warm-up, prints the CPU
//! seconds per second (user + system, from `/proc/<pid>/stat`) that evpnr
//! and the evpnds used over a steady-state window in which nothing
//! changes. The simulators run inside this benchmark's own process and are
//! not counted.
//!
//! Run: `cargo bench -p evpnlab --bench cpu`
//! (`INSTANCES`, `NGROUPS`, `MEMBERS`, `WARMUP_S`, `WINDOW_S`, `BATCH`:
//! evpnds started at a time, default 20; `TIMERS`: `fabric`, the default,
//! or `product`, the shipped defaults: heartbeats and checks every 1 s).
//! The set-up prints its progress.
//! SIGINT, SIGTERM or SIGHUP stops it, and every process it started.
use std::time::{Duration, Instant};

use evpn_api::v1;
use evpnlab::chaos::fleet::{FailoverTimers, Fleet, FleetOptions, default_bin_dir};
use futures::StreamExt;

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// Call `f` until it is neither UNAVAILABLE nor FAILED_PRECONDITION (a
/// member briefly suspect, or its health briefly down, at these short
/// timers while the fleet is being built), at most 50 times;
/// ALREADY_EXISTS (an earlier try went through) is success.
async fn retry<T, F, Fut>(mut f: F) -> Result<(), tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut tries = 0;
    loop {
        match f().await {
            Ok(_) => return Ok(()),
            Err(s) if s.code() == tonic::Code::AlreadyExists => return Ok(()),
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::Unavailable | tonic::Code::FailedPrecondition
                ) && tries < 50 =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(s) => return Err(s),
        }
    }
}

/// (registered, connected, ready) as evpnr sees the fleet now.
async fn counts(f: &Fleet) -> (usize, usize, usize) {
    let Ok(mut c) = f.client(Duration::from_secs(5)) else {
        return (0, 0, 0);
    };
    let Ok(l) = c.list_instances(v1::Empty {}).await else {
        return (0, 0, 0);
    };
    let l = l.into_inner().instances;
    let conn = |i: &&v1::Instance| i.state == v1::instance::State::Connected as i32;
    (
        l.len(),
        l.iter().filter(conn).count(),
        l.iter().filter(conn).filter(|i| i.ready).count(),
    )
}

/// Start the evpnds `batch` at a time, each batch once the ones before are
/// connected and ready, printing progress (at least every 10 s while
/// waiting). Starting hundreds at once at the fabric's timers (heartbeats
/// every 20 ms, checks every 25 ms) buries two cores in start-ups.
async fn start_in_batches(f: &mut Fleet, batch: usize, timeout: Duration) -> anyhow::Result<()> {
    let n = f.hosts.len();
    let t = Instant::now();
    let mut started = 0;
    while started < n {
        let upto = (started + batch.max(1)).min(n);
        for i in started..upto {
            f.start_evpnd(i)?;
        }
        started = upto;
        let ids: Vec<String> = f.hosts[..started].iter().map(|h| h.id.clone()).collect();
        let mut said = Instant::now();
        loop {
            for (id, why) in f.respawn_exited()? {
                println!("cpu bench: {id} exited ({why}); restarted");
            }
            if f.wait_connected(&ids, Duration::from_millis(500)).await {
                break;
            }
            anyhow::ensure!(
                t.elapsed() < timeout,
                "fleet did not come up within {timeout:?}: {:?} (registered, connected, ready) of {started} started",
                counts(f).await
            );
            if said.elapsed() >= Duration::from_secs(10) {
                let (r, c, ready) = counts(f).await;
                println!(
                    "cpu bench: {:.0} s: {started} of {n} evpnds started, {r} registered, {c} connected, {ready} ready; waiting",
                    t.elapsed().as_secs_f64()
                );
                said = Instant::now();
            }
        }
        println!(
            "cpu bench: {:.1} s: {started} of {n} evpnds connected and ready",
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// CPU time of evpnr and of every evpnd (by host index) now.
fn cpu(f: &Fleet, n: usize) -> (Option<Duration>, Vec<Option<Duration>>) {
    let r = Fleet::cpu_time(f.evpnr_pid());
    let d = (0..n).map(|i| Fleet::cpu_time(f.evpnd_pid(i))).collect();
    (r, d)
}

/// The first SIGINT, SIGTERM or SIGHUP: its name.
async fn stop_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut int, mut term, mut hup) = (
        signal(SignalKind::interrupt())?,
        signal(SignalKind::terminate())?,
        signal(SignalKind::hangup())?,
    );
    Ok(tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    })
}

/// Runs the bench until it ends or a signal stops it. Either way the fleet
/// is dropped before the process exits, and with it every evpnd and evpnr
/// it started (they are killed on drop): a bench stopped by a signal used
/// to leave its hundreds of evpnds running.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut fleet = None;
    let r = tokio::select! {
        r = bench(&mut fleet) => r,
        s = stop_signal() => Err(anyhow::anyhow!(
            "cpu bench: stopped by {}; its evpnds and evpnr are stopped too",
            s?
        )),
    };
    drop(fleet);
    r
}

async fn bench(fleet: &mut Option<Fleet>) -> anyhow::Result<()> {
    let n: usize = env("INSTANCES", 200);
    let groups: usize = env("NGROUPS", 50).min(n);
    let members: usize = env("MEMBERS", 4).clamp(1, n);
    let batch: usize = env("BATCH", 20);
    let warm_up = Duration::from_secs(env("WARMUP_S", 5));
    let window = Duration::from_secs(env("WINDOW_S", 10));
    let t = Instant::now();
    let timers = match std::env::var("TIMERS").as_deref() {
        Err(_) | Ok("fabric") => FailoverTimers::FABRIC,
        Ok("product") => FailoverTimers::PRODUCT,
        Ok(other) => anyhow::bail!(
            "TIMERS: want fabric or product, not {:?}",
            other.chars().take(16).collect::<String>()
        ),
    };
    println!("cpu bench: creating {n} simulated hosts (vppsim, birdsim, proxies) and evpnr");
    let f = fleet.insert(
        Fleet::new(&FleetOptions {
            instances: n,
            bin_dir: default_bin_dir()?,
            member_timeout: Duration::from_secs(10),
            vpp_timeout: Duration::from_secs(5),
            failover: true,
            timers,
            // No operator check command: it forks a process per probe (every
            // 25 ms per evpnd), which buried the machine at 200 evpnds (the
            // set-up never finished); it is the chaos run's fault hook, not
            // part of what this bench measures.
            unfit_check: false,
            ..Default::default()
        })
        .await?,
    );
    println!(
        "cpu bench: simulators and evpnr up in {:.1} s; starting {n} evpnds, {batch} at a time",
        t.elapsed().as_secs_f64()
    );
    start_in_batches(f, batch, Duration::from_secs(600)).await?;
    let ids: Vec<String> = f.hosts.iter().map(|h| h.id.clone()).collect();
    println!(
        "cpu bench: {n} evpnd + evpnr up in {:.1} s; heartbeat {:?}, suspect after {:?}, health interval {:?} (timeout {:?}, rise {}, fall {})",
        t.elapsed().as_secs_f64(),
        timers.heartbeat,
        timers.suspect_after,
        timers.health_interval,
        timers.health_timeout,
        timers.rise,
        timers.fall
    );
    let c = f.client(Duration::from_secs(60))?;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let done = &done;
    let built: Vec<anyhow::Result<()>> = futures::stream::iter(0..groups)
        .map(|j| {
            let c = c.clone();
            let ids = ids.clone();
            async move {
                let g = format!("g{j}");
                retry(|| {
                    let mut c = c.clone();
                    let req = v1::CreateGroupRequest {
                        group_id: g.clone(),
                        vni: 1000 + j as u32,
                        ..Default::default()
                    };
                    async move { c.create_group(req).await }
                })
                .await?;
                for k in 0..members {
                    retry(|| {
                        let mut c = c.clone();
                        let req = v1::GroupMemberRequest {
                            group_id: g.clone(),
                            instance_id: ids[(j * members + k) % n].clone(),
                        };
                        async move { c.add_group_member(req).await }
                    })
                    .await?;
                }
                retry(|| {
                    let mut c = c.clone();
                    let req = v1::GroupBviRequest {
                        group_id: g.clone(),
                        addresses: vec![v1::Prefix {
                            address: format!("172.16.{}.{}", j / 250, 1 + j % 250),
                            prefix_len: 16,
                        }],
                    };
                    async move { c.create_group_bvi(req).await }
                })
                .await?;
                retry(|| {
                    let mut c = c.clone();
                    let req = v1::BindGroupBviRequest {
                        group_id: g.clone(),
                        instance_id: ids[(j * members) % n].clone(),
                    };
                    async move { c.bind_group_bvi(req).await }
                })
                .await?;
                retry(|| {
                    let mut c = c.clone();
                    let req = v1::SetGroupFailoverRequest {
                        group_id: g.clone(),
                        mode: "auto".into(),
                        ..Default::default()
                    };
                    async move { c.set_group_failover(req).await }
                })
                .await?;
                let k = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                if k.is_multiple_of(10) || k == groups {
                    println!("cpu bench: {k} of {groups} groups built");
                }
                Ok(())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for b in built {
        b?;
    }
    println!("built {groups} auto groups x {members} members, each bound on its first member");
    tokio::time::sleep(warm_up).await;
    let (r0, d0) = cpu(f, n);
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let (r1, d1) = cpu(f, n);
    let secs = t0.elapsed().as_secs_f64();
    let rate =
        |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?).as_secs_f64() / secs);
    let evpnr = rate(r0, r1);
    let mut per: Vec<f64> = d0
        .iter()
        .zip(&d1)
        .filter_map(|(a, b)| rate(*a, *b))
        .collect();
    per.sort_by(f64::total_cmp);
    let total: f64 = per.iter().sum();
    let med = per.get(per.len() / 2).copied().unwrap_or(0.0);
    let max = per.last().copied().unwrap_or(0.0);
    println!(
        "steady state over {secs:.1} s: evpnr {:.3} CPU s/s; evpnds {total:.3} CPU s/s in all ({} measured), per evpnd median {med:.4}, max {max:.4}",
        evpnr.unwrap_or(f64::NAN),
        per.len()
    );
    let m = f.metrics().await.unwrap_or_default();
    let moves: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("evpnr_failover_started_total"))
        .collect();
    println!(
        "failovers started during the run (expected none): {}",
        if moves.is_empty() {
            "none".to_string()
        } else {
            moves.join("; ")
        }
    );
    Ok(())
}
