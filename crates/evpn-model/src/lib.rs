//! Domain types, input validation and the error taxonomy of vpp-evpn.
//!
//! Architecture invariant: this crate does no I/O and knows nothing about
//! gRPC wire types, VPP or BIRD. Everything an API caller sends is validated
//! here before it can reach a BIRD snippet, an interface name or the
//! dataplane; validation errors name the field and the reason, and quote at
//! most a short prefix of bad input ([`excerpt`]). The rules and limits are
//! tabled in `docs/validation.md`.
pub mod addr;
pub mod duration;
pub mod error;
pub mod event;
pub mod health;
pub mod hostport;
pub mod mac;
pub mod rt;
pub mod settle;
pub mod validate;
pub mod witness;

pub use addr::{is_link_local, is_link_local6, parse_prefix, parse_vtep, validate_vtep};
pub use duration::HumanDuration;
#[cfg(feature = "grpc")]
pub use error::code_name;
pub use error::{Error, Result};
pub use event::{Event, EventKind, EventLevel};
pub use hostport::validate_host_port;
pub use mac::Mac;
pub use rt::{RouteDistinguisher, RouteTarget, canonical_route_targets, parse_route_targets};
pub use validate::{
    BVI_ADDRESSES_MAX, ERROR_MAX_LEN, EXCERPT_CHARS, GRPC_ADDRESS_MAX_LEN, MTU_DEFAULT, MTU_MAX,
    MTU_MIN, REQUEST_MAX_BYTES, ROUTE_TARGETS_MAX, SLUG_MAX_LEN, VERSION_MAX_LEN, VNI_MAX, excerpt,
    truncate, validate_count, validate_instance_id, validate_mtu, validate_slug, validate_text,
    validate_vni,
};

/// `impl Serialize` / `impl Deserialize` for a value type through its
/// `Display` and `FromStr` (the one text form is the one serialised form).
#[macro_export]
#[doc(hidden)]
macro_rules! serde_as_string {
    ($t:ty) => {
        impl ::serde::Serialize for $t {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $t {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
