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

/// A short, readable summary of what the customer wrote: quoted text and signatures dropped,
/// whitespace collapsed, cut at a word boundary.
pub fn summarize(body: &str, max: usize) -> String {
    let flat = header_safe(&own_words(body).replace('\n', " "), usize::MAX);
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max).collect();
    let at_word = cut
        .rfind(' ')
        .filter(|i| *i > max / 2)
        .map_or(cut.as_str(), |i| &cut[..i]);
    format!("{}…", at_word.trim_end_matches([',', '.', ';', ':']))
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
    fn a_request_at_the_end_of_a_long_mail_is_still_in_the_own_text() {
        let body = format!("{}\nPlease update me every hour.", "Details. ".repeat(100));
        assert!(own_words(&body).ends_with("Please update me every hour."));
        assert!(summarize(&body, 300).chars().count() <= 301);
    }
}
