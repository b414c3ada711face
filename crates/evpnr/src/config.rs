//! evpnr's configuration: YAML file (top-level key `evpnr`), overridden by
//! environment variables (`EVPNR_*`), overridden by flags. Without
//! `--config` an embedded default is used. See docs/config.md.
use std::path::PathBuf;

use evpn_daemon::{
    config::{self, ConfigError, SemanticError, Validate},
    duration::HumanDuration,
    runner::{CommonSettings, Loaded},
    settle::SettlePolicy,
};
use serde::{Deserialize, Serialize};

/// The embedded default configuration (used when no `--config` is given).
pub const DEFAULT_CONFIG: &str = include_str!("default.yaml");

/// Command-line flags; each has an environment variable and wins over it.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "evpnr",
    about = "vpp-evpn fleet registry",
    long_about = "evpnr is the vpp-evpn fleet registry: the single source of truth for which \
        evpnd instances form which eVPN groups, each group's gateway identity (virtual MAC and \
        addresses) and which member is primary. It orchestrates evpnd instances over gRPC and \
        serves the Evpnr API to evpnc.\n\nPrecedence: flag > environment > config file > built-in \
        default. See evpnr(8) and docs/config.md.",
    disable_version_flag = true
)]
pub struct Args {
    /// YAML configuration file; without it the embedded default is used.
    #[arg(long, env = "EVPNR_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// gRPC listen address (host:port).
    #[arg(long, env = "EVPNR_GRPC_ADDR", value_name = "ADDR")]
    pub grpc_addr: Option<String>,
    /// Prometheus listen address (host:port); empty disables metrics.
    #[arg(long, env = "EVPNR_METRICS_ADDR", value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Log level: debug, info, warn or error.
    #[arg(long, env = "EVPNR_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Directory for the registry's persistent state.
    #[arg(long, env = "EVPNR_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// evpnr's TLS certificate (PEM, naming evpn://registry/<name>); with
    /// --tls-key and --tls-ca turns on mutual TLS for its gRPC server and
    /// its calls to the members.
    #[arg(long, env = "EVPNR_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    #[arg(long, env = "EVPNR_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// The CA that signs the members' and the operators' certificates (PEM).
    #[arg(long, env = "EVPNR_TLS_CA", value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,
    /// Serve plaintext gRPC on a non-loopback address (no TLS): anyone who
    /// can reach it can move gateways. Warned about on every start.
    #[arg(long, env = "EVPNR_TLS_INSECURE")]
    pub tls_insecure: bool,
    /// How long an autonomous takeover waits for the old primary's answer
    /// to its release (`failover.release-wait`, e.g. `100ms`).
    #[arg(long, env = "EVPNR_FAILOVER_RELEASE_WAIT", value_name = "DURATION")]
    pub failover_release_wait: Option<HumanDuration>,
    /// Validate the configuration, print it as JSON and exit: 0 valid, 1 YAML
    /// parse error, 2 semantic error.
    #[arg(long)]
    pub check: bool,
    /// Print version and commit, then exit.
    #[arg(long)]
    pub version: bool,
}

/// The file's top level: exactly one key, `evpnr`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    evpnr: FileConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    grpc_addr: Option<String>,
    metrics_addr: Option<String>,
    log_level: Option<String>,
    state_dir: Option<PathBuf>,
    member_timeout: Option<HumanDuration>,
    #[serde(rename = "move")]
    move_: Option<MoveFile>,
    liveness: Option<LivenessFile>,
    failover: Option<FailoverFile>,
    #[serde(default)]
    tls: evpn_daemon::tls::TlsFile,
    #[serde(default)]
    audit: evpn_daemon::audit::AuditFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct LivenessFile {
    heartbeat_interval: Option<HumanDuration>,
    suspect_after: Option<HumanDuration>,
    dead_after: Option<HumanDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FailoverFile {
    release_wait: Option<HumanDuration>,
}

/// Autonomous failover timing (the policies are per group, in the state).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FailoverConfig {
    /// The longest a takeover waits for the old primary's answer to its
    /// release before it counts it as not released (rule F14); at most
    /// `member-timeout`.
    pub release_wait: HumanDuration,
}

/// How a member's liveness is derived from its heartbeats.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct LivenessConfig {
    /// Interval the evpnds are asked to send heartbeats at.
    pub heartbeat_interval: HumanDuration,
    /// A member whose last heartbeat is older is suspect (calls fail fast).
    pub suspect_after: HumanDuration,
    /// A member whose last heartbeat is older is dead.
    pub dead_after: HumanDuration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct MoveFile {
    min_settle: Option<HumanDuration>,
    takeover_min_settle: Option<HumanDuration>,
    max_wait: Option<HumanDuration>,
    poll_interval: Option<HumanDuration>,
}

