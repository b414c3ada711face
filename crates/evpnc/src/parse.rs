//! Walking the command tree: tokenising, prefix abbreviation (an exact
//! match wins, an ambiguous prefix is reported with its candidates), slot
//! capture and client-side validation. Pure: no I/O, unit-tested with data.
use std::fmt;

use crate::tree::{Action, Kind, NodeId, ROOT, Source, Tree};

/// One word of the input line with its byte span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// Values captured by slots (and flag words), in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args(pub Vec<(&'static str, String)>);

impl Args {
    /// The first value captured under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value captured under `key`.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether `key` was captured.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The value under `key`, or an error naming it (for handlers whose
    /// tree path guarantees the key).
    pub fn req(&self, key: &str) -> Result<&str, ParseError> {
        self.get(key).ok_or_else(|| ParseError::Invalid {
            field: key.to_string(),
            reason: "missing".into(),
        })
    }
}

/// Why a line does not form a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A quote was opened and not closed.
    UnterminatedQuote,
    /// `word` matches nothing after `path`.
    Unknown {
        word: String,
        path: String,
        expected: Vec<String>,
    },
    /// `word` abbreviates several words.
    Ambiguous {
        word: String,
        candidates: Vec<String>,
    },
    /// The words form no complete command.
    Incomplete { path: String, expected: Vec<String> },
    /// A slot value failed validation.
    Invalid { field: String, reason: String },
    /// A keyword that may appear once was given twice.
    Repeated { key: String },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnterminatedQuote => f.write_str("unterminated quote"),
            ParseError::Unknown {
                word,
                path,
                expected,
            } => {
                if path.is_empty() {
                    write!(f, "unknown command {}", evpn_model::excerpt(word))?;
                } else {
                    write!(
                        f,
                        "unknown word {} after {path:?}",
                        evpn_model::excerpt(word)
                    )?;
                }
                if expected.is_empty() {
                    f.write_str("; nothing more is expected")
                } else {
                    write!(f, "; expected one of: {}", expected.join(", "))
                }
            }
            ParseError::Ambiguous { word, candidates } => {
                write!(
                    f,
                    "ambiguous {}: could be {}",
                    evpn_model::excerpt(word),
                    candidates.join(", ")
                )
            }
            ParseError::Incomplete { path, expected } => {
                write!(
                    f,
                    "incomplete command {path:?}; expected one of: {}",
                    expected.join(", ")
                )
            }
            ParseError::Invalid { field, reason } => write!(f, "invalid {field}: {reason}"),
            ParseError::Repeated { key } => write!(f, "{key} given more than once"),
        }
    }
}

impl std::error::Error for ParseError {}

impl From<evpn_model::Error> for ParseError {
    fn from(e: evpn_model::Error) -> Self {
        match e {
            evpn_model::Error::InvalidArgument { field, reason } => {
                ParseError::Invalid { field, reason }
            }
            other => ParseError::Invalid {
                field: "value".into(),
                reason: other.to_string(),
            },
        }
    }
}

/// Split a line into words. Double or single quotes group words with
/// spaces (`"(rt, 65000, 100)"`); there are no escapes.
pub fn tokenize(line: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.get_or_insert((i, String::new())).1.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                cur.get_or_insert((i, String::new()));
            }
            None if c.is_whitespace() => {
                if let Some((s, t)) = cur.take() {
                    out.push(Token {
                        text: t,
                        start: s,
                        end: i,
                    });
                }
            }
            None => cur.get_or_insert((i, String::new())).1.push(c),
        }
    }
    if quote.is_some() {
        return Err(ParseError::UnterminatedQuote);
    }
    if let Some((s, t)) = cur {
        out.push(Token {
            text: t,
            start: s,
            end: line.len(),
        });
    }
    Ok(out)
}

/// The words a node accepts next, for messages and help.
pub fn expected(tree: &Tree, node: NodeId) -> Vec<String> {
    tree.children(node)
        .map(|(_, c)| c.word.to_string())
        .collect()
}

/// Result of matching one word against a node's children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A fixed word (possibly abbreviated).
    Fixed(NodeId),
    /// A slot with the validated, canonical value.
    Slot(NodeId, String),
}

