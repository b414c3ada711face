//! The simulated lab: process supervision, configuration, the event log.
use std::{
    fs::File,
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, bail};
use evpn_api::v1::{self, evpnd_client::EvpndClient, evpnr_client::EvpnrClient};

use crate::tls::{Dial, LabPki, connect};
use evpn_testkit::child::CleanSpawn;
use tokio::process::{Child, Command};

/// Which BIRD each instance gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BirdMode {
    /// Real BIRD 2.20 if installed (scripts/install-test-deps.sh), else birdsim.
    Auto,
    /// Real BIRD 2.20 (fails if missing).
    Real,
    /// birdsim, the control-socket stand-in.
    Sim,
}

/// Command-line flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "evpnlab",
    version,
    about = "Run a vpp-evpn lab: evpnr plus N evpnd instances on simulated VPPs and BIRD",
    long_about = "evpnlab starts evpnr and N evpnd instances (default two, named like the design \
        article's dpu0-ddln0 and dpu0-chplo0), each with its own simulated VPP (vppsim) and its own \
        BIRD: real BIRD 2.20 when installed (linux snippet dialect), otherwise birdsim, a stand-in \
        for BIRD's control socket (vpp dialect). No root is needed. It prints evpnr's address, \
        streams the fleet's events, restarts an instance that dies, and removes everything on \
        Ctrl-C.\n\nTry, in another terminal:  evpnc show instance\n\nSubcommands: `evpnlab fabric …` runs \
        the real-fabric lab (root; see evpnfabric --help), `evpnlab chaos …` the seeded chaos run \
        (see evpnlab-chaos --help).\n\nWith --tls everything runs with mutual TLS: a development CA \
        and certificates in <dir>/pki (evpnr, every evpnd, and the user admin for evpnc), and the \
        EVPNC_TLS_* exports to use evpnc against the lab are printed."
)]
pub struct Args {
    /// Number of evpnd instances.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub instances: u16,
    /// evpnr's gRPC address (evpnc's default is 127.0.0.1:9190).
    #[arg(long, default_value = "127.0.0.1:9190")]
    pub grpc_addr: String,
    /// evpnr's Prometheus address; empty disables it.
    #[arg(long, default_value = "127.0.0.1:9290")]
    pub metrics_addr: String,
    /// BIRD for the instances.
    #[arg(long, value_enum, default_value_t = BirdMode::Auto)]
    pub bird: BirdMode,
    /// BIRD 2.20 binary for real mode.
    #[arg(long, env = "BIRD220_BIN", default_value = "/usr/local/bin/bird-2.20")]
    pub bird_bin: PathBuf,
    /// Working directory (logs, sockets, state); default: a temporary one,
    /// removed on exit.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Directory with the evpnd and evpnr binaries; default: evpnlab's own.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Minimum level of the streamed events: debug, info, warn, error.
    #[arg(long, default_value = "info")]
    pub events_level: String,
    /// Write a JSON description of the running lab to this file once it is up.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// Create group `demo` ready for autonomous failover (scripts/lab.sh
    /// does): every instance a member, the first with priority 200, the
    /// others 100, failover `auto` (hold-down 5 s, warm-up 2 s), a GroupBVI
    /// with 172.16.200.1/24 that the failover driver binds on the first.
    /// Every evpnd gets a health check command that fails while the file
    /// `unfit` exists in its instance directory. With `--bird auto` the lab
    /// then runs birdsim (real BIRD's EVPN protocol never comes up on the
    /// simulated VPP, so the group's health would be down everywhere).
    #[arg(long)]
    pub failover_group: bool,
    /// Mutual TLS everywhere: create a development CA and certificates in
    /// `<dir>/pki` (evpnr `evpn://registry/evpnr`, each evpnd
    /// `evpn://instance/<id>`, and `evpn://user/admin`, evpnr's admin, for
    /// evpnc) and print the `EVPNC_TLS_*` exports for evpnc. evpnr's
    /// `/metrics` is then TLS too (a client certificate of the CA).
    #[arg(long)]
    pub tls: bool,
}

/// The group `--failover-group` creates.
pub const FAILOVER_GROUP: &str = "demo";

