//! The watcher's change detection, with data: a sequence of looks and what
//! each one publishes.
use super::*;

fn target(group: &str, primary: &str) -> WatchedMac {
    WatchedMac::new("t", group, "42:6c:fa:d6:82:98", primary).unwrap()
}

/// One step: the targets (if they change), the BGP sessions (`up`,
/// `down`, `?` BIRD did not answer), the announcers of target 0 (`-`: BIRD
/// did not answer; `` none), and what must be published after it:
/// `<announcers> <withdrawn|announced> <trusted|untrusted>` of target 0,
/// or `nothing` when nothing is watched; `*` marks a change (a heartbeat at
/// once).
struct Step {
    targets: Option<&'static [(&'static str, &'static str)]>,
    sessions: &'static str,
    announcers: &'static str,
    want: &'static str,
}

const fn step(sessions: &'static str, announcers: &'static str, want: &'static str) -> Step {
    Step {
        targets: None,
        sessions,
        announcers,
        want,
    }
}

fn run(steps: &[Step]) -> Vec<String> {
    let mut w = Watcher::default();
    let (tx, mut rx) = watch::channel(Seen::default());
    let t0 = Instant::now();
    let mut out = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        if let Some(t) = s.targets {
            let t: Vec<WatchedMac> = t.iter().map(|(g, p)| target(g, p)).collect();
            w.set_targets(&t);
        }
        let up = match s.sessions {
            "up" => Some(true),
            "down" => Some(false),
            _ => None,
        };
        let a = match s.announcers {
            "-" => None,
            a => Some(
                a.split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
                    .collect(),
            ),
        };
        let looks: Vec<_> = w.targets().into_iter().map(|t| (t, a.clone())).collect();
        w.look(t0 + Duration::from_millis(10 * i as u64), up, &looks);
        publish(&tx, w.seen());
        let changed = rx.has_changed().unwrap();
        let seen = rx.borrow_and_update().clone();
        let got = match seen.entries.first() {
            None => "nothing".to_string(),
            Some((_, a, withdrawn)) => {
                let a: Vec<String> = a.iter().map(|a| a.to_string()).collect();
                format!(
                    "{} {} {}",
                    a.join(","),
                    if *withdrawn { "withdrawn" } else { "announced" },
                    if seen.fabric_since.is_some() {
                        "trusted"
                    } else {
                        "untrusted"
                    }
                )
            }
        };
        out.push(format!("{}{got}", if changed { "*" } else { "" }));
    }
    out
}

#[test]
fn a_withdrawal_is_announced_then_gone_and_reported_at_once() {
    let steps = [
        Step {
            targets: Some(&[("g", "a")]),
            ..step("up", "", "* announced trusted")
        },
        // Not seen announced yet: no VTEP is no withdrawal (the primary
        // may not have bound yet, or the route not have arrived).
        step("up", "", " announced trusted"),
        step("up", "192.0.2.1", "*192.0.2.1 announced trusted"),
        step("up", "192.0.2.1", "192.0.2.1 announced trusted"),
        // Another announcer too: a change.
        step(
            "up",
            "192.0.2.1,192.0.2.9",
            "*192.0.2.1,192.0.2.9 announced trusted",
        ),
        step("up", "192.0.2.1", "*192.0.2.1 announced trusted"),
        // Gone: withdrawn, at once.
        step("up", "", "* withdrawn trusted"),
        step("up", "", " withdrawn trusted"),
        // Back.
        step("up", "192.0.2.1", "*192.0.2.1 announced trusted"),
    ];
    let want: Vec<&str> = steps.iter().map(|s| s.want).collect();
    assert_eq!(run(&steps), want);
}

#[test]
fn a_host_cut_off_from_the_fabric_is_no_witness() {
    let steps = [
        Step {
            targets: Some(&[("g", "a")]),
            ..step("up", "192.0.2.1", "*192.0.2.1 announced trusted")
        },
        // Its sessions went with the routes: withdrawn, but not trusted.
        step("down", "", "* withdrawn untrusted"),
        // BIRD does not answer: the view is not trustworthy, and the last
        // announcers are kept.
        step("up", "", "* withdrawn trusted"),
        step("?", "", "* withdrawn untrusted"),
        step("up", "-", " withdrawn untrusted"),
        step("up", "", "* withdrawn trusted"),
    ];
    let want: Vec<&str> = steps.iter().map(|s| s.want).collect();
    assert_eq!(run(&steps), want);
}

