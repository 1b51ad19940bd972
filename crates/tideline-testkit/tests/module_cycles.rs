//! No module cycles: in every crate under `crates/`, the top-level modules
//! stand in layers, and a module never names one that (directly or through
//! others) names it back.
//!
//! Rust compiles module cycles happily, so nothing else would stop a layer
//! from quietly reaching up; this test does. It is a small hand-written scan,
//! not `cargo-modules` (which builds rust-analyzer, far too slow for CI):
//!
//! - a crate's top-level modules are the entries of `src/` (`a.rs`, or a
//!   directory `a/` with `mod.rs` and submodules), besides the crate roots
//!   (`lib.rs`, `main.rs`) and `src/bin/` (separate crates, one file each);
//! - a module depends on another when its code names `crate::b…`,
//!   `use crate::{b, …}`, or a `super::…` path that resolves to the crate root
//!   and then `b`; a name the root re-exports (`pub use b::Name`) counts as `b`;
//! - comments, string and character literals, and `#[cfg(test)]` items are
//!   left out: tests may reach up a layer to build their fixtures (the layers
//!   are the library's), and a doc link is not a dependency.
//!
//! A failure names the cycle in order and, for each step, where it is named.
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

/// Cycles that are known and accepted, per crate, each with why. Empty: every
/// cycle the scan found was fixed. A new entry needs a reason and an issue.
const ALLOWED_CYCLES: &[(&str, &[&str], &str)] = &[];

/// One top-level module naming another: where (file and line).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Site {
    file: String,
    line: usize,
}

/// The dependency graph of one crate's top-level modules, with the first site
/// of each edge.
#[derive(Debug, Default)]
struct Graph {
    nodes: BTreeSet<String>,
    edges: BTreeMap<String, BTreeMap<String, Site>>,
}

impl Graph {
    fn add_edge(&mut self, from: &str, to: &str, site: Site) {
        self.edges
            .entry(from.to_string())
            .or_default()
            .entry(to.to_string())
            .or_insert(site);
    }

    fn successors(&self, node: &str) -> impl Iterator<Item = &String> {
        self.edges.get(node).into_iter().flat_map(|m| m.keys())
    }
}

// ---------------------------------------------------------------- the scan

