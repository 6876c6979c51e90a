//! The customer sets the pace: "please update me every hour", "once a day is fine", "daily",
//! "alle zwei Stunden".
//!
//! Every phrasing we recognise lives in this file, with its tests. Only the customer's own
//! words count (the caller passes [`crate::mail::OwnWords::text`], the whole of it, not the
//! summary), so our own "we will write every 4 hours" quoted back never changes anything.
//!
//! The text is read for what the customer meant, not for the first phrase that matches:
//! - a pace that is negated or corrected ("don't email me every hour", "hourly is too much",
//!   "instead of every hour") is a pace they do *not* want;
//! - a range ("every hour or two", "alle 2-3 Stunden") means the slower end;
//! - the last pace they ask for wins ("every hour… actually, once a day is fine");
//! - text about the pace that asks for none we can name ("not every hour or two", "less
//!   often") changes nothing: it is [`PaceRequest::Unclear`], and staff are told.

use std::time::Duration;

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;
const WEEK: u64 = 7 * DAY;

/// What a customer's text says about how often we should write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaceRequest {
    /// Nothing in the text is about the pace.
    Nothing,
    /// A clear pace: the last one asked for.
    Every(Duration),
    /// The text is about the pace but names none we can apply (only paces they do not want,
    /// "less often", "every few hours"). The sentence, for staff.
    Unclear(String),
}

impl PaceRequest {
    pub fn cadence(&self) -> Option<Duration> {
        match self {
            PaceRequest::Every(d) => Some(*d),
            _ => None,
        }
    }
}

/// Fixed phrases and the pace each names, English and German. Longer phrases that contain a
/// shorter one ("once every hour" / "every hour") win by covering it.
const PHRASES: &[(&str, u64)] = &[
    ("every half hour", 30 * MINUTE),
    ("every half an hour", 30 * MINUTE),
    ("half-hourly", 30 * MINUTE),
    ("every quarter of an hour", 15 * MINUTE),
    ("every hour", HOUR),
    ("each hour", HOUR),
    ("once an hour", HOUR),
    ("once every hour", HOUR),
    ("once per hour", HOUR),
    ("hourly", HOUR),
    ("every couple of hours", 2 * HOUR),
    ("every couple hours", 2 * HOUR),
    ("twice a day", 12 * HOUR),
    ("twice daily", 12 * HOUR),
    ("twice per day", 12 * HOUR),
    ("once or twice a day", DAY),
    ("every day", DAY),
    ("each day", DAY),
    ("once a day", DAY),
    ("once per day", DAY),
    ("once daily", DAY),
    ("daily", DAY),
    ("every morning", DAY),
    ("every evening", DAY),
    ("end of each day", DAY),
    ("end of the day", DAY),
    ("every other day", 2 * DAY),
    ("every second day", 2 * DAY),
    ("every week", WEEK),
    ("once a week", WEEK),
    ("once per week", WEEK),
    ("weekly", WEEK),
    // German
    ("jede halbe stunde", 30 * MINUTE),
    ("halbstündlich", 30 * MINUTE),
    ("jede stunde", HOUR),
    ("einmal pro stunde", HOUR),
    ("einmal die stunde", HOUR),
    ("stündlich", HOUR),
    ("zweimal am tag", 12 * HOUR),
    ("zweimal täglich", 12 * HOUR),
    ("zweimal pro tag", 12 * HOUR),
    ("jeden tag", DAY),
    ("einmal am tag", DAY),
    ("einmal pro tag", DAY),
    ("einmal täglich", DAY),
    ("täglich", DAY),
    ("jeden morgen", DAY),
    ("jeden abend", DAY),
    ("jeden zweiten tag", 2 * DAY),
    ("jede woche", WEEK),
    ("einmal pro woche", WEEK),
    ("einmal die woche", WEEK),
    ("wöchentlich", WEEK),
];

