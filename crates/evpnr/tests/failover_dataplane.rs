//! Scenario 6 of the failover comparison, on the VPP lab: the primary's
//! dataplane becomes unfit while its evpnd, BIRD and the fabric are fine.
//! Black box: a fleet on the simulated fabric with vppsim faults, driven
//! through evpnr's gRPC API and observed through its failover events, the
//! vppsim dataplanes and the fabric's history.
mod common;

use std::time::Duration;

use birdsim::fabric::FabricOptions;
use common::*;

const A: &str = "dp-a";
const B: &str = "dp-b";

/// A and B on the simulated fabric, health checks every 100 ms (down after
/// two failures), group `test` bound on A with failover `auto`.
async fn fleet() -> (Fleet, String) {
    let mut f = Fleet::on_fabric(
        &[A, B],
        FabricOptions {
            announce_delay: Duration::from_millis(1),
            withdraw_delay: Duration::from_millis(200),
            record: true,
        },
        "1s",
    )
    .await;
    for id in [A, B] {
        f.host_mut(id).evpnd_extra =
            "  health:\n    interval: 100ms\n    timeout: 80ms\n    fall: 2\n".into();
    }
    f.start_all().await;
    let vmac = f.test_group(Some(A)).await.to_lowercase();
    f.set_test_failover("auto", None).await;
    (f, vmac)
}

/// VPP on the primary crashes and comes back empty (its supervisor
/// restarts it): the dataplane loses the vMAC, the fabric withdraws the
/// announcement, the primary's `dataplane` check fails for a moment. Either
/// the primary's evpnd restores the gateway or evpnr moves it to the
/// candidate — whichever, afterwards exactly the group's primary holds the
/// vMAC, and at no instant did two hosts hold it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_sim_fabric_primary_vpp_restart_leaves_exactly_one_holder() {
    let _s = serial().await;
    let (f, vmac) = fleet().await;
    let t0 = now_ns();
    f.host(A).sim.faults().restart();
    wait_for("A's VPP lost the vMAC or was restored", async || {
        f.host(A).mac_changes().iter().any(|(t, _, _)| *t > t0) || !f.host(A).holds(&vmac)
    })
    .await;
    wait_for("exactly the group's primary holds the vMAC", async || {
        let p = f.group("test").await.primary_instance_id;
        let holders: Vec<&str> = [A, B]
            .into_iter()
            .filter(|h| f.host(h).holds(&vmac))
            .collect();
        holders == [p.as_str()]
    })
    .await;
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
}

/// VPP on the primary hangs completely (no call is answered). Its
/// dataplane keeps forwarding with the vMAC and the fabric still sees it
/// announced, and the release cannot be done: a failed release counts as
/// not released, so the candidate must not bind. The failover is blocked
/// (naming the primary's VTEP) and retried; the gateway stays on A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_sim_fabric_primary_vpp_hung_is_never_two_holders() {
    let _s = serial().await;
    let (f, vmac) = fleet().await;
    let mut ev = failover_events(&f).await;
    f.host(A).sim.faults().hang("*");
    let e = next_event_of(&mut ev, &["failover-started"]).await;
    assert_eq!(e.fields["reason"], "primary-unhealthy", "{e:?}");
    for _ in 0..2 {
        let e = next_event_of(&mut ev, &["failover-finished", "failover-blocked"]).await;
        assert_eq!(e.message, "failover-blocked", "{e:?}");
        assert!(f.host(A).holds(&vmac), "A's dataplane lost the vMAC");
        assert!(
            !f.host(B).holds(&vmac),
            "B bound while A still holds it: {e:?}"
        );
    }
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
}
