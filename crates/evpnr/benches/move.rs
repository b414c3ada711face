//! Move latency: MoveGroupBVI round trips (release on the old primary, then
//! the new primary's evidence wait and bind) between two real evpnd
//! processes on vppsim + BIRD 2.20, with every VPP call taking 0 ms and 1 ms.
//!
//! Two ways to send the moves:
//! * `idle`: each move starts once the previous one is completely done,
//!   including the new primary's first GARP/NA round (2 `arping` VPP calls
//!   sent right after the bind answers). This is the latency of one move.
//! * `back-to-back`: the next move is sent as soon as the previous one
//!   answered; its release then queues in VPP behind that GARP/NA round.
//!
//! The client runs on its own thread and runtime, so the simulators sharing
//! the bench process do not delay its measurements.
//!
//! Each move's timeline (the `move-timeline` event, issue 16) is collected
//! from evpnr's `WatchEvents` at level debug by a subscriber on a thread and
//! runtime of its own; the five slowest moves' timelines are printed, and the
//! VPP calls per move (every call, reads included) are counted from them.
//!
//! Per mode the bench also prints, p50 / p99 per move: the total at the
//! client, the VPP service sum (the service times of the VPP calls served
//! inside the move's window on both simulators, as vppsim measured them:
//! from when VPP started on a message to its answer, queueing excluded;
//! calls of the two members that overlap both count) and the rest (total −
//! VPP sum); and, with latency, the issue's target check "p99 − VPP sum ≤ 1
//! ms" (the VPP sum of a typical move: its p50).
//!
//! Run: `cargo bench -p evpnr --bench move` (set MOVES to change the count;
//! `PING_MS=1` also delays each dump's closing `control_ping`, vppsim's
//! charging before session 9, for comparison).
//!
//! TLS: `TLS=on` runs the same with mutual TLS everywhere (evpnr, the
//! evpnds, the client; certificates of a development CA). `TLS=both`
//! compares: two fleets built the same way, one plaintext and one with
//! mutual TLS, VPP calls at 0 ms; per mode, alternating blocks of `BLOCK`
//! moves (default 10) on one and the other until each has had `MOVES`; then
//! both tables side by side and the difference of their p99.
#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use common::*;
use evpn_api::v1::{self, evpnr_client::EvpnrClient};
use evpn_tls::{ClientTls, Expect, Identity, TlsFiles, pki::DevCa};
use tonic::transport::Channel;

/// A client of evpnr at `addr`, over mutual TLS with `tls`, connected (a
/// first call made, so no move pays for the handshake).
async fn evpnr_client(addr: &str, tls: &Option<Arc<ClientTls>>) -> EvpnrClient<Channel> {
    let mut c = match tls {
        None => EvpnrClient::connect(format!("http://{addr}"))
            .await
            .unwrap(),
        Some(t) => EvpnrClient::new(t.channel(addr, Expect::AnyRegistry, |e| e).unwrap()),
    };
    c.list_groups(v1::Empty {}).await.unwrap();
    c
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Idle,
    BackToBack,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Idle => "idle",
            Mode::BackToBack => "back-to-back",
        }
    }
}

struct Row {
    latency_ms: u64,
    mode: Mode,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    calls: f64,
    /// VPP calls of any kind per move (from the timelines).
    all_calls: f64,
    /// The five slowest moves: (ms, total-us, steps).
    slowest: Vec<(f64, String, String)>,
    /// Per move, in ms: the total at the client, the summed service time of
    /// the VPP calls served inside the move's window (both simulators, as
    /// vppsim measured them), and the rest (total − VPP sum).
    split: Split,
}

/// Percentiles of a move's total, VPP sum and rest (ms).
#[derive(Default)]
struct Split {
    total: [f64; 2],
    vpp: [f64; 2],
    rest: [f64; 2],
    /// VPP messages served inside a move's window, mean.
    served: f64,
    /// Mean service time of one of them (ms).
    per_msg: f64,
}