/// Break-before-make move timing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct MoveConfig {
    /// Fixed wait after the release before polling for evidence (default 0).
    pub min_settle: HumanDuration,
    /// The least fixed wait of a takeover's bind (an autonomous failover
    /// that could not release the old primary): every router of the fabric,
    /// not only the candidate, must have dropped the old primary's route
    /// before the candidate announces the vMAC — at least the fabric's BFD
    /// detection time.
    pub takeover_min_settle: HumanDuration,
    /// Upper bound on waiting for the fabric to withdraw the vMAC.
    pub max_wait: HumanDuration,
    /// Interval between evidence polls.
    pub poll_interval: HumanDuration,
}

impl MoveConfig {
    /// The evidence wait a bind after a release asks the member for.
    pub fn policy(&self) -> SettlePolicy {
        SettlePolicy {
            min_settle: self.min_settle.0,
            max_wait: self.max_wait.0,
            poll_interval: self.poll_interval.0,
            require_evidence: false,
            clear_hold: std::time::Duration::ZERO,
            since_withdrawal: None,
        }
    }
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Config {
    pub grpc_addr: String,
    pub metrics_addr: String,
    pub log_level: String,
    pub state_dir: PathBuf,
    pub member_timeout: HumanDuration,
    #[serde(rename = "move")]
    pub move_: MoveConfig,
    pub liveness: LivenessConfig,
    pub failover: FailoverConfig,
    /// Mutual TLS (docs/security.md); off: loopback only unless insecure.
    pub tls: evpn_daemon::tls::TlsConfig,
    /// The audit log's rotation (docs/security.md, "Audit").
    pub audit: evpn_daemon::audit::AuditConfig,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), SemanticError> {
        config::check_listen_addr("evpnr.grpc-addr", &self.grpc_addr, false)?;
        config::check_listen_addr("evpnr.metrics-addr", &self.metrics_addr, true)?;
        self.audit.validate("evpnr")?;
        self.tls.validate(
            "evpnr",
            &[
                ("evpnr.grpc-addr", &self.grpc_addr),
                ("evpnr.metrics-addr", &self.metrics_addr),
            ],
        )?;
        config::check_log_level("evpnr.log-level", &self.log_level)?;
        if self.state_dir.as_os_str().is_empty() {
            return Err(SemanticError::new("evpnr.state-dir", "must not be empty"));
        }
        if self.member_timeout.0.is_zero() {
            return Err(SemanticError::new(
                "evpnr.member-timeout",
                "must be greater than 0",
            ));
        }
        let l = &self.liveness;
        if l.heartbeat_interval.0 < std::time::Duration::from_millis(10)
            || l.heartbeat_interval.0 > std::time::Duration::from_secs(60)
        {
            return Err(SemanticError::new(
                "evpnr.liveness.heartbeat-interval",
                "must be between 10ms and 60s",
            ));
        }
        if l.suspect_after.0 <= l.heartbeat_interval.0 {
            return Err(SemanticError::new(
                "evpnr.liveness.suspect-after",
                "must be longer than liveness.heartbeat-interval (3 intervals or more is usual)",
            ));
        }
        if l.dead_after.0 <= l.suspect_after.0 {
            return Err(SemanticError::new(
                "evpnr.liveness.dead-after",
                "must be longer than liveness.suspect-after",
            ));
        }
        let rw = self.failover.release_wait.0;
        if rw.is_zero() || rw > self.member_timeout.0 {
            return Err(SemanticError::new(
                "evpnr.failover.release-wait",
                "must be greater than 0 and at most member-timeout",
            ));
        }
        if self.move_.takeover_min_settle.0 > self.move_.max_wait.0 {
            return Err(SemanticError::new(
                "evpnr.move.takeover-min-settle",
                "must be at most move.max-wait",
            ));
        }
        if let Err((field, reason)) = self.move_.policy().check() {
            let field = format!("evpnr.move.{}", field.replace('_', "-"));
            let reason = reason.replace("max_wait", "move.max-wait");
            return Err(SemanticError::new(field, reason));
        }
        Ok(())
    }
}

impl Config {
    /// Settings that are accepted but probably wrong (printed by `--check`,
    /// logged as `config-warning` at start).
    pub fn warnings(&self) -> Vec<String> {
        self.tls.warnings(
            "evpnr",
            &[
                ("evpnr.grpc-addr", &self.grpc_addr),
                ("evpnr.metrics-addr", &self.metrics_addr),
            ],
        )
    }
}

impl CommonSettings for Config {
    fn log_level(&self) -> &str {
        &self.log_level
    }
    fn grpc_addr(&self) -> &str {
        &self.grpc_addr
    }
    fn metrics_addr(&self) -> &str {
        &self.metrics_addr
    }
    fn state_dir(&self) -> &std::path::Path {
        &self.state_dir
    }
    fn audit(&self) -> &evpn_daemon::audit::AuditConfig {
        &self.audit
    }
    fn restart_keys(&self) -> Vec<(&'static str, String)> {
        vec![
            ("evpnr.grpc-addr", self.grpc_addr.clone()),
            ("evpnr.metrics-addr", self.metrics_addr.clone()),
            ("evpnr.state-dir", self.state_dir.display().to_string()),
            ("evpnr.tls.insecure", self.tls.insecure.to_string()),
            ("evpnr.audit", format!("{:?}", self.audit)),
        ]
    }
}

