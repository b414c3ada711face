//! evpnd against vppsim and a real BIRD 2.20: every RPC, the bind/release
//! step order from the vppsim journal, validation that changes nothing,
//! restarts with zero state-changing VPP calls, and reads while VPP hangs.
mod common;

use std::time::Duration;

use common::{HOST_MAC, Host, T, VMAC, bind_req, create_req};
use evpn_api::v1;

fn pos(v: &[String], m: &str) -> usize {
    v.iter()
        .position(|x| x == m)
        .unwrap_or_else(|| panic!("{m} not in {v:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_against_vppsim_and_real_bird() {
    let mut h = Host::new("every_rpc_against_vppsim_and_real_bird", "dpu0-ddln0").await;
    h.start_evpnd();
    let mut c = h.client().await;
    let mut events = c
        .watch_events(v1::WatchEventsRequest {
            types: vec!["crud".into(), "failover".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    // Create the eVPN: bridge domain + snippet.
    let e = c
        .create_evpn_instance(create_req("test", 100))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (e.vni, e.rd.as_str(), e.enabled),
        (100, "192.0.2.1:100", true)
    );
    assert_eq!(e.import_route_targets, vec!["65000:100"]);
    assert!(
        h.sim
            .state()
            .bridge_domains
            .contains_key(&e.bridge_domain_id)
    );
    let snip = h.snippet("test").expect("snippet written");
    assert!(
        snip.contains("protocol evpn evpn_test") && snip.contains("protocol bridge bridge_test"),
        "{snip}"
    );
    let e2 = c
        .get_evpn_instance(v1::EvpnRef {
            slug: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = e2.protocols.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"evpn_test") && names.contains(&"bridge_test"),
        "{names:?}"
    );
    let dup = c
        .create_evpn_instance(create_req("test", 100))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), tonic::Code::AlreadyExists);
    assert_eq!(
        c.list_evpn_instances(v1::InstanceRef::default())
            .await
            .unwrap()
            .into_inner()
            .evpn_instances
            .len(),
        1
    );

    // The BVI: loopback with the MAC, MTU, up, BVI of the bridge domain, linux-cp pair.
    let b = c
        .create_bvi(v1::CreateBviRequest {
            slug: "test".into(),
            mac: HOST_MAC.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (b.mac.as_str(), b.role()),
        (HOST_MAC, v1::bvi::Role::Candidate)
    );
    assert_eq!(b.interface_name, "bvi-test");
    let st = h.sim.state();
    let lo = st
        .interface_by_name(&format!("loop{}", e.bridge_domain_id))
        .expect("loopback");
    assert_eq!(lo.mac.to_string(), HOST_MAC);
    assert!(lo.admin_up);
    assert_eq!(lo.mtu[0], 1500);
    assert_eq!(
        st.bridge_domains[&e.bridge_domain_id].bvi,
        Some(lo.sw_if_index),
        "{st:?}"
    );
    assert!(
        st.lcp_pairs.iter().any(|p| p.host_if_name == "bvi-test"),
        "{:?}",
        st.lcp_pairs
    );
    let ll: evpn_model::Mac = HOST_MAC.parse().unwrap();
    assert_eq!(lo.ip6_link_local, Some(ll.link_local()));
    // The pair is created after MAC and MTU.
    let ch = h.changes();
    assert!(
        pos(&ch, "sw_interface_set_mtu") < pos(&ch, "lcp_itf_pair_add_del_v3"),
        "{ch:?}"
    );

    // Bind after the evidence wait (real BIRD: no other VTEP announces the
    // vMAC, so one look): MAC and link-local -> addresses last; then GARP/NA.
    h.sim.clear_journal();
    let settle = evpn_daemon::settle::SettlePolicy {
        min_settle: Duration::ZERO,
        max_wait: Duration::from_secs(2),
        poll_interval: Duration::from_millis(1),
        require_evidence: true,
        clear_hold: Duration::ZERO,
        since_withdrawal: None,
    };
    let b = c
        .bind_group_bvi(v1::HostBindGroupBviRequest {
            settle: Some(evpn_daemon::settle::policy_to_proto(&settle)),
            ..bind_req()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((b.mac.as_str(), b.role()), (VMAC, v1::bvi::Role::Primary));
    let o = b.settle.expect("the answer reports the wait");
    assert_eq!(
        (o.result(), o.polls),
        (v1::settle_outcome::Result::Evidence, 1),
        "{o:?}"
    );
    let ch = h.changes();
    assert_eq!(
        ch,
        vec![
            "sw_interface_set_mac_address",
            "sw_interface_ip6_set_link_local_address",
            "sw_interface_add_del_address",
            "sw_interface_add_del_address"
        ],
        "bind order"
    );
    let lo = h
        .sim
        .state()
        .interface_by_name(&format!("loop{}", e.bridge_domain_id))
        .cloned()
        .unwrap();
    assert_eq!(lo.mac.to_string(), VMAC);
    assert_eq!(lo.addresses.len(), 2);
    // Announcements follow the bind.
    let arpings = h.announced(4).await;
    assert_eq!(arpings, 4, "two rounds of GARP + NA");
    // Idempotent: the same bind changes nothing (and, not asked, reports no
    // wait).
    h.sim.clear_journal();
    let again = c.bind_group_bvi(bind_req()).await.unwrap().into_inner();
    assert_eq!(again.settle, None);
    // Not synchronisation: time for a (wrong) announcement or write to show up.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(h.sim.journal().is_empty(), "{:?}", h.sim.journal());
    // Metrics: VPP calls by message and result, eVPN count, BVI role, readiness.
    let (_, m) = evpn_testkit::http_get(&h.evpnd().metrics_addr().unwrap(), "/metrics").unwrap();
    let mv = |name: &str, labels: &[&str]| evpn_testkit::metric_value(&m, name, labels);
    assert!(
        mv(
            "evpnd_vpp_api_calls_total",
            &["msg=\"sw_interface_set_mac_address\"", "result=\"ok\""]
        )
        .unwrap()
            >= 1.0,
        "{m}"
    );
    assert_eq!(mv("evpnd_evpn_instances", &[]), Some(1.0), "{m}");
    assert_eq!(
        mv("evpnd_bvi_role", &["evpn=\"test\"", "role=\"primary\""]),
        Some(1.0),
        "{m}"
    );
    assert_eq!(mv("evpnd_ready", &[]), Some(1.0), "{m}");
    assert_eq!(mv("evpnd_vpp_connected", &[]), Some(1.0), "{m}");
    assert!(
        mv("evpnd_bird_applies_total", &["result=\"ok\""]).unwrap() >= 1.0,
        "{m}"
    );
    assert!(
        mv(
            "evpnd_grpc_requests_total",
            &["method=\"BindGroupBVI\"", "code=\"OK\""]
        )
        .unwrap()
            >= 2.0,
        "{m}"
    );
    let ann = c
        .get_mac_announcers(v1::GetMacAnnouncersRequest {
            slug: "test".into(),
            mac: VMAC.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ann.local && ann.vteps.is_empty(), "{ann:?}");

    // Release: addresses first -> MAC -> link-local.
    h.sim.clear_journal();
    let b = c
        .release_group_bvi(v1::HostReleaseGroupBviRequest {
            slug: "test".into(),
            group_id: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (b.mac.as_str(), b.role()),
        (HOST_MAC, v1::bvi::Role::Candidate)
    );
    let ch = h.changes();
    assert_eq!(
        ch,
        vec![
            "sw_interface_add_del_address",
            "sw_interface_add_del_address",
            "sw_interface_set_mac_address",
            "sw_interface_ip6_set_link_local_address"
        ],
        "release order"
    );
    h.sim.clear_journal();
    c.release_group_bvi(v1::HostReleaseGroupBviRequest {
        slug: "test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(h.changes().is_empty(), "release is idempotent");
    assert!(h.sim.check_mac_exclusive(Some(VMAC)).is_ok());

    // Replace: MTU.
    let b = c
        .replace_bvi(v1::ReplaceBviRequest {
            slug: "test".into(),
            mac: HOST_MAC.into(),
            mtu: 9000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(b.mtu, 9000);
    assert_eq!(
        c.list_bv_is(v1::InstanceRef::default())
            .await
            .unwrap()
            .into_inner()
            .bvis
            .len(),
        1
    );
    assert_eq!(
        c.get_bvi(v1::EvpnRef {
            slug: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .mtu,
        9000
    );

    // Disable: rendered into the stanza, BVI detached.
    h.sim.clear_journal();
    let e3 = c
        .set_evpn_instance_enabled(v1::SetEnabledRequest {
            slug: "test".into(),
            enabled: false,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!e3.enabled);
    assert!(h.snippet("test").unwrap().contains("disabled;"));
    assert_eq!(h.changes(), vec!["sw_interface_set_l2_bridge"]);
    c.set_evpn_instance_enabled(v1::SetEnabledRequest {
        slug: "test".into(),
        enabled: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(!h.snippet("test").unwrap().contains("disabled;"));

    // Info RPCs.
    let vpp = c
        .get_vpp_info(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(vpp.health(), v1::Health::Ok);
    assert_eq!(vpp.version, "25.10-release");
    assert!(vpp.linux_cp && vpp.missing_messages.is_empty());
    let bird = c
        .get_bird_info(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bird.health(), v1::Health::Ok);
    assert_eq!(bird.dialect, "linux");
    assert!(bird.version.starts_with("2.20"), "{bird:?}");
    assert_eq!(bird.protocols.len(), 2, "{bird:?}");
    let me = c
        .get_instance(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner();
    assert!(me.ready);
    assert_eq!(
        (me.vpp(), me.bird(), me.evpn_count),
        (v1::Health::Ok, v1::Health::Ok, 1)
    );

    // Delete: BVI then eVPN; nothing is left.
    c.delete_bvi(v1::EvpnRef {
        slug: "test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        c.get_bvi(v1::EvpnRef {
            slug: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap_err()
        .code(),
        tonic::Code::NotFound
    );
    c.delete_evpn_instance(v1::EvpnRef {
        slug: "test".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let st = h.sim.state();
    assert!(
        st.bridge_domains.is_empty() && st.lcp_pairs.is_empty(),
        "{st:?}"
    );
    assert!(
        !st.interfaces.values().any(|i| i.name.starts_with("loop")),
        "{st:?}"
    );
    assert!(h.snippet("test").is_none());

    // The event stream saw the CRUD and failover events in order.
    let mut seen = Vec::new();
    while seen.len() < 9 {
        let ev = tokio::time::timeout(T, events.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(ev.instance, "dpu0-ddln0");
        seen.push(ev.message);
    }
    assert_eq!(
        seen,
        [
            "evpn-created",
            "bvi-created",
            "groupbvi-bound",
            "groupbvi-released",
            "bvi-replaced",
            "evpn-disabled",
            "evpn-enabled",
            "bvi-deleted",
            "evpn-deleted",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_naming_the_field_and_changes_nothing() {
    let mut h = Host::new(
        "bad_input_is_rejected_naming_the_field_and_changes_nothing",
        "r1",
    )
    .await;
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
    h.sim.clear_journal();
    let files_before = std::fs::read_dir(&h.bird.include).unwrap().count();
    let cases: Vec<(tonic::Status, &str)> = vec![
        (
            c.create_evpn_instance(create_req("Bad;slug", 5))
                .await
                .unwrap_err(),
            "slug",
        ),
        (
            c.create_evpn_instance(create_req("x\"}", 5))
                .await
                .unwrap_err(),
            "slug",
        ),
        (
            c.create_evpn_instance(create_req("ok", 0))
                .await
                .unwrap_err(),
            "vni",
        ),
        (
            c.create_evpn_instance(create_req("ok", 1 << 24))
                .await
                .unwrap_err(),
            "vni",
        ),
        (
            c.create_evpn_instance(v1::CreateEvpnInstanceRequest {
                rd: "1:2\"; }".into(),
                ..create_req("ok", 5)
            })
            .await
            .unwrap_err(),
            "rd",
        ),
        (
            c.create_evpn_instance(v1::CreateEvpnInstanceRequest {
                import_route_targets: vec!["65000:1; protocol static x {}".into()],
                ..create_req("ok", 5)
            })
            .await
            .unwrap_err(),
            "import",
        ),
        (
            c.create_evpn_instance(v1::CreateEvpnInstanceRequest {
                mtu: 100,
                ..create_req("ok", 5)
            })
            .await
            .unwrap_err(),
            "mtu",
        ),
        (
            c.create_evpn_instance(create_req("other", 100))
                .await
                .unwrap_err(),
            "vni",
        ),
        (
            c.bind_group_bvi(v1::HostBindGroupBviRequest {
                settle: Some(v1::SettleWait {
                    max_wait: None,
                    ..evpn_daemon::settle::policy_to_proto(&evpn_daemon::settle::SettlePolicy {
                        min_settle: Duration::ZERO,
                        max_wait: Duration::from_secs(1),
                        poll_interval: Duration::from_millis(1),
                        require_evidence: false,
                        clear_hold: Duration::ZERO,
                        since_withdrawal: None,
                    })
                }),
                ..bind_req()
            })
            .await
            .unwrap_err(),
            "settle.max_wait",
        ),
        (
            c.bind_group_bvi(v1::HostBindGroupBviRequest {
                vmac: "01:00:5e:00:00:01".into(),
                ..bind_req()
            })
            .await
            .unwrap_err(),
            "vmac",
        ),
        (
            c.bind_group_bvi(v1::HostBindGroupBviRequest {
                addresses: vec![v1::Prefix {
                    address: "172.16.0.32".into(),
                    prefix_len: 33,
                }],
                ..bind_req()
            })
            .await
            .unwrap_err(),
            "addresses[0]",
        ),
        (
            c.create_bvi(v1::CreateBviRequest {
                slug: "test".into(),
                mac: "zz".into(),
                ..Default::default()
            })
            .await
            .unwrap_err(),
            "mac",
        ),
    ];
    for (st, field) in cases {
        assert_eq!(st.code(), tonic::Code::InvalidArgument, "{field}: {st:?}");
        assert!(st.message().contains(field), "{field}: {}", st.message());
    }
    let nf = c
        .get_evpn_instance(v1::EvpnRef {
            slug: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(nf.code(), tonic::Code::NotFound);
    let pre = c
        .create_bvi(v1::CreateBviRequest {
            slug: "nobvi".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(pre.code(), tonic::Code::FailedPrecondition);
    assert!(
        h.sim.journal().is_empty(),
        "invalid requests changed VPP: {:?}",
        h.sim.journal()
    );
    assert_eq!(
        std::fs::read_dir(&h.bird.include).unwrap().count(),
        files_before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_restart_makes_zero_state_changing_vpp_calls() {
    let mut h = Host::new("clean_restart_makes_zero_state_changing_vpp_calls", "r1").await;
    h.start_evpnd();
    let mut c = h.client().await;
    for (slug, vni) in [("test", 100), ("blue", 200)] {
        c.create_evpn_instance(create_req(slug, vni)).await.unwrap();
        c.create_bvi(v1::CreateBviRequest {
            slug: slug.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    c.bind_group_bvi(bind_req()).await.unwrap();
    h.announced(4).await; // both rounds of the bind's announcements are out
    let before = h.sim.state();
    drop(c);
    let mut d = h.evpnd.take().unwrap();
    d.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(d.wait_exit(T).unwrap(), Some(0));
    drop(d);
    h.sim.clear_journal();
    h.start_evpnd();
    assert!(
        h.sim.journal().is_empty(),
        "restart changed VPP: {:?}",
        h.sim.journal()
    );
    assert_eq!(h.sim.state(), before);
    let mut c = h.client().await;
    let b = c
        .get_bvi(v1::EvpnRef {
            slug: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((b.mac.as_str(), b.addresses.len()), (VMAC, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_answer_while_a_vpp_call_hangs() {
    let mut h = Host::new("reads_answer_while_a_vpp_call_hangs", "r1").await;
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
    h.sim.faults().hang("sw_interface_set_mac_address");
    let mut w = c.clone();
    let write = tokio::spawn(async move { w.bind_group_bvi(bind_req()).await });
    // Not synchronisation: time passes to show the write does not finish (VPP swallows it).
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The write is stuck on VPP; reads still answer (from the snapshot).
    assert!(!write.is_finished());
    let l = c
        .list_evpn_instances(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(l.evpn_instances.len(), 1);
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
        !write.is_finished(),
        "reads must not wait for the stuck write"
    );
    // The write times out with DEADLINE_EXCEEDED (vpp.timeout is 2 s), never hangs.
    let r = tokio::time::timeout(T, write).await.unwrap().unwrap();
    assert_eq!(r.unwrap_err().code(), tonic::Code::DeadlineExceeded);
    h.sim.faults().reset();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_never_disturbs_the_host() {
    let mut h = Host::new("an_unreachable_registry_never_disturbs_the_host", "r1").await;
    // A port nobody listens on: registration fails and is retried with back-off.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let cfg = h.config().replace(
        "evpnd:\n",
        &format!("evpnd:\n  registry: 127.0.0.1:{port}\n"),
    );
    let path = h.dir.path().join("evpnd.yaml");
    std::fs::write(&path, cfg).unwrap();
    let d = evpn_testkit::Daemon::spawn(common::BIN, &["--config", path.to_str().unwrap()], &[])
        .unwrap();
    d.wait_log("reconcile-finished", T).unwrap();
    let v = d.wait_log("registry-register-failed", T).unwrap();
    assert_eq!(v["level"], "WARN");
    h.evpnd = Some(d);
    // Writes by hand are refused on a managed evpnd; these act as its registry.
    let mut c = h.registry_client(1).await;
    c.create_evpn_instance(create_req("test", 100))
        .await
        .unwrap();
    let me = c
        .get_instance(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner();
    assert!(me.ready && !me.registered, "{me:?}");
    assert_eq!(me.registry_address, format!("127.0.0.1:{port}"));
}

/// A caller that gives up in the middle of a bind (a client deadline, or
/// evpnr killed mid-move) must not cut the bind between its VPP steps: the
/// bind finishes, the record says so, and a release afterwards finds and
/// undoes all of it (otherwise the vMAC stays in VPP unrecorded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_whose_caller_gives_up_still_completes() {
    let mut h = Host::new("a_bind_whose_caller_gives_up_still_completes", "r1").await;
    h.start_evpnd();
    let mut c = h.client().await;
    let evpn = c
        .create_evpn_instance(create_req("test", 100))
        .await
        .unwrap()
        .into_inner();
    c.create_bvi(v1::CreateBviRequest {
        slug: "test".into(),
        mac: HOST_MAC.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    h.sim.clear_journal();
    // Every VPP call takes 40 ms; the caller gives up after 60 ms, i.e.
    // after the MAC change and before the addresses.
    h.sim.faults().latency("*", Duration::from_millis(40));
    let mut req = tonic::Request::new(bind_req());
    req.set_timeout(Duration::from_millis(60));
    let e = c.bind_group_bvi(req).await.unwrap_err();
    assert!(
        matches!(
            e.code(),
            tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
        ),
        "the caller gave up: {e:?}"
    );
    let get = || {
        let mut c = c.clone();
        async move {
            c.get_bvi(v1::EvpnRef {
                slug: "test".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
        }
    };
    let b = evpn_testkit::eventually("the BVI primary", T, async || {
        let b = get().await;
        if b.role() == v1::bvi::Role::Primary {
            Ok(b)
        } else {
            Err(format!("{b:?}"))
        }
    })
    .await
    .unwrap();
    assert_eq!((b.mac.as_str(), b.role()), (VMAC, v1::bvi::Role::Primary));
    assert_eq!(
        h.changes(),
        vec![
            "sw_interface_set_mac_address",
            "sw_interface_ip6_set_link_local_address",
            "sw_interface_add_del_address",
            "sw_interface_add_del_address"
        ],
        "the whole bind ran"
    );
    // The release that follows undoes all of it.
    h.sim.faults().reset();
    let r = c
        .release_group_bvi(v1::HostReleaseGroupBviRequest {
            slug: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.mac.as_str(), r.role()),
        (HOST_MAC, v1::bvi::Role::Candidate)
    );
    let lo = h
        .sim
        .state()
        .interface_by_name(&format!("loop{}", evpn.bridge_domain_id))
        .cloned()
        .unwrap();
    assert_eq!(lo.mac.to_string(), HOST_MAC);
    assert!(lo.addresses.is_empty(), "{:?}", lo.addresses);
}
