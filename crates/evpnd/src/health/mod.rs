//! Health checks and self-fencing (docs/failover.md). This module is the
//! sans-IO core: a check's state machine (rise/fall, as in keepalived and
//! HAProxy), the combination of checks into a per-host and a per-eVPN
//! verdict with the reason of every change, and the self-fencing rule
//! ([`fence`]). The probes and the task that runs them
//! (`crate::health_run`) are thin I/O around it.
//!
//! Rules (the one place for each):
//! * a check's very first result decides its state at once (no optimistic
//!   or pessimistic start), and a check that has not been up since start
//!   comes up at its first success (a host starting before BIRD's sessions
//!   are established is usable as soon as they are); after that it becomes
//!   up after `rise` consecutive successes and down after `fall` consecutive
//!   failures — except a *hard* failure (the component is gone: BIRD closed
//!   or refuses its control socket), which takes the check down at once;
//! * a scope is down when any of its checks is down; unknown when none is
//!   down but one has no result yet; up otherwise. An eVPN's checks are the
//!   host's checks plus its own;
//! * the reason of a down scope names every down check with its last error;
//! * a sample counts in the order its evidence was taken, not the order it
//!   arrives: one taken before the check's last recorded sample is dropped
//!   (a `bird` probe that BIRD answered just before it was killed, recorded
//!   after the socket watcher's hard failure, must not count as a success).
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

mod bgp;
pub mod config;
pub mod fence;
mod published;

pub use bgp::{Sessions, bgp_rule, sessions};
pub use config::{HealthConfig, Timers};
pub use published::Health;

/// A check's or a scope's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// No result yet.
    Unknown,
    Up,
    Down,
}

impl Status {
    /// As in events, metrics and docs: "unknown", "up", "down".
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Up => "up",
            Status::Down => "down",
        }
    }
}

/// One result of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// `Err(why)` on failure (short, for the reason of a change).
    pub result: Result<(), String>,
    /// A failure that, once the check is down, is a reason to self-fence
    /// (BIRD's control socket is not answering; no BGP session is
    /// established).
    pub fatal: bool,
    /// A failure that proves the component is gone (not slow): the check
    /// goes down at once instead of after `fall` failures.
    pub hard: bool,
    /// When the evidence was taken (a probe's start, the moment a watcher
    /// saw the component go); `None`: in order of arrival.
    pub taken: Option<Instant>,
}

impl Sample {
    pub fn ok() -> Sample {
        Sample {
            result: Ok(()),
            fatal: false,
            hard: false,
            taken: None,
        }
    }

    pub fn fail(why: impl Into<String>) -> Sample {
        Sample {
            result: Err(why.into()),
            fatal: false,
            hard: false,
            taken: None,
        }
    }

    pub fn fatal(why: impl Into<String>) -> Sample {
        Sample {
            result: Err(why.into()),
            fatal: true,
            hard: false,
            taken: None,
        }
    }

    /// A fatal failure that proves the component is gone (BIRD closed or
    /// refuses its control socket): down at once, `fall` is not waited for.
    pub fn gone(why: impl Into<String>) -> Sample {
        Sample {
            hard: true,
            ..Sample::fatal(why)
        }
    }

    /// The same sample, its evidence taken at `t`.
    pub fn taken_at(self, t: Instant) -> Sample {
        Sample {
            taken: Some(t),
            ..self
        }
    }
}

/// One check's state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckState {
    pub status: Status,
    /// Consecutive successes / failures up to now.
    pub successes: u32,
    pub failures: u32,
    /// The last failure's error (kept after recovery, for reads).
    pub last_error: String,
    /// Whether the last sample was a fatal failure.
    pub fatal: bool,
    /// Whether the check has been up since start.
    pub ever_up: bool,
    /// When the newest recorded sample's evidence was taken.
    pub last_taken: Option<Instant>,
}

