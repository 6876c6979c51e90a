//! What a customer's reply asks for: news (answered at once), no more automatic updates, or
//! nothing but to tell us something (staff are told; nothing automatic goes back).
//!
//! Every English phrasing we recognise lives in this file, with its tests; `[replies]
//! news_phrases` and `stop_phrases` add more (lower-case, matched on word boundaries). Only the
//! customer's own words count (quotes and signature removed by the caller).

/// What a reply asks of us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Intent {
    /// "Any news?", "when will it be fixed?", "still waiting": answer with the status now.
    pub asks_for_news: bool,
    /// "Please stop sending me these automatic updates".
    pub stop_updates: bool,
}

/// Phrases that ask for news.
const NEWS: &[&str] = &[
    "any news",
    "any update",
    "any updates",
    "any progress",
    "an update",
    "is there an update",
    "is there any update",
    "what is the status",
    "what's the status",
    "whats the status",
    "status update",
    "still waiting",
    "still no answer",
    "still no reply",
    "heard nothing",
    "haven't heard",
    "have not heard",
    "no response",
    "no reply yet",
    "how long",
    "when will",
    "when can i",
    "when can we",
    "when do you",
    "where is my",
    "where are we",
    "eta",
    "follow up",
    "following up",
    "any word",
    // German
    "gibt es neuigkeiten",
    "neuigkeiten",
    "gibt es etwas neues",
    "schon etwas neues",
    "wie ist der stand",
    "wie ist der aktuelle stand",
    "stand der dinge",
    "warte immer noch",
    "warten immer noch",
    "noch keine antwort",
    "nichts gehört",
    "wie lange noch",
    "wann wird",
    "wann kann ich",
    "wo bleibt",
];

/// Words that make a question a question about the status ("is it fixed yet?").
const STATUS_WORDS: &[&str] = &[
    "status", "update", "news", "progress", "fixed", "resolved", "done", "ready", "working", "yet",
    "when", "stand", "behoben", "gelöst", "fertig", "schon", "wann",
];

/// Phrases that ask us to stop the automatic updates.
const STOP: &[&str] = &[
    "stop sending",
    "stop emailing",
    "stop e-mailing",
    "stop mailing",
    "stop writing",
    "stop these",
    "stop the updates",
    "stop the emails",
    "stop the automatic",
    "stop your automatic",
    "no more updates",
    "no more emails",
    "no more e-mails",
    "no more automatic",
    "don't send me",
    "do not send me",
    "don't email me",
    "do not email me",
    "unsubscribe",
    "opt out",
    "remove me from",
    // German
    "keine updates mehr",
    "keine automatischen",
    "keine e-mails mehr",
    "keine mails mehr",
    "schicken sie mir keine",
    "hören sie auf",
    "nicht mehr anschreiben",
    "abmelden",
];

/// Words right before a stop phrase that turn it around ("don't stop sending").
const NEGATIONS: &[&str] = &[
    "don't",
    "do not",
    "dont",
    "never",
    "please don't",
    "no need to",
];

/// Reads a reply. `news` and `stop` are the configured extra phrases.
pub fn read(own_text: &str, news: &[String], stop: &[String]) -> Intent {
    let text = own_text.to_lowercase();
    // A reply that is only "stop" (what the plain acknowledgement tells a stranger to send).
    let only_stop = matches!(
        text.trim_matches(|c: char| !c.is_alphanumeric()),
        "stop" | "stop it" | "stop please" | "please stop"
    );
    let stop_updates = only_stop
        || STOP
            .iter()
            .copied()
            .chain(stop.iter().map(String::as_str))
            .any(|p| occurs_unnegated(&text, p));
    let asks_for_news = NEWS
        .iter()
        .copied()
        .chain(news.iter().map(String::as_str))
        .any(|p| occurs(&text, p))
        || status_question(&text);
    Intent {
        asks_for_news,
        stop_updates,
    }
}

/// A sentence ending in `?` that is about the status.
fn status_question(text: &str) -> bool {
    text.split_inclusive(['.', '!', '?', '\n'])
        .filter(|s| s.trim_end().ends_with('?'))
        .any(|s| STATUS_WORDS.iter().any(|w| occurs(s, w)))
}

/// `phrase` occurs on word boundaries.
fn occurs(text: &str, phrase: &str) -> bool {
    positions(text, phrase).next().is_some()
}

fn positions<'t>(text: &'t str, phrase: &'t str) -> impl Iterator<Item = usize> + 't {
    text.match_indices(phrase).filter_map(move |(at, _)| {
        let before = text.get(..at).and_then(|s| s.chars().next_back());
        let after = text.get(at + phrase.len()..).and_then(|s| s.chars().next());
        let bounded =
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric);
        bounded.then_some(at)
    })
}

