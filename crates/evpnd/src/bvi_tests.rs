//! Table tests of the BVI planner: (desired, observed) → expected steps,
//! one row per order rule of ARCHITECTURE.md's evpnd invariants.
use super::*;
use crate::state::Binding;
use Step::{LinuxSide, TellBird};
use Write::{AddAddress, Attach, Create, DelAddress, Delete, LinkLocal, Mtu, Up};

const HOST: Mac = Mac([2, 0, 0, 0, 0, 1]);
const VA: Mac = Mac([2, 0, 0, 0, 0, 0x99]);
const VB: Mac = Mac([2, 0, 0, 0, 0, 0x98]);

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn a1() -> IpNet {
    net("172.16.0.32/24")
}
fn a2() -> IpNet {
    net("fec0::32/64")
}
fn a3() -> IpNet {
    net("10.9.0.1/24")
}

/// A BVI bound to `vmac` with `addrs`, or unbound (`None`).
fn bvi(bound: Option<(Mac, &[IpNet])>) -> Bvi {
    Bvi {
        instance_mac: HOST,
        mtu: 1500,
        binding: bound.map(|(vmac, addrs)| Binding {
            group_id: "g".into(),
            vmac,
            addresses: addrs.to_vec(),
        }),
        created_ms: 0,
        modified_ms: 0,
    }
}

/// What a dataplane that matches `b` reports (with its Linux side).
fn seen(b: &Bvi) -> ObservedBvi {
    ObservedBvi {
        linux: Some("bvi-x".into()),
        ..believed(true, b)
    }
}

fn s(x: Write) -> Step {
    Step::Write(x)
}
fn gw(m: Mac) -> BviMac {
    BviMac::Gateway(m)
}
fn ph(m: Mac) -> BviMac {
    BviMac::PerHost(m)
}
fn ll(m: Mac) -> Step {
    s(LinkLocal(m.link_local()))
}

struct Row {
    name: &'static str,
    enabled: bool,
    linux: bool,
    want: Option<Bvi>,
    have: Option<ObservedBvi>,
    steps: Vec<Step>,
}

fn row(name: &'static str, want: Option<Bvi>, have: Option<ObservedBvi>, steps: Vec<Step>) -> Row {
    Row {
        name,
        enabled: true,
        linux: false,
        want,
        have,
        steps,
    }
}

