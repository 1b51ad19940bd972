//! `tideline schema`: the per-event-type schemas of `data`.
//!
//! - `schema check FILE [--registry R] [--field-map JSON]` reads a sample
//!   record (one JSON object, as a producer sends it), normalises it as
//!   ingest does, and checks its `data` against its type's schema. Prints
//!   `OK` or the refusal ingest would give (JSON Pointer and rule), exit 2.
//! - `schema list [--registry R]` prints one line per type: type, version,
//!   schema file.
//!
//! The registry defaults to `schemas/registry.json` (`TIDELINE_SCHEMA_REGISTRY`).

use crate::CliError;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tideline_core::data_validator::SharedDataValidator;
use tideline_core::ingest::{FieldMap, IngestConfig, admit};
use tideline_schema::SchemaRegistry;

/// Flags of `tideline schema`.
#[derive(Args, Debug, Clone)]
pub struct SchemaArgs {
    #[command(subcommand)]
    command: SchemaCommand,
}

#[derive(Subcommand, Debug, Clone)]
enum SchemaCommand {
    /// Validate a sample record's `data` against its type's schema, as ingest would.
    Check {
        /// The record: one JSON object with `entity_id`, `type` and `data` (- for standard input).
        file: PathBuf,
        /// The schema registry file.
        #[arg(
            long,
            default_value = "schemas/registry.json",
            env = "TIDELINE_SCHEMA_REGISTRY"
        )]
        registry: PathBuf,
        /// Where the contract fields live (JSON Pointers), as `tideline up --field-map`.
        #[arg(long, env = "TIDELINE_FIELD_MAP")]
        field_map: Option<String>,
    },
    /// List the registered event types with their schema versions and files.
    List {
        /// The schema registry file.
        #[arg(
            long,
            default_value = "schemas/registry.json",
            env = "TIDELINE_SCHEMA_REGISTRY"
        )]
        registry: PathBuf,
    },
}

fn load(registry: &Path) -> Result<SchemaRegistry, CliError> {
    SchemaRegistry::load(registry).map_err(|e| CliError::config("--registry", e))
}

/// Runs `tideline schema …`.
pub fn run(args: SchemaArgs) -> Result<ExitCode, CliError> {
    match args.command {
        SchemaCommand::List { registry } => {
            let loaded = load(&registry)?;
            for (event_type, t) in loaded.types() {
                println!("{event_type}\tv{}\t{}", t.entry.version, t.path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        SchemaCommand::Check {
            file,
            registry,
            field_map,
        } => {
            let bytes = if file.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                    .map_err(|e| CliError::config("standard input", e))?;
                buf
            } else {
                std::fs::read(&file)
                    .map_err(|e| CliError::config(format!("{}: cannot read", file.display()), e))?
            };
            let fields = match field_map {
                Some(text) => FieldMap::from_json(&text)
                    .map_err(|e| CliError::Usage(format!("--field-map: {e}")))?,
                None => FieldMap::default(),
            };
            let config = IngestConfig {
                fields,
                data_validator: Some(SharedDataValidator::new(load(&registry)?)),
                ..IngestConfig::default()
            };
            // The same admission as ingest: contract, every hop's limits, the schema.
            match admit(&config, &bytes, chrono::Utc::now()) {
                Ok(admitted) => {
                    println!("OK: {} fits its schema", admitted.record.event_type);
                    Ok(ExitCode::SUCCESS)
                }
                Err(reason) => Err(CliError::Usage(format!(
                    "{}: refused ({}): {reason}",
                    file.display(),
                    reason.code()
                ))),
            }
        }
    }
}
