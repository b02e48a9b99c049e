//! Snapshot and repository name rules, checked in Elasticsearch's order
//! with its descriptions (`SnapshotsServiceUtils.validate`,
//! `RepositoriesService.validateRepositoryName`; reference 1.6).
//!
//! A snapshot name ES accepts may still be one snapkeep's repository format
//! refuses (a leading `-` or `+`, over 255 bytes, `.`/`..`, control
//! characters: [`crate::core::format::naming`]). Those are reported with the
//! same exception type, after ES's own checks, so a client sees ES's text
//! wherever ES would have refused the name.

use super::errors::EsError;
use crate::core::format::naming::{validate_name, NameError};

/// `Strings.INVALID_FILENAME_CHARS`, in the order ES declares them (its
/// printed order is unspecified, so tests must not pin it).
pub const INVALID_FILENAME_CHARS: [char; 10] = ['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ','];

fn invalid_chars_list() -> String {
    let parts: Vec<String> = INVALID_FILENAME_CHARS.iter().map(char::to_string).collect();
    format!("[{}]", parts.join(", "))
}

fn has_invalid_filename_char(name: &str) -> bool {
    name.chars().any(|c| INVALID_FILENAME_CHARS.contains(&c))
}

/// What ES says is wrong with a snapshot name, if anything.
pub fn snapshot_name_problem(name: &str) -> Option<String> {
    let problem = if name.is_empty() {
        "cannot be empty".to_string()
    } else if name.chars().any(char::is_whitespace) {
        "must not contain whitespace".to_string()
    } else if name.contains(',') {
        "must not contain ','".to_string()
    } else if name.contains('#') {
        "must not contain '#'".to_string()
    } else if name.starts_with('_') {
        "must not start with '_'".to_string()
    } else if name.to_lowercase() != name {
        "must be lowercase".to_string()
    } else if has_invalid_filename_char(name) {
        format!(
            "must not contain the following characters {}",
            invalid_chars_list()
        )
    } else {
        return snapkeep_problem(name);
    };
    Some(problem)
}

/// snapkeep's format rules beyond ES's, as a description.
fn snapkeep_problem(name: &str) -> Option<String> {
    validate_name("snapshot", name).err().map(|e| match e {
        NameError::ForbiddenStart { first, .. } => format!("must not start with '{first}'"),
        NameError::TooLong { .. } => "must not be longer than 255 bytes".to_string(),
        NameError::Reserved { .. } => "must not be '.' or '..'".to_string(),
        NameError::ForbiddenChar { what, .. } => format!("must not contain {what}"),
        other => other.to_string(),
    })
}

/// 400 `invalid_snapshot_name_exception` unless `name` is a valid snapshot
/// name (already resolved from date math) for repository `repo`.
pub fn validate_snapshot_name(repo: &str, name: &str) -> Result<(), EsError> {
    match snapshot_name_problem(name) {
        None => Ok(()),
        Some(desc) => Err(EsError::invalid_snapshot_name(repo, name, &desc)),
    }
}

/// 500 `repository_exception` unless `name` is a valid repository name.
/// ES does not require lowercase repository names.
pub fn validate_repository_name(name: &str) -> Result<(), EsError> {
    let problem = if name.is_empty() {
        "cannot be empty".to_string()
    } else if name.contains('#') {
        "must not contain '#'".to_string()
    } else if has_invalid_filename_char(name) {
        format!(
            "must not contain the following characters {}",
            invalid_chars_list()
        )
    } else {
        return Ok(());
    };
    Err(EsError::repository(name, &problem))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn valid_snapshot_names_pass() {
        for ok in ["snap-1", "nightly-2024.01.01", "a_b", "a+b", "ünïcode"] {
            assert_eq!(validate_snapshot_name("r", ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn snapshot_checks_run_in_es_order() {
        let cases = [
            ("", "cannot be empty"),
            ("A b", "must not contain whitespace"),
            ("A,b", "must not contain ','"),
            ("_A#", "must not contain '#'"),
            ("_Ab", "must not start with '_'"),
            ("Ab*", "must be lowercase"),
        ];
        for (name, desc) in cases {
            assert_eq!(snapshot_name_problem(name).as_deref(), Some(desc), "{name}");
        }
        for bad in ["a*", "a?", "a/b", "a\\b", "a\"", "a<", "a>", "a|"] {
            let e = validate_snapshot_name("r", bad).unwrap_err();
            assert_eq!(e.kind, "invalid_snapshot_name_exception");
            assert_eq!(e.status, 400);
            let prefix =
                format!("[r:{bad}] Invalid snapshot name [{bad}], must not contain the following characters [");
            assert!(e.reason.starts_with(&prefix), "{}", e.reason);
        }
    }

    #[test]
    fn snapkeep_format_rules_follow_es_rules() {
        assert_eq!(
            snapshot_name_problem("-x").as_deref(),
            Some("must not start with '-'")
        );
        assert_eq!(
            snapshot_name_problem("..").as_deref(),
            Some("must not be '.' or '..'")
        );
        assert_eq!(
            snapshot_name_problem(&"a".repeat(256)).as_deref(),
            Some("must not be longer than 255 bytes")
        );
        assert!(snapshot_name_problem(&"a".repeat(255)).is_none());
    }

    #[test]
    fn repository_names_need_not_be_lowercase() {
        assert_eq!(validate_repository_name("My_Repo"), Ok(()));
        assert_eq!(validate_repository_name("_r"), Ok(()));
        let empty = validate_repository_name("").unwrap_err();
        assert_eq!(
            (empty.status, empty.kind, empty.reason.as_str()),
            (500, "repository_exception", "[] cannot be empty")
        );
        assert_eq!(
            validate_repository_name("a#b").unwrap_err().reason,
            "[a#b] must not contain '#'"
        );
        let space = validate_repository_name("a b").unwrap_err();
        assert!(space
            .reason
            .starts_with("[a b] must not contain the following characters ["));
    }
}
