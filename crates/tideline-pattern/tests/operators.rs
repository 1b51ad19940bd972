//! Table-driven tests of every operator, matching and not, and of every
//! invalid-pattern case. Examples follow the EventBridge user guide and the
//! event-ruler README where they exist.

use tideline_pattern::{Pattern, PatternError};

/// The event-ruler README's sample event.
const EC2: &str = r#"{
  "version": "0",
  "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "012345679012",
  "time": "2017-10-02T16:24:49Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
  "detail": {
    "c-count": 5,
    "d-count": 3,
    "x-limit": 301.8,
    "source-ip": "10.0.0.33",
    "instance-id": "i-000000aaaaaa00000",
    "state": "running"
  }
}"#;

/// (case name, pattern, event, expected match)
type Case = (&'static str, &'static str, &'static str, bool);

/// Runs each case through both entry points, `matches` (serde_json) and `matches_json` (literal-keeping).
fn run(cases: &[Case]) {
    let mut failures = Vec::new();
    for (name, pattern, event, expected) in cases {
        let p = Pattern::parse(pattern).unwrap_or_else(|e| panic!("{name}: pattern rejected: {e}"));
        let value: serde_json::Value =
            serde_json::from_str(event).unwrap_or_else(|e| panic!("{name}: bad event: {e}"));
        let by_value = p.matches(&value);
        let by_text = p
            .matches_json(event)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let pattern_value: serde_json::Value =
            serde_json::from_str(pattern).unwrap_or_else(|e| panic!("{name}: {e}"));
        let via_from_value = Pattern::from_value(&pattern_value)
            .unwrap_or_else(|e| panic!("{name}: from_value rejected: {e}"))
            .matches(&value);
        if by_value != *expected || by_text != *expected || via_from_value != *expected {
            failures.push(format!(
                "{name}: expected {expected}, matches={by_value}, matches_json={by_text}, from_value={via_from_value}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn exact_values() {
    run(&[
        (
            "readme simple match",
            r#"{"detail-type": ["EC2 Instance State-change Notification"], "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"], "detail": {"state": ["initializing", "running"]}}"#,
            EC2,
            true,
        ),
        ("string mismatch", r#"{"source": ["aws.s3"]}"#, EC2, false),
        (
            "any of a list",
            r#"{"source": ["aws.s3", "aws.ec2"]}"#,
            EC2,
            true,
        ),
        ("case sensitive", r#"{"source": ["AWS.EC2"]}"#, EC2, false),
        (
            "top-level account",
            r#"{"account": ["012345679012"]}"#,
            EC2,
            true,
        ),
        (
            "top-level region and version",
            r#"{"region": ["us-east-1"], "version": ["0"]}"#,
            EC2,
            true,
        ),
        (
            "top-level id",
            r#"{"id": ["ddddd4-aaaa-7777-4444-345dd43cc333"]}"#,
            EC2,
            true,
        ),
        (
            "top-level time",
            r#"{"time": ["2017-10-02T16:24:49Z"]}"#,
            EC2,
            true,
        ),
        (
            "all fields must match",
            r#"{"source": ["aws.ec2"], "region": ["eu-west-1"]}"#,
            EC2,
            false,
        ),
        ("number", r#"{"n": [300]}"#, r#"{"n": 300}"#, true),
        (
            "number other value",
            r#"{"n": [300]}"#,
            r#"{"n": 301}"#,
            false,
        ),
        (
            "number 300.0 equals 300",
            r#"{"n": [300]}"#,
            r#"{"n": 300.0}"#,
            true,
        ),
        (
            "number 3e2 equals 300",
            r#"{"n": [300]}"#,
            r#"{"n": 3e2}"#,
            true,
        ),
        (
            "number 5 vs 5.0 vs 5e0",
            r#"{"n": [5.0]}"#,
            r#"{"n": 5e0}"#,
            true,
        ),
        ("negative zero", r#"{"n": [0]}"#, r#"{"n": -0.0}"#, true),
        (
            "numbers compare to 6 decimals",
            r#"{"n": [1.0000001]}"#,
            r#"{"n": 1}"#,
            true,
        ),
        (
            "6th decimal counts",
            r#"{"n": [1.000001]}"#,
            r#"{"n": 1}"#,
            false,
        ),
        (
            "number does not match string",
            r#"{"n": [5]}"#,
            r#"{"n": "5"}"#,
            false,
        ),
        (
            "string does not match number",
            r#"{"n": ["5"]}"#,
            r#"{"n": 5}"#,
            false,
        ),
        (
            "big number same literal",
            r#"{"n": [123456789012]}"#,
            r#"{"n": 123456789012}"#,
            true,
        ),
        (
            "big number other literal",
            r#"{"n": [123456789012]}"#,
            r#"{"n": 123456789013}"#,
            false,
        ),
        ("true", r#"{"b": [true]}"#, r#"{"b": true}"#, true),
        (
            "true vs false",
            r#"{"b": [true]}"#,
            r#"{"b": false}"#,
            false,
        ),
        (
            "true vs string",
            r#"{"b": [true]}"#,
            r#"{"b": "true"}"#,
            false,
        ),
        (
            "null matches null",
            r#"{"x": [null]}"#,
            r#"{"x": null}"#,
            true,
        ),
        (
            "null does not match missing",
            r#"{"x": [null]}"#,
            r#"{"y": 1}"#,
            false,
        ),
        (
            "null does not match empty string",
            r#"{"x": [null]}"#,
            r#"{"x": ""}"#,
            false,
        ),
        (
            "empty string matches empty string",
            r#"{"x": [""]}"#,
            r#"{"x": ""}"#,
            true,
        ),
        (
            "empty string does not match null",
            r#"{"x": [""]}"#,
            r#"{"x": null}"#,
            false,
        ),
        (
            "missing field fails",
            r#"{"detail": {"nope": ["x"]}}"#,
            EC2,
            false,
        ),
        (
            "missing parent fails",
            r#"{"nope": {"x": ["x"]}}"#,
            EC2,
            false,
        ),
        (
            "IP literal compares as address",
            r#"{"ip": ["2001:db8::1"]}"#,
            r#"{"ip": "2001:0db8:0:0:0:0:0:1"}"#,
            true,
        ),
        (
            "IP literal other address",
            r#"{"ip": ["10.0.0.1"]}"#,
            r#"{"ip": "10.0.0.2"}"#,
            false,
        ),
    ]);
}

#[test]
fn arrays_and_nesting() {
    run(&[
        (
            "event array intersects",
            r#"{"resources": ["a", "b"]}"#,
            r#"{"resources": ["c", "b"]}"#,
            true,
        ),
        (
            "event array disjoint",
            r#"{"resources": ["a", "b"]}"#,
            r#"{"resources": ["c", "d"]}"#,
            false,
        ),
        (
            "empty event array",
            r#"{"resources": ["a"]}"#,
            r#"{"resources": []}"#,
            false,
        ),
        (
            "nested event arrays",
            r#"{"r": ["x"]}"#,
            r#"{"r": [["a"], ["x"]]}"#,
            true,
        ),
        (
            "nested objects",
            r#"{"detail": {"state": ["running"]}}"#,
            EC2,
            true,
        ),
        (
            "deep nesting",
            r#"{"a": {"b": {"c": [1]}}}"#,
            r#"{"a": {"b": {"c": 1}}}"#,
            true,
        ),
        (
            "object pattern vs leaf event",
            r#"{"a": {"b": ["x"]}}"#,
            r#"{"a": "x"}"#,
            false,
        ),
        (
            "leaf pattern vs object event",
            r#"{"a": ["x"]}"#,
            r#"{"a": {"b": "x"}}"#,
            false,
        ),
        (
            "array of objects: one element",
            r#"{"employees": {"firstName": ["Anna"]}}"#,
            r#"{"employees": [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna", "lastName": "Smith"}, {"firstName": "Peter", "lastName": "Jones"}]}"#,
            true,
        ),
        (
            "array of objects: same element",
            r#"{"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}}"#,
            r#"{"employees": [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna", "lastName": "Smith"}]}"#,
            true,
        ),
        (
            "array of objects: consistency across elements",
            r#"{"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}"#,
            r#"{"employees": [{"firstName": "Anna", "lastName": "Smith"}, {"firstName": "Peter", "lastName": "Jones"}]}"#,
            false,
        ),
        (
            "multi-level arrays of objects",
            r#"{"employees": {"firstName": ["Peter"]}}"#,
            r#"{"employees": [[{"firstName": "John"}, {"firstName": "Anna"}], [{"firstName": "Peter"}]]}"#,
            true,
        ),
        (
            "array of objects: no match",
            r#"{"e": {"n": ["z"]}}"#,
            r#"{"e": [{"n": "a"}, {"n": "b"}]}"#,
            false,
        ),
        (
            "non-object event",
            r#"{"a": ["x"]}"#,
            r#""just a string""#,
            false,
        ),
    ]);
}

#[test]
fn prefix_and_suffix() {
    run(&[
        (
            "prefix",
            r#"{"time": [{"prefix": "2017-10-02"}]}"#,
            EC2,
            true,
        ),
        (
            "prefix mismatch",
            r#"{"time": [{"prefix": "2018"}]}"#,
            EC2,
            false,
        ),
        (
            "prefix is case sensitive",
            r#"{"source": [{"prefix": "AWS."}]}"#,
            EC2,
            false,
        ),
        (
            "prefix only on strings",
            r#"{"n": [{"prefix": "3"}]}"#,
            r#"{"n": 300}"#,
            false,
        ),
        (
            "empty prefix matches any string",
            r#"{"s": [{"prefix": ""}]}"#,
            r#"{"s": "x"}"#,
            true,
        ),
        (
            "prefix on event array",
            r#"{"r": [{"prefix": "arn:aws:s3"}]}"#,
            r#"{"r": ["arn:aws:ec2:x", "arn:aws:s3:::b"]}"#,
            true,
        ),
        ("suffix", r#"{"source": [{"suffix": "ec2"}]}"#, EC2, true),
        (
            "suffix mismatch",
            r#"{"source": [{"suffix": "s3"}]}"#,
            EC2,
            false,
        ),
        (
            "suffix longer than value",
            r#"{"s": [{"suffix": "xabc"}]}"#,
            r#"{"s": "abc"}"#,
            false,
        ),
        (
            "suffix .png",
            r#"{"FileName": [{"suffix": ".png"}]}"#,
            r#"{"FileName": "image.png"}"#,
            true,
        ),
        (
            "prefix ignore case",
            r#"{"source": [{"prefix": {"equals-ignore-case": "AWS.E"}}]}"#,
            EC2,
            true,
        ),
        (
            "prefix ignore case mismatch",
            r#"{"source": [{"prefix": {"equals-ignore-case": "AWS.S"}}]}"#,
            EC2,
            false,
        ),
        (
            "prefix ignore case non-ASCII",
            r#"{"s": [{"prefix": {"equals-ignore-case": "ÄR"}}]}"#,
            r#"{"s": "ärger"}"#,
            true,
        ),
        (
            "suffix ignore case",
            r#"{"FileName": [{"suffix": {"equals-ignore-case": ".PNG"}}]}"#,
            r#"{"FileName": "image.png"}"#,
            true,
        ),
        (
            "suffix ignore case non-ASCII",
            r#"{"s": [{"suffix": {"equals-ignore-case": "GÖ"}}]}"#,
            r#"{"s": "ergö"}"#,
            true,
        ),
        (
            "suffix ignore case mismatch",
            r#"{"s": [{"suffix": {"equals-ignore-case": ".JPG"}}]}"#,
            r#"{"s": "a.png"}"#,
            false,
        ),
    ]);
}

#[test]
fn equals_ignore_case() {
    run(&[
        (
            "ASCII",
            r#"{"source": [{"equals-ignore-case": "AWS.EC2"}]}"#,
            EC2,
            true,
        ),
        (
            "ASCII mismatch",
            r#"{"source": [{"equals-ignore-case": "AWS.EC"}]}"#,
            EC2,
            false,
        ),
        (
            "non-ASCII",
            r#"{"s": [{"equals-ignore-case": "ÄRGER"}]}"#,
            r#"{"s": "ärger"}"#,
            true,
        ),
        (
            "non-ASCII both ways",
            r#"{"s": [{"equals-ignore-case": "ärger"}]}"#,
            r#"{"s": "ÄRGER"}"#,
            true,
        ),
        (
            "Greek",
            r#"{"s": [{"equals-ignore-case": "ΑΒΓ"}]}"#,
            r#"{"s": "αβγ"}"#,
            true,
        ),
        (
            "non-ASCII mismatch",
            r#"{"s": [{"equals-ignore-case": "ÄRGER"}]}"#,
            r#"{"s": "arger"}"#,
            false,
        ),
        (
            "only strings",
            r#"{"b": [{"equals-ignore-case": "true"}]}"#,
            r#"{"b": true}"#,
            false,
        ),
    ]);
}

#[test]
fn wildcard() {
    run(&[
        (
            "readme",
            r#"{"source": [{"wildcard": "Simple*Service"}]}"#,
            r#"{"source": "SimpleQueueService"}"#,
            true,
        ),
        (
            "star matches empty",
            r#"{"source": [{"wildcard": "Simple*Service"}]}"#,
            r#"{"source": "SimpleService"}"#,
            true,
        ),
        (
            "mismatch",
            r#"{"source": [{"wildcard": "Simple*Service"}]}"#,
            r#"{"source": "SimpleQueue"}"#,
            false,
        ),
        (
            "docs example",
            r#"{"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]}"#,
            r#"{"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/default"}"#,
            true,
        ),
        (
            "star alone",
            r#"{"s": [{"wildcard": "*"}]}"#,
            r#"{"s": ""}"#,
            true,
        ),
        (
            "star alone not on numbers",
            r#"{"s": [{"wildcard": "*"}]}"#,
            r#"{"s": 5}"#,
            false,
        ),
        (
            "no star is exact",
            r#"{"s": [{"wildcard": "abc"}]}"#,
            r#"{"s": "abcd"}"#,
            false,
        ),
        (
            "across a newline",
            r#"{"s": [{"wildcard": "first*last"}]}"#,
            r#"{"s": "first line\nlast"}"#,
            true,
        ),
        (
            "escaped star is literal",
            r#"{"s": [{"wildcard": "a\\*b"}]}"#,
            r#"{"s": "a*b"}"#,
            true,
        ),
        (
            "escaped star is not a wildcard",
            r#"{"s": [{"wildcard": "a\\*b"}]}"#,
            r#"{"s": "axb"}"#,
            false,
        ),
        (
            "escaped backslash",
            r#"{"s": [{"wildcard": "a\\\\*"}]}"#,
            r#"{"s": "a\\bc"}"#,
            true,
        ),
        (
            "several stars in order",
            r#"{"s": [{"wildcard": "*a*b*c*"}]}"#,
            r#"{"s": "xxaxbxcx"}"#,
            true,
        ),
        (
            "several stars out of order",
            r#"{"s": [{"wildcard": "*a*b*c*"}]}"#,
            r#"{"s": "xxcxbxax"}"#,
            false,
        ),
        (
            "prefix and suffix may not overlap",
            r#"{"s": [{"wildcard": "ab*ba"}]}"#,
            r#"{"s": "aba"}"#,
            false,
        ),
        (
            "non-ASCII",
            r#"{"s": [{"wildcard": "ä*ö"}]}"#,
            r#"{"s": "äxyzö"}"#,
            true,
        ),
    ]);
}

#[test]
fn anything_but() {
    run(&[
        (
            "single string",
            r#"{"detail": {"state": [{"anything-but": "initializing"}]}}"#,
            EC2,
            true,
        ),
        (
            "single string excluded",
            r#"{"detail": {"state": [{"anything-but": "running"}]}}"#,
            EC2,
            false,
        ),
        (
            "single number",
            r#"{"detail": {"x-limit": [{"anything-but": 123}]}}"#,
            EC2,
            true,
        ),
        (
            "single number excluded",
            r#"{"detail": {"x-limit": [{"anything-but": 301.8}]}}"#,
            EC2,
            false,
        ),
        (
            "string list",
            r#"{"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}"#,
            EC2,
            true,
        ),
        (
            "string list excluded",
            r#"{"detail": {"state": [{"anything-but": ["stopped", "running"]}]}}"#,
            EC2,
            false,
        ),
        (
            "number list",
            r#"{"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}}"#,
            EC2,
            true,
        ),
        (
            "number list by value",
            r#"{"n": [{"anything-but": [100, 200, 300]}]}"#,
            r#"{"n": 3e2}"#,
            false,
        ),
        (
            "missing field does not match",
            r#"{"detail": {"nope": [{"anything-but": "x"}]}}"#,
            EC2,
            false,
        ),
        (
            "other types are not excluded",
            r#"{"n": [{"anything-but": "5"}]}"#,
            r#"{"n": 5}"#,
            true,
        ),
        (
            "null is a value",
            r#"{"n": [{"anything-but": "x"}]}"#,
            r#"{"n": null}"#,
            true,
        ),
        (
            "event array: any element",
            r#"{"r": [{"anything-but": "a"}]}"#,
            r#"{"r": ["a", "b"]}"#,
            true,
        ),
        (
            "event array: all excluded",
            r#"{"r": [{"anything-but": ["a", "b"]}]}"#,
            r#"{"r": ["a", "b"]}"#,
            false,
        ),
        (
            "prefix",
            r#"{"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}"#,
            EC2,
            true,
        ),
        (
            "prefix excluded",
            r#"{"detail": {"state": [{"anything-but": {"prefix": "run"}}]}}"#,
            EC2,
            false,
        ),
        (
            "prefix list",
            r#"{"s": [{"anything-but": {"prefix": ["a", "b"]}}]}"#,
            r#"{"s": "bee"}"#,
            false,
        ),
        (
            "suffix",
            r#"{"FileName": [{"anything-but": {"suffix": ".txt"}}]}"#,
            r#"{"FileName": "a.png"}"#,
            true,
        ),
        (
            "suffix excluded",
            r#"{"FileName": [{"anything-but": {"suffix": ".txt"}}]}"#,
            r#"{"FileName": "a.txt"}"#,
            false,
        ),
        (
            "equals-ignore-case",
            r#"{"s": [{"anything-but": {"equals-ignore-case": "RUNNING"}}]}"#,
            r#"{"s": "stopped"}"#,
            true,
        ),
        (
            "equals-ignore-case excluded",
            r#"{"s": [{"anything-but": {"equals-ignore-case": "RUNNING"}}]}"#,
            r#"{"s": "Running"}"#,
            false,
        ),
        (
            "equals-ignore-case list",
            r#"{"s": [{"anything-but": {"equals-ignore-case": ["A", "ÄRGER"]}}]}"#,
            r#"{"s": "ärger"}"#,
            false,
        ),
        (
            "wildcard",
            r#"{"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}"#,
            r#"{"FilePath": "/usr/bin/x"}"#,
            true,
        ),
        (
            "wildcard excluded",
            r#"{"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}"#,
            r#"{"FilePath": "/usr/lib/x"}"#,
            false,
        ),
        (
            "wildcard list",
            r#"{"FilePath": [{"anything-but": {"wildcard": ["*/lib/*", "*/bin/*"]}}]}"#,
            r#"{"FilePath": "/usr/bin/x"}"#,
            false,
        ),
    ]);
}

#[test]
fn numeric() {
    run(&[
        (
            "readme range",
            r#"{"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}], "x-limit": [{"numeric": ["=", 3.018e2]}]}}"#,
            EC2,
            true,
        ),
        (
            "> edge excluded",
            r#"{"n": [{"numeric": [">", 0, "<=", 5]}]}"#,
            r#"{"n": 0}"#,
            false,
        ),
        (
            "> just above",
            r#"{"n": [{"numeric": [">", 0, "<=", 5]}]}"#,
            r#"{"n": 0.000001}"#,
            true,
        ),
        (
            "<= edge included",
            r#"{"n": [{"numeric": [">", 0, "<=", 5]}]}"#,
            r#"{"n": 5}"#,
            true,
        ),
        (
            "<= edge as 5.0",
            r#"{"n": [{"numeric": [">", 0, "<=", 5]}]}"#,
            r#"{"n": 5.0}"#,
            true,
        ),
        (
            "<= just above",
            r#"{"n": [{"numeric": [">", 0, "<=", 5]}]}"#,
            r#"{"n": 5.000001}"#,
            false,
        ),
        (
            ">= edge included",
            r#"{"n": [{"numeric": [">=", 10, "<", 20]}]}"#,
            r#"{"n": 10}"#,
            true,
        ),
        (
            "< edge excluded",
            r#"{"n": [{"numeric": [">=", 10, "<", 20]}]}"#,
            r#"{"n": 20}"#,
            false,
        ),
        (
            "< alone",
            r#"{"n": [{"numeric": ["<", 10]}]}"#,
            r#"{"n": -4999999999}"#,
            true,
        ),
        (
            ">= alone",
            r#"{"n": [{"numeric": [">=", 1e9]}]}"#,
            r#"{"n": 5e9}"#,
            true,
        ),
        (
            "= by value",
            r#"{"n": [{"numeric": ["=", 300]}]}"#,
            r#"{"n": 300.0}"#,
            true,
        ),
        (
            "= other value",
            r#"{"n": [{"numeric": ["=", 300]}]}"#,
            r#"{"n": 300.5}"#,
            false,
        ),
        (
            "negative",
            r#"{"n": [{"numeric": ["<", -1.5]}]}"#,
            r#"{"n": -2}"#,
            true,
        ),
        (
            "string is not numeric",
            r#"{"n": [{"numeric": [">", 0]}]}"#,
            r#"{"n": "5"}"#,
            false,
        ),
        (
            "missing is not numeric",
            r#"{"n": [{"numeric": [">", 0]}]}"#,
            r#"{"m": 5}"#,
            false,
        ),
        (
            "beyond 5e9 never matches",
            r#"{"n": [{"numeric": [">", 0]}]}"#,
            r#"{"n": 6e9}"#,
            false,
        ),
        (
            "at 5e9 matches",
            r#"{"n": [{"numeric": [">", 0]}]}"#,
            r#"{"n": 5000000000}"#,
            true,
        ),
        (
            "event array any element",
            r#"{"n": [{"numeric": [">", 10]}]}"#,
            r#"{"n": [1, 2, 30]}"#,
            true,
        ),
        (
            "two ranges any of",
            r#"{"n": [{"numeric": ["<", 0]}, {"numeric": [">", 100]}]}"#,
            r#"{"n": 150}"#,
            true,
        ),
    ]);
}

#[test]
fn exists() {
    run(&[
        (
            "true on present",
            r#"{"detail": {"c-count": [{"exists": true}]}}"#,
            EC2,
            true,
        ),
        (
            "true on missing",
            r#"{"detail": {"nope": [{"exists": true}]}}"#,
            EC2,
            false,
        ),
        (
            "false on missing",
            r#"{"detail": {"nope": [{"exists": false}]}}"#,
            EC2,
            true,
        ),
        (
            "false on present",
            r#"{"detail": {"c-count": [{"exists": false}]}}"#,
            EC2,
            false,
        ),
        (
            "true on null: null is a value",
            r#"{"x": [{"exists": true}]}"#,
            r#"{"x": null}"#,
            true,
        ),
        (
            "false on null: null is a value",
            r#"{"x": [{"exists": false}]}"#,
            r#"{"x": null}"#,
            false,
        ),
        (
            "true on object: leaves only",
            r#"{"detail": {"c-count": [{"exists": true}]}}"#,
            r#"{"detail": {"c-count": {"c1": 100}}}"#,
            false,
        ),
        (
            "false on object: leaves only",
            r#"{"detail": {"c-count": [{"exists": false}]}}"#,
            r#"{"detail": {"c-count": {"c1": 100}}}"#,
            true,
        ),
        (
            "true on empty array",
            r#"{"x": [{"exists": true}]}"#,
            r#"{"x": []}"#,
            false,
        ),
        (
            "false on empty array",
            r#"{"x": [{"exists": false}]}"#,
            r#"{"x": []}"#,
            true,
        ),
        (
            "true on array of values",
            r#"{"x": [{"exists": true}]}"#,
            r#"{"x": [1]}"#,
            true,
        ),
        (
            "false under a missing parent",
            r#"{"nope": {"x": [{"exists": false}]}}"#,
            EC2,
            true,
        ),
        (
            "true under a missing parent",
            r#"{"nope": {"x": [{"exists": true}]}}"#,
            EC2,
            false,
        ),
        (
            "false in array of objects",
            r#"{"a": {"b": [{"exists": false}]}}"#,
            r#"{"a": [{"b": 1}]}"#,
            false,
        ),
        (
            "exists false or a value",
            r#"{"x": [{"exists": false}, "y"]}"#,
            r#"{"x": "y"}"#,
            true,
        ),
        (
            "exists false or a value: other value",
            r#"{"x": [{"exists": false}, "y"]}"#,
            r#"{"x": "z"}"#,
            false,
        ),
    ]);
}

#[test]
fn cidr() {
    run(&[
        (
            "readme IPv4",
            r#"{"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}"#,
            EC2,
            true,
        ),
        (
            "IPv4 outside",
            r#"{"detail": {"source-ip": [{"cidr": "10.0.1.0/24"}]}}"#,
            EC2,
            false,
        ),
        (
            "IPv4 first address",
            r#"{"ip": [{"cidr": "10.0.0.0/24"}]}"#,
            r#"{"ip": "10.0.0.0"}"#,
            true,
        ),
        (
            "IPv4 last address",
            r#"{"ip": [{"cidr": "10.0.0.0/24"}]}"#,
            r#"{"ip": "10.0.0.255"}"#,
            true,
        ),
        (
            "IPv4 just after",
            r#"{"ip": [{"cidr": "10.0.0.0/24"}]}"#,
            r#"{"ip": "10.0.1.0"}"#,
            false,
        ),
        (
            "IPv4 /0",
            r#"{"ip": [{"cidr": "0.0.0.0/0"}]}"#,
            r#"{"ip": "255.1.2.3"}"#,
            true,
        ),
        (
            "IPv4 base with host bits",
            r#"{"ip": [{"cidr": "10.0.0.77/24"}]}"#,
            r#"{"ip": "10.0.0.1"}"#,
            true,
        ),
        (
            "IPv6",
            r#"{"ip": [{"cidr": "2001:db8::/32"}]}"#,
            r#"{"ip": "2001:db8:1234::1"}"#,
            true,
        ),
        (
            "IPv6 outside",
            r#"{"ip": [{"cidr": "2001:db8::/32"}]}"#,
            r#"{"ip": "2001:db9::1"}"#,
            false,
        ),
        (
            "IPv6 range vs IPv4 address",
            r#"{"ip": [{"cidr": "::/0"}]}"#,
            r#"{"ip": "10.0.0.1"}"#,
            false,
        ),
        (
            "IPv4 range vs IPv6 address",
            r#"{"ip": [{"cidr": "0.0.0.0/0"}]}"#,
            r#"{"ip": "::1"}"#,
            false,
        ),
        (
            "not an address",
            r#"{"ip": [{"cidr": "10.0.0.0/8"}]}"#,
            r#"{"ip": "ten"}"#,
            false,
        ),
        (
            "not a string",
            r#"{"ip": [{"cidr": "10.0.0.0/8"}]}"#,
            r#"{"ip": 10}"#,
            false,
        ),
    ]);
}

#[test]
fn or() {
    run(&[
        (
            "readme normal or: first",
            r#"{"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]}, {"namespace": ["AWS/EC2", "AWS/ES"]}]}"#,
            r#"{"source": "aws.cloudwatch", "metricName": "ReadLatency"}"#,
            true,
        ),
        (
            "readme normal or: second",
            r#"{"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]}, {"namespace": ["AWS/EC2", "AWS/ES"]}]}"#,
            r#"{"source": "aws.cloudwatch", "namespace": "AWS/ES"}"#,
            true,
        ),
        (
            "readme normal or: neither",
            r#"{"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]}"#,
            r#"{"source": "aws.cloudwatch", "namespace": "AWS/S3"}"#,
            false,
        ),
        (
            "or does not bypass and",
            r#"{"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]}"#,
            r#"{"source": "aws.ec2", "namespace": "AWS/EC2"}"#,
            false,
        ),
        (
            "or with an and inside",
            r#"{"$or": [{"a": ["1"]}, {"b": ["2"], "c": ["3"]}]}"#,
            r#"{"b": "2", "c": "3"}"#,
            true,
        ),
        (
            "or with an and inside: partial",
            r#"{"$or": [{"a": ["1"]}, {"b": ["2"], "c": ["3"]}]}"#,
            r#"{"b": "2", "c": "4"}"#,
            false,
        ),
        (
            "nested or",
            r#"{"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"metricType": ["MetricType"], "namespace": ["AWS/EC2"], "$or": [{"metricId": [1234]}, {"spaceId": [1000]}]}, {"scope": ["Service"]}]}"#,
            r#"{"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/EC2", "spaceId": 1000}"#,
            true,
        ),
        (
            "nested or: inner fails",
            r#"{"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"metricType": ["MetricType"], "namespace": ["AWS/EC2"], "$or": [{"metricId": [1234]}, {"spaceId": [1000]}]}, {"scope": ["Service"]}]}"#,
            r#"{"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/EC2", "spaceId": 1001}"#,
            false,
        ),
        (
            "or inside detail",
            r#"{"detail": {"$or": [{"c-count": [{"numeric": [">", 10]}]}, {"state": ["running"]}]}}"#,
            EC2,
            true,
        ),
        (
            "parallel ors",
            r#"{"$or": [{"a": ["1"]}, {"b": ["1"]}], "detail": {"$or": [{"c": ["1"]}, {"d": ["1"]}]}}"#,
            r#"{"b": "1", "detail": {"d": "1"}}"#,
            true,
        ),
        (
            "parallel ors: one group fails",
            r#"{"$or": [{"a": ["1"]}, {"b": ["1"]}], "detail": {"$or": [{"c": ["1"]}, {"d": ["1"]}]}}"#,
            r#"{"b": "1", "detail": {"e": "1"}}"#,
            false,
        ),
    ]);
}

#[test]
fn literal_numbers_beyond_range() {
    // Beyond ±5e9 EventBridge compares numbers by their literal text.
    let p = Pattern::parse(r#"{"n": [1e10]}"#).unwrap();
    assert!(p.matches_json(r#"{"n": 1e10}"#).unwrap());
    assert!(!p.matches_json(r#"{"n": 10000000000}"#).unwrap());
    let q = Pattern::parse(r#"{"n": [10000000000]}"#).unwrap();
    assert!(q.matches_json(r#"{"n": 10000000000}"#).unwrap());
    assert!(!q.matches_json(r#"{"n": 1e10}"#).unwrap());
    assert!(q.matches(&serde_json::json!({"n": 10_000_000_000u64})));
}

#[test]
fn event_syntax_errors_have_line_and_column() {
    let p = Pattern::parse(r#"{"a": ["x"]}"#).unwrap();
    let err = p.matches_json("{\n  \"a\": x\n}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "event is not valid JSON: line 2, column 8: expected a JSON value"
    );
    assert!(p.matches_json(r#"{"a": "x"} trailing"#).is_err());
    assert!(p.matches_json(r#"{"a": "\q"}"#).is_err());
    assert!(p.matches_json(r#"{"a": 01}"#).is_err());
    assert!(p.matches_json(&"[".repeat(1000)).is_err());
    assert!(p.matches_json(r#"{"a": "\u00e4\ud83d\ude00"}"#).is_ok());
}

/// (case name, pattern, expected message)
const INVALID: &[(&str, &str, &str)] = &[
    (
        "not JSON",
        r#"{"a": ["x"]"#,
        "pattern is not valid JSON: line 1, column 12: expected ',' or '}' in an object",
    ),
    (
        "top level not an object",
        r#"["x"]"#,
        "at the top level: a pattern must be a JSON object, found an array",
    ),
    (
        "empty pattern",
        r#"{}"#,
        "at the top level: empty objects are not allowed",
    ),
    (
        "leaf not an array: string",
        r#"{"source": "aws.ec2"}"#,
        "at source: a pattern value must be an array (of values or operators) or an object, found a string; write [\"aws.ec2\"] to match it exactly",
    ),
    (
        "leaf not an array: number",
        r#"{"detail": {"price": 5}}"#,
        "at detail.price: a pattern value must be an array (of values or operators) or an object, found a number; write [5] to match it exactly",
    ),
    (
        "empty array",
        r#"{"detail": {"price": []}}"#,
        "at detail.price: empty arrays are not allowed",
    ),
    (
        "empty object",
        r#"{"detail": {}}"#,
        "at detail: empty objects are not allowed",
    ),
    (
        "array in a value array",
        r#"{"a": [["x"]]}"#,
        "at a[0]: a match value must be a string, number, boolean, null or an operator object, found an array",
    ),
    (
        "empty operator object",
        r#"{"a": [{}]}"#,
        "at a[0]: an operator object must have exactly one key, found none",
    ),
    (
        "two operators in one object",
        r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#,
        "at a[0]: an operator object must have exactly one key, found 2: prefix, suffix",
    ),
    (
        "unknown operator",
        r#"{"detail": {"price": [{"between": [1, 2]}]}}"#,
        "at detail.price[0].between: unknown operator \"between\"; expected one of: prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists, cidr",
    ),
    (
        "prefix with a number",
        r#"{"a": [{"prefix": 5}]}"#,
        "at a[0].prefix: \"prefix\" must be a string or {\"equals-ignore-case\": string}, found a number",
    ),
    (
        "prefix with a bad object",
        r#"{"a": [{"prefix": {"wildcard": "x"}}]}"#,
        "at a[0].prefix: \"prefix\" accepts a string or an object with the single key \"equals-ignore-case\"",
    ),
    (
        "prefix ignore-case with a number",
        r#"{"a": [{"prefix": {"equals-ignore-case": 1}}]}"#,
        "at a[0].prefix.equals-ignore-case: \"equals-ignore-case\" must be a string, found a number",
    ),
    (
        "suffix with null",
        r#"{"a": [{"suffix": null}]}"#,
        "at a[0].suffix: \"suffix\" must be a string or {\"equals-ignore-case\": string}, found null",
    ),
    (
        "equals-ignore-case with a list",
        r#"{"a": [{"equals-ignore-case": ["x"]}]}"#,
        "at a[0].equals-ignore-case: \"equals-ignore-case\" must be a string, found an array",
    ),
    (
        "exists with a string",
        r#"{"a": [{"exists": "true"}]}"#,
        "at a[0].exists: \"exists\" must be true or false, found a string",
    ),
    (
        "wildcard with a number",
        r#"{"a": [{"wildcard": 1}]}"#,
        "at a[0].wildcard: \"wildcard\" must be a string, found a number",
    ),
    (
        "wildcard consecutive stars",
        r#"{"a": [{"wildcard": "abc**def"}]}"#,
        "at a[0].wildcard: consecutive wildcard characters (\"**\") at position 3 are not allowed",
    ),
    (
        "wildcard bad escape",
        r#"{"a": [{"wildcard": "a\\bc"}]}"#,
        "at a[0].wildcard: invalid escape at position 1: a backslash may only escape '*' or '\\'",
    ),
    (
        "wildcard trailing backslash",
        r#"{"a": [{"wildcard": "abc\\"}]}"#,
        "at a[0].wildcard: invalid escape at position 3: a backslash may only escape '*' or '\\'",
    ),
    (
        "cidr with a number",
        r#"{"ip": [{"cidr": 10}]}"#,
        "at ip[0].cidr: \"cidr\" must be a string, found a number",
    ),
    (
        "cidr without mask",
        r#"{"ip": [{"cidr": "10.0.0.0"}]}"#,
        "at ip[0].cidr: malformed CIDR \"10.0.0.0\": one '/' is required",
    ),
    (
        "cidr two slashes",
        r#"{"ip": [{"cidr": "10.0.0.0/8/8"}]}"#,
        "at ip[0].cidr: malformed CIDR \"10.0.0.0/8/8\": one '/' is required",
    ),
    (
        "cidr bad mask",
        r#"{"ip": [{"cidr": "10.0.0.0/x"}]}"#,
        "at ip[0].cidr: malformed CIDR \"10.0.0.0/x\": the mask bits must be a non-negative integer",
    ),
    (
        "cidr negative mask",
        r#"{"ip": [{"cidr": "10.0.0.0/-1"}]}"#,
        "at ip[0].cidr: malformed CIDR \"10.0.0.0/-1\": the mask bits must be a non-negative integer",
    ),
    (
        "cidr bad address",
        r#"{"ip": [{"cidr": "10.0.0.256/8"}]}"#,
        "at ip[0].cidr: malformed CIDR \"10.0.0.256/8\": not an IPv4 or IPv6 address",
    ),
    (
        "cidr IPv4 /32",
        r#"{"ip": [{"cidr": "10.0.0.1/32"}]}"#,
        "at ip[0].cidr: malformed CIDR \"10.0.0.1/32\": IPv4 mask bits must be less than 32",
    ),
    (
        "cidr IPv4 /33",
        r#"{"ip": [{"cidr": "10.0.0.1/33"}]}"#,
        "at ip[0].cidr: malformed CIDR \"10.0.0.1/33\": IPv4 mask bits must be less than 32",
    ),
    (
        "cidr IPv6 /128",
        r#"{"ip": [{"cidr": "2001:db8::1/128"}]}"#,
        "at ip[0].cidr: malformed CIDR \"2001:db8::1/128\": IPv6 mask bits must be less than 128",
    ),
    (
        "numeric not an array",
        r#"{"n": [{"numeric": ">"}]}"#,
        "at n[0].numeric: \"numeric\" must be an array such as [\">\", 0, \"<=\", 5], found a string",
    ),
    (
        "numeric empty",
        r#"{"n": [{"numeric": []}]}"#,
        "at n[0].numeric: \"numeric\" needs an operator and a number, e.g. [\">\", 0]",
    ),
    (
        "numeric operand a string",
        r#"{"n": [{"numeric": ["=", "x"]}]}"#,
        "at n[0].numeric: the operand of \"=\" must be a number, found a string",
    ),
    (
        "numeric missing operand",
        r#"{"n": [{"numeric": [">"]}]}"#,
        "at n[0].numeric: \">\" is missing its number",
    ),
    (
        "numeric unknown operator",
        r#"{"n": [{"numeric": ["!=", 1]}]}"#,
        "at n[0].numeric: unknown numeric operator \"!=\"; expected one of =, <, <=, >, >=",
    ),
    (
        "numeric operator not a string",
        r#"{"n": [{"numeric": [1, ">"]}]}"#,
        "at n[0].numeric: expected a comparison operator (=, <, <=, >, >=) at position 0, found 1",
    ),
    (
        "numeric empty range",
        r#"{"detail": {"price": [{"numeric": [">", 5, "<", 1]}]}}"#,
        "at detail.price[0].numeric: numeric range is empty: > 5 and < 1 (the lower bound must be below the upper bound)",
    ),
    (
        "numeric point range",
        r#"{"n": [{"numeric": [">=", 5, "<=", 5]}]}"#,
        "at n[0].numeric: numeric range is empty: >= 5 and <= 5 (the lower bound must be below the upper bound)",
    ),
    (
        "numeric upper then lower",
        r#"{"n": [{"numeric": ["<", 5, ">", 1]}]}"#,
        "at n[0].numeric: too many terms in \"numeric\" after \"<\"",
    ),
    (
        "numeric = with more",
        r#"{"n": [{"numeric": ["=", 5, "<", 6]}]}"#,
        "at n[0].numeric: too many terms in \"numeric\" after \"=\"",
    ),
    (
        "numeric two lower bounds",
        r#"{"n": [{"numeric": [">", 5, ">", 1]}]}"#,
        "at n[0].numeric: a range lower bound must be followed by \"<\" or \"<=\", found \">\"",
    ),
    (
        "numeric five terms",
        r#"{"n": [{"numeric": [">", 1, "<", 5, "<"]}]}"#,
        "at n[0].numeric: too many terms in \"numeric\"; a range has at most 4",
    ),
    (
        "numeric beyond range",
        r#"{"n": [{"numeric": [">", 6e9]}]}"#,
        "at n[0].numeric: numeric value 6e9 is outside the supported range -5.0e9 to 5.0e9",
    ),
    (
        "anything-but null",
        r#"{"a": [{"anything-but": null}]}"#,
        "at a[0].anything-but: \"anything-but\" must be a string, a number, a list of strings or numbers, or an operator object, found null",
    ),
    (
        "anything-but empty list",
        r#"{"a": [{"anything-but": []}]}"#,
        "at a[0].anything-but: \"anything-but\" list must not be empty",
    ),
    (
        "anything-but mixed list",
        r#"{"a": [{"anything-but": ["x", 1]}]}"#,
        "at a[0].anything-but: \"anything-but\" list must hold only strings or only numbers (no mix, null, booleans, arrays or objects)",
    ),
    (
        "anything-but boolean in list",
        r#"{"a": [{"anything-but": [true]}]}"#,
        "at a[0].anything-but: \"anything-but\" list must hold only strings or only numbers (no mix, null, booleans, arrays or objects)",
    ),
    (
        "anything-but number beyond range",
        r#"{"a": [{"anything-but": [1, 6e9]}]}"#,
        "at a[0].anything-but[1]: numeric value 6e9 is outside the supported range -5.0e9 to 5.0e9",
    ),
    (
        "anything-but unknown inner operator",
        r#"{"a": [{"anything-but": {"numeric": [">", 1]}}]}"#,
        "at a[0].anything-but.numeric: unsupported operator \"numeric\" inside \"anything-but\"; expected prefix, suffix, equals-ignore-case or wildcard",
    ),
    (
        "anything-but unsupported inner operator",
        r#"{"a": [{"anything-but": {"cidr": "10.0.0.0/8"}}]}"#,
        "at a[0].anything-but.cidr: unsupported operator \"cidr\" inside \"anything-but\"; expected prefix, suffix, equals-ignore-case or wildcard",
    ),
    (
        "anything-but two inner operators",
        r#"{"a": [{"anything-but": {"prefix": "x", "suffix": "y"}}]}"#,
        "at a[0].anything-but: \"anything-but\" object must have exactly one key: prefix, suffix, equals-ignore-case or wildcard",
    ),
    (
        "anything-but empty prefix",
        r#"{"a": [{"anything-but": {"prefix": ""}}]}"#,
        "at a[0].anything-but.prefix: an empty prefix is not allowed in \"anything-but\"",
    ),
    (
        "anything-but prefix number",
        r#"{"a": [{"anything-but": {"prefix": 1}}]}"#,
        "at a[0].anything-but.prefix: \"prefix\" must be a string or a list of strings, found a number",
    ),
    (
        "anything-but ignore-case number",
        r#"{"a": [{"anything-but": {"equals-ignore-case": [1]}}]}"#,
        "at a[0].anything-but.equals-ignore-case: \"equals-ignore-case\" must be a string or a list of strings, found a number",
    ),
    (
        "anything-but bad wildcard",
        r#"{"a": [{"anything-but": {"wildcard": "a**"}}]}"#,
        "at a[0].anything-but.wildcard: consecutive wildcard characters (\"**\") at position 1 are not allowed",
    ),
    (
        "$or with one alternative",
        r#"{"$or": [{"a": ["1"]}]}"#,
        "at $or: \"$or\" must have at least 2 alternatives, found 1",
    ),
    (
        "$or empty",
        r#"{"detail": {"$or": []}}"#,
        "at detail.$or: \"$or\" must have at least 2 alternatives, found 0",
    ),
    (
        "$or not an array",
        r#"{"$or": {"a": ["1"]}}"#,
        "at $or: \"$or\" must be an array of at least 2 objects, found an object",
    ),
    (
        "$or alternative not an object",
        r#"{"$or": [{"a": ["1"]}, ["b"]]}"#,
        "at $or[1]: each \"$or\" alternative must be an object, found an array",
    ),
    (
        "$or empty alternative",
        r#"{"$or": [{"a": ["1"]}, {}]}"#,
        "at $or[1]: empty objects are not allowed",
    ),
    (
        "$or operator as field name",
        r#"{"$or": [{"numeric": [123]}, {"prefix": ["abc"]}]}"#,
        "at $or[0].numeric: \"numeric\" is an operator name and cannot be used as a field name inside \"$or\"",
    ),
    (
        "error deep inside $or",
        r#"{"$or": [{"a": ["1"]}, {"b": {"c": [{"numeric": ["=", "x"]}]}}]}"#,
        "at $or[1].b.c[0].numeric: the operand of \"=\" must be a number, found a string",
    ),
];

#[test]
fn invalid_patterns_say_what_and_where() {
    let mut failures = Vec::new();
    for (name, pattern, expected) in INVALID {
        match Pattern::parse(pattern) {
            Ok(_) => failures.push(format!("{name}: accepted")),
            Err(e) if e.to_string() != *expected => {
                failures.push(format!("{name}:\n  got      {e}\n  expected {expected}"))
            }
            Err(_) => {}
        }
        // from_value rejects the same patterns (syntax errors aside).
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(pattern)
            && Pattern::from_value(&value).is_ok()
        {
            failures.push(format!("{name}: accepted by from_value"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn error_exposes_path() {
    let err =
        Pattern::parse(r#"{"detail": {"price": [{"numeric": [">", 5, "<", 1]}]}}"#).unwrap_err();
    assert_eq!(err.path(), Some("detail.price[0].numeric"));
    assert!(matches!(err, PatternError::Invalid { .. }));
    let err = Pattern::parse("{").unwrap_err();
    assert_eq!(err.path(), None);
}

#[test]
fn pattern_is_send_sync_clone_debug() {
    fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug>() {}
    assert_traits::<Pattern>();
    assert_traits::<tideline_pattern::RuleSet<String>>();
}

/// Counts the table rows, so the report can say how many cases there are.
#[test]
fn case_count() {
    assert!(INVALID.len() > 50);
}
