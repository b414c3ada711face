//! `vppsim`: a fake VPP binary-API server.
//!
//! It speaks VPP's socket protocol (16-byte frame header, `sockclnt_create`
//! handshake with the real VPP 25.10 message table), keeps a stateful model
//! (loopbacks, bridge domains, linux-cp pairs, neighbours, l2fib, VXLAN),
//! answers with VPP's retvals, drops what VPP drops, injects faults and
//! journals every state-changing call.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = vppsim::VppSim::start("/tmp/x.sock", vppsim::SimOptions::default()).await?;
//! sim.faults().latency("*", std::time::Duration::from_millis(1));
//! let journal = sim.journal();
//! sim.shutdown().await;
//! # let _ = journal; Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod control;
pub mod faults;
pub mod journal;
pub mod model;
mod server;
pub mod service;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::task::JoinHandle;
use vpp_api::MsgTable;

pub use faults::{ErrorOnNth, Faults};
pub use journal::{
    HostMacConflict, HostMacReport, JournalEntry, MacConflict, check_mac_exclusive,
    check_mac_exclusive_hosts,
};
pub use model::SimState;
pub use service::{Served, served_within};

use server::Shared;

/// The live message table of the VPP 25.10 used for the golden capture
/// (`name_crc id` per line; plugins af_packet, arping, linux_cp, linux_nl,
/// memif, ping, vxlan).
pub const MESSAGE_TABLE: &str = include_str!("../data/message-table.txt");

/// Plugins whose messages can be left out of the table, with their id
/// ranges in [`MESSAGE_TABLE`].
pub const PLUGINS: &[(&str, u16, u16)] = &[
    ("arping", 56, 59),
    ("linux_cp", 60, 82),
    ("memif", 83, 96),
    ("ping", 97, 99),
    ("af_packet", 841, 852),
    ("vxlan", 853, 866),
];

/// Normalises a plugin name: `linux_cp_plugin.so`, `linux-cp`, `lcp` → `linux_cp`.
pub fn plugin_name(s: &str) -> Option<&'static str> {
    let s = s.trim().trim_end_matches(".so").trim_end_matches("_plugin");
    let s = s.replace('-', "_");
    let s = if s == "lcp" { "linux_cp".to_owned() } else { s };
    PLUGINS.iter().map(|p| p.0).find(|p| *p == s)
}

/// The message table without the given plugins' messages.
pub fn message_table(without_plugins: &[String]) -> Result<MsgTable, String> {
    let mut ranges = Vec::new();
    for p in without_plugins {
        let name = plugin_name(p).ok_or_else(|| {
            let known: Vec<&str> = PLUGINS.iter().map(|p| p.0).collect();
            format!("unknown plugin {p:?} (known: {})", known.join(", "))
        })?;
        if let Some(&(_, a, b)) = PLUGINS.iter().find(|x| x.0 == name) {
            ranges.push((a, b));
        }
    }
    let full = MsgTable::parse_text(MESSAGE_TABLE);
    Ok(MsgTable::new(
        full.entries()
            .into_iter()
            .filter(|(id, _)| !ranges.iter().any(|(a, b)| id >= a && id <= b))
            .map(|(id, n)| (id, n.to_owned())),
    ))
}

/// Start-up options.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Plugins to leave out (e.g. `linux_cp`).
    pub without_plugins: Vec<String>,
    /// Append the journal as JSON lines to this file.
    pub journal_path: Option<PathBuf>,
    /// Serve the JSON control protocol on this unix socket.
    pub control_path: Option<PathBuf>,
    /// Make linux-cp pair creation fail with -11 like a host without
    /// `/dev/vhost-net` (default: succeed, like a production host).
    pub lcp_tap_fail: bool,
    /// `show_version` version string.
    pub version: String,
    /// Faults active from the start.
    pub faults: Faults,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            without_plugins: Vec::new(),
            journal_path: None,
            control_path: None,
            lcp_tap_fail: false,
            version: "25.10-release".into(),
            faults: Faults::default(),
        }
    }
}

/// Entry point.
#[derive(Debug)]
pub struct VppSim;

impl VppSim {
    /// Binds `socket_path` (replacing a stale socket file) and starts serving.
    pub async fn start(
        socket_path: impl AsRef<Path>,
        options: SimOptions,
    ) -> std::io::Result<SimHandle> {
        let socket_path = socket_path.as_ref().to_path_buf();
        let table = message_table(&options.without_plugins)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let journal = journal::Journal::new(options.journal_path.as_deref())?;
        let shared = Arc::new(Shared::new(
            table,
            journal,
            options.lcp_tap_fail,
            options.version.clone(),
        ));
        if let Ok(mut f) = shared.faults.lock() {
            *f = options.faults.clone();
        }
        let listener = bind(&socket_path).await?;
        let mut tasks = vec![tokio::spawn(server::serve(shared.clone(), listener))];
        if let Some(cp) = &options.control_path {
            let l = bind(cp).await?;
            tasks.push(tokio::spawn(control::serve(shared.clone(), l)));
        }
        Ok(SimHandle {
            shared,
            socket_path,
            control_path: options.control_path,
            tasks,
        })
    }
}

async fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by a live server", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    UnixListener::bind(path)
}

/// A running simulator. Dropping it stops serving and removes the sockets.
#[derive(Debug)]
pub struct SimHandle {
    shared: Arc<Shared>,
    socket_path: PathBuf,
    control_path: Option<PathBuf>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl SimHandle {
    /// The API socket path.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// The message table served in the handshake.
    pub fn message_table(&self) -> &MsgTable {
        &self.shared.table
    }

    /// A copy of the journal.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.shared
            .journal
            .lock()
            .map(|j| j.entries().to_vec())
            .unwrap_or_default()
    }

