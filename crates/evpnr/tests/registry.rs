//! evpnr on its own (no members): validation with precise codes and no
//! change on bad input, persistence across kill -9, the WatchEvents
//! snapshot, registration of an unreachable member, readiness gating.
use std::time::Duration;

use evpn_api::v1::{self, evpnr_client::EvpnrClient};
use evpn_testkit::{Daemon, metric_value};
use futures::StreamExt;
use tonic::{Code, transport::Channel};

const BIN: &str = env!("CARGO_BIN_EXE_evpnr");
const T: Duration = Duration::from_secs(20);

struct R {
    d: Daemon,
    state: std::path::PathBuf,
}

fn start(state: Option<std::path::PathBuf>) -> R {
    let dir = tempfile::Builder::new()
        .prefix("evpnr-r-")
        .tempdir()
        .unwrap();
    let state = state.unwrap_or_else(|| dir.path().join("state"));
    let s = state.display().to_string();
    let d = Daemon::spawn_in(
        dir,
        BIN,
        &[
            "--grpc-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--state-dir",
            &s,
        ],
        &[],
    )
    .unwrap();
    R { d, state }
}

async fn client(r: &R) -> EvpnrClient<Channel> {
    EvpnrClient::connect(r.d.grpc_url().unwrap()).await.unwrap()
}

fn group(id: &str, vni: u32) -> v1::CreateGroupRequest {
    v1::CreateGroupRequest {
        group_id: id.into(),
        vni,
        ..Default::default()
    }
}

