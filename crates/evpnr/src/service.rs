//! The Evpnr gRPC service. This is the skeleton of the foundation issue:
//! `WatchEvents` serves evpnr's own records from the fleet broker; every
//! other RPC answers UNIMPLEMENTED until the registry lands (never a fake
//! success).
use std::sync::Arc;

use evpn_api::v1::{self, evpnr_server::Evpnr};
use evpn_daemon::impl_with_unimplemented;
use evpn_daemon::{events::EventBroker, metrics::CommonMetrics, watch};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// State shared by the service's handlers.
pub struct EvpnrService {
    pub broker: EventBroker,
    pub metrics: Arc<CommonMetrics>,
    pub shutdown: CancellationToken,
}

impl_with_unimplemented! {
impl Evpnr for EvpnrService {
    unimplemented {
        register_instance(v1::RegisterInstanceRequest) -> v1::RegisterInstanceResponse = "RegisterInstance";
        report_ready(v1::ReportReadyRequest) -> v1::Empty = "ReportReady";
        list_instances(v1::Empty) -> v1::InstanceList = "ListInstances";
        get_instance(v1::InstanceRef) -> v1::InstanceInfo = "GetInstance";
        get_instance_status(v1::InstanceRef) -> v1::InstanceStatus = "GetInstanceStatus";
        delete_instance(v1::InstanceRef) -> v1::Empty = "DeleteInstance";
        list_groups(v1::Empty) -> v1::GroupList = "ListGroups";
        get_group(v1::GroupRef) -> v1::Group = "GetGroup";
        create_group(v1::CreateGroupRequest) -> v1::Group = "CreateGroup";
        delete_group(v1::GroupRef) -> v1::Empty = "DeleteGroup";
        add_group_member(v1::GroupMemberRequest) -> v1::Group = "AddGroupMember";
        remove_group_member(v1::GroupMemberRequest) -> v1::Group = "RemoveGroupMember";
        create_group_bvi(v1::GroupBviRequest) -> v1::Group = "CreateGroupBVI";
        delete_group_bvi(v1::GroupRef) -> v1::Group = "DeleteGroupBVI";
        set_group_mtu(v1::SetGroupMtuRequest) -> v1::Group = "SetGroupMTU";
        add_group_bvi_address(v1::GroupBviAddAddressRequest) -> v1::Group = "AddGroupBVIAddress";
        delete_group_bvi_address(v1::GroupBviDeleteAddressRequest) -> v1::Group = "DeleteGroupBVIAddress";
        bind_group_bvi(v1::BindGroupBviRequest) -> v1::Empty = "BindGroupBVI";
        release_group_bvi(v1::ReleaseGroupBviRequest) -> v1::Empty = "ReleaseGroupBVI";
        move_group_bvi(v1::MoveGroupBviRequest) -> v1::Group = "MoveGroupBVI";
        list_evpn_instances(v1::InstanceRef) -> v1::EvpnInstanceList = "ListEvpnInstances";
        get_evpn_instance(v1::EvpnRef) -> v1::EvpnInstance = "GetEvpnInstance";
        set_evpn_instance_enabled(v1::SetEnabledRequest) -> v1::EvpnInstance = "SetEvpnInstanceEnabled";
        list_bv_is(v1::InstanceRef) -> v1::BviList = "ListBVIs";
        get_bvi(v1::EvpnRef) -> v1::Bvi = "GetBVI";
        get_vpp_info(v1::InstanceRef) -> v1::VppInfo = "GetVPPInfo";
        get_bird_info(v1::InstanceRef) -> v1::BirdInfo = "GetBirdInfo";
    }

    type WatchEventsStream = watch::EventStream;

    async fn watch_events(
        &self,
        req: Request<v1::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let req = req.into_inner();
        let filter = watch::filter_from_proto(&req)?;
        // The registry has no state to replay yet: a snapshot is just the marker.
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
