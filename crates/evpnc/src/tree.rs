//! The one declarative command tree. Dispatch ([`crate::parse`]), `?` help
//! and TAB completion ([`crate::complete`]) all walk this tree; there is no
//! second command table.
//!
//! The tree is an arena of [`Node`]s. A node is either a fixed word
//! (`show`, `group`, …) or a slot (`<instance>`, `<prefix>`, …) that
//! captures the typed value under a key, validates it client-side
//! ([`Kind`]) and knows where its live completion candidates come from
//! ([`Source`]). A node with an [`Action`] is a complete command; its
//! handler is `commands::run`. Children may point back to earlier nodes,
//! which is how optional keyword/value pairs in any order are expressed
//! (`group <g> create vni <n> [mtu <n>] [vmac <mac>] …`).

mod failover;

/// Index of a node in [`Tree::nodes`].
pub type NodeId = usize;

/// Where a slot's completion candidates come from (live from evpnr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// No live candidates (free value: numbers, prefixes, MACs).
    None,
    /// `ListInstances`.
    Instances,
    /// `ListGroups`.
    Groups,
    /// Members of the group captured earlier (`GetGroup`).
    GroupMembers,
    /// Gateway addresses of the captured group's BVI (`GetGroup`).
    GroupAddresses,
    /// eVPN slugs of the captured instance (`ListEvpnInstances`).
    Evpns,
    /// A fixed list of words.
    Words(&'static [&'static str]),
}

/// How a slot's value is validated before anything is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Instance ID (DNS label).
    Instance,
    /// Group ID / eVPN slug.
    Slug,
    /// VXLAN network identifier.
    Vni,
    /// MTU in bytes.
    Mtu,
    /// Unicast MAC address.
    Mac,
    /// Interface prefix `address/len`.
    Prefix,
    /// BGP route target: `rt:<a>:<b>` or BIRD's `(rt, a, b)`.
    RouteTarget,
    /// Positive count.
    Count,
    /// Non-negative number (priority, flap limit; bounds checked by evpnr).
    Number,
    /// Duration: `250ms`, `5s`, `2m`, `1h`.
    Duration,
    /// A duration, or `off`.
    DurationOrOff,
    /// One of the [`Source::Words`] words (prefix abbreviation allowed).
    Word,
}

/// A complete command: what `commands::run` executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ShowVersion,
    ListInstances,
    GetInstance,
    ListEvpns,
    GetEvpn,
    ListBvis,
    GetBvi,
    VppInfo,
    BirdInfo,
    InstanceStatus,
    ListGroups,
    GetGroup,
    CreateGroup,
    DeleteGroup,
    AddMember,
    RemoveMember,
    SetMtu,
    CreateGroupBvi,
    DeleteGroupBvi,
    AddAddress,
    DelAddress,
    MovePrimary,
    Bind,
    Release,
    EvpnEnable,
    EvpnDisable,
    DeleteInstance,
    SetFailover,
    SetPriority,
    Drain,
    Resume,
    SuspendFailover,
    FailoverStatus,
    WatchEvents,
    Help,
    Quit,
}

impl Action {
    /// The Evpnr RPCs an action calls (for the docs and the coverage test).
    pub fn rpcs(self) -> &'static [&'static str] {
        use Action::*;
        match self {
            ShowVersion | Help | Quit => &[],
            ListInstances => &["ListInstances"],
            GetInstance => &["GetInstance"],
            ListEvpns => &["ListEvpnInstances"],
            GetEvpn => &["GetEvpnInstance"],
            ListBvis => &["ListBVIs"],
            GetBvi => &["GetBVI"],
            VppInfo => &["GetVPPInfo"],
            BirdInfo => &["GetBirdInfo"],
            InstanceStatus => &["GetInstanceStatus"],
            ListGroups => &["ListGroups"],
            GetGroup => &["GetGroup"],
            CreateGroup => &["CreateGroup"],
            DeleteGroup => &["DeleteGroup"],
            AddMember => &["AddGroupMember"],
            RemoveMember => &["RemoveGroupMember"],
            SetMtu => &["SetGroupMTU"],
            CreateGroupBvi => &["CreateGroupBVI"],
            DeleteGroupBvi => &["DeleteGroupBVI"],
            AddAddress => &["AddGroupBVIAddress"],
            DelAddress => &["DeleteGroupBVIAddress"],
            MovePrimary => &["MoveGroupBVI"],
            Bind => &["BindGroupBVI"],
            Release => &["ReleaseGroupBVI"],
            EvpnEnable | EvpnDisable => &["SetEvpnInstanceEnabled"],
            DeleteInstance => &["DeleteInstance"],
            SetFailover => &["SetGroupFailover"],
            SetPriority => &["SetGroupMemberPriority"],
            Drain => &["DrainInstance"],
            Resume => &["ResumeInstance"],
            SuspendFailover => &["SetFailoverSuspended"],
            FailoverStatus => &["GetFailoverStatus"],
            WatchEvents => &["WatchEvents"],
        }
    }
}

