//! IP addresses over rtnetlink.

use std::net::{IpAddr, Ipv6Addr};

use evpn_model::Mac;
use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::AddressMessageBuilder;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};

use crate::error::{Error, Op, Result};
use crate::link::Netlink;

/// One address as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// Interface index.
    pub index: u32,
    /// Address and prefix length.
    pub net: IpNet,
    /// Added with `nodad` (IPv6).
    pub nodad: bool,
    /// Still tentative (IPv6 DAD running; unusable as a source).
    pub tentative: bool,
    /// DAD failed (IPv6).
    pub dad_failed: bool,
    /// Static (not from autoconf).
    pub permanent: bool,
}

impl Addr {
    /// True for an IPv6 link-local (`fe80::/10`) address.
    pub fn is_link_local(&self) -> bool {
        matches!(self.net.addr(), IpAddr::V6(a) if is_link_local6(&a))
    }
}

/// True for `fe80::/10` (the workspace's one test, [`evpn_model::is_link_local6`]).
pub use evpn_model::is_link_local6;

/// The modified EUI-64 link-local address `fe80::/64` derived from `mac`
/// ([`Mac::link_local`], RFC 4291 App. A) with its prefix length.
pub fn eui64_link_local(mac: Mac) -> IpNet {
    IpNet::new(IpAddr::V6(mac.link_local()), 64).expect("64 is a valid IPv6 prefix length")
}

pub(crate) fn parse_addr(msg: &AddressMessage) -> Option<Addr> {
    let mut local = None;
    let mut address = None;
    let mut flags = u32::from(msg.header.flags.bits());
    for a in &msg.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Flags(f) => flags |= f.bits(),
            _ => {}
        }
    }
    let ip = local.or(address)?;
    let net = IpNet::new(ip, msg.header.prefix_len).ok()?;
    let f = AddressFlags::from_bits_retain(flags);
    Some(Addr {
        index: msg.header.index,
        net,
        nodad: f.contains(AddressFlags::Nodad),
        tentative: f.contains(AddressFlags::Tentative),
        dad_failed: f.contains(AddressFlags::Dadfailed),
        permanent: f.contains(AddressFlags::Permanent),
    })
}

fn message(index: u32, net: &IpNet) -> AddressMessage {
    match net.addr() {
        IpAddr::V4(a) => AddressMessageBuilder::<std::net::Ipv4Addr>::new()
            .index(index)
            .address(a, net.prefix_len())
            .build(),
        IpAddr::V6(a) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(index)
            .address(a, net.prefix_len())
            .build(),
    }
}

impl Netlink {
    /// All addresses, or those of link `index`.
    pub async fn list_addresses(&self, index: Option<u32>) -> Result<Vec<Addr>> {
        let _turn = self.dump_turn().await;
        let mut req = self.handle().address().get();
        if let Some(i) = index {
            // in the header for the kernel (strict checking), and filtered here as well
            req.message_mut().header.index = i;
            req = req.set_link_index_filter(i);
        }
        let msgs: Vec<AddressMessage> = req.execute().try_collect().await.map_err(|e| {
            Error::from_rtnl(
                Op::ListAddresses,
                index.map_or("all".to_string(), |i| format!("#{i}")),
                e,
            )
        })?;
        Ok(msgs.iter().filter_map(parse_addr).collect())
    }

    /// Add `net` to `name`. IPv6 addresses are added with `IFA_F_NODAD` (usable at once, no
    /// DAD probe on the wire).
    pub async fn add_address(&self, name: &str, net: IpNet) -> Result<()> {
        let idx = self
            .index_of(name)
            .await
            .map_err(|e| relabel(e, Op::AddAddress))?;
        self.add_address_at(idx, name, net).await
    }

    /// [`Netlink::add_address`] on interface index `index` (`name` is for messages).
    pub async fn add_address_at(&self, index: u32, name: &str, net: IpNet) -> Result<()> {
        let mut req = self
            .handle()
            .address()
            .add(index, net.addr(), net.prefix_len());
        if net.addr().is_ipv6() {
            req.message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        req.execute()
            .await
            .map_err(|e| Error::from_rtnl(Op::AddAddress, format!("{name} {net}"), e))
    }

    /// Delete `net` from `name`; [`Error::NotFound`] if it is not there.
    pub async fn delete_address(&self, name: &str, net: IpNet) -> Result<()> {
        let idx = self
            .index_of(name)
            .await
            .map_err(|e| relabel(e, Op::DeleteAddress))?;
        self.delete_address_at(idx, name, net).await
    }

    /// [`Netlink::delete_address`] on interface index `index` (`name` is for messages).
    pub async fn delete_address_at(&self, index: u32, name: &str, net: IpNet) -> Result<()> {
        self.handle()
            .address()
            .del(message(index, &net))
            .execute()
            .await
            .map_err(|e| Error::from_rtnl(Op::DeleteAddress, format!("{name} {net}"), e))
    }
}

fn relabel(e: Error, op: Op) -> Error {
    match e {
        Error::NotFound { target, .. } => Error::NotFound { op, target },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eui64_carries_the_prefix_length() {
        let mac = Mac::new(0x42, 0x6c, 0xfa, 0xd6, 0x82, 0x98);
        assert_eq!(
            eui64_link_local(mac).to_string(),
            "fe80::406c:faff:fed6:8298/64"
        );
    }

    #[test]
    fn addr_link_local() {
        let a = |net: &str| Addr {
            index: 1,
            net: net.parse().unwrap(),
            nodad: false,
            tentative: false,
            dad_failed: false,
            permanent: true,
        };
        assert!(a("fe80::1/64").is_link_local());
        assert!(!a("2001:db8::1/64").is_link_local());
        assert!(!a("169.254.0.1/16").is_link_local());
    }
}