/// Words that say a sentence is about how often we write, so "daily" in "my daily backup
/// failed" or "it breaks every hour" is not read as a request.
const CUES: &[&str] = &[
    "update",
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
    "fine",
    "enough",
    "would be",
    "suffices",
    "please",
    "too much",
    "too often",
    "too many",
    "prefer",
    "rather",
    "instead",
    "message",
    "ping",
    "notif",
    // German
    "bitte",
    "melden",
    "schreib",
    "informier",
    "nachricht",
    "reicht",
    "genügt",
    "bescheid",
    "zu viel",
    "zu oft",
    "lieber",
    "stattdessen",
    "benachrichtig",
];

/// Words before a pace that mean the customer does not want it.
const NEGATIONS: &[&str] = &[
    "don't",
    "dont",
    "do not",
    "didn't",
    "did not",
    "not",
    "no need",
    "never",
    "stop",
    "instead of",
    "rather than",
    "no longer",
    "doesn't",
    "does not",
    "won't",
    "isn't",
    // German
    "nicht",
    "kein",
    "keine",
    "keinesfalls",
    "statt",
    "anstatt",
    "anstelle",
];

/// Words after a pace that reject it: "hourly is too much".
const REJECTIONS: &[&str] = &[
    "too much",
    "too often",
    "too many",
    "too frequent",
    "is a lot",
    "is excessive",
    "overkill",
    "zu viel",
    "zu oft",
    "zu häufig",
];

/// Phrases that contain a negation word but ask for a pace: "no more than once a day".
const NOT_NEGATIONS: &[&str] = &[
    "no more than",
    "not more than",
    "no less than",
    "not less than",
    "nicht mehr als",
    "nicht öfter als",
    "not more often than",
    "no more often than",
];

/// Text about the pace that names none: staff must read it.
const VAGUE: &[&str] = &[
    "less often",
    "less frequent",
    "fewer update",
    "fewer email",
    "fewer mail",
    "so many email",
    "so many mail",
    "so many update",
    "every few hours",
    "every few days",
    "more often",
    "more frequent",
    "seltener",
    "weniger mail",
    "weniger e-mail",
    "öfter",
    "häufiger",
    "alle paar stunden",
    "alle paar tage",
];

/// The pace the customer asks for in their own words.
pub fn read(own_text: &str) -> PaceRequest {
    let mut last: Option<u64> = None;
    let mut unclear: Option<String> = None;
    for sentence in own_text.split(['.', '!', '?', '\n', ';']) {
        let lower = sentence.to_lowercase();
        if !CUES.iter().any(|cue| lower.contains(cue)) {
            continue;
        }
        let mut wanted_here = false;
        let mut rejected_here = false;
        for clause in clauses(&lower) {
            for (mention, rejected) in mentions(&clause) {
                if rejected {
                    rejected_here = true;
                } else {
                    wanted_here = true;
                    last = Some(mention);
                }
            }
        }
        let vague = VAGUE.iter().any(|v| lower.contains(v));
        if !wanted_here && (rejected_here || vague) {
            unclear = Some(sentence.trim().to_string());
        }
        if wanted_here {
            // A later clear request answers an earlier unclear one.
            unclear = None;
        }
    }
    match (last, unclear) {
        (_, Some(sentence)) => PaceRequest::Unclear(sentence),
        (Some(secs), None) => PaceRequest::Every(Duration::from_secs(secs)),
        (None, None) => PaceRequest::Nothing,
    }
}

/// The cadence asked for, if any (a shorthand for [`read`]).
pub fn requested_cadence(own_text: &str) -> Option<Duration> {
    read(own_text).cadence()
}

/// A sentence cut where its meaning may turn: commas, dashes, "but", "aber".
fn clauses(sentence: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let words: Vec<&str> = sentence.split_whitespace().collect();
    for w in words {
        let turn = matches!(
            w,
            "-" | "–"
                | "—"
                | "but"
                | "aber"
                | "sondern"
                | "actually"
                | "so"
                | "because"
                | "since"
                | "while"
                | "weil"
                | "da"
        );
        if turn {
            out.push(String::new());
            continue;
        }
        let (body, ends_clause) = match w.strip_suffix(',') {
            Some(b) => (b, true),
            None => (w, false),
        };
        let current = out.last_mut().expect("never empty");
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(body);
        if ends_clause {
            out.push(String::new());
        }
    }
    out.into_iter().filter(|c| !c.is_empty()).collect()
}

