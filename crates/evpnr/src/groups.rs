//! Group and instance operations: CRUD on groups, membership, MTU, the
//! GroupBVI and its addresses, registration and deletion of instances. Each
//! group operation holds the group's lock; changes are persisted before the
//! members are told (so a crash at any moment converges through resync), and
//! every change emits one log line and one event.
use std::{sync::Arc, time::SystemTime};

use evpn_daemon::events::{EventKind, EventLevel};
use evpn_model::{Error, Mac, error::Object};
use ipnet::IpNet;

use crate::{
    model::{Group, GroupBvi, Member, generate_vmac},
    registry::Registry,
};

/// A validated CreateGroup request.
#[derive(Debug, Clone)]
pub struct NewGroup {
    pub id: String,
    pub vni: u32,
    pub mtu: u32,
    pub vmac: Option<Mac>,
    pub import_rts: Vec<String>,
    pub export_rts: Vec<String>,
}

fn touch(g: &mut Group) {
    g.modified_at = SystemTime::now();
}

impl Registry {
    /// CreateGroup.
    pub fn create_group(&self, n: NewGroup) -> Result<Group, Error> {
        let now = SystemTime::now();
        let g = self.mutate(|s| {
            if s.groups.contains_key(&n.id) {
                return Err(Error::exists(Object::Group, &n.id));
            }
            if s.groups.values().any(|g| g.vni == n.vni) {
                return Err(Error::FailedPrecondition(format!(
                    "vni {} is used by another group",
                    n.vni
                )));
            }
            let g = Group {
                id: n.id.clone(),
                vni: n.vni,
                import_rts: n.import_rts.clone(),
                export_rts: n.export_rts.clone(),
                mtu: n.mtu,
                vmac: n.vmac.unwrap_or_else(|| generate_vmac(&n.id, now)),
                members: Default::default(),
                primary: None,
                holders: Default::default(),
                bvi: None,
                created_at: now,
                modified_at: now,
            };
            s.groups.insert(n.id.clone(), g.clone());
            Ok(g)
        })?;
        let (vni, mtu, vmac) = (g.vni.to_string(), g.mtu.to_string(), g.vmac.to_string());
        self.emit(
            EventKind::Crud,
            EventLevel::Info,
            "group-created",
            &[
                ("group", &g.id),
                ("vni", &vni),
                ("mtu", &mtu),
                ("vmac", &vmac),
            ],
        );
        Ok(g)
    }

    /// DeleteGroup: forget the group, then every reachable member leaves it
    /// (release first, then its eVPN and BVI are deleted). Members that
    /// cannot be reached leave on their next resync.
    pub async fn delete_group(self: &Arc<Self>, id: &str) -> Result<(), Error> {
        let gl = self.group_lock(id);
        let _g = gl.lock().await;
        let g = self.mutate(|s| {
            s.groups
                .remove(id)
                .ok_or_else(|| Error::not_found(Object::Group, id))
        })?;
        let leaves = g.members.iter().map(|m| {
            let reg = self.clone();
            async move {
                let ml = reg.member_lock(m);
                let _m = ml.lock().await;
                let r = reg.delete_evpn(m, id).await;
                (m.clone(), r)
            }
        });
        let mut deferred = Vec::new();
        for (m, r) in futures::future::join_all(leaves).await {
            if let Err(e) = r {
                self.emit(
                    EventKind::Crud,
                    EventLevel::Warn,
                    "member-leave-deferred",
                    &[("group", id), ("instance", &m), ("error", &e.to_string())],
                );
                deferred.push(m);
            }
        }
        self.emit(
            EventKind::Crud,
            EventLevel::Info,
            "group-deleted",
            &[("group", id), ("deferred", &deferred.join(","))],
        );
        Ok(())
    }

