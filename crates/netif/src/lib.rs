//! Linux kernel dataplane primitives for `evpnd`'s `linux` dataplane.
//!
//! * [`names`]: device names derived from an eVPN slug (≤ 15 bytes, collision-free).
//! * [`Netlink`] (modules [`link`], [`addr`], [`fdb`]): bridges, VXLAN devices, veth pairs,
//!   bridge-port options, MAC/MTU/up, IPv6 addrgenmode, addresses and the bridge FDB, all
//!   through rtnetlink; [`sysctl`] for `accept_dad` (no netlink setter exists).
//! * [`announce`]: gratuitous ARP / unsolicited NA frames (pure), a paced [`announce::Schedule`]
//!   and the raw sockets that send them (the crate's only `unsafe` code).
//! * [`plan`]: sans-IO planners (desired + observed → ordered [`plan::Action`]s).
//! * [`dataplane`]: [`Dataplane`], which observes, plans and executes per eVPN.
//!
//! The library never runs external programs. Every netlink socket and sysctl write acts on
//! the network namespace of the thread that opened it.

pub mod addr;
pub mod announce;
pub mod dataplane;
pub mod error;
pub mod fdb;
pub mod link;
pub mod names;
pub mod plan;
pub mod sysctl;

pub use addr::{Addr, eui64_link_local};
pub use dataplane::Dataplane;
pub use error::{Error, Op, Result};
pub use fdb::{FdbEntry, FdbState, FdbTable};
pub use link::{
    AddrGenMode, BridgePortInfo, Link, LinkKind, Netlink, VXLAN_PORT, VxlanInfo, VxlanOpts,
};
pub use names::{EvpnNames, Slug, SlugError};
pub use plan::{Action, BviSpec, EvpnSpec, Observed};
