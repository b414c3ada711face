//! Where calls are recorded: [`AuditLayer`] on every daemon's gRPC server
//! (outside authorization, so refusals are seen too) and
//! [`AuditedChannel`] under evpnr's member clients. Both record only the
//! calls [`crate::authz::audited`] names, with their key fields
//! ([`super::fields`]); the server's record of an accepted write is on disk
//! before the answer is handed back.
use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use evpn_tls::PeerInfo;
use tonic::body::Body;

use super::{AuditLog, Direction, REQUEST_ID, Record, code_name, new_id, now};
use crate::authz::{Policy, audited, split_path};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Largest request body read for its key fields (the servers refuse larger
/// ones anyway).
const BODY_MAX: usize = evpn_model::REQUEST_MAX_BYTES + 5;

/// The request being served, for the calls it causes (task-local while the
/// handler runs).
#[derive(Debug, Clone)]
struct Cause {
    id: String,
    who: String,
    on_behalf_of: Option<String>,
    /// A decision of the daemon's own ([`on_own`]): what its calls came to.
    tally: Option<Arc<Mutex<Tally>>>,
}

/// The audited calls one decision made.
#[derive(Debug, Default)]
struct Tally {
    calls: usize,
    /// Every failed call, in order.
    failed: Vec<FailedCall>,
    /// The decision's record is written: a call of it that ends later (a
    /// takeover's late release, F14) is written and fsynced by itself.
    written: bool,
}

/// A failed call of a decision, as its record's `failed-calls` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCall {
    /// The call's step: its method in kebab case without `-group-bvi`
    /// ([`step_of`]): `release`, `bind`, `create-evpn-instance`.
    pub step: String,
    /// The member called (empty if unknown).
    pub target: String,
    /// Its result: the gRPC code (`UNAVAILABLE`).
    pub code: String,
}

impl std::fmt::Display for FailedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.target.is_empty() {
            true => write!(f, "{} {}", self.step, self.code),
            false => write!(f, "{} {} {}", self.step, self.target, self.code),
        }
    }
}

/// The step an audited call is in a decision's record: `Evpnd.BindGroupBVI`
/// → `bind`, `Evpnd.ReleaseGroupBVI` → `release`, `Evpnd.CreateBVI` →
/// `create-bvi`.
pub fn step_of(rpc: &str) -> String {
    let method = rpc.rsplit_once('.').map_or(rpc, |(_, m)| m);
    let mut out = String::new();
    let mut prev_upper = true;
    let chars: Vec<char> = method.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
        if c.is_ascii_uppercase() && i > 0 && (!prev_upper || next_lower) {
            out.push('-');
        }
        prev_upper = c.is_ascii_uppercase();
        out.push(c.to_ascii_lowercase());
    }
    out.strip_suffix("-group-bvi")
        .map(str::to_string)
        .unwrap_or(out)
}

/// At most this many failed calls are named in a decision's record (then
/// "… and n more").
const FAILED_CALLS_MAX: usize = 8;

/// A decision's `result`, `error` and `failed-calls` (the one mapping):
/// `outcome` is what the decision came to — `Ok` when it reached its aim
/// (a failover: the new primary bound; a resync: the member converged),
/// else its code and message. A failed decision's result is
/// `<step>: <CODE>`, the step being the last failed call with the
/// decision's code, or the decision itself (`cause`, e.g. `failover` when
/// the rules refused it) if no call failed so. Every failed call is listed,
/// also when the decision reached its aim.
pub fn decision_result(
    cause: &str,
    outcome: &Result<(), (tonic::Code, String)>,
    failed: &[FailedCall],
) -> (String, Option<String>, Vec<String>) {
    let mut listed: Vec<String> = failed
        .iter()
        .take(FAILED_CALLS_MAX)
        .map(|c| evpn_model::validate::truncate(&c.to_string(), 96))
        .collect();
    if failed.len() > FAILED_CALLS_MAX {
        listed.push(format!("… and {} more", failed.len() - FAILED_CALLS_MAX));
    }
    match outcome {
        Ok(()) => ("ok".into(), None, listed),
        Err((code, msg)) => {
            let code = code_name(*code);
            let step = failed
                .iter()
                .rfind(|c| c.code == code)
                .map_or(cause, |c| c.step.as_str());
            (
                format!("{step}: {code}"),
                Some(evpn_model::validate::truncate(msg, 256)),
                listed,
            )
        }
    }
}

