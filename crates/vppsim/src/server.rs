//! Socket server: framing, handshake, per-connection loop and message dispatch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, warn};
use vpp_api::MsgTable;
use vpp_api::msgs::{self, Dump, Message, Reply, Request};
use vpp_api::wire::{put_frame, split_frames};

use crate::faults::{Faults, Verdict};
use crate::journal::Journal;
use crate::model::{Fields, Model, rv};
use crate::service::{Served, ServiceLog};

/// An interface-event subscriber: `(pid, outbound queue)`.
pub(crate) type Subscriber = (u32, mpsc::UnboundedSender<Vec<u8>>);

/// Everything the connections share.
pub(crate) struct Shared {
    pub table: MsgTable,
    pub model: Mutex<Model>,
    pub journal: Mutex<Journal>,
    /// Every message's service time (see [`crate::SimHandle::served`]).
    pub served: Mutex<ServiceLog>,
    pub faults: Mutex<Faults>,
    /// Interface-event subscribers: client_index → (pid, outbound queue).
    pub subscribers: Mutex<HashMap<u32, Subscriber>>,
    /// Closes every client connection when signalled.
    pub kill: broadcast::Sender<()>,
    pub next_slot: AtomicU32,
    pub version: String,
    /// Called with the new state after every change (see
    /// [`crate::SimHandle::observe`]), under the model's lock.
    pub observers: Mutex<Vec<Observer>>,
}

/// A state observer.
pub(crate) type Observer = Box<dyn Fn(&crate::SimState) + Send + Sync>;

impl Shared {
    pub fn new(table: MsgTable, journal: Journal, lcp_tap_fail: bool, version: String) -> Self {
        let mut model = Model::new();
        model.lcp_tap_fail = lcp_tap_fail;
        let (kill, _) = broadcast::channel(4);
        Shared {
            table,
            model: Mutex::new(model),
            journal: Mutex::new(journal),
            served: Mutex::new(ServiceLog::default()),
            faults: Mutex::new(Faults::default()),
            subscribers: Mutex::new(HashMap::new()),
            kill,
            next_slot: AtomicU32::new(1),
            version,
            observers: Mutex::new(Vec::new()),
        }
    }

    /// A VPP restart: every client connection closes, the dataplane state,
    /// the interface-index allocator and the event subscriptions are gone
    /// (a fresh `Model`); the host's conditions (`lcp_tap_fail`, the lcp page
    /// size), the journal and the faults stay. The socket keeps listening,
    /// so "VPP is back" is the moment this returns.
    pub fn restart(&self) {
        if let Ok(mut m) = self.model.lock() {
            let mut fresh = Model::new();
            fresh.lcp_tap_fail = m.lcp_tap_fail;
            fresh.lcp_get_page = m.lcp_get_page;
            *m = fresh;
            self.notify(&m.st);
        }
        if let Ok(mut s) = self.subscribers.lock() {
            s.clear();
        }
        let _ = self.kill.send(());
    }

    /// Tells every observer about the state `st` (called with the model
    /// locked, so observers see changes in the order they happened).
    pub fn notify(&self, st: &crate::SimState) {
        if let Ok(o) = self.observers.lock() {
            for f in o.iter() {
                f(st);
            }
        }
    }

    /// Sends the coalesced interface events to every subscriber.
    pub fn flush_events(&self) {
        let events = match self.model.lock() {
            Ok(mut m) => m.take_events(),
            Err(_) => return,
        };
        if events.is_empty() {
            return;
        }
        let Some(ev_id) = self.table.get(msgs::SwInterfaceEvent::NAME_CRC) else {
            return;
        };
        let Ok(subs) = self.subscribers.lock() else {
            return;
        };
        for (sw_if_index, flags, deleted) in events {
            for (ci, (pid, tx)) in subs.iter() {
                let ev = msgs::SwInterfaceEvent {
                    pid: *pid,
                    sw_if_index,
                    flags,
                    deleted,
                };
                let _ = tx.send(msgs::encode_msg(&ev, ev_id, *ci, 0));
            }
        }
    }
}

