//! What the lab does on a fabric: set up a gateway group directly through
//! the evpnds' own RPCs (exactly the calls evpnr makes), move it
//! break-before-make (release, wait, bind) and measure each move with the
//! prober and a netlink FDB watcher on the leaf.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use evpn_api::v1::{self, evpnd_client::EvpndClient};
use tonic::transport::Channel;

use crate::fabric::{Fabric, create_evpn_req};

/// The gateway group played with.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// eVPN slug (the BVIs are `bvi-<slug>`).
    pub slug: String,
    /// VNI.
    pub vni: u32,
    /// Group ID.
    pub group: String,
    /// The group's vMAC.
    pub vmac: String,
    /// Gateway IPv4 prefix.
    pub v4: (Ipv4Addr, u8),
    /// Gateway IPv6 prefix.
    pub v6: (Ipv6Addr, u8),
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            slug: "test".into(),
            vni: 100,
            group: "test".into(),
            vmac: "02:42:00:00:00:01".into(),
            v4: (Ipv4Addr::new(172, 16, 0, 1), 24),
            v6: ("fec0::1".parse().unwrap_or(Ipv6Addr::LOCALHOST), 64),
        }
    }
}

impl Gateway {
    /// The gateway prefixes as API messages.
    pub fn prefixes(&self) -> Vec<v1::Prefix> {
        vec![
            v1::Prefix {
                address: self.v4.0.to_string(),
                prefix_len: self.v4.1.into(),
            },
            v1::Prefix {
                address: self.v6.0.to_string(),
                prefix_len: self.v6.1.into(),
            },
        ]
    }
}

/// gRPC clients of every router's evpnd (cheap to clone).
#[derive(Clone)]
pub struct Clients {
    /// Per router, in router order: (instance ID, VTEP, client).
    pub evpnd: Vec<(String, Ipv4Addr, EvpndClient<Channel>)>,
}

impl Clients {
    /// Connect to every evpnd.
    pub fn connect(f: &Fabric) -> anyhow::Result<Clients> {
        let targets: Vec<(String, Ipv4Addr, String)> = f
            .routers
            .iter()
            .map(|r| (r.id.clone(), r.addr, r.url.clone()))
            .collect();
        f.block_on(async move {
            let mut v = Vec::new();
            for (id, a, url) in targets {
                v.push((id, a, Fabric::evpnd(url).await?));
            }
            Ok(Clients { evpnd: v })
        })
    }

    fn c(&self, i: usize) -> (String, EvpndClient<Channel>) {
        let (id, _, c) = &self.evpnd[i];
        (id.clone(), c.clone())
    }
}

/// Create the eVPN on every router, attach the host to the leaf's bridge,
/// and give every candidate (all routers but the leaf) its BVI.
pub fn setup(f: &Fabric, cl: &Clients, gw: &Gateway) -> anyhow::Result<()> {
    let n = f.routers.len();
    let (cl2, gw2) = (cl.clone(), gw.clone());
    f.block_on(async move {
        for i in 0..n {
            let (id, mut c) = cl2.c(i);
            c.create_evpn_instance(create_evpn_req(&id, &gw2.slug, gw2.vni))
                .await
                .with_context(|| format!("CreateEvpnInstance on {id}"))?;
        }
        for i in 0..n - 1 {
            let (id, mut c) = cl2.c(i);
            c.create_bvi(v1::CreateBviRequest {
                instance_id: id.clone(),
                slug: gw2.slug.clone(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("CreateBVI on {id}"))?;
        }
        anyhow::Ok(())
    })?;
    f.attach_host(&gw.slug)
}

/// BindGroupBVI on router `i`; its answer.
pub async fn bind(cl: &Clients, i: usize, gw: &Gateway) -> anyhow::Result<v1::Bvi> {
    let (id, mut c) = cl.c(i);
    let b = c
        .bind_group_bvi(v1::HostBindGroupBviRequest {
            instance_id: id.clone(),
            slug: gw.slug.clone(),
            group_id: gw.group.clone(),
            vmac: gw.vmac.clone(),
            addresses: gw.prefixes(),
            settle: None,
        })
        .await
        .with_context(|| format!("BindGroupBVI on {id}"))?;
    Ok(b.into_inner())
}

/// ReleaseGroupBVI on router `i`; its answer.
pub async fn release(cl: &Clients, i: usize, gw: &Gateway) -> anyhow::Result<v1::Bvi> {
    let (id, mut c) = cl.c(i);
    let b = c
        .release_group_bvi(v1::HostReleaseGroupBviRequest {
            instance_id: id.clone(),
            slug: gw.slug.clone(),
            group_id: gw.group.clone(),
        })
        .await
        .with_context(|| format!("ReleaseGroupBVI on {id}"))?;
    Ok(b.into_inner())
}

/// The remote VTEPs that router `i`'s BIRD has announcing `mac`.
pub async fn announcers(cl: &Clients, i: usize, gw: &Gateway) -> anyhow::Result<Vec<String>> {
    let (id, mut c) = cl.c(i);
    Ok(c.get_mac_announcers(v1::GetMacAnnouncersRequest {
        instance_id: id,
        slug: gw.slug.clone(),
        mac: gw.vmac.clone(),
    })
    .await?
    .into_inner()
    .vteps)
}

/// How a move waits between the release and the bind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wait {
    /// Poll the new primary (`GetMacAnnouncers`, every 1 ms) until no remote
    /// VTEP announces the vMAC any more: the look evpnd takes before a bind
    /// that evpnr sends with a settle wait.
    Evidence,
    /// A fixed settle time.
    Fixed(Duration),
    /// The whole move is one `MoveGroupBVI` on evpnr (its own
    /// evidence-based settle); only the total time is known.
    Registry,
}

impl std::fmt::Display for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wait::Evidence => write!(f, "evidence"),
            Wait::Fixed(d) => write!(f, "fixed {} ms", d.as_millis()),
            Wait::Registry => write!(f, "evpnr MoveGroupBVI"),
        }
    }
}

