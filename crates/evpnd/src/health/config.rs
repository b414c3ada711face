//! The `evpnd.health` section of evpnd's configuration (docs/config.md):
//! parsed structurally with the rest of the file, defaults filled in here,
//! validated at load with errors that name the field.
use std::time::Duration;

use evpn_daemon::{config::SemanticError, duration::HumanDuration};
use serde::{Deserialize, Serialize};

/// A check's timers (keepalived/HAProxy semantics, see [`super`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Timers {
    /// Time between two probes.
    pub interval: HumanDuration,
    /// A probe that has not answered after this long failed.
    pub timeout: HumanDuration,
    /// Consecutive successes that bring a down check up.
    pub rise: u32,
    /// Consecutive failures that bring an up check down.
    pub fall: u32,
}

/// Per-check overrides of the section's timers.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TimersFile {
    interval: Option<HumanDuration>,
    timeout: Option<HumanDuration>,
    rise: Option<u32>,
    fall: Option<u32>,
}

impl TimersFile {
    /// These overrides over `d`; a timeout not given is at most the
    /// interval.
    fn over(&self, d: Timers) -> Timers {
        let interval = self.interval.unwrap_or(d.interval);
        Timers {
            interval,
            timeout: self
                .timeout
                .unwrap_or(HumanDuration(d.timeout.0.min(interval.0))),
            rise: self.rise.unwrap_or(d.rise),
            fall: self.fall.unwrap_or(d.fall),
        }
    }
}

/// `health.bgp` in the file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BgpFile {
    min_established: Option<u32>,
    protocols: Option<Vec<String>>,
    #[serde(default)]
    timers: TimersFile,
}

/// `health.underlay` in the file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UnderlayFile {
    interfaces: Option<Vec<String>>,
    #[serde(default)]
    timers: TimersFile,
}

/// One `health.commands` entry in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CommandFile {
    name: String,
    argv: Vec<String>,
    #[serde(default)]
    timers: TimersFile,
}

/// `health.self-fence` in the file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FenceFile {
    enabled: Option<bool>,
    hold: Option<HumanDuration>,
}

/// `evpnd.health` as written in the file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HealthFile {
    interval: Option<HumanDuration>,
    timeout: Option<HumanDuration>,
    rise: Option<u32>,
    fall: Option<u32>,
    #[serde(default)]
    dataplane: TimersFile,
    #[serde(default)]
    bird: TimersFile,
    #[serde(default)]
    protocol: TimersFile,
    #[serde(default)]
    bgp: BgpFile,
    #[serde(default)]
    underlay: UnderlayFile,
    #[serde(default)]
    commands: Vec<CommandFile>,
    #[serde(default)]
    self_fence: FenceFile,
    bfd: Option<bool>,
}

/// The BGP-sessions check.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BgpCheck {
    /// At least this many sessions must be established.
    pub min_established: u32,
    /// The BGP protocols counted; empty: every BGP protocol of BIRD.
    pub protocols: Vec<String>,
    pub timers: Timers,
}

/// The tracked-underlay-interfaces check.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UnderlayCheck {
    /// Interfaces that must have their link up (empty: no check).
    pub interfaces: Vec<String>,
    pub timers: Timers,
}

/// An operator check command.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CommandCheck {
    pub name: String,
    /// Program and arguments, run without a shell; exit 0 = success.
    pub argv: Vec<String>,
    pub timers: Timers,
}

/// Self-fencing settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FenceConfig {
    pub enabled: bool,
    /// How long BIRD must be unreachable, or every BGP session down, after
    /// the check went down, before the gateways are released.
    pub hold: HumanDuration,
}

/// The effective `evpnd.health` settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct HealthConfig {
    /// The defaults of every check.
    pub defaults: Timers,
    pub dataplane: Timers,
    pub bird: Timers,
    pub protocol: Timers,
    pub bgp: BgpCheck,
    pub underlay: UnderlayCheck,
    pub commands: Vec<CommandCheck>,
    pub self_fence: FenceConfig,
    /// The operator states that BFD runs on this host's BGP sessions (evpnd
    /// cannot see it in BIRD's configuration); without it and without
    /// tracked underlay interfaces, `--check` warns.
    pub bfd: bool,
}

const DEFAULT_TIMERS: (&str, &str, u32, u32) = ("1s", "500ms", 2, 3);

fn parse_dur(s: &str) -> HumanDuration {
    s.parse().unwrap_or_default()
}