fn dur(s: &str) -> HumanDuration {
    s.parse().unwrap_or_default()
}

/// Load the configuration: file (or embedded default), then env/flags.
pub fn load(args: &Args) -> Result<Loaded<Config>, ConfigError> {
    let (text, origin) = config::read_source(args.config.as_deref(), DEFAULT_CONFIG)?;
    let file: File = config::parse_structural(&text, &origin)?;
    let f = file.evpnr;
    let m = f.move_.unwrap_or_default();
    let lv = f.liveness.unwrap_or_default();
    let fo = f.failover.unwrap_or_default();
    let cfg = Config {
        grpc_addr: args
            .grpc_addr
            .clone()
            .or(f.grpc_addr)
            .unwrap_or_else(|| "127.0.0.1:9190".into()),
        metrics_addr: args
            .metrics_addr
            .clone()
            .or(f.metrics_addr)
            .unwrap_or_else(|| "127.0.0.1:9290".into()),
        log_level: args
            .log_level
            .clone()
            .or(f.log_level)
            .unwrap_or_else(|| "info".into()),
        state_dir: args
            .state_dir
            .clone()
            .or(f.state_dir)
            .unwrap_or_else(|| PathBuf::from("/var/lib/evpnr")),
        member_timeout: f.member_timeout.unwrap_or_else(|| dur("5s")),
        move_: MoveConfig {
            min_settle: m.min_settle.unwrap_or_default(),
            takeover_min_settle: m.takeover_min_settle.unwrap_or_else(|| dur("100ms")),
            max_wait: m.max_wait.unwrap_or_else(|| dur("2s")),
            poll_interval: m.poll_interval.unwrap_or_else(|| dur("1ms")),
        },
        liveness: LivenessConfig {
            heartbeat_interval: lv.heartbeat_interval.unwrap_or_else(|| dur("1s")),
            suspect_after: lv.suspect_after.unwrap_or_else(|| dur("3s")),
            dead_after: lv.dead_after.unwrap_or_else(|| dur("10s")),
        },
        failover: FailoverConfig {
            release_wait: args
                .failover_release_wait
                .or(fo.release_wait)
                .unwrap_or_else(|| dur("100ms")),
        },
        tls: evpn_daemon::tls::TlsConfig::merge(
            f.tls,
            evpn_daemon::tls::TlsOverrides {
                cert: args.tls_cert.clone(),
                key: args.tls_key.clone(),
                ca: args.tls_ca.clone(),
                insecure: args.tls_insecure.then_some(true),
            },
        ),
        audit: evpn_daemon::audit::AuditConfig::merge(f.audit),
    };
    config::check(&cfg, &origin)?;
    Ok(Loaded { cfg, text })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn embedded_default_is_valid() {
        let args = Args::parse_from(["evpnr"]);
        let l = load(&args).unwrap();
        assert_eq!(l.cfg.grpc_addr, "127.0.0.1:9190");
        assert_eq!(l.cfg.move_.min_settle.0, std::time::Duration::ZERO);
        assert_eq!(
            l.cfg.failover.release_wait.0,
            std::time::Duration::from_millis(100)
        );
    }

    #[test]
    fn release_wait_is_bounded_by_the_member_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.yaml");
        for (member, wait, ok) in [
            ("5s", "100ms", true),
            ("5s", "5s", true),
            ("1s", "2s", false),
            ("5s", "0s", false),
        ] {
            std::fs::write(
                &p,
                format!(
                    "evpnr:\n  member-timeout: {member}\n  failover:\n    release-wait: {wait}\n"
                ),
            )
            .unwrap();
            let args = Args::parse_from(["evpnr", "--config", p.to_str().unwrap()]);
            match load(&args) {
                Ok(l) => {
                    assert!(ok, "{member} {wait} accepted");
                    assert_eq!(l.cfg.failover.release_wait.to_string(), wait);
                }
                Err(e) => {
                    assert!(!ok, "{member} {wait}: {e}");
                    assert!(e.to_string().contains("evpnr.failover.release-wait"), "{e}");
                }
            }
        }
        // The flag wins over the file.
        let args = Args::parse_from([
            "evpnr",
            "--config",
            p.to_str().unwrap(),
            "--failover-release-wait",
            "15ms",
        ]);
        let l = load(&args).unwrap();
        assert_eq!(
            l.cfg.failover.release_wait.0,
            std::time::Duration::from_millis(15)
        );
    }
}
