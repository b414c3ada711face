//! Client ↔ vppsim integration: every operation, failures with VPP's
//! retvals, events, multiplexing, journal.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use common::Sim;
use vpp_api::msgs::{self, Message, SW_IF_INDEX_NONE};
use vpp_api::{
    BridgeDomainConfig, ClientEvent, InterfaceFilter, L2PortType, L2fibEntry, LcpPairConfig,
    MacAddress, Neighbor, Prefix, SwIfIndex, VppError, VxlanTunnel,
};
use vppsim::SimOptions;

fn mac(s: &str) -> MacAddress {
    s.parse().expect("mac")
}

fn pfx(s: &str) -> Prefix {
    s.parse().expect("prefix")
}

fn rv<T: std::fmt::Debug>(r: Result<T, VppError>) -> i32 {
    match r {
        Err(VppError::Retval { retval, .. }) => retval,
        other => panic!("expected a retval error, got {other:?}"),
    }
}

#[tokio::test]
async fn handshake_show_version_ping() {
    let sim = Sim::start(SimOptions::default()).await;
    let c = sim.client().await;
    assert_eq!(c.client_index(), Some(0x8000_0001));
    assert_eq!(c.message_table().map(|t| t.len()), Some(866));
    let v = c.show_version().await.expect("show_version");
    assert_eq!(
        (v.program.as_str(), v.version.as_str()),
        ("vpe", "25.10-release")
    );
    c.ping().await.expect("ping");
    let r = c.call(&msgs::ControlPing {}).await.expect("raw ping");
    assert_eq!(r.vpe_pid, std::process::id());
    c.disconnect().await.expect("sockclnt_delete");
    assert!(!c.is_connected());
    assert!(matches!(c.ping().await, Err(VppError::Disconnected)));
    c.reconnect().await.expect("reconnect");
    c.ping().await.expect("ping");
}

#[tokio::test]
async fn loopback_lifecycle_and_interface_attributes() {
    let sim = Sim::start(SimOptions::default()).await;
    let c = sim.client().await;
    let m = mac("02:fe:00:00:00:64");
    let l100 = c
        .create_loopback_instance(m, Some(100))
        .await
        .expect("create");
    assert_eq!(l100, SwIfIndex(1));
    let e = c.create_loopback_instance(m, Some(100)).await;
    match &e {
        Err(VppError::Retval {
            retval: -31,
            name,
            msg,
        }) => {
            assert_eq!(*name, "INVALID_REGISTRATION");
            assert_eq!(*msg, "create_loopback_instance");
        }
        other => panic!("{other:?}"),
    }
    let l0 = c
        .create_loopback(MacAddress::ZERO)
        .await
        .expect("create_loopback");
    assert_eq!(l0, SwIfIndex(2));

    let all = c
        .sw_interface_dump(InterfaceFilter::All)
        .await
        .expect("dump");
    let names: Vec<_> = all.iter().map(|d| d.interface_name.as_str()).collect();
    assert_eq!(names, ["local0", "loop100", "loop0"]);
    assert_eq!(all[2].l2_address, mac("de:ad:00:00:00:00"));
    assert_eq!(all[1].mtu, [9000, 0, 0, 0]);
    assert_eq!(all[1].link_mtu, 9000);
    assert_eq!(all[1].flags, 0, "loopbacks start admin-down");
    assert_eq!(all[1].interface_dev_type, "Loopback");
    let f = c
        .sw_interface_dump(InterfaceFilter::NameContains("LOOP100".into()))
        .await
        .expect("filter");
    assert_eq!(f.len(), 1);
    let one = c
        .sw_interface_dump(InterfaceFilter::Index(l0))
        .await
        .expect("idx");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].interface_name, "loop0");

    let new_mac = mac("42:6c:fa:d6:82:98");
    c.sw_interface_set_mac_address(l100, new_mac)
        .await
        .expect("mac");
    c.sw_interface_set_mtu(l100, [1500, 0, 0, 0])
        .await
        .expect("mtu");
    c.sw_interface_set_flags(l100, true).await.expect("up");
    let d = &c
        .sw_interface_dump(InterfaceFilter::Index(l100))
        .await
        .expect("dump")[0];
    assert_eq!(d.l2_address, new_mac);
    assert_eq!(d.mtu, [1500, 0, 0, 0]);
    assert_eq!(d.link_mtu, 9000);
    assert_eq!(d.flags, 3);
    c.sw_interface_set_flags(l100, false).await.expect("down");

    assert_eq!(rv(c.hw_interface_set_mtu(l100, 1500).await), -126);
    assert_eq!(rv(c.sw_interface_set_flags(SwIfIndex(77), true).await), -2);
    assert_eq!(
        rv(c.sw_interface_set_mac_address(SwIfIndex(77), new_mac).await),
        -2
    );
    assert_eq!(
        rv(c.sw_interface_set_mtu(SwIfIndex(77), [1500, 0, 0, 0]).await),
        -2
    );

    c.delete_loopback(l0).await.expect("delete");
    assert_eq!(rv(c.delete_loopback(l0).await), -2);
    assert_eq!(
        rv(c.delete_loopback(SwIfIndex(0)).await),
        -2,
        "local0 is not a loopback"
    );
    // sw_if_index reuse: the freed index comes back first.
    let again = c
        .create_loopback_instance(MacAddress::ZERO, Some(5))
        .await
        .expect("create");
    assert_eq!(again, l0);
    let st = sim.handle.state();
    assert_eq!(
        st.interface_by_name("loop5").map(|i| i.mac),
        Some(mac("de:ad:00:00:00:05"))
    );
}

