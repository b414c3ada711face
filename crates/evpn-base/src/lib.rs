//! The primitives every vpp-evpn program shares that are not domain types
//! (those live in `evpn-model`, which does no I/O):
//!
//! * [`fs`]: durable atomic file replacement — temp file in the same
//!   directory, fsync, rename, fsync of the directory — the one
//!   implementation behind evpnd's and evpnr's state files, evpnd's epoch
//!   file and bird-ctl's snippet commit, with an async form that runs the
//!   blocking part off the async runtime;
//! * [`build`]: the build identity (version, git commit) every program
//!   prints and exports.
//!
//! Architecture invariant: std and tokio only (no gRPC, HTTP or metrics),
//! so the CLI and the libraries can depend on it without pulling in daemon
//! plumbing.
pub mod build;
pub mod fs;
