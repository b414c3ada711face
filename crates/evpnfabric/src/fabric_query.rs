//! Read-only looks into the fabric's namespaces (devices, the leaf's FDB,
//! the host's neighbours), split from [`crate::fabric`] to keep it small.
use crate::fabric::Fabric;

impl Fabric {
    /// Links of router `i` with evpnd's name prefixes.
    pub fn evpn_links(&self, i: usize) -> anyhow::Result<Vec<String>> {
        Ok(self.routers[i]
            .ns
            .links()?
            .into_iter()
            .filter(|n| {
                ["brg-", "vxl-", "bvp-", "bvi-"]
                    .iter()
                    .any(|p| n.starts_with(p))
            })
            .collect())
    }

    /// The leaf's kernel FDB entries for `mac` on its VXLAN device's own
    /// table: the remote VTEPs (`dst`) it forwards `mac` to.
    pub fn leaf_fdb_dsts(&self, slug: &str, mac: &str) -> anyhow::Result<Vec<String>> {
        let vx = netif::Slug::new(slug)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .names()
            .vxlan;
        let out = self
            .leaf()
            .ns
            .exec(&["bridge", "fdb", "show", "dev", &vx])?;
        Ok(out
            .lines()
            .filter(|l| l.starts_with(mac) && l.contains(" dst "))
            .filter_map(|l| {
                l.split_whitespace()
                    .skip_while(|w| *w != "dst")
                    .nth(1)
                    .map(str::to_string)
            })
            .collect())
    }

    /// The host's neighbour entry (lladdr) for `ip`, if any.
    pub fn host_neigh(&self, ip: &str) -> anyhow::Result<Option<String>> {
        let out = self.host.ip(&["neigh", "show", ip, "dev", "h-eth0"])?;
        Ok(out
            .split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .map(str::to_string))
    }
}
