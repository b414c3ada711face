//! Event fan-out through evpnr: synthetic members (in-process Evpnd gRPC
//! servers that only stream events, registered with the real evpnr) publish
//! `crud` events at a paced rate; evpnr merges them into its fleet broker and
//! 50 `WatchEvents` subscribers receive them. Measures delivered events/s
//! (per subscriber and in aggregate), the latency from the event's `ts`
//! (set by the member when it produced it) to its receipt by a subscriber,
//! and the subscribers evpnr dropped for being slow.
//!
//! Run: `cargo bench -p evpnlab --bench fanout`
//! (`SUBSCRIBERS`, `RATES` (comma-separated events/s), `SECS`, `PRODUCERS`).
//!
//! TLS: `TLS=on` runs it with mutual TLS everywhere (evpnr, the synthetic
//! members' servers and registrations, the subscribers); `TLS=both` builds
//! a plaintext and a TLS fleet the same way and, per rate, runs one then
//! the other, printing their rows one under the other.
use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use evpn_api::v1::{
    self,
    evpnd_server::{Evpnd, EvpndServer},
};
use evpn_tls::{Identity, ServerTls};
use evpnlab::chaos::fleet::{Fleet, FleetOptions, default_bin_dir, free_port};
use futures::Stream;
use tonic::{Request, Response, Status};

type R<T> = Result<Response<T>, Status>;

/// A member that only streams events (and says it is ready, with nothing
/// configured, so evpnr's resync of it is a no-op).
struct Producer {
    id: String,
    rate: u64,
    running: Arc<AtomicBool>,
}

fn unimpl<T>(m: &str) -> R<T> {
    Err(Status::unimplemented(format!("{m}: synthetic member")))
}

