//! Who may register as which instance, and who an evpnd obeys (issue: "never
//! two holders, whatever the input"): a registration cannot take over a live
//! instance's ID; evpnr never trusts an evpnd that is not the instance it
//! registered; a managed evpnd refuses state-changing calls that do not come
//! from its registry's current epoch; liveness comes from heartbeats and a
//! member known to be unresponsive costs no member timeout.
mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Fleet, serial, wait_for};
use evpn_api::v1::{self, evpnd_client::EvpndClient};
use evpn_daemon::identity::{CallIdentity, NOT_AFTER_KEY};
use tonic::Code;

const A: &str = "dpu0-ddln0";
const B: &str = "dpu0-chplo0";

fn register(id: &str, addr: &str, force: bool) -> v1::RegisterInstanceRequest {
    v1::RegisterInstanceRequest {
        instance_id: id.into(),
        grpc_address: addr.into(),
        version: "test".into(),
        ready: true,
        force,
        registry_epoch: 0,
    }
}

async fn instance(f: &Fleet, id: &str) -> v1::Instance {
    f.client()
        .await
        .list_instances(v1::Empty {})
        .await
        .unwrap()
        .into_inner()
        .instances
        .into_iter()
        .find(|i| i.instance_id == id)
        .unwrap()
}

async fn evpnd(f: &Fleet, id: &str) -> EvpndClient<tonic::transport::Channel> {
    EvpndClient::connect(format!("http://{}", f.host(id).addr()))
        .await
        .unwrap()
}

/// A's ID registered at B's address while A is alive is refused, and the
/// fleet is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_cannot_take_over_a_live_instance() {
    let _s = serial().await;
    let mut f = Fleet::new("registration_cannot_take_over_a_live_instance", &[A, B]).await;
    f.start_all().await;
    let vmac = f.test_group(Some(A)).await;
    let mut c = f.client().await;
    let e = c
        .register_instance(register(A, &f.host(B).addr(), false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("still answers"), "{e:?}");
    let i = instance(&f, A).await;
    assert_eq!(i.grpc_address, f.host(A).addr());
    // Addresses that are not host:port are refused at the edge.
    for bad in ["user@127.0.0.1:1", "127.0.0.1:1/path", "http://127.0.0.1:1"] {
        let e = c
            .register_instance(register("dpu9-x", bad, false))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad}: {e:?}");
        assert!(e.message().contains("grpc_address"), "{e:?}");
    }
    assert!(f.host(A).holds(&vmac) && !f.host(B).holds(&vmac));
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
}

/// With A dead (its address refuses connections) its ID may move, but an
/// evpnd that answers as another instance is never used as A: B gets
/// nothing of A's, and A is reported unreachable with the mismatch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evpnd_that_is_not_the_instance_is_never_trusted() {
    let _s = serial().await;
    let mut f = Fleet::new(
        "an_evpnd_that_is_not_the_instance_is_never_trusted",
        &[A, B],
    )
    .await;
    f.start_all().await;
    let vmac = f.test_group(Some(A)).await;
    f.host_mut(A).kill_evpnd();
    let mut c = f.client().await;
    c.register_instance(register(A, &f.host(B).addr(), false))
        .await
        .unwrap();
    wait_for("A reported as an identity mismatch", || async {
        let i = instance(&f, A).await;
        i.last_error.contains("identity mismatch")
            && i.state == v1::instance::State::Unreachable as i32
    })
    .await;
    // B never got A's per-host BVI MAC nor the vMAC.
    let a_mac = f
        .host(A)
        .sim
        .state()
        .interfaces
        .values()
        .find(|i| i.name.starts_with("loop"))
        .map(|i| i.mac.to_string())
        .unwrap();
    assert!(!f.host(B).holds(&vmac));
    assert!(!f.host(B).holds(&a_mac), "B got A's BVI MAC {a_mac}");
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
}

/// An old address that does not answer in time is no proof that it is gone:
/// refused without force, taken over with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_old_address_needs_force() {
    let _s = serial().await;
    let f = Fleet::new("a_silent_old_address_needs_force", &[]).await;
    // Accepts TCP connections (kernel backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let mut c = f.client().await;
    c.register_instance(register("dpu9-ghost", &silent_addr, false))
        .await
        .unwrap();
    let e = c
        .register_instance(register("dpu9-ghost", "127.0.0.1:9", false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("force"), "{e:?}");
    c.register_instance(register("dpu9-ghost", "127.0.0.1:9", true))
        .await
        .unwrap();
    assert_eq!(instance(&f, "dpu9-ghost").await.grpc_address, "127.0.0.1:9");
    drop(silent);
}

