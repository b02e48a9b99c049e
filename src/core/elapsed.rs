//! Durations as people read them on a terminal, the way restic prints
//! them: `0:21` (minutes and seconds) under an hour, `1h02m` under a day,
//! `2d03h` beyond. Whole seconds, rounded down: a summary line is not the
//! place for milliseconds (`--json` keeps those).

/// `ms` milliseconds as `m:ss`, `XhYYm` or `XdYYh`.
pub fn clock_text(ms: u64) -> String {
    let secs = ms / 1000;
    let (mins, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
    if hours == 0 {
        format!("{mins}:{:02}", secs % 60)
    } else if days == 0 {
        format!("{hours}h{:02}m", mins % 60)
    } else {
        format!("{days}d{:02}h", hours % 24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn under_an_hour_reads_as_minutes_and_seconds() {
        assert_eq!(clock_text(0), "0:00");
        assert_eq!(clock_text(999), "0:00");
        assert_eq!(clock_text(21_400), "0:21");
        assert_eq!(clock_text(61_000), "1:01");
        assert_eq!(clock_text(3_599_999), "59:59");
    }

    #[test]
    fn hours_read_with_minutes_and_days_with_hours() {
        assert_eq!(clock_text(3_600_000), "1h00m");
        assert_eq!(clock_text((3600 + 2 * 60 + 59) * 1000), "1h02m");
        assert_eq!(clock_text(86_399_000), "23h59m");
        assert_eq!(clock_text((2 * 86_400 + 3 * 3600 + 1) * 1000), "2d03h");
    }
}