impl Default for CheckState {
    fn default() -> Self {
        CheckState {
            status: Status::Unknown,
            successes: 0,
            failures: 0,
            last_error: String::new(),
            fatal: false,
            ever_up: false,
            last_taken: None,
        }
    }
}

impl CheckState {
    /// Record one sample; returns the new status when it changed. A sample
    /// taken before the last recorded one is dropped (it changes nothing).
    pub fn record(&mut self, rise: u32, fall: u32, s: &Sample) -> Option<Status> {
        if let (Some(t), Some(last)) = (s.taken, self.last_taken)
            && t < last
        {
            return None;
        }
        self.last_taken = s.taken.or(self.last_taken);
        let before = self.status;
        match &s.result {
            Ok(()) => {
                self.successes = self.successes.saturating_add(1);
                self.failures = 0;
                self.fatal = false;
                if !self.ever_up || self.successes >= rise {
                    self.status = Status::Up;
                    self.ever_up = true;
                }
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                self.successes = 0;
                self.last_error = e.clone();
                self.fatal = s.fatal;
                if self.status == Status::Unknown || self.failures >= fall || s.hard {
                    self.status = Status::Down;
                }
            }
        }
        (self.status != before).then_some(self.status)
    }
}

/// Where a check applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Host,
    Evpn(String),
}

/// A check's identity: its scope and name (`vpp`, `bird`, `bgp`,
/// `underlay:<if>`, `command:<name>`, `protocol`, `devices`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckId {
    pub scope: Scope,
    pub name: String,
}

impl CheckId {
    pub fn host(name: &str) -> CheckId {
        CheckId {
            scope: Scope::Host,
            name: name.to_string(),
        }
    }

    pub fn evpn(slug: &str, name: &str) -> CheckId {
        CheckId {
            scope: Scope::Evpn(slug.to_string()),
            name: name.to_string(),
        }
    }
}

/// A scope's combined state and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    /// For a down scope: every down check with its last error
    /// (`bird: connection refused; bgp: 0 of 2 sessions established`).
    pub reason: String,
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict {
            status: Status::Unknown,
            reason: "no check result yet".into(),
        }
    }
}

/// Combine checks (name, state) into a verdict.
pub fn combine<'a>(checks: impl IntoIterator<Item = (&'a str, &'a CheckState)>) -> Verdict {
    let mut down = Vec::new();
    let mut unknown = Vec::new();
    for (name, c) in checks {
        match c.status {
            Status::Down => down.push(format!("{name}: {}", c.last_error)),
            Status::Unknown => unknown.push(name.to_string()),
            Status::Up => {}
        }
    }
    if !down.is_empty() {
        Verdict {
            status: Status::Down,
            reason: down.join("; "),
        }
    } else if !unknown.is_empty() {
        Verdict {
            status: Status::Unknown,
            reason: format!("no result yet from {}", unknown.join(", ")),
        }
    } else {
        Verdict {
            status: Status::Up,
            reason: "all checks up".into(),
        }
    }
}

/// A change the board reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A check changed state; `error` is its last error when down.
    Check {
        id: CheckId,
        status: Status,
        error: String,
    },
    /// A scope (host or one eVPN) changed state.
    Scope { scope: Scope, verdict: Verdict },
}

/// Every check's state and the verdicts, per host and per eVPN.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Board {
    checks: BTreeMap<CheckId, CheckState>,
    host: Verdict,
    evpns: BTreeMap<String, Verdict>,
}

/// A read-only copy of the board for reads, metrics and heartbeats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub host: Verdict,
    pub evpns: BTreeMap<String, Verdict>,
    pub checks: BTreeMap<CheckId, CheckState>,
    /// Set while this host has fenced itself (the reason).
    pub fenced: Option<String>,
    /// Bumped at every change of a verdict (heartbeats are sent at once).
    pub generation: u64,
}

