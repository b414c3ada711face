//! Domain types, input validation and the error taxonomy of vpp-evpn.
//!
//! Architecture invariant: this crate does no I/O and knows nothing about
//! gRPC wire types, VPP or BIRD. Everything an API caller sends is validated
//! here before it can reach a BIRD snippet, an interface name or the
//! dataplane; validation errors name the field and the reason.
pub mod error;
pub mod hostport;
pub mod mac;
pub mod validate;

pub use error::{Error, Result};
pub use hostport::validate_host_port;
pub use mac::Mac;
pub use validate::{
    MTU_DEFAULT, MTU_MAX, MTU_MIN, SLUG_MAX_LEN, VNI_MAX, parse_prefix, validate_instance_id,
    validate_mtu, validate_slug, validate_vni,
};
