//! Verification after `configure` and the `docs/bird-notes.md` §4.6 recovery (hot-added VXLAN devices on BIRD 2.20):
//! an `evpn_<slug>` protocol stuck in `start` while its `bridge_<slug>` companion is `up` is
//! restarted, alone, after one device-protocol scan.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::apply::{Applier, ApplyError, ApplyReport};
use crate::client::BirdControl;
use crate::error::BirdError;
use crate::status::{ProtoState, ProtocolInfo};
use crate::validate;

impl<C: BirdControl> Applier<C> {
    pub(crate) async fn verify(
        &self,
        desired: &BTreeMap<String, (Option<String>, Vec<String>, bool)>,
        report: &mut ApplyReport,
    ) -> Result<(), ApplyError> {
        let pol = &self.cfg.verify;
        let bird = |error| ApplyError::Bird {
            error,
            rolled_back: true,
        };
        for (text, protocols, enabled) in desired.values() {
            if text.is_none() {
                for p in protocols {
                    let start = Instant::now();
                    loop {
                        match self.control.show_protocol(p).await.map_err(bird)? {
                            None => break,
                            Some(info) if start.elapsed() >= pol.settle => {
                                return Err(ApplyError::Verify {
                                    protocol: p.clone(),
                                    reason: "still present after removal".into(),
                                    info: Some(Box::new(info)),
                                });
                            }
                            Some(_) => tokio::time::sleep(pol.poll).await,
                        }
                    }
                }
                continue;
            }
            let mut stuck_attempts: BTreeMap<String, u32> = BTreeMap::new();
            for p in protocols {
                let mut start = Instant::now();
                let mut start_seen: Option<Instant> = None;
                loop {
                    let info = self.control.show_protocol(p).await.map_err(bird)?;
                    let Some(info) = info else {
                        return Err(ApplyError::Verify {
                            protocol: p.clone(),
                            reason: "not present after configure".into(),
                            info: None,
                        });
                    };
                    let waited = start.elapsed();
                    let fail = |reason: String, info: ProtocolInfo| ApplyError::Verify {
                        protocol: p.clone(),
                        reason,
                        info: Some(Box::new(info)),
                    };
                    match (enabled, info.state) {
                        (false, ProtoState::Down) => {
                            report.protocols.push(info);
                            break;
                        }
                        (false, s) => {
                            if waited >= pol.settle {
                                return Err(fail(format!("disabled but in state {s:?}"), info));
                            }
                        }
                        (true, ProtoState::Up) => {
                            report.protocols.push(info);
                            break;
                        }
                        (true, ProtoState::Down) => {
                            return Err(fail("enabled but down".into(), info));
                        }
                        (true, ProtoState::Stop | ProtoState::Flush | ProtoState::Unknown) => {
                            if waited >= pol.settle {
                                return Err(fail(format!("stuck in {:?}", info.state), info));
                            }
                        }
                        (true, ProtoState::Start) => {
                            let since = *start_seen.get_or_insert_with(Instant::now);
                            // §4.6: an evpn protocol in `start` while its bridge is `up`.
                            let suspect = match &pol.stuck_recovery {
                                Some(_) if p.starts_with("evpn_") => {
                                    self.bridge_up(protocols, p).await.map_err(bird)?
                                }
                                _ => false,
                            };
                            if let (true, Some(rec)) = (suspect, &pol.stuck_recovery) {
                                if since.elapsed() >= rec.grace {
                                    let n = stuck_attempts.entry(p.clone()).or_insert(0);
                                    if *n >= rec.attempts {
                                        return Err(fail(
                                            format!(
                                                "stuck in start with its bridge up (hot-added VXLAN device?) after {n} restarts"
                                            ),
                                            info,
                                        ));
                                    }
                                    *n += 1;
                                    tracing::warn!(
                                        protocol = %p,
                                        attempt = *n,
                                        "evpn protocol stuck in start with its bridge up; waiting one device scan, then restarting it"
                                    );
                                    tokio::time::sleep(rec.device_scan).await;
                                    self.control.restart(p).await.map_err(bird)?;
                                    if !report.recovered.contains(p) {
                                        report.recovered.push(p.clone());
                                    }
                                    start_seen = None;
                                    start = Instant::now();
                                }
                            } else {
                                match pol.wait_up {
                                    None => {
                                        report.protocols.push(info);
                                        break;
                                    }
                                    Some(t) if waited >= t => {
                                        return Err(fail(format!("not up after {t:?}"), info));
                                    }
                                    Some(_) => {}
                                }
                            }
                        }
                    }
                    tokio::time::sleep(pol.poll).await;
                }
            }
        }
        Ok(())
    }

    async fn bridge_up(&self, protocols: &[String], evpn: &str) -> Result<bool, BirdError> {
        let slug = evpn.trim_start_matches("evpn_");
        let bridge = crate::snippet::bridge_protocol(slug);
        if !protocols.contains(&bridge) {
            return Ok(false);
        }
        Ok(matches!(
            self.control.show_protocol(&bridge).await?,
            Some(ProtocolInfo {
                state: ProtoState::Up,
                ..
            })
        ))
    }

    /// Checks the given eVPNs for the §4.6 condition (evpn in `start`, bridge `up`) and restarts
    /// only the stuck `evpn_<slug>` protocols (after waiting one device scan). Returns the
    /// protocols restarted. Use after creating devices for already configured eVPNs.
    pub async fn recover_stuck(&self, slugs: &[&str]) -> Result<Vec<String>, ApplyError> {
        let _g = self.lock.lock().await;
        let Some(rec) = self.cfg.verify.stuck_recovery.clone() else {
            return Ok(Vec::new());
        };
        let bird = |error| ApplyError::Bird {
            error,
            rolled_back: false,
        };
        let mut stuck = Vec::new();
        for slug in slugs {
            validate::slug(slug)?;
            let evpn = crate::snippet::evpn_protocol(slug);
            let protos = vec![crate::snippet::bridge_protocol(slug), evpn.clone()];
            if let Some(ProtocolInfo {
                state: ProtoState::Start,
                ..
            }) = self.control.show_protocol(&evpn).await.map_err(bird)?
                && self.bridge_up(&protos, &evpn).await.map_err(bird)?
            {
                stuck.push(evpn);
            }
        }
        if stuck.is_empty() {
            return Ok(stuck);
        }
        tokio::time::sleep(rec.device_scan).await;
        for p in &stuck {
            self.control.restart(p).await.map_err(bird)?;
        }
        Ok(stuck)
    }
}
