//! The driver's own bookkeeping, with data: health → unfit reason, fit
//! times, retry back-off, held reasons reported once per change.
use std::collections::BTreeMap;

use evpn_model::health::{HealthReport, HealthStatus, HealthVerdict};

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn verdict(status: HealthStatus, reason: &str) -> HealthVerdict {
    HealthVerdict {
        status,
        reason: reason.into(),
    }
}

#[test]
fn health_reports_make_a_member_unfit_for_its_group_only() {
    let up = verdict(HealthStatus::Up, "");
    let down = verdict(HealthStatus::Down, "bgp-sessions: 0 of 2");
    let unknown = verdict(HealthStatus::Unknown, "");
    let report = |host: &HealthVerdict, evpn: &HealthVerdict, fenced: &str| HealthReport {
        host: host.clone(),
        evpns: [("g".to_string(), evpn.clone())].into(),
        fenced: fenced.into(),
        generation: 1,
        ..Default::default()
    };
    let rows: &[(Option<HealthReport>, &str, Option<&str>)] = &[
        (None, "g", None),
        (Some(report(&up, &up, "")), "g", None),
        (Some(report(&unknown, &unknown, "")), "g", None),
        (
            Some(report(&down, &up, "")),
            "g",
            Some("host: bgp-sessions: 0 of 2"),
        ),
        (
            Some(report(&up, &down, "")),
            "g",
            Some("evpn g: bgp-sessions: 0 of 2"),
        ),
        // Another group's eVPN down says nothing about this one.
        (Some(report(&up, &down, "")), "h", None),
        (
            Some(report(&up, &up, "bgp all down")),
            "g",
            Some("fenced: bgp all down"),
        ),
    ];
    for (i, (r, g, want)) in rows.iter().enumerate() {
        assert_eq!(unhealthy(r.as_ref(), g).as_deref(), *want, "row {i}");
    }
}

#[test]
fn a_candidate_without_a_verdict_for_the_groups_evpn_is_unfit() {
    let up = verdict(HealthStatus::Up, "");
    let down = verdict(HealthStatus::Down, "bird: gone");
    // evpnd reports a verdict per enabled eVPN: none for "g" means g's eVPN
    // is disabled there (or not created yet).
    let only_h = HealthReport {
        host: up.clone(),
        evpns: [("h".to_string(), up.clone())].into(),
        fenced: String::new(),
        generation: 1,
        ..Default::default()
    };
    let with_g = HealthReport {
        evpns: [("g".to_string(), up.clone())].into(),
        ..only_h.clone()
    };
    // A verdict for g next to g in the disabled list (the summary lagging
    // the disable, which the heartbeat reads from the state): disabled wins.
    let lagging = HealthReport {
        disabled: ["g".to_string()].into(),
        ..with_g.clone()
    };
    let off = "evpn g: not enabled (no health verdict for it)";
    let rows: &[(Option<&HealthReport>, bool, Option<&str>)] = &[
        (Some(&only_h), false, Some(off)),
        (
            Some(&lagging),
            false,
            Some("evpn g: not enabled (listed as disabled)"),
        ),
        (Some(&lagging), true, None),
        // A primary is not moved for it.
        (Some(&only_h), true, None),
        (Some(&with_g), false, None),
        // No report yet (just connected, evpnr restarted): nothing says the
        // candidate's eVPN is enabled; a primary is not moved for it.
        (None, false, Some("no health report yet")),
        (None, true, None),
    ];
    for (i, (r, primary, want)) in rows.iter().enumerate() {
        assert_eq!(unfit(*r, "g", *primary).as_deref(), *want, "row {i}");
    }
    // Unhealthy wins over the missing verdict.
    let sick = HealthReport {
        host: down,
        ..only_h.clone()
    };
    assert_eq!(
        unfit(Some(&sick), "g", false).as_deref(),
        Some("host: bird: gone")
    );
}

