//! Typed errors of the control-socket client.

use std::time::Duration;

/// A configuration error reported by BIRD with code `8002`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file BIRD was reading (for a staged candidate this is the staging path).
    pub file: String,
    /// 1-based line, when BIRD gave one.
    pub line: Option<u32>,
    /// 1-based column, when BIRD gave one.
    pub column: Option<u32>,
    /// The message (e.g. `syntax error, unexpected '}'`, `No such file or directory`).
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{}:{} {}", self.file, l, c, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl ConfigError {
    /// Parses the text of an `8002` line: `<file>:<line>:<col> <msg>` or `<file>: <msg>`.
    pub fn parse(text: &str) -> ConfigError {
        for (i, _) in text.match_indices(' ') {
            let head = &text[..i];
            let mut it = head.rsplitn(3, ':');
            let (Some(col), Some(line), Some(file)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            if let (Ok(line), Ok(col)) = (line.parse::<u32>(), col.parse::<u32>()) {
                return ConfigError {
                    file: file.to_string(),
                    line: Some(line),
                    column: Some(col),
                    message: text[i + 1..].to_string(),
                };
            }
        }
        if let Some((file, msg)) = text.split_once(": ") {
            return ConfigError {
                file: file.to_string(),
                line: None,
                column: None,
                message: msg.to_string(),
            };
        }
        ConfigError {
            file: String::new(),
            line: None,
            column: None,
            message: text.to_string(),
        }
    }
}

/// Everything that can go wrong talking to BIRD.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BirdError {
    /// `8002`: the configuration (or a candidate) failed to parse or validate.
    #[error("BIRD configuration error: {0}")]
    Config(ConfigError),
    /// `8003`: no protocol matched the (quoted) name.
    #[error("no such protocol: {0}")]
    NoSuchProtocol(String),
    /// `9001`: BIRD could not parse the command.
    #[error("BIRD parse error: {0}")]
    Parse(String),
    /// `8007`: the socket is restricted.
    #[error("access denied by BIRD: {0}")]
    AccessDenied(String),
    /// Any other 8xxx/9xxx code.
    #[error("BIRD error {code:04}: {message}")]
    Bird {
        /// The reply code.
        code: u16,
        /// The reply text.
        message: String,
    },
    /// A command did not complete within its timeout; the connection was dropped.
    #[error("BIRD command {command:?} timed out after {timeout:?}")]
    Timeout {
        /// The command sent.
        command: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// Socket I/O failed (connect, read, write, EOF); the connection was dropped.
    #[error("BIRD socket I/O error: {0}")]
    Io(String),
    /// BIRD sent something that does not follow the reply format.
    #[error("BIRD protocol violation: {0}")]
    Protocol(String),
    /// A reply was well-formed but not what the command should produce.
    #[error("unexpected BIRD reply to {command:?}: {reply}")]
    Unexpected {
        /// The command sent.
        command: String,
        /// A summary of the reply.
        reply: String,
    },
    /// An argument was refused before anything was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl BirdError {
    /// Maps a failure line (8xxx/9xxx) to a typed error.
    pub fn from_failure(code: u16, text: &str) -> BirdError {
        match code {
            8002 => BirdError::Config(ConfigError::parse(text)),
            8003 => BirdError::NoSuchProtocol(text.to_string()),
            8007 => BirdError::AccessDenied(text.to_string()),
            9001 => BirdError::Parse(text.to_string()),
            _ => BirdError::Bird {
                code,
                message: text.to_string(),
            },
        }
    }

    /// Whether the connection must be re-established before the next command.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            BirdError::Io(_) | BirdError::Timeout { .. } | BirdError::Protocol(_)
        )
    }
}

impl From<std::io::Error> for BirdError {
    fn from(e: std::io::Error) -> Self {
        BirdError::Io(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_error_forms() {
        let e = ConfigError::parse("/x/evpn-700.conf:13:1 Route distinguisher not specified");
        assert_eq!(e.file, "/x/evpn-700.conf");
        assert_eq!((e.line, e.column), (Some(13), Some(1)));
        assert_eq!(e.message, "Route distinguisher not specified");
        let e = ConfigError::parse("/x/nonexistent.conf: No such file or directory");
        assert_eq!(e.file, "/x/nonexistent.conf");
        assert_eq!(e.line, None);
        assert_eq!(e.message, "No such file or directory");
        let e = ConfigError::parse("/a b/c.conf:2:3 Symbol 'p1' already defined");
        assert_eq!(e.file, "/a b/c.conf");
        assert_eq!(e.message, "Symbol 'p1' already defined");
    }
}
