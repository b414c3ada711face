//! Mutual TLS and roles between evpnr, the evpnds and clients, black box:
//! every program with certificates of a development CA. Plaintext and
//! foreign clients are refused; an evpnd can register only as the instance
//! its certificate names, and evpnr talks to a member only if the
//! certificate at its address names it; roles decide who may move and
//! delete; a managed evpnd takes changes only from the registry; a
//! certificate rotation on SIGHUP keeps open streams. The audit log and
//! front-ends acting on behalf of users: `audit.rs`.
mod common;

use std::time::Duration;

use common::*;
use evpn_api::v1::{self, evpnd_client::EvpndClient, evpnr_client::EvpnrClient};
use evpn_tls::{ClientTls, Expect, Identity, TlsFiles, pki::DevCa};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn tls_yaml(f: &TlsFiles) -> String {
    format!(
        "  tls:\n    cert: {}\n    key: {}\n    ca: {}\n",
        f.cert.display(),
        f.key.display(),
        f.ca.display()
    )
}

fn evpnr_as(files: &TlsFiles, addr: &str) -> EvpnrClient<tonic::transport::Channel> {
    EvpnrClient::new(
        ClientTls::load(files.clone())
            .unwrap()
            .channel(addr, Expect::AnyRegistry, |e| e)
            .unwrap(),
    )
}

