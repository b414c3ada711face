//! Issue 13 items 4, 5, 13 and 14 against real evpnd processes on vppsim and
//! real BIRD 2.20, black-box through evpnr's gRPC API: gateway addresses
//! checked whole and never stored behind a primary's refusal, vMAC
//! uniqueness where broadcast domains can meet, destructive operations
//! guarded and reported (`gateway-down`), and events that mean one thing.
mod common;

use common::*;
use evpn_api::v1::{self, evpnr_client::EvpnrClient};
use futures::StreamExt;
use tonic::{Code, Streaming, transport::Channel};

const A: &str = "dpu0-ddln0";
const B: &str = "dpu0-chplo0";

async fn bind(c: &mut EvpnrClient<Channel>, id: &str) {
    c.bind_group_bvi(v1::BindGroupBviRequest {
        group_id: "test".into(),
        instance_id: id.into(),
    })
    .await
    .unwrap();
}

async fn member(
    c: &mut EvpnrClient<Channel>,
    group: &str,
    id: &str,
    add: bool,
) -> Result<v1::Group, tonic::Status> {
    let r = v1::GroupMemberRequest {
        group_id: group.into(),
        instance_id: id.into(),
    };
    if add {
        c.add_group_member(r).await.map(|r| r.into_inner())
    } else {
        c.remove_group_member(r).await.map(|r| r.into_inner())
    }
}

async fn add_address(c: &mut EvpnrClient<Channel>, a: &str, l: u32) -> Result<(), tonic::Status> {
    c.add_group_bvi_address(v1::GroupBviAddAddressRequest {
        group_id: "test".into(),
        address: Some(prefix(a, l)),
    })
    .await
    .map(|_| ())
}

/// The GroupBVI addresses evpnr has stored for `test`.
async fn stored(f: &Fleet) -> Vec<String> {
    f.group("test")
        .await
        .group_bvi
        .map(|b| {
            b.addresses
                .iter()
                .map(|p| format!("{}/{}", p.address, p.prefix_len))
                .collect()
        })
        .unwrap_or_default()
}

/// Wait until `id` holds `vmac` with the primary role and is `test`'s
/// primary, and no other host holds the vMAC.
async fn wait_bound(f: &Fleet, id: &str, vmac: &str) {
    wait_for(&format!("{id} bound"), || async move {
        f.group("test").await.primary_instance_id == id
            && f.bvi(id, "test")
                .await
                .is_some_and(|b| b.role == v1::bvi::Role::Primary as i32)
            && f.hosts.iter().all(|h| h.holds(vmac) == (h.id == id))
    })
    .await;
}

