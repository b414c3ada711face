//! evpnd's configuration: YAML file (top-level key `evpnd`), overridden by
//! environment variables (`EVPND_*`), overridden by flags. Without
//! `--config` an embedded default is used. See docs/config.md.
use std::{net::IpAddr, path::PathBuf};

use evpn_daemon::{
    config::{self, ConfigError, SemanticError, Validate},
    duration::HumanDuration,
    runner::{CommonSettings, Loaded},
};
use serde::{Deserialize, Serialize};

/// The embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("default.yaml");

/// Command-line flags; each has an environment variable and wins over it.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "evpnd",
    about = "vpp-evpn per-host daemon",
    long_about = "evpnd owns this host's eVPN memberships: the BIRD snippets in its include \
        directory, the BVI interfaces in the dataplane (VPP or the Linux kernel), their MACs \
        and addresses, persisted in its state directory. It serves the Evpnd API and registers \
        with evpnr.\n\nPrecedence: flag > environment > config file > built-in default. See \
        evpnd(8) and docs/config.md.",
    disable_version_flag = true
)]
pub struct Args {
    /// YAML configuration file; without it the embedded default is used.
    #[arg(long, env = "EVPND_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Stable instance ID of this host, e.g. dpu0-ddln0 (default: the hostname).
    #[arg(long, env = "EVPND_INSTANCE_ID", value_name = "ID")]
    pub instance_id: Option<String>,
    /// gRPC listen address (host:port).
    #[arg(long, env = "EVPND_GRPC_ADDR", value_name = "ADDR")]
    pub grpc_addr: Option<String>,
    /// Address evpnr dials to reach this evpnd (default: the gRPC address).
    #[arg(long, env = "EVPND_ADVERTISE_ADDR", value_name = "ADDR")]
    pub advertise_addr: Option<String>,
    /// Prometheus listen address (host:port); empty disables metrics.
    #[arg(long, env = "EVPND_METRICS_ADDR", value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// Log level: debug, info, warn or error.
    #[arg(long, env = "EVPND_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// evpnr address (host:port) to register with; empty runs standalone.
    #[arg(long, env = "EVPND_REGISTRY", value_name = "ADDR")]
    pub registry: Option<String>,
    /// Take over this instance ID's registration in evpnr even if the address
    /// it was registered at did not prove to be gone (it timed out). Only when
    /// you know the old host is dead: two evpnds with one ID is a split brain.
    #[arg(long, env = "EVPND_REGISTRY_FORCE")]
    pub registry_force: bool,
    /// This evpnd's TLS certificate (PEM); with --tls-key and --tls-ca turns
    /// on mutual TLS for its gRPC server and its calls to evpnr.
    #[arg(long, env = "EVPND_TLS_CERT", value_name = "PATH")]
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    #[arg(long, env = "EVPND_TLS_KEY", value_name = "PATH")]
    pub tls_key: Option<PathBuf>,
    /// The CA that signs evpnr's and the operators' certificates (PEM).
    #[arg(long, env = "EVPND_TLS_CA", value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,
    /// Serve plaintext gRPC on a non-loopback address (no TLS): anyone who
    /// can reach it can change this host. Warned about on every start.
    #[arg(long, env = "EVPND_TLS_INSECURE")]
    pub tls_insecure: bool,
    /// Directory for evpnd's persistent state.
    #[arg(long, env = "EVPND_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Dataplane: vpp or linux.
    #[arg(long, env = "EVPND_DATAPLANE", value_name = "KIND")]
    pub dataplane: Option<Dataplane>,
    /// VPP binary API socket.
    #[arg(long, env = "EVPND_VPP_API_SOCKET", value_name = "PATH")]
    pub vpp_api_socket: Option<PathBuf>,
    /// BIRD control socket.
    #[arg(long, env = "EVPND_BIRD_SOCKET", value_name = "PATH")]
    pub bird_socket: Option<PathBuf>,
    /// Directory evpnd owns for its BIRD snippets (included by bird.conf).
    #[arg(long, env = "EVPND_BIRD_INCLUDE_DIR", value_name = "DIR")]
    pub bird_include_dir: Option<PathBuf>,
    /// Validate the configuration, print it as JSON and exit: 0 valid, 1 YAML
    /// parse error, 2 semantic error.
    #[arg(long)]
    pub check: bool,
    /// Print version and commit, then exit.
    #[arg(long)]
    pub version: bool,
}

