//! The durable audit trail (docs/security.md, "Audit"): one JSON line per
//! state-changing call, accepted or refused, in `<state-dir>/audit/audit.log`,
//! each also published as an `audit` event.
//!
//! Invariants:
//! * an accepted write's record is on disk (written and fsynced) before its
//!   answer leaves the server ([`layer::AuditLayer`]); when the record
//!   cannot be written the caller gets `UNAVAILABLE` instead of its answer,
//!   and every further write is refused until the log takes records again
//!   (fail closed);
//! * the log is written before the event is published and independently of
//!   the event bus: a slow subscriber never loses a record from the file;
//! * records are never rewritten; the file is rotated by size
//!   (`audit.max-bytes`), keeping `audit.keep` older files.
//!
//! Which calls: [`crate::authz::audited`] (the one rule). What of a call:
//! [`fields::key_fields`] (the one list of key fields).
pub mod fields;
pub mod layer;
mod time;

use std::{
    collections::BTreeMap,
    fs::{File, OpenOptions},
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};

use crate::{
    config::SemanticError,
    events::{Event, EventBroker},
};

/// Directory of the log under the state directory.
pub const DIR: &str = "audit";
/// The current file; rotated ones are `audit.log.1` (newest) … `.<keep>`.
pub const FILE: &str = "audit.log";
/// The metadata header that links a call to the record of the call that
/// caused it (evpnr sends it on every call to a member).
pub const REQUEST_ID: &str = "evpn-request-id";

/// The `audit:` section of a configuration file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuditFile {
    pub max_bytes: Option<u64>,
    pub keep: Option<u32>,
}

/// The effective audit settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuditConfig {
    /// Rotate the current file before it would grow beyond this.
    pub max_bytes: u64,
    /// Rotated files kept besides the current one.
    pub keep: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            max_bytes: 16 * 1024 * 1024,
            keep: 8,
        }
    }
}

impl AuditConfig {
    /// The file's values over the defaults.
    pub fn merge(f: AuditFile) -> AuditConfig {
        let d = AuditConfig::default();
        AuditConfig {
            max_bytes: f.max_bytes.unwrap_or(d.max_bytes),
            keep: f.keep.unwrap_or(d.keep),
        }
    }

    /// `prefix` is the program's key (`evpnd`).
    pub fn validate(&self, prefix: &str) -> Result<(), SemanticError> {
        if self.max_bytes < 4096 {
            return Err(SemanticError::new(
                format!("{prefix}.audit.max-bytes"),
                format!("{} is below the minimum of 4096", self.max_bytes),
            ));
        }
        if !(1..=1000).contains(&self.keep) {
            return Err(SemanticError::new(
                format!("{prefix}.audit.keep"),
                format!("{} is not in 1..=1000", self.keep),
            ));
        }
        Ok(())
    }
}

/// Which way a recorded call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A call this daemon served.
    In,
    /// A call this daemon made to a member (evpnr → evpnd).
    Out,
    /// A decision this daemon made on its own (evpnr's failover, resync):
    /// the `parent` of the calls it made ([`layer::on_own`]).
    Decision,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Record {
    /// When the call was answered (RFC 3339, UTC, milliseconds).
    pub ts: String,
    /// The program that wrote the record (`evpnr`, `evpnd`).
    pub daemon: String,
    /// This record's request ID (unique; sent to members as
    /// [`REQUEST_ID`] on the calls it causes).
    pub id: String,
    pub direction: Direction,
    /// The caller's identity URI (`in`), or this daemon's (`out`); `none`
    /// without TLS.
    pub who: String,
    /// The caller's role in the role map (for a front-end acting for a
    /// user, the lower of the two), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `in`: the user a front-end acts for; `out`: the caller of the
    /// request that caused this call (its user, if a front-end acted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// `in`: the caller's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// `out`: the member called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The record of the call that caused this one: `out`, the operator's
    /// request; `in`, the caller's [`REQUEST_ID`] header (evpnr's `out`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// `Service.Method`, e.g. `Evpnr.MoveGroupBVI`.
    pub rpc: String,
    /// The call's key fields ([`fields::key_fields`]).
    pub fields: BTreeMap<String, String>,
    /// `ok`, or the gRPC code (`PERMISSION_DENIED`); a `decision`'s:
    /// `ok` or `<step>: <CODE>` ([`layer::decision_result`]).
    pub result: String,
    /// The error message, cut short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `decision`: the calls that failed along the way, also when the
    /// decision reached its aim (`release r1 UNAVAILABLE`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_calls: Vec<String>,
}

