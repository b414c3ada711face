//! The fabric witness (docs/failover.md, trigger 1): evpnr asks each
//! candidate of an `auto` group to watch the group's vMAC on the fabric
//! ([`WatchedMac`]); the candidate answers with what it sees
//! ([`MacWitness`]) on its heartbeats, at once on a change. Both are
//! validated here, once, by whoever receives them.
use std::{net::IpAddr, time::Duration};

use crate::{Error, Mac, validate_count, validate_instance_id, validate_slug};

/// At most this many announcers are kept per witness (a vMAC announced by
/// more VTEPs is announced: the rest adds nothing).
pub const ANNOUNCERS_MAX: usize = 64;
/// At most this many watched vMACs per member.
pub const WATCH_MAX: usize = 4096;

/// One vMAC a candidate watches for evpnr.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WatchedMac {
    /// The group; its eVPN on the member has the same slug.
    pub group: String,
    pub vmac: Mac,
    /// The group's primary: the announcer the candidate expects.
    pub primary: String,
}

impl WatchedMac {
    /// Validated from its wire fields (`prefix` names the list).
    pub fn new(prefix: &str, group: &str, vmac: &str, primary: &str) -> Result<Self, Error> {
        validate_slug(&format!("{prefix}.group_id"), group)?;
        validate_instance_id(&format!("{prefix}.primary_instance_id"), primary)?;
        Ok(WatchedMac {
            group: group.to_string(),
            vmac: Mac::parse_unicast(&format!("{prefix}.vmac"), vmac)?,
            primary: primary.to_string(),
        })
    }
}

/// What a candidate sees of one watched vMAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacWitness {
    pub watched: WatchedMac,
    /// The VTEPs that announce the vMAC now, sorted.
    pub announcers: Vec<IpAddr>,
    /// Seen announced since the watch began (for this primary), and now
    /// announced by nobody.
    pub withdrawn: bool,
    /// How long the candidate's own BGP sessions had been established when
    /// it looked; zero: its view of the fabric is not trustworthy.
    pub fabric_up: Duration,
}

impl MacWitness {
    /// Validated announcers from their wire form (`field` names them).
    pub fn announcers(field: &str, v: &[String]) -> Result<Vec<IpAddr>, Error> {
        validate_count(field, v.len(), ANNOUNCERS_MAX)?;
        let mut out = v
            .iter()
            .map(|a| {
                a.parse::<IpAddr>().map_err(|_| {
                    Error::invalid(field, format!("{} is not an IP address", crate::excerpt(a)))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watched_macs_and_announcers_are_validated_naming_the_field() {
        let ok = WatchedMac::new("watch", "web", "42:6c:fa:d6:82:98", "r1").unwrap();
        assert_eq!(ok.group, "web");
        let rows = [
            ("Web Server", "42:6c:fa:d6:82:98", "r1", "watch.group_id"),
            ("web", "01:00:5e:00:00:01", "r1", "watch.vmac"),
            ("web", "42:6c:fa:d6:82:98", "", "watch.primary_instance_id"),
        ];
        for (g, m, p, field) in rows {
            let e = WatchedMac::new("watch", g, m, p).unwrap_err().to_string();
            assert!(e.contains(field), "{g} {m} {p}: {e}");
        }
        let a = MacWitness::announcers("a", &["192.0.2.2".into(), "192.0.2.1".into()]).unwrap();
        assert_eq!(
            a,
            [
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "192.0.2.2".parse().unwrap()
            ]
        );
        let e = MacWitness::announcers("a", &["nope".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("a") && e.contains("not an IP"), "{e}");
        let many = vec!["192.0.2.1".to_string(); ANNOUNCERS_MAX + 1];
        assert!(MacWitness::announcers("a", &many).is_err());
    }
}
