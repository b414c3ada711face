//! evpnlab: the simulated lab ([`lab`]), the chaos run ([`chaos`]) and
//! their mutual TLS ([`tls`]).
pub mod chaos;
pub mod lab;
pub mod tls;
