//! What a resync observed of one member's binding (`Input::Observed`): a
//! claim of the primary, or the release of a holder that should not hold
//! (R11). Part of the group machine (`machine.rs`).
use evpn_daemon::events::Event as Ev;

use super::{Machine, Op, Output, Rule, Seen};

impl Machine {
    pub(super) fn observed(&mut self, member: String, seen: Seen, out: &mut Vec<Output>) {
        match seen {
            Seen::Unbound => self.claim(member, false, out),
            Seen::StaleAddresses => self.claim(member, true, out),
            Seen::Holds | Seen::Gone => {
                let primary = self.core.primary.as_deref() == Some(&member);
                if primary || !self.on(Rule::ResyncReleasesStray) {
                    // A blocked primary keeps its role as it is.
                    return self.finish(Ok(()), out);
                }
                // A non-primary holder: two holders (e.g. after a healed
                // partition) become one again.
                if seen == Seen::Holds {
                    let p = self.core.primary.clone().unwrap_or_default();
                    let f = [("instance", member.as_str()), ("primary", p.as_str())];
                    out.push(self.event(Ev::GroupBviStrayReleased, &f));
                }
                out.push(Output::Release {
                    member: member.clone(),
                });
                self.op = Op::Releasing {
                    pending: [member].into(),
                    failed: vec![],
                    notify: true,
                    aggregate: false,
                };
            }
        }
    }
}
