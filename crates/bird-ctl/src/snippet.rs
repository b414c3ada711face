//! Per-eVPN BIRD snippets (`evpn-<slug>.conf`) for the `vpp` and `linux` dialects.
//!
//! Every value is validated when the [`EvpnSnippet`] is built ([`EvpnSnippet::new`]) and the
//! dialect options when the [`Renderer`] is built ([`Renderer::new`]); rendering itself cannot
//! fail and only ever writes validated tokens, so no API input can inject BIRD configuration.

use std::net::IpAddr;

use crate::validate::{self, RouteDistinguisher, RouteTarget, ToBird, ValidationError};

/// Unvalidated description of one eVPN, as an API caller or the state file provides it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EvpnSpec {
    /// Slug, see [`validate::slug`].
    pub slug: String,
    /// VXLAN network identifier.
    pub vni: u32,
    /// Route distinguisher, e.g. `65000:100` or `10.0.0.1:100`.
    pub rd: String,
    /// Import route targets, e.g. `["65000:100"]` (at least one).
    pub import_targets: Vec<String>,
    /// Export route targets (at least one).
    pub export_targets: Vec<String>,
    /// Local VTEP (router) address.
    pub router_address: IpAddr,
    /// Administrative state; `false` renders `disabled;` in every stanza.
    pub enabled: bool,
}

/// A validated eVPN: can only be built through [`EvpnSnippet::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvpnSnippet {
    slug: String,
    vni: u32,
    rd: RouteDistinguisher,
    import_targets: Vec<RouteTarget>,
    export_targets: Vec<RouteTarget>,
    router_address: IpAddr,
    enabled: bool,
}

/// A target list: the shared rules of [`evpn_model::rt`] (count, grammar), but a repeated target
/// is dropped rather than refused — the API edges refuse repeats, and a state file written before
/// they did must still render.
fn targets(field: &str, v: &[String]) -> Result<Vec<RouteTarget>, ValidationError> {
    if v.is_empty() {
        return Err(ValidationError::new(
            field,
            "at least one route target is required",
        ));
    }
    evpn_model::validate_count(field, v.len(), evpn_model::ROUTE_TARGETS_MAX)?;
    let mut out: Vec<RouteTarget> = Vec::with_capacity(v.len());
    for (i, s) in v.iter().enumerate() {
        let rt = RouteTarget::parse(&format!("{field}[{i}]"), s)?;
        if !out.contains(&rt) {
            out.push(rt);
        }
    }
    Ok(out)
}

impl EvpnSnippet {
    /// Validates a spec.
    pub fn new(spec: &EvpnSpec) -> Result<Self, ValidationError> {
        validate::slug(&spec.slug)?;
        validate::vni(spec.vni)?;
        let rd = RouteDistinguisher::parse("rd", &spec.rd)?;
        let import_targets = targets("import_targets", &spec.import_targets)?;
        let export_targets = targets("export_targets", &spec.export_targets)?;
        let ra = spec.router_address;
        evpn_model::validate_vtep("router_address", ra)?;
        Ok(Self {
            slug: spec.slug.clone(),
            vni: spec.vni,
            rd,
            import_targets,
            export_targets,
            router_address: ra,
            enabled: spec.enabled,
        })
    }

    /// The slug.
    pub fn slug(&self) -> &str {
        &self.slug
    }
    /// The VNI.
    pub fn vni(&self) -> u32 {
        self.vni
    }
    /// Whether the eVPN is enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
}

/// The snippet file name for a slug: `evpn-<slug>.conf`.
pub fn file_name(slug: &str) -> String {
    format!("evpn-{slug}.conf")
}

/// BIRD protocol name of the `evpn` protocol: `evpn_<slug>`.
pub fn evpn_protocol(slug: &str) -> String {
    format!("evpn_{slug}")
}
/// BIRD protocol name of the kernel bridge companion: `bridge_<slug>`.
pub fn bridge_protocol(slug: &str) -> String {
    format!("bridge_{slug}")
}
/// BIRD protocol name of the VPP companion: `vppevpn_<slug>`.
pub fn vppevpn_protocol(slug: &str) -> String {
    format!("vppevpn_{slug}")
}
/// BIRD eth table of one eVPN: `ethtab_<slug>`.
pub fn eth_table(slug: &str) -> String {
    format!("ethtab_{slug}")
}

