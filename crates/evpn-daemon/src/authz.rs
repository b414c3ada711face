//! Who may call what, when a daemon serves mutual TLS (docs/security.md).
//! The one table of every RPC's requirement ([`need`]), the role map of
//! the configuration, and a tower layer that refuses a call before it
//! reaches the service, with `PERMISSION_DENIED` naming the identity and
//! what it would need. Without TLS nothing is checked (loopback only).
use std::{
    collections::BTreeMap,
    sync::Arc,
    task::{Context, Poll},
};

use evpn_tls::{Identity, PeerInfo};
use serde::{Deserialize, Serialize};

/// An operator's role; each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads and `WatchEvents`.
    Viewer,
    /// Moves, binds and releases, failover policy, drain, and creating
    /// and changing groups and eVPNs.
    Operator,
    /// Everything, including deleting instances, groups and eVPNs.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// What an RPC requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A role of at least this.
    Role(Role),
    /// An evpnd's own identity (`evpn://instance/<id>`); the handler checks
    /// that `<id>` is the instance the call is about ([`require_instance`]).
    Member,
}

/// The requirement of `method` of `service` (`Evpnr` or `Evpnd`); the one
/// table. An RPC not listed needs admin (fail closed). On an evpnd with a
/// registry, every RPC that is not a read needs the registry's identity
/// instead ([`Policy`]).
pub fn need(service: &str, method: &str) -> Need {
    use Role::*;
    let read = method.starts_with("List") || method.starts_with("Get") || method == "WatchEvents";
    if read {
        return Need::Role(Viewer);
    }
    match (service, method) {
        ("Evpnr", "RegisterInstance" | "ReportReady" | "Heartbeat") => Need::Member,
        (
            "Evpnr",
            "CreateGroup"
            | "AddGroupMember"
            | "CreateGroupBVI"
            | "SetGroupMTU"
            | "AddGroupBVIAddress"
            | "DeleteGroupBVIAddress"
            | "BindGroupBVI"
            | "ReleaseGroupBVI"
            | "MoveGroupBVI"
            | "SetGroupFailover"
            | "SetGroupMemberPriority"
            | "DrainInstance"
            | "ResumeInstance"
            | "SetFailoverSuspended"
            | "SetEvpnInstanceEnabled",
        ) => Need::Role(Operator),
        (
            "Evpnd",
            "CreateEvpnInstance"
            | "SetEvpnInstanceEnabled"
            | "CreateBVI"
            | "ReplaceBVI"
            | "BindGroupBVI"
            | "ReleaseGroupBVI",
        ) => Need::Role(Operator),
        _ => Need::Role(Admin),
    }
}

/// Whom a server accepts calls from.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Operators' roles, by identity.
    pub roles: BTreeMap<Identity, Role>,
    /// An evpnd with a registry: every call that is not a read must come
    /// from a registry identity (evpnr orchestrates; operators use evpnc).
    pub writes_from_registry_only: bool,
}

impl Policy {
    /// Whether `who` may call `method` of `service`; the error names the
    /// identity, the RPC and what it would need.
    pub fn check(&self, who: &Identity, service: &str, method: &str) -> Result<(), String> {
        let n = need(service, method);
        let role = self.roles.get(who).copied();
        let denied = |what: String| Err(format!("{who} may not call {service}.{method}: {what}"));
        if service != "Evpnr" && service != "Evpnd" {
            // Health and reflection: any authenticated peer.
            return Ok(());
        }
        match n {
            Need::Member => match who {
                Identity::Instance(_) => Ok(()),
                _ => denied("only an evpnd (evpn://instance/<id>) may".into()),
            },
            Need::Role(r) => {
                if matches!(who, Identity::Registry(_)) && service == "Evpnd" {
                    return Ok(());
                }
                if self.writes_from_registry_only && r > Role::Viewer {
                    return denied(
                        "this evpnd is managed by a registry: changes come only from evpnr (evpn://registry/…)"
                            .into(),
                    );
                }
                match role {
                    Some(have) if have >= r => Ok(()),
                    Some(have) => denied(format!("needs role {}, has {}", r.name(), have.name())),
                    None => denied(format!(
                        "needs role {}, has none (not in the role map)",
                        r.name()
                    )),
                }
            }
        }
    }
}

