//! Output: proto-JSON for `-json`, and for text aligned tables (lists) and
//! labelled detail views (single objects) rendered from the same JSON
//! model, with coloured labels and times both absolute and relative.
//!
//! Alignment never depends on colour: cells are padded on their plain
//! text and painted afterwards, and every painted span is one escape in,
//! one reset out, so output lines up with `-color` on or off.
use std::time::{SystemTime, UNIX_EPOCH};

use anstyle::{AnsiColor, Style};
use evpn_api::v1;

use crate::model::J;

/// Text styling.
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    pub color: bool,
}

const LABEL: Style = AnsiColor::Blue.on_default();
const VALUE: Style = AnsiColor::BrightWhite.on_default();
const GOOD: Style = AnsiColor::Green.on_default();
const BAD: Style = AnsiColor::Red.on_default();
const WARN: Style = AnsiColor::Yellow.on_default();
const DIM: Style = AnsiColor::BrightBlack.on_default();

impl Paint {
    fn paint(&self, s: &str, style: Style) -> String {
        if self.color && !s.is_empty() {
            format!("{}{s}{}", style.render(), style.render_reset())
        } else {
            s.to_string()
        }
    }
    /// A static label (dark blue).
    pub fn label(&self, s: &str) -> String {
        self.paint(s, LABEL)
    }
    /// A value (bright white).
    pub fn value(&self, s: &str) -> String {
        self.paint(s, VALUE)
    }
    /// An error prefix (red).
    pub fn bad(&self, s: &str) -> String {
        self.paint(s, BAD)
    }
    /// Colour a state word by meaning.
    pub fn state(&self, s: &str) -> String {
        let style = match s {
            "connected" | "ok" | "up" | "yes" | "primary" | "enabled" | "info" => GOOD,
            "unreachable" | "down" | "no" | "disabled" | "error" => BAD,
            "connecting" | "start" | "warn" => WARN,
            "-" | "debug" | "never" => DIM,
            _ => VALUE,
        };
        self.paint(s, style)
    }
}

/// Seconds since the epoch now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// "3m ago", "just now", "in 5s".
pub fn relative(then: i64, now: i64) -> String {
    let d = now - then;
    let (a, future) = if d < 0 { (-d, true) } else { (d, false) };
    if a < 2 {
        return "just now".into();
    }
    let s = if a < 120 {
        format!("{a}s")
    } else if a < 7200 {
        format!("{}m", a / 60)
    } else if a < 2 * 86400 {
        format!("{}h", a / 3600)
    } else {
        format!("{}d", a / 86400)
    };
    if future {
        format!("in {s}")
    } else {
        format!("{s} ago")
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Civil date of a day count since the epoch.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parse the RFC 3339 form proto-JSON uses for timestamps
/// (`2026-06-03T22:17:28.5+00:00`, `…Z`) into epoch seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        n(0..4)?,
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    );
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        let k = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        rest = &r[k..];
    }
    let off = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 => {
            let sign = match &rest[..1] {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off)
}

/// `2026-06-03 22:17:28 UTC`.
pub fn absolute(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86400));
    let t = secs.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// Short relative time for table cells ("3m ago", "-").
fn ago(ts: Option<&pbjson_types::Timestamp>, now: i64) -> String {
    match ts {
        Some(t) if t.seconds != 0 => relative(t.seconds, now),
        _ => "-".into(),
    }
}

/// `STATE_CONNECTED` → `connected`, `HEALTH_OK` → `ok`.
pub fn enum_word(s: &str) -> String {
    let is_enum = s.contains('_')
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !is_enum {
        return s.to_string();
    }
    match s.split_once('_') {
        Some((_, rest)) => rest.to_ascii_lowercase().replace('_', "-"),
        None => s.to_ascii_lowercase(),
    }
}