fn denied<T: std::fmt::Debug>(r: Result<T, tonic::Status>, needs: &str) {
    let e = r.expect_err("allowed");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains(needs), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_fleet_identities_roles_and_rotation() {
    let _s = serial().await;
    let pki = tempfile::tempdir().unwrap();
    let ca = DevCa::create(pki.path(), "fleet CA").unwrap();
    let issue = |id: Identity| ca.issue(&id, DAY, false).unwrap();
    let reg = issue(Identity::Registry("evpnr".into()));
    let a = issue(Identity::Instance("tls-a".into()));
    let b = issue(Identity::Instance("tls-b".into()));
    let admin = issue(Identity::User("ada".into()));
    let operator = issue(Identity::User("olga".into()));
    let viewer = issue(Identity::User("val".into()));

    let mut f = Fleet::new(
        "tls_fleet_identities_roles_and_rotation",
        &["tls-a", "tls-b", "tls-c"],
    )
    .await;
    f.kill_evpnr();
    f.evpnr_extra = format!(
        "{}    roles:\n      \"evpn://user/ada\": admin\n      \"evpn://user/olga\": operator\n      \"evpn://user/val\": viewer\n",
        tls_yaml(&reg)
    );
    f.tls = Some(ClientTls::load(admin.clone()).unwrap());
    f.start_evpnr();
    let a_addr = f.host("tls-a").addr();
    f.host_mut("tls-a").evpnd_extra = tls_yaml(&a);
    // tls-b has its own certificate but advertises tls-a's address: evpnr
    // dials it there and must refuse what answers (tls-a's certificate).
    f.host_mut("tls-b").evpnd_extra = format!("  advertise-addr: \"{a_addr}\"\n{}", tls_yaml(&b));
    // tls-c presents tls-a's certificate: it cannot register as tls-c.
    f.host_mut("tls-c").evpnd_extra = tls_yaml(&a);
    for h in ["tls-a", "tls-b", "tls-c"] {
        f.host_mut(h).start_evpnd();
    }
    f.wait_ready("tls-a").await;
    let addr = format!("127.0.0.1:{}", f.port);

    // A plaintext client and a client of another CA get nothing.
    let plain = async {
        EvpnrClient::connect(format!("http://{addr}"))
            .await?
            .list_instances(v1::Empty {})
            .await
            .map_err(anyhow::Error::from)
    };
    assert!(plain.await.is_err(), "a plaintext client was served");
    let other = DevCa::create(&pki.path().join("other"), "other CA").unwrap();
    let mallory = other
        .issue(&Identity::User("mallory".into()), DAY, false)
        .unwrap();
    let e = evpnr_as(&mallory, &addr).list_instances(v1::Empty {}).await;
    assert!(e.is_err(), "a client of another CA was served: {e:?}");
    let plain_evpnd = async {
        EvpndClient::connect(format!("http://{a_addr}"))
            .await?
            .get_instance(v1::InstanceRef::default())
            .await
            .map_err(anyhow::Error::from)
    };
    assert!(
        plain_evpnd.await.is_err(),
        "evpnd served a plaintext caller"
    );

    // tls-c (tls-a's certificate) is refused at registration.
    f.host("tls-c")
        .evpnd
        .as_ref()
        .unwrap()
        .wait_log("registry-register-failed", T)
        .unwrap();
    let log = f.host("tls-c").evpnd.as_ref().unwrap().lines().join("\n");
    assert!(
        log.contains("PermissionDenied") && log.contains("may not act as instance \\\"tls-c\\\""),
        "{log}"
    );
    // tls-b registered, but evpnr refuses the certificate at its address.
    let mut c = f.client().await;
    wait_for(
        "evpnr refused the certificate at tls-b's address",
        async || {
            c.list_instances(v1::Empty {}).await.is_ok_and(|l| {
                l.into_inner().instances.iter().any(|i| {
                    i.instance_id == "tls-b"
                        && i.last_error
                            .contains("names evpn://instance/tls-a, not evpn://instance/tls-b")
                })
            })
        },
    )
    .await;
    let l = c.list_instances(v1::Empty {}).await.unwrap().into_inner();
    assert!(
        !l.instances.iter().any(|i| i.instance_id == "tls-c"),
        "{l:?}"
    );
    let ib = l
        .instances
        .iter()
        .find(|i| i.instance_id == "tls-b")
        .unwrap();
    assert_ne!(ib.state, v1::instance::State::Connected as i32, "{ib:?}");

    // Roles: a viewer reads but cannot move; an operator creates and moves
    // but cannot delete; an instance certificate is no operator.
    let mut val = evpnr_as(&viewer, &addr);
    val.list_groups(v1::Empty {}).await.unwrap();
    denied(
        val.move_group_bvi(v1::MoveGroupBviRequest {
            group_id: "g".into(),
            instance_id: "tls-a".into(),
            force: false,
        })
        .await,
        "needs role operator, has viewer",
    );
    let mut olga = evpnr_as(&operator, &addr);
    olga.create_group(v1::CreateGroupRequest {
        group_id: "ops".into(),
        vni: 4343,
        ..Default::default()
    })
    .await
    .unwrap();
    denied(
        olga.delete_instance(v1::InstanceRef {
            instance_id: "tls-b".into(),
        })
        .await,
        "needs role admin, has operator",
    );
    denied(
        olga.delete_group(v1::GroupRef {
            group_id: "ops".into(),
        })
        .await,
        "needs role admin",
    );
    denied(
        evpnr_as(&a, &addr).list_groups(v1::Empty {}).await,
        "not in the role map",
    );
    // A managed evpnd takes changes only from the registry: a member's
    // certificate (or an admin's) cannot call it as one.
    let mut as_member = EvpndClient::new(
        ClientTls::load(b.clone())
            .unwrap()
            .channel(
                &a_addr,
                Expect::Exactly(Identity::Instance("tls-a".into())),
                |e| e,
            )
            .unwrap(),
    );
    denied(
        as_member
            .release_group_bvi(v1::HostReleaseGroupBviRequest::default())
            .await,
        "changes come only from evpnr",
    );

    // Rotation: a WatchEvents stream opened before a new certificate and a
    // SIGHUP keeps delivering; new connections work.
    let mut ev = c
        .watch_events(v1::WatchEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let evpnr = f.evpnr();
    ca.issue(&Identity::Registry("evpnr".into()), 2 * DAY, true)
        .unwrap();
    evpnr.signal(nix::sys::signal::Signal::SIGHUP).unwrap();
    evpnr.wait_log("tls-reloaded", T).unwrap();
    c.create_group(v1::CreateGroupRequest {
        group_id: "rotated".into(),
        vni: 4242,
        ..Default::default()
    })
    .await
    .unwrap();
    let seen = tokio::time::timeout(T, async {
        while let Some(e) = futures::StreamExt::next(&mut ev).await {
            if e.unwrap().message == "group-created" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        seen,
        Ok(true),
        "the stream opened before the rotation went quiet"
    );
    let mut fresh = f.client().await;
    fresh.list_instances(v1::Empty {}).await.unwrap();
}
