//! Repository name rules and name expressions (comma lists, `*`
//! wildcards, `_all`, `-exclusions`), the few the node needs until
//! `core::es::names` takes over.

use axum::http::StatusCode;

use crate::node::reply::EsError;

/// Characters Elasticsearch refuses in repository and snapshot names.
const INVALID: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ','];

/// Refuses a repository name Elasticsearch would refuse.
pub fn check_repository(name: &str) -> Result<(), EsError> {
    let why = if name.is_empty() {
        Some("cannot be empty")
    } else if name.chars().any(char::is_whitespace) {
        Some("must not contain whitespace")
    } else if name.contains('#') {
        Some("must not contain '#'")
    } else if name.starts_with('_') {
        Some("must not start with '_'")
    } else if name.chars().any(char::is_uppercase) {
        Some("must be lowercase")
    } else if name.contains(INVALID) {
        Some("must not contain the following characters [\\, /, *, ?, \", <, >, |, ' ', ,]")
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(EsError::new(
            StatusCode::BAD_REQUEST,
            "invalid_repository_name_exception",
            format!("[{name}] Invalid repository name [{name}], {why}"),
        )),
    }
}

/// `*` matches any run of characters.
pub fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

/// The names an expression selects from `known`, in `known`'s order. A
/// plain name that is not known is returned as the error.
pub fn select<'a>(
    expr: Option<&str>,
    known: impl Iterator<Item = &'a str>,
) -> Result<Vec<String>, String> {
    let known: Vec<&str> = known.collect();
    let expr = expr.unwrap_or("_all");
    if expr == "_all" || expr.is_empty() {
        return Ok(known.iter().map(|s| s.to_string()).collect());
    }
    let mut chosen: Vec<bool> = vec![false; known.len()];
    for (i, part) in expr.split(',').enumerate() {
        if let Some(excluded) = part.strip_prefix('-').filter(|_| i > 0) {
            for (k, c) in known.iter().zip(chosen.iter_mut()) {
                if glob(excluded, k) {
                    *c = false;
                }
            }
        } else if part.contains('*') || part == "_all" {
            let part = if part == "_all" { "*" } else { part };
            for (k, c) in known.iter().zip(chosen.iter_mut()) {
                *c |= glob(part, k);
            }
        } else {
            let at = known
                .iter()
                .position(|k| *k == part)
                .ok_or_else(|| part.to_string())?;
            chosen[at] = true;
        }
    }
    Ok(known
        .iter()
        .zip(chosen)
        .filter(|(_, c)| *c)
        .map(|(k, _)| k.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_select_lists_wildcards_and_exclusions() {
        let known = ["alpha", "beta", "bravo", "gamma"];
        let sel = |e: Option<&str>| select(e, known.iter().copied());
        assert_eq!(sel(None).unwrap().len(), 4);
        assert_eq!(sel(Some("_all")).unwrap().len(), 4);
        assert_eq!(sel(Some("b*")).unwrap(), vec!["beta", "bravo"]);
        assert_eq!(sel(Some("*,-b*")).unwrap(), vec!["alpha", "gamma"]);
        assert_eq!(sel(Some("gamma,alpha")).unwrap(), vec!["alpha", "gamma"]);
        assert_eq!(sel(Some("x*")).unwrap(), Vec::<String>::new());
        assert_eq!(sel(Some("alpha,nope")).unwrap_err(), "nope");
    }

    #[test]
    fn repository_names_follow_es_rules() {
        assert!(check_repository("my_repo-1").is_ok());
        for bad in ["", "_x", "Upper", "a b", "a,b", "a#b", "a/b", "a*"] {
            let e = check_repository(bad).unwrap_err();
            assert_eq!(e.kind, "invalid_repository_name_exception", "{bad}");
        }
    }
}
