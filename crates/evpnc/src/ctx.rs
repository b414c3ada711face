//! What every handler shares: the connection context, the error type and
//! the JSON output helpers. `commands` and `watch` both use it (neither
//! imports the other's internals).
use std::time::Duration;

use evpn_api::v1::evpnr_client::EvpnrClient;
use evpn_model::code_name;
use serde::Serialize;
use tonic::{Code, Request, Status, transport::Channel};

use crate::parse::ParseError;
use crate::render::Paint;

/// Everything a handler needs; no global state.
#[derive(Clone)]
pub struct Ctx {
    pub client: EvpnrClient<Channel>,
    /// `host:port` of evpnr, for messages.
    pub server: String,
    /// Deadline of each unary RPC.
    pub timeout: Duration,
    pub json: bool,
    pub paint: Paint,
    /// Whether stdin is a terminal (watch stops on a key press).
    pub tty: bool,
}

/// A failed command.
#[derive(Debug)]
pub enum CliError {
    /// The line is not a valid command (exit status 2).
    Parse(ParseError),
    /// evpnr answered with an error or could not be reached (exit status 1).
    Rpc(String),
}

impl CliError {
    /// Process exit status for one-shot mode.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Parse(_) => 2,
            CliError::Rpc(_) => 1,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Parse(e) => write!(f, "{e}"),
            CliError::Rpc(m) => f.write_str(m),
        }
    }
}

impl From<ParseError> for CliError {
    fn from(e: ParseError) -> Self {
        CliError::Parse(e)
    }
}

impl Ctx {
    /// A request with the per-call deadline.
    pub fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        r.set_timeout(self.timeout);
        r
    }

    /// Turn a gRPC status into the user-facing error: `CODE: message`,
    /// naming the server when it could not be reached.
    pub fn rpc_err(&self, s: Status) -> CliError {
        let msg = s.message().trim();
        let msg = if msg.is_empty() {
            s.code().description()
        } else {
            msg
        };
        // A status with a source was made on this side (connect failure,
        // client deadline); one without came from evpnr (which may itself
        // report an unreachable member).
        if s.code() == Code::Cancelled && msg == "Timeout expired" {
            // tonic's name for our own -timeout firing.
            return CliError::Rpc(format!(
                "DEADLINE_EXCEEDED: evpnr at {}: no answer within {:?} (-timeout)",
                self.server, self.timeout
            ));
        }
        if let Some(mut src) = std::error::Error::source(&s) {
            // Walk to the root cause ("Connection refused (os error 111)").
            while let Some(next) = src.source() {
                src = next;
            }
            let cause = src.to_string();
            let detail = if cause.is_empty() || msg.contains(&cause) {
                msg.to_string()
            } else {
                format!("{msg}: {cause}")
            };
            CliError::Rpc(format!(
                "{}: evpnr at {}: {detail}",
                code_name(s.code()),
                self.server
            ))
        } else {
            CliError::Rpc(format!("{}: {msg}", code_name(s.code())))
        }
    }
}

/// Canonical proto-JSON, one line.
pub fn json<T: Serialize>(msg: &T) -> Result<String, CliError> {
    serde_json::to_string(msg).map_err(|e| CliError::Rpc(format!("INTERNAL: {e}")))
}

/// `{"error": "..."}`.
pub fn json_error(msg: &str) -> String {
    serde_json::json!({ "error": msg }).to_string()
}
