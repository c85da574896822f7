//! Property tests for `strata_format::json`: what the serializer writes parses back to the same
//! value and is written identically again; parsing arbitrary or mutated bytes never panics.

use proptest::prelude::*;
use strata_format::json::{Json, JsonLimits};

fn number() -> impl Strategy<Value = Json> {
    prop_oneof![
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        any::<f64>().prop_map(Json::from),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(1e-7),
            Just(1e16),
            Just(5e-324),
        ]
        .prop_map(Json::from),
    ]
}

fn leaf() -> impl Strategy<Value = Json> {
    prop_oneof![Just(Json::Null), any::<bool>().prop_map(Json::from), number(), any::<String>().prop_map(Json::from),]
}

fn value() -> impl Strategy<Value = Json> {
    leaf().prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Json::Array),
            // Unique keys: a map strategy, in whatever order it yields.
            prop::collection::btree_map(any::<String>(), inner, 0..8).prop_map(Json::object),
        ]
    })
}

proptest! {
    #[test]
    fn serialize_then_parse_gives_the_same_value(v in value()) {
        let text = v.to_string_python();
        prop_assert!(text.is_ascii(), "ensure_ascii output must be ASCII: {}", text);
        let back = Json::parse(&text, &JsonLimits::default()).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(back.to_string_python(), text);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Json::parse(&bytes, &JsonLimits::default());
    }

    #[test]
    fn parse_never_panics_on_mutated_json(
        v in value(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = v.to_string_python().into_bytes();
        for (at, byte) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
            } else {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
        }
        let small = JsonLimits { max_bytes: 1 << 20, max_depth: 4 };
        let _ = Json::parse(&bytes, &small);
        let _ = Json::parse(&bytes, &JsonLimits::default());
    }

    #[test]
    fn parsed_numbers_keep_their_text(
        int in "-?(0|[1-9][0-9]{0,40})",
        frac in proptest::option::of("[0-9]{1,30}"),
        exp in proptest::option::of("[eE][+-]?[0-9]{1,3}"),
    ) {
        let text = format!("{int}{}{}", frac.map(|f| format!(".{f}")).unwrap_or_default(), exp.unwrap_or_default());
        let v = Json::parse(&text, &JsonLimits::default()).unwrap();
        prop_assert_eq!(v.to_string_python(), text);
    }
}
