//! Raw sockets for announcements (AF_PACKET, ICMPv6) and for capturing frames.
//!
//! This is the crate's only module with `unsafe`.
#![allow(unsafe_code)]
// Why: an AF_PACKET address (`sockaddr_ll`) has no safe constructor in socket2 or nix, so it is
// written into a zeroed `sockaddr_storage` through `SockAddr::try_init`. That is the only
// unsafe operation here; everything else goes through socket2's safe API.

use std::io::{self, Read};
use std::mem::size_of;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::time::{Duration, Instant};

use evpn_model::Mac;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::frame::{self, NaFlags};
use crate::error::{Error, Op, Result};

const ETH_P_ALL: u16 = 0x0003;

/// A `sockaddr_ll` for `ifindex`, EtherType `proto` and (for sending) destination `dst`.
fn sockaddr_ll(ifindex: u32, proto: u16, dst: Option<Mac>) -> io::Result<SockAddr> {
    let ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
    // SAFETY: `storage` points to a zeroed `sockaddr_storage`, which is larger than and
    // suitably aligned for `sockaddr_ll`; we write one `sockaddr_ll` and report its length.
    let ((), addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            let sll = storage.cast::<libc::sockaddr_ll>();
            let mut v: libc::sockaddr_ll = std::mem::zeroed();
            v.sll_family = libc::AF_PACKET as u16;
            v.sll_protocol = proto.to_be();
            v.sll_ifindex = ifindex;
            if let Some(m) = dst {
                v.sll_halen = 6;
                v.sll_addr[..6].copy_from_slice(&m.into_array());
            }
            sll.write(v);
            *len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            Ok(())
        })
    }?;
    Ok(addr)
}

/// Sends gratuitous ARPs and unsolicited NAs out of one interface.
///
/// Opening once and sending many times keeps the per-announcement cost to one syscall. The
/// sockets are tied to the interface index: reopen after the interface is recreated.
#[derive(Debug)]
pub struct Announcer {
    ifindex: u32,
    ifname: String,
    packet: Socket,
    icmp6: Socket,
}

impl Announcer {
    /// Open the sockets for interface `ifname` with index `ifindex` (in the calling thread's
    /// network namespace).
    pub fn open(ifname: &str, ifindex: u32) -> Result<Announcer> {
        let err = |e| Error::from_io(Op::Open, ifname, e);
        // Protocol 0: this socket only sends and never receives.
        let packet =
            Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0))).map_err(err)?;
        let icmp6 = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).map_err(err)?;
        icmp6.set_multicast_hops_v6(255).map_err(err)?;
        icmp6.set_unicast_hops_v6(255).map_err(err)?;
        icmp6.set_multicast_if_v6(ifindex).map_err(err)?;
        // Our own NA looped back would make the kernel log "someone advertises our address".
        icmp6.set_multicast_loop_v6(false).map_err(err)?;
        Ok(Announcer {
            ifindex,
            ifname: ifname.to_string(),
            packet,
            icmp6,
        })
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Send one gratuitous ARP for `ip` from `mac` (Ethernet broadcast).
    pub fn send_garp(&self, mac: Mac, ip: Ipv4Addr) -> Result<()> {
        let target = format!("{} {ip}", self.ifname);
        let f = frame::garp_frame(mac, ip);
        let dst = sockaddr_ll(self.ifindex, frame::ETH_P_ARP, Some(Mac::BROADCAST))
            .map_err(|e| Error::from_io(Op::SendGarp, &target, e))?;
        let n = self
            .packet
            .send_to(&f, &dst)
            .map_err(|e| Error::from_io(Op::SendGarp, &target, e))?;
        short_write(n, f.len(), Op::SendGarp, &target)
    }

    /// Send one unsolicited NA for `target` with TLLA `mac` to `ff02::1` (hop limit 255,
    /// Override set). The interface needs a non-tentative link-local address for the source,
    /// otherwise the kernel refuses with EADDRNOTAVAIL.
    pub fn send_na(&self, mac: Mac, target: Ipv6Addr, flags: NaFlags) -> Result<()> {
        let t = format!("{} {target}", self.ifname);
        let p = frame::na_message(mac, target, flags);
        let dst = SocketAddrV6::new(
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
            0,
            0,
            self.ifindex,
        );
        let n = self
            .icmp6
            .send_to(&p, &SockAddr::from(dst))
            .map_err(|e| Error::from_io(Op::SendNa, &t, e))?;
        short_write(n, p.len(), Op::SendNa, &t)
    }
}

fn short_write(n: usize, want: usize, op: Op, target: &str) -> Result<()> {
    if n == want {
        Ok(())
    } else {
        Err(Error::Os {
            op,
            target: target.to_string(),
            source: io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {n} of {want} bytes"),
            ),
        })
    }
}

/// An AF_PACKET socket receiving every frame (both directions) seen on one interface.
/// Meant for tests and diagnostics (e.g. checking that announcements went out).
#[derive(Debug)]
pub struct RawCapture {
    sock: Socket,
    ifname: String,
}

impl RawCapture {
    /// Start capturing on `ifname` (index `ifindex`). Frames queued before the bind completed
    /// (possibly from other interfaces) are discarded.
    pub fn open(ifname: &str, ifindex: u32) -> Result<RawCapture> {
        let err = |e| Error::from_io(Op::Open, ifname, e);
        let sock = Socket::new(
            Domain::PACKET,
            Type::RAW,
            Some(Protocol::from(i32::from(ETH_P_ALL.to_be()))),
        )
        .map_err(err)?;
        sock.bind(&sockaddr_ll(ifindex, ETH_P_ALL, None).map_err(err)?)
            .map_err(err)?;
        sock.set_nonblocking(true).map_err(err)?;
        let mut buf = [0u8; 2048];
        for _ in 0..10_000 {
            if (&sock).read(&mut buf).is_err() {
                break;
            }
        }
        sock.set_nonblocking(false).map_err(err)?;
        Ok(RawCapture {
            sock,
            ifname: ifname.to_string(),
        })
    }

    /// Receive one frame, waiting at most `timeout`; `Ok(None)` on timeout.
    pub fn recv(&self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        let err = |e| Error::from_io(Op::Capture, &self.ifname, e);
        self.sock
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(err)?;
        let mut buf = vec![0u8; 65536];
        match (&self.sock).read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(err(e)),
        }
    }

    /// Receive frames until `pick` returns `Some` or `timeout` has passed in total.
    pub fn recv_until<T>(
        &self,
        timeout: Duration,
        mut pick: impl FnMut(&[u8]) -> Option<T>,
    ) -> Result<Option<T>> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            if let Some(f) = self.recv(left)?
                && let Some(v) = pick(&f)
            {
                return Ok(Some(v));
            }
        }
    }
}
