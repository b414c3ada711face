//! Two-holder moments: instants at which two VTEPs announce the gateway MAC
//! at once. Two sources, both recorded with µs timestamps:
//!
//! * **Holders** ([`HolderWatch`]): per candidate router, netlink FDB
//!   events in its namespace for the gateway MAC on its BVI port: a clean
//!   (not `extern_learn`) bridge entry there is exactly what BIRD announces,
//!   and what keepalived's helper and evpnd put there when they bind. Two
//!   routers that are both up on the fabric holding one at the same time is
//!   a two-holder moment; a router taken off the fabric (dead, or its
//!   underlay cut) does not count while it is off. An entry for the MAC
//!   appearing on another port of the bridge ends the holding (the kernel
//!   moves an entry when BIRD installs a remote route over it).
//! * **EVPN tables** ([`TablePoll`]): every router's BIRD `evpntab`, polled
//!   every 10 ms; a sample with routes for the MAC from two route
//!   distinguishers is a two-holder moment (except on a router that is off
//!   the fabric). Polling can miss overlaps shorter than its period; the
//!   holder events cannot.
//!
//! The arithmetic ([`holder_overlaps`], [`merge`]) is sans-IO and tested.
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context;

/// A closed interval of µs since the epoch.
pub type Span = (u64, u64);

/// One holder transition of one router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldEvent {
    /// µs since the epoch.
    pub at: u64,
    /// Router index.
    pub router: usize,
    /// Holds the MAC from now on (`true`) or not.
    pub holds: bool,
}

/// Per router, the spans during which it held the MAC within `[from, to]`,
/// from its transitions (sorted by time; a router's state before its first
/// event is `initial[router]`).
pub fn hold_spans(events: &[HoldEvent], initial: &[bool], from: u64, to: u64) -> Vec<Vec<Span>> {
    let mut out = vec![Vec::new(); initial.len()];
    for (r, spans) in out.iter_mut().enumerate() {
        let mut since = initial[r].then_some(from);
        for e in events.iter().filter(|e| e.router == r) {
            if e.at > to {
                break;
            }
            let at = e.at.max(from);
            match (since, e.holds) {
                (None, true) => since = Some(at),
                (Some(s), false) => {
                    if at > s {
                        spans.push((s, at));
                    }
                    since = None;
                }
                _ => {}
            }
        }
        if let Some(s) = since
            && to > s
        {
            spans.push((s, to));
        }
    }
    out
}

/// `spans` minus `cut` (both sorted, non-overlapping).
pub fn subtract(spans: &[Span], cut: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    for &(mut a, b) in spans {
        for &(c, d) in cut {
            if d <= a || c >= b {
                continue;
            }
            if c > a {
                out.push((a, c));
            }
            a = a.max(d);
            if a >= b {
                break;
            }
        }
        if a < b {
            out.push((a, b));
        }
    }
    out
}

