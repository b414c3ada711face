//! Crash tests: evpnd is killed (SIGKILL) while it is stuck between two
//! steps of create / bind / release / delete (the next VPP message hangs in
//! vppsim, or BIRD is stopped), restarted, and must converge: the dataplane
//! and BIRD match the last committed state, and retrying the operation
//! succeeds with the right end state.
mod common;

use std::time::Duration;

use common::{Host, T, VMAC, gw};
use evpn_api::v1::{self, evpnd_client::EvpndClient};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tonic::transport::Channel;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    CreateEvpn,
    CreateBvi,
    Bind,
    Release,
    Delete,
}

#[derive(Clone, Copy, Debug)]
enum Stall {
    /// This VPP message hangs.
    Vpp(&'static str),
    /// BIRD is stopped (SIGSTOP) so the apply hangs.
    Bird,
}

async fn run_op(c: &mut EvpndClient<Channel>, op: Op) -> Result<(), tonic::Status> {
    let slug = || "test".to_string();
    match op {
        Op::CreateEvpn => c
            .create_evpn_instance(v1::CreateEvpnInstanceRequest {
                slug: slug(),
                vni: 100,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        Op::CreateBvi => c
            .create_bvi(v1::CreateBviRequest {
                slug: slug(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        Op::Bind => c
            .bind_group_bvi(v1::HostBindGroupBviRequest {
                slug: slug(),
                group_id: slug(),
                vmac: VMAC.into(),
                addresses: gw(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        Op::Release => c
            .release_group_bvi(v1::HostReleaseGroupBviRequest {
                slug: slug(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        Op::Delete => c
            .delete_evpn_instance(v1::EvpnRef {
                slug: slug(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
    }
}

/// The operations that must have succeeded before `op` can run.
fn setup_for(op: Op) -> &'static [Op] {
    match op {
        Op::CreateEvpn => &[],
        Op::CreateBvi => &[Op::CreateEvpn],
        Op::Bind | Op::Delete => &[Op::CreateEvpn, Op::CreateBvi],
        Op::Release => &[Op::CreateEvpn, Op::CreateBvi, Op::Bind],
    }
}

/// What evpnd reports must be exactly what VPP and BIRD have.
async fn assert_consistent(h: &Host, c: &mut EvpndClient<Channel>, ctx: &str) {
    let st = h.sim.state();
    let evpns = c
        .list_evpn_instances(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner()
        .evpn_instances;
    let loops: Vec<_> = st
        .interfaces
        .values()
        .filter(|i| i.name.starts_with("loop"))
        .collect();
    match evpns.first() {
        None => {
            assert!(
                st.bridge_domains.is_empty(),
                "{ctx}: orphan bridge domain {st:?}"
            );
            assert!(loops.is_empty(), "{ctx}: orphan loopback {loops:?}");
            assert!(h.snippet("test").is_none(), "{ctx}: orphan snippet");
        }
        Some(e) => {
            assert!(
                st.bridge_domains.contains_key(&e.bridge_domain_id),
                "{ctx}: missing bd {st:?}"
            );
            assert!(h.snippet("test").is_some(), "{ctx}: missing snippet");
            match c
                .get_bvi(v1::EvpnRef {
                    slug: "test".into(),
                    ..Default::default()
                })
                .await
            {
                Err(s) if s.code() == tonic::Code::NotFound => {
                    assert!(loops.is_empty(), "{ctx}: orphan loopback {loops:?}")
                }
                Err(s) => panic!("{ctx}: {s:?}"),
                Ok(b) => {
                    let b = b.into_inner();
                    assert_eq!(loops.len(), 1, "{ctx}: {loops:?}");
                    let lo = loops[0];
                    assert_eq!(lo.mac.to_string(), b.mac, "{ctx}: MAC");
                    let mut have: Vec<String> =
                        lo.addresses.iter().map(|p| p.to_string()).collect();
                    let mut want: Vec<String> = b
                        .addresses
                        .iter()
                        .map(|p| format!("{}/{}", p.address, p.prefix_len))
                        .collect();
                    have.sort();
                    want.sort();
                    assert_eq!(have, want, "{ctx}: addresses");
                    let mac: evpn_model::Mac = b.mac.parse().unwrap();
                    assert_eq!(
                        lo.ip6_link_local,
                        Some(mac.link_local()),
                        "{ctx}: link-local"
                    );
                    assert!(lo.admin_up, "{ctx}: admin down");
                    assert_eq!(
                        st.bridge_domains[&e.bridge_domain_id].bvi,
                        Some(lo.sw_if_index),
                        "{ctx}: not BVI"
                    );
                }
            }
        }
    }
}

fn bird_pid(h: &Host) -> Pid {
    let p = std::fs::read_to_string(h.bird.dir.path().join("bird.pid")).unwrap();
    Pid::from_raw(p.trim().parse().unwrap())
}

async fn crash_case(op: Op, stall: Stall) {
    let name = format!("crash_{op:?}_{stall:?}");
    let mut h = Host::new(&name, "r1").await;
    h.start_evpnd();
    let mut c = h.client().await;
    for s in setup_for(op) {
        run_op(&mut c, *s).await.unwrap();
    }
    if setup_for(op).contains(&Op::Bind) {
        h.announced(4).await; // both rounds of the setup bind's announcements are out
    }
    match stall {
        Stall::Vpp(m) => h.sim.faults().hang(m),
        Stall::Bird => kill(bird_pid(&h), Signal::SIGSTOP).unwrap(),
    }
    let mut w = c.clone();
    let pending = tokio::spawn(async move { run_op(&mut w, op).await });
    // Not synchronisation: time passes to show the operation does not finish (it stalls).
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !pending.is_finished(),
        "{name}: the operation did not stall"
    );
    h.crash();
    let _ = pending.await;
    h.sim.faults().reset();
    if let Stall::Bird = stall {
        kill(bird_pid(&h), Signal::SIGCONT).unwrap();
    }
    h.start_evpnd();
    let mut c = h.client().await;
    assert_consistent(&h, &mut c, &format!("{name} after restart")).await;
    // The registry would retry; the retry must succeed.
    run_op(&mut c, op)
        .await
        .unwrap_or_else(|e| panic!("{name}: retry failed: {e:?}"));
    assert_consistent(&h, &mut c, &format!("{name} after retry")).await;
    let bvi = c
        .get_bvi(v1::EvpnRef {
            slug: "test".into(),
            ..Default::default()
        })
        .await;
    match op {
        Op::Bind => assert_eq!(bvi.unwrap().into_inner().mac, VMAC),
        Op::Release | Op::CreateBvi => assert_ne!(bvi.unwrap().into_inner().mac, VMAC),
        Op::Delete => assert!(h.sim.state().bridge_domains.is_empty()),
        Op::CreateEvpn => assert_eq!(bvi.unwrap_err().code(), tonic::Code::NotFound),
    }
    assert!(h.sim.check_mac_exclusive(Some(VMAC)).is_ok());
    let _ = T;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_steps_of_create_converges() {
    crash_case(Op::CreateEvpn, Stall::Vpp("bridge_domain_add_del_v2")).await;
    crash_case(Op::CreateEvpn, Stall::Bird).await;
    for m in [
        "create_loopback_instance",
        "sw_interface_set_mtu",
        "sw_interface_set_flags",
        "sw_interface_set_l2_bridge",
        "lcp_itf_pair_add_del_v3",
        "sw_interface_ip6_set_link_local_address",
    ] {
        crash_case(Op::CreateBvi, Stall::Vpp(m)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_steps_of_bind_and_release_converges() {
    for m in [
        "sw_interface_set_mac_address",
        "sw_interface_ip6_set_link_local_address",
        "sw_interface_add_del_address",
    ] {
        crash_case(Op::Bind, Stall::Vpp(m)).await;
        crash_case(Op::Release, Stall::Vpp(m)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_steps_of_delete_converges() {
    for s in [
        Stall::Vpp("lcp_itf_pair_add_del_v3"),
        Stall::Vpp("delete_loopback"),
        Stall::Bird,
        Stall::Vpp("bridge_domain_add_del_v2"),
    ] {
        crash_case(Op::Delete, s).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_failing_half_way_is_healed_and_the_retry_succeeds() {
    let mut h = Host::new(
        "a_write_failing_half_way_is_healed_and_the_retry_succeeds",
        "r1",
    )
    .await;
    h.start_evpnd();
    let mut c = h.client().await;
    for s in setup_for(Op::Bind) {
        run_op(&mut c, *s).await.unwrap();
    }
    // The second address add fails in VPP: MAC, link-local and one address were set.
    h.sim
        .faults()
        .error_on_nth("sw_interface_add_del_address", 2, -1);
    let e = run_op(&mut c, Op::Bind).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Internal, "{e:?}");
    h.sim.faults().reset();
    // Healed back to the committed (candidate) state, no vMAC left behind.
    assert_consistent(&h, &mut c, "after failed bind").await;
    let b = c
        .get_bvi(v1::EvpnRef {
            slug: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(b.role(), v1::bvi::Role::Candidate);
    assert!(
        h.sim
            .state()
            .interfaces
            .values()
            .all(|i| i.mac.to_string() != VMAC)
    );
    assert!(
        h.evpnd()
            .lines()
            .iter()
            .any(|l| l.contains("heal-finished"))
    );
    run_op(&mut c, Op::Bind).await.unwrap();
    assert_consistent(&h, &mut c, "after retry").await;
}
