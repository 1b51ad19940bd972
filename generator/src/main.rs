//! `tideline-generator`: see the library for what it does and why.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = tideline_generator::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tideline-generator: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(tideline_generator::cli::run(cli));
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}
