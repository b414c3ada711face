//! Kernel tests, each in its own network namespace (needs root).

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{in_netns, sh};
use evpn_model::Mac;
use ipnet::IpNet;
use netif::announce::{NaFlags, RawCapture, parse_arp, parse_na};
use netif::{
    AddrGenMode, BviSpec, Dataplane, EvpnSpec, FdbState, FdbTable, LinkKind, Netlink, Slug,
    VxlanOpts, eui64_link_local,
};

const HOST: Mac = Mac::new(0x02, 0, 0, 0, 0x01, 0x32);
const VMAC: Mac = Mac::new(0x42, 0x6c, 0xfa, 0xd6, 0x82, 0x98);

fn slug() -> Slug {
    Slug::new("red").unwrap()
}

fn evpn(mtu: u32) -> EvpnSpec {
    EvpnSpec {
        slug: slug(),
        vni: 100,
        vtep: "192.0.2.1".parse().unwrap(),
        mtu,
    }
}

fn bvi(mtu: u32) -> BviSpec {
    BviSpec {
        slug: slug(),
        mac: HOST,
        mtu,
    }
}

fn gw() -> Vec<IpNet> {
    vec![
        "172.16.0.32/24".parse().unwrap(),
        "fec0::32/64".parse().unwrap(),
    ]
}

/// Take the gateway as evpnd does: the vMAC with its FDB entry, then the addresses (IPv6
/// nodad). Returns the actions of the MAC step and the addresses added.
async fn bind(dp: &Dataplane) -> anyhow::Result<Vec<String>> {
    let mut done: Vec<String> = dp
        .set_mac(&slug(), VMAC, true)
        .await?
        .iter()
        .map(|a| a.to_string())
        .collect();
    let o = dp.observe(&slug()).await?;
    for net in gw() {
        if !o.bvi_addrs.iter().any(|a| a.net == net) {
            dp.netlink().add_address("bvi-red", net).await?;
            done.push(format!("add address {net} dev bvi-red"));
        }
    }
    Ok(done)
}

/// Give the gateway up as evpnd does: addresses first, then the per-host MAC.
async fn release(dp: &Dataplane) -> anyhow::Result<Vec<String>> {
    let o = dp.observe(&slug()).await?;
    let mut done = Vec::new();
    for net in gw() {
        if o.bvi_addrs.iter().any(|a| a.net == net) {
            dp.netlink().delete_address("bvi-red", net).await?;
            done.push(format!("delete address {net} dev bvi-red"));
        }
    }
    done.extend(
        dp.set_mac(&slug(), HOST, false)
            .await?
            .iter()
            .map(|a| a.to_string()),
    );
    Ok(done)
}

async fn setup(mtu: u32) -> anyhow::Result<Dataplane> {
    let dp = Dataplane::new(Netlink::connect()?);
    dp.ensure_evpn(&evpn(mtu)).await?;
    dp.ensure_bvi(&bvi(mtu)).await?;
    Ok(dp)
}

