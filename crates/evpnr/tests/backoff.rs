//! A member whose event stream opens and closes at once is re-dialled with
//! the jittered back-off, not every 100 ms forever (issue: "never two
//! holders, whatever the input", item 9). The member here is a fake evpnd
//! that answers GetInstance as itself and ends every WatchEvents stream at
//! once; the test counts how often evpnr opens one.
mod common;

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::{Fleet, serial, wait_for};
use evpn_api::v1::{self, evpnd_server::Evpnd};
use evpn_daemon::impl_with_unimplemented;
use tonic::{Request, Response, Status};

const ID: &str = "dpu9-flap";

struct Flapping {
    opened: Arc<AtomicUsize>,
}

impl_with_unimplemented! {
impl Evpnd for Flapping {
    unimplemented {
        create_evpn_instance(v1::CreateEvpnInstanceRequest) -> v1::EvpnInstance = "CreateEvpnInstance";
        list_evpn_instances(v1::InstanceRef) -> v1::EvpnInstanceList = "ListEvpnInstances";
        get_evpn_instance(v1::EvpnRef) -> v1::EvpnInstance = "GetEvpnInstance";
        prepare_group_bvi(v1::EvpnRef) -> v1::EvpnInstance = "PrepareGroupBVI";
        set_evpn_instance_enabled(v1::SetEnabledRequest) -> v1::EvpnInstance = "SetEvpnInstanceEnabled";
        delete_evpn_instance(v1::EvpnRef) -> v1::Empty = "DeleteEvpnInstance";
        create_bvi(v1::CreateBviRequest) -> v1::Bvi = "CreateBVI";
        list_bv_is(v1::InstanceRef) -> v1::BviList = "ListBVIs";
        get_bvi(v1::EvpnRef) -> v1::Bvi = "GetBVI";
        replace_bvi(v1::ReplaceBviRequest) -> v1::Bvi = "ReplaceBVI";
        delete_bvi(v1::EvpnRef) -> v1::Empty = "DeleteBVI";
        bind_group_bvi(v1::HostBindGroupBviRequest) -> v1::Bvi = "BindGroupBVI";
        release_group_bvi(v1::HostReleaseGroupBviRequest) -> v1::Bvi = "ReleaseGroupBVI";
        get_mac_announcers(v1::GetMacAnnouncersRequest) -> v1::MacAnnouncers = "GetMacAnnouncers";
        get_vpp_info(v1::InstanceRef) -> v1::VppInfo = "GetVPPInfo";
        get_bird_info(v1::InstanceRef) -> v1::BirdInfo = "GetBirdInfo";
    }

    async fn get_instance(
        &self,
        _req: Request<v1::InstanceRef>,
    ) -> Result<Response<v1::InstanceInfo>, Status> {
        Ok(Response::new(v1::InstanceInfo {
            instance_id: ID.into(),
            ready: true,
            ..Default::default()
        }))
    }

    type WatchEventsStream =
        Pin<Box<dyn futures::Stream<Item = Result<v1::Event, Status>> + Send + 'static>>;

    /// Opens, then ends at once.
    async fn watch_events(
        &self,
        _req: Request<v1::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(Box::pin(futures::stream::empty())))
    }
}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_stream_closes_at_once_is_redialled_with_back_off() {
    let _s = serial().await;
    let f = Fleet::new("a_member_whose_stream_closes_at_once", &[]).await;
    let opened = Arc::new(AtomicUsize::new(0));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let svc = Flapping {
        opened: opened.clone(),
    };
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(v1::evpnd_server::EvpndServer::new(svc))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l)),
    );
    f.client()
        .await
        .register_instance(v1::RegisterInstanceRequest {
            instance_id: ID.into(),
            grpc_address: addr,
            version: "test".into(),
            ready: true,
            ..Default::default()
        })
        .await
        .unwrap();
    wait_for("the first stream", || async {
        opened.load(Ordering::SeqCst) >= 1
    })
    .await;
    // Not synchronisation: the observation window, 4 s. With the back-off
    // (100 ms doubling, ±25 %) that is at most 6 more streams; re-dialling
    // every 100 ms would be about 40.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let n = opened.load(Ordering::SeqCst);
    assert!((2..=8).contains(&n), "{n} streams opened in about 4 s");
    server.abort();
}
