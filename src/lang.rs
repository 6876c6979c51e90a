//! The customer's language and time: which language a mail is in, how its dates read, and the
//! customer's own UTC offset beside the team's time.
//!
//! A leaf: it knows languages and times, nothing about incidents.

use chrono::DateTime;

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

    #[test]
    fn language_tags_are_read_to_their_primary_subtag() {
        assert_eq!(from_content_language("de-DE, en").as_deref(), Some("de"));
        assert_eq!(normalise("EN").as_deref(), Some("en"));
        assert_eq!(normalise("fr_CA").as_deref(), Some("fr"));
        assert_eq!(normalise("*"), None);
        assert_eq!(normalise("x-klingon").as_deref(), None);
    }

    #[test]
    fn a_date_headers_offset_is_read_and_an_unknown_zone_is_none() {
        assert_eq!(
            offset_of_date("Mon, 23 Nov 2026 08:00:00 -0500"),
            Some(-300)
        );
        assert_eq!(offset_of_date("Mon, 23 Nov 2026 08:00:00 +0530"), Some(330));
        assert_eq!(offset_of_date("Mon, 23 Nov 2026 08:00:00 -0000"), None);
        assert_eq!(offset_of_date("yesterday"), None);
    }
}
