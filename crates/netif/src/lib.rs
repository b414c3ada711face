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
//! * [`watch`]: link, address and FDB change events ([`Watcher`]).
//!
//! # Invariants
//! * The library never runs external programs; everything goes through rtnetlink, except
//!   `accept_dad`, written to `/proc/sys/net/ipv6/conf/<if>/` (the kernel has no netlink setter).
//!   Every netlink socket, raw socket and sysctl access acts on the network namespace of the
//!   thread that opened or performed it.
//! * `unsafe` exists only in [`announce::sock`] (building a `sockaddr_ll`).
//! * Decisions are sans-IO ([`plan`]): desired + observed → ordered actions; planners are
//!   idempotent (planning on the state the actions produce yields nothing), so a caller
//!   retries or reconciles after a restart by simply calling the same operation again.
//! * Devices are only ever touched under the names derived by [`names`] (prefixes `brg-`,
//!   `vxl-`, `bvp-`, `bvi-` are reserved); a device under one of those names with the wrong
//!   kind is an [`Error::Conflict`], never silently replaced.
//! * The BVI's MAC is changed only by [`plan::plan_set_mac`] (and once at creation), so
//!   `ensure_*` on a bound gateway changes nothing. The gateway's FDB entry is always a clean
//!   `static` bridge entry on `bvp-<slug>` (delete + add, never `replace`), and setting the
//!   per-host MAC deletes every managed entry on that port explicitly. The order of a bind or
//!   release (addresses, MAC, link-local) is the caller's: evpnd's one BVI planner.
//! * The BVI's only automatic address is the EUI-64 link-local of the per-host MAC (addrgenmode
//!   none, accept_dad 0, nodad); ports and bridge have IPv6 addrgenmode none.
//! * Errors name the operation and the interface; `is_exists()`/`is_not_found()` let callers
//!   be idempotent.

#![warn(missing_docs)]

pub mod addr;
pub mod announce;
pub mod dataplane;
pub mod error;
pub mod fdb;
pub mod link;
pub mod names;
pub mod plan;
pub mod sysctl;
pub mod watch;

pub use addr::{Addr, eui64_link_local};
pub use dataplane::Dataplane;
pub use error::{Error, Op, Result};
/// The workspace's one MAC type (re-exported so users of this crate need no
/// other import).
pub use evpn_model::Mac;
pub use fdb::{FdbEntry, FdbState, FdbTable};
pub use link::{
    AddrGenMode, BridgePortInfo, Link, LinkKind, Netlink, VXLAN_PORT, VxlanInfo, VxlanOpts,
};
pub use names::{EvpnNames, Slug, SlugError};
pub use plan::{Action, BviSpec, EvpnSpec, Observed};
pub use watch::{Event, Watcher};
