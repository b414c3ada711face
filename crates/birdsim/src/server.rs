//! The control-socket server and the protocol runtime state.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    task::JoinHandle,
};

use crate::{
    conf::{self, Config},
    fabric::{EvpnExport, Fabric},
};

#[derive(Debug, Clone)]
struct Running {
    proto: conf::Protocol,
    since: String,
    /// `Some(true)` after a CLI `disable`, `Some(false)` after `enable`;
    /// cleared by the next `configure` (the file wins, as in BIRD).
    runtime_disabled: Option<bool>,
    message: Option<String>,
}

impl Running {
    fn disabled(&self) -> bool {
        self.runtime_disabled.unwrap_or(self.proto.disabled)
    }
    /// State and info columns; `established`: whether the host's BGP
    /// sessions are up on the fabric (`None`: no fabric, no peer).
    fn state(&self, established: Option<bool>) -> (&'static str, &'static str) {
        if self.disabled() {
            ("down", "")
        } else if self.proto.kind == "bgp" {
            match established {
                Some(true) => ("up", "Established"),
                Some(false) => ("start", "Connect"),
                None => ("start", "Active        Socket: Connection refused"),
            }
        } else {
            ("up", "")
        }
    }
}

struct State {
    main: PathBuf,
    cfg: Config,
    running: Vec<Running>,
    started: String,
    reconfigured: String,
    /// Fault: this many upcoming `configure` commands (not `configure
    /// check`) fail with `8002` and change nothing.
    fail_configures: u32,
    /// Fault: the replies to this many upcoming commands are sent only
    /// after `reply_delay` (the command itself takes effect at once).
    delay_replies: u32,
    reply_delay: std::time::Duration,
    /// The simulated fabric and this host's name on it.
    fabric: Option<(Fabric, String)>,
}

fn clock() -> String {
    clock_at(std::time::Duration::ZERO)
}

/// The wall clock `ago` before now, as BIRD's `HH:MM:SS.mmm`.
fn clock_at(ago: std::time::Duration) -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(ago);
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        d.subsec_millis()
    )
}