/// A managed evpnd obeys only its registry: a hand-made state-changing call
/// (no epoch), a call meant for another instance, a call from an older
/// epoch (a stale registry) and a call that arrives after the registry
/// stopped waiting for it (`evpn-not-after`) are all refused; the
/// registry's own calls work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_evpnd_obeys_only_its_current_registry() {
    let _s = serial().await;
    let mut f = Fleet::new("a_managed_evpnd_obeys_only_its_current_registry", &[A, B]).await;
    f.start_all().await;
    let vmac = f.test_group(Some(A)).await;
    let bind = || v1::HostBindGroupBviRequest {
        instance_id: B.into(),
        slug: "test".into(),
        group_id: "test".into(),
        vmac: vmac.clone(),
        ..Default::default()
    };
    let mut b = evpnd(&f, B).await;
    let e = b.bind_group_bvi(bind()).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("managed by the registry"), "{e:?}");
    let epoch = b
        .get_instance(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner()
        .registry_epoch;
    assert!(epoch >= 1);
    // Meant for A, sent to B.
    let mut r = tonic::Request::new(bind());
    CallIdentity::stamp(r.metadata_mut(), A, epoch);
    let e = b.bind_group_bvi(r).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("meant for instance"), "{e:?}");
    // evpnr restarts: a new epoch, which B learns.
    f.restart_evpnr();
    f.wait_ready(B).await;
    wait_for("B accepted the new epoch", || {
        let mut b = b.clone();
        async move {
            b.get_instance(v1::InstanceRef::default())
                .await
                .is_ok_and(|i| i.into_inner().registry_epoch > epoch)
        }
    })
    .await;
    // A call stamped with the old epoch, as a stale registry would send it.
    let mut r = tonic::Request::new(bind());
    CallIdentity::stamp(r.metadata_mut(), B, epoch);
    let e = b.bind_group_bvi(r).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains(&format!("epoch {epoch}")) && e.message().contains("older"),
        "{e:?}"
    );
    assert!(!f.host(B).holds(&vmac));
    // Calls of the current registry that arrive long after it stopped
    // waiting for them (held by a partition, delivered when it healed):
    // refused before any change — a bind to B, a release of A.
    let now_epoch = b
        .get_instance(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner()
        .registry_epoch;
    let expired = |md: &mut tonic::metadata::MetadataMap, to: &str| {
        CallIdentity::stamp(md, to, now_epoch);
        let past = SystemTime::now() - Duration::from_secs(5);
        let ms = past.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        md.insert(NOT_AFTER_KEY, ms.into());
    };
    let mut r = tonic::Request::new(bind());
    expired(r.metadata_mut(), B);
    let e = b.bind_group_bvi(r).await.unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(e.message().contains("stopped waiting for it"), "{e:?}");
    assert!(!f.host(B).holds(&vmac));
    let mut r = tonic::Request::new(v1::HostReleaseGroupBviRequest {
        instance_id: A.into(),
        slug: "test".into(),
        group_id: "test".into(),
    });
    expired(r.metadata_mut(), A);
    let e = evpnd(&f, A).await.release_group_bvi(r).await.unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(f.host(A).holds(&vmac), "A carried out an expired release");
    // The registry itself still moves the gateway.
    f.client()
        .await
        .move_group_bvi(v1::MoveGroupBviRequest {
            group_id: "test".into(),
            instance_id: B.into(),
            force: false,
        })
        .await
        .unwrap();
    assert!(f.host(B).holds(&vmac) && !f.host(A).holds(&vmac));
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
}

/// A stopped evpnd (SIGSTOP) turns suspect then dead from its heartbeats'
/// age, visibly in ListInstances, metrics and events; a forced move away
/// from it does not wait a member timeout; it is alive again after SIGCONT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_primary_is_seen_by_its_heartbeats() {
    let _s = serial().await;
    let mut f = Fleet::new("a_hung_primary_is_seen_by_its_heartbeats", &[A, B]).await;
    f.start_all().await;
    let vmac = f.test_group(Some(A)).await;
    wait_for("A alive", || async {
        instance(&f, A).await.liveness == v1::instance::Liveness::Alive as i32
    })
    .await;
    let mut events = f
        .client()
        .await
        .watch_events(v1::WatchEventsRequest {
            types: vec!["failover".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let sig = |s| f.host(A).evpnd.as_ref().unwrap().signal(s).unwrap();
    sig(nix::sys::signal::Signal::SIGSTOP);
    wait_for("A suspect", || async {
        instance(&f, A).await.liveness == v1::instance::Liveness::Suspect as i32
    })
    .await;
    let i = instance(&f, A).await;
    assert!(
        i.heartbeat_age.unwrap().seconds >= 3,
        "suspect-after is 3 s: {i:?}"
    );
    assert!(
        evpn_testkit::metric_value(
            &f.metrics(),
            "evpnr_instances_liveness",
            &["state=\"suspect\""]
        ) == Some(1.0)
    );
    // Other failover events may come first (the failover driver's report
    // that the manual group holds, the members' health checks).
    let ev = loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), events.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if ev.message == "instance-suspect" {
            break ev;
        }
    };
    assert_eq!(
        (ev.message.as_str(), ev.level.as_str()),
        ("instance-suspect", "warn")
    );
    assert_eq!(ev.fields["instance"], A);
    // A forced move away from it: the release to A fails at once instead
    // of costing the member timeout (3 s here).
    let t0 = Instant::now();
    f.client()
        .await
        .move_group_bvi(v1::MoveGroupBviRequest {
            group_id: "test".into(),
            instance_id: B.into(),
            force: true,
        })
        .await
        .unwrap();
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(3), "forced move took {took:?}");
    assert!(f.host(B).holds(&vmac));
    wait_for("A dead", || async {
        instance(&f, A).await.liveness == v1::instance::Liveness::Dead as i32
    })
    .await;
    sig(nix::sys::signal::Signal::SIGCONT);
    wait_for("A alive again", || async {
        instance(&f, A).await.liveness == v1::instance::Liveness::Alive as i32
    })
    .await;
    // Back, A is released by the resync (it still held the vMAC).
    wait_for("A released", || async { !f.host(A).holds(&vmac) }).await;
}