impl Record {
    /// The fields of its `audit` event.
    pub fn event_fields(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            f.insert(k.to_string(), v.to_string());
        };
        put("id", &self.id);
        put(
            "direction",
            match self.direction {
                Direction::In => "in",
                Direction::Out => "out",
                Direction::Decision => "decision",
            },
        );
        put("who", &self.who);
        put("rpc", &self.rpc);
        put("result", &self.result);
        let args: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        put("args", &args.join(" "));
        if !self.failed_calls.is_empty() {
            put("failed-calls", &self.failed_calls.join(", "));
        }
        for (k, v) in [
            ("role", &self.role),
            ("on-behalf-of", &self.on_behalf_of),
            ("peer", &self.peer),
            ("target", &self.target),
            ("parent", &self.parent),
            ("error", &self.error),
        ] {
            if let Some(v) = v {
                put(k, v);
            }
        }
        f
    }
}

/// The `on-behalf-of` of the calls evpnr makes on its own, and the `rpc`
/// of their decision record: `evpnr:<cause>` (`evpnr:failover`,
/// `evpnr:resync`).
pub fn own_cause(daemon: &str, cause: &str) -> String {
    format!("{daemon}:{cause}")
}

/// A new request ID: 16 random hex digits.
pub fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The wire name of a gRPC code (`PERMISSION_DENIED`).
pub fn code_name(c: tonic::Code) -> String {
    let camel = format!("{c:?}");
    let mut out = String::new();
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

struct Current {
    file: File,
    size: u64,
    /// Records written but not yet fsynced (deferred outgoing records).
    unsynced: bool,
}

/// A daemon's audit log. Cheap to share (`Arc`).
pub struct AuditLog {
    dir: PathBuf,
    cfg: AuditConfig,
    daemon: String,
    own: String,
    broker: EventBroker,
    current: Mutex<Option<Current>>,
    failing: Mutex<Option<String>>,
    /// Deferred records not yet written, in call order: written by the
    /// next write of the file (a background one started for them, or a
    /// synced record's, which writes them first).
    deferred: Mutex<Vec<Record>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("dir", &self.dir).finish()
    }
}

impl AuditLog {
    /// Open (create) `<state_dir>/audit/audit.log` for `daemon`, whose own
    /// identity (on its outgoing calls) is `own`.
    pub fn open(
        state_dir: &Path,
        daemon: &str,
        own: &str,
        cfg: AuditConfig,
        broker: EventBroker,
    ) -> std::io::Result<Arc<AuditLog>> {
        let dir = state_dir.join(DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let log = AuditLog {
            dir,
            cfg,
            daemon: daemon.to_string(),
            own: own.to_string(),
            broker,
            current: Mutex::new(None),
            failing: Mutex::new(None),
            deferred: Mutex::new(Vec::new()),
        };
        *log.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(log.open_current()?);
        Ok(Arc::new(log))
    }

    /// The current file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The program name records carry.
    pub fn daemon(&self) -> &str {
        &self.daemon
    }

    /// This daemon's own identity (`who` of its outgoing calls).
    pub fn own(&self) -> &str {
        &self.own
    }

    /// The error of the last failed append, until one succeeds again.
    pub fn failing(&self) -> Option<String> {
        self.failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn open_current(&self) -> std::io::Result<Current> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.path())?;
        let size = file.metadata()?.len();
        Ok(Current {
            file,
            size,
            unsynced: false,
        })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        self.dir.join(format!("{FILE}.{n}"))
    }

