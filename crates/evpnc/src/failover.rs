//! The failover commands' handlers (see `tree/failover.rs`): each calls one
//! Evpnr RPC and prints its answer like every other command.
use std::str::FromStr;

use evpn_api::v1;
use evpn_model::HumanDuration;
use tonic::Status;

use crate::ctx::{CliError, Ctx};
use crate::parse::{Command, ParseError};
use crate::tree::Action;

/// A duration the parser has validated, in milliseconds.
fn ms(key: &str, v: &str) -> Result<u64, CliError> {
    let d = HumanDuration::from_str(v).map_err(|reason| {
        CliError::Parse(ParseError::Invalid {
            field: key.into(),
            reason,
        })
    })?;
    Ok(d.0.as_millis() as u64)
}

fn number(key: &str, v: &str) -> Result<u32, CliError> {
    v.parse().map_err(|_| {
        CliError::Parse(ParseError::Invalid {
            field: key.into(),
            reason: format!("{} is not a number", evpn_model::excerpt(v)),
        })
    })
}

/// The SetGroupFailover request of `group <g> failover <mode> …`.
pub fn failover_request(cmd: &Command) -> Result<v1::SetGroupFailoverRequest, CliError> {
    let a = &cmd.args;
    let opt_ms = |k: &str| a.get(k).map(|v| ms(k, v)).transpose();
    let (preempt_ms, preempt_off) = match a.get("preempt") {
        Some("off") => (None, true),
        Some(v) => (Some(ms("preempt", v)?), false),
        None => (None, false),
    };
    Ok(v1::SetGroupFailoverRequest {
        group_id: a.req("group")?.to_string(),
        mode: a.req("mode")?.to_string(),
        preempt_ms,
        preempt_off,
        hold_down_ms: opt_ms("hold-down")?,
        flap_window_ms: opt_ms("flap-window")?,
        flap_limit: a
            .get("flap-limit")
            .map(|v| number("flap-limit", v))
            .transpose()?,
        warm_up_ms: opt_ms("warm-up")?,
    })
}

/// One line for a group's policy: `auto, preempt 30s, hold-down 10s, …`.
pub fn policy_line(p: &v1::FailoverPolicy) -> String {
    let d = |ms: u64| HumanDuration(std::time::Duration::from_millis(ms)).to_string();
    format!(
        "{}, preempt {}, hold-down {}, flap {} per {}, warm-up {}",
        p.mode,
        p.preempt_ms.map_or("off".to_string(), d),
        d(p.hold_down_ms),
        p.flap_limit,
        d(p.flap_window_ms),
        d(p.warm_up_ms)
    )
}

/// Run a failover command.
pub async fn run(ctx: &Ctx, cmd: &Command) -> Result<(), CliError> {
    let a = &cmd.args;
    let c = &mut ctx.client.clone();
    let e = |s: Status| ctx.rpc_err(s);
    let inst = || -> Result<v1::InstanceRef, CliError> {
        Ok(v1::InstanceRef {
            instance_id: a.req("instance")?.to_string(),
        })
    };
    match cmd.action {
        Action::SetFailover => {
            let req = failover_request(cmd)?;
            let r = c.set_group_failover(ctx.req(req)).await.map_err(e)?;
            let r = r.into_inner();
            let p = r.failover.clone().unwrap_or_default();
            let text = format!("group {} failover {}", r.group_id, policy_line(&p));
            ctx.done(&r, text)?;
        }
        Action::SetPriority => {
            let req = v1::SetGroupMemberPriorityRequest {
                group_id: a.req("group")?.to_string(),
                instance_id: a.req("instance")?.to_string(),
                priority: number("priority", a.req("priority")?)?,
            };
            let text = format!(
                "member {} of group {} priority {}",
                req.instance_id, req.group_id, req.priority
            );
            let r = c.set_group_member_priority(ctx.req(req)).await.map_err(e)?;
            ctx.done(&r.into_inner(), text)?;
        }
        Action::Drain | Action::Resume => {
            let i = inst()?;
            let drain = cmd.action == Action::Drain;
            let text = format!(
                "instance {} {}",
                i.instance_id,
                if drain { "drained" } else { "resumed" }
            );
            let r = if drain {
                c.drain_instance(ctx.req(i)).await
            } else {
                c.resume_instance(ctx.req(i)).await
            };
            ctx.done(&r.map_err(e)?.into_inner(), text)?;
        }
        Action::SuspendFailover => {
            let suspended = a.req("switch")? == "suspend";
            let req = v1::SetFailoverSuspendedRequest { suspended };
            let r = c.set_failover_suspended(ctx.req(req)).await.map_err(e)?;
            let text = format!(
                "failover {}",
                if suspended { "suspended" } else { "resumed" }
            );
            ctx.done(&r.into_inner(), text)?;
        }
        Action::FailoverStatus => {
            let r = c
                .get_failover_status(ctx.req(v1::Empty {}))
                .await
                .map_err(e)?;
            ctx.show_detail(&r.into_inner())?;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Command {
        crate::parse::parse(&crate::tree::build(), line)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn failover_options_become_the_request() {
        let r = failover_request(&parse(
            "group g failover auto preempt 30s hold-down 2s flap-limit 0 warm-up 500ms",
        ))
        .unwrap();
        assert_eq!(r.group_id, "g");
        assert_eq!(r.mode, "auto");
        assert_eq!(r.preempt_ms, Some(30_000));
        assert!(!r.preempt_off);
        assert_eq!(r.hold_down_ms, Some(2_000));
        assert_eq!(r.flap_window_ms, None);
        assert_eq!(r.flap_limit, Some(0));
        assert_eq!(r.warm_up_ms, Some(500));
        let r = failover_request(&parse("group g failover man preempt off")).unwrap();
        assert_eq!(r.mode, "manual");
        assert!(r.preempt_off && r.preempt_ms.is_none());
    }

    #[test]
    fn bad_failover_words_are_refused_before_sending() {
        let t = crate::tree::build();
        for line in [
            "group g failover sometimes",
            "group g failover auto hold-down 5",
            "group g failover auto preempt never",
            "group g member r1 priority high",
        ] {
            assert!(crate::parse::parse(&t, line).is_err(), "{line}");
        }
        let ok = parse("group g member r1 priority 200");
        assert_eq!(ok.action, Action::SetPriority);
        assert_eq!(ok.args.get("instance"), Some("r1"));
        assert_eq!(ok.args.get("priority"), Some("200"));
        assert_eq!(parse("instance a drain").action, Action::Drain);
        assert_eq!(parse("failover sus").action, Action::SuspendFailover);
        assert_eq!(parse("show failover").action, Action::FailoverStatus);
    }
}
