//! Async client: one unix stream socket, one reader task demultiplexing
//! frames by message id (events) and context (replies, details).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;
use tracing::{debug, warn};

use crate::error::{DecodeError, Result, VppError};
use crate::msgs::{self, Dump, Message, Reply, Request};
use crate::table::MsgTable;
use crate::wire::{FrameCodec, put_frame};

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// VPP's API socket, normally `/run/vpp/api.sock`.
    pub socket_path: PathBuf,
    /// Name sent in `sockclnt_create` (at most 63 bytes are used).
    pub client_name: String,
    /// Timeout for every request (VPP drops bad messages without replying).
    pub request_timeout: Duration,
    /// Timeout for connecting plus the handshake.
    pub connect_timeout: Duration,
    /// Reconnect (new handshake, re-subscription) automatically when a
    /// request finds the connection closed.
    pub auto_reconnect: bool,
}

impl ClientConfig {
    /// Defaults: name `vpp-evpn`, 5 s request timeout, 5 s connect timeout,
    /// automatic reconnect on.
    pub fn new(socket_path: impl Into<PathBuf>) -> Self {
        Self {
            socket_path: socket_path.into(),
            client_name: "vpp-evpn".to_owned(),
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            auto_reconnect: true,
        }
    }
}

/// What the client broadcasts to [`Client::subscribe`] receivers.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// A `sw_interface_event` (requires [`Client::want_interface_events`]).
    Interface(msgs::SwInterfaceEvent),
    /// The connection to VPP was lost.
    Disconnected,
    /// A new connection was established (state may have changed: resync).
    Reconnected,
}

/// Where frames for one context go.
struct Waiter {
    tx: mpsc::UnboundedSender<Bytes>,
    /// Message id that completes this context (the entry is removed after it).
    final_id: Option<u16>,
}

#[derive(Default)]
struct Pending {
    closed: bool,
    map: HashMap<u32, Waiter>,
}

/// One live connection (replaced on reconnect).
struct Conn {
    client_index: u32,
    table: MsgTable,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Arc<Mutex<Pending>>,
    reader: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Conn {
    fn close(&self) {
        self.reader.abort();
        if let Ok(mut p) = self.pending.lock() {
            p.closed = true;
            p.map.clear();
        }
    }

    fn is_closed(&self) -> bool {
        self.pending.lock().map(|p| p.closed).unwrap_or(true)
    }

    fn register(&self, ctx: u32, w: Waiter) -> Result<()> {
        let mut p = self.pending.lock().map_err(|_| VppError::Disconnected)?;
        if p.closed {
            return Err(VppError::Disconnected);
        }
        p.map.insert(ctx, w);
        Ok(())
    }

    fn unregister(&self, ctx: u32) {
        if let Ok(mut p) = self.pending.lock() {
            p.map.remove(&ctx);
        }
    }

    async fn send(&self, bodies: &[&[u8]]) -> Result<()> {
        let mut buf = BytesMut::new();
        for b in bodies {
            put_frame(&mut buf, b);
        }
        let mut w = self.writer.lock().await;
        if let Err(e) = w.write_all(&buf).await {
            if let Ok(mut p) = self.pending.lock() {
                p.closed = true;
                p.map.clear();
            }
            debug!(error = %e, "write to VPP failed");
            return Err(VppError::Disconnected);
        }
        Ok(())
    }
}

/// Removes the registered contexts when a request finishes or is cancelled.
struct Registration<'a> {
    conn: &'a Conn,
    ctxs: Vec<u32>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        for c in &self.ctxs {
            self.conn.unregister(*c);
        }
    }
}

struct Inner {
    cfg: ClientConfig,
    conn: Mutex<Option<Arc<Conn>>>,
    reconnect_lock: tokio::sync::Mutex<()>,
    next_ctx: AtomicU32,
    events: broadcast::Sender<ClientEvent>,
    /// `Some(pid)` while subscribed to interface events.
    subscription: Mutex<Option<u32>>,
    /// Set by [`Client::disconnect`]: no automatic reconnect until
    /// [`Client::reconnect`].
    stopped: AtomicBool,
}

