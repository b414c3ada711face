//! The failover commands of the tree: a group's policy and member
//! priorities, draining an instance, the fleet-wide switch.
use super::{Action, Kind, NodeId, Source, Tree};

/// Failover modes for `group <g> failover <mode>`.
pub const MODES: &[&str] = &["auto", "manual"];
/// `failover suspend|resume`.
pub const SWITCH: &[&str] = &["suspend", "resume"];

/// `group <g> failover <mode> [preempt <dur>|off] [hold-down <dur>]
/// [flap-window <dur>] [flap-limit <n>] [warm-up <dur>]` and
/// `group <g> member <instance> priority <n>` (under `g` and `member`).
pub fn group(t: &mut Tree, g: NodeId, member: NodeId) {
    use Action::*;
    let f = t.word(
        g,
        "failover",
        "Autonomous failover policy (docs/failover.md)",
    );
    let mode = t.slot(
        f,
        "<mode>",
        "auto: evpnr moves the gateway on its own; manual: only operators and drains",
        "mode",
        Kind::Word,
        Source::Words(MODES),
    );
    t.act(mode, SetFailover);
    let parent = t.node("failover-options", "");
    let opts = [
        t.pair(
            parent,
            "preempt",
            "Preemption delay (e.g. 30s), or off (default off)",
            "<duration|off>",
            "preempt",
            Kind::DurationOrOff,
            Source::None,
            Some(SetFailover),
        ),
        t.pair(
            parent,
            "hold-down",
            "No other autonomous move this long after one (default 10s)",
            "<duration>",
            "hold-down",
            Kind::Duration,
            Source::None,
            Some(SetFailover),
        ),
        t.pair(
            parent,
            "flap-window",
            "Flap damping window (default 5m)",
            "<duration>",
            "flap-window",
            Kind::Duration,
            Source::None,
            Some(SetFailover),
        ),
        t.pair(
            parent,
            "flap-limit",
            "Autonomous moves allowed per flap window; 0: no damping (default 3)",
            "<n>",
            "flap-limit",
            Kind::Number,
            Source::None,
            Some(SetFailover),
        ),
        t.pair(
            parent,
            "warm-up",
            "A (re)joined or recovered member is eligible after this long (default 5s)",
            "<duration>",
            "warm-up",
            Kind::Duration,
            Source::None,
            Some(SetFailover),
        ),
    ];
    let words: Vec<NodeId> = t.nodes[parent].children.clone();
    t.nodes[mode].children.extend(&words);
    for o in opts {
        t.nodes[o].children.extend(&words);
    }
    let m = t.slot(
        member,
        "<instance>",
        "A member of the group",
        "instance",
        Kind::Instance,
        Source::GroupMembers,
    );
    t.pair(
        m,
        "priority",
        "Failover priority, 0..1000 (higher wins; default 100)",
        "<n>",
        "priority",
        Kind::Number,
        Source::None,
        Some(SetPriority),
    );
}

/// `instance <i> drain|resume` (under the instance slot `i`).
pub fn instance(t: &mut Tree, i: NodeId) {
    let x = t.word(
        i,
        "drain",
        "Maintenance: move the gateways it holds away; never a failover candidate",
    );
    t.act(x, Action::Drain);
    let x = t.word(i, "resume", "End a drain (eligible again after warm-up)");
    t.act(x, Action::Resume);
}

/// `failover suspend|resume` and `show failover` (under the root and `show`).
pub fn fleet(t: &mut Tree, root: NodeId, show: NodeId) {
    let f = t.word(root, "failover", "The fleet-wide failover switch");
    let s = t.slot(
        f,
        "<suspend|resume>",
        "suspend: hold every autonomous failover (drains still move); resume: allow it",
        "switch",
        Kind::Word,
        Source::Words(SWITCH),
    );
    t.act(s, Action::SuspendFailover);
    let x = t.word(
        show,
        "failover",
        "Show whether failover is suspended and the drained instances",
    );
    t.act(x, Action::FailoverStatus);
}
