//! The VPP dataplane's connection: connect and check (message table,
//! linux-cp), the watcher that reconnects and asks for a reconcile, and the
//! client every call goes through.
use std::time::Duration;

use evpn_model::Error;
use vpp_api::{
    Client,
    msgs::{self, Message},
};

use super::{VppDataplane, map_err};
use crate::{config::LinuxCp, dataplane::DpInfo};

/// Messages evpnd cannot work without (name_crc, from the typed messages).
const REQUIRED: &[&str] = &[
    msgs::CreateLoopbackInstance::NAME_CRC,
    msgs::DeleteLoopback::NAME_CRC,
    msgs::SwInterfaceSetMacAddress::NAME_CRC,
    msgs::SwInterfaceSetFlags::NAME_CRC,
    msgs::SwInterfaceAddDelAddress::NAME_CRC,
    msgs::SwInterfaceIp6SetLinkLocalAddress::NAME_CRC,
    msgs::SwInterfaceIp6GetLinkLocalAddress::NAME_CRC,
    msgs::SwInterfaceSetMtu::NAME_CRC,
    msgs::SwInterfaceDump::NAME_CRC,
    msgs::SwInterfaceSetL2Bridge::NAME_CRC,
    msgs::BridgeDomainAddDelV2::NAME_CRC,
    msgs::BridgeDomainDump::NAME_CRC,
    msgs::IpAddressDump::NAME_CRC,
    msgs::Arping::NAME_CRC,
];

/// linux-cp messages; without them there is no Linux side.
const LCP: &[&str] = &[
    msgs::LcpItfPairAddDelV3::NAME_CRC,
    msgs::LcpItfPairGet::NAME_CRC,
];

pub(super) struct Conn {
    pub(super) client: Option<Client>,
    pub(super) info: DpInfo,
}

impl VppDataplane {
    /// Ask for a reconcile (dropped when one is already queued).
    pub(super) fn wake(&self, why: &str) {
        let _ = self.wake.try_send(why.to_string());
    }

    /// The connection watcher (one per client): keeps `info` true to the
    /// connection, reconnects when it drops, and asks for a reconcile when
    /// it is back or when an interface event contradicts what we made.
    pub(super) fn watch(&self, client: &Client) {
        let mut events = client.subscribe();
        let me = self.me.clone();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let ev = events.recv().await;
                let Some(dp) = me.upgrade() else { return };
                match ev {
                    Ok(vpp_api::ClientEvent::Interface(ev)) => {
                        let ours = dp
                            .index
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .values()
                            .any(|i| *i == ev.sw_if_index);
                        if ours && (ev.deleted || ev.flags & 1 == 0) {
                            dp.forget_all();
                            dp.wake("vpp-interface-event");
                        }
                    }
                    Ok(vpp_api::ClientEvent::Disconnected) => {
                        dp.forget_all();
                        dp.mark_down("connection to VPP lost").await;
                        tracing::warn!("vpp-disconnected");
                        drop(dp);
                        let mut delay = Duration::from_millis(100);
                        loop {
                            let Some(d) = me.upgrade() else { return };
                            match d.connect_now().await {
                                Ok(()) => break,
                                Err(e) => tracing::debug!(error = %e, "vpp-reconnect-failed"),
                            }
                            drop(d);
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(2));
                        }
                    }
                    Ok(vpp_api::ClientEvent::Reconnected) => {
                        dp.forget_all();
                        // A reconnect inside a request leaves `info` stale.
                        if let Err(e) = dp.connect_now().await {
                            tracing::warn!(error = %e, "vpp-reconnect-unusable");
                        }
                        tracing::info!("vpp-reconnected");
                        dp.wake("vpp-reconnected");
                    }
                    Err(RecvError::Lagged(_)) => dp.forget_all(),
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    /// The connection is gone: say so (GetVPPInfo, metrics) at once.
    pub(super) async fn mark_down(&self, why: &str) {
        self.metrics.vpp_connected.set(0);
        let mut c = self.conn.lock().await;
        c.info.connected = false;
        c.info.last_error = why.to_string();
    }

    pub(super) async fn client(&self) -> Result<Client, Error> {
        if let Some(c) = &self.conn.lock().await.client {
            return Ok(c.clone());
        }
        self.connect_now().await?;
        self.conn
            .lock()
            .await
            .client
            .clone()
            .ok_or_else(|| Error::Unavailable("vpp: not connected".into()))
    }

    /// [`Dataplane::connect`]: (re)connect, check the message table and
    /// the linux-cp setting, subscribe to interface events once.
    pub(super) async fn connect_now(&self) -> Result<(), Error> {
        let mut conn = self.conn.lock().await;
        // One client for the daemon's life: its watcher reconnects it.
        let (client, fresh) = match conn.client.clone() {
            Some(c) if c.is_connected() && conn.info.connected => return Ok(()),
            // Connected (a request reconnected it) but not yet checked.
            Some(c) if c.is_connected() => (c, false),
            Some(c) => match c.reconnect().await {
                Ok(()) => (c, false),
                Err(e) => {
                    conn.info.connected = false;
                    conn.info.last_error = e.to_string();
                    self.metrics.vpp_connected.set(0);
                    return Err(map_err(e));
                }
            },
            None => match Client::connect(self.cfg.clone()).await {
                Ok(c) => (c, true),
                Err(e) => {
                    conn.info.connected = false;
                    conn.info.last_error = e.to_string();
                    self.metrics.vpp_connected.set(0);
                    return Err(map_err(e));
                }
            },
        };
        if fresh {
            self.watch(&client);
            conn.client = Some(client.clone());
        }
        let mut info = DpInfo {
            connected: true,
            connected_since_ms: crate::state::now_ms(),
            ..Default::default()
        };
        if let Some(t) = client.message_table() {
            info.message_table_size = t.len() as u32;
            info.missing_messages = REQUIRED
                .iter()
                .filter(|m| t.get(m).is_none())
                .map(|m| m.to_string())
                .collect();
            info.linux_cp = LCP.iter().all(|m| t.get(m).is_some());
        }
        match client.show_version().await {
            Ok(v) => {
                info.version = v.version;
                info.build_date = v.build_date;
            }
            Err(e) => info.last_error = e.to_string(),
        }
        if !info.missing_messages.is_empty() {
            let e = format!(
                "VPP lacks messages evpnd needs: {}",
                info.missing_messages.join(", ")
            );
            info.last_error = e.clone();
            info.connected = false;
            conn.info = info;
            return Err(Error::FailedPrecondition(e));
        }
        if self.linux_cp == LinuxCp::On && !info.linux_cp {
            let e = "vpp.linux-cp is on but VPP has no linux-cp plugin \
                     (lcp_itf_pair_add_del_v3 missing): load the plugin or set \
                     vpp.linux-cp to auto or off"
                .to_string();
            info.last_error = e.clone();
            info.connected = false;
            conn.info = info;
            return Err(Error::FailedPrecondition(e));
        }
        if fresh && let Err(e) = client.want_interface_events(std::process::id()).await {
            // Only the early repair on interface events is lost.
            tracing::warn!(error = %e, "vpp-interface-events-unavailable");
        }
        tracing::info!(version = %info.version, linux_cp = info.linux_cp, "vpp-connect");
        self.forget_all();
        conn.info = info;
        self.metrics.vpp_connected.set(1);
        Ok(())
    }
}
