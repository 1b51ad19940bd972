//! Properties over arbitrary events: matching never panics, both entry points
//! (and the explanation) agree, `anything-but` is the complement of exact matching, and a RuleSet
//! returns exactly the rules that match one by one, in insertion order.

use proptest::prelude::*;
use serde_json::{Value, json};
use tideline_pattern::{Pattern, RuleSet};

const KEYS: &[&str] = &[
    "source",
    "detail-type",
    "detail",
    "a",
    "b",
    "ip",
    "n",
    "$or",
];

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("tideline".to_string()),
        Just("aws.ec2".to_string()),
        Just("10.0.0.7".to_string()),
        Just("2001:db8::1".to_string()),
        Just("ÄRGER".to_string()),
        Just("ärger".to_string()),
        Just("first\nlast".to_string()),
        "[a-cA-C*\\\\. \n]{0,6}",
        any::<String>(),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-10i64..10).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        (-6.0e9f64..6.0e9).prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
    ]
}

fn event() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        string().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(|members| {
                Value::Object(
                    members
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                )
            }),
        ]
    })
}

/// Patterns using every operator, on the keys the event generator uses.
const PATTERNS: &[&str] = &[
    r#"{"source": ["tideline"]}"#,
    r#"{"source": ["tideline", "aws.ec2"], "detail-type": [{"anything-but": ["x"]}]}"#,
    r#"{"detail": {"a": [{"prefix": "a"}], "b": [{"suffix": {"equals-ignore-case": "C"}}]}}"#,
    r#"{"a": [{"equals-ignore-case": "ärger"}, {"wildcard": "a*b\\*c*"}]}"#,
    r#"{"n": [{"numeric": [">", -5, "<=", 5]}, 7, 3e2, null, true]}"#,
    r#"{"ip": [{"cidr": "10.0.0.0/8"}, {"cidr": "2001:db8::/32"}, "2001:db8::1"]}"#,
    r#"{"a": [{"exists": false}], "b": [{"exists": true}]}"#,
    r#"{"detail": {"$or": [{"a": [{"anything-but": {"prefix": "a"}}]}, {"b": [{"anything-but": {"wildcard": "*\n*"}}]}]}}"#,
    r#"{"$or": [{"n": [{"anything-but": [1, 2.5]}]}, {"detail": {"detail": {"n": [{"numeric": ["=", 0]}]}}}]}"#,
    r#"{"detail": {"a": {"b": [{"anything-but": {"equals-ignore-case": ["ÄRGER", "x"]}}]}}}"#,
    r#"{"a": [{"prefix": {"equals-ignore-case": "Ä"}}, {"anything-but": {"suffix": "c"}}]}"#,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matching_never_panics_and_entry_points_agree(event in event()) {
        let text = serde_json::to_string(&event).unwrap();
        for p in PATTERNS {
            let pattern = Pattern::parse(p).unwrap();
            let by_value = pattern.matches(&event);
            let by_text = pattern.matches_json(&text).unwrap();
            prop_assert_eq!(by_value, by_text, "pattern {} on event {}", p, text);
            // The explanation agrees with the verdict: a field is named exactly on a miss.
            let verdict = pattern.explain_json(&text).unwrap();
            prop_assert_eq!(verdict.matched, by_value, "pattern {} on event {}", p, text);
            prop_assert_eq!(verdict.first_miss.is_none(), by_value, "pattern {} on event {}", p, text);
        }
    }

    #[test]
    fn anything_but_is_the_complement_of_exact(x in string(), value in string(), other in event()) {
        let exact = Pattern::from_value(&json!({"detail": {"f": [x.clone()]}})).unwrap();
        let but = Pattern::from_value(&json!({"detail": {"f": [{"anything-but": [x.clone()]}]}})).unwrap();
        let single = Pattern::from_value(&json!({"detail": {"f": [{"anything-but": x}]}})).unwrap();
        let event = json!({"detail": {"f": value, "g": other}});
        prop_assert_ne!(exact.matches(&event), but.matches(&event));
        prop_assert_eq!(but.matches(&event), single.matches(&event));
    }

    #[test]
    fn anything_but_ignore_case_is_the_complement_of_equals_ignore_case(x in string(), value in string()) {
        let eq = Pattern::from_value(&json!({"f": [{"equals-ignore-case": x.clone()}]})).unwrap();
        let but = Pattern::from_value(&json!({"f": [{"anything-but": {"equals-ignore-case": x}}]})).unwrap();
        let event = json!({"f": value});
        prop_assert_ne!(eq.matches(&event), but.matches(&event));
    }

    #[test]
    fn ruleset_matches_exactly_the_matching_rules_in_order(event in event(), picks in prop::collection::vec(0..PATTERNS.len(), 0..40)) {
        let mut rules = RuleSet::new();
        let mut expected = Vec::new();
        for (i, &k) in picks.iter().enumerate() {
            let pattern = Pattern::parse(PATTERNS[k]).unwrap();
            if pattern.matches(&event) {
                expected.push(i);
            }
            rules.add(pattern, i);
        }
        prop_assert_eq!(rules.len(), picks.len());
        let got: Vec<usize> = rules.matching(&event).copied().collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn pattern_parsing_never_panics(text in "[\\[\\]{}\",:a-z0-9 <>=*\\\\.-]{0,40}") {
        let _ = Pattern::parse(&text);
    }

    #[test]
    fn arbitrary_json_as_a_pattern_never_panics(pattern in event()) {
        if let Ok(p) = Pattern::from_value(&pattern) {
            let _ = p.matches(&pattern);
        }
    }
}

