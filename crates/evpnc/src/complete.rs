//! TAB completion and `?` help, both derived from the command tree. Live
//! candidates for slots come from a `live` callback (the shell wires it to
//! List RPCs), so this module stays pure and is tested with data.
use crate::parse::{Args, expected, tokenize, walk};
use crate::tree::{NodeId, Source, Tree};

/// Where the cursor is in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The node whose children may follow.
    pub node: NodeId,
    /// What earlier slots captured (e.g. the group for its members).
    pub args: Args,
    /// Byte offset where the word being typed starts.
    pub start: usize,
    /// The word being typed (possibly empty).
    pub partial: String,
    /// Canonical path so far.
    pub path: String,
}

/// Analyse `line` (text before the cursor). Errors are the parse error of
/// the words before the one being typed, as text.
pub fn pending(tree: &Tree, line: &str) -> Result<Pending, String> {
    let mut toks = tokenize(line).map_err(|e| e.to_string())?;
    let ends_in_space = line.is_empty() || line.ends_with(char::is_whitespace);
    let (start, partial) = if ends_in_space {
        (line.len(), String::new())
    } else {
        match toks.pop() {
            Some(t) => (t.start, t.text),
            None => (line.len(), String::new()),
        }
    };
    let words: Vec<String> = toks.into_iter().map(|t| t.text).collect();
    let w = walk(tree, &words).map_err(|e| e.to_string())?;
    Ok(Pending {
        node: w.node,
        args: w.args,
        start,
        partial,
        path: w.path.join(" "),
    })
}

/// Completion candidates for the word being typed, sorted as in the tree
/// (fixed words) and then as delivered (live values).
pub fn candidates(
    tree: &Tree,
    p: &Pending,
    live: &mut dyn FnMut(Source, &Args) -> Vec<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (_, c) in tree.children(p.node) {
        match &c.slot {
            None => {
                if c.word.starts_with(&p.partial) {
                    out.push(c.word.to_string());
                }
            }
            Some(s) => {
                let vals = match s.source {
                    Source::None => Vec::new(),
                    Source::Words(w) => w.iter().map(|s| s.to_string()).collect(),
                    src => live(src, &p.args),
                };
                out.extend(vals.into_iter().filter(|v| v.starts_with(&p.partial)));
            }
        }
    }
    out.dedup();
    out
}

/// Complete `line` (text before the cursor): the byte offset to replace
/// from and the candidates.
pub fn complete(
    tree: &Tree,
    line: &str,
    live: &mut dyn FnMut(Source, &Args) -> Vec<String>,
) -> (usize, Vec<String>) {
    match pending(tree, line) {
        Ok(p) => {
            let c = candidates(tree, &p, live);
            (p.start, c)
        }
        Err(_) => (line.len(), Vec::new()),
    }
}