/// `primaryInstanceId` → `primary instance id`.
pub fn label_of(key: &str) -> String {
    let mut out = String::new();
    for (i, c) in key.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push(' ');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn scalar(v: &J, now: i64) -> String {
    match v {
        J::Str(s) => match parse_rfc3339(s) {
            Some(t) => format!("{} ({})", absolute(t), relative(t, now)),
            None => enum_word(s),
        },
        J::Bool(b) => if *b { "yes" } else { "no" }.into(),
        J::Null => "-".into(),
        J::Num(n) => n.clone(),
        J::Arr(a) if a.is_empty() => "-".into(),
        J::Arr(a) => a
            .iter()
            .map(|x| scalar(x, now))
            .collect::<Vec<_>>()
            .join(", "),
        J::Obj(_) => "{…}".into(),
    }
}

/// `{"address": "a", "prefixLen": 24}` → `a/24`.
fn prefix_str(v: &J) -> Option<String> {
    let J::Obj(kv) = v else { return None };
    let Some(J::Str(a)) = v.get("address") else {
        return None;
    };
    let l = match v.get("prefixLen") {
        Some(J::Num(n)) => n.as_str(),
        _ => "0",
    };
    (kv.len() <= 2).then(|| format!("{a}/{l}"))
}

/// Render a message as labelled lines in field order: labels aligned per
/// level, nested objects indented, arrays of scalars (and prefixes) inline,
/// arrays of objects one block each.
pub fn detail(v: &J, p: Paint, now: i64) -> String {
    let mut out = String::new();
    detail_into(&mut out, v, p, now, 0);
    out
}

fn detail_into(out: &mut String, v: &J, p: Paint, now: i64, indent: usize) {
    let pad = format!("{:indent$}", "");
    let J::Obj(obj) = v else {
        out.push_str(&format!("{pad}{}\n", p.value(&scalar(v, now))));
        return;
    };
    if obj.is_empty() {
        out.push_str(&format!("{pad}{}\n", p.state("-")));
        return;
    }
    let w = obj
        .iter()
        .map(|(k, _)| label_of(k).len())
        .max()
        .unwrap_or(0);
    for (k, val) in obj {
        let label = format!("{:<w$}", label_of(k));
        let line = |s: &str| format!("{pad}{}  {}\n", p.label(&label), s);
        match val {
            J::Obj(_) => match prefix_str(val) {
                Some(s) => out.push_str(&line(&p.value(&s))),
                None => {
                    out.push_str(&format!("{pad}{}\n", p.label(label.trim_end())));
                    detail_into(out, val, p, now, indent + 2);
                }
            },
            J::Arr(a) if a.iter().any(J::is_obj) => {
                if let Some(list) = a.iter().map(prefix_str).collect::<Option<Vec<_>>>() {
                    out.push_str(&line(&p.value(&list.join(", "))));
                    continue;
                }
                out.push_str(&format!("{pad}{}\n", p.label(label.trim_end())));
                for item in a {
                    // YAML-like: the item's first line carries the dash.
                    let mut block = String::new();
                    detail_into(&mut block, item, p, now, indent + 4);
                    let dash = format!("{pad}  - ");
                    out.push_str(&dash);
                    out.push_str(block.get(dash.len()..).unwrap_or(&block));
                }
            }
            J::Arr(_) => out.push_str(&line(&p.value(&scalar(val, now)))),
            _ => out.push_str(&line(&p.state(&scalar(val, now)))),
        }
    }
}

/// An aligned table: header labels, then rows. Cells whose text is a
/// state word are coloured by meaning.
pub fn table(headers: &[&str], rows: &[Vec<String>], p: Paint) -> String {
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>, raw: &[String]| -> String {
        let n = cells.len();
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            s.push_str(&c);
            if i + 1 < n {
                let pad = w[i] - raw[i].chars().count() + 2;
                s.push_str(&" ".repeat(pad));
            }
        }
        s.push('\n');
        s
    };
    let hraw: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let mut out = line(hraw.iter().map(|h| p.label(h)).collect(), &hraw);
    for r in rows {
        out.push_str(&line(r.iter().map(|c| p.state(c)).collect(), r));
    }
    out
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

fn dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}

fn prefixes(a: &[v1::Prefix]) -> String {
    if a.is_empty() {
        return "-".into();
    }
    a.iter()
        .map(|p| format!("{}/{}", p.address, p.prefix_len))
        .collect::<Vec<_>>()
        .join(",")
}

