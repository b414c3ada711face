//! The key fields of a recorded call: the one list of request fields the
//! audit log names ([`KEY_FIELDS`]), read from the request's protobuf with
//! the API's descriptors, so every RPC (and one added later) is covered
//! without a table per RPC. Never a whole request; every value is cut to
//! [`VALUE_MAX`] bytes and lists to [`LIST_MAX`] items.
use std::{collections::BTreeMap, sync::LazyLock};

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage, Value};

/// Request field → the key it has in a record.
pub const KEY_FIELDS: &[(&str, &str)] = &[
    ("group_id", "group"),
    ("instance_id", "instance"),
    ("slug", "evpn"),
    ("vni", "vni"),
    ("mtu", "mtu"),
    ("vmac", "vmac"),
    ("mac", "mac"),
    ("address", "address"),
    ("addresses", "addresses"),
    ("grpc_address", "grpc-address"),
    ("force", "force"),
    ("enabled", "enabled"),
    ("suspended", "suspended"),
    ("ready", "ready"),
    ("mode", "mode"),
    ("priority", "priority"),
    ("registry_epoch", "registry-epoch"),
];

/// Longest value recorded, in bytes.
pub const VALUE_MAX: usize = 64;
/// Most items of a list recorded.
pub const LIST_MAX: usize = 8;

static POOL: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(evpn_api::FILE_DESCRIPTOR_SET).ok());

/// The request message of `service.method` (`Evpnr`, `MoveGroupBVI`).
pub fn input(service: &str, method: &str) -> Option<MessageDescriptor> {
    let pool = POOL.as_ref()?;
    let svc = pool.get_service_by_name(&format!("evpn.v1.{service}"))?;
    let m = svc.methods().find(|m| m.name() == method)?;
    Some(m.input())
}

/// The key fields of one unary gRPC request body (a length-prefixed
/// message). What cannot be read is said in the field `undecoded`.
pub fn key_fields(service: &str, method: &str, body: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let why = match decode(service, method, body) {
        Ok(m) => {
            collect(&m, &mut out);
            return out;
        }
        Err(why) => why,
    };
    out.insert("undecoded".into(), why.into());
    out
}

fn decode(service: &str, method: &str, body: &[u8]) -> Result<DynamicMessage, &'static str> {
    let desc = input(service, method).ok_or("unknown rpc")?;
    if body.len() < 5 {
        return Err("no message");
    }
    if body[0] != 0 {
        return Err("compressed");
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let msg = body.get(5..5 + len).ok_or("truncated")?;
    DynamicMessage::decode(desc, msg).map_err(|_| "not a valid message")
}

fn collect(m: &DynamicMessage, out: &mut BTreeMap<String, String>) {
    for f in m.descriptor().fields() {
        let Some((_, key)) = KEY_FIELDS.iter().find(|(n, _)| *n == f.name()) else {
            continue;
        };
        if f.supports_presence() && !m.has_field(&f) {
            continue;
        }
        let v = m.get_field(&f);
        if let Value::List(l) = v.as_ref()
            && l.is_empty()
        {
            continue;
        }
        out.insert(key.to_string(), render(&v));
    }
}

fn render(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::U32(n) => n.to_string(),
        Value::U64(n) => n.to_string(),
        Value::I32(n) | Value::EnumNumber(n) => n.to_string(),
        Value::I64(n) => n.to_string(),
        Value::List(items) => {
            let mut parts: Vec<String> = items.iter().take(LIST_MAX).map(render).collect();
            if items.len() > LIST_MAX {
                parts.push(format!("…({} items)", items.len()));
            }
            parts.join(",")
        }
        Value::Message(m) => {
            // A Prefix: address/len; other messages are not key fields.
            let get = |n: &str| m.get_field_by_name(n).map(|v| render(&v));
            match (get("address"), get("prefix_len")) {
                (Some(a), Some(l)) => format!("{a}/{l}"),
                _ => "…".into(),
            }
        }
        _ => "…".into(),
    };
    // No control characters: a record is one line, and fields are shown
    // in terminals.
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    evpn_model::validate::truncate(&clean, VALUE_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn framed(m: &impl Message) -> Vec<u8> {
        let b = m.encode_to_vec();
        let mut out = vec![0];
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(&b);
        out
    }

    /// (service, method, request body, the key fields it gives).
    type Row = (
        &'static str,
        &'static str,
        Vec<u8>,
        &'static [(&'static str, &'static str)],
    );

    #[test]
    fn key_fields_of_requests() {
        use evpn_api::v1;
        let long = "x".repeat(500);
        let rows: Vec<Row> = vec![
            (
                "Evpnr",
                "MoveGroupBVI",
                framed(&v1::MoveGroupBviRequest {
                    group_id: "g1".into(),
                    instance_id: "r2".into(),
                    force: true,
                }),
                &[("group", "g1"), ("instance", "r2"), ("force", "true")],
            ),
            (
                "Evpnr",
                "AddGroupBVIAddress",
                framed(&v1::GroupBviAddAddressRequest {
                    group_id: "g1".into(),
                    address: Some(v1::Prefix {
                        address: "10.0.0.1".into(),
                        prefix_len: 24,
                    }),
                }),
                &[("group", "g1"), ("address", "10.0.0.1/24")],
            ),
            (
                "Evpnd",
                "SetEvpnInstanceEnabled",
                framed(&v1::SetEnabledRequest {
                    instance_id: "".into(),
                    slug: "blue".into(),
                    enabled: false,
                    force: false,
                }),
                &[
                    ("instance", ""),
                    ("evpn", "blue"),
                    ("enabled", "false"),
                    ("force", "false"),
                ],
            ),
            (
                "Evpnr",
                "DeleteGroup",
                vec![0, 0, 0],
                &[("undecoded", "no message")],
            ),
            (
                "Evpnr",
                "NoSuchRpc",
                vec![],
                &[("undecoded", "unknown rpc")],
            ),
        ];
        for (svc, m, body, want) in rows {
            let got = key_fields(svc, m, &body);
            let got: Vec<(&str, &str)> =
                got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let mut want = want.to_vec();
            want.sort();
            assert_eq!(got, want, "{svc}.{m}");
        }
        // Long input is cut to VALUE_MAX bytes, with an ellipsis.
        let got = key_fields(
            "Evpnr",
            "DeleteGroup",
            &framed(&v1::GroupRef {
                group_id: long.clone(),
            }),
        );
        assert!(got["group"].len() <= VALUE_MAX && got["group"].ends_with('…'));
        assert!(long.starts_with(got["group"].trim_end_matches('…')));
    }

    #[test]
    fn every_rpc_of_the_protocol_has_a_descriptor() {
        for (svc, proto) in [
            (
                "Evpnr",
                include_str!("../../../../proto/evpn/v1/evpnr.proto"),
            ),
            (
                "Evpnd",
                include_str!("../../../../proto/evpn/v1/evpnd.proto"),
            ),
        ] {
            for line in proto.lines() {
                if let Some(rest) = line.trim().strip_prefix("rpc ") {
                    let m = rest.split('(').next().unwrap().trim();
                    assert!(input(svc, m).is_some(), "{svc}.{m}");
                }
            }
        }
    }
}
