//! The simulated EVPN fabric: which MAC routes each simulated host's BIRD
//! sees from the others, so that "does another VTEP announce the vMAC?"
//! has a truthful answer outside the root network-namespace fabric.
//!
//! One [`Fabric`] (a cheap, cloneable handle) is shared by every simulated
//! host of a lab or test; all of them run in one process. A host is a name
//! with three inputs:
//! - its **dataplane**: per bridge-domain tag (`evpn-<slug>`), the MACs of
//!   the BVIs that are up — what IPng's `vppevpn` protocol exports; the
//!   harness feeds it from the host's vppsim ([`Fabric::set_dataplane`],
//!   from `vppsim::SimHandle::observe` and `SimState::bvi_macs`);
//! - its **BIRD**: the `evpn` protocols that run (slug, VNI, route targets,
//!   router address), or none when the BIRD is stopped; birdsim feeds it on
//!   every `configure`, `enable`, `disable` and when it is killed;
//! - its **fabric link**: cut by a host ↔ fabric partition
//!   ([`Fabric::set_link`]).
//!
//! A host *exports* the route (its router address, VNI, export targets, MAC)
//! for each MAC of a BVI in the bridge domain of one of its running `evpn`
//! protocols. Host Y sees host X's route in the eth table of its eVPN E when
//! the route's targets meet E's import targets and the route is *carried*:
//! X exports it, X's BIRD runs and X's link is up, and Y's BIRD runs and Y's
//! link is up. Carrying changes reach the other side late, as BGP does: a
//! route carried continuously since `a` is visible from `a +
//! announce_delay`, and one that stopped being carried at `b` stays visible
//! until `b + withdraw_delay` (a BGP withdrawal, a session torn down by a
//! killed BIRD or by BFD/hold timers after a cut). A host's BGP sessions are
//! established under the same rule for "its BIRD runs and its link is up".
//!
//! The model ([`Model`]) is sans-IO: every input and query carries its
//! instant, and tests drive it with explicit instants.
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// Timing and bookkeeping of a fabric.
#[derive(Debug, Clone)]
pub struct FabricOptions {
    /// How long after a host starts carrying a route the others see it
    /// (also: how long a BGP session takes to come up).
    pub announce_delay: Duration,
    /// How long a route stays visible to the others after it stopped being
    /// carried (withdrawal, killed BIRD, partition).
    pub withdraw_delay: Duration,
    /// Keep the whole history (for [`Fabric::two_announcer_moments`]);
    /// otherwise only what the delays still need is kept.
    pub record: bool,
}

impl Default for FabricOptions {
    fn default() -> Self {
        Self {
            announce_delay: Duration::from_millis(1),
            withdraw_delay: Duration::from_millis(5),
            record: false,
        }
    }
}

/// One running `evpn` protocol of a host's BIRD.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EvpnExport {
    /// The eVPN's slug (its bridge domain is tagged `evpn-<slug>`).
    pub slug: String,
    /// VNI.
    pub vni: u32,
    /// Router (VTEP) address.
    pub vtep: String,
    /// Import route targets (`a:b`).
    pub import: BTreeSet<String>,
    /// Export route targets (`a:b`).
    pub export: BTreeSet<String>,
}

/// A MAC route on the fabric.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// The announcing VTEP (next hop).
    pub vtep: String,
    /// VNI.
    pub vni: u32,
    /// Route targets (the exporter's export targets).
    pub targets: BTreeSet<String>,
    /// The MAC (lower case).
    pub mac: String,
}

/// A route as a host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The route.
    pub route: Route,
    /// Since when it is visible.
    pub since: Instant,
}

/// A moment at which one host's EVPN table held routes of one MAC from two
/// VTEPs (its own export counts, at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwoAnnouncers {
    /// The host whose table it was.
    pub host: String,
    /// The MAC.
    pub mac: String,
    /// The VTEPs.
    pub vteps: BTreeSet<String>,
    /// When it began.
    pub at: Instant,
}

#[derive(Debug, Clone)]
struct Input {
    /// bridge-domain tag → BVI MACs up.
    dp: BTreeMap<String, BTreeSet<String>>,
    bird: Option<Vec<EvpnExport>>,
    link: bool,
}