#[test]
fn a_member_is_silent_when_its_evpn_is_disabled_or_nothing_is_known() {
    let up = verdict(HealthStatus::Up, "");
    let enabled = HealthReport {
        host: up.clone(),
        evpns: [("g".to_string(), up.clone())].into(),
        ..Default::default()
    };
    let gone = HealthReport {
        evpns: BTreeMap::new(),
        ..enabled.clone()
    };
    let disabled = HealthReport {
        disabled: ["g".to_string()].into(),
        ..gone.clone()
    };
    // (report, silent) in order, for one member of one Memory.
    let rows: &[(Option<&HealthReport>, bool)] = &[
        // Nothing known since evpnr started (chaos seed 5: an evpnr restart
        // forgot that the primary's eVPN had been disabled).
        (None, true),
        // Said disabled, with no earlier verdict: silent.
        (Some(&disabled), true),
        (Some(&enabled), false),
        // A verdict that disappears (an evpnd without the `disabled` list).
        (Some(&gone), true),
        (Some(&enabled), false),
    ];
    let mut m = Memory::default();
    for (i, (r, want)) in rows.iter().enumerate() {
        assert_eq!(m.silent("g", "a", *r), *want, "row {i}");
    }
    // Another member, another group: nothing carried over.
    assert!(!Memory::default().silent("h", "a", Some(&gone)));
}

#[test]
fn blocked_failovers_back_off_from_100ms_to_5s() {
    let mut m = Memory::default();
    assert!(m.may_try("g", ms(0)));
    let mut delays = Vec::new();
    let mut now = ms(0);
    for _ in 0..8 {
        let d = m.blocked("g", now);
        assert!(!m.may_try("g", now + d - ms(1)));
        assert!(m.may_try("g", now + d));
        delays.push(d.as_millis());
        now += d;
    }
    assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    // Another group is not held back.
    assert!(m.may_try("h", ms(0)));
    // A move (or nothing wrong any more) resets the back-off.
    m.moved("g", now, ms(60_000));
    assert_eq!(m.blocked("g", now), ms(100));
    m.calm("g");
    assert!(m.may_try("g", now));
}

#[test]
fn moves_are_remembered_within_the_flap_window() {
    let mut m = Memory::default();
    m.moved("g", ms(0), ms(1000));
    m.moved("g", ms(500), ms(1000));
    m.moved("g", ms(1200), ms(1000));
    assert_eq!(m.moves["g"], [ms(500), ms(1200)]);
}

#[test]
fn a_held_reason_is_reported_once_per_change() {
    let mut m = Memory::default();
    let s = Held::Suspended;
    let h = Held::HoldDown { until: ms(10) };
    let h2 = Held::HoldDown { until: ms(20) };
    assert!(m.held_changed("g", Reason::Unreachable, &s).is_some());
    assert!(m.held_changed("g", Reason::Unreachable, &s).is_none());
    assert!(m.held_changed("g", Reason::Unreachable, &h).is_some());
    // The same reason with a later deadline is no news.
    assert!(m.held_changed("g", Reason::Unreachable, &h2).is_none());
    assert!(m.held_changed("g", Reason::Unhealthy, &h2).is_some());
    // A warm-up's countdown is no news; its end or another reason is.
    let warm = |n: u32, r: &str| Held::NoCandidate {
        why: vec![
            ("a".into(), format!("warming up for {n} ms more")),
            ("b".into(), r.into()),
        ],
    };
    assert!(
        m.held_changed("g", Reason::NoPrimary, &warm(2000, "drained"))
            .is_some()
    );
    assert!(
        m.held_changed("g", Reason::NoPrimary, &warm(1750, "drained"))
            .is_none()
    );
    assert!(
        m.held_changed("g", Reason::NoPrimary, &warm(1500, "unreachable"))
            .is_some()
    );
    m.calm("g");
    assert!(m.held_changed("g", Reason::Unhealthy, &h2).is_some());
}

/// A group `id` of members a, b (and `more`), primary a, with a GroupBVI.
fn group(id: &str, more: &[&str]) -> crate::model::Group {
    use crate::model::{Group, GroupBvi};
    let t = std::time::SystemTime::UNIX_EPOCH;
    let mut members: std::collections::BTreeSet<String> = ["a".into(), "b".into()].into();
    members.extend(more.iter().map(|m| m.to_string()));
    Group {
        id: id.into(),
        vni: 100,
        import_rts: vec![],
        export_rts: vec![],
        mtu: 1500,
        vmac: "42:6c:fa:d6:82:98".parse().unwrap(),
        members,
        primary: Some("a".into()),
        holders: ["a".to_string()].into(),
        bvi: Some(GroupBvi {
            addresses: vec![],
            created_at: t,
            modified_at: t,
        }),
        created_at: t,
        modified_at: t,
        failover: Default::default(),
        priorities: Default::default(),
    }
}

