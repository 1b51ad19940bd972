//! `tideline schema`: the per-event-type schemas of `data`.
//!
//! - `schema check FILE [--registry R] [--field-map JSON]` reads a sample
//!   record (one JSON object, as a producer sends it), normalises it as
//!   ingest does, and checks its `data` against its type's schema. Prints
//!   `OK` or the refusal ingest would give (JSON Pointer and rule), exit 2.
//!   A type the registry does not know is refused here even when the
//!   registry lets ingest accept it unchecked: nothing was checked, so `OK`
//!   would be a false answer.
//! - `schema list [--registry R] [--json]` prints one line per type: type,
//!   version, schema file (or one JSON array).
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
        /// Print one JSON array of {"type", "version", "schema"}.
        #[arg(long)]
        json: bool,
    },
}

fn load(registry: &Path) -> Result<SchemaRegistry, CliError> {
    SchemaRegistry::load(registry).map_err(|e| CliError::config("--registry", e))
}

/// Runs `tideline schema …`.
pub fn run(args: SchemaArgs) -> Result<ExitCode, CliError> {
    match args.command {
        SchemaCommand::List { registry, json } => {
            let loaded = load(&registry)?;
            if json {
                let types: Vec<_> = loaded
                    .types()
                    .iter()
                    .map(|(event_type, t)| {
                        serde_json::json!({"type": event_type, "version": t.entry.version, "schema": t.path.display().to_string()})
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(types));
            } else {
                for (event_type, t) in loaded.types() {
                    println!("{event_type}\tv{}\t{}", t.entry.version, t.path.display());
                }
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
            let loaded = load(&registry)?;
            let known: Vec<String> = loaded.types().keys().cloned().collect();
            let config = IngestConfig {
                fields,
                data_validator: Some(SharedDataValidator::new(loaded)),
                ..IngestConfig::default()
            };
            // The same admission as ingest: contract, every hop's limits, the schema.
            match admit(&config, &bytes, chrono::Utc::now()) {
                Ok(admitted) if !known.contains(&admitted.record.event_type) => {
                    Err(CliError::Usage(format!(
                        "{}: type {:?} has no schema in {} (known: {}); add it to the registry's `types`",
                        file.display(),
                        admitted.record.event_type,
                        registry.display(),
                        known.join(", ")
                    )))
                }
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
