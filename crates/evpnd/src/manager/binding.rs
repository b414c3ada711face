//! Bind and release: the gateway role of a BVI. Both plan with the one BVI
//! planner (`crate::bvi`) against the committed state (no reads), run the
//! steps, then read back (`Manager::verify`). Bind: MAC and link-local →
//! BIRD → addresses last → verify and save, with the first GARP/NA round
//! next to them → answer → the paced rounds after it. Release: addresses
//! first → MAC and link-local → BIRD → verify → save → (linux dialect)
//! BIRD's withdrawal checked → answer.
use evpn_daemon::events::Event;
use evpn_model::{Error, Mac, error::Object};
use ipnet::IpNet;

use super::{Manager, overlap, ref_of};
use crate::{
    bvi::{self, Desired},
    state::{Binding, Evpn, HostState, now_ms},
    timing::timed,
};

/// The steps that turn the committed `from` into `to` (both of eVPN `e`).
fn steps(e: &Evpn, from: &crate::state::Bvi, to: &crate::state::Bvi) -> Vec<bvi::Step> {
    let want = Desired {
        enabled: e.enabled,
        bvi: Some(to),
        linux_side: false,
    };
    bvi::plan_change(e.enabled, Some(from), &want)
}

/// How old a read made ahead of a bind may be and still be used.
const AHEAD_MAX_AGE: std::time::Duration = std::time::Duration::from_millis(50);

/// The overlap check's read (the other interfaces' addresses), made ahead
/// of a bind next to its evidence wait (issue 16: the two reads no longer
/// add up on the move's gap). The bind uses it only if nobody took the
/// write lock between the read and the bind (no write of this evpnd can
/// have changed what it read) and it is at most [`AHEAD_MAX_AGE`] old;
/// otherwise it reads again, under the lock, as without it.
pub struct Ahead {
    /// [`Manager::lock_count`] when the read started (with the lock held).
    count: u64,
    read_at: std::time::Instant,
    others: Result<Vec<(String, IpNet)>, Error>,
}

/// Whether a read made ahead while the lock count was `read` is still
/// current for the holder that made it `now`, `age` after the read: the
/// holder is the next one after the read's own, and the read is fresh.
fn current(now: u64, read: u64, age: std::time::Duration) -> bool {
    now == read + 1 && age <= AHEAD_MAX_AGE
}

/// A read started by `PrepareGroupBVI` (evpnr asks a move's target before
/// it releases the old primary), kept for the bind that follows, so the
/// read overlaps the release instead of the gateway's gap (issue 16). The
/// bind uses it under the same rule as its own read ahead ([`Ahead`]).
pub(crate) struct Prepared {
    started: std::time::Instant,
    read: tokio::task::JoinHandle<Result<Ahead, Error>>,
}