#[tokio::test]
async fn candidates_of_auto_groups_watch_the_primary_and_their_reports_are_matched() {
    use crate::model::State;
    use evpn_model::witness::MacWitness;
    let mut st = State::default();
    let auto = |mut g: crate::model::Group| {
        g.failover.auto = true;
        g
    };
    st.groups.insert("g".into(), auto(group("g", &[])));
    st.groups.insert("m".into(), group("m", &[])); // manual: not watched
    let mut nobvi = auto(group("n", &[]));
    nobvi.bvi = None;
    st.groups.insert("n".into(), nobvi);
    let mut noprimary = auto(group("p", &[]));
    noprimary.primary = None;
    st.groups.insert("p".into(), noprimary);
    st.groups.insert("h".into(), auto(group("h", &["c"])));
    let list = |id: &str| -> Vec<String> {
        watch_list(&st, id)
            .iter()
            .map(|w| format!("{} {} {}", w.group, w.vmac, w.primary))
            .collect()
    };
    assert_eq!(
        list("a"),
        Vec::<String>::new(),
        "the primary watches nothing"
    );
    assert_eq!(
        list("b"),
        ["g 42:6c:fa:d6:82:98 a", "h 42:6c:fa:d6:82:98 a"]
    );
    assert_eq!(list("c"), ["h 42:6c:fa:d6:82:98 a"]);
    assert_eq!(list("z"), Vec::<String>::new());

    // Only a report about the group's current primary and vMAC counts.
    let g = &st.groups["g"];
    let report = |group: &str, primary: &str, vmac: &str| MacWitness {
        watched: evpn_model::witness::WatchedMac::new("w", group, vmac, primary).unwrap(),
        announcers: vec![],
        withdrawn: true,
        fabric_up: ms(7),
    };
    let rt = |w: MacWitness| {
        let mut r = crate::group::fake::member_rt("b");
        r.witnesses = vec![w];
        r
    };
    let want = Some(Witness {
        withdrawn: true,
        fabric_up: ms(7),
    });
    let vmac = "42:6c:fa:d6:82:98";
    assert_eq!(witness_of(Some(&rt(report("g", "a", vmac))), g), want);
    assert_eq!(witness_of(Some(&rt(report("g", "c", vmac))), g), None);
    assert_eq!(witness_of(Some(&rt(report("h", "a", vmac))), g), None);
    let other = "42:6c:fa:d6:82:99";
    assert_eq!(witness_of(Some(&rt(report("g", "a", other))), g), None);
    assert_eq!(witness_of(None, g), None);
}

#[test]
fn the_view_tracks_fit_times_drains_and_the_switch() {
    use crate::model::{Group, GroupBvi, Member as Reg, State};
    use std::time::SystemTime;
    let t = SystemTime::UNIX_EPOCH;
    let mut st = State::default();
    for id in ["a", "b"] {
        st.members.insert(
            id.into(),
            Reg {
                id: id.into(),
                grpc_address: "127.0.0.1:1".into(),
                version: "0".into(),
                registered_at: t,
            },
        );
    }
    let g = Group {
        id: "g".into(),
        vni: 100,
        import_rts: vec![],
        export_rts: vec![],
        mtu: 1500,
        vmac: "42:6c:fa:d6:82:98".parse().unwrap(),
        members: ["a".to_string(), "b".to_string()].into(),
        primary: Some("a".into()),
        holders: ["a".to_string()].into(),
        bvi: Some(GroupBvi {
            addresses: vec![],
            created_at: t,
            modified_at: t,
        }),
        created_at: t,
        modified_at: t,
        failover: Default::default(),
        priorities: [("b".to_string(), 150)].into(),
    };
    st.drained.insert("b".into());
    st.failover_suspended = true;
    // No run-time state: nobody is reachable, so nobody is fit.
    let mut m = Memory::default();
    let rt = BTreeMap::new();
    let v = m.view(&st, &rt, &g, ms(100));
    assert_eq!(v.primary.as_deref(), Some("a"));
    assert!(v.suspended && v.bvi);
    let (a, b) = (&v.members[0], &v.members[1]);
    assert!(!a.reachable && a.fit_since.is_none() && !a.drained);
    assert_eq!((a.priority, b.priority), (100, 150));
    assert!(b.drained);
}