fn label(kind: &str) -> String {
    match kind {
        "bgp" => "BGP".into(),
        "evpn" => "EVPN".into(),
        "vppevpn" => "VPPEVPN".into(),
        "bfd" => "BFD".into(),
        "ospf" => "OSPF".into(),
        "rip" => "RIP".into(),
        "mrt" => "MRT".into(),
        "rpki" => "RPKI".into(),
        k => {
            let mut c = k.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    }
}

impl State {
    fn apply(&mut self, cfg: Config) {
        let now = clock();
        let old: BTreeMap<String, Running> = self
            .running
            .drain(..)
            .map(|r| (r.proto.name.clone(), r))
            .collect();
        self.running = cfg
            .protocols
            .iter()
            .map(|p| match old.get(&p.name) {
                Some(r) if r.proto == *p && r.runtime_disabled.is_none_or(|d| d == p.disabled) => {
                    Running {
                        runtime_disabled: None,
                        ..r.clone()
                    }
                }
                _ => Running {
                    proto: p.clone(),
                    since: now.clone(),
                    runtime_disabled: None,
                    message: None,
                },
            })
            .collect();
        self.cfg = cfg;
        self.reconfigured = now;
        self.export();
    }

    /// Tell the fabric which `evpn` protocols run: enabled, with their
    /// `vppevpn` companion (when configured) enabled too.
    fn export(&self) {
        let Some((f, host)) = &self.fabric else {
            return;
        };
        let on = |name: &str| {
            self.running
                .iter()
                .find(|r| r.proto.name == name)
                .is_none_or(|r| !r.disabled())
        };
        let ex = self
            .running
            .iter()
            .filter(|r| !r.disabled())
            .filter_map(|r| {
                let p = r.proto.evpn.as_ref()?;
                let slug = r.proto.name.strip_prefix("evpn_")?;
                on(&format!("vppevpn_{slug}")).then(|| EvpnExport {
                    slug: slug.to_string(),
                    vni: p.vni,
                    vtep: p.router_address.clone(),
                    import: p.import.clone(),
                    export: p.export.clone(),
                })
            })
            .collect();
        f.set_bird(host, Some(ex));
    }

    /// `show route … table <t> [eth <mac>]` on the fabric: the other hosts'
    /// routes in the eth table of the `evpn` protocol whose eth channel is
    /// `t`, in BIRD 2.20's format (a remote MAC of an `evpn` protocol:
    /// `<mac> mpls <vni> unicast [<proto> <since>] * (80)` and its
    /// `via <vtep> on <tunnel> mpls <vni>`; further routes of one net with
    /// the net column blank and no `*`).
    fn fabric_routes(&self, table: &str, only: Option<&str>) -> Vec<String> {
        let Some((f, host)) = &self.fabric else {
            return vec!["0000 ".into()];
        };
        let Some(p) = self.running.iter().find(|r| {
            r.proto.kind == "evpn" && r.proto.table.as_deref() == Some(table) && !r.disabled()
        }) else {
            return vec!["0000 ".into()];
        };
        let slug = p.proto.name.trim_start_matches("evpn_");
        let now = std::time::Instant::now();
        let mut out = vec![format!("1007-Table {table}:")];
        let mut last_mac = String::new();
        for s in f.routes_in(host, slug) {
            let r = &s.route;
            if only.is_some_and(|m| !m.eq_ignore_ascii_case(&r.mac)) {
                continue;
            }
            let since = clock_at(now.saturating_duration_since(s.since));
            if r.mac == last_mac {
                out.push(format!(
                    " {:<17} mpls {} unicast [{} {since}] (80)",
                    "", r.vni, p.proto.name
                ));
            } else {
                out.push(format!(
                    " {} mpls {} unicast [{} {since}] * (80)",
                    r.mac, r.vni, p.proto.name
                ));
                last_mac = r.mac.clone();
            }
            out.push(format!(" \tvia {} on lo mpls {}", r.vtep, r.vni));
        }
        if out.len() == 1 {
            return vec!["0000 ".into()];
        }
        out.push("0000 ".into());
        out
    }
}

/// Starts simulators.
pub struct BirdSim;

/// A running simulator; stops on `shutdown`, `kill` or drop.
pub struct SimHandle {
    task: JoinHandle<()>,
    socket: PathBuf,
    st: Arc<Mutex<State>>,
    /// Closes every open control connection when set.
    stop: tokio::sync::watch::Sender<bool>,
}

impl SimHandle {
    /// The control socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Fault injection: the next `n` `configure` commands (not `configure
    /// check`) answer `8002` as if the file had become invalid between the
    /// check and the commit, and change nothing. `0` clears the fault.
    pub fn fail_next_configures(&self, n: u32) {
        self.st
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fail_configures = n;
    }

    /// Fault injection: the replies to the next `n` commands (any command,
    /// on any connection) are sent only after `delay`; each command takes
    /// effect at once, as when BIRD is slow to answer or its socket is
    /// congested. A client that gives up before the reply arrives finds it
    /// on the connection later. `0` clears the fault.
    pub fn delay_next_replies(&self, n: u32, delay: std::time::Duration) {
        let mut st = self.st.lock().unwrap_or_else(|p| p.into_inner());
        st.delay_replies = n;
        st.reply_delay = delay;
    }

    /// How many injected `configure` failures are still pending.
    pub fn pending_configure_failures(&self) -> u32 {
        self.st
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fail_configures
    }

    /// Stop serving and remove the socket.
    pub fn shutdown(self) {
        drop(self);
    }

    /// A killed BIRD (`kill -9`): every control connection closes, the
    /// socket stops answering, and on a fabric the host's routes are
    /// withdrawn (after the fabric's withdrawal delay: the kernel closes
    /// the BGP sessions). The same as dropping the handle.
    pub fn kill(self) {
        drop(self);
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.task.abort();
        let _ = self.stop.send(true);
        let _ = std::fs::remove_file(&self.socket);
        let st = self.st.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((f, host)) = &st.fabric {
            f.set_bird(host, None);
        }
    }
}

impl BirdSim {
    /// Parse `main` (as BIRD does at start: an invalid file is fatal) and
    /// serve the control socket at `socket`.
    pub async fn start(main: &Path, socket: &Path) -> anyhow::Result<SimHandle> {
        Self::start_with(main, socket, None).await
    }

    /// [`BirdSim::start`] as host `host` of the simulated `fabric`: its eth
    /// tables show the routes the other hosts announce, its BGP protocols
    /// are established while the host is connected to the fabric, and its
    /// running `evpn` protocols export the MACs of the host's dataplane
    /// (which the harness feeds to the fabric).
    pub async fn start_on(
        main: &Path,
        socket: &Path,
        fabric: &Fabric,
        host: &str,
    ) -> anyhow::Result<SimHandle> {
        Self::start_with(main, socket, Some((fabric.clone(), host.to_string()))).await
    }

    async fn start_with(
        main: &Path,
        socket: &Path,
        fabric: Option<(Fabric, String)>,
    ) -> anyhow::Result<SimHandle> {
        let cfg = conf::parse(main).map_err(|e| anyhow::anyhow!("{e}"))?;
        let now = clock();
        let mut st = State {
            main: main.to_path_buf(),
            cfg: Config::default(),
            running: Vec::new(),
            started: now.clone(),
            reconfigured: now,
            fail_configures: 0,
            delay_replies: 0,
            reply_delay: std::time::Duration::ZERO,
            fabric,
        };
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket)?;
        st.apply(cfg);
        let st = Arc::new(Mutex::new(st));
        let st2 = st.clone();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let st = st.clone();
                let stopped = stopped.clone();
                tokio::spawn(async move {
                    let _ = serve(s, st, stopped).await;
                });
            }
        });
        Ok(SimHandle {
            task,
            socket: socket.to_path_buf(),
            st: st2,
            stop,
        })
    }
}

