//! The Evpnd gRPC service. Foundation skeleton: `GetInstance` reports this
//! host's identity (health of VPP and BIRD is "not checked yet" until the
//! adapters land), `WatchEvents` streams this host's events, and every other
//! RPC answers UNIMPLEMENTED (never a fake success).
use std::{sync::Arc, time::SystemTime};

use evpn_api::v1::{self, evpnd_server::Evpnd};
use evpn_daemon::{events::EventBroker, impl_with_unimplemented, metrics::CommonMetrics, watch};
use evpn_model::Error;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::config::{Config, Dataplane};

/// State shared by the service's handlers.
pub struct EvpndService {
    pub cfg: Arc<Config>,
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
            Err(Error::not_found(evpn_model::error::Object::Instance, id))
        }
    }
}

impl_with_unimplemented! {
impl Evpnd for EvpndService {
    unimplemented {
        create_evpn_instance(v1::CreateEvpnInstanceRequest) -> v1::EvpnInstance = "CreateEvpnInstance";
        list_evpn_instances(v1::InstanceRef) -> v1::EvpnInstanceList = "ListEvpnInstances";
        get_evpn_instance(v1::EvpnRef) -> v1::EvpnInstance = "GetEvpnInstance";
        set_evpn_instance_enabled(v1::SetEnabledRequest) -> v1::EvpnInstance = "SetEvpnInstanceEnabled";
        delete_evpn_instance(v1::EvpnRef) -> v1::Empty = "DeleteEvpnInstance";
        create_bvi(v1::CreateBviRequest) -> v1::Bvi = "CreateBVI";
        list_bv_is(v1::InstanceRef) -> v1::BviList = "ListBVIs";
        get_bvi(v1::EvpnRef) -> v1::Bvi = "GetBVI";
        replace_bvi(v1::ReplaceBviRequest) -> v1::Bvi = "ReplaceBVI";
        delete_bvi(v1::EvpnRef) -> v1::Empty = "DeleteBVI";
        bind_group_bvi(v1::HostBindGroupBviRequest) -> v1::Bvi = "BindGroupBVI";
        release_group_bvi(v1::HostReleaseGroupBviRequest) -> v1::Bvi = "ReleaseGroupBVI";
        get_vpp_info(v1::InstanceRef) -> v1::VppInfo = "GetVPPInfo";
        get_bird_info(v1::InstanceRef) -> v1::BirdInfo = "GetBirdInfo";
        get_mac_announcers(v1::GetMacAnnouncersRequest) -> v1::MacAnnouncers = "GetMacAnnouncers";
    }

    async fn get_instance(&self, req: Request<v1::InstanceRef>) -> Result<Response<v1::InstanceInfo>, Status> {
        self.check_instance(&req.get_ref().instance_id)?;
        let since = self.started_at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let c = &self.cfg;
        Ok(Response::new(v1::InstanceInfo {
            instance_id: c.instance_id.clone(),
            version: evpn_daemon::build::VERSION.into(),
            commit: evpn_daemon::build::COMMIT.into(),
            grpc_address: c.advertise_addr.clone(),
            dataplane: match c.dataplane {
                Dataplane::Vpp => "vpp",
                Dataplane::Linux => "linux",
            }
            .into(),
            // No start-up reconcile exists yet, so this host is not ready.
            ready: false,
            vpp: if c.dataplane == Dataplane::Vpp {
                v1::Health::Unspecified
            } else {
                v1::Health::NotUsed
            }
            .into(),
            bird: v1::Health::Unspecified.into(),
            registry_address: c.registry.clone(),
            registered: false,
            evpn_count: 0,
            started_at: Some(pbjson_types::Timestamp {
                seconds: since.as_secs() as i64,
                nanos: since.subsec_nanos() as i32,
            }),
        }))
    }

    type WatchEventsStream = watch::EventStream;

    async fn watch_events(
        &self,
        req: Request<v1::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let req = req.into_inner();
        let filter = watch::filter_from_proto(&req)?;
        let snapshot = req.snapshot.then(Vec::new);
        Ok(Response::new(watch::watch(
            &self.broker,
            filter,
            snapshot,
            self.shutdown.clone(),
            self.metrics.clone(),
        )))
    }
}
}