impl Default for Input {
    fn default() -> Self {
        Self {
            dp: BTreeMap::new(),
            bird: None,
            link: true,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Snap {
    bird: bool,
    link: bool,
    routes: BTreeSet<Route>,
}

impl Snap {
    fn of(i: &Input) -> Snap {
        let mut routes = BTreeSet::new();
        for e in i.bird.iter().flatten() {
            for mac in i.dp.get(&format!("evpn-{}", e.slug)).into_iter().flatten() {
                routes.insert(Route {
                    vtep: e.vtep.clone(),
                    vni: e.vni,
                    targets: e.export.clone(),
                    mac: mac.to_lowercase(),
                });
            }
        }
        Snap {
            bird: i.bird.is_some(),
            link: i.link,
            routes,
        }
    }
    fn up(&self) -> bool {
        self.bird && self.link
    }
}

#[derive(Debug, Default)]
struct Host {
    input: Input,
    /// Snapshots in time order; the first is in effect from its instant.
    hist: Vec<(Instant, Snap)>,
}

impl Host {
    fn at(&self, t: Instant) -> Option<&Snap> {
        let i = self.hist.partition_point(|(u, _)| *u <= t);
        i.checked_sub(1).map(|i| &self.hist[i].1)
    }
}

/// The sans-IO fabric model.
#[derive(Debug)]
pub struct Model {
    opts: FabricOptions,
    hosts: BTreeMap<String, Host>,
}

/// A time interval `[from, to)`; `to = None`: open.
type Span = (Instant, Option<Instant>);

/// Maximal intervals `[a, b)` (`b = None`: still true) over which `f` holds,
/// with `f` piecewise constant between the sorted change points `ts`.
fn true_intervals(ts: &[Instant], f: impl Fn(Instant) -> bool) -> Vec<Span> {
    let mut out = Vec::new();
    let mut open: Option<Instant> = None;
    for &t in ts {
        match (f(t), open) {
            (true, None) => open = Some(t),
            (false, Some(a)) => {
                out.push((a, Some(t)));
                open = None;
            }
            _ => {}
        }
    }
    if let Some(a) = open {
        out.push((a, None));
    }
    out
}

impl Model {
    /// An empty fabric.
    pub fn new(opts: FabricOptions) -> Self {
        Self {
            opts,
            hosts: BTreeMap::new(),
        }
    }

    /// The options.
    pub fn options(&self) -> &FabricOptions {
        &self.opts
    }

    fn update(&mut self, host: &str, now: Instant, f: impl FnOnce(&mut Input)) {
        let keep = self.opts.announce_delay + self.opts.withdraw_delay + Duration::from_secs(1);
        let record = self.opts.record;
        let h = self.hosts.entry(host.to_string()).or_default();
        f(&mut h.input);
        let snap = Snap::of(&h.input);
        if h.hist.last().map(|(_, s)| s) != Some(&snap) {
            // Never earlier than the last change (a clock read before the
            // lock was taken).
            let now = h.hist.last().map_or(now, |(t, _)| now.max(*t));
            h.hist.push((now, snap));
        }
        if !record && let Some(cut) = now.checked_sub(keep) {
            let i = h.hist.partition_point(|(u, _)| *u <= cut);
            if i > 1 {
                h.hist.drain(..i - 1);
            }
        }
    }

    /// Host `host`'s dataplane: bridge-domain tag → MACs of its BVI when up.
    pub fn set_dataplane(
        &mut self,
        host: &str,
        dp: BTreeMap<String, BTreeSet<String>>,
        now: Instant,
    ) {
        self.update(host, now, |i| i.dp = dp);
    }

    /// Host `host`'s BIRD: its running `evpn` protocols, `None` when stopped.
    pub fn set_bird(&mut self, host: &str, bird: Option<Vec<EvpnExport>>, now: Instant) {
        self.update(host, now, |i| i.bird = bird);
    }

    /// Host `host`'s fabric link (`false`: partitioned from the fabric).
    pub fn set_link(&mut self, host: &str, up: bool, now: Instant) {
        self.update(host, now, |i| i.link = up);
    }

    /// Whether host `host`'s fabric link is up (not partitioned) now.
    pub fn link(&self, host: &str) -> bool {
        self.hosts.get(host).is_none_or(|h| h.input.link)
    }

    /// The change instants of `hosts`, merged.
    fn changes(&self, hosts: &[&Host]) -> Vec<Instant> {
        let mut ts: Vec<Instant> = hosts
            .iter()
            .flat_map(|h| h.hist.iter().map(|(t, _)| *t))
            .collect();
        ts.sort();
        ts.dedup();
        ts
    }

    /// The delayed view of a signal: visible intervals `[a + announce,
    /// b + withdraw)` of its true intervals `[a, b)`.
    fn delayed(&self, iv: Vec<Span>) -> Vec<Span> {
        iv.into_iter()
            .filter_map(|(a, b)| {
                let from = a + self.opts.announce_delay;
                let to = b.map(|b| b + self.opts.withdraw_delay);
                to.is_none_or(|to| from < to).then_some((from, to))
            })
            .collect()
    }

    /// When X's route `r` is visible at Y (X ≠ Y).
    fn carried(&self, x: &Host, y: &Host, r: &Route) -> Vec<Span> {
        let ts = self.changes(&[x, y]);
        self.delayed(true_intervals(&ts, |t| {
            x.at(t).is_some_and(|s| s.up() && s.routes.contains(r)) && y.at(t).is_some_and(Snap::up)
        }))
    }

    /// The routes of other hosts in host `host`'s eth table of eVPN `slug`
    /// at `now` (the eVPN's import targets meet the route's targets).
    pub fn routes_in(&self, host: &str, slug: &str, now: Instant) -> Vec<Seen> {
        let Some(y) = self.hosts.get(host) else {
            return Vec::new();
        };
        let Some(e) = y.input.bird.iter().flatten().find(|e| e.slug == slug) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, x) in &self.hosts {
            if name == host {
                continue;
            }
            let ever: BTreeSet<&Route> = x.hist.iter().flat_map(|(_, s)| &s.routes).collect();
            for r in ever {
                if r.targets.is_disjoint(&e.import) {
                    continue;
                }
                if let Some((from, _)) = self
                    .carried(x, y, r)
                    .into_iter()
                    .find(|(a, b)| *a <= now && b.is_none_or(|b| now < b))
                {
                    out.push(Seen {
                        route: r.clone(),
                        since: from,
                    });
                }
            }
        }
        out.sort_by(|a, b| (&a.route.mac, &a.route.vtep).cmp(&(&b.route.mac, &b.route.vtep)));
        out
    }

    /// The VTEPs whose route for `mac` host `host` sees now in any of its
    /// eVPNs (its own export not included).
    pub fn announcers_seen(&self, host: &str, mac: &str, now: Instant) -> BTreeSet<String> {
        let Some(y) = self.hosts.get(host) else {
            return BTreeSet::new();
        };
        y.input
            .bird
            .iter()
            .flatten()
            .flat_map(|e| self.routes_in(host, &e.slug, now))
            .filter(|s| s.route.mac.eq_ignore_ascii_case(mac))
            .map(|s| s.route.vtep)
            .collect()
    }

    /// Whether host `host`'s BGP sessions are established at `now`.
    pub fn established(&self, host: &str, now: Instant) -> bool {
        let Some(h) = self.hosts.get(host) else {
            return false;
        };
        let ts = self.changes(&[h]);
        self.delayed(true_intervals(&ts, |t| h.at(t).is_some_and(Snap::up)))
            .iter()
            .any(|(a, b)| *a <= now && b.is_none_or(|b| now < b))
    }

    /// Every moment over the recorded history (see
    /// [`FabricOptions::record`]) at which one host's EVPN table held
    /// routes of one MAC from two VTEPs: its own (while its BIRD runs and
    /// exports it) and the others' as carried to it.
    pub fn two_announcer_moments(&self) -> Vec<TwoAnnouncers> {
        let mut out = Vec::new();
        for (yn, y) in &self.hosts {
            // mac → (from, to, vtep) intervals.
            let mut iv: BTreeMap<&str, Vec<(Span, &str)>> = BTreeMap::new();
            for (xn, x) in &self.hosts {
                let ever: BTreeSet<&Route> = x.hist.iter().flat_map(|(_, s)| &s.routes).collect();
                for r in ever {
                    let v = if xn == yn {
                        let ts = self.changes(&[y]);
                        true_intervals(&ts, |t| y.at(t).is_some_and(|s| s.routes.contains(r)))
                    } else {
                        self.carried(x, y, r)
                    };
                    iv.entry(r.mac.as_str())
                        .or_default()
                        .extend(v.into_iter().map(|s| (s, r.vtep.as_str())));
                }
            }
            for (mac, v) in iv {
                // Sweep: ends before starts at one instant.
                let mut ev: Vec<(Instant, i32, &str)> = Vec::new();
                for ((a, b), vtep) in v {
                    ev.push((a, 1, vtep));
                    if let Some(b) = b {
                        ev.push((b, -1, vtep));
                    }
                }
                ev.sort_by_key(|e| (e.0, e.1));
                let mut live: BTreeMap<&str, i32> = BTreeMap::new();
                let mut reported = false;
                for (t, d, vtep) in ev {
                    *live.entry(vtep).or_default() += d;
                    live.retain(|_, n| *n > 0);
                    if live.len() > 1 && !reported {
                        out.push(TwoAnnouncers {
                            host: yn.clone(),
                            mac: mac.to_string(),
                            vteps: live.keys().map(|s| s.to_string()).collect(),
                            at: t,
                        });
                        reported = true;
                    } else if live.len() <= 1 {
                        reported = false;
                    }
                }
            }
        }
        out.sort_by_key(|m| m.at);
        out
    }
}

/// The fabric shared by the simulated hosts of one lab or test: a
/// cloneable handle on one [`Model`], read and written at the current
/// instant.
#[derive(Debug, Clone)]
pub struct Fabric {
    inner: Arc<Mutex<Model>>,
    /// When the fabric was made (for reports).
    pub t0: Instant,
}

impl Fabric {
    /// An empty fabric.
    pub fn new(opts: FabricOptions) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Model::new(opts))),
            t0: Instant::now(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Model) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The options.
    pub fn options(&self) -> FabricOptions {
        self.with(|m| m.options().clone())
    }