/// A VPP binary-API client. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("socket", &self.inner.cfg.socket_path)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects and performs the `sockclnt_create` handshake.
    pub async fn connect(cfg: ClientConfig) -> Result<Client> {
        let (events, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            cfg,
            conn: Mutex::new(None),
            reconnect_lock: tokio::sync::Mutex::new(()),
            next_ctx: AtomicU32::new(1),
            events,
            subscription: Mutex::new(None),
            stopped: AtomicBool::new(false),
        });
        let conn = open(&inner).await?;
        if let Ok(mut c) = inner.conn.lock() {
            *c = Some(Arc::new(conn));
        }
        Ok(Client { inner })
    }

    /// The client's configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// A receiver of interface events and connection state changes.
    pub fn subscribe(&self) -> broadcast::Receiver<ClientEvent> {
        self.inner.events.subscribe()
    }

    /// True while the current connection is open.
    pub fn is_connected(&self) -> bool {
        self.current().is_some_and(|c| !c.is_closed())
    }

    /// The `client_index` VPP assigned in the current handshake.
    pub fn client_index(&self) -> Option<u32> {
        self.current().map(|c| c.client_index)
    }

    /// The message table of the current connection.
    pub fn message_table(&self) -> Option<MsgTable> {
        self.current().map(|c| c.table.clone())
    }

    /// Checks that VPP knows every `name_crc` in `names`; the error names the
    /// first missing message and the CRC we expected.
    pub async fn require_messages(&self, names: &[&str]) -> Result<()> {
        let conn = self.conn().await?;
        for n in names {
            conn.table.require(n)?;
        }
        Ok(())
    }

    fn current(&self) -> Option<Arc<Conn>> {
        self.inner.conn.lock().ok().and_then(|c| c.clone())
    }

    async fn conn(&self) -> Result<Arc<Conn>> {
        match self.current() {
            Some(c) if !c.is_closed() => Ok(c),
            _ if self.inner.cfg.auto_reconnect && !self.inner.stopped.load(Ordering::Relaxed) => {
                let _g = self.inner.reconnect_lock.lock().await;
                // Another task may have reconnected while we waited.
                if let Some(c) = self.current()
                    && !c.is_closed()
                {
                    return Ok(c);
                }
                self.reconnect_locked().await?;
                self.current().ok_or(VppError::Disconnected)
            }
            _ => Err(VppError::Disconnected),
        }
    }

    fn next_ctx(&self) -> u32 {
        loop {
            let c = self.inner.next_ctx.fetch_add(1, Ordering::Relaxed);
            if c != 0 {
                return c;
            }
        }
    }

    /// Drops the current connection, connects again, redoes the handshake
    /// (new ids, new `client_index`) and re-subscribes to interface events if
    /// subscribed. Receivers get [`ClientEvent::Reconnected`].
    pub async fn reconnect(&self) -> Result<()> {
        let _g = self.inner.reconnect_lock.lock().await;
        self.reconnect_locked().await
    }

    async fn reconnect_locked(&self) -> Result<()> {
        self.inner.stopped.store(false, Ordering::Relaxed);
        let old = self.inner.conn.lock().ok().and_then(|mut c| c.take());
        if let Some(old) = old {
            // Requests still waiting on the old socket fail at once.
            old.close();
        }
        let conn = Arc::new(open(&self.inner).await?);
        if let Ok(mut c) = self.inner.conn.lock() {
            *c = Some(conn.clone());
        }
        let sub = self.inner.subscription.lock().ok().and_then(|s| *s);
        if let Some(pid) = sub {
            let rep: msgs::WantInterfaceEventsReply = self
                .call_on(
                    &conn,
                    &msgs::WantInterfaceEvents {
                        enable_disable: 1,
                        pid,
                    },
                    self.inner.cfg.request_timeout,
                )
                .await?;
            check("want_interface_events", rep.retval())?;
        }
        let _ = self.inner.events.send(ClientEvent::Reconnected);
        Ok(())
    }

    /// Politely unregisters (`sockclnt_delete`) and closes the connection.
    /// Later requests fail with [`VppError::Disconnected`] (no automatic
    /// reconnect) until [`Client::reconnect`] is called.
    pub async fn disconnect(&self) -> Result<()> {
        self.inner.stopped.store(true, Ordering::Relaxed);
        let conn = self.inner.conn.lock().ok().and_then(|mut c| c.take());
        if let Some(conn) = conn
            && !conn.is_closed()
        {
            let req = msgs::SockclntDelete {
                index: conn.client_index,
            };
            // VPP closes the socket after replying; a timeout is acceptable.
            match self
                .call_on::<_, msgs::SockclntDeleteReply>(
                    &conn,
                    &req,
                    self.inner.cfg.request_timeout,
                )
                .await
            {
                Ok(_) | Err(VppError::Timeout { .. } | VppError::Disconnected) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends a request and returns its reply without interpreting `retval`.
    pub async fn call_raw<R: Request>(&self, req: &R) -> Result<R::Reply> {
        let conn = self.conn().await?;
        self.call_on(&conn, req, self.inner.cfg.request_timeout)
            .await
    }

    /// Sends a request; a non-zero `retval` becomes [`VppError::Retval`].
    pub async fn call<R: Request>(&self, req: &R) -> Result<R::Reply> {
        let rep = self.call_raw(req).await?;
        check(R::NAME, rep.retval())?;
        Ok(rep)
    }

    async fn call_on<R: Message, P: Message>(
        &self,
        conn: &Conn,
        req: &R,
        timeout: Duration,
    ) -> Result<P> {
        let req_id = conn.table.id_of::<R>()?;
        let rep_id = conn.table.id_of::<P>()?;
        let ctx = self.next_ctx();
        let (tx, mut rx) = mpsc::unbounded_channel();
        conn.register(
            ctx,
            Waiter {
                tx,
                final_id: Some(rep_id),
            },
        )?;
        let _reg = Registration {
            conn,
            ctxs: vec![ctx],
        };
        let body = msgs::encode_msg(req, req_id, conn.client_index, ctx);
        let fut = async {
            conn.send(&[&body]).await?;
            rx.recv().await.ok_or(VppError::Disconnected)
        };
        let frame = tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| VppError::Timeout { msg: R::NAME })??;
        decode_as::<P>(&frame, rep_id)
    }

    /// Runs a dump: sends the request and a `control_ping` (own context) and
    /// collects the details until the ping's reply.
    pub async fn dump<D: Dump>(&self, req: &D) -> Result<Vec<D::Details>> {
        let conn = self.conn().await?;
        let req_id = conn.table.id_of::<D>()?;
        let det_id = conn.table.id_of::<D::Details>()?;
        let ping_id = conn.table.id_of::<msgs::ControlPing>()?;
        let pong_id = conn.table.id_of::<msgs::ControlPingReply>()?;
        let (ctx_d, ctx_p) = (self.next_ctx(), self.next_ctx());
        let (tx, mut rx) = mpsc::unbounded_channel();
        conn.register(
            ctx_d,
            Waiter {
                tx: tx.clone(),
                final_id: None,
            },
        )?;
        let _reg = Registration {
            conn: &conn,
            ctxs: vec![ctx_d, ctx_p],
        };
        conn.register(
            ctx_p,
            Waiter {
                tx,
                final_id: Some(pong_id),
            },
        )?;
        let b1 = msgs::encode_msg(req, req_id, conn.client_index, ctx_d);
        let b2 = msgs::encode_msg(&msgs::ControlPing {}, ping_id, conn.client_index, ctx_p);
        let fut = async {
            conn.send(&[&b1, &b2]).await?;
            let mut out = Vec::new();
            loop {
                let f = rx.recv().await.ok_or(VppError::Disconnected)?;
                let id = msgs::body_msg_id(&f).unwrap_or(0);
                if id == pong_id {
                    return Ok(out);
                }
                out.push(decode_as::<D::Details>(&f, det_id)?);
            }
        };
        tokio::time::timeout(self.inner.cfg.request_timeout, fut)
            .await
            .map_err(|_| VppError::Timeout { msg: D::NAME })?
    }

    /// A "get with cursor" request: details and the final reply share the
    /// request's context; no control_ping. `retval` is not interpreted.
    pub async fn cursor_get<R: Request, Det: Message>(
        &self,
        req: &R,
    ) -> Result<(R::Reply, Vec<Det>)> {
        let conn = self.conn().await?;
        let req_id = conn.table.id_of::<R>()?;
        let rep_id = conn.table.id_of::<R::Reply>()?;
        let det_id = conn.table.id_of::<Det>()?;
        let ctx = self.next_ctx();
        let (tx, mut rx) = mpsc::unbounded_channel();
        conn.register(
            ctx,
            Waiter {
                tx,
                final_id: Some(rep_id),
            },
        )?;
        let _reg = Registration {
            conn: &conn,
            ctxs: vec![ctx],
        };
        let body = msgs::encode_msg(req, req_id, conn.client_index, ctx);
        let fut = async {
            conn.send(&[&body]).await?;
            let mut out = Vec::new();
            loop {
                let f = rx.recv().await.ok_or(VppError::Disconnected)?;
                if msgs::body_msg_id(&f) == Some(rep_id) {
                    return Ok((decode_as::<R::Reply>(&f, rep_id)?, out));
                }
                out.push(decode_as::<Det>(&f, det_id)?);
            }
        };
        tokio::time::timeout(self.inner.cfg.request_timeout, fut)
            .await
            .map_err(|_| VppError::Timeout { msg: R::NAME })?
    }

    /// `control_ping` as a health check.
    pub async fn ping(&self) -> Result<()> {
        self.call(&msgs::ControlPing {}).await.map(|_| ())
    }

    /// `show_version`.
    pub async fn show_version(&self) -> Result<VersionInfo> {
        let r = self.call(&msgs::ShowVersion {}).await?;
        Ok(VersionInfo {
            program: r.program,
            version: r.version,
            build_date: r.build_date,
            build_directory: r.build_directory,
        })
    }

    /// Subscribes to `sw_interface_event` (re-done after every reconnect).
    /// Events arrive on [`Client::subscribe`] receivers. Subscribing twice is
    /// not an error.
    pub async fn want_interface_events(&self, pid: u32) -> Result<()> {
        let rep = self
            .call_raw(&msgs::WantInterfaceEvents {
                enable_disable: 1,
                pid,
            })
            .await?;
        let already = rep.retval == -31 && self.subscribed();
        if !already {
            check(msgs::WantInterfaceEvents::NAME, rep.retval)?;
        }
        if let Ok(mut s) = self.inner.subscription.lock() {
            *s = Some(pid);
        }
        Ok(())
    }

    /// Unsubscribes from interface events.
    pub async fn unwant_interface_events(&self) -> Result<()> {
        let pid = self
            .inner
            .subscription
            .lock()
            .ok()
            .and_then(|mut s| s.take());
        self.call(&msgs::WantInterfaceEvents {
            enable_disable: 0,
            pid: pid.unwrap_or(0),
        })
        .await
        .map(|_| ())
    }

    fn subscribed(&self) -> bool {
        self.inner
            .subscription
            .lock()
            .map(|s| s.is_some())
            .unwrap_or(false)
    }
}

/// `show_version` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// Program (`vpe`).
    pub program: String,
    /// Version string.
    pub version: String,
    /// Build date.
    pub build_date: String,
    /// Build directory.
    pub build_directory: String,
}