fn list(a: &[String]) -> String {
    if a.is_empty() {
        "-".into()
    } else {
        a.join(",")
    }
}

/// `show instance`.
pub fn instances(l: &v1::InstanceList, p: Paint, now: i64) -> String {
    if l.instances.is_empty() {
        return "no instances registered\n".into();
    }
    let rows: Vec<Vec<String>> = l
        .instances
        .iter()
        .map(|i| {
            vec![
                i.instance_id.clone(),
                dash(&i.grpc_address),
                enum_word(i.state().as_str_name()),
                yes(i.ready),
                liveness(i),
                dash(&i.version),
                list(&i.groups),
                ago(i.last_seen.as_ref(), now),
            ]
        })
        .collect();
    table(
        &[
            "INSTANCE",
            "ADDRESS",
            "STATE",
            "READY",
            "LIVENESS",
            "VERSION",
            "GROUPS",
            "LAST SEEN",
        ],
        &rows,
        p,
    )
}

/// `alive (0.4s)`: the liveness and the age of the last heartbeat; `-`
/// before the first heartbeat.
fn liveness(i: &v1::Instance) -> String {
    match (i.liveness(), &i.heartbeat_age) {
        (v1::instance::Liveness::Unspecified, _) | (_, None) => "-".into(),
        (l, Some(a)) => format!(
            "{} ({:.1}s)",
            enum_word(l.as_str_name()),
            a.seconds as f64 + f64::from(a.nanos) / 1e9
        ),
    }
}

/// `show group`.
pub fn groups(l: &v1::GroupList, p: Paint) -> String {
    if l.groups.is_empty() {
        return "no groups\n".into();
    }
    let rows: Vec<Vec<String>> = l
        .groups
        .iter()
        .map(|g| {
            vec![
                g.group_id.clone(),
                g.vni.to_string(),
                g.mtu.to_string(),
                dash(&g.vmac),
                dash(&g.primary_instance_id),
                list(&g.members),
                g.group_bvi
                    .as_ref()
                    .map(|b| prefixes(&b.addresses))
                    .unwrap_or_else(|| "no bvi".into()),
            ]
        })
        .collect();
    table(
        &[
            "GROUP",
            "VNI",
            "MTU",
            "VMAC",
            "PRIMARY",
            "MEMBERS",
            "GATEWAY ADDRESSES",
        ],
        &rows,
        p,
    )
}

/// `show instance <i> evpn`.
pub fn evpns(l: &v1::EvpnInstanceList, p: Paint) -> String {
    if l.evpn_instances.is_empty() {
        return "no eVPNs on this instance\n".into();
    }
    let rows: Vec<Vec<String>> = l
        .evpn_instances
        .iter()
        .map(|e| {
            vec![
                e.slug.clone(),
                e.vni.to_string(),
                dash(&e.rd),
                list(&e.import_route_targets),
                list(&e.export_route_targets),
                dash(&e.vtep_address),
                if e.enabled { "enabled" } else { "disabled" }.into(),
                list(
                    &e.protocols
                        .iter()
                        .map(|b| format!("{}:{}", b.name, b.state))
                        .collect::<Vec<_>>(),
                ),
            ]
        })
        .collect();
    table(
        &[
            "EVPN",
            "VNI",
            "RD",
            "IMPORT",
            "EXPORT",
            "VTEP",
            "STATE",
            "PROTOCOLS",
        ],
        &rows,
        p,
    )
}

/// `show instance <i> bvi`.
pub fn bvis(l: &v1::BviList, p: Paint) -> String {
    if l.bvis.is_empty() {
        return "no BVIs on this instance\n".into();
    }
    let rows: Vec<Vec<String>> = l
        .bvis
        .iter()
        .map(|b| {
            vec![
                b.slug.clone(),
                dash(&b.interface_name),
                dash(&b.mac),
                enum_word(b.role().as_str_name()),
                dash(&b.group_id),
                b.mtu.to_string(),
                dash(&b.link_local),
                prefixes(&b.addresses),
            ]
        })
        .collect();
    table(
        &[
            "EVPN",
            "INTERFACE",
            "MAC",
            "ROLE",
            "GROUP",
            "MTU",
            "LINK-LOCAL",
            "ADDRESSES",
        ],
        &rows,
        p,
    )
}

