//! Documented commands are tests: every shell command in README.md and
//! docs/*.md is run, as written, against a `tideline up` the test starts, and
//! its exit code and output are checked. A docs change that breaks a command,
//! a flag, a path or a quoted figure fails here.
//!
//! How a page states what a command must do (in ```sh blocks):
//!
//! - a comment `# → text`, inline or on the lines after the command: the
//!   command's output (stdout and stderr) contains `text`; `…` stands for
//!   anything in between;
//! - `# exit N`: the command exits with N (otherwise it must exit 0).
//!
//! How commands run: in a fresh directory per page (with `docs`, `schemas`
//! and `target` linked in, so documented relative paths resolve), with the
//! built `tideline`, `tideline-generator` and examples first on `PATH`
//! (`cargo run [--release] -p X --` is run as the debug binary X: the same
//! code, without a release build in CI). Each page gets its own free port:
//! `127.0.0.1:4566` in a command is that port, and `TIDELINE_LISTEN` /
//! `TIDELINE_ENDPOINT` point there. A default `tideline up` runs for each
//! page; a documented `tideline up` replaces it (as Ctrl-C and a new start
//! would). `tideline tail` runs until the end of its block.
//!
//! What does not run is listed in [`skip_reason`], each with its reason
//! (an AWS account, Terraform, benchmarks); every other command runs. The
//! test prints what it skipped. docs/cost.md is checked by the cost tests
//! (`tests/cost_cli.rs`), which own its figures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tideline_testkit::local::free_port;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// How long one command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// One documented command.
#[derive(Debug, Clone)]
struct DocCommand {
    file: String,
    line: usize,
    block: usize,
    text: String,
    expect: Vec<String>,
    exit: i32,
}

/// Pages whose commands are run.
fn pages() -> Vec<PathBuf> {
    let repo = Path::new(REPO);
    let mut pages = vec![repo.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        // Its figures and commands are the cost tests' (tests/cost_cli.rs).
        .filter(|p| !p.ends_with("cost.md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// The text before an inline comment (`  # …` outside quotes), and the comment.
fn split_comment(line: &str) -> (&str, Option<&str>) {
    let (mut single, mut double) = (false, false);
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'#' if !single && !double && (i == 0 || bytes[i - 1] == b' ') => {
                return (line[..i].trim_end(), Some(line[i + 1..].trim()));
            }
            _ => {}
        }
    }
    (line.trim_end(), None)
}

/// Applies a comment to the command it follows: `→ text` or `exit N`.
fn apply_comment(command: Option<&mut DocCommand>, comment: &str) {
    let Some(command) = command else { return };
    if let Some(text) = comment.strip_prefix('→') {
        command.expect.push(text.trim().to_string());
    } else if let Some(code) = comment.strip_prefix("exit ")
        && let Ok(code) = code.trim().parse()
    {
        command.exit = code;
    }
}

/// The shell commands of a page, with what each must print.
fn commands(page: &Path) -> Vec<DocCommand> {
    let text = std::fs::read_to_string(page).unwrap();
    let file = page
        .strip_prefix(REPO)
        .unwrap_or(page)
        .display()
        .to_string();
    let mut out: Vec<DocCommand> = Vec::new();
    let (mut in_block, mut runnable, mut block) = (false, false, 0);
    let mut pending: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            if in_block {
                in_block = false;
            } else {
                in_block = true;
                block += 1;
                runnable = matches!(lang.trim(), "sh" | "bash" | "shell" | "console");
            }
            continue;
        }
        if !in_block || !runnable {
            continue;
        }
        let (code, comment) = split_comment(line);
        let (start, mut joined) = pending.take().unwrap_or((n + 1, String::new()));
        if code.is_empty() {
            if let Some(c) = comment {
                apply_comment(out.last_mut(), c);
            }
            continue;
        }
        if let Some(head) = code.strip_suffix('\\') {
            joined.push_str(head);
            joined.push(' ');
            pending = Some((start, joined));
            continue;
        }
        joined.push_str(code);
        out.push(DocCommand {
            file: file.clone(),
            line: start,
            block,
            text: joined,
            expect: Vec::new(),
            exit: 0,
        });
        if let Some(c) = comment {
            apply_comment(out.last_mut(), c);
        }
    }
    out
}