#[tokio::test]
async fn addresses_and_link_local() {
    let sim = Sim::start(SimOptions::default()).await;
    let c = sim.client().await;
    let m = mac("42:6c:fa:d6:82:98");
    let l = c
        .create_loopback_instance(m, Some(1))
        .await
        .expect("create");
    assert_eq!(rv(c.sw_interface_ip6_get_link_local_address(l).await), -62);
    c.sw_interface_add_del_address(l, pfx("172.16.0.32/24"), true)
        .await
        .expect("v4");
    c.sw_interface_add_del_address(l, pfx("fec0::32/64"), true)
        .await
        .expect("v6");
    assert_eq!(
        rv(
            c.sw_interface_add_del_address(l, pfx("172.16.0.32/24"), true)
                .await
        ),
        -105,
        "the same IPv4 address again conflicts with itself (ADDRESS_IN_USE)"
    );
    assert_eq!(
        c.ip_address_dump(l, false).await.expect("v4"),
        vec![pfx("172.16.0.32/24")]
    );
    assert_eq!(
        c.ip_address_dump(l, true).await.expect("v6"),
        vec![pfx("fec0::32/64")]
    );
    // The first IPv6 address enabled IPv6 with the EUI-64 link-local.
    assert_eq!(
        c.sw_interface_ip6_get_link_local_address(l)
            .await
            .expect("ll"),
        m.link_local()
    );
    let ll: Ipv6Addr = "fe80::1".parse().expect("ll");
    c.sw_interface_ip6_set_link_local_address(l, ll)
        .await
        .expect("set ll");
    assert_eq!(
        c.sw_interface_ip6_get_link_local_address(l)
            .await
            .expect("ll"),
        ll
    );
    assert_eq!(
        rv(
            c.sw_interface_ip6_set_link_local_address(l, "2001:db8::1".parse().expect("a"))
                .await
        ),
        -7
    );
    c.sw_interface_add_del_address(l, pfx("172.16.0.32/24"), false)
        .await
        .expect("del");
    assert!(c.ip_address_dump(l, false).await.expect("v4").is_empty());
    assert_eq!(
        rv(
            c.sw_interface_add_del_address(l, pfx("172.16.0.32/24"), false)
                .await
        ),
        -60
    );
    c.sw_interface_del_all_addresses(l).await.expect("del all");
    assert!(c.ip_address_dump(l, true).await.expect("v6").is_empty());
    assert_eq!(
        rv(
            c.sw_interface_add_del_address(SwIfIndex(9), pfx("10.0.0.1/8"), true)
                .await
        ),
        -2
    );
    assert!(
        c.ip_address_dump(SwIfIndex(9), false)
            .await
            .expect("none")
            .is_empty()
    );
}

