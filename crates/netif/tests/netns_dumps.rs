//! Dumps on one netlink connection run one at a time: the kernel refuses a
//! dump on a socket whose previous dump is still being read (`EBUSY`,
//! `__netlink_dump_start`), and evpnd shares one connection between its
//! health checks, reconciles and binds (a bind failed with
//! `list links master #8: Device or resource busy` on the fabric lab).
//! Needs root (a private network namespace).
mod common;

use common::{in_netns, sh};
use netif::Netlink;

#[test]
fn netns_concurrent_dumps_on_one_connection_all_succeed() {
    in_netns(|| async {
        // Enough links that a link dump takes several reads (multi-part).
        sh("for i in $(seq 1 300); do echo link add b$i type bridge; done | ip -b -");
        let nl = Netlink::connect()?;
        let mut tasks = Vec::new();
        for k in 0..24 {
            let nl = nl.clone();
            tasks.push(async move {
                match k % 3 {
                    0 => nl.list_links().await.map(|v| v.len()),
                    1 => nl.list_addresses(None).await.map(|v| v.len()),
                    _ => nl.list_fdb().await.map(|v| v.len()),
                }
            });
        }
        let results = futures::future::join_all(tasks).await;
        let failed: Vec<String> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
            .collect();
        assert!(
            failed.is_empty(),
            "{} of 24 concurrent dumps failed: {failed:?}",
            failed.len()
        );
        let links = nl.list_links().await?.len();
        assert!(links > 300, "{links} links");
        Ok(())
    });
}
