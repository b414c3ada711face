//! evpnd benchmark: resident memory idle and with 100 eVPNs (each with a
//! BVI), and read latency (GetBVI / ListEvpnInstances) while a VPP call
//! hangs. Runs the real evpnd binary against vppsim and BIRD 2.20.
//!
//! cargo bench -p evpnd --bench evpnd
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use evpn_api::v1;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut h = common::Host::new("evpnd-bench", "bench").await;
    h.start_evpnd();
    let pid = h.evpnd().pid();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_kib(pid);
    let mut c = h.client().await;
    let t = Instant::now();
    for i in 0..100u32 {
        let slug = format!("e{i}");
        c.create_evpn_instance(v1::CreateEvpnInstanceRequest {
            slug: slug.clone(),
            vni: 1000 + i,
            ..Default::default()
        })
        .await
        .unwrap();
        c.create_bvi(v1::CreateBviRequest {
            slug,
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let create_s = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded = rss_kib(pid);
    println!(
        "evpnd resident memory: idle {:.1} MB, with 100 eVPNs+BVIs {:.1} MB",
        idle as f64 / 1024.0,
        loaded as f64 / 1024.0
    );
    println!(
        "creating 100 eVPNs + BVIs (real BIRD applies) took {create_s:.2} s ({:.1} ms each)",
        create_s * 10.0
    );

    // Reads while a write is stuck on a hung VPP call.
    h.sim.faults().hang("sw_interface_set_mac_address");
    let mut w = c.clone();
    let stuck = tokio::spawn(async move {
        w.bind_group_bvi(v1::HostBindGroupBviRequest {
            slug: "e0".into(),
            group_id: "e0".into(),
            vmac: "42:6c:fa:d6:82:98".into(),
            ..Default::default()
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut lat = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline && !stuck.is_finished() {
        let t = Instant::now();
        c.get_bvi(v1::EvpnRef {
            slug: "e7".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let l = c
            .list_evpn_instances(v1::InstanceRef::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(l.evpn_instances.len(), 100);
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let n = lat.len();
    let max = lat.iter().copied().fold(0.0, f64::max);
    println!(
        "reads while a VPP call hangs: n={n} p50={:.3} ms p99={:.3} ms max={max:.3} ms",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    let r = stuck.await.unwrap();
    println!(
        "the stuck write ended with: {:?}",
        r.err().map(|e| e.code())
    );
    h.sim.faults().reset();
}
