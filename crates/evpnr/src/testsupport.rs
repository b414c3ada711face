//! Test support: a scripted in-process Evpnd (BindGroupBVI runs the real
//! evidence wait over answers from a queue, as GetMacAnnouncers does;
//! ReleaseGroupBVI confirms; the host has no eVPNs; WatchEvents streams given
//! events; everything else UNIMPLEMENTED) and a registry wired to it.
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use clap::Parser;
use evpn_api::v1::{self, evpnd_server::Evpnd};
use evpn_daemon::{events::EventBroker, impl_with_unimplemented, settle::wait_for_evidence, watch};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::{metrics::RegistryMetrics, model::State, registry::Registry, store::Store};

pub type Answers = Vec<Result<v1::MacAnnouncers, Status>>;

pub struct Scripted {
    answers: Arc<Mutex<VecDeque<Result<v1::MacAnnouncers, Status>>>>,
    events: Vec<v1::Event>,
}

impl_with_unimplemented! {
impl Evpnd for Scripted {
    unimplemented {
        create_evpn_instance(v1::CreateEvpnInstanceRequest) -> v1::EvpnInstance = "CreateEvpnInstance";
        // An evpnd from before PrepareGroupBVI: evpnr asks GetEvpnInstance.
        prepare_group_bvi(v1::EvpnRef) -> v1::EvpnInstance = "PrepareGroupBVI";
        set_evpn_instance_enabled(v1::SetEnabledRequest) -> v1::EvpnInstance = "SetEvpnInstanceEnabled";
        delete_evpn_instance(v1::EvpnRef) -> v1::Empty = "DeleteEvpnInstance";
        create_bvi(v1::CreateBviRequest) -> v1::Bvi = "CreateBVI";
        get_bvi(v1::EvpnRef) -> v1::Bvi = "GetBVI";
        replace_bvi(v1::ReplaceBviRequest) -> v1::Bvi = "ReplaceBVI";
        delete_bvi(v1::EvpnRef) -> v1::Empty = "DeleteBVI";
        get_vpp_info(v1::InstanceRef) -> v1::VppInfo = "GetVPPInfo";
        get_bird_info(v1::InstanceRef) -> v1::BirdInfo = "GetBirdInfo";
    }

    /// This scripted evpnd is instance "t" (the ID tests attach it as).
    async fn get_instance(
        &self,
        _req: Request<v1::InstanceRef>,
    ) -> Result<Response<v1::InstanceInfo>, Status> {
        Ok(Response::new(v1::InstanceInfo {
            instance_id: "t".into(),
            ready: true,
            ..Default::default()
        }))
    }

    /// Every eVPN is enabled but `off`.
    async fn get_evpn_instance(
        &self,
        req: Request<v1::EvpnRef>,
    ) -> Result<Response<v1::EvpnInstance>, Status> {
        let r = req.into_inner();
        Ok(Response::new(v1::EvpnInstance {
            enabled: r.slug != "off",
            slug: r.slug,
            ..Default::default()
        }))
    }

    async fn get_mac_announcers(
        &self,
        _req: Request<v1::GetMacAnnouncersRequest>,
    ) -> Result<Response<v1::MacAnnouncers>, Status> {
        self.next_answer().map(Response::new)
    }

    async fn bind_group_bvi(
        &self,
        req: Request<v1::HostBindGroupBviRequest>,
    ) -> Result<Response<v1::Bvi>, Status> {
        let r = req.into_inner();
        named_me(&r.instance_id, &r.slug, &r.group_id)?;
        let settle = match &r.settle {
            Some(w) => {
                let p = evpn_daemon::settle::policy_from_proto(w)?;
                let o = wait_for_evidence(p, || {
                    let a = self
                        .next_answer()
                        .map(|a| a.vteps)
                        .map_err(|s| format!("{:?}: {}", s.code(), s.message()));
                    std::future::ready(a)
                })
                .await;
                Some(evpn_daemon::settle::outcome_to_proto(&o))
            }
            None => None,
        };
        Ok(Response::new(v1::Bvi {
            slug: r.slug,
            mac: r.vmac,
            group_id: r.group_id,
            settle,
            ..Default::default()
        }))
    }

    /// A host with no eVPNs.
    async fn list_evpn_instances(
        &self,
        _req: Request<v1::InstanceRef>,
    ) -> Result<Response<v1::EvpnInstanceList>, Status> {
        Ok(Response::new(v1::EvpnInstanceList::default()))
    }

    async fn list_bv_is(
        &self,
        _req: Request<v1::InstanceRef>,
    ) -> Result<Response<v1::BviList>, Status> {
        Ok(Response::new(v1::BviList::default()))
    }

    async fn release_group_bvi(
        &self,
        req: Request<v1::HostReleaseGroupBviRequest>,
    ) -> Result<Response<v1::Bvi>, Status> {
        let r = req.into_inner();
        named_me(&r.instance_id, &r.slug, &r.group_id)?;
        Ok(Response::new(v1::Bvi {
            slug: r.slug,
            role: v1::bvi::Role::Candidate as i32,
            ..Default::default()
        }))
    }

    type WatchEventsStream = watch::EventStream;

    async fn watch_events(
        &self,
        req: Request<v1::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        if !req.get_ref().registrar {
            return Err(Status::invalid_argument("evpnr subscribes as registrar"));
        }
        // The given events, then the stream stays open.
        let evs: Vec<Result<v1::Event, Status>> = self.events.iter().cloned().map(Ok).collect();
        Ok(Response::new(Box::pin(futures::StreamExt::chain(
            futures::stream::iter(evs),
            futures::stream::pending(),
        ))))
    }
}
}

