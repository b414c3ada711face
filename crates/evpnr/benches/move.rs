//! Move latency: MoveGroupBVI round trips (release on the old primary,
//! evidence poll, bind on the new one) between two real evpnd processes on
//! vppsim + BIRD 2.20, with every VPP call taking 0 ms and 1 ms.
//!
//! Run: `cargo bench -p evpnr --bench move` (set MOVES to change the count).
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use evpn_api::v1;

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn run(latency_ms: u64, moves: usize) -> Option<(f64, f64, f64, usize)> {
    let mut f = Fleet::new("bench move", &["r1", "r2"]).await?;
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
    for h in &f.hosts {
        h.sim.clear_journal();
        if latency_ms > 0 {
            h.sim
                .faults()
                .latency("*", Duration::from_millis(latency_ms));
        }
    }
    let mut ms = Vec::with_capacity(moves);
    for i in 0..moves {
        let to = if i % 2 == 0 { "r2" } else { "r1" };
        let t = Instant::now();
        c.move_group_bvi(v1::MoveGroupBviRequest {
            group_id: "bench".into(),
            instance_id: to.into(),
            force: false,
        })
        .await
        .unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let vpp_calls: usize = f.hosts.iter().map(|h| h.changes().len()).sum();
    // Where the time goes: mean member RPC latency per method, as evpnr saw it.
    let m = f.metrics();
    for method in ["ReleaseGroupBVI", "GetMacAnnouncers", "BindGroupBVI"] {
        let l = format!("method=\"{method}\"");
        let sum = evpn_testkit::metric_value(&m, "evpnr_member_rpc_duration_seconds_sum", &[&l]);
        let n = evpn_testkit::metric_value(&m, "evpnr_member_rpc_duration_seconds_count", &[&l]);
        if let (Some(s), Some(n)) = (sum, n) {
            println!(
                "  {latency_ms} ms: {method} mean {:.2} ms ({n} calls)",
                s / n * 1e3
            );
        }
    }
    f.check_vmac_exclusive(&g.vmac, &[]).unwrap();
    ms.sort_by(f64::total_cmp);
    Some((
        pct(&ms, 0.5),
        pct(&ms, 0.99),
        ms[ms.len() - 1],
        vpp_calls / moves,
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let moves: usize = std::env::var("MOVES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let mut rows = Vec::new();
    for lat in [0, 1] {
        let Some(r) = run(lat, moves).await else {
            return;
        };
        println!(
            "move latency, VPP calls at {lat} ms: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({moves} moves, {} state-changing VPP calls per move)",
            r.0, r.1, r.2, r.3
        );
        rows.push(r);
    }
    println!(
        "ratio 1 ms / 0 ms: p50 {:.2}x, p99 {:.2}x",
        rows[1].0 / rows[0].0,
        rows[1].1 / rows[0].1
    );
}