/// Why a command is not run here, or `None`: it runs.
fn skip_reason(command: &str, aws_cli_v2: bool) -> Option<&'static str> {
    let c = command.trim();
    let starts = |p: &str| c.starts_with(p);
    if starts("cargo bench") {
        return Some("a benchmark (minutes each; its figures are measured by hand)");
    }
    if starts("cargo build") {
        return Some("builds what this test run built already (debug profile)");
    }
    if starts("./scripts/test.sh") || starts("scripts/test.sh") {
        return Some("the test command itself");
    }
    if starts("scripts/build-lambdas.sh") || starts("ls target/lambda") {
        return Some("builds the release Lambda zips (CI's last step does)");
    }
    if starts("terraform")
        || starts("cd terraform")
        || c.contains("$(terraform")
        || starts("cp terraform")
    {
        return Some("Terraform against an AWS account");
    }
    if starts("eval \"$(aws") || starts("curl --aws-sigv4") || c.contains("$(aws configure") {
        return Some("signed calls to a deployed API");
    }
    if c.split_whitespace().any(|w| w == "--aws") {
        return Some("needs an AWS account (--aws)");
    }
    if c.contains("verify") && c.contains("\"$API\"") {
        return Some("needs a deployed stack");
    }
    if c.contains("--stream \"$STREAM\"") {
        return Some("needs a deployed stack");
    }
    if starts("aws ") {
        if !c.contains("--endpoint-url http://127.0.0.1") {
            return Some("needs an AWS account");
        }
        if !aws_cli_v2 {
            return Some(
                "needs AWS CLI v2 (not on PyPI; v1 has no --cli-binary-format); the boto3 step covers the same call",
            );
        }
    }
    None
}

/// `cargo run [--release] -p X -- args` as the built binary X; the
/// documented port as this page's port.
fn rewrite(command: &str, port: u16) -> String {
    let mut c = command.to_string();
    for (from, to) in [
        (
            "cargo run --release -p tideline-generator --",
            "tideline-generator",
        ),
        ("cargo run -p tideline-generator --", "tideline-generator"),
        ("cargo run --release -p tideline --", "tideline"),
        ("cargo run -p tideline --", "tideline"),
    ] {
        c = c.replace(from, to);
    }
    // `cargo run -p <crate> --example X --`: the example cargo test built.
    while let Some(at) = c.find("cargo run -p ") {
        let rest = &c[at..];
        let Some(ex) = rest.find("--example ") else {
            break;
        };
        let name_start = at + ex + "--example ".len();
        let name: String = c[name_start..]
            .chars()
            .take_while(|ch| !ch.is_whitespace())
            .collect();
        let end = c[name_start..]
            .find(" -- ")
            .map_or(c.len(), |i| name_start + i + " -- ".len() - 1);
        c.replace_range(at..end, &format!("target/debug/examples/{name}"));
    }
    c.replace("127.0.0.1:4566", &format!("127.0.0.1:{port}"))
        .replace("localhost:4566", &format!("localhost:{port}"))
}

/// The binaries the pages run, under `<root>/debug` as in a `target`
/// directory; a private copy, taken once, so that a build of another
/// checkout sharing the target directory cannot swap them mid-run.
fn target_copy() -> &'static Path {
    static COPY: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let built = Path::new(env!("CARGO_BIN_EXE_tideline")).parent().unwrap();
        let root = tempfile::Builder::new()
            .prefix("tideline-docs-bin-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(root.path().join("debug/examples")).unwrap();
        for bin in [
            "tideline",
            "tideline-generator",
            "event-responder",
            "examples/orders_registry",
            "examples/orders",
        ] {
            let from = built.join(bin);
            assert!(
                from.exists(),
                "{} is not built: run the workspace's tests (`cargo test --workspace`, as scripts/test.sh does), or `cargo build -p tideline-generator -p event-responder -p tideline-consumer -p tideline-eventstore --examples` first",
                from.display()
            );
            std::fs::copy(&from, root.path().join("debug").join(bin)).unwrap();
        }
        root
    })
    .path()
}

/// Where the pages' binaries are.
fn bin_dir() -> PathBuf {
    target_copy().join("debug")
}

/// A shell running one command line, in its own process group so that
/// stopping it stops every process of a pipeline.
struct Running {
    child: Child,
    out: PathBuf,
}

impl Running {
    fn stop(mut self) -> (Option<i32>, String) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", self.child.id())])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        let code = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break s.code(),
                _ if Instant::now() > deadline => {
                    let _ = Command::new("kill")
                        .args(["-KILL", "--", &format!("-{}", self.child.id())])
                        .status();
                    let _ = self.child.wait();
                    break None;
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        (code, read_output(&self.out))
    }
}