impl Split {
    /// From per-move `(total ms, VPP calls, VPP ms)`: p50 and p99 of each.
    fn of(moves: &[(f64, usize, f64)]) -> Split {
        let p = |f: &dyn Fn(&(f64, usize, f64)) -> f64| {
            let mut v: Vec<f64> = moves.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            [pct(&v, 0.5), pct(&v, 0.99)]
        };
        Split {
            total: p(&|m| m.0),
            vpp: p(&|m| m.2),
            rest: p(&|m| m.0 - m.2),
            served: moves.iter().map(|m| m.1 as f64).sum::<f64>() / moves.len() as f64,
            per_msg: moves.iter().map(|m| m.2).sum::<f64>()
                / moves.iter().map(|m| m.1).sum::<usize>().max(1) as f64,
        }
    }

    /// The issue's target: p99 of the move ≤ the VPP calls it makes + 1 ms
    /// (the VPP sum of a typical move: its median).
    fn target_met(&self) -> bool {
        self.total[1] - self.vpp[0] <= 1.0
    }
}

/// The `move-timeline` events of the next `n` moves: a subscriber on its own
/// thread and runtime (it does not share the client's), started before the
/// moves and joined after them.
fn collect_timelines(
    addr: String,
    tls: Option<Arc<ClientTls>>,
    n: usize,
) -> std::thread::JoinHandle<Vec<v1::Event>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use futures::StreamExt;
            let mut c = evpnr_client(&addr, &tls).await;
            let mut s = c
                .watch_events(v1::WatchEventsRequest {
                    types: vec!["failover".into()],
                    min_level: "debug".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            ready_tx.send(()).unwrap();
            let mut got = Vec::with_capacity(n);
            while got.len() < n {
                let e = tokio::time::timeout(Duration::from_secs(30), s.next())
                    .await
                    .expect("move-timeline events")
                    .expect("stream open")
                    .unwrap();
                if e.message == "move-timeline" {
                    got.push(e);
                }
            }
            got
        })
    });
    ready_rx.recv().unwrap();
    h
}

/// One measured move: its latency at the client (ms), when it was sent and
/// when its answer came, and its timeline.
struct Measured {
    ms: f64,
    sent: Instant,
    answered: Instant,
    timeline: v1::Event,
}

/// `moves` moves alternating between r1 and r2, sent from a client on its own
/// thread.
fn measure(f: &Fleet, moves: usize, mode: Mode) -> Vec<Measured> {
    let addr = format!("127.0.0.1:{}", f.port);
    let timelines = collect_timelines(addr.clone(), f.tls.clone(), moves);
    let hosts = &f.hosts;
    let arpings = |i: usize| {
        hosts[i]
            .sim
            .journal()
            .iter()
            .filter(|e| e.msg == "arping")
            .count()
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut c = evpnr_client(&addr, &f.tls).await;
                let mut ms = Vec::with_capacity(moves);
                for i in 0..moves {
                    let (to, ti) = if i % 2 == 0 { ("r2", 1) } else { ("r1", 0) };
                    let before = arpings(ti);
                    let t = Instant::now();
                    c.move_group_bvi(v1::MoveGroupBviRequest {
                        group_id: "bench".into(),
                        instance_id: to.into(),
                        force: false,
                    })
                    .await
                    .unwrap();
                    let answered = Instant::now();
                    ms.push((answered.duration_since(t).as_secs_f64() * 1e3, t, answered));
                    if mode == Mode::Idle {
                        // The new primary's first GARP/NA round: one arping
                        // per gateway address (2).
                        let t = Instant::now();
                        while arpings(ti) < before + 2 {
                            assert!(t.elapsed() < Duration::from_secs(5), "no GARP/NA round");
                            tokio::time::sleep(Duration::from_micros(200)).await;
                        }
                    }
                }
                ms
            })
        })
        .join()
        .unwrap()
    })
    .into_iter()
    .zip(timelines.join().unwrap())
    .map(|((ms, sent, answered), timeline)| Measured {
        ms,
        sent,
        answered,
        timeline,
    })
    .collect()
}

