//! Async client for BIRD's control socket.
//!
//! One command at a time per connection (an internal mutex), a timeout per command, and a
//! reconnect on the next call after any connection-level error (I/O, timeout, protocol
//! violation) or after a command whose future was dropped before its reply was read to
//! the end: a kept connection is always at a command boundary. Async `+` lines are
//! collected into each [`Reply`].

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Mutex;

use crate::error::BirdError;
use crate::proto::{Event, Reply, ReplyParser, parse_welcome, quote};
use crate::status::{
    MacRoute, ProtocolInfo, Status, parse_mac_routes, parse_protocols, parse_status,
};
use crate::validate;

/// Client options.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout for connecting and reading the welcome line.
    pub connect_timeout: Duration,
    /// Timeout for one command (send + complete reply).
    pub command_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(10),
        }
    }
}

/// Outcome of `configure` (all are success codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigureOutcome {
    /// `0003 Reconfigured`.
    Done,
    /// `0004 Reconfiguration in progress`.
    InProgress,
    /// `0005 Reconfiguration already in progress, queueing new config`.
    Queued,
    /// `0006 Reconfiguration ignored, shutting down`.
    ShuttingDown,
}

/// Outcome of `enable`/`disable`/`restart` for one protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoActionOutcome {
    /// `0009`/`0011`/`0012`: the action was done.
    Done,
    /// `0008`/`0010`: already in that state (or restart of a disabled protocol).
    AlreadyInState,
}

/// Result of `configure status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigureStatus {
    /// `true` when the first line is `0003-Daemon is up and running`.
    pub idle: bool,
    /// The first line's code (3, 4, 5 or 6).
    pub code: u16,
    /// `0022-Configuration unconfirmed, undo in N s`, when present.
    pub unconfirmed: Option<String>,
}

