//! Unit tests of the chaos run.
use super::*;

#[test]
fn failed_ops_widen_only_their_fields() {
    let hosts = vec!["a".to_string(), "b".to_string()];
    let pools = vec![("g0".to_string(), vec!["172.16.0.1/24".to_string()])];
    let mut m = Model::new(&pools, &hosts);
    let st = || Outcome::Failed(tonic::Status::unavailable("x"));
    learn(
        &mut m,
        &Op::CreateGroup {
            g: "g0".into(),
            vni: 1000,
        },
        &st(),
    );
    assert_eq!(m.groups["g0"].exists, BTreeSet::from([false, true]));
    assert_eq!(m.groups["g0"].members["a"], BTreeSet::from([false]));
    learn(
        &mut m,
        &Op::Move {
            g: "g0".into(),
            h: "b".into(),
        },
        &st(),
    );
    assert_eq!(
        m.groups["g0"].primary,
        BTreeSet::from([None, Some("b".to_string())])
    );
    learn(
        &mut m,
        &Op::Bind {
            g: "g0".into(),
            h: "a".into(),
        },
        &Outcome::Done,
    );
    assert_eq!(
        m.groups["g0"].primary,
        BTreeSet::from([Some("a".to_string())])
    );
    learn(
        &mut m,
        &Op::Release {
            g: "g0".into(),
            h: "b".into(),
        },
        &Outcome::Done,
    );
    assert_eq!(
        m.groups["g0"].primary,
        BTreeSet::from([Some("a".to_string())])
    );
    learn(
        &mut m,
        &Op::Release {
            g: "g0".into(),
            h: "a".into(),
        },
        &Outcome::Done,
    );
    assert_eq!(m.groups["g0"].primary, BTreeSet::from([None]));
    assert_eq!(model::prefix_key(&prefix("fec0:0::1/64")), "fec0::1/64");
}

#[test]
fn invalid_gateway_addresses_are_invalid_and_the_pools_are_not() {
    for third in [0u8, 1, 4] {
        for (class, p) in adversary::bad_addresses(third) {
            assert!(
                evpn_model::parse_prefix("address", &p.address, p.prefix_len).is_err(),
                "{class}: {}/{} is accepted by the validation layer",
                p.address,
                p.prefix_len
            );
        }
        for a in [
            format!("172.16.{third}.1"),
            format!("172.16.{third}.2"),
            format!("fec0:{third}::1"),
        ] {
            let len = if a.contains(':') { 64 } else { 24 };
            assert!(evpn_model::parse_prefix("address", &a, len).is_ok(), "{a}");
        }
    }
}
