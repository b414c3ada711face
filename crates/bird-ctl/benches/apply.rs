//! Apply latency (render + stage + configure check + rename + configure + verify) against a
//! real BIRD 2.20 (`linux` dialect; BIRD 2.0.12 cannot parse `eth table`) with 1, 100 and 1000
//! eVPNs configured. Runs in the host namespace: the kernel devices do not exist, so the
//! protocols sit in `start`, which the default verify policy accepts.
//!
//! `cargo bench -p bird-ctl --bench apply` (BIRD from `$BIRD220_BIN`, default
//! `/usr/local/bin/bird-2.20`, installed by `scripts/install-test-deps.sh`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use evpn_testkit::child::CleanSpawn;

use bird_ctl::{
    Applier, ApplierConfig, BirdClient, Change, ClientOptions, Dialect, EvpnSnippet, EvpnSpec,
    Renderer,
};

struct Bird {
    child: Child,
    _dir: tempfile::TempDir,
    sock: PathBuf,
    main: PathBuf,
    include: PathBuf,
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &str) -> Bird {
    let dir = tempfile::tempdir().expect("tempdir");
    let include = dir.path().join("conf.d");
    std::fs::create_dir(&include).unwrap();
    let main = dir.path().join("bird.conf");
    std::fs::write(
        &main,
        format!(
            "router id 10.0.0.1;\nprotocol device {{ scan time 60; }}\nevpn table evpntab;\ninclude \"{}/*.conf\";\n",
            include.display()
        ),
    )
    .unwrap();
    let sock = dir.path().join("bird.ctl");
    let child = Command::new(bin)
        .arg("-f")
        .arg("-c")
        .arg(&main)
        .arg("-s")
        .arg(&sock)
        .arg("-P")
        .arg(dir.path().join("bird.pid"))
        .stdout(Stdio::null())
        .spawn_clean()
        .expect("spawn bird");
    evpn_testkit::eventually_blocking("BIRD's control socket", Duration::from_secs(10), || {
        sock.exists()
    })
    .unwrap();
    Bird {
        child,
        _dir: dir,
        sock,
        main,
        include,
    }
}

fn spec(i: u32, variant: bool) -> EvpnSpec {
    let vni = 1000 + i;
    let mut export_targets = vec![format!("65000:{vni}")];
    if variant {
        export_targets.push(format!("65001:{vni}"));
    }
    EvpnSpec {
        slug: format!("e{i}"),
        vni,
        rd: format!("10.0.0.1:{vni}"),
        import_targets: vec![format!("65000:{vni}")],
        export_targets,
        router_address: "10.0.0.1".parse().unwrap(),
        enabled: true,
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let bin = std::env::var("BIRD220_BIN").unwrap_or_else(|_| "/usr/local/bin/bird-2.20".into());
    if !Command::new(&bin)
        .arg("--version")
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
    {
        eprintln!("bench apply: BIRD 2.20 not found at {bin}; run scripts/install-test-deps.sh");
        if std::env::var_os("CI").is_some() {
            std::process::exit(1);
        }
        return;
    }
    let renderer = Renderer::new(Dialect::linux_default(), "evpntab").unwrap();
    let fsync = std::env::var("BENCH_FSYNC")
        .map(|v| v != "0")
        .unwrap_or(true);
    println!(
        "apply latency on BIRD 2.20 (linux dialect), one eVPN changed per apply, fsync {}",
        if fsync { "on" } else { "off (BENCH_FSYNC=0)" }
    );
    println!(
        "{:>6} {:>6} {:>9} {:>9} {:>9} {:>9} | {:>8} {:>8} {:>9} {:>8} {:>8} {:>8}   {:>12}",
        "evpns",
        "iters",
        "p50 ms",
        "p99 ms",
        "mean ms",
        "max ms",
        "render",
        "stage",
        "check",
        "commit",
        "config",
        "verify",
        "initial bulk"
    );
    for &n in &[1u32, 100, 1000] {
        let bird = start(&bin);
        let opts = ClientOptions {
            command_timeout: Duration::from_secs(60),
            ..ClientOptions::default()
        };
        // The socket file appears at bind(), slightly before listen(): retry briefly.
        let client = evpn_testkit::eventually(
            "a connection to BIRD",
            Duration::from_secs(10),
            async || BirdClient::connect(&bird.sock, opts.clone()).await,
        )
        .await
        .map(Arc::new)
        .unwrap();
        let applier =
            Applier::new(client, ApplierConfig::new(&bird.main, &bird.include)).expect("applier");
        // Bulk: all N eVPNs in one apply.
        let t = Instant::now();
        let changes: Vec<Change> = (0..n)
            .map(|i| Change::Set(renderer.render(&EvpnSnippet::new(&spec(i, false)).unwrap())))
            .collect();
        applier.apply(changes).await.expect("bulk apply");
        let bulk = t.elapsed();

        let iters = if n >= 1000 { 30 } else { 100 };
        let mut lat = Vec::with_capacity(iters);
        let (mut render, mut stage, mut check, mut commit, mut conf, mut verify) = (
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
        );
        let mut variant = vec![false; n as usize];
        for k in 0..iters {
            let i = (k as u32 * 7919) % n;
            variant[i as usize] = !variant[i as usize];
            let t = Instant::now();
            let snip = EvpnSnippet::new(&spec(i, variant[i as usize])).unwrap();
            let r = renderer.render(&snip);
            let tr = t.elapsed();
            let rep = applier.apply(vec![Change::Set(r)]).await.expect("apply");
            lat.push(t.elapsed());
            assert!(!rep.noop);
            render += tr;
            stage += rep.timings.stage;
            check += rep.timings.check;
            commit += rep.timings.commit;
            conf += rep.timings.configure;
            verify += rep.timings.verify;
        }
        let mean = lat.iter().sum::<Duration>() / iters as u32;
        lat.sort();
        let k = iters as f64;
        println!(
            "{:>6} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2} | {:>8.3} {:>8.3} {:>9.3} {:>8.3} {:>8.3} {:>8.3}   {:>9.1} ms",
            n,
            iters,
            ms(pct(&lat, 0.5)),
            ms(pct(&lat, 0.99)),
            ms(mean),
            ms(*lat.last().unwrap()),
            ms(render) / k,
            ms(stage) / k,
            ms(check) / k,
            ms(commit) / k,
            ms(conf) / k,
            ms(verify) / k,
            ms(bulk),
        );
        drop(applier);
        drop(bird);
    }
    println!(
        "(render/stage/check/commit/config/verify columns are per-apply means in ms; commit = temp file + fsync + rename + directory fsync)"
    );
}
