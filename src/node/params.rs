//! Query parameters as Elasticsearch treats them: the endpoint's own plus
//! the common four, anything else refused; booleans strictly `true` or
//! `false` (empty counts as `true`).

use crate::node::reply::EsError;

/// Accepted by every endpoint (`filter_path`, `human` and `pretty` change
/// nothing yet: answers are compact JSON with raw values).
pub const COMMON: &[&str] = &["pretty", "human", "error_trace", "filter_path"];

#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Refuses parameters neither common nor in `allowed`, with ES's reason.
    pub fn check(&self, path: &str, allowed: &[&str]) -> Result<(), EsError> {
        let mut unknown: Vec<&str> = self
            .0
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !COMMON.contains(k) && !allowed.contains(k))
            .collect();
        unknown.dedup();
        match unknown.as_slice() {
            [] => Ok(()),
            [one] => Err(EsError::illegal_argument(format!(
                "request [{path}] contains unrecognized parameter: [{one}]"
            ))),
            many => Err(EsError::illegal_argument(format!(
                "request [{path}] contains unrecognized parameters: [{}]",
                many.join(", ")
            ))),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn flag(&self, name: &str, default: bool) -> Result<bool, EsError> {
        match self.get(name) {
            None => Ok(default),
            Some("" | "true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(EsError::illegal_argument(format!(
                "Failed to parse value [{v}] as only [true] or [false] are allowed."
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn unknown_parameters_and_loose_booleans_are_refused() {
        let q = p(&[("verify", "false"), ("pretty", "")]);
        assert!(q.check("/_snapshot/r", &["verify"]).is_ok());
        assert!(!q.flag("verify", true).unwrap());
        assert!(q.flag("pretty", false).unwrap());
        let e = p(&[("bogus", "1")])
            .check("/_snapshot/r", &["verify"])
            .unwrap_err();
        assert_eq!(
            e.reason,
            "request [/_snapshot/r] contains unrecognized parameter: [bogus]"
        );
        assert!(p(&[("verify", "yes")]).flag("verify", true).is_err());
    }
}
