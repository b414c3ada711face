//! The `tls:` settings every daemon shares, and the safe default they
//! enforce: without TLS a daemon listens only on loopback, unless the
//! operator explicitly allows plaintext (`tls.insecure: true`, then warned
//! about on every start). The TLS machinery itself is `evpn_tls`.
use std::{net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::SemanticError;

/// The `tls:` section of a configuration file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsFile {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub insecure: Option<bool>,
    pub metrics: Option<bool>,
    #[serde(default)]
    pub roles: std::collections::BTreeMap<String, crate::authz::Role>,
    #[serde(default)]
    pub front_ends: Vec<String>,
}

/// The effective TLS settings.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TlsConfig {
    /// This program's certificate (PEM, leaf first).
    pub cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    pub key: Option<PathBuf>,
    /// The CA that signs every peer's certificate (PEM).
    pub ca: Option<PathBuf>,
    /// Allow plaintext on a non-loopback address (warned on every start).
    pub insecure: bool,
    /// `/metrics` over mutual TLS: unset means on whenever TLS is on
    /// ([`TlsConfig::metrics_tls`]).
    pub metrics: Option<bool>,
    /// Operators' roles by identity URI (`evpn://user/alice: operator`).
    pub roles: std::collections::BTreeMap<String, crate::authz::Role>,
    /// Trusted front-ends (identity URIs) that may act on behalf of a user
    /// (header `evpn-on-behalf-of`), capped by their own role.
    pub front_ends: Vec<String>,
}

/// Flag / environment values, each winning over the file's.
#[derive(Debug, Default, Clone)]
pub struct TlsOverrides {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub insecure: Option<bool>,
}

impl TlsConfig {
    /// Flags over the file.
    pub fn merge(file: TlsFile, o: TlsOverrides) -> TlsConfig {
        TlsConfig {
            cert: o.cert.or(file.cert),
            key: o.key.or(file.key),
            ca: o.ca.or(file.ca),
            insecure: o.insecure.or(file.insecure).unwrap_or(false),
            metrics: file.metrics,
            roles: file.roles,
            front_ends: file.front_ends,
        }
    }

    /// The files, when TLS is on.
    pub fn files(&self) -> Option<evpn_tls::TlsFiles> {
        Some(evpn_tls::TlsFiles {
            cert: self.cert.clone()?,
            key: self.key.clone()?,
            ca: self.ca.clone()?,
        })
    }

    /// Whether `/metrics` is served over mutual TLS: when TLS is on, unless
    /// `tls.metrics: false`.
    pub fn metrics_tls(&self) -> bool {
        self.files().is_some() && self.metrics != Some(false)
    }