/// `src` with comments, string literals and character literals replaced by
/// spaces (newlines kept, so line numbers still hold).
fn strip_comments_and_literals(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !prev_is_ident(&chars, i)
            && raw_string_hashes(&chars, i + 1).is_some()
        {
            // r"…", r#"…"#, br#"…"#: no escapes; ends at `"` and as many `#`.
            let hashes = raw_string_hashes(&chars, i + 1).unwrap_or(0);
            let open = 1 + hashes + 1;
            for _ in 0..open {
                out.push(' ');
            }
            i += open;
            while i < chars.len() {
                if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A character literal ('a', '\n', '\u{1F600}') or a lifetime ('a).
            if next == Some('\\') {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                for _ in i..=j.min(chars.len() - 1) {
                    out.push(' ');
                }
                i = j + 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                out.push_str("   ");
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn prev_is_ident(chars: &[char], i: usize) -> bool {
    // `br"…"` is a raw byte string: `b` before `r` does not make `r` part of an identifier.
    i > 0 && {
        let p = chars[i - 1];
        (p.is_alphanumeric() || p == '_') && !(p == 'b' && (i < 2 || !is_ident_char(chars[i - 2])))
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// At `chars[at]`, `#`* then `"`: the number of `#`s of a raw string opener.
fn raw_string_hashes(chars: &[char], at: usize) -> Option<usize> {
    let mut n = 0;
    while chars.get(at + n) == Some(&'#') {
        n += 1;
    }
    (chars.get(at + n) == Some(&'"')).then_some(n)
}

/// A token of stripped code: an identifier, `::`, or one punctuation character.
#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    line: usize,
}

fn tokens(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if is_ident_char(c) {
            let start = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            out.push(Token {
                text: chars[start..i].iter().collect(),
                line,
            });
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push(Token {
                text: "::".into(),
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                text: c.to_string(),
                line,
            });
            i += 1;
        }
    }
    out
}

/// The tokens with every `#[cfg(test)]` item removed (the attribute, any
/// further attributes, and the item up to its `;` or its closing `}`), and
/// none at all if the file is `#![cfg(test)]`.
fn without_test_items(toks: &[Token]) -> Vec<Token> {
    // Whether the tokens from `i` on read `pattern`.
    let reads = |i: usize, pattern: &[&str]| {
        pattern
            .iter()
            .enumerate()
            .all(|(k, s)| toks.get(i + k).is_some_and(|t| t.text == *s))
    };
    if (0..toks.len()).any(|i| reads(i, &["#", "!", "[", "cfg", "(", "test", ")", "]"])) {
        return Vec::new();
    }
    let cfg_test = |i: usize| reads(i, &["#", "[", "cfg", "(", "test", ")", "]"]);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if !cfg_test(i) {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        i += 7;
        // The item ends at a `;` outside brackets, or at the `}` that closes
        // its first `{`.
        let mut nesting = 0usize;
        while i < toks.len() {
            match toks[i].text.as_str() {
                "(" | "[" => nesting += 1,
                ")" | "]" => nesting = nesting.saturating_sub(1),
                ";" if nesting == 0 => {
                    i += 1;
                    break;
                }
                "{" if nesting == 0 => {
                    let mut depth = 0usize;
                    while i < toks.len() {
                        match toks[i].text.as_str() {
                            "{" => depth += 1,
                            "}" => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        i += 1;
                    }
                    i += 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
    }
    out
}

/// The module path of a file under `src/`: `a.rs` and `a/mod.rs` are `[a]`,
/// `a/b.rs` is `[a, b]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.strip_suffix(".rs").unwrap_or(&last).to_string();
        if stem != "mod" {
            parts.push(stem);
        }
    }
    parts
}

/// The names a crate root re-exports from its top-level modules
/// (`pub use a::{X, Y as Z}` gives X and Z → a).
fn root_reexports(root_code: &str, top_level: &BTreeSet<String>) -> BTreeMap<String, String> {
    let toks = without_test_items(&tokens(root_code));
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i + 1 < toks.len() {
        if !(toks[i].text == "pub" && toks[i + 1].text == "use") {
            i += 1;
            continue;
        }
        let mut j = i + 2;
        while matches!(
            toks.get(j).map(|t| t.text.as_str()),
            Some("crate" | "self" | "::")
        ) {
            j += 1;
        }
        let Some(module) = toks.get(j).map(|t| t.text.clone()) else {
            break;
        };
        let end = (j..toks.len())
            .find(|&k| toks[k].text == ";")
            .unwrap_or(toks.len());
        if top_level.contains(&module) {
            // A leaf is an identifier followed by `,`, `}` or `;`: the name
            // the item brings in (its alias, if renamed).
            for k in j + 1..end {
                let leaf = &toks[k].text;
                let ends = matches!(
                    toks.get(k + 1).map(|t| t.text.as_str()),
                    Some("," | "}" | ";")
                );
                if ends && toks[k].text.chars().all(is_ident_char) && leaf != "self" {
                    out.insert(leaf.clone(), module.clone());
                }
            }
        }
        i = end;
    }
    out
}

/// The top-level modules that code at `file_path` (its module path) names,
/// each with the line, other than its own.
fn references(
    toks: &[Token],
    file_path: &[String],
    top_level: &BTreeSet<String>,
    reexports: &BTreeMap<String, String>,
) -> Vec<(String, usize)> {
    let own = file_path.first().cloned().unwrap_or_default();
    let resolve = |name: &str| -> Option<String> {
        if top_level.contains(name) {
            Some(name.to_string())
        } else {
            reexports.get(name).cloned()
        }
    };
    let text = |i: usize| toks.get(i).map_or("", |t| t.text.as_str());
    let mut out = Vec::new();
    // Inline modules (`mod m { … }`) extend the path for `super::`.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match text(i) {
            "{" => {
                depth += 1;
                if i >= 2 && text(i - 2) == "mod" {
                    inline.push((text(i - 1).to_string(), depth));
                }
                i += 1;
                continue;
            }
            "}" => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
                continue;
            }
            "crate" | "super" if text(i + 1) == "::" && (i == 0 || text(i - 1) != "::") => {}
            _ => {
                i += 1;
                continue;
            }
        }
        // A path from the crate root or from a parent: where does it start?
        let line = toks[i].line;
        let mut base: Option<Vec<String>> = if text(i) == "crate" {
            Some(Vec::new())
        } else {
            let mut p: Vec<String> = file_path.to_vec();
            p.extend(inline.iter().map(|(m, _)| m.clone()));
            Some(p)
        };
        let mut j = i;
        while text(j) == "super" && text(j + 1) == "::" {
            base = base.and_then(|mut p| p.pop().map(|_| p));
            j += 2;
        }
        if text(j) == "crate" {
            j += 2;
        }
        // `base` is None when `super` went above the root: not this scan's business.
        if let Some(base) = base {
            let mut firsts = Vec::new();
            if text(j) == "{" {
                // `{a, b::c, d as e}`: the first segment of each item.
                let mut nesting = 0usize;
                let mut expect = true;
                let mut k = j;
                while k < toks.len() {
                    match text(k) {
                        "{" => {
                            nesting += 1;
                            expect = nesting == 1;
                        }
                        "}" => {
                            nesting -= 1;
                            if nesting == 0 {
                                break;
                            }
                        }
                        "," if nesting == 1 => expect = true,
                        t if expect && nesting == 1 => {
                            firsts.push(t.to_string());
                            expect = false;
                        }
                        _ => {}
                    }
                    k += 1;
                }
                j = k;
            } else {
                firsts.push(text(j).to_string());
            }
            for first in firsts {
                // From inside the own module the path stays inside it.
                let target = match base.first() {
                    Some(top) => Some(top.clone()),
                    None => resolve(&first),
                };
                if let Some(target) = target
                    && target != own
                {
                    out.push((target, line));
                }
            }
        }
        i = j.max(i + 1);
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The graph of one crate, from `<crate>/src`.
fn crate_graph(crate_dir: &Path) -> Graph {
    let src = crate_dir.join("src");
    let mut graph = Graph::default();
    let is_root = |name: &str| matches!(name, "lib.rs" | "main.rs" | "bin");
    let mut entries: Vec<PathBuf> = fs::read_dir(&src)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    // The top-level modules' entries: everything in src/ but the crate roots.
    let name_of = |entry: &Path| {
        entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    entries.retain(|entry| !is_root(&name_of(entry)));
    for entry in &entries {
        let name = name_of(entry);
        if entry.is_dir() {
            graph.nodes.insert(name);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            graph.nodes.insert(stem.to_string());
        }
    }
    let mut reexports = BTreeMap::new();
    for root in ["lib.rs", "main.rs"] {
        if let Ok(code) = fs::read_to_string(src.join(root)) {
            reexports.extend(root_reexports(
                &strip_comments_and_literals(&code),
                &graph.nodes,
            ));
        }
    }
    for entry in &entries {
        let mut files = Vec::new();
        if entry.is_dir() {
            rust_files(entry, &mut files);
        } else {
            files.push(entry.clone());
        }
        for file in files {
            let Ok(code) = fs::read_to_string(&file) else {
                continue;
            };
            let relative = file.strip_prefix(&src).unwrap_or(&file);
            let toks = without_test_items(&tokens(&strip_comments_and_literals(&code)));
            let path = module_path(relative);
            for (target, line) in references(&toks, &path, &graph.nodes, &reexports) {
                let own = path.first().cloned().unwrap_or_default();
                let site = Site {
                    file: format!("src/{}", relative.display()),
                    line,
                };
                graph.add_edge(&own, &target, site);
            }
        }
    }
    graph
}

// ---------------------------------------------------------- the cycle finder

/// The strongly connected components with more than one module (Tarjan), each
/// sorted, in a stable order.
fn tangles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.successors(v) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    let mut all: BTreeSet<&str> = graph.nodes.iter().map(String::as_str).collect();
    all.extend(graph.edges.keys().map(String::as_str));
    for v in all {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

/// One shortest cycle through the first module of `component`, in order,
/// the first module repeated at the end.
fn cycle_in(graph: &Graph, component: &[String]) -> Vec<String> {
    let members: BTreeSet<&str> = component.iter().map(String::as_str).collect();
    let Some(start) = component.first() else {
        return Vec::new();
    };
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start.as_str()]);
    while let Some(v) = queue.pop_front() {
        for w in graph.successors(v) {
            let w = w.as_str();
            if !members.contains(w) {
                continue;
            }
            if w == start {
                let mut path = vec![start.clone()];
                let mut at = v;
                while at != start {
                    path.push(at.to_string());
                    at = parent[at];
                }
                path.push(start.clone());
                path.reverse();
                return path;
            }
            if !parent.contains_key(w) {
                parent.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    Vec::new()
}

/// The failure text for one crate's cycles: each cycle in order, then where
/// each step is named.
fn describe(crate_name: &str, graph: &Graph, component: &[String]) -> String {
    let cycle = cycle_in(graph, component);
    let mut text = format!("module cycle in {crate_name}: {}\n", cycle.join(" -> "));
    if component.len() + 1 > cycle.len() {
        // The shortest cycle is one of several: name every module caught in them.
        text += &format!(
            "    (modules that reach each other: {})\n",
            component.join(", ")
        );
    }
    for step in cycle.windows(2) {
        if let Some(site) = graph.edges.get(&step[0]).and_then(|m| m.get(&step[1])) {
            text += &format!(
                "    {} -> {}: crates/{crate_name}/{}:{}\n",
                step[0], step[1], site.file, site.line
            );
        }
    }
    text
}

fn workspace_crates() -> Vec<PathBuf> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out: Vec<PathBuf> = fs::read_dir(&crates)
        .expect("crates/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file() && p.join("src").is_dir())
        .collect();
    out.sort();
    out
}

#[test]
fn no_crate_has_a_module_cycle() {
    let crates = workspace_crates();
    assert!(
        crates.len() > 5,
        "found only {} crates under crates/",
        crates.len()
    );
    let mut failures = String::new();
    for dir in crates {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let graph = crate_graph(&dir);
        for component in tangles(&graph) {
            let allowed = ALLOWED_CYCLES.iter().any(|(c, modules, _why)| {
                *c == name && {
                    let mut m: Vec<String> = modules.iter().map(|s| s.to_string()).collect();
                    m.sort();
                    m == component
                }
            });
            if !allowed {
                failures += &describe(&name, &graph, &component);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "top-level modules must stand in layers; move what both sides need to the lower one:\n{failures}"
    );
}

#[test]
fn the_scan_sees_tideline_cores_layers() {
    // A guard against a scan that silently finds nothing: core's known edges.
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tideline-core");
    let graph = crate_graph(&core);
    let has = |a: &str, b: &str| graph.edges.get(a).is_some_and(|m| m.contains_key(b));
    assert!(has("ingest", "limits"), "{graph:#?}");
    assert!(has("event", "record"), "{graph:#?}");
    assert!(has("bundle", "envelope"), "{graph:#?}");
    // `crate::StoredEvent` is the root's re-export of event's.
    assert!(has("cost", "event"), "{graph:#?}");
}

// ------------------------------------------------ the scan's own unit tests

fn scan(files: &[(&str, &str)]) -> Graph {
    let mut graph = Graph::default();
    for (path, _) in files {
        if let Some(top) = module_path(Path::new(path)).first() {
            graph.nodes.insert(top.clone());
        }
    }
    for (path, code) in files {
        let p = module_path(Path::new(path));
        let toks = without_test_items(&tokens(&strip_comments_and_literals(code)));
        for (target, line) in references(&toks, &p, &graph.nodes, &BTreeMap::new()) {
            graph.add_edge(
                &p[0],
                &target,
                Site {
                    file: path.to_string(),
                    line,
                },
            );
        }
    }
    graph
}

fn edges(graph: &Graph) -> Vec<(String, String)> {
    graph
        .edges
        .iter()
        .flat_map(|(a, m)| m.keys().map(move |b| (a.clone(), b.clone())))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn paths_from_the_root_and_grouped_uses_are_edges() {
    let g = scan(&[
        ("a.rs", "use crate::b::X;\nfn f() { crate::c::g(); }"),
        ("b.rs", "use crate::{c, d::Y, self as s};"),
        ("c.rs", ""),
        ("d.rs", "use crate::a as _; pub(crate) fn h() {}"),
    ]);
    assert_eq!(
        edges(&g),
        pairs(&[("a", "b"), ("a", "c"), ("b", "c"), ("b", "d"), ("d", "a")])
    );
    assert_eq!(g.edges["a"]["c"].line, 2);
}

#[test]
fn comments_strings_and_test_items_are_not_edges() {
    let g = scan(&[
        (
            "a.rs",
            "//! see [`crate::b`]\n/* crate::b /* nested */ crate::b */\nconst S: &str = \"crate::b\";\nconst R: &str = r#\"crate::b \"quoted\"\"#;\nconst C: char = '\"'; fn f<'x>(_: &'x str) {}\n#[cfg(test)]\nmod tests { use crate::b; }\n#[cfg(test)]\nuse crate::b::Z;\nfn real() { crate::c::f(); }",
        ),
        ("b.rs", ""),
        ("c.rs", ""),
    ]);
    assert_eq!(edges(&g), pairs(&[("a", "c")]));
}

#[test]
fn super_resolves_through_files_directories_and_inline_modules() {
    let g = scan(&[
        // A top-level file: `super` is the root.
        ("a.rs", "use super::b;"),
        // A directory module: `super` from `c/x.rs` is `c`, twice is the root.
        ("c/mod.rs", "mod x;\nuse self::x::Q;"),
        ("c/x.rs", "use super::Q;\nuse super::super::d::R;"),
        // An inline module: its `super` is the file's module.
        (
            "d.rs",
            "mod inner { use super::T; pub fn f() { super::super::b::g(); } }",
        ),
        ("b.rs", ""),
    ]);
    assert_eq!(edges(&g), pairs(&[("a", "b"), ("c", "d"), ("d", "b")]));
}

#[test]
fn module_paths_of_files() {
    let p = |s: &str| module_path(Path::new(s));
    assert_eq!(p("a.rs"), ["a"]);
    assert_eq!(p("a/mod.rs"), ["a"]);
    assert_eq!(p("a/b.rs"), ["a", "b"]);
    assert_eq!(p("a/b/mod.rs"), ["a", "b"]);
}

#[test]
fn root_reexports_name_their_module() {
    let top: BTreeSet<String> = ["event", "ids"].iter().map(|s| s.to_string()).collect();
    let map = root_reexports(
        "pub mod event;\npub use event::{NewEvent, StoredEvent as Stored};\npub use crate::ids::EntityId;\npub use other::Thing;",
        &top,
    );
    assert_eq!(map.get("NewEvent").map(String::as_str), Some("event"));
    assert_eq!(map.get("Stored").map(String::as_str), Some("event"));
    assert_eq!(map.get("EntityId").map(String::as_str), Some("ids"));
    assert_eq!(map.get("Thing"), None);
}

#[test]
fn a_layered_graph_has_no_tangle() {
    let g = scan(&[
        ("top.rs", "use crate::{mid, bottom};"),
        ("mid.rs", "use crate::bottom::X;"),
        ("bottom.rs", ""),
    ]);
    assert!(tangles(&g).is_empty());
}

#[test]
fn a_cycle_is_reported_in_order_with_its_sites() {
    let g = scan(&[
        ("ingest.rs", "fn f() { crate::bundle::X; }"),
        ("bundle.rs", "use crate::envelope::E;"),
        ("envelope.rs", "use crate::event::S;"),
        ("event.rs", "\nuse crate::ingest::R;"),
        ("keys.rs", ""),
        ("item.rs", "use crate::keys::K;"),
    ]);
    let found = tangles(&g);
    assert_eq!(found, [["bundle", "envelope", "event", "ingest"]]);
    let cycle = cycle_in(&g, &found[0]);
    assert_eq!(cycle, ["bundle", "envelope", "event", "ingest", "bundle"]);
    let text = describe("demo", &g, &found[0]);
    assert!(
        text.starts_with("module cycle in demo: bundle -> envelope -> event -> ingest -> bundle\n"),
        "{text}"
    );
    assert!(
        text.contains("event -> ingest: crates/demo/event.rs:2"),
        "{text}"
    );
}

#[test]
fn separate_cycles_are_each_reported_and_the_shortest_is_chosen() {
    let g = scan(&[
        ("a.rs", "use crate::{b, c};"),
        ("b.rs", "use crate::a;"),
        ("c.rs", "use crate::d;"),
        ("d.rs", "use crate::a;"),
        ("x.rs", "use crate::y;"),
        ("y.rs", "use crate::x;"),
    ]);
    let found = tangles(&g);
    assert_eq!(found, [vec!["a", "b", "c", "d"], vec!["x", "y"]]);
    assert_eq!(cycle_in(&g, &found[0]), ["a", "b", "a"]);
    assert_eq!(cycle_in(&g, &found[1]), ["x", "y", "x"]);
    let text = describe("demo", &g, &found[0]);
    assert!(
        text.contains("(modules that reach each other: a, b, c, d)"),
        "{text}"
    );
}
