//! "What we understood": a short summary of a complaint, from the sender's own words.

use super::header_safe;
use super::own_words::OwnWords;
use super::reply_marks;

/// A short, readable summary of what the customer wrote, for "what we understood": their own
/// words (greeting, sign-off, signature and quotes already set apart by
/// [`super::own_words::read`]) without a forwarded original, a greeting or sign-off written on
/// the same line as the text ("Dear Sir or Madam, my invoice is wrong. Thanks, Tom"); whitespace
/// collapsed; ended at a sentence boundary within `max` characters (at a word, with "…", only
/// when the first sentence alone is longer).
pub fn summarize(own: &OwnWords, max: usize) -> String {
    let flat = header_safe(&cleaned(own), usize::MAX);
    cut_at_sentence(&capitalized(&flat), max)
}

/// Their own words as [`summarize`] reads them, lines kept: no forwarded original, no
/// greeting or sign-off (on a line of their own or on the text's first and last line).
pub fn cleaned(own: &OwnWords) -> String {
    let mut lines: Vec<&str> = own.body.lines().map(str::trim).collect();
    // Everything from a forwarded or Outlook-quoted original on is not theirs.
    if let Some(at) = lines.iter().position(|l| is_quoted_original(l)) {
        lines.truncate(at);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    // The sign-off and what follows it (the name, a title, a phone number), when the reading
    // left one in the body.
    if let Some(at) = lines.iter().rposition(|l| is_sign_off(l)) {
        if at > 0 && lines.len() - at <= 6 {
            lines.truncate(at);
        }
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    // A name alone on the last line ("Tom"), after what they wrote.
    if lines.len() > 1
        && lines
            .last()
            .is_some_and(|l| reply_marks::looks_like_a_name(l))
    {
        lines.pop();
    }
    let mut text = lines.join("\n");
    // Nothing but a greeting and a sign-off: say what the greeting said ("Hello?").
    if text.trim().is_empty() {
        text = own.text();
    }
    text = strip_greeting(&text);
    strip_trailing_sign_off(&text)
}

/// "the vase arrived broken" after "Hello," is quoted back as a sentence.
pub fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if first.is_lowercase() => first.to_uppercase().chain(chars).collect(),
        _ => text.to_string(),
    }
}

/// Cut to at most `max` characters at the end of a sentence; at a word (with "…") when not
/// even the first sentence fits.
pub fn cut_at_sentence(flat: &str, max: usize) -> String {
    if flat.chars().count() <= max {
        return flat.to_string();
    }
    let cut: String = flat.chars().take(max).collect();
    let sentence_end = cut
        .char_indices()
        .filter(|(i, c)| {
            matches!(c, '.' | '!' | '?')
                && cut
                    .get(i + c.len_utf8()..)
                    .unwrap_or("")
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace)
        })
        .map(|(i, c)| i + c.len_utf8())
        .next_back()
        .filter(|end| *end > max / 4);
    if let Some(end) = sentence_end {
        return cut.get(..end).unwrap_or(&cut).to_string();
    }
    let at_word = cut
        .rfind(' ')
        .filter(|i| *i > max / 2)
        .map_or(cut.as_str(), |i| cut.get(..i).unwrap_or(&cut));
    format!("{}…", at_word.trim_end_matches([',', '.', ';', ':']))
}

/// "Hi team," / "Hello Support!" / "Guten Tag," opening a one-line mail: dropped up to its
/// comma or exclamation mark (counted in characters of the text itself, so "Hİ," cannot cut a
/// character in two).
fn strip_greeting(text: &str) -> String {
    match reply_marks::greeting(text) {
        Some(reply_marks::Greeting::Opens(len)) => text
            .chars()
            .skip(len)
            .collect::<String>()
            .trim_start()
            .to_string(),
        _ => text.to_string(),
    }
}

/// Sign-offs, lower case, English and German: a line that is only this (and a comma or a name)
/// starts the signature block.
const SIGN_OFFS: &[&str] = &[
    "thanks",
    "thank you",
    "thanks a lot",
    "many thanks",
    "thanks in advance",
    "best",
    "best regards",
    "kind regards",
    "regards",
    "warm regards",
    "cheers",
    "sincerely",
    "yours sincerely",
    "yours",
    "br",
    "all the best",
    "thx",
    "ty",
    "mit freundlichen grüßen",
    "mit freundlichen grüssen",
    "freundliche grüße",
    "viele grüße",
    "beste grüße",
    "liebe grüße",
    "grüße",
    "gruß",
    "lg",
    "vg",
    "mfg",
    "danke",
    "vielen dank",
    "danke im voraus",
    "cordialement",
    "merci",
];

