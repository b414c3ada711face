//! The event schema: every event the daemons publish, by name, with its type,
//! level, source and fields — the one place in the code where an event is
//! defined (`docs/events.md` is generated from [`Event::ALL`] and checked by a
//! test, so the page cannot drift).
//!
//! Rules of the schema, for every feature that adds events (failover, audit,
//! dashboard):
//! * a name means one thing, has one type and one level;
//! * the levels are debug, info, warn and error — no others;
//! * fields are kebab- or snake-case keys with string values; a field marked
//!   optional may be absent, every other field is always present;
//! * `log` records (one per log line) are not in the catalogue: their message
//!   is free text and automation must not key on it.
//!
//! A daemon publishes a catalogued event through `EventBroker::emit`, which
//! takes an [`Event`], so an unlisted name does not compile; in debug builds
//! (every test) a field the catalogue does not list, or a required field that
//! is missing, panics.
use std::fmt;

/// Event severity, ordered debug < info < warn < error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl EventLevel {
    /// Wire name: "debug", "info", "warn", "error".
    pub fn as_str(self) -> &'static str {
        match self {
            EventLevel::Debug => "debug",
            EventLevel::Info => "info",
            EventLevel::Warn => "warn",
            EventLevel::Error => "error",
        }
    }

    /// Parse a wire name; errors name the accepted values.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "debug" => Ok(EventLevel::Debug),
            "info" => Ok(EventLevel::Info),
            "warn" | "warning" => Ok(EventLevel::Warn),
            "error" => Ok(EventLevel::Error),
            _ => Err(format!(
                "{} is not a level (debug, info, warn, error)",
                crate::excerpt(s)
            )),
        }
    }
}

/// Event types. `Snapshot` events only appear at the start of a stream that
/// asked for a snapshot; `Log` records are not catalogued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    Log,
    Crud,
    Failover,
    Snapshot,
    /// One per state-changing call (docs/security.md, "Audit").
    Audit,
}

impl EventKind {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Log => "log",
            EventKind::Crud => "crud",
            EventKind::Failover => "failover",
            EventKind::Snapshot => "snapshot",
            EventKind::Audit => "audit",
        }
    }

    /// Parse a wire name (only the subscribable kinds).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "log" => Ok(EventKind::Log),
            "crud" => Ok(EventKind::Crud),
            "failover" => Ok(EventKind::Failover),
            "audit" => Ok(EventKind::Audit),
            _ => Err(format!(
                "{} is not an event type (log, crud, failover, audit)",
                crate::excerpt(s)
            )),
        }
    }
}

/// Which program publishes an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Evpnr,
    Evpnd,
    /// Both daemons (the same meaning; fields noted per daemon).
    Both,
}

impl Source {
    /// As written in `docs/events.md`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Evpnr => "evpnr",
            Source::Evpnd => "evpnd",
            Source::Both => "both",
        }
    }
}

macro_rules! catalogue {
    ($( $(#[$m:meta])* $v:ident = $name:literal, $kind:ident, $level:ident, $src:ident,
        [$($f:literal),* $(,)?], $meaning:literal; )*) => {
        /// Every catalogued event. See the module docs for the rules.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Event {
            $( $(#[$m])* $v, )*
        }

        impl Event {
            /// Every event, in catalogue (and documentation) order.
            pub const ALL: &'static [Event] = &[ $( Event::$v, )* ];

            /// The wire name (the event's `message`).
            pub fn name(self) -> &'static str {
                match self { $( Event::$v => $name, )* }
            }

            /// The event's type.
            pub fn kind(self) -> EventKind {
                match self { $( Event::$v => EventKind::$kind, )* }
            }

            /// The event's level.
            pub fn level(self) -> EventLevel {
                match self { $( Event::$v => EventLevel::$level, )* }
            }

            /// Who publishes it.
            pub fn source(self) -> Source {
                match self { $( Event::$v => Source::$src, )* }
            }

            /// Its fields; a trailing `?` marks an optional one.
            pub fn fields(self) -> &'static [&'static str] {
                match self { $( Event::$v => &[$($f),*], )* }
            }

            /// What it means (one line).
            pub fn meaning(self) -> &'static str {
                match self { $( Event::$v => $meaning, )* }
            }
        }
    };
}

