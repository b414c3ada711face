//! A primary's VPP restarts (state wiped): its evpnd reports the lost
//! binding at once and does not re-claim the vMAC itself; evpnr re-binds it
//! through the evidence wait, with one holder at every moment (issue "What a
//! real VPP 25.10 showed", item 6, registry mode). The time until the
//! primary holds the vMAC again is printed, not asserted.
mod common;

use std::time::Instant;

use common::{Fleet, serial, wait_for};

const A: &str = "dpu0-ddln0";
const B: &str = "dpu0-chplo0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpp_restart_on_the_primary_is_rebound_by_the_registry() {
    let _s = serial().await;
    let mut f = Fleet::new("vpp_restart_on_the_primary_is_rebound", &[A, B]).await;
    f.start_all().await;
    let vmac = f.test_group(Some(A)).await;
    wait_for("A holds the vMAC", || async { f.host(A).holds(&vmac) }).await;
    let n = f.evpnr().lines().len();
    let t0 = Instant::now();
    f.host(A).sim.faults().restart();
    wait_for("A holds the vMAC again", || async {
        f.host(A).holds(&vmac)
    })
    .await;
    println!(
        "primary's VPP restarted: vMAC bound again after {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    // The re-bind went through evpnr (its bind, with the evidence wait).
    f.evpnr()
        .wait_log_after(n, "bind-settled", common::T)
        .unwrap();
    assert_eq!(f.group("test").await.primary_instance_id, A);
    assert!(!f.host(B).holds(&vmac));
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
    f.host_mut(A).kill_evpnd();
}
