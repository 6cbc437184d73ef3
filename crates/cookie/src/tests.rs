use std::time::Duration;

use sessionbank_core::{SessionId, Timestamp};

use super::*;

fn value_for(name: &str, id: &SessionId, keys: &KeyRing) -> String {
    let mut pairs = NativeFormat.encode(name, id, keys);
    assert_eq!(pairs.len(), 1);
    let (n, v) = pairs.remove(0);
    assert_eq!(n, name);
    v
}

fn decode(name: &str, header: &str, keys: &KeyRing) -> Result<Option<Verified>, Rejection> {
    let cookies = RequestCookies::parse([header], DEFAULT_MAX_HEADER_LEN)?;
    NativeFormat.decode(name, &cookies, keys)
}

/// Replaces the character at `pos` with another one from the id/base64url alphabet.
fn flip(text: &str, pos: usize) -> String {
    let mut bytes = text.as_bytes().to_vec();
    bytes[pos] = if bytes[pos] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn round_trip() {
    let keys = KeyRing::generate().unwrap();
    let id = SessionId::generate().unwrap();
    let value = value_for("id", &id, &keys);
    assert_eq!(value.len(), 76);
    assert!(value.starts_with(id.as_str()));
    let verified = decode("id", &format!("a=b; id={value}; c=d"), &keys)
        .unwrap()
        .unwrap();
    assert_eq!(verified.id, id);
    assert_eq!(verified.key_index, 0);
    assert!(!verified.needs_resign());
}

#[test]
fn no_cookie_is_not_an_error() {
    let keys = KeyRing::generate().unwrap();
    assert_eq!(decode("id", "a=b; other=c", &keys), Ok(None));
    assert_eq!(decode("id", "", &keys), Ok(None));
}

#[test]
fn tampered_id_signature_or_name_is_rejected() {
    let keys = KeyRing::generate().unwrap();
    let id = SessionId::generate().unwrap();
    let value = value_for("id", &id, &keys);

    for pos in [0, 5, 31] {
        let tampered = flip(&value, pos);
        assert_eq!(
            decode("id", &format!("id={tampered}"), &keys),
            Err(Rejection::BadSignature),
            "id char {pos}"
        );
    }
    for pos in [33, 50, 74] {
        let tampered = flip(&value, pos);
        assert_eq!(
            decode("id", &format!("id={tampered}"), &keys),
            Err(Rejection::BadSignature),
            "sig char {pos}"
        );
    }
    // The last base64 character of a 32-byte tag carries 2 unused bits; changing them makes the
    // encoding non-canonical, which the decoder refuses rather than accepting a second spelling.
    let last = flip(&value, 75);
    assert!(decode("id", &format!("id={last}"), &keys).is_err());

    // The same value moved to another cookie name.
    assert_eq!(
        decode("sid", &format!("sid={value}"), &keys),
        Err(Rejection::BadSignature)
    );
    // Signed for another name, presented under ours.
    let other = value_for("sid", &id, &keys);
    assert_eq!(
        decode("id", &format!("id={other}"), &keys),
        Err(Rejection::BadSignature)
    );
}

#[test]
fn another_key_does_not_verify() {
    let keys = KeyRing::generate().unwrap();
    let stranger = KeyRing::generate().unwrap();
    let id = SessionId::generate().unwrap();
    let value = value_for("id", &id, &stranger);
    assert_eq!(
        decode("id", &format!("id={value}"), &keys),
        Err(Rejection::BadSignature)
    );
}

#[test]
fn old_key_verifies_and_asks_for_resign_retired_key_fails() {
    let mut keys = KeyRing::generate().unwrap();
    let id = SessionId::generate().unwrap();
    let old_value = value_for("id", &id, &keys);

    keys.rotate(Key::generate().unwrap());
    let verified = decode("id", &format!("id={old_value}"), &keys)
        .unwrap()
        .unwrap();
    assert_eq!(verified.id, id);
    assert_eq!(verified.key_index, 1);
    assert!(verified.needs_resign());

    let new_value = value_for("id", &id, &keys);
    assert_ne!(new_value, old_value, "re-signed with the newest key");
    let verified = decode("id", &format!("id={new_value}"), &keys)
        .unwrap()
        .unwrap();
    assert!(!verified.needs_resign());

    let retired = keys.retire_oldest();
    assert!(retired.is_some());
    assert_eq!(
        decode("id", &format!("id={old_value}"), &keys),
        Err(Rejection::BadSignature)
    );
    assert!(
        decode("id", &format!("id={new_value}"), &keys)
            .unwrap()
            .is_some()
    );
}

#[test]
fn ring_never_empties() {
    let mut keys = KeyRing::generate().unwrap();
    assert!(keys.retire_oldest().is_none());
    keys.rotate(Key::generate().unwrap());
    keys.rotate(Key::generate().unwrap());
    assert_eq!(keys.len(), 3);
    keys.retain(0);
    assert_eq!(keys.len(), 1);
    assert!(!keys.is_empty());
}

#[test]
fn first_valid_of_duplicate_cookies_wins() {
    let keys = KeyRing::generate().unwrap();
    let id = SessionId::generate().unwrap();
    let value = value_for("id", &id, &keys);
    let header = format!("id=garbage; id={value}");
    assert_eq!(decode("id", &header, &keys).unwrap().unwrap().id, id);
}

#[test]
fn oversized_header_and_value_are_rejected() {
    let keys = KeyRing::generate().unwrap();
    let id = SessionId::generate().unwrap();
    let value = value_for("id", &id, &keys);
    let header = format!("id={value}; junk={}", "x".repeat(DEFAULT_MAX_HEADER_LEN));
    assert_eq!(decode("id", &header, &keys), Err(Rejection::TooLarge));

    let long_value = format!("id={}", "a".repeat(MAX_VALUE_LEN + 1));
    assert_eq!(decode("id", &long_value, &keys), Err(Rejection::TooLarge));

    // Several headers count together.
    let half = format!("a={}", "x".repeat(DEFAULT_MAX_HEADER_LEN / 2 + 10));
    let cookies = RequestCookies::parse([half.as_str(), half.as_str()], DEFAULT_MAX_HEADER_LEN);
    assert_eq!(cookies.unwrap_err(), Rejection::TooLarge);
}

#[test]
fn garbage_is_rejected_without_panicking() {
    let keys = KeyRing::generate().unwrap();
    let id = SessionId::generate().unwrap();
    let value = value_for("id", &id, &keys);
    let (id_part, sig_part) = value.split_once('.').unwrap();
    let garbage = [
        String::new(),
        ".".to_owned(),
        "....".to_owned(),
        id_part.to_owned(),
        format!("{id_part}."),
        format!(".{sig_part}"),
        format!("{id_part}.{sig_part}="),
        format!("{id_part}.{}", &sig_part[..42]),
        format!("{id_part}.{sig_part}A"),
        format!("{id_part}.{}", sig_part.replace(|_| true, "+")),
        format!("{id_part}x.{sig_part}"),
        format!("s:{value}"),
        "é".repeat(40),
        "%00%ff".to_owned(),
        "\u{1F600}.\u{1F600}".to_owned(),
    ];
    for g in &garbage {
        let result = decode("id", &format!("id={g}"), &keys);
        assert!(
            matches!(
                result,
                Err(Rejection::Malformed | Rejection::BadSignature) | Ok(None)
            ),
            "{g:?}: {result:?}"
        );
        assert!(!matches!(result, Ok(Some(_))), "{g:?} verified");
    }
    // Malformed headers overall.
    for header in [";;;", "=", "id", "id==", "; id=; ;", "\u{0}"] {
        assert!(
            !matches!(decode("id", header, &keys), Ok(Some(_))),
            "{header:?}"
        );
    }
}

#[test]
fn keys_are_redacted_and_validated() {
    let key = Key::generate().unwrap();
    assert_eq!(key.expose_secret().len(), GENERATED_KEY_LEN);
    let debug = format!("{key:?} {:?}", KeyRing::new(key.clone()));
    assert!(!debug.contains(&key.to_base64()));
    assert!(!debug.contains(&key.to_base64()[..10]));

    assert!(Key::from_bytes(&[1u8; MIN_KEY_LEN - 1]).is_err());
    assert!(Key::from_bytes(&[1u8; MIN_KEY_LEN]).is_ok());
    // Standard and URL-safe alphabets, padded or not.
    let bytes: Vec<u8> = (0..48u8).map(|b| b.wrapping_mul(37) ^ 0xfb).collect();
    let std = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes);
    let url = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE, &bytes);
    assert!(std.contains('+') || std.contains('/'));
    assert_eq!(Key::from_base64(&std).unwrap().expose_secret(), &bytes[..]);
    assert_eq!(Key::from_base64(&url).unwrap().expose_secret(), &bytes[..]);
    let err = Key::from_base64("secret!secret!secret!secret!secret!secret!secret!").unwrap_err();
    assert!(!err.to_string().contains("secret!"));
    assert!(Key::from_base64("c2hvcnQ=").is_err(), "decodes to 5 bytes");
}

