//! The pattern tester's explanation: the first field, in pattern order, that
//! decided a miss, and every tested field on a match.
#![allow(clippy::unwrap_used)]

use tideline_pattern::Pattern;

fn explain(pattern: &str, event: &str) -> (bool, Option<String>) {
    let v = Pattern::parse(pattern)
        .unwrap()
        .explain_json(event)
        .unwrap();
    (v.matched, v.first_miss)
}

#[test]
fn a_miss_names_the_first_field_that_failed_in_pattern_order() {
    let pattern = r#"{"source":["tideline"],"detail-type":["OrderPlaced"],"detail":{"data":{"total":[{"numeric":[">",100]}]}}}"#;
    assert_eq!(
        explain(
            pattern,
            r#"{"source":"tideline","detail-type":"OrderPlaced","detail":{"data":{"total":50}}}"#
        ),
        (false, Some("detail.data.total".into()))
    );
    // Two fields fail: the first in the pattern is named.
    assert_eq!(
        explain(
            pattern,
            r#"{"source":"other","detail-type":"OrderPlaced","detail":{"data":{"total":50}}}"#
        ),
        (false, Some("source".into()))
    );
    // A missing object is named down to the leaf the pattern wanted.
    assert_eq!(
        explain(
            pattern,
            r#"{"source":"tideline","detail-type":"OrderPlaced"}"#
        ),
        (false, Some("detail.data.total".into()))
    );
    assert_eq!(
        explain(
            pattern,
            r#"{"source":"tideline","detail-type":"OrderPlaced","detail":{"data":{"total":150}}}"#
        ),
        (true, None)
    );
}

#[test]
fn an_or_group_with_no_matching_alternative_is_named() {
    let pattern = r#"{"detail":{"$or":[{"a":[1]},{"b":[2]}]}}"#;
    assert_eq!(
        explain(pattern, r#"{"detail":{"a":0,"b":0}}"#),
        (false, Some("detail.$or".into()))
    );
    assert_eq!(explain(pattern, r#"{"detail":{"b":2}}"#), (true, None));
}

#[test]
fn a_match_lists_every_tested_field() {
    let v = Pattern::parse(
        r#"{"source":["a"],"detail":{"x":[{"exists":true}],"$or":[{"y":[1]},{"z":[2]}]}}"#,
    )
    .unwrap()
    .explain_json(r#"{"source":"a","detail":{"x":1,"z":2}}"#)
    .unwrap();
    assert!(v.matched);
    assert_eq!(v.tested, ["source", "detail.x", "detail.y", "detail.z"]);
}