#[test]
fn netns_bridge_vxlan_create_observe_delete() {
    in_netns(|| async {
        let dp = Dataplane::new(Netlink::connect()?);
        let first = dp.ensure_evpn(&evpn(9000)).await?;
        assert_eq!(first.len(), 9, "{first:#?}");
        let o = dp.observe(&slug()).await?;
        let br = o.bridge.clone().expect("bridge");
        let vx = o.vxlan.clone().expect("vxlan");
        assert_eq!(br.kind, LinkKind::Bridge);
        assert_eq!(br.name, "brg-red");
        assert!(br.up);
        assert_eq!(br.mtu, 9000);
        assert_eq!(br.bridge_stp, Some(false));
        assert_ne!(br.bridge_vlan_filtering, Some(true));
        assert_eq!(br.addr_gen_mode, Some(AddrGenMode::None));
        assert_eq!(br.accept_dad, Some(0));
        assert_eq!(vx.kind, LinkKind::Vxlan);
        let info = vx.vxlan.clone().unwrap();
        assert_eq!(info.vni, 100);
        assert_eq!(info.local, Some("192.0.2.1".parse::<IpAddr>()?));
        assert_eq!(info.port, 4789);
        assert!(!info.learning);
        assert_eq!(vx.master, Some(br.index));
        assert!(!vx.port.unwrap().learning);
        assert!(vx.up);
        assert_eq!(vx.mtu, 9000);
        let ports: Vec<&str> = o.bridge_ports.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(ports, ["vxl-red"]);
        // cross-check with iproute2
        let d = sh("ip -d link show dev vxl-red");
        assert!(d.contains("id 100") && d.contains("local 192.0.2.1"), "{d}");
        assert!(
            d.contains("dstport 4789") && d.contains("nolearning"),
            "{d}"
        );
        assert!(d.contains("master brg-red"), "{d}");
        assert!(sh("bridge -d link show dev vxl-red").contains("learning off"));
        // idempotent
        assert!(dp.ensure_evpn(&evpn(9000)).await?.is_empty());
        // a VNI change recreates the VXLAN device, leaves the bridge
        let changed = dp
            .ensure_evpn(&EvpnSpec {
                vni: 200,
                ..evpn(9000)
            })
            .await?;
        assert_eq!(changed[0].to_string(), "delete link vxl-red");
        let o2 = dp.observe(&slug()).await?;
        assert_eq!(o2.vxlan.unwrap().vxlan.unwrap().vni, 200);
        assert_eq!(o2.bridge.unwrap().index, br.index);
        // remove
        let removed = dp.remove_evpn(&slug()).await?;
        assert_eq!(removed.len(), 2);
        let o3 = dp.observe(&slug()).await?;
        assert!(o3.bridge.is_none() && o3.vxlan.is_none());
        assert!(dp.remove_evpn(&slug()).await?.is_empty());
        Ok(())
    });
}

#[test]
fn netns_bvi_veth_setup() {
    in_netns(|| async {
        let dp = Dataplane::new(Netlink::connect()?);
        dp.ensure_evpn(&evpn(1500)).await?;
        let acts = dp.ensure_bvi(&bvi(1500)).await?;
        assert!(!acts.is_empty());
        // Not synchronisation: time for IPv6 autoconf to (wrongly) add anything.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let o = dp.observe(&slug()).await?;
        let (b, p, br) = (
            o.bvi.clone().unwrap(),
            o.port.clone().unwrap(),
            o.bridge.clone().unwrap(),
        );
        assert_eq!(b.kind, LinkKind::Veth);
        assert_eq!(b.link, Some(p.index));
        assert_eq!(b.mac, Some(HOST));
        assert!(b.up && p.up);
        assert_eq!(b.addr_gen_mode, Some(AddrGenMode::None));
        assert_eq!(b.accept_dad, Some(0));
        assert_eq!(netif::sysctl::read_ipv6_conf("bvi-red", "accept_dad")?, 0);
        assert_eq!(p.master, Some(br.index));
        assert!(!p.port.unwrap().learning);
        assert_eq!(p.addr_gen_mode, Some(AddrGenMode::None));
        // exactly one address: the EUI-64 link-local of the per-host MAC, usable
        assert_eq!(o.bvi_addrs.len(), 1, "{:#?}", o.bvi_addrs);
        let ll = &o.bvi_addrs[0];
        assert_eq!(ll.net, eui64_link_local(HOST));
        assert!(!ll.tentative && ll.nodad);
        let ipa = sh("ip -6 addr show dev bvi-red");
        assert!(
            ipa.contains("fe80::ff:fe00:132/64") && !ipa.contains("tentative"),
            "{ipa}"
        );
        assert!(sh("ip -d link show dev bvi-red").contains("addrgenmode none"));
        assert!(sh("bridge -d link show dev bvp-red").contains("learning off"));
        // the bridge and the port have no IPv6 address at all
        let all = dp.netlink().list_addresses(None).await?;
        assert!(
            all.iter().all(|a| a.index == b.index || a.index == 1),
            "{all:#?}"
        );
        // idempotent
        let again = dp.ensure_bvi(&bvi(1500)).await?;
        assert!(again.is_empty(), "{again:#?}");
        // the kernel flushes IPv6 addresses of a link that goes down; ensure_bvi repairs
        dp.netlink().set_up("bvi-red", false).await?;
        assert!(dp.observe(&slug()).await?.bvi_addrs.is_empty());
        let fix = dp.ensure_bvi(&bvi(1500)).await?;
        let fix: Vec<String> = fix.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            fix,
            [
                "set bvi-red up",
                "add address fe80::ff:fe00:132/64 dev bvi-red"
            ]
        );
        Ok(())
    });
}

