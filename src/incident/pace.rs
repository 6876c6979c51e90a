//! The customer sets the pace: "please update me every hour", "once a day is fine", "daily".
//!
//! Every phrasing we recognise lives in this file, with its tests. Only the customer's own
//! words count (the caller passes [`crate::mail::own_words`], the whole of it, not the
//! summary), so our own "we will write every 4 hours" quoted back never changes anything.

use std::time::Duration;

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// Fixed phrases and the cadence each asks for. Checked after the "every N unit" form.
const PHRASES: &[(&str, u64)] = &[
    ("every half hour", 30 * MINUTE),
    ("every half an hour", 30 * MINUTE),
    ("every quarter of an hour", 15 * MINUTE),
    ("every hour", HOUR),
    ("once an hour", HOUR),
    ("once every hour", HOUR),
    ("hourly", HOUR),
    ("twice a day", 12 * HOUR),
    ("twice daily", 12 * HOUR),
    ("every day", DAY),
    ("once a day", DAY),
    ("once per day", DAY),
    ("once daily", DAY),
    ("daily", DAY),
    ("every morning", DAY),
    ("every evening", DAY),
    ("every other day", 2 * DAY),
    ("every week", 7 * DAY),
    ("once a week", 7 * DAY),
    ("weekly", 7 * DAY),
];

/// Words that say the sentence is about how often we write, so "daily" in "my daily backup
/// failed" is not read as a request.
const CUES: &[&str] = &[
    "update",
    "updates",
    "updated",
    "write",
    "hear",
    "email",
    "e-mail",
    "mail",
    "let me know",
    "keep me",
    "inform",
    "report",
    "contact",
    "news",
    "is fine",
    "is enough",
    "would be",
    "suffices",
    "please",
];

/// The cadence the customer asks for in their own words, if they ask for one.
pub fn requested_cadence(own_text: &str) -> Option<Duration> {
    own_text
        .split(['.', '!', '?', '\n', ';'])
        .map(|s| s.to_lowercase())
        .filter(|s| CUES.iter().any(|cue| s.contains(cue)))
        .find_map(|sentence| every_n_units(&sentence).or_else(|| phrase(&sentence)))
        .map(Duration::from_secs)
}

fn phrase(sentence: &str) -> Option<u64> {
    PHRASES
        .iter()
        .find(|(p, _)| contains_words(sentence, p))
        .map(|(_, secs)| *secs)
}

fn contains_words(sentence: &str, phrase: &str) -> bool {
    sentence.match_indices(phrase).any(|(at, _)| {
        let before = sentence[..at].chars().next_back();
        let after = sentence[at + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// "every 30 minutes", "every 2 hours", "every 3 days", "every two hours".
fn every_n_units(sentence: &str) -> Option<u64> {
    let words: Vec<&str> = sentence
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(3).find_map(|w| {
        if w[0] != "every" {
            return None;
        }
        let n = number(w[1])?;
        let unit = match w[2].trim_end_matches(['.', ')']) {
            "minute" | "minutes" | "mins" | "min" => MINUTE,
            "hour" | "hours" | "hrs" | "hr" | "h" => HOUR,
            "day" | "days" => DAY,
            "week" | "weeks" => 7 * DAY,
            _ => return None,
        };
        n.checked_mul(unit).filter(|secs| *secs > 0)
    })
}

fn number(word: &str) -> Option<u64> {
    if let Ok(n) = word.parse() {
        return Some(n);
    }
    let n = match word {
        "one" | "a" => 1,
        "two" | "couple" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "eight" => 8,
        "ten" => 10,
        "twelve" => 12,
        "fifteen" => 15,
        "twenty" => 20,
        "thirty" => 30,
        "forty-five" => 45,
        _ => return None,
    };
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asks(text: &str) -> Option<u64> {
        requested_cadence(&crate::mail::own_words(text)).map(|d| d.as_secs())
    }

    #[test]
    fn common_phrasings_are_recognised() {
        assert_eq!(asks("Please update me every hour."), Some(HOUR));
        assert_eq!(
            asks("Could you email me every 30 minutes?"),
            Some(30 * MINUTE)
        );
        assert_eq!(
            asks("An update every 2 hours would be great, thanks"),
            Some(2 * HOUR)
        );
        assert_eq!(asks("Once a day is fine."), Some(DAY));
        assert_eq!(asks("Daily updates please"), Some(DAY));
        assert_eq!(asks("Please keep me posted hourly"), Some(HOUR));
        assert_eq!(asks("write every two hours please"), Some(2 * HOUR));
        assert_eq!(asks("updates twice a day please"), Some(12 * HOUR));
        assert_eq!(asks("A weekly email is enough"), Some(7 * DAY));
    }

    #[test]
    fn mentions_that_are_not_requests_change_nothing() {
        assert_eq!(asks("My daily backup failed again."), None);
        assert_eq!(asks("It breaks every hour."), None);
        assert_eq!(asks("Any news?"), None);
        assert_eq!(asks("Please fix it, it is urgent."), None);
    }

    #[test]
    fn our_own_words_quoted_back_are_ignored() {
        let reply = "Thanks.\n\nOn Mon, Support wrote:\n> we will write every 4 hours\n";
        assert_eq!(asks(reply), None);
        let quoted = "> Please update me every hour\nAny news?";
        assert_eq!(asks(quoted), None);
    }
}