    /// The listen addresses served in plaintext, of `listens`: all of them
    /// with TLS off; with TLS on only `{prefix}.metrics-addr` when
    /// `tls.metrics: false`.
    fn plaintext<'a>(
        &self,
        prefix: &str,
        listens: &[(&'a str, &'a str)],
    ) -> Vec<(&'a str, &'a str)> {
        let metrics_key = format!("{prefix}.metrics-addr");
        listens
            .iter()
            .filter(|(k, a)| {
                !a.is_empty()
                    && (self.files().is_none() || (*k == metrics_key && !self.metrics_tls()))
            })
            .copied()
            .collect()
    }

    /// `prefix` is the program's key (`evpnd`); `listens` the listen
    /// addresses with their keys (`{prefix}.metrics-addr` is the metrics
    /// listener). TLS on: cert, key and CA all set, and the files load (see
    /// `evpn_tls::Material`). Every address served in plaintext (all with
    /// TLS off; metrics with `tls.metrics: false`) on loopback, unless
    /// `insecure`.
    pub fn validate(&self, prefix: &str, listens: &[(&str, &str)]) -> Result<(), SemanticError> {
        let set = [&self.cert, &self.key, &self.ca]
            .iter()
            .filter(|p| p.is_some())
            .count();
        crate::authz::parse_roles(&format!("{prefix}.tls.roles"), &self.roles)
            .map_err(|e| SemanticError::new(format!("{prefix}.tls.roles"), e))?;
        crate::authz::parse_front_ends(&format!("{prefix}.tls.front-ends"), &self.front_ends)
            .map_err(|e| SemanticError::new(format!("{prefix}.tls.front-ends"), e))?;
        if set == 3 {
            for (k, p) in [("cert", &self.cert), ("key", &self.key), ("ca", &self.ca)] {
                if p.as_ref().is_some_and(|p| !p.is_absolute()) {
                    return Err(SemanticError::new(
                        format!("{prefix}.tls.{k}"),
                        "must be an absolute path",
                    ));
                }
            }
            let files = self.files().expect("all three set");
            evpn_tls::Material::load(&files)
                .map_err(|e| SemanticError::new(format!("{prefix}.tls"), e.to_string()))?;
        } else if set != 0 {
            let missing: Vec<&str> = [("cert", &self.cert), ("key", &self.key), ("ca", &self.ca)]
                .iter()
                .filter(|(_, p)| p.is_none())
                .map(|(k, _)| *k)
                .collect();
            return Err(SemanticError::new(
                format!("{prefix}.tls"),
                format!(
                    "cert, key and ca must be set together; missing: {}",
                    missing.join(", ")
                ),
            ));
        }
        if self.metrics == Some(true) && set == 0 {
            return Err(SemanticError::new(
                format!("{prefix}.tls.metrics"),
                format!("needs TLS: set {prefix}.tls.cert, .key and .ca"),
            ));
        }
        if self.insecure {
            return Ok(());
        }
        for (k, a) in self.plaintext(prefix, listens) {
            if is_loopback(a) {
                continue;
            }
            let why = if set == 3 {
                format!(
                    "{a} is not a loopback address and {prefix}.tls.metrics is false: remove it \
                     (metrics over mutual TLS), or set {prefix}.tls.insecure: true to serve \
                     plaintext metrics to the network anyway"
                )
            } else {
                format!(
                    "{a} is not a loopback address and TLS is off: set {prefix}.tls.cert, \
                     .key and .ca (mutual TLS, docs/security.md), or {prefix}.tls.insecure: \
                     true to serve plaintext to the network anyway"
                )
            };
            return Err(SemanticError::new(k, why));
        }
        Ok(())
    }

    /// The warning of an explicitly insecure, non-loopback configuration.
    pub fn warnings(&self, prefix: &str, listens: &[(&str, &str)]) -> Vec<String> {
        if !self.insecure {
            return Vec::new();
        }
        let metrics_key = format!("{prefix}.metrics-addr");
        self.plaintext(prefix, listens)
            .into_iter()
            .filter(|(_, a)| !is_loopback(a))
            .map(|(k, a)| {
                if k == metrics_key {
                    format!(
                        "{k}: serving plaintext metrics on {a} ({prefix}.tls.insecure: true): \
                         anyone who can reach it reads this fleet's state; configure {prefix}.tls \
                         (docs/security.md)"
                    )
                } else {
                    format!(
                        "{k}: serving plaintext gRPC on {a} ({prefix}.tls.insecure: true): anyone \
                         who can reach it can change this fleet; configure {prefix}.tls \
                         (docs/security.md)"
                    )
                }
            })
            .collect()
    }
}

/// The process's client TLS, when its configuration has TLS on: every
/// outgoing gRPC connection of a daemon goes through [`connect`] /
/// [`connect_lazy`], which use it (installed once at start-up, reloaded in
/// place on SIGHUP).
static CLIENT: std::sync::OnceLock<std::sync::Arc<evpn_tls::ClientTls>> =
    std::sync::OnceLock::new();

