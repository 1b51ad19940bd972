//! Pattern JSON → matcher tree, with EventBridge's validation rules.
//!
//! The checks follow event-ruler's `JsonRuleCompiler` (the engine EventBridge
//! runs); the messages are ours and always name the JSON path at fault.

use std::net::IpAddr;

use crate::error::PatternError;
use crate::json::{JsonNumber, JsonValue};
use crate::matcher::{
    AnythingBut, Cidr, Field, FieldKind, Folded, Leaf, Node, NumericRange, ValueMatcher, Wildcard,
    comparable,
};

const OPERATORS: &[&str] = &[
    "prefix",
    "suffix",
    "equals-ignore-case",
    "wildcard",
    "anything-but",
    "numeric",
    "exists",
    "cidr",
];

type Result<T> = std::result::Result<T, PatternError>;

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn indexed(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// Compiles a whole pattern, which must be a non-empty JSON object.
pub(crate) fn compile(pattern: &JsonValue) -> Result<Node> {
    match pattern {
        JsonValue::Object(members) => object(members, "", false),
        other => Err(PatternError::invalid(
            "",
            format!(
                "a pattern must be a JSON object, found {}",
                other.type_name()
            ),
        )),
    }
}

fn object(members: &[(String, JsonValue)], path: &str, in_or: bool) -> Result<Node> {
    if members.is_empty() {
        return Err(PatternError::invalid(path, "empty objects are not allowed"));
    }
    let mut node = Node {
        fields: Vec::new(),
        ors: Vec::new(),
    };
    for (key, value) in members {
        if key == "$or" {
            node.ors.push(or_group(value, &child(path, key))?);
            continue;
        }
        let here = child(path, key);
        if in_or && OPERATORS.contains(&key.as_str()) {
            return Err(PatternError::invalid(
                &here,
                format!(
                    "\"{key}\" is an operator name and cannot be used as a field name inside \"$or\""
                ),
            ));
        }
        let kind = match value {
            JsonValue::Object(inner) => FieldKind::Object(object(inner, &here, in_or)?),
            JsonValue::Array(items) => FieldKind::Leaf(leaf(items, &here)?),
            other => {
                return Err(PatternError::invalid(
                    &here,
                    format!(
                        "a pattern value must be an array (of values or operators) or an object, found {}; \
                         write [{}] to match it exactly",
                        other.type_name(),
                        render(other)
                    ),
                ));
            }
        };
        // On a repeated key the last one wins, as with serde_json.
        node.fields.retain(|f| &*f.key != key.as_str());
        node.fields.push(Field {
            key: key.as_str().into(),
            kind,
        });
    }
    // Cheap leaf checks first; descending into objects costs more.
    node.fields
        .sort_by_key(|f| matches!(f.kind, FieldKind::Object(_)));
    Ok(node)
}

fn or_group(value: &JsonValue, path: &str) -> Result<Vec<Node>> {
    let JsonValue::Array(items) = value else {
        return Err(PatternError::invalid(
            path,
            format!(
                "\"$or\" must be an array of at least 2 objects, found {}",
                value.type_name()
            ),
        ));
    };
    if items.len() < 2 {
        return Err(PatternError::invalid(
            path,
            format!(
                "\"$or\" must have at least 2 alternatives, found {}",
                items.len()
            ),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            JsonValue::Object(members) => object(members, &indexed(path, i), true),
            other => Err(PatternError::invalid(
                &indexed(path, i),
                format!(
                    "each \"$or\" alternative must be an object, found {}",
                    other.type_name()
                ),
            )),
        })
        .collect()
}

fn render(value: &JsonValue) -> String {
    match value {
        JsonValue::Null => "null".into(),
        JsonValue::Bool(b) => b.to_string(),
        JsonValue::Number(n) => n.literal.clone(),
        JsonValue::String(s) => format!("{s:?}"),
        JsonValue::Array(_) => "[...]".into(),
        JsonValue::Object(_) => "{...}".into(),
    }
}

fn leaf(items: &[JsonValue], path: &str) -> Result<Leaf> {
    if items.is_empty() {
        return Err(PatternError::invalid(path, "empty arrays are not allowed"));
    }
    let mut leaf = Leaf::default();
    for (i, item) in items.iter().enumerate() {
        let here = indexed(path, i);
        match item {
            JsonValue::String(s) => leaf.values.push(exact_string(s)),
            JsonValue::Number(n) => leaf.values.push(exact_number(n)),
            JsonValue::Bool(b) => leaf.values.push(ValueMatcher::Bool(*b)),
            JsonValue::Null => leaf.values.push(ValueMatcher::Null),
            JsonValue::Object(members) => match operator(members, &here)? {
                Operand::Exists(true) => leaf.exists_true = true,
                Operand::Exists(false) => leaf.exists_false = true,
                Operand::Value(m) => leaf.values.push(m),
            },
            JsonValue::Array(_) => {
                return Err(PatternError::invalid(
                    &here,
                    "a match value must be a string, number, boolean, null or an operator object, found an array",
                ));
            }
        }
    }
    Ok(leaf)
}

fn exact_string(s: &str) -> ValueMatcher {
    ValueMatcher::String {
        value: s.into(),
        ip: s.parse::<IpAddr>().ok(),
    }
}

fn exact_number(n: &JsonNumber) -> ValueMatcher {
    ValueMatcher::Number {
        literal: n.literal.as_str().into(),
        comparable: comparable(n.value),
    }
}

enum Operand {
    Exists(bool),
    Value(ValueMatcher),
}

fn operator(members: &[(String, JsonValue)], path: &str) -> Result<Operand> {
    let [(name, operand)] = members else {
        if members.is_empty() {
            return Err(PatternError::invalid(
                path,
                "an operator object must have exactly one key, found none",
            ));
        }
        let names: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
        return Err(PatternError::invalid(
            path,
            format!(
                "an operator object must have exactly one key, found {}: {}",
                names.len(),
                names.join(", ")
            ),
        ));
    };
    let here = child(path, name);
    let path = here.as_str();
    Ok(Operand::Value(match name.as_str() {
        "exists" => match operand {
            JsonValue::Bool(b) => return Ok(Operand::Exists(*b)),
            other => {
                return Err(PatternError::invalid(
                    path,
                    format!(
                        "\"exists\" must be true or false, found {}",
                        other.type_name()
                    ),
                ));
            }
        },
        "prefix" => match operand {
            JsonValue::String(s) => ValueMatcher::Prefix(s.as_str().into()),
            JsonValue::Object(inner) => {
                ValueMatcher::PrefixIgnoreCase(Folded::new(ignore_case_in(inner, path, "prefix")?))
            }
            other => {
                return Err(wrong_type(
                    path,
                    "prefix",
                    "a string or {\"equals-ignore-case\": string}",
                    other,
                ));
            }
        },
        "suffix" => match operand {
            JsonValue::String(s) => ValueMatcher::Suffix(s.as_str().into()),
            JsonValue::Object(inner) => {
                ValueMatcher::SuffixIgnoreCase(Folded::new(ignore_case_in(inner, path, "suffix")?))
            }
            other => {
                return Err(wrong_type(
                    path,
                    "suffix",
                    "a string or {\"equals-ignore-case\": string}",
                    other,
                ));
            }
        },
        "equals-ignore-case" => {
            ValueMatcher::EqualsIgnoreCase(Folded::new(string_operand(operand, path, name)?))
        }
        "wildcard" => ValueMatcher::Wildcard(wildcard(string_operand(operand, path, name)?, path)?),
        "cidr" => ValueMatcher::Cidr(cidr(string_operand(operand, path, name)?, path)?),
        "numeric" => match operand {
            JsonValue::Array(terms) => ValueMatcher::Numeric(numeric(terms, path)?),
            other => {
                return Err(wrong_type(
                    path,
                    "numeric",
                    "an array such as [\">\", 0, \"<=\", 5]",
                    other,
                ));
            }
        },
        "anything-but" => ValueMatcher::AnythingBut(anything_but(operand, path)?),
        unknown => {
            return Err(PatternError::invalid(
                path,
                format!(
                    "unknown operator \"{unknown}\"; expected one of: {}",
                    OPERATORS.join(", ")
                ),
            ));
        }
    }))
}

fn wrong_type(path: &str, operator: &str, expected: &str, found: &JsonValue) -> PatternError {
    PatternError::invalid(
        path,
        format!(
            "\"{operator}\" must be {expected}, found {}",
            found.type_name()
        ),
    )
}

fn string_operand<'a>(operand: &'a JsonValue, path: &str, operator: &str) -> Result<&'a str> {
    match operand {
        JsonValue::String(s) => Ok(s),
        other => Err(wrong_type(path, operator, "a string", other)),
    }
}