#[tonic::async_trait]
impl Evpnd for Producer {
    async fn create_evpn_instance(
        &self,
        _: Request<v1::CreateEvpnInstanceRequest>,
    ) -> R<v1::EvpnInstance> {
        unimpl("CreateEvpnInstance")
    }
    async fn list_evpn_instances(&self, _: Request<v1::InstanceRef>) -> R<v1::EvpnInstanceList> {
        Ok(Response::new(v1::EvpnInstanceList::default()))
    }
    async fn get_evpn_instance(&self, _: Request<v1::EvpnRef>) -> R<v1::EvpnInstance> {
        unimpl("GetEvpnInstance")
    }
    async fn set_evpn_instance_enabled(
        &self,
        _: Request<v1::SetEnabledRequest>,
    ) -> R<v1::EvpnInstance> {
        unimpl("SetEvpnInstanceEnabled")
    }
    async fn delete_evpn_instance(&self, _: Request<v1::EvpnRef>) -> R<v1::Empty> {
        unimpl("DeleteEvpnInstance")
    }
    async fn create_bvi(&self, _: Request<v1::CreateBviRequest>) -> R<v1::Bvi> {
        unimpl("CreateBVI")
    }
    async fn list_bv_is(&self, _: Request<v1::InstanceRef>) -> R<v1::BviList> {
        Ok(Response::new(v1::BviList::default()))
    }
    async fn get_bvi(&self, _: Request<v1::EvpnRef>) -> R<v1::Bvi> {
        unimpl("GetBVI")
    }
    async fn replace_bvi(&self, _: Request<v1::ReplaceBviRequest>) -> R<v1::Bvi> {
        unimpl("ReplaceBVI")
    }
    async fn delete_bvi(&self, _: Request<v1::EvpnRef>) -> R<v1::Empty> {
        unimpl("DeleteBVI")
    }
    async fn bind_group_bvi(&self, _: Request<v1::HostBindGroupBviRequest>) -> R<v1::Bvi> {
        unimpl("BindGroupBVI")
    }
    async fn release_group_bvi(&self, _: Request<v1::HostReleaseGroupBviRequest>) -> R<v1::Bvi> {
        unimpl("ReleaseGroupBVI")
    }
    async fn prepare_group_bvi(&self, _: Request<v1::EvpnRef>) -> R<v1::EvpnInstance> {
        unimpl("PrepareGroupBVI")
    }
    async fn get_mac_announcers(
        &self,
        _: Request<v1::GetMacAnnouncersRequest>,
    ) -> R<v1::MacAnnouncers> {
        unimpl("GetMacAnnouncers")
    }
    async fn get_vpp_info(&self, _: Request<v1::InstanceRef>) -> R<v1::VppInfo> {
        unimpl("GetVPPInfo")
    }
    async fn get_bird_info(&self, _: Request<v1::InstanceRef>) -> R<v1::BirdInfo> {
        unimpl("GetBirdInfo")
    }
    async fn get_instance(&self, _: Request<v1::InstanceRef>) -> R<v1::InstanceInfo> {
        Ok(Response::new(v1::InstanceInfo {
            instance_id: self.id.clone(),
            ready: true,
            registered: true,
            ..Default::default()
        }))
    }
    type WatchEventsStream = Pin<Box<dyn Stream<Item = Result<v1::Event, Status>> + Send>>;
    async fn watch_events(&self, _: Request<v1::WatchEventsRequest>) -> R<Self::WatchEventsStream> {
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        let (rate, running) = (self.rate, self.running.clone());
        tokio::spawn(async move {
            // Paced in 1 ms ticks; `rate` events per second.
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let (mut seq, mut due) = (0u64, 0f64);
            loop {
                tick.tick().await;
                if !running.load(Ordering::Relaxed) {
                    continue;
                }
                due += rate as f64 / 1000.0;
                while due >= 1.0 {
                    due -= 1.0;
                    seq += 1;
                    let now = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap_or_default();
                    let ev = v1::Event {
                        seq,
                        ts: Some(pbjson_types::Timestamp {
                            seconds: now.as_secs() as i64,
                            nanos: now.subsec_nanos() as i32,
                        }),
                        r#type: "crud".into(),
                        level: "info".into(),
                        instance: String::new(),
                        message: "bench-event".into(),
                        fields: [("n".to_string(), seq.to_string())].into(),
                    };
                    if tx.send(Ok(ev)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

struct Sub {
    got: u64,
    lat_us: Vec<u32>,
    dropped: bool,
}

fn pct(v: &[u32], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

async fn round(
    f: &Fleet,
    subs: usize,
    producers: &[Arc<AtomicBool>],
    secs: u64,
) -> (Vec<Sub>, f64) {
    let mut tasks = Vec::new();
    let start_flag = Arc::new(tokio::sync::Barrier::new(subs + 1));
    for _ in 0..subs {
        let mut c = f.client(Duration::from_secs(3600)).unwrap();
        let b = start_flag.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = c
                .watch_events(v1::WatchEventsRequest {
                    types: vec!["crud".into()],
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            b.wait().await;
            let end = Instant::now() + Duration::from_secs(secs);
            let mut out = Sub {
                got: 0,
                lat_us: Vec::new(),
                dropped: false,
            };
            loop {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match tokio::time::timeout(left, s.message()).await {
                    Err(_) => break,
                    Ok(Ok(Some(e))) => {
                        if e.message != "bench-event" {
                            continue;
                        }
                        out.got += 1;
                        if let Some(ts) = e.ts {
                            let now = SystemTime::now()
                                .duration_since(SystemTime::UNIX_EPOCH)
                                .unwrap_or_default();
                            let sent = Duration::new(ts.seconds as u64, ts.nanos as u32);
                            out.lat_us.push(now.saturating_sub(sent).as_micros() as u32);
                        }
                    }
                    Ok(_) => {
                        out.dropped = true;
                        break;
                    }
                }
            }
            out
        }));
    }
    start_flag.wait().await;
    let t0 = Instant::now();
    for p in producers {
        p.store(true, Ordering::Relaxed);
    }
    let mut res = Vec::new();
    for t in tasks {
        res.push(t.await.unwrap());
    }
    for p in producers {
        p.store(false, Ordering::Relaxed);
    }
    let el = t0.elapsed().as_secs_f64();
    (res, el)
}

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let subs: usize = env("SUBSCRIBERS", 50);
    let secs: u64 = env("SECS", 5);
    let nprod: usize = env("PRODUCERS", 4);
    let rates: Vec<u64> = std::env::var("RATES")
        .unwrap_or_else(|_| "1000,5000,10000,20000,50000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let variants: &[bool] = match std::env::var("TLS").unwrap_or_default().as_str() {
        "" | "off" => &[false],
        "on" => &[true],
        "both" => &[false, true],
        other => panic!("TLS={other:?}: off, on or both"),
    };
    let mut fleets = Vec::new();
    for &tls in variants {
        fleets.push(
            Fleet::new(&FleetOptions {
                instances: 0,
                bin_dir: default_bin_dir().unwrap(),
                log_level: "info".into(),
                tls,
                ..Default::default()
            })
            .await
            .unwrap(),
        );
    }
    println!(
        "event fan-out: {nprod} synthetic members -> evpnr -> {subs} WatchEvents subscribers, {secs} s per rate"
    );
    println!(
        "| transport | produced events/s | per subscriber events/s | aggregate delivered events/s | p50 latency | p99 latency | max | subscribers dropped |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for rate in rates {
        for f in &mut fleets {
            println!("{}", one_rate(f, rate, nprod, subs, secs).await);
        }
    }
}

/// One rate on fleet `f`: its table row.
async fn one_rate(f: &mut Fleet, rate: u64, nprod: usize, subs: usize, secs: u64) -> String {
    // Fresh producers per rate (evpnr restarted so its broker is clean).
    f.kill_evpnr().await;
    f.start_evpnr().await.unwrap();
    let mut flags = Vec::new();
    for i in 0..nprod {
        let running = Arc::new(AtomicBool::new(false));
        flags.push(running.clone());
        let port = free_port().unwrap();
        let id = format!("bench-{rate}-{i}");
        let svc = Producer {
            id: id.clone(),
            rate: rate / nprod as u64,
            running,
        };
        let addr = format!("127.0.0.1:{port}");
        // Listening before evpnr is told about it (no wait needed).
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
        let server = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(EvpndServer::new(svc));
        match &f.tls {
            None => {
                let incoming =
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                tokio::spawn(async move {
                    let _ = server.serve_with_incoming(incoming).await;
                });
            }
            Some(pki) => {
                // The member's own instance certificate.
                let files = pki.issue(&Identity::Instance(id.clone())).unwrap();
                let tls = ServerTls::load(files).unwrap();
                let incoming = tls.incoming(listener, Arc::new(|_, _: &str| {}));
                tokio::spawn(async move {
                    let _ = server.serve_with_incoming(incoming).await;
                });
            }
        }
        f.client_as(&Identity::Instance(id.clone()), Duration::from_secs(10))
            .unwrap()
            .register_instance(v1::RegisterInstanceRequest {
                instance_id: id,
                grpc_address: addr,
                version: "bench".into(),
                ready: true,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let ids: Vec<String> = (0..nprod).map(|i| format!("bench-{rate}-{i}")).collect();
    assert!(
        f.wait_connected(&ids, Duration::from_secs(30)).await,
        "producers not connected"
    );
    let (res, el) = round(f, subs, &flags, secs).await;
    let mut lat: Vec<u32> = res.iter().flat_map(|s| s.lat_us.iter().copied()).collect();
    lat.sort_unstable();
    let total: u64 = res.iter().map(|s| s.got).sum();
    let dropped = res.iter().filter(|s| s.dropped).count();
    let kept: Vec<&Sub> = res.iter().filter(|s| !s.dropped).collect();
    let per = if kept.is_empty() {
        0.0
    } else {
        kept.iter().map(|s| s.got).sum::<u64>() as f64 / kept.len() as f64 / el
    };
    let m = f.metrics().await.unwrap_or_default();
    let dm = m
        .lines()
        .find(|l| l.starts_with("evpnr_event_subscribers_dropped"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("?")
        .to_string();
    // Stop this rate's producers' streams.
    for p in &flags {
        p.store(false, Ordering::Relaxed);
    }
    format!(
        "| {} | {rate} | {per:.0} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {dropped} of {subs} (evpnr counter {dm}) |",
        if f.tls.is_some() { "TLS" } else { "plaintext" },
        total as f64 / el,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    )
}