#[test]
fn ruleset_uses_index_and_keeps_order() {
    let mut rules = RuleSet::new();
    assert!(rules.is_empty());
    rules.add(Pattern::parse(r#"{"source": ["b"]}"#).unwrap(), "b-only");
    rules.add(
        Pattern::parse(r#"{"detail": {"x": [1]}}"#).unwrap(),
        "unindexed",
    );
    rules.add(
        Pattern::parse(r#"{"source": ["a", "b"], "detail-type": ["t"]}"#).unwrap(),
        "a-or-b-and-t",
    );
    rules.add(
        Pattern::parse(r#"{"detail-type": ["t"]}"#).unwrap(),
        "t-only",
    );
    rules.add(
        Pattern::parse(r#"{"source": [{"prefix": "b"}]}"#).unwrap(),
        "prefix-b",
    );
    assert_eq!(rules.len(), 5);

    let ev = json!({"source": "b", "detail-type": "t", "detail": {"x": 1.0}});
    let got: Vec<_> = rules.matching(&ev).copied().collect();
    assert_eq!(
        got,
        ["b-only", "unindexed", "a-or-b-and-t", "t-only", "prefix-b"]
    );

    let ev = json!({"source": "a", "detail-type": "t"});
    let got: Vec<_> = rules.matching(&ev).copied().collect();
    assert_eq!(got, ["a-or-b-and-t", "t-only"]);

    // Arrays in the event: any element can hit the index.
    let ev = json!({"source": ["z", "b"]});
    let got: Vec<_> = rules.matching(&ev).copied().collect();
    assert_eq!(got, ["b-only", "prefix-b"]);

    let many: RuleSet<usize> = (0..200).fold(RuleSet::default(), |mut set, i| {
        set.add(
            Pattern::from_value(&json!({"source": [format!("s{}", i % 7)]})).unwrap(),
            i,
        );
        set
    });
    let got: Vec<_> = many.matching(&json!({"source": "s3"})).copied().collect();
    assert_eq!(got, (0..200).filter(|i| i % 7 == 3).collect::<Vec<_>>());
}

#[test]
fn the_iterator_does_not_borrow_the_event() {
    let mut rules = RuleSet::new();
    rules.add(Pattern::parse(r#"{"source": ["x"]}"#).unwrap(), 1);
    let it = {
        let event = json!({"source": "x"});
        rules.matching(&event)
    };
    assert_eq!(it.copied().collect::<Vec<_>>(), [1]);
}