/// The string in `{"equals-ignore-case": "..."}` nested inside `prefix` or `suffix`.
fn ignore_case_in<'a>(
    members: &'a [(String, JsonValue)],
    path: &str,
    outer: &str,
) -> Result<&'a str> {
    match members {
        [(key, value)] if key == "equals-ignore-case" => {
            string_operand(value, &child(path, key), key)
        }
        _ => Err(PatternError::invalid(
            path,
            format!(
                "\"{outer}\" accepts a string or an object with the single key \"equals-ignore-case\""
            ),
        )),
    }
}

/// Splits a wildcard at its unescaped stars; `\*` is a star and `\\` a backslash.
fn wildcard(text: &str, path: &str) -> Result<Wildcard> {
    let bytes = text.as_bytes();
    let mut parts: Vec<Box<str>> = Vec::new();
    let mut current = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '*' => {
                if bytes.get(i + 1) == Some(&b'*') {
                    return Err(PatternError::invalid(
                        path,
                        format!(
                            "consecutive wildcard characters (\"**\") at position {i} are not allowed"
                        ),
                    ));
                }
                parts.push(std::mem::take(&mut current).into());
            }
            '\\' => match chars.next() {
                Some((_, escaped @ ('*' | '\\'))) => current.push(escaped),
                _ => {
                    return Err(PatternError::invalid(
                        path,
                        format!(
                            "invalid escape at position {i}: a backslash may only escape '*' or '\\'"
                        ),
                    ));
                }
            },
            other => current.push(other),
        }
    }
    parts.push(current.into());
    Ok(Wildcard { parts })
}