    /// Empties the in-memory journal.
    pub fn clear_journal(&self) {
        if let Ok(mut j) = self.shared.journal.lock() {
            j.clear();
        }
    }

    /// The most recent messages served (reads and control pings included),
    /// each with when VPP started on it and when its answer was out; at most
    /// [`service::ServiceLog::CAP`] (the oldest are dropped).
    pub fn served(&self) -> Vec<Served> {
        self.shared
            .served
            .lock()
            .map(|l| l.entries())
            .unwrap_or_default()
    }

    /// Empties the log of [`SimHandle::served`].
    pub fn clear_served(&self) {
        if let Ok(mut l) = self.shared.served.lock() {
            l.clear();
        }
    }

    /// Checks over the journal that no two interfaces held the same MAC at
    /// once (`mac = None`: every MAC).
    pub fn check_mac_exclusive(&self, mac: Option<&str>) -> Result<(), MacConflict> {
        check_mac_exclusive(&self.journal(), &[], mac)
    }

    /// A snapshot of the model.
    pub fn state(&self) -> SimState {
        self.shared
            .model
            .lock()
            .map(|m| m.st.clone())
            .unwrap_or_default()
    }

    /// Calls `f` with the model's state now and after every change to it
    /// (every state-changing call that was not answered with an injected
    /// error, and a restart), in the order of the changes. `f` runs with the
    /// model locked: it must be quick and must not call into this simulator.
    /// The simulated fabric uses it to derive the host's announcements.
    pub fn observe(&self, f: impl Fn(&SimState) + Send + Sync + 'static) {
        let Ok(m) = self.shared.model.lock() else {
            return;
        };
        f(&m.st);
        if let Ok(mut o) = self.shared.observers.lock() {
            o.push(Box::new(f));
        }
    }

    /// Adds a loopback `loop<instance>`, admin (and so link) up, in no
    /// bridge domain: a stand-in for an uplink a test tracks (evpnd
    /// `health.underlay.interfaces`). Its name, or None if the instance is
    /// taken.
    pub fn add_uplink(&self, instance: u32) -> Option<String> {
        let mut m = self.shared.model.lock().ok()?;
        let (rv, idx, _) = m.create_loopback(vpp_api::MacAddress::ZERO, Some(instance));
        if rv != 0 {
            return None;
        }
        m.set_flags(idx, vpp_api::msgs::IF_STATUS_ADMIN_UP);
        Some(format!("loop{instance}"))
    }

    /// Fault-injection controls.
    pub fn faults(&self) -> FaultControl<'_> {
        FaultControl { sh: &self.shared }
    }

    /// Number of clients subscribed to interface events.
    pub fn event_subscribers(&self) -> usize {
        self.shared.subscribers.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Stops serving, closes every connection and removes the socket files.
    pub async fn shutdown(mut self) {
        self.stop();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }

    fn stop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.shared.kill.send(());
        let _ = std::fs::remove_file(&self.socket_path);
        if let Some(c) = &self.control_path {
            let _ = std::fs::remove_file(c);
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Setters for the active faults (see [`Faults`]).
#[derive(Debug)]
pub struct FaultControl<'a> {
    sh: &'a Shared,
}

impl FaultControl<'_> {
    fn with(&self, f: impl FnOnce(&mut Faults)) {
        if let Ok(mut x) = self.sh.faults.lock() {
            f(&mut x);
        }
    }
    /// Delays every message matching `msg` (`*`, a name, or a name_crc).
    pub fn latency(&self, msg: &str, d: Duration) {
        self.with(|f| {
            f.latency.insert(msg.to_owned(), d);
        });
    }
    /// Swallows matching requests (no processing, no reply).
    pub fn hang(&self, msg: &str) {
        self.with(|f| f.hang.push(msg.to_owned()));
    }
    /// Closes the connection when the next matching message arrives.
    pub fn disconnect_on(&self, msg: &str) {
        self.with(|f| f.disconnect_on.push(msg.to_owned()));
    }
    /// Closes every client connection now (the server keeps listening).
    pub fn disconnect_now(&self) {
        let _ = self.sh.kill.send(());
    }
    /// Restarts VPP: connections closed, state, interface indexes and event
    /// subscriptions wiped (see `Shared::restart`); faults and journal stay.
    pub fn restart(&self) {
        self.sh.restart();
    }
    /// Answers the `n`-th (1-based, from now) matching call with `retval`.
    pub fn error_on_nth(&self, msg: &str, n: u64, retval: i32) {
        self.with(|f| {
            f.error_on_nth.push(ErrorOnNth {
                msg: msg.to_owned(),
                n,
                retval,
                seen: 0,
            });
        });
    }
    /// linux-cp pair creation fails with -11 (no `/dev/vhost-net`) when on.
    pub fn lcp_tap_fail(&self, on: bool) {
        if let Ok(mut m) = self.sh.model.lock() {
            m.lcp_tap_fail = on;
        }
    }
    /// `lcp_itf_pair_get` sends at most `n` details per call and answers
    /// -165 (EAGAIN) with a resume cursor, as VPP does when it yields
    /// (`None` = all at once).
    pub fn lcp_get_page_size(&self, n: Option<usize>) {
        if let Ok(mut m) = self.sh.model.lock() {
            m.lcp_get_page = n;
        }
    }
    /// Removes every fault (including `lcp_tap_fail` and the lcp page size).
    pub fn reset(&self) {
        self.with(|f| *f = Faults::default());
        self.lcp_tap_fail(false);
        self.lcp_get_page_size(None);
    }
    /// The active faults.
    pub fn get(&self) -> Faults {
        self.sh.faults.lock().map(|f| f.clone()).unwrap_or_default()
    }
}
