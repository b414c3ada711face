//! The command reference (`help`, `-help`) generated from the tree, and
//! the usage text.
use serde_json::{Value, json};

use crate::render::Paint;
use crate::tree::{NodeId, ROOT, Tree, build};

/// One complete command: its syntax and help. `repeat` marks commands
/// after which the sibling options may follow again, in any order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub syntax: String,
    /// The Evpnr RPCs it calls.
    pub rpcs: &'static [&'static str],
    pub help: &'static str,
    pub more: bool,
}

/// Every complete command of the tree, in tree order. Loops (optional
/// keyword/value pairs) are listed once, marked with `more`.
pub fn entries(tree: &Tree) -> Vec<Entry> {
    let mut seen = vec![false; tree.nodes.len()];
    seen[ROOT] = true;
    let mut out = Vec::new();
    go(tree, ROOT, &mut Vec::new(), &mut seen, &mut out);
    out
}

fn go(
    tree: &Tree,
    node: NodeId,
    path: &mut Vec<&'static str>,
    seen: &mut [bool],
    out: &mut Vec<Entry>,
) {
    // Children are claimed before descending, so a loop back to an option
    // is followed once, from where it is first declared.
    let fresh: Vec<NodeId> = tree.nodes[node]
        .children
        .iter()
        .copied()
        .filter(|&c| !seen[c])
        .collect();
    for &c in &fresh {
        seen[c] = true;
    }
    for c in fresh {
        let n = &tree.nodes[c];
        path.push(n.word);
        if let Some(a) = n.action {
            let more = !n.children.is_empty() && n.children.iter().all(|&k| seen[k]);
            out.push(Entry {
                syntax: path.join(" "),
                rpcs: a.rpcs(),
                help: n.help,
                more,
            });
        }
        go(tree, c, path, seen, out);
        path.pop();
    }
}

/// The reference as aligned text.
pub fn reference(p: Paint) -> String {
    let es = entries(&build());
    let rows: Vec<(String, &str)> = es
        .iter()
        .map(|e| {
            let s = if e.more {
                format!("{} …", e.syntax)
            } else {
                e.syntax.clone()
            };
            (s, e.help)
        })
        .collect();
    let w = rows
        .iter()
        .map(|(s, _)| s.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (s, h) in rows {
        let pad = w - s.chars().count();
        out.push_str(&format!("  {}{}  {h}\n", p.label(&s), " ".repeat(pad)));
    }
    out.push_str(
        "\n  Words may be abbreviated to any unique prefix; `?` shows what may come next,\n  TAB completes (live names from evpnr). A trailing … means the options before\n  it may follow in any order.\n",
    );
    out
}

/// The reference as JSON (`-json help`).
pub fn reference_json() -> Value {
    let es = entries(&build());
    json!({
        "commands": es
            .iter()
            .map(|e| json!({"syntax": e.syntax, "help": e.help, "rpcs": e.rpcs}))
            .collect::<Vec<_>>()
    })
}

/// `evpnc -help`.
pub fn usage(p: Paint) -> String {
    format!(
        "{}
evpnc - the vpp-evpn operator CLI; it talks only to evpnr

{}
  evpnc [flags]                 interactive shell (TAB completes, ? helps)
  evpnc [flags] <command ...>   run one command and exit

{}
  -server <host:port>  evpnr's gRPC address (env EVPNC_SERVER; default 127.0.0.1:9190)
  -json                machine output: proto-JSON (camelCase) of the answer, {{}} for
                       mutations without an answer, {{\"error\": \"...\"}} on failure
  -color[=true|false]  colour text output (default: on when stdout is a terminal
                       and NO_COLOR is unset)
  -timeout <duration>  deadline of each RPC, e.g. 500ms, 5s, 1m (default 30s)
  -tls-cert <path>     your certificate (PEM); with -tls-key and -tls-ca talks to
                       evpnr over mutual TLS and accepts only a registry identity
                       (evpn://registry/...) from it (docs/security.md)
  -tls-key <path>      your private key (PEM, mode 0600)
  -tls-ca <path>       the fleet CA (PEM)
  -version             print the version and exit
  -help                print this text and exit
  Flags come before the command; -flag, --flag and -flag=value all work.

{}
{}
{}
  0  success
  1  evpnr answered with an error or could not be reached
  2  usage error: unknown flag, or a command that does not parse or validate

{}
  EVPNC_SERVER   default for -server
  EVPNC_HISTORY  shell history file (default ~/.evpnc_history; empty disables)
  EVPNC_TLS_CERT, EVPNC_TLS_KEY, EVPNC_TLS_CA
                 defaults for -tls-cert, -tls-key, -tls-ca
  NO_COLOR       disables the colour default

{}
  evpnc show instance
  evpnc -json show group test | jq .groupBvi
  evpnc group test bvi set primary dpu0-chplo0
  evpnc -json watch events type crud num 10
",
        crate::version_line(),
        p.label("USAGE"),
        p.label("FLAGS"),
        p.label("COMMANDS"),
        reference(p),
        p.label("EXIT STATUS"),
        p.label("ENVIRONMENT"),
        p.label("EXAMPLES"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_lists_every_command_once() {
        let es = entries(&build());
        let syn: Vec<&str> = es.iter().map(|e| e.syntax.as_str()).collect();
        for want in [
            "show version",
            "show instance <instance> evpn <evpn>",
            "show instance <instance> vpp info",
            "group <group> create vni <vni>",
            "group <group> create vni <vni> mtu <mtu>",
            "group <group> bvi set primary <instance> force",
            "group <group> bvi address del <prefix>",
            "instance <instance> evpn <evpn> disable",
            "watch events type <type>",
            "quit",
        ] {
            assert!(syn.contains(&want), "{want} missing from {syn:#?}");
        }
        let mut sorted = syn.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), syn.len());
        let mtu = es
            .iter()
            .find(|e| e.syntax == "group <group> create vni <vni> mtu <mtu>")
            .unwrap();
        assert!(mtu.more);
        assert!(!es.iter().find(|e| e.syntax == "show version").unwrap().more);
    }
}
