//! The sender's own words: what they wrote in this mail, without what they quoted or signed.

use super::header_safe;

/// Longest own text kept for pace requests and staff commands, in characters: a person does not
/// write more than this in one mail, and nothing downstream may grow with what a sender sent.
pub const MAX_OWN_TEXT: usize = 64 * 1024;

/// The text the sender wrote themselves: quoted lines (`>`) and everything from a signature
/// separator (RFC 3676 `-- `) or an "On … wrote:" line on are dropped; lines are kept, trimmed.
/// Only these words count, so our own "we will write every 4 hours" quoted back, or a quoted
/// notification, never changes anything.
pub fn own_words(body: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut size = 0usize;
    for line in body.lines() {
        let t = line.trim();
        if t == "--" || line == "-- " || (t.starts_with("On ") && t.ends_with("wrote:")) {
            break;
        }
        if t.starts_with('>') {
            continue;
        }
        size = size.saturating_add(t.len() + 1);
        if size > MAX_OWN_TEXT {
            break;
        }
        kept.push(t);
    }
    // Trailing blank lines say nothing.
    while kept.last().is_some_and(|l| l.is_empty()) {
        kept.pop();
    }
    let text = kept.join("\n");
    // No control characters but line breaks reach templates or pace matching.
    text.chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect::<String>()
        .trim_start_matches('\n')
        .to_string()
}

/// A short, readable summary of what the customer wrote, for "what we understood": their own
/// words without the greeting ("Hi team,"), the sign-off and the name under it ("Thanks, Tom"),
/// a phone's "Sent from my iPhone", quoted text and signatures; whitespace collapsed; ended at
/// a sentence boundary within `max` characters (at a word, with "…", only when the first
/// sentence alone is longer).
pub fn summarize(body: &str, max: usize) -> String {
    let own = own_words(body);
    let mut lines: Vec<&str> = own.lines().map(str::trim).collect();
    // Everything from a forwarded or Outlook-quoted original on is not theirs.
    if let Some(at) = lines.iter().position(|l| is_quoted_original(l)) {
        lines.truncate(at);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    // The sign-off and what follows it (the name, a title, a phone number).
    if let Some(at) = lines.iter().rposition(|l| is_sign_off(l)) {
        if at > 0 && lines.len() - at <= 6 {
            lines.truncate(at);
        }
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    // A name alone on the last line ("Tom"), after what they wrote.
    if lines.len() > 1 && lines.last().is_some_and(|l| looks_like_a_name(l)) {
        lines.pop();
    }
    let mut text = lines.join(" ");
    text = strip_greeting(&text);
    text = strip_trailing_sign_off(&text);
    let flat = header_safe(&text, usize::MAX);
    // "the vase arrived broken" after "Hello," is quoted back as a sentence.
    let mut chars = flat.chars();
    let flat = match chars.next() {
        Some(first) if first.is_lowercase() => first.to_uppercase().chain(chars).collect(),
        _ => flat,
    };
    cut_at_sentence(&flat, max)
}

/// Cut to at most `max` characters at the end of a sentence; at a word (with "…") when not
/// even the first sentence fits.
fn cut_at_sentence(flat: &str, max: usize) -> String {
    if flat.chars().count() <= max {
        return flat.to_string();
    }
    let cut: String = flat.chars().take(max).collect();
    let sentence_end = cut
        .char_indices()
        .filter(|(i, c)| {
            matches!(c, '.' | '!' | '?')
                && cut[i + c.len_utf8()..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace)
        })
        .map(|(i, c)| i + c.len_utf8())
        .next_back()
        .filter(|end| *end > max / 4);
    if let Some(end) = sentence_end {
        return cut[..end].to_string();
    }
    let at_word = cut
        .rfind(' ')
        .filter(|i| *i > max / 2)
        .map_or(cut.as_str(), |i| &cut[..i]);
    format!("{}…", at_word.trim_end_matches([',', '.', ';', ':']))
}

/// Greetings a mail opens with, lower case, English and German.
const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "dear",
    "good morning",
    "good afternoon",
    "good evening",
    "greetings",
    "to whom it may concern",
    "hallo",
    "guten tag",
    "guten morgen",
    "guten abend",
    "liebe",
    "lieber",
    "sehr geehrte",
    "sehr geehrter",
    "sehr geehrtes",
    "moin",
    "servus",
    "hej",
    "bonjour",
    "hola",
    "ciao",
];

/// "Hi team," / "Hello Support!" / "Guten Tag," at the start: dropped up to its comma or
/// exclamation mark, or the whole greeting when nothing but a name follows.
fn strip_greeting(text: &str) -> String {
    let lower = text.to_lowercase();
    let Some(greeting) = GREETINGS.iter().find(|g| {
        lower.starts_with(*g)
            && lower[g.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric())
    }) else {
        return text.to_string();
    };
    // The greeting ends at the first comma, exclamation mark or colon within a few words (not
    // at a full stop: "Hello {{customer.name}}" or "Dear Dr. Meyer" hold one).
    let window: String = text.chars().take(60).collect();
    let end = window
        .char_indices()
        .find(|(i, c)| *i >= greeting.len() && matches!(c, ',' | '!' | ':'))
        .map(|(i, c)| i + c.len_utf8());
    match end {
        Some(end) if text[greeting.len()..end].split_whitespace().count() <= 4 => {
            text[end..].trim_start().to_string()
        }
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
    let tail = text[*start..].trim();
    if !tail.is_empty() && (is_sign_off(tail) || looks_like_a_name(tail)) {
        text[..*start].trim_end().to_string()
    } else {
        text.to_string()
    }
}

/// One to three capitalised words and nothing else: a name under the text ("Tom", "Maria
/// Schneider").
fn looks_like_a_name(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    (1..=3).contains(&words.len())
        && words.iter().all(|w| {
            let w = w.trim_end_matches(',');
            w.chars().next().is_some_and(char::is_uppercase)
                && w.chars()
                    .all(|c| c.is_alphabetic() || c == '-' || c == '.' || c == '\'')
        })
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
    use super::*;

    #[test]
    fn own_words_drop_quotes_attributions_and_signatures_but_keep_lines() {
        let body = "Hello,\n\nit broke again.\n> we will write every 4 hours\n\nOn Mon, Support wrote:\n> old\n";
        assert_eq!(own_words(body), "Hello,\n\nit broke again.");
        assert_eq!(own_words("Thanks\n-- \nAnn\nCEO"), "Thanks");
        assert_eq!(own_words("a\u{7}b"), "a b");
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
                "Hi there! Help!\n> quoted\nOn Mon, Support wrote:\n> more",
                "Help!",
            ),
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
        assert!(own_words(&body).ends_with("Please update me every hour."));
        assert!(summarize(&body, 300).chars().count() <= 301);
    }
}
