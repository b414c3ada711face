//! Unit tests of the Linux dataplane's pure planning and observation.
use super::*;
use netif::FdbState;
use netif::{Addr, AddrGenMode, BridgePortInfo, FdbEntry, Link, LinkKind};

const PER_HOST: [u8; 6] = [2, 0, 0, 0, 1, 0x32];
const VMAC: [u8; 6] = [2, 0x42, 0, 0, 0, 1];
// Indexes: brg 10, vxl 11, bvp 12, bvi 13.

fn link(index: u32, name: &str, kind: LinkKind) -> Link {
    Link {
        index,
        name: name.into(),
        kind,
        mac: Some(Mac::new(0x0a, 0, 0, 0, 0, index as u8)),
        mtu: 1500,
        master: None,
        up: true,
        link: None,
        vxlan: None,
        bridge_stp: None,
        bridge_vlan_filtering: None,
        port: None,
        addr_gen_mode: Some(AddrGenMode::None),
        accept_dad: Some(0),
    }
}

pub(super) fn entry(mac: [u8; 6], index: u32, state: FdbState, extern_learn: bool) -> FdbEntry {
    FdbEntry {
        mac: Mac::from(mac),
        index,
        master: Some(10),
        vlan: None,
        dst: None,
        vni: None,
        is_self: false,
        is_master: true,
        extern_learn,
        sticky: false,
        state,
    }
}

fn addr(net: &str) -> Addr {
    Addr {
        index: 13,
        net: net.parse().unwrap(),
        nodad: true,
        tentative: false,
        dad_failed: false,
        permanent: true,
    }
}

/// A bound (vmac) or candidate host as evpnd leaves it.
fn host(bound: bool) -> Observed {
    let slug = Slug::new("test").unwrap();
    let mut o = Observed::empty(&slug);
    let mut bvi = link(13, "bvi-test", LinkKind::Veth);
    bvi.link = Some(12);
    let mac = if bound { VMAC } else { PER_HOST };
    bvi.mac = Some(Mac::from(mac));
    let mut port = link(12, "bvp-test", LinkKind::Veth);
    port.link = Some(13);
    port.master = Some(10);
    port.port = Some(BridgePortInfo {
        learning: false,
        neigh_suppress: false,
    });
    port.accept_dad = Some(1);
    let mut vx = link(11, "vxl-test", LinkKind::Vxlan);
    vx.master = Some(10);
    o.bridge = Some(link(10, "brg-test", LinkKind::Bridge));
    o.vxlan = Some(vx.clone());
    o.port = Some(port.clone());
    o.bvi = Some(bvi);
    o.bridge_ports = vec![vx, port];
    let ll = Mac(mac).link_local();
    o.bvi_addrs = vec![addr(&format!("{ll}/64"))];
    // The port's own MAC: the kernel's local entry, never ours.
    o.fdb = vec![entry(
        [0x0a, 0, 0, 0, 0, 12],
        12,
        FdbState::Permanent,
        false,
    )];
    if bound {
        o.bvi_addrs.push(addr("172.16.0.1/24"));
        o.bvi_addrs.push(addr("fec0::1/64"));
        o.fdb.push(entry(VMAC, 12, FdbState::Static, false));
    }
    o
}

fn ph() -> Option<Mac> {
    Some(Mac::from(PER_HOST))
}

#[test]
fn observe_matches_what_evpnd_set_so_reconcile_has_nothing_to_do() {
    for bound in [false, true] {
        let o = host(bound);
        let b = observed_bvi(&o, ph()).unwrap();
        let mac = if bound { VMAC } else { PER_HOST };
        assert_eq!(b.mac, Mac(mac));
        assert_eq!(b.link_local, Some(Mac(mac).link_local()));
        assert!(b.up && b.attached && b.linux.is_some());
        assert_eq!(b.mtu, 1500);
        assert_eq!(b.addresses.len(), if bound { 2 } else { 0 });
        assert!(plan_set_mac(&o, Mac::from(mac), bound).is_empty());
    }
}

#[test]
fn observe_reports_a_missing_or_stale_fdb_entry_as_a_wrong_mac() {
    // Bound, but the static entry is gone: the fabric does not see us.
    let mut o = host(true);
    o.fdb.retain(|e| e.state != FdbState::Static);
    assert_eq!(observed_bvi(&o, ph()).unwrap().mac, Mac([0; 6]));
    // Candidate with a leftover vMAC entry (crash mid-release).
    let mut o = host(false);
    o.fdb.push(entry(VMAC, 12, FdbState::Static, false));
    assert_eq!(observed_bvi(&o, ph()).unwrap().mac, Mac([0; 6]));
    // Two link-locals: none reported, so reconcile sets the right one.
    let mut o = host(false);
    o.bvi_addrs.push(addr("fe80::1/64"));
    assert_eq!(observed_bvi(&o, ph()).unwrap().link_local, None);
    // Learning on, or not in the bridge: not attached.
    let mut o = host(false);
    o.port.as_mut().unwrap().port = Some(BridgePortInfo {
        learning: true,
        neigh_suppress: false,
    });
    assert!(!observed_bvi(&o, ph()).unwrap().attached);
    // A broken pair is no BVI (recreated by reconcile).
    let mut o = host(false);
    o.port.as_mut().unwrap().link = None;
    assert!(observed_bvi(&o, ph()).is_none());
}

