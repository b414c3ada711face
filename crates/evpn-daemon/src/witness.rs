//! The wire form of a candidate's fabric-witness reports (trigger 1 of
//! the failover, docs/failover.md), converted here and only here: evpnd
//! sends them with its heartbeats, evpnr shows them in its reads.
use evpn_api::v1;
use evpn_model::witness::MacWitness;

/// Witness reports → wire (`HeartbeatRequest.witnesses`,
/// `InstanceStatus.witnesses`).
pub fn witnesses_out(v: &[MacWitness]) -> Vec<v1::MacWitness> {
    v.iter()
        .map(|w| v1::MacWitness {
            group_id: w.watched.group.clone(),
            vmac: w.watched.vmac.to_string(),
            primary_instance_id: w.watched.primary.clone(),
            announcers: w.announcers.iter().map(|a| a.to_string()).collect(),
            withdrawn: w.withdrawn,
            fabric_up_ms: w.fabric_up.as_millis() as u64,
        })
        .collect()
}