/// VPP 25.10 refuses overlapping subnets on interfaces of one FIB:
/// `ip4_add_del_interface_address_internal` (-105 ADDRESS_IN_USE) and
/// `ip6_add_del_interface_address` (-127 DUPLICATE_IF_ADDRESS).
#[tokio::test]
async fn overlapping_subnets_in_one_fib_are_refused() {
    let sim = Sim::start(SimOptions::default()).await;
    let c = sim.client().await;
    let a = c
        .create_loopback_instance(MacAddress::ZERO, Some(1))
        .await
        .expect("a");
    let b = c
        .create_loopback_instance(MacAddress::ZERO, Some(2))
        .await
        .expect("b");
    let add = |i, p: &str| c.sw_interface_add_del_address(i, pfx(p), true);
    add(a, "10.1.1.1/24").await.expect("first");
    // Another interface, same subnet, wider, narrower: all refused.
    assert_eq!(rv(add(b, "10.1.1.2/24").await), -105);
    assert_eq!(rv(add(b, "10.1.0.1/16").await), -105);
    assert_eq!(rv(add(b, "10.1.1.129/25").await), -105);
    // The same interface: another address of the same length is allowed,
    // another length is not.
    add(a, "10.1.1.2/24")
        .await
        .expect("same length, same interface");
    assert_eq!(rv(add(a, "10.1.1.3/25").await), -105);
    // Disjoint subnets are fine.
    add(b, "10.1.2.1/24").await.expect("disjoint");
    add(a, "2001:db8::1/64").await.expect("v6");
    assert_eq!(rv(add(b, "2001:db8::2/64").await), -127);
    add(b, "2001:db8:1::1/64").await.expect("disjoint v6");
    let st = sim.handle.state();
    assert_eq!(
        st.interface_by_name("loop2").map(|i| i.addresses.clone()),
        Some(vec![pfx("10.1.2.1/24"), pfx("2001:db8:1::1/64")])
    );
    // Once the first address is gone, the other interface may take the subnet.
    c.sw_interface_add_del_address(a, pfx("10.1.1.1/24"), false)
        .await
        .expect("del");
    c.sw_interface_add_del_address(a, pfx("10.1.1.2/24"), false)
        .await
        .expect("del");
    add(b, "10.1.1.2/24").await.expect("free again");
    // One FIB: every interface is in table 0.
    assert_eq!(c.sw_interface_get_table(b, false).await.expect("table"), 0);
    assert_eq!(rv(c.sw_interface_get_table(SwIfIndex(99), true).await), -2);
}

#[tokio::test]
async fn bridge_domains_bvi_and_members() {
    let sim = Sim::start(SimOptions::default()).await;
    let c = sim.client().await;
    let l1 = c
        .create_loopback_instance(mac("02:00:00:00:00:01"), Some(1))
        .await
        .expect("l1");
    let l2 = c
        .create_loopback_instance(mac("02:00:00:00:00:02"), Some(2))
        .await
        .expect("l2");
    let mut cfg = BridgeDomainConfig::new(100);
    cfg.tag = "evpn-vni100".into();
    assert_eq!(c.bridge_domain_add(&cfg).await.expect("bd"), 100);
    assert_eq!(rv(c.bridge_domain_add(&cfg).await), -119);
    c.sw_interface_set_l2_bridge(l1, 100, L2PortType::Bvi, 0, true)
        .await
        .expect("bvi");
    assert_eq!(
        rv(
            c.sw_interface_set_l2_bridge(l2, 100, L2PortType::Bvi, 0, true)
                .await
        ),
        -152
    );
    c.sw_interface_set_l2_bridge(l2, 100, L2PortType::Normal, 1, true)
        .await
        .expect("member");
    let d = c.bridge_domain_dump(Some(100)).await.expect("dump");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].bd_tag, "evpn-vni100");
    assert_eq!(d[0].bvi_sw_if_index, l1.0);
    assert_eq!(d[0].uu_fwd_sw_if_index, SW_IF_INDEX_NONE);
    let members: Vec<_> = d[0]
        .sw_if_details
        .iter()
        .map(|m| (m.sw_if_index, m.shg))
        .collect();
    assert_eq!(members, [(l1.0, 0), (l2.0, 1)]);
    // The BVI's MAC became a static BVI l2fib entry.
    let st = sim.handle.state();
    assert!(
        st.l2fib
            .iter()
            .any(|e| e.bvi_mac && e.mac == mac("02:00:00:00:00:01"))
    );
    // A raw dump with sw_if_index 0 returns nothing, as VPP does.
    let raw = c
        .dump(&msgs::BridgeDomainDump {
            bd_id: 100,
            sw_if_index: 0,
        })
        .await
        .expect("raw dump");
    assert!(raw.is_empty());
    assert_eq!(rv(c.bridge_domain_delete(100).await), -120);
    c.sw_interface_set_l2_bridge(l1, 100, L2PortType::Bvi, 0, false)
        .await
        .expect("leave");
    c.sw_interface_set_l2_bridge(l2, 100, L2PortType::Normal, 0, false)
        .await
        .expect("leave");
    c.bridge_domain_delete(100).await.expect("delete");
    assert_eq!(rv(c.bridge_domain_delete(100).await), -6);
    assert!(c.bridge_domain_dump(None).await.expect("dump").is_empty());
    let auto = BridgeDomainConfig {
        bd_id: None,
        ..BridgeDomainConfig::new(0)
    };
    assert_eq!(c.bridge_domain_add(&auto).await.expect("auto id"), 1);
    assert_eq!(
        rv(c.bridge_domain_add(&BridgeDomainConfig::new(0x0100_0000))
            .await),
        -122
    );
    assert_eq!(
        rv(
            c.sw_interface_set_l2_bridge(SwIfIndex(50), 1, L2PortType::Normal, 0, true)
                .await
        ),
        -2
    );
}

