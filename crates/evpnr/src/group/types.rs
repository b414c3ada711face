//! The group state machine's vocabulary: rules, core, facts, inputs and
//! outputs (closed sets). See `docs/group-machine.md`.
use std::collections::{BTreeMap, BTreeSet};

use evpn_daemon::events::Event as Ev;
use evpn_model::{Error, settle::SettleOutcome};

pub use super::failover::TakeoverSettle;
pub use crate::southbound::ReleaseEvidence;

/// The rules of `docs/group-machine.md`. In test builds each one can be
/// switched off ([`Machine::disable`]) to show that the conformance suite
/// notices (its teeth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// R1: a member joins `holders` before a bind is sent to it.
    HolderBeforeBind,
    /// R2: a primary binds only when no other possible holder is left
    /// (a forced move excepted).
    SoleHolder,
    /// R3: a holder is forgotten only once its release (or the deletion of
    /// its eVPN) is confirmed.
    ForgetOnlyConfirmed,
    /// R4: a confirmed release never forgets the primary.
    KeepPrimary,
    /// R5: a move releases every other possible holder before it binds.
    ReleaseAllFirst,
    /// R6: a move refuses when a possible holder cannot be reached, unless
    /// forced; forced, that holder is skipped and stays a holder.
    RefuseUnreachable,
    /// R7: the intent is durable before the bind.
    DurableBeforeBind,
    /// R8: while the store fails, nothing moves or binds.
    StorePause,
    /// R9: a move that cannot release or persist is undone (old primary).
    UndoOnFailure,
    /// R10: a failed bind leaves the GroupBVI unassigned and releases the
    /// target.
    UnassignOnBindFailure,
    /// R11: resync releases a member that holds (or is recorded as a
    /// possible holder) and should not, a member that left the group too.
    ResyncReleasesStray,
    /// R12: a confirmed release that unblocks the primary resyncs it.
    UnblockPrimary,
    /// R13: the target is a member, the group has a GroupBVI, and the
    /// group's eVPN is not disabled on the target (even forced).
    MoveTarget,
    /// R14: an explicit bind does not take the GroupBVI from another primary.
    BindNotOverPrimary,
    /// R15: a primary that leaves, is released or loses its GroupBVI is
    /// unassigned durably before its release is sent (`gateway-down`).
    UnassignBeforeRelease,
    /// R16: a change that nothing was sent on yet (an unassignment, a
    /// claim, an intent without releases) is saved before it is published:
    /// no reader, a resync above all, acts on a state that is not on disk.
    SaveBeforePublish,
    /// R17: a bind's evidence wait is reported from the member's reply
    /// (`move-settle*` for a move's bind, `bind-settle*` for any other
    /// claim, nothing for an address change of a holder).
    SettleReported,
}

impl Rule {
    pub const ALL: [Rule; 17] = [
        Rule::HolderBeforeBind,
        Rule::SoleHolder,
        Rule::ForgetOnlyConfirmed,
        Rule::KeepPrimary,
        Rule::ReleaseAllFirst,
        Rule::RefuseUnreachable,
        Rule::DurableBeforeBind,
        Rule::StorePause,
        Rule::UndoOnFailure,
        Rule::UnassignOnBindFailure,
        Rule::ResyncReleasesStray,
        Rule::UnblockPrimary,
        Rule::MoveTarget,
        Rule::BindNotOverPrimary,
        Rule::UnassignBeforeRelease,
        Rule::SaveBeforePublish,
        Rule::SettleReported,
    ];
}

/// The persisted part of a group the machine decides on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Core {
    pub primary: Option<String>,
    /// ⊇ the members that may hold the vMAC.
    pub holders: BTreeSet<String>,
    pub members: BTreeSet<String>,
    /// The group has a GroupBVI (a gateway identity).
    pub bvi: bool,
}

/// Facts about the world the machine does not decide on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Members connected right now.
    pub connected: BTreeSet<String>,
    /// Why the state store fails (None: it takes writes).
    pub store_error: Option<String>,
    /// Members that cannot take a bind now (not connected and ready, not
    /// registered), and why.
    pub unusable: BTreeMap<String, Error>,
    /// Members on which the group's eVPN is disabled: they cannot announce
    /// the vMAC, so they never become its holder (R13, even forced).
    pub evpn_disabled: BTreeSet<String>,
}

/// Which operator request a move serves (the `op` field of its events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveOp {
    /// MoveGroupBVI.
    Move,
    /// BindGroupBVI.
    Bind,
    /// An autonomous planned failover (primary unhealthy, drained, or
    /// preempted): released first like any move.
    Failover,
    /// An autonomous takeover (primary unreachable or withdrawn, or no
    /// primary): unreachable holders are skipped (they stay holders, R6)
    /// and the bind requires the fabric's evidence (`Settle::Takeover`, F15).
    Takeover,
}

