//! Date math in snapshot names: `<nightly-{now/d}>`,
//! `<snap-{now/M{yyyy.MM}}>`, `<x-{now-1d/d{yyyy.MM.dd|+12:00}}>`
//! (the URL-decoded path segment), resolved against a time passed in, as
//! ES's `DateMathExpressionResolver` does (reference 1.9).
//!
//! Supported: `now` followed by any of `+N<unit>`, `-N<unit>`, `/<unit>`
//! (units `y M w d h H m s`; rounding truncates, weeks start on Monday);
//! the Java format letters `y u M d H m s S` and quoted or non-letter
//! literals (default `uuuu.MM.dd`); a fixed-offset time zone (`Z`, `UTC`,
//! `GMT`, `+HH`, `+HH:MM`, `+HHMM`), in which rounding and formatting both
//! happen. Region zones (`Europe/Paris`) would need a time-zone database
//! the pure core does not carry, so they are refused with a clear reason.
//! Calendar arithmetic is jiff's.

use jiff::civil::{DateTime, Time};
use jiff::tz::Offset;
use jiff::{Span, Timestamp};

use super::errors::EsError;

/// Why a date-math name could not be resolved; reported as ES's 400
/// `parse_exception` through [`DateMathError::to_es`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateMathError {
    #[error(
        "invalid dynamic name expression [{0}]. invalid character in placeholder at position [{1}]"
    )]
    BadPlaceholderChar(String, usize),
    #[error("invalid dynamic name expression [{0}]. invalid character at position [{1}]. `{{` and `}}` are reserved characters and should be escaped when used as part of the index name using `\\` (e.g. `\\{{text\\}}`)")]
    UnescapedBrace(String, usize),
    #[error("invalid dynamic name expression [{0}]. date math placeholder is open ended")]
    OpenEnded(String),
    #[error("invalid dynamic name expression [{0}]. missing closing `}}` for date math format")]
    MissingFormatClose(String),
    #[error("invalid dynamic name expression [{0}]. missing date format")]
    MissingFormat(String),
    #[error("nothing captured")]
    NothingCaptured,
    #[error("could not parse date math [{0}]: only expressions starting with `now` are supported")]
    NotNow(String),
    #[error("operator not supported for date math [{0}]")]
    BadOperator(String),
    #[error("truncated date math [{0}]")]
    Truncated(String),
    #[error("rounding `/` can only be used on single unit types [{0}]")]
    RoundingWithNumber(String),
    #[error("unit [{0}] not supported for date math [{1}]")]
    BadUnit(char, String),
    #[error("date math [{0}] is out of range")]
    OutOfRange(String),
    #[error(
        "time zone [{0}] is not a fixed offset (Z, UTC, +HH:MM); region zones are not supported"
    )]
    BadTimeZone(String),
    #[error("unsupported date format [{0}]: only the letters y u M d H m s S and literals are supported")]
    BadFormat(String),
}

impl DateMathError {
    pub fn to_es(&self) -> EsError {
        EsError::parse(self.to_string())
    }
}

/// The name `expr` stands for at `now_ms`: `expr` itself unless it is a
/// `<...>` date-math expression.
pub fn resolve_name(expr: &str, now_ms: i64) -> Result<String, DateMathError> {
    if !(expr.len() >= 2 && expr.starts_with('<') && expr.ends_with('>')) {
        return Ok(expr.to_string());
    }
    let inner: Vec<char> = expr[1..expr.len() - 1].chars().collect();
    let whole = || inner.iter().collect::<String>();
    let mut out = String::new();
    let mut placeholder = String::new();
    let (mut escape, mut in_placeholder, mut in_format) = (false, false, false);
    for (i, &c) in inner.iter().enumerate() {
        let escaped = std::mem::take(&mut escape);
        if c == '\\' && !escaped {
            escape = true;
            continue;
        }
        let pos = i + 1;
        if !in_placeholder {
            match c {
                '{' if !escaped => in_placeholder = true,
                '}' if !escaped => return Err(DateMathError::UnescapedBrace(whole(), pos)),
                _ => out.push(c),
            }
            continue;
        }
        match c {
            '{' if escaped && in_format => placeholder.push(c),
            '{' if !in_format => {
                in_format = true;
                placeholder.push(c);
            }
            '{' => return Err(DateMathError::BadPlaceholderChar(whole(), pos)),
            '}' if escaped && in_format => placeholder.push(c),
            '}' if in_format => {
                in_format = false;
                placeholder.push(c);
            }
            '}' => {
                out.push_str(&evaluate(&placeholder, now_ms)?);
                placeholder.clear();
                in_placeholder = false;
            }
            _ => placeholder.push(c),
        }
    }
    if in_placeholder {
        return Err(DateMathError::OpenEnded(whole()));
    }
    if out.is_empty() {
        return Err(DateMathError::NothingCaptured);
    }
    Ok(out)
}