#[tokio::test]
async fn linux_cp_pairs() {
    let sim = Sim::start(SimOptions::default()).await;
    let c = sim.client().await;
    assert!(c.lcp_itf_pair_get().await.expect("empty").is_empty());
    let l = c
        .create_loopback_instance(mac("02:00:00:00:00:01"), Some(1))
        .await
        .expect("l");
    let cfg = LcpPairConfig {
        sw_if_index: l,
        host_if_name: "bvi-evpn100".into(),
        tun: false,
        netns: String::new(),
    };
    let p = c.lcp_itf_pair_add(&cfg).await.expect("pair");
    assert_ne!(p.host_sw_if_index, SwIfIndex::NONE);
    assert_eq!(rv(c.lcp_itf_pair_add(&cfg).await), -81);
    let pairs = c.lcp_itf_pair_get().await.expect("get");
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].phy_sw_if_index, l.0);
    assert_eq!(pairs[0].host_sw_if_index, p.host_sw_if_index.0);
    assert_eq!(pairs[0].vif_index, p.vif_index);
    assert_eq!(pairs[0].host_if_name, "bvi-evpn100");
    let bad = LcpPairConfig {
        sw_if_index: SwIfIndex(99),
        ..cfg.clone()
    };
    assert_eq!(rv(c.lcp_itf_pair_add(&bad).await), -2);
    let other = c
        .create_loopback_instance(mac("02:00:00:00:00:02"), Some(2))
        .await
        .expect("l2");
    let badname = LcpPairConfig {
        sw_if_index: other,
        host_if_name: "bad name".into(),
        ..cfg.clone()
    };
    assert_eq!(rv(c.lcp_itf_pair_add(&badname).await), -73);
    assert!(matches!(
        c.lcp_itf_pair_add(&LcpPairConfig {
            host_if_name: "x".repeat(16),
            ..cfg.clone()
        })
        .await,
        Err(VppError::InvalidArgument(_))
    ));
    // Deleting the phy deletes the pair and the TAP.
    c.delete_loopback(other).await.expect("delete");
    c.delete_loopback(l).await.expect("delete");
    assert!(c.lcp_itf_pair_get().await.expect("get").is_empty());
    let ifs = c
        .sw_interface_dump(InterfaceFilter::All)
        .await
        .expect("dump");
    assert_eq!(ifs.len(), 1, "only local0 left: {ifs:?}");
    // A host without /dev/vhost-net.
    let l = c
        .create_loopback_instance(mac("02:00:00:00:00:01"), Some(1))
        .await
        .expect("l");
    sim.handle.faults().lcp_tap_fail(true);
    let e = c
        .lcp_itf_pair_add(&LcpPairConfig {
            sw_if_index: l,
            ..cfg.clone()
        })
        .await;
    assert!(matches!(
        e,
        Err(VppError::Retval {
            retval: -11,
            name: "SYSCALL_ERROR_1",
            ..
        })
    ));
    sim.handle.faults().lcp_tap_fail(false);
    let p = c
        .lcp_itf_pair_add(&LcpPairConfig {
            sw_if_index: l,
            ..cfg.clone()
        })
        .await
        .expect("pair");
    // Cursor protocol: VPP yields with -165 and a cursor; the client resumes.
    let mut phys = vec![l];
    for i in 0..4u32 {
        let x = c
            .create_loopback_instance(MacAddress([2, 0, 0, 0, 9, i as u8]), Some(10 + i))
            .await
            .expect("loop");
        c.lcp_itf_pair_add(&LcpPairConfig {
            sw_if_index: x,
            host_if_name: format!("h{i}"),
            ..cfg.clone()
        })
        .await
        .expect("pair");
        phys.push(x);
    }
    sim.handle.faults().lcp_get_page_size(Some(2));
    let all = c.lcp_itf_pair_get().await.expect("paged get");
    let got: Vec<u32> = all.iter().map(|p| p.phy_sw_if_index).collect();
    assert_eq!(got, phys.iter().map(|s| s.0).collect::<Vec<_>>());
    let (first, _) = c
        .cursor_get::<msgs::LcpItfPairGet, msgs::LcpItfPairDetails>(&msgs::LcpItfPairGet {
            cursor: 0,
        })
        .await
        .expect("raw");
    assert_eq!((first.retval, first.cursor), (-165, 2));
    sim.handle.faults().reset();
    c.lcp_itf_pair_delete(l).await.expect("pair delete");
    assert_eq!(rv(c.lcp_itf_pair_delete(l).await), -6);
    assert!(
        !sim.handle
            .state()
            .interfaces
            .contains_key(&p.host_sw_if_index.0)
    );
}