#[test]
fn netns_bind_release_order_and_state() {
    in_netns(|| async {
        let dp = setup(1500).await?;
        let nl = dp.netlink();
        // BIRD's remote entry for the vMAC: on the VXLAN port, extern_learn.
        nl.add_fdb("vxl-red", VMAC, FdbState::Dynamic, true).await?;
        let o = dp.observe(&slug()).await?;
        let e = o.bridge_entry(VMAC).unwrap();
        assert!(e.extern_learn && e.index == o.vxlan.as_ref().unwrap().index);
        // bind
        let s = bind(&dp).await?;
        assert_eq!(
            s,
            [
                "fdb del 42:6c:fa:d6:82:98 dev vxl-red master",
                "set bvi-red address 42:6c:fa:d6:82:98",
                "fdb add 42:6c:fa:d6:82:98 dev bvp-red master static",
                "add address 172.16.0.32/24 dev bvi-red",
                "add address fec0::32/64 dev bvi-red",
            ]
        );
        let o = dp.observe(&slug()).await?;
        assert!(o.is_bound(VMAC, &gw()));
        let e = o.bridge_entry(VMAC).unwrap();
        assert_eq!(e.index, o.port.as_ref().unwrap().index);
        assert_eq!(e.state, FdbState::Static);
        assert!(!e.extern_learn);
        let v6 = o.bvi_addrs.iter().find(|a| a.net == gw()[1]).unwrap();
        assert!(!v6.tentative && v6.nodad);
        assert!(o.bvi_addrs.iter().any(|a| a.net == eui64_link_local(HOST)));
        let fdb = sh("bridge fdb show dev bvp-red");
        assert!(
            fdb.contains("42:6c:fa:d6:82:98 master brg-red static"),
            "{fdb}"
        );
        assert!(!sh("bridge fdb show dev vxl-red").contains("42:6c:fa:d6:82:98"));
        assert!(!sh("ip -6 addr show dev bvi-red").contains("tentative"));
        // bind again: nothing to do
        assert!(bind(&dp).await?.is_empty());
        // release
        let s = release(&dp).await?;
        assert_eq!(
            s,
            [
                "delete address 172.16.0.32/24 dev bvi-red",
                "delete address fec0::32/64 dev bvi-red",
                "fdb del 42:6c:fa:d6:82:98 dev bvp-red master",
                "set bvi-red address 02:00:00:00:01:32",
            ]
        );
        let o = dp.observe(&slug()).await?;
        assert!(o.bridge_entry(VMAC).is_none());
        assert!(o.port_entries().is_empty());
        assert_eq!(o.bvi.as_ref().unwrap().mac, Some(HOST));
        assert_eq!(o.bvi_addrs.len(), 1);
        assert_eq!(o.bvi_addrs[0].net, eui64_link_local(HOST));
        assert!(!sh("bridge fdb show dev bvp-red").contains("42:6c:fa:d6:82:98"));
        assert!(release(&dp).await?.is_empty());
        // ensure_bvi on a bound BVI keeps the vMAC (no outage on daemon restart)
        bind(&dp).await?;
        assert!(dp.ensure_bvi(&bvi(1500)).await?.is_empty());
        assert!(dp.ensure_evpn(&evpn(1500)).await?.is_empty());
        assert!(dp.observe(&slug()).await?.is_bound(VMAC, &gw()));
        Ok(())
    });
}