/// A bind or release names this instance ("t") and the group's eVPN (the
/// group ID is the slug): refused otherwise, as a real evpnd refuses a call
/// meant for another instance.
fn named_me(instance_id: &str, slug: &str, group_id: &str) -> Result<(), Status> {
    if instance_id != "t" || slug.is_empty() || group_id != slug {
        return Err(Status::failed_precondition(format!(
            "instance_id {instance_id:?}, slug {slug:?}, group_id {group_id:?}: not for instance t"
        )));
    }
    Ok(())
}

impl Scripted {
    /// The next scripted announcers; when the script is exhausted the vMAC
    /// is still announced by 192.0.2.9.
    fn next_answer(&self) -> Result<v1::MacAnnouncers, Status> {
        let next = self.answers.lock().unwrap().pop_front();
        next.unwrap_or_else(|| {
            Ok(v1::MacAnnouncers {
                vteps: vec!["192.0.2.9".into()],
                local: false,
            })
        })
    }
}

/// Serve a scripted Evpnd on 127.0.0.1:0 and return a registry (max-wait
/// `max_wait`, member-timeout 500 ms) with it attached as member "t" (ready).
pub async fn registry_with(
    answers: Answers,
    events: Vec<v1::Event>,
    max_wait: &str,
) -> (Arc<Registry>, tempfile::TempDir) {
    let (reg, dir, addr) = registry_unattached(answers, events, max_wait).await;
    reg.attach("t", &addr, true).unwrap();
    (reg, dir)
}

/// Like [`registry_with`], without attaching; returns the member address.
pub async fn registry_unattached(
    answers: Answers,
    events: Vec<v1::Event>,
    max_wait: &str,
) -> (Arc<Registry>, tempfile::TempDir, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let svc = Scripted {
        answers: Arc::new(Mutex::new(VecDeque::from(answers))),
        events,
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(v1::evpnd_server::EvpndServer::new(svc))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l)),
    );
    let mut cfg = crate::config::load(&crate::config::Args::parse_from(["evpnr"]))
        .unwrap()
        .cfg;
    cfg.move_.max_wait = max_wait.parse().unwrap();
    // Short, so that tests can show a longer evidence wait is not cut.
    cfg.member_timeout = "500ms".parse().unwrap();
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(cfg));
    // Keep the channel open for the test's lifetime.
    std::mem::forget(tx);
    let dir = tempfile::tempdir().unwrap();
    let mut preg = prometheus_client::registry::Registry::default();
    let reg = Arc::new(Registry::new(
        State::default(),
        Store::open(dir.path()).unwrap(),
        evpn_daemon::durable::StoreHealth::register(
            &mut preg,
            EventBroker::new("", 64),
            tokio::sync::watch::channel(true).0,
        ),
        EventBroker::new("", 64),
        RegistryMetrics::register(&mut preg),
        rx,
        CancellationToken::new(),
        Arc::new(crate::members::Grpc),
    ));
    (reg, dir, addr)
}
