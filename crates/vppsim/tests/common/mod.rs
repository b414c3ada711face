//! Shared test helpers: golden vectors, temp dirs, a started simulator.

#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;
use vpp_api::{Client, ClientConfig};
use vppsim::{SimHandle, SimOptions, VppSim};

/// `VPP_GOLDEN_DIR`, else `<repo root>/testdata/vpp-golden` (captured from VPP 25.10; see its README).
pub fn golden_dir() -> PathBuf {
    if let Ok(d) = std::env::var("VPP_GOLDEN_DIR") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vpp-golden")
}

/// The 130 golden frames.
pub fn vectors() -> Vec<Value> {
    let p = golden_dir().join("vectors.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    serde_json::from_str(&text).expect("vectors.json")
}

/// A simulator on a socket in its own temp dir (removed on drop).
pub struct Sim {
    pub handle: SimHandle,
    pub dir: tempfile::TempDir,
}

impl Sim {
    pub async fn start(opts: SimOptions) -> Sim {
        let dir = tempfile::tempdir().expect("tempdir");
        let handle = VppSim::start(dir.path().join("api.sock"), opts)
            .await
            .expect("start vppsim");
        Sim { handle, dir }
    }

    pub fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(self.handle.socket_path());
        c.request_timeout = std::time::Duration::from_millis(2000);
        c.connect_timeout = std::time::Duration::from_secs(2);
        c
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.config()).await.expect("connect")
    }

    /// A client with a short request timeout, for tests that expect timeouts.
    pub async fn client_with_timeout(&self, ms: u64) -> Client {
        let mut c = self.config();
        c.request_timeout = std::time::Duration::from_millis(ms);
        Client::connect(c).await.expect("connect")
    }
}
