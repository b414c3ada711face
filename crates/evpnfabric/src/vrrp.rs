//! keepalived (VRRPv3) as the failover peer on the same fabric, so that our
//! failover can be measured against it in the same run (`docs/fabric.md`,
//! "keepalived peer").
//!
//! The peer has an eVPN of its own (VNI 200), built by the lab, not by
//! evpnd (evpnd would remove a static FDB entry it did not make): on every
//! router a bridge `kbr` and a VXLAN device `kvx`; on every candidate a veth
//! BVI `kbvi` (per-host MAC, link-local only) whose peer `kbvp` is a bridge
//! port with learning off, and the macvlan `vrrp32` carrying the VRRP MAC;
//! on the leaf a second host (`<p>-hk`). BIRD gets `bridge_ka` /`evpn_ka`
//! with the bridge channel at `preference 100` (a local static entry always
//! beats a remote route on its own router, see [`bird_snippet`]).
//!
//! keepalived runs per candidate router exactly as measured by hand on this
//! fabric (2026-11-24): an IPv6 VRRPv3 instance on `kbvi` with `use_vmac
//! vrrp32` (pre-created before every start), the IPv4 address as an
//! excluded VIP on `vrrp32`, `track_interface` on the underlay,
//! `track_process` on the router's BIRD, a `track_file` for planned moves,
//! and the notify FIFO read by [`FdbHelper`]: MASTER → delete the VXLAN
//! device's entry for the VRRP MAC and add a static one on `kbvp` (so BIRD
//! announces it); BACKUP, FAULT, STOP → delete it. The helper keeps one
//! rtnetlink socket (requests with ACK) and spawns no process.
use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::{
    fabric::Fabric,
    netns::{Proc, spawn_root},
};

pub use crate::vrrp_lab::*;

/// The marker line that stops an [`FdbHelper`] (never written by keepalived).
const STOP_LINE: &str = "evpnfabric-helper-stop";

/// `0.01` → 1 centisecond (VRRPv3's unit; 1…255).
pub fn parse_advert_int(s: &str) -> Result<u32, String> {
    let bad = || {
        format!(
            "advert-int: expected seconds from 0.01 to 2.55 in steps of 0.01, got {:?}",
            s.chars().take(16).collect::<String>()
        )
    };
    let v: f64 = s.parse().map_err(|_| bad())?;
    let cs = (v * 100.0).round();
    if !(1.0..=255.0).contains(&cs) || ((v * 100.0) - cs).abs() > 1e-6 {
        return Err(bad());
    }
    Ok(cs as u32)
}

/// A VRRP instance state as keepalived writes it to the notify FIFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpState {
    /// Holds the addresses.
    Master,
    /// Standby.
    Backup,
    /// A tracked interface, process or file failed.
    Fault,
    /// keepalived is stopping.
    Stop,
}

/// Parse one notify-FIFO line, `INSTANCE "GW" MASTER 150`: the instance
/// name and its new state. Other lines (groups, health checkers) → `None`.
pub fn parse_notify(line: &str) -> Option<(String, VrrpState)> {
    let mut w = line.split_whitespace();
    if w.next()? != "INSTANCE" {
        return None;
    }
    let name = w.next()?.trim_matches('"').to_string();
    let st = match w.next()? {
        "MASTER" => VrrpState::Master,
        "BACKUP" => VrrpState::Backup,
        "FAULT" => VrrpState::Fault,
        "STOP" => VrrpState::Stop,
        _ => return None,
    };
    Some((name, st))
}

/// One FDB step of the helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdbStep {
    /// Delete the VRRP MAC's bridge entry on the VXLAN device (BIRD's
    /// remote one; absent is fine). `replace` is never used: it would keep
    /// `extern_learn`, and BIRD would then never announce the entry.
    DelRemote,
    /// Add a static bridge entry on the BVI port (exclusive create).
    AddStatic,
    /// Delete the bridge entry on the BVI port (absent is fine).
    DelLocal,
}