#[test]
fn bind_deletes_birds_remote_entry_before_adding_a_clean_static_one() {
    let mut o = host(false);
    // BIRD's entry for the vMAC, learned from the old primary.
    o.fdb.push(entry(VMAC, 11, FdbState::Static, true));
    let a = plan_set_mac(&o, Mac::from(VMAC), true);
    let v = Mac::from(VMAC);
    assert_eq!(
        a,
        vec![
            Action::DeleteFdb {
                dev: "vxl-test".into(),
                mac: v,
                table: FdbTable::Master,
            },
            Action::SetMac {
                name: "bvi-test".into(),
                mac: v,
            },
            Action::AddFdbStatic {
                port: "bvp-test".into(),
                mac: v,
            },
        ]
    );
    // Our own entry with extern_learn (a `replace` over BIRD's) is not
    // clean: deleted and added again.
    let mut o = host(true);
    o.fdb.retain(|e| e.state != FdbState::Static);
    o.fdb.push(entry(VMAC, 12, FdbState::Static, true));
    let a = plan_set_mac(&o, v, true);
    assert!(matches!(&a[0], Action::DeleteFdb { dev, .. } if dev == "bvp-test"));
    assert!(matches!(a.last(), Some(Action::AddFdbStatic { .. })));
}

#[test]
fn release_deletes_every_managed_port_entry_then_reverts_the_mac() {
    let mut o = host(true);
    // A learned leftover as well (would linger for the ageing time).
    o.fdb
        .push(entry([2, 0, 0, 0, 0, 9], 12, FdbState::Dynamic, false));
    let a = plan_set_mac(&o, Mac::from(PER_HOST), false);
    assert_eq!(a.len(), 3, "{a:?}");
    assert!(
        a[..2]
            .iter()
            .all(|x| matches!(x, Action::DeleteFdb { dev, .. } if dev == "bvp-test"))
    );
    assert_eq!(
        a[2],
        Action::SetMac {
            name: "bvi-test".into(),
            mac: Mac::from(PER_HOST),
        }
    );
    // The per-host MAC wants no managed entry on the port.
    assert!(host(false).fdb_consistent(Mac::from(PER_HOST), false));
    assert!(!host(true).fdb_consistent(Mac::from(VMAC), false));
}

#[test]
fn a_static_entry_on_the_vxlan_device_is_wrong_and_deleted() {
    let v = Mac::from(VMAC);
    let del_on_vxlan = |mac: Mac| Action::DeleteFdb {
        dev: "vxl-test".into(),
        mac,
        table: FdbTable::Master,
    };
    // A released candidate whose old static entry BIRD moved onto the
    // VXLAN device (`extern_learn … static`): not what a candidate may
    // have; reported as a wrong MAC, and the per-host set_mac deletes it.
    let mut o = host(false);
    o.fdb.push(entry(VMAC, 11, FdbState::Static, true));
    assert_eq!(o.stray_statics().len(), 1);
    assert_eq!(observed_bvi(&o, ph()).unwrap().mac, Mac([0; 6]));
    assert_eq!(
        plan_set_mac(&o, Mac::from(PER_HOST), false),
        vec![del_on_vxlan(v)]
    );
    // The same by hand (static, not extern_learn).
    let mut o = host(false);
    o.fdb.push(entry(VMAC, 11, FdbState::Static, false));
    assert_eq!(observed_bvi(&o, ph()).unwrap().mac, Mac([0; 6]));
    // BIRD's own remote entry (extern_learn, not static) is fine.
    let mut o = host(false);
    o.fdb.push(entry(VMAC, 11, FdbState::Dynamic, true));
    assert!(o.stray_statics().is_empty());
    assert_eq!(observed_bvi(&o, ph()).unwrap().mac, Mac(PER_HOST));
    // A primary with another MAC pinned static on the VXLAN device: wrong;
    // set_mac deletes it and keeps its own clean entry.
    let other = [2, 0, 0, 0, 0, 0x77];
    let mut o = host(true);
    o.fdb.push(entry(other, 11, FdbState::Static, false));
    assert_eq!(observed_bvi(&o, ph()).unwrap().mac, Mac([0; 6]));
    assert_eq!(
        plan_set_mac(&o, v, true),
        vec![del_on_vxlan(Mac::from(other))]
    );
}

#[test]
fn alias_round_trips() {
    assert_eq!(
        parse_alias(&alias("red-1", 10007)),
        Some(("red-1".to_string(), 10007))
    );
    assert_eq!(parse_alias("something else"), None);
    assert_eq!(parse_alias("vpp-evpn evpn=x"), None);
}
