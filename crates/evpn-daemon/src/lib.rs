//! Shared plumbing of the vpp-evpn daemons (`evpnd`, `evpnr`): YAML config
//! loading with located errors, JSON logging, Prometheus metrics with a gRPC
//! tower layer, gRPC serving with health and reflection, and signal handling.
//!
//! Architecture invariant: nothing here knows about eVPNs, groups, VPP or
//! BIRD; the daemons bring their own config structs and services.
pub mod audit;
pub mod authz;
pub mod backoff;
pub mod config;
pub mod detach;
pub mod durable;
pub mod events;
pub mod grpc_metrics;
pub mod identity;
pub mod logging;
pub mod metrics;
pub mod runner;
pub mod serve;
pub mod settle;
pub mod signals;
pub mod tls;
pub mod watch;
pub mod witness;

// Moved down so the CLI and libraries need not depend on this crate; the
// old paths keep compiling.
pub use evpn_base::build;
pub use evpn_base::fs as fsutil;
pub use evpn_model::duration;

/// Emit a whole `#[tonic::async_trait] impl Trait for Type { ... }` in which
/// the RPCs listed under `unimplemented` answer `UNIMPLEMENTED` (never a fake
/// success) and everything after that list is copied verbatim. The impl is
/// emitted as one item so `async_trait` sees the expanded methods.
#[macro_export]
macro_rules! impl_with_unimplemented {
    (impl $tr:ident for $ty:ident { unimplemented { $($name:ident($req:ty) -> $resp:ty = $rpc:literal;)* } $($rest:tt)* }) => {
        #[::tonic::async_trait]
        impl $tr for $ty {
            $(
                async fn $name(
                    &self,
                    _req: ::tonic::Request<$req>,
                ) -> ::std::result::Result<::tonic::Response<$resp>, ::tonic::Status> {
                    Err(::evpn_model::Error::Unimplemented($rpc).into())
                }
            )*
            $($rest)*
        }
    };
}
