use super::*;

const M: &str = "02:00:00:00:00:01";
const M2: &str = "02:00:00:00:00:02";
const A: u64 = 10;
const D: u64 = 50;

#[derive(Debug, Clone, Copy)]
enum Do {
    /// The host's BVI in `evpn-g` carries this MAC (up), or none.
    Bvi(&'static str, Option<&'static str>),
    /// The host's BIRD runs (with the eVPN importing `rt`) or is stopped.
    Bird(&'static str, Option<&'static str>),
    /// The host's link to the fabric.
    Link(&'static str, bool),
}

/// Timed inputs of one case.
type Steps = &'static [(u64, Do)];
/// A table row: name, inputs, expectations.
type Case<C> = (&'static str, Steps, &'static [C]);

fn vtep(h: &str) -> String {
    format!("192.0.2.{}", (h.as_bytes()[0] - b'a') + 1)
}

fn export(h: &str, import: &str) -> Vec<EvpnExport> {
    vec![EvpnExport {
        slug: "g".into(),
        vni: 100,
        vtep: vtep(h),
        import: [import.to_string()].into(),
        export: ["65000:100".to_string()].into(),
    }]
}

/// A fabric of hosts a, b, c (BIRD running, importing 65000:100, no BVI) at
/// `t0`, then `steps` at their millisecond offsets.
fn run(steps: &[(u64, Do)], record: bool) -> (Model, Instant) {
    let t0 = Instant::now();
    let mut m = Model::new(FabricOptions {
        announce_delay: Duration::from_millis(A),
        withdraw_delay: Duration::from_millis(D),
        record,
    });
    for h in ["a", "b", "c"] {
        m.set_bird(h, Some(export(h, "65000:100")), t0);
        m.set_dataplane(h, BTreeMap::new(), t0);
    }
    for (ms, d) in steps {
        let t = t0 + Duration::from_millis(*ms);
        match *d {
            Do::Bvi(h, mac) => {
                let dp = mac
                    .map(|m| [("evpn-g".to_string(), [m.to_string()].into())].into())
                    .unwrap_or_default();
                m.set_dataplane(h, dp, t);
            }
            Do::Bird(h, rt) => m.set_bird(h, rt.map(|rt| export(h, rt)), t),
            Do::Link(h, up) => m.set_link(h, up, t),
        }
    }
    (m, t0)
}

fn seen(m: &Model, t0: Instant, ms: u64, host: &str, mac: &str) -> Vec<String> {
    m.announcers_seen(host, mac, t0 + Duration::from_millis(ms))
        .into_iter()
        .collect()
}

#[test]
fn announcements_withdrawals_partitions_and_heals() {
    use Do::*;
    // (case, steps, checks: (ms, viewer, mac, announcers it sees))
    type Check = (u64, &'static str, &'static str, &'static [&'static str]);
    let cases: &[Case<Check>] = &[
        (
            "an announcement is seen by the others after the announce delay",
            &[(0, Bvi("a", Some(M)))],
            &[
                (A - 1, "b", M, &[]),
                (A, "b", M, &["192.0.2.1"]),
                (A, "c", M, &["192.0.2.1"]),
                (A, "a", M, &[]),
            ],
        ),
        (
            "a withdrawal is seen after the withdrawal delay",
            &[(0, Bvi("a", Some(M))), (100, Bvi("a", None))],
            &[
                (100 + D - 1, "b", M, &["192.0.2.1"]),
                (100 + D, "b", M, &[]),
            ],
        ),
        (
            "a MAC change withdraws the old and announces the new",
            &[(0, Bvi("a", Some(M))), (100, Bvi("a", Some(M2)))],
            &[
                (100 + A, "b", M, &["192.0.2.1"]),
                (100 + A, "b", M2, &["192.0.2.1"]),
                (100 + D, "b", M, &[]),
            ],
        ),
        (
            "an announcer cut from the fabric: the others lose it after the delay, it loses theirs",
            &[
                (0, Bvi("a", Some(M))),
                (0, Bvi("c", Some(M2))),
                (100, Link("a", false)),
            ],
            &[
                (100 + D - 1, "b", M, &["192.0.2.1"]),
                (100 + D - 1, "a", M2, &["192.0.2.3"]),
                (100 + D, "b", M, &[]),
                (100 + D, "a", M2, &[]),
                // b and c still see each other.
                (100 + D, "b", M2, &["192.0.2.3"]),
            ],
        ),
        (
            "a partition heals: routes are back after the announce delay",
            &[
                (0, Bvi("a", Some(M))),
                (100, Link("a", false)),
                (200, Link("a", true)),
            ],
            &[
                (200, "b", M, &[]),
                (200 + A - 1, "b", M, &[]),
                (200 + A, "b", M, &["192.0.2.1"]),
            ],
        ),
        (
            "a viewer cut from the fabric sees nothing after the delay",
            &[(0, Bvi("a", Some(M))), (100, Link("b", false))],
            &[
                (100 + D - 1, "b", M, &["192.0.2.1"]),
                (100 + D, "b", M, &[]),
                (100 + D, "c", M, &["192.0.2.1"]),
            ],
        ),
        (
            "a cut shorter than the delay is not noticed",
            &[
                (0, Bvi("a", Some(M))),
                (100, Link("a", false)),
                (100 + D - 10, Link("a", true)),
            ],
            &[(100 + D, "b", M, &["192.0.2.1"])],
        ),
        (
            "a killed BIRD: its routes go after the delay; restarted, they come back",
            &[
                (0, Bvi("a", Some(M))),
                (100, Bird("a", None)),
                (300, Bird("a", Some("65000:100"))),
            ],
            &[
                (100 + D - 1, "b", M, &["192.0.2.1"]),
                (100 + D, "b", M, &[]),
                (300 + A, "b", M, &["192.0.2.1"]),
            ],
        ),
        (
            "a blip shorter than the announce delay is seen late, for the withdrawal delay",
            &[(0, Bvi("a", Some(M))), (A / 2, Bvi("a", None))],
            &[
                (A - 1, "b", M, &[]),
                (A, "b", M, &["192.0.2.1"]),
                (A / 2 + D - 1, "b", M, &["192.0.2.1"]),
                (A / 2 + D, "b", M, &[]),
            ],
        ),
        (
            "a viewer that does not import the targets sees nothing",
            &[(0, Bird("c", Some("65000:200"))), (0, Bvi("a", Some(M)))],
            &[(A, "c", M, &[]), (A, "b", M, &["192.0.2.1"])],
        ),
        (
            "two announcers are both seen",
            &[(0, Bvi("a", Some(M))), (0, Bvi("b", Some(M)))],
            &[(A, "c", M, &["192.0.2.1", "192.0.2.2"])],
        ),
    ];
    for (name, steps, checks) in cases {
        let (m, t0) = run(steps, false);
        for (ms, host, mac, want) in *checks {
            assert_eq!(
                seen(&m, t0, *ms, host, mac),
                want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "{name}: {host} at {ms} ms for {mac}"
            );
        }
    }
}

