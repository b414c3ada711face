//! Talking to members: one gRPC client per member, every
//! call bounded by `member-timeout` and counted by method and code; the
//! member's event stream (registrar mode) read with back-off, stamped with the
//! member's ID and published into the fleet broker; coalesced resync triggers
//! and the state store's retry loop, which resyncs every member when the
//! store recovers. The client itself is built in `client.rs`.
use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use evpn_api::v1;
use evpn_daemon::events::{Event, EventKind, EventLevel};
use evpn_model::Error;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};

use crate::{
    client::{MemberClient, client, member_err},
    metrics::RpcLabels,
    model::Liveness,
    registry::{Conn, MemberRt, Registry},
};

/// Back-off of a member's event stream: 100 ms doubling to 1 s, jittered; it
/// is reset only by a stream that stayed open for `STABLE`. The cap is short
/// because evpnr cannot move a gateway away from (or to) a member it is not
/// connected to: after a management partition heals, the registry must
/// regain its members within about a second, not at a 5 s back-off (measured
/// on the fabric lab: MoveGroupBVI refused for 5.9 s after a 1 s partition).
/// One connection attempt per member per second is cheap.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(1));
const STABLE: Duration = Duration::from_secs(10);

impl Registry {
    /// Call `method` on member `id` with the member timeout; counts the call
    /// and keeps `last_seen` / `last_error`. Errors are the member's status
    /// (or UNAVAILABLE / DEADLINE_EXCEEDED for transport problems).
    pub async fn call<T, F, Fut>(&self, id: &str, method: &'static str, f: F) -> Result<T, Status>
    where
        F: FnOnce(MemberClient) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call_longer(id, method, std::time::Duration::ZERO, f)
            .await
    }

