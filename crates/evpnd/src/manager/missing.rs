//! A missing state file on a host that has managed objects: the file was
//! lost, not emptied. Nothing is removed, writes are refused and the host
//! reports the problem until an operator resolves it (docs/runbook.md).
use std::sync::atomic::Ordering;

use evpn_daemon::events::Event;
use evpn_model::Error;

use super::{Manager, fields};

impl Manager {
    /// FAILED_PRECONDITION while writes are refused (the state file is
    /// missing but managed objects exist; see [`Manager::hold_missing_state`]).
    pub fn check_writable(&self) -> Result<(), Error> {
        match self.persist.health().and_then(|h| h.held()) {
            Some(reason) => Err(Error::FailedPrecondition(reason)),
            None => Ok(()),
        }
    }

    /// Whether the state file was missing at start and no reconcile has yet
    /// shown the host to be free of managed objects. Stays set until a
    /// restart even if the file reappears: the state in memory is still the
    /// empty one, and reconciling with it would remove everything.
    pub(crate) fn state_missing(&self) -> bool {
        self.state_missing.load(Ordering::SeqCst)
    }

    /// A reconcile found no managed object: the missing state file means a
    /// fresh host.
    pub(crate) fn state_missing_resolved(&self) {
        self.state_missing.store(false, Ordering::SeqCst);
    }

    /// The state file is missing but the dataplane or BIRD hold managed
    /// objects (`bridges`, `snippets`): the file was lost, not empty. Never
    /// remove them on that alone: keep everything as it is, refuse writes,
    /// report unhealthy and emit `state-file-missing` (error) once, until an
    /// operator restores the file or confirms an empty state (runbook).
    pub(crate) fn hold_missing_state(&self, bridges: &[u32], snippets: &[String]) {
        let Some(h) = self.persist.health() else {
            return;
        };
        if h.held().is_some() {
            return;
        }
        let path = self.persist.path().display().to_string();
        let bds = bridges
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let sn = snippets.join(",");
        let reason = format!(
            "the state file {path} is missing but this host has managed objects (bridge \
             domains [{bds}], BIRD snippets [{sn}]); nothing is changed until an operator \
             restores the file or confirms an empty state (docs/runbook.md)"
        );
        h.hold(&reason);
        self.broker.emit(
            Event::StateFileMissing,
            fields(&[("path", path), ("bridge-domains", bds), ("snippets", sn)]),
        );
    }
}