#[test]
fn cookie_attributes() {
    let keys = KeyRing::generate().unwrap();
    let id = SessionId::generate().unwrap();
    let now = Timestamp::from_millis(1_700_000_000_000);
    let expires = now + Duration::from_millis(90_500);

    let text = CookieConfig::new().set_cookies(&id, Some(expires), now, &keys)[0].to_string();
    assert!(text.starts_with(&format!("{DEFAULT_COOKIE_NAME}={}", id.as_str())));
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=90"] {
        assert!(text.contains(attr), "{attr} missing in {text}");
    }
    assert!(!text.contains("Domain"));

    let config = CookieConfig::new()
        .secure(false)
        .persistent(false)
        .domain(Some("example.com".into()))
        .same_site(cookie::SameSite::Strict)
        .path("/app");
    let text = config.set_cookies(&id, Some(expires), now, &keys)[0].to_string();
    assert!(!text.contains("Secure"), "{text}");
    assert!(!text.contains("Max-Age"), "{text}");
    assert!(text.contains("Domain=example.com") && text.contains("SameSite=Strict"));
    assert!(text.contains("Path=/app"));

    // A browser session gets no Max-Age even with persistent cookies.
    let text = CookieConfig::new().set_cookies(&id, None, now, &keys)[0].to_string();
    assert!(!text.contains("Max-Age"), "{text}");

    let removal = CookieConfig::new().removal_cookies()[0].to_string();
    assert!(removal.starts_with("id=;"), "{removal}");
    assert!(removal.contains("Max-Age=0") && removal.contains("Expires="));
    assert!(removal.contains("Path=/"));
}