impl MoveOp {
    /// The `op` field of its events.
    pub fn name(self) -> &'static str {
        match self {
            MoveOp::Move => "move",
            MoveOp::Bind => "bind",
            MoveOp::Failover | MoveOp::Takeover => "failover",
        }
    }
}

/// What a resync saw of one member's BVI in this group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not bound.
    Unbound,
    /// Bound with the vMAC, but the address set differs.
    StaleAddresses,
    /// Holds (some of) the gateway identity although it should not, or is
    /// recorded as a possible holder.
    Holds,
    /// Recorded as a possible holder of a group it left; its eVPN is gone.
    Gone,
}

/// Closed set of inputs.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    // Operator requests.
    /// MoveGroupBVI / BindGroupBVI.
    Move {
        target: String,
        force: bool,
        op: MoveOp,
    },
    /// ReleaseGroupBVI on one member (`cause`: of its `gateway-down`;
    /// "released", or "evpn-disabled" for an eVPN disabled with force).
    Release {
        member: String,
        cause: &'static str,
    },
    /// RemoveGroupMember (or the primary's eVPN disabled with force).
    Leave {
        member: String,
        cause: &'static str,
    },
    /// DeleteGroupBVI.
    DeleteBvi,
    /// A new address set for the primary (applied before it is stored).
    Addresses {
        member: String,
    },
    // Member replies.
    /// The bind was answered OK, with the outcome of the evidence wait
    /// the member ran before it (None: no wait was asked for, or the
    /// member did not report it).
    BindOk {
        member: String,
        outcome: Option<SettleOutcome>,
    },
    BindFailed {
        member: String,
        error: Error,
    },
    /// Release confirmed (also: NOT_FOUND, or the member's eVPN deleted),
    /// with the member's look at its links if it reported one (F15).
    Released {
        member: String,
        evidence: Option<ReleaseEvidence>,
    },
    ReleaseFailed {
        member: String,
        error: Error,
    },
    // Store replies.
    Persisted,
    PersistFailed {
        error: Error,
    },
    // Member connectivity and store health.
    Connectivity {
        member: String,
        connected: bool,
    },
    StoreHealth {
        error: Option<String>,
    },
    // Resync.
    Observed {
        member: String,
        seen: Seen,
    },
    /// Timer tick. Nothing is timed yet; member health reports (failover)
    /// join here as their own input.
    Tick,
}

/// How a bind waits for evidence before it claims the vMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Part of a move: `move-settle*` events.
    Move,
    /// Part of a move whose released old primary was cut off from the
    /// fabric (F16): as `Move`, and the member takes a clear look as
    /// evidence only when another look `move.takeover-min-settle` later is
    /// clear too.
    MoveHold,
    /// Part of a takeover: `move-settle*` events, and the member refuses
    /// to bind without evidence that no other VTEP announces the vMAC;
    /// with or without the least settle (F15).
    Takeover(TakeoverSettle),
    /// Any other claim: `bind-settle*` events.
    Resync,
    /// The member holds the vMAC already; only its addresses change.
    None,
}

/// An event the machine asks for (a catalogue entry and its fields; the
/// driver adds timings).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: Ev,
    pub fields: Vec<(&'static str, String)>,
}

/// Closed set of outputs.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Release the GroupBVI on `member`; answer Released / ReleaseFailed.
    Release {
        member: String,
    },
    /// Make the state in effect (with this intent) durable; answer
    /// Persisted / PersistFailed. `save_first` (R16): the step's change is
    /// written to disk before it is published, and not published at all if
    /// the write fails; otherwise it is in effect (visible to readers) at
    /// once and written after.
    Persist {
        primary: Option<String>,
        holders: BTreeSet<String>,
        save_first: bool,
    },
    /// Bind the GroupBVI on `member`; answer BindOk / BindFailed.
    Bind {
        member: String,
        settle: Settle,
    },
    Event(Event),
    /// Resync `member` (it was unblocked, or a move was undone).
    Resync {
        member: String,
    },
    /// The answer to the operator request; the operation is over.
    Reply(Result<(), Error>),
}

/// UNAVAILABLE while the state store fails.
pub fn paused(e: &str) -> Error {
    Error::Unavailable(format!(
        "the registry state store is failing ({e}); orchestration is paused until \
         a save succeeds (see docs/runbook.md, \"Disk full\")"
    ))
}
