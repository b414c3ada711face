//! The gRPC client of one member (lazily connected, every call stamped with
//! the member's ID and the registry epoch) and what a member's refusal
//! means to the registry. Knows nothing of the registry itself.
use std::time::Duration;

use evpn_api::v1::evpnd_client::EvpndClient;
use evpn_daemon::{audit::layer::AuditedChannel, identity::Stamp};
use evpn_model::Error;
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};

/// A member's client: every call carries a [`Stamp`] with the instance it
/// is meant for and the registry epoch, so the evpnd can refuse a call meant
/// for someone else or coming from a stale registry; every state-changing
/// call is recorded in evpnr's audit log, linked to the operator's request
/// that caused it ([`AuditedChannel`]).
pub type MemberClient = EvpndClient<InterceptedService<AuditedChannel<Channel>, Stamp>>;

/// HTTP/2 keep-alive of a member's connection: a PING this often, also
/// while idle. A connection whose PING is not answered within the member
/// timeout is closed, so the next call dials a new one — instead of
/// queueing every call behind a TCP connection that a partition left in
/// retransmission back-off (tens of seconds after a short partition healed).
pub const KEEPALIVE: Duration = Duration::from_secs(1);

/// A lazily connecting client for member `id` at `addr` ("host:port").
pub fn client(id: &str, addr: &str, timeout: Duration, epoch: u64) -> Result<MemberClient, Error> {
    evpn_model::validate_host_port("grpc_address", addr)?;
    // Over mutual TLS when configured: the member must prove it is `id`
    // (its certificate's identity), wherever its address points.
    let expect = evpn_tls::Expect::Exactly(evpn_tls::Identity::Instance(id.to_string()));
    let ch = evpn_daemon::tls::connect_lazy(addr, expect, |e| {
        e.connect_timeout(timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(KEEPALIVE)
            .keep_alive_timeout(timeout)
            .keep_alive_while_idle(true)
    })
    .map_err(|e| Error::invalid("grpc_address", e.to_string()))?;
    Ok(EvpndClient::with_interceptor(
        AuditedChannel::new(ch),
        Stamp::new(id, epoch),
    ))
}

/// A member's status turned into a registry error (orchestration). The
/// message names the member and the method.
pub fn member_err(id: &str, method: &str, s: &Status) -> Error {
    let msg = format!("member {id}: {method}: {}", s.message());
    match s.code() {
        Code::Unavailable | Code::Cancelled | Code::Unknown => Error::Unavailable(msg),
        Code::DeadlineExceeded => Error::Timeout(msg),
        Code::Aborted => Error::Aborted(msg),
        Code::InvalidArgument | Code::NotFound | Code::AlreadyExists | Code::FailedPrecondition => {
            Error::FailedPrecondition(msg)
        }
        _ => Error::Internal(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_errors_keep_their_meaning() {
        let e = member_err("a", "CreateBVI", &Status::failed_precondition("no evpn"));
        assert!(matches!(e, Error::FailedPrecondition(_)));
        assert!(e.to_string().contains("member a: CreateBVI: no evpn"));
        assert!(matches!(
            member_err("a", "X", &Status::unavailable("down")),
            Error::Unavailable(_)
        ));
    }
}
