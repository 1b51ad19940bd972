//! Running a built binary in a test, the one scaffold the CLI tests share.
//!
//! The binary's path comes from the calling test crate
//! (`env!("CARGO_BIN_EXE_tideline")` expands only there), so each test file
//! keeps a one-line `tideline(args)` that names it.

use std::process::{Command, Output};

/// A command for `bin` with `RUST_LOG=warn`, so that a test's expectations on
/// stderr see the command's messages and not its progress logs.
pub fn command(bin: &str) -> Command {
    let mut command = Command::new(bin);
    command.env("RUST_LOG", "warn");
    command
}

/// Runs `bin args…` to completion.
pub fn run(bin: &str, args: &[&str]) -> Output {
    command(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {bin}: {e}"))
}

/// Runs `bin args…` against moto: `AWS_ENDPOINT_URL` and moto's credentials
/// and region ([`crate::moto::aws_env`]).
pub fn run_on_moto(bin: &str, args: &[&str]) -> Output {
    command(bin)
        .args(args)
        .env("AWS_ENDPOINT_URL", crate::moto::endpoint())
        .envs(crate::moto::aws_env())
        .output()
        .unwrap_or_else(|e| panic!("running {bin}: {e}"))
}

/// A command's standard output, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A command's standard error, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
