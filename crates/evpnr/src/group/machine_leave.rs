//! Operations that take a member or the GroupBVI out of the gateway: an
//! explicit release, a member leaving the group, the GroupBVI deleted. Each
//! unassigns first (the intent made durable), then releases. Part of the
//! group machine (`machine.rs`).
use evpn_daemon::events::Event as Ev;
use evpn_model::Error;

use super::{Machine, Op, Output};

impl Machine {
    /// An explicit release of `member`: it stays a member.
    pub(super) fn release_request(
        &mut self,
        member: String,
        cause: &'static str,
        out: &mut Vec<Output>,
    ) {
        self.take_out(member, false, cause, out);
    }

    /// `member` leaves the group.
    pub(super) fn leave(&mut self, member: String, cause: &'static str, out: &mut Vec<Output>) {
        self.take_out(member, true, cause, out);
    }

    /// Unassign `member` (removed from the members when `leaves`), then
    /// release it; NOT_FOUND if it is not a member.
    fn take_out(
        &mut self,
        member: String,
        leaves: bool,
        cause: &'static str,
        out: &mut Vec<Output>,
    ) {
        let before = self.core.clone();
        let known = if leaves {
            self.core.members.remove(&member)
        } else {
            self.core.members.contains(&member)
        };
        if !known {
            let e = Error::not_found(evpn_model::error::Object::Member, &member);
            return self.finish(Err(e), out);
        }
        let then = vec![Output::Release {
            member: member.clone(),
        }];
        self.unassign(before, Some(&member), cause, then, out);
    }

    pub(super) fn delete_bvi(&mut self, out: &mut Vec<Output>) {
        if !self.core.bvi {
            let e = Error::not_found(evpn_model::error::Object::GroupBvi, &self.group);
            return self.finish(Err(e), out);
        }
        let before = self.core.clone();
        self.core.bvi = false;
        let mut then = vec![self.event(Ev::GroupBviDeleted, &[])];
        then.extend(
            self.core
                .holders
                .iter()
                .map(|h| Output::Release { member: h.clone() }),
        );
        self.unassign(before, None, "groupbvi-deleted", then, out);
        // The deletion comes before the gateway going down.
        if let Op::Unassign { then, .. } = &mut self.op
            && then.len() > 1
            && matches!(&then[0], Output::Event(e) if e.name == Ev::GatewayDown)
        {
            then.swap(0, 1);
        }
    }
}
