//! The handlers: one match arm per [`Action`], each calling one Evpnr RPC
//! and emitting its answer (proto-JSON with `-json`, text otherwise).
//! Also the live completion sources, which call List/Get RPCs.
use std::time::Duration;

use evpn_api::v1;
use serde::Serialize;
use tonic::{Request, Status};

use crate::ctx::{CliError, Ctx, json};
use crate::parse::{Args, Command, ParseError};
use crate::render;
use crate::tree::{Action, Source};

impl Ctx {
    /// Print a show command's answer.
    fn show<T: Serialize>(&self, msg: &T, text: impl FnOnce() -> String) -> Result<(), CliError> {
        if self.json {
            println!("{}", json(msg)?);
        } else {
            print!("{}", text());
        }
        Ok(())
    }

    /// Print a single object: its proto-JSON, or its labelled detail view.
    pub(crate) fn show_detail<T: Serialize>(&self, msg: &T) -> Result<(), CliError> {
        let v = crate::model::J::of(msg).map_err(|e| CliError::Rpc(format!("INTERNAL: {e}")))?;
        self.show(msg, || render::detail(&v, self.paint, render::now()))
    }

    /// Print a mutation's answer: the returned object (or `{}` for Empty)
    /// with `-json`, a one-line confirmation otherwise.
    pub(crate) fn done<T: Serialize>(&self, msg: &T, text: String) -> Result<(), CliError> {
        if self.json {
            println!("{}", json(msg)?);
        } else {
            println!("{}", self.paint.value(&text));
        }
        Ok(())
    }
}

/// `show version`: the client's build and the server it talks to.
#[derive(Serialize)]
struct VersionInfo<'a> {
    version: &'static str,
    commit: &'static str,
    server: &'a str,
}

/// What the caller should do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

fn prefix(s: &str) -> Result<v1::Prefix, CliError> {
    // The parser has validated and canonicalised it.
    let (a, l) = s.split_once('/').ok_or_else(|| {
        CliError::Parse(ParseError::Invalid {
            field: "prefix".into(),
            reason: format!("{} is not <address>/<length>", evpn_model::excerpt(s)),
        })
    })?;
    Ok(v1::Prefix {
        address: a.to_string(),
        prefix_len: l.parse().unwrap_or(0),
    })
}

fn num(args: &Args, key: &str) -> Result<u32, CliError> {
    let v = args.req(key)?;
    v.parse().map_err(|_| {
        CliError::Parse(ParseError::Invalid {
            field: key.into(),
            reason: format!("{} is not a number", evpn_model::excerpt(v)),
        })
    })
}

