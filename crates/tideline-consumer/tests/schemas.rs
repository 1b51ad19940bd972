//! Every registered handler's event type has a schema in `schemas/registry.json`,
//! and each checked-in schema generated from a Rust payload type is current.
//! `TIDELINE_UPDATE_SCHEMAS=1 cargo test -p tideline-consumer --test schemas` regenerates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/orders_registry.rs"]
#[allow(dead_code)]
mod orders_registry;

use std::path::Path;

#[test]
fn every_registered_handler_type_has_a_current_schema() {
    let registry_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/registry.json");
    let registry = orders_registry::registry("read-model").unwrap();
    let handlers = registry.handlers();
    assert!(!handlers.is_empty());
    let mut problems = Vec::new();
    for handler in handlers {
        let generated = serde_json::to_value(&handler.schema).unwrap();
        if let Err(e) =
            tideline_schema::check_generated_schema(&registry_file, &handler.event_type, &generated)
        {
            problems.push(format!("{} ({}): {e}", handler.key, handler.payload_type));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // And the registry as a whole loads (every schema compiles in the ingest validator).
    let loaded = tideline_schema::SchemaRegistry::load(&registry_file).unwrap();
    assert!(loaded.types().contains_key("OrderPlaced"));
}