/// Match `word` against the children of `node`: an exact fixed word first,
/// then a unique fixed prefix, then the slot (validated).
pub fn step(tree: &Tree, node: NodeId, word: &str, path: &str) -> Result<Step, ParseError> {
    let kids: Vec<_> = tree.children(node).collect();
    if let Some((id, _)) = kids
        .iter()
        .find(|(_, c)| c.slot.is_none() && c.word == word)
    {
        return Ok(Step::Fixed(*id));
    }
    let pre: Vec<_> = kids
        .iter()
        .filter(|(_, c)| c.slot.is_none() && c.word.starts_with(word))
        .collect();
    if pre.len() == 1 {
        return Ok(Step::Fixed(pre[0].0));
    }
    if pre.len() > 1 {
        return Err(ParseError::Ambiguous {
            word: word.to_string(),
            candidates: pre.iter().map(|(_, c)| c.word.to_string()).collect(),
        });
    }
    if let Some((id, c)) = kids.iter().find(|(_, c)| c.slot.is_some()) {
        let slot = c.slot.as_ref().map(|s| (s.key, s.kind, s.source));
        if let Some((key, kind, source)) = slot {
            let v = validate(key, kind, source, word)?;
            return Ok(Step::Slot(*id, v));
        }
    }
    Err(ParseError::Unknown {
        word: word.to_string(),
        path: path.to_string(),
        expected: expected(tree, node),
    })
}

/// A walked line: the node reached and what was captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walked {
    pub node: NodeId,
    pub args: Args,
    /// Canonical words of the path so far (full fixed words, slot values).
    pub path: Vec<String>,
}

/// Walk `words` from the root as far as they go.
pub fn walk(tree: &Tree, words: &[String]) -> Result<Walked, ParseError> {
    let mut w = Walked {
        node: ROOT,
        args: Args::default(),
        path: Vec::new(),
    };
    for word in words {
        let path = w.path.join(" ");
        match step(tree, w.node, word, &path)? {
            Step::Fixed(id) => {
                let n = &tree.nodes[id];
                if let Some(flag) = n.flag {
                    if w.args.has(flag) {
                        return Err(ParseError::Repeated { key: flag.into() });
                    }
                    w.args.0.push((flag, n.word.to_string()));
                }
                w.path.push(n.word.to_string());
                w.node = id;
            }
            Step::Slot(id, v) => {
                let s = tree.nodes[id].slot.as_ref().map(|s| (s.key, s.repeat));
                if let Some((key, repeat)) = s {
                    if !repeat && w.args.has(key) {
                        return Err(ParseError::Repeated { key: key.into() });
                    }
                    w.args.0.push((key, v.clone()));
                }
                w.path.push(v);
                w.node = id;
            }
        }
    }
    Ok(w)
}

/// A complete command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub action: Action,
    pub args: Args,
    /// The canonical command line (abbreviations expanded).
    pub line: String,
}

/// Parse a line into a command. `Ok(None)` for an empty line.
pub fn parse(tree: &Tree, line: &str) -> Result<Option<Command>, ParseError> {
    let words: Vec<String> = tokenize(line)?.into_iter().map(|t| t.text).collect();
    parse_words(tree, &words)
}

/// Parse already split words (one-shot mode: the shell did the quoting).
pub fn parse_words(tree: &Tree, words: &[String]) -> Result<Option<Command>, ParseError> {
    if words.is_empty() {
        return Ok(None);
    }
    let w = walk(tree, words)?;
    match tree.nodes[w.node].action {
        Some(action) => Ok(Some(Command {
            action,
            args: w.args,
            line: w.path.join(" "),
        })),
        None => Err(ParseError::Incomplete {
            path: w.path.join(" "),
            expected: expected(tree, w.node),
        }),
    }
}