impl HealthFile {
    /// The effective settings (defaults filled in).
    pub fn resolve(&self) -> HealthConfig {
        let (i, t, r, f) = DEFAULT_TIMERS;
        let interval = self.interval.unwrap_or_else(|| parse_dur(i));
        let d = Timers {
            interval,
            timeout: self
                .timeout
                .unwrap_or_else(|| HumanDuration(parse_dur(t).0.min(interval.0))),
            rise: self.rise.unwrap_or(r),
            fall: self.fall.unwrap_or(f),
        };
        HealthConfig {
            defaults: d,
            dataplane: self.dataplane.over(d),
            bird: self.bird.over(d),
            protocol: self.protocol.over(d),
            bgp: BgpCheck {
                min_established: self.bgp.min_established.unwrap_or(1),
                protocols: self.bgp.protocols.clone().unwrap_or_default(),
                timers: self.bgp.timers.over(d),
            },
            underlay: UnderlayCheck {
                interfaces: self.underlay.interfaces.clone().unwrap_or_default(),
                timers: self.underlay.timers.over(d),
            },
            commands: self
                .commands
                .iter()
                .map(|c| CommandCheck {
                    name: c.name.clone(),
                    argv: c.argv.clone(),
                    timers: c.timers.over(d),
                })
                .collect(),
            self_fence: FenceConfig {
                enabled: self.self_fence.enabled.unwrap_or(true),
                hold: self.self_fence.hold.unwrap_or_else(|| parse_dur("2s")),
            },
            bfd: self.bfd.unwrap_or(false),
        }
    }
}

fn check_timers(field: &str, t: &Timers) -> Result<(), SemanticError> {
    let (i, o) = (t.interval.0, t.timeout.0);
    if i < Duration::from_millis(10) || i > Duration::from_secs(3600) {
        return Err(SemanticError::new(
            format!("{field}.interval"),
            "must be between 10ms and 1h",
        ));
    }
    if o.is_zero() || o > i {
        return Err(SemanticError::new(
            format!("{field}.timeout"),
            "must be greater than 0 and at most the interval",
        ));
    }
    for (k, v) in [("rise", t.rise), ("fall", t.fall)] {
        if !(1..=100).contains(&v) {
            return Err(SemanticError::new(format!("{field}.{k}"), "must be 1..100"));
        }
    }
    Ok(())
}

/// A check or interface name: `[A-Za-z0-9_.:-]`, 1..32 bytes.
fn check_name(field: &str, s: &str) -> Result<(), SemanticError> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(SemanticError::new(
            field,
            format!(
                "{} must be 1..32 characters of A-Z a-z 0-9 _ . : -",
                evpn_model::excerpt(s)
            ),
        ))
    }
}

