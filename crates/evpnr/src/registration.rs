//! RegisterInstance: who may register as which instance. A known ID moves
//! to another address only when the old address is provably gone (it
//! refuses connections, or another instance answers there) or with `force`;
//! a member that has accepted a newer registry epoch than ours is told that
//! this registry is stale. Whether the evpnd at the address *is* the
//! instance is checked when it is dialled (`members.rs`).
use std::{sync::Arc, time::SystemTime};

use evpn_daemon::events::Event;
use evpn_model::Error;

use crate::{
    model::Member,
    registry::{Conn, Registry},
};

/// What a RegisterInstance asks for (validated at the edge).
pub struct Registration<'a> {
    pub id: &'a str,
    pub addr: &'a str,
    pub version: &'a str,
    pub ready: bool,
    pub force: bool,
    /// The highest registry epoch the member has accepted.
    pub member_epoch: u64,
}

impl Registry {
    /// RegisterInstance: store (or update) the member, dial it, watch its
    /// events; a resync follows once it is connected, has proved its
    /// identity and is ready. Returns (registered_at, new_instance).
    ///
    /// A known ID registering from another address is refused unless the
    /// old address is provably gone (`old_address_gone`) or `force` is set.
    pub async fn register(
        self: &Arc<Self>,
        r: Registration<'_>,
    ) -> Result<(SystemTime, bool), Error> {
        let Registration {
            id,
            addr,
            version,
            ready,
            force,
            member_epoch,
        } = r;
        let now = SystemTime::now();
        evpn_model::validate_host_port("grpc_address", addr)?;
        let epoch = self.epoch();
        if member_epoch > epoch {
            self.emit(
                Event::RegistryEpochStale,
                &[
                    ("instance", id),
                    ("registry_epoch", &epoch.to_string()),
                    ("member_epoch", &member_epoch.to_string()),
                ],
            );
            return Err(Error::FailedPrecondition(format!(
                "this registry's epoch {epoch} is older than epoch {member_epoch}, which \
                 instance {id} has already accepted: this registry is stale (another, newer \
                 evpnr ran since); see docs/runbook.md"
            )));
        }
        let old_addr = self.read(|i| i.state.members.get(id).map(|m| m.grpc_address.clone()));
        if let Some(old) = old_addr.filter(|o| o != addr) {
            match self.old_address_gone(id, &old).await {
                Ok(why) => {
                    tracing::info!(instance = id, old = %old, new = %addr, why, "instance-address-changed")
                }
                Err(why) if force => {
                    self.emit(
                        Event::InstanceRegistrationForced,
                        &[
                            ("instance", id),
                            ("old_address", &old),
                            ("address", addr),
                            ("reason", &why),
                        ],
                    );
                }
                Err(why) => {
                    self.emit(
                        Event::InstanceRegistrationRefused,
                        &[
                            ("instance", id),
                            ("old_address", &old),
                            ("address", addr),
                            ("reason", &why),
                        ],
                    );
                    return Err(Error::FailedPrecondition(format!(
                        "instance {id} is registered at {old}, and {why}; refusing to move it \
                         to {addr} (if the old host is dead, register with force)"
                    )));
                }
            }
        }
        let (new, changed) = self.mutate(|s| {
            let old = s.members.get(id).cloned();
            let m = Member {
                id: id.to_string(),
                grpc_address: addr.to_string(),
                version: version.to_string(),
                registered_at: old.as_ref().map_or(now, |o| o.registered_at),
            };
            let changed = old.as_ref() != Some(&m);
            s.members.insert(id.to_string(), m);
            Ok((old.is_none(), changed))
        })?;
        let same_addr = !new && !changed;
        let alive = self.read(|i| i.rt.contains_key(id));
        if same_addr && alive {
            // A repeated registration at the same address: the evpnd
            // restarted, or lost its heartbeat stream. When evpnr's
            // connection to it is not up, or its heartbeats had stopped
            // (suspect or dead: a restarted process registers before its
            // first heartbeat), it has just proved it is reachable again, so
            // dial it again at once: the connection evpnr has may be dead
            // without knowing it (a killed process's host sent no FIN), or
            // its watcher may be waiting out a dial that a partition left
            // hanging or a back-off — which left a restarted member unusable
            // for up to `member-timeout`. A live member re-registering on a
            // loaded host keeps its connection.
            self.with_rt(id, |rt| rt.ready = ready);
            let up = self.conn(id).is_some_and(|(c, _)| c == Conn::Connected);
            if !up || self.liveness(id).1.unresponsive() {
                self.redial_now(id);
            }
            if ready {
                self.trigger_resync(id);
            }
            return Ok((now, false));
        }
        self.attach(id, addr, ready)?;
        let (n, r) = (new.to_string(), ready.to_string());
        self.emit(
            Event::InstanceRegistered,
            &[
                ("instance", id),
                ("address", addr),
                ("new", &n),
                ("ready", &r),
                ("version", version),
            ],
        );
        Ok((now, new))
    }

    /// Whether member `id`'s old address is provably gone: Ok(why) when the
    /// connection is refused or another instance answers there; Err(why)
    /// when it still answers as `id` or does not answer in time (a timeout is
    /// not proof: the host may be hung or cut off and still hold the vMAC).
    async fn old_address_gone(&self, id: &str, old: &str) -> Result<&'static str, String> {
        let timeout = self.cfg().member_timeout.0;
        let probe = async {
            // Any CA-signed identity may answer there (another instance
            // at the old address is proof that `id` is gone).
            let ch = evpn_daemon::tls::connect(old, evpn_tls::Expect::Any, |e| {
                e.connect_timeout(timeout)
            })
            .await
            .map_err(|e| {
                let refused = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<std::io::Error>())
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
                    || format!("{e:?}").contains("ConnectionRefused");
                if refused {
                    tonic::Status::unavailable("refused")
                } else {
                    tonic::Status::deadline_exceeded(e.to_string())
                }
            })?;
            evpn_api::v1::evpnd_client::EvpndClient::new(ch)
                .get_instance(evpn_api::v1::InstanceRef::default())
                .await
                .map(|r| r.into_inner().instance_id)
        };
        match tokio::time::timeout(timeout, probe).await {
            Ok(Err(s)) if s.message() == "refused" => Ok("the old address refuses connections"),
            Ok(Ok(other)) if other != id => Ok("another instance answers at the old address"),
            Ok(Ok(_)) => Err(format!("it still answers there as {id}")),
            Ok(Err(s)) => Err(format!(
                "the old address did not answer ({}), which does not prove it is gone",
                s.message()
            )),
            Err(_) => Err(format!(
                "the old address did not answer within {timeout:?}, which does not prove it is gone"
            )),
        }
    }
}
