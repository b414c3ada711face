//! The fabric witness (docs/failover.md, trigger 1): evpnr names on every
//! heartbeat ack the vMACs this host is to watch — those of the `auto`
//! groups of which it is a candidate — and this host tells it, at once on a
//! change, what it sees of each: the VTEPs that announce it, and whether
//! the primary's announcement is **withdrawn** (seen announced since the
//! watch for this primary began, now announced by no VTEP). With each
//! report goes how long this host's own BGP sessions have been established
//! (zero: its view of the fabric is not trustworthy — a host cut off from
//! the fabric sees no announcers either).
//!
//! [`Watcher`] is the sans-IO core (table-tested); [`run`] is the thin task
//! that asks BIRD, on both dataplanes, every `evpnd.witness-interval`
//! while there is something to watch.
use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use evpn_model::witness::WatchedMac;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::manager::Manager;
pub use crate::witness_view::{Seen, UNWATCHED_KEEP, Watched};

/// What this host last saw of one watched vMAC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Entry {
    /// Seen announced since the watch began.
    seen: bool,
    /// The announcers at the last successful look (`None`: none yet).
    announcers: Option<Vec<IpAddr>>,
    /// The look that first saw it withdrawn, while it still is.
    withdrawn_at: Option<Instant>,
}

impl Entry {
    fn withdrawn(&self) -> bool {
        self.seen && self.announcers.as_ref().is_some_and(|a| a.is_empty())
    }
}

/// The sans-IO watcher: what is watched and what was seen.
#[derive(Debug, Default)]
pub struct Watcher {
    entries: BTreeMap<WatchedMac, Entry>,
    /// Withdrawal sights of vMACs no longer watched ([`UNWATCHED_KEEP`]).
    unwatched: BTreeMap<(String, evpn_model::Mac), Instant>,
    fabric_since: Option<Instant>,
}

impl Watcher {
    /// Watch exactly `targets`: a new target (or one with another primary)
    /// starts afresh (not seen announced yet); a kept one keeps its state.
    pub fn set_targets(&mut self, targets: &[WatchedMac]) {
        let unwatched = &mut self.unwatched;
        self.entries.retain(|w, e| {
            let keep = targets.contains(w);
            if let (false, Some(t)) = (keep, e.withdrawn_at) {
                unwatched.insert((w.group.clone(), w.vmac), t);
            }
            keep
        });
        for t in targets {
            self.unwatched.remove(&(t.group.clone(), t.vmac));
            self.entries.entry(t.clone()).or_default();
        }
    }

    pub fn targets(&self) -> Vec<WatchedMac> {
        self.entries.keys().cloned().collect()
    }

    /// One look at `now`: per target its announcers (`None`: BIRD did not
    /// answer), and whether this host's BGP sessions are established
    /// (`None`: BIRD did not answer). Any failed look makes the view
    /// untrustworthy until the next good one.
    pub fn look(
        &mut self,
        now: Instant,
        sessions_up: Option<bool>,
        looks: &[(WatchedMac, Option<Vec<IpAddr>>)],
    ) {
        let mut ok = sessions_up == Some(true);
        for (w, a) in looks {
            let Some(e) = self.entries.get_mut(w) else {
                continue;
            };
            match a {
                Some(a) => {
                    let mut a = a.clone();
                    a.sort();
                    a.dedup();
                    e.seen |= !a.is_empty();
                    e.announcers = Some(a);
                    e.withdrawn_at = if e.withdrawn() {
                        e.withdrawn_at.or(Some(now))
                    } else {
                        None
                    };
                }
                None => ok = false,
            }
        }
        if !ok {
            self.fabric_since = None;
        } else if self.fabric_since.is_none() {
            self.fabric_since = Some(now);
        }
    }

    /// What is seen now.
    pub fn seen(&self) -> Seen {
        Seen {
            entries: self
                .entries
                .iter()
                .map(|(w, e)| {
                    let a = e.announcers.clone().unwrap_or_default();
                    (w.clone(), a, e.withdrawn())
                })
                .collect(),
            fabric_since: self.fabric_since,
            withdrawn_at: self
                .unwatched
                .iter()
                .map(|(k, t)| (k.clone(), (*t, false)))
                .chain(self.entries.iter().filter_map(|(w, e)| {
                    Some(((w.group.clone(), w.vmac), (e.withdrawn_at?, true)))
                }))
                .collect(),
        }
    }
}

/// Publish `seen` if it changed (the registrar then sends a heartbeat at
/// once); the age of the fabric view alone is no change.
pub fn publish(tx: &watch::Sender<Seen>, seen: Seen) {
    tx.send_if_modified(|old| {
        let changed = old.key() != seen.key();
        if changed {
            for (w, a, withdrawn) in &seen.entries {
                let was = old.entries.iter().find(|(o, ..)| o == w).map(|(_, _, x)| *x);
                if *withdrawn && was != Some(true) {
                    tracing::warn!(group = %w.group, vmac = %w.vmac, primary = %w.primary, trusted = seen.fabric_since.is_some(), "witness-withdrawn");
                } else if !*withdrawn && was == Some(true) {
                    tracing::info!(group = %w.group, vmac = %w.vmac, primary = %w.primary, announcers = ?a, "witness-announced");
                }
            }
        }
        *old = seen;
        changed
    });
}

