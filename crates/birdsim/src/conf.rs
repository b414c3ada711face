//! A parser for the subset of BIRD's configuration language that evpnd and
//! a typical main file use: `router id`, `log`, `include` (with glob),
//! table declarations, and `protocol` blocks with their `disabled;` flag,
//! channels and the `evpn` protocol's mandatory options. Errors read like
//! BIRD's: `file:line:col message`.
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// A configuration error, formatted like BIRD's `8002` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError(pub String);

impl std::fmt::Display for ConfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One protocol of a parsed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    /// Lower-case type keyword (`evpn`, `bridge`, `bgp`, ...).
    pub kind: String,
    pub disabled: bool,
    /// Table of the protocol's first channel, if any.
    pub table: Option<String>,
    /// Text of the block, to detect changes across reconfigurations.
    pub body: String,
    /// What an `evpn` protocol exchanges on the simulated fabric.
    pub evpn: Option<EvpnParams>,
}

/// The options of an `evpn` protocol the simulated fabric needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvpnParams {
    /// `vni`.
    pub vni: u32,
    /// `import target` (`route target`), as `a:b` (the `rt` type dropped).
    pub import: std::collections::BTreeSet<String>,
    /// `export target` (`route target`), as `a:b`.
    pub export: std::collections::BTreeSet<String>,
    /// `encapsulation vxlan { router address … }`: the local VTEP.
    pub router_address: String,
}

/// Route targets of a `… target <t>|[<t>, …]` statement: `(rt, a, b)` or
/// `rt a:b`-like words, as `a:b`.
fn targets(w: &[&str]) -> std::collections::BTreeSet<String> {
    let toks: Vec<&str> = w
        .iter()
        .copied()
        .filter(|t| !["[", "]", "(", ")", ","].contains(t))
        .collect();
    let mut out = std::collections::BTreeSet::new();
    let mut i = 0;
    while i < toks.len() {
        match (toks[i], toks.get(i + 1), toks.get(i + 2)) {
            ("rt", Some(a), Some(b)) if !a.contains(':') => {
                out.insert(format!("{a}:{b}"));
                i += 3;
            }
            ("rt", Some(a), _) => {
                out.insert((*a).to_string());
                i += 2;
            }
            (t, _, _) => {
                out.insert(t.to_string());
                i += 1;
            }
        }
    }
    out
}

/// A parsed configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub router_id: Option<String>,
    pub tables: BTreeSet<String>,
    pub protocols: Vec<Protocol>,
}

const KINDS: &[&str] = &[
    "device",
    "direct",
    "kernel",
    "static",
    "bgp",
    "ospf",
    "rip",
    "babel",
    "bfd",
    "pipe",
    "evpn",
    "bridge",
    "vppevpn",
    "radv",
    "rpki",
    "mrt",
    "perf",
    "l3vpn",
    "aggregator",
];

#[derive(Debug, Clone, PartialEq)]
struct Tok {
    text: String,
    line: usize,
    col: usize,
}

fn lex(file: &str, src: &str) -> Result<Vec<Tok>, ConfError> {
    let mut out = Vec::new();
    let b: Vec<char> = src.chars().collect();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let adv = |c: char, line: &mut usize, col: &mut usize| {
        if c == '\n' {
            *line += 1;
            *col = 1;
        } else {
            *col += 1;
        }
    };
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            adv(c, &mut line, &mut col);
            i += 1;
        } else if c == '#' {
            while i < b.len() && b[i] != '\n' {
                i += 1;
                col += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
            let (sl, sc) = (line, col);
            i += 2;
            col += 2;
            loop {
                if i + 1 >= b.len() {
                    return Err(ConfError(format!("{file}:{sl}:{sc} Unterminated comment")));
                }
                if b[i] == '*' && b[i + 1] == '/' {
                    i += 2;
                    col += 2;
                    break;
                }
                adv(b[i], &mut line, &mut col);
                i += 1;
            }
        } else if c == '"' || c == '\'' {
            let (sl, sc) = (line, col);
            let mut s = String::from(c);
            i += 1;
            col += 1;
            loop {
                match b.get(i) {
                    None | Some('\n') => {
                        return Err(ConfError(format!("{file}:{sl}:{sc} Unterminated string")));
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                        col += 1;
                        if ch == c {
                            break;
                        }
                    }
                }
            }
            out.push(Tok {
                text: s,
                line: sl,
                col: sc,
            });
        } else if "{};()[],".contains(c) {
            out.push(Tok {
                text: c.to_string(),
                line,
                col,
            });
            i += 1;
            col += 1;
        } else {
            let (sl, sc) = (line, col);
            let mut s = String::new();
            while i < b.len() && !b[i].is_whitespace() && !"{};()[],\"'#".contains(b[i]) {
                s.push(b[i]);
                i += 1;
                col += 1;
            }
            out.push(Tok {
                text: s,
                line: sl,
                col: sc,
            });
        }
    }
    Ok(out)
}