/// Accept loop.
pub(crate) async fn serve(sh: Arc<Shared>, listener: UnixListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_conn(sh.clone(), stream));
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

enum Action {
    Continue,
    Close,
}

struct Conn {
    client_index: Option<u32>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    /// The last message handled was a dump (a `control_ping` now closes it).
    after_dump: bool,
}

/// Is `name_crc` a dump request (`sw_interface_dump_aa610c27`)?
fn is_dump(name_crc: &str) -> bool {
    name_crc
        .rsplit_once('_')
        .is_some_and(|(name, _)| name.ends_with("_dump"))
}

async fn serve_conn(sh: Arc<Shared>, stream: UnixStream) {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        let mut buf = BytesMut::new();
        while let Some(body) = rx.recv().await {
            buf.clear();
            put_frame(&mut buf, &body);
            // Let several queued frames go out in one write.
            while let Ok(more) = rx.try_recv() {
                put_frame(&mut buf, &more);
            }
            if wr.write_all(&buf).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut kill = sh.kill.subscribe();
    let mut conn = Conn {
        client_index: None,
        out: tx,
        after_dump: false,
    };
    let mut buf = BytesMut::with_capacity(4096);
    let mut killed = false;
    // When the message being handled is done: VPP starts a message that was
    // already queued right then, not when it gets round to looking again.
    let mut busy_until = tokio::time::Instant::now();
    'outer: loop {
        tokio::select! {
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = kill.recv() => { killed = true; break; }
        }
        let arrived = tokio::time::Instant::now();
        let frames = match split_frames(&mut buf) {
            Ok(f) => f,
            Err(e) => {
                warn!(error = %e, "bad frame, closing");
                break;
            }
        };
        for body in frames {
            let act = tokio::select! {
                a = handle(&sh, &mut conn, &body, arrived.max(busy_until), &mut busy_until) => a,
                _ = kill.recv() => { killed = true; break 'outer; }
            };
            if let Action::Close = act {
                sh.flush_events();
                break 'outer;
            }
        }
        sh.flush_events();
    }
    if let Some(ci) = conn.client_index
        && let Ok(mut s) = sh.subscribers.lock()
    {
        // VPP's reaper drops the registrations of a closed socket.
        s.remove(&ci);
    }
    drop(conn);
    if killed {
        writer.abort();
    } else {
        let _ = writer.await;
    }
}

/// Handle one message that VPP starts on at `start` (its arrival, or when
/// the message before it was done); a latency fault makes it done at
/// `start + latency`, recorded in `done`.
async fn handle(
    sh: &Shared,
    conn: &mut Conn,
    body: &[u8],
    start: tokio::time::Instant,
    done: &mut tokio::time::Instant,
) -> Action {
    let Some(id) = msgs::body_msg_id(body) else {
        return Action::Continue;
    };
    if id == msgs::SOCKCLNT_CREATE_ID {
        handshake(sh, conn, body);
        return Action::Continue;
    }
    let Some(ci) = conn.client_index else {
        debug!(msg_id = id, "message before the handshake dropped");
        return Action::Continue;
    };
    let Some(name) = sh.table.name(id).map(str::to_owned) else {
        debug!(msg_id = id, "no handler for msg id");
        return Action::Continue;
    };
    // VPP finds no registration for a wrong client_index and does not reply.
    match msgs::request_header(body) {
        Some((c, _)) if c == ci => {}
        _ => return Action::Continue,
    }
    let closes_dump = conn.after_dump && name == msgs::ControlPing::NAME_CRC;
    conn.after_dump = is_dump(&name);
    let delay = sh
        .faults
        .lock()
        .ok()
        .and_then(|f| f.latency_for(&name, closes_dump));
    if let Some(d) = delay {
        *done = start + d;
        precise_sleep_until(*done).await;
    }
    let verdict = sh
        .faults
        .lock()
        .map(|mut f| f.verdict(&name))
        .unwrap_or(Verdict::Handle);
    let err = match verdict {
        Verdict::Handle => None,
        Verdict::Hang => return Action::Continue,
        Verdict::Disconnect => return Action::Close,
        Verdict::Error(rv) => Some(rv),
    };
    let cx = Cx {
        sh,
        ci,
        out: &conn.out,
        err,
    };
    let act = dispatch(&cx, &name, body);
    if let Ok(mut l) = sh.served.lock() {
        l.record(Served {
            msg: name,
            start: start.into_std(),
            done: std::time::Instant::now(),
        });
    }
    act
}

/// A one-shot timerfd that owns its descriptor (so registering it with the
/// reactor is I/O-safe: the descriptor lives exactly as long as the
/// registration).
struct Timer(nix::sys::timerfd::TimerFd);

impl std::os::fd::AsRawFd for Timer {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsFd;
        self.0.as_fd().as_raw_fd()
    }
}

