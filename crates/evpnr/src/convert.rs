//! Domain ↔ wire conversion at the gRPC edge. Wire types go no deeper than
//! this module, `service.rs` and the member calls.
use std::time::SystemTime;

use evpn_api::v1;
use evpn_model::{
    Error, Mac,
    health::{HealthReport, HealthStatus, HealthVerdict},
    witness::{self, MacWitness, WatchedMac},
};
use ipnet::IpNet;

use crate::model::Liveness;
use crate::southbound::{BirdSeen, ReleaseEvidence};
use crate::{
    failover_admin::PolicyChange,
    model::{FailoverPolicy, Group, Member},
    plan::ActualBvi,
    registry::{Conn, MemberRt, MembershipStatus},
};

/// SystemTime → proto timestamp.
pub fn ts(t: SystemTime) -> pbjson_types::Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    pbjson_types::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// Domain prefix → wire prefix.
pub fn prefix_to_proto(p: &IpNet) -> v1::Prefix {
    v1::Prefix {
        address: p.addr().to_string(),
        prefix_len: u32::from(p.prefix_len()),
    }
}

/// Wire prefix → validated domain prefix (errors name `field`).
pub fn prefix_from_proto(field: &str, p: Option<&v1::Prefix>) -> Result<IpNet, Error> {
    let p = p.ok_or_else(|| Error::invalid(field, "is required"))?;
    evpn_model::parse_prefix(field, &p.address, p.prefix_len)
}

/// Wire prefix → domain prefix, syntax and length only (no address-class
/// rules): for naming an address to remove.
pub fn prefix_syntax_from_proto(field: &str, p: Option<&v1::Prefix>) -> Result<IpNet, Error> {
    let p = p.ok_or_else(|| Error::invalid(field, "is required"))?;
    evpn_model::addr::parse_prefix_syntax(field, &p.address, p.prefix_len)
}

/// A member's BVI (as it reports it) → the resync's view. A malformed
/// answer is an error naming the member.
pub fn bvi_from_proto(id: &str, b: v1::Bvi) -> Result<ActualBvi, Error> {
    let bad = |what: &str, e: String| {
        Error::Internal(format!(
            "member {id} reported a bad BVI {}: {what}: {e}",
            evpn_model::excerpt(&b.slug)
        ))
    };
    let mac: Mac = b.mac.parse().map_err(|e| bad("mac", e))?;
    let instance_mac: Mac = if b.instance_mac.is_empty() {
        mac
    } else {
        b.instance_mac.parse().map_err(|e| bad("instance_mac", e))?
    };
    let mut addresses = Vec::new();
    for p in &b.addresses {
        let ip: std::net::IpAddr = p
            .address
            .parse()
            .map_err(|_| bad("addresses", evpn_model::excerpt(&p.address)))?;
        let n = u8::try_from(p.prefix_len)
            .ok()
            .and_then(|l| IpNet::new(ip, l).ok())
            .ok_or_else(|| bad("addresses", format!("/{}", p.prefix_len)))?;
        addresses.push(n);
    }
    Ok(ActualBvi {
        primary: b.role == v1::bvi::Role::Primary as i32,
        slug: b.slug,
        mac,
        instance_mac,
        mtu: b.mtu,
        addresses,
    })
}

/// Domain group → wire group.
pub fn group_to_proto(g: &Group) -> v1::Group {
    v1::Group {
        group_id: g.id.clone(),
        vni: g.vni,
        import_route_targets: g.import_rts.clone(),
        export_route_targets: g.export_rts.clone(),
        mtu: g.mtu,
        vmac: g.vmac.to_string(),
        members: g.members.iter().cloned().collect(),
        primary_instance_id: g.primary.clone().unwrap_or_default(),
        group_bvi: g.bvi.as_ref().map(|b| v1::GroupBvi {
            mac: g.vmac.to_string(),
            addresses: b.addresses.iter().map(prefix_to_proto).collect(),
            created_at: Some(ts(b.created_at)),
            modified_at: Some(ts(b.modified_at)),
        }),
        created_at: Some(ts(g.created_at)),
        modified_at: Some(ts(g.modified_at)),
        failover: Some(policy_to_proto(&g.failover)),
        member_priorities: g
            .members
            .iter()
            .map(|m| v1::MemberPriority {
                instance_id: m.clone(),
                priority: g.priority(m),
            })
            .collect(),
        // GetGroup fills it (the driver's view, not the record).
        member_failover: Vec::new(),
    }
}

/// Domain failover policy → wire.
pub fn policy_to_proto(p: &FailoverPolicy) -> v1::FailoverPolicy {
    v1::FailoverPolicy {
        mode: crate::failover_admin::mode(p).to_string(),
        preempt_ms: p.preempt_ms,
        hold_down_ms: p.hold_down_ms,
        flap_window_ms: p.flap_window_ms,
        flap_limit: p.flap_limit,
        warm_up_ms: p.warm_up_ms,
    }
}

