//! evpnd with a failing or lost state store, against vppsim and a real BIRD
//! 2.20: a write whose save fails leaves nothing behind in VPP or BIRD (the
//! `<state-dir>/.fault` hook), and a deleted state file never removes a
//! live gateway.
mod common;

use std::path::PathBuf;

use common::{Host, T, create_req};
use evpn_api::v1;
use evpn_testkit::metric_value;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const VMAC: &str = "42:6c:fa:d6:82:98";

fn state_dir(h: &Host) -> PathBuf {
    h.dir.path().join("state")
}

async fn health(h: &Host) -> ServingStatus {
    let ch = tonic::transport::Endpoint::from_shared(h.evpnd().grpc_url().unwrap())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let st = HealthClient::new(ch)
        .check(HealthCheckRequest {
            service: "evpn.v1.Evpnd".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    ServingStatus::try_from(st).unwrap()
}

fn store_healthy(h: &Host) -> Option<f64> {
    let text = evpn_testkit::http_get(&h.evpnd().metrics_addr().unwrap(), "/metrics")
        .unwrap()
        .1;
    metric_value(&text, "evpnd_store_healthy", &[])
}

/// A CreateEvpnInstance whose state save fails (ENOSPC) is rolled back: no
/// bridge domain, no loopback, no BIRD snippet remain (before the fix they
/// stayed until the next reconcile). The store reports unhealthy until the
/// disk takes writes again, then the same create succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_state_save_rolls_back_create_evpn_instance() {
    let mut h = Host::new("failed_state_save_rolls_back_create_evpn_instance", "r1").await;
    h.start_evpnd();
    let mut c = h.client().await;
    c.create_evpn_instance(create_req("blue", 200))
        .await
        .unwrap();
    c.create_bvi(v1::CreateBviRequest {
        slug: "blue".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let before = h.sim.state();
    std::fs::write(state_dir(&h).join(".fault"), "enospc").unwrap();
    let e = c
        .create_evpn_instance(create_req("test", 100))
        .await
        .expect_err("the save fails");
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(e.message().contains("No space left on device"), "{e:?}");
    // Nothing of "test" is left in VPP or BIRD.
    let st = h.sim.state();
    assert_eq!(st.bridge_domains, before.bridge_domains);
    assert_eq!(st.interfaces, before.interfaces);
    assert!(h.snippet("test").is_none(), "live snippet left behind");
    assert!(h.snippet("blue").is_some());
    // A standalone bind that cannot be saved is released again: a restart
    // from the file would not hold the gateway, so the host does not either.
    let e = c
        .bind_group_bvi(v1::HostBindGroupBviRequest {
            slug: "blue".into(),
            group_id: "blue".into(),
            vmac: VMAC.into(),
            addresses: vec![v1::Prefix {
                address: "172.16.0.32".into(),
                prefix_len: 24,
            }],
            ..Default::default()
        })
        .await
        .expect_err("the save fails");
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    let st = h.sim.state();
    assert!(
        st.interfaces
            .values()
            .all(|i| i.mac.to_string() != VMAC && i.addresses.is_empty()),
        "{st:?}"
    );
    let list = c
        .list_evpn_instances(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.evpn_instances.len(), 1, "{list:?}");
    // Loud: event, metric, health.
    h.evpnd().wait_log("state-store-failed", T).unwrap();
    assert_eq!(store_healthy(&h), Some(0.0));
    assert_eq!(health(&h).await, ServingStatus::NotServing);
    // The disk is freed: the store recovers by itself, the create works.
    std::fs::remove_file(state_dir(&h).join(".fault")).unwrap();
    h.evpnd().wait_log("state-store-recovered", T).unwrap();
    assert_eq!(store_healthy(&h), Some(1.0));
    assert_eq!(health(&h).await, ServingStatus::Serving);
    c.create_evpn_instance(create_req("test", 100))
        .await
        .unwrap();
    assert!(h.snippet("test").is_some());
}

/// A bound host whose state file was deleted keeps its gateway across a
/// restart: the managed objects are recognised, nothing is removed, writes
/// are refused and the problem is reported (before the fix the reconcile
/// removed them as orphans, and the vMAC with them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_state_file_never_drops_the_gateway() {
    let mut h = Host::new("deleted_state_file_never_drops_the_gateway", "r1").await;
    h.start_evpnd();
    let mut c = h.client().await;
    c.create_evpn_instance(create_req("test", 100))
        .await
        .unwrap();
    c.create_bvi(v1::CreateBviRequest {
        slug: "test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.bind_group_bvi(v1::HostBindGroupBviRequest {
        slug: "test".into(),
        group_id: "test".into(),
        vmac: VMAC.into(),
        addresses: vec![v1::Prefix {
            address: "172.16.0.32".into(),
            prefix_len: 24,
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    drop(c);
    let mut d = h.evpnd.take().unwrap();
    d.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(d.wait_exit(T).unwrap(), Some(0));
    drop(d);
    std::fs::remove_file(state_dir(&h).join("state.json")).unwrap();
    let before = h.sim.state();
    h.sim.clear_journal();
    h.start_evpnd();
    h.evpnd().wait_log("state-file-missing", T).unwrap();
    // The gateway is still there, untouched.
    let st = h.sim.state();
    let gw = st
        .interfaces
        .values()
        .find(|i| i.mac.to_string() == VMAC)
        .expect("the vMAC is still on the BVI");
    assert_eq!(gw.addresses.len(), 1, "{gw:?}");
    assert_eq!(st, before);
    assert!(h.changes().is_empty(), "{:?}", h.changes());
    assert!(h.snippet("test").is_some());
    // Reported (gRPC health follows the store's state through a watch
    // channel: wait for it), and writes refused until an operator resolves it.
    evpn_testkit::eventually("gRPC health NOT_SERVING", T, async || {
        health(&h).await == ServingStatus::NotServing
    })
    .await
    .unwrap();
    assert_eq!(store_healthy(&h), Some(0.0));
    let e = h
        .client()
        .await
        .create_evpn_instance(create_req("blue", 200))
        .await
        .expect_err("writes are refused");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("state file"), "{e:?}");
    assert_eq!(h.sim.state(), before);
}