catalogue! {
    // ---- evpnr: groups, members, instances (crud) ----
    GroupCreated = "group-created", Crud, Info, Evpnr, ["group", "vni", "mtu", "vmac"],
        "a group was created";
    GroupDeleted = "group-deleted", Crud, Info, Evpnr, ["group", "deferred"],
        "a group was forgotten; its members were told to leave (`deferred`: those that could not be reached)";
    MemberLeaveDeferred = "member-leave-deferred", Crud, Warn, Evpnr, ["group", "instance", "error"],
        "a member could not be told to leave a deleted group; its resync cleans up";
    GroupMemberAdded = "group-member-added", Crud, Info, Evpnr, ["group", "instance"],
        "an instance joined a group (eVPN and BVI configured)";
    GroupMemberAddFailed = "group-member-add-failed", Crud, Error, Evpnr, ["group", "instance", "error"],
        "a join failed and was rolled back";
    GroupMemberRemoved = "group-member-removed", Crud, Info, Evpnr, ["group", "instance", "was-primary"],
        "an instance left a group and was cleaned up";
    GroupMemberRemovedDeferred = "group-member-removed-deferred", Crud, Warn, Evpnr,
        ["group", "instance", "was-primary", "deferred-error"],
        "an instance left a group but could not be reached; its resync cleans up";
    GroupMtuSet = "group-mtu-set", Crud, Info, Evpnr, ["group", "mtu"],
        "the group's MTU was stored (applied to members next)";
    GroupBviCreated = "groupbvi-created", Crud, Info, Evpnr, ["group", "vmac", "addresses"],
        "a group's gateway identity was created, unbound";
    GroupBviDeleted = "groupbvi-deleted", Crud, Info, Evpnr, ["group"],
        "a group's gateway identity was deleted";
    GroupBviAddressAdded = "groupbvi-address-added", Crud, Info, Evpnr, ["group", "address"],
        "a gateway address was stored (after the primary, if any, accepted it)";
    GroupBviAddressDeleted = "groupbvi-address-deleted", Crud, Info, Evpnr, ["group", "address"],
        "a gateway address was removed (after the primary, if any, accepted it)";
    GroupBviAddressRefused = "groupbvi-address-refused", Crud, Warn, Evpnr,
        ["group", "instance", "address", "add", "error"],
        "the primary refused an address change; nothing was stored";
    GroupBviAddressesApplied = "groupbvi-addresses-applied", Crud, Info, Evpnr,
        ["instance", "group", "addresses"],
        "the primary (already holding the vMAC) was given a new address set: an address edit or a resync repairing them, never a new claim";
    AddressDeprecated = "address-deprecated", Crud, Warn, Evpnr, ["group", "address", "reason"],
        "a gateway address was accepted but is of a deprecated class (docs/validation.md)";
    MemberConfigured = "member-configured", Crud, Info, Evpnr, ["instance", "group", "mac"],
        "a member's eVPN and BVI for a group were created";
    MemberConfigureRolledBack = "member-configure-rolled-back", Crud, Error, Evpnr,
        ["instance", "group", "error", "rolled-back"],
        "configuring a member failed; its eVPN was deleted again";
    MemberEvpnDeleted = "member-evpn-deleted", Crud, Info, Evpnr, ["instance", "evpn"],
        "a member's eVPN (and BVI) for a group was deleted";
    MemberBviReplaced = "member-bvi-replaced", Crud, Info, Evpnr, ["instance", "group", "mtu"],
        "a member's BVI got a new per-host MAC or MTU";
    MemberEvpnEnabledSet = "member-evpn-enabled-set", Crud, Info, Evpnr, ["instance", "evpn", "enabled"],
        "`SetEvpnInstanceEnabled` through evpnr succeeded";
    InstanceRegistered = "instance-registered", Crud, Info, Evpnr,
        ["instance", "address", "new", "ready", "version"],
        "an instance registered (new, or from a new address)";
    InstanceReady = "instance-ready", Crud, Info, Evpnr, ["instance"],
        "an instance reported itself ready";
    InstanceNotReady = "instance-not-ready", Crud, Info, Evpnr, ["instance"],
        "an instance reported itself not ready";
    InstanceConnected = "instance-connected", Crud, Info, Evpnr, ["instance"],
        "evpnr's connection to a member came up (and the member proved its identity)";
    InstanceUnreachable = "instance-unreachable", Crud, Warn, Evpnr, ["instance"],
        "evpnr lost its connection to a member";
    InstanceResynced = "instance-resynced", Crud, Info, Evpnr, ["instance", "changes"],
        "a resync changed something on a member";
    InstanceResyncFailed = "instance-resync-failed", Crud, Error, Evpnr, ["instance", "error"],
        "a resync failed; retried on the next trigger";
    InstanceDeleted = "instance-deleted", Crud, Info, Evpnr, ["instance"],
        "an instance was forgotten";
    InstanceRegistrationRefused = "instance-registration-refused", Crud, Warn, Evpnr,
        ["instance", "old_address", "address", "reason"],
        "a known instance ID tried to register from another address that did not prove to be gone; refused";
    InstanceRegistrationForced = "instance-registration-forced", Crud, Warn, Evpnr,
        ["instance", "old_address", "address", "reason"],
        "the same, accepted because the registration set `force`";
    InstanceIdentityMismatch = "instance-identity-mismatch", Crud, Error, Evpnr, ["instance", "reason"],
        "the evpnd answering at a member's address is another instance; evpnr sends it nothing";
    RegistryEpochStale = "registry-epoch-stale", Crud, Error, Evpnr,
        ["instance", "registry_epoch", "member_epoch"],
        "a registering evpnd has accepted a newer registry epoch than this evpnr's: this registry is stale";
    StateStoreFailed = "state-store-failed", Crud, Error, Both, ["path", "error"],
        "the state file could not be saved: evpnr pauses orchestration, evpnd refuses writes, until a save succeeds";
    StateStoreRecovered = "state-store-recovered", Crud, Info, Both, ["path", "last-error"],
        "the state file is saved again after a failure";

    // ---- evpnr: the gateway (failover) ----
    MoveStarted = "move-started", Failover, Info, Evpnr, ["group", "from", "to", "force", "op"],
        "`MoveGroupBVI` (`op=move`) or `BindGroupBVI` (`op=bind`) began placing the GroupBVI";
    MoveSettled = "move-settled", Failover, Info, Evpnr, ["group", "instance", "polls", "waited-ms"],
        "within a move/bind: the target saw no other VTEP announce the vMAC";
    MoveSettleTimeout = "move-settle-timeout", Failover, Warn, Evpnr,
        ["group", "instance", "vteps", "polls", "waited-ms"],
        "within a move/bind: other VTEPs still announced the vMAC at `move.max-wait`";
    MoveSettleNoEvidence = "move-settle-no-evidence", Failover, Warn, Evpnr,
        ["group", "instance", "error", "waited-ms"],
        "within a move/bind: the target could not look";
    BindSettled = "bind-settled", Failover, Info, Evpnr, ["group", "instance", "polls", "waited-ms"],
        "the evidence wait before any other claim of the vMAC (a resync binding the primary, a primary joining, a primary unblocked by a release): no other VTEP announces it";
    BindSettleTimeout = "bind-settle-timeout", Failover, Warn, Evpnr,
        ["group", "instance", "vteps", "polls", "waited-ms"],
        "the same wait: other VTEPs still announced the vMAC at `move.max-wait`";
    BindSettleNoEvidence = "bind-settle-no-evidence", Failover, Warn, Evpnr,
        ["group", "instance", "error", "waited-ms"],
        "the same wait: the member could not look";
    GroupBviBound = "groupbvi-bound", Failover, Info, Both,
        ["instance?", "evpn?", "group", "mac", "addresses"],
        "a member took the vMAC: a new claim, never an address edit (evpnr: `instance` = the member; evpnd: `evpn` = its eVPN)";
    GroupBviReleased = "groupbvi-released", Failover, Info, Both, ["instance?", "evpn?", "group", "mac?"],
        "a member confirmed it does not hold the vMAC, released now or held nothing (evpnr: `instance`; evpnd: `evpn`, `mac`)";
    GroupBviReleaseSkipped = "groupbvi-release-skipped", Failover, Warn, Evpnr, ["group", "instance", "error"],
        "a forced move skipped an unreachable possible holder";
    GroupBviStrayReleased = "groupbvi-stray-released", Failover, Warn, Evpnr, ["group", "instance", "primary"],
        "a resync found `instance` holding the vMAC although `primary` is the primary (e.g. after a healed partition): it is released (rule R11)";
    GroupBviUnassigned = "groupbvi-unassigned", Failover, Warn, Evpnr, ["group", "instance"],
        "the primary left the group; the GroupBVI has no primary";
    GatewayDown = "gateway-down", Failover, Warn, Evpnr, ["group", "instance", "vmac", "addresses", "cause"],
        "an operation took a bound gateway down (`cause`: group-deleted, primary-removed, groupbvi-deleted, released, evpn-disabled)";
    MoveFinished = "move-finished", Failover, Info, Evpnr, ["group", "from", "to", "duration-ms", "skipped", "op"],
        "the move/bind ended with the target bound";
    MoveRefused = "move-refused", Failover, Warn, Evpnr, ["group", "from", "to", "unreachable"],
        "a possible holder cannot be reached; nothing was changed (retry with force)";
    MoveFailed = "move-failed", Failover, Error, Evpnr, ["group", "from", "to", "error"],
        "a move/bind failed half-way; the GroupBVI is left unassigned";
    MoveTimeline = "move-timeline", Failover, Debug, Evpnr,
        ["group", "to", "op", "result", "total-us", "steps"],
        "where one MoveGroupBVI / BindGroupBVI or autonomous failover move (`op=failover`; its `total-us` counts from `failover-started`) spent its time (one per operation, after its answer or outcome; `result`: ok or error; `total-us`: until the answer): `steps` is `<start>+<duration> <who> <what>` entries in µs after evpnr received the request, joined by `; `, ordered by start; `who` is `evpnr` or the member whose own clock timed the step (placed inside evpnr's call to it, the transit split evenly; docs/benchmarks.md #16)";
    InstanceAlive = "instance-alive", Failover, Info, Evpnr, ["instance", "previous", "heartbeat_age_ms"],
        "a member's heartbeats (again) arrive within `liveness.suspect-after`";
    InstanceSuspect = "instance-suspect", Failover, Warn, Evpnr, ["instance", "previous", "heartbeat_age_ms"],
        "no heartbeat for `liveness.suspect-after`: the member may be hung; calls to it fail at once";
    InstanceDead = "instance-dead", Failover, Error, Evpnr, ["instance", "previous", "heartbeat_age_ms"],
        "no heartbeat for `liveness.dead-after`";
    GroupFailoverSet = "group-failover-set", Failover, Info, Evpnr,
        ["group", "mode", "preempt", "hold-down", "flap-window", "flap-limit", "warm-up"],
        "`SetGroupFailover`: the group's failover policy changed (`mode` auto or manual; `preempt` off or a delay)";
    GroupMemberPrioritySet = "group-member-priority-set", Failover, Info, Evpnr, ["group", "instance", "priority"],
        "`SetGroupMemberPriority`: a member's failover priority changed (higher wins)";
    InstanceDrained = "instance-drained", Failover, Warn, Evpnr, ["instance", "groups"],
        "`DrainInstance`: the instance is in maintenance; the gateways it holds (`groups`) are moved away and it is never a failover candidate";
    InstanceResumed = "instance-resumed", Failover, Info, Evpnr, ["instance"],
        "`ResumeInstance`: a drained instance may be a failover candidate again (after the group's warm-up)";
    FailoverSuspended = "failover-suspended", Failover, Warn, Evpnr, [],
        "`SetFailoverSuspended`: every autonomous failover of the fleet is suspended (drains still move)";
    FailoverResumed = "failover-resumed", Failover, Info, Evpnr, [],
        "`SetFailoverSuspended`: autonomous failover is allowed again";
    FailoverStarted = "failover-started", Failover, Info, Evpnr, ["group", "from", "to", "reason"],
        "the failover driver began an autonomous move (`reason`: primary-unhealthy, primary-unreachable, primary-withdrawn, primary-drained, preempt, no-primary); its `move-*` events carry `op=failover`";
    FailoverFinished = "failover-finished", Failover, Info, Evpnr, ["group", "from", "to", "reason", "duration-ms", "settle"],
        "an autonomous move bound the gateway on `to`; `settle`: how the bind waited — `move` (a planned move: released first, like any move), `move-hold` (… whose old primary answered its release cut off from the fabric: a clear look held for `move.takeover-min-settle`, rule F16), `least` (a takeover: not before `move.takeover-min-settle`), `released-evidence` (a takeover whose old primary answered its release with evidence that its peers already dropped its routes: no least settle, rule F15)";
    FailoverBlocked = "failover-blocked", Failover, Error, Evpnr, ["group", "candidate", "reason", "error", "retry-ms"],
        "an autonomous move did not bind (a takeover's candidate saw another VTEP still announce the vMAC, or the move failed); retried after `retry-ms` (100 ms doubling to 5 s)";
    FailoverReleaseLate = "failover-release-late", Failover, Warn, Evpnr,
        ["group", "instance", "result", "error"],
        "a takeover's release of the old primary was not answered within `failover.release-wait`; the takeover went on counting it as not released (rule F14) and the release kept running: this is its late outcome (`result`: released, failed, or skipped when the instance became primary again before the release was sent; `error` empty unless failed)";
    WithdrawalReported = "withdrawal-reported", Failover, Warn, Evpnr,
        ["group", "instance", "primary", "fabric-up-ms"],
        "a candidate (`instance`) that watches the group's vMAC saw the primary's announcement withdrawn from the fabric (announced before, now by no VTEP); `fabric-up-ms`: how long its own BGP sessions had been established (0: its view is not trustworthy). It triggers the failover decision at once (rule F11); it is never the takeover's evidence";
    WithdrawalCleared = "withdrawal-cleared", Failover, Info, Evpnr,
        ["group", "instance", "primary", "announcers"],
        "a candidate that had reported the primary's announcement withdrawn sees the vMAC announced again (`announcers`), or no longer watches it (empty: the primary changed, or the group is no longer auto)";
    FailoverHeld = "failover-held", Failover, Warn, Evpnr, ["group", "reason", "held"],
        "a move is wanted but held back (`held`: suspended, hold-down, flapping, no-candidate with each member's reason, preempt-delay, silent: the unreachable primary's eVPN is disabled, primary-answers: the primary missing by its heartbeats answered evpnr's direct call ready and healthy, F17); once per change (a warm-up countdown is no change)";

    // ---- evpnd (relayed by evpnr with `instance` set) ----
    EvpnCreated = "evpn-created", Crud, Info, Evpnd, ["evpn", "vni", "bd"],
        "an eVPN (bridge domain, VXLAN, BIRD snippet) was created";
    EvpnDeleted = "evpn-deleted", Crud, Info, Evpnd, ["evpn"],
        "an eVPN was deleted";
    EvpnEnabled = "evpn-enabled", Crud, Info, Evpnd, ["evpn"],
        "an eVPN was enabled";
    EvpnDisabled = "evpn-disabled", Crud, Info, Evpnd, ["evpn"],
        "an eVPN was disabled";
    BviCreated = "bvi-created", Crud, Info, Evpnd, ["evpn", "mac"],
        "the eVPN's BVI was created";
    BviReplaced = "bvi-replaced", Crud, Info, Evpnd, ["evpn", "mac", "mtu"],
        "the eVPN's BVI got a new per-host MAC or MTU";
    BviDeleted = "bvi-deleted", Crud, Info, Evpnd, ["evpn"],
        "the eVPN's BVI was deleted";
    GroupBviAddressesChanged = "groupbvi-addresses-changed", Crud, Info, Evpnd,
        ["evpn", "group", "mac", "addresses"],
        "this host already held the vMAC; only its gateway addresses changed";
    GroupBviDropped = "groupbvi-dropped", Failover, Info, Evpnd, ["evpn", "group", "mac", "reason"],
        "reconcile found the vMAC gone from the dataplane; the host became a candidate and waits for the registry (evpnr resyncs it at once)";
    DataplaneVerifyHealed = "dataplane-verify-healed", Failover, Info, Evpnd, ["evpn", "call", "fixes"],
        "a bind or release read its effect back and the dataplane differed; evpnd fixed it before answering";
    BirdStaleRouteCleared = "bird-stale-route-cleared", Failover, Info, Evpnd, ["evpn", "mac"],
        "linux dialect: after a release BIRD still announced the vMAC from `bridge_<slug>`; that protocol was restarted and the route is gone";
    BviWithoutLinuxSide = "bvi-without-linux-side", Crud, Warn, Evpnd, ["evpn", "reason", "setting"],
        "VPP refused the BVI's linux-cp pair and `vpp.linux-cp` is `auto`: the BVI works without its Linux interface; retried at every reconcile (once per episode)";
    BviLinuxSideRestored = "bvi-linux-side-restored", Crud, Info, Evpnd, ["evpn"],
        "a BVI that had no Linux side has it again (or was deleted)";
    HealthCheckDown = "health-check-down", Failover, Warn, Evpnd, ["check", "evpn?", "error"],
        "a health check went down (`fall` failed probes; its first result at start-up decides at once); `evpn` for a per-eVPN check";
    HealthCheckUp = "health-check-up", Failover, Info, Evpnd, ["check", "evpn?"],
        "a health check came up (`rise` successful probes, or its first result)";
    HealthDown = "health-down", Failover, Warn, Evpnd, ["scope", "evpn?", "reason"],
        "the host (`scope=host`) or one eVPN (`scope=evpn`) became unhealthy; `reason` names every down check and its last error; binds are refused while the host is down";
    HealthUp = "health-up", Failover, Info, Evpnd, ["scope", "evpn?"],
        "the host or one eVPN is healthy again";
    SelfFenced = "self-fenced", Failover, Error, Evpnd, ["evpn", "group", "mac", "reason"],
        "this primary released its gateway itself: BIRD stopped answering or every BGP session was down for `health.self-fence.hold`; binds are refused until health is up";
    SelfFenceFailed = "self-fence-failed", Failover, Error, Evpnd, ["evpn", "group", "reason", "error"],
        "a self-fencing release failed: the vMAC counts as still held; retried every second";
    SelfFenceLifted = "self-fence-lifted", Failover, Info, Evpnd, ["reason"],
        "the condition that fenced this host is gone (`reason`: the old one); binds are accepted again (evpnr's resync may re-bind)";
    StateFileMissing = "state-file-missing", Crud, Error, Evpnd, ["path", "bridge-domains", "snippets"],
        "the state file is missing while the dataplane or BIRD hold managed objects: nothing is removed, writes are refused";

    // ---- audit (docs/security.md, "Audit") ----
    Audit = "audit", Audit, Info, Both,
        ["id", "direction", "who", "role?", "on-behalf-of?", "peer?", "target?", "parent?",
         "rpc", "args", "result", "error?", "failed-calls?"],
        "a state-changing call, accepted or refused, as written to the audit log: `direction` in (served), out (evpnr calling a member for `parent`) or decision (evpnr acting on its own: `rpc` evpnr:failover or evpnr:resync); `args` the key fields; `result` ok or the gRPC code, a decision's ok or `<step>: <CODE>` (what the decision came to); `failed-calls` a decision's calls that failed along the way";

    // ---- snapshot (the head of a `WatchEvents` stream that asked for it) ----
    SnapshotInstance = "instance", Snapshot, Info, Evpnr, ["address", "state", "ready", "groups"],
        "one registered instance (its ID in `instance`)";
    SnapshotGroup = "group", Snapshot, Info, Evpnr, ["group", "vni", "vmac", "members", "primary", "addresses"],
        "one group";
    SnapshotEvpn = "evpn", Snapshot, Info, Evpnd, ["evpn", "vni", "enabled", "bvi?", "mac?", "role?"],
        "one eVPN of this host (`role`: primary or candidate, when it has a BVI)";
    EndOfSnapshot = "end-of-snapshot", Snapshot, Info, Both, ["last-seq"],
        "the snapshot is complete; live events with a higher `seq` follow";
}