#[tokio::test]
async fn neighbours_and_arping() {
    let sim = Sim::start(SimOptions::default()).await;
    let c = sim.client().await;
    let l = c
        .create_loopback_instance(mac("02:00:00:00:00:aa"), Some(1))
        .await
        .expect("l");
    let n = Neighbor {
        sw_if_index: l,
        ip: IpAddr::V4(Ipv4Addr::new(172, 16, 0, 1)),
        mac: mac("02:00:00:00:00:01"),
        no_fib_entry: false,
    };
    let stats = c.ip_neighbor_add_del(&n, true).await.expect("add");
    assert_ne!(stats, SW_IF_INDEX_NONE);
    let n6 = Neighbor {
        ip: "fec0::1".parse().expect("v6"),
        ..n
    };
    c.ip_neighbor_add_del(&n6, true).await.expect("add6");
    let d = c
        .ip_neighbor_dump(SwIfIndex::NONE, false)
        .await
        .expect("dump");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].neighbor.ip_address, n.ip);
    assert_eq!(d[0].neighbor.flags, msgs::IP_NEIGHBOR_FLAG_STATIC);
    assert!(d[0].age >= 0.0 && d[0].age < 60.0);
    assert_eq!(c.ip_neighbor_dump(l, true).await.expect("v6").len(), 1);
    assert_eq!(
        c.ip_neighbor_add_del(&n, false).await.expect("del"),
        SW_IF_INDEX_NONE
    );
    assert_eq!(rv(c.ip_neighbor_add_del(&n, false).await), -6);
    let bad = Neighbor {
        sw_if_index: SwIfIndex(42),
        ..n
    };
    assert_eq!(rv(c.ip_neighbor_add_del(&bad, true).await), -2);
    // A static neighbour survives its interface (VPP keeps it, stale).
    c.delete_loopback(l).await.expect("delete");
    assert_eq!(sim.handle.state().neighbors.len(), 1);

    let l = c
        .create_loopback_instance(mac("02:00:00:00:00:aa"), Some(1))
        .await
        .expect("l");
    assert_eq!(c.arping(l, n.ip, true).await.expect("garp"), 0);
    assert_eq!(
        c.arping(l, "fec0::32".parse().expect("a"), true)
            .await
            .expect("na"),
        0
    );
    assert_eq!(rv(c.arping(SwIfIndex(42), n.ip, true).await), -2);
    let j = sim.handle.journal();
    let garps: Vec<_> = j
        .iter()
        .filter(|e| e.msg == "arping" && e.retval == 0)
        .collect();
    assert_eq!(garps.len(), 2);
    assert_eq!(garps[0].str("mac"), Some("02:00:00:00:00:aa"));
}

