//! Parameters and the report of one chaos run.
use std::{collections::BTreeMap, fmt::Write as _, path::PathBuf, time::Duration};

/// Parameters of one run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seed of the random generator: the same seed gives the same sequence
    /// of operations and faults (timing still varies).
    pub seed: u64,
    /// Number of operations.
    pub ops: usize,
    /// Number of evpnd instances.
    pub instances: usize,
    /// Number of group names the operations draw from.
    pub groups: usize,
    /// Probability that a fault is injected before an operation.
    pub fault_rate: f64,
    /// Probability that a process is killed while an operation runs.
    pub kill_rate: f64,
    /// Probability of an adversarial attempt (wrong identity, epoch-less
    /// call to an evpnd, invalid operator input) before an operation.
    pub adversary_rate: f64,
    /// Probability that the caller of an operation gives up after 2–60 ms
    /// (and then retries it).
    pub cancel_rate: f64,
    /// Bound for invariant 2, counted from the moment every process is
    /// running and connected again.
    pub converge_timeout: Duration,
    /// The simulated fabric's withdrawal delay (a route stays visible to the
    /// other hosts this long after it stopped being carried).
    pub withdraw_delay: Duration,
    /// Autonomous failover: groups `auto` by the seed, failover settings
    /// (policy, priorities, drains, the switch) and health faults between
    /// operations; evpnd's health checks and evpnr's liveness on short
    /// timers.
    pub failover: bool,
    /// Probability of a failover setting or health fault before an
    /// operation (with `failover`).
    pub failover_rate: f64,
    /// Directory with the `evpnd` and `evpnr` binaries.
    pub bin_dir: PathBuf,
    /// Keep the working directory (logs, journals, state).
    pub keep_dir: bool,
    /// Print every step as it happens.
    pub verbose: bool,
    /// Mutual TLS everywhere (`super::fleet::FleetOptions::tls`).
    pub tls: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 1,
            ops: 300,
            instances: 4,
            groups: 3,
            fault_rate: 0.25,
            kill_rate: 0.06,
            adversary_rate: 0.08,
            cancel_rate: 0.04,
            converge_timeout: Duration::from_secs(30),
            withdraw_delay: Duration::from_millis(5),
            failover: false,
            failover_rate: 0.15,
            bin_dir: PathBuf::new(),
            keep_dir: false,
            tls: false,
            verbose: false,
        }
    }
}

/// What a run did and found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The seed (replay with it).
    pub seed: u64,
    /// Operations issued.
    pub ops: usize,
    /// Operations per RPC name and outcome (`OK` or the gRPC code).
    pub outcomes: BTreeMap<String, BTreeMap<String, usize>>,
    /// Faults injected, per kind.
    pub faults: BTreeMap<String, usize>,
    /// Adversarial attempts per kind and outcome (`OK` or the gRPC code).
    pub adversary: BTreeMap<String, BTreeMap<String, usize>>,
    /// Times evpnr's record was checked against the model right after a
    /// restart.
    pub durability_checks: usize,
    /// Whether the daemons honour the store fault hook (else disk faults
    /// were skipped).
    pub disk_hook: bool,
    /// Invariant violations (empty: the run passed).
    pub violations: Vec<String>,
    /// Times a host took a group's vMAC (from the journals).
    pub vmac_takes: usize,
    /// MAC-changing VPP calls replayed from the journals.
    pub replayed: usize,
    /// Time from "faults stopped, everything running" to converged.
    pub converge: Option<Duration>,
    /// With failover: evpnr's `failover-started`, `-finished`, `-blocked`
    /// and `-held` events over the whole run (from its log, across
    /// restarts), and evpnds' `self-fenced`.
    pub failover_events: BTreeMap<String, usize>,
    /// With failover: time from "failover resumed, drains ended" to every
    /// auto group having a primary.
    pub failover_settled: Option<Duration>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Every step, in order.
    pub log: Vec<String>,
    /// The working directory.
    pub dir: PathBuf,
}

impl Report {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// A human-readable summary (the op log is separate).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let ok: usize = self
            .outcomes
            .values()
            .map(|m| m.get("OK").copied().unwrap_or(0))
            .sum();
        let faults: usize = self.faults.values().sum();
        let _ = writeln!(
            s,
            "chaos: seed {} — {} operations ({} acknowledged, {} failed), {} faults injected, {} violations, {:.1} s",
            self.seed,
            self.ops,
            ok,
            self.ops - ok,
            faults,
            self.violations.len(),
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(s, "operations:");
        for (op, m) in &self.outcomes {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(s, "  {op:<22} {}", parts.join(", "));
        }
        let _ = writeln!(s, "faults:");
        for (f, n) in &self.faults {
            let _ = writeln!(s, "  {f:<22} {n}");
        }
        let _ = writeln!(s, "attempts that must be refused:");
        for (a, m) in &self.adversary {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(s, "  {a:<26} {}", parts.join(", "));
        }
        if !self.disk_hook {
            let _ = writeln!(
                s,
                "notice: no store fault hook in these binaries; disk faults skipped"
            );
        }
        let _ = writeln!(
            s,
            "invariants: {} durability checks after evpnr restarts; vMAC taken {} times, {} MAC-changing VPP calls replayed across hosts; converged {}",
            self.durability_checks,
            self.vmac_takes,
            self.replayed,
            self.converge
                .map(|d| format!("in {:.2} s", d.as_secs_f64()))
                .unwrap_or_else(|| "never".into())
        );
        if !self.failover_events.is_empty() {
            let parts: Vec<String> = self
                .failover_events
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(s, "failover events: {}", parts.join(", "));
        }
        if let Some(d) = self.failover_settled {
            let _ = writeln!(
                s,
                "failover: every auto group had a primary {:.2} s after failover resumed and drains ended",
                d.as_secs_f64()
            );
        }
        if self.passed() {
            let _ = writeln!(s, "result: PASS (0 violations)");
        } else {
            let _ = writeln!(s, "result: FAIL — {} violation(s):", self.violations.len());
            for v in &self.violations {
                let _ = writeln!(s, "  - {v}");
            }
            let _ = writeln!(
                s,
                "replay: evpnlab-chaos --seed {} --ops {} (working directory {})",
                self.seed,
                self.ops,
                self.dir.display()
            );
        }
        s
    }
}
