//! linux-cp against vppsim, black-box through gRPC (issue 14 items 1-3):
//! `vpp.linux-cp` modes, a refused pair (-11, like VPP 25.10 without
//! `/dev/vhost-net`) and its repair, and reads that report the Linux side
//! from VPP's answer.
mod common;

use common::{Host, T};
use evpn_api::v1;
use vppsim::{SimOptions, VppSim};

/// A host whose VPP runs with `opts` and whose evpnd has `linux_cp`
/// (`None`: the default) and `reconcile-interval: interval`.
async fn host(test: &str, opts: SimOptions, linux_cp: Option<&str>, interval: &str) -> Host {
    let mut h = Host::new(test, "r1").await;
    // The sim the host started, replaced by one with `opts` on its socket.
    let sock = h.sim.socket_path().to_path_buf();
    let tmp = VppSim::start(h.dir.path().join("tmp.sock"), SimOptions::default())
        .await
        .unwrap();
    std::mem::replace(&mut h.sim, tmp).shutdown().await;
    let sim = VppSim::start(&sock, opts).await.unwrap();
    std::mem::replace(&mut h.sim, sim).shutdown().await;
    let mode = linux_cp.map_or(String::new(), |m| format!("    linux-cp: {m}\n"));
    let cfg = h
        .config()
        .replace("    timeout: 2s\n", &format!("    timeout: 2s\n{mode}"))
        .replace(
            "evpnd:\n",
            &format!("evpnd:\n  reconcile-interval: {interval}\n"),
        );
    let path = h.dir.path().join("evpnd.yaml");
    std::fs::write(&path, cfg).unwrap();
    let d = evpn_testkit::Daemon::spawn(common::BIN, &["--config", path.to_str().unwrap()], &[])
        .unwrap();
    d.wait_log("reconcile-finished", T).unwrap();
    h.evpnd = Some(d);
    h
}

/// [`evpn_testkit::eventually`] with [`T`]; panics naming `what`.
async fn until(what: &str, f: impl AsyncFnMut() -> bool) {
    evpn_testkit::eventually(what, T, f).await.unwrap()
}

async fn create(h: &Host) -> Result<v1::Bvi, tonic::Status> {
    let mut c = h.client().await;
    c.create_evpn_instance(v1::CreateEvpnInstanceRequest {
        slug: "test".into(),
        vni: 100,
        ..Default::default()
    })
    .await
    .unwrap();
    c.create_bvi(v1::CreateBviRequest {
        slug: "test".into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner())
}

async fn get_bvi(h: &Host) -> v1::Bvi {
    h.client()
        .await
        .get_bvi(v1::EvpnRef {
            slug: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn vpp_last_error(h: &Host) -> String {
    h.client()
        .await
        .get_vpp_info(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner()
        .last_error
}

fn pairs(h: &Host) -> usize {
    h.sim.state().lcp_pairs.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linux_cp_auto_keeps_a_bvi_whose_pair_vpp_refuses_and_retries_it() {
    let opts = SimOptions {
        lcp_tap_fail: true,
        ..Default::default()
    };
    let h = host("linux_cp_auto_refused", opts, None, "200ms").await;
    let b = create(&h)
        .await
        .expect("auto: the BVI is kept without its pair");
    assert!(!b.linux_interface, "{b:?}");
    assert_eq!(b.interface_name, "");
    assert!(h.sim.state().interface_by_name("loop10000").is_some());
    assert_eq!(pairs(&h), 0);
    let b = get_bvi(&h).await;
    assert!(!b.linux_interface && b.interface_name.is_empty(), "{b:?}");
    let e = vpp_last_error(&h).await;
    assert!(e.contains("no Linux side") && e.contains("-11"), "{e}");
    h.evpnd()
        .wait_log("bvi-without-linux-side", T)
        .expect("a warning");
    // The host is fixed: the next reconcile makes the pair.
    h.sim.faults().lcp_tap_fail(false);
    until("the pair made by reconcile", || async {
        let b = get_bvi(&h).await;
        b.linux_interface && b.interface_name == "bvi-test"
    })
    .await;
    assert_eq!(pairs(&h), 1);
    let e = vpp_last_error(&h).await;
    assert!(!e.contains("no Linux side"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linux_cp_on_refuses_a_bvi_without_its_linux_side() {
    let opts = SimOptions {
        lcp_tap_fail: true,
        ..Default::default()
    };
    let h = host("linux_cp_on_refused", opts, Some("on"), "0s").await;
    let e = create(&h).await.expect_err("on: no BVI without its pair");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("vpp.linux-cp"), "{}", e.message());
    assert!(
        h.sim.state().interface_by_name("loop10000").is_none(),
        "the loopback is rolled back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linux_cp_off_never_creates_a_pair() {
    let h = host("linux_cp_off", SimOptions::default(), Some("off"), "0s").await;
    let b = create(&h).await.unwrap();
    assert!(!b.linux_interface && b.interface_name.is_empty(), "{b:?}");
    assert!(!h.changes().iter().any(|m| m.starts_with("lcp_")));
    assert_eq!(pairs(&h), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_missing_after_a_vpp_restart_is_repaired() {
    let h = host("lcp_pair_repair", SimOptions::default(), None, "200ms").await;
    create(&h).await.unwrap();
    assert_eq!(pairs(&h), 1);
    // VPP comes back on a host where the TAP cannot be made (yet).
    h.sim.clear_journal();
    h.sim.faults().lcp_tap_fail(true);
    h.sim.faults().restart();
    until(
        "the pair refused after the loopback was rebuilt",
        || async {
            h.sim.state().interface_by_name("loop10000").is_some()
                && h.sim
                    .journal()
                    .iter()
                    .any(|e| e.msg == "lcp_itf_pair_add_del_v3" && e.retval == -11)
        },
    )
    .await;
    h.sim.faults().lcp_tap_fail(false);
    until("the pair repaired", || async {
        let st = h.sim.state();
        let lo = st.interface_by_name("loop10000").map(|i| i.sw_if_index);
        st.lcp_pairs.iter().any(|p| Some(p.phy_sw_if_index) == lo)
    })
    .await;
    until("the BVI reported with its Linux side", || async {
        get_bvi(&h).await.linux_interface
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_linux_cp_plugin_no_linux_interface_is_reported() {
    let opts = SimOptions {
        without_plugins: vec!["linux_cp".into()],
        ..Default::default()
    };
    let h = host("lcp_no_plugin_reads", opts, None, "0s").await;
    let b = create(&h).await.unwrap();
    assert_ne!(b.sw_if_index, 0);
    for b in [b, get_bvi(&h).await] {
        assert!(!b.linux_interface, "{b:?}");
        assert_eq!(b.interface_name, "", "no Linux interface has a name");
    }
}