/// What the helper does on a state change.
pub fn fdb_steps(st: VrrpState) -> &'static [FdbStep] {
    match st {
        VrrpState::Master => &[FdbStep::DelRemote, FdbStep::AddStatic],
        VrrpState::Backup | VrrpState::Fault | VrrpState::Stop => &[FdbStep::DelLocal],
    }
}

/// keepalived's configuration for one router.
#[derive(Debug, Clone)]
pub struct KaConf {
    /// Router ID (`rK`).
    pub router_id: String,
    /// The router's namespace (`net_namespace`: keepalived enters it
    /// itself, which is what makes its process tracking work at all).
    pub netns: String,
    /// The notify FIFO.
    pub fifo: PathBuf,
    /// VRRP priority.
    pub priority: u8,
    /// Advertisement interval in centiseconds (VRRPv3; 1 = 0.01 s, the
    /// smallest keepalived accepts).
    pub advert_cs: u32,
    /// The file of `track_file` (weight -1: writing 100 lowers the
    /// priority by 100, the planned move).
    pub track_file: PathBuf,
    /// BIRD's command line up to its configuration file (`track_process`
    /// matches it exactly, so each router tracks its own BIRD).
    pub bird_cmdline: Vec<String>,
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', ""))
}

/// Render keepalived.conf (one statement per line: keepalived does not
/// take `;` as a separator).
pub fn keepalived_conf(c: &KaConf) -> String {
    let adv = format!("{}.{:02}", c.advert_cs / 100, c.advert_cs % 100);
    let process = c
        .bird_cmdline
        .iter()
        .map(|a| quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "net_namespace {ns}\n\
         global_defs {{\n  router_id {id}\n  vrrp_notify_fifo {fifo}\n  vrrp_garp_master_delay 5\n  vrrp_garp_master_repeat 1\n}}\n\
         track_file prio {{\n  file {tf}\n  weight -1\n}}\n\
         vrrp_track_process bird {{\n  process {process}\n  param_match partial\n  weight 0\n}}\n\
         vrrp_instance GW {{\n  state BACKUP\n  interface {KBVI}\n  use_vmac {VMAC_IF}\n  virtual_router_id {KA_VRID}\n  \
         priority {prio}\n  advert_int {adv}\n  virtual_ipaddress {{\n    {KA_V6}/64\n  }}\n  \
         virtual_ipaddress_excluded {{\n    {KA_V4}/24 dev {VMAC_IF}\n  }}\n  track_interface {{\n    eth0\n  }}\n  \
         track_process {{\n    bird\n  }}\n  track_file {{\n    prio\n  }}\n}}\n",
        ns = c.netns,
        id = c.router_id,
        fifo = c.fifo.display(),
        tf = c.track_file.display(),
        prio = c.priority,
    )
}

/// One FIFO notification handled by the helper.
#[derive(Debug, Clone, PartialEq)]
pub struct HelperEvent {
    /// µs since the epoch, when the line was read.
    pub at: u64,
    /// The new state.
    pub state: VrrpState,
    /// How long the FDB steps took, µs.
    pub took_us: u64,
    /// The error of a failed step, if any.
    pub error: Option<String>,
}

/// The notify-FIFO FDB helper of one router: a thread inside the router's
/// namespace with one rtnetlink socket. Stops on drop.
pub struct FdbHelper {
    /// Every notification handled.
    pub events: Arc<Mutex<Vec<HelperEvent>>>,
    fifo: PathBuf,
    thread: Option<JoinHandle<()>>,
}

async fn apply(nl: &netif::Netlink, mac: netif::Mac, st: VrrpState) -> Result<(), String> {
    for step in fdb_steps(st) {
        let r = match step {
            FdbStep::DelRemote => nl
                .delete_fdb(KVX, mac, netif::FdbTable::Master, None)
                .await
                .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) }),
            FdbStep::AddStatic => nl.add_fdb_static(KBVP, mac).await,
            FdbStep::DelLocal => nl
                .delete_fdb(KBVP, mac, netif::FdbTable::Master, None)
                .await
                .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) }),
        };
        r.map_err(|e| format!("{step:?}: {e}"))?;
    }
    Ok(())
}