    /// [`Registry::call`] with a refusal turned into the registry's error
    /// ([`member_err`]: it names the member and the method).
    pub async fn member_call<T, F, Fut>(
        &self,
        id: &str,
        method: &'static str,
        f: F,
    ) -> Result<T, Error>
    where
        F: FnOnce(MemberClient) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.call(id, method, f)
            .await
            .map_err(|s| member_err(id, method, &s))
    }

    /// [`Registry::call`] for an RPC that may legitimately take `extra`
    /// longer than `member-timeout` (a bind that first waits for evidence).
    pub async fn call_longer<T, F, Fut>(
        &self,
        id: &str,
        method: &'static str,
        extra: std::time::Duration,
        f: F,
    ) -> Result<T, Status>
    where
        F: FnOnce(MemberClient) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let Some(c) = self.read(|i| i.rt.get(id).map(|r| r.client.clone())) else {
            return Err(Status::not_found(format!("instance {id:?} not found")));
        };
        let mut timeout = self.cfg().member_timeout.0 + extra;
        // A member already known to be unresponsive costs no member timeout;
        // the connection-keeping calls still go out so it is seen coming back,
        // and so does a release while its connection is up (F13).
        if !matches!(method, "WatchEvents" | "GetInstance") {
            let (age, l) = self.liveness(id);
            if l.unresponsive() {
                let up = self.conn(id).is_some_and(|(c, _)| c == Conn::Connected);
                let member_timeout = self.cfg().member_timeout.0;
                match crate::group::failover::late_member_call(method, up, member_timeout) {
                    Some(d) => timeout = d,
                    None => {
                        let st = Status::unavailable(format!(
                            "member {id} is {}: no heartbeat for {:.1} s; not calling {method}",
                            l.as_str(),
                            age.unwrap_or_default().as_secs_f64()
                        ));
                        self.count_rpc(method, st.code(), Duration::ZERO);
                        return Err(st);
                    }
                }
            }
        }
        let started = std::time::Instant::now();
        // Stamped with the moment evpnr stops waiting: a call held by a
        // partition and delivered after it is refused by the evpnd, not
        // carried out behind evpnr's back.
        let not_after = SystemTime::now() + timeout;
        let call = evpn_daemon::identity::expiring(not_after, f(c));
        let r = match tokio::time::timeout(timeout, call).await {
            Ok(r) => r.map(|r| r.into_inner()),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "member {id} did not answer {method} within {timeout:?}"
            ))),
        };
        let code = match &r {
            Ok(_) => Code::Ok,
            Err(s) => s.code(),
        };
        self.count_rpc(method, code, started.elapsed());
        self.with_rt(id, |rt| match &r {
            Ok(_) => rt.last_seen = Some(SystemTime::now()),
            Err(s) => rt.last_error = format!("{method}: {}", s.message()),
        });
        r
    }

    fn count_rpc(&self, method: &str, code: Code, took: Duration) {
        self.metrics
            .member_rpc_duration
            .get_or_create(&crate::metrics::MethodLabels {
                method: method.into(),
            })
            .observe(took.as_secs_f64());
        self.metrics
            .member_rpcs
            .get_or_create(&RpcLabels {
                method: method.into(),
                code: evpn_model::code_name(code).to_string(),
            })
            .inc();
    }

    /// Ask the evpnd at member `id`'s address who it is: Ok(its readiness)
    /// only if it is `id`.
    async fn verify_identity(&self, id: &str) -> Result<bool, String> {
        let info = self
            .call(id, "GetInstance", |mut c| async move {
                c.get_instance(v1::InstanceRef {
                    instance_id: String::new(),
                })
                .await
            })
            .await
            .map_err(|s| format!("GetInstance: {}", s.message()))?;
        if info.instance_id != id {
            let addr = self.read(|i| i.rt.get(id).map(|r| r.addr.clone()).unwrap_or_default());
            return Err(format!(
                "identity mismatch: the evpnd at {addr} is instance {}, not {id:?}; not using it",
                evpn_model::excerpt(&info.instance_id)
            ));
        }
        Ok(info.ready)
    }

    /// Connection state and readiness of a member, if registered.
    pub fn conn(&self, id: &str) -> Option<(Conn, bool)> {
        self.read(|i| i.rt.get(id).map(|r| (r.conn, r.ready)))
    }

    /// Require a member that is connected, ready and whose heartbeats are
    /// on time (FAILED_PRECONDITION otherwise, before anything is changed:
    /// a move to a member that went silent would release the primary and
    /// then fail to bind; NOT_FOUND if unknown).
    pub fn require_ready(&self, id: &str) -> Result<(), Error> {
        match self.conn(id) {
            None => Err(Error::not_found(evpn_model::error::Object::Instance, id)),
            Some((Conn::Connected, true)) => {
                let (age, l) = self.liveness(id);
                match l.unresponsive() {
                    false => Ok(()),
                    true => Err(Error::FailedPrecondition(format!(
                        "instance {id} is not usable ({}: no heartbeat for {:.1} s)",
                        l.as_str(),
                        age.unwrap_or_default().as_secs_f64()
                    ))),
                }
            }
            Some((c, ready)) => Err(Error::FailedPrecondition(format!(
                "instance {id} is not usable (connection {}, ready {ready})",
                c.as_str()
            ))),
        }
    }

    /// Start (or restart) the run-time side of member `id`: a new client
    /// and event watcher. The old watcher, if any, is cancelled.
    pub fn attach(self: &Arc<Self>, id: &str, addr: &str, ready: bool) -> Result<(), Error> {
        let client = client(id, addr, self.cfg().member_timeout.0, self.epoch())?;
        let cancel = self.shutdown.child_token();
        {
            let mut g = self.lock();
            let old = g.rt.insert(
                id.to_string(),
                MemberRt {
                    conn: Conn::Connecting,
                    ready,
                    last_seen: None,
                    last_error: String::new(),
                    client,
                    cancel: cancel.clone(),
                    memberships: Default::default(),
                    resync_pending: false,
                    resync_running: false,
                    last_heartbeat: None,
                    health: None,
                    witnesses: Vec::new(),
                    liveness: Liveness::Unknown,
                    addr: addr.to_string(),
                },
            );
            if let Some(old) = old {
                old.cancel.cancel();
                // Keep a running resync worker's bookkeeping.
                if let Some(n) = g.rt.get_mut(id) {
                    n.resync_running = old.resync_running;
                    n.resync_pending = old.resync_pending;
                    n.memberships = old.memberships;
                    // Same process re-dialled: keep its heartbeat history.
                    if old.addr == n.addr {
                        n.last_heartbeat = old.last_heartbeat;
                        n.liveness = old.liveness;
                        n.health = old.health;
                    }
                }
            }
        }
        self.refresh();
        let reg = self.clone();
        let id = id.to_string();
        tokio::spawn(async move { reg.watch_member(id, cancel).await });
        Ok(())
    }

    /// Give member `id` a new client (a new connection at the next call),
    /// keeping everything else; the old one's calls finish on their own.
    fn redial(&self, id: &str) {
        let Some(addr) = self.read(|i| i.rt.get(id).map(|r| r.addr.clone())) else {
            return;
        };
        match client(id, &addr, self.cfg().member_timeout.0, self.epoch()) {
            Ok(c) => {
                self.with_rt(id, |rt| rt.client = c);
            }
            Err(e) => tracing::warn!(instance = id, error = %e, "member-redial-failed"),
        }
    }

    /// Dial member `id` again now (it registered again): a new client for
    /// every call from now on, and a new event watcher in place of the old
    /// one, which is cancelled wherever it is (reading a stream that may be
    /// dead, dialling, backing off). The connection state stays as it is
    /// until the new watcher knows better; calls already made on the old
    /// client finish on their own.
    pub fn redial_now(self: &Arc<Self>, id: &str) {
        let Some(addr) = self.read(|i| i.rt.get(id).map(|r| r.addr.clone())) else {
            return;
        };
        let c = match client(id, &addr, self.cfg().member_timeout.0, self.epoch()) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(instance = id, error = %e, "member-redial-failed");
                return;
            }
        };
        let cancel = self.shutdown.child_token();
        let old = self.with_rt(id, |rt| {
            rt.client = c;
            std::mem::replace(&mut rt.cancel, cancel.clone())
        });
        let Some(old) = old else { return };
        old.cancel();
        tracing::debug!(instance = id, "member-redialled");
        let reg = self.clone();
        let id = id.to_string();
        tokio::spawn(async move { reg.watch_member(id, cancel).await });
    }

    /// Stop the run-time side of member `id` (it is being forgotten).
    pub fn detach(&self, id: &str) {
        if let Some(rt) = self.lock().rt.remove(id) {
            rt.cancel.cancel();
        }
        self.refresh();
    }

    fn set_conn(&self, id: &str, conn: Conn, err: Option<String>) -> bool {
        self.with_rt(id, |rt| {
            let changed = rt.conn != conn;
            rt.conn = conn;
            if let Some(e) = err {
                rt.last_error = e;
            }
            changed
        })
        .unwrap_or(false)
    }

    /// Read the member's event stream until cancelled, reconnecting with a
    /// jittered back-off that only a stream open for `STABLE` resets (a
    /// member whose stream opens and closes at once is not re-dialled in a
    /// tight loop). After each (re)connect the evpnd must prove it is this
    /// instance (`GetInstance`) before it counts as connected; then its
    /// readiness is taken and a resync triggered.
    async fn watch_member(self: Arc<Self>, id: String, cancel: CancellationToken) {
        let mut failures: u32 = 0;
        while !cancel.is_cancelled() {
            // Cancelled also while dialling: a watcher replaced by a new
            // one ([`Registry::redial_now`]) must not wait out a dial that
            // a partition left hanging.
            let opened = tokio::select! {
                _ = cancel.cancelled() => return,
                o = self.call(&id, "WatchEvents", |mut c| async move {
                    c.watch_events(v1::WatchEventsRequest {
                        registrar: true,
                        ..Default::default()
                    })
                    .await
                }) => o,
            };
            let began = Instant::now();
            match opened {
                Ok(mut stream) => match tokio::select! {
                    _ = cancel.cancelled() => return,
                    v = self.verify_identity(&id) => v,
                } {
                    Ok(ready) => {
                        if self.set_conn(&id, Conn::Connected, Some(String::new())) {
                            self.emit(Event::InstanceConnected, &[("instance", &id)]);
                        }
                        self.with_rt(&id, |rt| rt.ready = ready);
                        self.trigger_resync(&id);
                        loop {
                            let next = tokio::select! {
                                _ = cancel.cancelled() => return,
                                n = stream.message() => n,
                            };
                            match next {
                                Ok(Some(ev)) => {
                                    // The member lost a binding behind the
                                    // registry's back (its VPP restarted):
                                    // resync it now, not at the next tick.
                                    let lost = ev.message == Event::GroupBviDropped.name();
                                    self.republish(&id, ev);
                                    if lost {
                                        self.trigger_resync(&id);
                                    }
                                }
                                Ok(None) => break,
                                Err(s) => {
                                    self.with_rt(&id, |rt| rt.last_error = s.message().to_string());
                                    break;
                                }
                            }
                        }
                    }
                    Err(why) => {
                        let new = self
                            .with_rt(&id, |rt| {
                                let new = rt.last_error != why;
                                rt.last_error = why.clone();
                                new
                            })
                            .unwrap_or(false);
                        if new && why.starts_with("identity mismatch") {
                            self.emit(
                                Event::InstanceIdentityMismatch,
                                &[("instance", &id), ("reason", &why)],
                            );
                        }
                    }
                },
                Err(s) => {
                    self.with_rt(&id, |rt| rt.last_error = s.message().to_string());
                }
            }
            if cancel.is_cancelled() {
                return;
            }
            if self.set_conn(&id, Conn::Unreachable, None) {
                self.emit(Event::InstanceUnreachable, &[("instance", &id)]);
            }
            // The next attempt dials a new connection: the old one may be
            // stuck behind a partition that has healed since (TCP back-off).
            self.redial(&id);
            if began.elapsed() >= STABLE {
                failures = 0;
            }
            let d = evpn_daemon::backoff::jittered(BACKOFF.0, BACKOFF.1, failures);
            failures = failures.saturating_add(1);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(d) => {}
            }
        }
    }

    /// Publish a member's event into the fleet broker, stamped with the
    /// member's ID (whatever the member put in `instance`).
    fn republish(&self, id: &str, ev: v1::Event) {
        let kind = match ev.r#type.as_str() {
            "log" => EventKind::Log,
            "crud" => EventKind::Crud,
            "failover" => EventKind::Failover,
            _ => return,
        };
        let level = EventLevel::parse(&ev.level).unwrap_or(EventLevel::Info);
        let ts = ev.ts.and_then(|t| {
            SystemTime::UNIX_EPOCH.checked_add(Duration::new(
                u64::try_from(t.seconds).ok()?,
                u32::try_from(t.nanos).ok()?,
            ))
        });
        self.with_rt(id, |rt| rt.last_seen = Some(SystemTime::now()));
        self.broker.publish(
            kind,
            level,
            id.to_string(),
            ev.message,
            ev.fields.into_iter().collect(),
            ts,
        );
    }

    /// While the state store fails, retry saving the state in effect (1 s,
    /// doubling to 8 s); the first success resumes orchestration (see
    /// [`Registry::store_resumed`]), which also resyncs every member. Runs until
    /// shutdown.
    pub async fn retry_store(self: Arc<Self>) {
        const MIN: std::time::Duration = std::time::Duration::from_secs(1);
        const MAX: std::time::Duration = std::time::Duration::from_secs(8);
        let mut resume = self.store_resumed();
        let mut delay = MIN;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                r = resume.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let ids = resume.borrow_and_update().clone();
                    for id in ids {
                        self.trigger_resync(&id);
                    }
                    continue;
                }
                _ = self.shutdown.cancelled() => return,
            }
            if self.health.error().is_none() {
                delay = MIN;
                continue;
            }
            delay = match self.persist().await {
                Ok(()) => MIN,
                Err(_) => (delay * 2).min(MAX),
            };
        }
    }

    /// Ask for a resync of member `id`; concurrent requests coalesce into
    /// at most one running and one pending resync.
    pub fn trigger_resync(self: &Arc<Self>, id: &str) {
        let start = self
            .with_rt(id, |rt| {
                rt.resync_pending = true;
                if rt.resync_running {
                    false
                } else {
                    rt.resync_running = true;
                    true
                }
            })
            .unwrap_or(false);
        if !start {
            return;
        }
        let reg = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            loop {
                let go = reg
                    .with_rt(&id, |rt| {
                        let p = rt.resync_pending;
                        rt.resync_pending = false;
                        if !p {
                            rt.resync_running = false;
                        }
                        p
                    })
                    .unwrap_or(false);
                if !go {
                    return;
                }
                // A decision of evpnr's own (start-up, periodic, a member
                // back after a partition, the store recovered, R12): its
                // calls are recorded as `evpnr:resync`.
                // Its outcome is reported by its events and status.
                let _ = evpn_daemon::audit::layer::on_own(
                    "resync",
                    &[("instance", id.as_str())],
                    reg.resync(&id),
                    |r| r.clone().map_err(tonic::Status::from),
                )
                .await;
            }
        });
    }
}

