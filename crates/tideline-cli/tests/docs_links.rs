//! An offline link check over README.md, ARCHITECTURE.md and docs/ (decision records
//! included): every relative Markdown link, and every repository file a page
//! cites in backticks (`crates/…/x.rs`, `docs/…`, `scripts/…`), exists, and
//! none points outside the repository (a reader of a clone has nothing
//! there).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Component, Path, PathBuf};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Top-level directories whose files pages cite by path.
const CITED_ROOTS: [&str; 9] = [
    "crates/",
    "docs/",
    "scripts/",
    "terraform/",
    "schemas/",
    "tests/",
    "generator/",
    "diagrams/",
    ".ci/",
];

fn pages(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            pages(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// `a/../b` → `b`, without touching the file system; `None` if it climbs
/// above the start.
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    Some(out)
}

/// The targets of `[text](target)` links.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].trim().to_string());
        }
    }
    out
}

/// Backticked spans that are repository paths (no placeholders or globs).
fn cited(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| CITED_ROOTS.iter().any(|r| s.starts_with(r)))
        .filter(|s| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        })
        .map(|s| s.trim_end_matches('/').to_string())
        .collect()
}

/// Every broken link or citation in the pages under `root`.
fn broken(root: &Path) -> Vec<String> {
    let root = root.canonicalize().unwrap();
    let mut files = vec![root.join("README.md")];
    // The map of the code (STYLE.md: check its file names in CI).
    let architecture = root.join("ARCHITECTURE.md");
    if architecture.exists() {
        files.push(architecture);
    }
    pages(&root.join("docs"), &mut files);
    let mut problems = Vec::new();
    for page in &files {
        let text = std::fs::read_to_string(page).unwrap();
        let rel_page = page.strip_prefix(&root).unwrap().to_path_buf();
        let page_dir = rel_page.parent().unwrap_or(Path::new(""));
        // Code blocks hold commands and output, not links.
        let prose: String = text.split("```").step_by(2).collect::<Vec<_>>().join("\n");
        for link in links(&prose) {
            let target = link.split('#').next().unwrap_or("").to_string();
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let target = target.split_whitespace().next().unwrap_or("");
            match normalise(&page_dir.join(target)) {
                None => problems.push(format!(
                    "{}: link {link} leaves the repository",
                    rel_page.display()
                )),
                Some(p) if !root.join(&p).exists() => problems.push(format!(
                    "{}: link {link}: {} does not exist",
                    rel_page.display(),
                    p.display()
                )),
                Some(_) => {}
            }
        }
        for path in cited(&text) {
            if !root.join(&path).exists() {
                problems.push(format!(
                    "{}: cites `{path}`, which does not exist",
                    rel_page.display()
                ));
            }
        }
    }
    problems
}

#[test]
fn every_relative_link_and_cited_file_exists() {
    let problems = broken(Path::new(REPO));
    assert!(
        problems.is_empty(),
        "{} broken link(s) or citation(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_check_finds_a_missing_file_and_a_link_outside() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("docs")).unwrap();
    std::fs::write(
        dir.path().join("README.md"),
        "[ok](docs/a.md) [gone](docs/nope.md) [out](../shared/INVARIANTS.md) `crates/x/src/lib.rs`\n```sh\n[not](a-link.md)\n```\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("docs/a.md"), "[up](../README.md#top)\n").unwrap();
    let problems = broken(dir.path());
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains("docs/nope.md does not exist"));
    assert!(problems[1].contains("leaves the repository"));
    assert!(problems[2].contains("`crates/x/src/lib.rs`"));
}