impl FdbHelper {
    /// Create the FIFO (if missing) and start the helper in namespace `ns`.
    pub fn start(ns: &str, fifo: &Path, epoch: Instant) -> anyhow::Result<FdbHelper> {
        if !fifo.exists() {
            nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .with_context(|| format!("mkfifo {}", fifo.display()))?;
        }
        let mac: netif::Mac = KA_VMAC.parse().map_err(anyhow::Error::msg)?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
        let (ev, ns, path) = (events.clone(), ns.to_string(), fifo.to_path_buf());
        let thread = std::thread::spawn(move || {
            let setup = (|| -> anyhow::Result<_> {
                crate::netns::enter(&ns)?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let nl = rt.block_on(async { netif::Netlink::connect() })?;
                // Read and write: the FIFO never reports end-of-file when
                // keepalived closes it (a restarted keepalived reopens it).
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)?;
                Ok((rt, nl, file))
            })();
            let (rt, nl, file) = match setup {
                Ok(x) => x,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(Ok(()));
            for line in BufReader::new(file).lines() {
                let Ok(line) = line else { break };
                if line == STOP_LINE {
                    break;
                }
                let Some((_, st)) = parse_notify(&line) else {
                    continue;
                };
                let at = epoch.elapsed().as_micros() as u64;
                let r = rt.block_on(apply(&nl, mac, st));
                let took_us = epoch.elapsed().as_micros() as u64 - at;
                if let Ok(mut v) = ev.lock() {
                    v.push(HelperEvent {
                        at,
                        state: st,
                        took_us,
                        error: r.err(),
                    });
                }
            }
        });
        rx.recv().context("FDB helper died")??;
        Ok(FdbHelper {
            events,
            fifo: fifo.to_path_buf(),
            thread: Some(thread),
        })
    }

    /// The last state handled.
    pub fn last_state(&self) -> Option<VrrpState> {
        self.events.lock().ok()?.last().map(|e| e.state)
    }
}

impl Drop for FdbHelper {
    fn drop(&mut self) {
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&self.fifo) {
            let _ = writeln!(f, "{STOP_LINE}");
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// keepalived on one candidate router.
pub struct KaRouter {
    /// Router index.
    pub idx: usize,
    dir: PathBuf,
    netns: String,
    conf: PathBuf,
    track_file: PathBuf,
    /// Its FDB helper.
    pub helper: FdbHelper,
    proc: Option<Proc>,
}

/// keepalived on every candidate router (all routers but the leaf): the
/// first has priority 150 and is master, the others 100 and below.
pub struct KaPeer {
    /// Per candidate router.
    pub routers: Vec<KaRouter>,
}

/// BIRD's command line up to and including its configuration file.
fn bird_cmdline(pid: u32) -> anyhow::Result<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline"))?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let end = args
        .iter()
        .position(|a| a.ends_with("bird.conf"))
        .with_context(|| format!("BIRD's command line has no bird.conf: {args:?}"))?;
    Ok(args[..=end].to_vec())
}

impl KaPeer {
    /// Write the configurations, start the helpers and keepalived on every
    /// candidate; returns once the first candidate is MASTER and the others
    /// BACKUP.
    pub fn start(f: &Fabric, advert_cs: u32, epoch: Instant) -> anyhow::Result<KaPeer> {
        if !f.opts.keepalived {
            bail!("the fabric was built without the keepalived peer");
        }
        let mut routers = Vec::new();
        for (i, r) in f.routers[..f.routers.len() - 1].iter().enumerate() {
            let dir = r.dir.join("keepalived");
            std::fs::create_dir_all(&dir)?;
            let pid = r.bird_pid().context("BIRD not running")?;
            // The wrapper execs BIRD through its loader: wait for the exec.
            let mut cmd = bird_cmdline(pid);
            let deadline = Instant::now() + Duration::from_secs(5);
            while cmd.is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
                cmd = bird_cmdline(pid);
            }
            let track_file = dir.join("prio");
            std::fs::write(&track_file, "0\n")?;
            let c = KaConf {
                router_id: r.id.clone(),
                netns: r.ns.name.clone(),
                fifo: dir.join("notify.fifo"),
                priority: if i == 0 { 150 } else { 100 - (i as u8 - 1) },
                advert_cs,
                track_file: track_file.clone(),
                bird_cmdline: cmd?,
            };
            let conf = dir.join("keepalived.conf");
            std::fs::write(&conf, keepalived_conf(&c))?;
            let helper = FdbHelper::start(&r.ns.name, &c.fifo, epoch)?;
            routers.push(KaRouter {
                idx: i,
                dir,
                netns: r.ns.name.clone(),
                conf,
                track_file,
                helper,
                proc: None,
            });
        }
        let mut p = KaPeer { routers };
        for i in 0..p.routers.len() {
            p.start_router(i)?;
        }
        p.wait_master(0, Duration::from_secs(20))?;
        Ok(p)
    }