/// One statement: its tokens, and the block it carries (if any).
#[derive(Debug, Clone)]
struct Stmt {
    head: Vec<Tok>,
    block: Option<Vec<Stmt>>,
    /// The closing `}` of the block.
    end: Option<Tok>,
}

fn err(file: &str, t: &Tok, msg: &str) -> ConfError {
    ConfError(format!("{file}:{}:{} {msg}", t.line, t.col))
}

/// Parse statements until `}` (when `nested`) or end of input.
fn parse_block(
    file: &str,
    toks: &[Tok],
    pos: &mut usize,
    nested: bool,
    eof: &Tok,
) -> Result<(Vec<Stmt>, Option<Tok>), ConfError> {
    let mut out = Vec::new();
    let mut head: Vec<Tok> = Vec::new();
    while *pos < toks.len() {
        let t = &toks[*pos];
        *pos += 1;
        match t.text.as_str() {
            ";" => {
                if !head.is_empty() {
                    out.push(Stmt {
                        head: std::mem::take(&mut head),
                        block: None,
                        end: None,
                    });
                }
            }
            "{" => {
                let (block, end) = parse_block(file, toks, pos, true, eof)?;
                out.push(Stmt {
                    head: std::mem::take(&mut head),
                    block: Some(block),
                    end,
                });
            }
            "}" => {
                if !nested {
                    return Err(err(file, t, "syntax error, unexpected '}'"));
                }
                if !head.is_empty() {
                    return Err(err(
                        file,
                        t,
                        "syntax error, unexpected '}', expecting ';' or '{'",
                    ));
                }
                return Ok((out, Some(t.clone())));
            }
            kw @ ("protocol" | "filter" | "function" | "template") if nested && head.is_empty() => {
                return Err(err(
                    file,
                    t,
                    &format!("syntax error, unexpected {}", kw.to_uppercase()),
                ));
            }
            _ => head.push(t.clone()),
        }
    }
    if nested || !head.is_empty() {
        return Err(err(file, eof, "syntax error, unexpected end of file"));
    }
    Ok((out, None))
}

fn unquote(s: &str) -> &str {
    s.trim_matches(|c| c == '"' || c == '\'')
}

fn words(s: &Stmt) -> Vec<&str> {
    s.head.iter().map(|t| t.text.as_str()).collect()
}

