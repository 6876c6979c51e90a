//! What a customer's reply asks for: news (answered at once), no more automatic updates, or
//! nothing but to tell us something (staff are told; nothing automatic goes back); and what a
//! reply to the check-back answers.
//!
//! The phrasings live in `templates/intents/LANG.toml`, one table per language, every table
//! read together ([`Intents`]); `[replies] news_phrases` and `stop_phrases` add more. Phrases
//! are lower case and match on word boundaries. Only the customer's own words count (quotes
//! and signature removed by the caller).

use crate::templates::Intents;

/// What a reply asks of us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Intent {
    /// "Any news?", "when will it be fixed?", "still waiting": answer with the status now.
    pub asks_for_news: bool,
    /// "Please stop sending me these automatic updates".
    pub stop_updates: bool,
}

/// Reads a reply. `news` and `stop` are the configured extra phrases.
pub fn read(own_text: &str, intents: &Intents, news: &[String], stop: &[String]) -> Intent {
    let text = folded(own_text);
    // A reply that is only "stop" (what the plain acknowledgement tells a stranger to send).
    let only_stop = matches!(
        text.trim_matches(|c: char| !c.is_alphanumeric()),
        "stop" | "stop it" | "stop please" | "please stop"
    );
    let stop_updates = only_stop
        || intents
            .stop
            .iter()
            .chain(stop)
            .any(|p| occurs_unnegated(&text, p, &intents.negations));
    let asks_for_news = intents.news.iter().chain(news).any(|p| occurs(&text, p))
        || status_question(&text, &intents.status_words);
    Intent {
        asks_for_news,
        stop_updates,
    }
}

/// Lower case, with the typographic apostrophes phones and word processors write ("don’t",
/// "m’envoyer") as the tables write them.
pub(crate) fn folded(text: &str) -> String {
    text.to_lowercase()
        .replace(['\u{2019}', '\u{2018}', '\u{02bc}'], "'")
}

/// A sentence ending in `?` that is about the status.
fn status_question(text: &str, status_words: &[String]) -> bool {
    text.split_inclusive(['.', '!', '?', '\n'])
        .filter(|s| s.trim_end().ends_with('?'))
        .any(|s| status_words.iter().any(|w| occurs(s, w)))
}

/// `phrase` occurs on word boundaries.
pub(crate) fn occurs(text: &str, phrase: &str) -> bool {
    positions(text, phrase).next().is_some()
}

fn positions<'t>(text: &'t str, phrase: &'t str) -> impl Iterator<Item = usize> + 't {
    text.match_indices(phrase).filter_map(move |(at, _)| {
        let before = text.get(..at).and_then(|s| s.chars().next_back());
        let after = text.get(at + phrase.len()..).and_then(|s| s.chars().next());
        // A phrase that ends in punctuation ("hello??") needs no boundary after it.
        let open_end = phrase
            .chars()
            .next_back()
            .is_some_and(|c| !c.is_alphanumeric());
        let bounded = !before.is_some_and(char::is_alphanumeric)
            && (open_end || !after.is_some_and(char::is_alphanumeric));
        bounded.then_some(at)
    })
}