/// Split a command line into words, keeping quoted strings whole.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut q: Option<char> = None;
    for c in line.chars() {
        match (q, c) {
            (None, '"' | '\'') => {
                q = Some(c);
                cur.push(c);
            }
            (Some(qc), c) if c == qc => {
                q = None;
                cur.push(c);
            }
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn unq(s: &str) -> String {
    s.trim_matches(|c| c == '"' || c == '\'').to_string()
}

const SYNTAX: &str = "9001 syntax error, unexpected CF_SYM_UNDEFINED";

fn handle(st: &Mutex<State>, line: &str) -> Vec<String> {
    let w = words(line.trim());
    let ws: Vec<&str> = w.iter().map(String::as_str).collect();
    let mut st = st.lock().unwrap_or_else(|p| p.into_inner());
    match ws.as_slice() {
        ["show", "status"] => vec![
            format!("1000-BIRD {}", crate::VERSION),
            format!(
                "1011-Router ID is {}",
                st.cfg.router_id.clone().unwrap_or_else(|| "0.0.0.0".into())
            ),
            " Hostname is birdsim".into(),
            format!(" Current server time is {}", clock()),
            format!(" Last reboot on {}", st.started),
            format!(" Last reconfiguration on {}", st.reconfigured),
            "0013 Daemon is up and running".into(),
        ],
        ["show", "protocols", rest @ ..] => {
            let (all, rest) = match rest {
                ["all", r @ ..] => (true, r),
                r => (false, r),
            };
            let sel: Vec<&Running> = match rest {
                [] => st.running.iter().collect(),
                [n] => {
                    let name = unq(n);
                    let v: Vec<&Running> =
                        st.running.iter().filter(|r| r.proto.name == name).collect();
                    if v.is_empty() {
                        return vec![if n.starts_with(['"', '\'']) {
                            "8003 No protocols match".into()
                        } else {
                            SYNTAX.into()
                        }];
                    }
                    v
                }
                _ => return vec![SYNTAX.into()],
            };
            let established = st.fabric.as_ref().map(|(f, h)| f.established(h));
            let mut out =
                vec!["2002-Name       Proto      Table      State  Since         Info".to_string()];
            for (i, r) in sel.iter().enumerate() {
                let (state, info) = r.state(established);
                let row = format!(
                    "{:<10} {:<10} {:<10} {:<6} {:<13} {info}",
                    r.proto.name,
                    label(&r.proto.kind),
                    r.proto.table.clone().unwrap_or_else(|| "---".into()),
                    state,
                    r.since
                );
                out.push(if all || i == 0 {
                    format!("1002-{row}")
                } else {
                    format!(" {row}")
                });
                if all {
                    let mut first = true;
                    let mut push = |t: String| {
                        out.push(if first {
                            format!("1006-{t}")
                        } else {
                            format!(" {t}")
                        });
                        first = false;
                    };
                    if let Some(m) = &r.message {
                        push(format!("  Message:        {m}"));
                    }
                    if r.proto.kind == "bgp" && !r.disabled() {
                        let s = if state == "up" {
                            "Established"
                        } else {
                            "Connect"
                        };
                        push(format!("  BGP state:          {s}"));
                    }
                    if let Some(t) = &r.proto.table {
                        push("  Channel eth".into());
                        push(format!(
                            "    State:          {}",
                            if state == "up" { "UP" } else { "DOWN" }
                        ));
                        push(format!("    Table:          {t}"));
                    }
                    push(String::new());
                }
            }
            out.push("0000 ".into());
            out
        }
        ["configure", "status"] => vec!["0003-Daemon is up and running".into(), "0000 ".into()],
        ["configure", rest @ ..] => {
            let (check, rest) = match rest {
                ["check", r @ ..] => (true, r),
                ["soft", r @ ..] => (false, r),
                r => (false, r),
            };
            let file = match rest {
                [] => st.main.clone(),
                [f] => PathBuf::from(unq(f)),
                _ => return vec![SYNTAX.into()],
            };
            let head = format!("0002-Reading configuration from {}", file.display());
            match conf::parse(&file) {
                Err(e) => vec![head, format!("8002 {e}")],
                Ok(_) if check => vec![head, "0020 Configuration OK".into()],
                Ok(_) if st.fail_configures > 0 => {
                    st.fail_configures -= 1;
                    vec![
                        head,
                        format!("8002 {}:1:1 injected configure failure", file.display()),
                    ]
                }
                Ok(c) => {
                    st.apply(c);
                    vec![head, "0003 Reconfigured".into()]
                }
            }
        }
        [verb @ ("enable" | "disable" | "restart" | "reload"), n, ..] => {
            let name = unq(n);
            let Some(r) = st.running.iter_mut().find(|r| r.proto.name == name) else {
                return vec![if n.starts_with(['"', '\'']) {
                    "8003 No protocols match".into()
                } else {
                    SYNTAX.into()
                }];
            };
            let now = clock();
            let line = match (*verb, r.disabled()) {
                ("disable", true) => format!("0008-{name}: already disabled"),
                ("disable", false) => {
                    r.runtime_disabled = Some(true);
                    r.since = now;
                    format!("0009-{name}: disabled")
                }
                ("enable", false) => format!("0010-{name}: already enabled"),
                ("enable", true) => {
                    r.runtime_disabled = Some(false);
                    r.since = now;
                    format!("0011-{name}: enabled")
                }
                ("restart" | "reload", true) => format!("0008-{name}: already disabled"),
                ("restart", false) => {
                    r.since = now;
                    format!("0012-{name}: restarted")
                }
                _ => format!("0015-{name}: reloading"),
            };
            st.export();
            vec![line, "0000 ".into()]
        }
        ["show", "route", rest @ ..] => {
            let only = rest
                .iter()
                .position(|x| *x == "eth")
                .and_then(|i| rest.get(i + 1))
                .map(|m| unq(m));
            match rest.iter().position(|x| *x == "table") {
                Some(i) => match rest.get(i + 1) {
                    Some(t) if st.cfg.tables.contains(&unq(t)) => {
                        st.fabric_routes(&unq(t), only.as_deref())
                    }
                    _ => vec![SYNTAX.into()],
                },
                None => vec!["0000 ".into()],
            }
        }
        ["echo", ..] | ["timeformat", ..] => vec!["0000 ".into()],
        [] => vec![],
        _ => vec![SYNTAX.into()],
    }
}

async fn serve(
    s: UnixStream,
    st: Arc<Mutex<State>>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    if *stopped.borrow() {
        return Ok(());
    }
    let (r, mut w) = s.into_split();
    w.write_all(format!("0001 BIRD {} ready.\n", crate::VERSION).as_bytes())
        .await?;
    let mut lines = BufReader::new(r).lines();
    loop {
        let line = tokio::select! {
            l = lines.next_line() => l?,
            _ = stopped.wait_for(|s| *s) => return Ok(()),
        };
        let Some(line) = line else { break };
        let line = line.trim_end_matches('\r');
        if line.len() > 4096 {
            w.write_all(b"9000 Command too long\n").await?;
            continue;
        }
        let reply = handle(&st, line);
        if reply.is_empty() {
            continue;
        }
        let delay = {
            let mut g = st.lock().unwrap_or_else(|p| p.into_inner());
            (g.delay_replies > 0).then(|| {
                g.delay_replies -= 1;
                g.reply_delay
            })
        };
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let mut buf = reply.join("\n");
        buf.push('\n');
        w.write_all(buf.as_bytes()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ask(
        lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
        w: &mut tokio::net::unix::OwnedWriteHalf,
        cmd: &str,
    ) -> String {
        w.write_all(format!("{cmd}\n").as_bytes()).await.unwrap();
        let mut out = Vec::new();
        while let Some(l) = lines.next_line().await.unwrap() {
            let last = l.len() >= 5 && l.as_bytes()[4] == b' ';
            out.push(l);
            if last {
                break;
            }
        }
        out.join("\n")
    }

    #[tokio::test]
    async fn injected_configure_failures_change_nothing_then_stop() {
        let d = tempfile::tempdir().unwrap();
        let main = d.path().join("bird.conf");
        std::fs::write(&main, "router id 10.0.0.1;\n").unwrap();
        let sock = d.path().join("bird.ctl");
        let h = BirdSim::start(&main, &sock).await.unwrap();
        let (r, mut w) = UnixStream::connect(&sock).await.unwrap().into_split();
        let mut lines = BufReader::new(r).lines();
        lines.next_line().await.unwrap();
        std::fs::write(&main, "router id 10.0.0.2;\n").unwrap();
        h.fail_next_configures(1);
        assert!(
            ask(&mut lines, &mut w, "configure check")
                .await
                .contains("0020")
        );
        let e = ask(&mut lines, &mut w, "configure").await;
        assert!(e.contains("8002") && e.contains("injected"), "{e}");
        assert!(
            ask(&mut lines, &mut w, "show status")
                .await
                .contains("10.0.0.1")
        );
        assert_eq!(h.pending_configure_failures(), 0);
        assert!(ask(&mut lines, &mut w, "configure").await.contains("0003"));
        assert!(
            ask(&mut lines, &mut w, "show status")
                .await
                .contains("10.0.0.2")
        );
    }

    #[tokio::test]
    async fn a_delayed_reply_arrives_late_after_the_command_took_effect() {
        let d = tempfile::tempdir().unwrap();
        let main = d.path().join("bird.conf");
        std::fs::write(&main, "router id 10.0.0.1;\n").unwrap();
        let sock = d.path().join("bird.ctl");
        let h = BirdSim::start(&main, &sock).await.unwrap();
        let (r, mut w) = UnixStream::connect(&sock).await.unwrap().into_split();
        let mut lines = BufReader::new(r).lines();
        lines.next_line().await.unwrap();
        std::fs::write(&main, "router id 10.0.0.2;\n").unwrap();
        let delay = std::time::Duration::from_millis(300);
        h.delay_next_replies(1, delay);
        // A client that gives up early: the command still took effect, and
        // its reply is the next thing on the connection.
        w.write_all(b"configure\n").await.unwrap();
        let early = tokio::time::timeout(delay / 3, lines.next_line()).await;
        assert!(early.is_err(), "the reply was not delayed: {early:?}");
        let applied = || h.st.lock().unwrap().cfg.router_id.clone();
        assert_eq!(applied().as_deref(), Some("10.0.0.2"));
        let mut late = Vec::new();
        while let Some(l) = lines.next_line().await.unwrap() {
            let last = l.len() >= 5 && l.as_bytes()[4] == b' ';
            late.push(l);
            if last {
                break;
            }
        }
        assert!(late.concat().contains("0003"), "{late:?}");
        // Only `n` replies are delayed.
        let t = std::time::Instant::now();
        assert!(
            ask(&mut lines, &mut w, "show status")
                .await
                .contains("10.0.0.2")
        );
        assert!(t.elapsed() < delay, "{:?}", t.elapsed());
    }
}
