//! Issue 17 (health on the heartbeat): evpnr sees a member's health change
//! within one heartbeat — evpnd sends a changed health summary at once —
//! and shows it in GetInstanceStatus with the reason. Black-box: evpnr,
//! evpnd, vppsim and a real BIRD 2.20; the member's BIRD is killed.
mod common;

use std::time::{Duration, Instant};

use common::Fleet;
use evpn_api::v1;

async fn reported(f: &Fleet, id: &str) -> Option<v1::HealthVerdict> {
    f.client()
        .await
        .get_instance_status(v1::InstanceRef {
            instance_id: id.into(),
        })
        .await
        .ok()?
        .into_inner()
        .health?
        .host
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evpnr_sees_a_members_health_change_within_one_heartbeat() {
    let _s = common::serial().await;
    let mut f = Fleet::new(
        "evpnr_sees_a_members_health_change_within_one_heartbeat",
        &["r1"],
    )
    .await;
    // Checks ten times faster than the heartbeats (1 s), so a change sent
    // only with the next periodic heartbeat would mostly arrive too late.
    f.host_mut("r1").evpnd_extra =
        "  health:\n    interval: 100ms\n    timeout: 80ms\n    fall: 2\n".into();
    f.start_all().await;
    common::wait_for("r1 reported healthy", async || {
        reported(&f, "r1")
            .await
            .is_some_and(|h| h.status() == v1::Health::Ok)
    })
    .await;
    f.host_mut("r1").kill_bird();
    // evpnd decides (fall x interval); from then on evpnr must know at once,
    // not at the next periodic heartbeat: 300 ms, under a third of the
    // heartbeat interval, is the bound checked.
    f.host("r1")
        .evpnd
        .as_ref()
        .unwrap()
        .wait_log("health-down", Duration::from_secs(30))
        .unwrap();
    let t = Instant::now();
    loop {
        let h = reported(&f, "r1").await;
        if let Some(h) = h.clone().filter(|h| h.status() == v1::Health::Down) {
            assert!(h.reason.contains("bird"), "{h:?}");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "evpnr still reports {h:?} {:?} after evpnd's health went down",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
