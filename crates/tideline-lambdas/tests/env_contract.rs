//! `env-contract.json` (which the Terraform tests check) says exactly what
//! each config loader reads: its required and its optional variables.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::collections::BTreeSet;
use tideline_aws::config::*;

type Loader = fn(&dyn Fn(&'static str) -> Option<String>) -> Result<(), ConfigError>;

fn probe(load: Loader) -> (BTreeSet<String>, BTreeSet<String>) {
    // Every variable the loader asks for, given a value that parses.
    let read = RefCell::new(BTreeSet::new());
    let value = |name: &'static str| match name {
        MAX_RECORD_BYTES
        | EVENT_TTL_DAYS
        | REJECTED_TTL_DAYS
        | MAX_CONCURRENT_SENDS
        | MAX_CONCURRENT_ENTITIES => "7".to_string(),
        MAX_MESSAGE_BYTES => "262144".to_string(),
        FIELD_MAP => "{}".to_string(),
        BUS_MODE => "ordered".to_string(),
        BUNDLE_MAX_EVENTS => "10".to_string(),
        ORDERED_BUS_ARN => {
            "arn:aws:events:eu-west-1:123456789012:event-busv2/b/abcdefghij0123456789abcde"
                .to_string()
        }
        _ => "x".to_string(),
    };
    load(&|name| {
        read.borrow_mut().insert(name.to_string());
        Some(value(name))
    })
    .unwrap();
    let read = read.into_inner();
    // Required: leaving it out fails with its name.
    let mut required = BTreeSet::new();
    for name in &read {
        let r = load(&|n| (n != name.as_str()).then(|| value(n)));
        if let Err(ConfigError::Missing { variable }) = r {
            assert_eq!(variable, name);
            required.insert(name.clone());
        }
    }
    let mut optional: BTreeSet<String> = read.difference(&required).cloned().collect();
    optional.insert(RUST_LOG.to_string()); // read by logging::init in every binary
    (required, optional)
}

fn set(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn env_contract_matches_the_loaders() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/env-contract.json")).unwrap();
    let contract: serde_json::Value = serde_json::from_str(&text).unwrap();
    let loaders: [(&str, Loader); 5] = [
        ("transformer", |e| {
            TransformerConfig::load(&|n| e(n)).map(drop)
        }),
        ("event-storer", |e| StorerConfig::load(&|n| e(n)).map(drop)),
        ("event-emitter", |e| {
            EmitterConfig::load(&|n| e(n)).map(drop)
        }),
        ("query-api", |e| QueryConfig::load(&|n| e(n)).map(drop)),
        ("command-api", |e| {
            CommandApiConfig::load(&|n| e(n)).map(drop)
        }),
    ];
    for (function, load) in loaders {
        let (required, optional) = probe(load);
        assert_eq!(
            required,
            set(&contract[function]["required"]),
            "{function}: required"
        );
        assert_eq!(
            optional,
            set(&contract[function]["optional"]),
            "{function}: optional"
        );
    }
}