/// A server's TLS and who it accepts calls from.
pub struct Serving {
    pub tls: std::sync::Arc<evpn_tls::ServerTls>,
    pub policy: crate::authz::Policy,
    /// `/metrics` over the same TLS ([`TlsConfig::metrics_tls`]).
    pub metrics_tls: bool,
}

/// Load this daemon's TLS (when configured): the server side for its
/// listener with its authorization policy (`writes_from_registry_only`: an
/// evpnd with a registry), and the client side installed for [`connect`].
/// Both sides are reloaded on every SIGHUP (`runner::serve`).
pub fn load(
    cfg: &TlsConfig,
    writes_from_registry_only: bool,
) -> Result<Option<Serving>, anyhow::Error> {
    let Some(files) = cfg.files() else {
        return Ok(None);
    };
    let roles = crate::authz::parse_roles("tls.roles", &cfg.roles).map_err(anyhow::Error::msg)?;
    let front_ends = crate::authz::parse_front_ends("tls.front-ends", &cfg.front_ends)
        .map_err(anyhow::Error::msg)?;
    let server = evpn_tls::ServerTls::load(files.clone())?;
    let client = evpn_tls::ClientTls::load(files)?;
    let _ = CLIENT.set(client);
    Ok(Some(Serving {
        tls: server,
        policy: crate::authz::Policy {
            roles,
            front_ends,
            writes_from_registry_only,
        },
        metrics_tls: cfg.metrics_tls(),
    }))
}

/// Reload the installed client TLS (the server side is reloaded by its
/// owner).
pub fn reload_client() -> Option<Result<evpn_tls::Identity, evpn_tls::Error>> {
    CLIENT.get().map(|c| c.reload())
}

fn endpoint(addr: &str) -> Result<tonic::transport::Endpoint, tonic::transport::Error> {
    let url = if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    tonic::transport::Endpoint::from_shared(url)
}

/// Connect to `addr` (`host:port` or `http://host:port`): over mutual TLS
/// accepting only `expect` when TLS is on, else plaintext. `opts` sets the
/// endpoint's options.
pub async fn connect(
    addr: &str,
    expect: evpn_tls::Expect,
    opts: impl FnOnce(tonic::transport::Endpoint) -> tonic::transport::Endpoint,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let ep = opts(endpoint(addr)?);
    match CLIENT.get() {
        Some(c) => ep.connect_with_connector(c.connector(expect)).await,
        None => ep.connect().await,
    }
}

/// Like [`connect`], connecting on first use.
pub fn connect_lazy(
    addr: &str,
    expect: evpn_tls::Expect,
    opts: impl FnOnce(tonic::transport::Endpoint) -> tonic::transport::Endpoint,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let ep = opts(endpoint(addr)?);
    Ok(match CLIENT.get() {
        Some(c) => ep.connect_with_connector_lazy(c.connector(expect)),
        None => ep.connect_lazy(),
    })
}

fn is_loopback(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .map(|a| a.ip().is_loopback())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_stays_on_loopback_unless_insecure_is_explicit() {
        let off = TlsConfig::default();
        let l = [
            ("evpnd.grpc-addr", "127.0.0.1:50051"),
            ("evpnd.metrics-addr", ""),
        ];
        off.validate("evpnd", &l).unwrap();
        let wide = [("evpnd.grpc-addr", "0.0.0.0:50051")];
        let e = off.validate("evpnd", &wide).unwrap_err();
        assert_eq!(e.key, "evpnd.grpc-addr");
        assert!(
            e.reason.contains("evpnd.tls.insecure: true") && e.reason.contains("TLS is off"),
            "{e:?}"
        );
        let insecure = TlsConfig {
            insecure: true,
            ..Default::default()
        };
        insecure.validate("evpnd", &wide).unwrap();
        assert_eq!(insecure.warnings("evpnd", &wide).len(), 1);
        assert!(insecure.warnings("evpnd", &l).is_empty());
    }

    #[test]
    fn cert_key_and_ca_go_together() {
        let c = TlsConfig {
            cert: Some("/a.pem".into()),
            ..Default::default()
        };
        let e = c.validate("evpnr", &[]).unwrap_err();
        assert_eq!(e.key, "evpnr.tls");
        assert!(e.reason.contains("missing: key, ca"), "{e:?}");
    }
}

