//! Invariant 2: every host's dataplane matches what the registry says.
//!
//! For every host `h` and every group `G` in the registry (`ListGroups`):
//! - `h` has the eVPN `G` (and its BVI) exactly when it is a member; the
//!   eVPNs of deleted groups and of memberships that ended are gone;
//! - the member that is `G`'s primary (when `G` has a GroupBVI) reports its
//!   BVI as primary with the vMAC and exactly the GroupBVI's addresses, and
//!   its simulated VPP has exactly one interface with the vMAC, carrying
//!   those addresses;
//! - every other member reports a candidate BVI with its per-host MAC and no
//!   gateway address, and no interface in its VPP carries the vMAC;
//! - the registry reports the membership as configured (`GetInstanceStatus`);
//! - an acknowledged `SetEvpnInstanceEnabled` still holds (while the
//!   membership was not re-created).
use std::collections::BTreeSet;

use evpn_api::v1;

use super::fleet::Fleet;
use super::model::{Model, prefix_key};

/// What differs between the registry and the hosts (empty: converged).
pub async fn mismatches(f: &Fleet, model: &Model) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut c = f.client(std::time::Duration::from_secs(5))?;
    let groups = c.list_groups(v1::Empty {}).await?.into_inner().groups;
    for h in &f.hosts {
        let mut d = h.client()?;
        let list = d
            .list_evpn_instances(v1::InstanceRef::default())
            .await?
            .into_inner()
            .evpn_instances;
        let evpns: BTreeSet<String> = list.iter().map(|e| e.slug.clone()).collect();
        let enabled: Vec<(String, bool)> = list.into_iter().map(|e| (e.slug, e.enabled)).collect();
        let bvis = d
            .list_bv_is(v1::InstanceRef::default())
            .await?
            .into_inner()
            .bvis;
        let vpp = h.vpp.state();
        let wanted: BTreeSet<String> = groups
            .iter()
            .filter(|g| g.members.contains(&h.id))
            .map(|g| g.group_id.clone())
            .collect();
        if evpns != wanted {
            out.push(format!(
                "{}: has eVPNs {evpns:?}, the registry wants {wanted:?}",
                h.id
            ));
        }
        for g in &groups {
            let vmac = g.vmac.to_ascii_lowercase();
            let holding: Vec<&vppsim::model::Interface> = vpp
                .interfaces
                .values()
                .filter(|i| i.mac.to_string().eq_ignore_ascii_case(&vmac))
                .collect();
            let primary = g.group_bvi.is_some() && g.primary_instance_id == h.id;
            if !wanted.contains(&g.group_id) {
                if !holding.is_empty() {
                    out.push(format!(
                        "{}: not a member of {} but its VPP carries the vMAC {vmac}",
                        h.id, g.group_id
                    ));
                }
                continue;
            }
            let want_addrs: BTreeSet<String> = g
                .group_bvi
                .iter()
                .flat_map(|b| b.addresses.iter().map(prefix_key))
                .filter(|_| primary)
                .collect();
            let Some(b) = bvis.iter().find(|b| b.slug == g.group_id) else {
                out.push(format!("{}: no BVI for group {}", h.id, g.group_id));
                continue;
            };
            let have_addrs: BTreeSet<String> = b.addresses.iter().map(prefix_key).collect();
            let (role, mac) = if primary {
                (v1::bvi::Role::Primary as i32, vmac.clone())
            } else {
                (
                    v1::bvi::Role::Candidate as i32,
                    b.instance_mac.to_ascii_lowercase(),
                )
            };
            if b.role != role || b.mac.to_ascii_lowercase() != mac || have_addrs != want_addrs {
                out.push(format!(
                    "{}: BVI of {} is role {} mac {} addresses {have_addrs:?}; the registry wants {} mac {mac} addresses {want_addrs:?}",
                    h.id,
                    g.group_id,
                    b.role,
                    b.mac,
                    if primary { "primary" } else { "candidate" }
                ));
            }
            match (primary, holding.as_slice()) {
                (false, []) => {}
                (true, [i]) => {
                    let a: BTreeSet<String> = i
                        .addresses
                        .iter()
                        .map(|p| {
                            let s = p.to_string();
                            match s.split_once('/') {
                                Some((ip, l)) => format!(
                                    "{}/{l}",
                                    ip.parse::<std::net::IpAddr>()
                                        .map(|x| x.to_string())
                                        .unwrap_or_else(|_| ip.to_string())
                                ),
                                None => s,
                            }
                        })
                        .collect();
                    if a != want_addrs {
                        out.push(format!(
                            "{}: VPP interface {} with the vMAC of {} has addresses {a:?}, the registry wants {want_addrs:?}",
                            h.id, i.sw_if_index, g.group_id
                        ));
                    }
                }
                (p, l) => out.push(format!(
                    "{}: {} VPP interfaces carry the vMAC of {} (primary here: {p})",
                    h.id,
                    l.len(),
                    g.group_id
                )),
            }
            if let Some(on) = model.enabled.get(&(h.id.clone(), g.group_id.clone()))
                && let Some((_, is)) = enabled.iter().find(|(s, _)| *s == g.group_id)
                && is != on
            {
                out.push(format!(
                    "{}: eVPN {} enabled={is}, but enabled={on} was acknowledged",
                    h.id, g.group_id
                ));
            }
        }
        let st = c
            .get_instance_status(v1::InstanceRef {
                instance_id: h.id.clone(),
            })
            .await?
            .into_inner();
        for m in st.memberships.iter().filter(|m| !m.configured) {
            out.push(format!(
                "{}: the registry reports membership {} not configured ({})",
                h.id, m.group_id, m.last_error
            ));
        }
    }
    Ok(out)
}