#[tokio::test]
async fn vxlan_and_l2fib() {
    let sim = Sim::start(SimOptions::default()).await;
    let c = sim.client().await;
    let bd = c
        .bridge_domain_add(&BridgeDomainConfig::new(100))
        .await
        .expect("bd");
    let t = VxlanTunnel {
        instance: Some(100),
        src: "192.0.2.1".parse().expect("a"),
        dst: "192.0.2.2".parse().expect("a"),
        vni: 100,
        encap_vrf_id: 0,
        port: None,
    };
    let tif = c.vxlan_add_del_tunnel_v3(&t, true).await.expect("tunnel");
    assert_eq!(rv(c.vxlan_add_del_tunnel_v3(&t, true).await), -75);
    let d = c.vxlan_tunnel_dump(SwIfIndex::NONE).await.expect("dump");
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].src_port, d[0].dst_port, d[0].decap_next_index),
        (4789, 4789, 1)
    );
    assert_eq!(d[0].sw_if_index, tif.0);
    let ifs = c
        .sw_interface_dump(InterfaceFilter::Index(tif))
        .await
        .expect("if");
    assert_eq!(ifs[0].interface_name, "vxlan_tunnel100");
    assert_eq!(ifs[0].flags, 3, "tunnels are created admin-up");

    let e = L2fibEntry {
        mac: mac("52:54:00:00:01:00"),
        bd_id: bd,
        sw_if_index: tif,
        static_mac: true,
        filter_mac: false,
        bvi_mac: false,
    };
    assert_eq!(
        rv(c.l2fib_add_del(&e, true).await),
        -2,
        "tunnel not in a BD yet"
    );
    c.sw_interface_set_l2_bridge(tif, bd, L2PortType::Normal, 1, true)
        .await
        .expect("join");
    c.l2fib_add_del(&e, true).await.expect("l2fib add");
    c.l2fib_add_del(&e, false).await.expect("l2fib del");
    assert_eq!(rv(c.l2fib_add_del(&e, false).await), -6);
    c.l2fib_add_del(&e, true).await.expect("l2fib add");
    c.vxlan_add_del_tunnel_v3(&t, false).await.expect("delete");
    assert_eq!(rv(c.vxlan_add_del_tunnel_v3(&t, false).await), -6);
    assert!(
        c.vxlan_tunnel_dump(SwIfIndex::NONE)
            .await
            .expect("dump")
            .is_empty()
    );
    // The tunnel left the BD; its static l2fib entry stays (stale), as in VPP.
    let st = sim.handle.state();
    assert!(st.bridge_domains[&bd].members.is_empty());
    assert_eq!(st.l2fib.len(), 1);
}

#[tokio::test]
async fn interface_events_follow_replies() {
    let sim = Sim::start(SimOptions::default()).await;
    let c = sim.client().await;
    let mut ev = c.subscribe();
    c.want_interface_events(4242).await.expect("want");
    c.want_interface_events(4242)
        .await
        .expect("second subscribe is not an error");
    assert_eq!(sim.handle.event_subscribers(), 1);
    let l = c
        .create_loopback_instance(MacAddress::ZERO, Some(7))
        .await
        .expect("l");
    c.sw_interface_set_flags(l, true).await.expect("up");
    c.delete_loopback(l).await.expect("del");
    let mut got = Vec::new();
    while got.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(2), ev.recv()).await {
            Ok(Ok(ClientEvent::Interface(e))) => {
                got.push((e.pid, e.sw_if_index, e.flags, e.deleted))
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        got,
        [
            (4242, l.0, 0, false),
            (4242, l.0, 3, false),
            (4242, l.0, 0, true)
        ]
    );
    c.unwant_interface_events().await.expect("unwant");
    assert_eq!(sim.handle.event_subscribers(), 0);
    let l = c
        .create_loopback_instance(MacAddress::ZERO, Some(8))
        .await
        .expect("l");
    c.ping().await.expect("ping");
    assert!(ev.try_recv().is_err(), "no events after unsubscribing");
    let _ = l;
}

