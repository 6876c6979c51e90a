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

/// A language read from a customer's own words.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub lang: String,
    /// 0 to 1.
    pub confidence: f64,
}

/// The language of `text` among those followupd reads (an intents table ships for each: en,
/// de, fr, es, it, nl, pt), when two detectors agree on it: whichlang (right on every one of
/// the 200 short complaints of `tests/fixtures/languages`, but it always answers) and whatlang
/// (trigrams; 0 wrong, 9 too unsure to say). Disagreement, a text of fewer than three words, or
/// another language: None, and the customer is answered in `[language] default`. The
/// confidence is whatlang's.
pub fn detect(text: &str) -> Option<Detected> {
    if text.split_whitespace().count() < 3 {
        return None;
    }
    let which = match whichlang::detect_language(text) {
        whichlang::Lang::Eng => "en",
        whichlang::Lang::Deu => "de",
        whichlang::Lang::Fra => "fr",
        whichlang::Lang::Spa => "es",
        whichlang::Lang::Ita => "it",
        whichlang::Lang::Nld => "nl",
        whichlang::Lang::Por => "pt",
        _ => return None,
    };
    guess(text).filter(|what| what.lang == which)
}

/// How a new incident's language was chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The complaint's `Content-Language` header.
    Header,
    /// Their own words, read by detection.
    Words { confidence: f64 },
}

/// The language a complaint is in: its `Content-Language` when it has one (Outlook writes it),
/// else its writer's own words when detection is sure (Gmail, GMX, Thunderbird and Apple Mail
/// send no header). None: `[language] default`.
pub fn of_complaint(content_language: Option<&str>, own_words: &str) -> Option<(String, Source)> {
    match content_language {
        Some(lang) => Some((lang.to_string(), Source::Header)),
        None => detect(own_words).map(|d| {
            (
                d.lang,
                Source::Words {
                    confidence: d.confidence,
                },
            )
        }),
    }
}

/// The best guess among those, however unsure.
pub fn guess(text: &str) -> Option<Detected> {
    use whatlang::Lang;
    let allow = vec![
        Lang::Eng,
        Lang::Deu,
        Lang::Fra,
        Lang::Spa,
        Lang::Ita,
        Lang::Nld,
        Lang::Por,
    ];
    let info = whatlang::Detector::with_allowlist(allow).detect(text)?;
    let lang = match info.lang() {
        Lang::Eng => "en",
        Lang::Deu => "de",
        Lang::Fra => "fr",
        Lang::Spa => "es",
        Lang::Ita => "it",
        Lang::Nld => "nl",
        Lang::Por => "pt",
        _ => return None,
    };
    Some(Detected {
        lang: lang.to_string(),
        confidence: info.confidence(),
    })
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

    /// The corpus: 40 short complaints per language, as customers write a first mail.
    fn corpus() -> Vec<(&'static str, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/languages");
        let mut out = Vec::new();
        for lang in ["en", "de", "fr", "es", "nl"] {
            let text = std::fs::read_to_string(dir.join(format!("{lang}.txt"))).expect("corpus");
            for complaint in text.split("\n---\n") {
                out.push((lang, complaint.trim().to_string()));
            }
        }
        out
    }

    #[test]
    fn short_complaints_are_read_in_their_language_at_least_95_percent_of_the_time() {
        let corpus = corpus();
        assert!(corpus.len() >= 200, "{} complaints", corpus.len());
        let (mut right, mut wrong, mut unsure) = (0, Vec::new(), 0);
        let whatlang_sure = corpus
            .iter()
            .filter(|(lang, text)| {
                guess(text).is_some_and(|g| g.lang == *lang && g.confidence >= 0.5)
            })
            .count();
        for (lang, text) in &corpus {
            match detect(text) {
                Some(d) if d.lang == *lang => right += 1,
                Some(d) => wrong.push(format!(
                    "{lang} read as {} ({:.2}): {text}",
                    d.lang, d.confidence
                )),
                None => unsure += 1,
            }
        }
        // The same corpus through whichlang, for the record (it has no confidence).
        let whichlang_right = corpus
            .iter()
            .filter(|(lang, text)| {
                let code = match whichlang::detect_language(text) {
                    whichlang::Lang::Eng => "en",
                    whichlang::Lang::Deu => "de",
                    whichlang::Lang::Fra => "fr",
                    whichlang::Lang::Spa => "es",
                    whichlang::Lang::Nld => "nl",
                    _ => "?",
                };
                code == *lang
            })
            .count();
        let share = right as f64 / corpus.len() as f64;
        eprintln!(
            "language detection on {} short complaints: both agreeing {right} right, {} wrong, \
             {unsure} left to the default ({:.1} %); whichlang alone {whichlang_right} right; \
             whatlang alone (confidence >= 0.5) {whatlang_sure} right",
            corpus.len(),
            wrong.len(),
            share * 100.0
        );
        assert!(wrong.len() <= corpus.len() / 100, "{}", wrong.join("\n"));
        assert!(
            share >= 0.95,
            "{:.1} % right; wrong: {}",
            share * 100.0,
            wrong.join("\n")
        );
    }
}
