//! The event a bind's evidence wait produces, decided from the member's
//! reply (sans-IO; the group machine outputs it when the bind is answered).
use evpn_daemon::events::Event as Ev;
use evpn_model::settle::{SettleOutcome, Settled};

use super::types::{Event, Settle};

/// The `move-settle*` (a bind of a move, `Settle::Move`) or `bind-settle*`
/// (any other claim, `Settle::Resync`) event of member `member`'s wait in
/// `group`, from the outcome it reported (None: it did not report one, an
/// evpnd older than evpnr). No event for a bind without a wait
/// (`Settle::None`).
pub fn event(
    group: &str,
    member: &str,
    settle: Settle,
    outcome: Option<&SettleOutcome>,
) -> Option<Event> {
    let pick = |mv: Ev, bind: Ev| match settle {
        Settle::Move | Settle::MoveHold | Settle::Takeover(_) => Some(mv),
        Settle::Resync => Some(bind),
        Settle::None => None,
    };
    let unreported = SettleOutcome {
        settled: Settled::NoEvidence(
            "the member did not report an evidence wait (an evpnd older than evpnr?)".into(),
        ),
        polls: 0,
        waited: std::time::Duration::ZERO,
    };
    let o = outcome.unwrap_or(&unreported);
    let waited = format!("{:.3}", o.waited.as_secs_f64() * 1e3);
    let polls = o.polls.to_string();
    let mut fields = vec![
        ("group", group.to_string()),
        ("instance", member.to_string()),
    ];
    let name = match &o.settled {
        Settled::Evidence => {
            fields.push(("polls", polls));
            pick(Ev::MoveSettled, Ev::BindSettled)
        }
        Settled::TimedOut { vteps } => {
            fields.push(("vteps", vteps.join(",")));
            fields.push(("polls", polls));
            pick(Ev::MoveSettleTimeout, Ev::BindSettleTimeout)
        }
        Settled::NoEvidence(e) => {
            fields.push(("error", e.clone()));
            pick(Ev::MoveSettleNoEvidence, Ev::BindSettleNoEvidence)
        }
    }?;
    fields.push(("waited-ms", waited));
    Some(Event { name, fields })
}
