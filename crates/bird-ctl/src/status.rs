//! Typed parses of `show status`, `show protocols [all]` and `show route` replies.

use crate::error::BirdError;
use crate::proto::Reply;

/// The daemon state from the final `0013` line of `show status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum DaemonState {
    /// `Daemon is up and running`.
    Running,
    /// `Reconfiguration in progress`.
    Reconfiguring,
    /// `Shutdown in progress`.
    ShuttingDown,
    /// Any other text.
    Other(String),
}

/// Parsed `show status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// BIRD version (`1000` line).
    pub version: String,
    /// Router ID, when reported.
    pub router_id: Option<String>,
    /// Hostname, when reported.
    pub hostname: Option<String>,
    /// `Current server time is …`.
    pub server_time: Option<String>,
    /// `Last reboot on …`.
    pub last_reboot: Option<String>,
    /// `Last reconfiguration on …`.
    pub last_reconfiguration: Option<String>,
    /// The daemon state.
    pub state: DaemonState,
}

/// Parses a `show status` reply.
pub fn parse_status(reply: &Reply) -> Result<Status, BirdError> {
    let version = reply
        .lines_with(1000)
        .next()
        .map(|l| l.text.trim().trim_start_matches("BIRD ").to_string())
        .ok_or_else(|| unexpected("show status", reply))?;
    let mut st = Status {
        version,
        router_id: None,
        hostname: None,
        server_time: None,
        last_reboot: None,
        last_reconfiguration: None,
        state: DaemonState::Other(reply.final_text().to_string()),
    };
    for l in reply.lines_with(1011) {
        let t = l.text.trim();
        if let Some(v) = t.strip_prefix("Router ID is ") {
            st.router_id = Some(v.to_string());
        } else if let Some(v) = t.strip_prefix("Hostname is ") {
            st.hostname = Some(v.to_string());
        } else if let Some(v) = t.strip_prefix("Current server time is ") {
            st.server_time = Some(v.to_string());
        } else if let Some(v) = t.strip_prefix("Last reboot on ") {
            st.last_reboot = Some(v.to_string());
        } else if let Some(v) = t.strip_prefix("Last reconfiguration on ") {
            st.last_reconfiguration = Some(v.to_string());
        }
    }
    if reply.code == 13 {
        st.state = match reply.final_text().trim() {
            "Daemon is up and running" => DaemonState::Running,
            "Reconfiguration in progress" => DaemonState::Reconfiguring,
            "Shutdown in progress" => DaemonState::ShuttingDown,
            o => DaemonState::Other(o.to_string()),
        };
    }
    Ok(st)
}

/// A protocol's state column (`proto_state_name`: `down` is shown as `flush` while a down
/// protocol's routes are still being flushed; `???` for an unknown internal state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ProtoState {
    /// `up`
    Up,
    /// `start`
    Start,
    /// `stop`
    Stop,
    /// `down`
    Down,
    /// `flush`: down, routes still being flushed (transient).
    Flush,
    /// Anything else (`???`).
    Unknown,
}

impl ProtoState {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "up" => ProtoState::Up,
            "start" => ProtoState::Start,
            "stop" => ProtoState::Stop,
            "down" => ProtoState::Down,
            "flush" => ProtoState::Flush,
            "???" => ProtoState::Unknown,
            _ => return None,
        })
    }
}

/// One channel from `show protocols all`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ChannelInfo {
    /// Channel name (`ipv4`, `eth`, `evpn`, …).
    pub name: String,
    /// `State:` (e.g. `UP`, `DOWN`, `START`).
    pub state: Option<String>,
    /// `Table:`.
    pub table: Option<String>,
    /// `Routes:` summary text.
    pub routes: Option<String>,
}

/// One protocol from `show protocols [all] "<name>"`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProtocolInfo {
    /// Protocol name.
    pub name: String,
    /// Protocol type as shown (`Device`, `Static`, `BGP`, `EVPN`, `Bridge`, …).
    pub proto: String,
    /// Primary table, `---` when none.
    pub table: String,
    /// State column.
    pub state: ProtoState,
    /// Since column (time or date, possibly two tokens with `timeformat iso long`).
    pub since: String,
    /// Info column (e.g. `Active  Socket: Connection refused`), may be empty.
    pub info: String,
    /// `Message:` from the details (e.g. the reason given to `disable`).
    pub message: Option<String>,
    /// Channels from the details (`show protocols all` only).
    pub channels: Vec<ChannelInfo>,
    /// The raw detail lines (`show protocols all` only).
    pub details: Vec<String>,
}

fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && b[4] == b'-' && b[7] == b'-'
}

/// Parses one `1002` protocol row.
pub fn parse_protocol_row(row: &str) -> Option<ProtocolInfo> {
    // Split off the first five whitespace-separated tokens; Info is the remainder.
    let mut rest = row;
    let mut toks = Vec::with_capacity(5);
    while toks.len() < 5 {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        toks.push(&rest[..end]);
        rest = &rest[end..];
    }
    if toks.len() < 4 {
        return None;
    }
    let state = ProtoState::parse(toks[3])?;
    let mut since = toks.get(4).copied().unwrap_or("").to_string();
    let mut info = rest.trim();
    if looks_like_date(&since) {
        // `timeformat iso long`: the Since column has a date and a time.
        let r = info;
        let end = r.find(char::is_whitespace).unwrap_or(r.len());
        if end > 0 && r.as_bytes()[0].is_ascii_digit() {
            since = format!("{since} {}", &r[..end]);
            info = r[end..].trim();
        }
    }
    Some(ProtocolInfo {
        name: toks[0].to_string(),
        proto: toks[1].to_string(),
        table: toks[2].to_string(),
        state,
        since,
        info: info.to_string(),
        message: None,
        channels: Vec::new(),
        details: Vec::new(),
    })
}

