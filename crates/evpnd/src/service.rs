//! The Evpnd gRPC service: validate at the edge, convert, delegate to the
//! manager. Reads come from the manager's snapshot and never wait for a
//! write; BIRD state in reads is bounded by a short timeout. Writes run
//! through `detach::to_completion`: a caller that disconnects or times out
//! (evpnr killed mid-move, a member deadline) never stops one half way.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use evpn_api::v1::{self, evpnd_server::Evpnd};
use evpn_daemon::{
    detach::to_completion,
    events::{Event, EventBroker},
    metrics::CommonMetrics,
    settle::wait_for_evidence,
    watch,
};
use evpn_model::{Error, Mac, error::Object, validate_slug};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::{
    config::{Config, Dialect},
    convert::{self, bvi_out, evpn_out},
    dataplane::vpp::bvi_name,
    epoch::EpochGuard,
    manager::Manager,
};

/// How long a read waits for BIRD's protocol state before answering without it.
const BIRD_READ_TIMEOUT: Duration = Duration::from_millis(300);

/// State shared by the service's handlers.
pub struct EvpndService {
    pub cfg: Arc<Config>,
    pub mgr: Arc<Manager>,
    pub epoch: Arc<EpochGuard>,
    pub registered: Arc<AtomicBool>,
    pub started_at: SystemTime,
    pub broker: EventBroker,
    pub metrics: Arc<CommonMetrics>,
    pub shutdown: CancellationToken,
}

impl EvpndService {
    /// An InstanceRef must be empty or name this host.
    fn check_instance(&self, id: &str) -> Result<(), Error> {
        if id.is_empty() || id == self.cfg.instance_id {
            Ok(())
        } else {
            Err(Error::not_found(Object::Instance, id))
        }
    }

    fn evpn(&self, slug: &str) -> Result<crate::state::Evpn, Error> {
        validate_slug("slug", slug)?;
        self.mgr
            .snapshot()
            .state
            .evpns
            .get(slug)
            .cloned()
            .ok_or_else(|| Error::not_found(Object::Evpn, slug))
    }

    /// A state-changing call's request, once `epoch` admitted its caller
    /// (meant for this instance; from the registry when one is configured;
    /// not from a registry epoch older than one already obeyed).
    async fn admitted<T>(&self, req: Request<T>) -> Result<T, Error> {
        let (md, _, r) = req.into_parts();
        self.epoch.admit(&md).await?;
        Ok(r)
    }

    /// Run a write on the manager to its end, even if the caller goes away
    /// (`detach::to_completion`).
    async fn write<T, F, Fut>(&self, op: F) -> Result<T, Error>
    where
        F: FnOnce(Arc<Manager>) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        self.mgr.check_writable()?;
        to_completion(op(self.mgr.clone())).await
    }

    /// The eVPN `r` names (meant for this instance) and its answer with
    /// this host's health, without BIRD's protocol states.
    fn evpn_answer(&self, r: v1::EvpnRef) -> Result<(crate::state::Evpn, v1::EvpnInstance), Error> {
        self.check_instance(&r.instance_id)?;
        let e = self.evpn(&r.slug)?;
        let out = with_health(evpn_out(&e), &self.mgr.health.summary());
        Ok((e, out))
    }

    async fn bird_protocols(&self) -> Option<Vec<bird_ctl::ProtocolInfo>> {
        tokio::time::timeout(BIRD_READ_TIMEOUT, self.mgr.bird.protocols())
            .await
            .ok()?
            .ok()
    }

    fn bvi(&self, e: &crate::state::Evpn) -> Result<v1::Bvi, Error> {
        let snap = self.mgr.snapshot();
        bvi_out(e, snap.handles.get(&e.slug)).ok_or_else(|| Error::not_found(Object::Bvi, &e.slug))
    }
}

fn proto_out(p: &bird_ctl::ProtocolInfo) -> v1::BirdProtocol {
    v1::BirdProtocol {
        name: p.name.clone(),
        proto: p.proto.clone(),
        state: format!("{:?}", p.state).to_lowercase(),
        info: p.info.clone(),
        message: p.message.clone().unwrap_or_default(),
    }
}

fn ok<T>(v: T) -> Result<Response<T>, Status> {
    Ok(Response::new(v))
}