#[test]
fn netns_garp_and_na_transmitted() {
    in_netns(|| async {
        let dp = setup(1500).await?;
        let nl = dp.netlink().clone();
        bind(&dp).await?;
        // a "host" on the bridge: h0 is a bridge port, h1 its peer where we capture
        nl.create_veth("h0", "h1", None).await?;
        nl.set_master("h0", Some("brg-red")).await?;
        nl.set_up("h0", true).await?;
        nl.set_up("h1", true).await?;
        let h1 = nl.index_of("h1").await?;
        let cap = RawCapture::open("h1", h1)?;
        let ann = dp.announcer(&slug()).await?;
        dp.announce(&ann, VMAC, &gw(), NaFlags::default())?;
        let t = Duration::from_secs(2);
        let arp = cap
            .recv_until(t, |f| parse_arp(f).filter(|a| a.sha == VMAC))?
            .expect("GARP seen on the peer");
        assert_eq!(arp.op, 1);
        assert!(arp.eth_dst.is_broadcast());
        assert_eq!(arp.eth_src, VMAC);
        assert_eq!(arp.spa, "172.16.0.32".parse::<std::net::Ipv4Addr>()?);
        assert_eq!(arp.tpa, arp.spa);
        assert_eq!(arp.tha, Mac::ZERO);
        let na = cap
            .recv_until(t, |f| parse_na(f).filter(|n| n.tlla == Some(VMAC)))?
            .expect("NA seen on the peer");
        assert_eq!(na.hop_limit, 255);
        assert_eq!(na.dst, "ff02::1".parse::<std::net::Ipv6Addr>()?);
        assert_eq!(IpAddr::V6(na.src), eui64_link_local(HOST).addr());
        assert_eq!(na.target, "fec0::32".parse::<std::net::Ipv6Addr>()?);
        assert!(na.override_ && na.router && !na.solicited);
        assert_eq!(na.eth_src, VMAC);
        assert_eq!(na.eth_dst, Mac::new(0x33, 0x33, 0, 0, 0, 1));
        Ok(())
    });
}

#[test]
fn netns_errors_are_typed() {
    in_netns(|| async {
        let nl = Netlink::connect()?;
        nl.create_bridge("brg-x", None).await?;
        let e = nl.create_bridge("brg-x", None).await.unwrap_err();
        assert!(e.is_exists(), "{e}");
        assert_eq!(e.to_string(), "create bridge brg-x: already exists");
        let e = nl.delete_link("nope").await.unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert_eq!(e.to_string(), "delete link nope: not found");
        assert!(nl.link_by_name("nope").await?.is_none());
        nl.create_veth("a0", "a1", Some(1400)).await?;
        assert_eq!(nl.link_by_name("a1").await?.unwrap().mtu, 1400);
        let net: IpNet = "198.51.100.1/24".parse()?;
        let e = nl.delete_address("a0", net).await.unwrap_err();
        assert!(e.is_not_found(), "{e}");
        nl.add_address("a0", net).await?;
        assert!(nl.add_address("a0", net).await.unwrap_err().is_exists());
        nl.delete_address("a0", net).await?;
        nl.set_master("a0", Some("brg-x")).await?;
        let e = nl
            .delete_fdb("a0", VMAC, FdbTable::Master, None)
            .await
            .unwrap_err();
        assert!(e.is_not_found(), "{e}");
        nl.set_bridge_port("a0", Some(false), Some(true)).await?;
        let a0 = nl.link_by_name("a0").await?.unwrap();
        let port = a0.port.unwrap();
        assert!(!port.learning && port.neigh_suppress);
        assert_eq!(nl.link_by_index(a0.index).await?.unwrap().name, "a0");
        assert!(nl.link_by_index(99999).await?.is_none());
        nl.add_fdb_static("a0", VMAC).await?;
        let e = nl.add_fdb_static("a0", VMAC).await.unwrap_err();
        assert!(e.is_exists(), "{e}");
        nl.delete_fdb("a0", VMAC, FdbTable::Master, None).await?;
        let e = nl
            .create_vxlan(
                "vxl-x",
                &VxlanOpts {
                    vni: 1 << 24,
                    local: "192.0.2.1".parse()?,
                    port: 4789,
                    learning: false,
                    mtu: None,
                },
            )
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("create vxlan vxl-x: "), "{e}");
        Ok(())
    });
}

