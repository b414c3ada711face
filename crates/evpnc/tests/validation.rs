//! evpnc checks values with the grammar and limits evpnd and evpnr apply
//! (`evpn-model`), before it sends anything: a bad value is a usage error
//! (exit 2) that names the field, even with no evpnr to talk to.
use std::process::Command;

fn evpnc(args: &[&str]) -> (i32, String) {
    // Port 1 on loopback: nothing listens, so only a local refusal can
    // produce the validation message.
    let out = Command::new(env!("CARGO_BIN_EXE_evpnc"))
        .args(["-server", "127.0.0.1:1", "-timeout", "2s"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn route_targets_and_addresses_use_the_shared_rules() {
    let create = ["group", "test", "create", "vni", "100"];
    let long = format!("65000:{}", "1".repeat(100_000));
    let many: Vec<String> = (0..=64)
        .flat_map(|i| ["import-target".to_string(), format!("65000:{i}")])
        .collect();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "route-target".into(),
                "65000:1".into(),
                "import-target".into(),
                "rt:65000:1".into(),
            ],
            "invalid import_route_targets[1]: 65000:1 repeats import_route_targets[0]",
        ),
        (
            many,
            "invalid import_route_targets: 65 entries; at most 64 are allowed",
        ),
        (
            vec!["route-target".into(), "065000:1".into()],
            "invalid route-target: ",
        ),
        (vec!["route-target".into(), long], "invalid route-target: "),
    ];
    for (extra, want) in cases {
        let mut args: Vec<&str> = create.to_vec();
        args.extend(extra.iter().map(String::as_str));
        let (code, err) = evpnc(&args);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(want), "{want}: {err}");
        assert!(err.len() < 300, "{} bytes", err.len());
    }
    let (code, err) = evpnc(&["group", "test", "bvi", "address", "add", "172.16.0.255/24"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("broadcast"), "{err}");
    // Removing one checks only the syntax (it may predate the rule): it
    // goes to evpnr, which is not there.
    let (code, err) = evpnc(&["group", "test", "bvi", "address", "del", "172.16.0.255/24"]);
    assert!(err.contains("UNAVAILABLE"), "{code}: {err}");
}