    /// AddGroupMember: the member joins (eVPN, BVI, bind if primary). On
    /// failure the member is rolled back and the membership removed again.
    pub async fn add_member(self: &Arc<Self>, group: &str, id: &str) -> Result<Group, Error> {
        let gl = self.group_lock(group);
        let _g = gl.lock().await;
        self.group(group)?;
        if !self.read(|i| i.state.members.contains_key(id)) {
            return Err(Error::not_found(Object::Instance, id));
        }
        self.require_ready(id)?;
        self.mutate(|s| {
            let g = s
                .groups
                .get_mut(group)
                .ok_or_else(|| Error::not_found(Object::Group, group))?;
            if !g.members.insert(id.to_string()) {
                return Err(Error::exists(Object::Member, id));
            }
            touch(g);
            Ok(())
        })?;
        let ml = self.member_lock(id);
        let _m = ml.lock().await;
        let r = self.converge(id, Some(group)).await;
        self.mark_membership(id, group, r.as_ref().err().map(ToString::to_string));
        if let Err(e) = r {
            // `configure` rolled the member back; undo the membership.
            let _ = self.mutate(|s| {
                if let Some(g) = s.groups.get_mut(group) {
                    g.members.remove(id);
                    touch(g);
                }
                Ok(())
            });
            self.emit(
                EventKind::Crud,
                EventLevel::Error,
                "group-member-add-failed",
                &[
                    ("group", group),
                    ("instance", id),
                    ("error", &e.to_string()),
                ],
            );
            return Err(e);
        }
        self.emit(
            EventKind::Crud,
            EventLevel::Info,
            "group-member-added",
            &[("group", group), ("instance", id)],
        );
        self.group(group)
    }

    /// RemoveGroupMember: leave the group (released first if primary, the
    /// GroupBVI becomes unassigned). A member that cannot be reached leaves
    /// on its next resync; until then it stays a possible holder of the vMAC.
    pub async fn remove_member(self: &Arc<Self>, group: &str, id: &str) -> Result<Group, Error> {
        let gl = self.group_lock(group);
        let _g = gl.lock().await;
        let was_primary = self.mutate(|s| {
            let g = s
                .groups
                .get_mut(group)
                .ok_or_else(|| Error::not_found(Object::Group, group))?;
            if !g.members.remove(id) {
                return Err(Error::not_found(Object::Member, id));
            }
            let p = g.primary.as_deref() == Some(id);
            if p {
                g.primary = None;
            }
            touch(g);
            Ok(p)
        })?;
        let ml = self.member_lock(id);
        let _m = ml.lock().await;
        let left = async {
            self.release_on(id, group, false).await?;
            self.delete_evpn(id, group).await
        }
        .await;
        let p = was_primary.to_string();
        match left {
            Ok(()) => self.emit(
                EventKind::Crud,
                EventLevel::Info,
                "group-member-removed",
                &[("group", group), ("instance", id), ("was-primary", &p)],
            ),
            Err(e) => self.emit(
                EventKind::Crud,
                EventLevel::Warn,
                "group-member-removed",
                &[
                    ("group", group),
                    ("instance", id),
                    ("was-primary", &p),
                    ("deferred-error", &e.to_string()),
                ],
            ),
        }
        if was_primary {
            self.emit(
                EventKind::Failover,
                EventLevel::Warn,
                "groupbvi-unassigned",
                &[("group", group), ("instance", id)],
            );
        }
        self.group(group)
    }

    /// SetGroupMTU: persist, then apply to every member concurrently. A
    /// member that fails is reported (UNAVAILABLE) and converges on resync.
    pub async fn set_mtu(self: &Arc<Self>, group: &str, mtu: u32) -> Result<Group, Error> {
        let gl = self.group_lock(group);
        let _g = gl.lock().await;
        let g = self.mutate(|s| {
            let g = s
                .groups
                .get_mut(group)
                .ok_or_else(|| Error::not_found(Object::Group, group))?;
            g.mtu = mtu;
            touch(g);
            Ok(g.clone())
        })?;
        let mtu_s = mtu.to_string();
        self.emit(
            EventKind::Crud,
            EventLevel::Info,
            "group-mtu-set",
            &[("group", group), ("mtu", &mtu_s)],
        );
        self.apply_to_members(&g).await?;
        self.group(group)
    }

    /// Converge every member of `g` on this group only (each under its own
    /// member lock, concurrently); errors name the members that failed.
    async fn apply_to_members(self: &Arc<Self>, g: &Group) -> Result<(), Error> {
        let runs = g.members.iter().map(|m| {
            let reg = self.clone();
            let group = g.id.clone();
            async move {
                let ml = reg.member_lock(m);
                let _m = ml.lock().await;
                (m.clone(), reg.converge(m, Some(&group)).await)
            }
        });
        all_members(runs, "applied on every member").await
    }

