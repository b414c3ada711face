//! Test harness: the real-BIRD helpers live in `evpn_testkit::bird`; this
//! adds a connected `bird_ctl` client.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

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
        eventually(
            "a connection to BIRD",
            Duration::from_secs(10),
            async || BirdClient::connect(&self.sock, ClientOptions::default()).await,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", self.log_text()))
    }
}
