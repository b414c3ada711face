//! What the fabric witness ([`crate::witness`]) sees, as published to the
//! registrar (heartbeats) and to reads (a takeover's least settle counts
//! from this host's sight of the withdrawal). Apart from the watcher, so
//! the manager can hold it without depending on the watcher's loop.
use std::{
    collections::BTreeMap,
    net::IpAddr,
    time::{Duration, Instant},
};

use evpn_model::witness::{MacWitness, WatchedMac};

/// One watched vMAC, its announcers and whether the primary's
/// announcement is withdrawn.
pub type Watched = (WatchedMac, Vec<IpAddr>, bool);

/// What this host sees of the vMACs it watches (published to the
/// registrar, which sends it with every heartbeat).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// Per watched vMAC: the announcers (empty before the first look) and
    /// whether the primary's announcement is withdrawn.
    pub entries: Vec<Watched>,
    /// Since when this host's BGP sessions have been established without
    /// a break, as far as the watcher looked (`None`: not now).
    pub fabric_since: Option<Instant>,
    /// Per withdrawn vMAC (group, vMAC): the look that first saw it
    /// withdrawn, and whether it is still watched. Where a takeover's
    /// least settle counts from on this host
    /// ([`evpn_model::settle::SettlePolicy::since_withdrawal`]).
    pub withdrawn_at: BTreeMap<(String, evpn_model::Mac), (Instant, bool)>,
}

/// How long the sight of a withdrawal outlives the watch of its vMAC. The
/// takeover that makes this host the group's primary ends the watch (evpnr
/// names only the vMACs of other primaries) before its bind arrives here;
/// unwatched, a re-announcement would go unseen, so the sight is kept only
/// this long, and dropped when the vMAC is watched again.
pub const UNWATCHED_KEEP: Duration = Duration::from_secs(10);

impl Seen {
    /// How long ago this host first saw `vmac` of `group` withdrawn, if
    /// it is withdrawn now.
    pub fn withdrawn_ago(
        &self,
        group: &str,
        vmac: evpn_model::Mac,
        now: Instant,
    ) -> Option<Duration> {
        let (t, watched) = self.withdrawn_at.get(&(group.to_string(), vmac))?;
        let ago = now.saturating_duration_since(*t);
        (*watched || ago <= UNWATCHED_KEEP).then_some(ago)
    }

    /// The heartbeat's witnesses at `now`.
    pub fn witnesses(&self, now: Instant) -> Vec<MacWitness> {
        let up = self
            .fabric_since
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
            // Zero means "not trustworthy": an established view is at least 1 ms old.
            .max(if self.fabric_since.is_some() {
                Duration::from_millis(1)
            } else {
                Duration::ZERO
            });
        self.entries
            .iter()
            .map(|(w, a, withdrawn)| MacWitness {
                watched: w.clone(),
                announcers: a.clone(),
                withdrawn: *withdrawn,
                fabric_up: up,
            })
            .collect()
    }

    /// What a change is: another announcer set or withdrawal, or the
    /// fabric view becoming trustworthy or not (its age is no change).
    pub(crate) fn key(&self) -> (&[Watched], bool) {
        (&self.entries, self.fabric_since.is_some())
    }
}