#[tokio::test]
async fn bad_input_gets_precise_codes_and_changes_nothing() {
    let r = start(None);
    let mut c = client(&r).await;
    let cases = [
        (group("Bad", 100), Code::InvalidArgument, "group_id"),
        (group("toolongname", 100), Code::InvalidArgument, "group_id"),
        (group("x;y", 100), Code::InvalidArgument, "group_id"),
        (group("test", 0), Code::InvalidArgument, "vni"),
        (group("test", 1 << 24), Code::InvalidArgument, "vni"),
        (
            v1::CreateGroupRequest {
                mtu: 100,
                ..group("test", 100)
            },
            Code::InvalidArgument,
            "mtu",
        ),
        (
            v1::CreateGroupRequest {
                vmac: "01:00:5e:00:00:01".into(),
                ..group("test", 100)
            },
            Code::InvalidArgument,
            "vmac",
        ),
        (
            v1::CreateGroupRequest {
                import_route_targets: vec!["65000:1; }".into()],
                ..group("test", 100)
            },
            Code::InvalidArgument,
            "import_route_targets[0]",
        ),
    ];
    for (req, code, field) in cases {
        let e = c.create_group(req.clone()).await.unwrap_err();
        assert_eq!(e.code(), code, "{req:?}: {e:?}");
        assert!(e.message().contains(field), "{req:?}: {e:?}");
    }
    assert!(
        c.list_groups(v1::Empty {})
            .await
            .unwrap()
            .into_inner()
            .groups
            .is_empty()
    );
    // A good group; duplicates and misses are precise.
    let g = c
        .create_group(v1::CreateGroupRequest {
            vmac: "42:6C:FA:D6:82:98".into(),
            import_route_targets: vec!["65000:100".into()],
            ..group("test", 100)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((g.vmac.as_str(), g.mtu), ("42:6c:fa:d6:82:98", 1500));
    assert_eq!(
        c.create_group(group("test", 200)).await.unwrap_err().code(),
        Code::AlreadyExists
    );
    assert_eq!(
        c.create_group(group("other", 100))
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    let e = c
        .add_group_member(v1::GroupMemberRequest {
            group_id: "test".into(),
            instance_id: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = c
        .move_group_bvi(v1::MoveGroupBviRequest {
            group_id: "nope".into(),
            instance_id: "a".into(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = c
        .add_group_bvi_address(v1::GroupBviAddAddressRequest {
            group_id: "test".into(),
            address: Some(v1::Prefix {
                address: "172.16.0.32".into(),
                prefix_len: 24,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "no GroupBVI yet: {e:?}");
    c.create_group_bvi(v1::GroupBviRequest {
        group_id: "test".into(),
        addresses: vec![],
    })
    .await
    .unwrap();
    let e = c
        .add_group_bvi_address(v1::GroupBviAddAddressRequest {
            group_id: "test".into(),
            address: Some(v1::Prefix {
                address: "fe80::1".into(),
                prefix_len: 64,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = c
        .get_bvi(v1::EvpnRef {
            instance_id: "nobody".into(),
            slug: "test".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
}

#[tokio::test]
async fn acknowledged_changes_survive_kill_9() {
    // The state lives outside both daemons' temp dirs.
    let keep = tempfile::Builder::new()
        .prefix("evpnr-st-")
        .tempdir()
        .unwrap();
    let r = start(Some(keep.path().join("state")));
    let mut c = client(&r).await;
    c.create_group(group("test", 100)).await.unwrap();
    c.create_group_bvi(v1::GroupBviRequest {
        group_id: "test".into(),
        addresses: vec![v1::Prefix {
            address: "172.16.0.32".into(),
            prefix_len: 24,
        }],
    })
    .await
    .unwrap();
    c.add_group_bvi_address(v1::GroupBviAddAddressRequest {
        group_id: "test".into(),
        address: Some(v1::Prefix {
            address: "fec0::32".into(),
            prefix_len: 64,
        }),
    })
    .await
    .unwrap();
    let before = c
        .get_group(v1::GroupRef {
            group_id: "test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let state = r.state.clone();
    r.d.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
    drop(r);
    let r2 = start(Some(state));
    let mut c = client(&r2).await;
    let after = c
        .get_group(v1::GroupRef {
            group_id: "test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before, after);
    r2.d.wait_log("state-loaded", T).unwrap();
}

#[tokio::test]
async fn watch_events_snapshot_then_live_crud_events() {
    let r = start(None);
    let mut c = client(&r).await;
    c.create_group(group("test", 100)).await.unwrap();
    let mut s = c
        .watch_events(v1::WatchEventsRequest {
            snapshot: true,
            types: vec!["crud".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let e = s.next().await.unwrap().unwrap();
    assert_eq!(
        (e.r#type.as_str(), e.message.as_str()),
        ("snapshot", "group")
    );
    assert_eq!(e.fields["group"], "test");
    let e = s.next().await.unwrap().unwrap();
    assert_eq!(e.message, "end-of-snapshot");
    c.create_group(group("two", 200)).await.unwrap();
    let e = tokio::time::timeout(T, s.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (e.r#type.as_str(), e.message.as_str()),
        ("crud", "group-created")
    );
    assert_eq!(
        (e.instance.as_str(), e.fields["group"].as_str()),
        ("", "two")
    );
    // An instance filter that excludes evpnr's own records sees no groups.
    let mut s2 = c
        .watch_events(v1::WatchEventsRequest {
            snapshot: true,
            instances: vec!["someone".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s2.next().await.unwrap().unwrap().message, "end-of-snapshot");
}

#[tokio::test]
async fn unreachable_member_is_registered_but_never_configured() {
    let r = start(None);
    let mut c = client(&r).await;
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let resp = c
        .register_instance(v1::RegisterInstanceRequest {
            instance_id: "ghost".into(),
            grpc_address: format!("127.0.0.1:{port}"),
            version: "0.1.0".into(),
            ready: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(resp.new_instance);
    let e = c
        .register_instance(v1::RegisterInstanceRequest {
            instance_id: "ghost".into(),
            grpc_address: "nowhere".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let l = evpn_testkit::eventually("ghost reported unreachable", T, async || {
        let l = c.list_instances(v1::Empty {}).await.unwrap().into_inner();
        if l.instances[0].state == v1::instance::State::Unreachable as i32 {
            Ok(l)
        } else {
            Err(format!("{l:?}"))
        }
    })
    .await
    .unwrap();
    assert!(!l.instances[0].last_error.is_empty());
    c.create_group(group("test", 100)).await.unwrap();
    let e = c
        .add_group_member(v1::GroupMemberRequest {
            group_id: "test".into(),
            instance_id: "ghost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = c
        .list_bv_is(v1::InstanceRef {
            instance_id: "ghost".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    let st = c
        .get_instance_status(v1::InstanceRef {
            instance_id: "ghost".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(st.memberships.is_empty());
    let body = evpn_testkit::http_get(&r.d.metrics_addr().unwrap(), "/metrics")
        .unwrap()
        .1;
    assert_eq!(
        metric_value(&body, "evpnr_instances", &["state=\"unreachable\""]),
        Some(1.0),
        "{body}"
    );
    // Forgetting it works although it cannot be reached.
    c.delete_instance(v1::InstanceRef {
        instance_id: "ghost".into(),
    })
    .await
    .unwrap();
    assert!(
        c.list_instances(v1::Empty {})
            .await
            .unwrap()
            .into_inner()
            .instances
            .is_empty()
    );
}

fn v4(a: &str, l: u32) -> v1::Prefix {
    v1::Prefix {
        address: a.into(),
        prefix_len: l,
    }
}

/// Issue 13 item 5: an address set is checked whole before it is stored;
/// an overlap is refused naming the field and the address it overlaps.
#[tokio::test]
async fn overlapping_gateway_addresses_are_refused_before_they_are_stored() {
    let r = start(None);
    let mut c = client(&r).await;
    c.create_group(group("test", 100)).await.unwrap();
    let e = c
        .create_group_bvi(v1::GroupBviRequest {
            group_id: "test".into(),
            addresses: vec![v4("172.16.0.32", 24), v4("172.16.0.32", 25)],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains("addresses[1]") && e.message().contains("172.16.0.32/24"),
        "{e:?}"
    );
    let e = c
        .create_group_bvi(v1::GroupBviRequest {
            group_id: "test".into(),
            addresses: vec![v4("fec0::32", 64), v4("fec0::32", 64)],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "duplicates: {e:?}");
    let g = c
        .get_group(v1::GroupRef {
            group_id: "test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(g.group_bvi.is_none(), "stored after a refusal: {g:?}");

    c.create_group_bvi(v1::GroupBviRequest {
        group_id: "test".into(),
        addresses: vec![v4("172.16.0.32", 24)],
    })
    .await
    .unwrap();
    for bad in [
        v4("172.16.0.32", 25),
        v4("172.16.0.40", 28),
        v4("172.16.0.1", 16),
    ] {
        let e = c
            .add_group_bvi_address(v1::GroupBviAddAddressRequest {
                group_id: "test".into(),
                address: Some(bad.clone()),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{bad:?}: {e:?}");
        assert!(
            e.message().starts_with("address:") && e.message().contains("172.16.0.32/24"),
            "{bad:?}: {e:?}"
        );
    }
    // A second address of the same subnet and length is what VPP allows.
    c.add_group_bvi_address(v1::GroupBviAddAddressRequest {
        group_id: "test".into(),
        address: Some(v4("172.16.0.33", 24)),
    })
    .await
    .unwrap();
    let g = c
        .get_group(v1::GroupRef {
            group_id: "test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let got: Vec<String> = g
        .group_bvi
        .unwrap()
        .addresses
        .iter()
        .map(|p| format!("{}/{}", p.address, p.prefix_len))
        .collect();
    assert_eq!(got, ["172.16.0.32/24", "172.16.0.33/24"]);
}

/// Issue 13 item 4: two groups may share a vMAC only where their broadcast
/// domains cannot meet; the refusal names the other group and why.
#[tokio::test]
async fn a_vmac_is_refused_where_broadcast_domains_can_meet() {
    let r = start(None);
    let mut c = client(&r).await;
    let vmac = "42:6c:fa:d6:82:98";
    c.create_group(v1::CreateGroupRequest {
        vmac: vmac.into(),
        import_route_targets: vec!["65000:1".into()],
        export_route_targets: vec!["65000:1".into()],
        ..group("first", 100)
    })
    .await
    .unwrap();
    // An import target in common: refused.
    let e = c
        .create_group(v1::CreateGroupRequest {
            vmac: vmac.to_uppercase(),
            import_route_targets: vec!["65000:1".into()],
            export_route_targets: vec!["65000:2".into()],
            ..group("second", 200)
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let m = e.message();
    assert!(
        m.starts_with("vmac:") && m.contains("group first") && m.contains("65000:1"),
        "{e:?}"
    );
    // Disjoint route targets: allowed.
    c.create_group(v1::CreateGroupRequest {
        vmac: vmac.into(),
        import_route_targets: vec!["65000:3".into()],
        export_route_targets: vec!["65000:3".into()],
        ..group("second", 200)
    })
    .await
    .unwrap();
    let l = c.list_groups(v1::Empty {}).await.unwrap().into_inner();
    assert_eq!(l.groups.len(), 2);
}

// ---- issue 13 items 6-8: one validation layer, bounded input ----

fn p(address: &str, prefix_len: u32) -> v1::Prefix {
    v1::Prefix {
        address: address.into(),
        prefix_len,
    }
}

/// An INVALID_ARGUMENT naming `field`, with a message short enough for any
/// gRPC metadata limit.
fn assert_invalid(e: &tonic::Status, field: &str) {
    assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
    assert!(
        e.message().starts_with(&format!("invalid {field}: ")),
        "{field}: {}",
        e.message()
    );
    assert!(
        e.message().len() <= 256,
        "{field}: {} bytes",
        e.message().len()
    );
}

#[tokio::test]
async fn oversized_input_is_refused_with_a_short_message() {
    let r = start(None);
    let mut c = client(&r).await;
    let mb = "a".repeat(1 << 20);
    let e = c.create_group(group(&mb, 100)).await.unwrap_err();
    assert_invalid(&e, "group_id");
    let e = c
        .create_group(v1::CreateGroupRequest {
            import_route_targets: vec![format!("65000:{mb}")],
            ..group("test", 100)
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "import_route_targets[0]");
    let e = c
        .create_group(v1::CreateGroupRequest {
            vmac: mb.clone(),
            ..group("test", 100)
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "vmac");
    // A 1 MB version is refused, not stored and printed.
    let e = c
        .register_instance(v1::RegisterInstanceRequest {
            instance_id: "big".into(),
            grpc_address: "127.0.0.1:1".into(),
            version: mb.clone(),
            ready: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "version");
    let e = c
        .register_instance(v1::RegisterInstanceRequest {
            instance_id: "big".into(),
            grpc_address: format!("{mb}:1"),
            version: "0.1.0".into(),
            ready: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "grpc_address");
    let list = c.list_instances(v1::Empty {}).await.unwrap().into_inner();
    assert!(list.instances.is_empty(), "{:?}", list.instances.len());
    // A request above the decoding limit is refused before it is decoded.
    let e = c
        .create_group(group(&"a".repeat(evpn_model::REQUEST_MAX_BYTES + 1), 100))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    assert!(
        c.list_groups(v1::Empty {})
            .await
            .unwrap()
            .into_inner()
            .groups
            .is_empty()
    );
}

#[tokio::test]
async fn route_target_lists_follow_the_rules_evpnd_applies() {
    let r = start(None);
    let mut c = client(&r).await;
    let many: Vec<String> = (0..=evpn_model::ROUTE_TARGETS_MAX)
        .map(|i| format!("65000:{i}"))
        .collect();
    let dup = vec!["65000:1".to_string(), "rt:65000:1".to_string()];
    for (list, field) in [
        (many, "export_route_targets"),
        (dup, "export_route_targets[1]"),
    ] {
        let e = c
            .create_group(v1::CreateGroupRequest {
                export_route_targets: list.clone(),
                ..group("test", 100)
            })
            .await
            .unwrap_err();
        assert_invalid(&e, field);
        // The very message evpnd gives for the same list (one validator).
        let want = evpn_model::parse_route_targets("export_route_targets", &list)
            .unwrap_err()
            .to_string();
        assert_eq!(e.message(), want);
    }
    // The limit itself and every spelling of the one grammar are accepted.
    let max: Vec<String> = (0..evpn_model::ROUTE_TARGETS_MAX)
        .map(|i| format!("65000:{i}"))
        .collect();
    let g = c
        .create_group(v1::CreateGroupRequest {
            import_route_targets: vec!["(rt, 65000, 7)".into(), "target:4200000000:7".into()],
            export_route_targets: max,
            ..group("test", 100)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.import_route_targets, ["65000:7", "4200000000:7"]);
    assert_eq!(g.export_route_targets.len(), evpn_model::ROUTE_TARGETS_MAX);
}

#[tokio::test]
async fn gateway_address_classes_are_refused_naming_the_field() {
    let r = start(None);
    let mut c = client(&r).await;
    c.create_group(group("test", 100)).await.unwrap();
    let bad = [
        p("172.16.0.0", 24),       // network address
        p("172.16.0.255", 24),     // broadcast address
        p("0.1.2.3", 24),          // 0/8
        p("127.0.0.2", 24),        // loopback
        p("169.254.1.1", 16),      // IPv4 link-local
        p("240.0.0.1", 24),        // reserved
        p("255.255.255.255", 32),  // limited broadcast
        p("::ffff:10.0.0.1", 120), // v4-mapped
        p("::10.0.0.1", 120),      // v4-compatible
        p("2001:db8::", 64),       // subnet-router anycast
        p("fe80::1", 64),          // link-local (derived, never configured)
    ];
    for a in &bad {
        let e = c
            .create_group_bvi(v1::GroupBviRequest {
                group_id: "test".into(),
                addresses: vec![p("172.16.0.32", 24), a.clone()],
            })
            .await
            .unwrap_err();
        assert_invalid(&e, "addresses[1]");
    }
    let too_many: Vec<v1::Prefix> = (1..=evpn_model::BVI_ADDRESSES_MAX + 1)
        .map(|i| p(&format!("10.0.{i}.1"), 24))
        .collect();
    let e = c
        .create_group_bvi(v1::GroupBviRequest {
            group_id: "test".into(),
            addresses: too_many,
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "addresses");
    let g = c
        .get_group(v1::GroupRef {
            group_id: "test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(g.group_bvi.is_none(), "a refused GroupBVI was stored");
    // What the README and the lab use stays accepted; site-local warns.
    let mut events = c
        .watch_events(v1::WatchEventsRequest {
            types: vec!["crud".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    c.create_group_bvi(v1::GroupBviRequest {
        group_id: "test".into(),
        addresses: vec![p("172.16.0.32", 24), p("fec0::32", 64)],
    })
    .await
    .unwrap();
    let warned = tokio::time::timeout(T, async {
        while let Some(e) = events.next().await {
            let e = e.unwrap();
            if e.message == "address-deprecated" {
                return e;
            }
        }
        panic!("event stream ended");
    })
    .await
    .unwrap();
    assert_eq!(warned.fields["address"], "fec0::32/64");
    for a in &bad {
        let e = c
            .add_group_bvi_address(v1::GroupBviAddAddressRequest {
                group_id: "test".into(),
                address: Some(a.clone()),
            })
            .await
            .unwrap_err();
        assert_invalid(&e, "address");
    }
    // RFC 3021: both addresses of a /31 and a /32 are hosts.
    for a in [p("10.0.0.0", 31), p("10.0.1.255", 32)] {
        c.add_group_bvi_address(v1::GroupBviAddAddressRequest {
            group_id: "test".into(),
            address: Some(a),
        })
        .await
        .unwrap();
    }
    let g = c
        .get_group(v1::GroupRef {
            group_id: "test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let have: Vec<String> = g
        .group_bvi
        .unwrap()
        .addresses
        .iter()
        .map(|a| format!("{}/{}", a.address, a.prefix_len))
        .collect();
    assert_eq!(
        have,
        [
            "172.16.0.32/24",
            "fec0::32/64",
            "10.0.0.0/31",
            "10.0.1.255/32"
        ]
    );
}