#[test]
fn bgp_sessions_follow_the_link_and_the_bird_with_the_delays() {
    use Do::*;
    let cases: &[Case<(u64, bool)>] = &[
        ("up from the start", &[], &[(0, false), (A, true)]),
        (
            "a cut ends the sessions after the delay; a heal brings them back",
            &[(100, Link("a", false)), (200, Link("a", true))],
            &[
                (100 + D - 1, true),
                (100 + D, false),
                (200 + A - 1, false),
                (200 + A, true),
            ],
        ),
        (
            "a stopped BIRD has none",
            &[(100, Bird("a", None))],
            &[(100 + D, false)],
        ),
    ];
    for (name, steps, checks) in cases {
        let (m, t0) = run(steps, false);
        for (ms, want) in *checks {
            assert_eq!(
                m.established("a", t0 + Duration::from_millis(*ms)),
                *want,
                "{name} at {ms} ms"
            );
        }
    }
}

#[test]
fn two_announcer_moments_over_the_history() {
    use Do::*;
    let cases: &[Case<(&str, u64, &[&str])>] = &[
        (
            "break before make, waiting out the delay: none",
            &[
                (0, Bvi("a", Some(M))),
                (100, Bvi("a", None)),
                (100 + D, Bvi("b", Some(M))),
            ],
            &[],
        ),
        (
            "make before the withdrawal reached the others",
            &[
                (0, Bvi("a", Some(M))),
                (100, Bvi("a", None)),
                (110, Bvi("b", Some(M))),
            ],
            // b's own table at once; c's when b's route arrives.
            &[
                ("b", 110, &["192.0.2.1", "192.0.2.2"]),
                ("c", 110 + A, &["192.0.2.1", "192.0.2.2"]),
            ],
        ),
        (
            "a primary cut from the fabric keeps announcing in its own table",
            &[
                (0, Bvi("a", Some(M))),
                (100, Link("a", false)),
                (200 + D, Bvi("b", Some(M))),
                (300, Link("a", true)),
            ],
            &[
                ("a", 300 + A, &["192.0.2.1", "192.0.2.2"]),
                ("b", 300 + A, &["192.0.2.1", "192.0.2.2"]),
                ("c", 300 + A, &["192.0.2.1", "192.0.2.2"]),
            ],
        ),
    ];
    for (name, steps, want) in cases {
        let (m, t0) = run(steps, true);
        let got: Vec<(String, u64, Vec<String>)> = m
            .two_announcer_moments()
            .into_iter()
            .map(|x| {
                assert_eq!(x.mac, M, "{name}");
                (
                    x.host,
                    (x.at - t0).as_millis() as u64,
                    x.vteps.into_iter().collect(),
                )
            })
            .collect();
        let mut want: Vec<(String, u64, Vec<String>)> = want
            .iter()
            .map(|(h, ms, v)| {
                (
                    h.to_string(),
                    *ms,
                    v.iter().map(|s| s.to_string()).collect(),
                )
            })
            .collect();
        want.sort_by_key(|w| w.1);
        let mut got_sorted = got.clone();
        got_sorted.sort();
        want.sort();
        assert_eq!(got_sorted, want, "{name}");
    }
}

#[test]
fn history_is_pruned_unless_recorded() {
    use Do::*;
    let steps: Vec<(u64, Do)> = (0..100)
        .map(|i| (i * 1000, Bvi("a", Some(if i % 2 == 0 { M } else { M2 }))))
        .collect();
    let (m, _) = run(&steps, false);
    assert!(m.hosts["a"].hist.len() < 5, "{}", m.hosts["a"].hist.len());
    let (m, _) = run(&steps, true);
    assert!(m.hosts["a"].hist.len() > 100);
}
