//! `vppsim`: run the fake VPP binary-API server.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use vppsim::{ErrorOnNth, Faults, SimOptions, VppSim};

/// A fake VPP that speaks VPP's binary API on a unix socket.
///
/// vppsim listens on a unix stream socket, speaks VPP's framing (16-byte
/// header, big-endian length) and its sockclnt_create handshake, and serves
/// the real message table of VPP 25.10 (866 messages; plugins af_packet,
/// arping, linux_cp, linux_nl, memif, ping, vxlan). It keeps a model of
/// loopbacks, bridge domains, linux-cp pairs, neighbours, l2fib entries and
/// VXLAN tunnels, answers with VPP's retvals, and drops unknown or short
/// messages without a reply, as VPP does.
///
/// FAULTS. Messages are named by pattern: `*`, a message name
/// (`control_ping`) or a full name_crc (`control_ping_51077d14`). Faults
/// can be set at start-up with the flags below, or at run time on the
/// control socket (--control), which speaks newline-delimited JSON:
///
///   {"cmd":"latency","msg":"*","ms":1}
///   {"cmd":"hang","msg":"control_ping"}
///   {"cmd":"disconnect"}                       close every client now
///   {"cmd":"disconnect","msg":"delete_loopback"}
///   {"cmd":"error_on_nth","msg":"create_loopback_instance","n":2,"retval":-1}
///   {"cmd":"lcp_tap_fail","enable":true}
///   {"cmd":"lcp_get_page","n":2}    lcp_itf_pair_get yields with -165 (EAGAIN)
///   {"cmd":"reset_faults"}   {"cmd":"faults"}
///   {"cmd":"journal","since":0}   {"cmd":"clear_journal"}
///   {"cmd":"state"}   {"cmd":"check_macs","mac":"02:00:00:00:00:01"}
///
/// Each request gets one JSON line back: {"ok":true,...} or
/// {"ok":false,"error":"..."}.
///
/// JOURNAL. Every state-changing call (create/delete loopback, MAC, flags,
/// addresses, MTU, link-local, bridge domains, l2 bridge, l2fib, linux-cp,
/// neighbours, arping, VXLAN) is journaled in order with monotonic and wall
/// timestamps (ns), the message name, key fields and the retval. With
/// --journal every entry is also appended to a file as one JSON line.
///
/// EXAMPLES.
///
///   vppsim --socket /tmp/x.sock
///   vppsim --socket /tmp/x.sock --without-plugin linux_cp
///   vppsim --socket /tmp/x.sock --control /tmp/x.ctl --journal /tmp/x.jsonl
///   echo '{"cmd":"hang","msg":"*"}' | socat - UNIX-CONNECT:/tmp/x.ctl
///
/// vppsim runs until SIGINT or SIGTERM and removes its sockets on exit.
#[derive(Debug, Parser)]
#[command(name = "vppsim", version, verbatim_doc_comment)]
struct Args {
    /// Path of the API socket to create (VPP's is /run/vpp/api.sock).
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,

    /// Leave a plugin's messages out of the message table, as if it were not
    /// loaded (linux_cp, vxlan, arping, memif, ping, af_packet). Repeatable.
    #[arg(long = "without-plugin", value_name = "PLUGIN")]
    without_plugin: Vec<String>,

    /// Serve the JSON control protocol on this unix socket.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,

    /// Append every journal entry to this file as one JSON line.
    #[arg(long, value_name = "PATH")]
    journal: Option<PathBuf>,

    /// Fail linux-cp pair creation with -11 (SYSCALL_ERROR_1), as VPP does on
    /// a host without /dev/vhost-net. By default pairs are created.
    #[arg(long)]
    lcp_tap_fail: bool,

    /// Delay matching messages: MSG=MILLISECONDS (e.g. '*=1'). Repeatable.
    #[arg(long, value_name = "MSG=MS")]
    latency: Vec<String>,

    /// Swallow matching requests: no processing, no reply. Repeatable.
    #[arg(long, value_name = "MSG")]
    hang: Vec<String>,

    /// Answer the N-th matching call with RETVAL: MSG:N:RETVAL. Repeatable.
    #[arg(
        long = "error-on-nth",
        value_name = "MSG:N:RETVAL",
        allow_hyphen_values = true
    )]
    error_on_nth: Vec<String>,

    /// Version string reported by show_version.
    #[arg(long, value_name = "STRING", default_value = "25.10-release")]
    vpp_version: String,
}

fn faults(a: &Args) -> anyhow::Result<Faults> {
    let mut f = Faults::default();
    for l in &a.latency {
        let (m, ms) = l
            .rsplit_once('=')
            .with_context(|| format!("--latency {l:?}: expected MSG=MS"))?;
        let ms: u64 = ms.parse().with_context(|| format!("--latency {l:?}"))?;
        f.latency.insert(m.to_owned(), Duration::from_millis(ms));
    }
    f.hang.clone_from(&a.hang);
    for e in &a.error_on_nth {
        let parts: Vec<&str> = e.rsplitn(3, ':').collect();
        let [rv, n, m] = parts[..] else {
            bail!("--error-on-nth {e:?}: expected MSG:N:RETVAL");
        };
        f.error_on_nth.push(ErrorOnNth {
            msg: m.to_owned(),
            n: n.parse()
                .with_context(|| format!("--error-on-nth {e:?}: N"))?,
            retval: rv
                .parse()
                .with_context(|| format!("--error-on-nth {e:?}: RETVAL"))?,
            seen: 0,
        });
    }
    Ok(f)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();
    let opts = SimOptions {
        without_plugins: args.without_plugin.clone(),
        journal_path: args.journal.clone(),
        control_path: args.control.clone(),
        lcp_tap_fail: args.lcp_tap_fail,
        version: args.vpp_version.clone(),
        faults: faults(&args)?,
    };
    let sim = VppSim::start(&args.socket, opts)
        .await
        .with_context(|| format!("cannot serve on {}", args.socket.display()))?;
    tracing::info!(
        socket = %args.socket.display(),
        messages = sim.message_table().len(),
        "vppsim listening"
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    sim.shutdown().await;
    Ok(())
}