/// What the [`crate::apply::Applier`] needs from BIRD. Implemented by [`BirdClient`]; `evpnd`
/// plugs the real client in.
pub trait BirdControl: Send + Sync {
    /// `configure check "<path>"`; `Ok` on `0020`.
    fn configure_check(&self, path: &Path) -> impl Future<Output = Result<(), BirdError>> + Send;
    /// `configure` (reads the `-c` file).
    fn configure(&self) -> impl Future<Output = Result<ConfigureOutcome, BirdError>> + Send;
    /// `configure status`.
    fn configure_status(&self) -> impl Future<Output = Result<ConfigureStatus, BirdError>> + Send;
    /// `show protocols all "<name>"`; `None` on `8003`.
    fn show_protocol(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ProtocolInfo>, BirdError>> + Send;
    /// `restart "<name>"`.
    fn restart(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<ProtoActionOutcome, BirdError>> + Send;
}

struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    parser: ReplyParser,
}

impl Conn {
    async fn read_reply(&mut self) -> Result<Reply, BirdError> {
        let mut buf = Vec::with_capacity(256);
        loop {
            buf.clear();
            let n = self.reader.read_until(b'\n', &mut buf).await?;
            if n == 0 {
                return Err(BirdError::Io("connection closed by BIRD".into()));
            }
            let line = String::from_utf8_lossy(&buf);
            if let Event::Complete(r) = self.parser.feed(&line)? {
                return Ok(r);
            }
        }
    }
}

/// Why an exchange failed: `Stale` when the request cannot have reached a BIRD (the write
/// failed, or the connection was closed before a byte of the reply), so sending it again on a
/// fresh connection is safe; `Failed` otherwise.
enum Exchange {
    Stale(BirdError),
    Failed(BirdError),
}

/// One request and its reply on `conn`.
async fn exchange(conn: &mut Conn, cmd: &str) -> Result<Reply, Exchange> {
    let mut line = Vec::with_capacity(cmd.len() + 1);
    line.extend_from_slice(cmd.as_bytes());
    line.push(b'\n');
    conn.writer
        .write_all(&line)
        .await
        .map_err(|e| Exchange::Stale(e.into()))?;
    if conn
        .reader
        .fill_buf()
        .await
        .map_err(|e| Exchange::Stale(e.into()))?
        .is_empty()
    {
        return Err(Exchange::Stale(BirdError::Io(
            "connection closed by BIRD".into(),
        )));
    }
    conn.read_reply().await.map_err(Exchange::Failed)
}

/// Async BIRD control-socket client.
pub struct BirdClient {
    path: PathBuf,
    opts: ClientOptions,
    conn: Mutex<Option<Conn>>,
    version: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for BirdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BirdClient")
            .field("path", &self.path)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl BirdClient {
    /// Creates a client and connects (reading the welcome line).
    pub async fn connect(path: impl Into<PathBuf>, opts: ClientOptions) -> Result<Self, BirdError> {
        let c = Self::lazy(path, opts);
        {
            let mut g = c.conn.lock().await;
            *g = Some(c.open().await?);
        }
        Ok(c)
    }

    /// Creates a client that connects on the first command.
    pub fn lazy(path: impl Into<PathBuf>, opts: ClientOptions) -> Self {
        Self {
            path: path.into(),
            opts,
            conn: Mutex::new(None),
            version: std::sync::Mutex::new(None),
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The BIRD version from the most recent welcome line (e.g. `2.20.0`).
    pub fn version(&self) -> Option<String> {
        self.version.lock().map(|v| v.clone()).unwrap_or(None)
    }

    async fn open(&self) -> Result<Conn, BirdError> {
        let fut = async {
            let s = UnixStream::connect(&self.path)
                .await
                .map_err(|e| BirdError::Io(format!("connect {}: {e}", self.path.display())))?;
            let (r, w) = s.into_split();
            let mut conn = Conn {
                reader: BufReader::new(r),
                writer: w,
                parser: ReplyParser::new(),
            };
            let welcome = conn.read_reply().await?;
            let v = parse_welcome(&welcome)?;
            if let Ok(mut g) = self.version.lock() {
                *g = Some(v);
            }
            Ok(conn)
        };
        tokio::time::timeout(self.opts.connect_timeout, fut)
            .await
            .map_err(|_| BirdError::Timeout {
                command: "<connect>".into(),
                timeout: self.opts.connect_timeout,
            })?
    }

    /// Sends one raw command line and returns its reply. 8xxx/9xxx replies become typed errors.
    /// The command must be a single line; callers quote names (see [`quote`]).
    pub async fn command(&self, cmd: &str) -> Result<Reply, BirdError> {
        self.command_with_timeout(cmd, self.opts.command_timeout)
            .await?
            .into_result()
    }

    /// Like [`Self::command`] but returns the raw reply (failure codes included) and uses the
    /// given timeout.
    pub async fn command_with_timeout(
        &self,
        cmd: &str,
        timeout: Duration,
    ) -> Result<Reply, BirdError> {
        if cmd.contains(['\n', '\r']) || cmd.len() >= 4096 {
            return Err(BirdError::InvalidArgument(format!(
                "command must be one line shorter than 4096 bytes: {cmd:?}"
            )));
        }
        let mut guard = self.conn.lock().await;
        // The connection is moved out of the slot for the whole exchange and put back only
        // once the reply's final line was read. If this future is dropped half-way (an outer
        // `timeout`, a `select!`, a cancelled gRPC call), `conn` is dropped with it: the
        // socket is closed and the next command reconnects, instead of reading the reply
        // of the command abandoned here (issue 13 item 3). No reply can ever be read by
        // another command than the one that wrote its request.
        let deadline = tokio::time::Instant::now() + timeout;
        let (mut conn, mut kept) = match guard.take() {
            Some(c) => (c, true),
            None => (self.open().await?, false),
        };
        let res = loop {
            let res = match tokio::time::timeout_at(deadline, exchange(&mut conn, cmd)).await {
                Ok(r) => r,
                Err(_) => Err(Exchange::Failed(BirdError::Timeout {
                    command: cmd.to_string(),
                    timeout,
                })),
            };
            match res {
                // A kept connection whose BIRD is gone (it was restarted since the last
                // command): the request never reached a BIRD, so it is sent once more on a
                // fresh connection instead of failing the caller (an evidence look would
                // otherwise report "no evidence" for a BIRD that is up again).
                Err(Exchange::Stale(e)) if kept => {
                    tracing::debug!(cmd, error = %e, "bird connection stale, reconnecting");
                    kept = false;
                    conn = match tokio::time::timeout_at(deadline, self.open()).await {
                        Ok(c) => c?,
                        Err(_) => {
                            break Err(BirdError::Timeout {
                                command: cmd.to_string(),
                                timeout,
                            });
                        }
                    };
                }
                Err(Exchange::Stale(e) | Exchange::Failed(e)) => break Err(e),
                Ok(r) => break Ok(r),
            }
        };
        match res {
            Ok(r) => {
                // The reply is complete: the stream is at a command boundary again.
                *guard = Some(conn);
                tracing::trace!(cmd, code = r.code, lines = r.lines.len(), "bird reply");
                for a in &r.async_lines {
                    tracing::debug!(line = %a, "bird async message");
                }
                Ok(r)
            }
            // I/O, timeout or protocol violation (failure replies are complete replies and
            // come back as `Ok`): the stream position is unknown, so `conn` is dropped here
            // and the next call reconnects.
            Err(e) => Err(e),
        }
    }

    /// `show status`.
    pub async fn show_status(&self) -> Result<Status, BirdError> {
        parse_status(&self.command("show status").await?)
    }

    /// `show protocols [all] ["<name>"]`. `Ok(vec![])` when the name matches nothing (`8003`).
    pub async fn show_protocols(
        &self,
        name: Option<&str>,
        all: bool,
    ) -> Result<Vec<ProtocolInfo>, BirdError> {
        let mut cmd = String::from("show protocols");
        if all {
            cmd.push_str(" all");
        }
        if let Some(n) = name {
            cmd.push(' ');
            cmd.push_str(&quote(n)?);
        }
        match self.command(&cmd).await {
            Ok(r) => parse_protocols(&r),
            Err(BirdError::NoSuchProtocol(_)) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// `configure check "<path>"`.
    pub async fn configure_check(&self, path: &Path) -> Result<(), BirdError> {
        let p = path
            .to_str()
            .ok_or_else(|| BirdError::InvalidArgument(format!("non-UTF-8 path {path:?}")))?;
        let cmd = format!("configure check {}", quote(p)?);
        let r = self.command(&cmd).await?;
        if r.code == 20 {
            Ok(())
        } else {
            Err(BirdError::Unexpected {
                command: cmd,
                reply: format!("{:04} {}", r.code, r.final_text()),
            })
        }
    }

    /// `configure`.
    pub async fn configure(&self) -> Result<ConfigureOutcome, BirdError> {
        let r = self.command("configure").await?;
        match r.code {
            3 => Ok(ConfigureOutcome::Done),
            4 => Ok(ConfigureOutcome::InProgress),
            5 => Ok(ConfigureOutcome::Queued),
            6 => Ok(ConfigureOutcome::ShuttingDown),
            c => Err(BirdError::Unexpected {
                command: "configure".into(),
                reply: format!("{c:04} {}", r.final_text()),
            }),
        }
    }

    /// `configure status`.
    pub async fn configure_status(&self) -> Result<ConfigureStatus, BirdError> {
        let r = self.command("configure status").await?;
        let first = r.lines.first().map(|l| l.code).unwrap_or(r.code);
        Ok(ConfigureStatus {
            idle: first == 3,
            code: first,
            unconfirmed: r.lines_with(22).next().map(|l| l.text.clone()),
        })
    }

    /// Polls `configure status` until BIRD reports `0003-Daemon is up and running`.
    pub async fn wait_configured(
        &self,
        poll: Duration,
        timeout: Duration,
    ) -> Result<(), BirdError> {
        wait_configured(self, poll, timeout).await
    }

    async fn proto_action(&self, verb: &str, name: &str) -> Result<ProtoActionOutcome, BirdError> {
        let r = self.command(&format!("{verb} {}", quote(name)?)).await?;
        let first = r.lines.first().map(|l| l.code).unwrap_or(r.code);
        match first {
            9 | 11 | 12 => Ok(ProtoActionOutcome::Done),
            8 | 10 => Ok(ProtoActionOutcome::AlreadyInState),
            c => Err(BirdError::Unexpected {
                command: format!("{verb} {name:?}"),
                reply: format!("{c:04}"),
            }),
        }
    }

    /// `enable "<name>"` (transient: reverted by the next `configure`, see `disabled;`).
    pub async fn enable(&self, name: &str) -> Result<ProtoActionOutcome, BirdError> {
        self.proto_action("enable", name).await
    }

    /// `disable "<name>"` (transient: reverted by the next `configure`).
    pub async fn disable(&self, name: &str) -> Result<ProtoActionOutcome, BirdError> {
        self.proto_action("disable", name).await
    }

    /// `restart "<name>"`.
    pub async fn restart(&self, name: &str) -> Result<ProtoActionOutcome, BirdError> {
        self.proto_action("restart", name).await
    }

    /// `show route table <table>` filtered (client side) to the routes whose network contains
    /// `mac`. On an eth table, the `next_hops` of a remote MAC are the announcing VTEP(s).
    pub async fn show_route_mac(&self, table: &str, mac: &str) -> Result<Vec<MacRoute>, BirdError> {
        let t =
            validate::table_name(table).map_err(|e| BirdError::InvalidArgument(e.to_string()))?;
        let m = validate::mac(mac).map_err(|e| BirdError::InvalidArgument(e.to_string()))?;
        let r = self.command(&format!("show route table {t}")).await?;
        Ok(parse_mac_routes(&r, &m))
    }
}

impl BirdClient {
    /// `show route table <table> eth <mac> [vlan <vid>]`: the exact eth net, filtered by BIRD
    /// (eth tables only; cheaper than [`Self::show_route_mac`] on large tables).
    pub async fn show_route_eth(
        &self,
        table: &str,
        mac: &str,
        vlan: Option<u16>,
    ) -> Result<Vec<MacRoute>, BirdError> {
        let t =
            validate::table_name(table).map_err(|e| BirdError::InvalidArgument(e.to_string()))?;
        let m = validate::mac(mac).map_err(|e| BirdError::InvalidArgument(e.to_string()))?;
        let cmd = match vlan {
            Some(v) if v < 4096 => format!("show route table {t} eth {m} vlan {v}"),
            Some(v) => {
                return Err(BirdError::InvalidArgument(format!(
                    "vlan {v} is not below 4096"
                )));
            }
            None => format!("show route table {t} eth {m}"),
        };
        match self.command(&cmd).await {
            Ok(r) => Ok(parse_mac_routes(&r, &m)),
            // 8001 Route not found (older versions) means: no route.
            Err(BirdError::Bird { code: 8001, .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

/// Polls `configure status` on any [`BirdControl`] until idle or the timeout expires.
pub async fn wait_configured<C: BirdControl + ?Sized>(
    c: &C,
    poll: Duration,
    timeout: Duration,
) -> Result<(), BirdError> {
    let start = Instant::now();
    loop {
        let s = c.configure_status().await?;
        if s.idle {
            return Ok(());
        }
        if s.code == 6 {
            return Err(BirdError::Unexpected {
                command: "configure status".into(),
                reply: "0006 shutting down".into(),
            });
        }
        if start.elapsed() >= timeout {
            return Err(BirdError::Timeout {
                command: "configure status (waiting for 0003)".into(),
                timeout,
            });
        }
        tokio::time::sleep(poll).await;
    }
}

impl BirdControl for BirdClient {
    fn configure_check(&self, path: &Path) -> impl Future<Output = Result<(), BirdError>> + Send {
        BirdClient::configure_check(self, path)
    }
    fn configure(&self) -> impl Future<Output = Result<ConfigureOutcome, BirdError>> + Send {
        BirdClient::configure(self)
    }
    fn configure_status(&self) -> impl Future<Output = Result<ConfigureStatus, BirdError>> + Send {
        BirdClient::configure_status(self)
    }
    async fn show_protocol(&self, name: &str) -> Result<Option<ProtocolInfo>, BirdError> {
        Ok(self
            .show_protocols(Some(name), true)
            .await?
            .into_iter()
            .find(|p| p.name == name))
    }
    fn restart(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<ProtoActionOutcome, BirdError>> + Send {
        BirdClient::restart(self, name)
    }
}

impl<T: BirdControl + ?Sized> BirdControl for std::sync::Arc<T> {
    fn configure_check(&self, path: &Path) -> impl Future<Output = Result<(), BirdError>> + Send {
        (**self).configure_check(path)
    }
    fn configure(&self) -> impl Future<Output = Result<ConfigureOutcome, BirdError>> + Send {
        (**self).configure()
    }
    fn configure_status(&self) -> impl Future<Output = Result<ConfigureStatus, BirdError>> + Send {
        (**self).configure_status()
    }
    fn show_protocol(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ProtocolInfo>, BirdError>> + Send {
        (**self).show_protocol(name)
    }
    fn restart(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<ProtoActionOutcome, BirdError>> + Send {
        (**self).restart(name)
    }
}