/// Run one parsed command.
pub async fn run(ctx: &Ctx, cmd: &Command) -> Result<Flow, CliError> {
    use Action::*;
    let a = &cmd.args;
    let c = &mut ctx.client.clone();
    let e = |s: Status| ctx.rpc_err(s);
    let inst = || -> Result<v1::InstanceRef, CliError> {
        Ok(v1::InstanceRef {
            instance_id: a.req("instance")?.to_string(),
        })
    };
    let evpn_ref = || -> Result<v1::EvpnRef, CliError> {
        Ok(v1::EvpnRef {
            instance_id: a.req("instance")?.to_string(),
            slug: a.req("evpn")?.to_string(),
        })
    };
    let group = || -> Result<String, CliError> { Ok(a.req("group")?.to_string()) };
    let p = ctx.paint;
    match cmd.action {
        ShowVersion => {
            let v = VersionInfo {
                version: evpn_base::build::VERSION,
                commit: evpn_base::build::COMMIT,
                server: &ctx.server,
            };
            ctx.show_detail(&v)?;
        }
        Help => {
            if ctx.json {
                println!("{}", json(&crate::help::reference_json())?);
            } else {
                print!("{}", crate::help::reference(p));
            }
        }
        Quit => {
            if ctx.json {
                println!("{{}}");
            }
            return Ok(Flow::Quit);
        }
        ListInstances => {
            let r = c.list_instances(ctx.req(v1::Empty {})).await.map_err(e)?;
            let r = r.into_inner();
            ctx.show(&r, || render::instances(&r, p, render::now()))?;
        }
        GetInstance => {
            let r = c.get_instance(ctx.req(inst()?)).await.map_err(e)?;
            ctx.show_detail(&r.into_inner())?;
        }
        InstanceStatus => {
            let r = c.get_instance_status(ctx.req(inst()?)).await.map_err(e)?;
            ctx.show_detail(&r.into_inner())?;
        }
        ListEvpns => {
            let r = c.list_evpn_instances(ctx.req(inst()?)).await.map_err(e)?;
            let r = r.into_inner();
            ctx.show(&r, || render::evpns(&r, p))?;
        }
        GetEvpn => {
            let r = c.get_evpn_instance(ctx.req(evpn_ref()?)).await.map_err(e)?;
            ctx.show_detail(&r.into_inner())?;
        }
        ListBvis => {
            let r = c.list_bv_is(ctx.req(inst()?)).await.map_err(e)?;
            let r = r.into_inner();
            ctx.show(&r, || render::bvis(&r, p))?;
        }
        GetBvi => {
            let r = c.get_bvi(ctx.req(evpn_ref()?)).await.map_err(e)?;
            ctx.show_detail(&r.into_inner())?;
        }
        VppInfo => {
            let r = c.get_vpp_info(ctx.req(inst()?)).await.map_err(e)?;
            ctx.show_detail(&r.into_inner())?;
        }
        BirdInfo => {
            let r = c.get_bird_info(ctx.req(inst()?)).await.map_err(e)?;
            ctx.show_detail(&r.into_inner())?;
        }
        ListGroups => {
            let r = c.list_groups(ctx.req(v1::Empty {})).await.map_err(e)?;
            let r = r.into_inner();
            ctx.show(&r, || render::groups(&r, p))?;
        }
        GetGroup => {
            let r = c
                .get_group(ctx.req(v1::GroupRef { group_id: group()? }))
                .await
                .map_err(e)?;
            ctx.show_detail(&r.into_inner())?;
        }
        CreateGroup => {
            let mut imp = a.all("route-target");
            let mut exp = imp.clone();
            imp.extend(a.all("import-target"));
            exp.extend(a.all("export-target"));
            // The list rules (count, no repeats) as evpnr and evpnd apply them.
            evpn_model::parse_route_targets("import_route_targets", &imp)
                .map_err(ParseError::from)?;
            evpn_model::parse_route_targets("export_route_targets", &exp)
                .map_err(ParseError::from)?;
            let req = v1::CreateGroupRequest {
                group_id: group()?,
                vni: num(a, "vni")?,
                mtu: if a.has("mtu") { num(a, "mtu")? } else { 0 },
                vmac: a.get("vmac").unwrap_or_default().to_string(),
                import_route_targets: imp,
                export_route_targets: exp,
            };
            let r = c.create_group(ctx.req(req)).await.map_err(e)?.into_inner();
            let text = format!(
                "group {} created (vni {}, mtu {}, vmac {})",
                r.group_id, r.vni, r.mtu, r.vmac
            );
            ctx.done(&r, text)?;
        }
        DeleteGroup => {
            let g = group()?;
            let r = c
                .delete_group(ctx.req(v1::GroupRef {
                    group_id: g.clone(),
                }))
                .await
                .map_err(e)?;
            ctx.done(&r.into_inner(), format!("group {g} deleted"))?;
        }
        AddMember | RemoveMember => {
            let req = v1::GroupMemberRequest {
                group_id: group()?,
                instance_id: a.req("instance")?.to_string(),
            };
            let what = format!("{} in group {}", req.instance_id, req.group_id);
            let (r, verb) = if cmd.action == AddMember {
                (c.add_group_member(ctx.req(req)).await, "added")
            } else {
                (c.remove_group_member(ctx.req(req)).await, "removed")
            };
            ctx.done(&r.map_err(e)?.into_inner(), format!("member {what} {verb}"))?;
        }
        SetMtu => {
            let req = v1::SetGroupMtuRequest {
                group_id: group()?,
                mtu: num(a, "mtu")?,
            };
            let r = c.set_group_mtu(ctx.req(req)).await.map_err(e)?.into_inner();
            let text = format!("group {} mtu {}", r.group_id, r.mtu);
            ctx.done(&r, text)?;
        }
        CreateGroupBvi => {
            let all = a.all("address");
            evpn_model::validate_count("addresses", all.len(), evpn_model::BVI_ADDRESSES_MAX)
                .map_err(ParseError::from)?;
            let addresses = all
                .iter()
                .map(|s| prefix(s))
                .collect::<Result<Vec<_>, _>>()?;
            let req = v1::GroupBviRequest {
                group_id: group()?,
                addresses,
            };
            let r = c
                .create_group_bvi(ctx.req(req))
                .await
                .map_err(e)?
                .into_inner();
            let text = format!("group {} bvi created", r.group_id);
            ctx.done(&r, text)?;
        }
        DeleteGroupBvi => {
            let r = c
                .delete_group_bvi(ctx.req(v1::GroupRef { group_id: group()? }))
                .await
                .map_err(e)?
                .into_inner();
            let text = format!("group {} bvi deleted", r.group_id);
            ctx.done(&r, text)?;
        }
        AddAddress => {
            let pf = a.req("prefix")?;
            let req = v1::GroupBviAddAddressRequest {
                group_id: group()?,
                address: Some(prefix(pf)?),
            };
            let r = c
                .add_group_bvi_address(ctx.req(req))
                .await
                .map_err(e)?
                .into_inner();
            let text = format!("group {} bvi address {pf} added", r.group_id);
            ctx.done(&r, text)?;
        }
        DelAddress => {
            let pf = a.req("prefix")?;
            let req = v1::GroupBviDeleteAddressRequest {
                group_id: group()?,
                address: Some(prefix(pf)?),
            };
            let r = c
                .delete_group_bvi_address(ctx.req(req))
                .await
                .map_err(e)?
                .into_inner();
            let text = format!("group {} bvi address {pf} removed", r.group_id);
            ctx.done(&r, text)?;
        }
        MovePrimary => {
            let req = v1::MoveGroupBviRequest {
                group_id: group()?,
                instance_id: a.req("instance")?.to_string(),
                force: a.has("force"),
            };
            let r = c
                .move_group_bvi(ctx.req(req))
                .await
                .map_err(e)?
                .into_inner();
            let text = format!(
                "group {} primary is now {}",
                r.group_id, r.primary_instance_id
            );
            ctx.done(&r, text)?;
        }
        Bind => {
            let req = v1::BindGroupBviRequest {
                group_id: group()?,
                instance_id: a.req("instance")?.to_string(),
            };
            let text = format!("group {} bvi bound on {}", req.group_id, req.instance_id);
            let r = c.bind_group_bvi(ctx.req(req)).await.map_err(e)?;
            ctx.done(&r.into_inner(), text)?;
        }
        Release => {
            let req = v1::ReleaseGroupBviRequest {
                group_id: group()?,
                instance_id: a.req("instance")?.to_string(),
            };
            let text = format!("group {} bvi released on {}", req.group_id, req.instance_id);
            let r = c.release_group_bvi(ctx.req(req)).await.map_err(e)?;
            ctx.done(&r.into_inner(), text)?;
        }
        EvpnEnable | EvpnDisable => {
            let enabled = cmd.action == EvpnEnable;
            let req = v1::SetEnabledRequest {
                instance_id: a.req("instance")?.to_string(),
                slug: a.req("evpn")?.to_string(),
                enabled,
                force: a.has("force"),
            };
            let text = format!(
                "instance {} evpn {} {}",
                req.instance_id,
                req.slug,
                if enabled { "enabled" } else { "disabled" }
            );
            let r = c.set_evpn_instance_enabled(ctx.req(req)).await.map_err(e)?;
            ctx.done(&r.into_inner(), text)?;
        }
        DeleteInstance => {
            let i = inst()?;
            let text = format!("instance {} deleted", i.instance_id);
            let r = c.delete_instance(ctx.req(i)).await.map_err(e)?;
            ctx.done(&r.into_inner(), text)?;
        }
        SetFailover | SetPriority | Drain | Resume | SuspendFailover | FailoverStatus => {
            crate::failover::run(ctx, cmd).await?
        }
        WatchEvents => crate::watch::watch(ctx, a).await?,
    }
    Ok(Flow::Continue)
}