#[tokio::test]
async fn concurrent_requests_are_multiplexed() {
    let sim = Sim::start(SimOptions::default()).await;
    let c = sim.client().await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..40u32 {
        let c = c.clone();
        set.spawn(async move {
            let l = c
                .create_loopback_instance(MacAddress([2, 0, 0, 0, 1, i as u8]), Some(i))
                .await?;
            c.ping().await?;
            let d = c.sw_interface_dump(InterfaceFilter::Index(l)).await?;
            assert_eq!(d[0].interface_name, format!("loop{i}"));
            c.ip_address_dump(l, false).await?;
            Ok::<_, VppError>(l)
        });
    }
    let mut n = 0;
    while let Some(r) = set.join_next().await {
        r.expect("join").expect("ops");
        n += 1;
    }
    assert_eq!(n, 40);
    assert_eq!(
        c.sw_interface_dump(InterfaceFilter::All)
            .await
            .expect("all")
            .len(),
        41
    );
}

#[tokio::test]
async fn journal_records_order_and_mac_exclusivity() {
    let sim = Sim::start(SimOptions::default()).await;
    let c = sim.client().await;
    let vmac = mac("02:00:5e:00:01:01");
    let a = c.create_loopback_instance(vmac, Some(1)).await.expect("a");
    let b = c
        .create_loopback_instance(mac("02:00:00:00:00:02"), Some(2))
        .await
        .expect("b");
    c.sw_interface_add_del_address(a, pfx("10.0.0.1/24"), true)
        .await
        .expect("addr");
    // Hand the vMAC over: remove the address and change A's MAC first.
    c.sw_interface_add_del_address(a, pfx("10.0.0.1/24"), false)
        .await
        .expect("del");
    c.sw_interface_set_mac_address(a, mac("02:00:00:00:00:01"))
        .await
        .expect("mac a");
    c.sw_interface_set_mac_address(b, vmac)
        .await
        .expect("mac b");
    let j = sim.handle.journal();
    let pos = |msg: &str, f: &dyn Fn(&vppsim::JournalEntry) -> bool| {
        j.iter().position(|e| e.msg == msg && f(e)).expect("entry")
    };
    let del = pos("sw_interface_add_del_address", &|e| {
        e.fields["is_add"] == false
    });
    let mac_a = pos("sw_interface_set_mac_address", &|e| {
        e.u32("sw_if_index") == Some(a.0)
    });
    assert!(del < mac_a, "address removed before the MAC changed");
    assert!(
        j.windows(2)
            .all(|w| w[0].mono_ns <= w[1].mono_ns && w[0].wall_ns <= w[1].wall_ns + 1_000_000)
    );
    sim.handle
        .check_mac_exclusive(Some("02:00:5e:00:01:01"))
        .expect("exclusive");
    // Now a violation: A takes the vMAC back while B still has it.
    c.sw_interface_set_mac_address(a, vmac)
        .await
        .expect("mac a");
    let err = sim
        .handle
        .check_mac_exclusive(None)
        .expect_err("two holders");
    assert_eq!((err.first, err.second), (b.0, a.0));
}

