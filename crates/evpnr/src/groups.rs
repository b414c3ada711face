//! Group and instance operations: CRUD on groups, membership, MTU, the
//! GroupBVI and its addresses, registration and deletion of instances. Each
//! group operation holds the group's lock; changes are persisted before the
//! members are told (so a crash at any moment converges through resync), and
//! every change emits one log line and one event.
use std::{sync::Arc, time::SystemTime};

use evpn_daemon::events::Event;
use evpn_model::{Error, Mac, error::Object};
use ipnet::IpNet;

use crate::{
    group::{driver::Drive, machine::Input},
    model::{Group, GroupBvi, generate_vmac},
    orchestrate::Scope,
    registry::Registry,
    rules,
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
                failover: Default::default(),
                priorities: Default::default(),
            };
            rules::check_macs(s, &g, "vmac")?;
            s.groups.insert(n.id.clone(), g.clone());
            Ok(g)
        })?;
        let (vni, mtu, vmac) = (g.vni.to_string(), g.mtu.to_string(), g.vmac.to_string());
        self.emit(
            Event::GroupCreated,
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
        self.gateway_down(&g, "group-deleted");
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
                    Event::MemberLeaveDeferred,
                    &[("group", id), ("instance", &m), ("error", &e.to_string())],
                );
                deferred.push(m);
            }
        }
        self.emit(
            Event::GroupDeleted,
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
            // The joining member's per-host MAC must be unique where it can
            // meet, and its FIB must be able to hold this GroupBVI next to
            // those of its other groups.
            let g = g.clone();
            rules::check_macs(s, &g, "instance_id")?;
            let joining = [id.to_string()].into();
            let addrs = g.bvi.as_ref().map_or(&[][..], |b| &b.addresses[..]);
            rules::check_shared_members(s, group, &joining, addrs, "instance_id")?;
            Ok(())
        })?;
        let ml = self.member_lock(id);
        let _m = ml.lock().await;
        let r = self.converge(id, Scope::Locked(group)).await;
        self.mark_membership(id, group, r.as_ref().err().map(ToString::to_string));
        if let Err(e) = r {
            // `configure` rolled the member back; undo the membership. If
            // that cannot be saved it is still undone in memory, and the
            // store's retry loop saves it.
            let undo = |s: &mut crate::model::State| {
                if let Some(g) = s.groups.get_mut(group) {
                    g.members.remove(id);
                    touch(g);
                }
            };
            if let Err(err) = self.mutate(|s| {
                undo(s);
                Ok(())
            }) {
                tracing::error!(group, instance = id, error = %err, "member-add-undo-not-persisted");
                self.mutate_mem(undo);
            }
            self.emit(
                Event::GroupMemberAddFailed,
                &[
                    ("group", group),
                    ("instance", id),
                    ("error", &e.to_string()),
                ],
            );
            return Err(e);
        }
        self.emit(
            Event::GroupMemberAdded,
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
        let before = self.group(group)?;
        let was_primary = before.primary.as_deref() == Some(id);
        let input = Input::Leave {
            member: id.to_string(),
            cause: "primary-removed",
        };
        let left = match self.drive(group, input, Drive::default()).await {
            // Not a member, or the change could not be saved: nothing
            // changed.
            Err(e) if !before.members.contains(id) || self.group(group)?.members.contains(id) => {
                return Err(e);
            }
            // Left, but not released: its resync finishes it.
            Err(e) => Err(e),
            Ok(_) => {
                let ml = self.member_lock(id);
                let _m = ml.lock().await;
                self.delete_evpn(id, group).await
            }
        };
        let p = was_primary.to_string();
        match left {
            Ok(()) => self.emit(
                Event::GroupMemberRemoved,
                &[("group", group), ("instance", id), ("was-primary", &p)],
            ),
            Err(e) => self.emit(
                Event::GroupMemberRemovedDeferred,
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
                Event::GroupBviUnassigned,
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
        self.emit(Event::GroupMtuSet, &[("group", group), ("mtu", &mtu_s)]);
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
                (m.clone(), reg.converge(m, Scope::Locked(&group)).await)
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
            rules::check_address_set("addresses", &addrs)?;
            // The gateway identity comes into use: its vMAC must be unique
            // where it can meet (a state stored before this rule may not be).
            let current = g.clone();
            rules::check_macs(s, &current, "group_id")?;
            rules::check_shared_members(s, group, &current.members, &addrs, "addresses")?;
            let g = s
                .groups
                .get_mut(group)
                .ok_or_else(|| Error::not_found(Object::Group, group))?;
            let now = SystemTime::now();
            g.bvi = Some(GroupBvi {
                addresses: addrs,
                created_at: now,
                modified_at: now,
            });
            touch(g);
            Ok(g.clone())
        })?;
        let a = crate::model::addresses(&g);
        let vmac = g.vmac.to_string();
        self.emit(
            Event::GroupBviCreated,
            &[("group", group), ("vmac", &vmac), ("addresses", &a)],
        );
        Ok(g)
    }

    /// DeleteGroupBVI: forgotten (durably, `gateway-down` if it had a
    /// primary), then released on every possible holder.
    pub async fn delete_bvi(self: &Arc<Self>, group: &str) -> Result<Group, Error> {
        let gl = self.group_lock(group);
        let _g = gl.lock().await;
        self.drive(group, Input::DeleteBvi, Drive::default())
            .await?;
        self.group(group)
    }

    /// AddGroupBVIAddress / DeleteGroupBVIAddress. The new address set is
    /// checked whole (no duplicate, no overlap on the one interface, no
    /// overlap with a GroupBVI of another group on a shared member), then
    /// applied on the primary, and stored only once the primary accepted it
    /// (under the primary's lock, so a resync cannot undo it in between):
    /// a primary's refusal changes nothing anywhere. A primary that cannot
    /// be reached does not refuse: the change is stored and applied by its
    /// resync (UNAVAILABLE "saved, but not applied").
    pub async fn change_address(
        self: &Arc<Self>,
        group: &str,
        addr: IpNet,
        add: bool,
    ) -> Result<Group, Error> {
        let gl = self.group_lock(group);
        let _g = gl.lock().await;
        let g = self.group(group)?;
        let b = g
            .bvi
            .as_ref()
            .ok_or_else(|| Error::not_found(Object::GroupBvi, group))?;
        let next = rules::edit_address_set("address", &b.addresses, addr, add)?;
        if next.len() > evpn_model::BVI_ADDRESSES_MAX {
            return Err(Error::invalid(
                "address",
                format!(
                    "the GroupBVI has {} addresses already, the most allowed",
                    b.addresses.len()
                ),
            ));
        }
        if add {
            self.read(|i| {
                rules::check_shared_members(&i.state, group, &g.members, &[addr], "address")
            })?;
        }
        let a = addr.to_string();
        let mut deferred = None;
        let ml = g.primary.as_deref().map(|p| self.member_lock(p));
        let _m = match &ml {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        if let Some(p) = &g.primary {
            match self.apply_addresses(p, group, &next).await {
                Ok(()) => {}
                Err(e @ (Error::Unavailable(_) | Error::Timeout(_))) => deferred = Some(e),
                Err(e) => {
                    self.emit(
                        Event::GroupBviAddressRefused,
                        &[
                            ("group", group),
                            ("instance", p),
                            ("address", &a),
                            ("add", &add.to_string()),
                            ("error", &e.to_string()),
                        ],
                    );
                    return Err(Error::FailedPrecondition(format!(
                        "address: the primary {p} refused {} {a}: {e}; nothing was changed",
                        if add { "adding" } else { "deleting" }
                    )));
                }
            }
        }
        let stored = self.mutate(|s| {
            let g = s
                .groups
                .get_mut(group)
                .ok_or_else(|| Error::not_found(Object::Group, group))?;
            let now = SystemTime::now();
            let b = g
                .bvi
                .as_mut()
                .ok_or_else(|| Error::not_found(Object::GroupBvi, group))?;
            b.addresses = next;
            b.modified_at = now;
            g.modified_at = now;
            Ok(())
        });
        if let Err(e) = stored {
            // The primary may have more than the registry now: its resync
            // converges it back to what is stored.
            if let Some(p) = &g.primary {
                self.trigger_resync(p);
            }
            return Err(e);
        }
        self.emit(
            if add {
                Event::GroupBviAddressAdded
            } else {
                Event::GroupBviAddressDeleted
            },
            &[("group", group), ("address", &a)],
        );
        if let (Some(e), Some(p)) = (deferred, &g.primary) {
            return Err(Error::Unavailable(format!(
                "saved, but not applied on the primary {p} (its resync applies it): {e}"
            )));
        }
        self.group(group)
    }

    /// SetEvpnInstanceEnabled through evpnr. Disabling the eVPN of a
    /// group's bound primary would take the gateway down behind the
    /// registry's back: refused (FAILED_PRECONDITION, naming the gateway)
    /// unless `force`; with `force` the GroupBVI is left unassigned first
    /// (persisted, `gateway-down`), the member released, then the eVPN
    /// disabled. Anything else is passed through; the member's status comes
    /// back as it gave it.
    pub async fn set_evpn_enabled(
        self: &Arc<Self>,
        id: &str,
        slug: &str,
        enabled: bool,
        force: bool,
    ) -> Result<evpn_api::v1::EvpnInstance, tonic::Status> {
        let gl = self.group_lock(slug);
        let _g = gl.lock().await;
        let bound = self
            .group(slug)
            .ok()
            .filter(|g| !enabled && g.bvi.is_some() && g.primary.as_deref() == Some(id));
        if let Some(g) = bound {
            if !force {
                return Err(Error::FailedPrecondition(format!(
                    "instance {id} is the primary of group {slug}: disabling its eVPN takes \
                     the gateway down (vmac {}, addresses {}); move the GroupBVI first, or \
                     set force",
                    g.vmac,
                    or_none(&crate::model::addresses(&g))
                ))
                .into());
            }
            // Unassigned (persisted, `gateway-down`), then released.
            let input = Input::Release {
                member: id.to_string(),
                cause: "evpn-disabled",
            };
            self.drive(slug, input, Drive::default()).await?;
        } else if !enabled && self.group(slug).is_ok_and(|g| g.holders.contains(id)) {
            // A (former) holder is released before its eVPN goes dark, so
            // the registry never counts on a gateway that is not there.
            let ml = self.member_lock(id);
            let _m = ml.lock().await;
            self.release_on(id, slug).await?;
        }
        let ml = self.member_lock(id);
        let _m = ml.lock().await;
        let req = evpn_api::v1::SetEnabledRequest {
            instance_id: String::new(),
            slug: slug.to_string(),
            enabled,
            force: false,
        };
        let e = self
            .call(id, "SetEvpnInstanceEnabled", |mut c| async move {
                c.set_evpn_instance_enabled(req).await
            })
            .await?;
        let on = e.enabled.to_string();
        self.emit(
            Event::MemberEvpnEnabledSet,
            &[("instance", id), ("evpn", &e.slug), ("enabled", &on)],
        );
        Ok(e)
    }

    /// Emit `gateway-down` (warn) when `g` (as it was before an operation)
    /// had a primary with a GroupBVI: the operation took that gateway down.
    pub fn gateway_down(&self, g: &Group, cause: &str) {
        let (Some(p), Some(_)) = (&g.primary, &g.bvi) else {
            return;
        };
        let vmac = g.vmac.to_string();
        self.emit(
            Event::GatewayDown,
            &[
                ("group", &g.id),
                ("instance", p),
                ("vmac", &vmac),
                ("addresses", &crate::model::addresses(g)),
                ("cause", cause),
            ],
        );
    }

    /// ReportReady.
    pub fn report_ready(self: &Arc<Self>, id: &str, ready: bool) -> Result<(), Error> {
        let was = self
            .with_rt(id, |rt| std::mem::replace(&mut rt.ready, ready))
            .ok_or_else(|| Error::not_found(Object::Instance, id))?;
        if was != ready {
            self.emit(
                if ready {
                    Event::InstanceReady
                } else {
                    Event::InstanceNotReady
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
            s.drained.remove(id);
            Ok(())
        })?;
        self.detach(id);
        self.emit(Event::InstanceDeleted, &[("instance", id)]);
        Ok(())
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
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