/// Live completion values for a slot source; errors give no candidates
/// (completion must never fail loudly).
pub async fn live(ctx: &Ctx, src: Source, args: &Args) -> Vec<String> {
    let mut c = ctx.client.clone();
    fn r<T>(ctx: &Ctx, m: T) -> Request<T> {
        let mut q = Request::new(m);
        q.set_timeout(ctx.timeout.min(Duration::from_secs(3)));
        q
    }
    let group = v1::GroupRef {
        group_id: args.get("group").unwrap_or_default().to_string(),
    };
    let inst = v1::InstanceRef {
        instance_id: args.get("instance").unwrap_or_default().to_string(),
    };
    match src {
        Source::None => Vec::new(),
        Source::Words(w) => w.iter().map(|s| s.to_string()).collect(),
        Source::Instances => c
            .list_instances(r(ctx, v1::Empty {}))
            .await
            .map(|l| {
                l.into_inner()
                    .instances
                    .into_iter()
                    .map(|i| i.instance_id)
                    .collect()
            })
            .unwrap_or_default(),
        Source::Groups => c
            .list_groups(r(ctx, v1::Empty {}))
            .await
            .map(|l| {
                l.into_inner()
                    .groups
                    .into_iter()
                    .map(|g| g.group_id)
                    .collect()
            })
            .unwrap_or_default(),
        Source::GroupMembers => c
            .get_group(r(ctx, group))
            .await
            .map(|g| g.into_inner().members)
            .unwrap_or_default(),
        Source::GroupAddresses => c
            .get_group(r(ctx, group))
            .await
            .map(|g| {
                g.into_inner()
                    .group_bvi
                    .map(|b| {
                        b.addresses
                            .iter()
                            .map(|p| format!("{}/{}", p.address, p.prefix_len))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default(),
        Source::Evpns => c
            .list_evpn_instances(r(ctx, inst))
            .await
            .map(|l| {
                l.into_inner()
                    .evpn_instances
                    .into_iter()
                    .map(|e| e.slug)
                    .collect()
            })
            .unwrap_or_default(),
    }
}
