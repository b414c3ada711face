//! The Evpnr gRPC service: thin. Requests are validated and converted to
//! domain values here, handed to the registry, and answers converted back.
//! Every error goes through the one `evpn_model::Error` → status mapping;
//! pass-through reads forward the member's own status. Every orchestrating
//! write runs through `detach::to_completion`: a client that disconnects or
//! times out never cuts a move or a member's configuration half way.
use std::sync::Arc;

use evpn_api::v1::{self, evpnr_server::Evpnr};
use evpn_daemon::{detach::to_completion, events::Event, metrics::CommonMetrics, watch};
use evpn_model::{
    BVI_ADDRESSES_MAX, Error, GRPC_ADDRESS_MAX_LEN, Mac, VERSION_MAX_LEN, canonical_route_targets,
    error::Object, validate_count, validate_instance_id, validate_mtu, validate_slug,
    validate_text, validate_vni,
};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::{
    convert::{
        group_to_proto, health_in, health_out, instance_to_proto, membership_to_proto,
        policy_change_from_proto, prefix_from_proto, prefix_syntax_from_proto, ts, watch_out,
        witnesses_in,
    },
    failover_driver::{Driver, Standing, watch_list},
    groups::NewGroup,
    registration::Registration,
    registry::Registry,
};

/// State shared by the service's handlers.
pub struct EvpnrService {
    pub reg: Arc<Registry>,
    pub metrics: Arc<CommonMetrics>,
    pub shutdown: CancellationToken,
    /// The failover driver (members' standing for the reads).
    pub failover: Arc<Driver>,
}

/// A member's failover standing → wire.
fn standing_to_proto(s: Standing) -> v1::MemberFailover {
    v1::MemberFailover {
        instance_id: s.id,
        priority: s.priority,
        primary: s.primary,
        eligible: s.ineligible.is_none(),
        reason: s.ineligible.unwrap_or_default(),
        fit_since: s.fit_since.map(ts),
    }
}

type R<T> = Result<Response<T>, Status>;

fn ok<T>(t: T) -> R<T> {
    Ok(Response::new(t))
}

impl EvpnrService {
    fn instance_ref(&self, id: &str) -> Result<(), Error> {
        validate_instance_id("instance_id", id)?;
        if self.reg.read(|i| i.state.members.contains_key(id)) {
            Ok(())
        } else {
            Err(Error::not_found(Object::Instance, id))
        }
    }

    /// A warn-level `address-deprecated` event for each accepted gateway
    /// address of a deprecated class (site-local `fec0::/10`, RFC 3879).
    fn warn_deprecated(&self, group: &str, addrs: &[ipnet::IpNet]) {
        for a in addrs {
            if let Some(why) = evpn_model::addr::gateway_warning(a) {
                self.reg.emit(
                    Event::AddressDeprecated,
                    &[
                        ("group", group),
                        ("address", &a.to_string()),
                        ("reason", why),
                    ],
                );
            }
        }
    }

    /// Run an orchestrating write to its end, even if the client goes away
    /// (`detach::to_completion`).
    async fn orchestrate<T, F, Fut>(&self, op: F) -> Result<T, Error>
    where
        F: FnOnce(Arc<Registry>) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        // Paused while the state store fails (UNAVAILABLE, naming its error).
        self.reg.store_ok()?;
        to_completion(op(self.reg.clone())).await
    }

    /// Forward a read or setter to member `id` (its status is returned as
    /// the member gave it).
    async fn forward<T, F, Fut>(&self, id: &str, method: &'static str, f: F) -> R<T>
    where
        F: FnOnce(crate::client::MemberClient) -> Fut,
        Fut: std::future::Future<Output = Result<Response<T>, Status>>,
    {
        self.instance_ref(id)?;
        self.reg.call(id, method, f).await.map(Response::new)
    }
}

#[tonic::async_trait]
impl Evpnr for EvpnrService {
    async fn register_instance(
        &self,
        req: Request<v1::RegisterInstanceRequest>,
    ) -> R<v1::RegisterInstanceResponse> {
        evpn_daemon::authz::require_instance(req.extensions(), &req.get_ref().instance_id)?;
        let r = req.into_inner();
        validate_instance_id("instance_id", &r.instance_id)?;
        validate_text("version", &r.version, VERSION_MAX_LEN)?;
        validate_text("grpc_address", &r.grpc_address, GRPC_ADDRESS_MAX_LEN)?;
        evpn_model::validate_host_port("grpc_address", &r.grpc_address)?;
        let (at, new) = self
            .orchestrate(|reg| async move {
                reg.register(Registration {
                    id: &r.instance_id,
                    addr: &r.grpc_address,
                    version: &r.version,
                    ready: r.ready,
                    force: r.force,
                    member_epoch: r.registry_epoch,
                })
                .await
            })
            .await?;
        ok(v1::RegisterInstanceResponse {
            registered_at: Some(ts(at)),
            new_instance: new,
            registry_epoch: self.reg.epoch(),
            heartbeat_interval: Some(evpn_daemon::settle::duration_out(
                self.reg.cfg().liveness.heartbeat_interval.0,
            )),
        })
    }