#[tonic::async_trait]
impl Evpnd for EvpndService {
    async fn create_evpn_instance(
        &self,
        req: Request<v1::CreateEvpnInstanceRequest>,
    ) -> Result<Response<v1::EvpnInstance>, Status> {
        let r = self.admitted(req).await?;
        self.check_instance(&r.instance_id)?;
        let n = convert::new_evpn(&self.cfg, &r)?;
        let e = self
            .write(|m| async move { m.create_evpn(n).await })
            .await?;
        ok(evpn_out(&e))
    }

    async fn list_evpn_instances(
        &self,
        req: Request<v1::InstanceRef>,
    ) -> Result<Response<v1::EvpnInstanceList>, Status> {
        self.check_instance(&req.get_ref().instance_id)?;
        let snap = self.mgr.snapshot();
        let health = self.mgr.health.summary();
        ok(v1::EvpnInstanceList {
            evpn_instances: snap
                .state
                .evpns
                .values()
                .map(|e| with_health(evpn_out(e), &health))
                .collect(),
        })
    }

    async fn get_evpn_instance(
        &self,
        req: Request<v1::EvpnRef>,
    ) -> Result<Response<v1::EvpnInstance>, Status> {
        let (e, mut out) = self.evpn_answer(req.into_inner())?;
        if let Some(all) = self.bird_protocols().await {
            let names = self.mgr.bird.protocol_names(&e.slug);
            out.protocols = all
                .iter()
                .filter(|p| names.contains(&p.name))
                .map(proto_out)
                .collect();
        }
        ok(out)
    }

    async fn set_evpn_instance_enabled(
        &self,
        req: Request<v1::SetEnabledRequest>,
    ) -> Result<Response<v1::EvpnInstance>, Status> {
        let r = self.admitted(req).await?;
        self.check_instance(&r.instance_id)?;
        validate_slug("slug", &r.slug)?;
        let e = self
            .write(|m| async move { m.set_enabled(&r.slug, r.enabled).await })
            .await?;
        ok(evpn_out(&e))
    }

    async fn delete_evpn_instance(
        &self,
        req: Request<v1::EvpnRef>,
    ) -> Result<Response<v1::Empty>, Status> {
        let r = self.admitted(req).await?;
        self.check_instance(&r.instance_id)?;
        validate_slug("slug", &r.slug)?;
        self.write(|m| async move { m.delete_evpn(&r.slug).await })
            .await?;
        ok(v1::Empty {})
    }

    async fn create_bvi(
        &self,
        req: Request<v1::CreateBviRequest>,
    ) -> Result<Response<v1::Bvi>, Status> {
        let r = self.admitted(req).await?;
        self.check_instance(&r.instance_id)?;
        validate_slug("slug", &r.slug)?;
        let mac = convert::opt_mac("mac", &r.mac)?;
        let mtu = convert::opt_mtu("mtu", r.mtu)?;
        let e = self
            .write(|m| async move { m.create_bvi(&r.slug, mac, mtu).await })
            .await?;
        ok(self.bvi(&e)?)
    }

    async fn list_bv_is(
        &self,
        req: Request<v1::InstanceRef>,
    ) -> Result<Response<v1::BviList>, Status> {
        self.check_instance(&req.get_ref().instance_id)?;
        let snap = self.mgr.snapshot();
        ok(v1::BviList {
            bvis: snap
                .state
                .evpns
                .values()
                .filter_map(|e| bvi_out(e, snap.handles.get(&e.slug)))
                .collect(),
        })
    }

    async fn get_bvi(&self, req: Request<v1::EvpnRef>) -> Result<Response<v1::Bvi>, Status> {
        let r = req.into_inner();
        self.check_instance(&r.instance_id)?;
        let e = self.evpn(&r.slug)?;
        ok(self.bvi(&e)?)
    }

    async fn replace_bvi(
        &self,
        req: Request<v1::ReplaceBviRequest>,
    ) -> Result<Response<v1::Bvi>, Status> {
        let r = self.admitted(req).await?;
        self.check_instance(&r.instance_id)?;
        validate_slug("slug", &r.slug)?;
        let mac = convert::opt_mac("mac", &r.mac)?;
        let mtu = convert::opt_mtu("mtu", r.mtu)?;
        let e = self
            .write(|m| async move { m.replace_bvi(&r.slug, mac, mtu).await })
            .await?;
        ok(self.bvi(&e)?)
    }

    async fn delete_bvi(&self, req: Request<v1::EvpnRef>) -> Result<Response<v1::Empty>, Status> {
        let r = self.admitted(req).await?;
        self.check_instance(&r.instance_id)?;
        validate_slug("slug", &r.slug)?;
        self.write(|m| async move { m.delete_bvi(&r.slug).await })
            .await?;
        ok(v1::Empty {})
    }