fn read_output(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        s = String::from_utf8_lossy(&bytes).into_owned();
    }
    s
}

/// The environment every command runs in.
struct Page {
    dir: tempfile::TempDir,
    port: u16,
    path_var: String,
    count: usize,
}

impl Page {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tideline-docs-")
            .tempdir()
            .unwrap();
        let repo = Path::new(REPO).canonicalize().unwrap();
        let target = target_copy().to_path_buf();
        for (name, to) in [
            ("docs", repo.join("docs")),
            ("schemas", repo.join("schemas")),
            ("target", target),
        ] {
            std::os::unix::fs::symlink(to, dir.path().join(name)).unwrap();
        }
        // The project's venv (scripts/moto.sh) has boto3, for the Python steps.
        let venv = repo.join(".venv/bin");
        let path_var = format!(
            "{}:{}:{}",
            bin_dir().display(),
            venv.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Self {
            dir,
            port: free_port(),
            path_var,
            count: 0,
        }
    }

    fn spawn(&mut self, command: &str) -> Running {
        self.count += 1;
        let out = self.dir.path().join(format!(".out-{}", self.count));
        let file = std::fs::File::create(&out).unwrap();
        let err = file.try_clone().unwrap();
        use std::os::unix::process::CommandExt;
        let child = Command::new("bash")
            .args(["-o", "pipefail", "-c", command])
            .current_dir(self.dir.path())
            .env("PATH", &self.path_var)
            .env("TIDELINE_LISTEN", format!("127.0.0.1:{}", self.port))
            .env(
                "TIDELINE_ENDPOINT",
                format!("http://127.0.0.1:{}", self.port),
            )
            .env("RUST_LOG", "warn")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env_remove("TIDELINE_DATA_DIR")
            .env_remove("TIDELINE_SCHEMA_REGISTRY")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap();
        Running { child, out }
    }