/// Validate a slot value and return its canonical form.
pub fn validate(key: &str, kind: Kind, source: Source, v: &str) -> Result<String, ParseError> {
    let num = |v: &str| -> Result<u32, ParseError> {
        v.parse::<u32>().map_err(|_| ParseError::Invalid {
            field: key.to_string(),
            reason: format!("{} is not a number", evpn_model::excerpt(v)),
        })
    };
    match kind {
        Kind::Instance => evpn_model::validate_instance_id(key, v)?,
        Kind::Slug => evpn_model::validate_slug(key, v)?,
        Kind::Vni => evpn_model::validate_vni(key, num(v)?)?,
        Kind::Mtu => evpn_model::validate_mtu(key, num(v)?)?,
        Kind::Count => {
            if num(v)? == 0 {
                return Err(ParseError::Invalid {
                    field: key.into(),
                    reason: "must be at least 1".into(),
                });
            }
        }
        Kind::Number => {
            num(v)?;
        }
        Kind::DurationOrOff if v == "off" => {}
        Kind::Duration | Kind::DurationOrOff => {
            let d: evpn_model::HumanDuration = v.parse().map_err(|reason| ParseError::Invalid {
                field: key.into(),
                reason,
            })?;
            return Ok(d.to_string());
        }
        Kind::Mac => return Ok(evpn_model::Mac::parse_unicast(key, v)?.to_string()),
        Kind::Prefix => {
            let (a, l) = v.split_once('/').ok_or_else(|| ParseError::Invalid {
                field: key.into(),
                reason: format!(
                    "{} is not <address>/<length>, e.g. 172.16.0.32/24",
                    evpn_model::excerpt(v)
                ),
            })?;
            let len = l.parse::<u32>().map_err(|_| ParseError::Invalid {
                field: key.into(),
                reason: format!("prefix length {} is not a number", evpn_model::excerpt(l)),
            })?;
            // Naming an address to remove checks only its syntax: one
            // stored before a class was refused must stay removable.
            if matches!(source, Source::GroupAddresses) {
                return Ok(evpn_model::addr::parse_prefix_syntax(key, a, len)?.to_string());
            }
            return Ok(evpn_model::parse_prefix(key, a, len)?.to_string());
        }
        Kind::RouteTarget => return route_target(key, v),
        Kind::Word => {
            let Source::Words(words) = source else {
                return Ok(v.to_string());
            };
            if words.contains(&v) {
                return Ok(v.to_string());
            }
            let m: Vec<&str> = words.iter().copied().filter(|w| w.starts_with(v)).collect();
            return match m.as_slice() {
                [one] => Ok(one.to_string()),
                [] => Err(ParseError::Invalid {
                    field: key.into(),
                    reason: format!(
                        "{} is not one of {}",
                        evpn_model::excerpt(v),
                        words.join(", ")
                    ),
                }),
                _ => Err(ParseError::Ambiguous {
                    word: v.into(),
                    candidates: m.iter().map(|s| s.to_string()).collect(),
                }),
            };
        }
    }
    Ok(v.to_string())
}