/// The southbound interface over gRPC: every wire message evpnr sends to a
/// member for configuration is built here (with `convert.rs`).
pub struct Grpc;

impl crate::southbound::Southbound<Registry> for Grpc {
    fn list<'a>(
        &'a self,
        reg: &'a Registry,
        id: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<crate::southbound::Listing, Error>> {
        Box::pin(async move {
            let me = || v1::InstanceRef {
                instance_id: id.to_string(),
            };
            let evpns = reg
                .member_call(id, "ListEvpnInstances", |mut c| async move {
                    c.list_evpn_instances(me()).await
                })
                .await?;
            let bvis = reg
                .member_call(
                    id,
                    "ListBVIs",
                    |mut c| async move { c.list_bv_is(me()).await },
                )
                .await?;
            let evpns = evpns
                .evpn_instances
                .into_iter()
                .map(|e| crate::plan::ActualEvpn {
                    slug: e.slug,
                    vni: e.vni,
                    import_rts: e.import_route_targets,
                    export_rts: e.export_route_targets,
                })
                .collect();
            let bvis = bvis
                .bvis
                .into_iter()
                .map(|b| crate::convert::bvi_from_proto(id, b))
                .collect::<Result<_, _>>()?;
            Ok((evpns, bvis))
        })
    }

    fn create_evpn<'a>(
        &'a self,
        reg: &'a Registry,
        id: &'a str,
        d: &'a crate::plan::Desired,
    ) -> futures::future::BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let req = v1::CreateEvpnInstanceRequest {
                instance_id: id.to_string(),
                slug: d.group.clone(),
                vni: d.vni,
                import_route_targets: d.import_rts.clone(),
                export_route_targets: d.export_rts.clone(),
                mtu: d.mtu,
                ..Default::default()
            };
            reg.member_call(id, "CreateEvpnInstance", |mut c| async move {
                c.create_evpn_instance(req).await
            })
            .await?;
            Ok(())
        })
    }

    fn create_bvi<'a>(
        &'a self,
        reg: &'a Registry,
        id: &'a str,
        group: &'a str,
        mac: evpn_model::Mac,
        mtu: u32,
    ) -> futures::future::BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let req = v1::CreateBviRequest {
                instance_id: id.to_string(),
                slug: group.to_string(),
                mac: mac.to_string(),
                mtu,
            };
            reg.member_call(
                id,
                "CreateBVI",
                |mut c| async move { c.create_bvi(req).await },
            )
            .await?;
            Ok(())
        })
    }

    fn replace_bvi<'a>(
        &'a self,
        reg: &'a Registry,
        id: &'a str,
        group: &'a str,
        mac: evpn_model::Mac,
        mtu: u32,
    ) -> futures::future::BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let req = v1::ReplaceBviRequest {
                instance_id: id.to_string(),
                slug: group.to_string(),
                mac: mac.to_string(),
                mtu,
            };
            reg.member_call(
                id,
                "ReplaceBVI",
                |mut c| async move { c.replace_bvi(req).await },
            )
            .await?;
            Ok(())
        })
    }

    fn delete_evpn<'a>(
        &'a self,
        reg: &'a Registry,
        id: &'a str,
        slug: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let req = v1::EvpnRef {
                instance_id: id.to_string(),
                slug: slug.to_string(),
            };
            match reg
                .call(id, "DeleteEvpnInstance", |mut c| async move {
                    c.delete_evpn_instance(req).await
                })
                .await
            {
                Ok(_) => Ok(true),
                Err(s) if s.code() == Code::NotFound => Ok(false),
                Err(s) => Err(member_err(id, "DeleteEvpnInstance", &s)),
            }
        })
    }

    fn bind<'a>(
        &'a self,
        reg: &'a Registry,
        id: &'a str,
        b: &'a crate::southbound::BindRequest,
    ) -> futures::future::BoxFuture<'a, Result<Option<evpn_model::settle::SettleOutcome>, Error>>
    {
        Box::pin(async move {
            // The group ID is also the eVPN's slug on every member.
            let req = v1::HostBindGroupBviRequest {
                instance_id: id.to_string(),
                slug: b.group.clone(),
                group_id: b.group.clone(),
                vmac: b.vmac.to_string(),
                addresses: b
                    .addresses
                    .iter()
                    .map(crate::convert::prefix_to_proto)
                    .collect(),
                settle: b.settle.as_ref().map(evpn_daemon::settle::policy_to_proto),
            };
            let extra = b.settle.map(|p| p.max_wait).unwrap_or_default();
            let sent = std::time::Instant::now();
            let bvi = reg
                .call_longer(id, "BindGroupBVI", extra, |mut c| async move {
                    c.bind_group_bvi(req).await
                })
                .await
                .map_err(|s| member_err(id, "BindGroupBVI", &s))?;
            crate::timeline::member(
                id,
                "BindGroupBVI",
                sent,
                std::time::Instant::now(),
                &bvi.steps,
            );
            Ok(bvi
                .settle
                .as_ref()
                .and_then(evpn_daemon::settle::outcome_from_proto))
        })
    }

    fn evpn_enabled<'a>(
        &'a self,
        reg: &'a Registry,
        id: &'a str,
        slug: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Option<bool>, Error>> {
        Box::pin(async move {
            let req = v1::EvpnRef {
                instance_id: id.to_string(),
                slug: slug.to_string(),
            };
            // PrepareGroupBVI also has the member read ahead what the bind
            // will check; an evpnd older than it is asked GetEvpnInstance.
            let mut method = "PrepareGroupBVI";
            let mut answer = {
                let req = req.clone();
                reg.call(
                    id,
                    method,
                    |mut c| async move { c.prepare_group_bvi(req).await },
                )
                .await
            };
            if matches!(&answer, Err(s) if s.code() == Code::Unimplemented) {
                method = "GetEvpnInstance";
                answer = reg
                    .call(
                        id,
                        method,
                        |mut c| async move { c.get_evpn_instance(req).await },
                    )
                    .await;
            }
            match answer {
                Ok(e) => Ok(Some(e.enabled)),
                Err(s) if s.code() == Code::NotFound => Ok(None),
                Err(s) => Err(member_err(id, method, &s)),
            }
        })
    }

    fn release<'a>(
        &'a self,
        reg: &'a Registry,
        id: &'a str,
        group: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Option<crate::southbound::ReleaseEvidence>, Error>>
    {
        Box::pin(async move {
            // The group ID is also the eVPN's slug on every member.
            let req = v1::HostReleaseGroupBviRequest {
                instance_id: id.to_string(),
                slug: group.to_string(),
                group_id: group.to_string(),
            };
            let sent = std::time::Instant::now();
            match reg
                .call(id, "ReleaseGroupBVI", |mut c| async move {
                    c.release_group_bvi(req).await
                })
                .await
            {
                Ok(bvi) => {
                    let answered = std::time::Instant::now();
                    crate::timeline::member(id, "ReleaseGroupBVI", sent, answered, &bvi.steps);
                    Ok(bvi
                        .release_evidence
                        .as_ref()
                        .map(crate::convert::release_evidence_in))
                }
                Err(s) if s.code() == Code::NotFound => Ok(None),
                Err(s) => Err(member_err(id, "ReleaseGroupBVI", &s)),
            }
        })
    }
}

#[cfg(test)]
mod stamping {
    use evpn_api::v1;
    use evpn_daemon::events::EventFilter;
    use futures::StreamExt;

    use crate::testsupport::registry_unattached;

    #[tokio::test]
    async fn member_events_are_stamped_with_the_member_id() {
        let spoof = v1::Event {
            seq: 7,
            r#type: "crud".into(),
            level: "info".into(),
            instance: "someone-else".into(),
            message: "groupbvi-bound".into(),
            fields: [("evpn".to_string(), "test".to_string())].into(),
            ..Default::default()
        };
        let bogus = v1::Event {
            r#type: "gossip".into(),
            ..spoof.clone()
        };
        let (reg, _d, addr) = registry_unattached(vec![], vec![bogus, spoof], "1s").await;
        let mut sub = reg.broker.subscribe(EventFilter {
            instances: Some(["t".to_string()].into()),
            ..Default::default()
        });
        reg.attach("t", &addr, true).unwrap();
        let e = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.instance.as_str(), e.message.as_str()),
            ("t", "groupbvi-bound")
        );
        assert_eq!(e.fields["evpn"], "test");
        assert_ne!(e.seq, 7, "seq is the fleet broker's own");
    }
}