/// How long before a latency deadline the simulator stops sleeping and spins.
/// A sleeping thread on a small VM wakes 50-100 µs late (measured: p50 48 µs,
/// p99 103 µs); real VPP polls its API queue and has no such delay, so
/// without this the simulator's own lateness would count as ours.
const SPIN_BEFORE: std::time::Duration = std::time::Duration::from_micros(150);

/// Sleep until `deadline` with sub-millisecond precision: tokio's timer rounds up to
/// its 1 ms tick (a 1 ms latency fault would cost 1-2 ms), so the wait is a
/// one-shot timerfd (a high-resolution kernel timer) awaited through the
/// reactor, up to [`SPIN_BEFORE`] before the deadline, and a short spin for
/// the rest (at most 150 µs of one core per delayed message).
async fn precise_sleep_until(deadline: tokio::time::Instant) {
    sleep_until_near(deadline.checked_sub(SPIN_BEFORE).unwrap_or(deadline)).await;
    while tokio::time::Instant::now() < deadline {
        std::hint::spin_loop();
    }
}

/// The timerfd sleep (see [`precise_sleep_until`]).
async fn sleep_until_near(deadline: tokio::time::Instant) {
    use nix::sys::{
        time::TimeSpec,
        timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags},
    };
    let d = deadline.saturating_duration_since(tokio::time::Instant::now());
    if d.is_zero() {
        return;
    }
    let armed = TimerFd::new(
        ClockId::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )
    .and_then(|t| {
        t.set(
            Expiration::OneShot(TimeSpec::from_duration(d)),
            TimerSetTimeFlags::empty(),
        )?;
        Ok(Timer(t))
    })
    .map_err(std::io::Error::from);
    // `AsyncFd::new` is deprecated because it cannot check that the value
    // owns its descriptor; `Timer` does (see above).
    #[allow(deprecated)]
    let armed = armed.and_then(tokio::io::unix::AsyncFd::new);
    match armed {
        Ok(fd) => {
            if fd.readable().await.is_ok() {
                return;
            }
        }
        Err(e) => debug!(error = %e, "timerfd unavailable, using the coarse timer"),
    }
    tokio::time::sleep_until(deadline).await;
}

fn handshake(sh: &Shared, conn: &mut Conn, body: &[u8]) {
    let Ok((h, _req)) = msgs::decode_msg::<msgs::SockclntCreate>(body) else {
        return;
    };
    let ci = *conn
        .client_index
        .get_or_insert_with(|| 0x8000_0000 | sh.next_slot.fetch_add(1, Ordering::Relaxed));
    let rep = msgs::SockclntCreateReply {
        response: 0,
        index: ci,
        message_table: sh
            .table
            .entries()
            .into_iter()
            .map(|(i, n)| (i, n.to_owned()))
            .collect(),
    };
    let _ = conn.out.send(msgs::encode_msg(
        &rep,
        msgs::SOCKCLNT_CREATE_REPLY_ID,
        0,
        h.context,
    ));
}

struct Cx<'a> {
    sh: &'a Shared,
    ci: u32,
    out: &'a mpsc::UnboundedSender<Vec<u8>>,
    err: Option<i32>,
}

