//! A fixed-rate ICMP echo prober (IPv4 and IPv6) for the host namespace.
//!
//! One echo request per family every `interval`, never waiting for replies
//! (iputils `ping -i 0.01` really sends every ~16 ms and stalls on
//! outstanding replies, `docs/fabric.md` baseline §8). Raw sockets (root; no
//! `unsafe`: socket2 does the work), opened by a thread that entered the
//! namespace. Every probe's send time and reply time is kept, in µs since a
//! shared epoch, so the caller can cut windows around moves.
use std::{
    io::Read,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// One probe: when it was sent and when its first reply came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// µs since the epoch.
    pub sent_us: u64,
    /// µs since the epoch, if answered.
    pub reply_us: Option<u64>,
}

/// All probes of one family, indexed by sequence number.
#[derive(Debug, Default)]
pub struct ProbeLog {
    probes: Mutex<Vec<Probe>>,
    /// Send times of the probes answered more than once, once per extra
    /// reply (two gateways answering).
    dups: Mutex<Vec<u64>>,
}

impl ProbeLog {
    /// A copy of every probe so far.
    pub fn snapshot(&self) -> Vec<Probe> {
        self.probes.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn push(&self, sent_us: u64) -> u64 {
        let mut v = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        v.push(Probe {
            sent_us,
            reply_us: None,
        });
        v.len() as u64 - 1
    }

    fn reply(&self, seq: u64, at: u64) {
        let mut v = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = v.get_mut(seq as usize) {
            if p.reply_us.is_none() {
                p.reply_us = Some(at);
            } else {
                let mut d = self.dups.lock().unwrap_or_else(|p| p.into_inner());
                d.push(p.sent_us);
            }
        }
    }

    /// Duplicate replies to probes sent in `[from_us, to_us]`.
    pub fn dups(&self, from_us: u64, to_us: u64) -> usize {
        let d = self.dups.lock().unwrap_or_else(|p| p.into_inner());
        d.iter().filter(|t| **t >= from_us && **t <= to_us).count()
    }
}

/// Loss and gap of one family over a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowStats {
    /// Probes sent inside the window without a reply.
    pub lost: usize,
    /// Probes sent inside the window.
    pub sent: usize,
    /// The longest reply-to-reply gap overlapping the window, ms.
    pub gap_ms: f64,
}

/// Loss and longest reply gap of `probes` over `[from_us, to_us]`. The gap
/// is the largest distance between consecutive replies (by arrival) of which
/// the interval overlaps the window; a window without any reply after it
/// counts up to its end.
pub fn window_stats(probes: &[Probe], from_us: u64, to_us: u64) -> WindowStats {
    let inside: Vec<&Probe> = probes
        .iter()
        .filter(|p| p.sent_us >= from_us && p.sent_us <= to_us)
        .collect();
    let lost = inside.iter().filter(|p| p.reply_us.is_none()).count();
    let mut replies: Vec<u64> = probes.iter().filter_map(|p| p.reply_us).collect();
    replies.sort_unstable();
    let mut gap = 0u64;
    for w in replies.windows(2) {
        if w[1] >= from_us && w[0] <= to_us {
            gap = gap.max(w[1] - w[0]);
        }
    }
    if let Some(last) = replies.iter().rev().find(|r| **r <= to_us)
        && !replies.iter().any(|r| *r > to_us)
    {
        gap = gap.max(to_us - last);
    }
    WindowStats {
        lost,
        sent: inside.len(),
        gap_ms: gap as f64 / 1000.0,
    }
}