impl Summary {
    /// Why a bind of `slug` must be refused now, if it must: the host is
    /// down, or the eVPN's dataplane devices are. (The eVPN's BIRD protocol
    /// is reported but does not refuse a bind: `evpn_<slug>` is in `start`
    /// for a moment after every snippet change.)
    pub fn bind_refusal(&self, slug: &str) -> Option<String> {
        if self.host.status == Status::Down {
            return Some(format!("host health is down ({})", self.host.reason));
        }
        let dev = self.checks.get(&CheckId::evpn(slug, "devices"))?;
        (dev.status == Status::Down).then(|| format!("devices: {}", dev.last_error))
    }
}

impl Board {
    /// Make the per-eVPN checks `names` exist for exactly `slugs` (new
    /// ones start unknown; gone ones are dropped); returns the changes.
    pub fn sync_evpns(&mut self, slugs: &[String], names: &[&str]) -> Vec<Change> {
        self.checks.retain(|id, _| match &id.scope {
            Scope::Host => true,
            Scope::Evpn(s) => slugs.contains(s) && names.contains(&id.name.as_str()),
        });
        for s in slugs {
            for n in names {
                self.checks.entry(CheckId::evpn(s, n)).or_default();
            }
        }
        self.evpns.retain(|s, _| slugs.contains(s));
        self.reevaluate()
    }

    /// Make the host check `name` exist (unknown until its first result).
    pub fn add_host_check(&mut self, name: &str) {
        self.checks.entry(CheckId::host(name)).or_default();
    }

    /// Record one sample of check `id` (created if new).
    pub fn record(&mut self, id: &CheckId, rise: u32, fall: u32, s: &Sample) -> Vec<Change> {
        let c = self.checks.entry(id.clone()).or_default();
        let mut out = Vec::new();
        if let Some(status) = c.record(rise, fall, s) {
            out.push(Change::Check {
                id: id.clone(),
                status,
                error: if status == Status::Down {
                    c.last_error.clone()
                } else {
                    String::new()
                },
            });
        }
        out.extend(self.reevaluate());
        out
    }

    fn host_checks(&self) -> impl Iterator<Item = (&str, &CheckState)> {
        self.checks
            .iter()
            .filter(|(id, _)| id.scope == Scope::Host)
            .map(|(id, c)| (id.name.as_str(), c))
    }

    fn reevaluate(&mut self) -> Vec<Change> {
        let mut out = Vec::new();
        let host = combine(self.host_checks());
        if host != self.host {
            if host.status != self.host.status {
                out.push(Change::Scope {
                    scope: Scope::Host,
                    verdict: host.clone(),
                });
            }
            self.host = host;
        }
        let slugs: Vec<String> = self
            .checks
            .keys()
            .filter_map(|id| match &id.scope {
                Scope::Evpn(s) => Some(s.clone()),
                Scope::Host => None,
            })
            .collect();
        for s in slugs {
            let own = self
                .checks
                .iter()
                .filter(|(id, _)| id.scope == Scope::Evpn(s.clone()))
                .map(|(id, c)| (id.name.as_str(), c));
            let v = combine(self.host_checks().chain(own));
            let old = self.evpns.get(&s).map(|o| o.status);
            if old != Some(v.status) && !(old.is_none() && v.status == Status::Unknown) {
                out.push(Change::Scope {
                    scope: Scope::Evpn(s.clone()),
                    verdict: v.clone(),
                });
            }
            self.evpns.insert(s, v);
        }
        out
    }

    /// The first down check whose last sample was fatal, with its error
    /// (the self-fencing reason), if any.
    pub fn fatal(&self) -> Option<String> {
        self.checks
            .iter()
            .find(|(_, c)| c.status == Status::Down && c.fatal)
            .map(|(id, c)| format!("{}: {}", id.name, c.last_error))
    }

    /// A copy for readers.
    pub fn summary(&self, fenced: Option<String>, generation: u64) -> Summary {
        Summary {
            host: self.host.clone(),
            evpns: self.evpns.clone(),
            checks: self.checks.clone(),
            fenced,
            generation,
        }
    }
}

/// A duration for messages: "500ms", "2s".
pub fn fmt_dur(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests;
