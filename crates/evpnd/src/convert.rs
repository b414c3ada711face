//! Domain ↔ wire conversion at the gRPC edge, with validation of every
//! request field (errors name the field).
use std::net::IpAddr;

use evpn_api::v1;
use evpn_model::{
    BVI_ADDRESSES_MAX, Error, Mac, RouteDistinguisher, RouteTarget, canonical_route_targets,
    parse_prefix, parse_vtep, validate_count, validate_mtu, validate_slug, validate_vni,
};
use ipnet::IpNet;

use crate::{
    config::Config,
    manager::{Handle, NewEvpn},
    state::Evpn,
};

pub fn ts(ms: u64) -> Option<pbjson_types::Timestamp> {
    (ms > 0).then(|| pbjson_types::Timestamp {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    })
}

/// Validate a CreateEvpnInstance request and fill defaults from `cfg`.
pub fn new_evpn(cfg: &Config, r: &v1::CreateEvpnInstanceRequest) -> Result<NewEvpn, Error> {
    validate_slug("slug", &r.slug)?;
    validate_vni("vni", r.vni)?;
    let mtu = if r.mtu == 0 { cfg.evpn.mtu } else { r.mtu };
    validate_mtu("mtu", mtu)?;
    let vtep: IpAddr = if r.vtep_address.is_empty() {
        cfg.evpn.vtep_address.ok_or_else(|| {
            Error::invalid(
                "vtep_address",
                "required: evpnd has no evpn.vtep-address configured",
            )
        })?
    } else {
        parse_vtep("vtep_address", &r.vtep_address)?
    };
    let rd = if r.rd.is_empty() {
        RouteDistinguisher::derived(vtep, r.vni)?
    } else {
        RouteDistinguisher::parse("rd", &r.rd)?
    }
    .to_string();
    let rts = |field: &str, v: &[String]| -> Result<Vec<String>, Error> {
        if !v.is_empty() {
            return canonical_route_targets(field, v);
        }
        // The default must not fail later under a name the caller never set.
        let d = format!("{}:{}", cfg.evpn.local_as, r.vni);
        match RouteTarget::parse(field, &d) {
            Ok(rt) => Ok(vec![rt.to_string()]),
            Err(_) => Err(Error::invalid(
                field,
                format!(
                    "empty, and the default <local-as>:<vni> {d} is not a route target \
                     (a 4-byte ASN takes a 16-bit number); set route targets"
                ),
            )),
        }
    };
    Ok(NewEvpn {
        slug: r.slug.clone(),
        vni: r.vni,
        rd,
        import_targets: rts("import_route_targets", &r.import_route_targets)?,
        export_targets: rts("export_route_targets", &r.export_route_targets)?,
        vtep,
        enabled: r.enabled.unwrap_or(true),
        mtu,
    })
}

/// Optional unicast MAC ("" = default).
pub fn opt_mac(field: &str, s: &str) -> Result<Option<Mac>, Error> {
    if s.is_empty() {
        Ok(None)
    } else {
        Mac::parse_unicast(field, s).map(Some)
    }
}

/// Optional MTU (0 = default).
pub fn opt_mtu(field: &str, v: u32) -> Result<Option<u32>, Error> {
    if v == 0 {
        Ok(None)
    } else {
        validate_mtu(field, v)?;
        Ok(Some(v))
    }
}

/// Gateway addresses of a bind request.
pub fn prefixes(field: &str, v: &[v1::Prefix]) -> Result<Vec<IpNet>, Error> {
    validate_count(field, v.len(), BVI_ADDRESSES_MAX)?;
    v.iter()
        .enumerate()
        .map(|(i, p)| parse_prefix(&format!("{field}[{i}]"), &p.address, p.prefix_len))
        .collect()
}

pub fn prefix_out(p: &IpNet) -> v1::Prefix {
    v1::Prefix {
        address: p.addr().to_string(),
        prefix_len: u32::from(p.prefix_len()),
    }
}

/// Domain eVPN → wire (protocols filled by the caller when known).
pub fn evpn_out(e: &Evpn) -> v1::EvpnInstance {
    v1::EvpnInstance {
        slug: e.slug.clone(),
        vni: e.vni,
        rd: e.rd.clone(),
        import_route_targets: e.import_targets.clone(),
        export_route_targets: e.export_targets.clone(),
        vtep_address: e.vtep.to_string(),
        enabled: e.enabled,
        bridge_domain_id: e.bd_id,
        protocols: Vec::new(),
        created_at: ts(e.created_ms),
        modified_at: ts(e.modified_ms),
        health: None,
    }
}