/// The running prober; stops on drop.
pub struct Prober {
    /// IPv4 probes.
    pub v4: Arc<ProbeLog>,
    /// IPv6 probes.
    pub v6: Arc<ProbeLog>,
    /// Time zero of every timestamp.
    pub epoch: Instant,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        s += u32::from(w);
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An ICMP(v6) echo request with identifier `id` and the full sequence
/// number in the payload.
pub fn echo_request(v6: bool, id: u16, seq: u64) -> Vec<u8> {
    let mut p = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&(seq as u16).to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"evpnfab!");
    if !v6 {
        // The kernel computes the ICMPv6 checksum itself.
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// The sequence number of an echo reply with identifier `id`, from what a
/// raw socket returns (IPv4 includes the IP header, IPv6 does not).
pub fn parse_reply(v6: bool, id: u16, buf: &[u8]) -> Option<u64> {
    let icmp = if v6 {
        buf
    } else {
        let ihl = usize::from(*buf.first()? & 0x0f) * 4;
        buf.get(ihl..)?
    };
    let want = if v6 { 129 } else { 0 };
    if icmp.len() < 16 || icmp[0] != want || u16::from_be_bytes([icmp[4], icmp[5]]) != id {
        return None;
    }
    Some(u64::from_be_bytes(icmp[8..16].try_into().ok()?))
}

impl Prober {
    /// Start probing `v4` and `v6` every `interval` from inside network
    /// namespace `netns`.
    pub fn start(
        netns: &str,
        v4: Ipv4Addr,
        v6: Ipv6Addr,
        interval: Duration,
        epoch: Instant,
    ) -> anyhow::Result<Prober> {
        let logs = (Arc::new(ProbeLog::default()), Arc::new(ProbeLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let id = (std::process::id() as u16) ^ 0x5a5a;
        let (tx, rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let ns = netns.to_string();
        let (l4, l6, st) = (logs.0.clone(), logs.1.clone(), stop.clone());
        let sender = std::thread::Builder::new()
            .name("prober".into())
            .spawn(move || {
                let open = || -> anyhow::Result<(Socket, Socket)> {
                    crate::netns::enter(&ns)?;
                    let s4 = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
                        .context("raw ICMP socket")?;
                    let s6 = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
                        .context("raw ICMPv6 socket")?;
                    for s in [&s4, &s6] {
                        s.set_read_timeout(Some(Duration::from_millis(50)))?;
                    }
                    Ok((s4, s6))
                };
                let (s4, s6) = match open() {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let mut rx_threads = Vec::new();
                for (sock, log, v6) in [(&s4, l4.clone(), false), (&s6, l6.clone(), true)] {
                    let sock = match sock.try_clone() {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = tx.send(Err(e.into()));
                            return;
                        }
                    };
                    let st = st.clone();
                    rx_threads.push(std::thread::spawn(move || {
                        let mut buf = [0u8; 2048];
                        while !st.load(Ordering::Relaxed) {
                            let Ok(n) = (&sock).read(&mut buf) else {
                                continue;
                            };
                            let at = epoch.elapsed().as_micros() as u64;
                            if let Some(seq) = parse_reply(v6, id, &buf[..n]) {
                                log.reply(seq, at);
                            }
                        }
                    }));
                }
                let _ = tx.send(Ok(()));
                let d4 = SockAddr::from(SocketAddr::new(IpAddr::V4(v4), 0));
                let d6 = SockAddr::from(SocketAddr::new(IpAddr::V6(v6), 0));
                let start = Instant::now();
                let mut k: u32 = 0;
                while !st.load(Ordering::Relaxed) {
                    let due = start + interval * k;
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let t = epoch.elapsed().as_micros() as u64;
                    let seq = l4.push(t);
                    let _ = s4.send_to(&echo_request(false, id, seq), &d4);
                    let seq = l6.push(epoch.elapsed().as_micros() as u64);
                    let _ = s6.send_to(&echo_request(true, id, seq), &d6);
                    k += 1;
                }
                for t in rx_threads {
                    let _ = t.join();
                }
            })?;
        rx.recv().context("prober thread died")??;
        Ok(Prober {
            v4: logs.0,
            v6: logs.1,
            epoch,
            stop,
            threads: vec![sender],
        })
    }

    /// µs since the epoch.
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Stats of both families over a window.
    pub fn window(&self, from_us: u64, to_us: u64) -> (WindowStats, WindowStats) {
        (
            window_stats(&self.v4.snapshot(), from_us, to_us),
            window_stats(&self.v6.snapshot(), from_us, to_us),
        )
    }

    /// Replies (v4, v6) to probes sent in the last `d`.
    pub fn recent_replies(&self, d: Duration) -> (usize, usize) {
        let from = self.now_us().saturating_sub(d.as_micros() as u64);
        let count = |l: &ProbeLog| {
            l.snapshot()
                .iter()
                .filter(|p| p.sent_us >= from && p.reply_us.is_some())
                .count()
        };
        (count(&self.v4), count(&self.v6))
    }

    /// Wait until both families got a reply to a probe sent after now
    /// (`true`), or `timeout` passes (`false`).
    pub fn wait_answered(&self, timeout: Duration) -> bool {
        let from = self.now_us();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let ok = |l: &ProbeLog| {
                l.snapshot()
                    .iter()
                    .any(|p| p.sent_us >= from && p.reply_us.is_some())
            };
            if ok(&self.v4) && ok(&self.v6) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Stop the threads.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_round_trip_and_checksum() {
        let p = echo_request(false, 7, 70000);
        assert_eq!(checksum(&p), 0, "a valid ICMP checksum sums to zero");
        // A v4 reply: 20-byte IP header + the echo with type 0.
        let mut r = vec![0x45u8];
        r.extend_from_slice(&[0; 19]);
        let mut e = p.clone();
        e[0] = 0;
        r.extend_from_slice(&e);
        assert_eq!(parse_reply(false, 7, &r), Some(70000));
        assert_eq!(parse_reply(false, 8, &r), None);
        let mut e6 = echo_request(true, 7, 3);
        e6[0] = 129;
        assert_eq!(parse_reply(true, 7, &e6), Some(3));
        e6[0] = 128;
        assert_eq!(parse_reply(true, 7, &e6), None);
    }

    #[test]
    fn window_counts_loss_and_gap() {
        // Probes every 1000 µs answered after 100 µs, except 5..8.
        let probes: Vec<Probe> = (0..20)
            .map(|i| Probe {
                sent_us: i * 1000,
                reply_us: (!(5..8).contains(&i)).then_some(i * 1000 + 100),
            })
            .collect();
        let s = window_stats(&probes, 4500, 9500);
        assert_eq!(s.lost, 3);
        assert_eq!(s.sent, 5);
        assert!((s.gap_ms - 4.0).abs() < 1e-9, "{s:?}");
        // No reply after the window: the gap runs to the window's end.
        let s = window_stats(&probes[..6], 3000, 10_000);
        assert!((s.gap_ms - 5.9).abs() < 1e-9, "{s:?}");
    }
}