/// Merge overlapping or touching spans (within `slack` µs).
pub fn merge(mut spans: Vec<Span>, slack: u64) -> Vec<Span> {
    spans.sort_unstable();
    let mut out: Vec<Span> = Vec::new();
    for (a, b) in spans {
        match out.last_mut() {
            Some(l) if a <= l.1 + slack => l.1 = l.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The spans during which at least two routers held the MAC, each router's
/// holding minus its `off_fabric` spans.
pub fn holder_overlaps(per_router: &[Vec<Span>], off_fabric: &[Vec<Span>]) -> Vec<Span> {
    let mut edges: Vec<(u64, i32)> = Vec::new();
    for (r, spans) in per_router.iter().enumerate() {
        let cut = off_fabric.get(r).cloned().unwrap_or_default();
        for (a, b) in merge(subtract(&merge(spans.clone(), 0), &cut), 0) {
            edges.push((a, 1));
            edges.push((b, -1));
        }
    }
    // Ends before starts at the same instant: touching is not overlapping.
    edges.sort_unstable_by_key(|&(t, d)| (t, d));
    let (mut n, mut start, mut out) = (0, 0, Vec::new());
    for (t, d) in edges {
        let before = n;
        n += d;
        if before < 2 && n >= 2 {
            start = t;
        } else if before >= 2 && n < 2 && t > start {
            out.push((start, t));
        }
    }
    out
}

/// Watches one router's BVI port for clean bridge entries of `mac`
/// (netlink multicast, a thread in the router's namespace). Stops on drop.
pub struct HolderWatch {
    /// Transitions seen.
    pub events: Arc<Mutex<Vec<HoldEvent>>>,
    /// The state found by the initial dump.
    pub initial: bool,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HolderWatch {
    /// Start watching port `port` in namespace `ns` (router `router`).
    pub fn start(
        ns: &str,
        router: usize,
        port: &str,
        mac: &str,
        epoch: Instant,
    ) -> anyhow::Result<HolderWatch> {
        let mac: netif::Mac = mac.parse().map_err(anyhow::Error::msg).context("MAC")?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel::<anyhow::Result<bool>>();
        let (ev, st, ns, port) = (
            events.clone(),
            stop.clone(),
            ns.to_string(),
            port.to_string(),
        );
        let thread = std::thread::spawn(move || {
            let setup = (|| -> anyhow::Result<_> {
                crate::netns::enter(&ns)?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let (w, nl, idx, init) = rt.block_on(async {
                    // Subscribe first, then dump: nothing falls in between.
                    let w = netif::Watcher::open()?;
                    let nl = netif::Netlink::connect()?;
                    let idx = nl.index_of(&port).await?;
                    let init = nl.list_fdb().await?.iter().any(|e| {
                        e.mac == mac && e.index == idx && e.in_bridge() && !e.extern_learn
                    });
                    anyhow::Ok((w, nl, idx, init))
                })?;
                Ok((rt, w, nl, idx, init))
            })();
            let (rt, mut w, _nl, idx, init) = match setup {
                Ok(x) => x,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(Ok(init));
            rt.block_on(async move {
                let mut holds = init;
                while !st.load(Ordering::Relaxed) {
                    let Ok(Some(e)) =
                        tokio::time::timeout(Duration::from_millis(100), w.next()).await
                    else {
                        continue;
                    };
                    let at = epoch.elapsed().as_micros() as u64;
                    let now = match e {
                        // The bridge has one entry per MAC: a new one on
                        // another port (BIRD installing a remote route over
                        // ours moves the entry to the VXLAN device without a
                        // delete) means ours is gone.
                        netif::Event::FdbNew(x) if x.mac == mac && x.in_bridge() => {
                            x.index == idx && !x.extern_learn
                        }
                        netif::Event::FdbDel(x)
                            if x.mac == mac && x.index == idx && x.in_bridge() =>
                        {
                            false
                        }
                        _ => continue,
                    };
                    if now != holds {
                        holds = now;
                        if let Ok(mut v) = ev.lock() {
                            v.push(HoldEvent { at, router, holds });
                        }
                    }
                }
            });
        });
        let initial = rx.recv().context("holder watch died")??;
        Ok(HolderWatch {
            events,
            initial,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for HolderWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A sample of one router's `evpntab` with routes for the MAC from two or
/// more route distinguishers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSample {
    /// µs since the epoch.
    pub at: u64,
    /// The router whose table it is.
    pub router: usize,
    /// The announcing next hops / RDs seen.
    pub nets: Vec<String>,
}

/// Polls every router's BIRD `evpntab` for the MAC every `period` (a task
/// on the fabric's runtime; BIRD's control sockets are files). Only
/// samples with two or more announcers are kept. Stops on drop.
pub struct TablePoll {
    /// The two-announcer samples.
    pub samples: Arc<Mutex<Vec<TableSample>>>,
    /// Polls done (all routers), to tell a quiet result from a dead poller.
    pub polls: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl TablePoll {
    /// Start polling the BIRDs at `socks` (router order).
    pub fn start(
        rt: &tokio::runtime::Handle,
        socks: Vec<std::path::PathBuf>,
        mac: &str,
        period: Duration,
        epoch: Instant,
    ) -> TablePoll {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let polls = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, p, st, mac) = (
            samples.clone(),
            polls.clone(),
            stop.clone(),
            mac.to_string(),
        );
        rt.spawn(async move {
            let clients: Vec<_> = socks
                .iter()
                .map(|k| {
                    bird_ctl::BirdClient::lazy(
                        k,
                        bird_ctl::ClientOptions {
                            connect_timeout: Duration::from_millis(200),
                            command_timeout: Duration::from_millis(200),
                        },
                    )
                })
                .collect();
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !st.load(Ordering::Relaxed) {
                tick.tick().await;
                for (router, c) in clients.iter().enumerate() {
                    let Ok(routes) = c.show_route_mac("evpntab", &mac).await else {
                        continue;
                    };
                    let mut nets: Vec<String> = routes
                        .iter()
                        .map(|r| {
                            r.net
                                .split_whitespace()
                                .nth(2)
                                .unwrap_or(&r.net)
                                .to_string()
                        })
                        .collect();
                    nets.sort();
                    nets.dedup();
                    if nets.len() >= 2
                        && let Ok(mut v) = s.lock()
                    {
                        v.push(TableSample {
                            at: epoch.elapsed().as_micros() as u64,
                            router,
                            nets,
                        });
                    }
                }
                p.fetch_add(1, Ordering::Relaxed);
            }
        });
        TablePoll {
            samples,
            polls,
            stop,
        }
    }
}

impl Drop for TablePoll {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Two-announcer table samples as spans (each sample covers one poll
/// period), except those of routers while they are off the fabric.
pub fn table_spans(
    samples: &[TableSample],
    off_fabric: &[Vec<Span>],
    period_us: u64,
    from: u64,
    to: u64,
) -> Vec<Span> {
    samples
        .iter()
        .filter(|s| s.at >= from && s.at <= to)
        .filter(|s| {
            !off_fabric
                .get(s.router)
                .is_some_and(|c| c.iter().any(|&(a, b)| s.at >= a && s.at <= b))
        })
        .map(|s| (s.at, s.at + period_us))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at: u64, router: usize, holds: bool) -> HoldEvent {
        HoldEvent { at, router, holds }
    }

    #[test]
    fn spans_from_transitions() {
        let e = [
            ev(10, 0, false),
            ev(20, 1, true),
            ev(50, 0, true),
            ev(70, 1, false),
        ];
        let s = hold_spans(&e, &[true, false], 0, 100);
        assert_eq!(s[0], vec![(0, 10), (50, 100)]);
        assert_eq!(s[1], vec![(20, 70)]);
        // Events outside the window are clipped.
        let s = hold_spans(&e, &[true, false], 15, 60);
        assert_eq!(s[0], vec![(50, 60)]);
        assert_eq!(s[1], vec![(20, 60)]);
    }

    #[test]
    fn overlap_table() {
        // (per-router spans, off-fabric spans, expected overlaps)
        type Case = (Vec<Vec<Span>>, Vec<Vec<Span>>, Vec<Span>);
        let cases: Vec<Case> = vec![
            // break-before-make: touching is not overlapping
            (vec![vec![(0, 10)], vec![(10, 20)]], vec![], vec![]),
            // make-before-break: 3 µs of overlap
            (vec![vec![(0, 13)], vec![(10, 20)]], vec![], vec![(10, 13)]),
            // split brain after a crash that is not a death
            (
                vec![vec![(0, 100)], vec![(40, 100)]],
                vec![],
                vec![(40, 100)],
            ),
            // the old primary is off the fabric (dead) while the new one holds
            (
                vec![vec![(0, 100)], vec![(40, 100)]],
                vec![vec![(5, 80)], vec![]],
                vec![(80, 100)],
            ),
            // three holders, two at a time
            (
                vec![vec![(0, 30)], vec![(20, 50)], vec![(40, 60)]],
                vec![],
                vec![(20, 30), (40, 50)],
            ),
            // nobody
            (vec![vec![], vec![]], vec![], vec![]),
        ];
        for (i, (spans, off, want)) in cases.into_iter().enumerate() {
            assert_eq!(holder_overlaps(&spans, &off), want, "case {i}");
        }
    }

    #[test]
    fn subtract_and_merge() {
        assert_eq!(
            subtract(&[(0, 100)], &[(10, 20), (50, 60)]),
            vec![(0, 10), (20, 50), (60, 100)]
        );
        assert_eq!(subtract(&[(0, 10)], &[(0, 10)]), vec![]);
        let v = vec![(5, 8), (0, 3), (3, 4), (20, 30)];
        assert_eq!(merge(v.clone(), 0), vec![(0, 4), (5, 8), (20, 30)]);
        assert_eq!(
            merge(v, 1),
            vec![(0, 8), (20, 30)],
            "a gap within the slack closes"
        );
    }

    #[test]
    fn table_samples_of_routers_off_the_fabric_do_not_count() {
        let s = |at, router| TableSample {
            at,
            router,
            nets: vec!["10.0.0.1:200".into(), "10.0.0.2:200".into()],
        };
        let samples = [s(100, 0), s(100, 2), s(500, 2)];
        let off = vec![vec![(50, 150)], vec![], vec![]];
        assert_eq!(
            table_spans(&samples, &off, 10, 0, 400),
            vec![(100, 110)],
            "r1 off the fabric at 100; 500 is after the window"
        );
    }
}
