//! Resync at fleet scale: N real evpnd processes (default 200), each on its
//! own in-process vppsim and birdsim, and the real evpnr; G groups (default
//! 50) of M members each (default 8; group j has hosts j*M .. j*M+M-1 modulo
//! N), each with a GroupBVI (one IPv4 + one IPv6 address) bound on its first
//! member. Then evpnr is killed (-9) and restarted; measured: the time until
//! every membership is resynced (every instance connected and ready, and
//! `GetInstanceStatus` shows every membership configured with a
//! `last_resync` after the restart), and the state-changing VPP calls of
//! all hosts during that time (target 0). Also prints resident memory of
//! evpnr and of evpnd, idle and at scale.
//!
//! Run: `cargo bench -p evpnlab --bench resync`
//! (`INSTANCES`, `NGROUPS`, `MEMBERS`, `PARALLEL`).
use std::time::{Duration, Instant, SystemTime};

use evpn_api::v1;
use evpnlab::chaos::fleet::{Fleet, FleetOptions, default_bin_dir};
use futures::StreamExt;

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn rss(f: &Fleet, n: usize) -> (f64, f64, f64) {
    let r = Fleet::rss_kib(f.evpnr_pid()).unwrap_or(0) as f64 / 1024.0;
    let mut d: Vec<f64> = (0..n)
        .filter_map(|i| Fleet::rss_kib(f.evpnd_pid(i)))
        .map(|k| k as f64 / 1024.0)
        .collect();
    d.sort_by(f64::total_cmp);
    let med = d.get(d.len() / 2).copied().unwrap_or(0.0);
    let max = d.last().copied().unwrap_or(0.0);
    (r, med, max)
}

async fn all_resynced(f: &Fleet, ids: &[String], after: SystemTime) -> anyhow::Result<bool> {
    let c = f.client(Duration::from_secs(10))?;
    let mut s = futures::stream::iter(ids.iter().cloned())
        .map(|id| {
            let mut c = c.clone();
            async move {
                c.get_instance_status(v1::InstanceRef { instance_id: id })
                    .await
                    .map(|r| r.into_inner())
            }
        })
        .buffer_unordered(16);
    while let Some(r) = s.next().await {
        let Ok(st) = r else { return Ok(false) };
        let inst = st.instance.unwrap_or_default();
        if !inst.ready || inst.state != v1::instance::State::Connected as i32 {
            return Ok(false);
        }
        for m in &st.memberships {
            let t = m
                .last_resync
                .as_ref()
                .map(|t| SystemTime::UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos as u32));
            if !m.configured || t.is_none_or(|t| t < after) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n: usize = env("INSTANCES", 200);
    let groups: usize = env("NGROUPS", 50);
    let members: usize = env("MEMBERS", 8).min(n);
    let par: usize = env("PARALLEL", 8);
    let t = Instant::now();
    let mut f = Fleet::new(&FleetOptions {
        instances: n,
        bin_dir: default_bin_dir()?,
        member_timeout: Duration::from_secs(10),
        vpp_timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .await?;
    anyhow::ensure!(
        f.start_all(Duration::from_secs(600)).await?,
        "fleet did not come up"
    );
    let ids: Vec<String> = f.hosts.iter().map(|h| h.id.clone()).collect();
    println!(
        "resync bench: {n} evpnd + evpnr up in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let (r0, d0, dmax0) = rss(&f, n);
    println!("RSS idle: evpnr {r0:.1} MB, evpnd median {d0:.1} MB (max {dmax0:.1} MB)");
    // Build the groups, PARALLEL at a time.
    let t = Instant::now();
    let c = f.client(Duration::from_secs(60))?;
    let built: Vec<anyhow::Result<()>> = futures::stream::iter(0..groups)
        .map(|j| {
            let mut c = c.clone();
            let ids = ids.clone();
            async move {
                let g = format!("g{j}");
                c.create_group(v1::CreateGroupRequest {
                    group_id: g.clone(),
                    vni: 1000 + j as u32,
                    ..Default::default()
                })
                .await?;
                for k in 0..members {
                    c.add_group_member(v1::GroupMemberRequest {
                        group_id: g.clone(),
                        instance_id: ids[(j * members + k) % n].clone(),
                    })
                    .await?;
                }
                c.create_group_bvi(v1::GroupBviRequest {
                    group_id: g.clone(),
                    addresses: vec![
                        v1::Prefix {
                            address: format!("172.16.{}.{}", j / 250, 1 + j % 250),
                            prefix_len: 16,
                        },
                        v1::Prefix {
                            address: format!("fec0::{:x}", j + 1),
                            prefix_len: 64,
                        },
                    ],
                })
                .await?;
                c.bind_group_bvi(v1::BindGroupBviRequest {
                    group_id: g,
                    instance_id: ids[(j * members) % n].clone(),
                })
                .await?;
                Ok(())
            }
        })
        .buffer_unordered(par)
        .collect()
        .await;
    for b in built {
        b?;
    }
    println!(
        "built {groups} groups x {members} members ({} memberships, {groups} bound GroupBVIs) in {:.1} s",
        groups * members,
        t.elapsed().as_secs_f64()
    );
    let (r1, d1, dmax1) = rss(&f, n);
    println!("RSS at scale: evpnr {r1:.1} MB, evpnd median {d1:.1} MB (max {dmax1:.1} MB)");
    // Quiesce, then restart evpnr.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for h in &f.hosts {
        h.vpp.clear_journal();
    }
    f.kill_evpnr().await;
    let killed = SystemTime::now();
    let t0 = Instant::now();
    f.start_evpnr().await?;
    let listening = t0.elapsed();
    let mut polls = 0;
    loop {
        polls += 1;
        if all_resynced(&f, &ids, killed).await? {
            break;
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(600),
            "not resynced within 600 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = t0.elapsed();
    let mut changes = 0usize;
    let mut by_msg = std::collections::BTreeMap::<String, usize>::new();
    for h in &f.hosts {
        for e in h.vpp.journal() {
            changes += 1;
            *by_msg.entry(e.msg).or_default() += 1;
        }
    }
    let m = f.metrics().await.unwrap_or_default();
    let resyncs: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("evpnr_resyncs_total"))
        .collect();
    println!(
        "resync after evpnr kill -9: listening after {:.2} s, every membership resynced after {:.2} s ({polls} polls)",
        listening.as_secs_f64(),
        took.as_secs_f64()
    );
    println!("state-changing VPP calls during the resync, all hosts: {changes} {by_msg:?}");
    println!("evpnr resync counters: {}", resyncs.join("; "));
    let (r2, d2, dmax2) = rss(&f, n);
    println!("RSS after the resync: evpnr {r2:.1} MB, evpnd median {d2:.1} MB (max {dmax2:.1} MB)");
    let holders = f.check_exclusive(&[]);
    println!(
        "never two holders during the resync (MAC-changing calls replayed): {:?}",
        holders.map(|r| r.replayed)
    );
    Ok(())
}