    /// `audit.log` → `.1` → … → `.<keep>` (the oldest falls off).
    fn rotate(&self) -> std::io::Result<()> {
        for n in (1..self.cfg.keep).rev() {
            match std::fs::rename(self.rotated(n), self.rotated(n + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(self.path(), self.rotated(1))?;
        evpn_base::fs::sync_dir(&self.dir)
    }

    /// Write one record and fsync it (blocking).
    pub fn append_blocking(&self, rec: &Record) -> std::io::Result<()> {
        self.write_blocking(Some(rec), true).0
    }

    /// Write the queued deferred records, then `rec` (if any); fsync them
    /// all when `sync`, else leave that to the next synced record. Returns
    /// the deferred records it wrote (to publish), or lost.
    fn write_blocking(
        &self,
        rec: Option<&Record>,
        sync: bool,
    ) -> (std::io::Result<()>, Vec<Record>) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        // Under the file's lock: no later record can be written before them.
        let queued = std::mem::take(&mut *self.deferred.lock().unwrap_or_else(|p| p.into_inner()));
        let r = (|| {
            let mut lines = Vec::with_capacity(queued.len() + 1);
            for q in queued.iter().chain(rec) {
                let mut line = serde_json::to_vec(q).map_err(std::io::Error::other)?;
                line.push(b'\n');
                lines.push(line);
            }
            if lines.is_empty() {
                return Ok(());
            }
            for line in &lines {
                if cur.is_none() {
                    *cur = Some(self.open_current()?);
                }
                let c = cur.as_mut().expect("opened");
                if c.size > 0 && c.size + line.len() as u64 > self.cfg.max_bytes {
                    if c.unsynced {
                        // A deferred record must not leave unsynced with its file.
                        c.file.sync_data()?;
                    }
                    *cur = None;
                    self.rotate()?;
                    *cur = Some(self.open_current()?);
                }
                let c = cur.as_mut().expect("opened");
                c.file.write_all(line)?;
                c.size += line.len() as u64;
                c.unsynced = true;
            }
            let c = cur.as_mut().expect("opened");
            if sync {
                c.file.sync_data()?;
                c.unsynced = false;
            }
            Ok(())
        })();
        if r.is_err() {
            // Open again on the next record (the disk may come back).
            *cur = None;
        }
        (r, queued)
    }

    /// Run the blocking file work `f` for an async caller. On tokio's
    /// multi-thread runtime in place (`block_in_place`: this worker hands
    /// its other tasks over meanwhile), so the caller goes on the moment the
    /// `fdatasync` returns — no hop to the blocking pool and back on the
    /// answer's path (issue 16); elsewhere on the blocking pool.
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&AuditLog) -> T + Send + 'static,
    ) -> std::io::Result<T> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        if Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread) {
            return Ok(tokio::task::block_in_place(|| f(self)));
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(std::io::Error::other)
    }

    /// Write `rec` durably (off the async threads), then publish it as an
    /// `audit` event. The error says why the record is not on disk.
    pub async fn append(self: &Arc<Self>, rec: Record) -> std::io::Result<()> {
        let r2 = rec.clone();
        let (r, queued) = self
            .blocking(move |me| me.write_blocking(Some(&r2), true))
            .await
            .unwrap_or_else(|e| (Err(e), Vec::new()));
        self.settle(&r, queued);
        self.broker.emit(Event::Audit, rec.event_fields());
        r
    }

    /// Queue `rec` to be written at once in the background, made durable
    /// with the next synced record: a daemon's record of its own outgoing
    /// call, which the record of the request that caused it (written after
    /// it, fsynced before that request's answer) makes durable with one
    /// fsync. The call's answer waits for no disk: neither for an fsync nor
    /// for the write (issue 16: a member call's answer is on a move's gap).
    /// Published as an event once written.
    pub fn append_deferred(self: &Arc<Self>, rec: Record) {
        self.deferred
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(rec);
        let me = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || me.write_deferred())),
            Err(_) => me.write_deferred(),
        }
    }

    /// Write the queued deferred records (blocking). Nothing queued (a
    /// synced record took them): nothing written, and the log's failing
    /// state stays as it is — only a write can clear it.
    fn write_deferred(&self) {
        let (r, queued) = self.write_blocking(None, false);
        if !queued.is_empty() {
            self.settle(&r, queued);
        }
    }

    /// After a write: the log's failing state, and the deferred records it
    /// wrote published (or reported lost).
    fn settle(&self, r: &std::io::Result<()>, queued: Vec<Record>) {
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        match r {
            Ok(()) => {
                if failing.take().is_some() {
                    tracing::info!(path = %self.path().display(), "audit-log-recovered");
                }
            }
            Err(e) => {
                if failing.replace(e.to_string()).is_none() {
                    tracing::error!(path = %self.path().display(), error = %e, "audit-log-failed");
                }
            }
        }
        drop(failing);
        for q in queued {
            match r {
                Ok(()) => {
                    self.broker.emit(Event::Audit, q.event_fields());
                }
                Err(e) => {
                    tracing::error!(error = %e, id = %q.id, rpc = %q.rpc, "audit-record-lost")
                }
            }
        }
    }
}

/// The audit log of this process, for its outgoing calls
/// ([`layer::AuditedChannel`]); installed once by the server.
static INSTALLED: std::sync::OnceLock<Arc<AuditLog>> = std::sync::OnceLock::new();

/// Install `log` as this process's log of outgoing calls.
pub fn install(log: Arc<AuditLog>) {
    let _ = INSTALLED.set(log);
}

/// The installed log, if any.
pub fn installed() -> Option<Arc<AuditLog>> {
    INSTALLED.get().cloned()
}

/// Now, as a record's `ts`.
pub fn now() -> String {
    time::rfc3339(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests;
