//! evpnr on its own: the failover settings through gRPC — bounds with
//! precise codes naming the field and no change on bad input, and every
//! setting kept across a kill -9.
use std::time::Duration;

use evpn_api::v1::{self, evpnr_client::EvpnrClient};
use evpn_testkit::Daemon;
use tonic::{Code, transport::Channel};

const BIN: &str = env!("CARGO_BIN_EXE_evpnr");

fn start(dir: &std::path::Path) -> Daemon {
    let s = dir.join("state").display().to_string();
    Daemon::spawn(
        BIN,
        &[
            "--grpc-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--state-dir",
            &s,
        ],
        &[],
    )
    .unwrap()
}

async fn client(d: &Daemon) -> EvpnrClient<Channel> {
    EvpnrClient::connect(d.grpc_url().unwrap()).await.unwrap()
}

fn req(f: impl FnOnce(&mut v1::SetGroupFailoverRequest)) -> v1::SetGroupFailoverRequest {
    let mut r = v1::SetGroupFailoverRequest {
        group_id: "test".into(),
        ..Default::default()
    };
    f(&mut r);
    r
}

#[tokio::test]
async fn failover_settings_are_bounded_and_survive_a_kill() {
    let dir = tempfile::Builder::new()
        .prefix("evpnr-fo-")
        .tempdir()
        .unwrap();
    let mut d = start(dir.path());
    let mut c = client(&d).await;
    c.create_group(v1::CreateGroupRequest {
        group_id: "test".into(),
        vni: 100,
        ..Default::default()
    })
    .await
    .unwrap();
    let g = c
        .get_group(v1::GroupRef {
            group_id: "test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let p = g.failover.unwrap();
    assert_eq!(p.mode, "manual");
    assert_eq!(
        (p.preempt_ms, p.hold_down_ms, p.warm_up_ms, p.flap_limit),
        (None, 10_000, 5_000, 3)
    );
    let hour = 3_600_000;
    let cases = [
        (
            req(|r| r.mode = "sometimes".into()),
            Code::InvalidArgument,
            "mode",
        ),
        (
            req(|r| r.hold_down_ms = Some(hour + 1)),
            Code::InvalidArgument,
            "hold_down_ms",
        ),
        (
            req(|r| r.warm_up_ms = Some(hour + 1)),
            Code::InvalidArgument,
            "warm_up_ms",
        ),
        (
            req(|r| r.preempt_ms = Some(hour + 1)),
            Code::InvalidArgument,
            "preempt_ms",
        ),
        (
            req(|r| r.flap_window_ms = Some(999)),
            Code::InvalidArgument,
            "flap_window_ms",
        ),
        (
            req(|r| r.flap_limit = Some(101)),
            Code::InvalidArgument,
            "flap_limit",
        ),
        (
            req(|r| {
                r.preempt_ms = Some(1);
                r.preempt_off = true;
            }),
            Code::InvalidArgument,
            "preempt_off",
        ),
        (
            req(|r| r.group_id = "Bad".into()),
            Code::InvalidArgument,
            "group_id",
        ),
        (req(|r| r.group_id = "nope".into()), Code::NotFound, "nope"),
    ];
    for (r, code, field) in cases {
        let e = c.set_group_failover(r.clone()).await.unwrap_err();
        assert_eq!(e.code(), code, "{r:?}: {e:?}");
        assert!(e.message().contains(field), "{r:?}: {e:?}");
    }
    // A bad auto request changed nothing, not even its valid part.
    let e = c
        .set_group_failover(req(|r| {
            r.mode = "auto".into();
            r.hold_down_ms = Some(hour + 1);
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // Priorities only for members; bounded.
    let e = c
        .set_group_member_priority(v1::SetGroupMemberPriorityRequest {
            group_id: "test".into(),
            instance_id: "r1".into(),
            priority: 200,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = c
        .drain_instance(v1::InstanceRef {
            instance_id: "r1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    // Good settings, then kill -9 and restart: all kept.
    c.set_group_failover(req(|r| {
        r.mode = "auto".into();
        r.preempt_ms = Some(30_000);
        r.warm_up_ms = Some(250);
    }))
    .await
    .unwrap();
    c.set_failover_suspended(v1::SetFailoverSuspendedRequest { suspended: true })
        .await
        .unwrap();
    d.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = d.wait_exit(Duration::from_secs(10));
    let d = start(dir.path());
    let mut c = client(&d).await;
    let p = c
        .get_group(v1::GroupRef {
            group_id: "test".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .failover
        .unwrap();
    assert_eq!(p.mode, "auto");
    assert_eq!(
        (p.preempt_ms, p.warm_up_ms, p.hold_down_ms),
        (Some(30_000), 250, 10_000)
    );
    let s = c
        .get_failover_status(v1::Empty {})
        .await
        .unwrap()
        .into_inner();
    assert!(s.suspended);
}