/// Run `f`, a decision this daemon makes on its own (no request caused it:
/// evpnr's failover moves and resyncs), as the cause of the member calls it
/// makes: each is recorded (`out`) with `on-behalf-of` = `<daemon>:<cause>`
/// ([`super::own_cause`]) and `parent` = the decision's ID. Once `f` is
/// done the decision itself is recorded — direction `decision`, `rpc` =
/// `<daemon>:<cause>`, `fields`, `result` from `outcome` (what `f`'s output
/// says the decision came to) and the failed calls ([`decision_result`]) —
/// and fsynced, which makes its calls' records durable too (as an
/// operator's `in` record does for the calls of its request). A call of the
/// decision that ends after that (run on in a task of its own with
/// [`keep_cause`]) is recorded under it and fsynced by itself. A decision
/// that made no audited call (a resync with nothing to change) writes
/// nothing. While a request is being served (its cause is set), `f` keeps
/// that cause. Without an installed log it only runs `f`.
pub async fn on_own<F: Future>(
    cause: &str,
    fields: &[(&str, &str)],
    f: F,
    outcome: impl FnOnce(&F::Output) -> Result<(), tonic::Status>,
) -> F::Output {
    let log = match super::installed() {
        Some(l) if CAUSE.try_with(|_| ()).is_err() => l,
        _ => return f.await,
    };
    let reason = super::own_cause(log.daemon(), cause);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let rec = Record {
        ts: String::new(),
        daemon: log.daemon().to_string(),
        id: new_id(),
        direction: Direction::Decision,
        who: log.own().to_string(),
        role: None,
        on_behalf_of: Some(reason.clone()),
        peer: None,
        target: None,
        parent: None,
        rpc: reason.clone(),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), evpn_model::validate::truncate(v, 64)))
            .collect(),
        result: String::new(),
        error: None,
        failed_calls: Vec::new(),
    };
    let c = Cause {
        id: rec.id.clone(),
        who: rec.who.clone(),
        on_behalf_of: Some(reason),
        tally: Some(tally.clone()),
    };
    let mut decided = Decided {
        log,
        cause: cause.to_string(),
        rec: Some(rec),
        tally,
    };
    let out = CAUSE.scope(c, f).await;
    let o = outcome(&out).map_err(|s| (s.code(), s.message().to_string()));
    if let Some((log, rec)) = decided.take(o)
        && let Err(e) = log.append(rec).await
    {
        tracing::error!(error = %e, "audit-record-lost");
    }
    out
}

/// The record of a decision of the daemon's own ([`on_own`]), written when
/// it is done — also when it is dropped half-way (shutdown), from a task of
/// its own, so the records of the calls it made are linked and synced.
struct Decided {
    log: Arc<AuditLog>,
    cause: String,
    rec: Option<Record>,
    tally: Arc<Mutex<Tally>>,
}

impl Decided {
    /// The record to write, if the decision made any audited call; from
    /// now on its calls are recorded durably by themselves.
    fn take(
        &mut self,
        outcome: Result<(), (tonic::Code, String)>,
    ) -> Option<(Arc<AuditLog>, Record)> {
        let mut rec = self.rec.take()?;
        let mut t = self.tally.lock().unwrap_or_else(|p| p.into_inner());
        t.written = true;
        if t.calls == 0 {
            return None;
        }
        rec.ts = now();
        (rec.result, rec.error, rec.failed_calls) =
            decision_result(&self.cause, &outcome, &t.failed);
        Some((self.log.clone(), rec))
    }
}

impl Drop for Decided {
    fn drop(&mut self) {
        let stopped = Err((
            tonic::Code::Cancelled,
            "stopped before the decision was done".to_string(),
        ));
        if let Some((log, rec)) = self.take(stopped)
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            drop(rt.spawn(async move { log.append(rec).await }));
        }
    }
}

tokio::task_local! {
    static CAUSE: Cause;
}

/// `f` with the audit context of the request being served (if any), kept
/// wherever `f` is polled later (e.g. a write handed to a task of its own
/// by `crate::detach`).
pub fn keep_cause<F: Future>(f: F) -> impl Future<Output = F::Output> {
    let cause = CAUSE.try_with(|c| c.clone()).ok();
    async move {
        match cause {
            Some(c) => CAUSE.scope(c, f).await,
            None => f.await,
        }
    }
}

/// Records every audited call a server answers (see the module docs).
#[derive(Clone)]
pub struct AuditLayer {
    log: Arc<AuditLog>,
    policy: Option<Arc<Policy>>,
}

impl AuditLayer {
    /// `policy`: the server's authorization (TLS on), for the caller's
    /// role and on-behalf-of user.
    pub fn new(log: Arc<AuditLog>, policy: Option<Policy>) -> Self {
        AuditLayer {
            log,
            policy: policy.map(Arc::new),
        }
    }
}

impl<S> tower::Layer<S> for AuditLayer {
    type Service = Audited<S>;
    fn layer(&self, inner: S) -> Audited<S> {
        Audited {
            inner,
            log: self.log.clone(),
            policy: self.policy.clone(),
        }
    }
}

/// See [`AuditLayer`].
#[derive(Clone)]
pub struct Audited<S> {
    inner: S,
    log: Arc<AuditLog>,
    policy: Option<Arc<Policy>>,
}