/// One placeholder: `math`, or `math{format}` or `math{format|zone}`.
fn evaluate(placeholder: &str, now_ms: i64) -> Result<String, DateMathError> {
    let (math, format, offset) = match placeholder.find('{') {
        None => (placeholder, "uuuu.MM.dd", Offset::UTC),
        Some(open) => {
            if !placeholder.ends_with('}') {
                return Err(DateMathError::MissingFormatClose(placeholder.into()));
            }
            if open == placeholder.len() - 2 {
                return Err(DateMathError::MissingFormat(placeholder.into()));
            }
            let spec = &placeholder[open + 1..placeholder.len() - 1];
            let (format, offset) = match spec.split_once('|') {
                Some((f, zone)) => (f, parse_offset(zone)?),
                None => (spec, Offset::UTC),
            };
            (&placeholder[..open], format, offset)
        }
    };
    let local = offset.to_datetime(
        Timestamp::from_millisecond(now_ms).map_err(|_| DateMathError::OutOfRange(math.into()))?,
    );
    let at = apply_math(math, local)?;
    format_java(format, at)
}

fn apply_math(expr: &str, mut at: DateTime) -> Result<DateTime, DateMathError> {
    let math = expr
        .strip_prefix("now")
        .ok_or_else(|| DateMathError::NotNow(expr.into()))?;
    let chars: Vec<char> = math.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let (round, sign) = match chars[i] {
            '/' => (true, 1),
            '+' => (false, 1),
            '-' => (false, -1),
            _ => return Err(DateMathError::BadOperator(math.into())),
        };
        i += 1;
        let digits: String = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        i += digits.len();
        let num: i64 = if digits.is_empty() {
            1
        } else {
            digits
                .parse()
                .map_err(|_| DateMathError::OutOfRange(math.into()))?
        };
        if round && !digits.is_empty() {
            return Err(DateMathError::RoundingWithNumber(math.into()));
        }
        let unit = *chars
            .get(i)
            .ok_or_else(|| DateMathError::Truncated(math.into()))?;
        i += 1;
        at = if round {
            round_down(at, unit).ok_or_else(|| DateMathError::BadUnit(unit, math.into()))?
        } else {
            let span = span(unit, sign * num, math)?;
            at.checked_add(span)
                .map_err(|_| DateMathError::OutOfRange(math.into()))?
        };
    }
    Ok(at)
}

fn span(unit: char, n: i64, math: &str) -> Result<Span, DateMathError> {
    let s = Span::new();
    let span = match unit {
        'y' => s.try_years(n),
        'M' => s.try_months(n),
        'w' => s.try_weeks(n),
        'd' => s.try_days(n),
        'h' | 'H' => s.try_hours(n),
        'm' => s.try_minutes(n),
        's' => s.try_seconds(n),
        _ => return Err(DateMathError::BadUnit(unit, math.into())),
    };
    span.map_err(|_| DateMathError::OutOfRange(math.into()))
}