    async fn bind_group_bvi(
        &self,
        req: Request<v1::HostBindGroupBviRequest>,
    ) -> Result<Response<v1::Bvi>, Status> {
        let t0 = std::time::Instant::now();
        let steps = crate::timing::Steps::new(t0);
        let r = steps
            .scope(crate::timing::timed("admit", self.admitted(req)))
            .await?;
        self.check_instance(&r.instance_id)?;
        validate_slug("slug", &r.slug)?;
        validate_slug("group_id", &r.group_id)?;
        let vmac = Mac::parse_unicast("vmac", &r.vmac)?;
        let addrs = convert::prefixes("addresses", &r.addresses)?;
        let settle = r
            .settle
            .as_ref()
            .map(evpn_daemon::settle::policy_from_proto)
            .transpose()?;
        // The evidence wait runs before the bind and outside the manager's
        // lock: other eVPNs on this host are not held up by it. The bind's
        // overlap check reads next to its first look, or uses the read a
        // PrepareGroupBVI started (`manager::binding::Ahead`, `Prepared`).
        let mut ahead = None;
        let outcome = match settle {
            Some(p) => {
                // A takeover's least settle counts from this host's own
                // sight of the withdrawal, when it saw one.
                let seen = self.mgr.withdrawn_ago(&r.group_id, vmac);
                let p = evpn_daemon::settle::SettlePolicy {
                    min_settle: p.least_wait(seen),
                    ..p
                };
                if p.since_withdrawal.is_some() {
                    tracing::debug!(evpn = %r.slug, withdrawn_ago = ?seen, least = ?p.min_settle, "settle-least-wait");
                }
                let e = self.evpn(&r.slug)?;
                let (bird, slug, mac) = (&self.mgr.bird, e.slug.as_str(), vmac.to_string());
                let mac = mac.as_str();
                let wait = steps.scope(wait_for_evidence(p, move || async move {
                    crate::timing::timed("settle look (BIRD)", bird.mac_announcers(slug, mac))
                        .await
                        .map_err(|e| e.to_string())
                }));
                // The read starts with the first look, when the least
                // settle is over: a read made at its start would be too
                // old by the bind when the settle is longer than the age a
                // read ahead may have (`manager::binding::Ahead`).
                let read = async {
                    if addrs.is_empty() {
                        return None;
                    }
                    // (Not for none: a zero sleep still waits for the
                    // timer's next tick, about 1 ms.)
                    if !p.min_settle.is_zero() {
                        tokio::time::sleep(p.min_settle).await;
                    }
                    steps.scope(self.mgr.ahead_of_bind(slug)).await
                };
                let (o, read) = futures::join!(wait, read);
                ahead = read;
                tracing::debug!(evpn = slug, outcome = ?o, "settle-before-bind");
                if let Some(refused) = o.refusal(&p) {
                    tracing::warn!(evpn = slug, outcome = ?o, "bind refused: no evidence");
                    return Err(refused.into());
                }
                Some(o)
            }
            None => {
                // No evidence wait: a read PrepareGroupBVI started is used
                // if there is one; otherwise the bind reads under its lock.
                if !addrs.is_empty() {
                    ahead = steps.scope(self.mgr.take_prepared(&r.slug)).await;
                }
                None
            }
        };
        // An unhealthy host never takes a gateway (docs/failover.md): after a
        // self-fence the registry's resync would otherwise bind it again.
        if let Some(why) = self.mgr.health.summary().bind_refusal(&r.slug) {
            return Err(Error::FailedPrecondition(format!(
                "evpn {:?}: bind refused: {why}",
                r.slug
            ))
            .into());
        }
        // From here on the bind runs to the end even if the caller goes away
        // (see evpn_daemon::detach); the wait above may be abandoned freely.
        let (slug, group) = (r.slug.clone(), r.group_id.clone());
        let s = steps.clone();
        let e = self
            .write(|m| async move {
                s.scope(async move { m.bind_with(&slug, &group, vmac, addrs, ahead).await })
                    .await
            })
            .await?;
        let done = std::time::Instant::now();
        let mut b = self.bvi(&e)?;
        b.settle = outcome.map(|o| evpn_daemon::settle::outcome_to_proto(&o));
        b.steps = steps.answer(done).to_proto();
        ok(b)
    }