    type HeartbeatStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<v1::HeartbeatAck, Status>> + Send + 'static>,
    >;

    async fn heartbeat(
        &self,
        req: Request<tonic::Streaming<v1::HeartbeatRequest>>,
    ) -> R<Self::HeartbeatStream> {
        let ext = req.extensions().clone();
        let mut inbound = req.into_inner();
        let first = inbound.message().await?.ok_or_else(|| {
            Error::invalid("heartbeat", "the stream ended before its first heartbeat")
        })?;
        evpn_daemon::authz::require_instance(&ext, &first.instance_id)?;
        validate_instance_id("instance_id", &first.instance_id)?;
        let id = first.instance_id.clone();
        let reg = self.reg.clone();
        reg.heartbeat(
            &id,
            first.ready,
            first.health.as_ref().map(health_in),
            witnesses_in(&first.witnesses)?,
        )?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let shutdown = self.shutdown.clone();
        let _ = tx.try_send(Ok(v1::HeartbeatAck {
            seq: first.seq,
            registry_epoch: reg.epoch(),
            watch: watch_out(&reg.read(|i| watch_list(&i.state, &id))),
        }));
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    n = inbound.message() => n,
                };
                let hb = match next {
                    Ok(Some(hb)) => hb,
                    Ok(None) | Err(_) => return,
                };
                if hb.instance_id != id {
                    let _ = tx
                        .send(Err(Error::invalid(
                            "instance_id",
                            "changed within one heartbeat stream",
                        )
                        .into()))
                        .await;
                    return;
                }
                let beat = witnesses_in(&hb.witnesses).and_then(|w| {
                    reg.heartbeat(&id, hb.ready, hb.health.as_ref().map(health_in), w)
                });
                if let Err(e) = beat {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
                let a = v1::HeartbeatAck {
                    seq: hb.seq,
                    registry_epoch: reg.epoch(),
                    watch: watch_out(&reg.read(|i| watch_list(&i.state, &id))),
                };
                if tx.send(Ok(a)).await.is_err() {
                    return;
                }
            }
        });
        ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    async fn report_ready(&self, req: Request<v1::ReportReadyRequest>) -> R<v1::Empty> {
        evpn_daemon::authz::require_instance(req.extensions(), &req.get_ref().instance_id)?;
        let r = req.into_inner();
        validate_instance_id("instance_id", &r.instance_id)?;
        self.reg.report_ready(&r.instance_id, r.ready)?;
        ok(v1::Empty {})
    }

    async fn list_instances(&self, _req: Request<v1::Empty>) -> R<v1::InstanceList> {
        let instances = self.reg.read(|i| {
            i.state
                .members
                .values()
                .map(|m| instance_to_proto(m, i.rt.get(&m.id), i.state.groups_of(&m.id)))
                .collect()
        });
        ok(v1::InstanceList { instances })
    }

    async fn get_instance(&self, req: Request<v1::InstanceRef>) -> R<v1::InstanceInfo> {
        let id = req.into_inner().instance_id;
        self.forward(&id, "GetInstance", |mut c| async move {
            c.get_instance(v1::InstanceRef {
                instance_id: String::new(),
            })
            .await
        })
        .await
    }

    async fn get_instance_status(&self, req: Request<v1::InstanceRef>) -> R<v1::InstanceStatus> {
        let id = req.into_inner().instance_id;
        self.instance_ref(&id)?;
        let st = self.reg.read(|i| {
            let m = i.state.members.get(&id)?;
            let rt = i.rt.get(&id);
            let groups = i.state.groups_of(&id);
            let memberships = groups
                .iter()
                .map(|g| {
                    let primary = i.state.groups.get(g).and_then(|g| g.primary.as_deref())
                        == Some(id.as_str());
                    membership_to_proto(g, primary, rt.and_then(|r| r.memberships.get(g)))
                })
                .collect();
            Some(v1::InstanceStatus {
                instance: Some(instance_to_proto(m, rt, groups)),
                memberships,
                health: rt.and_then(|r| r.health.as_ref()).map(health_out),
                drained: i.state.drained.contains(&id),
                witnesses: rt.map_or_else(Vec::new, |r| {
                    evpn_daemon::witness::witnesses_out(&r.witnesses)
                }),
            })
        });
        st.map(Response::new)
            .ok_or_else(|| Error::not_found(Object::Instance, id).into())
    }

    async fn delete_instance(&self, req: Request<v1::InstanceRef>) -> R<v1::Empty> {
        let id = req.into_inner().instance_id;
        validate_instance_id("instance_id", &id)?;
        self.orchestrate(|reg| async move { reg.delete_instance(&id).await })
            .await?;
        ok(v1::Empty {})
    }

    async fn list_groups(&self, _req: Request<v1::Empty>) -> R<v1::GroupList> {
        let groups = self
            .reg
            .read(|i| i.state.groups.values().map(group_to_proto).collect());
        ok(v1::GroupList { groups })
    }

    async fn get_group(&self, req: Request<v1::GroupRef>) -> R<v1::Group> {
        let id = req.into_inner().group_id;
        validate_slug("group_id", &id)?;
        let mut g = group_to_proto(&self.reg.group(&id)?);
        g.member_failover = self
            .failover
            .standing(&id)
            .unwrap_or_default()
            .into_iter()
            .map(standing_to_proto)
            .collect();
        ok(g)
    }

    async fn create_group(&self, req: Request<v1::CreateGroupRequest>) -> R<v1::Group> {
        let r = req.into_inner();
        validate_slug("group_id", &r.group_id)?;
        validate_vni("vni", r.vni)?;
        let mtu = if r.mtu == 0 {
            evpn_model::MTU_DEFAULT
        } else {
            r.mtu
        };
        validate_mtu("mtu", mtu)?;
        let vmac = if r.vmac.is_empty() {
            None
        } else {
            Some(Mac::parse_unicast("vmac", &r.vmac)?)
        };
        let n = NewGroup {
            id: r.group_id,
            vni: r.vni,
            mtu,
            vmac,
            import_rts: canonical_route_targets("import_route_targets", &r.import_route_targets)?,
            export_rts: canonical_route_targets("export_route_targets", &r.export_route_targets)?,
        };
        ok(group_to_proto(&self.reg.create_group(n)?))
    }

    async fn delete_group(&self, req: Request<v1::GroupRef>) -> R<v1::Empty> {
        let id = req.into_inner().group_id;
        validate_slug("group_id", &id)?;
        self.orchestrate(|reg| async move { reg.delete_group(&id).await })
            .await?;
        ok(v1::Empty {})
    }

    async fn add_group_member(&self, req: Request<v1::GroupMemberRequest>) -> R<v1::Group> {
        let r = req.into_inner();
        validate_slug("group_id", &r.group_id)?;
        validate_instance_id("instance_id", &r.instance_id)?;
        let g = self
            .orchestrate(|reg| async move { reg.add_member(&r.group_id, &r.instance_id).await });
        ok(group_to_proto(&g.await?))
    }

    async fn remove_group_member(&self, req: Request<v1::GroupMemberRequest>) -> R<v1::Group> {
        let r = req.into_inner();
        validate_slug("group_id", &r.group_id)?;
        validate_instance_id("instance_id", &r.instance_id)?;
        let g = self
            .orchestrate(|reg| async move { reg.remove_member(&r.group_id, &r.instance_id).await });
        ok(group_to_proto(&g.await?))
    }

    async fn create_group_bvi(&self, req: Request<v1::GroupBviRequest>) -> R<v1::Group> {
        let r = req.into_inner();
        validate_slug("group_id", &r.group_id)?;
        validate_count("addresses", r.addresses.len(), BVI_ADDRESSES_MAX)?;
        let addrs = r
            .addresses
            .iter()
            .enumerate()
            .map(|(i, p)| prefix_from_proto(&format!("addresses[{i}]"), Some(p)))
            .collect::<Result<Vec<_>, _>>()?;
        let (id, warn) = (r.group_id.clone(), addrs.clone());
        let g = self.orchestrate(|reg| async move { reg.create_bvi(&r.group_id, addrs).await });
        let g = g.await?;
        self.warn_deprecated(&id, &warn);
        ok(group_to_proto(&g))
    }

    async fn delete_group_bvi(&self, req: Request<v1::GroupRef>) -> R<v1::Group> {
        let id = req.into_inner().group_id;
        validate_slug("group_id", &id)?;
        let g = self.orchestrate(|reg| async move { reg.delete_bvi(&id).await });
        ok(group_to_proto(&g.await?))
    }

    async fn set_group_mtu(&self, req: Request<v1::SetGroupMtuRequest>) -> R<v1::Group> {
        let r = req.into_inner();
        validate_slug("group_id", &r.group_id)?;
        validate_mtu("mtu", r.mtu)?;
        let g = self.orchestrate(|reg| async move { reg.set_mtu(&r.group_id, r.mtu).await });
        ok(group_to_proto(&g.await?))
    }

    async fn add_group_bvi_address(
        &self,
        req: Request<v1::GroupBviAddAddressRequest>,
    ) -> R<v1::Group> {
        let r = req.into_inner();
        validate_slug("group_id", &r.group_id)?;
        let a = prefix_from_proto("address", r.address.as_ref())?;
        let id = r.group_id.clone();
        let g =
            self.orchestrate(|reg| async move { reg.change_address(&r.group_id, a, true).await });
        let g = g.await?;
        self.warn_deprecated(&id, &[a]);
        ok(group_to_proto(&g))
    }

    async fn delete_group_bvi_address(
        &self,
        req: Request<v1::GroupBviDeleteAddressRequest>,
    ) -> R<v1::Group> {
        let r = req.into_inner();
        validate_slug("group_id", &r.group_id)?;
        // Syntax only: an address stored before a class was refused must
        // stay removable.
        let a = prefix_syntax_from_proto("address", r.address.as_ref())?;
        let g =
            self.orchestrate(|reg| async move { reg.change_address(&r.group_id, a, false).await });
        ok(group_to_proto(&g.await?))
    }

    async fn bind_group_bvi(&self, req: Request<v1::BindGroupBviRequest>) -> R<v1::Empty> {
        let r = req.into_inner();
        validate_slug("group_id", &r.group_id)?;
        validate_instance_id("instance_id", &r.instance_id)?;
        self.orchestrate(|reg| async move { reg.bind_explicit(&r.group_id, &r.instance_id).await })
            .await?;
        ok(v1::Empty {})
    }

    async fn release_group_bvi(&self, req: Request<v1::ReleaseGroupBviRequest>) -> R<v1::Empty> {
        let r = req.into_inner();
        validate_slug("group_id", &r.group_id)?;
        validate_instance_id("instance_id", &r.instance_id)?;
        self.orchestrate(
            |reg| async move { reg.release_explicit(&r.group_id, &r.instance_id).await },
        )
        .await?;
        ok(v1::Empty {})
    }

    async fn move_group_bvi(&self, req: Request<v1::MoveGroupBviRequest>) -> R<v1::Group> {
        let r = req.into_inner();
        validate_slug("group_id", &r.group_id)?;
        validate_instance_id("instance_id", &r.instance_id)?;
        let g = self.orchestrate(|reg| async move {
            reg.move_bvi(&r.group_id, &r.instance_id, r.force).await
        });
        ok(group_to_proto(&g.await?))
    }

    async fn set_group_failover(&self, req: Request<v1::SetGroupFailoverRequest>) -> R<v1::Group> {
        let r = req.into_inner();
        validate_slug("group_id", &r.group_id)?;
        let c = policy_change_from_proto(&r)?;
        ok(group_to_proto(
            &self.reg.set_group_failover(&r.group_id, &c)?,
        ))
    }

    async fn set_group_member_priority(
        &self,
        req: Request<v1::SetGroupMemberPriorityRequest>,
    ) -> R<v1::Group> {
        let r = req.into_inner();
        validate_slug("group_id", &r.group_id)?;
        validate_instance_id("instance_id", &r.instance_id)?;
        let g = self
            .reg
            .set_member_priority(&r.group_id, &r.instance_id, r.priority)?;
        ok(group_to_proto(&g))
    }

    async fn drain_instance(&self, req: Request<v1::InstanceRef>) -> R<v1::InstanceStatus> {
        let id = req.into_inner().instance_id;
        self.instance_ref(&id)?;
        self.reg.set_drained(&id, true)?;
        self.get_instance_status(Request::new(v1::InstanceRef { instance_id: id }))
            .await
    }

    async fn resume_instance(&self, req: Request<v1::InstanceRef>) -> R<v1::InstanceStatus> {
        let id = req.into_inner().instance_id;
        self.instance_ref(&id)?;
        self.reg.set_drained(&id, false)?;
        self.get_instance_status(Request::new(v1::InstanceRef { instance_id: id }))
            .await
    }

    async fn set_failover_suspended(
        &self,
        req: Request<v1::SetFailoverSuspendedRequest>,
    ) -> R<v1::FailoverStatus> {
        self.reg
            .set_failover_suspended(req.into_inner().suspended)?;
        self.get_failover_status(Request::new(v1::Empty {})).await
    }

    async fn get_failover_status(&self, _req: Request<v1::Empty>) -> R<v1::FailoverStatus> {
        let (mut st, groups) = self.reg.read(|i| {
            let st = v1::FailoverStatus {
                suspended: i.state.failover_suspended,
                drained: i.state.drained.iter().cloned().collect(),
                groups: Vec::new(),
            };
            let groups: Vec<(String, String, String)> = i
                .state
                .groups
                .values()
                .filter(|g| g.bvi.is_some())
                .map(|g| {
                    let mode = crate::failover_admin::mode(&g.failover).to_string();
                    (g.id.clone(), mode, g.primary.clone().unwrap_or_default())
                })
                .collect();
            (st, groups)
        });
        for (group_id, mode, primary_instance_id) in groups {
            let Some(members) = self.failover.standing(&group_id) else {
                continue;
            };
            st.groups.push(v1::GroupFailover {
                group_id,
                mode,
                primary_instance_id,
                members: members.into_iter().map(standing_to_proto).collect(),
            });
        }
        ok(st)
    }

    async fn list_evpn_instances(&self, req: Request<v1::InstanceRef>) -> R<v1::EvpnInstanceList> {
        let id = req.into_inner().instance_id;
        self.forward(&id, "ListEvpnInstances", |mut c| async move {
            c.list_evpn_instances(v1::InstanceRef {
                instance_id: String::new(),
            })
            .await
        })
        .await
    }

    async fn get_evpn_instance(&self, req: Request<v1::EvpnRef>) -> R<v1::EvpnInstance> {
        let r = req.into_inner();
        validate_slug("slug", &r.slug)?;
        let id = r.instance_id.clone();
        self.forward(&id, "GetEvpnInstance", |mut c| async move {
            c.get_evpn_instance(v1::EvpnRef {
                instance_id: String::new(),
                slug: r.slug,
            })
            .await
        })
        .await
    }

    async fn set_evpn_instance_enabled(
        &self,
        req: Request<v1::SetEnabledRequest>,
    ) -> R<v1::EvpnInstance> {
        let r = req.into_inner();
        validate_slug("slug", &r.slug)?;
        self.instance_ref(&r.instance_id)?;
        // The member's own status comes back as it gave it (inner result).
        let reg = self.reg.clone();
        let e = to_completion(async move {
            Ok::<_, Error>(
                reg.set_evpn_enabled(&r.instance_id, &r.slug, r.enabled, r.force)
                    .await,
            )
        })
        .await??;
        ok(e)
    }

    async fn list_bv_is(&self, req: Request<v1::InstanceRef>) -> R<v1::BviList> {
        let id = req.into_inner().instance_id;
        self.forward(&id, "ListBVIs", |mut c| async move {
            c.list_bv_is(v1::InstanceRef {
                instance_id: String::new(),
            })
            .await
        })
        .await
    }

    async fn get_bvi(&self, req: Request<v1::EvpnRef>) -> R<v1::Bvi> {
        let r = req.into_inner();
        validate_slug("slug", &r.slug)?;
        let id = r.instance_id.clone();
        self.forward(&id, "GetBVI", |mut c| async move {
            c.get_bvi(v1::EvpnRef {
                instance_id: String::new(),
                slug: r.slug,
            })
            .await
        })
        .await
    }

    async fn get_vpp_info(&self, req: Request<v1::InstanceRef>) -> R<v1::VppInfo> {
        let id = req.into_inner().instance_id;
        self.forward(&id, "GetVPPInfo", |mut c| async move {
            c.get_vpp_info(v1::InstanceRef {
                instance_id: String::new(),
            })
            .await
        })
        .await
    }

    async fn get_bird_info(&self, req: Request<v1::InstanceRef>) -> R<v1::BirdInfo> {
        let id = req.into_inner().instance_id;
        self.forward(&id, "GetBirdInfo", |mut c| async move {
            c.get_bird_info(v1::InstanceRef {
                instance_id: String::new(),
            })
            .await
        })
        .await
    }

    type WatchEventsStream = watch::EventStream;

    async fn watch_events(
        &self,
        req: Request<v1::WatchEventsRequest>,
    ) -> R<Self::WatchEventsStream> {
        let req = req.into_inner();
        let filter = watch::filter_from_proto(&req)?;
        let snapshot = req
            .snapshot
            .then(|| crate::snapshot::snapshot(&self.reg, &filter));
        ok(watch::watch(
            &self.reg.broker,
            filter,
            snapshot,
            self.shutdown.clone(),
            self.metrics.clone(),
        ))
    }
}
