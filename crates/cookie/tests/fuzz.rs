//! Property tests ("fuzzing" on stable) of everything that reads a cookie or token from a
//! client: any header text is refused or verified, never a panic; a value signed by the ring
//! verifies to its id; one changed character never verifies to another id. `PROPTEST_CASES`
//! raises the case count.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use sessionbank_cookie::{
    CookieConfig, DEFAULT_MAX_HEADER_LEN, ExpressFormat, HeaderConfig, Key, KeyRing,
    KeygripAlgorithm, KeygripFormat, RequestCookies, Transport,
};
use sessionbank_core::{SessionId, Timestamp};

fn transports() -> Vec<(Transport, KeyRing)> {
    let strong = KeyRing::generate().unwrap();
    let legacy = KeyRing::new(Key::from_legacy_secret("keyboard cat").unwrap());
    vec![
        (Transport::default(), strong.clone()),
        (Transport::from(HeaderConfig::bearer()), strong.clone()),
        (
            Transport::from(
                CookieConfig::new()
                    .name("connect.sid")
                    .format(ExpressFormat),
            ),
            legacy.clone(),
        ),
        (
            Transport::from(
                CookieConfig::new()
                    .name("koa.sid")
                    .format(KeygripFormat::new()),
            ),
            legacy.clone(),
        ),
        (
            Transport::from(
                CookieConfig::new()
                    .name("koa.sid")
                    .format(KeygripFormat::with_algorithm(KeygripAlgorithm::Sha256)),
            ),
            legacy,
        ),
    ]
}

/// Header text shaped like cookies and tokens: names, `=`, `;`, quotes, base64 and escapes.
fn header_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("id=".to_owned()),
        Just("connect.sid=s%3A".to_owned()),
        Just("koa.sid=".to_owned()),
        Just("koa.sid.sig=".to_owned()),
        Just("Bearer ".to_owned()),
        "[A-Za-z0-9_\\-]{0,60}".prop_map(|s| s),
        "[;=., \"%+/]".prop_map(|s| s),
        any::<String>(),
    ];
    proptest::collection::vec(piece, 0..10).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_header_is_refused_or_verified_never_a_panic(headers in proptest::collection::vec(header_like(), 0..3)) {
        for (transport, keys) in transports() {
            let values: Vec<&str> = headers.iter().map(String::as_str).collect();
            let _ = transport.read(values.iter().copied(), &keys);
        }
        let _ = RequestCookies::parse(headers.iter().map(String::as_str), DEFAULT_MAX_HEADER_LEN);
    }

    #[test]
    fn signed_values_verify_and_one_changed_character_never_verifies_to_another_id(
        pos in any::<usize>(),
        replacement in any::<char>(),
    ) {
        let now = Timestamp::now();
        for (transport, keys) in transports() {
            let id = SessionId::generate().unwrap();
            let issued = transport.issue(&id, None, now, &keys);
            // What a client sends back: each Set-Cookie's `name=value`, or the token.
            let sent: Vec<String> = issued
                .iter()
                .map(|h| match transport.as_header() {
                    Some(_) => format!("Bearer {}", h.value),
                    None => h.value.split(';').next().unwrap_or_default().to_owned(),
                })
                .collect();
            let joined = if transport.as_header().is_some() { sent[0].clone() } else { sent.join("; ") };
            let verified = transport.read([joined.as_str()], &keys).unwrap().unwrap();
            prop_assert_eq!(verified.id, id);

            let mut chars: Vec<char> = joined.chars().collect();
            let at = pos % chars.len();
            if chars[at] == replacement {
                continue;
            }
            chars[at] = replacement;
            let tampered: String = chars.into_iter().collect();
            if let Ok(Some(v)) = transport.read([tampered.as_str()], &keys) {
                prop_assert_eq!(v.id, id, "a tampered value verified to another id: {}", tampered);
            }
        }
    }
}