impl Manager {
    /// PrepareGroupBVI: start the overlap check's read of a bind on `slug`
    /// now, in the background, for the bind that follows. It replaces one
    /// started before; reads older than [`AHEAD_MAX_AGE`] are dropped.
    pub fn prepare_bind(self: &std::sync::Arc<Self>, slug: &str) {
        let (m, s) = (self.clone(), slug.to_string());
        let read = tokio::spawn(async move { m.read_ahead(&s).await });
        let mut all = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|_, p| p.started.elapsed() <= AHEAD_MAX_AGE);
        let started = std::time::Instant::now();
        if let Some(old) = all.insert(slug.to_string(), Prepared { started, read }) {
            old.read.abort();
        }
    }

    /// The read a `PrepareGroupBVI` started for a bind on `slug` (waited
    /// for if it is still running), taken: one bind uses it. None if there
    /// is none, it is older than [`AHEAD_MAX_AGE`], or it failed.
    pub async fn take_prepared(&self, slug: &str) -> Option<Ahead> {
        let p = self
            .prepared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(slug)?;
        if p.started.elapsed() > AHEAD_MAX_AGE {
            p.read.abort();
            return None;
        }
        timed("overlap check (prepared)", p.read).await.ok()?.ok()
    }

    /// The read a bind on `slug` checks overlaps with, made ahead of its
    /// write lock: the one `PrepareGroupBVI` started, or else a new one.
    pub async fn ahead_of_bind(&self, slug: &str) -> Option<Ahead> {
        match self.take_prepared(slug).await {
            Some(a) => Some(a),
            None => self.read_ahead(slug).await.ok(),
        }
    }

    /// Read what the overlap check of a bind on `slug` reads, now: taken
    /// while nobody holds the write lock.
    pub async fn read_ahead(&self, slug: &str) -> Result<Ahead, Error> {
        let (count, e) = {
            let st = self.lock().await;
            (self.lock_count(), Self::get(&st, slug)?.clone())
        };
        let others = timed(
            "overlap check (ahead)",
            self.dp.other_addresses(&ref_of(&e)),
        )
        .await;
        Ok(Ahead {
            count,
            read_at: std::time::Instant::now(),
            others,
        })
    }

    /// BindGroupBVI: MAC and link-local → BIRD → addresses last → verify
    /// (read back; heal or fail) and save, the first GARP/NA round next to
    /// them → the paced rounds after the answer. Idempotent; a bound BVI
    /// with other addresses gets exactly the diff.
    pub async fn bind(
        &self,
        slug: &str,
        group: &str,
        vmac: Mac,
        addrs: Vec<IpNet>,
    ) -> Result<Evpn, Error> {
        self.bind_with(slug, group, vmac, addrs, None).await
    }

    /// [`Manager::bind`], with the overlap check's read made ahead when
    /// `ahead` is still current (see [`Ahead`]).
    pub async fn bind_with(
        &self,
        slug: &str,
        group: &str,
        vmac: Mac,
        addrs: Vec<IpNet>,
        ahead: Option<Ahead>,
    ) -> Result<Evpn, Error> {
        let mut st = timed("manager lock", self.lock()).await;
        // Current only if this bind is the next holder of the lock after
        // the read's own (brief) hold.
        let ahead = ahead.filter(|a| {
            a.others.is_ok() && current(self.lock_count(), a.count, a.read_at.elapsed())
        });
        let mut e = Self::get(&st, slug)?.clone();
        let Some(mut b) = e.bvi.clone() else {
            return Err(Error::FailedPrecondition(format!(
                "evpn {slug:?} has no BVI to bind"
            )));
        };
        let mut addrs = addrs;
        addrs.sort();
        addrs.dedup();
        if b.binding
            .as_ref()
            .is_some_and(|x| x.vmac == vmac && x.addresses == addrs && x.group_id == group)
        {
            // Nothing to change, but the dataplane may have drifted.
            if let Err(err) = self.verify(&e, "bind", &[]).await {
                return Err(self.heal_after(&st, slug, err).await);
            }
            return Ok(e);
        }
        // Refused up front: an overlap with another interface of the FIB.
        if !addrs.is_empty() {
            let others = match ahead.map(|a| a.others) {
                Some(Ok(o)) => o,
                _ => timed("overlap check", self.dp.other_addresses(&ref_of(&e))).await?,
            };
            overlap::check_foreign_overlap(&addrs, &others)?;
        }
        // Already bound with this vMAC for this group: only the address set
        // changes (its own event; `groupbvi-bound` means a new claim).
        let addresses_only = b
            .binding
            .as_ref()
            .is_some_and(|x| x.vmac == vmac && x.group_id == group);
        let old = b.clone();
        b.binding = Some(Binding {
            group_id: group.to_string(),
            vmac,
            addresses: addrs.clone(),
        });
        let plan = steps(&e, &old, &b);
        if let Err(err) = self.execute(&e, &ref_of(&e), &plan).await {
            return Err(self.heal_after(&st, slug, err).await);
        }
        b.modified_ms = now_ms();
        e.bvi = Some(b);
        // The addresses are in: the first GARP/NA round goes out next to the
        // read-back and the save; the answer waits for all three.
        let (first, rest) = self.announce_plan(&e, &addrs);
        let committed = async {
            if let Err(err) = timed("verify", self.verify(&e, "bind", &plan)).await {
                return Err(self.heal_after(&st, slug, err).await);
            }
            st.evpns.insert(slug.to_string(), e.clone());
            timed("save", self.commit_binding(&mut st, slug)).await
        };
        let announced = async {
            if first {
                self.announce_round(&e, &addrs, 0, "first GARP/NA").await;
            }
        };
        let (committed, ()) = futures::join!(committed, announced);
        committed?;
        let event = if addresses_only {
            Event::GroupBviAddressesChanged
        } else {
            Event::GroupBviBound
        };
        self.event(
            event,
            &[
                ("evpn", slug.to_string()),
                ("group", group.to_string()),
                ("mac", vmac.to_string()),
                (
                    "addresses",
                    addrs
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            ],
        );
        drop(st);
        if let Some((generation, schedule, start)) = rest {
            self.spawn_rounds(&e, addrs, generation, schedule, start, usize::from(first));
        }
        Ok(e)
    }

    /// Bump the announce generation of `slug` (stops a running schedule).
    pub(super) fn bump_announce(&self, slug: &str) -> u64 {
        let mut g = self.announce_gen.lock().unwrap_or_else(|p| p.into_inner());
        let v = g.entry(slug.to_string()).or_insert(0);
        *v += 1;
        *v
    }

    /// The announcements after a bind: whether the schedule's first round
    /// is due at once (the bind sends it before answering), and the rounds
    /// after it (announce generation, offsets, their start). Bumps the
    /// generation: an older schedule of the BVI stops.
    fn announce_plan(
        &self,
        e: &Evpn,
        addrs: &[IpNet],
    ) -> (
        bool,
        Option<(u64, Vec<std::time::Duration>, tokio::time::Instant)>,
    ) {
        let generation = self.bump_announce(&e.slug);
        let mut schedule: Vec<_> = self.cfg.announce.schedule.iter().map(|d| d.0).collect();
        if addrs.is_empty() || schedule.is_empty() {
            return (false, None);
        }
        let start = tokio::time::Instant::now();
        let first = schedule[0].is_zero();
        if first {
            schedule.remove(0);
        }
        (first, Some((generation, schedule, start)))
    }

    /// One round of announcements, a step of the call's timeline.
    async fn announce_round(&self, e: &Evpn, addrs: &[IpNet], round: usize, step: &str) {
        if let Err(err) = timed(step, self.dp.announce(&ref_of(e), addrs)).await {
            tracing::warn!(evpn = %e.slug, round, error = %err, "announce-failed");
        }
    }

    /// Announce `addrs` on the paced schedule; a later bind or release of
    /// the same BVI bumps its generation and stops this schedule.
    pub(crate) fn spawn_announce(&self, e: &Evpn, addrs: Vec<IpNet>) {
        let generation = self.bump_announce(&e.slug);
        if addrs.is_empty() || self.cfg.announce.schedule.is_empty() {
            return;
        }
        let schedule: Vec<_> = self.cfg.announce.schedule.iter().map(|d| d.0).collect();
        let start = tokio::time::Instant::now();
        self.spawn_rounds(e, addrs, generation, schedule, start, 0);
    }

    /// The rounds of `schedule` (offsets from `start`; the first is round
    /// number `first`) on a task of their own, while the announce
    /// generation of the BVI stays `generation`.
    fn spawn_rounds(
        &self,
        e: &Evpn,
        addrs: Vec<IpNet>,
        generation: u64,
        schedule: Vec<std::time::Duration>,
        start: tokio::time::Instant,
        first: usize,
    ) {
        if schedule.is_empty() {
            return;
        }
        let dp = self.dp.clone();
        let e = e.clone();
        let shared = self.announce_gen.clone();
        tokio::spawn(async move {
            for (round, off) in (first..).zip(schedule) {
                // Not through the timer for a round that is due already (the
                // first, at 0 s): the timer's 1 ms tick would delay it.
                if tokio::time::Instant::now() < start + off {
                    tokio::time::sleep_until(start + off).await;
                }
                let now = shared
                    .lock()
                    .map(|g| g.get(&e.slug).copied())
                    .unwrap_or(None);
                if now != Some(generation) {
                    return;
                }
                if let Err(err) = dp.announce(&ref_of(&e), &addrs).await {
                    tracing::warn!(evpn = %e.slug, round, error = %err, "announce-failed");
                }
            }
        });
    }

    /// ReleaseGroupBVI: addresses first → MAC and link-local → BIRD →
    /// verify (read back; heal or fail) → save → BIRD's withdrawal checked
    /// (linux dialect). Idempotent.
    pub async fn release(&self, slug: &str, group: &str) -> Result<Evpn, Error> {
        Ok(self.release_then(slug, group, async {}).await?.0)
    }

    /// [`Manager::release`], and `look` once the vMAC is gone from here
    /// (next to BIRD's withdrawal check, not after it: the release's
    /// answer waits for both); its outcome comes back with the eVPN.
    pub async fn release_then<T>(
        &self,
        slug: &str,
        group: &str,
        look: impl std::future::Future<Output = T>,
    ) -> Result<(Evpn, T), Error> {
        let mut st = timed("manager lock", self.lock()).await;
        let seen = self.release_locked(&mut st, slug, group, look).await?;
        Ok((Self::get(&st, slug)?.clone(), seen))
    }

    pub(super) async fn release_locked<T>(
        &self,
        st: &mut HostState,
        slug: &str,
        group: &str,
        look: impl std::future::Future<Output = T>,
    ) -> Result<T, Error> {
        let mut e = Self::get(st, slug)?.clone();
        let Some(mut b) = e.bvi.clone() else {
            return Err(Error::not_found(Object::Bvi, slug));
        };
        let Some(bind) = b.binding.clone() else {
            // Nothing to change, but the dataplane may have drifted.
            if let Err(err) = self.verify(&e, "release", &[]).await {
                return Err(self.heal_after(st, slug, err).await);
            }
            return Ok(look.await);
        };
        self.bump_announce(slug);
        let old = b.clone();
        b.binding = None;
        let plan = steps(&e, &old, &b);
        if let Err(err) = self.execute(&e, &ref_of(&e), &plan).await {
            return Err(self.heal_after(st, slug, err).await);
        }
        b.modified_ms = now_ms();
        e.bvi = Some(b);
        if let Err(err) = timed("verify", self.verify(&e, "release", &plan)).await {
            return Err(self.heal_after(st, slug, err).await);
        }
        st.evpns.insert(slug.to_string(), e);
        timed("save", self.commit_binding(st, slug)).await?;
        // After the read-back and the save, not next to them: started at
        // once, BIRD has usually not yet read the FDB change, and the poll's
        // back-off (1, 2, 4 ms) made the check 3-10 ms instead of 0.2 ms
        // (issue 16's fabric timelines).
        let (withdrawn, seen) = tokio::join!(
            timed(
                "withdrawn check (BIRD)",
                self.verify_withdrawn(slug, bind.vmac),
            ),
            look
        );
        let group = if group.is_empty() {
            bind.group_id
        } else {
            group.to_string()
        };
        self.event(
            Event::GroupBviReleased,
            &[
                ("evpn", slug.to_string()),
                ("group", group),
                ("mac", bind.vmac.to_string()),
            ],
        );
        withdrawn.map(|()| seen)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{AHEAD_MAX_AGE, current};

    #[test]
    fn a_read_ahead_is_used_only_by_the_next_holder_and_while_fresh() {
        let ms = Duration::from_millis;
        // (lock count now, at the read, age) → used
        let cases = [
            (8, 7, ms(1), true),
            (8, 7, AHEAD_MAX_AGE, true),
            // Stale.
            (8, 7, AHEAD_MAX_AGE + ms(1), false),
            // Someone took the lock in between (a write may have changed
            // what was read).
            (9, 7, ms(1), false),
            // Not after the read (cannot happen; never trusted).
            (7, 7, ms(1), false),
        ];
        for (now, read, age, want) in cases {
            assert_eq!(current(now, read, age), want, "{now} {read} {age:?}");
        }
    }
}
