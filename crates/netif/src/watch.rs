//! Kernel change events (links, addresses, bridge FDB) from rtnetlink multicast groups.
//!
//! For evidence-based waiting (e.g. "BIRD's remote entry for the vMAC is gone") and for
//! noticing outside changes that call for a reconcile. Polling dumps is the expensive way
//! to do this (`docs/fabric.md` baseline §8).

use futures::StreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use rtnetlink::MulticastGroup;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::SocketAddr;

use crate::addr::{Addr, parse_addr};
use crate::error::{Error, Op, Result};
use crate::fdb::{FdbEntry, parse_fdb};
use crate::link::{Link, parse_link};

/// One kernel change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A link appeared or changed.
    LinkNew(Link),
    /// A link was deleted.
    LinkDel(Link),
    /// An address was added (or changed, e.g. stopped being tentative).
    AddrNew(Addr),
    /// An address was deleted.
    AddrDel(Addr),
    /// A bridge FDB entry appeared or changed.
    FdbNew(FdbEntry),
    /// A bridge FDB entry was deleted.
    FdbDel(FdbEntry),
}

/// A subscription to link, address and bridge-FDB events in the calling thread's namespace.
/// Dropping it closes the socket.
#[derive(Debug)]
pub struct Watcher {
    rx: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Subscribe (spawns the socket's driver task on the current tokio runtime).
    pub fn open() -> Result<Watcher> {
        let (conn, _handle, rx) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Neigh,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ])
        .map_err(|e| Error::from_io(Op::Open, "netlink events", e))?;
        let task = tokio::spawn(conn);
        Ok(Watcher { rx, task })
    }

    /// The next event; `None` when the socket is gone. Messages of other kinds (ARP/ND
    /// neighbours, routes) are skipped.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            let (msg, _) = self.rx.next().await?;
            let NetlinkPayload::InnerMessage(m) = msg.payload else {
                continue;
            };
            let ev = match m {
                RouteNetlinkMessage::NewLink(l) => Some(Event::LinkNew(parse_link(&l))),
                RouteNetlinkMessage::DelLink(l) => Some(Event::LinkDel(parse_link(&l))),
                RouteNetlinkMessage::NewAddress(a) => parse_addr(&a).map(Event::AddrNew),
                RouteNetlinkMessage::DelAddress(a) => parse_addr(&a).map(Event::AddrDel),
                RouteNetlinkMessage::NewNeighbour(n) => parse_fdb(&n).map(Event::FdbNew),
                RouteNetlinkMessage::DelNeighbour(n) => parse_fdb(&n).map(Event::FdbDel),
                _ => None,
            };
            if let Some(ev) = ev {
                return Some(ev);
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}