/// Default body of `protocol vppevpn vppevpn_<slug> { … }`. The `vppevpn` options are not
/// publicly documented; operators override this in `evpnd`'s config file. Placeholders:
/// `{slug}`, `{vni}`, `{rd}`, `{router_address}`, `{eth_table}`, `{evpn_protocol}`.
pub const DEFAULT_VPPEVPN_TEMPLATE: &str = "  eth { table {eth_table}; };\n  vni {vni};\n";

/// The dialect, chosen in `evpnd`'s config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "dialect", rename_all = "lowercase")]
pub enum Dialect {
    /// IPng's VPP-enabled BIRD: `protocol evpn` with `tunnel device "lo"` + `protocol vppevpn`.
    Vpp {
        /// Body template of the `vppevpn` protocol (see [`DEFAULT_VPPEVPN_TEMPLATE`]).
        vppevpn_template: String,
    },
    /// Stock BIRD ≥ 2.19 with the Linux kernel dataplane: `protocol bridge` + `protocol evpn`.
    Linux {
        /// Bridge device name template; `{slug}` and `{vni}` are substituted (e.g. `br-{slug}`).
        bridge_device: String,
        /// VXLAN device name template (e.g. `vx-{slug}`).
        vxlan_device: String,
    },
}

impl Dialect {
    /// The `vpp` dialect with the default template.
    pub fn vpp_default() -> Self {
        Dialect::Vpp {
            vppevpn_template: DEFAULT_VPPEVPN_TEMPLATE.to_string(),
        }
    }
    /// The `linux` dialect with `br-<slug>` / `vx-<slug>` devices.
    pub fn linux_default() -> Self {
        Dialect::Linux {
            bridge_device: "br-{slug}".into(),
            vxlan_device: "vx-{slug}".into(),
        }
    }
}

/// Renderer options: the dialect and the shared EVPN table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renderer {
    dialect: Dialect,
    evpn_table: String,
    evpn_table_sym: String,
}

/// A rendered snippet, ready for [`crate::apply::Applier::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedSnippet {
    /// The slug.
    pub slug: String,
    /// `evpn-<slug>.conf`.
    pub file_name: String,
    /// The file contents.
    pub text: String,
    /// The BIRD protocol names defined (unquoted), e.g. `["bridge_x", "evpn_x"]`.
    pub protocols: Vec<String>,
    /// Whether the protocols are enabled (not `disabled;`).
    pub enabled: bool,
}

const PLACEHOLDERS: [&str; 6] = [
    "slug",
    "vni",
    "rd",
    "router_address",
    "eth_table",
    "evpn_protocol",
];

fn check_template(field: &str, t: &str, allowed: &[&str]) -> Result<(), ValidationError> {
    let mut rest = t;
    let mut depth: i32 = 0;
    let mut in_str = false;
    while let Some(c) = rest.chars().next() {
        if c == '{'
            && let Some(end) = rest.find('}')
            && allowed.contains(&&rest[1..end])
        {
            rest = &rest[end + 1..];
            continue;
        }
        match c {
            '"' => in_str = !in_str,
            '{' if !in_str => depth += 1,
            '}' if !in_str => {
                depth -= 1;
                if depth < 0 {
                    return Err(ValidationError::new(field, "unbalanced '}'"));
                }
            }
            '\\' => return Err(ValidationError::new(field, "backslashes are not allowed")),
            c if c.is_control() && c != '\n' && c != '\t' => {
                return Err(ValidationError::new(
                    field,
                    "control characters are not allowed",
                ));
            }
            _ => {}
        }
        rest = &rest[c.len_utf8()..];
    }
    if in_str {
        return Err(ValidationError::new(field, "unterminated string"));
    }
    if depth != 0 {
        return Err(ValidationError::new(field, "unbalanced '{'"));
    }
    Ok(())
}

