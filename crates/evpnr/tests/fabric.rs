//! A fleet on the simulated fabric (no root): the evidence wait of a move
//! sees the old primary's announcement of the vMAC while the fabric still
//! carries it, so the witness is no longer empty by construction. Black box:
//! evpnr's gRPC API and events, the vppsim journals, the fabric's history.
mod common;

use std::time::Duration;

use birdsim::fabric::FabricOptions;
use common::*;
use evpn_api::v1;
use futures::StreamExt;

const A: &str = "fab-a";
const B: &str = "fab-b";
/// How long the fabric keeps a withdrawn route visible.
const WITHDRAW: Duration = Duration::from_millis(1500);

/// Wall ns at which `host` last set `mac` (`to = true`) or last replaced it
/// (`to = false`) on an interface, from its vppsim journal.
fn mac_change(f: &Fleet, host: &str, mac: &str, to: bool) -> u64 {
    let h = f.host(host);
    let mut cur: std::collections::HashMap<u32, String> = Default::default();
    let mut at = None;
    for (t, idx, m) in h.mac_changes() {
        let was = cur.insert(idx, m.clone());
        if (to && m == mac) || (!to && was.as_deref() == Some(mac) && m != mac) {
            at = Some(t);
        }
    }
    at.unwrap_or_else(|| {
        panic!(
            "{host}: no MAC change {} {mac}",
            if to { "to" } else { "from" }
        )
    })
}

/// The next `move-settle*` event from `ev`.
async fn settle_event(
    ev: &mut (impl futures::Stream<Item = Result<v1::Event, tonic::Status>> + Unpin),
) -> v1::Event {
    loop {
        let e = tokio::time::timeout(T, ev.next())
            .await
            .expect("a move-settle event")
            .unwrap()
            .unwrap();
        if e.message.starts_with("move-settle") {
            return e;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_fabric_move_waits_while_the_old_primary_still_announces() {
    let _s = serial().await;
    let mut f = Fleet::on_fabric(
        &[A, B],
        FabricOptions {
            announce_delay: Duration::from_millis(1),
            withdraw_delay: WITHDRAW,
            record: true,
        },
        "10s",
    )
    .await;
    f.start_all().await;
    let fabric = f.fabric.clone().unwrap();
    let vmac = f.test_group(Some(A)).await.to_lowercase();
    wait_for("B sees A announce the vMAC", async || {
        fabric.announcers_seen(B, &vmac) == [f.host(A).vtep()].into()
    })
    .await;
    let mut ev = f
        .client()
        .await
        .watch_events(v1::WatchEventsRequest {
            types: vec!["failover".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    // A → B: B's bind waits until the fabric no longer carries A's route.
    let g = f.move_to(B, false).await.unwrap();
    assert_eq!(g.primary_instance_id, B);
    let e = settle_event(&mut ev).await;
    assert_eq!(e.message, "move-settled", "{e:?}");
    let waited: f64 = e.fields["waited-ms"].parse().unwrap();
    let polls: u32 = e.fields["polls"].parse().unwrap();
    assert!(
        waited >= (WITHDRAW.as_millis() - 100) as f64 && polls > 1,
        "the wait saw no announcer: {e:?}"
    );
    let released = mac_change(&f, A, &vmac, false);
    let bound = mac_change(&f, B, &vmac, true);
    assert!(
        bound >= released + WITHDRAW.as_nanos() as u64,
        "B bound {} ms after A released (withdrawal delay {WITHDRAW:?})",
        (bound.saturating_sub(released)) / 1_000_000
    );
    assert!(
        fabric.two_announcer_moments().is_empty(),
        "{:?}",
        fabric.two_announcer_moments()
    );
    f.check_vmac_exclusive(&vmac, &[]).unwrap();

    // A wait shorter than the withdrawal: B → A times out naming B's VTEP
    // (a manual move binds anyway), and the fabric's history shows the
    // moment both announced the vMAC.
    f.move_max_wait = "300ms";
    f.restart_evpnr();
    f.wait_ready(A).await;
    f.wait_ready(B).await;
    let mut ev = f
        .client()
        .await
        .watch_events(v1::WatchEventsRequest {
            types: vec!["failover".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    f.move_to(A, false).await.unwrap();
    let e = settle_event(&mut ev).await;
    assert_eq!(e.message, "move-settle-timeout", "{e:?}");
    assert_eq!(e.fields["vteps"], f.host(B).vtep(), "{e:?}");
    let m = fabric.two_announcer_moments();
    assert!(
        m.iter().any(|m| m.mac == vmac && m.host == A),
        "no two-announcer moment recorded: {m:?}"
    );
    // Still only one holder in the dataplanes (B released before A bound).
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
}

/// A primary cut off from evpnr but not from the fabric keeps the vMAC and
/// keeps announcing it: a move away from it is refused (its release cannot
/// be confirmed), the candidate still sees the announcement, and after the
/// heal the move goes through with evidence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_fabric_primary_cut_from_evpnr_keeps_announcing() {
    let _s = serial().await;
    let opts = FabricOptions {
        record: true,
        ..Default::default()
    };
    let mut f = Fleet::on_fabric(&[A, B], opts, "2s").await;
    f.start_all().await;
    let fabric = f.fabric.clone().unwrap();
    let vmac = f.test_group(Some(A)).await.to_lowercase();
    let a_vtep = f.host(A).vtep();
    wait_for("B sees A announce the vMAC", async || {
        fabric.announcers_seen(B, &vmac) == [a_vtep.clone()].into()
    })
    .await;
    f.host(A).set_mgmt_link(false);
    let e = f.move_to(B, false).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(f.host(A).holds(&vmac) && !f.host(B).holds(&vmac));
    assert_eq!(fabric.announcers_seen(B, &vmac), [a_vtep.clone()].into());
    f.host(A).set_mgmt_link(true);
    f.wait_ready(A).await;
    wait_for("the move after the heal", async || {
        f.move_to(B, false).await.is_ok()
    })
    .await;
    assert!(f.host(B).holds(&vmac) && !f.host(A).holds(&vmac));
    assert!(
        fabric.two_announcer_moments().is_empty(),
        "{:?}",
        fabric.two_announcer_moments()
    );
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
}