impl HealthConfig {
    /// Validate (field names are full: `evpnd.health.bgp.timers.fall`).
    pub fn validate(&self) -> Result<(), SemanticError> {
        let p = "evpnd.health";
        check_timers(p, &self.defaults)?;
        check_timers(&format!("{p}.dataplane"), &self.dataplane)?;
        check_timers(&format!("{p}.bird"), &self.bird)?;
        check_timers(&format!("{p}.protocol"), &self.protocol)?;
        check_timers(&format!("{p}.bgp.timers"), &self.bgp.timers)?;
        check_timers(&format!("{p}.underlay.timers"), &self.underlay.timers)?;
        if self.bgp.min_established > 1000 {
            return Err(SemanticError::new(
                format!("{p}.bgp.min-established"),
                "must be 0..1000",
            ));
        }
        for (i, n) in self.bgp.protocols.iter().enumerate() {
            check_name(&format!("{p}.bgp.protocols[{i}]"), n)?;
        }
        for (i, n) in self.underlay.interfaces.iter().enumerate() {
            let f = format!("{p}.underlay.interfaces[{i}]");
            check_name(&f, n)?;
            if n.len() > 15 || n.contains(':') {
                return Err(SemanticError::new(
                    f,
                    "an interface name is at most 15 characters, without ':'",
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in self.commands.iter().enumerate() {
            let f = format!("{p}.commands[{i}]");
            check_name(&format!("{f}.name"), &c.name)?;
            if !seen.insert(c.name.as_str()) {
                return Err(SemanticError::new(
                    format!("{f}.name"),
                    format!("{:?} is used by another command", c.name),
                ));
            }
            let Some(prog) = c.argv.first() else {
                return Err(SemanticError::new(
                    format!("{f}.argv"),
                    "must name a program (a list: program, then arguments; no shell)",
                ));
            };
            if !std::path::Path::new(prog).is_absolute() {
                return Err(SemanticError::new(
                    format!("{f}.argv[0]"),
                    format!("{} must be an absolute path", evpn_model::excerpt(prog)),
                ));
            }
            check_timers(&format!("{f}.timers"), &c.timers)?;
        }
        if self.self_fence.hold.0 > Duration::from_secs(3600) {
            return Err(SemanticError::new(
                format!("{p}.self-fence.hold"),
                "must be at most 1h",
            ));
        }
        Ok(())
    }

    /// Operator warnings (`--check`, `config-warning` at start).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if !self.bfd && self.underlay.interfaces.is_empty() {
            w.push(
                "health: neither health.bfd nor health.underlay.interfaces is set: an \
                 underlay cut is invisible to this host's checks until BGP's hold timer \
                 expires (BIRD's default is 240 s), so an `auto` failover group cannot see \
                 it in time; run BFD on the BGP sessions (and set health.bfd: true) or \
                 track the underlay interfaces"
                    .to_string(),
            );
        }
        if !self.self_fence.enabled {
            w.push(
                "health.self-fence.enabled is false: a primary whose BIRD died or whose BGP \
                 sessions are all down keeps the vMAC; a restarted BIRD re-advertises it, \
                 possibly next to a new primary"
                    .to_string(),
            );
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::config::{Args, load};

    fn with(health: &str) -> Result<crate::config::Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, format!("evpnd:\n  health:\n{health}")).unwrap();
        let args = Args::parse_from([
            "evpnd",
            "--instance-id",
            "r1",
            "--config",
            p.to_str().unwrap(),
        ]);
        load(&args).map(|l| l.cfg).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = load(&Args::parse_from(["evpnd", "--instance-id", "r1"]))
            .unwrap()
            .cfg;
        let h = &c.health;
        assert_eq!(
            (
                h.defaults.interval.0.as_millis(),
                h.defaults.timeout.0.as_millis()
            ),
            (1000, 500)
        );
        assert_eq!((h.defaults.rise, h.defaults.fall), (2, 3));
        assert_eq!(h.bgp.min_established, 1);
        assert!(h.self_fence.enabled);
        assert_eq!(h.self_fence.hold.0.as_secs(), 2);
        // Neither BFD nor tracked interfaces: warned.
        assert!(c.warnings().iter().any(|w| w.contains("health.bfd")));
        let c = with("    bfd: true\n").unwrap();
        assert!(!c.warnings().iter().any(|w| w.contains("health.bfd")));
        let c = with("    underlay:\n      interfaces: [eth0]\n").unwrap();
        assert!(!c.warnings().iter().any(|w| w.contains("health.bfd")));
    }

    #[test]
    fn overrides_apply_per_check() {
        let c = with("    interval: 200ms\n    bgp:\n      timers:\n        fall: 5\n").unwrap();
        assert_eq!(c.health.bird.interval.0.as_millis(), 200);
        // A timeout not given is at most the interval.
        assert_eq!(c.health.bird.timeout.0.as_millis(), 200);
        assert_eq!((c.health.bgp.timers.fall, c.health.bird.fall), (5, 3));
    }

    /// (health section, the field the error must name)
    #[test]
    fn bad_values_name_the_field() {
        let rows = [
            ("    interval: 5ms\n", "evpnd.health.interval"),
            ("    timeout: 2s\n", "evpnd.health.timeout"),
            ("    rise: 0\n", "evpnd.health.rise"),
            ("    bird:\n      fall: 101\n", "evpnd.health.bird.fall"),
            (
                "    underlay:\n      interfaces: [\"a very long ifname\"]\n",
                "evpnd.health.underlay.interfaces[0]",
            ),
            (
                "    commands:\n      - name: x\n        argv: []\n",
                "evpnd.health.commands[0].argv",
            ),
            (
                "    commands:\n      - name: x\n        argv: [\"sh -c true\"]\n",
                "evpnd.health.commands[0].argv[0]",
            ),
            (
                "    commands:\n      - {name: x, argv: [/bin/true]}\n      - {name: x, argv: [/bin/true]}\n",
                "evpnd.health.commands[1].name",
            ),
            (
                "    bgp:\n      protocols: [\"bad name!\"]\n",
                "evpnd.health.bgp.protocols[0]",
            ),
            (
                "    self-fence:\n      hold: 2h\n",
                "evpnd.health.self-fence.hold",
            ),
        ];
        for (text, field) in rows {
            let e = with(text).unwrap_err();
            assert!(e.contains(field), "{text}: {e}");
        }
        // Unknown keys are structural errors.
        assert!(with("    colour: red\n").unwrap_err().contains("colour"));
    }
}