/// The gRPC result of a response's headers: `ok` unless they carry a
/// status (a trailers-only answer: every error of a unary call).
fn result_of(headers: &http::HeaderMap) -> (String, Option<String>) {
    match tonic::Status::from_header_map(headers) {
        Some(s) if s.code() != tonic::Code::Ok => (
            code_name(s.code()),
            Some(evpn_model::validate::truncate(s.message(), 256)),
        ),
        _ => ("ok".into(), None),
    }
}

/// Who called, as the record says: identity (or `none`), role,
/// on-behalf-of user, peer address.
fn caller(
    parts: &http::request::Parts,
    policy: Option<&Policy>,
) -> (String, Option<String>, Option<String>, Option<String>) {
    let obo = crate::authz::on_behalf_of(&parts.headers).map(|r| match r {
        Ok(u) => u.to_string(),
        Err(_) => "(malformed)".to_string(),
    });
    match parts.extensions.get::<PeerInfo>() {
        Some(p) => {
            let role = policy.and_then(|pol| {
                let c = pol
                    .caller(&p.identity, &parts.headers)
                    .unwrap_or_else(|_| crate::authz::Caller::direct(p.identity.clone()));
                pol.role(&c)
            });
            (
                p.identity.to_string(),
                role.map(|r| r.name().to_string()),
                obo,
                Some(p.addr.to_string()),
            )
        }
        None => {
            let peer = parts
                .extensions
                .get::<tonic::transport::server::TcpConnectInfo>()
                .and_then(|i| i.remote_addr())
                .map(|a| a.to_string());
            ("none".into(), None, obo, peer)
        }
    }
}

/// A request ID a caller sent ([`REQUEST_ID`]), if it is one (short,
/// alphanumeric).
fn parent_id(headers: &http::HeaderMap) -> Option<String> {
    let v = headers.get(REQUEST_ID)?.to_str().ok()?;
    (!v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then(|| v.to_string())
}

fn status_response(s: tonic::Status) -> http::Response<Body> {
    s.into_http::<Body>()
}

impl<S> tower::Service<http::Request<Body>> for Audited<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let (svc, method) = split_path(req.uri().path());
        if !audited(svc, method) {
            return Box::pin(self.inner.call(req));
        }
        let rpc = format!("{svc}.{method}");
        let (svc, method) = (svc.to_string(), method.to_string());
        // The service that was made ready serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (log, policy) = (self.log.clone(), self.policy.clone());
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let (who, role, on_behalf_of, peer) = caller(&parts, policy.as_deref());
            let mut rec = Record {
                ts: String::new(),
                daemon: log.daemon().to_string(),
                id: new_id(),
                direction: Direction::In,
                who,
                role,
                on_behalf_of,
                peer,
                target: None,
                parent: parent_id(&parts.headers),
                rpc,
                fields: Default::default(),
                result: String::new(),
                error: None,
                failed_calls: Vec::new(),
            };
            let refuse = |rec: &mut Record, s: tonic::Status| {
                rec.ts = now();
                rec.result = code_name(s.code());
                rec.error = Some(evpn_model::validate::truncate(s.message(), 256));
                s
            };
            let bytes = match axum::body::to_bytes(axum::body::Body::new(body), BODY_MAX).await {
                Ok(b) => b,
                Err(e) => {
                    // Above the limit: what tonic's decoding limit says
                    // (`OUT_OF_RANGE`), as without the audit layer.
                    let too_big = std::error::Error::source(&e)
                        .is_some_and(|s| s.to_string().contains("length limit"))
                        || e.to_string().contains("length limit");
                    let s = refuse(
                        &mut rec,
                        if too_big {
                            tonic::Status::out_of_range(format!(
                                "request larger than the {}-byte limit",
                                evpn_model::REQUEST_MAX_BYTES
                            ))
                        } else {
                            tonic::Status::invalid_argument(format!("request body: {e}"))
                        },
                    );
                    let _ = log.append(rec).await;
                    return Ok(status_response(s));
                }
            };
            rec.fields = super::fields::key_fields(&svc, &method, &bytes);
            // Fail closed: while the log takes no records, no write is run.
            if let Some(err) = log.failing() {
                let s = refuse(
                    &mut rec,
                    tonic::Status::unavailable(format!(
                        "the audit log cannot be written ({err}): changes are refused until it can"
                    )),
                );
                // Recorded if the log takes records again; the next call
                // then goes through.
                let _ = log.append(rec).await;
                return Ok(status_response(s));
            }
            let req = http::Request::from_parts(parts, Body::new(axum::body::Body::from(bytes)));
            let cause = Cause {
                id: rec.id.clone(),
                who: rec.who.clone(),
                on_behalf_of: rec.on_behalf_of.clone(),
                tally: None,
            };
            let mut pending = Pending {
                log: log.clone(),
                rec: Some(rec),
            };
            let resp = CAUSE.scope(cause, inner.call(req)).await?;
            let mut rec = pending.rec.take().expect("answered once");
            rec.ts = now();
            (rec.result, rec.error) = result_of(resp.headers());
            let accepted = rec.result == "ok";
            match log.append(rec).await {
                Ok(()) => Ok(resp),
                Err(e) if accepted => Ok(status_response(tonic::Status::unavailable(format!(
                    "the change was made but its audit record could not be written ({e}); \
                     further changes are refused until the audit log can be written"
                )))),
                Err(_) => Ok(resp),
            }
        })
    }
}

