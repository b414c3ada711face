//! Data tests of the planners against a tiny in-memory kernel model.

use super::*;
use crate::link::{BridgePortInfo, VxlanInfo};

const HOST: Mac = Mac::new(0x02, 0, 0, 0, 0x01, 0x32);
const VMAC: Mac = Mac::new(0x42, 0x6c, 0xfa, 0xd6, 0x82, 0x98);

fn slug() -> Slug {
    Slug::new("red").unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn evpn() -> EvpnSpec {
    EvpnSpec {
        slug: slug(),
        vni: 100,
        vtep: "10.0.0.1".parse().unwrap(),
        mtu: 1500,
    }
}

fn bvi_spec() -> BviSpec {
    BviSpec {
        slug: slug(),
        mac: HOST,
        mtu: 1500,
    }
}

/// A very small model of the kernel objects the planners touch.
#[derive(Default, Debug, Clone)]
struct Model {
    links: Vec<Link>,
    addrs: Vec<Addr>,
    fdb: Vec<FdbEntry>,
    next: u32,
}

fn link(index: u32, name: &str, kind: LinkKind) -> Link {
    Link {
        index,
        name: name.into(),
        kind,
        mac: Some(Mac::new(0x0a, 0, 0, 0, 0, index as u8)),
        mtu: 1500,
        master: None,
        up: false,
        link: None,
        vxlan: None,
        bridge_stp: None,
        bridge_vlan_filtering: None,
        port: None,
        addr_gen_mode: Some(AddrGenMode::Eui64),
        accept_dad: Some(1),
    }
}

fn fdb(mac: Mac, index: u32, master: u32, state: FdbState, extern_learn: bool) -> FdbEntry {
    FdbEntry {
        mac,
        index,
        master: Some(master),
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

impl Model {
    fn idx(&self, name: &str) -> u32 {
        self.links.iter().find(|l| l.name == name).unwrap().index
    }
    fn get(&mut self, name: &str) -> &mut Link {
        self.links.iter_mut().find(|l| l.name == name).unwrap()
    }
    fn add_link(&mut self, name: &str, kind: LinkKind) -> u32 {
        self.next += 1;
        self.links.push(link(self.next + 10, name, kind));
        self.next + 10
    }

    fn apply(&mut self, actions: &[Action]) {
        for a in actions {
            self.apply_one(a);
        }
    }

    fn apply_one(&mut self, a: &Action) {
        match a {
            Action::CreateBridge { name, mtu } => {
                self.add_link(name, LinkKind::Bridge);
                let l = self.get(name);
                l.mtu = *mtu;
                l.bridge_stp = Some(false);
                l.bridge_vlan_filtering = Some(false);
            }
            Action::CreateVxlan {
                name,
                vni,
                local,
                port,
                mtu,
            } => {
                self.add_link(name, LinkKind::Vxlan);
                let l = self.get(name);
                l.mtu = *mtu;
                l.vxlan = Some(VxlanInfo {
                    vni: *vni,
                    local: Some(*local),
                    port: *port,
                    learning: false,
                });
            }
            Action::CreateVeth { name, peer, mtu } => {
                let a = self.add_link(name, LinkKind::Veth);
                let b = self.add_link(peer, LinkKind::Veth);
                self.get(name).mtu = *mtu;
                self.get(peer).mtu = *mtu;
                self.get(name).link = Some(b);
                self.get(peer).link = Some(a);
            }
            Action::DeleteLink { name } => {
                let l = self.get(name).clone();
                let gone: Vec<u32> = std::iter::once(l.index).chain(l.link).collect();
                self.links.retain(|x| !gone.contains(&x.index));
                for x in &mut self.links {
                    if x.master.is_some_and(|m| gone.contains(&m)) {
                        x.master = None;
                        x.port = None;
                    }
                }
                self.addrs.retain(|x| !gone.contains(&x.index));
                self.fdb.retain(|x| !gone.contains(&x.index));
            }
            Action::SetMaster { name, master } => {
                let m = self.idx(master);
                let l = self.get(name);
                l.master = Some(m);
                l.port = Some(BridgePortInfo {
                    learning: true,
                    neigh_suppress: false,
                });
            }
            Action::SetLearning { name, on } => {
                self.get(name).port.as_mut().unwrap().learning = *on
            }
            Action::SetMac { name, mac } => self.get(name).mac = Some(*mac),
            Action::SetMtu { name, mtu } => self.get(name).mtu = *mtu,
            Action::SetUp { name } => self.get(name).up = true,
            Action::SetAddrGenModeNone { name } => {
                self.get(name).addr_gen_mode = Some(AddrGenMode::None)
            }
            Action::SetAcceptDad { name, value } => self.get(name).accept_dad = Some(*value),
            Action::AddAddress { name, net } => {
                let index = self.idx(name);
                assert!(
                    !self.addrs.iter().any(|a| a.index == index && a.net == *net),
                    "EEXIST {net}"
                );
                self.addrs.push(Addr {
                    index,
                    net: *net,
                    nodad: net.addr().is_ipv6(),
                    tentative: false,
                    dad_failed: false,
                    permanent: true,
                });
            }
            Action::DeleteAddress { name, net } => {
                let index = self.idx(name);
                let before = self.addrs.len();
                self.addrs.retain(|a| !(a.index == index && a.net == *net));
                assert_eq!(before, self.addrs.len() + 1, "ENOENT {net}");
            }
            Action::AddFdbStatic { port, mac } => {
                let index = self.idx(port);
                let master = self.get(port).master.unwrap();
                assert!(
                    !self
                        .fdb
                        .iter()
                        .any(|e| e.mac == *mac && e.master == Some(master)),
                    "EEXIST fdb {mac}"
                );
                self.fdb
                    .push(fdb(*mac, index, master, FdbState::Static, false));
            }
            Action::DeleteFdb { dev, mac, table } => {
                assert_eq!(*table, FdbTable::Master);
                let index = self.idx(dev);
                let before = self.fdb.len();
                self.fdb
                    .retain(|e| !(e.index == index && e.mac == *mac && e.in_bridge()));
                assert_eq!(before, self.fdb.len() + 1, "ENOENT fdb {mac} {dev}");
            }
        }
    }

    fn observe(&self) -> Observed {
        let names = slug().names();
        let find = |n: &str| self.links.iter().find(|l| l.name == n).cloned();
        let bridge = find(&names.bridge);
        let bvi = find(&names.bvi);
        let br_idx = bridge.as_ref().map(|b| b.index);
        Observed {
            bridge_ports: self
                .links
                .iter()
                .filter(|l| l.master.is_some() && l.master == br_idx)
                .cloned()
                .collect(),
            bvi_addrs: self
                .addrs
                .iter()
                .filter(|a| Some(a.index) == bvi.as_ref().map(|b| b.index))
                .cloned()
                .collect(),
            fdb: self.fdb.clone(),
            vxlan: find(&names.vxlan),
            port: find(&names.port),
            names,
            bridge,
            bvi,
        }
    }
}

/// Plan, apply to the model, and check that planning again gives nothing.
fn converge(m: &mut Model, plan: impl Fn(&Observed) -> Result<Vec<Action>>) -> Vec<Action> {
    let actions = plan(&m.observe()).unwrap();
    m.apply(&actions);
    let again = plan(&m.observe()).unwrap();
    assert!(again.is_empty(), "not idempotent: {again:#?}");
    actions
}

fn strs(a: &[Action]) -> Vec<String> {
    a.iter().map(|a| a.to_string()).collect()
}

fn ready() -> Model {
    let mut m = Model::default();
    converge(&mut m, |o| plan_ensure_evpn(&evpn(), o));
    converge(&mut m, |o| plan_ensure_bvi(&bvi_spec(), o));
    m
}

#[test]
fn ensure_evpn_from_scratch() {
    let mut m = Model::default();
    let a = converge(&mut m, |o| plan_ensure_evpn(&evpn(), o));
    assert_eq!(
        strs(&a),
        [
            "create bridge brg-red mtu 1500",
            "set brg-red addrgenmode none",
            "set brg-red accept_dad 0",
            "create vxlan vxl-red id 100 local 10.0.0.1 dstport 4789 nolearning mtu 1500",
            "set vxl-red addrgenmode none",
            "set vxl-red master brg-red",
            "set vxl-red learning off",
            "set vxl-red up",
            "set brg-red up",
        ]
    );
}

#[test]
fn ipv6_off_links_are_left_alone() {
    let mut m = ready();
    for l in &mut m.links {
        l.addr_gen_mode = None;
        l.accept_dad = None;
    }
    assert!(plan_ensure_evpn(&evpn(), &m.observe()).unwrap().is_empty());
    assert!(
        plan_ensure_bvi(&bvi_spec(), &m.observe())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn device_changes_are_flagged() {
    let a = plan_ensure_evpn(&evpn(), &Observed::empty(&slug())).unwrap();
    assert!(a.iter().any(Action::changes_devices));
    let mut m = ready();
    let a = plan_ensure_evpn(&evpn(), &m.observe()).unwrap();
    assert!(!a.iter().any(Action::changes_devices));
    m.get("vxl-red").port.as_mut().unwrap().learning = true;
    let a = plan_ensure_evpn(&evpn(), &m.observe()).unwrap();
    assert!(!a.is_empty() && !a.iter().any(Action::changes_devices));
}

#[test]
fn ensure_evpn_repairs_differences_only() {
    let mut m = ready();
    m.get("vxl-red").port.as_mut().unwrap().learning = true;
    m.get("brg-red").mtu = 9000;
    let a = converge(&mut m, |o| plan_ensure_evpn(&evpn(), o));
    assert_eq!(
        strs(&a),
        ["set brg-red mtu 1500", "set vxl-red learning off"]
    );
}

#[test]
fn ensure_evpn_recreates_wrong_vxlan() {
    let mut m = ready();
    m.get("vxl-red").vxlan.as_mut().unwrap().vni = 200;
    let a = converge(&mut m, |o| plan_ensure_evpn(&evpn(), o));
    assert_eq!(
        a[0],
        Action::DeleteLink {
            name: "vxl-red".into()
        }
    );
    assert!(matches!(a[1], Action::CreateVxlan { vni: 100, .. }));
    assert_eq!(a.len(), 6);
}

#[test]
fn ensure_evpn_refuses_foreign_device() {
    let mut m = Model::default();
    m.add_link("brg-red", LinkKind::Veth);
    let e = plan_ensure_evpn(&evpn(), &m.observe()).unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e}");
}

#[test]
fn ensure_bvi_from_scratch() {
    let mut m = Model::default();
    converge(&mut m, |o| plan_ensure_evpn(&evpn(), o));
    let a = converge(&mut m, |o| plan_ensure_bvi(&bvi_spec(), o));
    assert_eq!(
        strs(&a),
        [
            "create veth bvi-red peer bvp-red mtu 1500",
            "set bvp-red addrgenmode none",
            "set bvp-red master brg-red",
            "set bvp-red learning off",
            "set bvp-red up",
            "set bvi-red addrgenmode none",
            "set bvi-red accept_dad 0",
            "set bvi-red address 02:00:00:00:01:32",
            "set bvi-red up",
            "add address fe80::ff:fe00:132/64 dev bvi-red",
        ]
    );
}

#[test]
fn ensure_bvi_needs_bridge() {
    let e = plan_ensure_bvi(&bvi_spec(), &Observed::empty(&slug())).unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

#[test]
fn ensure_bvi_keeps_bound_mac_and_fixes_link_local() {
    let mut m = ready();
    converge(&mut m, |o| Ok(plan_set_mac(o, VMAC, true)));
    // a stray link-local (e.g. from an old per-host MAC) is replaced, the vMAC stays
    let bvi = m.idx("bvi-red");
    m.addrs.push(Addr {
        index: bvi,
        net: net("fe80::1/64"),
        nodad: true,
        tentative: false,
        dad_failed: false,
        permanent: true,
    });
    let a = converge(&mut m, |o| plan_ensure_bvi(&bvi_spec(), o));
    assert_eq!(strs(&a), ["delete address fe80::1/64 dev bvi-red"]);
    assert_eq!(m.get("bvi-red").mac, Some(VMAC));
}

#[test]
fn ensure_bvi_recreates_unpaired_veth() {
    let mut m = ready();
    let port = m.idx("bvp-red");
    m.get("bvi-red").link = Some(port + 100);
    let a = converge(&mut m, |o| plan_ensure_bvi(&bvi_spec(), o));
    assert_eq!(
        a[0],
        Action::DeleteLink {
            name: "bvi-red".into()
        }
    );
    assert_eq!(
        a[1],
        Action::DeleteLink {
            name: "bvp-red".into()
        }
    );
    assert!(matches!(a[2], Action::CreateVeth { .. }));
}

fn gw() -> Vec<IpNet> {
    vec![net("172.16.0.32/24"), net("fec0::32/64")]
}

#[test]
fn vmac_deletes_birds_remote_entry_before_adding_a_clean_static_one() {
    let mut m = ready();
    let (vx, br) = (m.idx("vxl-red"), m.idx("brg-red"));
    m.fdb.push(fdb(VMAC, vx, br, FdbState::Static, true));
    let a = converge(&mut m, |o| Ok(plan_set_mac(o, VMAC, true)));
    assert_eq!(
        strs(&a),
        [
            "fdb del 42:6c:fa:d6:82:98 dev vxl-red master",
            "set bvi-red address 42:6c:fa:d6:82:98",
            "fdb add 42:6c:fa:d6:82:98 dev bvp-red master static",
        ]
    );
    let o = m.observe();
    assert!(o.is_bound(VMAC, &[]));
    assert!(o.fdb_consistent(VMAC, true));
}

#[test]
fn vmac_replaces_extern_learn_entry_on_port() {
    // The `fdb replace` pitfall: the entry is on the port but still extern_learn.
    let mut m = ready();
    let (port, br) = (m.idx("bvp-red"), m.idx("brg-red"));
    m.fdb.push(fdb(VMAC, port, br, FdbState::Static, true));
    let a = converge(&mut m, |o| Ok(plan_set_mac(o, VMAC, true)));
    assert_eq!(
        a[0].to_string(),
        "fdb del 42:6c:fa:d6:82:98 dev bvp-red master"
    );
    assert_eq!(
        a[2].to_string(),
        "fdb add 42:6c:fa:d6:82:98 dev bvp-red master static"
    );
}

#[test]
fn vmac_deletes_a_stale_vmac_last() {
    let mut m = ready();
    let (port, br) = (m.idx("bvp-red"), m.idx("brg-red"));
    let old = Mac::new(0x42, 0, 0, 0, 0, 1);
    m.fdb.push(fdb(old, port, br, FdbState::Static, false));
    let a = converge(&mut m, |o| Ok(plan_set_mac(o, VMAC, true)));
    assert_eq!(
        strs(&a),
        [
            "set bvi-red address 42:6c:fa:d6:82:98",
            "fdb add 42:6c:fa:d6:82:98 dev bvp-red master static",
            "fdb del 42:00:00:00:00:01 dev bvp-red master",
        ]
    );
}

#[test]
fn no_bvi_no_mac() {
    let mut m = Model::default();
    converge(&mut m, |o| plan_ensure_evpn(&evpn(), o));
    assert!(plan_set_mac(&m.observe(), VMAC, true).is_empty());
    assert!(plan_set_mac(&Observed::empty(&slug()), HOST, false).is_empty());
}

#[test]
fn per_host_mac_is_the_mirror() {
    let mut m = ready();
    converge(&mut m, |o| Ok(plan_set_mac(o, VMAC, true)));
    let a = converge(&mut m, |o| Ok(plan_set_mac(o, HOST, false)));
    assert_eq!(
        strs(&a),
        [
            "fdb del 42:6c:fa:d6:82:98 dev bvp-red master",
            "set bvi-red address 02:00:00:00:01:32",
        ]
    );
    let o = m.observe();
    assert!(!o.is_bound(VMAC, &[]));
    assert!(o.fdb_consistent(HOST, false));
    assert!(!o.fdb_consistent(HOST, true));
}

#[test]
fn per_host_mac_removes_learned_entry() {
    // learn mode leftovers: a dynamic entry would keep the vMAC advertised for 300 s
    let mut m = ready();
    let (port, br) = (m.idx("bvp-red"), m.idx("brg-red"));
    m.fdb.push(fdb(VMAC, port, br, FdbState::Dynamic, false));
    m.fdb.push(fdb(
        Mac::new(0x0a, 0, 0, 0, 0, 99),
        port,
        br,
        FdbState::Permanent,
        false,
    ));
    let a = converge(&mut m, |o| Ok(plan_set_mac(o, HOST, false)));
    assert_eq!(strs(&a), ["fdb del 42:6c:fa:d6:82:98 dev bvp-red master"]);
    assert_eq!(m.fdb.len(), 1, "the port's local entry stays");
}

#[test]
fn a_static_entry_on_the_vxlan_device_is_stray_and_deleted() {
    // Our old static entry that BIRD moved onto the VXLAN device (`extern_learn … static`).
    let mut m = ready();
    let (vx, br) = (m.idx("vxl-red"), m.idx("brg-red"));
    m.fdb.push(fdb(VMAC, vx, br, FdbState::Static, true));
    let o = m.observe();
    assert_eq!(o.stray_statics().len(), 1);
    assert!(!o.fdb_consistent(HOST, false));
    let a = converge(&mut m, |o| Ok(plan_set_mac(o, HOST, false)));
    assert_eq!(strs(&a), ["fdb del 42:6c:fa:d6:82:98 dev vxl-red master"]);
    // BIRD's own remote entry (extern_learn, not static) is fine.
    m.fdb.push(fdb(VMAC, vx, br, FdbState::Dynamic, true));
    assert!(m.observe().stray_statics().is_empty());
}

#[test]
fn remove_evpn_deletes_everything() {
    let mut m = ready();
    converge(&mut m, |o| Ok(plan_set_mac(o, VMAC, true)));
    let addrs: Vec<Action> = gw()
        .into_iter()
        .map(|net| Action::AddAddress {
            name: "bvi-red".into(),
            net,
        })
        .collect();
    m.apply(&addrs);
    assert!(m.observe().is_bound(VMAC, &gw()));
    let a = plan_remove_evpn(&m.observe());
    assert_eq!(
        strs(&a),
        [
            "delete link bvi-red",
            "delete link vxl-red",
            "delete link brg-red"
        ]
    );
    m.apply(&a);
    assert!(m.links.is_empty() && m.fdb.is_empty() && m.addrs.is_empty());
    assert!(plan_remove_evpn(&m.observe()).is_empty());
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    /// Random damage to a converged eVPN (what a crash, an operator or BIRD may leave).
    #[derive(Debug, Clone, Copy)]
    enum Damage {
        BviDown,
        PortDown,
        PortLearning,
        VxlanLearning,
        VxlanMtu,
        BridgeMtu,
        DropLinkLocal,
        StrayLinkLocal,
        RemoteVmac,
        StaleStatic,
        LearnedVmac,
        BviAcceptDad,
        DeleteVxlan,
        DeleteBvi,
        Bound,
    }

    fn damage() -> impl Strategy<Value = Damage> {
        prop_oneof![
            Just(Damage::BviDown),
            Just(Damage::PortDown),
            Just(Damage::PortLearning),
            Just(Damage::VxlanLearning),
            Just(Damage::VxlanMtu),
            Just(Damage::BridgeMtu),
            Just(Damage::DropLinkLocal),
            Just(Damage::StrayLinkLocal),
            Just(Damage::RemoteVmac),
            Just(Damage::StaleStatic),
            Just(Damage::LearnedVmac),
            Just(Damage::BviAcceptDad),
            Just(Damage::DeleteVxlan),
            Just(Damage::DeleteBvi),
            Just(Damage::Bound),
        ]
    }

    fn hurt(m: &mut Model, d: Damage) {
        let has = |m: &Model, n: &str| m.links.iter().any(|l| l.name == n);
        match d {
            Damage::BviDown if has(m, "bvi-red") => {
                // a down link loses its IPv6 addresses
                m.get("bvi-red").up = false;
                let i = m.idx("bvi-red");
                m.addrs
                    .retain(|a| !(a.index == i && a.net.addr().is_ipv6()));
            }
            Damage::PortDown if has(m, "bvp-red") => m.get("bvp-red").up = false,
            Damage::PortLearning if has(m, "bvp-red") => {
                if let Some(p) = m.get("bvp-red").port.as_mut() {
                    p.learning = true
                }
            }
            Damage::VxlanLearning if has(m, "vxl-red") => {
                if let Some(p) = m.get("vxl-red").port.as_mut() {
                    p.learning = true
                }
            }
            Damage::VxlanMtu if has(m, "vxl-red") => m.get("vxl-red").mtu = 1450,
            Damage::BridgeMtu => m.get("brg-red").mtu = 1450,
            Damage::DropLinkLocal if has(m, "bvi-red") => {
                let i = m.idx("bvi-red");
                m.addrs.retain(|a| !(a.index == i && a.is_link_local()));
            }
            Damage::StrayLinkLocal if has(m, "bvi-red") => {
                let index = m.idx("bvi-red");
                if !m
                    .addrs
                    .iter()
                    .any(|a| a.index == index && a.net == net("fe80::99/64"))
                {
                    m.addrs.push(Addr {
                        index,
                        net: net("fe80::99/64"),
                        nodad: false,
                        tentative: true,
                        dad_failed: false,
                        permanent: true,
                    });
                }
            }
            Damage::RemoteVmac | Damage::LearnedVmac | Damage::StaleStatic => {
                let br = m.idx("brg-red");
                let (dev, mac, state, ext) = match d {
                    Damage::RemoteVmac => ("vxl-red", VMAC, FdbState::Static, true),
                    Damage::LearnedVmac => ("bvp-red", VMAC, FdbState::Dynamic, false),
                    _ => (
                        "bvp-red",
                        Mac::new(0x42, 0, 0, 0, 0, 7),
                        FdbState::Static,
                        false,
                    ),
                };
                if has(m, dev) && !m.fdb.iter().any(|e| e.mac == mac && e.master == Some(br)) {
                    let i = m.idx(dev);
                    m.fdb.push(fdb(mac, i, br, state, ext));
                }
            }
            Damage::BviAcceptDad if has(m, "bvi-red") => m.get("bvi-red").accept_dad = Some(1),
            Damage::DeleteVxlan if has(m, "vxl-red") => m.apply_one(&Action::DeleteLink {
                name: "vxl-red".into(),
            }),
            Damage::DeleteBvi if has(m, "bvi-red") => m.apply_one(&Action::DeleteLink {
                name: "bvi-red".into(),
            }),
            Damage::Bound if has(m, "bvi-red") => {
                let a = plan_set_mac(&m.observe(), VMAC, true);
                m.apply(&a);
            }
            _ => {}
        }
    }

    proptest! {
        #[test]
        fn any_damage_converges(damages in proptest::collection::vec(damage(), 0..8), bind in any::<bool>()) {
            let mut m = ready();
            for d in damages {
                hurt(&mut m, d);
            }
            converge(&mut m, |o| plan_ensure_evpn(&evpn(), o));
            converge(&mut m, |o| plan_ensure_bvi(&bvi_spec(), o));
            if bind {
                converge(&mut m, |o| Ok(plan_set_mac(o, VMAC, true)));
                let o = m.observe();
                prop_assert!(o.is_bound(VMAC, &[]));
                prop_assert!(o.fdb_consistent(VMAC, true));
                prop_assert_eq!(o.port_entries().len(), 1);
            } else {
                converge(&mut m, |o| Ok(plan_set_mac(o, HOST, false)));
                let o = m.observe();
                prop_assert!(!o.is_bound(VMAC, &[]));
                prop_assert!(o.fdb_consistent(HOST, false));
                prop_assert!(o.port_entries().is_empty());
                prop_assert_eq!(o.bvi.as_ref().unwrap().mac, Some(HOST));
                let lls: Vec<_> = o.bvi_addrs.iter().filter(|a| a.is_link_local()).collect();
                prop_assert_eq!(lls.len(), 1);
                prop_assert_eq!(lls[0].net, eui64_link_local(HOST));
            }
        }
    }
}