#[cfg(test)]
mod metrics_tests {
    use super::*;

    /// A TLS configuration whose files load: a development CA's instance
    /// certificate in a fresh directory.
    fn with_tls(dir: &std::path::Path) -> TlsConfig {
        let ca = evpn_tls::pki::DevCa::create(dir, "test CA").unwrap();
        let f = ca
            .issue(
                &evpn_tls::Identity::Instance("m1".into()),
                std::time::Duration::from_secs(3600),
                false,
            )
            .unwrap();
        TlsConfig {
            cert: Some(f.cert),
            key: Some(f.key),
            ca: Some(f.ca),
            ..Default::default()
        }
    }

    #[test]
    fn metrics_follow_tls_and_plaintext_metrics_stay_on_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let on = with_tls(dir.path());
        let grpc = ("evpnd.grpc-addr", "0.0.0.0:50051");
        let lo = ("evpnd.metrics-addr", "127.0.0.1:9291");
        let wide = ("evpnd.metrics-addr", "0.0.0.0:9291");
        let cfg = |metrics: Option<bool>, insecure: bool, tls: bool| TlsConfig {
            metrics,
            insecure,
            ..if tls {
                on.clone()
            } else {
                TlsConfig::default()
            }
        };
        // (config, metrics address, metrics over TLS, refused at key, warnings)
        type Row<'a> = (TlsConfig, (&'a str, &'a str), bool, Option<&'a str>, usize);
        let table: &[Row] = &[
            // TLS on: metrics over TLS by default, wherever they listen.
            (cfg(None, false, true), wide, true, None, 0),
            (cfg(None, false, true), lo, true, None, 0),
            (cfg(Some(true), false, true), wide, true, None, 0),
            // Opting out: plaintext metrics on loopback only, unless insecure.
            (cfg(Some(false), false, true), lo, false, None, 0),
            (
                cfg(Some(false), false, true),
                wide,
                false,
                Some("evpnd.metrics-addr"),
                0,
            ),
            (cfg(Some(false), true, true), wide, false, None, 1),
            // TLS off: metrics follow the gRPC rule.
            (cfg(None, false, false), lo, false, None, 0),
            (
                cfg(None, false, false),
                wide,
                false,
                Some("evpnd.metrics-addr"),
                0,
            ),
            (
                cfg(Some(true), false, false),
                lo,
                false,
                Some("evpnd.tls.metrics"),
                0,
            ),
        ];
        for (i, (c, m, tls, refused, warns)) in table.iter().enumerate() {
            // TLS off and a wide gRPC address is refused for gRPC; keep
            // gRPC on loopback there so the metrics rule is what is tested.
            let g = if c.files().is_some() || c.insecure {
                grpc
            } else {
                ("evpnd.grpc-addr", "127.0.0.1:50051")
            };
            assert_eq!(c.metrics_tls(), *tls, "row {i}");
            match (c.validate("evpnd", &[g, *m]), refused) {
                (Ok(()), None) => {}
                (Err(e), Some(k)) => {
                    assert_eq!(e.key, *k, "row {i}: {e:?}");
                    assert!(
                        e.reason.contains("tls.insecure") || e.reason.contains("needs TLS"),
                        "row {i}: {e:?}"
                    );
                }
                (r, _) => panic!("row {i}: {r:?}, expected refusal at {refused:?}"),
            }
            let w = c.warnings("evpnd", &[g, *m]);
            let metric_warns = w.iter().filter(|w| w.contains("plaintext metrics")).count();
            assert_eq!(metric_warns, *warns, "row {i}: {w:?}");
        }
    }
}