/// A route target in any of the accepted spellings — `65000:100`,
/// `rt:65000:100`, `target:65000:100` or BIRD's `(rt, 65000, 100)` — as
/// the API's canonical `<asn>:<number>`: the grammar evpnd and evpnr apply
/// ([`evpn_model::RouteTarget::parse`]).
pub fn route_target(key: &str, v: &str) -> Result<String, ParseError> {
    Ok(evpn_model::RouteTarget::parse(key, v)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::build;

    fn p(line: &str) -> Result<Command, ParseError> {
        parse(&build(), line).map(|c| c.expect("a command"))
    }

    #[test]
    fn tokenizer_keeps_quoted_words() {
        let t = tokenize(r#" group  g create vni 1 route-target "(rt, 65000, 100)" "#).unwrap();
        let words: Vec<_> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(
            words,
            [
                "group",
                "g",
                "create",
                "vni",
                "1",
                "route-target",
                "(rt, 65000, 100)"
            ]
        );
        assert_eq!((t[0].start, t[0].end), (1, 6));
        assert_eq!(tokenize("a 'b").unwrap_err(), ParseError::UnterminatedQuote);
        assert!(tokenize("   ").unwrap().is_empty());
    }

    #[test]
    fn abbreviations_expand() {
        let cases = [
            ("sh ver", Action::ShowVersion, "show version"),
            ("sh i", Action::ListInstances, "show instance"),
            ("sh g", Action::ListGroups, "show group"),
            ("sh g test", Action::GetGroup, "show group test"),
            (
                "sh in dpu0-ddln0 ev",
                Action::ListEvpns,
                "show instance dpu0-ddln0 evpn",
            ),
            ("sh in r1 v i", Action::VppInfo, "show instance r1 vpp info"),
            (
                "sh in r1 bi i",
                Action::BirdInfo,
                "show instance r1 bird info",
            ),
            (
                "g test bvi set p dpu0-chplo0",
                Action::MovePrimary,
                "group test bvi set primary dpu0-chplo0",
            ),
            ("w e", Action::WatchEvents, "watch events"),
            ("q", Action::Quit, "quit"),
        ];
        for (line, action, canon) in cases {
            let c = p(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(c.action, action, "{line}");
            assert_eq!(c.line, canon, "{line}");
        }
    }

    #[test]
    fn exact_match_beats_prefix() {
        // "bvi" is both an exact word and a prefix of nothing else, and
        // "bi" under an instance is ambiguous between bird and bvi.
        let e = p("show instance r1 b").unwrap_err();
        assert_eq!(
            e,
            ParseError::Ambiguous {
                word: "b".into(),
                candidates: vec!["bvi".into(), "bird".into()]
            }
        );
        assert_eq!(p("show instance r1 bvi").unwrap().action, Action::ListBvis);
        // "member" vs "mtu" share "m".
        let e = p("group g m").unwrap_err();
        assert!(e.to_string().contains("could be member, mtu"), "{e}");
        // exit and quit are both complete words; "e" is ambiguous? No: only
        // "exit" starts with e at the root.
        assert_eq!(p("e").unwrap().action, Action::Quit);
    }

    #[test]
    fn slots_capture_and_validate() {
        let c = p("group test create vni 100 mtu 9000 vmac 02:AA:bb:cc:dd:ee route-target rt:65000:100 import-target '(rt, 65000, 7)'").unwrap();
        assert_eq!(c.action, Action::CreateGroup);
        assert_eq!(c.args.get("group"), Some("test"));
        assert_eq!(c.args.get("vni"), Some("100"));
        assert_eq!(c.args.get("mtu"), Some("9000"));
        assert_eq!(c.args.get("vmac"), Some("02:aa:bb:cc:dd:ee"));
        assert_eq!(c.args.all("route-target"), ["65000:100"]);
        assert_eq!(c.args.all("import-target"), ["65000:7"]);
        // options in any order
        let c = p("group test create vni 100 vmac 02:00:00:00:00:01 mtu 1500").unwrap();
        assert_eq!(c.args.get("mtu"), Some("1500"));
        let e = p("group test create vni 100 mtu 1500 mtu 9000").unwrap_err();
        assert_eq!(e, ParseError::Repeated { key: "mtu".into() });
        let c = p("group test bvi create address 10.0.0.1/24 address fec0::32/64").unwrap();
        assert_eq!(c.args.all("address"), ["10.0.0.1/24", "fec0::32/64"]);
        let c = p("group test bvi address add 172.16.0.32/24").unwrap();
        assert_eq!(c.args.get("prefix"), Some("172.16.0.32/24"));
        let c = p("group test bvi set primary r2 force").unwrap();
        assert_eq!(c.args.get("force"), Some("force"));
        let c = p("watch events type crud type fail level w instance r1 num 3 snapshot").unwrap();
        assert_eq!(c.args.all("type"), ["crud", "failover"]);
        assert_eq!(c.args.get("level"), Some("warn"));
        assert_eq!(c.args.get("num"), Some("3"));
        assert!(c.args.has("snapshot"));
    }

    #[test]
    fn bad_values_name_the_field() {
        for (line, field) in [
            ("show group Test", "group"),
            ("show instance -r1", "instance"),
            ("group test create vni 0", "vni"),
            ("group test create vni 16777216", "vni"),
            ("group test create vni x", "vni"),
            ("group test mtu 100", "mtu"),
            ("group test create vni 1 vmac 01:00:5e:00:00:01", "vmac"),
            ("group test bvi address add 172.16.0.32", "prefix"),
            ("group test bvi address add 172.16.0.32/33", "prefix"),
            ("group test bvi address add fe80::1/64", "prefix"),
            (
                "group test create vni 1 route-target 70000:70000",
                "route-target",
            ),
            ("group test create vni 1 route-target foo", "route-target"),
            ("watch events level loud", "level"),
            ("watch events num 0", "num"),
        ] {
            match p(line) {
                Err(ParseError::Invalid { field: f, .. }) => assert_eq!(f, field, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_and_incomplete_list_candidates() {
        let e = p("frobnicate").unwrap_err();
        assert!(
            e.to_string().contains("unknown command \"frobnicate\""),
            "{e}"
        );
        assert!(e.to_string().contains("show"), "{e}");
        let e = p("show instance r1 nope").unwrap_err();
        assert!(e.to_string().contains("after \"show instance r1\""), "{e}");
        let e = p("group test").unwrap_err();
        match &e {
            ParseError::Incomplete { path, expected } => {
                assert_eq!(path, "group test");
                assert!(expected.contains(&"create".to_string()), "{expected:?}");
            }
            other => panic!("{other:?}"),
        }
        let e = p("show version extra").unwrap_err();
        assert!(e.to_string().contains("nothing more is expected"), "{e}");
        assert_eq!(parse(&build(), "  ").unwrap(), None);
    }

    /// The CLI accepts exactly the route targets the API accepts, spelled
    /// as the API spells them (the grammar itself is tested in evpn-model).
    #[test]
    fn route_targets_follow_the_model() {
        let inputs = "65000:100|rt:65000:100|target:1:4294967295|(rt, 65000, 100)|(rt,4200000000,7)\
                      ||65000|rt:a:1|70000:70000|(ro, 1, 2)|1:2:3|-1:2|+1:2|65000: 100";
        for i in inputs.split('|') {
            let model = evpn_model::RouteTarget::parse("rt", i).map(|r| r.to_string());
            let cli = route_target("rt", i);
            assert_eq!(cli.is_ok(), model.is_ok(), "{i:?}");
            if let (Ok(c), Ok(m)) = (cli, model) {
                assert_eq!(c, m, "{i:?}");
            }
        }
        assert_eq!(route_target("rt", "(rt, 65000, 100)").unwrap(), "65000:100");
    }
}