    /// See [`Model::set_dataplane`].
    pub fn set_dataplane(&self, host: &str, dp: BTreeMap<String, BTreeSet<String>>) {
        self.with(|m| m.set_dataplane(host, dp, Instant::now()));
    }

    /// See [`Model::set_bird`].
    pub fn set_bird(&self, host: &str, bird: Option<Vec<EvpnExport>>) {
        self.with(|m| m.set_bird(host, bird, Instant::now()));
    }

    /// Cut (`false`) or heal (`true`) host `host`'s link to the fabric.
    pub fn set_link(&self, host: &str, up: bool) {
        self.with(|m| m.set_link(host, up, Instant::now()));
    }

    /// Whether host `host`'s link to the fabric is up.
    pub fn link(&self, host: &str) -> bool {
        self.with(|m| m.link(host))
    }

    /// See [`Model::routes_in`], now.
    pub fn routes_in(&self, host: &str, slug: &str) -> Vec<Seen> {
        self.with(|m| m.routes_in(host, slug, Instant::now()))
    }

    /// See [`Model::announcers_seen`], now.
    pub fn announcers_seen(&self, host: &str, mac: &str) -> BTreeSet<String> {
        self.with(|m| m.announcers_seen(host, mac, Instant::now()))
    }

    /// See [`Model::established`], now.
    pub fn established(&self, host: &str) -> bool {
        self.with(|m| m.established(host, Instant::now()))
    }

    /// See [`Model::two_announcer_moments`].
    pub fn two_announcer_moments(&self) -> Vec<TwoAnnouncers> {
        self.with(|m| m.two_announcer_moments())
    }
}

#[cfg(test)]
#[path = "fabric_tests.rs"]
mod tests;
