//! Guard: no import cycles between the top-level modules of any crate of the
//! workspace (issue 15). A module `a` depends on `b` when code of `a` (any
//! file under it, test-only code excluded) names `crate::b…` or, from a
//! submodule, `super::…` reaching `b`. Comments and string literals are
//! ignored, so a doc link is not a dependency. A crate root (`lib.rs`,
//! `main.rs`, `src/bin`) composes the modules and is not a node.
//! `CYCLES_ROOT=<dir>` scans the crates in `<dir>` instead (e.g. an older
//! tree, to see the guard fail on a known cycle).
use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// Module dependency graph of one crate: node → (dependency → a file of
/// the node that names it).
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// `text` with comments, string and char literals blanked out (each of
/// their characters replaced by a space, newlines kept), so offsets stay
/// those of `text`.
fn strip(text: &str) -> Vec<char> {
    let b: Vec<char> = text.chars().collect();
    let mut out = b.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let start = i;
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('"') | Some('#'))
            && (i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_'))
        {
            // Raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                i += 1;
                continue;
            }
            j += 1;
            while j < b.len() {
                if b[j] == '"' && (1..=hashes).all(|k| b.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' && (b.get(i + 2) == Some(&'\'') || next == Some('\\')) {
            // A char literal ('x', '\n', '\u{..}'); a lifetime has no
            // closing quote right after its first character.
            let mut j = i + if next == Some('\\') { 3 } else { 2 };
            while j < b.len() && b[j] != '\'' && j - i < 12 {
                j += 1;
            }
            i = j + 1;
        } else {
            i += 1;
            continue;
        }
        blank(&mut out, start, i);
    }
    out
}