/// Which dataplane evpnd drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Dataplane {
    /// VPP over its binary API (production).
    Vpp,
    /// Linux kernel bridge + VXLAN devices over netlink.
    Linux,
}

/// Which BIRD snippet dialect evpnd renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// IPng's VPP-enabled BIRD: `evpn` + `vppevpn` protocols.
    Vpp,
    /// Stock BIRD >= 2.19: `evpn` + `bridge` protocols.
    Linux,
}

/// Whether BVIs get a Linux side through VPP's linux-cp plugin
/// (`evpnd.vpp.linux-cp`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinuxCp {
    /// Required: a BVI without its Linux side is an error.
    On,
    /// Never create linux-cp pairs.
    Off,
    /// Create the pair when the plugin is loaded; a refused pair leaves the
    /// BVI without a Linux side (reported, retried at each reconcile).
    #[default]
    Auto,
}

impl LinuxCp {
    /// Whether a BVI should have its Linux side, given whether VPP has the
    /// linux-cp plugin loaded. The one place for this rule.
    pub fn wanted(self, plugin_loaded: bool) -> bool {
        match self {
            LinuxCp::On => true,
            LinuxCp::Off => false,
            LinuxCp::Auto => plugin_loaded,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    evpnd: FileConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    instance_id: Option<String>,
    grpc_addr: Option<String>,
    advertise_addr: Option<String>,
    metrics_addr: Option<String>,
    log_level: Option<String>,
    registry: Option<String>,
    heartbeat_interval: Option<HumanDuration>,
    witness_interval: Option<HumanDuration>,
    state_dir: Option<PathBuf>,
    dataplane: Option<Dataplane>,
    reconcile_interval: Option<HumanDuration>,
    #[serde(default)]
    vpp: VppFile,
    #[serde(default)]
    bird: BirdFile,
    #[serde(default)]
    evpn: EvpnFile,
    #[serde(default)]
    announce: AnnounceFile,
    #[serde(default)]
    health: crate::health::config::HealthFile,
    #[serde(default)]
    tls: evpn_daemon::tls::TlsFile,
    #[serde(default)]
    audit: evpn_daemon::audit::AuditFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct VppFile {
    api_socket: Option<PathBuf>,
    timeout: Option<HumanDuration>,
    bridge_domain_min: Option<u32>,
    bridge_domain_max: Option<u32>,
    linux_cp: Option<LinuxCp>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct BirdFile {
    config: Option<PathBuf>,
    evpn_table: Option<String>,
    vmac_notify: Option<String>,
    socket: Option<PathBuf>,
    include_dir: Option<PathBuf>,
    dialect: Option<Dialect>,
    timeout: Option<HumanDuration>,
    vppevpn_template: Option<PathBuf>,
    device_scan: Option<HumanDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct EvpnFile {
    vtep_address: Option<IpAddr>,
    local_as: Option<u32>,
    mtu: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AnnounceFile {
    schedule: Option<Vec<HumanDuration>>,
}

/// VPP settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct VppConfig {
    pub api_socket: PathBuf,
    pub timeout: HumanDuration,
    pub bridge_domain_min: u32,
    pub bridge_domain_max: u32,
    /// linux-cp mode for BVIs.
    pub linux_cp: LinuxCp,
}

/// BIRD settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BirdConfig {
    /// BIRD's main configuration file (it must include `include-dir`).
    pub config: PathBuf,
    /// The EVPN table defined in the main configuration (`evpn table <name>;`).
    pub evpn_table: String,
    /// BIRD command sent after the BVI takes or drops the vMAC so BIRD
    /// (re)advertises it; `{protocol}` is the dataplane companion protocol
    /// (`vppevpn_<slug>` / `bridge_<slug>`), `{slug}` the slug. Empty: none.
    pub vmac_notify: String,
    pub socket: PathBuf,
    pub include_dir: PathBuf,
    pub dialect: Dialect,
    pub timeout: HumanDuration,
    /// File with the `vppevpn` protocol body template; None = built-in.
    pub vppevpn_template: Option<PathBuf>,
    /// The `scan time` of BIRD's `protocol device` (`docs/bird-notes.md` §4.6: how long
    /// to wait before restarting an `evpn_<slug>` stuck after its devices
    /// were hot-added).
    pub device_scan: HumanDuration,
}

/// Defaults for new eVPNs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct EvpnDefaults {
    pub vtep_address: Option<IpAddr>,
    pub local_as: u32,
    pub mtu: u32,
}

/// Gratuitous ARP / unsolicited NA pacing after a bind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AnnounceConfig {
    /// Offsets from the bind at which one round is sent.
    pub schedule: Vec<HumanDuration>,
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Config {
    pub instance_id: String,
    pub grpc_addr: String,
    pub advertise_addr: String,
    pub metrics_addr: String,
    pub log_level: String,
    pub registry: String,
    /// Interval of the heartbeats sent to the registry.
    pub heartbeat_interval: HumanDuration,
    /// How often a candidate asks BIRD about the vMACs evpnr has it watch
    /// (only while there are any; docs/failover.md, trigger 1).
    pub witness_interval: HumanDuration,
    /// Force the registration (see `Args::registry_force`).
    pub registry_force: bool,
    pub state_dir: PathBuf,
    pub dataplane: Dataplane,
    /// Period of the drift-repairing reconcile after start-up (0 = only at start).
    pub reconcile_interval: HumanDuration,
    pub vpp: VppConfig,
    pub bird: BirdConfig,
    pub evpn: EvpnDefaults,
    pub announce: AnnounceConfig,
    /// Health checks and self-fencing (docs/failover.md).
    pub health: crate::health::HealthConfig,
    /// Mutual TLS (docs/security.md); off: loopback only unless insecure.
    pub tls: evpn_daemon::tls::TlsConfig,
    /// The audit log's rotation (docs/security.md, "Audit").
    pub audit: evpn_daemon::audit::AuditConfig,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), SemanticError> {
        evpn_model::validate_instance_id("instance_id", &self.instance_id)
            .map_err(|e| SemanticError::new("evpnd.instance-id", e.to_string()))?;
        config::check_listen_addr("evpnd.grpc-addr", &self.grpc_addr, false)?;
        config::check_listen_addr("evpnd.advertise-addr", &self.advertise_addr, false)?;
        config::check_listen_addr("evpnd.metrics-addr", &self.metrics_addr, true)?;
        self.audit.validate("evpnd")?;
        self.tls.validate(
            "evpnd",
            &[
                ("evpnd.grpc-addr", &self.grpc_addr),
                ("evpnd.metrics-addr", &self.metrics_addr),
            ],
        )?;
        config::check_log_level("evpnd.log-level", &self.log_level)?;
        if !self.registry.is_empty() {
            evpn_model::validate_host_port("registry", &self.registry)
                .map_err(|e| SemanticError::new("evpnd.registry", e.to_string()))?;
        }
        let hb = self.heartbeat_interval.0;
        if hb < std::time::Duration::from_millis(10) || hb > std::time::Duration::from_secs(60) {
            return Err(SemanticError::new(
                "evpnd.heartbeat-interval",
                "must be between 10ms and 60s",
            ));
        }
        let wi = self.witness_interval.0;
        if wi < std::time::Duration::from_millis(5) || wi > std::time::Duration::from_secs(10) {
            return Err(SemanticError::new(
                "evpnd.witness-interval",
                "must be between 5ms and 10s",
            ));
        }
        for (k, p) in [
            ("evpnd.state-dir", &self.state_dir),
            ("evpnd.vpp.api-socket", &self.vpp.api_socket),
            ("evpnd.bird.socket", &self.bird.socket),
            ("evpnd.bird.config", &self.bird.config),
            ("evpnd.bird.include-dir", &self.bird.include_dir),
        ] {
            if !p.is_absolute() {
                return Err(SemanticError::new(
                    k,
                    format!("{} must be an absolute path", p.display()),
                ));
            }
        }
        if self.vpp.bridge_domain_min == 0
            || self.vpp.bridge_domain_min > self.vpp.bridge_domain_max
        {
            return Err(SemanticError::new(
                "evpnd.vpp.bridge-domain-min",
                format!(
                    "range {}..{} is empty or starts at 0 (bridge domain 0 is VPP's default)",
                    self.vpp.bridge_domain_min, self.vpp.bridge_domain_max
                ),
            ));
        }
        for (k, t) in [
            ("evpnd.vpp.timeout", self.vpp.timeout),
            ("evpnd.bird.timeout", self.bird.timeout),
        ] {
            if t.0.is_zero() {
                return Err(SemanticError::new(k, "must be greater than 0"));
            }
        }
        if self.evpn.local_as == 0 {
            return Err(SemanticError::new(
                "evpnd.evpn.local-as",
                "must be 1..4294967295",
            ));
        }
        evpn_model::validate_mtu("mtu", self.evpn.mtu)
            .map_err(|e| SemanticError::new("evpnd.evpn.mtu", e.to_string()))?;
        if let Some(a) = self.evpn.vtep_address {
            evpn_model::validate_vtep("vtep-address", a)
                .map_err(|e| SemanticError::new("evpnd.evpn.vtep-address", e.to_string()))?;
        }
        if self.announce.schedule.windows(2).any(|w| w[1] < w[0]) {
            return Err(SemanticError::new(
                "evpnd.announce.schedule",
                "offsets must be ascending",
            ));
        }
        if !self.bird.vmac_notify.is_empty() {
            let probe = self
                .bird
                .vmac_notify
                .replace("{protocol}", "p")
                .replace("{slug}", "s");
            if probe.contains(['{', '}', ';', '\n']) {
                return Err(SemanticError::new(
                    "evpnd.bird.vmac-notify",
                    "only the placeholders {protocol} and {slug} are allowed; no ';', braces or newlines",
                ));
            }
        }
        self.health.validate()?;
        if let Some(p) = &self.bird.vppevpn_template
            && !p.is_file()
        {
            return Err(SemanticError::new(
                "evpnd.bird.vppevpn-template",
                format!("{} is not a readable file", p.display()),
            ));
        }
        Ok(())
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
            ("evpnd.instance-id", self.instance_id.clone()),
            ("evpnd.grpc-addr", self.grpc_addr.clone()),
            ("evpnd.metrics-addr", self.metrics_addr.clone()),
            ("evpnd.state-dir", self.state_dir.display().to_string()),
            ("evpnd.dataplane", format!("{:?}", self.dataplane)),
            (
                "evpnd.vpp.api-socket",
                self.vpp.api_socket.display().to_string(),
            ),
            ("evpnd.bird.socket", self.bird.socket.display().to_string()),
            ("evpnd.health", format!("{:?}", self.health)),
            ("evpnd.tls.insecure", self.tls.insecure.to_string()),
            ("evpnd.audit", format!("{:?}", self.audit)),
            (
                "evpnd.bird.include-dir",
                self.bird.include_dir.display().to_string(),
            ),
        ]
    }
}

fn hostname_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Load the configuration: file (or embedded default), then env/flags.
pub fn load(args: &Args) -> Result<Loaded<Config>, ConfigError> {
    let (text, origin) = config::read_source(args.config.as_deref(), DEFAULT_CONFIG)?;
    let f = config::parse_structural::<File>(&text, &origin)?.evpnd;
    let dur =
        |d: Option<HumanDuration>, s: &str| d.unwrap_or_else(|| s.parse().unwrap_or_default());
    let dataplane = args.dataplane.or(f.dataplane).unwrap_or(Dataplane::Vpp);
    let grpc_addr = args
        .grpc_addr
        .clone()
        .or(f.grpc_addr)
        .unwrap_or_else(|| "127.0.0.1:9191".into());
    let cfg = Config {
        instance_id: args
            .instance_id
            .clone()
            .or(f.instance_id)
            .unwrap_or_else(hostname_id),
        advertise_addr: args
            .advertise_addr
            .clone()
            .or(f.advertise_addr)
            .unwrap_or_else(|| grpc_addr.clone()),
        grpc_addr,
        metrics_addr: args
            .metrics_addr
            .clone()
            .or(f.metrics_addr)
            .unwrap_or_else(|| "127.0.0.1:9291".into()),
        log_level: args
            .log_level
            .clone()
            .or(f.log_level)
            .unwrap_or_else(|| "info".into()),
        registry: args.registry.clone().or(f.registry).unwrap_or_default(),
        heartbeat_interval: dur(f.heartbeat_interval, "1s"),
        witness_interval: dur(f.witness_interval, "50ms"),
        registry_force: args.registry_force,
        state_dir: args
            .state_dir
            .clone()
            .or(f.state_dir)
            .unwrap_or_else(|| "/var/lib/evpnd".into()),
        dataplane,
        reconcile_interval: dur(f.reconcile_interval, "30s"),
        vpp: VppConfig {
            api_socket: args
                .vpp_api_socket
                .clone()
                .or(f.vpp.api_socket)
                .unwrap_or_else(|| "/run/vpp/api.sock".into()),
            timeout: dur(f.vpp.timeout, "5s"),
            bridge_domain_min: f.vpp.bridge_domain_min.unwrap_or(10000),
            bridge_domain_max: f.vpp.bridge_domain_max.unwrap_or(10999),
            linux_cp: f.vpp.linux_cp.unwrap_or_default(),
        },
        bird: BirdConfig {
            config: f
                .bird
                .config
                .unwrap_or_else(|| "/etc/bird/bird.conf".into()),
            evpn_table: f.bird.evpn_table.unwrap_or_else(|| "evpntab".into()),
            vmac_notify: f.bird.vmac_notify.unwrap_or_default(),
            socket: args
                .bird_socket
                .clone()
                .or(f.bird.socket)
                .unwrap_or_else(|| "/run/bird/bird.ctl".into()),
            include_dir: args
                .bird_include_dir
                .clone()
                .or(f.bird.include_dir)
                .unwrap_or_else(|| "/etc/bird/evpn.d".into()),
            dialect: f.bird.dialect.unwrap_or(match dataplane {
                Dataplane::Vpp => Dialect::Vpp,
                Dataplane::Linux => Dialect::Linux,
            }),
            timeout: dur(f.bird.timeout, "5s"),
            vppevpn_template: f.bird.vppevpn_template,
            device_scan: dur(f.bird.device_scan, "5s"),
        },
        evpn: EvpnDefaults {
            vtep_address: f.evpn.vtep_address,
            local_as: f.evpn.local_as.unwrap_or(65000),
            mtu: f.evpn.mtu.unwrap_or(evpn_model::MTU_DEFAULT),
        },
        announce: AnnounceConfig {
            schedule: f.announce.schedule.unwrap_or_else(|| {
                ["0s", "100ms", "500ms", "1s", "2s"]
                    .iter()
                    .map(|s| s.parse().unwrap_or_default())
                    .collect()
            }),
        },
        health: f.health.resolve(),
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
    for w in cfg.warnings() {
        // On stderr, so `--check` shows it too; run() logs it again.
        eprintln!("evpnd: warning: {w}");
    }
    Ok(Loaded { cfg, text })
}

impl Config {
    /// Settings that are accepted but probably wrong (printed by `--check`,
    /// logged as `config-warning` at start).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = self.health.warnings();
        w.extend(self.tls.warnings(
            "evpnd",
            &[
                ("evpnd.grpc-addr", &self.grpc_addr),
                ("evpnd.metrics-addr", &self.metrics_addr),
            ],
        ));
        if self.dataplane == Dataplane::Vpp && self.bird.dialect == Dialect::Linux {
            w.push(
                "dataplane: vpp with bird.dialect: linux: BIRD's evpn protocol will look for \
                 Linux bridges and VXLAN devices that the VPP dataplane does not create, so no \
                 EVPN routes are exchanged for these eVPNs; use bird.dialect: vpp (IPng's BIRD \
                 with the vppevpn protocol). Only test set-ups with a BIRD stand-in need this"
                    .to_string(),
            );
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14 item 7: `dataplane: vpp` with `bird.dialect: linux` was
    /// accepted silently.
    #[test]
    fn vpp_dataplane_with_the_linux_dialect_is_warned_about() {
        let mut c = load(&Args::parse_from(["evpnd", "--instance-id", "r1"]))
            .unwrap()
            .cfg;
        let dialect = |c: &Config| -> Vec<String> {
            c.warnings()
                .into_iter()
                .filter(|w| w.contains("bird.dialect"))
                .collect()
        };
        assert!(dialect(&c).is_empty(), "{:?}", c.warnings());
        c.bird.dialect = Dialect::Linux;
        let w = dialect(&c);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("vpp"), "{w:?}");
        c.dataplane = Dataplane::Linux;
        assert!(dialect(&c).is_empty());
    }
    use clap::Parser;

    #[test]
    fn embedded_default_is_valid_with_an_instance_id() {
        let args = Args::parse_from(["evpnd", "--instance-id", "dpu0-ddln0"]);
        let l = load(&args).unwrap();
        assert_eq!(l.cfg.instance_id, "dpu0-ddln0");
        assert_eq!(l.cfg.bird.dialect, Dialect::Vpp);
        assert_eq!(l.cfg.advertise_addr, l.cfg.grpc_addr);
        let args = Args::parse_from(["evpnd", "--instance-id", "r1", "--dataplane", "linux"]);
        assert_eq!(load(&args).unwrap().cfg.bird.dialect, Dialect::Linux);
    }

    #[test]
    fn linux_cp_modes_parse_and_default_to_auto() {
        assert_eq!(
            load(&Args::parse_from(["evpnd", "--instance-id", "r1"]))
                .unwrap()
                .cfg
                .vpp
                .linux_cp,
            LinuxCp::Auto
        );
        let dir = tempfile::tempdir().unwrap();
        for (text, want) in [
            ("on", Some(LinuxCp::On)),
            ("off", Some(LinuxCp::Off)),
            ("auto", Some(LinuxCp::Auto)),
            ("yes", None),
        ] {
            let p = dir.path().join("c.yaml");
            std::fs::write(&p, format!("evpnd:\n  vpp:\n    linux-cp: {text}\n")).unwrap();
            let args = Args::parse_from([
                "evpnd",
                "--instance-id",
                "r1",
                "--config",
                p.to_str().unwrap(),
            ]);
            assert_eq!(load(&args).ok().map(|l| l.cfg.vpp.linux_cp), want, "{text}");
        }
        // (mode, plugin loaded) -> wanted
        for (m, plugin, want) in [
            (LinuxCp::On, false, true),
            (LinuxCp::On, true, true),
            (LinuxCp::Off, true, false),
            (LinuxCp::Auto, true, true),
            (LinuxCp::Auto, false, false),
        ] {
            assert_eq!(m.wanted(plugin), want, "{m:?} {plugin}");
        }
    }

    #[test]
    fn bad_instance_id_is_semantic() {
        let args = Args::parse_from(["evpnd", "--instance-id", "Bad_ID"]);
        let e = load(&args).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("evpnd.instance-id"), "{e}");
    }
}
