//! evpnr against real evpnd processes on vppsim and real BIRD 2.20: the
//! brief's demo flow, restart resync, kill -9, unreachable primaries and
//! members dying mid-move. Assertions on "never two holders" replay the
//! vppsim journals of all hosts in wall-clock order.
mod common;

use common::*;
use evpn_api::v1;
use evpn_testkit::metric_value;
use futures::StreamExt;

const A: &str = "dpu0-ddln0";
const B: &str = "dpu0-chplo0";

fn role(b: &Option<v1::Bvi>) -> i32 {
    b.as_ref().map_or(-1, |b| b.role)
}

const PRIMARY: i32 = v1::bvi::Role::Primary as i32;
const CANDIDATE: i32 = v1::bvi::Role::Candidate as i32;

/// Group `test` with both hosts as members and a GroupBVI with an IPv4 and an
/// IPv6 address; returns the vMAC.
async fn demo_group(f: &Fleet) -> String {
    let mut c = f.client().await;
    let g = c
        .create_group(v1::CreateGroupRequest {
            group_id: "test".into(),
            vni: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for id in [A, B] {
        c.add_group_member(v1::GroupMemberRequest {
            group_id: "test".into(),
            instance_id: id.into(),
        })
        .await
        .unwrap();
    }
    c.create_group_bvi(v1::GroupBviRequest {
        group_id: "test".into(),
        addresses: vec![prefix("172.16.0.32", 24), prefix("fec0::32", 64)],
    })
    .await
    .unwrap();
    g.vmac
}

async fn move_to(f: &Fleet, id: &str, force: bool) -> Result<v1::Group, tonic::Status> {
    f.client()
        .await
        .move_group_bvi(v1::MoveGroupBviRequest {
            group_id: "test".into(),
            instance_id: id.into(),
            force,
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_flow_with_moves_never_two_holders() {
    let _s = serial().await;
    let Some(mut f) = Fleet::new("demo_flow_with_moves_never_two_holders", &[A, B]).await else {
        return;
    };
    f.start_all().await;
    let mut c = f.client().await;
    let mut events = c
        .watch_events(v1::WatchEventsRequest {
            types: vec!["crud".into(), "failover".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let vmac = demo_group(&f).await;
    // Both joined: each has bvi-test with its derived per-host MAC.
    for id in [A, B] {
        let b = f.bvi(id, "test").await.expect("bvi-test");
        assert_eq!(b.interface_name, "bvi-test");
        assert_eq!(b.role, CANDIDATE);
        assert_eq!(
            b.instance_mac,
            evpn_model::Mac::derived(&["test", id]).to_string()
        );
    }
    // Bind on A.
    c.bind_group_bvi(v1::BindGroupBviRequest {
        group_id: "test".into(),
        instance_id: A.into(),
    })
    .await
    .unwrap();
    let b = f.bvi(A, "test").await.unwrap();
    assert_eq!((b.role, b.mac.as_str()), (PRIMARY, vmac.as_str()));
    assert_eq!(b.addresses.len(), 2, "{b:?}");
    // Binding B while A holds it is refused.
    let e = c
        .bind_group_bvi(v1::BindGroupBviRequest {
            group_id: "test".into(),
            instance_id: B.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");

    // Move back and forth.
    for (to, other) in [(B, A), (A, B), (B, A)] {
        let g = move_to(&f, to, false).await.unwrap();
        assert_eq!(g.primary_instance_id, to);
        assert_eq!(role(&f.bvi(to, "test").await), PRIMARY);
        assert_eq!(role(&f.bvi(other, "test").await), CANDIDATE);
    }
    // An address added live on the primary (B).
    c.add_group_bvi_address(v1::GroupBviAddAddressRequest {
        group_id: "test".into(),
        address: Some(prefix("172.16.1.32", 24)),
    })
    .await
    .unwrap();
    assert_eq!(f.bvi(B, "test").await.unwrap().addresses.len(), 3);
    c.delete_group_bvi_address(v1::GroupBviDeleteAddressRequest {
        group_id: "test".into(),
        address: Some(prefix("172.16.1.32", 24)),
    })
    .await
    .unwrap();
    assert_eq!(f.bvi(B, "test").await.unwrap().addresses.len(), 2);

    let takes = f.check_vmac_exclusive(&vmac, &[]).unwrap();
    assert!(takes >= 4, "vMAC taken {takes} times");

    // Remove the primary's membership: the GroupBVI is unassigned.
    let g = c
        .remove_group_member(v1::GroupMemberRequest {
            group_id: "test".into(),
            instance_id: B.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.primary_instance_id, "");
    assert_eq!(g.members, vec![A.to_string()]);
    assert!(f.bvi(B, "test").await.is_none());
    assert_eq!(role(&f.bvi(A, "test").await), CANDIDATE);
    assert!(!f.host(A).holds(&vmac) && !f.host(B).holds(&vmac));

    // Delete the group: everything cleaned up.
    c.delete_group(v1::GroupRef {
        group_id: "test".into(),
    })
    .await
    .unwrap();
    for id in [A, B] {
        let l = c
            .list_evpn_instances(v1::InstanceRef {
                instance_id: id.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(l.evpn_instances.is_empty(), "{id}: {l:?}");
    }
    assert!(
        c.list_groups(v1::Empty {})
            .await
            .unwrap()
            .into_inner()
            .groups
            .is_empty()
    );

    // The fleet stream carried evpnr's own records and members' events,
    // stamped with the member's ID.
    let mut seen_moves = 0;
    let mut member_events = 0;
    while let Ok(Some(Ok(e))) =
        tokio::time::timeout(std::time::Duration::from_millis(500), events.next()).await
    {
        if e.instance.is_empty() && e.message == "move-finished" {
            seen_moves += 1;
        }
        if e.instance == A || e.instance == B {
            member_events += 1;
        }
        assert!(e.r#type == "crud" || e.r#type == "failover", "{e:?}");
    }
    assert!(seen_moves >= 3, "move-finished events: {seen_moves}");
    assert!(member_events > 0);
    let m = f.metrics();
    assert!(
        metric_value(&m, "evpnr_moves_total", &["result=\"ok\""]).unwrap() >= 3.0,
        "{m}"
    );
    assert!(m.contains("evpnr_move_duration_seconds_bucket"), "{m}");
    assert_eq!(metric_value(&m, "evpnr_groups", &[]), Some(0.0));
    assert_eq!(metric_value(&m, "evpnr_instances_ready", &[]), Some(2.0));
    assert!(
        metric_value(
            &m,
            "evpnr_member_rpcs_total",
            &["method=\"BindGroupBVI\"", "code=\"OK\""]
        )
        .is_some(),
        "{m}"
    );
}