/// Instance names: the two of `docs/design.md`'s demo, then numbered ones.
pub fn instance_name(i: usize) -> String {
    match i {
        0 => "dpu0-ddln0".into(),
        1 => "dpu0-chplo0".into(),
        n => format!("dpu0-lab{n}"),
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

enum BirdProc {
    Real(Child),
    Sim(birdsim::SimHandle),
}

struct Instance {
    id: String,
    dir: PathBuf,
    grpc: String,
    sim: vppsim::SimHandle,
    bird: BirdProc,
    evpnd: Child,
}

fn log_file(p: &Path) -> anyhow::Result<Stdio> {
    Ok(File::options().create(true).append(true).open(p)?.into())
}

fn spawn(bin: &Path, args: &[String], log: &Path) -> anyhow::Result<Child> {
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log_file(log)?)
        .stderr(log_file(log)?)
        .kill_on_drop(true)
        .spawn_clean()
        .with_context(|| format!("start {}", bin.display()))
}

fn bird_main(dir: &Path, i: usize) -> anyhow::Result<PathBuf> {
    let inc = dir.join("bird.d");
    std::fs::create_dir_all(&inc)?;
    let main = dir.join("bird.conf");
    std::fs::write(
        &main,
        format!(
            "# evpnlab: BIRD main configuration of instance {i}\nrouter id 10.0.0.{};\nprotocol device {{ scan time 2; }}\nevpn table evpntab;\ninclude \"{}/*.conf\";\n",
            i + 1,
            inc.display()
        ),
    )?;
    Ok(main)
}

fn evpnd_config(
    id: &str,
    i: usize,
    dir: &Path,
    grpc: &str,
    registry: &str,
    real_bird: bool,
    check_command: bool,
) -> String {
    let health = if check_command {
        format!(
            "  health:\n    commands:\n      - name: lab-unfit\n        argv: [/usr/bin/test, \"!\", \"-e\", \"{}\"]\n",
            dir.join("unfit").display()
        )
    } else {
        String::new()
    };
    format!(
        "evpnd:\n  instance-id: {id}\n  grpc-addr: \"{grpc}\"\n  metrics-addr: \"\"\n  registry: \"{registry}\"\n  state-dir: {d}/state\n  dataplane: vpp\n  vpp:\n    api-socket: {d}/vpp.sock\n  bird:\n    config: {d}/bird.conf\n    socket: {d}/bird.ctl\n    include-dir: {d}/bird.d\n    dialect: {dialect}\n  evpn:\n    vtep-address: 192.0.2.{n}\n    local-as: 65000\n",
        d = dir.display(),
        n = i + 1,
        dialect = if real_bird { "linux" } else { "vpp" },
    ) + &health
}

async fn start_bird(
    args: &Args,
    real: bool,
    dir: &Path,
    main: &Path,
    fabric: (&birdsim::fabric::Fabric, &str),
) -> anyhow::Result<BirdProc> {
    let sock = dir.join("bird.ctl");
    if real {
        let a: Vec<String> = vec![
            "-f".into(),
            "-c".into(),
            main.display().to_string(),
            "-s".into(),
            sock.display().to_string(),
            "-P".into(),
            dir.join("bird.pid").display().to_string(),
        ];
        let c = spawn(&args.bird_bin, &a, &dir.join("bird.log"))?;
        for _ in 0..200 {
            if sock.exists() {
                return Ok(BirdProc::Real(c));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bail!(
            "BIRD did not create {}; see {}",
            sock.display(),
            dir.join("bird.log").display()
        );
    }
    Ok(BirdProc::Sim(
        birdsim::BirdSim::start_on(main, &sock, fabric.0, fabric.1).await?,
    ))
}

fn bird_real(args: &Args) -> anyhow::Result<bool> {
    let ok = std::process::Command::new(&args.bird_bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    match (args.bird, ok) {
        (BirdMode::Sim, _) => Ok(false),
        // Real BIRD's `evpn_<slug>` stays in `start` on the simulated VPP
        // (linux dialect, no kernel devices): every member's eVPN health is
        // down and the failover group would find no candidate.
        (BirdMode::Auto, _) if args.failover_group => Ok(false),
        (BirdMode::Real, false) => bail!(
            "--bird real: {} does not run; install it with scripts/install-test-deps.sh (as root)",
            args.bird_bin.display()
        ),
        (_, ok) => Ok(ok),
    }
}

async fn wait_ready(grpc: &str, what: &str, dial: &Dial) -> anyhow::Result<()> {
    for _ in 0..300 {
        if let Ok(mut c) = connect(grpc, dial).await.map(EvpndClient::new)
            && let Ok(r) = c.get_instance(v1::InstanceRef::default()).await
            && r.get_ref().ready
            && r.get_ref().registered
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{what} did not become ready within 15 s")
}

/// Wait until evpnr itself sees every instance in `ids` connected (its
/// identity checked) and ready: only then is the lab usable through evpnr.
async fn wait_registry_sees(evpnr: &str, ids: &[String], dial: &Dial) -> anyhow::Result<()> {
    for _ in 0..300 {
        if let Ok(mut c) = connect(evpnr, dial).await.map(EvpnrClient::new)
            && let Ok(l) = c.list_instances(v1::Empty {}).await
            && ids.iter().all(|id| {
                l.get_ref().instances.iter().any(|i| {
                    &i.instance_id == id
                        && i.ready
                        && i.state == v1::instance::State::Connected as i32
                })
            })
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("evpnr did not see every instance connected and ready within 15 s")
}

async fn wait_evpnr(grpc: &str, dial: &Dial) -> anyhow::Result<()> {
    for _ in 0..300 {
        if connect(grpc, dial).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("evpnr did not listen on {grpc} within 15 s")
}

/// One compact line per event.
pub fn format_event(e: &v1::Event) -> String {
    let ts =
        e.ts.as_ref()
            .map(|t| {
                let s = t.seconds.rem_euclid(86_400);
                format!(
                    "{:02}:{:02}:{:02}.{:03}",
                    s / 3600,
                    (s / 60) % 60,
                    s % 60,
                    t.nanos / 1_000_000
                )
            })
            .unwrap_or_default();
    let origin = if e.instance.is_empty() {
        "evpnr"
    } else {
        e.instance.as_str()
    };
    let mut fields: Vec<String> = e.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    fields.sort();
    format!(
        "{ts} {:<8} {:<5} {:<12} {} {}",
        e.r#type,
        e.level,
        origin,
        e.message,
        fields.join(" ")
    )
}

async fn stream_events(grpc: String, level: String, dial: Dial) {
    loop {
        if let Ok(mut c) = connect(&grpc, &dial).await.map(EvpnrClient::new)
            && let Ok(s) = c
                .watch_events(v1::WatchEventsRequest {
                    min_level: level.clone(),
                    ..Default::default()
                })
                .await
        {
            let mut s = s.into_inner();
            while let Ok(Some(e)) = s.message().await {
                println!("{}", format_event(&e));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `--failover-group`: group [`FAILOVER_GROUP`] with every instance, the
/// first preferred, failover `auto`; the driver binds the GroupBVI on the
/// first once it has warmed up.
async fn failover_group(evpnr: &str, ids: &[String], dial: &Dial) -> anyhow::Result<()> {
    let g = FAILOVER_GROUP.to_string();
    let mut c = EvpnrClient::new(connect(evpnr, dial).await?);
    c.create_group(v1::CreateGroupRequest {
        group_id: g.clone(),
        vni: 200,
        ..Default::default()
    })
    .await?;
    for (i, id) in ids.iter().enumerate() {
        c.add_group_member(v1::GroupMemberRequest {
            group_id: g.clone(),
            instance_id: id.clone(),
        })
        .await?;
        c.set_group_member_priority(v1::SetGroupMemberPriorityRequest {
            group_id: g.clone(),
            instance_id: id.clone(),
            priority: if i == 0 { 200 } else { 100 },
        })
        .await?;
    }
    c.set_group_failover(v1::SetGroupFailoverRequest {
        group_id: g.clone(),
        mode: "auto".into(),
        preempt_off: true,
        hold_down_ms: Some(5_000),
        warm_up_ms: Some(2_000),
        ..Default::default()
    })
    .await?;
    c.create_group_bvi(v1::GroupBviRequest {
        group_id: g,
        addresses: vec![v1::Prefix {
            address: "172.16.200.1".into(),
            prefix_len: 24,
        }],
    })
    .await?;
    Ok(())
}

async fn stop(mut c: Child) {
    if let Some(pid) = c.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if tokio::time::timeout(Duration::from_secs(5), c.wait())
        .await
        .is_err()
    {
        let _ = c.kill().await;
    }
}

/// Run the lab until Ctrl-C / SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no executable directory")?
            .to_path_buf(),
    };
    let (evpnd_bin, evpnr_bin) = (bin_dir.join("evpnd"), bin_dir.join("evpnr"));
    for b in [&evpnd_bin, &evpnr_bin] {
        if !b.is_file() {
            bail!(
                "{} not found; build the workspace first (scripts/lab.sh does)",
                b.display()
            );
        }
    }
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::Builder::new().prefix("evpnlab-").tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let real = bird_real(&args)?;
    println!(
        "evpnlab: {} instance(s), {} in {}",
        args.instances,
        if real {
            "real BIRD 2.20 (linux dialect)"
        } else {
            "birdsim (vpp dialect)"
        },
        dir.display()
    );

    let pki = if args.tls {
        Some(LabPki::create(&crate::tls::pki_dir(&dir))?)
    } else {
        None
    };
    let dial_evpnr = match &pki {
        Some(p) => p.to_evpnr()?,
        None => None,
    };
    let dial_evpnd = |id: &str| -> anyhow::Result<Dial> {
        match &pki {
            Some(p) => p.to_evpnd(id),
            None => Ok(None),
        }
    };
    let mut evpnr_args: Vec<String> = vec![
        "--grpc-addr".into(),
        args.grpc_addr.clone(),
        "--metrics-addr".into(),
        args.metrics_addr.clone(),
        "--state-dir".into(),
        dir.join("evpnr").display().to_string(),
    ];
    if let Some(p) = &pki {
        let cfg = dir.join("evpnr.yaml");
        std::fs::write(&cfg, format!("evpnr:\n{}", p.evpnr_yaml("")?))?;
        evpnr_args.extend(["--config".into(), cfg.display().to_string()]);
    }
    let mut evpnr = spawn(&evpnr_bin, &evpnr_args, &dir.join("evpnr.log"))?;
    wait_evpnr(&args.grpc_addr, &dial_evpnr)
        .await
        .with_context(|| format!("see {}", dir.join("evpnr.log").display()))?;

    // With birdsim, the instances' BIRDs share a simulated fabric fed by
    // their vppsims (docs/fabric.md), so each sees the MACs the others
    // announce.
    let fabric = birdsim::fabric::Fabric::new(Default::default());
    let mut instances = Vec::new();
    for i in 0..usize::from(args.instances) {
        let id = instance_name(i);
        let idir = dir.join(&id);
        std::fs::create_dir_all(&idir)?;
        let sim = vppsim::VppSim::start(
            idir.join("vpp.sock"),
            vppsim::SimOptions {
                control_path: Some(idir.join("vpp.ctl")),
                journal_path: Some(idir.join("vpp.journal")),
                ..Default::default()
            },
        )
        .await?;
        if !real {
            let (f, name) = (fabric.clone(), id.clone());
            sim.observe(move |st| f.set_dataplane(&name, st.bvi_macs()));
        }
        let main = bird_main(&idir, i)?;
        let bird = start_bird(&args, real, &idir, &main, (&fabric, &id)).await?;
        let grpc = format!("127.0.0.1:{}", free_port()?);
        let cfg = idir.join("evpnd.yaml");
        std::fs::write(
            &cfg,
            evpnd_config(
                &id,
                i,
                &idir,
                &grpc,
                &args.grpc_addr,
                real,
                args.failover_group,
            ) + &match &pki {
                Some(p) => p.evpnd_yaml(&id)?,
                None => String::new(),
            },
        )?;
        let evpnd = spawn(
            &evpnd_bin,
            &["--config".into(), cfg.display().to_string()],
            &idir.join("evpnd.log"),
        )?;
        instances.push(Instance {
            id,
            dir: idir,
            grpc,
            sim,
            bird,
            evpnd,
        });
    }
    for inst in &instances {
        wait_ready(&inst.grpc, &inst.id, &dial_evpnd(&inst.id)?)
            .await
            .with_context(|| format!("see {}", inst.dir.join("evpnd.log").display()))?;
    }
    let ids: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
    wait_registry_sees(&args.grpc_addr, &ids, &dial_evpnr).await?;
    let desc = serde_json::json!({
        "evpnr": args.grpc_addr,
        "evpnr_metrics": args.metrics_addr,
        "tls": pki.as_ref().map(|p| serde_json::json!({
            "cert": p.admin.cert,
            "key": p.admin.key,
            "ca": p.admin.ca,
        })),
        "dir": dir,
        "bird": if real { "real" } else { "sim" },
        "instances": instances.iter().map(|i| serde_json::json!({
            "id": i.id,
            "grpc": i.grpc,
            "vpp_control": i.dir.join("vpp.ctl"),
            "vpp_journal": i.dir.join("vpp.journal"),
            "log": i.dir.join("evpnd.log"),
        })).collect::<Vec<_>>(),
    });
    if let Some(p) = &args.ready_file {
        std::fs::write(p, serde_json::to_vec_pretty(&desc)?)?;
    }
    println!("evpnlab: evpnr listens on {}", args.grpc_addr);
    for i in &instances {
        println!(
            "evpnlab:   {:<12} evpnd {}  logs {}",
            i.id,
            i.grpc,
            i.dir.join("evpnd.log").display()
        );
    }
    if let Some(p) = &pki {
        println!(
            "evpnlab: mutual TLS on: CA and certificates in {} (evpnr's /metrics too); for evpnc:\n{}",
            p.dir().display(),
            p.exports()
        );
    }
    println!(
        "evpnlab: try in another terminal:  evpnc show instance   (Ctrl-C here stops the lab)"
    );
    if args.failover_group {
        failover_group(&args.grpc_addr, &ids, &dial_evpnr).await?;
        let first = &instances[0];
        println!(
            "evpnlab: group {FAILOVER_GROUP} fails over on its own (auto; {} priority 200, the others 100). Try:\n\
             evpnlab:   evpnc watch events type failover                 # in another terminal\n\
             evpnlab:   touch {}      # {}'s check fails: a planned move to the next member\n\
             evpnlab:   rm {}         # healthy again (no move back: preemption is off)\n\
             evpnlab:   kill -9 <pid of {}'s evpnd>   # unreachable, but its VPP and BIRD still\n\
             evpnlab:       announce the vMAC: the takeover is blocked (failover-blocked), nobody binds\n\
             evpnlab:   evpnc show failover; evpnc show group {FAILOVER_GROUP}   # each member's standing",
            first.id,
            first.dir.join("unfit").display(),
            first.id,
            first.dir.join("unfit").display(),
            first.id,
        );
    }
    println!(
        "evpnlab: streaming events (level >= {}):",
        args.events_level
    );

    let events = tokio::spawn(stream_events(
        args.grpc_addr.clone(),
        args.events_level.clone(),
        dial_evpnr.clone(),
    ));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut supervise = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = supervise.tick() => {
                if let Ok(Some(st)) = evpnr.try_wait() {
                    println!("evpnlab: evpnr exited ({st}); restarting");
                    evpnr = spawn(&evpnr_bin, &evpnr_args, &dir.join("evpnr.log"))?;
                }
                for inst in &mut instances {
                    if let Ok(Some(st)) = inst.evpnd.try_wait() {
                        println!("evpnlab: evpnd {} exited ({st}); restarting", inst.id);
                        let cfg = inst.dir.join("evpnd.yaml").display().to_string();
                        inst.evpnd = spawn(&evpnd_bin, &["--config".into(), cfg], &inst.dir.join("evpnd.log"))?;
                    }
                }
            }
        }
    }
    println!("evpnlab: stopping");
    events.abort();
    for inst in instances {
        stop(inst.evpnd).await;
        match inst.bird {
            BirdProc::Real(c) => stop(c).await,
            BirdProc::Sim(h) => h.shutdown(),
        }
        drop(inst.sim);
    }
    stop(evpnr).await;
    println!("evpnlab: stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_event_lines() {
        assert_eq!(instance_name(0), "dpu0-ddln0");
        assert_eq!(instance_name(1), "dpu0-chplo0");
        assert_eq!(instance_name(5), "dpu0-lab5");
        let e = v1::Event {
            seq: 1,
            ts: Some(pbjson_types::Timestamp {
                seconds: 3661,
                nanos: 5_000_000,
            }),
            r#type: "crud".into(),
            level: "info".into(),
            instance: "dpu0-ddln0".into(),
            message: "groupbvi-bound".into(),
            fields: [
                ("mac".to_string(), "42:6c:fa:d6:82:98".to_string()),
                ("evpn".to_string(), "test".to_string()),
            ]
            .into(),
        };
        assert_eq!(
            format_event(&e),
            "01:01:01.005 crud     info  dpu0-ddln0   groupbvi-bound evpn=test mac=42:6c:fa:d6:82:98"
        );
    }
}
