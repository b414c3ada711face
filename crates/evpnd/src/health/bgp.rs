//! The BGP session rule (sans-IO).
use bird_ctl::ProtoState;

use super::Sample;

/// The BGP rule on BIRD's protocol list (sans-IO): `Ok` when at least
/// `min` counted sessions are established; a failure is fatal when none is
/// (and at least one is counted). No BGP protocol in BIRD and none named:
/// nothing to check (success).
pub fn bgp_rule(protos: &[bird_ctl::ProtocolInfo], min: u32, names: &[String]) -> Sample {
    let counted: Vec<&bird_ctl::ProtocolInfo> = protos
        .iter()
        .filter(|p| {
            if names.is_empty() {
                p.proto.eq_ignore_ascii_case("bgp")
            } else {
                names.contains(&p.name)
            }
        })
        .collect();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !protos.iter().any(|p| &p.name == *n))
        .collect();
    let total = counted.len() + missing.len();
    if total == 0 {
        return Sample::ok();
    }
    let up = counted
        .iter()
        .filter(|p| p.state == ProtoState::Up && p.info.starts_with("Established"))
        .count();
    if up as u32 >= min {
        return Sample::ok();
    }
    let mut why = format!("{up} of {total} BGP sessions established (at least {min} required)");
    if !missing.is_empty() {
        let m: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        why.push_str(&format!("; not in BIRD: {}", m.join(", ")));
    }
    if up == 0 {
        Sample::fatal(why)
    } else {
        Sample::fail(why)
    }
}