pub(crate) fn check(msg: &'static str, retval: i32) -> Result<()> {
    if retval == 0 {
        Ok(())
    } else {
        Err(VppError::retval(msg, retval))
    }
}

fn decode_as<M: Message>(frame: &[u8], expected: u16) -> Result<M> {
    let (h, m) = msgs::decode_msg::<M>(frame).map_err(|source| VppError::Decode {
        msg: M::NAME,
        source,
    })?;
    if h.msg_id != expected {
        return Err(VppError::Decode {
            msg: M::NAME,
            source: DecodeError::UnexpectedId {
                got: h.msg_id,
                expected,
            },
        });
    }
    Ok(m)
}

/// Connects, handshakes, and starts the reader task.
async fn open(inner: &Inner) -> Result<Conn> {
    let cfg = &inner.cfg;
    let fut = async {
        let stream = UnixStream::connect(&cfg.socket_path).await?;
        let (rd, mut wr) = stream.into_split();
        let mut framed = FramedRead::new(rd, FrameCodec::new());
        let ctx = inner.next_ctx.fetch_add(1, Ordering::Relaxed).max(1);
        let body = msgs::encode_msg(
            &msgs::SockclntCreate {
                name: cfg.client_name.clone(),
            },
            msgs::SOCKCLNT_CREATE_ID,
            0,
            ctx,
        );
        let mut buf = BytesMut::new();
        put_frame(&mut buf, &body);
        wr.write_all(&buf).await?;
        loop {
            let f = match framed.next().await {
                Some(f) => f?,
                None => return Err(VppError::Handshake("VPP closed the socket".into())),
            };
            if msgs::body_msg_id(&f) != Some(msgs::SOCKCLNT_CREATE_REPLY_ID) {
                continue;
            }
            let (_, rep) = msgs::decode_msg::<msgs::SockclntCreateReply>(&f)
                .map_err(|e| VppError::Handshake(e.to_string()))?;
            if rep.response != 0 {
                return Err(VppError::Handshake(format!(
                    "sockclnt_create_reply.response = {}",
                    rep.response
                )));
            }
            return Ok((framed, wr, rep));
        }
    };
    let (framed, wr, rep) = tokio::time::timeout(cfg.connect_timeout, fut)
        .await
        .map_err(|_| VppError::Timeout {
            msg: "sockclnt_create",
        })??;
    let table = MsgTable::new(rep.message_table);
    let pending = Arc::new(Mutex::new(Pending::default()));
    let event_id = table.get(msgs::SwInterfaceEvent::NAME_CRC);
    let reader = tokio::spawn(read_loop(
        framed,
        pending.clone(),
        event_id,
        inner.events.clone(),
    ));
    debug!(
        client_index = rep.index,
        entries = table.len(),
        "connected to VPP"
    );
    Ok(Conn {
        client_index: rep.index,
        table,
        writer: tokio::sync::Mutex::new(wr),
        pending,
        reader,
    })
}