/// The start of the `unit` containing `at`; `None` for an unknown unit.
fn round_down(at: DateTime, unit: char) -> Option<DateTime> {
    let date = at.date();
    let midnight = Time::midnight();
    Some(match unit {
        'y' => date.first_of_year().to_datetime(midnight),
        'M' => date.first_of_month().to_datetime(midnight),
        'w' => {
            let back = i64::from(date.weekday().to_monday_zero_offset());
            date.checked_sub(Span::new().days(back))
                .ok()?
                .to_datetime(midnight)
        }
        'd' => date.to_datetime(midnight),
        'h' | 'H' => date.at(at.hour(), 0, 0, 0),
        'm' => date.at(at.hour(), at.minute(), 0, 0),
        's' => date.at(at.hour(), at.minute(), at.second(), 0),
        _ => return None,
    })
}

/// `Z`, `UTC`, `GMT` or `+HH`, `+HH:MM`, `+HHMM` (and `-`).
fn parse_offset(zone: &str) -> Result<Offset, DateMathError> {
    let bad = || DateMathError::BadTimeZone(zone.into());
    if matches!(zone, "Z" | "UTC" | "GMT" | "UT") {
        return Ok(Offset::UTC);
    }
    let (sign, rest) = match zone.as_bytes().first() {
        Some(b'+') => (1, &zone[1..]),
        Some(b'-') => (-1, &zone[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = match rest.len() {
        2 => (rest, "00"),
        4 => (&rest[..2], &rest[2..]),
        5 if &rest[2..3] == ":" => (&rest[..2], &rest[3..]),
        _ => return Err(bad()),
    };
    let digits = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse::<i32>().ok())
            .flatten()
    };
    let (h, m) = (digits(h).ok_or_else(bad)?, digits(m).ok_or_else(bad)?);
    if h > 18 || m > 59 {
        return Err(bad());
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60)).map_err(|_| bad())
}