#[test]
fn config_read_uses_its_name_and_limit() {
    let keys = KeyRing::generate().unwrap();
    let id = SessionId::generate().unwrap();
    let config = CookieConfig::new().name("sb").max_header_len(100);
    let cookie = config
        .set_cookies(&id, None, Timestamp::now(), &keys)
        .remove(0);
    let header = cookie.stripped().to_string();
    assert_eq!(
        config.read([header.as_str()], &keys).unwrap().unwrap().id,
        id
    );
    let long = format!("{header}; pad={}", "p".repeat(100));
    assert_eq!(
        config.read([long.as_str()], &keys),
        Err(Rejection::TooLarge)
    );
    assert_eq!(CookieConfig::new().read([header.as_str()], &keys), Ok(None));
}

#[test]
fn random_input_never_panics_or_verifies() {
    let keys = KeyRing::generate().unwrap();
    let id = SessionId::generate().unwrap();
    let valid = value_for("id", &id, &keys);
    let alphabet: Vec<char> = "AZaz09-_.=;, %\"\\s:\u{e9}\u{0}\u{7f}\u{1F600}"
        .chars()
        .collect();
    // A small deterministic generator: the same inputs on every run.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..5_000 {
        let len = (next() % 120) as usize;
        let text: String = if round % 2 == 0 {
            (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect()
        } else {
            // Mutate the valid value in a few places.
            let mut bytes = valid.clone().into_bytes();
            for _ in 0..=(next() % 3) {
                let pos = (next() % bytes.len() as u64) as usize;
                bytes[pos] = b"AZaz09-_.="[(next() % 10) as usize];
            }
            String::from_utf8(bytes).unwrap()
        };
        if text == valid {
            continue;
        }
        let result = decode("id", &format!("id={text}"), &keys);
        assert!(!matches!(result, Ok(Some(_))), "{text:?} verified");
    }
}

