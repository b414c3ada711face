//! The vpp-evpn gRPC API contract, package `evpn.v1`.
//!
//! Generated from `proto/evpn/v1/*.proto` at build time (see `build.rs`).
//! These are wire types: daemons convert them to their domain types at the
//! gRPC edge and never pass them deeper.
#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// Generated messages, clients (`evpnd_client`, `evpnr_client`) and servers
/// (`evpnd_server`, `evpnr_server`) of package `evpn.v1`, with proto-JSON
/// `serde` implementations.
pub mod v1 {
    tonic::include_proto!("evpn.v1");
    include!(concat!(env!("OUT_DIR"), "/evpn.v1.serde.rs"));
}

/// Encoded `FileDescriptorSet` of the API (and its imports), for gRPC
/// reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/evpn_descriptor.bin"));

/// Fully qualified service names, as reflection lists them.
pub const EVPND_SERVICE: &str = "evpn.v1.Evpnd";
/// See [`EVPND_SERVICE`].
pub const EVPNR_SERVICE: &str = "evpn.v1.Evpnr";

#[cfg(test)]
mod tests {
    use super::v1;

    #[test]
    fn group_bvi_json_uses_canonical_camel_case() {
        let g = v1::Group {
            group_id: "test".into(),
            vni: 100,
            group_bvi: Some(v1::GroupBvi {
                mac: "42:6c:fa:d6:82:98".into(),
                addresses: vec![v1::Prefix {
                    address: "172.16.0.32".into(),
                    prefix_len: 24,
                }],
                created_at: Some(pbjson_types::Timestamp {
                    seconds: 1_780_525_048,
                    nanos: 0,
                }),
                modified_at: None,
            }),
            ..Default::default()
        };
        let j: serde_json::Value = serde_json::to_value(&g).unwrap();
        assert_eq!(j["groupId"], "test");
        assert_eq!(j["groupBvi"]["addresses"][0]["prefixLen"], 24);
        assert_eq!(j["groupBvi"]["createdAt"], "2026-06-03T22:17:28+00:00");
        let back: v1::Group = serde_json::from_value(j).unwrap();
        assert_eq!(back, g);
    }

    #[test]
    fn empty_serialises_as_empty_object() {
        assert_eq!(serde_json::to_string(&v1::Empty {}).unwrap(), "{}");
    }
}