fn subst(t: &str, vars: &[(&str, &str)]) -> String {
    let mut out = t.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

impl Renderer {
    /// Validates the dialect options and the shared EVPN table name (e.g. `evpntab`).
    pub fn new(dialect: Dialect, evpn_table: &str) -> Result<Self, ValidationError> {
        let evpn_table_sym = validate::symbol("evpn_table", evpn_table)?;
        match &dialect {
            Dialect::Vpp { vppevpn_template } => {
                check_template("vppevpn_template", vppevpn_template, &PLACEHOLDERS)?;
            }
            Dialect::Linux {
                bridge_device,
                vxlan_device,
            } => {
                for (f, t) in [
                    ("bridge_device", bridge_device),
                    ("vxlan_device", vxlan_device),
                ] {
                    // Check the template with the longest slug and VNI it can be given.
                    let sample = subst(t, &[("slug", "abcdefghij"), ("vni", "16777215")]);
                    validate::ifname(f, &sample)?;
                }
            }
        }
        Ok(Self {
            dialect,
            evpn_table: evpn_table.to_string(),
            evpn_table_sym,
        })
    }

    /// The dialect.
    pub fn dialect(&self) -> &Dialect {
        &self.dialect
    }

    /// The shared EVPN table name.
    pub fn evpn_table(&self) -> &str {
        &self.evpn_table
    }

    /// The Linux devices (bridge, vxlan) used for a slug in the `linux` dialect.
    pub fn linux_devices(&self, s: &EvpnSnippet) -> Option<(String, String)> {
        match &self.dialect {
            Dialect::Linux {
                bridge_device,
                vxlan_device,
            } => {
                let vni = s.vni.to_string();
                let vars = [("slug", s.slug.as_str()), ("vni", vni.as_str())];
                Some((subst(bridge_device, &vars), subst(vxlan_device, &vars)))
            }
            Dialect::Vpp { .. } => None,
        }
    }

    /// Renders one snippet.
    pub fn render(&self, s: &EvpnSnippet) -> RenderedSnippet {
        let sym = |n: String| {
            if n.contains('-') { format!("'{n}'") } else { n }
        };
        let evpn_name = evpn_protocol(&s.slug);
        let tab = sym(eth_table(&s.slug));
        let disabled = if s.enabled { "" } else { "  disabled;\n" };
        let fmt_targets = |v: &[RouteTarget]| {
            if v.len() == 1 {
                v[0].to_bird()
            } else {
                let items: Vec<String> = v.iter().map(RouteTarget::to_bird).collect();
                format!("[{}]", items.join(", "))
            }
        };
        let mut out = format!(
            "# {} for eVPN {} (VNI {}): generated by evpnd, do not edit.\neth table {tab};\n",
            file_name(&s.slug),
            s.slug,
            s.vni
        );
        let mut protocols = Vec::new();
        let tunnel = match &self.dialect {
            Dialect::Linux { .. } => {
                let (br, vx) = self.linux_devices(s).unwrap_or_default();
                let name = bridge_protocol(&s.slug);
                out.push_str(&format!(
                    "protocol bridge {} {{\n{disabled}  eth {{ table {tab}; export all; }};\n  bridge device \"{br}\";\n}}\n",
                    sym(name.clone())
                ));
                protocols.push(name);
                vx
            }
            Dialect::Vpp { .. } => "lo".to_string(),
        };
        out.push_str(&format!(
            "protocol evpn {} {{\n{disabled}  eth {{ table {tab}; }};\n  evpn {{ table {}; }};\n  rd {};\n  import target {};\n  export target {};\n  vni {};\n  encapsulation vxlan {{ tunnel device \"{tunnel}\"; router address {}; }};\n}}\n",
            sym(evpn_name.clone()),
            self.evpn_table_sym,
            s.rd,
            fmt_targets(&s.import_targets),
            fmt_targets(&s.export_targets),
            s.vni,
            s.router_address,
        ));
        protocols.push(evpn_name.clone());
        if let Dialect::Vpp { vppevpn_template } = &self.dialect {
            let name = vppevpn_protocol(&s.slug);
            let vni = s.vni.to_string();
            let rd = s.rd.to_string();
            let ra = s.router_address.to_string();
            let evpn_sym = sym(evpn_name);
            let body = subst(
                vppevpn_template,
                &[
                    ("slug", &s.slug),
                    ("vni", &vni),
                    ("rd", &rd),
                    ("router_address", &ra),
                    ("eth_table", &tab),
                    ("evpn_protocol", &evpn_sym),
                ],
            );
            let body = if body.ends_with('\n') || body.is_empty() {
                body
            } else {
                format!("{body}\n")
            };
            out.push_str(&format!(
                "protocol vppevpn {} {{\n{disabled}{body}}}\n",
                sym(name.clone())
            ));
            protocols.push(name);
        }
        RenderedSnippet {
            slug: s.slug.clone(),
            file_name: file_name(&s.slug),
            text: out,
            protocols,
            enabled: s.enabled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec(slug: &str) -> EvpnSpec {
        EvpnSpec {
            slug: slug.into(),
            vni: 100,
            rd: "10.0.0.1:100".into(),
            import_targets: vec!["65000:100".into(), "65000:101".into()],
            export_targets: vec!["65000:100".into()],
            router_address: "10.0.0.1".parse().unwrap(),
            enabled: true,
        }
    }

    #[test]
    fn linux_render() {
        let r = Renderer::new(Dialect::linux_default(), "evpntab").unwrap();
        let s = EvpnSnippet::new(&spec("test")).unwrap();
        let out = r.render(&s);
        assert_eq!(out.file_name, "evpn-test.conf");
        assert_eq!(out.protocols, vec!["bridge_test", "evpn_test"]);
        assert!(out.text.contains("eth table ethtab_test;"));
        assert!(out.text.contains("bridge device \"br-test\";"));
        assert!(
            out.text
                .contains("tunnel device \"vx-test\"; router address 10.0.0.1;")
        );
        assert!(
            out.text
                .contains("import target [(rt, 65000, 100), (rt, 65000, 101)];")
        );
        assert!(out.text.contains("export target (rt, 65000, 100);"));
        assert!(out.text.contains("rd 10.0.0.1:100;"));
        assert!(!out.text.contains("disabled;"));
        let mut sp = spec("a-b");
        sp.enabled = false;
        let out = r.render(&EvpnSnippet::new(&sp).unwrap());
        assert!(out.text.contains("protocol evpn 'evpn_a-b' {\n  disabled;"));
        assert!(
            out.text
                .contains("protocol bridge 'bridge_a-b' {\n  disabled;")
        );
        assert_eq!(out.protocols, vec!["bridge_a-b", "evpn_a-b"]);
    }

    #[test]
    fn vpp_render() {
        let r = Renderer::new(Dialect::vpp_default(), "evpntab").unwrap();
        let out = r.render(&EvpnSnippet::new(&spec("x1")).unwrap());
        assert_eq!(out.protocols, vec!["evpn_x1", "vppevpn_x1"]);
        assert!(out.text.contains("tunnel device \"lo\""));
        assert!(out.text.contains(
            "protocol vppevpn vppevpn_x1 {\n  eth { table ethtab_x1; };\n  vni 100;\n}\n"
        ));
    }

    #[test]
    fn bad_inputs_are_refused() {
        let mut sp = spec("x");
        sp.import_targets.clear();
        assert_eq!(EvpnSnippet::new(&sp).unwrap_err().field, "import_targets");
        let mut sp = spec("x");
        sp.export_targets.push("65000:1; }".into());
        assert_eq!(
            EvpnSnippet::new(&sp).unwrap_err().field,
            "export_targets[1]"
        );
        let mut sp = spec("x");
        sp.router_address = "0.0.0.0".parse().unwrap();
        assert_eq!(EvpnSnippet::new(&sp).unwrap_err().field, "router_address");
        assert_eq!(EvpnSnippet::new(&spec("x\"y")).unwrap_err().field, "slug");
    }

    #[test]
    fn dialect_options_are_checked() {
        assert!(
            Renderer::new(
                Dialect::Linux {
                    bridge_device: "bridge-{slug}-x".into(),
                    vxlan_device: "vx-{slug}".into()
                },
                "evpntab"
            )
            .is_err()
        );
        assert!(
            Renderer::new(
                Dialect::Vpp {
                    vppevpn_template: "vni {vni}; } protocol static x {".into()
                },
                "evpntab"
            )
            .is_err()
        );
        assert!(
            Renderer::new(
                Dialect::Vpp {
                    vppevpn_template: "x \"{".into()
                },
                "evpntab"
            )
            .is_err()
        );
        assert!(Renderer::new(Dialect::vpp_default(), "evpn;tab").is_err());
    }
}
