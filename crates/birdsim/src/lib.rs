//! `birdsim`: a stand-in for BIRD's control socket, used by the simulated
//! lab when BIRD 2.20 is not installed. It speaks the same line protocol
//! (welcome `0001`, `NNNN-`/`NNNN ` lines, continuations) for the commands
//! evpnd uses — `show status`, `show protocols [all] [name]`, `configure
//! [check] ["file"]`, `configure status`, `enable|disable|restart|reload`,
//! `show route table <t>` — and parses the configuration subset evpnd writes
//! ([`conf`]), refusing what BIRD refuses in the same words. It runs no
//! routing protocol. Alone, protocols are `up` (BGP stays `start`, it has no
//! peer) and route tables are empty. On a simulated [`fabric`]
//! ([`BirdSim::start_on`]), its eth tables hold the MAC routes the other
//! hosts announce, in BIRD 2.20's `show route` format, and BGP protocols are
//! `Established` while the host is connected to the fabric.
pub mod conf;
pub mod fabric;
mod server;

pub use server::{BirdSim, SimHandle};

/// Version string in the welcome line.
pub const VERSION: &str = "2.20.0-birdsim";