/// Linux dataplane: whether a kernel event may be the fabric's change of a
/// watched vMAC — a bridge FDB entry for it appeared or went (BIRD installs
/// a remote VTEP's route for it as one on the eVPN's VXLAN device, and
/// removes it on the withdrawal).
pub fn concerns(ev: &netif::Event, targets: &[WatchedMac]) -> bool {
    match ev {
        netif::Event::FdbNew(e) | netif::Event::FdbDel(e) => {
            targets.iter().any(|t| t.vmac == e.mac)
        }
        _ => false,
    }
}

/// The next kernel event that [`concerns`] a target; never, without a
/// kernel watch (or once it ended: the look falls back to the interval).
async fn kernel_change(k: &mut Option<netif::Watcher>, targets: &[WatchedMac]) {
    loop {
        let ev = match k.as_mut() {
            Some(w) => w.next().await,
            None => return std::future::pending().await,
        };
        match ev {
            Some(ev) if concerns(&ev, targets) => return,
            Some(_) => {}
            None => {
                tracing::warn!("witness-kernel-watch-ended");
                *k = None;
            }
        }
    }
}

/// Where the watcher looks: this host's BIRD (the [`Bird`] of [`run`]);
/// tests give answers of their own.
pub trait Look {
    /// The VTEPs announcing `vmac` in eVPN `slug`; `None`: no answer.
    fn announcers(
        &self,
        slug: &str,
        vmac: &evpn_model::Mac,
    ) -> impl std::future::Future<Output = Option<Vec<IpAddr>>> + Send;
    /// Whether this host's BGP sessions are established; `None`: no answer.
    fn sessions_up(&self) -> impl std::future::Future<Output = Option<bool>> + Send;
}

/// This host's BIRD, counted as the `bgp` health check counts (at least
/// one session and at least `health.bgp.min-established`).
pub struct Bird(pub Arc<Manager>);

impl Look for Bird {
    async fn announcers(&self, slug: &str, vmac: &evpn_model::Mac) -> Option<Vec<IpAddr>> {
        let v = self.0.bird.mac_announcers(slug, &vmac.to_string()).await;
        v.ok()
            .map(|v| v.iter().filter_map(|s| s.parse().ok()).collect())
    }

    async fn sessions_up(&self) -> Option<bool> {
        let bgp = &self.0.cfg.health.bgp;
        let p = self.0.bird.client.show_protocols(None, false).await.ok()?;
        let s = crate::health::sessions(&p, &bgp.protocols);
        Some(s.up >= 1 && s.up as u32 >= bgp.min_established)
    }
}

/// Watch the vMACs evpnr names (`targets`) until `shutdown`, publishing
/// what is seen to `out`. Idle while there is nothing to watch.
pub async fn run(
    m: Arc<Manager>,
    targets: watch::Receiver<Vec<WatchedMac>>,
    out: watch::Sender<Seen>,
    shutdown: CancellationToken,
) {
    let interval = m.cfg.witness_interval.0;
    let linux = m.cfg.dataplane == crate::config::Dataplane::Linux;
    watch_with(Bird(m), interval, linux, targets, out, shutdown).await
}

/// [`run`] over any [`Look`]: a look every `interval` while there is
/// something to watch; with `linux`, a kernel FDB event for a watched vMAC
/// makes the next look at once, without waiting for the interval.
pub async fn watch_with(
    look: impl Look,
    interval: Duration,
    linux: bool,
    mut targets: watch::Receiver<Vec<WatchedMac>>,
    out: watch::Sender<Seen>,
    shutdown: CancellationToken,
) {
    let mut w = Watcher::default();
    // Open only while watching: idle, its events would pile up unread.
    let mut kernel: Option<netif::Watcher> = None;
    // Opened (or failed to) for this spell of watching.
    let mut tried = false;
    loop {
        let t = targets.borrow_and_update().clone();
        w.set_targets(&t);
        if t.is_empty() {
            kernel = None;
            publish(&out, w.seen());
            tokio::select! {
                _ = shutdown.cancelled() => return,
                c = targets.changed() => if c.is_err() { return },
            }
            tried = false;
            continue;
        }
        if linux && !tried {
            tried = true;
            kernel = netif::Watcher::open()
                .inspect_err(|e| tracing::warn!(error = %e, "witness-kernel-watch-unavailable"))
                .ok();
        }
        let mut looks = Vec::with_capacity(t.len());
        for target in &t {
            looks.push((
                target.clone(),
                look.announcers(&target.group, &target.vmac).await,
            ));
        }
        // After the announcers: a session torn down with the routes shows.
        let up = look.sessions_up().await;
        w.look(Instant::now(), up, &looks);
        publish(&out, w.seen());
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
            _ = kernel_change(&mut kernel, &t) => {}
            c = targets.changed() => if c.is_err() { return },
        }
    }
}

#[cfg(test)]
#[path = "witness_tests.rs"]
mod tests;
