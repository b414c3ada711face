//! The BGP session rule (sans-IO).
use bird_ctl::ProtoState;

use super::Sample;

/// BGP sessions as the rule counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sessions {
    /// Counted sessions that are established.
    pub up: usize,
    /// Counted sessions, including listed protocols BIRD does not have.
    pub total: usize,
}

/// Count the BGP sessions on BIRD's protocol list: the protocols in
/// `names`, or every BGP protocol when `names` is empty (a listed protocol
/// BIRD does not have counts as down). Also returns the missing names.
fn count<'a>(protos: &[bird_ctl::ProtocolInfo], names: &'a [String]) -> (Sessions, Vec<&'a str>) {
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
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| !protos.iter().any(|p| &p.name == *n))
        .map(String::as_str)
        .collect();
    let up = counted
        .iter()
        .filter(|p| p.state == ProtoState::Up && p.info.starts_with("Established"))
        .count();
    let s = Sessions {
        up,
        total: counted.len() + missing.len(),
    };
    (s, missing)
}

/// The counted BGP sessions (see [`bgp_rule`] for which are counted).
pub fn sessions(protos: &[bird_ctl::ProtocolInfo], names: &[String]) -> Sessions {
    count(protos, names).0
}

/// The BGP rule on BIRD's protocol list (sans-IO): `Ok` when at least
/// `min` counted sessions are established; a failure is fatal when none is
/// (and at least one is counted). No BGP protocol in BIRD and none named:
/// nothing to check (success).
pub fn bgp_rule(protos: &[bird_ctl::ProtocolInfo], min: u32, names: &[String]) -> Sample {
    let (Sessions { up, total }, missing) = count(protos, names);
    if total == 0 {
        return Sample::ok();
    }
    if up as u32 >= min {
        return Sample::ok();
    }
    let mut why = format!("{up} of {total} BGP sessions established (at least {min} required)");
    if !missing.is_empty() {
        why.push_str(&format!("; not in BIRD: {}", missing.join(", ")));
    }
    if up == 0 {
        Sample::fatal(why)
    } else {
        Sample::fail(why)
    }
}