/// Expand an include pattern relative to the including file's directory:
/// `*` in the last component, sorted, dot-files skipped; a literal path
/// that does not exist is an error.
fn expand(base: &Path, pat: &str) -> Result<Vec<PathBuf>, String> {
    let p = if Path::new(pat).is_absolute() {
        PathBuf::from(pat)
    } else {
        base.join(pat)
    };
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if !name.contains('*') {
        return if p.is_file() {
            Ok(vec![p])
        } else {
            Err(format!("{}: No such file or directory", p.display()))
        };
    }
    let (pre, post) = name.split_once('*').unwrap_or((&name, ""));
    let dir = p.parent().unwrap_or(Path::new("/"));
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|f| f.is_file())
            .filter(|f| {
                let n = f
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                !n.starts_with('.')
                    && n.starts_with(pre)
                    && n.ends_with(post)
                    && n.len() >= pre.len() + post.len()
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    Ok(v)
}

struct Ctx {
    cfg: Config,
    symbols: BTreeSet<String>,
    auto: std::collections::BTreeMap<String, usize>,
    depth: usize,
}

fn parse_file(path: &Path, cx: &mut Ctx) -> Result<(), ConfError> {
    let file = path.display().to_string();
    if cx.depth > 8 {
        return Err(ConfError(format!("{file}: Include nesting too deep")));
    }
    let src = std::fs::read_to_string(path)
        .map_err(|_| ConfError(format!("{file}: No such file or directory")))?;
    let toks = lex(&file, &src)?;
    let eof = Tok {
        text: String::new(),
        line: src.lines().count().max(1),
        col: src.lines().last().map_or(1, |l| l.chars().count() + 1),
    };
    let mut pos = 0;
    let (stmts, _) = parse_block(&file, &toks, &mut pos, false, &eof)?;
    for s in &stmts {
        let w = words(s);
        let first = match s.head.first() {
            Some(t) => t,
            None => continue,
        };
        match w.as_slice() {
            ["include", pat] if s.block.is_none() => {
                let base = path.parent().unwrap_or(Path::new("/"));
                let files = expand(base, unquote(pat)).map_err(|m| err(&file, first, &m))?;
                cx.depth += 1;
                for f in files {
                    parse_file(&f, cx)?;
                }
                cx.depth -= 1;
            }
            ["router", "id", id] => cx.cfg.router_id = Some(id.to_string()),
            [kind, "table", name]
                if s.block.is_none()
                    && [
                        "eth", "evpn", "ipv4", "ipv6", "vpn4", "vpn6", "roa4", "roa6", "flow4",
                        "flow6", "mpls",
                    ]
                    .contains(kind) =>
            {
                let n = unquote(name).to_string();
                if !cx.symbols.insert(n.clone()) {
                    return Err(err(
                        &file,
                        &s.head[2],
                        &format!("Symbol '{n}' already defined"),
                    ));
                }
                cx.cfg.tables.insert(n);
            }
            ["protocol", kind, rest @ ..] => {
                let Some(block) = &s.block else {
                    return Err(err(
                        &file,
                        first,
                        "syntax error, unexpected ';', expecting '{'",
                    ));
                };
                if !KINDS.contains(kind) {
                    return Err(err(
                        &file,
                        &s.head[1],
                        "syntax error, unexpected CF_SYM_UNDEFINED",
                    ));
                }
                let name = match rest.first() {
                    Some(n) if *n != "from" => unquote(n).to_string(),
                    _ => {
                        let c = cx.auto.entry(kind.to_string()).or_insert(0);
                        *c += 1;
                        format!("{kind}{c}")
                    }
                };
                if !cx.symbols.insert(name.clone()) {
                    return Err(err(
                        &file,
                        &s.head[2.min(s.head.len() - 1)],
                        &format!("Symbol '{name}' already defined"),
                    ));
                }
                let end = s.end.as_ref().unwrap_or(first);
                let p = protocol(&file, end, kind, name, block, &cx.cfg.tables)?;
                cx.cfg.protocols.push(p);
            }
            ["log", ..]
            | ["debug", ..]
            | ["timeformat", ..]
            | ["hostname", ..]
            | ["define", ..]
            | ["mrtdump", ..]
            | ["cli", ..]
            | ["watchdog", ..]
            | ["attribute", ..]
            | ["graceful", ..]
            | ["filter", ..]
            | ["function", ..]
            | ["template", ..] => {}
            _ => {
                return Err(err(
                    &file,
                    first,
                    "syntax error, unexpected CF_SYM_UNDEFINED",
                ));
            }
        }
    }
    Ok(())
}

fn protocol(
    file: &str,
    at: &Tok,
    kind: &str,
    name: String,
    block: &[Stmt],
    tables: &BTreeSet<String>,
) -> Result<Protocol, ConfError> {
    let mut disabled = false;
    let mut table = None;
    let (mut rd, mut eth, mut evpn, mut import, mut export, mut encap) =
        (false, false, false, false, false, false);
    let mut body = String::new();
    let mut params = EvpnParams::default();
    for s in block {
        let w = words(s);
        body.push_str(&w.join(" "));
        body.push(';');
        match w.as_slice() {
            ["vni", v] => params.vni = v.parse().unwrap_or(0),
            ["import", "target", t @ ..] => params.import = targets(t),
            ["export", "target", t @ ..] => params.export = targets(t),
            ["route", "target", t @ ..] => {
                params.import = targets(t);
                params.export = targets(t);
            }
            ["encapsulation", "vxlan"] => {
                for t in s.block.iter().flatten() {
                    if let ["router", "address", a] = words(t).as_slice() {
                        params.router_address = (*a).to_string();
                    }
                }
            }
            _ => {}
        }
        match (w.as_slice(), &s.block) {
            (["disabled"], None) | (["disabled", "yes" | "on"], None) => disabled = true,
            (["disabled", "no" | "off"], None) => disabled = false,
            ([ch], Some(inner)) if ["eth", "evpn", "ipv4", "ipv6"].contains(ch) => {
                for t in inner {
                    let iw = words(t);
                    body.push_str(&iw.join(" "));
                    if let ["table", tname] = iw.as_slice() {
                        let tn = unquote(tname).to_string();
                        if !tables.contains(&tn) {
                            return Err(err(
                                file,
                                &t.head[1],
                                "syntax error, unexpected CF_SYM_UNDEFINED",
                            ));
                        }
                        if table.is_none() {
                            table = Some(tn);
                        }
                    }
                }
                eth |= *ch == "eth";
                evpn |= *ch == "evpn";
            }
            (["rd", ..], None) | (["route", "distinguisher", ..], None) => rd = true,
            (["import", "target", ..], None) => import = true,
            (["export", "target", ..], None) => export = true,
            (["route", "target", ..], None) => {
                import = true;
                export = true;
            }
            (["encapsulation", "vxlan"], Some(_)) => encap = true,
            _ => {}
        }
    }
    if kind == "evpn" {
        let end = at;
        let missing = if !eth {
            Some("Ethernet channel not specified")
        } else if !evpn {
            Some("EVPN channel not specified")
        } else if !rd {
            Some("Route distinguisher not specified")
        } else if !(import && export) {
            Some("Route target not specified")
        } else if !encap {
            Some("There must be at least one encapsulation")
        } else {
            None
        };
        if let Some(m) = missing {
            return Err(err(file, end, m));
        }
    }
    Ok(Protocol {
        name,
        kind: kind.to_string(),
        disabled,
        table,
        body,
        evpn: (kind == "evpn").then_some(params),
    })
}

/// Parse `main` and everything it includes.
pub fn parse(main: &Path) -> Result<Config, ConfError> {
    let mut cx = Ctx {
        cfg: Config::default(),
        symbols: BTreeSet::new(),
        auto: Default::default(),
        depth: 0,
    };
    parse_file(main, &mut cx)?;
    Ok(cx.cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Config, ConfError>) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("conf.d")).unwrap();
        for (n, t) in files {
            std::fs::write(d.path().join(n), t).unwrap();
        }
        let r = parse(&d.path().join("bird.conf"));
        (d, r)
    }

    const MAIN: &str = "router id 10.0.0.1;\nprotocol device { scan time 2; }\nevpn table evpntab;\ninclude \"conf.d/*.conf\";\n";
    const SNIP: &str = "eth table ethtab_t;\nprotocol bridge bridge_t {\n  eth { table ethtab_t; export all; };\n  bridge device \"brg-t\";\n}\nprotocol evpn evpn_t {\n  eth { table ethtab_t; };\n  evpn { table evpntab; };\n  rd 192.0.2.1:100;\n  import target (rt, 65000, 100);\n  export target (rt, 65000, 100);\n  vni 100;\n  encapsulation vxlan { tunnel device \"vxl-t\"; router address 192.0.2.1; };\n}\n";

    #[test]
    fn evpnd_snippet_parses() {
        let (_d, r) = cfg(&[("bird.conf", MAIN), ("conf.d/evpn-t.conf", SNIP)]);
        let c = r.unwrap();
        let names: Vec<_> = c.protocols.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["device1", "bridge_t", "evpn_t"]);
        assert_eq!(c.protocols[2].table.as_deref(), Some("ethtab_t"));
        assert!(!c.protocols[2].disabled);
    }

    #[test]
    fn errors_read_like_bird() {
        let (d, r) = cfg(&[
            ("bird.conf", MAIN),
            (
                "conf.d/s3.conf",
                "protocol static s3 { ipv4; route 203.0.113.0/24 blackhole }",
            ),
        ]);
        let f = d.path().join("conf.d/s3.conf");
        assert_eq!(
            r.unwrap_err().0,
            format!(
                "{}:1:59 syntax error, unexpected '}}', expecting ';' or '{{'",
                f.display()
            )
        );
        let (_d, r) = cfg(&[
            ("bird.conf", MAIN),
            ("conf.d/a.conf", SNIP),
            ("conf.d/b.conf", SNIP),
        ]);
        assert!(
            r.unwrap_err()
                .0
                .ends_with("Symbol 'ethtab_t' already defined")
        );
        let (_d, r) = cfg(&[
            ("bird.conf", MAIN),
            ("conf.d/a.conf", &SNIP.replace("  rd 192.0.2.1:100;\n", "")),
        ]);
        assert!(
            r.unwrap_err()
                .0
                .ends_with("Route distinguisher not specified")
        );
        let (_d, r) = cfg(&[
            ("bird.conf", MAIN),
            ("conf.d/a.conf", "protocol evpn x { disabled; "),
        ]);
        assert!(r.unwrap_err().0.contains("unexpected end of file"));
        let (_d, r) = cfg(&[("bird.conf", "include \"nope.conf\";\n")]);
        assert!(r.unwrap_err().0.contains("No such file or directory"));
        let (_d, r) = cfg(&[
            ("bird.conf", MAIN),
            ("conf.d/a.conf", "protocol gossip g { }\n"),
        ]);
        assert!(r.unwrap_err().0.contains("CF_SYM_UNDEFINED"));
    }

    #[test]
    fn disabled_and_dotfiles() {
        let snip = SNIP.replace(
            "protocol evpn evpn_t {\n",
            "protocol evpn evpn_t {\n  disabled;\n",
        );
        let (_d, r) = cfg(&[
            ("bird.conf", MAIN),
            ("conf.d/evpn-t.conf", &snip),
            ("conf.d/.staged.conf", "garbage {"),
        ]);
        let c = r.unwrap();
        assert!(
            c.protocols
                .iter()
                .find(|p| p.name == "evpn_t")
                .unwrap()
                .disabled
        );
    }
}
