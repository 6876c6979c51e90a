//! "What we understood": the sentences of a complaint that state the problem, and the impact
//! and deadline when the customer states them, for the acknowledgement to quote back.
//!
//! Politeness carries nothing ("I hope this email finds you well"), and a lead-in only names
//! the subject ("I am writing regarding my order no. 771204."): a customer who reads them
//! quoted back as "what we understood" knows we did not read further. The phrasings are in
//! `templates/intents/LANG.toml` (`pleasantries`, `lead_ins`, `impact`, `deadline`), every
//! language's table read together, as the customer may write in any of them.

use crate::mail::own_words::OwnWords;
use crate::mail::summary;
use crate::templates::Intents;

use super::replies::{folded, occurs};

pub use crate::templates::Understood;

/// A pleasantry sentence is the phrase and at most this many words more ("I hope this
/// email finds you well, Sir"): a longer sentence holding it says something else too.
const PLEASANTRY_SLACK: usize = 4;

/// A lead-in sentence names the subject in at most this many words after its phrase ("my
/// order no. 771204", "over de levering van mijn nieuwe bank"); with more, it says something.
const LEAD_IN_SLACK: usize = 8;

/// Reads the complaint (`own`: the writer's own words) within `max` characters for the
/// problem.
pub fn read(own: &OwnWords, intents: &Intents, max: usize) -> Understood {
    let text = summary::cleaned(own);
    let sentences: Vec<Sentence> = sentences(&text)
        .into_iter()
        .map(|s| Sentence::read(s, intents))
        .filter(|s| !s.pleasantry)
        .collect();
    // A lead-in goes when something else is said; alone, it is all there is.
    let said: Vec<&Sentence> = if sentences.iter().any(|s| !s.lead_in) {
        sentences.iter().filter(|s| !s.lead_in).collect()
    } else {
        sentences.iter().collect()
    };
    let Some(first) = said.first() else {
        return Understood {
            problem: summary::summarize(own, max),
            ..Understood::default()
        };
    };
    let impact = said.iter().find(|s| s.impact);
    let deadline = said.iter().find(|s| s.deadline);
    // The problem: the first sentence, then the following ones that fit, leaving out what
    // is quoted apart as impact or deadline.
    let mut problem = summary::cut_at_sentence(&summary::capitalized(&first.text), max);
    let mut quoted = vec![first.text.as_str()];
    for s in said.iter().skip(1) {
        if s.impact || s.deadline {
            continue;
        }
        if problem.chars().count() + 1 + s.text.chars().count() > max {
            break;
        }
        problem.push(' ');
        problem.push_str(&s.text);
        quoted.push(&s.text);
    }
    let apart = |s: Option<&&Sentence>| {
        s.filter(|s| !quoted.contains(&s.text.as_str()))
            .map(|s| summary::cut_at_sentence(&summary::capitalized(&s.text), max))
            .unwrap_or_default()
    };
    Understood {
        impact: apart(impact),
        deadline: apart(deadline),
        problem,
    }
}

struct Sentence {
    text: String,
    pleasantry: bool,
    lead_in: bool,
    impact: bool,
    deadline: bool,
}

impl Sentence {
    fn read(text: String, intents: &Intents) -> Sentence {
        let lower = folded(&text);
        let words = lower.split_whitespace().count();
        let any = |list: &[String]| list.iter().any(|p| occurs(&lower, p));
        Sentence {
            pleasantry: intents.pleasantries.iter().any(|p| {
                occurs(&lower, p) && words <= p.split_whitespace().count() + PLEASANTRY_SLACK
            }),
            // Only when little follows: "I am writing regarding my order no. 771204." names
            // the subject; "I would like to complain about the heater that broke on Monday
            // and the engineer who never came" is the problem itself.
            lead_in: intents.lead_ins.iter().any(|p| {
                lower
                    .trim_start_matches(|c: char| !c.is_alphanumeric())
                    .strip_prefix(p.as_str())
                    .is_some_and(|rest| {
                        !rest.starts_with(char::is_alphanumeric)
                            && rest.split_whitespace().count() <= LEAD_IN_SLACK
                    })
            }),
            impact: any(&intents.impact),
            deadline: any(&intents.deadline),
            text,
        }
    }
}