/// Timestamps of one move, µs since the caller's epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveTimes {
    /// Release RPC sent.
    pub t0: u64,
    /// Release RPC answered.
    pub released: u64,
    /// Wait over.
    pub waited: u64,
    /// Bind RPC answered.
    pub bound: u64,
}

/// Move the gateway from router `from` to `to` break-before-make.
pub async fn move_gw(
    cl: &Clients,
    from: usize,
    to: usize,
    gw: &Gateway,
    wait: Wait,
    epoch: Instant,
) -> anyhow::Result<(MoveTimes, String)> {
    let us = || epoch.elapsed().as_micros() as u64;
    let t0 = us();
    let rel = release(cl, from, gw).await?;
    let released = us();
    match wait {
        Wait::Evidence => {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !announcers(cl, to, gw).await?.is_empty() {
                if Instant::now() > deadline {
                    bail!(
                        "the vMAC is still announced to {} after 5 s",
                        cl.evpnd[to].0
                    );
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Wait::Fixed(d) => tokio::time::sleep(d).await,
        Wait::Registry => bail!("a registry move is one MoveGroupBVI, not release + bind"),
    }
    let waited = us();
    let b = bind(cl, to, gw).await?;
    let times = MoveTimes {
        t0,
        released,
        waited,
        bound: us(),
    };
    // The members' own steps (µs after each received its call), shifted to
    // the move's start by when the call was sent.
    let steps = |who: &str, sent: u64, s: &[v1::TimelineStep]| {
        s.iter()
            .map(|s| {
                format!(
                    "{}+{} {who} {}",
                    sent - t0 + s.start_us,
                    s.duration_us,
                    s.name
                )
            })
            .collect::<Vec<_>>()
    };
    let mut all = steps(&cl.evpnd[from].0, t0, &rel.steps);
    all.extend(steps(&cl.evpnd[to].0, waited, &b.steps));
    let timeline = format!(
        "{} µs; release answered at {}, wait over at {}; {}",
        times.bound - t0,
        released - t0,
        waited - t0,
        all.join("; ")
    );
    Ok((times, timeline))
}

/// One FDB change seen on the leaf for the vMAC in the VXLAN device's own
/// table.
#[derive(Debug, Clone, PartialEq)]
pub struct FdbEvent {
    /// µs since the epoch.
    pub at: u64,
    /// Added (true) or deleted.
    pub added: bool,
    /// The remote VTEP.
    pub dst: Option<IpAddr>,
}

/// Records the leaf's FDB events for one MAC (netlink multicast, in a
/// thread inside the leaf's namespace). Stops on drop.
pub struct FdbWatch {
    /// Everything seen so far.
    pub events: Arc<Mutex<Vec<FdbEvent>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FdbWatch {
    /// Start watching `mac` in namespace `netns`.
    pub fn start(netns: &str, mac: &str, epoch: Instant) -> anyhow::Result<FdbWatch> {
        let mac: netif::Mac = mac.parse().map_err(anyhow::Error::msg).context("vMAC")?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let (ev, st, ns) = (events.clone(), stop.clone(), netns.to_string());
        let thread = std::thread::spawn(move || {
            let r = (|| -> anyhow::Result<tokio::runtime::Runtime> {
                crate::netns::enter(&ns)?;
                Ok(tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?)
            })();
            let rt = match r {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                let mut w = match netif::Watcher::open() {
                    Ok(w) => w,
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                        return;
                    }
                };
                let _ = tx.send(Ok(()));
                while !st.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(Some(e)) =
                        tokio::time::timeout(Duration::from_millis(100), w.next()).await
                    else {
                        continue;
                    };
                    let at = epoch.elapsed().as_micros() as u64;
                    let (added, entry) = match e {
                        netif::Event::FdbNew(x) => (true, x),
                        netif::Event::FdbDel(x) => (false, x),
                        _ => continue,
                    };
                    if entry.mac == mac
                        && entry.is_self
                        && let Ok(mut v) = ev.lock()
                    {
                        v.push(FdbEvent {
                            at,
                            added,
                            dst: entry.dst,
                        });
                    }
                }
            });
        });
        rx.recv().context("FDB watcher died")??;
        Ok(FdbWatch {
            events,
            stop,
            thread: Some(thread),
        })
    }

    /// When, after `from`, the leaf first added an entry pointing at `dst`.
    pub fn switched_at(&self, from: u64, dst: Ipv4Addr) -> Option<u64> {
        let v = self.events.lock().ok()?;
        v.iter()
            .find(|e| e.at >= from && e.added && e.dst == Some(IpAddr::V4(dst)))
            .map(|e| e.at)
    }
}

impl Drop for FdbWatch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
