//! Who may call what, when a daemon serves mutual TLS (docs/security.md).
//! The one table of every RPC's requirement ([`need`]), the role map of
//! the configuration, and a tower layer that refuses a call before it
//! reaches the service, with `PERMISSION_DENIED` naming the identity and
//! what it would need. Without TLS nothing is checked (loopback only).
//!
//! A trusted front-end (an identity listed in `tls.front-ends`) may act on
//! behalf of a person: it sends the header [`ON_BEHALF_OF`] with the
//! person's identity URI (`evpn://user/<name>`); the call then has the lower
//! of the two roles, and the audit log names both.
use std::{
    collections::{BTreeMap, BTreeSet},
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
    if is_read(method) {
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
            | "ReleaseGroupBVI"
            | "PrepareGroupBVI",
        ) => Need::Role(Operator),
        _ => Need::Role(Admin),
    }
}

/// The metadata header a trusted front-end sends to act on behalf of a
/// person: the person's identity URI (`evpn://user/<name>`).
pub const ON_BEHALF_OF: &str = "evpn-on-behalf-of";

/// Who makes a call: the certificate's identity and, when a front-end acts
/// for a person, that person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub identity: Identity,
    pub on_behalf_of: Option<Identity>,
}

impl Caller {
    /// A caller acting for itself.
    pub fn direct(identity: Identity) -> Caller {
        Caller {
            identity,
            on_behalf_of: None,
        }
    }
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.on_behalf_of {
            None => write!(f, "{}", self.identity),
            Some(u) => write!(f, "{} on behalf of {u}", self.identity),
        }
    }
}

/// Read the [`ON_BEHALF_OF`] header: `None` when absent, else the user it
/// names, or why it is malformed (never echoing more than a short prefix).
pub fn on_behalf_of(headers: &http::HeaderMap) -> Option<Result<Identity, String>> {
    let v = headers.get(ON_BEHALF_OF)?;
    let Ok(text) = v.to_str() else {
        return Some(Err(format!("{ON_BEHALF_OF}: not ASCII")));
    };
    Some(match Identity::parse(ON_BEHALF_OF, text) {
        Ok(u @ Identity::User(_)) => Ok(u),
        Ok(other) => Err(format!(
            "{ON_BEHALF_OF}: {other} is not a user (evpn://user/<name>)"
        )),
        Err(e) => Err(e.to_string()),
    })
}

fn is_read(method: &str) -> bool {
    method.starts_with("List") || method.starts_with("Get") || method == "WatchEvents"
}

/// Whether a call goes into the audit log (`crate::audit`): every RPC of
/// `Evpnr` and `Evpnd` that [`need`] does not classify as a read, except a
/// member's liveness reports (`Heartbeat`, `ReportReady`), which are not
/// operators' writes, and a bind's preparation (`PrepareGroupBVI`: a read
/// made ahead for the bind, it changes nothing; the bind is recorded).
/// `RegisterInstance` is recorded.
pub fn audited(service: &str, method: &str) -> bool {
    matches!(service, "Evpnr" | "Evpnd")
        && !is_read(method)
        && !matches!(method, "Heartbeat" | "ReportReady" | "PrepareGroupBVI")
}

/// Whom a server accepts calls from.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Operators' roles, by identity.
    pub roles: BTreeMap<Identity, Role>,
    /// Trusted front-ends: identities that may act on behalf of a user
    /// (header [`ON_BEHALF_OF`]), capped by their own role.
    pub front_ends: BTreeSet<Identity>,
    /// An evpnd with a registry: every call that is not a read must come
    /// from a registry identity (evpnr orchestrates; operators use evpnc).
    pub writes_from_registry_only: bool,
}

impl Policy {
    /// The caller of a request from `peer` with `headers`: an
    /// [`ON_BEHALF_OF`] header is honoured only from a configured
    /// front-end; from anyone else it is refused (the error says why).
    pub fn caller(&self, peer: &Identity, headers: &http::HeaderMap) -> Result<Caller, String> {
        match on_behalf_of(headers) {
            None => Ok(Caller::direct(peer.clone())),
            Some(Err(why)) => Err(format!("{peer}: {why}")),
            Some(Ok(_)) if !self.front_ends.contains(peer) => Err(format!(
                "{peer} may not act on behalf of another user ({ON_BEHALF_OF}): it is not a \
                 trusted front-end (tls.front-ends)"
            )),
            Some(Ok(user)) => Ok(Caller {
                identity: peer.clone(),
                on_behalf_of: Some(user),
            }),
        }
    }

