//! Fabric faults of the chaos run — a killed BIRD, a host cut from the
//! fabric, a host cut from evpnr (the management network) — each healed a
//! few steps later, and invariant 5: never two announcers of one MAC
//! visible in the simulated fabric at one instant (see docs/chaos.md).
use rand::Rng;

use super::Run;

/// A fabric fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NetFault {
    /// The host's BIRD is killed (`kill -9`): it answers nothing, its routes
    /// are withdrawn after the fabric's delay; restarted at the heal.
    BirdKilled,
    /// The host is cut from the fabric (it sees no routes of the others,
    /// they see none of its, after the delay; its BGP sessions go down).
    FabricCut,
    /// The host's evpnd and evpnr cannot reach each other (both ways;
    /// traffic is held, not refused).
    MgmtCut,
}

impl NetFault {
    fn name(self) -> &'static str {
        match self {
            NetFault::BirdKilled => "kill-9-bird",
            NetFault::FabricCut => "fabric-partition",
            NetFault::MgmtCut => "evpnr-partition",
        }
    }

    fn heal(self) -> &'static str {
        match self {
            NetFault::BirdKilled => "BIRD restarted",
            NetFault::FabricCut | NetFault::MgmtCut => "partition healed",
        }
    }
}

/// A fabric fault of host `host` until step `until`.
#[derive(Debug, Clone)]
pub(super) struct NetWindow {
    pub host: usize,
    pub fault: NetFault,
    pub until: usize,
}

impl Run {
    /// Injects the fabric fault drawn as `k` (120..=134) on host `hi`.
    pub(super) async fn inject_net(
        &mut self,
        step: usize,
        hi: usize,
        k: u32,
    ) -> anyhow::Result<()> {
        let fault = match k {
            120..=124 => NetFault::BirdKilled,
            125..=129 => NetFault::FabricCut,
            _ => NetFault::MgmtCut,
        };
        if self.net.iter().any(|w| w.host == hi && w.fault == fault) {
            return Ok(());
        }
        let until = step + self.rng.random_range(1..=4usize);
        let id = self.hosts[hi].clone();
        match fault {
            NetFault::BirdKilled => self.fleet.kill_bird(hi),
            NetFault::FabricCut => self.fleet.fabric.set_link(&id, false),
            NetFault::MgmtCut => self.fleet.hosts[hi].set_mgmt_link(false),
        }
        self.net.push(NetWindow {
            host: hi,
            fault,
            until,
        });
        self.fault(fault.name());
        self.log(format!(
            "step {step}: fault {} {id} until step {until}",
            fault.name()
        ));
        Ok(())
    }

    async fn heal_net(&mut self, w: NetWindow, when: &str) -> anyhow::Result<()> {
        let id = self.hosts[w.host].clone();
        match w.fault {
            NetFault::BirdKilled => self.fleet.start_bird(w.host).await?,
            NetFault::FabricCut => self.fleet.fabric.set_link(&id, true),
            NetFault::MgmtCut => self.fleet.hosts[w.host].set_mgmt_link(true),
        }
        self.log(format!(
            "{when}: {} {id}: {}",
            w.fault.name(),
            w.fault.heal()
        ));
        Ok(())
    }

    /// Heals the fabric faults whose time has come.
    pub(super) async fn expire_net(&mut self, step: usize) -> anyhow::Result<()> {
        let (done, keep): (Vec<NetWindow>, Vec<NetWindow>) =
            self.net.drain(..).partition(|w| w.until <= step);
        self.net = keep;
        for w in done {
            self.heal_net(w, &format!("step {step}")).await?;
        }
        Ok(())
    }

    /// Heals every fabric fault.
    pub(super) async fn clear_net(&mut self, when: &str) -> anyhow::Result<()> {
        for w in std::mem::take(&mut self.net) {
            self.heal_net(w, when).await?;
        }
        Ok(())
    }

    /// Invariant 5 over the fabric's history so far: a violation per new
    /// moment at which one host's EVPN table held one MAC from two VTEPs.
    pub(super) fn check_announcers(&mut self, when: &str) -> bool {
        let t0 = self.fleet.fabric.t0;
        let mut new = false;
        for x in self.fleet.fabric.two_announcer_moments() {
            if !self
                .announcer_moments
                .insert((x.host.clone(), x.mac.clone(), x.at))
            {
                continue;
            }
            new = true;
            self.report.violations.push(format!(
                "never two announcers ({when}): {}'s EVPN table held {} from {} at +{} ms",
                x.host,
                x.mac,
                x.vteps.iter().cloned().collect::<Vec<_>>().join(" and "),
                x.at.saturating_duration_since(t0).as_millis()
            ));
        }
        !new
    }
}
