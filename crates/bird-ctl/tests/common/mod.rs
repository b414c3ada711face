//! Test harness: the real-BIRD helpers live in `evpn_testkit::bird`; this
//! adds a connected `bird_ctl` client.
#![allow(dead_code, unused_imports)]

use std::time::{Duration, Instant};

use bird_ctl::{BirdClient, ClientOptions};
pub use evpn_testkit::bird::*;
pub use evpn_testkit::eventually;

/// A connected client for a test BIRD.
pub trait BirdExt {
    /// Connect, retrying briefly: the socket file appears at `bind()`,
    /// slightly before `listen()`.
    fn client(&self) -> impl std::future::Future<Output = BirdClient>;
}

impl BirdExt for Bird {
    async fn client(&self) -> BirdClient {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match BirdClient::connect(&self.sock, ClientOptions::default()).await {
                Ok(c) => return c,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("connect to bird: {e}; log:\n{}", self.log_text()),
            }
        }
    }
}
