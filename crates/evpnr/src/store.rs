//! Crash-safe persistence of the registry state: one JSON file written as
//! temp file + fsync + rename + fsync of the directory, so after a crash at
//! any moment the file holds either the old or the new state, never a torn
//! one. A change is acknowledged only after it is on disk.
use std::{
    fs,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::model::State;

const FILE: &str = "registry.json";
const TMP: &str = "registry.json.tmp";
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct OnDisk {
    format: u32,
    state: State,
}

/// The on-disk store in one directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Open (creating the directory if needed).
    pub fn open(dir: &Path) -> std::io::Result<Store> {
        fs::create_dir_all(dir)?;
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// Path of the state file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Load the state; a missing file is an empty registry. Leftover temp
    /// files (a crash before the rename; `TMP` is the name older versions
    /// used) are ignored and removed.
    pub fn load(&self) -> anyhow::Result<State> {
        let p = self.path();
        match fs::remove_file(self.dir.join(TMP)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(error = %e, "state-temp-not-removed");
            }
            _ => {}
        }
        if let Err(e) = evpn_base::fs::remove_temps(&p) {
            tracing::warn!(error = %e, "state-temp-not-removed");
        }
        let text = match fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(e) => return Err(anyhow::anyhow!("{}: {e}", p.display())),
        };
        let d: OnDisk = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: not a registry state file: {e}", p.display()))?;
        if d.format != FORMAT {
            anyhow::bail!("{}: unknown format {}", p.display(), d.format);
        }
        Ok(d.state)
    }

    /// Write the state durably. Fails while a fault is injected (see
    /// [`evpn_daemon::durable::injected_fault`]).
    pub fn save(&self, state: &State) -> std::io::Result<()> {
        evpn_daemon::durable::injected_fault(&self.dir)?;
        let text = serde_json::to_vec_pretty(&OnDisk {
            format: FORMAT,
            state: state.clone(),
        })
        .map_err(std::io::Error::other)?;
        evpn_base::fs::write_atomic_in_place(&self.path(), &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Member;
    use std::time::SystemTime;

    #[test]
    fn round_trip_and_torn_temp_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("sub")).unwrap();
        assert_eq!(s.load().unwrap(), State::default());
        let mut st = State::default();
        st.members.insert(
            "a".into(),
            Member {
                id: "a".into(),
                grpc_address: "127.0.0.1:1".into(),
                version: "0.1.0".into(),
                registered_at: SystemTime::UNIX_EPOCH,
            },
        );
        s.save(&st).unwrap();
        // A crash after writing a partial temp file leaves the old state.
        fs::write(dir.path().join("sub").join(TMP), b"{\"format\":1,\"sta").unwrap();
        assert_eq!(s.load().unwrap(), st);
        assert!(!dir.path().join("sub").join(TMP).exists());
    }

    #[test]
    fn garbage_is_an_error_not_an_empty_registry() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        fs::write(s.path(), b"nope").unwrap();
        assert!(s.load().is_err());
    }
}