/// Every pace named in a clause, in order, with whether the customer rejects it.
fn mentions(clause: &str) -> Vec<(u64, bool)> {
    let mut found: Vec<(usize, usize, u64)> = Vec::new();
    for (phrase, secs) in PHRASES {
        for (at, _) in clause.match_indices(phrase) {
            if word_bounded(clause, at, phrase.len()) {
                found.push((at, at + phrase.len(), *secs));
            }
        }
    }
    found.extend(every_n_units(clause));
    // A mention inside a longer one ("every hour" in "once every hour") is the longer one.
    let spans = found.clone();
    found.retain(|(s, e, _)| {
        !spans
            .iter()
            .any(|(s2, e2, _)| s2 <= s && e <= e2 && (e2 - s2) > (e - s))
    });
    found.sort_unstable();
    found.dedup_by_key(|(s, _, _)| *s);
    let mut cleaned = clause.to_string();
    for phrase in NOT_NEGATIONS {
        // Same length, so the mention offsets stay valid.
        cleaned = cleaned.replace(phrase, &" ".repeat(phrase.len()));
    }
    let rejected_after = REJECTIONS.iter().any(|r| clause.contains(r));
    found
        .into_iter()
        .map(|(start, end, secs)| {
            // A negation reaches a few words ahead ("I did not ask for updates every 2 hours"),
            // not across a whole clause.
            let before = cleaned.get(..start).unwrap_or("");
            let before = last_words(before, NEGATION_REACH);
            let after = clause.get(end..).unwrap_or("");
            let negated = NEGATIONS.iter().any(|n| has_word(before, n));
            let rejected = REJECTIONS.iter().any(|r| after.contains(r));
            (secs, negated || (rejected && rejected_after))
        })
        .collect()
}

/// How many words before a pace a negation still applies to it.
const NEGATION_REACH: usize = 6;

fn last_words(text: &str, n: usize) -> &str {
    let mut seen = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices().rev() {
        if c.is_whitespace() {
            if in_word {
                seen += 1;
                if seen == n {
                    return text.get(i..).unwrap_or(text);
                }
            }
            in_word = false;
        } else {
            in_word = true;
        }
    }
    text
}

fn word_bounded(text: &str, at: usize, len: usize) -> bool {
    let before = text.get(..at).and_then(|s| s.chars().next_back());
    let after = text.get(at + len..).and_then(|s| s.chars().next());
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word)
        .any(|(at, _)| word_bounded(text, at, word.len()))
}

/// "every 30 minutes", "every 2 hours", "every two hours", "every 2h", "every hour or two",
/// "every 2-3 hours", "alle 2 Stunden", "alle ein bis zwei Tage". A range is its slower end.
fn every_n_units(clause: &str) -> Vec<(usize, usize, u64)> {
    // Words with their byte offsets.
    let mut words: Vec<(usize, &str)> = Vec::new();
    let mut start = None;
    for (i, c) in clause.char_indices() {
        let part_of_word = !(c.is_whitespace() || c == '(' || c == ')' || c == ':');
        match (part_of_word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push((s, clause.get(s..i).unwrap_or("")));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, clause.get(s..).unwrap_or("")));
    }
    let mut out = Vec::new();
    for (i, (at, word)) in words.iter().enumerate() {
        if !matches!(*word, "every" | "alle" | "each") {
            continue;
        }
        let rest: Vec<&str> = words[i + 1..].iter().take(5).map(|(_, w)| *w).collect();
        if let Some((secs, used)) = amount(&rest) {
            let last = words[i + used].0 + words[i + used].1.len();
            out.push((*at, last, secs));
        }
    }
    out
}

