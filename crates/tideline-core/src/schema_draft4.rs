//! A JSON Schema Draft 4 rendering of the integration event schema.
//!
//! `schemas/integration-event.schema.json` is JSON Schema 2020-12 (what
//! schemars writes), but the EventBridge schema registry only accepts
//! `OpenApi3` and `JSONSchemaDraft4`. Registering the 2020-12 text as Draft 4
//! would make the registry read `$defs`/`$ref` wrongly, so Terraform registers
//! `schemas/integration-event.draft4.schema.json`, rendered here from the same
//! Rust types; a test keeps the file in step.
//!
//! Only the rewrites this schema needs are made, and a keyword Draft 4 does
//! not know is refused, so a future change to the types cannot silently
//! produce a schema that means something else.

use serde_json::{Map, Value};

/// The `$schema` of a Draft 4 document.
pub const DRAFT4: &str = "http://json-schema.org/draft-04/schema#";

/// Keywords of later drafts that have no Draft 4 meaning.
const UNSUPPORTED: &[&str] = &[
    "$anchor",
    "$dynamicAnchor",
    "$dynamicRef",
    "$vocabulary",
    "contains",
    "dependentRequired",
    "dependentSchemas",
    "else",
    "if",
    "maxContains",
    "minContains",
    "prefixItems",
    "propertyNames",
    "then",
    "unevaluatedItems",
    "unevaluatedProperties",
];

/// The integration event schema as Draft 4 JSON text (pretty, newline-terminated).
pub fn integration_event_schema_draft4() -> Result<String, String> {
    let schema: Value = serde_json::from_str(&crate::envelope::integration_event_schema())
        .map_err(|e| format!("the 2020-12 schema is not JSON: {e}"))?;
    let draft4 = to_draft4(schema)?;
    let mut text = serde_json::to_string_pretty(&draft4).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

/// Rewrites a 2020-12 schema produced by schemars into Draft 4.
pub fn to_draft4(schema: Value) -> Result<Value, String> {
    let mut out = rewrite(schema, "#")?;
    if let Value::Object(map) = &mut out {
        map.insert("$schema".into(), Value::String(DRAFT4.into()));
    }
    Ok(out)
}

fn rewrite(value: Value, at: &str) -> Result<Value, String> {
    match value {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, v) in map {
                let here = format!("{at}/{key}");
                if UNSUPPORTED.contains(&key.as_str()) {
                    return Err(format!(
                        "{here}: `{key}` has no JSON Schema Draft 4 equivalent"
                    ));
                }
                match key.as_str() {
                    // Draft 4 keeps reusable schemas under `definitions`.
                    "$defs" => {
                        out.insert("definitions".into(), rewrite(v, &here)?);
                    }
                    "$ref" => {
                        let target = v
                            .as_str()
                            .ok_or_else(|| format!("{here}: `$ref` is not a string"))?;
                        let target = target.replace("#/$defs/", "#/definitions/");
                        out.insert(key, Value::String(target));
                    }
                    // `const` came with Draft 6; a one-value `enum` says the same.
                    "const" => {
                        out.insert("enum".into(), Value::Array(vec![v]));
                    }
                    // Draft 6 made these numbers; in Draft 4 they are booleans
                    // qualifying `minimum`/`maximum`.
                    "exclusiveMinimum" | "exclusiveMaximum" if v.is_number() => {
                        let bound = if key == "exclusiveMinimum" {
                            "minimum"
                        } else {
                            "maximum"
                        };
                        out.insert(bound.into(), v);
                        out.insert(key, Value::Bool(true));
                    }
                    // `examples` is Draft 6; Draft 4 ignores unknown keywords,
                    // but the registry's validator may not: drop it.
                    "examples" => {}
                    // Inside `properties` and `definitions` the keys are names,
                    // not keywords.
                    "properties" | "patternProperties" | "definitions" => {
                        out.insert(key, rewrite_named(v, &here)?);
                    }
                    _ => {
                        out.insert(key, rewrite(v, &here)?);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| rewrite(v, &format!("{at}/{i}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        // `true`/`false` as a whole schema is Draft 6.
        Value::Bool(_) if at.ends_with("/items") || at.ends_with("/additionalItems") => Err(
            format!("{at}: a boolean schema has no JSON Schema Draft 4 equivalent"),
        ),
        other => Ok(other),
    }
}

/// A map of names to schemas (`properties`, `definitions`): rewrite each schema.
fn rewrite_named(value: Value, at: &str) -> Result<Value, String> {
    match value {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (name, schema) in map {
                let here = format!("{at}/{name}");
                out.insert(name, rewrite(schema, &here)?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PATH: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../schemas/integration-event.draft4.schema.json"
    );

    #[test]
    fn draft4_schema_on_disk_is_current() {
        let current = integration_event_schema_draft4();
        assert!(current.is_ok(), "rendering failed: {current:?}");
        let current = current.unwrap_or_default();
        if std::env::var_os("TIDELINE_UPDATE_SCHEMAS").is_some() {
            assert!(std::fs::write(PATH, &current).is_ok());
            return;
        }
        let on_disk = std::fs::read_to_string(PATH).unwrap_or_default();
        assert!(
            on_disk == current,
            "schemas/integration-event.draft4.schema.json is stale: run `TIDELINE_UPDATE_SCHEMAS=1 cargo test -p tideline-core schema`"
        );
    }

    #[test]
    fn rewrites_defs_refs_const_and_exclusive_bounds() {
        let out = to_draft4(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "properties": {
                "const": {"const": 1},
                "n": {"type": "integer", "exclusiveMinimum": 0},
                "d": {"$ref": "#/$defs/D"}
            },
            "$defs": {"D": {"type": "string", "examples": ["x"]}}
        }));
        assert_eq!(
            out,
            Ok(json!({
                "$schema": DRAFT4,
                "properties": {
                    "const": {"enum": [1]},
                    "n": {"type": "integer", "minimum": 0, "exclusiveMinimum": true},
                    "d": {"$ref": "#/definitions/D"}
                },
                "definitions": {"D": {"type": "string"}}
            }))
        );
    }

    #[test]
    fn refuses_keywords_without_a_draft4_meaning() {
        let out = to_draft4(json!({"properties": {"a": {"if": {}, "then": {}}}}));
        assert!(out.is_err_and(|e| e.contains("#/properties/a/if")));
    }

    #[test]
    fn the_rendering_has_no_2020_12_keywords_left() {
        let text = integration_event_schema_draft4().unwrap_or_default();
        assert!(text.contains(DRAFT4));
        assert!(!text.contains("$defs"));
        assert!(!text.contains("2020-12"));
    }
}
