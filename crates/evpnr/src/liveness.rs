//! Member liveness, defined once for everything that builds on it: an evpnd
//! sends heartbeats on a stream of its own (`Evpnr.Heartbeat`); the state is
//! derived from the age of the last one. `classify` is the rule (sans-IO,
//! table-tested); `Registry::update_liveness` applies it, emits the
//! transitions as `failover` events and keeps the metrics.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use evpn_daemon::events::Event;

use evpn_model::witness::MacWitness;

use crate::{config::LivenessConfig, model::Liveness, registry::Registry};

/// Period of the background resync of every ready member.
pub const RESYNC_EVERY: Duration = Duration::from_secs(5);

/// The rule: liveness from the age of the last heartbeat.
pub fn classify(age: Option<Duration>, cfg: &LivenessConfig) -> Liveness {
    match age {
        None => Liveness::Unknown,
        Some(a) if a >= cfg.dead_after.0 => Liveness::Dead,
        Some(a) if a >= cfg.suspect_after.0 => Liveness::Suspect,
        Some(_) => Liveness::Alive,
    }
}

impl Registry {
    /// Record a heartbeat of member `id`; false if it is not registered.
    pub fn heartbeat_seen(self: &Arc<Self>, id: &str) -> bool {
        let known = self
            .with_rt(id, |rt| {
                rt.last_heartbeat = Some(Instant::now());
                rt.last_seen = Some(std::time::SystemTime::now());
            })
            .is_some();
        if known {
            self.update_liveness(id);
        }
        known
    }

    /// One heartbeat of member `id` with its readiness: recorded, and the
    /// readiness applied when it changed (a change triggers a resync; an
    /// unchanged one does not — the periodic resync covers drift).
    /// NOT_FOUND if `id` is not registered (the evpnd registers again).
    pub fn heartbeat(
        self: &Arc<Self>,
        id: &str,
        ready: bool,
        health: Option<evpn_model::health::HealthReport>,
        witnesses: Vec<MacWitness>,
    ) -> Result<(), evpn_model::Error> {
        let before = self.with_rt(id, |rt| {
            if health.is_some() {
                rt.health = health;
            }
            std::mem::replace(&mut rt.witnesses, witnesses.clone())
        });
        if let Some(before) = before {
            self.witnesses_changed(id, &before, &witnesses);
        }
        if !self.heartbeat_seen(id) {
            return Err(evpn_model::Error::not_found(
                evpn_model::error::Object::Instance,
                id,
            ));
        }
        let changed = self.read(|i| i.rt.get(id).is_some_and(|r| r.ready != ready));
        if changed {
            self.report_ready(id, ready)?;
        }
        Ok(())
    }

    /// Report what changed in member `id`'s witnesses: a newly withdrawn
    /// announcement (`withdrawal-reported`, counted; the failover driver
    /// decides at once on the event) and one no longer withdrawn
    /// (`withdrawal-cleared`).
    fn witnesses_changed(&self, id: &str, before: &[MacWitness], now: &[MacWitness]) {
        for (w, was) in withdrawal_changes(before, now) {
            let primary = w.watched.primary.as_str();
            if was {
                let announcers: Vec<String> = w.announcers.iter().map(|a| a.to_string()).collect();
                self.emit(
                    Event::WithdrawalCleared,
                    &[
                        ("group", &w.watched.group),
                        ("instance", id),
                        ("primary", primary),
                        ("announcers", &announcers.join(",")),
                    ],
                );
                continue;
            }
            self.metrics
                .withdrawal_reports
                .get_or_create(&crate::metrics::PrimaryLabels {
                    group: w.watched.group.clone(),
                    instance: id.to_string(),
                })
                .inc();
            let up = w.fabric_up.as_millis().to_string();
            self.emit(
                Event::WithdrawalReported,
                &[
                    ("group", &w.watched.group),
                    ("instance", id),
                    ("primary", primary),
                    ("fabric-up-ms", &up),
                ],
            );
        }
    }

    /// Age of member `id`'s last heartbeat and its liveness now.
    pub fn liveness(&self, id: &str) -> (Option<Duration>, Liveness) {
        let cfg = self.cfg();
        let age = self
            .read(|i| i.rt.get(id).and_then(|r| r.last_heartbeat))
            .map(|t| t.elapsed());
        (age, classify(age, &cfg.liveness))
    }

    /// Re-derive member `id`'s liveness; a change is emitted as a
    /// `failover` event (alive: info, suspect: warn, dead: error).
    pub fn update_liveness(&self, id: &str) {
        let (age, now) = self.liveness(id);
        let Some(was) = self.with_rt(id, |rt| std::mem::replace(&mut rt.liveness, now)) else {
            return;
        };
        let age_ms = age.map_or(String::new(), |a| a.as_millis().to_string());
        self.metrics
            .heartbeat_age
            .get_or_create(&crate::metrics::InstanceLabels {
                instance: id.to_string(),
            })
            .set(age.map_or(-1.0, |a| a.as_secs_f64()));
        if was == now {
            return;
        }
        self.refresh();
        let event = match now {
            Liveness::Alive => Event::InstanceAlive,
            Liveness::Suspect => Event::InstanceSuspect,
            Liveness::Dead => Event::InstanceDead,
            Liveness::Unknown => return,
        };
        self.emit(
            event,
            &[
                ("instance", id),
                ("previous", was.as_str()),
                ("heartbeat_age_ms", &age_ms),
            ],
        );
    }