/// The pace named by the words after "every": its length in seconds and how many words it
/// took.
fn amount(rest: &[&str]) -> Option<(u64, usize)> {
    let w = |i: usize| rest.get(i).copied().unwrap_or("");
    // "every 2h", "every 30min"
    if let Some((n, unit)) = glued(w(0)) {
        return Some((n.checked_mul(unit)?, 1));
    }
    // "every 2-3 hours"
    if let Some((a, b)) = w(0).split_once(['-', '–']) {
        if let (Some(_), Some(hi), Some(u)) = (number(a), number(b), unit(w(1))) {
            return Some((hi.checked_mul(u)?, 2));
        }
    }
    // "every hour or two": the unit first, then the slower end
    if let Some(u) = unit(w(0)) {
        if matches!(w(1), "or" | "oder" | "to" | "bis") {
            if let Some(hi) = number(w(2)) {
                return Some((hi.checked_mul(u)?, 3));
            }
        }
        return None;
    }
    let n = number(w(0))?;
    // "every 2 or 3 hours", "alle ein bis zwei tage"
    if matches!(w(1), "or" | "oder" | "to" | "bis") {
        let hi = number(w(2))?;
        let u = unit(w(3))?;
        return Some((hi.max(n).checked_mul(u)?, 4));
    }
    let u = unit(w(1))?;
    Some((n.checked_mul(u)?, 2)).filter(|(s, _)| *s > 0)
}

/// "2h", "30min", "4hrs".
fn glued(word: &str) -> Option<(u64, u64)> {
    let split = word.find(|c: char| !c.is_ascii_digit())?;
    if split == 0 {
        return None;
    }
    let n = word.get(..split)?.parse().ok()?;
    let u = unit(word.get(split..)?)?;
    Some((n, u))
}

fn unit(word: &str) -> Option<u64> {
    let secs = match word.trim_end_matches(['.', ')', ',']) {
        "minute" | "minutes" | "mins" | "min" | "minuten" | "m" => MINUTE,
        "hour" | "hours" | "hrs" | "hr" | "h" | "stunde" | "stunden" | "std" => HOUR,
        "day" | "days" | "tag" | "tage" | "tagen" | "d" => DAY,
        "week" | "weeks" | "woche" | "wochen" => WEEK,
        _ => return None,
    };
    Some(secs)
}