/// `phrase` occurs and is not turned around by a negation just before it.
fn occurs_unnegated(text: &str, phrase: &str) -> bool {
    positions(text, phrase).any(|at| {
        let before = text.get(..at).unwrap_or("").trim_end();
        !NEGATIONS.iter().any(|n| before.ends_with(n))
    })
}

/// An answer to the check-back ("Is it working for you now? Just reply yes or no, and a
/// number from 1 to 5 if you like").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckBackAnswer {
    /// Some(true) "yes, it works", Some(false) "no, still broken", None: neither said.
    pub fixed: Option<bool>,
    /// 1 to 5.
    pub rating: Option<u8>,
    /// The whole reply is a thank-you ("Thanks!", "Vielen Dank"): polite, not a complaint.
    pub thanks_only: bool,
}

/// A reply made of these words only (and punctuation) is a thank-you.
const THANKS_WORDS: &[&str] = &[
    "thanks",
    "thank",
    "you",
    "so",
    "very",
    "much",
    "a",
    "lot",
    "many",
    "cheers",
    "great",
    "again",
    "danke",
    "vielen",
    "dank",
    "schön",
    "schon",
    "sehr",
    "herzlichen",
    "besten",
];

/// Ways of saying it is still broken; they win over any "yes" ("yes, but it still fails").
const NOT_FIXED: &[&str] = &[
    "no",
    "nope",
    "not yet",
    "not really",
    "still not",
    "still broken",
    "still fail",
    "still doesn't",
    "still does not",
    "still the same",
    "still missing",
    "still wrong",
    "doesn't work",
    "does not work",
    "not working",
    "isn't working",
    "is not working",
    "broke again",
    "nein",
    "noch nicht",
    "immer noch",
    "funktioniert nicht",
    "geht nicht",
    "geht immer noch nicht",
    "leider nicht",
];

/// Ways of saying it works.
const FIXED: &[&str] = &[
    "yes",
    "yep",
    "yeah",
    "yup",
    "all good",
    "it works",
    "works now",
    "working now",
    "works fine",
    "works again",
    "works perfectly",
    "everything is fine",
    "everything works",
    "it's fixed",
    "it is fixed",
    "all fixed",
    "problem solved",
    "ja",
    "jep",
    "funktioniert",
    "funktioniert wieder",
    "alles gut",
    "alles bestens",
    "passt",
    "gelöst",
];

/// Reads a reply to the check-back: only the first few lines count (what follows is often the
/// story again, or a quote), and a "no" wins over a "yes".
pub fn check_back_answer(own_text: &str) -> CheckBackAnswer {
    let head: String = own_text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let words = |list: &[&str]| list.iter().any(|p| has_phrase(&head, p));
    let fixed = if words(NOT_FIXED) {
        Some(false)
    } else if words(FIXED) {
        Some(true)
    } else {
        None
    };
    CheckBackAnswer {
        fixed,
        rating: rating(&head),
        thanks_only: fixed.is_none() && thanks_only(own_text),
    }
}

/// "Thanks!", "Thank you so much", "Vielen Dank!": every word a word of thanks, and one of
/// them "thanks", "thank", "cheers" or "danke"/"dank".
fn thanks_only(own_text: &str) -> bool {
    let lower = own_text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    !words.is_empty()
        && words.len() <= 6
        && words.iter().all(|w| THANKS_WORDS.contains(w))
        && words
            .iter()
            .any(|w| matches!(*w, "thanks" | "thank" | "cheers" | "danke" | "dank"))
}

/// "5", "yes, 4", "4/5", "4 out of 5", "5 stars", "rating: 3", "Bewertung 5": a number from 1
/// to 5 that is clearly a rating, never a digit in a story ("I waited 3 days").
fn rating(head: &str) -> Option<u8> {
    let tokens: Vec<&str> = head
        .split(|c: char| c.is_whitespace() || c == ',' || c == '!' || c == '.' || c == ':')
        .filter(|t| !t.is_empty())
        .collect();
    let digit = |t: &str| -> Option<u8> {
        let t = t.trim_end_matches("/5");
        t.parse::<u8>().ok().filter(|n| (1..=5).contains(n))
    };
    for (i, t) in tokens.iter().enumerate() {
        let next = tokens.get(i + 1).copied().unwrap_or("");
        let after = tokens.get(i + 2).copied().unwrap_or("");
        let prev = if i > 0 { tokens[i - 1] } else { "" };
        let Some(n) = digit(t) else { continue };
        let rated = t.ends_with("/5")
            || (next == "out" && after == "of")
            || (next == "von" && after == "5")
            || matches!(next, "stars" | "star" | "sterne" | "stern")
            || matches!(prev, "rating" | "bewertung" | "note")
            // A lone digit that opens or ends the answer, or in a reply of a few words:
            // "yes 5", "5 - great", "All good now. 4", "ja, 4".
            || i == 0
            || i + 1 == tokens.len()
            || tokens.len() <= 4;
        if rated {
            return Some(n);
        }
    }
    None
}

