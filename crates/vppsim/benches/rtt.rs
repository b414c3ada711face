//! Round trips per second over the unix socket: vpp-api client ↔ vppsim.
//!
//! Run with `cargo bench -p vppsim` (optionally `RTT_N=50000`).

use std::time::{Duration, Instant};

use vpp_api::{Client, ClientConfig, MacAddress, SwIfIndex};
use vppsim::{SimOptions, VppSim};

fn report(what: &str, n: usize, d: Duration) {
    println!(
        "{what:<48} {n:>7} round trips in {:>8.1} ms = {:>9.0} /s",
        d.as_secs_f64() * 1e3,
        n as f64 / d.as_secs_f64()
    );
}

async fn sequential<F, Fut>(what: &str, n: usize, mut f: F)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let t0 = Instant::now();
    for i in 0..n {
        f(i).await;
    }
    report(what, n, t0.elapsed());
}

async fn concurrent(what: &str, c: &Client, n: usize, inflight: usize, write: Option<SwIfIndex>) {
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..inflight {
        let c = c.clone();
        let per = n / inflight;
        set.spawn(async move {
            for i in 0..per {
                match write {
                    Some(l) => c
                        .sw_interface_set_flags(l, (i + w) % 2 == 0)
                        .await
                        .expect("set_flags"),
                    None => c.ping().await.expect("ping"),
                }
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("task");
    }
    report(
        &format!("{what} ({inflight} in flight)"),
        n / inflight * inflight,
        t0.elapsed(),
    );
}

fn main() {
    let n: usize = std::env::var("RTT_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("vppsim-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let sock = dir.join("api.sock");
        let sim = VppSim::start(&sock, SimOptions::default())
            .await
            .expect("vppsim");
        let c = Client::connect(ClientConfig::new(&sock))
            .await
            .expect("connect");
        let l = c
            .create_loopback_instance(MacAddress([2, 0, 0, 0, 0, 1]), Some(1))
            .await
            .expect("loopback");
        // Warm-up.
        for _ in 0..1000 {
            c.ping().await.expect("ping");
        }
        println!("vpp-api client <-> vppsim over a unix stream socket, N = {n}");
        sequential("control_ping (sequential)", n, |_| async {
            c.ping().await.expect("ping");
        })
        .await;
        sequential("sw_interface_set_flags (sequential)", n, |i| {
            let c = c.clone();
            async move {
                c.sw_interface_set_flags(l, i % 2 == 0)
                    .await
                    .expect("flags")
            }
        })
        .await;
        sequential(
            "sw_interface_dump 2 details (sequential)",
            n / 4,
            |_| async {
                c.sw_interface_dump(vpp_api::InterfaceFilter::All)
                    .await
                    .expect("dump");
            },
        )
        .await;
        for inflight in [8, 64] {
            concurrent("control_ping", &c, n, inflight, None).await;
            concurrent("sw_interface_set_flags", &c, n, inflight, Some(l)).await;
        }
        sim.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}