/// Parse a role map from configuration (identity URI → role); `field`
/// names it in errors.
pub fn parse_roles(
    field: &str,
    m: &BTreeMap<String, Role>,
) -> Result<BTreeMap<Identity, Role>, String> {
    m.iter()
        .map(|(k, r)| {
            Identity::parse(field, k)
                .map(|i| (i, *r))
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// In a handler of a member RPC: the caller (when TLS is on) must be
/// instance `id` itself.
pub fn require_instance(ext: &http::Extensions, id: &str) -> Result<(), evpn_model::Error> {
    match ext.get::<PeerInfo>() {
        None => Ok(()),
        Some(p) if p.identity == Identity::Instance(id.to_string()) => Ok(()),
        Some(p) => Err(evpn_model::Error::PermissionDenied(format!(
            "{} may not act as instance {}: its certificate names another identity",
            p.identity,
            evpn_model::validate::excerpt(id)
        ))),
    }
}

/// The tower layer that applies a [`Policy`] to every request of a TLS
/// server (the peer's identity comes from [`PeerInfo`]).
#[derive(Clone)]
pub struct AuthzLayer {
    policy: Arc<Policy>,
}

impl AuthzLayer {
    pub fn new(policy: Policy) -> Self {
        AuthzLayer {
            policy: Arc::new(policy),
        }
    }
}

impl<S> tower::Layer<S> for AuthzLayer {
    type Service = Authz<S>;
    fn layer(&self, inner: S) -> Authz<S> {
        Authz {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// See [`AuthzLayer`].
#[derive(Clone)]
pub struct Authz<S> {
    inner: S,
    policy: Arc<Policy>,
}

/// (`Evpnr`, `MoveGroupBVI`) from `/evpn.v1.Evpnr/MoveGroupBVI`.
fn split_path(path: &str) -> (&str, &str) {
    let mut it = path.trim_start_matches('/').splitn(2, '/');
    let svc = it.next().unwrap_or("");
    let method = it.next().unwrap_or("");
    (svc.rsplit('.').next().unwrap_or(svc), method)
}

impl<S, B> tower::Service<http::Request<B>> for Authz<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::Either<
        S::Future,
        std::future::Ready<Result<http::Response<tonic::body::Body>, S::Error>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (svc, method) = split_path(req.uri().path());
        let verdict = match req.extensions().get::<PeerInfo>() {
            Some(p) => self.policy.check(&p.identity, svc, method),
            None => Err("no client identity on this connection".to_string()),
        };
        match verdict {
            Ok(()) => futures::future::Either::Left(self.inner.call(req)),
            Err(why) => {
                tracing::warn!(rpc = %format!("{svc}.{method}"), reason = %why, "permission-denied");
                let s = tonic::Status::permission_denied(evpn_model::validate::truncate(
                    &why,
                    evpn_model::validate::ERROR_MAX_LEN,
                ));
                futures::future::Either::Right(std::future::ready(Ok(s.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: &str) -> Identity {
        Identity::User(n.into())
    }

    #[test]
    fn every_rpc_of_the_protocol_is_classified_on_purpose() {
        for (svc, proto) in [
            ("Evpnr", include_str!("../../../proto/evpn/v1/evpnr.proto")),
            ("Evpnd", include_str!("../../../proto/evpn/v1/evpnd.proto")),
        ] {
            for line in proto.lines() {
                let Some(rest) = line.trim().strip_prefix("rpc ") else {
                    continue;
                };
                let m = rest.split('(').next().unwrap().trim();
                let n = need(svc, m);
                // Deleting objects and removing members is admin's; an
                // address change is an operator's.
                let admin_by_design = (m.starts_with("Delete") && m != "DeleteGroupBVIAddress")
                    || m == "RemoveGroupMember";
                assert_eq!(
                    n == Need::Role(Role::Admin),
                    admin_by_design,
                    "{svc}.{m} is {n:?}: classify it in authz::need"
                );
            }
        }
    }

    #[test]
    fn roles_registry_and_members() {
        let mut p = Policy::default();
        p.roles.insert(user("val"), Role::Viewer);
        p.roles.insert(user("olga"), Role::Operator);
        p.roles.insert(user("ada"), Role::Admin);
        assert!(p.check(&user("val"), "Evpnr", "ListGroups").is_ok());
        let e = p.check(&user("val"), "Evpnr", "MoveGroupBVI").unwrap_err();
        assert!(e.contains("needs role operator, has viewer"), "{e}");
        assert!(p.check(&user("olga"), "Evpnr", "MoveGroupBVI").is_ok());
        let e = p
            .check(&user("olga"), "Evpnr", "DeleteInstance")
            .unwrap_err();
        assert!(e.contains("needs role admin, has operator"), "{e}");
        assert!(p.check(&user("ada"), "Evpnr", "DeleteGroup").is_ok());
        let e = p.check(&user("nobody"), "Evpnr", "ListGroups").unwrap_err();
        assert!(e.contains("not in the role map"), "{e}");
        // Member RPCs: instances only (the handler checks which one).
        assert!(
            p.check(&Identity::Instance("r1".into()), "Evpnr", "Heartbeat")
                .is_ok()
        );
        assert!(p.check(&user("ada"), "Evpnr", "RegisterInstance").is_err());
        assert!(
            p.check(&Identity::Instance("r1".into()), "Evpnr", "ListGroups")
                .is_err()
        );
        // A managed evpnd: writes from the registry only.
        p.writes_from_registry_only = true;
        assert!(
            p.check(&Identity::Registry("evpnr".into()), "Evpnd", "BindGroupBVI")
                .is_ok()
        );
        let e = p.check(&user("ada"), "Evpnd", "DeleteBVI").unwrap_err();
        assert!(e.contains("managed by a registry"), "{e}");
        assert!(p.check(&user("val"), "Evpnd", "GetBVI").is_ok());
        assert!(
            p.check(&Identity::Instance("r2".into()), "Evpnd", "BindGroupBVI")
                .is_err()
        );
        // Health and reflection: any authenticated peer.
        assert!(p.check(&user("nobody"), "Health", "Check").is_ok());
    }

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/evpn.v1.Evpnr/MoveGroupBVI"),
            ("Evpnr", "MoveGroupBVI")
        );
        assert_eq!(
            split_path("/grpc.health.v1.Health/Check"),
            ("Health", "Check")
        );
    }
}
