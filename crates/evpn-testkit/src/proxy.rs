//! A TCP proxy that can be cut: the management network between evpnr and
//! one evpnd in the simulated fleets (tests, chaos), so a partition between
//! them can be injected without touching either program.
//!
//! A cut is a partition, not a refusal: bytes already accepted and new
//! ones are held (nothing is forwarded, no FIN or RST is sent), new
//! connections are accepted and held too, as when packets are dropped; the
//! peers notice only through their own timeouts. A heal forwards what was
//! held and carries on, as TCP does after a short outage — unless the
//! connections open so far were stalled ([`Proxy::stall_existing`]): then
//! they stay held for good, as a TCP connection whose retransmissions are
//! in exponential back-off may for tens of seconds after a partition healed,
//! and only new connections carry traffic. A delay ([`Proxy::set_delay`])
//! holds every chunk that long before it is forwarded, both ways: a slow
//! management network (a member that answers, late). A target that is
//! down (its process killed) is seen as such: the proxy closes the
//! client's connection when the target refuses or closes.
use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// A running proxy; stops (closing its connections) on drop.
pub struct Proxy {
    addr: SocketAddr,
    target: Arc<Mutex<String>>,
    cut: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// Connections numbered below this are held for good.
    stalled: Arc<AtomicU64>,
    /// The number the next connection gets.
    next: Arc<AtomicU64>,
    /// Each chunk is held this long (µs) before it is forwarded.
    delay_us: Arc<AtomicU64>,
}