/// Slot details.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    /// Key the value is captured under (e.g. "instance", "prefix").
    pub key: &'static str,
    /// Validation.
    pub kind: Kind,
    /// Completion source.
    pub source: Source,
    /// Whether the key may be captured several times (e.g. `address`).
    pub repeat: bool,
}

/// One node of the tree.
#[derive(Debug, Clone)]
pub struct Node {
    /// The word as typed (fixed) or shown (slot, e.g. `<instance>`).
    pub word: &'static str,
    /// One-line help.
    pub help: &'static str,
    /// Set for slots.
    pub slot: Option<Slot>,
    /// For fixed words that act as flags (`force`, `snapshot`): captured
    /// under this key with the word as value.
    pub flag: Option<&'static str>,
    /// Children in display order.
    pub children: Vec<NodeId>,
    /// Set when the words up to here form a complete command.
    pub action: Option<Action>,
}

/// The arena; node 0 is the root.
#[derive(Debug, Clone)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

pub const ROOT: NodeId = 0;

impl Tree {
    fn node(&mut self, word: &'static str, help: &'static str) -> NodeId {
        self.nodes.push(Node {
            word,
            help,
            slot: None,
            flag: None,
            children: Vec::new(),
            action: None,
        });
        self.nodes.len() - 1
    }

    /// Add a fixed word under `parent`.
    fn word(&mut self, parent: NodeId, word: &'static str, help: &'static str) -> NodeId {
        let id = self.node(word, help);
        self.nodes[parent].children.push(id);
        id
    }

    /// Add a slot under `parent`.
    fn slot(
        &mut self,
        parent: NodeId,
        word: &'static str,
        help: &'static str,
        key: &'static str,
        kind: Kind,
        source: Source,
    ) -> NodeId {
        let id = self.node(word, help);
        self.nodes[id].slot = Some(Slot {
            key,
            kind,
            source,
            repeat: false,
        });
        self.nodes[parent].children.push(id);
        id
    }

    fn act(&mut self, id: NodeId, action: Action) -> NodeId {
        self.nodes[id].action = Some(action);
        id
    }

    /// `parent word <slot>` with the slot completing `action`.
    #[allow(clippy::too_many_arguments)]
    fn pair(
        &mut self,
        parent: NodeId,
        word: &'static str,
        help: &'static str,
        slot: &'static str,
        key: &'static str,
        kind: Kind,
        source: Source,
        action: Option<Action>,
    ) -> NodeId {
        let w = self.word(parent, word, help);
        let s = self.slot(w, slot, help, key, kind, source);
        self.nodes[s].action = action;
        s
    }

    /// Children of `id`.
    pub fn children(&self, id: NodeId) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes[id].children.iter().map(|&c| (c, &self.nodes[c]))
    }

    /// Every node reachable from the root (loops are followed once).
    pub fn reachable(&self) -> Vec<NodeId> {
        let mut seen = vec![false; self.nodes.len()];
        let mut out = Vec::new();
        let mut stack = vec![ROOT];
        while let Some(n) = stack.pop() {
            if std::mem::replace(&mut seen[n], true) {
                continue;
            }
            out.push(n);
            stack.extend(self.nodes[n].children.iter().rev());
        }
        out
    }

    /// Check the structural rules: at most one slot child per node, no
    /// empty or duplicate sibling words, every node either has an action or
    /// children (no dead ends), and slot children of loops are reachable.
    pub fn validate(&self) -> Result<(), String> {
        for i in self.reachable() {
            let n = &self.nodes[i];
            if n.word.is_empty() && i != ROOT {
                return Err(format!("node {i} has an empty word"));
            }
            if n.action.is_none() && n.children.is_empty() {
                return Err(format!("node {i} {:?} is a dead end", n.word));
            }
            let mut seen = std::collections::BTreeSet::new();
            let mut slots = 0;
            for (_, c) in self.children(i) {
                if !seen.insert(c.word) {
                    return Err(format!("{:?} has two children {:?}", n.word, c.word));
                }
                if c.slot.is_some() {
                    slots += 1;
                } else if c.word.starts_with('<') {
                    return Err(format!("fixed word {:?} looks like a slot", c.word));
                }
            }
            if slots > 1 {
                return Err(format!("{:?} has {slots} slot children", n.word));
            }
        }
        Ok(())
    }
}