/// Parses a `show protocols [all] […]` reply into one entry per protocol.
pub fn parse_protocols(reply: &Reply) -> Result<Vec<ProtocolInfo>, BirdError> {
    let mut out: Vec<ProtocolInfo> = Vec::new();
    let mut in_channel = false;
    for l in &reply.lines {
        match l.code {
            1002 => {
                let p = parse_protocol_row(&l.text).ok_or_else(|| BirdError::Unexpected {
                    command: "show protocols".into(),
                    reply: format!("unparsable protocol row {:?}", l.text),
                })?;
                out.push(p);
                in_channel = false;
            }
            1006 => {
                let Some(p) = out.last_mut() else { continue };
                let t = l.text.trim();
                if t.is_empty() {
                    continue;
                }
                p.details.push(l.text.clone());
                if let Some(name) = t.strip_prefix("Channel ") {
                    p.channels.push(ChannelInfo {
                        name: name.trim().to_string(),
                        ..Default::default()
                    });
                    in_channel = true;
                } else if let Some((k, v)) = t.split_once(':') {
                    let v = v.trim().to_string();
                    match (k.trim(), in_channel, p.channels.last_mut()) {
                        ("Message", false, _) => p.message = Some(v),
                        ("State", true, Some(c)) => c.state = Some(v),
                        ("Table", true, Some(c)) => c.table = Some(v),
                        ("Routes", true, Some(c)) => c.routes = Some(v),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// One route for a MAC address from `show route table <t>`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MacRoute {
    /// The network as shown (`eth 02:…`, `evpn mac 10.0.0.1:100 0 02:… *`, or a bare MAC).
    pub net: String,
    /// The protocol that provided the route.
    pub proto: String,
    /// `from <addr>` inside the brackets (the BGP peer), when shown.
    pub from: Option<String>,
    /// Whether it is the primary route (`*`).
    pub primary: bool,
    /// Next-hop gateways (`via <addr>`): for an eth-table route of a remote MAC this is the
    /// announcing VTEP.
    pub next_hops: Vec<String>,
    /// Outgoing interfaces (`via … on <if>` or `dev <if>`): for an eth-table route, the tunnel
    /// device of a remote MAC or the bridge port of a local one.
    pub interfaces: Vec<String>,
    /// Whether the route is unreachable / blackhole.
    pub unreachable: bool,
}

/// Normalises a MAC for comparison (lower case).
fn mac_in(net: &str, mac: &str) -> bool {
    net.split_whitespace().any(|t| t.eq_ignore_ascii_case(mac))
}

/// Parses a `show route table <t>` reply and keeps the routes whose network contains `mac`.
///
/// Route rows are `1007` lines (and continuations). A row with a `[proto …]` bracket starts a
/// route; if it begins with whitespace it is another route for the previous network. Following
/// `via …` lines add next hops to the current route.
pub fn parse_mac_routes(reply: &Reply, mac: &str) -> Vec<MacRoute> {
    let mut out: Vec<MacRoute> = Vec::new();
    let mut cur_net = String::new();
    let mut cur_matches = false;
    let mut have_route = false;
    for l in reply.lines.iter().filter(|l| l.code == 1007) {
        let text = l.text.as_str();
        let t = text.trim();
        if t.is_empty() || t.starts_with("Table ") {
            have_route = false;
            continue;
        }
        if let (Some(open), Some(close)) = (t.find('['), t.find(']')) {
            if close < open {
                continue;
            }
            let before = &t[..open];
            if !text.starts_with(char::is_whitespace) || text.starts_with(' ') && cur_net.is_empty()
            {
                // New network: strip the route type words (`unicast`, `unreachable`, …) and
                // next-hop info that 2.x prints after the net.
                let mut net = before.trim().to_string();
                for kw in [
                    " mpls ",
                    " unicast",
                    " unreachable",
                    " blackhole",
                    " prohibited",
                ] {
                    if let Some(i) = net.find(kw) {
                        net.truncate(i);
                    }
                }
                if let Some(i) = net.find(" via ") {
                    net.truncate(i);
                }
                cur_net = net.trim().to_string();
                cur_matches = mac_in(&cur_net, mac);
            }
            have_route = cur_matches;
            if !cur_matches {
                continue;
            }
            let inside = &t[open + 1..close];
            let mut parts = inside.split_whitespace();
            let proto = parts.next().unwrap_or("").to_string();
            let from = inside
                .split_once(" from ")
                .map(|(_, f)| f.split_whitespace().next().unwrap_or("").to_string());
            let after = &t[close + 1..];
            let mut next_hops = Vec::new();
            if let Some(i) = before.find(" via ")
                && let Some(gw) = before[i + 5..].split_whitespace().next()
            {
                next_hops.push(gw.to_string());
            }
            out.push(MacRoute {
                net: cur_net.clone(),
                proto,
                from,
                primary: after.trim_start().starts_with('*'),
                next_hops,
                interfaces: Vec::new(),
                unreachable: before.contains("unreachable") || before.contains("blackhole"),
            });
        } else if have_route && let Some(rest) = t.strip_prefix("via ") {
            if let Some(r) = out.last_mut() {
                let mut it = rest.split_whitespace();
                if let Some(gw) = it.next() {
                    r.next_hops.push(gw.to_string());
                }
                if it.next() == Some("on")
                    && let Some(dev) = it.next()
                {
                    r.interfaces.push(dev.to_string());
                }
            }
        } else if have_route && let Some(rest) = t.strip_prefix("dev ") {
            if let (Some(r), Some(dev)) = (out.last_mut(), rest.split_whitespace().next()) {
                r.interfaces.push(dev.to_string());
            }
        } else if have_route
            && (t.starts_with("unreachable") || t.starts_with("blackhole"))
            && let Some(r) = out.last_mut()
        {
            r.unreachable = true;
        }
    }
    out
}

fn unexpected(cmd: &str, reply: &Reply) -> BirdError {
    BirdError::Unexpected {
        command: cmd.to_string(),
        reply: format!("{:04} {}", reply.code, reply.final_text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Event, ReplyParser};

    fn reply(lines: &[&str]) -> Reply {
        let mut p = ReplyParser::new();
        for l in lines {
            if let Event::Complete(r) = p.feed(l).unwrap() {
                return r;
            }
        }
        panic!("incomplete");
    }

    #[test]
    fn status() {
        let r = reply(&[
            "1000-BIRD 2.0.12",
            "1011-Router ID is 192.0.2.1",
            " Hostname is vm",
            " Current server time is 2026-11-24 04:54:12.798",
            " Last reboot on 2026-11-24 04:54:10.695",
            " Last reconfiguration on 2026-11-24 04:54:10.695",
            "0013 Daemon is up and running",
        ]);
        let s = parse_status(&r).unwrap();
        assert_eq!(s.version, "2.0.12");
        assert_eq!(s.router_id.as_deref(), Some("192.0.2.1"));
        assert_eq!(s.hostname.as_deref(), Some("vm"));
        assert_eq!(
            s.last_reconfiguration.as_deref(),
            Some("2026-11-24 04:54:10.695")
        );
        assert_eq!(s.state, DaemonState::Running);
    }

    #[test]
    fn protocols_all() {
        let r = reply(&[
            "2002-Name       Proto      Table      State  Since         Info",
            "1002-p1         Static     master4    down   04:54:12.798  ",
            "1006-  Message:        maintenance by daemon",
            "  Channel ipv4",
            "    State:          DOWN",
            "    Table:          master4",
            "    Preference:     200",
            "    Input filter:   ACCEPT",
            "    Routes:         1 imported, 0 exported, 1 preferred",
            "",
            "0000 ",
        ]);
        let ps = parse_protocols(&r).unwrap();
        assert_eq!(ps.len(), 1);
        let p = &ps[0];
        assert_eq!(p.name, "p1");
        assert_eq!(p.proto, "Static");
        assert_eq!(p.table, "master4");
        assert_eq!(p.state, ProtoState::Down);
        assert_eq!(p.since, "04:54:12.798");
        assert_eq!(p.info, "");
        assert_eq!(p.message.as_deref(), Some("maintenance by daemon"));
        assert_eq!(p.channels.len(), 1);
        assert_eq!(p.channels[0].name, "ipv4");
        assert_eq!(p.channels[0].state.as_deref(), Some("DOWN"));
        assert_eq!(p.channels[0].table.as_deref(), Some("master4"));
    }

    #[test]
    fn protocols_table_and_info() {
        let r = reply(&[
            "2002-Name       Proto      Table      State  Since         Info",
            "1002-device1    Device     ---        up     04:55:15.222  ",
            " uplink     BGP        ---        start  04:55:15.222  Active        Socket: Connection refused",
            " bridge100  Bridge     ethtab100  up     04:55:15.229  ",
            " evpn100    EVPN       ---        up     2026-11-24 04:55:15  ",
            "0000 ",
        ]);
        let ps = parse_protocols(&r).unwrap();
        assert_eq!(ps.len(), 4);
        assert_eq!(ps[1].state, ProtoState::Start);
        assert_eq!(ps[1].info, "Active        Socket: Connection refused");
        assert_eq!(ps[2].table, "ethtab100");
        assert_eq!(ps[3].since, "2026-11-24 04:55:15");
        assert_eq!(ps[3].info, "");
    }

    #[test]
    fn mac_routes() {
        let r = reply(&[
            "1007-Table ethtab100:",
            " a2:1c:ca:94:15:08 mpls 100 unicast [evpn100 04:55:16.001] * (80)",
            " \tvia 10.0.0.2 on vxlan100 mpls 100",
            " b6:a1:53:1a:bf:cf   unicast [bridge100 04:55:15.230] * (80)",
            " \tdev br100",
            "0000 ",
        ]);
        let m = parse_mac_routes(&r, "A2:1C:CA:94:15:08");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].proto, "evpn100");
        assert!(m[0].primary);
        assert_eq!(m[0].next_hops, vec!["10.0.0.2"]);
        assert_eq!(m[0].interfaces, vec!["vxlan100"]);
        let m = parse_mac_routes(&r, "b6:a1:53:1a:bf:cf");
        assert_eq!(m[0].interfaces, vec!["br100"]);
        assert!(m[0].next_hops.is_empty());
        // 2.20 output with a VLAN-tagged net (captured from `show route table et`).
        let r = reply(&[
            "1007-Table et:",
            " 12:20:30:40:50:61 vlan 5 unicast [s 14:47:25.337] * (200)",
            " \tdev lo",
            " 12:20:30:40:50:60    unicast [s 14:47:25.337] * (200)",
            " \tdev lo",
            "0000 ",
        ]);
        let m = parse_mac_routes(&r, "12:20:30:40:50:61");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].net, "12:20:30:40:50:61 vlan 5");
        assert_eq!(m[0].proto, "s");
        assert_eq!(m[0].interfaces, vec!["lo"]);
        let r = reply(&[
            "1007-Table evpntab:",
            " evpn mac 10.0.0.1:100 0 b6:a1:53:1a:bf:cf * mpls 100  [evpn100 04:55:15.230] * (120)",
            " evpn mac 10.0.0.2:100 0 b6:a1:53:1a:bf:cf * mpls 100  unicast [uplink 04:55:16 from 10.0.0.2] (100) [i]",
            " \tvia 10.0.0.2 on v1",
            " evpn imet 10.0.0.1:100 0 10.0.0.1  [evpn100 04:55:15.229] * (120)",
            "0000 ",
        ]);
        let m = parse_mac_routes(&r, "b6:a1:53:1a:bf:cf");
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].net, "evpn mac 10.0.0.1:100 0 b6:a1:53:1a:bf:cf *");
        assert_eq!(m[1].from.as_deref(), Some("10.0.0.2"));
        assert!(!m[1].primary);
        assert_eq!(m[1].next_hops, vec!["10.0.0.2"]);
        assert!(parse_mac_routes(&r, "02:00:00:00:00:01").is_empty());
    }
}
