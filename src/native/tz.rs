//! Time zones by IANA name for lifecycle policies. The database is jiff's
//! bundled copy, so a policy's zone means the same on every machine
//! (a bare container has no /usr/share/zoneinfo).

use jiff::tz::TimeZone;

/// The zone `name` (`UTC`, `Europe/Berlin`), or `None` if unknown.
pub fn zone(name: &str) -> Option<TimeZone> {
    if name.eq_ignore_ascii_case("utc") || name == "Z" {
        return Some(TimeZone::UTC);
    }
    jiff::tz::db().get(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_names_resolve_and_unknown_ones_do_not() {
        let berlin = zone("Europe/Berlin").unwrap();
        let summer = "2027-07-01T12:00:00Z".parse::<jiff::Timestamp>().unwrap();
        assert_eq!(berlin.to_offset(summer).seconds(), 7200);
        assert!(zone("UTC").is_some());
        assert!(zone("Mars/Olympus_Mons").is_none());
    }
}