fn table() -> Vec<Row> {
    let unbound = bvi(None);
    let bound_a = bvi(Some((VA, &[a1(), a2()])));
    let bound_b = bvi(Some((VB, &[a1(), a2()])));
    let mut rows = vec![
        // A matching host needs nothing (the zero-change restart).
        row(
            "matching unbound",
            Some(unbound.clone()),
            Some(seen(&unbound)),
            vec![],
        ),
        row(
            "matching bound",
            Some(bound_a.clone()),
            Some(seen(&bound_a)),
            vec![],
        ),
        row("nothing wanted, nothing there", None, None, vec![]),
        // Bind order: MAC and link-local → BIRD → addresses last.
        row(
            "bind",
            Some(bound_a.clone()),
            Some(believed(true, &unbound)),
            vec![
                s(Write::Mac(gw(VA))),
                ll(VA),
                TellBird,
                s(AddAddress(a1())),
                s(AddAddress(a2())),
            ],
        ),
        // Release: addresses first → MAC and link-local → BIRD.
        row(
            "release",
            Some(unbound.clone()),
            Some(believed(true, &bound_a)),
            vec![
                s(DelAddress(a1())),
                s(DelAddress(a2())),
                s(Write::Mac(ph(HOST))),
                ll(HOST),
                TellBird,
            ],
        ),
        // A new vMAC while bound: the old identity is released first, also
        // the addresses that stay (none sits on a BVI with the wrong MAC).
        row(
            "bind another vMAC",
            Some(bound_b.clone()),
            Some(believed(true, &bound_a)),
            vec![
                s(DelAddress(a1())),
                s(DelAddress(a2())),
                s(Write::Mac(gw(VB))),
                ll(VB),
                TellBird,
                s(AddAddress(a1())),
                s(AddAddress(a2())),
            ],
        ),
        // Same vMAC, other addresses: exactly the diff, out before in.
        row(
            "bind changes addresses only",
            Some(bvi(Some((VA, &[a2(), a3()])))),
            Some(believed(true, &bound_a)),
            vec![s(DelAddress(a1())), s(AddAddress(a3()))],
        ),
        // Reconcile keeps the same order: a crash mid-bind (MAC set,
        // nothing else) completes with addresses last.
        row(
            "crash mid-bind",
            Some(bound_a.clone()),
            Some(ObservedBvi {
                mac: VA,
                ..seen(&unbound)
            }),
            vec![ll(VA), s(AddAddress(a1())), s(AddAddress(a2()))],
        ),
        // A crash mid-release (one address gone): addresses before the MAC.
        row(
            "crash mid-release",
            Some(unbound.clone()),
            Some(ObservedBvi {
                addresses: vec![a1()],
                ..seen(&bound_a)
            }),
            vec![
                s(DelAddress(a1())),
                s(Write::Mac(ph(HOST))),
                ll(HOST),
                TellBird,
            ],
        ),
        // Reconcile after a vMAC changed behind our back: addresses out and in.
        row(
            "reconcile foreign MAC with addresses",
            Some(bound_a.clone()),
            Some(ObservedBvi {
                mac: VB,
                ..seen(&bound_a)
            }),
            vec![
                s(DelAddress(a1())),
                s(DelAddress(a2())),
                s(Write::Mac(gw(VA))),
                TellBird,
                s(AddAddress(a1())),
                s(AddAddress(a2())),
            ],
        ),
        // The fabric does not see the MAC (linux: the FDB disagrees): re-set in
        // place, the addresses stay.
        row(
            "fabric disagrees",
            Some(bound_a.clone()),
            Some(ObservedBvi {
                mac: UNSEEN,
                ..seen(&bound_a)
            }),
            vec![s(Write::Mac(gw(VA))), TellBird],
        ),
        // A missing BVI is recreated with its identity, addresses last.
        row(
            "missing bound BVI",
            Some(bound_a.clone()),
            None,
            vec![
                s(Create {
                    mac: gw(VA),
                    attached: true,
                }),
                ll(VA),
                TellBird,
                s(AddAddress(a1())),
                s(AddAddress(a2())),
            ],
        ),
        row("orphan BVI", None, Some(seen(&unbound)), vec![s(Delete)]),
        // Structural fixes come first.
        row(
            "structure first",
            Some(unbound.clone()),
            Some(ObservedBvi {
                mtu: 9000,
                up: false,
                attached: false,
                mac: VA,
                ..seen(&unbound)
            }),
            vec![
                s(Mtu(1500)),
                s(Up),
                s(Attach(true)),
                s(Write::Mac(ph(HOST))),
                TellBird,
            ],
        ),
    ];
    // The Linux side is part of the desired BVI: made after MAC and MTU,
    // before the link-local (set on both sides) and the addresses.
    let no_lcp = ObservedBvi {
        linux: None,
        ..seen(&bound_a)
    };
    let linux = |name, have: Option<ObservedBvi>, steps: Vec<Step>| Row {
        linux: true,
        ..row(name, Some(bound_a.clone()), have, steps)
    };
    rows.extend([
        linux(
            "linux side missing",
            Some(no_lcp.clone()),
            vec![LinuxSide, ll(VA)],
        ),
        linux(
            "linux side and link-local missing",
            Some(ObservedBvi {
                link_local: None,
                ..no_lcp.clone()
            }),
            vec![LinuxSide, ll(VA)],
        ),
        linux("linux side present", Some(seen(&bound_a)), vec![]),
        linux(
            "linux side with a new BVI",
            None,
            vec![
                s(Create {
                    mac: gw(VA),
                    attached: true,
                }),
                LinuxSide,
                ll(VA),
                TellBird,
                s(AddAddress(a1())),
                s(AddAddress(a2())),
            ],
        ),
        Row {
            linux: true,
            ..row(
                "no BVI wanted: the Linux side never matters",
                None,
                Some(no_lcp.clone()),
                vec![s(Delete)],
            )
        },
        row(
            "linux side not wanted",
            Some(bound_a.clone()),
            Some(no_lcp),
            vec![],
        ),
        Row {
            enabled: false,
            ..row(
                "disabled detaches",
                Some(unbound.clone()),
                Some(seen(&unbound)),
                vec![s(Attach(false))],
            )
        },
    ]);
    rows
}