fn is_sign_off(line: &str) -> bool {
    let lower = line.to_lowercase();
    let words = lower.trim_end_matches([',', '!', '.', ' ']);
    SIGN_OFFS.iter().any(|s| {
        words == *s
            // "Thanks, Tom" / "Cheers Tom"
            || words.strip_prefix(s).is_some_and(|rest| {
                rest.starts_with([',', ' '])
                    && rest.trim_start_matches([',', ' ']).split_whitespace().count() <= 3
                    && !rest.contains(['.', '?'])
            })
    }) || lower.starts_with("sent from my")
        || lower.starts_with("von meinem")
        || lower.starts_with("get outlook for")
}

/// "Thanks, Tom" at the very end of the flattened text (a one-line mail).
fn strip_trailing_sign_off(text: &str) -> String {
    let sentences: Vec<(usize, &str)> = text
        .match_indices(['.', '!', '?'])
        .map(|(i, p)| (i + p.len(), ""))
        .collect();
    let Some((start, _)) = sentences
        .iter()
        .rev()
        .find(|(i, _)| *i < text.trim_end().len())
    else {
        return text.to_string();
    };
    let tail = text.get(*start..).unwrap_or("").trim();
    if !tail.is_empty() && (is_sign_off(tail) || reply_marks::looks_like_a_name(tail)) {
        text.get(..*start).unwrap_or(text).trim_end().to_string()
    } else {
        text.to_string()
    }
}

/// Where a forwarded or Outlook-quoted original starts.
fn is_quoted_original(line: &str) -> bool {
    let lower = line.to_lowercase();
    lower.starts_with("-----original message")
        || lower.starts_with("---------- forwarded message")
        || lower.starts_with("-----ursprüngliche nachricht")
        || (lower.starts_with("am ") && lower.ends_with("schrieb:"))
        || (lower.starts_with("le ") && lower.ends_with("a écrit :"))
        || (lower.starts_with("from:") && lower.contains("sent:"))
}

#[cfg(test)]
mod tests {
    use crate::mail::own_words::{read, Context, OurMail};

    fn summarize(body: &str, max: usize) -> String {
        super::summarize(&read(body, &OurMail::none(), Context::Fresh), max)
    }

    #[test]
    fn long_summaries_are_cut_at_a_word() {
        let body = "word ".repeat(200);
        let s = summarize(&body, 50);
        assert!(s.ends_with('…'));
        assert!(s.chars().count() <= 51);
        assert!(!s.contains("wor…"));
    }

    #[test]
    fn the_summary_skips_greeting_sign_off_name_and_quotes_and_ends_at_a_sentence() {
        let cases = [
            (
                "Hi,\n\nmy parcel was due on Monday. Where is my parcel?\n\nTom",
                "My parcel was due on Monday. Where is my parcel?",
            ),
            (
                "Hello Support team,\nThe checkout fails with error 500.\n\nKind regards,\nMaria Schneider\nACME GmbH\n+49 30 1234",
                "The checkout fails with error 500.",
            ),
            (
                "Guten Tag,\n\ndie Lieferung fehlt.\n\nMit freundlichen Grüßen\nMaria",
                "Die Lieferung fehlt.",
            ),
            (
                "The app crashes on start.\n\nSent from my iPhone",
                "The app crashes on start.",
            ),
            (
                "Dear Sir or Madam, my invoice is wrong. Thanks, Tom",
                "My invoice is wrong.",
            ),
            (
                "It broke again.\n\n-----Original Message-----\nFrom: Support Sent: Monday\nold text",
                "It broke again.",
            ),
            (
                "Hi there! Help!\n> quoted\nOn Mon, 7 Dec 2026, Support wrote:\n> more",
                "Help!",
            ),
            ("Hİ, my order never arrived", "My order never arrived"),
            ("Hİ,\n\nmy order never arrived.", "My order never arrived."),
        ];
        for (body, want) in cases {
            assert_eq!(summarize(body, 300), want, "{body:?}");
        }
        let long = format!(
            "Hello, {} The rest goes on and on without an end in sight",
            "This sentence is complete. ".repeat(20)
        );
        let s = summarize(&long, 300);
        assert!(s.ends_with("complete."), "{s}");
        assert!(s.chars().count() <= 300);
        assert!(s.starts_with("This sentence"), "{s}");
    }

    #[test]
    fn a_request_at_the_end_of_a_long_mail_is_still_in_the_own_text() {
        let body = format!("{}\nPlease update me every hour.", "Details. ".repeat(100));
        let own = read(&body, &OurMail::none(), Context::Fresh);
        assert!(own.text().ends_with("Please update me every hour."));
        assert!(summarize(&body, 300).chars().count() <= 301);
    }
}