fn cidr(text: &str, path: &str) -> Result<Cidr> {
    let bad = |why: &str| PatternError::invalid(path, format!("malformed CIDR {text:?}: {why}"));
    let (address, bits) = text
        .split_once('/')
        .ok_or_else(|| bad("one '/' is required"))?;
    if bits.contains('/') {
        return Err(bad("one '/' is required"));
    }
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the mask bits must be a non-negative integer"));
    }
    let bits: u32 = bits
        .parse()
        .map_err(|_| bad("the mask bits are too large"))?;
    let address: IpAddr = address
        .parse()
        .map_err(|_| bad("not an IPv4 or IPv6 address"))?;
    // event-ruler rejects /32 and /128: a single address is matched with an exact string.
    let (v6, width, base) = match address {
        IpAddr::V4(a) => (false, 32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (true, 128, u128::from(a)),
    };
    if bits >= width {
        return Err(bad(&format!(
            "{} mask bits must be less than {width}",
            if v6 { "IPv6" } else { "IPv4" }
        )));
    }
    let host_bits = width - bits; // 1..=width
    let host_mask: u128 = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    Ok(Cidr {
        v6,
        first: base & !host_mask,
        last: base | host_mask,
    })
}

fn numeric_value(value: Option<&JsonValue>, operator: &str, path: &str) -> Result<(i64, String)> {
    match value {
        Some(JsonValue::Number(n)) => match comparable(n.value) {
            Some(c) => Ok((c, n.literal.clone())),
            None => Err(PatternError::invalid(
                path,
                format!(
                    "numeric value {} is outside the supported range -5.0e9 to 5.0e9",
                    n.literal
                ),
            )),
        },
        Some(other) => Err(PatternError::invalid(
            path,
            format!(
                "the operand of \"{operator}\" must be a number, found {}",
                other.type_name()
            ),
        )),
        None => Err(PatternError::invalid(
            path,
            format!("\"{operator}\" is missing its number"),
        )),
    }
}

fn numeric(terms: &[JsonValue], path: &str) -> Result<NumericRange> {
    let op_at = |i: usize| -> Result<&str> {
        match terms.get(i) {
            Some(JsonValue::String(s)) => Ok(s.as_str()),
            Some(other) => Err(PatternError::invalid(
                path,
                format!(
                    "expected a comparison operator (=, <, <=, >, >=) at position {i}, found {}",
                    render(other)
                ),
            )),
            None => Err(PatternError::invalid(
                path,
                "\"numeric\" needs an operator and a number, e.g. [\">\", 0]",
            )),
        }
    };
    let first = op_at(0)?;
    let (value, literal) = match first {
        "=" | "<" | "<=" | ">" | ">=" => numeric_value(terms.get(1), first, path)?,
        other => {
            return Err(PatternError::invalid(
                path,
                format!("unknown numeric operator {other:?}; expected one of =, <, <=, >, >="),
            ));
        }
    };
    let too_many = || {
        PatternError::invalid(
            path,
            format!("too many terms in \"numeric\" after {first:?}"),
        )
    };
    let range = match first {
        "=" => NumericRange {
            low: Some((value, false)),
            high: Some((value, false)),
        },
        "<" | "<=" => NumericRange {
            low: None,
            high: Some((value, first == "<")),
        },
        _ => NumericRange {
            low: Some((value, first == ">")),
            high: None,
        },
    };
    if terms.len() == 2 {
        return Ok(range);
    }
    if matches!(first, "=" | "<" | "<=") {
        return Err(too_many());
    }
    let second = op_at(2)?;
    if !matches!(second, "<" | "<=") {
        return Err(PatternError::invalid(
            path,
            format!("a range lower bound must be followed by \"<\" or \"<=\", found {second:?}"),
        ));
    }
    let (top, top_literal) = numeric_value(terms.get(3), second, path)?;
    if terms.len() > 4 {
        return Err(PatternError::invalid(
            path,
            "too many terms in \"numeric\"; a range has at most 4",
        ));
    }
    // event-ruler requires bottom < top (at its 6-decimal precision), even for >= and <=.
    if value >= top {
        return Err(PatternError::invalid(
            path,
            format!(
                "numeric range is empty: {first} {literal} and {second} {top_literal} (the lower bound must be below the upper bound)"
            ),
        ));
    }
    Ok(NumericRange {
        low: range.low,
        high: Some((top, second == "<")),
    })
}