    /// The caller's role in the role map: for a front-end acting on behalf
    /// of a user, the lower of the two (none if either has none).
    pub fn role(&self, c: &Caller) -> Option<Role> {
        let own = self.roles.get(&c.identity).copied()?;
        match &c.on_behalf_of {
            None => Some(own),
            Some(u) => self.roles.get(u).map(|r| own.min(*r)),
        }
    }

    /// Whether `who` may call `method` of `service`; the error names the
    /// caller, the RPC and what it would need.
    pub fn check(&self, who: &Caller, service: &str, method: &str) -> Result<(), String> {
        let n = need(service, method);
        let role = self.role(who);
        let denied = |what: String| Err(format!("{who} may not call {service}.{method}: {what}"));
        if service != "Evpnr" && service != "Evpnd" {
            // Health and reflection: any authenticated peer.
            return Ok(());
        }
        let direct = who.on_behalf_of.is_none();
        match n {
            Need::Member => match &who.identity {
                Identity::Instance(_) if direct => Ok(()),
                _ => denied("only an evpnd (evpn://instance/<id>) may".into()),
            },
            Need::Role(r) => {
                if direct && matches!(who.identity, Identity::Registry(_)) && service == "Evpnd" {
                    return Ok(());
                }
                if self.writes_from_registry_only && r > Role::Viewer {
                    return denied(
                        "this evpnd is managed by a registry: changes come only from evpnr (evpn://registry/…)"
                            .into(),
                    );
                }
                let whose = if direct {
                    ""
                } else {
                    " (the lower of the front-end's and the user's)"
                };
                match role {
                    Some(have) if have >= r => Ok(()),
                    Some(have) => denied(format!(
                        "needs role {}, has {}{whose}",
                        r.name(),
                        have.name()
                    )),
                    None => denied(format!(
                        "needs role {}, has none (not in the role map){whose}",
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

/// Parse the trusted front-ends of the configuration (identity URIs; each
/// must be a user and in the role map is its cap); `field` names them in
/// errors.
pub fn parse_front_ends(field: &str, v: &[String]) -> Result<BTreeSet<Identity>, String> {
    v.iter()
        .map(|k| match Identity::parse(field, k) {
            Ok(u @ Identity::User(_)) => Ok(u),
            Ok(other) => Err(format!("{other} is not a user (evpn://user/<name>)")),
            Err(e) => Err(e.to_string()),
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
pub fn split_path(path: &str) -> (&str, &str) {
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
            Some(p) => self
                .policy
                .caller(&p.identity, req.headers())
                .and_then(|c| self.policy.check(&c, svc, method)),
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

    fn front(user_uri: Option<&str>) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        if let Some(u) = user_uri {
            h.insert(ON_BEHALF_OF, u.parse().unwrap());
        }
        h
    }

    fn policy() -> Policy {
        let mut p = Policy::default();
        p.roles.insert(user("val"), Role::Viewer);
        p.roles.insert(user("olga"), Role::Operator);
        p.roles.insert(user("ada"), Role::Admin);
        p.roles.insert(user("dash"), Role::Operator);
        p.roles.insert(user("viewdash"), Role::Viewer);
        p.front_ends.insert(user("dash"));
        p.front_ends.insert(user("viewdash"));
        p
    }

    /// (caller, on-behalf-of header, service, method, managed evpnd,
    /// Ok or a part of the refusal).
    type Row = (
        Identity,
        Option<&'static str>,
        &'static str,
        &'static str,
        bool,
        Result<(), &'static str>,
    );

    #[test]
    fn roles_registry_members_and_front_ends() {
        let inst = |n: &str| Identity::Instance(n.into());
        let reg = Identity::Registry("evpnr".into());
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            (user("val"), None, "Evpnr", "ListGroups", false, Ok(())),
            (user("val"), None, "Evpnr", "MoveGroupBVI", false, Err("needs role operator, has viewer")),
            (user("olga"), None, "Evpnr", "MoveGroupBVI", false, Ok(())),
            (user("olga"), None, "Evpnr", "DeleteInstance", false, Err("needs role admin, has operator")),
            (user("ada"), None, "Evpnr", "DeleteGroup", false, Ok(())),
            (user("nobody"), None, "Evpnr", "ListGroups", false, Err("not in the role map")),
            // Member RPCs: instances only (the handler checks which one).
            (inst("r1"), None, "Evpnr", "Heartbeat", false, Ok(())),
            (user("ada"), None, "Evpnr", "RegisterInstance", false, Err("only an evpnd")),
            (inst("r1"), None, "Evpnr", "ListGroups", false, Err("not in the role map")),
            // A managed evpnd: writes from the registry only.
            (reg.clone(), None, "Evpnd", "BindGroupBVI", true, Ok(())),
            (user("ada"), None, "Evpnd", "DeleteBVI", true, Err("managed by a registry")),
            (user("val"), None, "Evpnd", "GetBVI", true, Ok(())),
            (inst("r2"), None, "Evpnd", "BindGroupBVI", true, Err("managed by a registry")),
            (reg.clone(), None, "Evpnd", "PrepareGroupBVI", true, Ok(())),
            (user("val"), None, "Evpnd", "PrepareGroupBVI", true, Err("managed by a registry")),
            (user("val"), None, "Evpnd", "PrepareGroupBVI", false, Err("needs role operator, has viewer")),
            // Health and reflection: any authenticated peer.
            (user("nobody"), None, "Health", "Check", false, Ok(())),
            // A front-end acting for a user: the lower of the two roles.
            (user("dash"), Some("evpn://user/val"), "Evpnr", "ListGroups", false, Ok(())),
            (user("dash"), Some("evpn://user/val"), "Evpnr", "MoveGroupBVI", false,
                Err("evpn://user/dash on behalf of evpn://user/val may not call Evpnr.MoveGroupBVI: needs role operator, has viewer (the lower")),
            (user("dash"), Some("evpn://user/ada"), "Evpnr", "MoveGroupBVI", false, Ok(())),
            (user("dash"), Some("evpn://user/ada"), "Evpnr", "DeleteGroup", false, Err("needs role admin, has operator")),
            (user("viewdash"), Some("evpn://user/ada"), "Evpnr", "MoveGroupBVI", false, Err("has viewer")),
            (user("dash"), Some("evpn://user/nobody"), "Evpnr", "ListGroups", false, Err("has none")),
            // Not a front-end, or not a user: refused whatever the roles.
            (user("ada"), Some("evpn://user/val"), "Evpnr", "ListGroups", false, Err("not a trusted front-end (tls.front-ends)")),
            (user("dash"), Some("evpn://registry/evpnr"), "Evpnr", "ListGroups", false, Err("is not a user")),
            (user("dash"), Some("alice"), "Evpnr", "ListGroups", false, Err("evpn-on-behalf-of")),
            // On behalf of someone is never a member or the registry.
            (reg, Some("evpn://user/ada"), "Evpnd", "BindGroupBVI", false, Err("not a trusted front-end")),
        ];
        for (who, obo, svc, m, managed, want) in rows {
            let mut p = policy();
            p.writes_from_registry_only = managed;
            let got = p
                .caller(&who, &front(obo))
                .and_then(|c| p.check(&c, svc, m));
            match (want, got) {
                (Ok(()), Ok(())) => {}
                (Err(part), Err(e)) => assert!(e.contains(part), "{who} {obo:?} {svc}.{m}: {e}"),
                (w, g) => panic!("{who} {obo:?} {svc}.{m}: want {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn audited_calls_are_the_writes_but_member_liveness() {
        for (svc, m, want) in [
            ("Evpnr", "MoveGroupBVI", true),
            ("Evpnr", "RegisterInstance", true),
            ("Evpnr", "DeleteInstance", true),
            ("Evpnr", "Heartbeat", false),
            ("Evpnr", "ReportReady", false),
            ("Evpnr", "ListGroups", false),
            ("Evpnr", "WatchEvents", false),
            ("Evpnd", "BindGroupBVI", true),
            ("Evpnd", "PrepareGroupBVI", false),
            ("Evpnd", "GetMacAnnouncers", false),
            ("Health", "Check", false),
        ] {
            assert_eq!(audited(svc, m), want, "{svc}.{m}");
        }
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