async fn events(f: &Fleet) -> Streaming<v1::Event> {
    f.client()
        .await
        .watch_events(v1::WatchEventsRequest {
            types: vec!["crud".into(), "failover".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// The next event from evpnr itself (empty instance) named `name`.
async fn next_own(ev: &mut Streaming<v1::Event>, name: &str) -> v1::Event {
    loop {
        let e = tokio::time::timeout(T, ev.next())
            .await
            .unwrap_or_else(|_| panic!("no {name} event"))
            .unwrap()
            .unwrap();
        if e.message == name && e.instance.is_empty() {
            return e;
        }
    }
}

fn assert_gateway_down(e: &v1::Event, instance: &str, cause: &str) {
    assert_eq!(e.level, "warn", "{e:?}");
    assert_eq!(e.fields["group"], "test", "{e:?}");
    assert_eq!(e.fields["instance"], instance, "{e:?}");
    assert_eq!(e.fields["cause"], cause, "{e:?}");
    assert!(
        e.fields["addresses"].contains("172.16.0.32/24")
            && e.fields["addresses"].contains("fec0::32/64"),
        "{e:?}"
    );
}

/// Item 5: an overlapping address is refused before it is stored, a
/// primary's own refusal leaves the registry as it was, and a move
/// afterwards still ends with a bound primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_address_is_refused_and_a_move_still_ends_bound() {
    let _s = serial().await;
    let mut f = Fleet::new(
        "conflicting_address_is_refused_and_a_move_still_ends_bound",
        &[A, B],
    )
    .await;
    f.start_all().await;
    let vmac = f.test_group(Some(A)).await;
    wait_bound(&f, A, &vmac).await;
    let mut c = f.client().await;
    let want = ["172.16.0.32/24", "fec0::32/64"];

    // VPP refuses 172.16.0.32/25 next to 172.16.0.32/24 (-127): evpnr
    // refuses it up front, naming the field and the address it overlaps.
    let e = add_address(&mut c, "172.16.0.32", 25).await.unwrap_err();
    assert!(
        matches!(e.code(), Code::FailedPrecondition | Code::InvalidArgument),
        "{e:?}"
    );
    assert!(
        e.message().contains("address") && e.message().contains("172.16.0.32/24"),
        "{e:?}"
    );
    assert_eq!(stored(&f).await, want);

    // The primary's VPP refuses an address evpnr allows: nothing is stored.
    f.host(A)
        .sim
        .faults()
        .error_on_nth("sw_interface_add_del_address", 1, -127);
    let e = add_address(&mut c, "172.16.0.99", 24).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains(A) && e.message().contains("172.16.0.99/24"),
        "{e:?}"
    );
    assert_eq!(stored(&f).await, want);
    f.host(A).sim.faults().reset();

    // A move afterwards ends with B bound, with the stored addresses.
    let g = c
        .move_group_bvi(v1::MoveGroupBviRequest {
            group_id: "test".into(),
            instance_id: B.into(),
            force: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.primary_instance_id, B);
    wait_bound(&f, B, &vmac).await;
    let mut got: Vec<String> = f
        .bvi(B, "test")
        .await
        .unwrap()
        .addresses
        .iter()
        .map(|p| format!("{}/{}", p.address, p.prefix_len))
        .collect();
    got.sort();
    assert_eq!(got, want);
    f.check_vmac_exclusive(&vmac, &[]).unwrap();
}

/// Item 4 (and issue 14 item 5): a member whose per-host MAC equals the
/// group's vMAC cannot join; a member cannot join a group whose GroupBVI
/// overlaps (IPv4) one of its other groups', nor can such a GroupBVI be
/// created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vmac_and_subnet_conflicts_are_refused_when_a_member_joins() {
    let _s = serial().await;
    let mut f = Fleet::new(
        "vmac_and_subnet_conflicts_are_refused_when_a_member_joins",
        &[A, B],
    )
    .await;
    f.start_all().await;
    let mut c = f.client().await;
    let b_mac = evpn_model::Mac::derived(&["test", B]).to_string();
    c.create_group(v1::CreateGroupRequest {
        group_id: "test".into(),
        vni: 100,
        vmac: b_mac.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    member(&mut c, "test", A, true).await.unwrap();
    let e = member(&mut c, "test", B, true).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().starts_with("instance_id:")
            && e.message().contains(&b_mac)
            && e.message()
                .contains(&format!("per-host MAC of instance {B}")),
        "{e:?}"
    );
    assert_eq!(f.group("test").await.members, [A]);
    let l = c
        .list_evpn_instances(v1::InstanceRef {
            instance_id: B.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(l.evpn_instances.is_empty(), "B was configured: {l:?}");

    // Two groups with overlapping IPv4 subnets cannot share a member.
    for (g, vni, a) in [("one", 201, "10.1.1.1"), ("two", 202, "10.1.1.2")] {
        c.create_group(v1::CreateGroupRequest {
            group_id: g.into(),
            vni,
            ..Default::default()
        })
        .await
        .unwrap();
        c.create_group_bvi(v1::GroupBviRequest {
            group_id: g.into(),
            addresses: vec![prefix(a, 24)],
        })
        .await
        .unwrap();
    }
    member(&mut c, "one", B, true).await.unwrap();
    let e = member(&mut c, "two", B, true).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let m = e.message();
    assert!(
        m.contains("group one") && m.contains(B) && m.contains("10.1.1.1/24"),
        "{e:?}"
    );
    assert!(f.group("two").await.members.is_empty());
    // … and a GroupBVI overlapping a group of a shared member.
    c.create_group(v1::CreateGroupRequest {
        group_id: "three".into(),
        vni: 203,
        ..Default::default()
    })
    .await
    .unwrap();
    member(&mut c, "three", B, true).await.unwrap();
    let e = c
        .create_group_bvi(v1::GroupBviRequest {
            group_id: "three".into(),
            addresses: vec![prefix("10.1.0.1", 16)],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("group one"), "{e:?}");
}

/// Item 13: disabling the primary's eVPN through evpnr is refused unless
/// forced, naming what would go down; every operation that takes a gateway
/// down reports it with a warn-level `gateway-down`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destructive_operations_are_guarded_and_report_the_gateway_down() {
    let _s = serial().await;
    let mut f = Fleet::new(
        "destructive_operations_are_guarded_and_report_the_gateway_down",
        &[A, B],
    )
    .await;
    f.start_all().await;
    let vmac = f.test_group(Some(A)).await;
    wait_bound(&f, A, &vmac).await;
    let mut c = f.client().await;
    let mut ev = events(&f).await;
    let disable = |force| v1::SetEnabledRequest {
        instance_id: A.into(),
        slug: "test".into(),
        enabled: false,
        force,
    };

    let e = c
        .set_evpn_instance_enabled(disable(false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    for w in ["group test", "172.16.0.32/24", "fec0::32/64", "force"] {
        assert!(e.message().contains(w), "{w}: {e:?}");
    }
    assert_eq!(f.group("test").await.primary_instance_id, A);
    assert!(f.host(A).holds(&vmac));

    let r = c
        .set_evpn_instance_enabled(disable(true))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.enabled);
    assert_gateway_down(&next_own(&mut ev, "gateway-down").await, A, "evpn-disabled");
    // The registry does not believe in a gateway that is gone.
    assert_eq!(f.group("test").await.primary_instance_id, "");
    assert!(!f.host(A).holds(&vmac));

    // Removing the primary member.
    bind(&mut c, B).await;
    wait_bound(&f, B, &vmac).await;
    member(&mut c, "test", B, false).await.unwrap();
    assert_gateway_down(
        &next_own(&mut ev, "gateway-down").await,
        B,
        "primary-removed",
    );

    // Deleting the GroupBVI while bound.
    c.set_evpn_instance_enabled(v1::SetEnabledRequest {
        enabled: true,
        ..disable(false)
    })
    .await
    .unwrap();
    bind(&mut c, A).await;
    wait_bound(&f, A, &vmac).await;
    c.delete_group_bvi(v1::GroupRef {
        group_id: "test".into(),
    })
    .await
    .unwrap();
    assert_gateway_down(
        &next_own(&mut ev, "gateway-down").await,
        A,
        "groupbvi-deleted",
    );

    // Deleting the group while bound.
    c.create_group_bvi(v1::GroupBviRequest {
        group_id: "test".into(),
        addresses: vec![prefix("172.16.0.32", 24), prefix("fec0::32", 64)],
    })
    .await
    .unwrap();
    bind(&mut c, A).await;
    wait_bound(&f, A, &vmac).await;
    c.delete_group(v1::GroupRef {
        group_id: "test".into(),
    })
    .await
    .unwrap();
    assert_gateway_down(&next_own(&mut ev, "gateway-down").await, A, "group-deleted");
    assert!(!f.host(A).holds(&vmac));
}

/// Item 14: adding and deleting a gateway address on a bound primary emits
/// the address events (evpnr) and `groupbvi-addresses-changed` (the
/// member), never `groupbvi-bound` or a settle event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_edits_are_not_reported_as_binds() {
    let _s = serial().await;
    let mut f = Fleet::new("address_edits_are_not_reported_as_binds", &[A, B]).await;
    f.start_all().await;
    let vmac = f.test_group(Some(A)).await;
    wait_bound(&f, A, &vmac).await;
    let mut c = f.client().await;
    let mut ev = events(&f).await;
    add_address(&mut c, "172.16.0.33", 24).await.unwrap();
    c.delete_group_bvi_address(v1::GroupBviDeleteAddressRequest {
        group_id: "test".into(),
        address: Some(prefix("172.16.0.33", 24)),
    })
    .await
    .unwrap();
    // Every event until evpnr's own `groupbvi-address-deleted` and the
    // member's answer to each of the two edits.
    let mut seen = Vec::new();
    let (mut own_done, mut member_edits) = (false, 0);
    while !own_done || member_edits < 2 {
        let e = tokio::time::timeout(T, ev.next())
            .await
            .unwrap_or_else(|_| panic!("events so far: {seen:?}"))
            .unwrap()
            .unwrap();
        own_done |= e.instance.is_empty() && e.message == "groupbvi-address-deleted";
        if e.instance == A && e.message.starts_with("groupbvi-") {
            member_edits += 1;
        }
        seen.push(format!("{}:{}", e.instance, e.message));
    }
    for bad in ["groupbvi-bound", "move-settled", "bind-settled"] {
        assert!(!seen.iter().any(|s| s.ends_with(bad)), "{bad}: {seen:?}");
    }
    for want in [
        ":groupbvi-address-added".to_string(),
        ":groupbvi-address-deleted".to_string(),
        ":groupbvi-addresses-applied".to_string(),
        format!("{A}:groupbvi-addresses-changed"),
    ] {
        assert!(seen.contains(&want), "{want}: {seen:?}");
    }
    assert!(f.host(A).holds(&vmac));
}

/// Issue 17 item 3: a move or bind onto a member whose eVPN is disabled is
/// refused up front (FAILED_PRECONDITION naming the member and the eVPN),
/// also when forced: a disabled eVPN cannot announce the vMAC. Nothing is
/// released first: the primary keeps the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_or_bind_onto_a_disabled_evpn_is_refused_even_forced() {
    let _s = serial().await;
    let mut f = Fleet::new(
        "move_or_bind_onto_a_disabled_evpn_is_refused_even_forced",
        &[A, B],
    )
    .await;
    f.start_all().await;
    let vmac = f.test_group(Some(A)).await;
    wait_bound(&f, A, &vmac).await;
    let mut c = f.client().await;
    c.set_evpn_instance_enabled(v1::SetEnabledRequest {
        instance_id: B.into(),
        slug: "test".into(),
        enabled: false,
        force: false,
    })
    .await
    .unwrap();
    let refused = |e: tonic::Status| {
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        for w in [B, "evpn test", "disabled"] {
            assert!(e.message().contains(w), "{w}: {e:?}");
        }
    };
    for force in [false, true] {
        refused(f.move_to(B, force).await.unwrap_err());
        assert_eq!(f.group("test").await.primary_instance_id, A);
        assert!(f.host(A).holds(&vmac), "A was released (force {force})");
        assert!(!f.host(B).holds(&vmac));
    }
    // An explicit bind on a group without a primary.
    c.release_group_bvi(v1::ReleaseGroupBviRequest {
        group_id: "test".into(),
        instance_id: A.into(),
    })
    .await
    .unwrap();
    let e = c
        .bind_group_bvi(v1::BindGroupBviRequest {
            group_id: "test".into(),
            instance_id: B.into(),
        })
        .await
        .unwrap_err();
    refused(e);
    assert_eq!(f.group("test").await.primary_instance_id, "");
    assert!(!f.host(B).holds(&vmac));
}