/// Wire SetGroupFailover → a policy change (the mode and the preemption
/// fields checked here, the bounds by `PolicyChange::apply`).
pub fn policy_change_from_proto(r: &v1::SetGroupFailoverRequest) -> Result<PolicyChange, Error> {
    let ms = std::time::Duration::from_millis;
    let auto = match r.mode.as_str() {
        "" => None,
        "auto" => Some(true),
        "manual" => Some(false),
        m => {
            return Err(Error::invalid(
                "mode",
                format!("must be auto or manual, got {:?}", evpn_model::excerpt(m)),
            ));
        }
    };
    let preempt = match (r.preempt_ms, r.preempt_off) {
        (Some(_), true) => {
            return Err(Error::invalid(
                "preempt_off",
                "cannot be set together with preempt_ms",
            ));
        }
        (Some(d), false) => Some(Some(ms(d))),
        (None, true) => Some(None),
        (None, false) => None,
    };
    Ok(PolicyChange {
        auto,
        preempt,
        hold_down: r.hold_down_ms.map(ms),
        flap_window: r.flap_window_ms.map(ms),
        flap_limit: r.flap_limit,
        warm_up: r.warm_up_ms.map(ms),
    })
}

fn state_to_proto(c: Conn) -> v1::instance::State {
    match c {
        Conn::Connecting => v1::instance::State::Connecting,
        Conn::Connected => v1::instance::State::Connected,
        Conn::Unreachable => v1::instance::State::Unreachable,
    }
}

/// Domain member (+ run-time state) → wire instance.
pub fn instance_to_proto(m: &Member, rt: Option<&MemberRt>, groups: Vec<String>) -> v1::Instance {
    v1::Instance {
        instance_id: m.id.clone(),
        grpc_address: m.grpc_address.clone(),
        state: rt.map_or(v1::instance::State::Unspecified, |r| state_to_proto(r.conn)) as i32,
        ready: rt.is_some_and(|r| r.ready),
        version: m.version.clone(),
        registered_at: Some(ts(m.registered_at)),
        last_seen: rt.and_then(|r| r.last_seen).map(ts),
        groups,
        last_error: rt.map(|r| r.last_error.clone()).unwrap_or_default(),
        liveness: rt.map_or(v1::instance::Liveness::Unspecified, |r| {
            liveness_to_proto(r.liveness)
        }) as i32,
        heartbeat_age: rt
            .and_then(|r| r.last_heartbeat)
            .map(|t| evpn_daemon::settle::duration_out(t.elapsed())),
    }
}

fn liveness_to_proto(l: Liveness) -> v1::instance::Liveness {
    match l {
        Liveness::Unknown => v1::instance::Liveness::Unspecified,
        Liveness::Alive => v1::instance::Liveness::Alive,
        Liveness::Suspect => v1::instance::Liveness::Suspect,
        Liveness::Dead => v1::instance::Liveness::Dead,
    }
}

/// One membership's status → wire.
pub fn membership_to_proto(
    group: &str,
    primary: bool,
    s: Option<&MembershipStatus>,
) -> v1::MemberStatus {
    v1::MemberStatus {
        group_id: group.to_string(),
        primary,
        configured: s.is_some_and(|s| s.configured),
        last_error: s.map(|s| s.last_error.clone()).unwrap_or_default(),
        last_resync: s.and_then(|s| s.last_resync).map(ts),
    }
}

fn health_status_in(s: i32) -> HealthStatus {
    match v1::Health::try_from(s) {
        Ok(v1::Health::Ok) => HealthStatus::Up,
        Ok(v1::Health::Down) => HealthStatus::Down,
        _ => HealthStatus::Unknown,
    }
}

fn health_status_out(s: HealthStatus) -> i32 {
    match s {
        HealthStatus::Unknown => v1::Health::Unspecified,
        HealthStatus::Up => v1::Health::Ok,
        HealthStatus::Down => v1::Health::Down,
    }
    .into()
}

fn verdict_in(v: Option<&v1::HealthVerdict>) -> HealthVerdict {
    v.map(|v| HealthVerdict {
        status: health_status_in(v.status),
        reason: cut(&v.reason),
    })
    .unwrap_or_default()
}

fn verdict_out(v: &HealthVerdict) -> v1::HealthVerdict {
    v1::HealthVerdict {
        status: health_status_out(v.status),
        reason: v.reason.clone(),
    }
}

/// A member's text, kept to at most 512 characters.
fn cut(s: &str) -> String {
    s.chars().take(512).collect()
}

/// A heartbeat's health → domain (texts cut to 512 characters, at most
/// 4096 eVPNs: it is the member's input).
pub fn health_in(h: &v1::HealthSummary) -> HealthReport {
    HealthReport {
        host: verdict_in(h.host.as_ref()),
        evpns: h
            .evpns
            .iter()
            .take(4096)
            .map(|e| (cut(&e.slug), verdict_in(e.health.as_ref())))
            .collect(),
        fenced: cut(&h.fenced),
        generation: h.generation,
        disabled: h.disabled.iter().take(4096).map(|s| cut(s)).collect(),
    }
}

/// Tracked underlay interfaces a release's evidence may name; past it the
/// evidence counts as an interface that is not up.
const UNDERLAY_MAX: usize = 256;