/// A two-cookie format in Keygrip's shape (`name` carries the id, `name.sig` the signature),
/// to show the trait fits formats that span several cookies.
#[derive(Debug)]
struct TwoCookies;

impl CookieFormat for TwoCookies {
    fn encode(&self, name: &str, id: &SessionId, keys: &KeyRing) -> Vec<(String, String)> {
        use base64::Engine;
        let tag = keys
            .newest()
            .hmac_sha256(&[name.as_bytes(), b"=", id.as_str().as_bytes()]);
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag);
        vec![
            (name.to_owned(), id.as_str().to_owned()),
            (format!("{name}.sig"), sig),
        ]
    }

    fn decode(
        &self,
        name: &str,
        cookies: &RequestCookies<'_>,
        keys: &KeyRing,
    ) -> Result<Option<Verified>, Rejection> {
        use base64::Engine;
        let Some(value) = cookies.get(name) else {
            return Ok(None);
        };
        let sig_name = format!("{name}.sig");
        let sig = cookies.get(&sig_name).ok_or(Rejection::BadSignature)?;
        let id = SessionId::parse(value).map_err(|_| Rejection::Malformed)?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| Rejection::Malformed)?;
        let key_index = keys
            .find(|k| k.verify_hmac_sha256(&[name.as_bytes(), b"=", value.as_bytes()], &tag))
            .ok_or(Rejection::BadSignature)?;
        Ok(Some(Verified { id, key_index }))
    }

    fn cookie_names(&self, name: &str) -> Vec<String> {
        vec![name.to_owned(), format!("{name}.sig")]
    }
}

#[test]
fn a_two_cookie_format_fits_the_trait() {
    let keys = KeyRing::generate().unwrap();
    let id = SessionId::generate().unwrap();
    let config = CookieConfig::new().format(TwoCookies);
    let cookies = config.set_cookies(&id, None, Timestamp::now(), &keys);
    assert_eq!(cookies.len(), 2);
    let header = cookies
        .iter()
        .map(|c| c.stripped().to_string())
        .collect::<Vec<_>>()
        .join("; ");
    assert_eq!(
        config.read([header.as_str()], &keys).unwrap().unwrap().id,
        id
    );
    let without_sig = cookies[0].stripped().to_string();
    assert_eq!(
        config.read([without_sig.as_str()], &keys),
        Err(Rejection::BadSignature)
    );
    let removal: Vec<String> = config
        .removal_cookies()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    assert_eq!(removal, ["id", "id.sig"]);
}

#[test]
fn host_prefix_forces_its_rules_and_round_trips() {
    let keys = KeyRing::generate().unwrap();
    let config = CookieConfig::new()
        .name("sid")
        .domain(Some("example.com".into()))
        .path("/app")
        .secure(false)
        .host_prefix(true);
    let id = SessionId::generate().unwrap();
    let cookie = config
        .set_cookies(&id, None, Timestamp::now(), &keys)
        .remove(0);
    assert_eq!(cookie.name(), "__Host-sid");
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(cookie.domain(), None);
    let header = cookie.stripped().to_string();
    assert_eq!(
        config.read([header.as_str()], &keys).unwrap().map(|v| v.id),
        Some(id)
    );
    // The bare name is not the session cookie any more, and the removal targets the prefixed one.
    let bare = header.replacen("__Host-", "", 1);
    assert_eq!(config.read([bare.as_str()], &keys), Ok(None));
    assert!(
        config.removal_cookies()[0]
            .to_string()
            .starts_with("__Host-sid=;")
    );
}

