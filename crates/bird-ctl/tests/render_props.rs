//! Property tests: every valid input renders to configuration that real BIRD 2.20 parses
//! (`bird -p`), and invalid inputs are refused before any file is written.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Command;

use bird_ctl::validate::VNI_MAX;
use bird_ctl::{
    Applier, ApplierConfig, ApplyError, BirdClient, Change, Dialect, EvpnSnippet, EvpnSpec,
    RenderedSnippet, Renderer,
};
use common::{Version, bird_bin};
use proptest::prelude::*;

fn rd() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<u16>(), any::<u32>()).prop_map(|(a, n)| format!("{a}:{n}")),
        (65536u32..=u32::MAX, any::<u16>()).prop_map(|(a, n)| format!("{a}:{n}")),
        (any::<u32>(), any::<u16>()).prop_map(|(ip, n)| format!("{}:{n}", Ipv4Addr::from(ip))),
    ]
}

fn rt() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<u16>(), any::<u32>()).prop_map(|(a, n)| format!("{a}:{n}")),
        (65536u32..=u32::MAX, any::<u16>()).prop_map(|(a, n)| format!("{a}:{n}")),
    ]
}

fn addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
    ]
    .prop_filter("unicast", |a| evpn_model::addr::vtep_refusal(*a).is_none())
}

fn valid_spec() -> impl Strategy<Value = EvpnSpec> {
    (
        "[a-z0-9][a-z0-9_-]{0,9}",
        1..=VNI_MAX,
        rd(),
        prop::collection::vec(rt(), 1..4),
        prop::collection::vec(rt(), 1..4),
        addr(),
        any::<bool>(),
    )
        .prop_map(
            |(slug, vni, rd, import_targets, export_targets, router_address, enabled)| EvpnSpec {
                slug,
                vni,
                rd,
                import_targets,
                export_targets,
                router_address,
                enabled,
            },
        )
}

/// Runs `bird -p` on a main file including the snippets; returns stderr on failure.
fn bird_parses(bin: &Path, snippets: &[String]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let inc = dir.path().join("conf.d");
    std::fs::create_dir(&inc).unwrap();
    for (i, s) in snippets.iter().enumerate() {
        std::fs::write(inc.join(format!("s{i}.conf")), s).unwrap();
    }
    let main = dir.path().join("bird.conf");
    std::fs::write(
        &main,
        format!(
            "router id 10.0.0.1;\nevpn table evpntab;\ninclude \"{}/*.conf\";\n",
            inc.display()
        ),
    )
    .unwrap();
    let out = Command::new(bin)
        .arg("-p")
        .arg("-c")
        .arg(&main)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}\n--- snippets ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            snippets.join("\n")
        ))
    }
}

/// The `vpp` dialect's `vppevpn` stanza needs IPng's BIRD; stock BIRD checks the rest.
fn without_vppevpn(r: &RenderedSnippet) -> String {
    match r.text.find("protocol vppevpn ") {
        Some(i) => r.text[..i].to_string(),
        None => r.text.clone(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn valid_inputs_render_to_config_bird_2_20_parses(
        specs in prop::collection::vec(valid_spec(), 1..5)
    ) {
        let bin = bird_bin(Version::V2_20, "valid_inputs_render_to_config_bird_2_20_parses");
        // Unique slugs.
        let specs: BTreeMap<String, EvpnSpec> =
            specs.into_iter().map(|s| (s.slug.clone(), s)).collect();
        let linux = Renderer::new(Dialect::linux_default(), "evpntab").unwrap();
        let vpp = Renderer::new(Dialect::vpp_default(), "evpntab").unwrap();
        let mut lx = Vec::new();
        let mut vp = Vec::new();
        for s in specs.values() {
            let snip = EvpnSnippet::new(s).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let r = linux.render(&snip);
            prop_assert_eq!(&r.file_name, &format!("evpn-{}.conf", s.slug));
            prop_assert_eq!(r.text.matches("disabled;").count(), if s.enabled { 0 } else { 2 });
            lx.push(r.text);
            let r = vpp.render(&snip);
            let want = format!("vppevpn_{}", s.slug);
            prop_assert!(r.text.contains(&want), "missing {}", want);
            vp.push(without_vppevpn(&r));
        }
        if let Err(e) = bird_parses(&bin, &lx) {
            return Err(TestCaseError::fail(format!("linux dialect: {e}")));
        }
        if let Err(e) = bird_parses(&bin, &vp) {
            return Err(TestCaseError::fail(format!("vpp dialect (evpn part): {e}")));
        }
    }

    #[test]
    fn invalid_inputs_are_refused_before_any_file_is_written(
        base in valid_spec(),
        field in 0..5usize,
        junk in "\\PC{0,24}",
        bad_vni in prop_oneof![Just(0u32), (VNI_MAX + 1)..=u32::MAX],
    ) {
        let mut s = base.clone();
        let expect_field = match field {
            0 => { s.slug = junk.clone(); "slug" }
            1 => { s.rd = junk.clone(); "rd" }
            2 => { s.import_targets.push(junk.clone()); "import_targets" }
            3 => { s.export_targets.insert(0, junk.clone()); "export_targets" }
            _ => { s.vni = bad_vni; "vni" }
        };
        let res = EvpnSnippet::new(&s);
        if field < 4 && res.is_ok() {
            // The junk happened to be valid (e.g. "65000:1"): nothing to check.
            return Ok(());
        }
        let err = res.expect_err("invalid input accepted");
        prop_assert!(err.field.starts_with(expect_field), "{} vs {}", err.field, expect_field);

        // The applier refuses hand-made snippets with a bad slug before touching the disk.
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("bird.conf");
        let inc = dir.path().join("conf.d");
        std::fs::write(&main, format!("include \"{}/*.conf\";\n", inc.display())).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let applier = Applier::new(
            BirdClient::lazy(dir.path().join("no.ctl"), Default::default()),
            ApplierConfig::new(&main, &inc),
        ).unwrap();
        if field == 0 {
            let r = RenderedSnippet {
                slug: junk.clone(),
                file_name: format!("evpn-{junk}.conf"),
                text: "protocol static x { }\n".into(),
                protocols: vec![],
                enabled: true,
            };
            let e = rt.block_on(applier.apply(vec![Change::Set(r)])).unwrap_err();
            prop_assert!(matches!(e, ApplyError::Invalid(_)), "{e:?}");
            let e = rt.block_on(applier.apply(vec![Change::Remove { slug: junk.clone(), protocols: vec![] }])).unwrap_err();
            prop_assert!(matches!(e, ApplyError::Invalid(_)), "{e:?}");
        }
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        let mut entries = entries;
        entries.sort();
        prop_assert_eq!(entries, vec!["bird.conf".to_string(), "conf.d".to_string()]);
        prop_assert_eq!(std::fs::read_dir(&inc).unwrap().count(), 0);
    }
}