#[test]
fn netns_vxlan_self_entries_listed() {
    in_netns(|| async {
        let dp = setup(1500).await?;
        // what BIRD installs for a remote MAC: a `self` entry with dst on the VXLAN device
        sh(
            "bridge fdb add 42:6c:fa:d6:82:98 dev vxl-red dst 192.0.2.2 self extern_learn permanent",
        );
        let o = dp.observe(&slug()).await?;
        let e = o
            .fdb
            .iter()
            .find(|e| e.is_self && e.mac == VMAC)
            .expect("self entry");
        assert_eq!(e.dst, Some("192.0.2.2".parse()?));
        assert!(e.extern_learn);
        // the kernel-filtered dump of one bridge has it too, another bridge's dump not
        let br = o.bridge.as_ref().unwrap().index;
        let mut of_bridge = dp.netlink().list_fdb_of_bridge(br).await?;
        of_bridge.retain(|e| e.mac == VMAC);
        assert_eq!(of_bridge.len(), 1, "{of_bridge:#?}");
        assert!(of_bridge[0].is_self);
        dp.netlink().create_bridge("brg-other", None).await?;
        let other = dp.netlink().index_of("brg-other").await?;
        assert!(
            dp.netlink()
                .list_fdb_of_bridge(other)
                .await?
                .iter()
                .all(|e| e.mac != VMAC)
        );
        dp.netlink()
            .delete_fdb("vxl-red", VMAC, FdbTable::OwnTable, e.dst)
            .await?;
        let o = dp.observe(&slug()).await?;
        assert!(!o.fdb.iter().any(|e| e.is_self && e.mac == VMAC));
        Ok(())
    });
}

#[test]
fn netns_panic_in_body_propagates() {
    let r = std::panic::catch_unwind(|| {
        in_netns(|| async {
            let nl = Netlink::connect()?;
            nl.create_bridge("brg-panic", None).await?;
            panic!("boom");
        })
    });
    assert!(r.is_err());
    // the namespace (and brg-panic) died with its thread: a fresh namespace has nothing
    in_netns(|| async {
        assert!(
            Netlink::connect()?
                .link_by_name("brg-panic")
                .await?
                .is_none()
        );
        Ok(())
    });
}

#[test]
fn netns_jumbo_mtu_converges() {
    in_netns(|| async {
        let dp = setup(9000).await?;
        let o = dp.observe(&slug()).await?;
        for l in [&o.bridge, &o.vxlan, &o.port, &o.bvi] {
            assert_eq!(l.as_ref().unwrap().mtu, 9000, "{l:#?}");
        }
        assert!(dp.ensure_evpn(&evpn(9000)).await?.is_empty());
        assert!(dp.ensure_bvi(&bvi(9000)).await?.is_empty());
        // MTU changes on a live eVPN, down and up again
        for mtu in [1400, 9000] {
            dp.ensure_evpn(&evpn(mtu)).await?;
            dp.ensure_bvi(&bvi(mtu)).await?;
            let o = dp.observe(&slug()).await?;
            for l in [&o.bridge, &o.vxlan, &o.port, &o.bvi] {
                assert_eq!(l.as_ref().unwrap().mtu, mtu, "{l:#?}");
            }
            assert!(dp.ensure_evpn(&evpn(mtu)).await?.is_empty());
            assert!(dp.ensure_bvi(&bvi(mtu)).await?.is_empty());
        }
        Ok(())
    });
}

