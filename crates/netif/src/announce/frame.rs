//! Pure frame builders and decoders for gratuitous ARP and unsolicited neighbour advertisement.

use std::net::{Ipv4Addr, Ipv6Addr};

use evpn_model::Mac;

/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// Length of a gratuitous ARP frame (no padding; the NIC or veth pads if needed).
pub const GARP_LEN: usize = 42;
/// Length of the unsolicited NA ICMPv6 message (header, target, TLLA option).
pub const NA_LEN: usize = 32;
/// ICMPv6 type of a neighbour advertisement.
pub const ICMPV6_NA: u8 = 136;

/// A gratuitous ARP (RFC 5227 "ARP announcement"): Ethernet broadcast from `mac`, ARP request,
/// sender = target = `ip`, sender MAC `mac`, target MAC zero.
pub fn garp_frame(mac: Mac, ip: Ipv4Addr) -> [u8; GARP_LEN] {
    let mut f = [0u8; GARP_LEN];
    let m = mac.into_array();
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&m);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // htype Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // ptype IPv4
    f[18] = 6; // hlen
    f[19] = 4; // plen
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // op request
    f[22..28].copy_from_slice(&m); // sha
    f[28..32].copy_from_slice(&ip.octets()); // spa
    // tha 32..38 stays zero
    f[38..42].copy_from_slice(&ip.octets()); // tpa
    f
}

/// Flags of an unsolicited NA. The Override flag is always set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NaFlags {
    /// Router flag. Set it for a gateway: a host that sees R=0 from a default router drops it
    /// from its default router list (RFC 4861 §7.2.5).
    pub router: bool,
}

impl Default for NaFlags {
    fn default() -> Self {
        NaFlags { router: true }
    }
}

/// The ICMPv6 part of an unsolicited NA for `target` with a target link-layer address option
/// carrying `mac`. Checksum left zero: an ICMPv6 raw socket has the kernel compute it.
pub fn na_message(mac: Mac, target: Ipv6Addr, flags: NaFlags) -> [u8; NA_LEN] {
    let mut p = [0u8; NA_LEN];
    p[0] = ICMPV6_NA;
    p[4] = 0x20 | if flags.router { 0x80 } else { 0 }; // R, (S=0), O
    p[8..24].copy_from_slice(&target.octets());
    p[24] = 2; // option: target link-layer address
    p[25] = 1; // length in units of 8 bytes
    p[26..32].copy_from_slice(&mac.into_array());
    p
}

/// A decoded ARP packet inside an Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpInfo {
    /// Ethernet destination.
    pub eth_dst: Mac,
    /// Ethernet source.
    pub eth_src: Mac,
    /// ARP operation (1 request, 2 reply).
    pub op: u16,
    /// Sender hardware address.
    pub sha: Mac,
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: Mac,
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

fn mac_at(b: &[u8], at: usize) -> Mac {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[at..at + 6]);
    Mac::from(m)
}

/// Decode an Ethernet/ARP(IPv4) frame; `None` for anything else.
pub fn parse_arp(frame: &[u8]) -> Option<ArpInfo> {
    if frame.len() < GARP_LEN
        || frame[12..14] != ETH_P_ARP.to_be_bytes()
        || frame[14..16] != [0, 1]
        || frame[16..18] != [8, 0]
        || frame[18] != 6
        || frame[19] != 4
    {
        return None;
    }
    let ip = |at: usize| Ipv4Addr::new(frame[at], frame[at + 1], frame[at + 2], frame[at + 3]);
    Some(ArpInfo {
        eth_dst: mac_at(frame, 0),
        eth_src: mac_at(frame, 6),
        op: u16::from_be_bytes([frame[20], frame[21]]),
        sha: mac_at(frame, 22),
        spa: ip(28),
        tha: mac_at(frame, 32),
        tpa: ip(38),
    })
}