impl Proxy {
    /// A proxy on an ephemeral 127.0.0.1 port forwarding to `target`
    /// (`host:port`).
    pub async fn start(target: &str) -> std::io::Result<Proxy> {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        let target = Arc::new(Mutex::new(target.to_string()));
        let (cut, _) = watch::channel(false);
        let (stop, _) = watch::channel(false);
        let (t, c, s) = (target.clone(), cut.subscribe(), stop.subscribe());
        let stalled = Arc::new(AtomicU64::new(0));
        let next = Arc::new(AtomicU64::new(0));
        let delay_us = Arc::new(AtomicU64::new(0));
        let (st, nx, dl) = (stalled.clone(), next.clone(), delay_us.clone());
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = l.accept().await {
                let to = t.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let stall = Stall {
                    n: nx.fetch_add(1, Ordering::SeqCst),
                    below: st.clone(),
                    delay_us: dl.clone(),
                };
                tokio::spawn(forward(conn, to, c.clone(), s.clone(), stall));
            }
        });
        Ok(Proxy {
            addr,
            target,
            cut,
            stop,
            task,
            stalled,
            next,
            delay_us,
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Forward new connections to `target` from now on.
    pub fn set_target(&self, target: &str) {
        *self.target.lock().unwrap_or_else(|p| p.into_inner()) = target.to_string();
    }

    /// Partition: hold everything (see the module documentation).
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// End the partition.
    pub fn heal(&self) {
        self.cut.send_replace(false);
    }

    /// Hold every connection opened so far for good (see the module
    /// documentation); connections opened from now on are not affected.
    pub fn stall_existing(&self) {
        self.stalled
            .store(self.next.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Hold every chunk `d` before forwarding it, both ways, on every
    /// connection (open or new) from now on; zero ends the delay.
    pub fn set_delay(&self, d: std::time::Duration) {
        self.delay_us.store(
            d.as_micros().try_into().unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Whether the proxy is cut.
    pub fn is_cut(&self) -> bool {
        *self.cut.borrow()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.stop.send_replace(true);
    }
}

/// A connection's number, the stall mark and the delay.
#[derive(Clone)]
struct Stall {
    n: u64,
    below: Arc<AtomicU64>,
    delay_us: Arc<AtomicU64>,
}

impl Stall {
    fn stalled(&self) -> bool {
        self.n < self.below.load(Ordering::SeqCst)
    }
}

async fn forward(
    client: TcpStream,
    target: String,
    mut cut: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    stall: Stall,
) {
    let run = async {
        if cut.wait_for(|c| !*c).await.is_err() {
            return;
        }
        let Ok(server) = TcpStream::connect(&target).await else {
            return;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        tokio::select! {
            _ = pump(cr, sw, cut.clone(), stall.clone()) => {}
            _ = pump(sr, cw, cut.clone(), stall.clone()) => {}
        }
    };
    tokio::select! {
        _ = run => {}
        _ = stop.wait_for(|s| *s) => {}
    }
}

/// Copies `r` to `w`, holding each chunk while the proxy is cut.
async fn pump(
    mut r: impl AsyncReadExt + Unpin,
    mut w: impl AsyncWriteExt + Unpin,
    mut cut: watch::Receiver<bool>,
    stall: Stall,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => {
                if stall.stalled() {
                    // The close is lost too.
                    std::future::pending::<()>().await;
                }
                let _ = w.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        if cut.wait_for(|c| !*c).await.is_err() {
            return;
        }
        if stall.stalled() {
            // Held for good: neither forwarded nor closed.
            std::future::pending::<()>().await;
        }
        let d = stall.delay_us.load(Ordering::SeqCst);
        if d > 0 {
            tokio::time::sleep(std::time::Duration::from_micros(d)).await;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        a
    }

    async fn roundtrip(s: &mut TcpStream, msg: &[u8], within: Duration) -> Option<Vec<u8>> {
        s.write_all(msg).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(within, s.read_exact(&mut got))
            .await
            .ok()
            .map(|r| {
                r.unwrap();
                got
            })
    }

    #[tokio::test]
    async fn a_cut_holds_traffic_and_a_heal_delivers_it() {
        let p = Proxy::start(&echo().await.to_string()).await.unwrap();
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let long = Duration::from_secs(10);
        assert_eq!(roundtrip(&mut s, b"one", long).await.unwrap(), b"one");
        p.cut();
        assert!(p.is_cut());
        // Held, not refused: no answer, no close.
        assert!(
            roundtrip(&mut s, b"two", Duration::from_millis(200))
                .await
                .is_none()
        );
        // A new connection is accepted and held too.
        let mut s2 = TcpStream::connect(p.addr()).await.unwrap();
        assert!(
            roundtrip(&mut s2, b"x", Duration::from_millis(200))
                .await
                .is_none()
        );
        p.heal();
        let mut got = [0u8; 3];
        tokio::time::timeout(long, s.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got, b"two");
        let mut got = [0u8; 1];
        tokio::time::timeout(long, s2.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got, b"x");
    }

    #[tokio::test]
    async fn a_delay_holds_each_chunk_both_ways() {
        let p = Proxy::start(&echo().await.to_string()).await.unwrap();
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let long = Duration::from_secs(10);
        assert_eq!(roundtrip(&mut s, b"one", long).await.unwrap(), b"one");
        p.set_delay(Duration::from_millis(30));
        let t = std::time::Instant::now();
        assert_eq!(roundtrip(&mut s, b"two", long).await.unwrap(), b"two");
        // Held 30 ms on the way there and 30 ms back: never less.
        assert!(
            t.elapsed() >= Duration::from_millis(60),
            "{:?}",
            t.elapsed()
        );
        p.set_delay(Duration::ZERO);
        assert_eq!(roundtrip(&mut s, b"3", long).await.unwrap(), b"3");
    }

    #[tokio::test]
    async fn a_target_that_is_down_closes_the_connection() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = l.local_addr().unwrap();
        drop(l);
        let p = Proxy::start(&dead.to_string()).await.unwrap();
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b))
            .await
            .unwrap();
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        // A new target is used for new connections.
        p.set_target(&echo().await.to_string());
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert_eq!(
            roundtrip(&mut s, b"y", Duration::from_secs(10))
                .await
                .unwrap(),
            b"y"
        );
    }
}