/// One event as a compact line: time, level, type, origin, message and
/// fields as key=value.
pub fn event_line(e: &v1::Event, p: Paint) -> String {
    let ts =
        e.ts.as_ref()
            .map(|t| {
                let s = t.seconds.rem_euclid(86400);
                format!(
                    "{:02}:{:02}:{:02}.{:03}",
                    s / 3600,
                    s / 60 % 60,
                    s % 60,
                    t.nanos / 1_000_000
                )
            })
            .unwrap_or_else(|| "--:--:--.---".into());
    let origin = if e.instance.is_empty() {
        "evpnr"
    } else {
        e.instance.as_str()
    };
    let mut fields: Vec<_> = e.fields.iter().collect();
    fields.sort();
    let f: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={v}", p.label(k)))
        .collect();
    let level = format!(
        "{}{}",
        p.state(&e.level),
        " ".repeat(5usize.saturating_sub(e.level.len()))
    );
    let ty = format!("{:<8}", e.r#type);
    let origin = format!("{origin:<12}");
    let mut s = format!(
        "{} {level} {ty} {origin} {}",
        p.label(&ts),
        p.value(&e.message)
    );
    if !f.is_empty() {
        s.push(' ');
        s.push_str(&f.join(" "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_525_048 + 180;

    fn strip(s: &str) -> String {
        let mut out = String::new();
        let mut esc = false;
        for c in s.chars() {
            match (esc, c) {
                (false, '\x1b') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, c) => out.push(c),
            }
        }
        out
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_rfc3339("2026-06-03T22:17:28+00:00"),
            Some(1_780_525_048)
        );
        assert_eq!(
            parse_rfc3339("2026-06-03T22:17:28.123Z"),
            Some(1_780_525_048)
        );
        assert_eq!(
            parse_rfc3339("2026-06-04T00:17:28+02:00"),
            Some(1_780_525_048)
        );
        assert_eq!(parse_rfc3339("1780525048"), None);
        assert_eq!(absolute(1_780_525_048), "2026-06-03 22:17:28 UTC");
        assert_eq!(absolute(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(relative(100, 100), "just now");
        assert_eq!(relative(0, 59), "59s ago");
        assert_eq!(relative(0, 180), "3m ago");
        assert_eq!(relative(0, 3 * 3600), "3h ago");
        assert_eq!(relative(0, 3 * 86400), "3d ago");
        assert_eq!(relative(10, 0), "in 10s");
    }

    #[test]
    fn words() {
        assert_eq!(enum_word("STATE_CONNECTED"), "connected");
        assert_eq!(enum_word("HEALTH_NOT_USED"), "not-used");
        assert_eq!(enum_word("vpp"), "vpp");
        assert_eq!(label_of("primaryInstanceId"), "primary instance id");
        assert_eq!(label_of("vni"), "vni");
    }

    #[test]
    fn detail_view_of_a_group() {
        let g = v1::Group {
            group_id: "test".into(),
            vni: 100,
            mtu: 1500,
            vmac: "42:6c:fa:d6:82:98".into(),
            members: vec!["dpu0-chplo0".into(), "dpu0-ddln0".into()],
            primary_instance_id: "dpu0-ddln0".into(),
            group_bvi: Some(v1::GroupBvi {
                mac: "42:6c:fa:d6:82:98".into(),
                addresses: vec![
                    v1::Prefix {
                        address: "172.16.0.32".into(),
                        prefix_len: 24,
                    },
                    v1::Prefix {
                        address: "fec0::32".into(),
                        prefix_len: 64,
                    },
                ],
                created_at: Some(pbjson_types::Timestamp {
                    seconds: 1_780_525_048,
                    nanos: 0,
                }),
                modified_at: None,
            }),
            ..Default::default()
        };
        let v = J::of(&g).unwrap();
        let plain = detail(&v, Paint { color: false }, NOW);
        assert!(plain.starts_with("group id "), "field order: {plain}");
        assert!(plain.contains("group id             test\n"), "{plain}");
        assert!(
            plain.contains("members              dpu0-chplo0, dpu0-ddln0\n"),
            "{plain}"
        );
        assert!(plain.contains("group bvi\n"), "{plain}");
        assert!(
            plain.contains("  addresses   172.16.0.32/24, fec0::32/64\n"),
            "{plain}"
        );
        assert!(
            plain.contains("  created at  2026-06-03 22:17:28 UTC (3m ago)\n"),
            "{plain}"
        );
        // Colour changes nothing but the escapes.
        let coloured = detail(&v, Paint { color: true }, NOW);
        assert!(coloured.contains("\x1b["), "{coloured}");
        assert_eq!(strip(&coloured), plain);
    }

    #[test]
    fn arrays_of_objects_are_dashed_blocks() {
        let s = v1::InstanceStatus {
            instance: None,
            health: None,
            drained: false,
            witnesses: vec![],
            memberships: vec![
                v1::MemberStatus {
                    group_id: "a".into(),
                    primary: true,
                    ..Default::default()
                },
                v1::MemberStatus {
                    group_id: "b".into(),
                    configured: true,
                    last_error: "boom".into(),
                    ..Default::default()
                },
            ],
        };
        let plain = detail(&J::of(&s).unwrap(), Paint { color: false }, NOW);
        assert_eq!(
            plain,
            "memberships\n  - group id  a\n    primary   yes\n  - group id    b\n    configured  yes\n    last error  boom\n"
        );
    }

    #[test]
    fn tables_align_with_and_without_colour() {
        let l = v1::InstanceList {
            instances: vec![
                v1::Instance {
                    instance_id: "dpu0-ddln0".into(),
                    grpc_address: "[::1]:9191".into(),
                    state: v1::instance::State::Connected as i32,
                    ready: true,
                    version: "0.1.0".into(),
                    groups: vec!["test".into()],
                    last_seen: Some(pbjson_types::Timestamp {
                        seconds: NOW - 180,
                        nanos: 0,
                    }),
                    liveness: v1::instance::Liveness::Suspect as i32,
                    heartbeat_age: Some(pbjson_types::Duration {
                        seconds: 3,
                        nanos: 400_000_000,
                    }),
                    ..Default::default()
                },
                v1::Instance {
                    instance_id: "r1".into(),
                    state: v1::instance::State::Unreachable as i32,
                    ..Default::default()
                },
            ],
        };
        let plain = instances(&l, Paint { color: false }, NOW);
        let lines: Vec<&str> = plain.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "INSTANCE    ADDRESS     STATE        READY  LIVENESS        VERSION  GROUPS  LAST SEEN"
        );
        assert_eq!(
            lines[1],
            "dpu0-ddln0  [::1]:9191  connected    yes    suspect (3.4s)  0.1.0    test    3m ago"
        );
        assert_eq!(
            lines[2],
            "r1          -           unreachable  no     -               -        -       -"
        );
        let coloured = instances(&l, Paint { color: true }, NOW);
        assert_ne!(coloured, plain);
        assert_eq!(strip(&coloured), plain);
    }

    #[test]
    fn event_lines_are_compact() {
        let e = v1::Event {
            seq: 42,
            ts: Some(pbjson_types::Timestamp {
                seconds: 1_780_525_048,
                nanos: 123_000_000,
            }),
            r#type: "crud".into(),
            level: "info".into(),
            instance: "dpu0-ddln0".into(),
            message: "groupbvi-bound".into(),
            fields: [
                ("mac".to_string(), "42:6c:fa:d6:82:98".to_string()),
                ("evpn".into(), "test".into()),
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(
            event_line(&e, Paint { color: false }),
            "22:17:28.123 info  crud     dpu0-ddln0   groupbvi-bound evpn=test mac=42:6c:fa:d6:82:98"
        );
    }
}