fn health_status_out(s: crate::health::Status) -> i32 {
    use crate::health::Status;
    match s {
        Status::Unknown => v1::Health::Unspecified,
        Status::Up => v1::Health::Ok,
        Status::Down => v1::Health::Down,
    }
    .into()
}

/// A scope's verdict → wire.
pub fn verdict_out(v: &crate::health::Verdict) -> v1::HealthVerdict {
    v1::HealthVerdict {
        status: health_status_out(v.status),
        reason: v.reason.clone(),
    }
}

/// A release's look at the host's links to the fabric (rule F15) → wire.
pub fn release_look_out(l: &crate::health_run::probe::ReleaseLook) -> v1::ReleaseEvidence {
    use v1::release_evidence::Bird;
    let bird = match l.bird_running {
        Some(false) => Bird::NotRunning,
        Some(true) => Bird::Running,
        None => Bird::Unspecified,
    };
    v1::ReleaseEvidence {
        bird: bird.into(),
        underlay: l
            .underlay
            .iter()
            .map(|(name, r)| v1::UnderlayLink {
                name: name.clone(),
                up: r.is_ok(),
                error: r.as_ref().err().cloned().unwrap_or_default(),
            })
            .collect(),
    }
}

/// The health summary → wire; `checks`: with the per-check list;
/// `disabled`: the eVPNs this host has disabled (they announce nothing,
/// even while holding their vMAC: evpnr's failover rule F12 needs them).
pub fn health_out(
    s: &crate::health::Summary,
    checks: bool,
    disabled: Vec<String>,
) -> v1::HealthSummary {
    use crate::health::Scope;
    v1::HealthSummary {
        host: Some(verdict_out(&s.host)),
        evpns: s
            .evpns
            .iter()
            .map(|(slug, v)| v1::EvpnHealth {
                slug: slug.clone(),
                health: Some(verdict_out(v)),
            })
            .collect(),
        checks: if checks {
            s.checks
                .iter()
                .map(|(id, c)| v1::HealthCheck {
                    name: id.name.clone(),
                    evpn: match &id.scope {
                        Scope::Evpn(e) => e.clone(),
                        Scope::Host => String::new(),
                    },
                    status: health_status_out(c.status),
                    last_error: c.last_error.clone(),
                    successes: c.successes,
                    failures: c.failures,
                })
                .collect()
        } else {
            Vec::new()
        },
        fenced: s.fenced.clone().unwrap_or_default(),
        generation: s.generation,
        disabled,
    }
}

/// Domain BVI → wire; `None` when the eVPN has no BVI.
/// The Linux interface (name and presence) is what the dataplane said at
/// its last read (`handle`), not derived from the slug.
pub fn bvi_out(e: &Evpn, handle: Option<&Handle>) -> Option<v1::Bvi> {
    let b = e.bvi.as_ref()?;
    let mac = b.current_mac();
    Some(v1::Bvi {
        slug: e.slug.clone(),
        interface_name: handle.and_then(|h| h.linux.clone()).unwrap_or_default(),
        mac: mac.to_string(),
        instance_mac: b.instance_mac.to_string(),
        mtu: b.mtu,
        link_local: mac.link_local().to_string(),
        role: if b.binding.is_some() {
            v1::bvi::Role::Primary
        } else {
            v1::bvi::Role::Candidate
        }
        .into(),
        group_id: b
            .binding
            .as_ref()
            .map(|x| x.group_id.clone())
            .unwrap_or_default(),
        addresses: b.current_addresses().iter().map(prefix_out).collect(),
        sw_if_index: handle.map_or(0, |h| h.index),
        linux_interface: handle.is_some_and(|h| h.linux.is_some()),
        created_at: ts(b.created_ms),
        modified_at: ts(b.modified_ms),
        settle: None,
        steps: Vec::new(),
        release_evidence: None,
    })
}

/// A heartbeat ack's watch list → domain, validated (evpnr's input).
pub fn watch_in(v: &[v1::WatchedMac]) -> Result<Vec<evpn_model::witness::WatchedMac>, Error> {
    validate_count("watch", v.len(), evpn_model::witness::WATCH_MAX)?;
    let mut out = v
        .iter()
        .map(|w| {
            evpn_model::witness::WatchedMac::new(
                "watch",
                &w.group_id,
                &w.vmac,
                &w.primary_instance_id,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}