impl Event {
    /// The catalogued event with this wire name.
    pub fn from_name(name: &str) -> Option<Event> {
        Event::ALL.iter().copied().find(|e| e.name() == name)
    }

    /// Whether `key` is one of this event's fields.
    pub fn has_field(self, key: &str) -> bool {
        self.fields()
            .iter()
            .any(|f| f.strip_suffix('?').unwrap_or(f) == key)
    }

    /// What is wrong with a set of field keys for this event (an unlisted
    /// key, a required one missing), or `None`.
    pub fn check_fields<'a>(self, keys: impl IntoIterator<Item = &'a str>) -> Option<String> {
        let keys: Vec<&str> = keys.into_iter().collect();
        if let Some(k) = keys.iter().find(|k| !self.has_field(k)) {
            return Some(format!("event {}: field {k} is not in the catalogue", self));
        }
        let missing = self
            .fields()
            .iter()
            .find(|f| !f.ends_with('?') && !keys.contains(f))?;
        Some(format!(
            "event {}: required field {missing} is missing",
            self
        ))
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The tables of `docs/events.md` (between its generated-section markers).
pub fn markdown_tables() -> String {
    let mut out = String::new();
    type Pick = fn(Event) -> bool;
    let sections: [(&str, Pick); 5] = [
        ("### crud", |e| e.kind() == EventKind::Crud),
        ("### failover", |e| e.kind() == EventKind::Failover),
        ("### audit", |e| e.kind() == EventKind::Audit),
        ("### snapshot", |e| e.kind() == EventKind::Snapshot),
        ("### debug", |e| e.level() == EventLevel::Debug),
    ];
    for (title, pick) in sections {
        let rows: Vec<Event> = Event::ALL.iter().copied().filter(|e| pick(*e)).collect();
        if rows.is_empty() {
            continue;
        }
        out.push_str(title);
        out.push_str("\n\n| name | level | from | meaning | fields |\n|---|---|---|---|---|\n");
        for e in rows {
            let fields: Vec<String> = e
                .fields()
                .iter()
                .map(|f| match f.strip_suffix('?') {
                    Some(k) => format!("{k} (optional)"),
                    None => (*f).to_string(),
                })
                .collect();
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                e.name(),
                e.level().as_str(),
                e.source().as_str(),
                e.meaning(),
                fields.join(", ")
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_kebab_case_and_round_trip() {
        let mut seen = BTreeSet::new();
        for e in Event::ALL {
            assert!(seen.insert(e.name()), "{e} twice");
            assert!(
                e.name()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{e}"
            );
            assert_eq!(Event::from_name(e.name()), Some(*e));
            assert_ne!(
                e.kind(),
                EventKind::Log,
                "{e}: log records are not catalogued"
            );
            assert!(!e.meaning().is_empty());
        }
        assert_eq!(Event::from_name("no-such-event"), None);
    }

    #[test]
    fn fields_are_checked() {
        let e = Event::GroupBviReleased;
        assert_eq!(e.check_fields(["instance", "group"]), None);
        assert_eq!(e.check_fields(["evpn", "group", "mac"]), None);
        assert!(
            e.check_fields(["instance"])
                .unwrap()
                .contains("required field group")
        );
        assert!(
            e.check_fields(["group", "vmac"])
                .unwrap()
                .contains("field vmac")
        );
    }

    #[test]
    fn the_events_page_is_generated_from_the_catalogue() {
        let page = include_str!("../../../docs/events.md");
        let (begin, end) = ("<!-- catalogue:begin -->\n", "<!-- catalogue:end -->");
        let start = page
            .find(begin)
            .expect("docs/events.md has the begin marker")
            + begin.len();
        let stop = page.find(end).expect("docs/events.md has the end marker");
        let want = markdown_tables();
        if page[start..stop] != want {
            if std::env::var_os("EVPN_UPDATE_DOCS").is_some() {
                let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/events.md");
                let fresh = format!("{}{}{}", &page[..start], want, &page[stop..]);
                std::fs::write(path, fresh).expect("write docs/events.md");
            } else {
                panic!(
                    "docs/events.md is out of date with evpn_model::event; \
                     run `EVPN_UPDATE_DOCS=1 cargo test -p evpn-model events_page`"
                );
            }
        }
    }
}
