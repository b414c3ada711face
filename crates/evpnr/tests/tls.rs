//! Mutual TLS between evpnr, the evpnds and clients, black box: every
//! program with certificates of a development CA; plaintext and foreign
//! clients refused; evpnr accepts a member only if its certificate names
//! the instance it dials; a certificate rotation on SIGHUP keeps open
//! streams. (Roles and the audit log are not built yet: docs/security.md.)
mod common;

use std::time::Duration;

use common::*;
use evpn_api::v1::{self, evpnr_client::EvpnrClient};
use evpn_tls::{ClientTls, Identity, TlsFiles, pki::DevCa};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn tls_yaml(f: &TlsFiles) -> String {
    format!(
        "  tls:\n    cert: {}\n    key: {}\n    ca: {}\n",
        f.cert.display(),
        f.key.display(),
        f.ca.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_fleet_registers_refuses_strangers_checks_member_identity_and_rotates() {
    let _s = serial().await;
    let pki = tempfile::tempdir().unwrap();
    let ca = DevCa::create(pki.path(), "fleet CA").unwrap();
    let issue = |id: Identity| ca.issue(&id, DAY, false).unwrap();
    let reg = issue(Identity::Registry("evpnr".into()));
    let t1 = issue(Identity::Instance("tls-a".into()));
    let alice = issue(Identity::User("alice".into()));

    let mut f = Fleet::new(
        "tls_fleet_registers_refuses_strangers_checks_member_identity_and_rotates",
        &["tls-a", "tls-b"],
    )
    .await;
    f.kill_evpnr();
    f.evpnr_extra = tls_yaml(&reg);
    f.tls = Some(ClientTls::load(alice.clone()).unwrap());
    f.start_evpnr();
    f.host_mut("tls-a").evpnd_extra = tls_yaml(&t1);
    // tls-b presents tls-a's certificate: evpnr must not accept it as b.
    f.host_mut("tls-b").evpnd_extra = tls_yaml(&t1);
    f.host_mut("tls-a").start_evpnd();
    f.host_mut("tls-b").start_evpnd();
    f.wait_ready("tls-a").await;

    // A plaintext client and a client of another CA get nothing.
    let addr = format!("127.0.0.1:{}", f.port);
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
    let e = EvpnrClient::new(
        ClientTls::load(mallory)
            .unwrap()
            .channel(&addr, evpn_tls::Expect::AnyRegistry, |e| e)
            .unwrap(),
    )
    .list_instances(v1::Empty {})
    .await;
    assert!(e.is_err(), "a client of another CA was served: {e:?}");
    // evpnd's own listener refuses a plaintext caller too.
    let e = evpn_api::v1::evpnd_client::EvpndClient::connect(format!(
        "http://{}",
        f.host("tls-a").addr()
    ))
    .await
    .map(|_| ());
    let refused = match e {
        Err(_) => true,
        Ok(()) => evpn_api::v1::evpnd_client::EvpndClient::connect(format!(
            "http://{}",
            f.host("tls-a").addr()
        ))
        .await
        .unwrap()
        .get_instance(v1::InstanceRef::default())
        .await
        .is_err(),
    };
    assert!(refused, "evpnd served a plaintext caller");

    // tls-b registered over TLS (its certificate is valid) but evpnr,
    // dialling it as tls-b, finds tls-a's identity there: never ready.
    let mut c = f.client().await;
    wait_for("tls-b registered", async || {
        c.list_instances(v1::Empty {}).await.is_ok_and(|l| {
            l.into_inner()
                .instances
                .iter()
                .any(|i| i.instance_id == "tls-b")
        })
    })
    .await;
    f.host("tls-b")
        .evpnd
        .as_ref()
        .unwrap()
        .wait_log("registry-registered", T)
        .unwrap();
    // evpnr dialled tls-b and refused what answered, naming why.
    wait_for("evpnr refused tls-b's certificate", async || {
        c.list_instances(v1::Empty {}).await.is_ok_and(|l| {
            l.into_inner().instances.iter().any(|i| {
                i.instance_id == "tls-b"
                    && i.last_error
                        .contains("names evpn://instance/tls-a, not evpn://instance/tls-b")
            })
        })
    })
    .await;
    let l = c.list_instances(v1::Empty {}).await.unwrap().into_inner();
    let b = l
        .instances
        .iter()
        .find(|i| i.instance_id == "tls-b")
        .unwrap();
    assert_ne!(
        b.state,
        v1::instance::State::Connected as i32,
        "evpnr accepted tls-a's certificate as tls-b: {b:?}"
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
            let e = e.unwrap();
            if e.message == "group-created" {
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
