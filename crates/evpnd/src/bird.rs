//! evpnd's BIRD side: render one snippet per eVPN, apply it atomically
//! through `bird_ctl::Applier`, report protocol state, and notify BIRD after
//! a vMAC change. Thin: decisions are the manager's.
use std::{sync::Arc, time::Instant};

use bird_ctl::{
    Applier, ApplierConfig, BirdClient, ClientOptions, Dialect, EvpnSnippet, EvpnSpec, Renderer,
    apply::{ApplyError, Change},
    status::ProtocolInfo,
};
use evpn_model::Error;

use crate::{
    config::{BirdConfig, Dialect as CfgDialect},
    metrics::{EvpndMetrics, ResultLabels},
    state::Evpn,
};

/// The BIRD side.
pub struct Bird {
    pub client: Arc<BirdClient>,
    /// Built on first use: BIRD's main config may not be in place yet when
    /// evpnd starts, and that must not stop evpnd.
    applier: std::sync::Mutex<Option<Arc<Applier<Arc<BirdClient>>>>>,
    renderer: Renderer,
    cfg: BirdConfig,
    metrics: EvpndMetrics,
}

fn bird_err(e: bird_ctl::BirdError) -> Error {
    if e.is_connection_error() {
        Error::Unavailable(format!("bird: {e}"))
    } else {
        Error::Internal(format!("bird: {e}"))
    }
}

fn apply_err(e: ApplyError) -> Error {
    match e {
        ApplyError::Invalid(v) => Error::invalid(v.field.clone(), v.reason.clone()),
        ApplyError::Rejected(_) | ApplyError::Verify { .. } => {
            Error::Aborted(format!("bird: {e}; the previous configuration stays"))
        }
        ApplyError::Bird { ref error, .. } if error.is_connection_error() => {
            Error::Unavailable(format!("bird: {e}"))
        }
        other => Error::Internal(format!("bird: {other}")),
    }
}

impl Bird {
    /// Build the BIRD side; does not connect.
    pub fn new(cfg: &BirdConfig, metrics: EvpndMetrics) -> Result<Bird, Error> {
        let client = Arc::new(BirdClient::lazy(
            &cfg.socket,
            ClientOptions {
                connect_timeout: cfg.timeout.0,
                command_timeout: cfg.timeout.0,
            },
        ));
        let dialect = match cfg.dialect {
            CfgDialect::Vpp => match &cfg.vppevpn_template {
                Some(p) => Dialect::Vpp {
                    vppevpn_template: std::fs::read_to_string(p).map_err(|e| {
                        Error::invalid("bird.vppevpn-template", format!("{}: {e}", p.display()))
                    })?,
                },
                None => Dialect::vpp_default(),
            },
            CfgDialect::Linux => Dialect::Linux {
                bridge_device: "brg-{slug}".into(),
                vxlan_device: "vxl-{slug}".into(),
            },
        };
        let renderer = Renderer::new(dialect, &cfg.evpn_table)
            .map_err(|v| Error::invalid(format!("bird.{}", v.field), v.reason))?;
        Ok(Bird {
            client,
            applier: std::sync::Mutex::new(None),
            renderer,
            cfg: cfg.clone(),
            metrics,
        })
    }

    /// The applier, built on first use (errors: BIRD's main config is
    /// missing or does not include the include directory).
    fn applier(&self) -> Result<Arc<Applier<Arc<BirdClient>>>, Error> {
        let mut g = self.applier.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = g.as_ref() {
            return Ok(a.clone());
        }
        let mut acfg = ApplierConfig::new(&self.cfg.config, &self.cfg.include_dir);
        acfg.configure_timeout = self.cfg.timeout.0.max(std::time::Duration::from_secs(5));
        // `docs/bird-notes.md` §4.6: with the linux dialect the bridge and VXLAN devices
        // are created just before the snippet is applied, so BIRD 2.20 may
        // keep `evpn_<slug>` in `start`; wait one device scan (matched to the
        // main config's `scan time`) and restart it.
        if let Some(rec) = acfg.verify.stuck_recovery.as_mut() {
            rec.device_scan = self.cfg.device_scan.0;
        }
        let a = Arc::new(
            Applier::new(self.client.clone(), acfg)
                .map_err(|e| Error::Unavailable(format!("bird: {e}")))?,
        );
        *g = Some(a.clone());
        Ok(a)
    }

    fn spec(e: &Evpn) -> EvpnSpec {
        EvpnSpec {
            slug: e.slug.clone(),
            vni: e.vni,
            rd: e.rd.clone(),
            import_targets: e.import_targets.clone(),
            export_targets: e.export_targets.clone(),
            router_address: e.vtep,
            enabled: e.enabled,
        }
    }

    /// Validate and render an eVPN's snippet without applying it.
    pub fn render(&self, e: &Evpn) -> Result<bird_ctl::snippet::RenderedSnippet, Error> {
        let snip = EvpnSnippet::new(&Self::spec(e))
            .map_err(|v| Error::invalid(v.field.clone(), v.reason.clone()))?;
        Ok(self.renderer.render(&snip))
    }