/// Not a benchmark: prints how long bind and release take through netlink (observe + plan +
/// execute) so regressions are visible; the bound is generous to stay robust on a busy CI.
#[test]
fn netns_bind_release_timing() {
    in_netns(|| async {
        let dp = setup(1500).await?;
        let (mut binds, mut releases) = (Vec::new(), Vec::new());
        for _ in 0..20 {
            dp.netlink()
                .add_fdb("vxl-red", VMAC, FdbState::Static, true)
                .await?;
            let t = std::time::Instant::now();
            let n = bind(&dp).await?.len();
            binds.push(t.elapsed());
            assert_eq!(n, 5);
            let t = std::time::Instant::now();
            let n = release(&dp).await?.len();
            releases.push(t.elapsed());
            assert_eq!(n, 4);
        }
        binds.sort();
        releases.sort();
        println!(
            "bind p50 {:?} max {:?}; release p50 {:?} max {:?}",
            binds[10], binds[19], releases[10], releases[19]
        );
        assert!(binds[10] < Duration::from_millis(100));
        assert!(releases[10] < Duration::from_millis(100));
        Ok(())
    });
}

#[test]
fn netns_remove_orphans_and_paced_announce() {
    in_netns(|| async {
        let dp = setup(1500).await?;
        let blue = Slug::new("blue")?;
        dp.ensure_evpn(&EvpnSpec {
            slug: blue.clone(),
            vni: 200,
            vtep: "192.0.2.1".parse()?,
            mtu: 1500,
        })
        .await?;
        dp.ensure_bvi(&BviSpec {
            slug: blue.clone(),
            mac: Mac::new(2, 0, 0, 0, 2, 0x32),
            mtu: 1500,
        })
        .await?;
        let nl = dp.netlink();
        nl.create_veth("h0", "h1", None).await?;
        // only "red" is still configured
        let gone = dp.remove_orphans(&[slug()]).await?;
        assert_eq!(gone, ["bvi-blue", "vxl-blue", "brg-blue"]);
        assert!(dp.observe(&blue).await?.bridge.is_none());
        assert!(
            nl.link_by_name("h0").await?.is_some(),
            "foreign devices stay"
        );
        assert!(dp.observe(&slug()).await?.bvi.is_some());
        // paced announcements on the remaining eVPN
        bind(&dp).await?;
        nl.set_master("h0", Some("brg-red")).await?;
        nl.set_up("h0", true).await?;
        nl.set_up("h1", true).await?;
        let cap = RawCapture::open("h1", nl.index_of("h1").await?)?;
        let ann = dp.announcer(&slug()).await?;
        let sched = netif::announce::Schedule::constant(3, Duration::from_millis(20));
        let t0 = std::time::Instant::now();
        dp.announce_paced(&ann, VMAC, &gw()[..1], NaFlags::default(), &sched)
            .await?;
        assert!(t0.elapsed() >= Duration::from_millis(40));
        let mut garps = 0;
        while cap
            .recv_until(Duration::from_millis(200), |f| {
                parse_arp(f).filter(|a| a.sha == VMAC)
            })?
            .is_some()
        {
            garps += 1;
        }
        assert_eq!(garps, 3);
        Ok(())
    });
}

#[test]
fn netns_watch_fdb_and_addr_events() {
    in_netns(|| async {
        let dp = setup(1500).await?;
        let mut w = netif::Watcher::open()?;
        let nl = dp.netlink();
        // what the new owner waits for in an evidence-based move: BIRD's entry going away
        nl.add_fdb("vxl-red", VMAC, FdbState::Dynamic, true).await?;
        bind(&dp).await?;
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while seen.len() < 4 {
            let ev = tokio::time::timeout_at(deadline, w.next())
                .await?
                .expect("events");
            match &ev {
                netif::Event::FdbNew(e) if e.mac == VMAC && e.in_bridge() => {
                    seen.push(format!("fdb new ext={}", e.extern_learn))
                }
                netif::Event::FdbDel(e) if e.mac == VMAC && e.in_bridge() => {
                    seen.push(format!("fdb del ext={}", e.extern_learn))
                }
                netif::Event::AddrNew(a) if gw().contains(&a.net) => {
                    seen.push(format!("addr new {}", a.net))
                }
                _ => {}
            }
        }
        assert_eq!(
            seen,
            [
                "fdb new ext=true",
                "fdb del ext=true",
                "fdb new ext=false",
                "addr new 172.16.0.32/24",
            ]
        );
        Ok(())
    });
}