/// Formats `at` with a Java `DateTimeFormatter` pattern's common letters.
fn format_java(pattern: &str, at: DateTime) -> Result<String, DateMathError> {
    let bad = || DateMathError::BadFormat(pattern.into());
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let close = chars[i + 1..]
                .iter()
                .position(|&q| q == '\'')
                .ok_or_else(bad)?;
            if close == 0 {
                out.push('\'');
            } else {
                out.extend(&chars[i + 1..i + 1 + close]);
            }
            i += close + 2;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        i += run;
        let (value, width) = match c {
            'y' | 'u' if run == 2 => (i64::from(at.year()).rem_euclid(100), 2),
            'y' | 'u' => (i64::from(at.year()), run),
            'M' if run <= 2 => (i64::from(at.month()), run),
            'd' if run <= 2 => (i64::from(at.day()), run),
            'H' if run <= 2 => (i64::from(at.hour()), run),
            'm' if run <= 2 => (i64::from(at.minute()), run),
            's' if run <= 2 => (i64::from(at.second()), run),
            'S' if run <= 3 => (
                i64::from(at.millisecond()) / 10_i64.pow(3 - run as u32),
                run,
            ),
            _ => return Err(bad()),
        };
        out.push_str(&format!("{value:0width$}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// 2024-03-06T22:30:15.250Z, a Wednesday.
    const NOW: i64 = 1_709_764_215_250;

    fn r(expr: &str) -> String {
        resolve_name(expr, NOW).unwrap()
    }

    #[test]
    fn plain_names_pass_through() {
        assert_eq!(r("snap-1"), "snap-1");
        assert_eq!(r("<"), "<");
    }

    #[test]
    fn resolves_with_the_default_format_and_rounding() {
        assert_eq!(r("<nightly-{now/d}>"), "nightly-2024.03.06");
        assert_eq!(r("<nightly-{now}>"), "nightly-2024.03.06");
        assert_eq!(r("<snap-{now/M{yyyy.MM}}>"), "snap-2024.03");
        assert_eq!(r("<x-{now-1d/d{yyyy.MM.dd}}>"), "x-2024.03.05");
        assert_eq!(r("<x-{now-1M/M{uuuu.MM.dd}}>"), "x-2024.02.01");
        assert_eq!(r("<x-{now/y{yyyy.MM.dd}}>"), "x-2024.01.01");
        assert_eq!(r("<x-{now/w{yyyy.MM.dd}}>"), "x-2024.03.04", "Monday");
        assert_eq!(r("<x-{now+2h/h{HH:mm:ss}}>"), "x-00:00:00");
        assert_eq!(r("<x-{now-30m/m{HH.mm.ss}}>"), "x-22.00.00");
        assert_eq!(r("<x-{now/s{HH.mm.ss.SSS}}>"), "x-22.30.15.000");
        assert_eq!(r("<x-{now{HH.mm.ss.SSS}}>"), "x-22.30.15.250");
        assert_eq!(r("<x-{now-1y+1w{yy.M.d}}>"), "x-23.3.13");
        assert_eq!(r("<a-{now/d}-b-{now/M{MM}}>"), "a-2024.03.06-b-03");
    }

    #[test]
    fn rounds_and_formats_in_the_given_offset() {
        assert_eq!(r("<x-{now/d{yyyy.MM.dd|+12:00}}>"), "x-2024.03.07");
        assert_eq!(r("<x-{now-1d/d{yyyy.MM.dd|+12:00}}>"), "x-2024.03.06");
        assert_eq!(r("<x-{now{HH:mm|-0530}}>"), "x-17:00");
        assert_eq!(r("<x-{now{HH|UTC}}>"), "x-22");
        assert_eq!(r("<x-{now{'T'HH'h'|+01}}>"), "x-T23h");
    }

    #[test]
    fn escaped_braces_are_literal() {
        assert_eq!(r("<a\\{b\\}-{now/d}>"), "a{b}-2024.03.06");
    }

    #[test]
    fn malformed_expressions_are_refused_with_a_reason() {
        let err = |e: &str| resolve_name(e, NOW).unwrap_err();
        assert!(matches!(err("<a-{now/d>"), DateMathError::OpenEnded(_)));
        assert!(matches!(err("<a}>"), DateMathError::UnescapedBrace(_, 2)));
        assert!(matches!(
            err("<{now{yy{MM}}>"),
            DateMathError::BadPlaceholderChar(..)
        ));
        assert!(matches!(
            err("<a-{now{}}>"),
            DateMathError::MissingFormat(_)
        ));
        assert!(matches!(err("<{}>"), DateMathError::NotNow(_)));
        assert!(matches!(err("<a-{now*1d}>"), DateMathError::BadOperator(_)));
        assert!(matches!(err("<a-{now-1}>"), DateMathError::Truncated(_)));
        assert!(matches!(
            err("<a-{now/2d}>"),
            DateMathError::RoundingWithNumber(_)
        ));
        assert!(matches!(
            err("<a-{now+1q}>"),
            DateMathError::BadUnit('q', _)
        ));
        assert!(matches!(err("<a-{now/q}>"), DateMathError::BadUnit('q', _)));
        assert!(matches!(
            err("<a-{now{yyyy|Europe/Paris}}>"),
            DateMathError::BadTimeZone(_)
        ));
        assert!(matches!(
            err("<a-{now{yyyy|+25:00}}>"),
            DateMathError::BadTimeZone(_)
        ));
        assert!(matches!(err("<a-{now{EEE}}>"), DateMathError::BadFormat(_)));
        assert!(matches!(err("<a-{now{'x}}>"), DateMathError::BadFormat(_)));
        assert!(matches!(
            err("<a-{now+99999999y}>"),
            DateMathError::OutOfRange(_)
        ));
        assert_eq!(err("<>"), DateMathError::NothingCaptured);
        let e = err("<a-{now/d>").to_es();
        assert_eq!((e.status, e.kind), (400, "parse_exception"));
        assert_eq!(
            e.reason,
            "invalid dynamic name expression [a-{now/d]. date math placeholder is open ended"
        );
    }
}
