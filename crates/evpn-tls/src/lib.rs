//! Mutual TLS for every gRPC server and client of vpp-evpn (rustls with
//! the ring provider; TLS 1.3 only; no OpenSSL).
//!
//! - [`Material`]: a program's certificate, key and CA from PEM files,
//!   checked up front with errors that name the file and the reason (wrong
//!   CA, expired or not yet valid, key not matching, key readable by others).
//! - [`Identity`]: who a certificate names — exactly one URI SAN
//!   `evpn://instance/<id>`, `evpn://registry/<name>` or `evpn://user/<name>`.
//! - [`ServerTls`]: a reloadable acceptor for `tonic`'s
//!   `serve_with_incoming`; handlers read the peer's [`PeerInfo`] from the
//!   request's extensions.
//! - [`ClientTls`]: tonic channels that verify the server's identity
//!   ([`Expect`]), not the address dialled.
//! - [`pki::DevCa`]: a development CA (the `evpn-pki` command).
mod client;
mod identity;
mod material;
pub mod pki;
mod server;

pub use client::{ClientTls, Expect};
pub use identity::{Identity, SCHEME};
pub use material::{Material, TlsFiles, provider};
pub use server::{HANDSHAKE_TIMEOUT, OnRefused, PeerInfo, ServerTls, TlsConn};

/// What can go wrong with TLS material or a connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file is missing, unreadable or wrong; the reason says how.
    #[error("{}: {reason}", .path.display())]
    File {
        path: std::path::PathBuf,
        reason: String,
    },
    /// An identity is malformed or absent.
    #[error("invalid {field}: {reason}")]
    Identity { field: String, reason: String },
    /// A handshake was refused.
    #[error("{0}")]
    Handshake(String),
    /// Building a TLS configuration failed.
    #[error("{0}")]
    Config(String),
}