    async fn prepare_group_bvi(
        &self,
        req: Request<v1::EvpnRef>,
    ) -> Result<Response<v1::EvpnInstance>, Status> {
        let (e, out) = self.evpn_answer(req.into_inner())?;
        // Only a BVI a bind could use: the read would be wasted otherwise.
        if e.enabled && e.bvi.is_some() {
            self.mgr.prepare_bind(&e.slug);
        }
        ok(out)
    }

    async fn release_group_bvi(
        &self,
        req: Request<v1::HostReleaseGroupBviRequest>,
    ) -> Result<Response<v1::Bvi>, Status> {
        let t0 = std::time::Instant::now();
        let steps = crate::timing::Steps::new(t0);
        let r = steps
            .scope(crate::timing::timed("admit", self.admitted(req)))
            .await?;
        self.check_instance(&r.instance_id)?;
        validate_slug("slug", &r.slug)?;
        if !r.group_id.is_empty() {
            validate_slug("group_id", &r.group_id)?;
        }
        // F15: a fresh look, after the vMAC is gone from here, at whether
        // the peers already dropped this host's routes (BIRD not running,
        // so its BGP sessions were closed, over tracked underlay links that
        // are up). A few syscalls; each part bounded. It runs next to the
        // release's BIRD withdrawal check (issue 16: 0.4 ms off the gap).
        let s = steps.clone();
        let (bird, dp, ifs) = (
            self.mgr.bird.client.path().to_path_buf(),
            self.mgr.dp.clone(),
            self.cfg.health.underlay.interfaces.clone(),
        );
        let (e, look) = self
            .write(|m| async move {
                let look = async move {
                    crate::timing::timed(
                        "release look",
                        crate::health_run::probe::release_look(&bird, dp.as_ref(), &ifs),
                    )
                    .await
                };
                s.scope(async move { m.release_then(&r.slug, &r.group_id, look).await })
                    .await
            })
            .await?;
        let done = std::time::Instant::now();
        let mut b = self.bvi(&e)?;
        b.steps = steps.answer(done).to_proto();
        b.release_evidence = Some(convert::release_look_out(&look));
        ok(b)
    }

    async fn get_mac_announcers(
        &self,
        req: Request<v1::GetMacAnnouncersRequest>,
    ) -> Result<Response<v1::MacAnnouncers>, Status> {
        let r = req.into_inner();
        self.check_instance(&r.instance_id)?;
        let e = self.evpn(&r.slug)?;
        let mac = Mac::parse_unicast("mac", &r.mac)?;
        let vteps = self
            .mgr
            .bird
            .mac_announcers(&e.slug, &mac.to_string())
            .await?;
        let local = e.bvi.as_ref().is_some_and(|b| b.current_mac() == mac);
        ok(v1::MacAnnouncers { vteps, local })
    }

    async fn get_vpp_info(
        &self,
        req: Request<v1::InstanceRef>,
    ) -> Result<Response<v1::VppInfo>, Status> {
        self.check_instance(&req.get_ref().instance_id)?;
        let i = self.mgr.dp.info().await;
        ok(v1::VppInfo {
            health: if i.connected {
                v1::Health::Ok
            } else {
                v1::Health::Down
            }
            .into(),
            api_socket: self.cfg.vpp.api_socket.display().to_string(),
            version: i.version,
            build_date: i.build_date,
            message_table_size: i.message_table_size,
            linux_cp: i.linux_cp,
            missing_messages: i.missing_messages,
            last_error: with_linux_missing(i.last_error, &self.mgr.linux_missing()),
            connected_since: if i.connected {
                convert::ts(i.connected_since_ms)
            } else {
                None
            },
        })
    }

    async fn get_bird_info(
        &self,
        req: Request<v1::InstanceRef>,
    ) -> Result<Response<v1::BirdInfo>, Status> {
        self.check_instance(&req.get_ref().instance_id)?;
        let status =
            tokio::time::timeout(BIRD_READ_TIMEOUT, self.mgr.bird.client.show_status()).await;
        let protocols = self.bird_protocols().await;
        let snap = self.mgr.snapshot();
        let ours: Vec<String> = snap
            .state
            .evpns
            .keys()
            .flat_map(|s| self.mgr.bird.protocol_names(s))
            .collect();
        let (health, router_id, last_error) = match &status {
            Ok(Ok(s)) => (
                v1::Health::Ok,
                s.router_id.clone().unwrap_or_default(),
                String::new(),
            ),
            Ok(Err(e)) => (v1::Health::Down, String::new(), e.to_string()),
            Err(_) => (
                v1::Health::Down,
                String::new(),
                "BIRD did not answer in time".into(),
            ),
        };
        ok(v1::BirdInfo {
            health: health.into(),
            socket: self.cfg.bird.socket.display().to_string(),
            version: self.mgr.bird.client.version().unwrap_or_default(),
            router_id,
            dialect: match self.cfg.bird.dialect {
                Dialect::Vpp => "vpp",
                Dialect::Linux => "linux",
            }
            .into(),
            include_dir: self.cfg.bird.include_dir.display().to_string(),
            protocols: protocols
                .unwrap_or_default()
                .iter()
                .filter(|p| ours.contains(&p.name))
                .map(proto_out)
                .collect(),
            last_reconfiguration: None,
            last_error,
        })
    }