#[tokio::test]
async fn short_unknown_and_foreign_messages_get_no_reply() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = Sim::start(SimOptions::default()).await;
    let table = sim.handle.message_table().clone();
    let mut s = tokio::net::UnixStream::connect(sim.handle.socket_path())
        .await
        .expect("c");
    let hs = msgs::encode_msg(&msgs::SockclntCreate { name: "raw".into() }, 15, 0, 1);
    s.write_all(&vpp_api::wire::frame(&hs)).await.expect("w");
    let mut buf = bytes::BytesMut::new();
    let ci = loop {
        s.read_buf(&mut buf).await.expect("r");
        if let Some(f) = vpp_api::wire::split_frames(&mut buf).expect("f").pop() {
            let (_, r) = msgs::decode_msg::<msgs::SockclntCreateReply>(&f).expect("reply");
            break r.index;
        }
    };
    let id = |n: &str| table.get(n).expect("id");
    let create = msgs::encode_msg(
        &msgs::CreateLoopbackInstance {
            mac_address: MacAddress::ZERO,
            is_specified: true,
            user_instance: 3,
        },
        id(msgs::CreateLoopbackInstance::NAME_CRC),
        ci,
        2,
    );
    let mut out = Vec::new();
    out.extend(vpp_api::wire::frame(&create[..create.len() - 1])); // short
    out.extend(vpp_api::wire::frame(&[
        0xff, 0xf0, 0x80, 0, 0, 1, 0, 0, 0, 3,
    ])); // unknown id
    let mut foreign = create.clone();
    foreign[2..6].copy_from_slice(&0x8000_0099u32.to_be_bytes()); // wrong client_index
    out.extend(vpp_api::wire::frame(&foreign));
    let ping = msgs::encode_msg(
        &msgs::ControlPing {},
        id(msgs::ControlPing::NAME_CRC),
        ci,
        5,
    );
    out.extend(vpp_api::wire::frame(&ping));
    s.write_all(&out).await.expect("w");
    let f = loop {
        s.read_buf(&mut buf).await.expect("r");
        if let Some(f) = vpp_api::wire::split_frames(&mut buf)
            .expect("f")
            .into_iter()
            .next()
        {
            break f;
        }
    };
    // The first (and only) answer is the ping's.
    assert_eq!(
        msgs::body_msg_id(&f),
        Some(id(msgs::ControlPingReply::NAME_CRC))
    );
    assert_eq!(msgs::reply_context(&f), Some(5));
    assert!(sim.handle.state().interface_by_name("loop3").is_none());
    assert!(sim.handle.journal().is_empty());
}

#[tokio::test]
async fn events_reach_other_subscribers() {
    let sim = Sim::start(SimOptions::default()).await;
    let a = sim.client().await;
    let b = sim.client().await;
    assert_ne!(a.client_index(), b.client_index());
    let mut ev = b.subscribe();
    b.want_interface_events(99).await.expect("want");
    let l = a
        .create_loopback_instance(MacAddress::ZERO, Some(3))
        .await
        .expect("l");
    match tokio::time::timeout(Duration::from_secs(2), ev.recv()).await {
        Ok(Ok(ClientEvent::Interface(e))) => {
            assert_eq!((e.pid, e.sw_if_index, e.deleted), (99, l.0, false))
        }
        other => panic!("{other:?}"),
    }
    // Closing B's socket drops its registration (VPP's reaper).
    b.disconnect().await.expect("disconnect");
    evpn_testkit::eventually(
        "B's event registration dropped",
        Duration::from_secs(10),
        async || match sim.handle.event_subscribers() {
            0 => Ok(()),
            n => Err(format!("{n} subscribers")),
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn observers_see_every_change_and_bvi_macs_follow_the_bvi() {
    let sim = Sim::start(SimOptions::default()).await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    sim.handle
        .observe(move |st| s2.lock().unwrap().push(st.bvi_macs()));
    let last = || seen.lock().unwrap().last().cloned().unwrap();
    let bvi = |m: &str| -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
        [("evpn-g".to_string(), [m.to_string()].into())].into()
    };
    assert!(last().is_empty(), "called at once with the state now");
    let c = sim.client().await;
    let l = c
        .create_loopback_instance(mac("02:00:00:00:00:01"), Some(1))
        .await
        .unwrap();
    let mut cfg = BridgeDomainConfig::new(100);
    cfg.tag = "evpn-g".into();
    c.bridge_domain_add(&cfg).await.unwrap();
    c.sw_interface_set_l2_bridge(l, 100, L2PortType::Bvi, 0, true)
        .await
        .unwrap();
    // Not announced while admin down.
    assert!(last().is_empty());
    c.sw_interface_set_flags(l, true).await.unwrap();
    assert_eq!(last(), bvi("02:00:00:00:00:01"));
    c.sw_interface_set_mac_address(l, mac("02:00:00:00:00:AA"))
        .await
        .unwrap();
    assert_eq!(last(), bvi("02:00:00:00:00:aa"));
    // An injected error changes nothing and tells no one.
    let n = seen.lock().unwrap().len();
    sim.handle
        .faults()
        .error_on_nth("sw_interface_set_flags", 1, -1);
    assert!(c.sw_interface_set_flags(l, false).await.is_err());
    assert_eq!(seen.lock().unwrap().len(), n);
    // A restart wipes it.
    sim.handle.faults().restart();
    assert!(last().is_empty());
}