    /// Runs a command to its end (or the timeout).
    fn run(&mut self, command: &str) -> (Option<i32>, String) {
        let mut r = self.spawn(command);
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        while matches!(r.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        r.stop()
    }

    /// Whether the page's server answers `/health`.
    fn healthy(&self) -> bool {
        use std::io::Write;
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.1 200")
    }

    /// Starts a server command; `Err` with its output if it ended instead.
    fn start_server(&mut self, command: &str) -> Result<Running, (Option<i32>, String)> {
        let mut r = self.spawn(command);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.healthy() {
                return Ok(r);
            }
            if !matches!(r.child.try_wait(), Ok(None)) || Instant::now() > deadline {
                return Err(r.stop());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether `output` holds `expected`, whose `…` stands for anything.
fn holds(output: &str, expected: &str) -> bool {
    let mut rest = output;
    for part in expected.split('…').map(str::trim).filter(|p| !p.is_empty()) {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// What went wrong with one command, or `None`.
fn judge(c: &DocCommand, code: Option<i32>, output: &str, long_running: bool) -> Option<String> {
    let mut problems = Vec::new();
    // A long-running command stopped by the harness ends by its signal.
    if !(long_running && c.exit == 0) && code != Some(c.exit) {
        problems.push(format!("exit code {code:?}, documented {}", c.exit));
    }
    if long_running && c.exit == 0 && code.is_some_and(|code| code != 0) {
        problems.push(format!("exit code {code:?} after being stopped"));
    }
    for e in &c.expect {
        if !holds(output, e) {
            problems.push(format!("output lacks `{e}`"));
        }
    }
    (!problems.is_empty()).then(|| {
        let tail: String = {
            let lines: Vec<&str> = output.lines().collect();
            lines[lines.len().saturating_sub(15)..].join("\n    ")
        };
        format!(
            "{}:{}: `{}`\n  {}\n  output (last lines):\n    {}",
            c.file,
            c.line,
            c.text,
            problems.join("; "),
            tail
        )
    })
}

fn aws_cli_v2() -> bool {
    Command::new("aws")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).starts_with("aws-cli/2"))
}

/// Runs every documented command of the pages; returns the failures and
/// prints what ran and what was skipped.
fn run_pages(pages: &[PathBuf]) -> Vec<String> {
    let aws_v2 = aws_cli_v2();
    let mut failures = Vec::new();
    let (mut ran, mut skipped) = (0, 0);
    for page_path in pages {
        let cmds = commands(page_path);
        if cmds.is_empty() {
            continue;
        }
        let mut page = Page::new();
        let mut server = page
            .start_server("tideline up --data-dir ./.tideline")
            .map_err(|(code, out)| format!("the default server did not start ({code:?}): {out}"))
            .unwrap();
        let mut followers: Vec<(DocCommand, Running)> = Vec::new();
        let mut block = 0;
        for c in &cmds {
            if c.block != block {
                for (f, r) in followers.drain(..) {
                    let (code, out) = r.stop();
                    failures.extend(judge(&f, code, &out, true));
                }
                block = c.block;
            }
            if let Some(reason) = skip_reason(&c.text, aws_v2) {
                println!("skipped {}:{}: {} ({reason})", c.file, c.line, c.text);
                skipped += 1;
                continue;
            }
            ran += 1;
            let command = rewrite(&c.text, page.port);
            let words: Vec<&str> = command.split_whitespace().collect();
            // A `tideline up` documented to be refused runs next to the server.
            if words.starts_with(&["tideline", "up"]) && c.exit == 0 {
                // A new start replaces the running server, as Ctrl-C and a restart would.
                let (_, _) = server.stop();
                match page.start_server(&command) {
                    Ok(r) => server = r,
                    Err((code, out)) => {
                        // The default server comes back for the rest of the page.
                        failures.extend(judge(c, code, &out, false));
                        server = page
                            .start_server("tideline up --data-dir ./.tideline")
                            .map_err(|(code, out)| format!("restart ({code:?}): {out}"))
                            .unwrap();
                    }
                }
                continue;
            }
            if words.starts_with(&["tideline", "tail"]) && !command.contains("--aws") {
                followers.push((c.clone(), page.spawn(&command)));
                // Following before the block's next command sends anything.
                std::thread::sleep(Duration::from_millis(700));
                continue;
            }
            let (code, out) = page.run(&command);
            println!("ran {}:{}: exit {code:?}", c.file, c.line);
            failures.extend(judge(c, code, &out, false));
        }
        for (f, r) in followers.drain(..) {
            let (code, out) = r.stop();
            failures.extend(judge(&f, code, &out, true));
        }
        let (_, _) = server.stop();
    }
    println!("documented commands: {ran} run, {skipped} skipped");
    failures
}

#[test]
fn documented_commands_run_as_written() {
    let failures = run_pages(&pages());
    assert!(
        failures.is_empty(),
        "{} documented command(s) do not do what the docs say:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn a_broken_documented_command_fails() {
    // The harness must be able to fail: a page with a wrong flag, a wrong
    // path and a wrong figure gives three failures.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.md");
    std::fs::write(
        &page,
        "```sh\n\
         tideline pattern check --no-such-flag docs/examples/rules.json\n\
         tideline pattern check docs/examples/no-such-rules.json\n\
         tideline schema list --registry schemas/registry.json   # → OrderPlaced\tv7\n\
         tideline schema list --registry schemas/registry.json   # → OrderPlaced\n\
         ```\n",
    )
    .unwrap();
    let failures = run_pages(&[page]);
    assert_eq!(failures.len(), 3, "{failures:#?}");
    assert!(failures[0].contains("--no-such-flag"), "{}", failures[0]);
    assert!(
        failures[1].contains("no-such-rules.json"),
        "{}",
        failures[1]
    );
    assert!(
        failures[2].contains("output lacks `OrderPlaced\tv7`"),
        "{}",
        failures[2]
    );
}

#[test]
fn commands_and_expectations_are_read_from_a_page() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("p.md");
    std::fs::write(
        &page,
        "text\n```sh\n# a comment\ntideline a \\\n  --b 'x  # y'   # → out 1\n# → out 2\n# exit 2\n```\n```json\n{}\n```\n",
    )
    .unwrap();
    let c = commands(&page);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].text, "tideline a    --b 'x  # y'");
    assert_eq!(c[0].expect, ["out 1", "out 2"]);
    assert_eq!(c[0].exit, 2);
    assert_eq!(
        rewrite(
            "cargo run --release -p tideline -- up --listen 127.0.0.1:4566",
            9
        ),
        "tideline up --listen 127.0.0.1:9"
    );
    assert_eq!(
        rewrite(
            "cargo run -p tideline-consumer --example orders_registry -- --print-event-pattern > p.json",
            9
        ),
        "target/debug/examples/orders_registry --print-event-pattern > p.json"
    );
}
