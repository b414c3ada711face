//! Issue 14 item 5, Linux dataplane: the kernel accepts an address that
//! overlaps a subnet on another interface of the same table, but routing to
//! that subnet becomes ambiguous. evpnd refuses such a bind up front,
//! FAILED_PRECONDITION naming the address and the other interface, and
//! leaves the BVI as it was. Needs root and BIRD 2.20 (a real fabric).
use evpn_testkit::bird::{Version, bird_bin, require_root};
use evpnfabric::{
    Fabric, FabricOpts, Gateway,
    scenario::{self, Clients},
};

const TEST: &str = "fabric_netns_linux_bind_overlapping_another_interface_is_refused";

#[test]
fn fabric_netns_linux_bind_overlapping_another_interface_is_refused() {
    require_root(TEST);
    let bird = bird_bin(Version::V2_20, TEST);
    let mut o = FabricOpts::new(&format!("fo{}", std::process::id()));
    o.evpnd_bin = env!("CARGO_BIN_EXE_evpnd").into();
    o.bird_bin = bird;
    let f = Fabric::build(o).expect("build the fabric");
    let gw = Gateway::default();
    let cl = Clients::connect(&f).unwrap();
    scenario::setup(&f, &cl, &gw).unwrap();
    // On r1, an interface evpnd does not manage holds another address of the
    // gateway's IPv4 subnet, in the main table (as the BVI).
    let r1 = &f.routers[0];
    let o = gw.v4.0.octets();
    let other = format!("{}.{}.{}.200/{}", o[0], o[1], o[2], gw.v4.1);
    r1.ns
        .ip(&[
            "link", "add", "ovl0", "type", "veth", "peer", "name", "ovl1",
        ])
        .unwrap();
    r1.ns.ip(&["addr", "add", &other, "dev", "ovl0"]).unwrap();

    let (cl2, gw2) = (cl.clone(), gw.clone());
    let e = f
        .block_on(async move { scenario::bind(&cl2, 0, &gw2).await })
        .expect_err("the gateway subnet overlaps ovl0's");
    let s = e
        .downcast_ref::<tonic::Status>()
        .unwrap_or_else(|| panic!("not a gRPC status: {e:#}"));
    assert_eq!(s.code(), tonic::Code::FailedPrecondition, "{s:?}");
    assert!(
        s.message().contains("ovl0") && s.message().contains(&other),
        "{s:?}"
    );
    let bvi = r1
        .ns
        .ip(&["-o", "addr", "show", "dev", "bvi-test"])
        .unwrap();
    assert!(
        !bvi.contains(&gw.v4.0.to_string()),
        "gateway address added: {bvi}"
    );

    // Without the other interface the bind goes through.
    r1.ns.ip(&["link", "del", "ovl0"]).unwrap();
    let (cl2, gw2) = (cl.clone(), gw.clone());
    f.block_on(async move { scenario::bind(&cl2, 0, &gw2).await })
        .unwrap();
}
