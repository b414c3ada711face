//! `birdsim`: a stand-in for BIRD's control socket, used by the simulated
//! lab when BIRD 2.20 is not installed. It speaks the same line protocol
//! (welcome `0001`, `NNNN-`/`NNNN ` lines, continuations) for the commands
//! evpnd uses — `show status`, `show protocols [all] [name]`, `configure
//! [check] ["file"]`, `configure status`, `enable|disable|restart|reload`,
//! `show route table <t>` — and parses the configuration subset evpnd writes
//! ([`conf`]), refusing what BIRD refuses in the same words. It runs no
//! routing protocol: protocols are `up` (BGP stays `start`, it has no peer)
//! and route tables are empty.
pub mod conf;
mod server;

pub use server::{BirdSim, SimHandle};

/// Version string in the welcome line.
pub const VERSION: &str = "2.20.0-birdsim";
