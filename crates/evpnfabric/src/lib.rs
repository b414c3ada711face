//! evpnfabric — the real-fabric lab (issue 8; `evpnlab fabric` calls
//! [`run`]). Needs root: it builds network namespaces.
//!
//! * [`fabric`] (with [`fabric_query`]'s read-only looks): N router namespaces on one underlay, each with BIRD 2.20
//!   (iBGP EVPN, full mesh or a route reflector) and its own `evpnd` on the
//!   Linux dataplane, an optional `evpnr`, and a host namespace attached to
//!   the eVPN on the last router (the leaf). Everything is removed on drop.
//! * [`prober`]: a fixed-rate (1 ms) ICMP/ICMPv6 echo prober for the host.
//! * [`scenario`]: the gateway group through the evpnds' RPCs, moves
//!   (release → wait → bind), the leaf's FDB watcher.
//! * [`demo`]: the design article's demo (`docs/design.md`) with every claim checked.
//! * [`bench`]: the move benchmark (evidence-based wait vs a fixed settle).
//! * [`vrrp`]: keepalived (VRRPv3) as the failover peer, with our notify-FIFO
//!   FDB helper; [`holders`]: two-holder moments; [`failover`]: the failover
//!   bench (the scenarios, ours — the group's failover `auto` — and
//!   keepalived's side by side).
//!
//! Invariants: nothing is added to the root namespace (management traffic
//! runs on the lab's own management network, separate from the underlay,
//! inside the lab's namespaces); namespaces
//! carry a per-run prefix and every namespace and process is removed on
//! drop, also after an error or a panic; only lab addresses
//! (10.0.0.0/24, 172.16.0.0/24, fec0::/64) are ever probed.

pub mod bench;
pub mod bfd;
pub mod demo;
pub mod fabric;
pub mod fabric_query;
pub mod failover;
pub mod holders;
pub mod netns;
pub mod prober;
pub mod scenario;
pub mod vrrp;
pub mod vrrp_lab;

use std::time::Duration;

pub use fabric::{Fabric, FabricOpts};
pub use scenario::{Gateway, Wait};

/// What [`run`] does on the fabric.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Play the demo with this many moves: through evpnr when the fabric
    /// registers its candidates with one, else through the evpnds' RPCs.
    Demo {
        /// Number of moves.
        moves: usize,
    },
    /// The move benchmark: this many moves with the evidence-based wait and
    /// as many with a fixed settle time (release/bind on the evpnds), or,
    /// when the fabric registers with evpnr, this many MoveGroupBVI.
    Bench {
        /// Moves per variant.
        moves: usize,
        /// The fixed settle time.
        fixed: Duration,
    },
    /// The failover bench ([`failover`]): needs the fabric built with evpnr
    /// (for the `evpn` side) and with the keepalived peer (for its side).
    FailoverBench(failover::BenchOpts),
    /// Build the fabric, set up the gateway on r1, print the namespace
    /// names and keep it up for this long (for poking around by hand).
    Up {
        /// How long.
        hold: Duration,
    },
}

/// Everything [`run`] needs.
#[derive(Debug, Clone)]
pub struct RunOpts {
    /// The fabric.
    pub fabric: FabricOpts,
    /// The gateway group.
    pub gateway: Gateway,
    /// What to do.
    pub mode: Mode,
}

/// True when running as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Build the fabric, do `opts.mode`, print progress and results to stdout,
/// and tear everything down (also on error).
pub fn run(opts: RunOpts) -> anyhow::Result<()> {
    if !is_root() {
        anyhow::bail!("evpnfabric needs root (network namespaces, raw sockets)");
    }
    let mut say = |s: &str| println!("{s}");
    say(&format!(
        "building {} routers ({}) in namespaces {}-*",
        opts.fabric.routers,
        if opts.fabric.route_reflector {
            "route reflector r1"
        } else {
            "full mesh"
        },
        opts.fabric.prefix
    ));
    let mut f = Fabric::build(opts.fabric.clone())?;
    say("fabric up: BGP established everywhere, every evpnd ready");
    match opts.mode {
        Mode::Demo { moves } if opts.fabric.register => {
            demo::demo_registry(&f, &opts.gateway, moves, &mut say)?
        }
        Mode::Demo { moves } => demo::demo_direct(&f, &opts.gateway, moves, &mut say)?,
        Mode::Bench { moves, .. } if opts.fabric.register => {
            say(&bench::where_state_lives(&f));
            say(&bench::flush_disk());
            let before = bench::load_average();
            let r = bench::bench_registry(&f, &opts.gateway, moves, &mut say)?;
            let after = bench::load_average();
            say("");
            say(&format!("load average before: {before}; after: {after}"));
            say(&bench::summary(&r));
            say(&bench::slowest(&r, bench::timelines_shown()));
        }
        Mode::Bench { moves, fixed } => {
            say(&bench::where_state_lives(&f));
            say(&bench::flush_disk());
            let before = bench::load_average();
            let r = bench::bench(
                &f,
                &opts.gateway,
                moves,
                &[Wait::Evidence, Wait::Fixed(fixed)],
                &mut say,
            )?;
            let after = bench::load_average();
            say("");
            say(&format!("load average before: {before}; after: {after}"));
            say(&bench::summary(&r));
            let evidence: Vec<_> = r
                .iter()
                .filter(|m| m.wait == Wait::Evidence)
                .cloned()
                .collect();
            say(&bench::slowest(&evidence, bench::timelines_shown()));
        }
        Mode::FailoverBench(o) => {
            failover::failover_bench(&mut f, &opts.gateway, &o, &mut say)?;
        }
        Mode::Up { hold } => {
            let cl = scenario::Clients::connect(&f)?;
            scenario::setup(&f, &cl, &opts.gateway)?;
            let gw = opts.gateway.clone();
            f.block_on(async move { scenario::bind(&cl, 0, &gw).await })?;
            say(&format!(
                "gateway bound on r1; namespaces: {}, {}, {}, {}; scratch dir {}; holding {hold:?}",
                f.ul.name,
                f.mgmt.name,
                f.host.name,
                f.routers
                    .iter()
                    .map(|r| r.ns.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                f.path.display()
            ));
            std::thread::sleep(hold);
        }
    }
    Ok(())
}