    /// CreateGroupBVI: the gateway identity, unbound.
    pub async fn create_bvi(
        self: &Arc<Self>,
        group: &str,
        addrs: Vec<IpNet>,
    ) -> Result<Group, Error> {
        let gl = self.group_lock(group);
        let _g = gl.lock().await;
        let g = self.mutate(|s| {
            let g = s
                .groups
                .get_mut(group)
                .ok_or_else(|| Error::not_found(Object::Group, group))?;
            if g.bvi.is_some() {
                return Err(Error::exists(Object::GroupBvi, group));
            }
            let now = SystemTime::now();
            g.bvi = Some(GroupBvi {
                addresses: dedup(addrs),
                created_at: now,
                modified_at: now,
            });
            touch(g);
            Ok(g.clone())
        })?;
        let a = addresses(&g);
        let vmac = g.vmac.to_string();
        self.emit(
            EventKind::Crud,
            EventLevel::Info,
            "groupbvi-created",
            &[("group", group), ("vmac", &vmac), ("addresses", &a)],
        );
        Ok(g)
    }

    /// DeleteGroupBVI: released on every holder, then forgotten.
    pub async fn delete_bvi(self: &Arc<Self>, group: &str) -> Result<Group, Error> {
        let gl = self.group_lock(group);
        let _g = gl.lock().await;
        let g = self.mutate(|s| {
            let g = s
                .groups
                .get_mut(group)
                .ok_or_else(|| Error::not_found(Object::Group, group))?;
            if g.bvi.is_none() {
                return Err(Error::not_found(Object::GroupBvi, group));
            }
            g.bvi = None;
            g.primary = None;
            touch(g);
            Ok(g.clone())
        })?;
        self.emit(
            EventKind::Crud,
            EventLevel::Info,
            "groupbvi-deleted",
            &[("group", group)],
        );
        self.release_holders(&g).await?;
        self.group(group)
    }

    async fn release_holders(self: &Arc<Self>, g: &Group) -> Result<(), Error> {
        let runs = g.holders.iter().map(|h| {
            let reg = self.clone();
            let group = g.id.clone();
            async move {
                let ml = reg.member_lock(h);
                let _m = ml.lock().await;
                (h.clone(), reg.release_on(h, &group, false).await)
            }
        });
        all_members(runs, "released everywhere").await
    }

    /// AddGroupBVIAddress / DeleteGroupBVIAddress: persisted, then applied
    /// live on the primary (a repeated bind converges its addresses).
    pub async fn change_address(
        self: &Arc<Self>,
        group: &str,
        addr: IpNet,
        add: bool,
    ) -> Result<Group, Error> {
        let gl = self.group_lock(group);
        let _g = gl.lock().await;
        let g = self.mutate(|s| {
            let g = s
                .groups
                .get_mut(group)
                .ok_or_else(|| Error::not_found(Object::Group, group))?;
            let now = SystemTime::now();
            let b = g
                .bvi
                .as_mut()
                .ok_or_else(|| Error::not_found(Object::GroupBvi, group))?;
            let has = b.addresses.contains(&addr);
            match (add, has) {
                (true, true) => return Err(Error::exists(Object::Address, addr.to_string())),
                (false, false) => return Err(Error::not_found(Object::Address, addr.to_string())),
                (true, false) if b.addresses.len() >= evpn_model::BVI_ADDRESSES_MAX => {
                    return Err(Error::invalid(
                        "address",
                        format!(
                            "the GroupBVI has {} addresses already, the most allowed",
                            b.addresses.len()
                        ),
                    ));
                }
                (true, false) => b.addresses.push(addr),
                (false, true) => b.addresses.retain(|a| *a != addr),
            }
            b.modified_at = now;
            g.modified_at = now;
            Ok(g.clone())
        })?;
        let a = addr.to_string();
        self.emit(
            EventKind::Crud,
            EventLevel::Info,
            if add {
                "groupbvi-address-added"
            } else {
                "groupbvi-address-deleted"
            },
            &[("group", group), ("address", &a)],
        );
        if let Some(p) = &g.primary {
            let ml = self.member_lock(p);
            let _m = ml.lock().await;
            self.bind_if_primary(p, group).await?;
        }
        self.group(group)
    }