impl Cx<'_> {
    fn send<M: Message>(&self, m: &M, context: u32) {
        match self.sh.table.get(M::NAME_CRC) {
            Some(id) => {
                let _ = self.out.send(msgs::encode_msg(m, id, 0, context));
            }
            None => warn!(msg = M::NAME_CRC, "reply not in the message table"),
        }
    }

    /// Request/reply. `journal` marks state-changing messages.
    fn unary<R: Request>(
        &self,
        body: &[u8],
        journal: bool,
        f: impl FnOnce(&mut Model, &R) -> (R::Reply, Fields),
    ) -> Action {
        let Ok((h, req)) = msgs::decode_msg::<R>(body) else {
            debug!(msg = R::NAME, len = body.len(), "short message dropped");
            return Action::Continue;
        };
        let Ok(mut model) = self.sh.model.lock() else {
            return Action::Continue;
        };
        let (rep, fields, injected) = match self.err {
            Some(rv) => (R::Reply::with_retval(rv), Fields::new(), true),
            None => {
                let (rep, f) = f(&mut model, &req);
                (rep, f, false)
            }
        };
        if journal && let Ok(mut j) = self.sh.journal.lock() {
            j.record(self.ci, R::NAME, fields, rep.retval(), injected);
        }
        if journal && !injected {
            self.sh.notify(&model.st);
        }
        drop(model);
        self.send(&rep, h.context);
        Action::Continue
    }

    /// Dump: details only (the client's control_ping ends the stream).
    /// An injected error suppresses the details.
    fn dump<D: Dump>(&self, body: &[u8], f: impl FnOnce(&Model, &D) -> Vec<D::Details>) -> Action {
        let Ok((h, req)) = msgs::decode_msg::<D>(body) else {
            return Action::Continue;
        };
        if self.err.is_some() {
            return Action::Continue;
        }
        let details = match self.sh.model.lock() {
            Ok(m) => f(&m, &req),
            Err(_) => return Action::Continue,
        };
        for d in &details {
            self.send(d, h.context);
        }
        Action::Continue
    }
}

