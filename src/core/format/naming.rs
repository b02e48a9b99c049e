//! Snapshot and index names follow Elasticsearch's rules.

/// Why a name is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} name must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} name [{name}] must be lowercase")]
    NotLowercase { kind: &'static str, name: String },
    #[error("{kind} name [{name}] must not contain {what}")]
    ForbiddenChar {
        kind: &'static str,
        name: String,
        what: String,
    },
    #[error("{kind} name [{name}] must not start with '{first}'")]
    ForbiddenStart {
        kind: &'static str,
        name: String,
        first: char,
    },
    #[error("{kind} name [{name}...] is longer than 255 bytes")]
    TooLong { kind: &'static str, name: String },
    #[error("{kind} name [{name}] is reserved")]
    Reserved { kind: &'static str, name: String },
}

const FORBIDDEN: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ',', '#'];

/// Validates a snapshot or index name (`kind` is "snapshot" or "index").
pub fn validate_name(kind: &'static str, name: &str) -> Result<(), NameError> {
    let owned = || name.to_string();
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if name.len() > 255 {
        let mut cut = 40;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        return Err(NameError::TooLong {
            kind,
            name: name[..cut].to_string(),
        });
    }
    if name == "." || name == ".." {
        return Err(NameError::Reserved {
            kind,
            name: owned(),
        });
    }
    if name.to_lowercase() != name {
        return Err(NameError::NotLowercase {
            kind,
            name: owned(),
        });
    }
    if let Some(c) = name
        .chars()
        .find(|c| FORBIDDEN.contains(c) || c.is_whitespace() || c.is_control())
    {
        let what = if c.is_whitespace() {
            "whitespace".to_string()
        } else if c.is_control() {
            format!("control character {:?}", c)
        } else {
            format!("'{c}'")
        };
        return Err(NameError::ForbiddenChar {
            kind,
            name: owned(),
            what,
        });
    }
    let first = name.chars().next().unwrap();
    if matches!(first, '_' | '-' | '+') {
        return Err(NameError::ForbiddenStart {
            kind,
            name: owned(),
            first,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn accepts_elasticsearch_style_names() {
        for ok in [
            "snap-1",
            "nightly.2024.01.01",
            "ünïcode",
            "a_b",
            "a+b",
            "a-",
        ] {
            validate_name("snapshot", ok).unwrap();
        }
    }

    #[test]
    fn rejects_each_rule_with_a_named_error() {
        assert!(matches!(
            validate_name("snapshot", ""),
            Err(NameError::Empty { .. })
        ));
        assert!(matches!(
            validate_name("snapshot", "Snap"),
            Err(NameError::NotLowercase { .. })
        ));
        for bad in [
            "a b", "a/b", "a\\b", "a*", "a?", "a\"", "a<", "a>", "a|", "a,b", "a#", "a\tb",
        ] {
            assert!(
                matches!(
                    validate_name("index", bad),
                    Err(NameError::ForbiddenChar { .. })
                ),
                "{bad}"
            );
        }
        for bad in ["_a", "-a", "+a"] {
            assert!(matches!(
                validate_name("index", bad),
                Err(NameError::ForbiddenStart { .. })
            ));
        }
        assert!(matches!(
            validate_name("index", &"a".repeat(256)),
            Err(NameError::TooLong { .. })
        ));
        validate_name("index", &"a".repeat(255)).unwrap();
        assert!(matches!(
            validate_name("index", ".."),
            Err(NameError::Reserved { .. })
        ));
    }
}
