//! One group's decisions about its gateway identity: the sans-IO state
//! machine (`machine`) and its driver over the registry (`driver`).
#[cfg(test)]
mod conformance;
pub mod driver;
pub mod failover;
#[cfg(test)]
pub(crate) mod fake;
pub mod machine;
pub mod settle;
pub mod types;