    /// The BIRD protocols of an eVPN.
    pub fn protocol_names(&self, slug: &str) -> Vec<String> {
        let companion = match self.cfg.dialect {
            CfgDialect::Vpp => bird_ctl::snippet::vppevpn_protocol(slug),
            CfgDialect::Linux => bird_ctl::snippet::bridge_protocol(slug),
        };
        vec![bird_ctl::snippet::evpn_protocol(slug), companion]
    }

    async fn apply(&self, changes: Vec<Change>) -> Result<bool, Error> {
        let t = Instant::now();
        let r = self.applier()?.apply(changes).await;
        let result = match &r {
            Ok(rep) if rep.noop => "noop",
            Ok(_) => "ok",
            Err(ApplyError::Rejected(_)) => "rejected",
            Err(ApplyError::Verify { .. }) => "verify-failed",
            Err(_) => "error",
        };
        self.metrics
            .bird_applies
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
        match r {
            Ok(rep) => {
                if !rep.noop {
                    tracing::info!(
                        written = ?rep.written,
                        removed = ?rep.removed,
                        recovered = ?rep.recovered,
                        ms = t.elapsed().as_secs_f64() * 1e3,
                        "bird-applied"
                    );
                }
                Ok(!rep.noop)
            }
            Err(e) => {
                tracing::warn!(error = %e, "bird-apply-failed");
                Err(apply_err(e))
            }
        }
    }

    /// Make the live snippet of `e` match; returns whether BIRD changed.
    pub async fn set(&self, e: &Evpn) -> Result<bool, Error> {
        let r = self.render(e)?;
        self.apply(vec![Change::Set(r)]).await
    }

    /// Remove an eVPN's snippet; returns whether BIRD changed.
    pub async fn remove(&self, slug: &str) -> Result<bool, Error> {
        self.apply(vec![Change::Remove {
            slug: slug.to_string(),
            protocols: Vec::new(),
        }])
        .await
    }

    /// `docs/bird-notes.md` §4.6 after the devices of an already configured eVPN were
    /// (re)created: restart `evpn_<slug>` if it is stuck in `start`.
    pub async fn recover_stuck(&self, slug: &str) -> Result<Vec<String>, Error> {
        let r = self
            .applier()?
            .recover_stuck(&[slug])
            .await
            .map_err(apply_err)?;
        if !r.is_empty() {
            tracing::warn!(evpn = slug, restarted = ?r, "bird-stuck-evpn-restarted");
        }
        Ok(r)
    }

    /// Slugs whose snippet files are live.
    pub fn live_slugs(&self) -> Result<Vec<String>, Error> {
        let files = self.applier()?.live_files().map_err(apply_err)?;
        Ok(files
            .iter()
            .filter_map(|f| {
                f.strip_prefix("evpn-")
                    .and_then(|f| f.strip_suffix(".conf"))
            })
            .map(str::to_string)
            .collect())
    }

    /// State of every protocol (empty when BIRD is unreachable).
    pub async fn protocols(&self) -> Result<Vec<ProtocolInfo>, Error> {
        self.client
            .show_protocols(None, false)
            .await
            .map_err(bird_err)
    }

    /// Tell BIRD the vMAC changed on `slug` (the configured `vmac-notify`
    /// command). Failures are returned for the caller to log; the change
    /// itself is already in the dataplane.
    pub async fn notify_mac(&self, slug: &str) -> Result<(), Error> {
        if self.cfg.vmac_notify.is_empty() {
            return Ok(());
        }
        let protocol = self.protocol_names(slug).pop().unwrap_or_default();
        let cmd = self
            .cfg
            .vmac_notify
            .replace("{protocol}", &format!("\"{protocol}\""))
            .replace("{slug}", slug);
        self.client
            .command(&cmd)
            .await
            .map(|_| ())
            .map_err(bird_err)
    }

    /// Linux dialect: whether BIRD has a route for `mac` from the eVPN's
    /// own bridge protocol, i.e. announces it as a MAC of this host.
    /// Always false for other dialects.
    pub async fn announces_locally(&self, slug: &str, mac: &str) -> Result<bool, Error> {
        if self.cfg.dialect != CfgDialect::Linux {
            return Ok(false);
        }
        let proto = bird_ctl::snippet::bridge_protocol(slug);
        let routes = self
            .client
            .show_route_eth(&bird_ctl::snippet::eth_table(slug), mac, None)
            .await
            .map_err(bird_err)?;
        Ok(routes.iter().any(|r| r.proto == proto))
    }

    /// Linux dialect: restart the eVPN's bridge protocol, so that BIRD
    /// re-reads the kernel's FDB.
    pub async fn restart_bridge(&self, slug: &str) -> Result<(), Error> {
        self.client
            .restart(&bird_ctl::snippet::bridge_protocol(slug))
            .await
            .map(|_| ())
            .map_err(bird_err)
    }

    /// Remote VTEPs that announce `mac` in the eVPN's eth table.
    pub async fn mac_announcers(&self, slug: &str, mac: &str) -> Result<Vec<String>, Error> {
        let table = bird_ctl::snippet::eth_table(slug);
        let routes = self
            .client
            .show_route_mac(&table, mac)
            .await
            .map_err(bird_err)?;
        let mut v: Vec<String> = routes.into_iter().flat_map(|r| r.next_hops).collect();
        v.sort();
        v.dedup();
        Ok(v)
    }
}
