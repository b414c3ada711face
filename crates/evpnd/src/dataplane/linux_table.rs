//! The Linux side of the one-FIB rule: which global addresses sit on the
//! other interfaces of the BVI's routing table. An interface enslaved to a
//! VRF device is in that VRF's table; every other one is in the main table.
use evpn_model::Error;
use ipnet::IpNet;
use netif::{LinkKind, Netlink};

/// One link: index, name, and the index of its VRF (None: main table).
pub(crate) type TableLink = (u32, String, Option<u32>);

/// The addresses (`(link index, address)`) on links of `bvi`'s table other
/// than `bvi`, with their link's name. Link-locals are per link: skipped.
/// Unknown `bvi`: the main table.
pub(crate) fn others_in_table(
    bvi: &str,
    links: &[TableLink],
    addrs: &[(u32, IpNet)],
) -> Vec<(String, IpNet)> {
    let (ours, table) = links
        .iter()
        .find(|(_, n, _)| n == bvi)
        .map_or((None, None), |(i, _, t)| (Some(*i), *t));
    addrs
        .iter()
        .filter(|(i, a)| Some(*i) != ours && !is_link_local(a))
        .filter_map(|(i, a)| {
            links
                .iter()
                .find(|(li, _, t)| li == i && *t == table)
                .map(|(_, n, _)| (n.clone(), *a))
        })
        .collect()
}

fn is_link_local(a: &IpNet) -> bool {
    evpn_model::is_link_local(&a.addr())
}

/// [`others_in_table`] for the links and addresses the kernel has now.
pub(crate) async fn other_addresses(
    nl: &Netlink,
    bvi: &str,
) -> Result<Vec<(String, IpNet)>, Error> {
    let nerr = |e: netif::Error| Error::Internal(format!("netlink: {e}"));
    // Independent dumps: one round trip.
    let (all, addrs) =
        futures::try_join!(nl.list_links(), nl.list_addresses(None)).map_err(nerr)?;
    let vrf = |m: Option<u32>| {
        m.filter(|m| {
            all.iter()
                .any(|l| l.index == *m && l.kind == LinkKind::Other("vrf".into()))
        })
    };
    let links: Vec<TableLink> = all
        .iter()
        .map(|l| (l.index, l.name.clone(), vrf(l.master)))
        .collect();
    let addrs: Vec<(u32, IpNet)> = addrs.into_iter().map(|a| (a.index, a.net)).collect();
    Ok(others_in_table(bvi, &links, &addrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn only_other_links_of_the_same_table_count() {
        let links: Vec<TableLink> = vec![
            (1, "lo".into(), None),
            (2, "eth0".into(), None),
            (3, "bvi-blue".into(), None),
            (4, "red0".into(), Some(9)),
            (9, "vrf-red".into(), None),
        ];
        let addrs = vec![
            (1, n("127.0.0.1/8")),
            (2, n("10.1.1.1/24")),
            (2, n("fe80::1/64")),
            (3, n("10.1.1.2/24")),
            (4, n("10.2.0.1/24")),
        ];
        assert_eq!(
            others_in_table("bvi-blue", &links, &addrs),
            vec![
                ("lo".into(), n("127.0.0.1/8")),
                ("eth0".into(), n("10.1.1.1/24"))
            ]
        );
        // A BVI in the VRF sees only the VRF's interfaces.
        let mut in_vrf = links.clone();
        in_vrf[2].2 = Some(9);
        assert_eq!(
            others_in_table("bvi-blue", &in_vrf, &addrs),
            vec![("red0".into(), n("10.2.0.1/24"))]
        );
    }
}