#[test]
fn a_new_primary_starts_the_watch_afresh() {
    let steps = [
        Step {
            targets: Some(&[("g", "a")]),
            ..step("up", "192.0.2.1", "*192.0.2.1 announced trusted")
        },
        step("up", "", "* withdrawn trusted"),
        // The gateway moved to b: a fresh watch, nothing seen of b yet.
        Step {
            targets: Some(&[("g", "b")]),
            ..step("up", "", "* announced trusted")
        },
        step("up", "192.0.2.2", "*192.0.2.2 announced trusted"),
        // Nothing to watch any more (this host became primary, or the
        // group is manual).
        Step {
            targets: Some(&[]),
            ..step("up", "", "*nothing")
        },
    ];
    let want: Vec<&str> = steps.iter().map(|s| s.want).collect();
    assert_eq!(run(&steps), want);
}

#[test]
fn the_fabric_view_ages_without_being_a_change() {
    let mut w = Watcher::default();
    let t = [target("g", "a")];
    w.set_targets(&t);
    let t0 = Instant::now();
    let a: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap()];
    w.look(t0, Some(true), &[(t[0].clone(), Some(a.clone()))]);
    let s0 = w.seen();
    w.look(
        t0 + Duration::from_secs(5),
        Some(true),
        &[(t[0].clone(), Some(a))],
    );
    let s1 = w.seen();
    assert_eq!(s0, s1, "the same view, older");
    let up = s1.witnesses(t0 + Duration::from_secs(7))[0].fabric_up;
    assert_eq!(up, Duration::from_secs(7));
    // Just established: not zero (zero means untrustworthy).
    assert_eq!(s1.witnesses(t0)[0].fabric_up, Duration::from_millis(1));
    w.look(t0 + Duration::from_secs(8), Some(false), &[]);
    assert_eq!(w.seen().witnesses(t0)[0].fabric_up, Duration::ZERO);
}

#[test]
fn kernel_fdb_events_for_a_watched_vmac_wake_the_watcher() {
    use netif::{Event, FdbEntry, FdbState};
    let fdb = |mac: &str| FdbEntry {
        mac: mac.parse().unwrap(),
        index: 11,
        master: Some(10),
        vlan: None,
        dst: Some("192.0.2.1".parse().unwrap()),
        vni: None,
        is_self: false,
        is_master: true,
        extern_learn: true,
        sticky: false,
        state: FdbState::Dynamic,
    };
    let t = [target("g", "a")];
    let (ours, other) = ("42:6c:fa:d6:82:98", "42:6c:fa:d6:82:99");
    assert!(concerns(&Event::FdbDel(fdb(ours)), &t));
    assert!(concerns(&Event::FdbNew(fdb(ours)), &t));
    assert!(!concerns(&Event::FdbDel(fdb(other)), &t));
    assert!(!concerns(&Event::FdbDel(fdb(ours)), &[]));
}

/// A [`Look`] whose announcers the test sets; sessions always up.
struct Fake(Arc<std::sync::Mutex<Option<Vec<IpAddr>>>>);

impl Look for Fake {
    async fn announcers(&self, _: &str, _: &evpn_model::Mac) -> Option<Vec<IpAddr>> {
        self.0.lock().unwrap().clone()
    }

    async fn sessions_up(&self) -> Option<bool> {
        Some(true)
    }
}