fn has_phrase(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(at, _)| {
        let before = text.get(..at).and_then(|s| s.chars().next_back());
        let after = text.get(at + phrase.len()..).and_then(|s| s.chars().next());
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(text: &str) -> Intent {
        read(text, &[], &[])
    }

    #[test]
    fn asking_for_news_in_many_words_is_recognised() {
        for text in [
            "Any news?",
            "Hi, any update on this?",
            "I'm still waiting for my refund.",
            "When will the parcel arrive?",
            "What's the status of my order?",
            "Is it fixed yet?",
            "Is there an update? It has been two days.",
            "How long will this take",
            "Just following up on my complaint.",
        ] {
            assert!(intent(text).asks_for_news, "{text}");
        }
    }

    #[test]
    fn telling_us_something_is_not_asking_for_news() {
        for text in [
            "Here is the screenshot you asked for.",
            "The order number is 5521.",
            "It broke again this morning, order #48391.",
            "Thanks, that helps.",
            "My daily backup failed again.",
            "Could you send the invoice to my colleague?",
        ] {
            assert!(!intent(text).asks_for_news, "{text}");
        }
    }

    #[test]
    fn a_request_to_stop_the_automatic_updates_is_recognised_unless_turned_around() {
        for text in [
            "Please stop sending me these automatic updates.",
            "No more updates please, I'll wait for the fix.",
            "Don't email me again until it's fixed.",
            "unsubscribe",
            "STOP",
            "stop.",
        ] {
            assert!(intent(text).stop_updates, "{text}");
        }
        for text in [
            "Please don't stop sending updates, they help.",
            "Keep the updates coming.",
            "The app stops sending notifications after an hour.",
            "The checkout page won't stop loading.",
        ] {
            assert!(!intent(text).stop_updates, "{text}");
        }
    }

    #[test]
    fn configured_phrases_count_too() {
        let i = read("Gibt es Neuigkeiten?", &["neuigkeiten".into()], &[]);
        assert!(i.asks_for_news);
        let i = read(
            "Bitte keine Updates mehr",
            &[],
            &["keine updates mehr".into()],
        );
        assert!(i.stop_updates);
    }

    #[test]
    fn check_back_answers_are_yes_no_and_an_optional_rating() {
        let cases: &[(&str, Option<bool>, Option<u8>)] = &[
            ("Yes", Some(true), None),
            ("yes, 5", Some(true), Some(5)),
            ("Yes, it works now. Thanks! 4/5", Some(true), Some(4)),
            ("All good, thank you.", Some(true), None),
            ("No", Some(false), None),
            ("No, it still fails every morning.", Some(false), None),
            (
                "Yes, but it still doesn't work on my phone",
                Some(false),
                None,
            ),
            ("Ja, funktioniert wieder. 5 Sterne", Some(true), Some(5)),
            ("Leider nicht, es geht immer noch nicht.", Some(false), None),
            ("4", None, Some(4)),
            (
                "I waited 3 days for your answer and the parcel is still missing",
                Some(false),
                None,
            ),
            (
                "I waited 3 days for your reply about the refund last month",
                None,
                None,
            ),
            ("Rating: 2", None, Some(2)),
        ];
        for (text, fixed, rating) in cases {
            let answer = check_back_answer(text);
            assert_eq!(answer.fixed, *fixed, "{text}");
            assert_eq!(answer.rating, *rating, "{text}");
        }
    }

    #[test]
    fn a_thank_you_alone_is_neither_yes_nor_no_and_not_a_complaint() {
        for text in [
            "Thanks!",
            "Thank you so much.",
            "Cheers",
            "Vielen Dank!",
            "Danke schön",
        ] {
            let answer = check_back_answer(text);
            assert!(answer.thanks_only && answer.fixed.is_none(), "{text}");
        }
        for text in [
            "Thanks, but the parcel is still missing",
            "Thank you. Where is my refund?",
            "You",
            "No thanks",
        ] {
            assert!(!check_back_answer(text).thanks_only, "{text}");
        }
    }

    #[test]
    fn german_customers_ask_for_news_and_to_stop_too() {
        let read = |t: &str| read(t, &[], &[]);
        assert!(read("Gibt es Neuigkeiten?").asks_for_news);
        assert!(read("Wie ist der Stand?").asks_for_news);
        assert!(read("Ist das schon behoben?").asks_for_news);
        assert!(!read("Hier ist der Screenshot.").asks_for_news);
        assert!(read("Bitte keine automatischen Nachrichten mehr.").stop_updates);
    }
}
