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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_flow_with_moves_never_two_holders() {
    let _s = serial().await;
    let mut f = Fleet::new("demo_flow_with_moves_never_two_holders", &[A, B]).await;
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

    let vmac = f.test_group(None).await;
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
        let g = f.move_to(to, false).await.unwrap();
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

async fn bind(f: &Fleet, id: &str) {
    f.client()
        .await
        .bind_group_bvi(v1::BindGroupBviRequest {
            group_id: "test".into(),
            instance_id: id.into(),
        })
        .await
        .unwrap();
}

/// Wait until `primary` (or nobody) holds the GroupBVI and every other
/// member of the fleet is a candidate, as the members report it.
async fn wait_converged(f: &Fleet, primary: Option<&str>, vmac: &str) {
    let want = primary.map(str::to_string);
    wait_for(&format!("converged on {want:?}"), || {
        let want = want.clone();
        async move {
            let g = f.group("test").await;
            if g.primary_instance_id != want.clone().unwrap_or_default() {
                return false;
            }
            for h in &f.hosts {
                let is_p = want.as_deref() == Some(h.id.as_str());
                let r = role(&f.bvi(&h.id, "test").await);
                if r != if is_p { PRIMARY } else { CANDIDATE } || h.holds(vmac) != is_p {
                    return false;
                }
            }
            true
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_with_matching_fleet_makes_no_vpp_changes() {
    let _s = serial().await;
    let mut f = Fleet::new("restart_with_matching_fleet_makes_no_vpp_changes", &[A, B]).await;
    f.start_all().await;
    let vmac = f.test_group(None).await;
    bind(&f, A).await;
    wait_converged(&f, Some(A), &vmac).await;
    f.kill_evpnr();
    for h in &f.hosts {
        h.sim.clear_journal();
    }
    f.start_evpnr();
    for id in [A, B] {
        f.wait_ready(id).await;
    }
    // Both members were compared with their groups and left alone.
    wait_for("two unchanged resyncs", || async {
        metric_value(
            &f.metrics(),
            "evpnr_resyncs_total",
            &["result=\"unchanged\""],
        )
        .is_some_and(|v| v >= 2.0)
    })
    .await;
    assert_eq!(
        metric_value(&f.metrics(), "evpnr_resyncs_total", &["result=\"changed\""]),
        None
    );
    for h in &f.hosts {
        assert_eq!(h.changes(), Vec::<String>::new(), "{}", h.id);
    }
    // The registry came back with everything it acknowledged.
    let g = f.group("test").await;
    assert_eq!(g.primary_instance_id, A);
    assert_eq!(g.vmac, vmac);
    assert_eq!(g.group_bvi.unwrap().addresses.len(), 2);
    assert_eq!(g.members.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evpnr_killed_mid_move_converges() {
    let _s = serial().await;
    let mut f = Fleet::new("evpnr_killed_mid_move_converges", &[A, B]).await;
    f.start_all().await;
    let vmac = f.test_group(None).await;
    bind(&f, A).await;
    // Slow VPPs so that the kill lands inside the move.
    for h in &f.hosts {
        h.sim
            .faults()
            .latency("*", std::time::Duration::from_millis(40));
    }
    let n = f.evpnr().lines().len();
    let c = f.client().await;
    let mv = tokio::spawn(async move {
        let mut c = c;
        c.move_group_bvi(v1::MoveGroupBviRequest {
            group_id: "test".into(),
            instance_id: B.into(),
            force: false,
        })
        .await
    });
    f.evpnr().wait_log_after(n, "move-started", T).unwrap();
    f.kill_evpnr();
    assert!(mv.await.unwrap().is_err(), "the move cannot have finished");
    for h in &f.hosts {
        h.sim.faults().reset();
    }
    f.start_evpnr();
    // Either the intent (B) was persisted and the move completes through
    // resync, or it was not and A stays primary; never both, never neither.
    wait_for("a primary", || async {
        !f.group("test").await.primary_instance_id.is_empty()
    })
    .await;
    let p = f.group("test").await.primary_instance_id;
    wait_converged(&f, Some(&p), &vmac).await;
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
    // Acknowledged changes survived the kill.
    let g = f.group("test").await;
    assert_eq!(g.members.len(), 2);
    assert_eq!(g.group_bvi.unwrap().addresses.len(), 2);
    // And the group still moves.
    let other = if p == A { B } else { A };
    f.move_to(other, false).await.unwrap();
    wait_converged(&f, Some(other), &vmac).await;
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_old_primary_is_refused_then_forced() {
    let _s = serial().await;
    let mut f = Fleet::new("unreachable_old_primary_is_refused_then_forced", &[A, B]).await;
    f.start_all().await;
    let vmac = f.test_group(None).await;
    bind(&f, A).await;
    // A's host dies (its evpnd, and from now on its dataplane counts as gone).
    f.host_mut(A).kill_evpnd();
    let dead = now_ns();
    wait_for("A unreachable", || async {
        let l = f
            .client()
            .await
            .list_instances(v1::Empty {})
            .await
            .unwrap()
            .into_inner();
        l.instances
            .iter()
            .any(|i| i.instance_id == A && i.state == v1::instance::State::Unreachable as i32)
    })
    .await;
    let e = f.move_to(B, false).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("force"), "{e:?}");
    assert_eq!(f.group("test").await.primary_instance_id, A);
    assert_eq!(role(&f.bvi(B, "test").await), CANDIDATE);
    // Forced: B binds although A could not release.
    let g = f.move_to(B, true).await.unwrap();
    assert_eq!(g.primary_instance_id, B);
    assert_eq!(role(&f.bvi(B, "test").await), PRIMARY);
    f.check_vmac_exclusive(&vmac, &[(A, dead)]).unwrap();
    let m = f.metrics();
    assert_eq!(
        metric_value(&m, "evpnr_moves_total", &["result=\"refused\""]),
        Some(1.0)
    );
    // A comes back: evpnr releases it; B stays primary.
    f.host_mut(A).start_evpnd();
    f.wait_ready(A).await;
    wait_converged(&f, Some(B), &vmac).await;
    // With A reachable again, moves work without force.
    f.move_to(A, false).await.unwrap();
    wait_converged(&f, Some(A), &vmac).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_killed_mid_move_converges() {
    let _s = serial().await;
    let mut f = Fleet::new("member_killed_mid_move_converges", &[A, B]).await;
    f.start_all().await;
    let vmac = f.test_group(None).await;
    bind(&f, A).await;
    // B (the new primary) is slow, and dies while it binds.
    f.host(B)
        .sim
        .faults()
        .latency("*", std::time::Duration::from_millis(100));
    let c = f.client().await;
    let mv = tokio::spawn(async move {
        let mut c = c;
        c.move_group_bvi(v1::MoveGroupBviRequest {
            group_id: "test".into(),
            instance_id: B.into(),
            force: false,
        })
        .await
    });
    let vm = vmac.clone();
    wait_for("B starts binding", || {
        let vm = vm.clone();
        let b = f.host(B);
        async move { b.mac_changes().iter().any(|(_, _, m)| *m == vm) }
    })
    .await;
    f.host_mut(B).kill_evpnd();
    let e = mv.await.unwrap().unwrap_err();
    assert!(
        matches!(
            e.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
        ),
        "{e:?}"
    );
    f.host(B).sim.faults().reset();
    // The half-bound B is released when it comes back; nobody is primary.
    f.host_mut(B).start_evpnd();
    f.wait_ready(B).await;
    wait_converged(&f, None, &vmac).await;
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
    // The group is usable again.
    f.move_to(B, false).await.unwrap();
    wait_converged(&f, Some(B), &vmac).await;
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
    assert!(metric_value(&f.metrics(), "evpnr_moves_total", &["result=\"failed\""]).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_member_times_out_and_does_not_block_others() {
    let _s = serial().await;
    let f = Fleet::new("hung_member_times_out_and_does_not_block_others", &[A, B]).await;
    let mut f = f;
    f.start_all().await;
    f.test_group(None).await;
    let stop = |sig| f.host(A).evpnd.as_ref().unwrap().signal(sig).unwrap();
    stop(nix::sys::signal::Signal::SIGSTOP);
    let mut c1 = f.client().await;
    let hung = tokio::spawn(async move {
        c1.list_bv_is(v1::InstanceRef {
            instance_id: A.into(),
        })
        .await
    });
    // While A hangs, B and the registry's own reads answer.
    let mut c = f.client().await;
    let b = c
        .list_bv_is(v1::InstanceRef {
            instance_id: B.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(b.bvis.len(), 1);
    assert_eq!(
        c.list_groups(v1::Empty {})
            .await
            .unwrap()
            .into_inner()
            .groups
            .len(),
        1
    );
    // Every pass-through read answers for the healthy member.
    let info = c
        .get_instance(v1::InstanceRef {
            instance_id: B.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((info.instance_id.as_str(), info.ready), (B, true));
    c.get_vpp_info(v1::InstanceRef {
        instance_id: B.into(),
    })
    .await
    .unwrap();
    c.get_bird_info(v1::InstanceRef {
        instance_id: B.into(),
    })
    .await
    .unwrap();
    let e = c
        .get_evpn_instance(v1::EvpnRef {
            instance_id: B.into(),
            slug: "test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(e.vni, 100);
    let e = c
        .set_evpn_instance_enabled(v1::SetEnabledRequest {
            instance_id: B.into(),
            slug: "test".into(),
            enabled: false,
            force: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!e.enabled);
    // The member's own NOT_FOUND comes back as it is.
    let e = c
        .get_bvi(v1::EvpnRef {
            instance_id: B.into(),
            slug: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    assert!(!hung.is_finished());
    let e = hung.await.unwrap().unwrap_err();
    assert_eq!(e.code(), tonic::Code::DeadlineExceeded, "{e:?}");
    assert!(
        metric_value(
            &f.metrics(),
            "evpnr_member_rpcs_total",
            &["method=\"ListBVIs\"", "code=\"DEADLINE_EXCEEDED\""]
        )
        .is_some()
    );
    stop(nix::sys::signal::Signal::SIGCONT);
    f.host_mut(A).kill_evpnd();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtu_on_all_members_and_resync_repairs_drift() {
    let _s = serial().await;
    let mut f = Fleet::new("mtu_on_all_members_and_resync_repairs_drift", &[A, B]).await;
    f.start_all().await;
    f.test_group(None).await;
    let mut c = f.client().await;
    let g = c
        .set_group_mtu(v1::SetGroupMtuRequest {
            group_id: "test".into(),
            mtu: 9000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.mtu, 9000);
    for id in [A, B] {
        assert_eq!(f.bvi(id, "test").await.unwrap().mtu, 9000, "{id}");
    }
    // Drift behind evpnr's back: A loses its eVPN, B gains a stale one.
    let mut a = f.evpnd_as_registry(A).await;
    a.delete_evpn_instance(v1::EvpnRef {
        instance_id: String::new(),
        slug: "test".into(),
    })
    .await
    .unwrap();
    let mut b = f.evpnd_as_registry(B).await;
    b.create_evpn_instance(v1::CreateEvpnInstanceRequest {
        slug: "stale".into(),
        vni: 999,
        ..Default::default()
    })
    .await
    .unwrap();
    // evpnr's periodic resync of every ready member repairs it.
    wait_for("A repaired and B cleaned", || {
        let f = &f;
        async move {
            let ok_a = f.bvi(A, "test").await.is_some_and(|b| b.mtu == 9000);
            let l = f
                .client()
                .await
                .list_evpn_instances(v1::InstanceRef {
                    instance_id: B.into(),
                })
                .await
                .unwrap()
                .into_inner();
            ok_a && l.evpn_instances.iter().all(|e| e.slug != "stale")
        }
    })
    .await;
    let st = c
        .get_instance_status(v1::InstanceRef {
            instance_id: A.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(st.memberships[0].configured, "{st:?}");
    assert!(
        metric_value(&f.metrics(), "evpnr_resyncs_total", &["result=\"changed\""]).unwrap() >= 2.0
    );
    // Deleting a bound GroupBVI releases it first.
    bind(&f, A).await;
    let vmac = f.group("test").await.vmac;
    assert!(f.host(A).holds(&vmac));
    let g = c
        .delete_group_bvi(v1::GroupRef {
            group_id: "test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        g.group_bvi.is_none() && g.primary_instance_id.is_empty(),
        "{g:?}"
    );
    assert_eq!(role(&f.bvi(A, "test").await), CANDIDATE);
    assert!(!f.host(A).holds(&vmac));
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
    f.host_mut(A).kill_evpnd();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_join_is_rolled_back_and_retried() {
    let _s = serial().await;
    let mut f = Fleet::new("failed_join_is_rolled_back_and_retried", &[A, B]).await;
    f.start_all().await;
    let mut c = f.client().await;
    c.create_group(v1::CreateGroupRequest {
        group_id: "test".into(),
        vni: 100,
        ..Default::default()
    })
    .await
    .unwrap();
    // B's VPP refuses the BVI's loopback: the join fails after the eVPN
    // was created, and is rolled back.
    f.host(B)
        .sim
        .faults()
        .error_on_nth("create_loopback_instance", 1, -1);
    let e = c
        .add_group_member(v1::GroupMemberRequest {
            group_id: "test".into(),
            instance_id: B.into(),
        })
        .await
        .unwrap_err();
    assert_ne!(e.code(), tonic::Code::Ok);
    let l = c
        .list_evpn_instances(v1::InstanceRef {
            instance_id: B.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(l.evpn_instances.is_empty(), "not rolled back: {l:?}");
    assert!(f.group("test").await.members.is_empty());
    // The fault was one-shot: joining again works.
    f.host(B).sim.faults().reset();
    c.add_group_member(v1::GroupMemberRequest {
        group_id: "test".into(),
        instance_id: B.into(),
    })
    .await
    .unwrap();
    assert_eq!(role(&f.bvi(B, "test").await), CANDIDATE);
    f.host_mut(A).kill_evpnd();
}

/// A tiny deterministic generator (no extra dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operations_and_kills_never_make_two_holders() {
    let _s = serial().await;
    const C: &str = "dpu1-zrh0";
    let ids = [A, B, C];
    let mut f = Fleet::new("random_operations_and_kills_never_make_two_holders", &ids).await;
    f.start_all().await;
    // All three hosts are members.
    let vmac = f.test_group(None).await;
    // RANDOM_SEED reproduces or explores other sequences.
    let seed = std::env::var("RANDOM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0006);
    let mut rng = Lcg(seed);
    let mut down: Vec<&str> = Vec::new();
    let mut moved = 0;
    for step in 0..30 {
        let id = ids[rng.next(3)];
        let mut c = f.client().await;
        match rng.next(10) {
            0..=3 | 7 => match f.move_to(id, false).await {
                Ok(_) => moved += 1,
                Err(e) => eprintln!("step {step}: move to {id}: {:?} {}", e.code(), e.message()),
            },
            4 => {
                let _ = c
                    .bind_group_bvi(v1::BindGroupBviRequest {
                        group_id: "test".into(),
                        instance_id: id.into(),
                    })
                    .await;
            }
            5 => {
                let _ = c
                    .release_group_bvi(v1::ReleaseGroupBviRequest {
                        group_id: "test".into(),
                        instance_id: id.into(),
                    })
                    .await;
            }
            6 => {
                if down.contains(&id) {
                    f.host_mut(id).start_evpnd();
                    f.wait_ready(id).await;
                    down.retain(|d| *d != id);
                } else {
                    f.host_mut(id).kill_evpnd();
                    down.push(id);
                }
            }
            8 => {
                // A move with evpnr killed right after it started.
                let n = f.evpnr().lines().len();
                let c2 = f.client().await;
                let target = id.to_string();
                let mv = tokio::spawn(async move {
                    let mut c2 = c2;
                    c2.move_group_bvi(v1::MoveGroupBviRequest {
                        group_id: "test".into(),
                        instance_id: target,
                        force: false,
                    })
                    .await
                });
                let started = f
                    .evpnr()
                    .wait_log_after(n, "move-started", std::time::Duration::from_secs(2))
                    .is_ok();
                f.kill_evpnr();
                let _ = mv.await;
                f.start_evpnr();
                let _ = started;
            }
            _ => {
                f.restart_evpnr();
            }
        }
        if let Err(e) = f.check_vmac_exclusive(&vmac, &[]) {
            panic!("step {step}: {e}");
        }
    }
    let takes = f.check_vmac_exclusive(&vmac, &[]).unwrap();
    eprintln!("seed {seed}: {moved} moves succeeded, vMAC taken {takes} times");
    for id in down.clone() {
        f.host_mut(id).start_evpnd();
    }
    for id in ids {
        f.wait_ready(id).await;
    }
    // Converged on whatever the registry says, and never two holders.
    wait_for("a settled registry", || async {
        let g = f.group("test").await;
        let holders = f.hosts.iter().filter(|h| h.holds(&vmac)).count();
        holders == usize::from(!g.primary_instance_id.is_empty())
    })
    .await;
    let p = f.group("test").await.primary_instance_id;
    wait_converged(&f, (!p.is_empty()).then_some(p.as_str()), &vmac).await;
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
    // And it still moves.
    let to = if p == A { B } else { A };
    f.move_to(to, false).await.unwrap();
    wait_converged(&f, Some(to), &vmac).await;
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
}

/// A move refused because the old primary's release failed (its VPP hung)
/// leaves the target recorded as a possible holder. The target's resync must
/// confirm that with a release, or the primary stays blocked for good: live
/// address changes would be acknowledged and never reach it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_move_does_not_block_the_primary() {
    let _s = serial().await;
    let f = Fleet::new("refused_move_does_not_block_the_primary", &[A, B]).await;
    let mut f = f;
    f.start_all().await;
    let vmac = f.test_group(None).await;
    bind(&f, A).await;
    wait_converged(&f, Some(A), &vmac).await;
    // A's release hangs in VPP (evpnd's VPP timeout, 2 s, ends it).
    f.host(A).sim.faults().hang("sw_interface_set_mac_address");
    let e = f.move_to(B, false).await.unwrap_err();
    f.host(A).sim.faults().reset();
    assert!(
        matches!(
            e.code(),
            tonic::Code::FailedPrecondition | tonic::Code::DeadlineExceeded
        ),
        "{e:?}"
    );
    wait_converged(&f, Some(A), &vmac).await;
    // A live change reaches the primary.
    f.client()
        .await
        .add_group_bvi_address(v1::GroupBviAddAddressRequest {
            group_id: "test".into(),
            address: Some(prefix("172.16.0.33", 24)),
        })
        .await
        .unwrap();
    wait_for("the new address on A", || async {
        f.bvi(A, "test")
            .await
            .is_some_and(|b| b.addresses.len() == 3 && b.role == PRIMARY)
    })
    .await;
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
}
