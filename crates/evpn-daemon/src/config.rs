//! YAML configuration files: one top-level key per daemon, kebab-case keys,
//! unknown keys rejected with line and column (structural validation), then a
//! daemon-supplied semantic validation. `--check` exit codes follow the house
//! style: 0 valid, 1 YAML/structure error, 2 semantic error.
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// YAML syntax or structure (unknown key, wrong type, duplicate key); the
    /// message carries line and column.
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    /// The file parsed but a value is not acceptable; `key` is the dotted
    /// path of the offending key, e.g. `evpnd.vpp.api-socket`.
    #[error("{origin}: {key}: {reason}")]
    Semantic {
        origin: String,
        key: String,
        reason: String,
    },
}

impl ConfigError {
    /// Exit code of `--check` for this error: 1 for unreadable/unparsable
    /// files, 2 for semantic errors.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Io { .. } | ConfigError::Parse { .. } => 1,
            ConfigError::Semantic { .. } => 2,
        }
    }
}

/// A semantic check failure inside a config struct: the dotted key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemanticError {
    pub key: String,
    pub reason: String,
}

impl SemanticError {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        SemanticError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Implemented by each daemon's top-level config struct.
pub trait Validate {
    /// Semantic validation after a successful parse.
    fn validate(&self) -> Result<(), SemanticError>;
}

/// The configuration text and its origin for messages: the file at `path`,
/// or `default` (the embedded default) when no file is given.
pub fn read_source(path: Option<&Path>, default: &str) -> Result<(String, String), ConfigError> {
    match path {
        Some(p) => Ok((
            std::fs::read_to_string(p).map_err(|source| ConfigError::Io {
                path: p.to_path_buf(),
                source,
            })?,
            p.display().to_string(),
        )),
        None => Ok((default.to_string(), "embedded default".to_string())),
    }
}

/// Semantic validation of a merged configuration, errors naming `origin`.
pub fn check<T: Validate>(cfg: &T, origin: &str) -> Result<(), ConfigError> {
    cfg.validate().map_err(|e| ConfigError::Semantic {
        origin: origin.to_string(),
        key: e.key,
        reason: e.reason,
    })
}

/// Parse YAML text with structural validation only (syntax, unknown or
/// duplicate keys, types). `origin` names the source in messages.
pub fn parse_structural<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T, ConfigError> {
    serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
        origin: origin.to_string(),
        message: e.to_string(),
    })
}

/// Parse YAML text (structural validation) and validate it (semantic).
/// `origin` names the source in messages (a path or "embedded default").
pub fn parse<T: DeserializeOwned + Validate>(text: &str, origin: &str) -> Result<T, ConfigError> {
    let cfg: T = parse_structural(text, origin)?;
    check(&cfg, origin)?;
    Ok(cfg)
}

/// Read and [`parse`] a file.
pub fn load<T: DeserializeOwned + Validate>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Validate a socket address setting ("host:port"); empty is allowed when
/// `allow_empty` (meaning "disabled").
pub fn check_listen_addr(key: &str, v: &str, allow_empty: bool) -> Result<(), SemanticError> {
    if v.is_empty() {
        return if allow_empty {
            Ok(())
        } else {
            Err(SemanticError::new(key, "must not be empty"))
        };
    }
    v.parse::<std::net::SocketAddr>().map(|_| ()).map_err(|_| {
        SemanticError::new(
            key,
            format!("{v:?} is not an address:port (e.g. 127.0.0.1:9190 or [::1]:9190)"),
        )
    })
}

/// Validate a log level name.
pub fn check_log_level(key: &str, v: &str) -> Result<(), SemanticError> {
    match v {
        "debug" | "info" | "warn" | "error" => Ok(()),
        _ => Err(SemanticError::new(
            key,
            format!("{v:?} is not a log level (debug, info, warn, error)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    struct Top {
        demo: Demo,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    struct Demo {
        log_level: String,
    }
    impl Validate for Top {
        fn validate(&self) -> Result<(), SemanticError> {
            check_log_level("demo.log-level", &self.demo.log_level)
        }
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let e = parse::<Top>("demo:\n  log-level: info\n  colour: red\n", "t.yaml").unwrap_err();
        assert_eq!(e.exit_code(), 1);
        let m = e.to_string();
        assert!(m.contains("line 3 column 3") && m.contains("colour"), "{m}");
    }

    #[test]
    fn semantic_error_names_key() {
        let e = parse::<Top>("demo:\n  log-level: loud\n", "t.yaml").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("demo.log-level"), "{e}");
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let e = parse::<Top>("demo:\n  log-level: info\n  log-level: warn\n", "t").unwrap_err();
        assert_eq!(e.exit_code(), 1, "{e}");
    }

    #[test]
    fn listen_addresses() {
        assert!(check_listen_addr("k", "127.0.0.1:9190", false).is_ok());
        assert!(check_listen_addr("k", "[::1]:9190", false).is_ok());
        assert!(check_listen_addr("k", "", true).is_ok());
        assert!(check_listen_addr("k", "", false).is_err());
        assert!(check_listen_addr("k", "localhost", false).is_err());
    }
}