    /// Re-derive every member's liveness periodically until shutdown, and
    /// resync every ready member every `RESYNC_EVERY` (drift made behind
    /// evpnr's back is repaired even when nothing else happens).
    pub fn spawn_liveness(self: &Arc<Self>) {
        let reg = self.clone();
        tokio::spawn(async move {
            let mut last_resync = Instant::now();
            loop {
                let tick = (reg.cfg().liveness.heartbeat_interval.0 / 4)
                    .clamp(Duration::from_millis(5), Duration::from_millis(250));
                tokio::select! {
                    _ = reg.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(tick) => {}
                }
                let ids: Vec<String> = reg.read(|i| i.rt.keys().cloned().collect());
                for id in &ids {
                    reg.update_liveness(id);
                }
                if last_resync.elapsed() >= RESYNC_EVERY {
                    last_resync = Instant::now();
                    for id in &ids {
                        if reg.read(|i| i.rt.get(id).is_some_and(|r| r.ready)) {
                            reg.trigger_resync(id);
                        }
                    }
                }
            }
        });
    }
}

/// The watched vMACs whose withdrawal changed between two heartbeats:
/// `(witness, false)` newly withdrawn, `(witness, true)` withdrawn before
/// and not now (announced again, or no longer watched: then the old
/// witness with no announcers).
pub fn withdrawal_changes(before: &[MacWitness], now: &[MacWitness]) -> Vec<(MacWitness, bool)> {
    let was = |w: &MacWitness| before.iter().any(|b| b.watched == w.watched && b.withdrawn);
    let mut out: Vec<(MacWitness, bool)> = now
        .iter()
        .filter(|w| w.withdrawn != was(w))
        .map(|w| (w.clone(), !w.withdrawn))
        .collect();
    for b in before.iter().filter(|b| b.withdrawn) {
        if !now.iter().any(|w| w.watched == b.watched) {
            let gone = MacWitness {
                announcers: Vec::new(),
                ..b.clone()
            };
            out.push((gone, true));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use evpn_daemon::duration::HumanDuration;

    #[test]
    fn classify_table() {
        let cfg = LivenessConfig {
            heartbeat_interval: HumanDuration(Duration::from_secs(1)),
            suspect_after: HumanDuration(Duration::from_secs(3)),
            dead_after: HumanDuration(Duration::from_secs(10)),
        };
        let ms = |n| Some(Duration::from_millis(n));
        let table = [
            (None, Liveness::Unknown),
            (ms(0), Liveness::Alive),
            (ms(2_999), Liveness::Alive),
            (ms(3_000), Liveness::Suspect),
            (ms(9_999), Liveness::Suspect),
            (ms(10_000), Liveness::Dead),
            (ms(86_400_000), Liveness::Dead),
        ];
        for (age, want) in table {
            assert_eq!(classify(age, &cfg), want, "{age:?}");
        }
        assert!(!Liveness::Unknown.unresponsive() && !Liveness::Alive.unresponsive());
        assert!(Liveness::Suspect.unresponsive() && Liveness::Dead.unresponsive());
    }

    #[test]
    fn withdrawals_are_reported_once_per_change() {
        use evpn_model::witness::WatchedMac;
        let w = |group: &str, primary: &str, withdrawn: bool| MacWitness {
            watched: WatchedMac::new("w", group, "42:6c:fa:d6:82:98", primary).unwrap(),
            announcers: if withdrawn {
                vec![]
            } else {
                vec!["192.0.2.1".parse().unwrap()]
            },
            withdrawn,
            fabric_up: Duration::from_secs(1),
        };
        let show = |v: Vec<(MacWitness, bool)>| -> Vec<String> {
            v.iter()
                .map(|(w, cleared)| {
                    let what = if *cleared { "cleared" } else { "reported" };
                    format!("{} {} {what}", w.watched.group, w.watched.primary)
                })
                .collect()
        };
        let rows: &[(&[MacWitness], &[MacWitness], &[&str])] = &[
            (&[], &[], &[]),
            (&[w("g", "a", false)], &[w("g", "a", false)], &[]),
            (
                &[w("g", "a", false)],
                &[w("g", "a", true)],
                &["g a reported"],
            ),
            (&[], &[w("g", "a", true)], &["g a reported"]),
            // The same report again is no news.
            (&[w("g", "a", true)], &[w("g", "a", true)], &[]),
            (
                &[w("g", "a", true)],
                &[w("g", "a", false)],
                &["g a cleared"],
            ),
            // No longer watched (the primary changed): cleared.
            (
                &[w("g", "a", true)],
                &[w("g", "b", false)],
                &["g a cleared"],
            ),
            (
                &[w("g", "a", true)],
                &[w("g", "b", true)],
                &["g b reported", "g a cleared"],
            ),
            (
                &[w("g", "a", true), w("h", "a", false)],
                &[w("h", "a", true)],
                &["h a reported", "g a cleared"],
            ),
        ];
        for (i, (before, now, want)) in rows.iter().enumerate() {
            assert_eq!(show(withdrawal_changes(before, now)), *want, "row {i}");
        }
    }
}
