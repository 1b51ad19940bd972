//! Per-event-type JSON Schemas for Tideline's `data`.
//!
//! - A **registry file** (`schemas/registry.json`) lists each event type with
//!   its schema file (relative to the registry file) and version, and what to
//!   do with a type it does not list (`unknown_types`: `accept`, the default,
//!   or `refuse`).
//! - [`SchemaRegistry`] loads it, compiles every schema with the [`validate`]
//!   module's validator (the subset schemars emits; anything else is refused
//!   at load, naming the keyword), and implements the core's
//!   [`DataValidator`] hook, so ingest (local mode and the transformer) can
//!   refuse a record whose `data` does not match, with the JSON Pointer of
//!   the first violation and the rule it broke.
//! - [`check_generated_schema`] keeps a checked-in schema generated from a
//!   Rust type honest: a test calls it, and it fails when the file is stale
//!   (`TIDELINE_UPDATE_SCHEMAS=1` rewrites it).
//!
//! This crate is an adapter: the core holds only the trait, so the validator
//! never enters `tideline-core`.

#![deny(missing_docs)]

pub mod validate;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tideline_core::data_validator::{DataValidator, DataViolation};
use tideline_core::{Classify, ErrorClass};
pub use validate::{Schema, SchemaError, Violation};

/// The environment variable of the transformer naming the registry file.
pub const REGISTRY_ENV: &str = "TIDELINE_SCHEMA_REGISTRY";

/// What the registry does with an event type it does not list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownTypes {
    /// Let it through unchecked (the default: schemas can be adopted type by type).
    #[default]
    Accept,
    /// Refuse it: every type must have a schema.
    Refuse,
}

/// One entry of the registry file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEntry {
    /// The schema file, relative to the registry file.
    pub schema: PathBuf,
    /// The schema's version (bump it on an incompatible change).
    pub version: u32,
    /// The Rust type it is generated from, when it is (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_from: Option<String>,
}

/// The registry file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryFile {
    /// What to do with an unlisted type.
    #[serde(default)]
    pub unknown_types: UnknownTypes,
    /// Event type → schema.
    pub types: BTreeMap<String, RegistryEntry>,
}

/// Why a registry could not be loaded. Configuration errors: permanent.
#[derive(Debug, thiserror::Error)]
pub enum RegistryLoadError {
    /// A file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not the JSON expected.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// serde_json's message.
        message: String,
    },
    /// A schema uses what the validator does not implement, or a bad `$ref`.
    #[error("{path} (schema of {event_type}): {source}")]
    Schema {
        /// The schema file.
        path: PathBuf,
        /// Its event type.
        event_type: String,
        /// The problem.
        source: SchemaError,
    },
}

impl Classify for RegistryLoadError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Permanent
    }
}

/// One loaded type.
#[derive(Debug, Clone)]
pub struct LoadedType {
    /// Its registry entry.
    pub entry: RegistryEntry,
    /// The schema file's path as loaded.
    pub path: PathBuf,
    /// The compiled schema.
    pub schema: Schema,
}

/// A loaded registry: every schema compiled.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    unknown_types: UnknownTypes,
    types: BTreeMap<String, LoadedType>,
}

fn read(path: &Path) -> Result<Value, RegistryLoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| RegistryLoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| RegistryLoadError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl SchemaRegistry {
    /// Loads the registry file and every schema it lists.
    pub fn load(path: &Path) -> Result<Self, RegistryLoadError> {
        let file: RegistryFile =
            serde_json::from_value(read(path)?).map_err(|e| RegistryLoadError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut types = BTreeMap::new();
        for (event_type, entry) in file.types {
            let schema_path = dir.join(&entry.schema);
            let schema = Schema::compile(read(&schema_path)?).map_err(|source| {
                RegistryLoadError::Schema {
                    path: schema_path.clone(),
                    event_type: event_type.clone(),
                    source,
                }
            })?;
            types.insert(
                event_type,
                LoadedType {
                    entry,
                    path: schema_path,
                    schema,
                },
            );
        }
        Ok(Self {
            unknown_types: file.unknown_types,
            types,
        })
    }

    /// The types, sorted.
    pub fn types(&self) -> &BTreeMap<String, LoadedType> {
        &self.types
    }

    /// The policy for unlisted types.
    pub fn unknown_types(&self) -> UnknownTypes {
        self.unknown_types
    }

    /// Checks `data` of `event_type`.
    pub fn check(&self, event_type: &str, data: &Value) -> Result<(), DataViolation> {
        let Some(loaded) = self.types.get(event_type) else {
            return match self.unknown_types {
                UnknownTypes::Accept => Ok(()),
                UnknownTypes::Refuse => Err(DataViolation {
                    pointer: String::new(),
                    rule: "registry".into(),
                    message: format!(
                        "event type {event_type:?} has no schema in the registry, which refuses unknown types"
                    ),
                    schema_version: 0,
                }),
            };
        };
        loaded.schema.validate(data).map_err(|v| DataViolation {
            pointer: v.pointer,
            rule: v.rule.to_string(),
            message: v.message,
            schema_version: loaded.entry.version,
        })
    }
}

impl DataValidator for SchemaRegistry {
    fn validate(&self, event_type: &str, data: &Value) -> Result<(), DataViolation> {
        self.check(event_type, data)
    }
}

/// A checked-in generated schema that no longer matches its Rust type.
#[derive(Debug, thiserror::Error)]
pub enum GeneratedSchemaError {
    /// The registry does not list the type.
    #[error("{registry}: event type {event_type:?} has no schema (add it to \"types\")")]
    Missing {
        /// The registry file.
        registry: PathBuf,
        /// The type.
        event_type: String,
    },
    /// The file differs from what the type generates.
    #[error("{path}: stale schema for {event_type}; regenerate with TIDELINE_UPDATE_SCHEMAS=1")]
    Stale {
        /// The schema file.
        path: PathBuf,
        /// The type.
        event_type: String,
    },
    /// Loading failed.
    #[error(transparent)]
    Load(#[from] RegistryLoadError),
    /// Writing the regenerated file failed.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Checks that the registry at `registry` lists `event_type` and that its
/// checked-in schema equals `generated` (the schemars output of the Rust
/// payload type). With `TIDELINE_UPDATE_SCHEMAS=1`, a stale file is
/// rewritten instead (a missing registry entry is still an error: adding a
/// type is a reviewed change).
pub fn check_generated_schema(
    registry: &Path,
    event_type: &str,
    generated: &Value,
) -> Result<(), GeneratedSchemaError> {
    let file: RegistryFile =
        serde_json::from_value(read(registry)?).map_err(|e| RegistryLoadError::Parse {
            path: registry.to_path_buf(),
            message: e.to_string(),
        })?;
    let entry = file
        .types
        .get(event_type)
        .ok_or_else(|| GeneratedSchemaError::Missing {
            registry: registry.to_path_buf(),
            event_type: event_type.to_string(),
        })?;
    let path = registry
        .parent()
        .unwrap_or(Path::new("."))
        .join(&entry.schema);
    let current = std::fs::read_to_string(&path).ok();
    let wanted = format!(
        "{}\n",
        serde_json::to_string_pretty(generated).unwrap_or_default()
    );
    if current.as_deref() == Some(wanted.as_str()) {
        return Ok(());
    }
    if std::env::var("TIDELINE_UPDATE_SCHEMAS").as_deref() == Ok("1") {
        return std::fs::write(&path, wanted)
            .map_err(|source| GeneratedSchemaError::Write { path, source });
    }
    Err(GeneratedSchemaError::Stale {
        path,
        event_type: event_type.to_string(),
    })
}