/// The record of a call whose answer never came: tonic dropped the handler
/// (the client went away or its deadline passed). Written from a task of
/// its own with the result `CANCELLED`; a write still runs to its end
/// (`crate::detach`).
struct Pending {
    log: Arc<AuditLog>,
    rec: Option<Record>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some(mut rec) = self.rec.take() else {
            return;
        };
        rec.ts = now();
        rec.result = code_name(tonic::Code::Cancelled);
        rec.error = Some(
            "the caller went away before the answer; a change runs to its end (see the events)"
                .into(),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let log = self.log.clone();
            drop(rt.spawn(async move { log.append(rec).await }));
        }
    }
}

/// Under a member client of evpnr: records every audited call it makes
/// (direction `out`, `parent` = the operator's request or evpnr's own
/// decision ([`on_own`]) that caused it) and sends the record's ID as [`REQUEST_ID`], so the member's record
/// of the same call names it. Without an installed log
/// ([`super::install`]) it only passes calls through.
#[derive(Clone, Debug)]
pub struct AuditedChannel<S = tonic::transport::Channel> {
    inner: S,
}

impl<S> AuditedChannel<S> {
    pub fn new(inner: S) -> Self {
        AuditedChannel { inner }
    }
}

impl<S> tower::Service<http::Request<Body>> for AuditedChannel<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let (svc, method) = split_path(req.uri().path());
        let log = match super::installed() {
            Some(l) if audited(svc, method) => l,
            _ => return Box::pin(self.inner.call(req)),
        };
        let rpc = format!("{svc}.{method}");
        let (svc, method) = (svc.to_string(), method.to_string());
        let cause = CAUSE.try_with(|c| c.clone()).ok();
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(axum::body::Body::new(body), BODY_MAX)
                .await
                .unwrap_or_default();
            let id = new_id();
            if let Ok(v) = http::HeaderValue::from_str(&id) {
                parts.headers.insert(REQUEST_ID, v);
            }
            let target = parts
                .headers
                .get(crate::identity::INSTANCE_KEY)
                .and_then(|v| v.to_str().ok())
                .map(|s| evpn_model::validate::truncate(s, 64));
            let fields = super::fields::key_fields(&svc, &method, &bytes);
            let req = http::Request::from_parts(parts, Body::new(axum::body::Body::from(bytes)));
            let r = inner.call(req).await;
            let (result, error) = match &r {
                Ok(resp) => result_of(resp.headers()),
                Err(e) => (
                    "UNAVAILABLE".to_string(),
                    Some(evpn_model::validate::truncate(&e.to_string(), 256)),
                ),
            };
            let rec = Record {
                ts: now(),
                daemon: log.daemon().to_string(),
                id,
                direction: Direction::Out,
                who: log.own().to_string(),
                role: None,
                on_behalf_of: cause
                    .as_ref()
                    .map(|c| c.on_behalf_of.clone().unwrap_or_else(|| c.who.clone())),
                peer: None,
                target,
                parent: cause.as_ref().map(|c| c.id.clone()),
                rpc,
                fields,
                result,
                error,
                failed_calls: Vec::new(),
            };
            // Under the tally's lock: the decision's record, if not
            // written yet, is written after this one is queued (its fsync
            // covers it); if written, nothing but this record's own write
            // syncs it.
            let late = match cause.as_ref().and_then(|c| c.tally.as_ref()) {
                Some(t) => {
                    let mut t = t.lock().unwrap_or_else(|p| p.into_inner());
                    if t.written {
                        Some(rec)
                    } else {
                        t.calls += 1;
                        if rec.result != "ok" {
                            t.failed.push(FailedCall {
                                step: step_of(&rec.rpc),
                                target: rec.target.clone().unwrap_or_default(),
                                code: rec.result.clone(),
                            });
                        }
                        log.append_deferred(rec);
                        None
                    }
                }
                None => {
                    log.append_deferred(rec);
                    None
                }
            };
            if let Some(rec) = late
                && let Err(e) = log.append(rec).await
            {
                tracing::error!(error = %e, "audit-record-lost");
            }
            r
        })
    }
}