/// Every VPP call in a timeline (one `vpp <message>` step per call).
fn vpp_calls(t: &v1::Event) -> usize {
    t.fields["steps"]
        .split("; ")
        .filter(|s| s.split(' ').nth(2) == Some("vpp"))
        .count()
}

fn tls_yaml(f: &TlsFiles) -> String {
    format!(
        "  tls:\n    cert: {}\n    key: {}\n    ca: {}\n",
        f.cert.display(),
        f.key.display(),
        f.ca.display()
    )
}

/// Fleet r1 + r2 with evpnr as shipped (log level info; the tests run it
/// at debug), with mutual TLS when `ca` is given (the bench's client is an
/// admin; evpnr's `/metrics` stays plaintext on loopback for the
/// per-method means), group `bench` with a GroupBVI bound on r1; and its
/// vMAC.
async fn setup(ca: Option<&DevCa>) -> (Fleet, String) {
    let mut f = Fleet::with_log_level("bench move", &["r1", "r2"], "info").await;
    if let Some(ca) = ca {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        let issue = |id: Identity| ca.issue(&id, DAY, true).unwrap();
        f.kill_evpnr();
        f.evpnr_extra = format!(
            "{}    metrics: false\n    roles:\n      \"evpn://user/bench\": admin\n",
            tls_yaml(&issue(Identity::Registry("evpnr".into())))
        );
        f.tls = Some(ClientTls::load(issue(Identity::User("bench".into()))).unwrap());
        f.start_evpnr();
        for id in ["r1", "r2"] {
            f.host_mut(id).evpnd_extra = tls_yaml(&issue(Identity::Instance(id.into())));
        }
    }
    f.start_all().await;
    let mut c = f.client().await;
    let g = c
        .create_group(v1::CreateGroupRequest {
            group_id: "bench".into(),
            vni: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for id in ["r1", "r2"] {
        c.add_group_member(v1::GroupMemberRequest {
            group_id: "bench".into(),
            instance_id: id.into(),
        })
        .await
        .unwrap();
    }
    c.create_group_bvi(v1::GroupBviRequest {
        group_id: "bench".into(),
        addresses: vec![prefix("172.16.0.32", 24), prefix("fec0::32", 64)],
    })
    .await
    .unwrap();
    c.bind_group_bvi(v1::BindGroupBviRequest {
        group_id: "bench".into(),
        instance_id: "r1".into(),
    })
    .await
    .unwrap();
    (f, g.vmac)
}

async fn run(latency_ms: u64, moves: usize, ca: Option<&DevCa>) -> Vec<Row> {
    let (f, vmac) = setup(ca).await;
    for h in &f.hosts {
        if latency_ms > 0 {
            h.sim
                .faults()
                .latency("*", Duration::from_millis(latency_ms));
            // The model before session 9 (every dump's closing ping charged
            // like a call of its own): `PING_MS=1`.
            if let Some(ping) = std::env::var("PING_MS")
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|ms| *ms > 0)
            {
                h.sim
                    .faults()
                    .latency("control_ping", Duration::from_millis(ping));
            }
        }
    }
    let mut rows = Vec::new();
    // An even number of moves: r1 is primary again after each mode.
    let moves = moves + moves % 2;
    for mode in [Mode::Idle, Mode::BackToBack] {
        for h in &f.hosts {
            h.sim.clear_journal();
            h.sim.clear_served();
        }
        let mut got = tokio::task::block_in_place(|| measure(&f, moves, mode));
        let calls: usize = f.hosts.iter().map(|h| h.changes().len()).sum();
        let all_calls: usize = got.iter().map(|m| vpp_calls(&m.timeline)).sum();
        let served: Vec<vppsim::Served> = f.hosts.iter().flat_map(|h| h.sim.served()).collect();
        let split = Split::of(
            &got.iter()
                .map(|m| {
                    let (n, d) = vppsim::served_within(&served, m.sent, m.answered);
                    (m.ms, n, d.as_secs_f64() * 1e3)
                })
                .collect::<Vec<_>>(),
        );
        got.sort_by(|a, b| b.ms.total_cmp(&a.ms));
        let slowest = got
            .iter()
            .take(5)
            .map(|m| {
                let t = &m.timeline;
                (
                    m.ms,
                    t.fields["total-us"].clone(),
                    t.fields["steps"].clone(),
                )
            })
            .collect();
        let mut ms: Vec<f64> = got.iter().map(|m| m.ms).collect();
        ms.sort_by(f64::total_cmp);
        rows.push(Row {
            latency_ms,
            mode,
            p50: pct(&ms, 0.5),
            p90: pct(&ms, 0.9),
            p99: pct(&ms, 0.99),
            max: ms[ms.len() - 1],
            calls: calls as f64 / moves as f64,
            all_calls: all_calls as f64 / moves as f64,
            slowest,
            split,
        });
    }
    // Where the time goes: mean member RPC latency per method, as evpnr saw
    // it (both modes together).
    let m = f.metrics();
    for method in ["ReleaseGroupBVI", "BindGroupBVI"] {
        let l = format!("method=\"{method}\"");
        let sum = evpn_testkit::metric_value(&m, "evpnr_member_rpc_duration_seconds_sum", &[&l]);
        let n = evpn_testkit::metric_value(&m, "evpnr_member_rpc_duration_seconds_count", &[&l]);
        if let (Some(s), Some(n)) = (sum, n) {
            println!(
                "  {latency_ms} ms: {method} mean {:.2} ms ({n} calls, evidence wait included in the bind)",
                s / n * 1e3
            );
        }
    }
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
    rows
}

/// `TLS=both`: plaintext and mutual TLS, interleaved in blocks.
async fn compare(moves: usize, block: usize) {
    let pki = tempfile::tempdir().unwrap();
    let ca = DevCa::create(pki.path(), "bench CA").unwrap();
    let (plain, plain_vmac) = setup(None).await;
    let (tls, tls_vmac) = setup(Some(&ca)).await;
    // Even blocks: r1 is primary again after each.
    let block = (block + block % 2).max(2);
    println!(
        "move latency, plaintext vs mutual TLS: two fleets built the same way, VPP calls at 0 ms, \
         alternating blocks of {block} moves, {moves} moves each per mode"
    );
    println!("| mode | transport | moves | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    let mut p99 = Vec::new();
    let mut slow = Vec::new();
    for mode in [Mode::Idle, Mode::BackToBack] {
        let mut ms: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        // Every move with its block number and timeline, per transport.
        let mut all: [Vec<(f64, usize, v1::Event)>; 2] = [Vec::new(), Vec::new()];
        let mut blk = 0;
        while ms[1].len() < moves {
            for (i, f) in [&plain, &tls].into_iter().enumerate() {
                let got = tokio::task::block_in_place(|| measure(f, block, mode));
                ms[i].extend(got.iter().map(|m| m.ms));
                all[i].extend(got.into_iter().map(|m| (m.ms, blk, m.timeline)));
            }
            blk += 1;
        }
        for (name, v) in ["plaintext", "TLS"].into_iter().zip(ms.iter_mut()) {
            v.sort_by(f64::total_cmp);
            println!(
                "| {} | {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
                mode.name(),
                v.len(),
                pct(v, 0.5),
                pct(v, 0.9),
                pct(v, 0.99),
                v[v.len() - 1]
            );
        }
        p99.push((mode, pct(&ms[1], 0.99) - pct(&ms[0], 0.99)));
        for (name, mut v) in ["plaintext", "TLS"].into_iter().zip(all) {
            v.sort_by(|a, b| b.0.total_cmp(&a.0));
            v.truncate(5);
            slow.push((mode, name, v));
        }
    }
    for (mode, d) in &p99 {
        println!(
            "p99 TLS - plaintext, {}: {d:+.2} ms (target: within 1 ms)",
            mode.name()
        );
    }
    // Where the slowest moves spent their time (one slow block, or spread).
    for (mode, name, v) in slow {
        println!(
            "{}, {name}: the five slowest moves (ms at the client, block, µs in evpnr):",
            mode.name()
        );
        for (ms, b, t) in v {
            println!(
                "    {ms:.2} ms, block {b}, {} µs in evpnr:",
                t.fields["total-us"]
            );
            for s in t.fields["steps"].split("; ") {
                println!("      {s}");
            }
        }
    }
    plain.check_vmac_exclusive(&plain_vmac, &[]).unwrap();
    tls.check_vmac_exclusive(&tls_vmac, &[]).unwrap();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let moves: usize = std::env::var("MOVES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let tls = std::env::var("TLS").unwrap_or_default();
    let pki = tempfile::tempdir().unwrap();
    let ca = match tls.as_str() {
        "" | "off" => None,
        "on" => Some(DevCa::create(pki.path(), "bench CA").unwrap()),
        "both" => {
            let block = std::env::var("BLOCK")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(10);
            return compare(moves, block).await;
        }
        other => panic!("TLS={other:?}: off, on or both"),
    };
    let mut all = Vec::new();
    for lat in [0, 1] {
        let rows = run(lat, moves, ca.as_ref()).await;
        for r in &rows {
            let vpp = r.calls * r.latency_ms as f64;
            println!(
                "move latency, VPP calls at {} ms, {}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
                 ({} moves, {:.0} state-changing VPP calls per move = {:.0} ms of VPP; \
                 p99 above that: {:.2} ms)",
                r.latency_ms,
                r.mode.name(),
                r.p50,
                r.p90,
                r.p99,
                r.max,
                moves + moves % 2,
                r.calls,
                vpp,
                r.p99 - vpp
            );
            println!(
                "  VPP calls per move, reads included (from the timelines): {:.1} = {:.0} ms of VPP; \
                 p99 above that: {:.2} ms",
                r.all_calls,
                r.all_calls * r.latency_ms as f64,
                r.p99 - r.all_calls * r.latency_ms as f64
            );
            let s = &r.split;
            println!(
                "  per move, p50 / p99 ms: total {:.2} / {:.2}, VPP service sum {:.2} / {:.2} \
                 ({:.1} messages served in the move's window, both simulators, {:.3} ms each), \
                 rest {:.2} / {:.2}",
                s.total[0],
                s.total[1],
                s.vpp[0],
                s.vpp[1],
                s.served,
                s.per_msg,
                s.rest[0],
                s.rest[1]
            );
            if r.latency_ms > 0 {
                println!(
                    "  target, {}: p99 − VPP sum ≤ 1 ms: {} ({:.2} − {:.2} = {:.2} ms)",
                    r.mode.name(),
                    if s.target_met() { "yes" } else { "no" },
                    s.total[1],
                    s.vpp[0],
                    s.total[1] - s.vpp[0]
                );
            }
            println!("  the five slowest moves' timelines (µs after evpnr received the request):");
            for (ms, total, steps) in &r.slowest {
                println!("    {ms:.2} ms at the client, {total} µs in evpnr:");
                for s in steps.split("; ") {
                    println!("      {s}");
                }
            }
        }
        all.extend(rows);
    }
    for mode in [Mode::Idle, Mode::BackToBack] {
        let r: Vec<&Row> = all.iter().filter(|r| r.mode == mode).collect();
        if let [a, b] = r[..] {
            println!(
                "ratio 1 ms / 0 ms, {}: p50 {:.2}x, p99 {:.2}x",
                mode.name(),
                b.p50 / a.p50,
                b.p99 / a.p99
            );
        }
    }
}