#[test]
fn header_token_round_trips_and_the_scheme_is_case_insensitive() {
    let keys = KeyRing::generate().unwrap();
    let id = SessionId::generate().unwrap();
    let config = HeaderConfig::bearer();
    let token = config.token(&id, &keys);
    assert_eq!(token.len(), 76);
    for sent in [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER    {token}"),
        format!("  Bearer {token}  "),
    ] {
        let verified = config.read([sent.as_str()], &keys).unwrap().unwrap();
        assert_eq!((verified.id, verified.key_index), (id, 0), "{sent}");
    }
    // No token, or another scheme: none sent. A bare token without the scheme: not ours either.
    assert_eq!(config.read([], &keys), Ok(None));
    assert_eq!(config.read(["", "   "], &keys), Ok(None));
    assert_eq!(config.read(["Basic dXNlcjpwdw=="], &keys), Ok(None));
    assert_eq!(config.read([token.as_str()], &keys), Ok(None));
    assert_eq!(
        config.read([format!("Bearer{token}").as_str()], &keys),
        Ok(None)
    );
    assert_eq!(config.read(["Bearer"], &keys), Err(Rejection::Malformed));
    assert_eq!(config.read(["Bearer   "], &keys), Err(Rejection::Malformed));
}

#[test]
fn header_tokens_and_cookies_do_not_verify_as_each_other() {
    let keys = KeyRing::generate().unwrap();
    let id = SessionId::generate().unwrap();
    let bearer = HeaderConfig::bearer();
    let custom = HeaderConfig::custom("x-session-token").unwrap();
    let cookie = CookieConfig::new();

    let token = bearer.token(&id, &keys);
    let cookie_value = value_for("id", &id, &keys);
    assert_eq!(
        cookie.read([format!("id={token}").as_str()], &keys),
        Err(Rejection::BadSignature)
    );
    assert_eq!(
        bearer.read([format!("Bearer {cookie_value}").as_str()], &keys),
        Err(Rejection::BadSignature)
    );
    assert_eq!(
        custom.read([token.as_str()], &keys),
        Err(Rejection::BadSignature)
    );
    // A cookie whose name mimics the context does not help: `:` is no cookie-name character,
    // and the format signs what it is given.
    assert_eq!(
        custom.read([value_for("x-session-token", &id, &keys).as_str()], &keys),
        Err(Rejection::BadSignature)
    );
    assert_eq!(
        custom
            .read([custom.token(&id, &keys).as_str()], &keys)
            .unwrap()
            .map(|v| v.id),
        Some(id)
    );
}

#[test]
fn header_tokens_reject_tampering_oversize_and_garbage_and_the_first_valid_wins() {
    let keys = KeyRing::generate().unwrap();
    let id = SessionId::generate().unwrap();
    let config = HeaderConfig::custom("X-Api-Session").unwrap();
    let token = config.token(&id, &keys);
    assert_eq!(
        config.read([flip(&token, 3).as_str()], &keys),
        Err(Rejection::BadSignature)
    );
    assert_eq!(
        config.read([flip(&token, 50).as_str()], &keys),
        Err(Rejection::BadSignature)
    );
    let huge = "A".repeat(MAX_VALUE_LEN + 1);
    assert_eq!(
        config.read([huge.as_str()], &keys),
        Err(Rejection::TooLarge)
    );
    for junk in ["....", "x", "%ff%00", "a.b.c", "Bearer x"] {
        assert!(config.read([junk], &keys).is_err(), "{junk}");
    }
    // Several values: the first that verifies wins; else the first failure.
    let verified = config
        .read(["junk", huge.as_str(), token.as_str()], &keys)
        .unwrap()
        .unwrap();
    assert_eq!(verified.id, id);
    assert_eq!(
        config.read([huge.as_str(), "junk"], &keys),
        Err(Rejection::TooLarge)
    );

    // Rotation: an older key verifies and asks for a re-sign.
    let mut rotated = keys.clone();
    rotated.rotate(Key::generate().unwrap());
    assert!(
        config
            .read([token.as_str()], &rotated)
            .unwrap()
            .unwrap()
            .needs_resign()
    );
}