/// Index just past the item starting at `i` (after its attributes): at a
/// `;` or `,` outside brackets, after the `}` closing its body, or before a
/// bracket that closes an enclosing one.
fn item_end(s: &[char], mut i: usize) -> usize {
    let mut depth = 0i32;
    while i < s.len() {
        match s[i] {
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => {
                depth -= 1;
                if depth < 0 {
                    return i;
                }
                if depth == 0 && s[i] == '}' {
                    return i + 1;
                }
            }
            ';' | ',' if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Index just past the bracket closing the one at `i`.
fn close(s: &[char], mut i: usize) -> usize {
    let mut depth = 0;
    while i < s.len() {
        match s[i] {
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// Skip whitespace and attributes from `i`; the `#[path = "…"]` value, if any
/// (read from the unstripped `raw` at the same offsets).
fn skip_attrs(s: &[char], raw: &[char], mut i: usize) -> (usize, Option<String>) {
    let mut path = None;
    loop {
        while i < s.len() && s[i].is_whitespace() {
            i += 1;
        }
        if s.get(i) == Some(&'#') && s.get(i + 1) == Some(&'[') {
            let end = close(s, i + 1);
            let attr: String = raw[i..end.min(raw.len())].iter().collect();
            if let Some(rest) = attr.strip_prefix("#[path") {
                path = rest.split('"').nth(1).map(String::from);
            }
            i = end;
        } else {
            return (i, path);
        }
    }
}

/// The code of a file (comments and literals blanked) with every
/// `#[cfg(test)]` item removed, and the test-only modules it declares
/// (`mod x;`: name, `#[path]`).
fn without_tests(raw: &str) -> (String, Vec<(String, Option<String>)>) {
    let s = strip(raw);
    let raw: Vec<char> = raw.chars().collect();
    let mut out = String::new();
    let mut mods = Vec::new();
    let mut i = 0;
    let pat: Vec<char> = "#[cfg(test)]".chars().collect();
    while i < s.len() {
        if s[i..].starts_with(&pat) {
            let (start, path) = skip_attrs(&s, &raw, i + pat.len());
            let end = item_end(&s, start);
            let item: String = s[start..end].iter().collect();
            let words: Vec<&str> = item
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .collect();
            if let Some(p) = words.iter().position(|w| *w == "mod")
                && item.trim_end().ends_with(';')
                && let Some(name) = words.get(p + 1)
            {
                mods.push((name.to_string(), path));
            }
            i = end;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    (out, mods)
}

/// The top-level modules named by `code` through `crate::` paths (use
/// groups expanded) and `super::` paths of a module at depth `depth`
/// below the top-level module `top` (resolved to `top` itself, or to a
/// sibling when `super` climbs above it).
fn deps(code: &str, top: &str, depth: usize) -> BTreeSet<String> {
    let s: Vec<char> = code.chars().collect();
    let ident = |i: usize| -> (String, usize) {
        let mut j = i;
        while j < s.len() && (s[j].is_alphanumeric() || s[j] == '_') {
            j += 1;
        }
        (s[i..j].iter().collect(), j)
    };
    let skip_ws = |mut i: usize| {
        while i < s.len() && s[i].is_whitespace() {
            i += 1;
        }
        i
    };
    // The first segment of every entry of the use group opening at `i`.
    fn group_heads(s: &[char], i: usize) -> Vec<String> {
        let mut heads = Vec::new();
        let mut depth = 0;
        let mut at_entry = true;
        let mut j = i;
        while j < s.len() {
            let c = s[j];
            match c {
                '{' => {
                    depth += 1;
                    if depth == 1 {
                        at_entry = true;
                    }
                }
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ',' if depth == 1 => at_entry = true,
                c if depth == 1 && at_entry && (c.is_alphanumeric() || c == '_') => {
                    let mut k = j;
                    while k < s.len() && (s[k].is_alphanumeric() || s[k] == '_') {
                        k += 1;
                    }
                    heads.push(s[j..k].iter().collect());
                    at_entry = false;
                    j = k;
                    continue;
                }
                c if !c.is_whitespace() => at_entry = false,
                _ => {}
            }
            j += 1;
        }
        heads
    }
    let word_start = |i: usize| i == 0 || !(s[i - 1].is_alphanumeric() || s[i - 1] == '_');
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < s.len() {
        if !word_start(i) {
            i += 1;
            continue;
        }
        let (w, j) = ident(i);
        if w != "crate" && w != "super" {
            i = if j > i { j } else { i + 1 };
            continue;
        }
        // Climb `super::super::…`.
        let mut ups = 0;
        let mut k = j;
        if w == "super" {
            ups = 1;
        }
        loop {
            let a = skip_ws(k);
            if s.get(a) == Some(&':') && s.get(a + 1) == Some(&':') {
                let b = skip_ws(a + 2);
                let (n, e) = ident(b);
                if w == "super" && n == "super" {
                    ups += 1;
                    k = e;
                    continue;
                }
                if s.get(b) == Some(&'{') {
                    if w == "crate" || ups > depth {
                        out.extend(group_heads(&s, b));
                    } else {
                        out.insert(top.to_string());
                    }
                } else if !n.is_empty() {
                    if w == "crate" || ups > depth {
                        out.insert(n);
                    } else {
                        out.insert(top.to_string());
                    }
                }
            }
            break;
        }
        i = j;
    }
    out.remove("self");
    out.remove("super");
    out.remove("crate");
    out
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module graph of the crate whose sources are in `src`.
fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    files.retain(|f| !f.starts_with(src.join("bin")));
    files.sort();
    // Test-only files and directories, from `#[cfg(test)] mod x;`.
    let mut texts = BTreeMap::new();
    let mut test_only: Vec<PathBuf> = Vec::new();
    for f in &files {
        let raw = fs::read_to_string(f).unwrap();
        let (code, mods) = without_tests(&raw);
        let dir = f.parent().unwrap();
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        let own = if matches!(stem.as_str(), "mod" | "lib" | "main") {
            dir.to_path_buf()
        } else {
            dir.join(&stem)
        };
        for (name, path) in mods {
            match path {
                Some(p) => test_only.push(dir.join(p)),
                None => {
                    test_only.push(own.join(format!("{name}.rs")));
                    test_only.push(own.join(&name));
                }
            }
        }
        texts.insert(f.clone(), code);
    }
    let mut g = Graph::new();
    for (f, code) in &texts {
        if test_only.iter().any(|t| f.starts_with(t)) {
            continue;
        }
        let rel = f.strip_prefix(src).unwrap();
        let mut parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        if parts.len() == 1 && matches!(parts[0].as_str(), "lib" | "main") {
            continue;
        }
        let top = parts[0].clone();
        let depth = parts.len() - 1;
        let entry = g.entry(top.clone()).or_default();
        for d in deps(code, &top, depth) {
            if d != top {
                entry.entry(d).or_insert_with(|| rel.display().to_string());
            }
        }
    }
    // Only edges to modules of this crate.
    let nodes: BTreeSet<String> = g.keys().cloned().collect();
    for e in g.values_mut() {
        e.retain(|d, _| nodes.contains(d));
    }
    g
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g[v].keys() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let l = t.low[v].min(t.low[w]);
                t.low.insert(v, l);
            } else if t.on.contains(w) {
                let l = t.low[v].min(t.index[w]);
                t.low.insert(v, l);
            }
        }
        if t.low[v] == t.index[v] {
            let mut c = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                c.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if c.len() > 1 {
                c.sort();
                t.out.push(c);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: vec![],
        on: BTreeSet::new(),
        out: vec![],
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn describe(g: &Graph, c: &[String]) -> String {
    let mut s = String::new();
    for a in c {
        for (b, file) in &g[a] {
            if c.contains(b) {
                s.push_str(&format!("\n    {a} -> {b} (e.g. {file})"));
            }
        }
    }
    s
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let crates = std::env::var_os("CYCLES_ROOT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        PathBuf::from,
    );
    let mut found = Vec::new();
    let mut seen = 0;
    for e in fs::read_dir(&crates).unwrap().flatten() {
        let src = e.path().join("src");
        if !src.is_dir() {
            continue;
        }
        seen += 1;
        let g = graph(&src);
        for c in cycles(&g) {
            found.push(format!(
                "{}: {}{}",
                e.file_name().to_string_lossy(),
                c.join(", "),
                describe(&g, &c)
            ));
        }
    }
    assert!(
        seen >= 5,
        "only {seen} crates found under {}",
        crates.display()
    );
    assert!(found.is_empty(), "import cycles:\n  {}", found.join("\n  "));
}

// The scanner itself.

#[test]
fn comments_strings_and_test_code_are_not_dependencies() {
    let code = r##"
//! See [`crate::b`].
/* crate::c */
use crate::{d::{X, Y}, e, f::g::H};
fn x() { let s = "crate::i"; let r = r#"crate::j"#; let c = '{'; crate::k::f(); }
#[cfg(test)]
mod tests { use crate::l; }
struct S {
    #[cfg(test)]
    off: crate::m::M,
    on: crate::n::N,
}
"##;
    let (code, _) = without_tests(code);
    let d = deps(&code, "a", 0);
    let want: BTreeSet<String> = ["d", "e", "f", "k", "n"].map(String::from).into();
    assert_eq!(d, want);
}

#[test]
fn super_paths_resolve_to_the_module_or_a_sibling() {
    let d = deps("use super::machine::X; use super::super::z::Y;", "group", 1);
    let want: BTreeSet<String> = ["group", "z"].map(String::from).into();
    assert_eq!(d, want);
}

#[test]
fn test_only_module_files_are_listed() {
    let (_, mods) =
        without_tests("#[cfg(test)]\n#[path = \"x_tests.rs\"]\nmod tests;\n#[cfg(test)] mod fake;");
    assert_eq!(
        mods,
        [
            ("tests".to_string(), Some("x_tests.rs".to_string())),
            ("fake".to_string(), None)
        ]
    );
}

#[test]
fn a_cycle_is_found_and_a_chain_is_not() {
    let mk = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry(a.to_string())
                .or_default()
                .insert(b.to_string(), "f.rs".into());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert!(cycles(&mk(&[("a", "b"), ("b", "c")])).is_empty());
    assert_eq!(
        cycles(&mk(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])),
        [vec!["a".to_string(), "b".into(), "c".into()]]
    );
}
