//! The keepalived peer's part of the fabric lab's setup (its VNI, devices
//! and BIRD protocols), apart from running keepalived (`crate::vrrp`), so
//! the fabric builds it without depending on the peer's runner.
use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::Context;

use crate::netns::Netns;

/// The peer's VNI.
pub const KA_VNI: u32 = 200;
/// The VRRP MAC (IPv6 VRID 32, RFC 5798): keepalived refuses an explicit
/// RFC MAC, so the IPv6 instance's own is the one.
pub const KA_VMAC: &str = "00:00:5e:00:02:20";
/// The VRID.
pub const KA_VRID: u8 = 32;
/// The gateway addresses.
pub const KA_V4: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 32);
/// See [`KA_V4`].
pub const KA_V6: Ipv6Addr = Ipv6Addr::new(0xfec0, 1, 0, 0, 0, 0, 0, 0x32);
/// The peer's host.
pub const KA_HOST_V4: &str = "172.16.1.10/24";
/// See [`KA_HOST_V4`].
pub const KA_HOST_V6: &str = "fec0:1::10/64";
/// See [`KA_HOST_V4`].
pub const KA_HOST_MAC: &str = "02:00:00:00:00:20";
/// Device names (none carries an evpnd prefix, so evpnd leaves them alone).
pub const KBR: &str = "kbr";
/// The peer's VXLAN device.
pub const KVX: &str = "kvx";
/// The peer's BVI.
pub const KBVI: &str = "kbvi";
/// The BVI's bridge port.
pub const KBVP: &str = "kbvp";
/// keepalived's VMAC interface.
pub const VMAC_IF: &str = "vrrp32";
/// A router as the peer's setup needs it.
pub struct Node<'a> {
    pub ns: &'a Netns,
    /// Its underlay (VTEP) address.
    pub addr: String,
}

/// The BIRD configuration of the peer's eVPN on router `me` (1-based).
pub fn bird_snippet(me: usize) -> String {
    format!(
        "eth table ethtab_ka;\n\
         protocol bridge bridge_ka {{ eth {{ table ethtab_ka; export all; preference 100; }}; bridge device \"{KBR}\"; }}\n\
         protocol evpn evpn_ka {{ eth {{ table ethtab_ka; }}; evpn {{ table evpntab; }}; rd 10.0.0.{me}:{KA_VNI}; \
         route target (rt, 65000, {KA_VNI}); encapsulation vxlan {{ tunnel device \"{KVX}\"; router address 10.0.0.{me}; }}; vni {KA_VNI}; }}\n"
    )
}

/// Build the peer's devices on every router and its host on the leaf
/// (before BIRD starts).
pub fn build_devices(routers: &[Node<'_>], host: &Netns) -> anyhow::Result<()> {
    let n = routers.len();
    for (k, r) in routers.iter().enumerate() {
        let ns = r.ns;
        let me = k + 1;
        ns.ip(&["link", "add", KBR, "type", "bridge"])?;
        ns.ip(&["link", "set", KBR, "addrgenmode", "none"])?;
        ns.sysctl(&format!("net.ipv6.conf.{KBR}.accept_dad"), "0")?;
        ns.ip(&[
            "link",
            "add",
            KVX,
            "type",
            "vxlan",
            "id",
            &KA_VNI.to_string(),
            "local",
            &r.addr.to_string(),
            "dstport",
            "4789",
            "nolearning",
        ])?;
        ns.ip(&["link", "set", KVX, "addrgenmode", "none"])?;
        ns.ip(&["link", "set", KVX, "master", KBR])?;
        ns.exec(&["bridge", "link", "set", "dev", KVX, "learning", "off"])?;
        ns.ip(&["link", "set", KVX, "up"])?;
        ns.ip(&["link", "set", KBR, "up"])?;
        if k + 1 == n {
            continue;
        }
        ns.ip(&["link", "add", KBVI, "type", "veth", "peer", "name", KBVP])?;
        ns.ip(&["link", "set", KBVI, "addrgenmode", "none"])?;
        ns.ip(&["link", "set", KBVP, "addrgenmode", "none"])?;
        ns.sysctl(&format!("net.ipv6.conf.{KBVI}.accept_dad"), "0")?;
        ns.ip(&[
            "link",
            "set",
            KBVI,
            "address",
            &format!("02:00:00:00:{me:02x}:32"),
        ])?;
        ns.ip(&["link", "set", KBVP, "master", KBR])?;
        ns.exec(&["bridge", "link", "set", "dev", KBVP, "learning", "off"])?;
        // bvi must not answer ARP for the VIP with its per-host MAC.
        ns.sysctl("net.ipv4.conf.all.arp_ignore", "1")?;
        ns.sysctl(&format!("net.ipv4.conf.{KBVI}.arp_ignore"), "1")?;
        ns.ip(&["link", "set", KBVP, "up"])?;
        ns.ip(&["link", "set", KBVI, "up"])?;
        // The VRRPv3 IPv6 instance sends from the BVI's link-local.
        ns.ip(&[
            "addr",
            "add",
            &format!("fe80::ff:fe00:{me:x}32/64"),
            "dev",
            KBVI,
            "nodad",
        ])?;
    }
    let leaf = routers.last().context("no routers")?.ns;
    leaf.ip(&[
        "link", "add", "khport", "type", "veth", "peer", "name", "hk-eth0", "netns", &host.name,
    ])?;
    leaf.ip(&["link", "set", "khport", "master", KBR, "up"])?;
    host.sysctl("net.ipv6.conf.hk-eth0.accept_dad", "0")?;
    host.ip(&["link", "set", "hk-eth0", "address", KA_HOST_MAC, "up"])?;
    host.ip(&["addr", "add", KA_HOST_V4, "dev", "hk-eth0"])?;
    host.ip(&["addr", "add", KA_HOST_V6, "dev", "hk-eth0", "nodad"])?;
    Ok(())
}
