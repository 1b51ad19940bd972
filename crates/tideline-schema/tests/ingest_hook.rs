//! The registry plugged into the core's ingest admission (the path local mode
//! and the transformer both take): a record whose `data` breaks its type's
//! schema is refused with the pointer and rule; others pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use std::path::Path;
use tideline_core::data_validator::SharedDataValidator;
use tideline_core::ingest::{IngestConfig, RejectReason, admit};
use tideline_schema::SchemaRegistry;

fn config() -> IngestConfig {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/registry.json");
    let registry = SchemaRegistry::load(&file).unwrap();
    IngestConfig {
        data_validator: Some(SharedDataValidator::new(registry)),
        ..IngestConfig::default()
    }
}

const GOOD: &str = r#"{"entity_id":"o-1","type":"OrderPlaced","data":{"order_no":"SO-100001","currency":"EUR","items":[{"sku":"A","qty":1,"unit_price":2.5}],"total":2.5}}"#;

#[test]
fn refuses_data_that_breaks_its_schema_with_pointer_and_rule() {
    let config = config();
    assert!(admit(&config, GOOD.as_bytes(), Utc::now()).is_ok());
    let bad = GOOD.replace(r#""qty":1"#, r#""qty":0"#);
    let err = admit(&config, bad.as_bytes(), Utc::now()).unwrap_err();
    match &err {
        RejectReason::SchemaViolation {
            event_type,
            pointer,
            rule,
            schema_version,
            ..
        } => {
            assert_eq!(event_type, "OrderPlaced");
            assert_eq!(pointer, "/items/0/qty");
            assert_eq!(rule, "minimum");
            assert_eq!(*schema_version, 1);
        }
        other => panic!("expected a schema violation, got {other}"),
    }
    assert_eq!(err.code(), "SchemaViolation");
    assert!(err.to_string().contains("/items/0/qty"), "{err}");
    // An unlisted type passes (the registry's unknown_types is "accept").
    let other = r#"{"entity_id":"o-1","type":"OrderPaid","data":{"anything":true}}"#;
    assert!(admit(&config, other.as_bytes(), Utc::now()).is_ok());
    // Without a validator, the bad record is admitted as before.
    assert!(admit(&IngestConfig::default(), bad.as_bytes(), Utc::now()).is_ok());
}
