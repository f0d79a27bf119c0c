//! Local time for people: UTC offsets and the quiet window.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, Utc};

/// `+08:00`, `-05:30`, `Z` or `UTC`.
pub fn parse_offset(text: &str) -> Option<FixedOffset> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("z") || text.eq_ignore_ascii_case("utc") {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = rest.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 14 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// `HH:MM` as a time of day.
pub fn parse_clock(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M").ok()
}

pub fn local_date(now: i64, offset: FixedOffset) -> NaiveDate {
    utc(now).with_timezone(&offset).date_naive()
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// When the quiet window that `now` falls in ends (epoch ms), or `None` if
/// `now` is outside it. The window may wrap midnight (21:00–09:00).
pub fn quiet_until(now: i64, offset: FixedOffset, start: NaiveTime, end: NaiveTime) -> Option<i64> {
    if start == end {
        return None;
    }
    let local = utc(now).with_timezone(&offset);
    let time = local.time();
    let quiet = if start < end {
        start <= time && time < end
    } else {
        time >= start || time < end
    };
    if !quiet {
        return None;
    }
    let mut ends = local.date_naive().and_time(end);
    if ends <= local.naive_local() {
        ends += Duration::days(1);
    }
    Some(ends.and_local_timezone(offset).single()?.timestamp_millis())
}

/// Whether a yearly date (`MM-DD` of `date`) falls on `today`; 29 February
/// is kept on 28 February in other years.
pub fn is_anniversary(date: NaiveDate, today: NaiveDate) -> bool {
    if (date.month(), date.day()) == (today.month(), today.day()) {
        return true;
    }
    let leap = NaiveDate::from_ymd_opt(today.year(), 2, 29).is_some();
    (date.month(), date.day()) == (2, 29) && (today.month(), today.day()) == (2, 28) && !leap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn offsets_and_quiet_windows() {
        let shanghai = parse_offset("+08:00").unwrap();
        assert_eq!(
            parse_offset("-05:30").unwrap().local_minus_utc(),
            -(5 * 3600 + 1800)
        );
        assert!(parse_offset("Asia/Shanghai").is_none());
        let (start, end) = (parse_clock("21:00").unwrap(), parse_clock("09:00").unwrap());
        // 23:30 in Shanghai: quiet until 09:00 the next morning.
        assert_eq!(
            quiet_until(at("2026-03-01T15:30:00Z"), shanghai, start, end),
            Some(at("2026-03-02T01:00:00Z"))
        );
        // 02:00 in Shanghai: quiet until 09:00 the same day.
        assert_eq!(
            quiet_until(at("2026-03-01T18:00:00Z"), shanghai, start, end),
            Some(at("2026-03-02T01:00:00Z"))
        );
        assert_eq!(
            quiet_until(at("2026-03-01T04:00:00Z"), shanghai, start, end),
            None
        );
        assert_eq!(
            quiet_until(at("2026-03-01T04:00:00Z"), shanghai, start, start),
            None
        );
    }

    #[test]
    fn leap_day_birthdays_fall_on_the_28th_in_other_years() {
        let leap = NaiveDate::from_ymd_opt(2000, 2, 29).unwrap();
        assert!(is_anniversary(
            leap,
            NaiveDate::from_ymd_opt(2027, 2, 28).unwrap()
        ));
        assert!(!is_anniversary(
            leap,
            NaiveDate::from_ymd_opt(2028, 2, 28).unwrap()
        ));
        assert!(is_anniversary(
            leap,
            NaiveDate::from_ymd_opt(2028, 2, 29).unwrap()
        ));
    }
}
