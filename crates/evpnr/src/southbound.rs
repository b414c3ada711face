//! The registry's southbound interface: what evpnr asks of a member, in
//! domain types. Implemented over gRPC by `members::Grpc` (the only place,
//! with `convert.rs`, that builds wire messages for a member); unit tests
//! drive the registry with a fake implementing the same trait.
use evpn_model::{
    Error, Mac,
    settle::{SettleOutcome, SettlePolicy},
};
use futures::future::BoxFuture;
use ipnet::IpNet;

use crate::plan::{ActualBvi, ActualEvpn, Desired};

/// What a member reports: its eVPNs and BVIs.
pub type Listing = (Vec<ActualEvpn>, Vec<ActualBvi>);

/// A bind of a group's gateway identity on a member.
#[derive(Debug, Clone, PartialEq)]
pub struct BindRequest {
    pub group: String,
    pub vmac: Mac,
    pub addresses: Vec<IpNet>,
    /// The evidence wait before the claim (None: the member holds the vMAC
    /// already, only its addresses change).
    pub settle: Option<SettlePolicy>,
}

/// BIRD on a member that released, as its look right after the release
/// found it (rule F15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BirdSeen {
    /// Its control socket refused the connection or does not exist.
    NotRunning,
    /// Its control socket accepted the connection.
    Running,
    /// Anything else (a hang, a timeout, another error, not reported).
    Unknown,
}

/// What a member that answered a release saw of its own links to the
/// fabric right after it (rule F15, `docs/failover.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseEvidence {
    pub bird: BirdSeen,
    /// Each tracked underlay interface and whether it existed and was up;
    /// empty: none is tracked.
    pub underlay: Vec<(String, bool)>,
}

/// What evpnr asks of a member. Each call is bounded and counted by the
/// registry (`reg`, of type `R`: the registry passes itself, so this
/// interface does not depend on it); errors are registry errors naming the
/// member and the call.
pub trait Southbound<R: ?Sized>: Send + Sync + 'static {
    /// The member's eVPNs and BVIs.
    fn list<'a>(&'a self, reg: &'a R, id: &'a str) -> BoxFuture<'a, Result<Listing, Error>>;
    /// Create the eVPN a group requires.
    fn create_evpn<'a>(
        &'a self,
        reg: &'a R,
        id: &'a str,
        d: &'a Desired,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// Create the group's BVI (per-host MAC, MTU).
    fn create_bvi<'a>(
        &'a self,
        reg: &'a R,
        id: &'a str,
        group: &'a str,
        mac: Mac,
        mtu: u32,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// Replace the group's BVI (per-host MAC, MTU).
    fn replace_bvi<'a>(
        &'a self,
        reg: &'a R,
        id: &'a str,
        group: &'a str,
        mac: Mac,
        mtu: u32,
    ) -> BoxFuture<'a, Result<(), Error>>;
    /// Delete an eVPN (and its BVI, released first). Ok(false): it was not
    /// there.
    fn delete_evpn<'a>(
        &'a self,
        reg: &'a R,
        id: &'a str,
        slug: &'a str,
    ) -> BoxFuture<'a, Result<bool, Error>>;
    /// Bind the gateway identity; the evidence wait's outcome if one was
    /// asked for (None also from a member that did not report it).
    fn bind<'a>(
        &'a self,
        reg: &'a R,
        id: &'a str,
        b: &'a BindRequest,
    ) -> BoxFuture<'a, Result<Option<SettleOutcome>, Error>>;
    /// Whether the member's eVPN `slug` is enabled (None: the member has
    /// no such eVPN). Asked of a move's target before anything else (R13),
    /// which also has it start reading what its bind will check
    /// (`PrepareGroupBVI`).
    fn evpn_enabled<'a>(
        &'a self,
        reg: &'a R,
        id: &'a str,
        slug: &'a str,
    ) -> BoxFuture<'a, Result<Option<bool>, Error>>;
    /// Release the gateway identity. A member without the eVPN or BVI
    /// (NOT_FOUND) cannot hold the vMAC: that is a release too. The
    /// member's look at its links after the release, if it reported one
    /// (None: NOT_FOUND, or an evpnd older than evpnr).
    fn release<'a>(
        &'a self,
        reg: &'a R,
        id: &'a str,
        group: &'a str,
    ) -> BoxFuture<'a, Result<Option<ReleaseEvidence>, Error>>;
}