    /// Start keepalived on candidate `i` (the VMAC interface pre-created:
    /// keepalived refuses an excluded VIP on a device that does not exist).
    pub fn start_router(&mut self, i: usize) -> anyhow::Result<()> {
        let r = &mut self.routers[i];
        if r.proc.is_some() {
            bail!("keepalived runs already on router {}", r.idx + 1);
        }
        let ip = |args: &[&str]| {
            let mut v = vec!["ip", "-n", r.netns.as_str()];
            v.extend_from_slice(args);
            crate::netns::run(&v)
        };
        // Exists already after a crash (keepalived deletes it on a stop).
        let _ = ip(&[
            "link", "add", "link", KBVI, "name", VMAC_IF, "address", KA_VMAC, "type", "macvlan",
            "mode", "private",
        ]);
        // Two commands: `addrgenmode none up` in one brings the link up
        // first, it gains the VMAC's EUI-64 link-local, and keepalived's
        // adverts then fail with EINVAL (nobody hears them: both master).
        ip(&["link", "set", VMAC_IF, "addrgenmode", "none"])?;
        ip(&["link", "set", VMAC_IF, "up"])?;
        let d = |n: &str| r.dir.join(n).display().to_string();
        let p = spawn_root(
            &[
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-G",
                "-P",
                "-f",
                &r.conf.display().to_string(),
                "-p",
                &d("ka.pid"),
                "-r",
                &d("vrrp.pid"),
                "-c",
                &d("chk.pid"),
            ],
            &r.dir.join("keepalived.log"),
        )?;
        r.proc = Some(p);
        Ok(())
    }

    /// Kill keepalived on candidate `i` the way a crash does: SIGSTOP the
    /// parent (else the VRRP child gets SIGTERM through PR_SET_PDEATHSIG
    /// and stops gracefully), SIGKILL the VRRP child, SIGKILL the parent.
    pub fn kill9_router(&mut self, i: usize) -> anyhow::Result<()> {
        use nix::sys::signal::{Signal, kill};
        let r = &mut self.routers[i];
        let mut p = r.proc.take().context("keepalived is not running")?;
        let parent = nix::unistd::Pid::from_raw(p.pid().context("no pid")? as i32);
        let child: i32 = std::fs::read_to_string(r.dir.join("vrrp.pid"))?
            .trim()
            .parse()
            .context("vrrp.pid")?;
        kill(parent, Signal::SIGSTOP)?;
        kill(nix::unistd::Pid::from_raw(child), Signal::SIGKILL)?;
        p.kill9()?;
        // The pid files stay behind after a crash; a new start must not
        // take them for a running daemon.
        for n in ["ka.pid", "vrrp.pid", "chk.pid"] {
            let _ = std::fs::remove_file(r.dir.join(n));
        }
        Ok(())
    }

    /// Lower (`true`) or restore candidate `i`'s priority by 100 through
    /// its track file (the planned move).
    pub fn lower_priority(&self, i: usize, lower: bool) -> anyhow::Result<()> {
        let r = &self.routers[i];
        std::fs::write(&r.track_file, if lower { "100\n" } else { "0\n" })?;
        Ok(())
    }

