//! The sign-in name: what the demo accepts, and the user agent it keeps beside it.

/// The most characters a name may have, after trimming.
pub(crate) const MAX_NAME_CHARS: usize = 64;

/// The most characters of the `User-Agent` header the demo keeps in a session.
pub(crate) const MAX_USER_AGENT_CHARS: usize = 200;

/// Checks a submitted name: surrounding whitespace is trimmed; what remains must have 1 to
/// [`MAX_NAME_CHARS`] characters and no control characters. The error is a sentence to show the
/// person who typed it.
pub(crate) fn validate_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("Please enter a name: it cannot be empty or only spaces.");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err("That name is too long: use at most 64 characters.");
    }
    if name.chars().any(char::is_control) {
        return Err("A name cannot contain control characters such as tabs or line breaks.");
    }
    Ok(name.to_owned())
}

/// The user agent as the demo stores it: control characters dropped, cut to
/// [`MAX_USER_AGENT_CHARS`] characters (on a character boundary), `None` when nothing is left.
pub(crate) fn clean_user_agent(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut cleaned: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT_CHARS + 1)
        .collect();
    if cleaned.chars().count() > MAX_USER_AGENT_CHARS {
        cleaned = cleaned.chars().take(MAX_USER_AGENT_CHARS - 1).collect();
        cleaned.push('…');
    }
    let cleaned = cleaned.trim().to_owned();
    (!cleaned.is_empty()).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_trimmed_names_of_1_to_64_characters() {
        assert_eq!(validate_name("  ada  ").unwrap(), "ada");
        assert_eq!(validate_name("x").unwrap(), "x");
        assert_eq!(validate_name("Zoë Ångström").unwrap(), "Zoë Ångström");
        let long = "é".repeat(64);
        assert_eq!(
            validate_name(&long).unwrap(),
            long,
            "64 characters, 128 bytes"
        );
        assert_eq!(
            validate_name("<script>alert(1)</script>").unwrap(),
            "<script>alert(1)</script>",
            "markup is text; the pages escape it"
        );
    }

    #[test]
    fn rejects_empty_long_and_control_characters() {
        for bad in ["", "   ", "\t\n"] {
            assert!(validate_name(bad).unwrap_err().contains("empty"), "{bad:?}");
        }
        assert!(validate_name(&"a".repeat(65)).unwrap_err().contains("64"));
        for bad in ["a\u{7}b", "a\nb", "a\0b", "a\u{1b}[31mb", "a\u{85}b"] {
            assert!(
                validate_name(bad).unwrap_err().contains("control"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn user_agent_is_cleaned_and_cut() {
        assert_eq!(
            clean_user_agent(b"Mozilla/5.0").as_deref(),
            Some("Mozilla/5.0")
        );
        assert_eq!(clean_user_agent(b"a\r\nb").as_deref(), Some("ab"));
        assert_eq!(clean_user_agent(b"  "), None);
        let long = "é".repeat(500);
        let cut = clean_user_agent(long.as_bytes()).unwrap();
        assert_eq!(cut.chars().count(), MAX_USER_AGENT_CHARS);
        assert!(cut.ends_with('…'));
        let exact = "u".repeat(MAX_USER_AGENT_CHARS);
        assert_eq!(clean_user_agent(exact.as_bytes()).unwrap(), exact);
        assert_eq!(
            clean_user_agent(&[0x66, 0xff, 0x67]).as_deref(),
            Some("f\u{fffd}g")
        );
    }
}
