//! The interactive shell's guard on destructive commands: which gateways a
//! command would take down, from the groups as evpnr reports them. Pure
//! (tested with data) apart from [`at_risk_now`], which asks evpnr. One-shot
//! commands and piped scripts are never asked (they run as typed).
use evpn_api::v1;

use crate::ctx::Ctx;
use crate::parse::Command;
use crate::tree::Action;

/// One line per gateway `cmd` would take down ("group test: gateway
/// 172.16.0.32/24, fec0::32/64 (vMAC …) on dpu0-ddln0"); empty when it
/// takes none down (or is not destructive).
pub fn at_risk(groups: &[v1::Group], cmd: &Command) -> Vec<String> {
    let a = &cmd.args;
    let (group, instance) = (a.get("group"), a.get("instance"));
    let bound = groups
        .iter()
        .filter(|g| !g.primary_instance_id.is_empty() && g.group_bvi.is_some());
    let hit: Vec<&v1::Group> = match cmd.action {
        Action::DeleteGroup | Action::DeleteGroupBvi => bound
            .filter(|g| Some(g.group_id.as_str()) == group)
            .collect(),
        Action::RemoveMember | Action::Release => bound
            .filter(|g| {
                Some(g.group_id.as_str()) == group
                    && Some(g.primary_instance_id.as_str()) == instance
            })
            .collect(),
        Action::EvpnDisable => bound
            .filter(|g| {
                Some(g.group_id.as_str()) == a.get("evpn")
                    && Some(g.primary_instance_id.as_str()) == instance
            })
            .collect(),
        Action::DeleteInstance => bound
            .filter(|g| Some(g.primary_instance_id.as_str()) == instance)
            .collect(),
        _ => Vec::new(),
    };
    hit.into_iter().map(describe).collect()
}

fn describe(g: &v1::Group) -> String {
    let addrs = g
        .group_bvi
        .as_ref()
        .map(|b| {
            b.addresses
                .iter()
                .map(|p| format!("{}/{}", p.address, p.prefix_len))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "(no addresses)".into());
    format!(
        "group {}: gateway {addrs} (vMAC {}) on {}",
        g.group_id, g.vmac, g.primary_instance_id
    )
}

/// Whether `cmd` can take a gateway down at all (only these ask evpnr).
pub fn destructive(cmd: &Command) -> bool {
    matches!(
        cmd.action,
        Action::DeleteGroup
            | Action::DeleteGroupBvi
            | Action::RemoveMember
            | Action::Release
            | Action::EvpnDisable
            | Action::DeleteInstance
    )
}

/// [`at_risk`] against the groups evpnr has now; empty when evpnr cannot
/// be asked (the command then fails or succeeds on its own).
pub async fn at_risk_now(ctx: &Ctx, cmd: &Command) -> Vec<String> {
    if !destructive(cmd) {
        return Vec::new();
    }
    let mut c = ctx.client.clone();
    match c.list_groups(ctx.req(v1::Empty {})).await {
        Ok(l) => at_risk(&l.into_inner().groups, cmd),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Args;

    fn group(id: &str, primary: &str, bvi: bool) -> v1::Group {
        v1::Group {
            group_id: id.into(),
            vmac: "42:6c:fa:d6:82:98".into(),
            primary_instance_id: primary.into(),
            group_bvi: bvi.then(|| v1::GroupBvi {
                addresses: vec![v1::Prefix {
                    address: "172.16.0.32".into(),
                    prefix_len: 24,
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn cmd(action: Action, args: &[(&'static str, &str)]) -> Command {
        Command {
            action,
            args: Args(args.iter().map(|(k, v)| (*k, v.to_string())).collect()),
            line: String::new(),
        }
    }

    #[test]
    fn names_the_gateways_a_command_takes_down() {
        let groups = [group("test", "a", true), group("idle", "", true)];
        let cases = [
            (cmd(Action::DeleteGroup, &[("group", "test")]), 1),
            (cmd(Action::DeleteGroup, &[("group", "idle")]), 0),
            (cmd(Action::DeleteGroupBvi, &[("group", "test")]), 1),
            (
                cmd(
                    Action::RemoveMember,
                    &[("group", "test"), ("instance", "a")],
                ),
                1,
            ),
            (
                cmd(
                    Action::RemoveMember,
                    &[("group", "test"), ("instance", "b")],
                ),
                0,
            ),
            (
                cmd(Action::Release, &[("group", "test"), ("instance", "a")]),
                1,
            ),
            (
                cmd(Action::EvpnDisable, &[("instance", "a"), ("evpn", "test")]),
                1,
            ),
            (
                cmd(Action::EvpnDisable, &[("instance", "b"), ("evpn", "test")]),
                0,
            ),
            (cmd(Action::DeleteInstance, &[("instance", "a")]), 1),
            (
                cmd(Action::EvpnEnable, &[("instance", "a"), ("evpn", "test")]),
                0,
            ),
            (cmd(Action::ListGroups, &[]), 0),
        ];
        for (c, n) in cases {
            let r = at_risk(&groups, &c);
            assert_eq!(r.len(), n, "{:?}: {r:?}", c.action);
            assert_eq!(
                destructive(&c),
                c.action != Action::EvpnEnable && c.action != Action::ListGroups
            );
        }
        let r = at_risk(&groups, &cmd(Action::DeleteGroup, &[("group", "test")]));
        assert_eq!(
            r,
            ["group test: gateway 172.16.0.32/24 (vMAC 42:6c:fa:d6:82:98) on a"]
        );
        // A GroupBVI without a primary takes nothing down.
        let r = at_risk(
            &[group("test", "a", false)],
            &cmd(Action::DeleteGroup, &[("group", "test")]),
        );
        assert!(r.is_empty());
    }
}