/// The sentences of `text`, each on one line, whitespace collapsed: a sentence ends at `.`,
/// `!` or `?` before a capital (not in "no. 771204" or "3.5"), or at a paragraph's end. A
/// single line break is not an end: mail clients wrap lines inside sentences.
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for paragraph in text.split("\n\n") {
        let mut current = String::new();
        let words: Vec<&str> = paragraph.split_whitespace().collect();
        for (i, word) in words.iter().enumerate() {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
            let next_starts_sentence = words
                .get(i + 1)
                .and_then(|w| w.chars().next())
                .is_none_or(|c| !c.is_lowercase() && !c.is_ascii_digit());
            if word.ends_with(['.', '!', '?', '…']) && next_starts_sentence {
                out.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            out.push(current);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::our_mail::OurMail;
    use crate::mail::own_words::{self, Context};

    fn understood(text: &str) -> Understood {
        let own = own_words::read(text, &OurMail::none(), Context::Fresh);
        read(&own, &Intents::shipped(), crate::mail::SUMMARY_CHARS)
    }

    #[test]
    fn pleasantries_and_lead_ins_are_not_the_problem_and_impact_and_deadline_are_kept() {
        let u = understood(
            "Hello,\n\nI hope this email finds you well. I am writing regarding my order no. \
             771204. The lamp arrived broken, the glass is in pieces. My clients are waiting \
             for the shop to open. I need it before Friday.\n\nBest regards,\nTom",
        );
        assert!(u.problem.starts_with("The lamp arrived broken"), "{u:?}");
        assert!(!u.problem.contains("hope"), "{u:?}");
        assert!(u.impact.contains("My clients are waiting"), "{u:?}");
        assert_eq!(u.deadline, "I need it before Friday.");
    }

    #[test]
    fn a_lead_in_alone_is_all_there_is_and_a_plain_complaint_is_quoted_whole() {
        let u = understood("I am writing regarding my order 771204.");
        assert_eq!(u.problem, "I am writing regarding my order 771204.");
        // A lead-in that carries the problem is the problem.
        let u = understood("I am writing because the heater broke on Monday. Nobody came.");
        assert!(
            u.problem
                .starts_with("I am writing because the heater broke"),
            "{u:?}"
        );
        let u = understood(
            "I would like to complain about the heater that broke on Monday and the engineer \
             who never came. We are cold.",
        );
        assert!(u.problem.starts_with("I would like to complain"), "{u:?}");
        let u = understood("The vase arrived in pieces. The box was crushed.");
        assert_eq!(
            u.problem,
            "The vase arrived in pieces. The box was crushed."
        );
        assert_eq!((u.impact.as_str(), u.deadline.as_str()), ("", ""));
    }

    #[test]
    fn a_sentence_wrapped_over_two_lines_is_one_sentence() {
        let u = understood(
            "The backrest broke after three weeks. I work\nfrom home and need the chair \
             urgently.\n\nRegards,\nLena",
        );
        assert_eq!(u.problem, "The backrest broke after three weeks.");
        assert_eq!(u.impact, "I work from home and need the chair urgently.");
    }

    #[test]
    fn a_deadline_in_the_problem_sentence_is_not_quoted_twice() {
        let u = understood("The vase I ordered arrived in pieces and I need it by Friday.");
        assert!(u.problem.contains("by Friday"));
        assert_eq!(u.deadline, "");
    }

    /// `tests/fixtures/understood/LANG.toml`: complaints as customers write them in each
    /// language, and what must be understood from them.
    #[test]
    fn complaints_in_every_language_are_understood() {
        #[derive(serde::Deserialize)]
        struct File {
            case: Vec<Case>,
        }
        #[derive(serde::Deserialize)]
        struct Case {
            text: String,
            problem: String,
            impact: Option<String>,
            deadline: Option<String>,
        }
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/understood");
        let mut failures = Vec::new();
        let mut cases = 0;
        for lang in ["en", "de", "fr", "es", "it", "nl", "pt"] {
            let path = dir.join(format!("{lang}.toml"));
            let text = std::fs::read_to_string(&path).expect("fixture");
            let file: File = toml::from_str(&text).expect("fixture parses");
            for case in file.case {
                cases += 1;
                let u = understood(&case.text);
                let mut wrong = Vec::new();
                if !u.problem.starts_with(&case.problem) {
                    wrong.push("problem");
                }
                let stated = |field: &str, expected: &Option<String>| match expected {
                    Some(e) => field.contains(e.as_str()) || u.problem.contains(e.as_str()),
                    None => field.is_empty(),
                };
                if !stated(&u.impact, &case.impact) {
                    wrong.push("impact");
                }
                if !stated(&u.deadline, &case.deadline) {
                    wrong.push("deadline");
                }
                if !wrong.is_empty() {
                    failures.push(format!(
                        "{lang}: {wrong:?} in {:?}: {u:?}",
                        case.text.trim()
                    ));
                }
            }
        }
        assert!(cases >= 56, "{cases} cases");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
