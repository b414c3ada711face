//! The BVI's Linux side (VPP: the linux-cp pair) as `vpp.linux-cp` wants
//! it. In `auto`, a pair VPP refuses leaves the BVI without its Linux side:
//! reported (a warning event when it starts, GetVPPInfo while it lasts,
//! reads from what VPP says) and retried at every reconcile.
use evpn_daemon::events::Event;
use evpn_model::Error;

use super::{Manager, fields, ref_of};
use crate::{dataplane::LinuxSide, state::Evpn};

impl Manager {
    /// Make `e`'s Linux side when it is wanted and missing. Returns its
    /// interface name (`None`: there is none, and that is allowed).
    pub(crate) async fn ensure_linux_side(&self, e: &Evpn) -> Result<Option<String>, Error> {
        match self.dp.ensure_linux_side(&ref_of(e)).await? {
            LinuxSide::Present(name) => {
                self.linux_side_ok(&e.slug);
                Ok(Some(name))
            }
            LinuxSide::NotWanted => {
                self.linux_side_ok(&e.slug);
                Ok(None)
            }
            LinuxSide::Refused(why) => {
                tracing::warn!(evpn = %e.slug, reason = %why, "bvi-without-linux-side");
                let new = self
                    .linux_missing
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(e.slug.clone(), why.clone())
                    .is_none();
                if new {
                    self.broker.emit(
                        Event::BviWithoutLinuxSide,
                        fields(&[
                            ("evpn", e.slug.clone()),
                            ("reason", why),
                            (
                                "setting",
                                "vpp.linux-cp: auto (retried at each reconcile)".into(),
                            ),
                        ]),
                    );
                }
                Ok(None)
            }
        }
    }

    /// `slug`'s BVI has the Linux side it should have (or is gone).
    pub(crate) fn linux_side_ok(&self, slug: &str) {
        let was = self
            .linux_missing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(slug);
        if was.is_some() {
            self.event(Event::BviLinuxSideRestored, &[("evpn", slug.to_string())]);
        }
    }

    /// BVIs that lack their Linux side because VPP refused it: slug → reason.
    pub fn linux_missing(&self) -> Vec<(String, String)> {
        self.linux_missing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
