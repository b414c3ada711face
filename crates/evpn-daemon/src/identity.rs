//! Who a registry call is meant for, and from which registry epoch: the two
//! values every call `evpnr` makes to an `evpnd` carries as gRPC metadata, so
//! the evpnd can refuse a call meant for another instance and a call from a
//! registry older than one it has already obeyed.
//!
//! Without TLS these values stop mistakes (a registry dialling the wrong
//! host, a stale registry still running, a hand-made call to a managed
//! evpnd), not an attacker who can read and forge plaintext gRPC.
use tonic::metadata::{MetadataMap, MetadataValue};

/// Metadata key: the instance ID the call is meant for.
pub const INSTANCE_KEY: &str = "evpn-instance-id";
/// Metadata key: the caller's registry epoch (decimal u64).
pub const EPOCH_KEY: &str = "evpn-registry-epoch";

/// What a registry call says about its caller and target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallIdentity {
    /// The instance the call is meant for, if named.
    pub target: Option<String>,
    /// The caller's registry epoch, if any.
    pub epoch: Option<u64>,
}

impl CallIdentity {
    /// Write `target` and `epoch` into `md`.
    pub fn stamp(md: &mut MetadataMap, target: &str, epoch: u64) {
        if let Ok(v) = MetadataValue::try_from(target) {
            md.insert(INSTANCE_KEY, v);
        }
        md.insert(EPOCH_KEY, MetadataValue::from(epoch));
    }

    /// Read them back; a value that does not parse is an error naming the key.
    pub fn read(md: &MetadataMap) -> Result<CallIdentity, evpn_model::Error> {
        let target = match md.get(INSTANCE_KEY) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| evpn_model::Error::invalid(INSTANCE_KEY, "not ASCII"))?
                    .to_string(),
            ),
        };
        let epoch = match md.get(EPOCH_KEY) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .filter(|e| *e > 0)
                    .ok_or_else(|| {
                        evpn_model::Error::invalid(EPOCH_KEY, "not a positive decimal number")
                    })?,
            ),
        };
        Ok(CallIdentity { target, epoch })
    }
}

/// A client interceptor that stamps every call with a target instance and a
/// registry epoch (what evpnr's member clients use; tests use it to act as
/// a registry).
#[derive(Clone)]
pub struct Stamp {
    target: std::sync::Arc<str>,
    epoch: u64,
}

impl Stamp {
    pub fn new(target: &str, epoch: u64) -> Stamp {
        Stamp {
            target: target.into(),
            epoch,
        }
    }
}

impl tonic::service::Interceptor for Stamp {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        CallIdentity::stamp(r.metadata_mut(), &self.target, self.epoch);
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_and_read_round_trip() {
        let mut md = MetadataMap::new();
        assert_eq!(CallIdentity::read(&md).unwrap(), CallIdentity::default());
        CallIdentity::stamp(&mut md, "dpu0-ddln0", 7);
        assert_eq!(
            CallIdentity::read(&md).unwrap(),
            CallIdentity {
                target: Some("dpu0-ddln0".into()),
                epoch: Some(7)
            }
        );
        md.insert(EPOCH_KEY, MetadataValue::from_static("x7"));
        assert!(CallIdentity::read(&md).is_err());
        md.insert(EPOCH_KEY, MetadataValue::from_static("0"));
        assert!(CallIdentity::read(&md).is_err());
    }
}
