//! evpnlab: the simulated lab ([`lab`]) and the chaos run ([`chaos`]).
pub mod chaos;
pub mod lab;