async fn read_loop(
    mut framed: FramedRead<OwnedReadHalf, FrameCodec>,
    pending: Arc<Mutex<Pending>>,
    event_id: Option<u16>,
    events: broadcast::Sender<ClientEvent>,
) {
    while let Some(item) = framed.next().await {
        let f = match item {
            Ok(f) => f.freeze(),
            Err(e) => {
                warn!(error = %e, "VPP socket read failed");
                break;
            }
        };
        let Some(id) = msgs::body_msg_id(&f) else {
            continue;
        };
        if Some(id) == event_id {
            match msgs::decode_msg::<msgs::SwInterfaceEvent>(&f) {
                Ok((_, ev)) => {
                    let _ = events.send(ClientEvent::Interface(ev));
                }
                Err(e) => warn!(error = %e, "undecodable sw_interface_event"),
            }
            continue;
        }
        if id == msgs::SOCKCLNT_CREATE_REPLY_ID {
            continue;
        }
        let Some(ctx) = msgs::reply_context(&f) else {
            continue;
        };
        let Ok(mut p) = pending.lock() else { break };
        let done = match p.map.get(&ctx) {
            Some(w) => {
                let _ = w.tx.send(f);
                w.final_id == Some(id)
            }
            None => {
                debug!(msg_id = id, context = ctx, "frame for no pending request");
                false
            }
        };
        if done {
            p.map.remove(&ctx);
        }
    }
    if let Ok(mut p) = pending.lock() {
        p.closed = true;
        p.map.clear();
    }
    let _ = events.send(ClientEvent::Disconnected);
}