/// Run `cmd` with `sh` (in the calling thread's namespace); panics on failure.
fn sh(cmd: &str) {
    let out = std::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Linux dataplane, in a private network namespace (root): with a look
/// interval of an hour, only the kernel's FDB event for the watched vMAC
/// (BIRD removing the primary's entry from the VXLAN device) can make the
/// watcher look again — and it does, at once.
#[test]
fn netns_a_kernel_fdb_event_wakes_the_linux_watcher() {
    let h = std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET) needs root");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            sh("ip link set lo up && ip link add brg-w type bridge \
                && ip link add vxl-w type vxlan id 100 dstport 4789 local 127.0.0.1 nolearning \
                && ip link set vxl-w master brg-w && ip link set vxl-w up && ip link set brg-w up");
            let vtep: IpAddr = "192.0.2.1".parse().unwrap();
            let answer = Arc::new(std::sync::Mutex::new(Some(vec![vtep])));
            let (targets, rx) = watch::channel(Vec::new());
            let (out, mut seen) = watch::channel(Seen::default());
            let stop = CancellationToken::new();
            let hour = Duration::from_secs(3600);
            let task = tokio::spawn(watch_with(
                Fake(answer.clone()),
                hour,
                true,
                rx,
                out,
                stop.clone(),
            ));
            let mut until = async |what: &str, f: &dyn Fn(&Seen) -> bool| {
                tokio::time::timeout(Duration::from_secs(5), seen.wait_for(|s| f(s)))
                    .await
                    .unwrap_or_else(|_| panic!("{what}"))
                    .unwrap();
            };
            targets.send_replace(vec![target("g", "a")]);
            until("the first look sees the primary announce", &|s| {
                s.entries.first().is_some_and(|(_, a, _)| a == &[vtep])
            })
            .await;
            // The fabric withdraws the route; BIRD removes its FDB entry.
            *answer.lock().unwrap() = Some(vec![]);
            sh(
                "bridge fdb add 42:6c:fa:d6:82:98 dev vxl-w dst 192.0.2.1 self permanent \
                && bridge fdb del 42:6c:fa:d6:82:98 dev vxl-w dst 192.0.2.1 self",
            );
            until("the FDB event makes the watcher look again", &|s| {
                s.entries
                    .first()
                    .is_some_and(|(_, _, withdrawn)| *withdrawn)
            })
            .await;
            stop.cancel();
            task.await.unwrap();
        });
    });
    if let Err(p) = h.join() {
        std::panic::resume_unwind(p);
    }
}

/// Where a takeover's least settle counts from on this host: the look that
/// first saw the vMAC withdrawn, kept while it stays withdrawn (a later
/// look does not move it), gone once it is announced again or the watch
/// starts afresh (another primary).
#[test]
fn the_first_withdrawn_look_is_kept_until_announced_again() {
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    let mac: evpn_model::Mac = "42:6c:fa:d6:82:98".parse().unwrap();
    let r1: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap()];
    let mut w = Watcher::default();
    w.set_targets(&[target("web", "r1")]);
    let at = |w: &mut Watcher, now: u64, a: &[IpAddr]| {
        w.look(
            ms(now),
            Some(true),
            &[(target("web", "r1"), Some(a.to_vec()))],
        );
        let s = w.seen();
        (
            s.withdrawn_at
                .get(&("web".to_string(), mac))
                .map(|(t, _)| *t),
            s.withdrawn_ago("web", mac, ms(100)),
        )
    };
    // Never seen announced: nothing was withdrawn.
    assert_eq!(at(&mut w, 0, &[]), (None, None));
    assert_eq!(at(&mut w, 10, &r1), (None, None));
    // Withdrawn at 20, still at 30: 20 is kept (80 ms before 100).
    assert_eq!(
        at(&mut w, 20, &[]),
        (Some(ms(20)), Some(Duration::from_millis(80)))
    );
    assert_eq!(
        at(&mut w, 30, &[]),
        (Some(ms(20)), Some(Duration::from_millis(80)))
    );
    // Announced again: gone; withdrawn again at 50: counts from 50.
    assert_eq!(at(&mut w, 40, &r1), (None, None));
    assert_eq!(
        at(&mut w, 50, &[]),
        (Some(ms(50)), Some(Duration::from_millis(50)))
    );
    // Another group or vMAC was not seen withdrawn.
    assert_eq!(w.seen().withdrawn_ago("other", mac, ms(100)), None);
    // The watch ends (the takeover made this host the primary): the sight
    // is kept for UNWATCHED_KEEP, no longer.
    w.set_targets(&[]);
    let s = w.seen();
    assert_eq!(
        s.withdrawn_ago("web", mac, ms(100)),
        Some(Duration::from_millis(50))
    );
    let late = ms(50) + UNWATCHED_KEEP + Duration::from_millis(1);
    assert_eq!(s.withdrawn_ago("web", mac, late), None);
    // Watched again (here with a new primary): the watch starts afresh,
    // the old sight is gone.
    w.set_targets(&[target("web", "r2")]);
    w.look(ms(60), Some(true), &[(target("web", "r2"), Some(vec![]))]);
    assert!(w.seen().withdrawn_at.is_empty());
}