#[test]
fn plans_follow_the_order_rules() {
    for r in table() {
        let want = Desired {
            enabled: r.enabled,
            bvi: r.want.as_ref(),
            linux_side: r.linux,
        };
        assert_eq!(plan(&want, r.have.as_ref()), r.steps, "row {:?}", r.name);
    }
}

#[test]
fn plans_converge() {
    // Applying a plan to the observation gives one that needs nothing more.
    for r in table() {
        let Some(b) = r.want.as_ref() else { continue };
        let want = Desired {
            enabled: r.enabled,
            bvi: Some(b),
            linux_side: r.linux,
        };
        let after = ObservedBvi {
            attached: r.enabled,
            ..seen(b)
        };
        assert_eq!(plan(&want, Some(&after)), vec![], "row {:?}", r.name);
    }
}

#[test]
fn identity_is_decided_once() {
    assert_eq!(identity(&bvi(None)), BviMac::PerHost(HOST));
    assert_eq!(identity(&bvi(Some((VA, &[])))), BviMac::Gateway(VA));
    assert_eq!(BviMac::classify(VA, Some(HOST)), BviMac::Gateway(VA));
    assert_eq!(BviMac::classify(HOST, Some(HOST)), BviMac::PerHost(HOST));
    assert_eq!(BviMac::classify(VA, None), BviMac::PerHost(VA));
}

#[test]
fn stages_group_independent_writes_and_keep_the_order() {
    let unbound = bvi(None);
    let bound_b = bvi(Some((VB, &[a1(), a2()])));
    let want = Desired {
        enabled: true,
        bvi: Some(&bound_b),
        linux_side: false,
    };
    let have = believed(true, &bvi(Some((VA, &[a1()]))));
    assert_eq!(
        stages(&plan(&want, Some(&have))),
        vec![
            Stage::Writes(vec![DelAddress(a1())]),
            Stage::Writes(vec![Write::Mac(gw(VB)), LinkLocal(VB.link_local())]),
            Stage::TellBird,
            Stage::Writes(vec![AddAddress(a1()), AddAddress(a2())]),
        ]
    );
    let want = Desired {
        enabled: true,
        bvi: Some(&unbound),
        linux_side: true,
    };
    let have = ObservedBvi {
        linux: None,
        mac: VA,
        mtu: 9000,
        up: false,
        ..seen(&unbound)
    };
    assert_eq!(
        stages(&plan(&want, Some(&have))),
        vec![
            Stage::Writes(vec![Mtu(1500)]),
            Stage::Writes(vec![Up]),
            Stage::Writes(vec![Write::Mac(ph(HOST))]),
            Stage::LinuxSide,
            Stage::Writes(vec![LinkLocal(HOST.link_local())]),
            Stage::TellBird,
        ]
    );
    assert_eq!(added(&plan(&want, None)), Vec::<IpNet>::new());
}

#[test]
fn changes_between_committed_states_need_no_reads() {
    let b = bvi(Some((VA, &[a1()])));
    let want = |enabled, bvi| Desired {
        enabled,
        bvi,
        linux_side: false,
    };
    // SetEvpnInstanceEnabled: only the attachment follows.
    assert_eq!(
        plan_change(false, Some(&b), &want(true, Some(&b))),
        vec![s(Attach(true))]
    );
    assert_eq!(
        plan_change(true, Some(&b), &want(false, Some(&b))),
        vec![s(Attach(false))]
    );
    // DeleteBVI (released before): the interface goes.
    let unbound = bvi(None);
    assert_eq!(
        plan_change(true, Some(&unbound), &want(true, None)),
        vec![s(Delete)]
    );
    // Nothing committed, nothing wanted: nothing.
    assert_eq!(plan_change(true, None, &want(true, None)), vec![]);
}