/// Valid event types for `watch events type`.
pub const EVENT_TYPES: &[&str] = &["log", "crud", "failover", "audit", "snapshot"];
/// Valid levels for `watch events level`.
pub const LEVELS: &[&str] = &["debug", "info", "warn", "error"];

/// Build the evpnc command tree.
pub fn build() -> Tree {
    use Action::*;
    let mut t = Tree { nodes: Vec::new() };
    let root = t.node("", "");

    // show …
    let show = t.word(root, "show", "Show state (version, instances, groups)");
    let v = t.word(
        show,
        "version",
        "Show the client version (and the server used)",
    );
    t.act(v, ShowVersion);
    let inst = t.word(show, "instance", "List registered instances, or show one");
    t.act(inst, ListInstances);
    let i = t.slot(
        inst,
        "<instance>",
        "Instance ID: show its evpnd's own view (version, health, readiness)",
        "instance",
        Kind::Instance,
        Source::Instances,
    );
    t.act(i, GetInstance);
    let ev = t.word(i, "evpn", "List the instance's eVPNs, or show one");
    t.act(ev, ListEvpns);
    let e = t.slot(
        ev,
        "<evpn>",
        "eVPN slug: show that eVPN",
        "evpn",
        Kind::Slug,
        Source::Evpns,
    );
    t.act(e, GetEvpn);
    let bvi = t.word(i, "bvi", "List the instance's BVIs, or show one");
    t.act(bvi, ListBvis);
    let e = t.slot(
        bvi,
        "<evpn>",
        "eVPN slug: show that eVPN's BVI",
        "evpn",
        Kind::Slug,
        Source::Evpns,
    );
    t.act(e, GetBvi);
    let vpp = t.word(i, "vpp", "The instance's VPP connection");
    let x = t.word(
        vpp,
        "info",
        "Show VPP connection, version and message table",
    );
    t.act(x, VppInfo);
    let bird = t.word(i, "bird", "The instance's BIRD connection");
    let x = t.word(
        bird,
        "info",
        "Show BIRD connection and the protocols evpnd owns",
    );
    t.act(x, BirdInfo);
    let x = t.word(
        i,
        "status",
        "Show the registry's view: connection, readiness, memberships",
    );
    t.act(x, InstanceStatus);
    let grp = t.word(show, "group", "List groups, or show one");
    t.act(grp, ListGroups);
    let g = t.slot(
        grp,
        "<group>",
        "Group ID: show that group and its GroupBVI",
        "group",
        Kind::Slug,
        Source::Groups,
    );
    t.act(g, GetGroup);

    // group <group> …
    let group = t.word(root, "group", "Create, change and delete groups");
    let g = t.slot(
        group,
        "<group>",
        "Group ID",
        "group",
        Kind::Slug,
        Source::Groups,
    );
    let create = t.word(g, "create", "Create the group");
    let vni = t.pair(
        create,
        "vni",
        "VXLAN network identifier (1..16777215)",
        "<vni>",
        "vni",
        Kind::Vni,
        Source::None,
        Some(CreateGroup),
    );
    // Optional keyword/value pairs, any order, each at most once (the
    // parser refuses repeats of non-repeatable keys).
    let opts_parent = t.node("create-options", "");
    let opts = [
        t.pair(
            opts_parent,
            "mtu",
            "MTU of the members' BVIs (576..9216, default 1500)",
            "<mtu>",
            "mtu",
            Kind::Mtu,
            Source::None,
            Some(CreateGroup),
        ),
        t.pair(
            opts_parent,
            "vmac",
            "Virtual MAC (unicast; default: generated)",
            "<mac>",
            "vmac",
            Kind::Mac,
            Source::None,
            Some(CreateGroup),
        ),
        t.pair(
            opts_parent,
            "route-target",
            "Import and export route target, rt:<asn>:<n>",
            "<rt>",
            "route-target",
            Kind::RouteTarget,
            Source::None,
            Some(CreateGroup),
        ),
        t.pair(
            opts_parent,
            "import-target",
            "Import route target only, rt:<asn>:<n>",
            "<rt>",
            "import-target",
            Kind::RouteTarget,
            Source::None,
            Some(CreateGroup),
        ),
        t.pair(
            opts_parent,
            "export-target",
            "Export route target only, rt:<asn>:<n>",
            "<rt>",
            "export-target",
            Kind::RouteTarget,
            Source::None,
            Some(CreateGroup),
        ),
    ];
    let words: Vec<NodeId> = t.nodes[opts_parent].children.clone();
    t.nodes[vni].children.extend(&words);
    for o in opts {
        t.nodes[o].children.extend(&words);
        if let Some(s) = t.nodes[o].slot.as_mut() {
            s.repeat = matches!(s.key, "route-target" | "import-target" | "export-target");
        }
    }
    let x = t.word(g, "delete", "Delete the group (every member leaves it)");
    t.act(x, DeleteGroup);
    let member = t.word(g, "member", "Add or remove members");
    t.pair(
        member,
        "add",
        "Add an instance: it joins the eVPN and gains bvi-<group>",
        "<instance>",
        "instance",
        Kind::Instance,
        Source::Instances,
        Some(AddMember),
    );
    t.pair(
        member,
        "remove",
        "Remove a member (released first if it is primary)",
        "<instance>",
        "instance",
        Kind::Instance,
        Source::GroupMembers,
        Some(RemoveMember),
    );
    failover::group(&mut t, g, member);
    t.pair(
        g,
        "mtu",
        "Set the MTU on the group and all its members (576..9216)",
        "<mtu>",
        "mtu",
        Kind::Mtu,
        Source::None,
        Some(SetMtu),
    );
    let gb = t.word(
        g,
        "bvi",
        "The group's gateway identity (vMAC and addresses)",
    );
    let c = t.word(gb, "create", "Create the GroupBVI, unbound");
    t.act(c, CreateGroupBvi);
    let a = t.pair(
        c,
        "address",
        "Start with this gateway address (repeatable)",
        "<prefix>",
        "address",
        Kind::Prefix,
        Source::None,
        Some(CreateGroupBvi),
    );
    let aw = t.nodes[c].children[0];
    t.nodes[a].children.push(aw);
    if let Some(s) = t.nodes[a].slot.as_mut() {
        s.repeat = true;
    }
    let x = t.word(
        gb,
        "delete",
        "Delete the GroupBVI (released on the primary first)",
    );
    t.act(x, DeleteGroupBvi);
    let addr = t.word(gb, "address", "Add or remove gateway addresses");
    t.pair(
        addr,
        "add",
        "Add a gateway address, e.g. 172.16.0.32/24 (applied live on the primary)",
        "<prefix>",
        "prefix",
        Kind::Prefix,
        Source::None,
        Some(AddAddress),
    );
    t.pair(
        addr,
        "del",
        "Remove a gateway address (applied live on the primary)",
        "<prefix>",
        "prefix",
        Kind::Prefix,
        Source::GroupAddresses,
        Some(DelAddress),
    );
    let set = t.word(gb, "set", "Change the GroupBVI");
    let p = t.pair(
        set,
        "primary",
        "Move the primary to this member, break-before-make",
        "<instance>",
        "instance",
        Kind::Instance,
        Source::GroupMembers,
        Some(MovePrimary),
    );
    let f = t.word(
        p,
        "force",
        "Move even if the old primary cannot be reached to release",
    );
    t.nodes[f].flag = Some("force");
    t.act(f, MovePrimary);
    t.pair(
        gb,
        "bind",
        "Bind the GroupBVI on a member (refused if another holds it)",
        "<instance>",
        "instance",
        Kind::Instance,
        Source::GroupMembers,
        Some(Bind),
    );
    t.pair(
        gb,
        "release",
        "Release the GroupBVI on a member",
        "<instance>",
        "instance",
        Kind::Instance,
        Source::GroupMembers,
        Some(Release),
    );

    // instance <instance> …
    let instance = t.word(root, "instance", "Change or remove an instance");
    let i = t.slot(
        instance,
        "<instance>",
        "Instance ID",
        "instance",
        Kind::Instance,
        Source::Instances,
    );
    let ev = t.word(i, "evpn", "Enable or disable one of the instance's eVPNs");
    let e = t.slot(ev, "<evpn>", "eVPN slug", "evpn", Kind::Slug, Source::Evpns);
    let x = t.word(
        e,
        "enable",
        "Enable the eVPN's BIRD protocols and attach its BVI",
    );
    t.act(x, EvpnEnable);
    let x = t.word(
        e,
        "disable",
        "Disable the eVPN without deleting it (rendered as disabled;)",
    );
    t.act(x, EvpnDisable);
    let f = t.word(
        x,
        "force",
        "Disable even the primary's eVPN: its gateway goes down, the GroupBVI is unassigned",
    );
    t.nodes[f].flag = Some("force");
    t.act(f, EvpnDisable);
    let x = t.word(
        i,
        "delete",
        "Forget the instance (it leaves all its groups first)",
    );
    t.act(x, DeleteInstance);
    failover::instance(&mut t, i);

    // watch events …
    let watch = t.word(root, "watch", "Stream live state");
    let w = t.word(watch, "events", "Stream events until a key press or Ctrl-C");
    t.act(w, WatchEvents);
    let wparent = t.node("watch-options", "");
    let wopts = [
        t.pair(
            wparent,
            "type",
            "Only events of this type (repeatable)",
            "<type>",
            "type",
            Kind::Word,
            Source::Words(EVENT_TYPES),
            Some(WatchEvents),
        ),
        t.pair(
            wparent,
            "level",
            "Minimum level",
            "<level>",
            "level",
            Kind::Word,
            Source::Words(LEVELS),
            Some(WatchEvents),
        ),
        t.pair(
            wparent,
            "instance",
            "Only events from this instance (repeatable)",
            "<instance>",
            "instance",
            Kind::Instance,
            Source::Instances,
            Some(WatchEvents),
        ),
        t.pair(
            wparent,
            "num",
            "Stop after this many events",
            "<n>",
            "num",
            Kind::Count,
            Source::None,
            Some(WatchEvents),
        ),
    ];
    let snap = t.word(
        wparent,
        "snapshot",
        "Start with a snapshot of the current state",
    );
    t.nodes[snap].flag = Some("snapshot");
    t.act(snap, WatchEvents);
    let words: Vec<NodeId> = t.nodes[wparent].children.clone();
    t.nodes[w].children.extend(&words);
    t.nodes[snap].children.extend(&words);
    for o in wopts {
        t.nodes[o].children.extend(&words);
        if let Some(s) = t.nodes[o].slot.as_mut() {
            s.repeat = matches!(s.key, "type" | "instance");
        }
    }

    failover::fleet(&mut t, root, show);

    let x = t.word(root, "help", "Show the command reference");
    t.act(x, Help);
    let x = t.word(root, "quit", "Leave the shell");
    t.act(x, Quit);
    let x = t.word(root, "exit", "Leave the shell");
    t.act(x, Quit);
    debug_assert_eq!(t.validate(), Ok(()));
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn tree_is_valid() {
        build().validate().unwrap();
    }

    #[test]
    fn every_operator_rpc_is_reachable() {
        let t = build();
        let seen: BTreeSet<&str> = t
            .reachable()
            .into_iter()
            .filter_map(|n| t.nodes[n].action)
            .flat_map(|a| a.rpcs().iter().copied())
            .collect();
        // The contract itself: every rpc of service Evpnr except the three
        // that only evpnd calls.
        let proto = include_str!("../../../proto/evpn/v1/evpnr.proto");
        let all: BTreeSet<&str> = proto
            .lines()
            .filter_map(|l| l.trim().strip_prefix("rpc "))
            .filter_map(|l| l.split('(').next())
            .map(str::trim)
            .filter(|r| !matches!(*r, "RegisterInstance" | "ReportReady" | "Heartbeat"))
            .collect();
        assert!(all.len() >= 26, "{all:?}");
        assert_eq!(seen, all);
    }
}