#[test]
fn header_names_are_validated_and_lowercased() {
    use sessionbank_core::ErrorKind;

    for bad in ["", "x session", "x:y", "x\r\ny", "é", "(x)", "a/b"] {
        let err = HeaderConfig::custom(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}");
        let err = HeaderConfig::bearer().response_header(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}");
    }
    let config = HeaderConfig::custom("X-API-Session")
        .unwrap()
        .response_header("X-New-Token")
        .unwrap();
    assert_eq!(config.request_header_name(), "x-api-session");
    assert_eq!(config.response_header_name(), "x-new-token");
    assert_eq!(Transport::from(config).request_header(), "x-api-session");
}

#[test]
fn transport_issues_and_revokes_per_kind() {
    let keys = KeyRing::generate().unwrap();
    let id = SessionId::generate().unwrap();
    let now = Timestamp::now();
    let later = Some(now + Duration::from_secs(60));

    let cookie = Transport::default();
    assert!(cookie.is_persistent());
    assert_eq!(cookie.request_header(), "cookie");
    let issued = cookie.issue(&id, later, now, &keys);
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].name, "set-cookie");
    assert!(issued[0].value.starts_with("id=") && issued[0].value.contains("Max-Age=60"));
    let revoked = cookie.revoke();
    assert_eq!(revoked[0].name, "set-cookie");
    assert!(revoked[0].value.contains("Max-Age=0"));
    assert!(cookie.as_cookie().is_some() && cookie.as_header().is_none());

    let header = Transport::from(HeaderConfig::bearer());
    assert!(!header.is_persistent());
    let issued = header.issue(&id, later, now, &keys);
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].name, "x-session-token");
    assert_eq!(issued[0].value.len(), 76);
    let debug = format!("{:?}", issued[0]);
    assert!(!debug.contains(id.as_str()), "{debug}");
    assert_eq!(
        header.revoke(),
        vec![ResponseHeader {
            name: "x-session-token".into(),
            value: String::new()
        }]
    );
    assert!(header.as_header().is_some() && header.as_cookie().is_none());
}

/// A short legacy secret (fine for the Node formats) never signs or verifies sessionbank's own
/// cookies or tokens: a value made with one is rejected, and the transport check names the key.
#[test]
fn legacy_secrets_are_refused_by_the_native_format_and_tokens() {
    let legacy = KeyRing::new(Key::from_legacy_secret("s").unwrap());
    let id = SessionId::generate().unwrap();
    let value = value_for("id", &id, &legacy);
    assert_eq!(
        decode("id", &format!("id={value}"), &legacy),
        Err(Rejection::BadSignature),
        "a native value signed with a one-byte secret must not verify"
    );
    let header = Transport::from(HeaderConfig::bearer());
    let token = header.issue(&id, None, Timestamp::now(), &legacy).remove(0);
    let bearer = format!("Bearer {}", token.value);
    assert!(header.read([bearer.as_str()], &legacy).is_err());

    for transport in [Transport::default(), header] {
        let err = transport.check_keys(&legacy).unwrap_err();
        assert_eq!(err.kind(), sessionbank_core::ErrorKind::Config);
        assert!(err.to_string().contains("key number 1"), "{err}");
        assert!(err.to_string().contains("1 bytes"), "{err}");
    }
    // The Node formats keep their short secrets; a strong key in a ring with a legacy one
    // still makes the ring unfit for native cookies.
    for format in [
        Transport::from(CookieConfig::new().format(ExpressFormat)),
        Transport::from(CookieConfig::new().format(KeygripFormat::new())),
    ] {
        assert!(format.check_keys(&legacy).is_ok());
    }
    let mut mixed = KeyRing::generate().unwrap();
    mixed.rotate(Key::from_legacy_secret("short").unwrap());
    assert!(Transport::default().check_keys(&mixed).is_err());
    assert!(!mixed.keys()[1].is_legacy());
}
