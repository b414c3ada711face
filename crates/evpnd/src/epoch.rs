//! Which registry this evpnd obeys: every state-changing call is admitted
//! here first. A call that arrives after its caller stopped waiting for it
//! is refused (`evpn_daemon::identity`, `evpn-not-after`); a call meant for
//! another instance is refused; with a registry
//! configured, a call without a registry epoch (an operator's hand-made call,
//! a second registry) is refused; a call from an epoch older than the
//! highest this evpnd has accepted (a stale registry still running) is
//! refused. A newer epoch is persisted (`<state-dir>/registry-epoch`) before
//! the call is admitted, so a restart never forgets it.
use std::{path::PathBuf, sync::Arc};

use evpn_daemon::identity::CallIdentity;
use evpn_model::Error;
use tonic::metadata::MetadataMap;

/// File name of the persisted highest epoch in the state directory.
pub const FILE: &str = "registry-epoch";

/// The admission check and the highest accepted epoch.
pub struct EpochGuard {
    path: PathBuf,
    instance_id: String,
    /// The registry's address when one is configured.
    registry: Option<String>,
    highest: tokio::sync::Mutex<u64>,
}

impl EpochGuard {
    /// Read the persisted epoch (missing file: 0).
    pub fn open(
        state_dir: &std::path::Path,
        instance_id: &str,
        registry: &str,
    ) -> Result<Arc<EpochGuard>, Error> {
        let path = state_dir.join(FILE);
        let highest = match std::fs::read_to_string(&path) {
            Ok(t) => t.trim().parse::<u64>().map_err(|_| {
                Error::Internal(format!(
                    "{}: not a registry epoch (a decimal number)",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(Error::Unavailable(format!("read {}: {e}", path.display()))),
        };
        Ok(Arc::new(EpochGuard {
            path,
            instance_id: instance_id.to_string(),
            registry: (!registry.is_empty()).then(|| registry.to_string()),
            highest: tokio::sync::Mutex::new(highest),
        }))
    }

    /// The highest epoch accepted so far (0: none).
    pub async fn highest(&self) -> u64 {
        *self.highest.lock().await
    }

    /// Admit a state-changing call, or say why not (FAILED_PRECONDITION).
    pub async fn admit(&self, md: &MetadataMap) -> Result<(), Error> {
        let c = CallIdentity::read(md)?;
        // A call its caller gave up on (held by a partition) changes nothing.
        c.check_fresh(std::time::SystemTime::now())?;
        if let Some(t) = &c.target
            && t != &self.instance_id
        {
            return Err(Error::FailedPrecondition(format!(
                "this call is meant for instance {:?}, but this evpnd is {:?}: refused",
                evpn_model::excerpt(t),
                self.instance_id
            )));
        }
        match (c.epoch, &self.registry) {
            (Some(e), _) => self.observe(e).await,
            (None, None) => Ok(()),
            (None, Some(r)) => Err(Error::FailedPrecondition(format!(
                "evpnd {} is managed by the registry at {r}: state-changing calls must come \
                 from it and carry its epoch; this one carries none (use evpnr, or run this \
                 evpnd without evpnd.registry)",
                self.instance_id
            ))),
        }
    }

    /// Accept epoch `e` if it is not older than the highest accepted; a newer
    /// one is persisted first.
    pub async fn observe(&self, e: u64) -> Result<(), Error> {
        let mut h = self.highest.lock().await;
        if e < *h {
            return Err(Error::FailedPrecondition(format!(
                "registry epoch {e} is older than epoch {}, the highest this evpnd has \
                 accepted: refused (a stale registry; see docs/runbook.md)",
                *h
            )));
        }
        if e > *h {
            let path = self.path.clone();
            tokio::task::spawn_blocking(move || {
                evpn_daemon::fsutil::write_atomic(&path, format!("{e}\n").as_bytes())
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|err| {
                Error::Unavailable(format!(
                    "cannot persist registry epoch {e} to {}: {err}",
                    self.path.display()
                ))
            })?;
            tracing::info!(epoch = e, previous = *h, "registry-epoch-accepted");
            *h = e;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evpn_daemon::identity::CallIdentity;

    fn md(target: &str, epoch: u64) -> MetadataMap {
        let mut m = MetadataMap::new();
        CallIdentity::stamp(&mut m, target, epoch);
        m
    }

    #[tokio::test]
    async fn admission_rules() {
        let d = tempfile::tempdir().unwrap();
        let g = EpochGuard::open(d.path(), "a", "127.0.0.1:9190").unwrap();
        // Managed: no epoch, refused.
        assert!(g.admit(&MetadataMap::new()).await.is_err());
        // Another instance: refused.
        let e = g.admit(&md("b", 1)).await.unwrap_err().to_string();
        assert!(e.contains("meant for instance"), "{e}");
        // New epoch accepted and persisted; older refused naming both.
        g.admit(&md("a", 3)).await.unwrap();
        g.admit(&md("a", 3)).await.unwrap();
        let e = g.admit(&md("a", 2)).await.unwrap_err().to_string();
        assert!(e.contains("epoch 2") && e.contains("epoch 3"), "{e}");
        let again = EpochGuard::open(d.path(), "a", "127.0.0.1:9190").unwrap();
        assert_eq!(again.highest().await, 3);
        // Standalone: a call without an epoch is admitted.
        let s = EpochGuard::open(d.path(), "a", "").unwrap();
        s.admit(&MetadataMap::new()).await.unwrap();
        assert!(s.admit(&md("a", 1)).await.is_err());
    }
}