    /// Wait until candidate `i`'s helper last handled MASTER and every
    /// other candidate's something else.
    pub fn wait_master(&self, i: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let ok = self.routers.iter().all(|r| {
                let st = r.helper.last_state();
                if r.idx == i {
                    st == Some(VrrpState::Master)
                } else {
                    st.is_some() && st != Some(VrrpState::Master)
                }
            });
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                let states: Vec<_> = self.routers.iter().map(|r| r.helper.last_state()).collect();
                bail!(
                    "keepalived: router {} not master within {timeout:?}: {states:?}",
                    i + 1
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stop every keepalived gracefully.
    pub fn stop(&mut self) {
        for r in &mut self.routers {
            if let Some(mut p) = r.proc.take() {
                p.stop(Duration::from_secs(3));
            }
        }
    }
}

impl Drop for KaPeer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_lines() {
        let cases = [
            (
                "INSTANCE \"GW\" MASTER 150",
                Some(("GW", VrrpState::Master)),
            ),
            (
                "INSTANCE \"GW\" BACKUP 100",
                Some(("GW", VrrpState::Backup)),
            ),
            ("INSTANCE \"GW\" FAULT 150", Some(("GW", VrrpState::Fault))),
            ("INSTANCE \"GW\" STOP 0", Some(("GW", VrrpState::Stop))),
            ("INSTANCE \"GW\" DELETED 0", None),
            ("GROUP \"G\" MASTER 0", None),
            ("", None),
            (STOP_LINE, None),
        ];
        for (line, want) in cases {
            let got = parse_notify(line);
            assert_eq!(got, want.map(|(n, s)| (n.to_string(), s)), "line {line:?}");
        }
    }

    #[test]
    fn advert_int_in_centiseconds() {
        for (s, cs) in [("0.01", 1), ("0.1", 10), ("1", 100), ("2.55", 255)] {
            assert_eq!(parse_advert_int(s), Ok(cs), "{s}");
        }
        for bad in ["0", "0.005", "2.56", "-1", "x", "", "0.015"] {
            let e = parse_advert_int(bad).expect_err(bad);
            assert!(e.starts_with("advert-int: expected"), "{bad}: {e}");
        }
    }

    #[test]
    fn fdb_steps_per_state() {
        assert_eq!(
            fdb_steps(VrrpState::Master),
            [FdbStep::DelRemote, FdbStep::AddStatic]
        );
        for s in [VrrpState::Backup, VrrpState::Fault, VrrpState::Stop] {
            assert_eq!(fdb_steps(s), [FdbStep::DelLocal], "{s:?}");
        }
    }

    #[test]
    fn config_has_one_statement_per_line_and_every_tracker() {
        let c = KaConf {
            router_id: "r1".into(),
            netns: "ef1-r1".into(),
            fifo: "/x/notify.fifo".into(),
            priority: 150,
            advert_cs: 1,
            track_file: "/x/prio".into(),
            bird_cmdline: vec!["/l/ld.so".into(), "-c".into(), "/x/bird.conf".into()],
        };
        let s = keepalived_conf(&c);
        assert!(!s.contains(';'), "{s}");
        for want in [
            "net_namespace ef1-r1\n",
            "  advert_int 0.01\n",
            "  priority 150\n",
            "  use_vmac vrrp32\n",
            "    172.16.1.32/24 dev vrrp32\n",
            "    fec0:1::32/64\n",
            "  process \"/l/ld.so\" \"-c\" \"/x/bird.conf\"\n",
            "  track_interface {\n    eth0\n  }\n",
            "  track_process {\n    bird\n  }\n",
            "  vrrp_notify_fifo /x/notify.fifo\n",
        ] {
            assert!(s.contains(want), "missing {want:?} in\n{s}");
        }
        let c = KaConf {
            advert_cs: 100,
            ..c
        };
        assert!(keepalived_conf(&c).contains("  advert_int 1.00\n"));
    }
}