/// The `?` help text for `line` (text before the cursor): the words that
/// may come next with their help, live values for slots, and `<cr>` when
/// the line is already a complete command. Lines end in `\n`.
pub fn help(tree: &Tree, line: &str, live: &mut dyn FnMut(Source, &Args) -> Vec<String>) -> String {
    let p = match pending(tree, line) {
        Ok(p) => p,
        Err(e) => return format!("  error: {e}\n"),
    };
    let mut rows: Vec<(String, String)> = Vec::new();
    for (_, c) in tree.children(p.node) {
        match &c.slot {
            None => {
                if c.word.starts_with(&p.partial) {
                    rows.push((c.word.to_string(), c.help.to_string()));
                }
            }
            Some(s) => {
                let mut help = c.help.to_string();
                let vals: Vec<String> = match s.source {
                    Source::None => Vec::new(),
                    Source::Words(w) => w.iter().map(|s| s.to_string()).collect(),
                    src => live(src, &p.args),
                };
                let vals: Vec<String> = vals
                    .into_iter()
                    .filter(|v| v.starts_with(&p.partial))
                    .collect();
                if !vals.is_empty() {
                    help = format!("{help}: {}", vals.join(", "));
                }
                rows.push((c.word.to_string(), help));
            }
        }
    }
    if p.partial.is_empty() && tree.nodes[p.node].action.is_some() && !p.path.is_empty() {
        rows.push(("<cr>".into(), format!("Run \"{}\"", p.path)));
    }
    if rows.is_empty() {
        let exp = expected(tree, p.node);
        return if exp.is_empty() {
            "  nothing more is expected\n".into()
        } else {
            format!(
                "  no match for {:?}; expected one of: {}\n",
                p.partial,
                exp.join(", ")
            )
        };
    }
    let w = rows.iter().map(|(a, _)| a.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(a, b)| format!("  {a:<w$}  {b}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::build;

    fn live(src: Source, args: &Args) -> Vec<String> {
        match src {
            Source::Instances => vec!["dpu0-chplo0".into(), "dpu0-ddln0".into(), "r1".into()],
            Source::Groups => vec!["test".into(), "prod".into()],
            Source::GroupMembers => match args.get("group") {
                Some("test") => vec!["dpu0-chplo0".into(), "dpu0-ddln0".into()],
                _ => vec![],
            },
            Source::GroupAddresses => vec!["172.16.0.32/24".into(), "fec0::32/64".into()],
            Source::Evpns => match args.get("instance") {
                Some("r1") => vec!["test".into(), "blue".into()],
                _ => vec![],
            },
            _ => vec![],
        }
    }

    fn c(line: &str) -> (usize, Vec<String>) {
        complete(&build(), line, &mut live)
    }

    #[test]
    fn fixed_words() {
        assert_eq!(
            c(""),
            (
                0,
                vec![
                    "show", "group", "instance", "watch", "failover", "help", "quit", "exit",
                ]
                .into_iter()
                .map(String::from)
                .collect()
            )
        );
        assert_eq!(c("sh"), (0, vec!["show".to_string()]));
        assert_eq!(
            c("show "),
            (
                5,
                vec![
                    "version".into(),
                    "instance".into(),
                    "group".into(),
                    "failover".into()
                ]
            )
        );
        assert_eq!(c("show in"), (5, vec!["instance".to_string()]));
        // abbreviated earlier words still complete
        assert_eq!(c("sh in r1 v"), (9, vec!["vpp".to_string()]));
        assert_eq!(c("sh in r1 vpp "), (13, vec!["info".to_string()]));
    }

    #[test]
    fn live_slots_use_earlier_captures() {
        assert_eq!(c("show group "), (11, vec!["test".into(), "prod".into()]));
        assert_eq!(c("show group t"), (11, vec!["test".to_string()]));
        assert_eq!(
            c("group test bvi set primary dpu0-d"),
            (27, vec!["dpu0-ddln0".to_string()])
        );
        assert_eq!(c("group prod member remove "), (25, vec![]));
        assert_eq!(
            c("group test member add "),
            (
                22,
                vec!["dpu0-chplo0".into(), "dpu0-ddln0".into(), "r1".into()]
            )
        );
        assert_eq!(
            c("show instance r1 evpn "),
            (22, vec!["test".into(), "blue".into()])
        );
        assert_eq!(c("instance r1 evpn b"), (17, vec!["blue".to_string()]));
        assert_eq!(
            c("group test bvi address del f"),
            (27, vec!["fec0::32/64".to_string()])
        );
        assert_eq!(
            c("watch events level "),
            (
                19,
                vec!["debug".into(), "info".into(), "warn".into(), "error".into()]
            )
        );
        // loops: options come back after an option value
        assert_eq!(
            c("group x create vni 5 mtu 9000 v"),
            (30, vec!["vmac".to_string()])
        );
    }

    #[test]
    fn broken_prefix_completes_nothing() {
        assert_eq!(c("frob "), (5, vec![]));
        assert_eq!(c("show group Bad "), (15, vec![]));
    }

    #[test]
    fn help_lists_next_words_and_cr() {
        let t = build();
        let h = help(&t, "sh", &mut live);
        assert!(h.contains("show") && h.contains("Show state"), "{h}");
        assert!(!h.contains("  group "), "{h}");
        let h = help(&t, "show instance ", &mut live);
        assert!(h.contains("<instance>"), "{h}");
        assert!(h.contains("dpu0-ddln0"), "{h}");
        assert!(h.contains("<cr>"), "{h}");
        let h = help(&t, "group test bvi ", &mut live);
        for w in ["create", "delete", "address", "set", "bind", "release"] {
            assert!(h.contains(w), "{w}: {h}");
        }
        assert!(!h.contains("<cr>"), "{h}");
        let h = help(&t, "show version ", &mut live);
        assert!(h.contains("<cr>"), "{h}");
        let h = help(&t, "show zz", &mut live);
        assert!(h.contains("no match"), "{h}");
        let h = help(&t, "nope ", &mut live);
        assert!(h.contains("error: unknown command"), "{h}");
    }
}