fn anything_but(operand: &JsonValue, path: &str) -> Result<AnythingBut> {
    match operand {
        JsonValue::String(s) => Ok(AnythingBut::Strings(vec![s.as_str().into()])),
        JsonValue::Number(_) => {
            let (c, _) = numeric_value(Some(operand), "anything-but", path)?;
            Ok(AnythingBut::Numbers(vec![c]))
        }
        JsonValue::Array(items) => {
            if items.is_empty() {
                return Err(PatternError::invalid(
                    path,
                    "\"anything-but\" list must not be empty",
                ));
            }
            if items.iter().all(|v| matches!(v, JsonValue::String(_))) {
                Ok(AnythingBut::Strings(
                    items
                        .iter()
                        .filter_map(|v| {
                            if let JsonValue::String(s) = v {
                                Some(s.as_str().into())
                            } else {
                                None
                            }
                        })
                        .collect(),
                ))
            } else if items.iter().all(|v| matches!(v, JsonValue::Number(_))) {
                let numbers = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        numeric_value(Some(v), "anything-but", &indexed(path, i)).map(|(c, _)| c)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(AnythingBut::Numbers(numbers))
            } else {
                Err(PatternError::invalid(
                    path,
                    "\"anything-but\" list must hold only strings or only numbers (no mix, null, booleans, arrays or objects)",
                ))
            }
        }
        JsonValue::Object(members) => {
            let [(name, inner)] = members.as_slice() else {
                return Err(PatternError::invalid(
                    path,
                    "\"anything-but\" object must have exactly one key: prefix, suffix, equals-ignore-case or wildcard",
                ));
            };
            let here = child(path, name);
            let strings = match name.as_str() {
                "prefix" | "suffix" | "equals-ignore-case" | "wildcard" => {
                    strings_operand(inner, &here, name)?
                }
                other => {
                    return Err(PatternError::invalid(
                        &here,
                        format!(
                            "unsupported operator \"{other}\" inside \"anything-but\"; expected prefix, suffix, equals-ignore-case or wildcard"
                        ),
                    ));
                }
            };
            match name.as_str() {
                "prefix" | "suffix" => {
                    if strings.iter().any(|s| s.is_empty()) {
                        return Err(PatternError::invalid(
                            &here,
                            format!("an empty {name} is not allowed in \"anything-but\""),
                        ));
                    }
                    let values = strings.into_iter().map(Box::from).collect();
                    Ok(if name == "prefix" {
                        AnythingBut::Prefixes(values)
                    } else {
                        AnythingBut::Suffixes(values)
                    })
                }
                "equals-ignore-case" => Ok(AnythingBut::IgnoreCase(
                    strings.into_iter().map(Folded::new).collect(),
                )),
                _ => Ok(AnythingBut::Wildcards(
                    strings
                        .into_iter()
                        .map(|s| wildcard(s, &here))
                        .collect::<Result<Vec<_>>>()?,
                )),
            }
        }
        other => Err(PatternError::invalid(
            path,
            format!(
                "\"anything-but\" must be a string, a number, a list of strings or numbers, or an operator object, found {}",
                other.type_name()
            ),
        )),
    }
}

/// A string, or a non-empty list of strings.
fn strings_operand<'a>(value: &'a JsonValue, path: &str, operator: &str) -> Result<Vec<&'a str>> {
    match value {
        JsonValue::String(s) => Ok(vec![s.as_str()]),
        JsonValue::Array(items) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                JsonValue::String(s) => Ok(s.as_str()),
                other => Err(wrong_type(
                    path,
                    operator,
                    "a string or a list of strings",
                    other,
                )),
            })
            .collect(),
        JsonValue::Array(_) => Err(PatternError::invalid(
            path,
            format!("\"{operator}\" list must not be empty"),
        )),
        other => Err(wrong_type(
            path,
            operator,
            "a string or a list of strings",
            other,
        )),
    }
}