fn dispatch(cx: &Cx<'_>, name: &str, body: &[u8]) -> Action {
    use msgs::*;
    match name {
        n if n == ControlPing::NAME_CRC => cx.unary::<ControlPing>(body, false, |_, _| {
            let r = ControlPingReply {
                retval: 0,
                client_index: 0,
                vpe_pid: std::process::id(),
            };
            (r, Fields::new())
        }),
        n if n == ShowVersion::NAME_CRC => {
            let version = cx.sh.version.clone();
            cx.unary::<ShowVersion>(body, false, move |_, _| {
                let r = ShowVersionReply {
                    retval: 0,
                    program: "vpe".into(),
                    version,
                    build_date: build_date(),
                    build_directory: String::new(),
                };
                (r, Fields::new())
            })
        }
        n if n == SockclntDelete::NAME_CRC => {
            let Ok((h, req)) = decode_msg::<SockclntDelete>(body) else {
                return Action::Continue;
            };
            let ok = req.index == cx.ci;
            cx.send(
                &SockclntDeleteReply {
                    response: if ok { 1 } else { -1 },
                },
                h.context,
            );
            if ok { Action::Close } else { Action::Continue }
        }
        n if n == WantInterfaceEvents::NAME_CRC => {
            let sh = cx.sh;
            let (ci, out) = (cx.ci, cx.out.clone());
            cx.unary::<WantInterfaceEvents>(body, false, move |_, r| {
                let Ok(mut subs) = sh.subscribers.lock() else {
                    return (
                        WantInterfaceEventsReply {
                            retval: rv::UNSPECIFIED,
                        },
                        Fields::new(),
                    );
                };
                let exists = subs.contains_key(&ci);
                let retval = match (r.enable_disable != 0, exists) {
                    (true, true) | (false, false) => rv::INVALID_REGISTRATION,
                    (true, false) => {
                        subs.insert(ci, (r.pid, out));
                        0
                    }
                    (false, true) => {
                        subs.remove(&ci);
                        0
                    }
                };
                (WantInterfaceEventsReply { retval }, Fields::new())
            })
        }
        n if n == CreateLoopbackInstance::NAME_CRC => {
            cx.unary::<CreateLoopbackInstance>(body, true, |m, r| {
                let inst = r.is_specified.then_some(r.user_instance);
                let (retval, sw_if_index, f) = m.create_loopback(r.mac_address, inst);
                (
                    CreateLoopbackInstanceReply {
                        retval,
                        sw_if_index,
                    },
                    f,
                )
            })
        }
        n if n == CreateLoopback::NAME_CRC => cx.unary::<CreateLoopback>(body, true, |m, r| {
            let (retval, sw_if_index, f) = m.create_loopback(r.mac_address, None);
            (
                CreateLoopbackReply {
                    retval,
                    sw_if_index,
                },
                f,
            )
        }),
        n if n == DeleteLoopback::NAME_CRC => cx.unary::<DeleteLoopback>(body, true, |m, r| {
            let (retval, f) = m.delete_loopback(r.sw_if_index);
            (DeleteLoopbackReply { retval }, f)
        }),
        n if n == SwInterfaceSetMacAddress::NAME_CRC => {
            cx.unary::<SwInterfaceSetMacAddress>(body, true, |m, r| {
                let (retval, f) = m.set_mac(r.sw_if_index, r.mac_address);
                (SwInterfaceSetMacAddressReply { retval }, f)
            })
        }
        n if n == SwInterfaceSetFlags::NAME_CRC => {
            cx.unary::<SwInterfaceSetFlags>(body, true, |m, r| {
                let (retval, f) = m.set_flags(r.sw_if_index, r.flags);
                (SwInterfaceSetFlagsReply { retval }, f)
            })
        }
        n if n == SwInterfaceAddDelAddress::NAME_CRC => {
            cx.unary::<SwInterfaceAddDelAddress>(body, true, |m, r| {
                let (retval, f) = m.add_del_address(r.sw_if_index, r.is_add, r.del_all, r.prefix);
                (SwInterfaceAddDelAddressReply { retval }, f)
            })
        }
        n if n == SwInterfaceSetMtu::NAME_CRC => {
            cx.unary::<SwInterfaceSetMtu>(body, true, |m, r| {
                let (retval, f) = m.set_mtu(r.sw_if_index, r.mtu);
                (SwInterfaceSetMtuReply { retval }, f)
            })
        }
        n if n == HwInterfaceSetMtu::NAME_CRC => {
            cx.unary::<HwInterfaceSetMtu>(body, true, |m, r| {
                let (retval, f) = m.hw_set_mtu(r.sw_if_index, r.mtu);
                (HwInterfaceSetMtuReply { retval }, f)
            })
        }
        n if n == SwInterfaceIp6SetLinkLocalAddress::NAME_CRC => {
            cx.unary::<SwInterfaceIp6SetLinkLocalAddress>(body, true, |m, r| {
                let (retval, f) = m.set_link_local(r.sw_if_index, r.ip);
                (SwInterfaceIp6SetLinkLocalAddressReply { retval }, f)
            })
        }
        n if n == SwInterfaceIp6GetLinkLocalAddress::NAME_CRC => {
            cx.unary::<SwInterfaceIp6GetLinkLocalAddress>(body, false, |m, r| {
                let (retval, ip) = m.get_link_local(r.sw_if_index);
                (
                    SwInterfaceIp6GetLinkLocalAddressReply { retval, ip },
                    Fields::new(),
                )
            })
        }
        n if n == SwInterfaceGetTable::NAME_CRC => {
            cx.unary::<SwInterfaceGetTable>(body, false, |m, r| {
                // vppsim has one FIB (table 0) per family.
                let retval = if m.st.interfaces.contains_key(&r.sw_if_index) {
                    0
                } else {
                    rv::INVALID_SW_IF_INDEX
                };
                (
                    SwInterfaceGetTableReply { retval, vrf_id: 0 },
                    Fields::new(),
                )
            })
        }
        n if n == SwInterfaceDump::NAME_CRC => cx.dump::<SwInterfaceDump>(body, |m, r| {
            let filter = r.name_filter_valid.then_some(r.name_filter.as_str());
            m.interface_details(r.sw_if_index, filter)
        }),
        n if n == IpAddressDump::NAME_CRC => {
            cx.dump::<IpAddressDump>(body, |m, r| m.address_details(r.sw_if_index, r.is_ipv6))
        }
        n if n == BridgeDomainAddDelV2::NAME_CRC => {
            cx.unary::<BridgeDomainAddDelV2>(body, true, |m, r| {
                let (retval, bd_id, f) = m.bd_add_del(r);
                (BridgeDomainAddDelV2Reply { retval, bd_id }, f)
            })
        }
        n if n == BridgeDomainDump::NAME_CRC => {
            cx.dump::<BridgeDomainDump>(body, |m, r| m.bd_details(r.bd_id, r.sw_if_index))
        }
        n if n == SwInterfaceSetL2Bridge::NAME_CRC => {
            cx.unary::<SwInterfaceSetL2Bridge>(body, true, |m, r| {
                let (retval, f) = m.set_l2_bridge(r);
                (SwInterfaceSetL2BridgeReply { retval }, f)
            })
        }
        n if n == L2fibAddDel::NAME_CRC => cx.unary::<L2fibAddDel>(body, true, |m, r| {
            let (retval, f) = m.l2fib_add_del(r);
            (L2fibAddDelReply { retval }, f)
        }),
        n if n == LcpItfPairAddDelV3::NAME_CRC => {
            cx.unary::<LcpItfPairAddDelV3>(body, true, |m, r| {
                let (retval, vif_index, host_sw_if_index, f) = m.lcp_add_del(r);
                (
                    LcpItfPairAddDelV3Reply {
                        retval,
                        vif_index,
                        host_sw_if_index,
                    },
                    f,
                )
            })
        }
        n if n == LcpItfPairGet::NAME_CRC => {
            let Ok((h, req)) = decode_msg::<LcpItfPairGet>(body) else {
                return Action::Continue;
            };
            if let Some(retval) = cx.err {
                cx.send(&LcpItfPairGetReply { retval, cursor: 0 }, h.context);
                return Action::Continue;
            }
            let (details, retval, cursor) = match cx.sh.model.lock() {
                Ok(m) => m.lcp_details(req.cursor),
                Err(_) => return Action::Continue,
            };
            for d in &details {
                cx.send(d, h.context);
            }
            cx.send(&LcpItfPairGetReply { retval, cursor }, h.context);
            Action::Continue
        }
        n if n == IpNeighborAddDel::NAME_CRC => cx.unary::<IpNeighborAddDel>(body, true, |m, r| {
            let (retval, stats_index, f) = m.neighbor_add_del(r.is_add, &r.neighbor);
            (
                IpNeighborAddDelReply {
                    retval,
                    stats_index,
                },
                f,
            )
        }),
        n if n == IpNeighborDump::NAME_CRC => {
            cx.dump::<IpNeighborDump>(body, |m, r| m.neighbor_details(r.sw_if_index, r.af))
        }
        n if n == Arping::NAME_CRC => cx.unary::<Arping>(body, true, |m, r| {
            let (retval, f) = m.arping(r);
            (
                ArpingReply {
                    retval,
                    reply_count: 0,
                },
                f,
            )
        }),
        n if n == VxlanAddDelTunnelV3::NAME_CRC => {
            cx.unary::<VxlanAddDelTunnelV3>(body, true, |m, r| {
                let (retval, sw_if_index, f) = m.vxlan_add_del(r);
                (
                    VxlanAddDelTunnelV3Reply {
                        retval,
                        sw_if_index,
                    },
                    f,
                )
            })
        }
        n if n == VxlanTunnelV2Dump::NAME_CRC => {
            cx.dump::<VxlanTunnelV2Dump>(body, |m, r| m.vxlan_details(r.sw_if_index))
        }
        other => {
            // Known to the table but not modelled: VPP would answer; we stay
            // silent, which the client sees as a timeout.
            debug!(msg = other, "message not modelled by vppsim, no reply");
            Action::Continue
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of now (UTC), like VPP's build date.
fn build_date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (proleptic Gregorian).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