    /// RegisterInstance: store (or update) the member, dial it, watch its
    /// events; a resync follows once it is connected and ready. Returns
    /// (registered_at, new_instance).
    pub fn register(
        self: &Arc<Self>,
        id: &str,
        addr: &str,
        version: &str,
        ready: bool,
    ) -> Result<(SystemTime, bool), Error> {
        let now = SystemTime::now();
        // Validate the address before anything is stored.
        crate::members::client(addr, self.cfg().member_timeout.0)?;
        let (new, changed) = self.mutate(|s| {
            let old = s.members.get(id).cloned();
            let m = Member {
                id: id.to_string(),
                grpc_address: addr.to_string(),
                version: version.to_string(),
                registered_at: old.as_ref().map_or(now, |o| o.registered_at),
            };
            let changed = old.as_ref() != Some(&m);
            s.members.insert(id.to_string(), m);
            Ok((old.is_none(), changed))
        })?;
        let same_addr = !new && !changed;
        let alive = self.read(|i| i.rt.contains_key(id));
        if same_addr && alive {
            // A heartbeat re-registration: keep the connection and watcher.
            self.with_rt(id, |rt| rt.ready = ready);
            if ready {
                self.trigger_resync(id);
            }
            return Ok((now, false));
        }
        self.attach(id, addr, ready)?;
        let (n, r) = (new.to_string(), ready.to_string());
        self.emit(
            EventKind::Crud,
            EventLevel::Info,
            "instance-registered",
            &[
                ("instance", id),
                ("address", addr),
                ("new", &n),
                ("ready", &r),
                ("version", version),
            ],
        );
        Ok((now, new))
    }

    /// ReportReady.
    pub fn report_ready(self: &Arc<Self>, id: &str, ready: bool) -> Result<(), Error> {
        let was = self
            .with_rt(id, |rt| std::mem::replace(&mut rt.ready, ready))
            .ok_or_else(|| Error::not_found(Object::Instance, id))?;
        if was != ready {
            self.emit(
                EventKind::Crud,
                EventLevel::Info,
                if ready {
                    "instance-ready"
                } else {
                    "instance-not-ready"
                },
                &[("instance", id)],
            );
        }
        if ready {
            self.trigger_resync(id);
        }
        Ok(())
    }

    /// DeleteInstance: leave every group (if reachable), then forget it.
    pub async fn delete_instance(self: &Arc<Self>, id: &str) -> Result<(), Error> {
        if !self.read(|i| i.state.members.contains_key(id)) {
            return Err(Error::not_found(Object::Instance, id));
        }
        for group in self.read(|i| i.state.groups_of(id)) {
            if let Err(e) = self.remove_member(&group, id).await {
                tracing::warn!(group, instance = id, error = %e, "instance-leave-failed");
            }
        }
        self.mutate(|s| {
            s.members.remove(id);
            Ok(())
        })?;
        self.detach(id);
        self.emit(
            EventKind::Crud,
            EventLevel::Info,
            "instance-deleted",
            &[("instance", id)],
        );
        Ok(())
    }
}

fn dedup(mut v: Vec<IpNet>) -> Vec<IpNet> {
    let mut seen = std::collections::BTreeSet::new();
    v.retain(|a| seen.insert(*a));
    v
}

fn addresses(g: &Group) -> String {
    g.bvi
        .as_ref()
        .map(|b| {
            b.addresses
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Run per-member operations concurrently; an error lists every member that
/// failed ("saved, but not <what>"; resync retries them).
async fn all_members<F, T>(runs: impl IntoIterator<Item = F>, what: &str) -> Result<(), Error>
where
    F: std::future::Future<Output = (String, Result<T, Error>)>,
{
    let failed: Vec<String> = futures::future::join_all(runs)
        .await
        .into_iter()
        .filter_map(|(m, r)| r.err().map(|e| format!("{m}: {e}")))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Unavailable(format!(
            "saved, but not {what} (resync retries): {}",
            failed.join("; ")
        )))
    }
}