/// `phrase` occurs and is not turned around by a negation just before it.
fn occurs_unnegated(text: &str, phrase: &str, negations: &[String]) -> bool {
    positions(text, phrase).any(|at| {
        let before = text.get(..at).unwrap_or("").trim_end();
        !negations.iter().any(|n| before.ends_with(n.as_str()))
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
    /// It works, but they are unhappy with how it went ("not impressed", "took a week").
    pub unhappy: bool,
}

/// How a check-back answer was read, and so what was done: recorded with the answer, so
/// `report satisfaction` counts the very readings the decisions acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// It works: closed with thanks.
    Works,
    /// It works, but they are unhappy with how it went: closed, the thanks owns that.
    WorksUnhappy,
    /// "Yes" from a sender nobody proved: it stays resolved, staff decide.
    WorksUnproven,
    /// A clear no: reopened.
    NotFixed,
    /// A rating and nothing else: thanked, it stays resolved.
    Rated,
    /// A thank-you: it stays resolved.
    Thanks,
    /// No more mails, please: no check-back, it closes quietly.
    Stop,
    /// Neither yes nor no: it stays resolved, staff read it.
    Unclear,
}

impl Reading {
    pub const ALL: [Reading; 8] = [
        Reading::Works,
        Reading::WorksUnhappy,
        Reading::WorksUnproven,
        Reading::NotFixed,
        Reading::Rated,
        Reading::Thanks,
        Reading::Stop,
        Reading::Unclear,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reading::Works => "works",
            Reading::WorksUnhappy => "works_unhappy",
            Reading::WorksUnproven => "works_unproven",
            Reading::NotFixed => "not_fixed",
            Reading::Rated => "rated",
            Reading::Thanks => "thanks",
            Reading::Stop => "stop",
            Reading::Unclear => "unclear",
        }
    }

    pub fn parse(s: &str) -> Option<Reading> {
        Reading::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Reads a reply to the check-back in the customer's own language first (`lang`, when its
/// table says anything), then in every language.
pub fn check_back_answer_in(
    own_text: &str,
    intents: &Intents,
    lang: Option<&str>,
) -> CheckBackAnswer {
    if let Some(own) = lang.and_then(|l| intents.of(l)) {
        let answer = check_back_answer(own_text, own);
        if answer.fixed.is_some() || answer.thanks_only || answer.rating.is_some() {
            return answer;
        }
    }
    check_back_answer(own_text, intents)
}

/// Reads a reply to the check-back: only the first few lines count (what follows is often the
/// story again, or a quote).
pub fn check_back_answer(own_text: &str, intents: &Intents) -> CheckBackAnswer {
    let head = folded(
        &own_text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    let found = |list: &[String]| -> Vec<String> {
        list.iter().filter(|p| occurs(&head, p)).cloned().collect()
    };
    let (yes, no) = (found(&intents.yes), found(&intents.no));
    // Every language's table is read at once, and one language's yes may be another's no
    // ("funcionou no celular": Portuguese "in the"). A "no" of several words ("still
    // doesn't work") wins over a yes; a one-word "no" beside a yes is not clear, and only a
    // clear no may reopen a fixed incident: a person reads it.
    let fixed = match (yes.is_empty(), no.is_empty()) {
        (_, true) if !yes.is_empty() => Some(true),
        (true, false) => Some(false),
        (false, false) if no.iter().any(|p| p.contains(' ')) => Some(false),
        _ => None,
    };
    CheckBackAnswer {
        fixed,
        rating: rating(&head, intents),
        thanks_only: fixed.is_none() && thanks_only(own_text, intents),
        unhappy: fixed == Some(true) && !found(&intents.unhappy).is_empty(),
    }
}

/// "Thanks!", "Thank you so much", "Vielen Dank!", "Merci beaucoup": every word a word of
/// thanks, and one of them a thanks word itself.
fn thanks_only(own_text: &str, intents: &Intents) -> bool {
    let lower = folded(own_text);
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let known = |list: &[String], w: &str| list.iter().any(|t| t == w);
    !words.is_empty()
        && words.len() <= 6
        && words
            .iter()
            .all(|w| known(&intents.thanks, w) || known(&intents.thanks_markers, w))
        && words.iter().any(|w| known(&intents.thanks_markers, w))
}

/// "5", "yes, 4", "4/5", "4 out of 5", "5 stars", "rating: 3", "Bewertung 5", "I rate you
/// four": a number from 1 to 5 that is clearly a rating, never a digit in a story ("I waited 3
/// days").
fn rating(head: &str, intents: &Intents) -> Option<u8> {
    let tokens: Vec<&str> = head
        .split(|c: char| c.is_whitespace() || c == ',' || c == '!' || c == '.' || c == ':')
        .filter(|t| !t.is_empty())
        .collect();
    let rating_word = |t: &str| intents.rating_words.iter().any(|w| w == t);
    let digit = |t: &str| -> Option<u8> {
        let t = t.trim_end_matches("/5");
        t.parse::<u8>().ok().filter(|n| (1..=5).contains(n))
    };
    let in_words = |t: &str| {
        intents
            .rating_numbers
            .iter()
            .find(|(w, _)| w == t)
            .map(|(_, n)| *n)
    };
    for (i, t) in tokens.iter().enumerate() {
        let next = tokens.get(i + 1).copied().unwrap_or("");
        let after = tokens.get(i + 2).copied().unwrap_or("");
        let prev = if i > 0 { tokens[i - 1] } else { "" };
        let before_prev = if i > 1 { tokens[i - 2] } else { "" };
        if let Some(n) = digit(t) {
            let rated = t.ends_with("/5")
                || (next == "out" && after == "of")
                || (next == "von" && after == "5")
                || rating_word(next)
                || rating_word(prev)
                // A lone digit that opens or ends the answer, or in a reply of a few words:
                // "yes 5", "5 - great", "All good now. 4", "ja, 4".
                || i == 0
                || i + 1 == tokens.len()
                || tokens.len() <= 4;
            if rated {
                return Some(n);
            }
        } else if let Some(n) = in_words(t) {
            // A number word is a rating only beside a rating word: "I rate you four", "four
            // stars", "note : quatre" (never "one more thing").
            if rating_word(prev) || rating_word(before_prev) || rating_word(next) {
                return Some(n);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> &'static Intents {
        static SHIPPED: std::sync::LazyLock<Intents> = std::sync::LazyLock::new(Intents::shipped);
        &SHIPPED
    }

    fn intent(text: &str) -> Intent {
        read(text, shipped(), &[], &[])
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
        let i = read(
            "Gibt es Neuigkeiten?",
            shipped(),
            &["neuigkeiten".into()],
            &[],
        );
        assert!(i.asks_for_news);
        let i = read(
            "Bitte keine Updates mehr",
            shipped(),
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
            let answer = check_back_answer(text, shipped());
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
            let answer = check_back_answer(text, shipped());
            assert!(answer.thanks_only && answer.fixed.is_none(), "{text}");
        }
        for text in [
            "Thanks, but the parcel is still missing",
            "Thank you. Where is my refund?",
            "You",
            "No thanks",
        ] {
            assert!(!check_back_answer(text, shipped()).thanks_only, "{text}");
        }
    }

    #[test]
    fn german_customers_ask_for_news_and_to_stop_too() {
        let read = |t: &str| read(t, shipped(), &[], &[]);
        assert!(read("Gibt es Neuigkeiten?").asks_for_news);
        assert!(read("Wie ist der Stand?").asks_for_news);
        assert!(read("Ist das schon behoben?").asks_for_news);
        assert!(!read("Hier ist der Screenshot.").asks_for_news);
        assert!(read("Bitte keine automatischen Nachrichten mehr.").stop_updates);
    }

    /// One language's natural replies and what must be read in them
    /// (`tests/fixtures/intents/LANG.toml`).
    #[derive(serde::Deserialize)]
    struct Fixture {
        news: Vec<String>,
        not_news: Vec<String>,
        stop: Vec<String>,
        not_stop: Vec<String>,
        yes: Vec<String>,
        no: Vec<String>,
        unclear: Vec<String>,
        thanks: Vec<String>,
        unhappy: Vec<String>,
        ratings: Vec<Rated>,
    }

    #[derive(serde::Deserialize)]
    struct Rated {
        text: String,
        rating: u8,
    }

    #[test]
    fn natural_replies_in_seven_languages_are_read_as_their_writers_meant_them() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/intents");
        let mut wrong = Vec::new();
        let mut languages = 0;
        for lang in ["en", "de", "fr", "es", "it", "nl", "pt"] {
            let text = std::fs::read_to_string(dir.join(format!("{lang}.toml"))).expect("fixture");
            let f: Fixture = toml::from_str(&text).unwrap_or_else(|e| panic!("{lang}: {e}"));
            languages += 1;
            assert!(
                f.news.len() >= 15 && f.stop.len() >= 15,
                "{lang}: too few phrasings"
            );
            let mut expect = |ok: bool, what: &str, text: &str| {
                if !ok {
                    wrong.push(format!("{lang} {what}: {text:?}"));
                }
            };
            for t in &f.news {
                expect(intent(t).asks_for_news, "news", t);
            }
            for t in &f.not_news {
                expect(!intent(t).asks_for_news, "not news", t);
            }
            for t in &f.stop {
                expect(intent(t).stop_updates, "stop", t);
            }
            for t in &f.not_stop {
                expect(!intent(t).stop_updates, "not stop", t);
            }
            for t in &f.yes {
                expect(
                    check_back_answer(t, shipped()).fixed == Some(true),
                    "yes",
                    t,
                );
            }
            for t in &f.no {
                expect(
                    check_back_answer(t, shipped()).fixed == Some(false),
                    "no",
                    t,
                );
            }
            for t in &f.unclear {
                let a = check_back_answer(t, shipped());
                expect(a.fixed.is_none() && !a.thanks_only, "unclear", t);
            }
            for t in &f.thanks {
                expect(check_back_answer(t, shipped()).thanks_only, "thanks", t);
            }
            for t in &f.unhappy {
                let a = check_back_answer(t, shipped());
                expect(a.fixed == Some(true) && a.unhappy, "unhappy", t);
            }
            for r in &f.ratings {
                let got = check_back_answer(&r.text, shipped()).rating;
                expect(got == Some(r.rating), "rating", &r.text);
            }
        }
        assert_eq!(languages, 7);
        assert!(
            wrong.is_empty(),
            "{} misread:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    #[test]
    fn the_phrasings_customers_were_not_heard_in_are_heard() {
        for text in [
            "Hello?? Is anyone there? … What is going on?",
            "Just checking in",
            "Des nouvelles ?",
            "¿Alguna novedad?",
            "What\u{2019}s going on?",
        ] {
            assert!(intent(text).asks_for_news, "{text}");
        }
        for text in [
            "Please don't spam me",
            "stop spamming me",
            "Too many emails!",
            "Please don\u{2019}t email me again",
            "Please stop emailing me about this",
        ] {
            assert!(intent(text).stop_updates, "{text}");
        }
        let read = |t: &str| check_back_answer(t, shipped());
        assert_eq!(
            read("Oui, j'ai bien reçu la lampe. Merci !").fixed,
            Some(true)
        );
        assert_eq!(read("Sí, ya me ha llegado el reembolso").fixed, Some(true));
        assert_eq!(read("All sorted, cheers!").fixed, Some(true));
        let unhappy = read("It works. But it took you a week … Not impressed.");
        assert!(unhappy.fixed == Some(true) && unhappy.unhappy);
        assert_eq!(read("I rate 4").rating, Some(4));
        // One language's "no" is another's "in the": not a clear no, so no reopen.
        assert_eq!(read("Sim, funcionou no celular").fixed, None);
        assert_eq!(
            read("Yes, but it still doesn't work on my phone").fixed,
            Some(false)
        );
    }

    #[test]
    fn a_customers_own_language_is_read_first() {
        // Alone, Italian "non" is the French no; read as Italian, it is no answer at all.
        let text = "Funziona, non ho più problemi con la stampante.";
        assert_eq!(check_back_answer(text, shipped()).fixed, None);
        assert_eq!(
            check_back_answer_in(text, shipped(), Some("it")).fixed,
            Some(true)
        );
        // Nothing in their own language: every language is read.
        assert_eq!(
            check_back_answer_in("Still broken, sorry.", shipped(), Some("fr")).fixed,
            Some(false)
        );
    }

    #[test]
    fn check_back_answers_are_read_from_the_writers_own_words_as_clients_write_them() {
        let own = |raw: &str| {
            crate::mail::own_words::read(
                raw,
                &crate::mail::OurMail::none(),
                crate::mail::Context::Reply,
            )
            .text()
        };
        let cases = [
            // Outlook in French: no `>`, a header block, our "oui ou non" under it.
            (
                "Oui, merci !\n\nDe : Example Support <support@example.test>\nEnvoyé : lundi \
                 30 novembre 2026 10:00\nÀ : Marie <marie@example.test>\nObjet : RE: La lampe \
                 est cassée\n\nEst-ce que tout fonctionne maintenant ? Répondez simplement oui \
                 ou non.",
                Some(true),
            ),
            // A phone: its footer, then the quote.
            (
                "All good now, thanks\n\nSent from my iPhone\n\n> On 30 Nov 2026, at 10:00, \
                 Example Support <support@example.test> wrote:\n>\n> Is it working for you \
                 now? Just reply yes or no.",
                Some(true),
            ),
            // Thunderbird, written below the quote.
            (
                "On 30.11.26 10:00, Example Support wrote:\n> Is it working for you now? Just \
                 reply yes or no.\n\nNo, it still fails every morning.",
                Some(false),
            ),
        ];
        for (raw, fixed) in cases {
            let text = own(raw);
            assert_eq!(
                check_back_answer(&text, shipped()).fixed,
                fixed,
                "{raw}\n→ {text}"
            );
        }
    }
}