fn number(word: &str) -> Option<u64> {
    if let Ok(n) = word.parse() {
        return Some(n);
    }
    let n = match word {
        "one" | "a" | "an" | "ein" | "eine" | "einen" | "einer" => 1,
        "two" | "couple" | "zwei" => 2,
        "three" | "drei" => 3,
        "four" | "vier" => 4,
        "five" | "fünf" => 5,
        "six" | "sechs" => 6,
        "eight" | "acht" => 8,
        "ten" | "zehn" => 10,
        "twelve" | "zwölf" => 12,
        "fifteen" | "fünfzehn" => 15,
        "twenty" | "zwanzig" => 20,
        "twenty-four" | "vierundzwanzig" => 24,
        "thirty" | "dreißig" => 30,
        "forty-five" | "fünfundvierzig" => 45,
        _ => return None,
    };
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asks(text: &str) -> PaceRequest {
        read(
            &crate::mail::own_words::read(
                text,
                &crate::mail::OurMail::none(),
                crate::mail::Context::Reply,
            )
            .text(),
        )
    }

    fn every(secs: u64) -> PaceRequest {
        PaceRequest::Every(Duration::from_secs(secs))
    }

    /// Real-world phrasings and what the customer meant. `None` in the table: nothing about
    /// the pace; `Some(0)`: about the pace, but nothing we can apply (staff are told).
    const TABLE: &[(&str, Option<u64>)] = &[
        // The two from the issue.
        (
            "Sorry, hourly is too much after all - once a day is fine.",
            Some(DAY),
        ),
        (
            "I did not ask for updates every 2 hours, please don't email me every hour or two",
            Some(0),
        ),
        ("Please update me every hour.", Some(HOUR)),
        ("Could you email me every 30 minutes?", Some(30 * MINUTE)),
        (
            "An update every 2 hours would be great, thanks",
            Some(2 * HOUR),
        ),
        ("Once a day is fine.", Some(DAY)),
        ("Daily updates please", Some(DAY)),
        ("Please keep me posted hourly", Some(HOUR)),
        ("write every two hours please", Some(2 * HOUR)),
        ("updates twice a day please", Some(12 * HOUR)),
        ("A weekly email is enough", Some(WEEK)),
        ("Can you update me every hour or two?", Some(2 * HOUR)),
        ("Please send an update every 2-3 hours.", Some(3 * HOUR)),
        ("every 2 or 3 hours is fine", Some(3 * HOUR)),
        ("Please update me every 4h", Some(4 * HOUR)),
        ("Updates every 45 mins please", Some(45 * MINUTE)),
        (
            "You don't need to write every hour, every 4 hours is fine.",
            Some(4 * HOUR),
        ),
        (
            "Instead of every hour, please update me once a day.",
            Some(DAY),
        ),
        (
            "Please update me every hour. Actually, once a day is enough.",
            Some(DAY),
        ),
        (
            "Once a day is fine. On second thought, please write every hour.",
            Some(HOUR),
        ),
        (
            "Hourly updates are too much, please just write daily.",
            Some(DAY),
        ),
        ("Please don't email me every hour.", Some(0)),
        ("Not every hour please!", Some(0)),
        ("Please write less often.", Some(0)),
        ("Could you send fewer emails?", Some(0)),
        ("An update every few hours would be nice.", Some(0)),
        ("Please, no more than once a day.", Some(DAY)),
        (
            "It's not working so please update me every hour.",
            Some(HOUR),
        ),
        ("Keep me posted once or twice a day.", Some(DAY)),
        ("Let me know every other day how it goes.", Some(2 * DAY)),
        (
            "A quick update at the end of each day would be great.",
            Some(DAY),
        ),
        (
            "Please update me every half hour, this is urgent.",
            Some(30 * MINUTE),
        ),
        (
            "Hi,\n\nany chance you could email me every couple of hours?\n\nThanks, Tom",
            Some(2 * HOUR),
        ),
        ("I'd prefer an update once a week.", Some(WEEK)),
        ("Please keep me updated every 24 hours.", Some(DAY)),
        ("Please email me daily, not hourly.", Some(DAY)),
        (
            "Every hour is too often, every 3 hours is ok for me, please.",
            Some(3 * HOUR),
        ),
        ("Hourly would be ideal.", Some(HOUR)),
        ("Could you update me once every two hours?", Some(2 * HOUR)),
        ("I need an update within the hour, please.", None),
        // Not about the pace at all.
        ("My daily backup failed again.", None),
        ("It breaks every hour.", None),
        ("Any news?", None),
        ("Please fix it, it is urgent.", None),
        ("The error shows up every 2 hours on the dashboard.", None),
        ("We ship weekly builds to our customers.", None),
        // German
        ("Bitte melden Sie sich jede Stunde.", Some(HOUR)),
        ("Einmal am Tag reicht mir völlig.", Some(DAY)),
        ("Bitte schreiben Sie mir alle zwei Stunden.", Some(2 * HOUR)),
        ("Stündlich ist zu viel, täglich reicht.", Some(DAY)),
        ("Bitte nicht jede Stunde schreiben.", Some(0)),
        ("Ein Update alle ein bis zwei Tage genügt.", Some(2 * DAY)),
        (
            "Bitte informieren Sie mich alle 30 Minuten.",
            Some(30 * MINUTE),
        ),
        ("Unser täglicher Export ist fehlgeschlagen.", None),
    ];

    #[test]
    fn the_pace_table_reads_what_the_customer_meant() {
        assert!(TABLE.len() >= 40, "at least 40 phrasings");
        let mut wrong = Vec::new();
        for (text, want) in TABLE {
            let got = asks(text);
            let ok = match (want, &got) {
                (None, PaceRequest::Nothing) => true,
                (Some(0), PaceRequest::Unclear(_)) => true,
                (Some(secs), PaceRequest::Every(d)) => d.as_secs() == *secs,
                _ => false,
            };
            if !ok {
                wrong.push(format!("{text:?}: wanted {want:?}, got {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn our_own_words_quoted_back_are_ignored() {
        let reply = "Thanks.\n\nOn Mon, Support wrote:\n> we will write every 4 hours\n";
        assert_eq!(asks(reply), PaceRequest::Nothing);
        let quoted = "> Please update me every hour\nAny news?";
        assert_eq!(asks(quoted), PaceRequest::Nothing);
        assert_eq!(asks("Every hour please"), every(HOUR));
    }
}