/// A release's evidence (rule F15) → domain (the member's input; names cut
/// to 512 characters). An unknown BIRD value is unknown; more than
/// [`UNDERLAY_MAX`] interfaces count as one that is not up (no evidence).
pub fn release_evidence_in(e: &v1::ReleaseEvidence) -> ReleaseEvidence {
    use v1::release_evidence::Bird;
    let bird = match Bird::try_from(e.bird) {
        Ok(Bird::NotRunning) => BirdSeen::NotRunning,
        Ok(Bird::Running) => BirdSeen::Running,
        _ => BirdSeen::Unknown,
    };
    let mut underlay: Vec<(String, bool)> = e
        .underlay
        .iter()
        .take(UNDERLAY_MAX)
        .map(|l| (cut(&l.name), l.up))
        .collect();
    if e.underlay.len() > UNDERLAY_MAX {
        underlay.push((format!("({} more)", e.underlay.len() - UNDERLAY_MAX), false));
    }
    ReleaseEvidence { bird, underlay }
}

/// A heartbeat's witnesses → domain, validated (the member's input).
pub fn witnesses_in(v: &[v1::MacWitness]) -> Result<Vec<MacWitness>, Error> {
    evpn_model::validate_count("witnesses", v.len(), witness::WATCH_MAX)?;
    v.iter()
        .map(|w| {
            Ok(MacWitness {
                watched: WatchedMac::new(
                    "witnesses",
                    &w.group_id,
                    &w.vmac,
                    &w.primary_instance_id,
                )?,
                announcers: MacWitness::announcers("witnesses.announcers", &w.announcers)?,
                withdrawn: w.withdrawn,
                fabric_up: std::time::Duration::from_millis(w.fabric_up_ms),
            })
        })
        .collect()
}

/// The vMACs a member is to watch → wire (HeartbeatAck.watch).
pub fn watch_out(v: &[WatchedMac]) -> Vec<v1::WatchedMac> {
    v.iter()
        .map(|w| v1::WatchedMac {
            group_id: w.group.clone(),
            vmac: w.vmac.to_string(),
            primary_instance_id: w.primary.clone(),
        })
        .collect()
}

/// A stored health report → wire (GetInstanceStatus).
pub fn health_out(h: &HealthReport) -> v1::HealthSummary {
    v1::HealthSummary {
        host: Some(verdict_out(&h.host)),
        evpns: h
            .evpns
            .iter()
            .map(|(slug, v)| v1::EvpnHealth {
                slug: slug.clone(),
                health: Some(verdict_out(v)),
            })
            .collect(),
        checks: Vec::new(),
        fenced: h.fenced.clone(),
        generation: h.generation,
        disabled: h.disabled.iter().cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_round_trip_and_are_validated() {
        let p = v1::Prefix {
            address: "fec0::32".into(),
            prefix_len: 64,
        };
        let n = prefix_from_proto("address", Some(&p)).unwrap();
        assert_eq!(prefix_to_proto(&n), p);
        let e = prefix_from_proto(
            "address",
            Some(&v1::Prefix {
                address: "224.0.0.1".into(),
                prefix_len: 24,
            }),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("invalid address"), "{e}");
        assert!(prefix_from_proto("address", None).is_err());
    }

    #[test]
    fn bvi_role_and_macs() {
        let b = v1::Bvi {
            slug: "test".into(),
            mac: "42:6c:fa:d6:82:98".into(),
            instance_mac: "02:00:00:00:00:01".into(),
            role: v1::bvi::Role::Primary as i32,
            addresses: vec![v1::Prefix {
                address: "172.16.0.32".into(),
                prefix_len: 24,
            }],
            mtu: 1500,
            ..Default::default()
        };
        let a = bvi_from_proto("a", b).unwrap();
        assert!(a.primary);
        assert_eq!(a.addresses[0].to_string(), "172.16.0.32/24");
        let bad = v1::Bvi {
            mac: "zz".into(),
            ..Default::default()
        };
        assert!(bvi_from_proto("a", bad).is_err());
    }

    /// A release's evidence from the member (F15): an unknown BIRD value is
    /// unknown, and a list cut for its length never looks all up.
    #[test]
    fn release_evidence_from_the_member() {
        let link = |up| v1::UnderlayLink {
            name: "eth0".into(),
            up,
            error: String::new(),
        };
        let e = release_evidence_in(&v1::ReleaseEvidence {
            bird: v1::release_evidence::Bird::NotRunning as i32,
            underlay: vec![link(true)],
        });
        assert_eq!(e.bird, BirdSeen::NotRunning);
        assert_eq!(e.underlay, vec![("eth0".to_string(), true)]);
        let e = release_evidence_in(&v1::ReleaseEvidence {
            bird: 99,
            underlay: vec![],
        });
        assert_eq!(e.bird, BirdSeen::Unknown);
        let e = release_evidence_in(&v1::ReleaseEvidence {
            bird: v1::release_evidence::Bird::NotRunning as i32,
            underlay: vec![link(true); UNDERLAY_MAX + 1],
        });
        assert_eq!(e.underlay.len(), UNDERLAY_MAX + 1);
        assert!(!e.underlay.iter().all(|(_, up)| *up));
    }
}
