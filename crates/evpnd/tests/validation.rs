//! evpnd's edge applies the shared validation (issue 13 items 6-8): the
//! default RD is derived or refused naming the field that prevents it, route
//! target lists follow the rules evpnr applies, gateway and VTEP address
//! classes are refused, and nothing echoes more than a short prefix of bad
//! input. Every refusal changes nothing in VPP or BIRD.
mod common;

use common::{Host, create_req};
use evpn_api::v1;
use tonic::Code;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_validation_is_shared_and_bounded() {
    let mut h = Host::new("edge_validation_is_shared_and_bounded", "dpu0-ddln0").await;
    h.start_evpnd();
    let mut c = h.client().await;

    // An IPv6 VTEP and no rd: refused up front, naming the VTEP and saying
    // that rd must be set, not blaming a field the caller never set.
    let e = c
        .create_evpn_instance(v1::CreateEvpnInstanceRequest {
            vtep_address: "2001:db8::1".into(),
            ..create_req("six", 100)
        })
        .await
        .unwrap_err();
    assert_invalid(&e, "vtep_address");
    assert!(e.message().contains("set rd"), "{}", e.message());
    // Likewise a VNI the default <vtep>:<vni> cannot hold.
    let e = c
        .create_evpn_instance(create_req("big", 70000))
        .await
        .unwrap_err();
    assert_invalid(&e, "vni");
    assert!(e.message().contains("set rd"), "{}", e.message());
    // With an explicit rd both work.
    let e = c
        .create_evpn_instance(v1::CreateEvpnInstanceRequest {
            vtep_address: "2001:db8::1".into(),
            rd: "65000:100".into(),
            ..create_req("six", 100)
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (e.rd.as_str(), e.vtep_address.as_str()),
        ("65000:100", "2001:db8::1")
    );
    c.delete_evpn_instance(v1::EvpnRef {
        slug: "six".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    h.sim.clear_journal();

    // Route target lists: the same rule and message as evpnr's.
    let many: Vec<String> = (0..=evpn_model::ROUTE_TARGETS_MAX)
        .map(|i| format!("65000:{i}"))
        .collect();
    let dup = vec!["65000:1".to_string(), "(rt, 65000, 1)".to_string()];
    for list in [many, dup] {
        let e = c
            .create_evpn_instance(v1::CreateEvpnInstanceRequest {
                import_route_targets: list.clone(),
                ..create_req("rts", 200)
            })
            .await
            .unwrap_err();
        let want = evpn_model::parse_route_targets("import_route_targets", &list)
            .unwrap_err()
            .to_string();
        assert_eq!((e.code(), e.message()), (Code::InvalidArgument, &*want));
    }

    // Bad VTEP classes and oversized fields.
    let mb = "1".repeat(1 << 20);
    for (req, field) in [
        (
            v1::CreateEvpnInstanceRequest {
                vtep_address: "127.0.0.1".into(),
                ..create_req("v", 300)
            },
            "vtep_address",
        ),
        (
            v1::CreateEvpnInstanceRequest {
                vtep_address: "169.254.0.1".into(),
                ..create_req("v", 300)
            },
            "vtep_address",
        ),
        (
            v1::CreateEvpnInstanceRequest {
                vtep_address: mb.clone(),
                ..create_req("v", 300)
            },
            "vtep_address",
        ),
        (
            v1::CreateEvpnInstanceRequest {
                rd: mb.clone(),
                ..create_req("v", 300)
            },
            "rd",
        ),
        (create_req(&mb, 300), "slug"),
    ] {
        let e = c.create_evpn_instance(req).await.unwrap_err();
        assert_invalid(&e, field);
    }

    // Gateway address classes on a bind.
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
    for (address, prefix_len) in [
        ("172.16.0.0", 24),
        ("172.16.0.255", 24),
        ("0.1.2.3", 24),
        ("169.254.1.1", 16),
        ("::ffff:10.0.0.1", 120),
        ("fec0::", 64),
    ] {
        let e = c
            .bind_group_bvi(v1::HostBindGroupBviRequest {
                slug: "test".into(),
                group_id: "test".into(),
                vmac: "42:6c:fa:d6:82:98".into(),
                addresses: vec![v1::Prefix {
                    address: address.into(),
                    prefix_len,
                }],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_invalid(&e, "addresses[0]");
    }
    assert!(
        h.sim.journal().is_empty(),
        "refused requests changed VPP: {:?}",
        h.sim.journal()
    );
}
