//! The VPP dataplane's lookups and call wrappers: every VPP call is made
//! through `op`/`op_vpp` (timed out, counted, mapped to a domain error);
//! finding a bridge domain's loopback and its index cache live here.
use super::*;

impl VppDataplane {
    /// Run one VPP call: count it, time it, map its error.
    pub(super) async fn op<T, F>(&self, msg: &'static str, f: F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, VppError>>,
    {
        self.op_vpp(msg, f).await.map_err(|e| {
            let e = map_err(e);
            tracing::debug!(msg, error = %e, "vpp-api-error");
            e
        })
    }

    /// [`Self::op`] keeping VPP's error, for a caller that treats a refusal
    /// (a retval) differently from a lost VPP.
    pub(super) async fn op_vpp<T, F>(&self, msg: &'static str, f: F) -> Result<T, VppError>
    where
        F: Future<Output = Result<T, VppError>>,
    {
        let t = Instant::now();
        let r = f.await;
        crate::timing::step(|| format!("vpp {msg}"), t);
        self.metrics
            .vpp_latency
            .get_or_create(&MsgLabels { msg: msg.into() })
            .observe(t.elapsed().as_secs_f64());
        self.metrics
            .vpp_calls
            .get_or_create(&CallLabels {
                msg: msg.into(),
                result: result_label(&r),
            })
            .inc();
        if r.is_err() {
            self.forget_all();
        }
        if let Err(VppError::Disconnected | VppError::Io(_)) = &r {
            self.mark_down("connection to VPP lost").await;
        }
        r
    }

    pub(super) fn forget_all(&self) {
        self.index.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub(super) fn remember(&self, bd_id: u32, idx: Option<u32>) {
        let mut m = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let mut c = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        match idx {
            Some(i) => {
                m.insert(bd_id, i);
                c.insert(bd_id, Instant::now());
            }
            None => {
                m.remove(&bd_id);
                c.remove(&bd_id);
            }
        };
    }

    pub(super) async fn has_lcp(&self) -> bool {
        self.conn.lock().await.info.linux_cp
    }

    pub(super) async fn find_loop(
        &self,
        c: &Client,
        bd_id: u32,
    ) -> Result<Option<msgs::SwInterfaceDetails>, Error> {
        let name = lo_name(bd_id);
        let all = self
            .op(
                "sw_interface_dump",
                c.sw_interface_dump(InterfaceFilter::NameContains(name.clone())),
            )
            .await?;
        let found = all.into_iter().find(|d| d.interface_name == name);
        self.remember(bd_id, found.as_ref().map(|d| d.sw_if_index));
        Ok(found)
    }

    /// The sw_if_index of `loop<bd_id>`, for a write. VPP reuses freed
    /// indexes (its pools hand out the most recently freed one first), so a
    /// cached index may by now name someone else's interface: it is checked
    /// against the interface's name before it is used, and re-resolved by
    /// name when it does not match (issue 14 item 4).
    pub(super) async fn loop_index(&self, c: &Client, bd_id: u32) -> Result<SwIfIndex, Error> {
        let cached = self
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&bd_id)
            .copied();
        if let Some(i) = cached {
            let fresh = self
                .checked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&bd_id)
                .is_some_and(|t| t.elapsed() < INDEX_CHECK_VALID);
            if fresh {
                return Ok(SwIfIndex(i));
            }
            let now = self
                .op(
                    "sw_interface_dump",
                    c.sw_interface_dump(InterfaceFilter::Index(SwIfIndex(i))),
                )
                .await?;
            if now
                .iter()
                .any(|d| d.sw_if_index == i && d.interface_name == lo_name(bd_id))
            {
                self.remember(bd_id, Some(i));
                return Ok(SwIfIndex(i));
            }
            tracing::warn!(
                bd = bd_id,
                sw_if_index = i,
                now = now
                    .first()
                    .map(|d| d.interface_name.as_str())
                    .unwrap_or("nothing"),
                "vpp-index-stale"
            );
            self.remember(bd_id, None);
        }
        self.find_loop(c, bd_id)
            .await?
            .map(|d| SwIfIndex(d.sw_if_index))
            .ok_or_else(|| {
                Error::FailedPrecondition(format!("vpp: {} does not exist", lo_name(bd_id)))
            })
    }

    /// `loop<bd_id>`'s details: by its cached index (one dump of that
    /// interface, name checked), else by name.
    pub(super) async fn loop_details(
        &self,
        c: &Client,
        bd_id: u32,
    ) -> Result<Option<msgs::SwInterfaceDetails>, Error> {
        let cached = self
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&bd_id)
            .copied();
        if let Some(i) = cached {
            let now = self
                .op(
                    "sw_interface_dump",
                    c.sw_interface_dump(InterfaceFilter::Index(SwIfIndex(i))),
                )
                .await?;
            if let Some(d) = now
                .into_iter()
                .find(|d| d.sw_if_index == i && d.interface_name == lo_name(bd_id))
            {
                self.remember(bd_id, Some(i));
                return Ok(Some(d));
            }
            self.remember(bd_id, None);
        }
        self.find_loop(c, bd_id).await
    }

    /// Replace the IPv6 link-local of the Linux side, when it exists in this
    /// network namespace (linux-cp's TAP). Absent interface: nothing to do.
    pub(super) async fn linux_link_local(&self, slug: &str, ll: Ipv6Addr) -> Result<(), Error> {
        let Some(nl) = &self.netlink else {
            return Ok(());
        };
        let name = bvi_name(slug);
        let link = match nl.link_by_name(&name).await {
            Ok(Some(l)) => l,
            _ => return Ok(()),
        };
        let nerr = |e: netif::Error| Error::Internal(format!("netlink {name}: {e}"));
        nl.set_addr_gen_mode_none(&name).await.map_err(nerr)?;
        let want = IpNet::new(IpAddr::V6(ll), 64).map_err(|e| Error::Internal(e.to_string()))?;
        let addrs = nl.list_addresses(Some(link.index)).await.map_err(nerr)?;
        let mut have = false;
        for a in addrs {
            if evpn_model::is_link_local(&a.net.addr()) {
                if a.net == want {
                    have = true;
                } else {
                    nl.delete_address(&name, a.net).await.map_err(nerr)?;
                }
            }
        }
        if !have {
            nl.add_address(&name, want).await.map_err(nerr)?;
        }
        Ok(())
    }
}
