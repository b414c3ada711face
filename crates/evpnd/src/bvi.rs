//! The one BVI planner (sans-IO): desired BVI + observed BVI → the ordered
//! steps that make the observation match. Bind, release, replace, create,
//! reconcile and the read-back check after a bind or release all plan
//! here, for every dataplane; `Manager::execute` runs the steps.
//!
//! Order (ARCHITECTURE.md, evpnd invariants):
//! 1. structural: create or delete the interface, MTU, admin up, attach;
//! 2. addresses out: the ones not wanted, and — when the MAC changes to
//!    another real MAC — every one (no address sits on a BVI with the wrong
//!    MAC; they come back in step 5);
//! 3. MAC and link-local (the EUI-64 of the MAC: it follows the MAC), with
//!    the Linux side made between them when it is missing;
//! 4. tell BIRD, when the MAC changed;
//! 5. addresses in, last.
//!
//! A bind or release plans against [`believed`] (what the committed state
//! says the dataplane holds: no reads), reconcile and verify against a
//! fresh observation. The vMAC-vs-per-host decision is [`identity`] (by
//! [`BviMac::classify`], the one rule).
use evpn_model::Mac;
use ipnet::IpNet;

use crate::{
    dataplane::{BviMac, ObservedBvi, Write},
    state::Bvi,
};

/// What the BVI must be.
#[derive(Debug, Clone, Copy)]
pub struct Desired<'a> {
    /// The eVPN is enabled: the BVI is attached to its bridge domain.
    pub enabled: bool,
    /// The BVI (`None`: there must be none).
    pub bvi: Option<&'a Bvi>,
    /// Make (or check) the BVI's Linux side when it is missing (VPP's
    /// linux-cp pair; `Dataplane::linux_side_wanted`).
    pub linux_side: bool,
}

/// One planned step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A dataplane write.
    Write(Write),
    /// Make the Linux side (`Manager::ensure_linux_side`).
    LinuxSide,
    /// Tell BIRD the BVI's MAC changed (`bird.vmac-notify`).
    TellBird,
}

/// Steps that run together (independent writes) or alone, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    Writes(Vec<Write>),
    LinuxSide,
    TellBird,
}

/// The MAC `b` must carry now and what it is.
pub fn identity(b: &Bvi) -> BviMac {
    BviMac::classify(b.current_mac(), Some(b.instance_mac))
}

/// What the committed `b` says the dataplane holds (a bind or release
/// plans against it instead of reading; verify reads back afterwards).
pub fn believed(enabled: bool, b: &Bvi) -> ObservedBvi {
    let mut addresses = b.current_addresses();
    addresses.sort();
    ObservedBvi {
        handle: 0,
        mac: b.current_mac(),
        mtu: b.mtu,
        up: true,
        attached: enabled,
        addresses,
        link_local: Some(b.current_mac().link_local()),
        linux: None,
    }
}

/// The steps from the committed BVI `from` (of an eVPN enabled or not) to
/// `to`, planned against [`believed`]: bind, release, replace, enable and
/// delete use it (no reads; `verify` reads back after a bind or release).
pub fn plan_change(from_enabled: bool, from: Option<&Bvi>, to: &Desired<'_>) -> Vec<Step> {
    plan(to, from.map(|b| believed(from_enabled, b)).as_ref())
}

/// The MAC an observation reports when the fabric does not agree with the
/// BVI's MAC (linux: the FDB): re-set in place, addresses untouched.
const UNSEEN: Mac = Mac([0; 6]);

/// The steps that turn `have` into `want`, in order (see the module docs).
pub fn plan(want: &Desired<'_>, have: Option<&ObservedBvi>) -> Vec<Step> {
    use Write::*;
    let w = |x: Write| Step::Write(x);
    let mut out = Vec::new();
    let Some(b) = want.bvi else {
        if have.is_some() {
            out.push(w(Delete));
        }
        return out;
    };
    let id = identity(b);
    let want_addrs = b.current_addresses();
    let Some(o) = have else {
        out.push(w(Create {
            mac: id,
            attached: want.enabled,
        }));
        if want.linux_side {
            out.push(Step::LinuxSide);
        }
        out.push(w(LinkLocal(id.link_local())));
        if id.is_gateway() {
            out.push(Step::TellBird);
        }
        out.extend(want_addrs.into_iter().map(|a| w(AddAddress(a))));
        return out;
    };
    if o.mtu != b.mtu {
        out.push(w(Mtu(b.mtu)));
    }
    if !o.up {
        out.push(w(Up));
    }
    if o.attached != want.enabled {
        out.push(w(Attach(want.enabled)));
    }
    let mac_changes = o.mac != id.mac();
    let cycle = mac_changes && o.mac != UNSEEN;
    out.extend(
        o.addresses
            .iter()
            .filter(|a| cycle || !want_addrs.contains(a))
            .map(|a| w(DelAddress(*a))),
    );
    if mac_changes {
        out.push(w(Mac(id)));
    }
    let linux = want.linux_side && o.linux.is_none();
    if linux {
        out.push(Step::LinuxSide);
    }
    // The Linux side gets its link-local with it (set on both sides).
    if linux || o.link_local != Some(id.link_local()) {
        out.push(w(LinkLocal(id.link_local())));
    }
    if mac_changes {
        out.push(Step::TellBird);
    }
    out.extend(
        want_addrs
            .iter()
            .filter(|a| cycle || !o.addresses.contains(a))
            .map(|a| w(AddAddress(*a))),
    );
    out
}

/// Which steps may run together: addresses out, MAC with link-local,
/// addresses in; everything else alone.
fn group(s: &Step) -> Option<u8> {
    match s {
        Step::Write(Write::DelAddress(_)) => Some(1),
        Step::Write(Write::Mac(_) | Write::LinkLocal(_)) => Some(2),
        Step::Write(Write::AddAddress(_)) => Some(3),
        _ => None,
    }
}

/// `steps` cut into stages; a stage starts when the one before succeeded.
pub fn stages(steps: &[Step]) -> Vec<Stage> {
    let mut out: Vec<Stage> = Vec::new();
    let mut last = None;
    for s in steps {
        let g = group(s);
        match (s, out.last_mut()) {
            (Step::Write(x), Some(Stage::Writes(v))) if g.is_some() && g == last => {
                v.push(x.clone())
            }
            (Step::Write(x), _) => out.push(Stage::Writes(vec![x.clone()])),
            (Step::LinuxSide, _) => out.push(Stage::LinuxSide),
            (Step::TellBird, _) => out.push(Stage::TellBird),
        }
        last = g;
    }
    out
}

/// The addresses a plan adds (reconcile announces them on a bound BVI).
pub fn added(steps: &[Step]) -> Vec<IpNet> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Write(Write::AddAddress(a)) => Some(*a),
            _ => None,
        })
        .collect()
}

/// What the executed `steps` wrote (for [`crate::dataplane::Dataplane::read_back`]).
pub fn known(steps: &[Step]) -> crate::dataplane::Known {
    let mut k = crate::dataplane::Known::default();
    for s in steps {
        match s {
            Step::Write(Write::Mac(m)) => k.mac = Some(m.mac()),
            Step::Write(Write::LinkLocal(ll)) => k.link_local = Some(*ll),
            _ => {}
        }
    }
    k
}

#[cfg(test)]
#[path = "bvi_tests.rs"]
mod tests;