/// A decoded neighbour advertisement inside an Ethernet/IPv6 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NaInfo {
    /// Ethernet destination.
    pub eth_dst: Mac,
    /// Ethernet source.
    pub eth_src: Mac,
    /// IPv6 source.
    pub src: Ipv6Addr,
    /// IPv6 destination.
    pub dst: Ipv6Addr,
    /// Hop limit.
    pub hop_limit: u8,
    /// Router flag.
    pub router: bool,
    /// Solicited flag.
    pub solicited: bool,
    /// Override flag.
    pub override_: bool,
    /// Target address.
    pub target: Ipv6Addr,
    /// Target link-layer address option, if present.
    pub tlla: Option<Mac>,
}

/// Decode an Ethernet/IPv6/ICMPv6 NA frame (no extension headers); `None` for anything else.
pub fn parse_na(frame: &[u8]) -> Option<NaInfo> {
    const IP: usize = 14;
    const ICMP: usize = IP + 40;
    if frame.len() < ICMP + 24 || frame[12..14] != ETH_P_IPV6.to_be_bytes() {
        return None;
    }
    if frame[IP] >> 4 != 6 || frame[IP + 6] != 58 || frame[ICMP] != ICMPV6_NA {
        return None;
    }
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&frame[at..at + 16]);
        Ipv6Addr::from(a)
    };
    let mut tlla = None;
    let mut at = ICMP + 24;
    while at + 8 <= frame.len() {
        let (kind, len) = (frame[at], usize::from(frame[at + 1]) * 8);
        if len == 0 || at + len > frame.len() {
            break;
        }
        if kind == 2 && len >= 8 {
            tlla = Some(mac_at(frame, at + 2));
        }
        at += len;
    }
    let flags = frame[ICMP + 4];
    Some(NaInfo {
        eth_dst: mac_at(frame, 0),
        eth_src: mac_at(frame, 6),
        src: addr(IP + 8),
        dst: addr(IP + 24),
        hop_limit: frame[IP + 7],
        router: flags & 0x80 != 0,
        solicited: flags & 0x40 != 0,
        override_: flags & 0x20 != 0,
        target: addr(ICMP + 8),
        tlla,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = Mac::new(0x42, 0x6c, 0xfa, 0xd6, 0x82, 0x98);

    #[test]
    fn garp_bytes() {
        let f = garp_frame(MAC, Ipv4Addr::new(172, 16, 0, 32));
        #[rustfmt::skip]
        let want: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,   0x42, 0x6c, 0xfa, 0xd6, 0x82, 0x98,   0x08, 0x06,
            0x00, 0x01,  0x08, 0x00,  6,  4,  0x00, 0x01,
            0x42, 0x6c, 0xfa, 0xd6, 0x82, 0x98,   172, 16, 0, 32,
            0, 0, 0, 0, 0, 0,                     172, 16, 0, 32,
        ];
        assert_eq!(f, want);
        let d = parse_arp(&f).unwrap();
        assert_eq!(d.op, 1);
        assert_eq!(d.sha, MAC);
        assert_eq!(d.spa, d.tpa);
        assert!(d.eth_dst.is_broadcast());
    }

    #[test]
    fn na_bytes() {
        let t: Ipv6Addr = "fec0::32".parse().unwrap();
        let p = na_message(MAC, t, NaFlags { router: true });
        #[rustfmt::skip]
        let want: [u8; 32] = [
            136, 0, 0, 0,   0xa0, 0, 0, 0,
            0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x32,
            2, 1,  0x42, 0x6c, 0xfa, 0xd6, 0x82, 0x98,
        ];
        assert_eq!(p, want);
        assert_eq!(na_message(MAC, t, NaFlags { router: false })[4], 0x20);
    }

    #[test]
    fn na_decode_roundtrip() {
        let t: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let mut f = vec![0x33, 0x33, 0, 0, 0, 1];
        f.extend_from_slice(&MAC.into_array());
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 32, 58, 255]);
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets());
        f.extend_from_slice(&na_message(MAC, t, NaFlags::default()));
        let d = parse_na(&f).unwrap();
        assert_eq!(d.target, t);
        assert_eq!(d.src, src);
        assert_eq!(d.hop_limit, 255);
        assert!(d.router && d.override_ && !d.solicited);
        assert_eq!(d.tlla, Some(MAC));
        assert!(parse_arp(&f).is_none());
        assert!(parse_na(&garp_frame(MAC, Ipv4Addr::LOCALHOST)).is_none());
    }
}
