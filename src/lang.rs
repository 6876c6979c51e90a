//! The customer's language and time: which language a mail is in, how its dates read, and the
//! customer's own UTC offset beside the team's time.
//!
//! A leaf: it knows languages and times, nothing about incidents.

use chrono::{DateTime, FixedOffset, Offset, Utc};

/// A language tag as we keep it: its primary subtag in lower case ("de" from "de-DE", "DE" or
/// "de_AT"). None for anything that is not one ("*", "x-klingon", "", "123").
pub fn normalise(tag: &str) -> Option<String> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    ((2..=3).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_lowercase()))
        .then_some(primary)
}

/// The first language of a `Content-Language` header ("de-DE, en" → "de").
pub fn from_content_language(value: &str) -> Option<String> {
    value.split(',').find_map(normalise)
}

const DE_DAYS: [&str; 7] = [
    "Montag",
    "Dienstag",
    "Mittwoch",
    "Donnerstag",
    "Freitag",
    "Samstag",
    "Sonntag",
];
const DE_MONTHS: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];

/// "Monday 23 November 2026, 13:00 UTC" / "Montag, 23. November 2026, 14:00 Uhr MEZ": in the
/// team's zone, for a customer reading `lang` (English for any language without its own
/// dates here).
pub fn human_time(t: DateTime<Utc>, tz: chrono_tz::Tz, lang: &str) -> String {
    use chrono::Datelike;
    let local = t.with_timezone(&tz);
    if lang == "de" {
        let zone = match local.format("%Z").to_string().as_str() {
            "CET" => "MEZ".to_string(),
            "CEST" => "MESZ".to_string(),
            other => other.to_string(),
        };
        let day = DE_DAYS
            .get(local.weekday().num_days_from_monday() as usize)
            .copied()
            .unwrap_or("");
        let month = DE_MONTHS
            .get(local.month0() as usize)
            .copied()
            .unwrap_or("");
        return format!(
            "{day}, {}. {month} {}, {} Uhr {zone}",
            local.day(),
            local.year(),
            local.format("%H:%M")
        );
    }
    local.format("%A %-d %B %Y, %H:%M %Z").to_string()
}

/// "Tuesday" / "Dienstag": the day `t` falls on in the team's zone.
pub fn weekday(t: DateTime<Utc>, tz: chrono_tz::Tz, lang: &str) -> String {
    use chrono::Datelike;
    let local = t.with_timezone(&tz);
    if lang == "de" {
        return DE_DAYS
            .get(local.weekday().num_days_from_monday() as usize)
            .copied()
            .unwrap_or("")
            .to_string();
    }
    local.format("%A").to_string()
}

/// The same time at the customer's own UTC offset, when it differs from the team's at that
/// moment: "08:00 your time, UTC-05:00" / "08:00 Uhr bei Ihnen, UTC-05:00"; "" otherwise.
/// The day is named when it differs too.
pub fn their_time(
    t: DateTime<Utc>,
    tz: chrono_tz::Tz,
    offset_minutes: Option<i32>,
    lang: &str,
) -> String {
    let Some(minutes) = offset_minutes else {
        return String::new();
    };
    let Some(theirs) = FixedOffset::east_opt(minutes.saturating_mul(60)) else {
        return String::new();
    };
    let ours = t.with_timezone(&tz);
    if ours.offset().fix() == theirs {
        return String::new();
    }
    let at = t.with_timezone(&theirs);
    let sign = if minutes < 0 { '-' } else { '+' };
    let utc = format!(
        "UTC{sign}{:02}:{:02}",
        minutes.unsigned_abs() / 60,
        minutes.unsigned_abs() % 60
    );
    let same_day = at.date_naive() == ours.date_naive();
    if lang == "de" {
        use chrono::Datelike;
        let day = if same_day {
            String::new()
        } else {
            format!(
                "{} ",
                DE_DAYS
                    .get(at.weekday().num_days_from_monday() as usize)
                    .copied()
                    .unwrap_or("")
            )
        };
        return format!("{day}{} Uhr bei Ihnen, {utc}", at.format("%H:%M"));
    }
    let day = if same_day {
        String::new()
    } else {
        at.format("%A ").to_string()
    };
    format!("{day}{} your time, {utc}", at.format("%H:%M"))
}

/// A `Date:` header's offset in minutes east of UTC ("Mon, 23 Nov 2026 08:00:00 -0500" → -300).
/// None for "-0000" (RFC 5322 3.3: the zone is unknown) or an unreadable date.
pub fn offset_of_date(date: &str) -> Option<i32> {
    let parsed = DateTime::parse_from_rfc2822(date.trim())
        .or_else(|_| DateTime::parse_from_rfc3339(date.trim()))
        .ok()?;
    if date.trim_end().ends_with("-0000") {
        return None;
    }
    Some(parsed.offset().local_minus_utc() / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        crate::clock::parse_stamp(s).expect("time")
    }

    #[test]
    fn language_tags_are_read_to_their_primary_subtag() {
        assert_eq!(from_content_language("de-DE, en").as_deref(), Some("de"));
        assert_eq!(normalise("EN").as_deref(), Some("en"));
        assert_eq!(normalise("fr_CA").as_deref(), Some("fr"));
        assert_eq!(normalise("*"), None);
        assert_eq!(normalise("x-klingon").as_deref(), None);
    }

    #[test]
    fn dates_read_in_the_customers_language() {
        let t = utc("2026-11-23T13:05:00Z");
        let berlin = chrono_tz::Tz::Europe__Berlin;
        assert_eq!(
            human_time(t, berlin, "de"),
            "Montag, 23. November 2026, 14:05 Uhr MEZ"
        );
        assert_eq!(
            human_time(t, berlin, "en"),
            "Monday 23 November 2026, 14:05 CET"
        );
        assert_eq!(human_time(t, berlin, "fr"), human_time(t, berlin, "en"));
    }

    #[test]
    fn the_customers_own_time_is_shown_where_it_differs() {
        let t = utc("2026-11-23T13:00:00Z");
        let berlin = chrono_tz::Tz::Europe__Berlin;
        assert_eq!(
            their_time(t, berlin, Some(-300), "en"),
            "08:00 your time, UTC-05:00"
        );
        assert_eq!(
            their_time(t, berlin, Some(-300), "de"),
            "08:00 Uhr bei Ihnen, UTC-05:00"
        );
        assert_eq!(their_time(t, berlin, Some(60), "en"), "", "the same offset");
        assert_eq!(their_time(t, berlin, None, "en"), "");
        let late = utc("2026-11-23T03:00:00Z");
        assert_eq!(
            their_time(late, berlin, Some(-300), "en"),
            "Sunday 22:00 your time, UTC-05:00"
        );
        assert_eq!(
            offset_of_date("Mon, 23 Nov 2026 08:00:00 -0500"),
            Some(-300)
        );
        assert_eq!(offset_of_date("Mon, 23 Nov 2026 08:00:00 +0530"), Some(330));
        assert_eq!(offset_of_date("Mon, 23 Nov 2026 08:00:00 -0000"), None);
        assert_eq!(offset_of_date("yesterday"), None);
    }
}
