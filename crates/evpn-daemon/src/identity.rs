//! Who a registry call is meant for, from which registry epoch, and until
//! when it is wanted: the values every call `evpnr` makes to an `evpnd`
//! carries as gRPC metadata, so the evpnd can refuse a call meant for
//! another instance, a call from a registry older than one it has already
//! obeyed, and a call that arrives after evpnr gave up waiting for it.
//!
//! The last one (`evpn-not-after`): a call held by a management partition
//! (its bytes queued in TCP retransmission) reaches the evpnd when the
//! partition heals, seconds after evpnr counted it as failed and went on
//! without it. Carrying it out then — a takeover's release of a primary
//! that was only cut off, delivered after the takeover ended — moves the
//! gateway by surprise. evpnr stamps each call with the wall-clock moment it
//! stops waiting (its timeout for the call); the evpnd refuses, before any
//! change, a call whose moment passed more than [`EXPIRY_GRACE`] ago. Clock
//! skew between the hosts up to the grace is harmless; a larger one makes
//! evpnds refuse fresh calls, loudly, naming the clocks.
//!
//! Without TLS these values stop mistakes (a registry dialling the wrong
//! host, a stale registry still running, a hand-made call to a managed
//! evpnd), not an attacker who can read and forge plaintext gRPC.
use tonic::metadata::{MetadataMap, MetadataValue};

/// Metadata key: the instance ID the call is meant for.
pub const INSTANCE_KEY: &str = "evpn-instance-id";
/// Metadata key: the caller's registry epoch (decimal u64).
pub const EPOCH_KEY: &str = "evpn-registry-epoch";
/// Metadata key: when the caller stops waiting for the call (Unix time in
/// milliseconds, decimal).
pub const NOT_AFTER_KEY: &str = "evpn-not-after";
/// How long after its `evpn-not-after` a call is still carried out: the
/// clock skew between evpnr's host and an evpnd's that is tolerated.
pub const EXPIRY_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

tokio::task_local! {
    /// The `evpn-not-after` of the calls made in this scope ([`expiring`]).
    static NOT_AFTER: std::time::SystemTime;
}

/// Run `f` (a member call) with every call it makes stamped
/// `evpn-not-after: not_after` by [`Stamp`] — or the moment of an
/// enclosing scope, when that is earlier (a caller that stops waiting
/// sooner than the call's own timeout).
pub async fn expiring<F: std::future::Future>(not_after: std::time::SystemTime, f: F) -> F::Output {
    let t = NOT_AFTER
        .try_with(|o| (*o).min(not_after))
        .unwrap_or(not_after);
    NOT_AFTER.scope(t, f).await
}

fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}

/// What a registry call says about its caller and target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallIdentity {
    /// The instance the call is meant for, if named.
    pub target: Option<String>,
    /// The caller's registry epoch, if any.
    pub epoch: Option<u64>,
    /// When the caller stops waiting (Unix ms), if it said.
    pub not_after_ms: Option<u64>,
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
        let not_after_ms = decimal(md, NOT_AFTER_KEY, 0, "not a decimal number")?;
        let epoch = decimal(md, EPOCH_KEY, 1, "not a positive decimal number")?;
        Ok(CallIdentity {
            target,
            epoch,
            not_after_ms,
        })
    }

    /// Refuse (DEADLINE_EXCEEDED) a call that arrives at `now` more than
    /// [`EXPIRY_GRACE`] after its caller stopped waiting for it.
    pub fn check_fresh(&self, now: std::time::SystemTime) -> Result<(), evpn_model::Error> {
        let Some(na) = self.not_after_ms else {
            return Ok(());
        };
        let now = unix_ms(now);
        let grace = EXPIRY_GRACE.as_millis() as u64;
        if now > na.saturating_add(grace) {
            return Err(evpn_model::Error::Timeout(format!(
                "this call arrived {} ms after its caller stopped waiting for it \
                 ({NOT_AFTER_KEY}; {} ms of clock skew tolerated): refused, nothing \
                 changed (a call held by a partition; if calls are refused while the \
                 network is fine, check the hosts' clocks)",
                now - na,
                grace
            )));
        }
        Ok(())
    }
}

/// Metadata `key` as a decimal u64 of at least `min`; absent: `None`;
/// anything else an error naming the key and `why`.
fn decimal(
    md: &MetadataMap,
    key: &'static str,
    min: u64,
    why: &str,
) -> Result<Option<u64>, evpn_model::Error> {
    md.get(key)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|n| *n >= min)
                .ok_or_else(|| evpn_model::Error::invalid(key, why))
        })
        .transpose()
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
        if let Ok(t) = NOT_AFTER.try_with(|t| *t) {
            r.metadata_mut()
                .insert(NOT_AFTER_KEY, MetadataValue::from(unix_ms(t)));
        }
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
                epoch: Some(7),
                not_after_ms: None,
            }
        );
        md.insert(EPOCH_KEY, MetadataValue::from_static("x7"));
        assert!(CallIdentity::read(&md).is_err());
        md.insert(EPOCH_KEY, MetadataValue::from_static("0"));
        assert!(CallIdentity::read(&md).is_err());
    }

    /// A call made in an [`expiring`] scope carries its moment; the evpnd
    /// refuses it only once the moment plus the grace has passed.
    #[tokio::test]
    async fn an_expired_call_is_refused_after_the_grace() {
        use std::time::{Duration, SystemTime};
        use tonic::service::Interceptor;
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let r = expiring(t, async {
            Stamp::new("a", 1).call(tonic::Request::new(())).unwrap()
        })
        .await;
        let c = CallIdentity::read(r.metadata()).unwrap();
        assert_eq!(c.not_after_ms, Some(1_000_000_000));
        // (arrival after the moment, ms) -> refused
        for (late, refused) in [
            (0, false),
            (250, false),
            (500, false),
            (501, true),
            (3000, true),
        ] {
            let r = c.check_fresh(t + Duration::from_millis(late));
            assert_eq!(r.is_err(), refused, "{late} ms: {r:?}");
            if let Err(e) = r {
                assert!(matches!(e, evpn_model::Error::Timeout(_)), "{e:?}");
                assert!(e.to_string().contains(&format!("{late} ms after")), "{e}");
            }
        }
        // Outside a scope: no moment, never refused for it.
        let r = Stamp::new("a", 1).call(tonic::Request::new(())).unwrap();
        let c = CallIdentity::read(r.metadata()).unwrap();
        assert_eq!(c.not_after_ms, None);
        assert!(c.check_fresh(t + Duration::from_secs(3600)).is_ok());
        // Nested scopes: the earlier moment wins.
        let later = t + Duration::from_secs(5);
        for (outer, inner) in [(t, later), (later, t)] {
            let r = expiring(outer, async {
                expiring(inner, async {
                    Stamp::new("a", 1).call(tonic::Request::new(())).unwrap()
                })
                .await
            })
            .await;
            let c = CallIdentity::read(r.metadata()).unwrap();
            assert_eq!(c.not_after_ms, Some(1_000_000_000), "{outer:?} {inner:?}");
        }
        // A value that does not parse names the key.
        let mut md = MetadataMap::new();
        md.insert(NOT_AFTER_KEY, MetadataValue::from_static("soon"));
        let e = CallIdentity::read(&md).unwrap_err().to_string();
        assert!(e.contains(NOT_AFTER_KEY), "{e}");
    }
}
