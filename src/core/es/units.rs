//! ES's renderings of times, durations and sizes (reference 1.4, 1.9):
//! `strict_date_optional_time` in UTC with milliseconds, `TimeValue` and
//! `ByteSizeValue` strings (one decimal, truncated, `.0` dropped), and the
//! time values query parameters carry (`30s`).

use jiff::Timestamp;

/// `2020-07-06T21:55:18.128Z` (times outside jiff's range clamp to the epoch).
pub fn iso_millis(ms: i64) -> String {
    let ts = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let t = jiff::tz::Offset::UTC.to_datetime(ts);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `HH:mm:ss` in UTC (the `_cat/snapshots` time columns).
pub fn hms_utc(ms: i64) -> String {
    iso_millis(ms)[11..19].to_string()
}

/// `value/unit` with one decimal, truncated, and `.0` left out
/// (`Strings.format1Decimals`).
fn one_decimal(value: u128, unit: u128, suffix: &str) -> String {
    let tenths = value * 10 / unit;
    match tenths % 10 {
        0 => format!("{}{suffix}", tenths / 10),
        d => format!("{}.{d}{suffix}", tenths / 10),
    }
}

/// A duration in milliseconds as `TimeValue` prints it: `205ms`, `1.2s`,
/// `4.6m`, `1.5h`, `2d`, `0s`; negative values print as a bare number.
pub fn time_value(ms: i64) -> String {
    if ms < 0 {
        return ms.to_string();
    }
    let ms = ms as u128;
    const S: u128 = 1000;
    let (unit, suffix) = match ms {
        0 => return "0s".to_string(),
        m if m >= 86_400 * S => (86_400 * S, "d"),
        m if m >= 3600 * S => (3600 * S, "h"),
        m if m >= 60 * S => (60 * S, "m"),
        m if m >= S => (S, "s"),
        _ => (1, "ms"),
    };
    one_decimal(ms, unit, suffix)
}

/// A size as `ByteSizeValue` prints it: `0b`, `512b`, `1.2kb`, `10mb`.
pub fn byte_size(bytes: u64) -> String {
    let b = u128::from(bytes);
    let units = [
        (1u128 << 50, "pb"),
        (1 << 40, "tb"),
        (1 << 30, "gb"),
        (1 << 20, "mb"),
        (1 << 10, "kb"),
    ];
    for (unit, suffix) in units {
        if b >= unit {
            return one_decimal(b, unit, suffix);
        }
    }
    format!("{bytes}b")
}

/// A time query value (`30s`, `1m`, `500ms`, `-1`, `0`) in milliseconds;
/// `None` if ES would refuse it. `-1` means "no timeout".
pub fn parse_time_value(text: &str) -> Option<i64> {
    if text == "-1" || text == "0" {
        return text.parse().ok();
    }
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = text.split_at(split);
    let n: i64 = num.parse().ok()?;
    let per = match unit {
        "nanos" => return Some(n / 1_000_000),
        "micros" => return Some(n / 1000),
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(per)
}

/// Milliseconds in the `_cat` `time` unit (`d h m s ms micros nanos`).
pub fn time_in_unit(ms: i64, unit: &str) -> Option<String> {
    Some(match unit {
        "d" => (ms / 86_400_000).to_string(),
        "h" => (ms / 3_600_000).to_string(),
        "m" => (ms / 60_000).to_string(),
        "s" => (ms / 1000).to_string(),
        "ms" => ms.to_string(),
        "micros" => (i128::from(ms) * 1000).to_string(),
        "nanos" => (i128::from(ms) * 1_000_000).to_string(),
        _ => return None,
    })
}

/// Bytes in the `_cat` `bytes` unit (`b kb mb gb tb pb`), truncated.
pub fn bytes_in_unit(bytes: u64, unit: &str) -> Option<String> {
    let shift = match unit {
        "b" => 0,
        "kb" => 10,
        "mb" => 20,
        "gb" => 30,
        "tb" => 40,
        "pb" => 50,
        _ => return None,
    };
    Some((bytes >> shift).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn iso_times_have_three_fraction_digits() {
        assert_eq!(iso_millis(1_594_072_518_128), "2020-07-06T21:55:18.128Z");
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_millis(1_593_093_628_850), "2020-06-25T14:00:28.850Z");
        assert_eq!(hms_utc(1_445_616_705_000), "16:11:45");
    }

    #[test]
    fn durations_print_like_time_value() {
        assert_eq!(time_value(0), "0s");
        assert_eq!(time_value(205), "205ms");
        assert_eq!(time_value(1_250), "1.2s");
        assert_eq!(time_value(1_050), "1s");
        assert_eq!(time_value(273_000), "4.5m");
        assert_eq!(time_value(276_999), "4.6m");
        assert_eq!(time_value(5_400_000), "1.5h");
        assert_eq!(time_value(172_800_000), "2d");
        assert_eq!(time_value(-1), "-1");
    }

    #[test]
    fn sizes_print_like_byte_size_value() {
        assert_eq!(byte_size(0), "0b");
        assert_eq!(byte_size(512), "512b");
        assert_eq!(byte_size(1_280), "1.2kb");
        assert_eq!(byte_size(10 << 20), "10mb");
        assert_eq!(byte_size(3 << 40), "3tb");
    }

    #[test]
    fn time_values_parse_and_units_convert() {
        assert_eq!(parse_time_value("30s"), Some(30_000));
        assert_eq!(parse_time_value("1m"), Some(60_000));
        assert_eq!(parse_time_value("500ms"), Some(500));
        assert_eq!(parse_time_value("-1"), Some(-1));
        for bad in ["", "s", "30", "1.5s", "10x", "-2s"] {
            assert_eq!(parse_time_value(bad), None, "{bad}");
        }
        assert_eq!(time_in_unit(90_000, "m").as_deref(), Some("1"));
        assert_eq!(time_in_unit(2, "micros").as_deref(), Some("2000"));
        assert_eq!(time_in_unit(2, "weeks"), None);
        assert_eq!(bytes_in_unit(3 << 20, "mb").as_deref(), Some("3"));
        assert_eq!(bytes_in_unit(1, "bits"), None);
    }
}
