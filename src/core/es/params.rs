//! Query-string parameters as ES reads them (reference 1.4): strict
//! booleans (`true`, `false`, empty = true), time values, and refusal of
//! unknown parameters.

use super::errors::EsError;
use super::units::parse_time_value;

/// Accepted by every endpoint.
pub const COMMON: [&str; 4] = ["pretty", "human", "error_trace", "filter_path"];

/// A request's query pairs, in order, already percent-decoded.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a>(pub &'a [(String, String)]);

impl<'a> Params<'a> {
    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// 400 `contains unrecognized parameter` for any name outside
    /// [`COMMON`] and `allowed` (`path` is the request path).
    pub fn check_known(&self, path: &str, allowed: &[&str]) -> Result<(), EsError> {
        let mut unknown: Vec<&str> = self
            .0
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !COMMON.contains(k) && !allowed.contains(k))
            .collect();
        unknown.dedup();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(EsError::unrecognized_parameters(path, &unknown))
        }
    }

    /// A boolean parameter: absent gives `default`, empty gives `true`.
    pub fn bool(&self, name: &str, default: bool) -> Result<bool, EsError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => parse_bool(v),
        }
    }

    /// A time parameter (`master_timeout=30s`) in milliseconds.
    pub fn time(&self, name: &str) -> Result<Option<i64>, EsError> {
        self.get(name)
            .map(|v| {
                parse_time_value(v).ok_or_else(|| {
                    EsError::parse(format!(
                        "failed to parse setting [{name}] with value [{v}] as a time value: \
                         unit is missing or unrecognized"
                    ))
                })
            })
            .transpose()
    }
}

/// ES 8's strict boolean: `true`, `false`, or empty (`true`).
pub fn parse_bool(v: &str) -> Result<bool, EsError> {
    match v {
        "" | "true" => Ok(true),
        "false" => Ok(false),
        other => Err(EsError::illegal_argument(format!(
            "Failed to parse value [{other}] as only [true] or [false] are allowed."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn booleans_are_strict_and_empty_means_true() {
        let pairs = q(&[("a", ""), ("b", "false"), ("c", "yes"), ("d", "true")]);
        let p = Params(&pairs);
        assert_eq!(p.bool("a", false), Ok(true));
        assert_eq!(p.bool("b", true), Ok(false));
        assert_eq!(p.bool("d", false), Ok(true));
        assert_eq!(p.bool("missing", true), Ok(true));
        let e = p.bool("c", false).unwrap_err();
        assert_eq!(e.kind, "illegal_argument_exception");
        assert_eq!(
            e.reason,
            "Failed to parse value [yes] as only [true] or [false] are allowed."
        );
    }

    #[test]
    fn unknown_parameters_are_refused_and_common_ones_accepted() {
        let pairs = q(&[
            ("pretty", ""),
            ("master_timeout", "30s"),
            ("x", "1"),
            ("y", ""),
        ]);
        let p = Params(&pairs);
        assert_eq!(
            p.check_known("/_snapshot", &["master_timeout", "x", "y"]),
            Ok(())
        );
        let e = p
            .check_known("/_snapshot", &["master_timeout"])
            .unwrap_err();
        assert_eq!(
            e.reason,
            "request [/_snapshot] contains unrecognized parameters: [x, y]"
        );
        assert_eq!(p.time("master_timeout"), Ok(Some(30_000)));
        assert_eq!(p.time("absent"), Ok(None));
        assert_eq!(p.time("x").unwrap_err().kind, "parse_exception");
    }

    #[test]
    fn the_last_value_wins() {
        let pairs = q(&[("v", "false"), ("v", "true")]);
        assert_eq!(Params(&pairs).get("v"), Some("true"));
    }
}
