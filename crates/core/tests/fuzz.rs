//! Property tests ("fuzzing" on stable): the parsers core exposes to foreign input never panic,
//! whatever the text, and what they accept round-trips. `PROPTEST_CASES` raises the case count
//! (default 256 per property here, a few seconds in all).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};
use sessionbank_core::{
    FromStoreUrl, MemoryStoreBuilder, Patch, Record, SessionId, StoreUrl, Timestamp, parse_builder,
    parse_duration, parse_store_url,
};

/// Text shaped like store URLs: schemes, hosts, ports, separators and percent escapes mixed.
fn url_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("memory://".to_owned()),
        Just("redis+cluster://".to_owned()),
        Just("disk:".to_owned()),
        Just("postgres://u:p@".to_owned()),
        "[a-z0-9.\\-]{0,12}".prop_map(|s| s),
        "[:,/?&=#@%\\[\\]]".prop_map(|s| s),
        "%[0-9A-Fa-f]{0,2}".prop_map(|s| s),
        "(browser_idle|cleanup_time|coalesce|max_entries|x)=[0-9a-z ]{0,24}".prop_map(|s| s),
        any::<String>(),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn session_ids_parse_any_text_without_panicking(text in any::<String>()) {
        if let Ok(id) = SessionId::parse(&text) {
            prop_assert_eq!(SessionId::parse(id.as_str()).unwrap(), id);
        }
    }

    #[test]
    fn generated_ids_round_trip_and_tampered_ones_are_refused_or_differ(pos in 0usize..64, c in any::<char>()) {
        let id = SessionId::generate().unwrap();
        prop_assert_eq!(SessionId::parse(id.as_str()).unwrap(), id);
        let mut chars: Vec<char> = id.as_str().chars().collect();
        let pos = pos % chars.len();
        chars[pos] = c;
        let tampered: String = chars.into_iter().collect();
        if let Ok(other) = SessionId::parse(&tampered) {
            prop_assert_eq!(other.as_str(), tampered.as_str());
        }
    }

    #[test]
    fn store_urls_parse_any_text_without_panicking(text in url_like()) {
        if let Ok(mut url) = parse_store_url(&text) {
            let _ = url.target().to_owned();
            let _ = url.take_extra_hosts();
            let _ = url.take_usize("max_entries", 1..=usize::MAX);
            let _ = url.take_duration("cleanup_time");
            let _ = url.take_bool("coalesce");
            let _ = url.finish("fuzz");
        }
        if let Ok(mut url) = StoreUrl::parse(&text) {
            let _ = MemoryStoreBuilder::from_url(&mut url);
        }
        let _ = parse_builder::<MemoryStoreBuilder>(&text);
    }

    #[test]
    fn durations_parse_any_text_without_panicking(text in "[0-9 .a-z]{0,30}|\\PC{0,30}") {
        if let Ok(d) = parse_duration("fuzz", &text) {
            prop_assert!(d <= Duration::from_secs(100 * 365 * 24 * 3600));
        }
    }

    /// `p1.then(p2)` applied once leaves the record that applying `p1` then `p2` leaves: what
    /// coalescing relies on to merge waiting writes.
    #[test]
    fn patch_then_is_applying_one_after_the_other(
        first in patch(),
        second in patch(),
        start in proptest::collection::btree_map("[a-d]", small_value(), 0..4),
    ) {
        let now = Timestamp::from_millis(1_700_000_000_000);
        let mut record = Record::new(now);
        for (k, v) in start {
            record.data.insert(k, v);
        }
        let mut one_by_one = record.clone();
        first.apply_to(&mut one_by_one, now);
        second.apply_to(&mut one_by_one, now);
        let mut merged = first.clone();
        merged.then(&second);
        let mut at_once = record;
        merged.apply_to(&mut at_once, now);
        prop_assert_eq!(one_by_one, at_once);
    }
}

fn small_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-z]{0,4}".prop_map(|s| json!(s)),
        Just(json!([1, {"x": true}])),
    ]
}

fn patch() -> impl Strategy<Value = Patch> {
    (
        proptest::collection::btree_map("[a-d]", small_value(), 0..3),
        proptest::collection::btree_set("[a-d]", 0..3),
        proptest::option::of(proptest::option::of(0i64..1_000_000)),
        proptest::option::of(proptest::option::of("[a-c]{1,2}")),
    )
        .prop_map(|(set, unset, expiry, owner)| {
            let mut patch = Patch::new();
            for (k, v) in set {
                patch = patch.set(k, v);
            }
            for k in unset {
                patch = patch.unset(k);
            }
            if let Some(expiry) = expiry {
                patch = patch
                    .expire_at(expiry.map(|ms| Timestamp::from_millis(1_700_000_000_000 + ms)));
            }
            if let Some(owner) = owner {
                patch.owner = Some(owner);
            }
            patch
        })
}
