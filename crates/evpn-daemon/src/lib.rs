//! Shared plumbing of the vpp-evpn daemons (`evpnd`, `evpnr`): YAML config
//! loading with located errors, JSON logging, Prometheus metrics with a gRPC
//! tower layer, gRPC serving with health and reflection, and signal handling.
//!
//! Architecture invariant: nothing here knows about eVPNs, groups, VPP or
//! BIRD; the daemons bring their own config structs and services.
pub mod build;
pub mod config;
pub mod duration;
pub mod events;
pub mod grpc_metrics;
pub mod logging;
pub mod metrics;
pub mod serve;
pub mod signals;
pub mod watch;