    async fn get_instance(
        &self,
        req: Request<v1::InstanceRef>,
    ) -> Result<Response<v1::InstanceInfo>, Status> {
        self.check_instance(&req.get_ref().instance_id)?;
        let since = self
            .started_at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let c = &self.cfg;
        let dp = self.mgr.dp.info().await;
        let bird_ok = tokio::time::timeout(BIRD_READ_TIMEOUT, self.mgr.bird.client.show_status())
            .await
            .is_ok_and(|r| r.is_ok());
        ok(v1::InstanceInfo {
            instance_id: c.instance_id.clone(),
            version: evpn_daemon::build::VERSION.into(),
            commit: evpn_daemon::build::COMMIT.into(),
            grpc_address: c.advertise_addr.clone(),
            dataplane: self.mgr.dp.kind().into(),
            ready: self.mgr.is_ready(),
            vpp: if dp.connected {
                v1::Health::Ok
            } else {
                v1::Health::Down
            }
            .into(),
            bird: if bird_ok {
                v1::Health::Ok
            } else {
                v1::Health::Down
            }
            .into(),
            registry_address: c.registry.clone(),
            registered: self.registered.load(Ordering::SeqCst),
            evpn_count: self.mgr.snapshot().state.evpns.len() as u32,
            registry_epoch: self.epoch.highest().await,
            started_at: Some(pbjson_types::Timestamp {
                seconds: since.as_secs() as i64,
                nanos: since.subsec_nanos() as i32,
            }),
            health: Some(convert::health_out(
                &self.mgr.health.summary(),
                true,
                self.mgr.disabled_evpns(),
            )),
        })
    }

    type WatchEventsStream = watch::EventStream;

    async fn watch_events(
        &self,
        req: Request<v1::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let req = req.into_inner();
        let filter = watch::filter_from_proto(&req)?;
        let snapshot = req.snapshot.then(|| {
            let snap = self.mgr.snapshot();
            snap.state
                .evpns
                .values()
                .map(|e| {
                    let mut f = std::collections::BTreeMap::new();
                    f.insert("evpn".to_string(), e.slug.clone());
                    f.insert("vni".to_string(), e.vni.to_string());
                    f.insert("enabled".to_string(), e.enabled.to_string());
                    if let Some(b) = &e.bvi {
                        f.insert("bvi".to_string(), bvi_name(&e.slug));
                        f.insert("mac".to_string(), b.current_mac().to_string());
                        f.insert(
                            "role".to_string(),
                            if b.binding.is_some() {
                                "primary"
                            } else {
                                "candidate"
                            }
                            .into(),
                        );
                    }
                    watch::snapshot_event(&self.cfg.instance_id, Event::SnapshotEvpn, f)
                })
                .collect()
        });
        Ok(Response::new(watch::watch(
            &self.broker,
            filter,
            snapshot,
            self.shutdown.clone(),
            self.metrics.clone(),
        )))
    }
}

/// An eVPN on the wire with its health verdict, when it has one.
fn with_health(mut e: v1::EvpnInstance, h: &crate::health::Summary) -> v1::EvpnInstance {
    e.health = h.evpns.get(&e.slug).map(convert::verdict_out);
    e
}

/// VPP's last error, followed by the BVIs VPP refused a Linux side
/// (`vpp.linux-cp: auto`), so GetVPPInfo shows both.
fn with_linux_missing(last: String, missing: &[(String, String)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !last.is_empty() {
        parts.push(last);
    }
    parts.extend(
        missing
            .iter()
            .map(|(slug, why)| format!("BVI of evpn {slug:?} has no Linux side: {why}")),
    );
    parts.join("; ")
}
