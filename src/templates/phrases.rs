//! Phrases: every sentence followupd writes outside the mail templates (event texts, the
//! reasons staff notifications give, refusals, dates, durations and number words), one file
//! per language beside the templates: `phrases.toml` for the default set, `LANG/phrases.toml`
//! for another.
//!
//! Decisions say *what* happened as a [`Said`] (a phrase key and its facts); the phrase book
//! words it. A phrase is plain text with `{name}` places for its facts (`{{` and `}}` for a
//! literal brace). A set may leave out any phrase: the default set's, then the shipped English
//! one, is used instead, so an install upgraded with its old template directory keeps working.
//! `check` refuses a set that names a phrase or a fact followupd does not know.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::TemplateError;

/// The shipped English phrases: every key there is, and the facts each may use.
const SHIPPED: &str = include_str!("../../templates/phrases.toml");

/// Facts a phrase is given beyond those its shipped English names: another language may
/// word it with them (German says "innerhalb von vier Tagen" where English says "4 days").
const MORE_FACTS: &[(&str, &[&str])] = &[("mail.close_after", &["since"])];

/// A sentence decided but not yet worded: which phrase, and the facts it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    pub key: &'static str,
    pub args: Vec<(&'static str, String)>,
}

impl Said {
    pub fn new(key: &'static str, args: Vec<(&'static str, String)>) -> Said {
        Said { key, args }
    }
}

/// `said!("event.opened", from = address, subject = s)`: a [`Said`] with its facts as text.
#[macro_export]
macro_rules! said {
    ($key:literal $(, $name:ident = $value:expr)* $(,)?) => {
        $crate::templates::Said::new($key, vec![$((stringify!($name), ($value).to_string())),*])
    };
}

/// One phrase: a sentence, or a list of words (weekdays, months, number words).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phrase {
    Text(String),
    List(Vec<String>),
}

type Set = BTreeMap<String, Phrase>;

/// The phrase sets of a template directory.
#[derive(Debug, Clone)]
pub struct Phrases {
    shipped: Set,
    /// The default set (`phrases.toml` beside the default templates).
    default: Set,
    /// Per language directory (`de/phrases.toml`).
    languages: BTreeMap<String, Set>,
}

impl Default for Phrases {
    /// The shipped English phrases alone.
    fn default() -> Phrases {
        Phrases {
            shipped: shipped(),
            default: Set::new(),
            languages: BTreeMap::new(),
        }
    }
}

fn shipped() -> Set {
    // The file is part of the build and a unit test parses it; it cannot fail here.
    parse(SHIPPED, Path::new("templates/phrases.toml")).unwrap_or_default()
}

impl Phrases {
    /// Reads `dir/phrases.toml` and `dir/LANG/phrases.toml` for each of `languages`; a file
    /// that is missing means "the shipped words". Every mistake is reported, each with its file.
    pub fn load(dir: &Path, languages: &[String]) -> Result<Phrases, TemplateError> {
        let shipped = shipped();
        let mut errors = Vec::new();
        let mut read = |path: PathBuf| -> Set {
            match std::fs::read_to_string(&path) {
                Ok(text) => match parse(&text, &path) {
                    Ok(set) => {
                        errors.extend(validate(&set, &shipped, &path));
                        set
                    }
                    Err(e) => {
                        errors.push(e);
                        Set::new()
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Set::new(),
                Err(e) => {
                    errors.push(TemplateError::Template {
                        file: path,
                        line: None,
                        reason: format!("cannot read the phrases: {e}"),
                    });
                    Set::new()
                }
            }
        };
        let default = read(dir.join("phrases.toml"));
        let languages = languages
            .iter()
            .map(|lang| (lang.clone(), read(dir.join(lang).join("phrases.toml"))))
            .collect();
        if errors.is_empty() {
            Ok(Phrases {
                shipped,
                default,
                languages,
            })
        } else {
            Err(TemplateError::Many(errors))
        }
    }

    fn find(&self, lang: Option<&str>, key: &str) -> Option<&Phrase> {
        lang.and_then(|l| self.languages.get(l))
            .and_then(|set| set.get(key))
            .or_else(|| self.default.get(key))
            .or_else(|| self.shipped.get(key))
    }

    /// `said` in `lang`'s words (None or an unknown language: the default set).
    pub fn say(&self, lang: Option<&str>, said: &Said) -> String {
        self.say_key(lang, said.key, &said.args)
    }

    /// As [`Phrases::say`], for a key made from parts (a plural form, a zone name).
    pub(super) fn say_key(&self, lang: Option<&str>, key: &str, args: &[(&str, String)]) -> String {
        match self.find(lang, key) {
            Some(Phrase::Text(text)) => fill(text, args),
            // A key the shipped file lacks is a bug caught by the phrase tests; say the facts
            // rather than nothing.
            _ => args
                .iter()
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// The phrase's text as written, if the sets have it.
    pub(super) fn list_or_text(&self, lang: Option<&str>, key: &str) -> Option<String> {
        match self.find(lang, key) {
            Some(Phrase::Text(text)) => Some(text.clone()),
            _ => None,
        }
    }

    /// Word `i` of a list (`words.weekdays`, 0 = Monday), or "" past its end.
    pub fn word(&self, lang: Option<&str>, key: &str, i: usize) -> String {
        self.list(lang, key).get(i).cloned().unwrap_or_default()
    }

    /// A list of words (`words.numbers`).
    pub fn list(&self, lang: Option<&str>, key: &str) -> &[String] {
        match self.find(lang, key) {
            Some(Phrase::List(words)) => words,
            _ => &[],
        }
    }

    /// Whether a phrase has text (an empty phrase means "say nothing here").
    pub fn has(&self, lang: Option<&str>, key: &str) -> bool {
        matches!(self.find(lang, key), Some(Phrase::Text(t)) if !t.is_empty())
    }
}

/// Reads a phrase file into dotted keys: `[event] opened = "…"` is `event.opened`.
fn parse(text: &str, path: &Path) -> Result<Set, TemplateError> {
    let value: toml::Table = toml::from_str(text).map_err(|e| TemplateError::Template {
        file: path.to_path_buf(),
        line: e
            .span()
            .map(|s| text.get(..s.start).map_or(0, |b| b.lines().count())),
        reason: e.message().to_string(),
    })?;
    let mut set = Set::new();
    let mut bad = Vec::new();
    flatten("", &value, &mut set, &mut bad);
    match bad.first() {
        None => Ok(set),
        Some(key) => Err(TemplateError::Template {
            file: path.to_path_buf(),
            line: None,
            reason: format!("`{key}` must be text or a list of text"),
        }),
    }
}

fn flatten(prefix: &str, table: &toml::Table, set: &mut Set, bad: &mut Vec<String>) {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::String(text) => {
                set.insert(key, Phrase::Text(text.clone()));
            }
            toml::Value::Array(items) => {
                let words: Option<Vec<String>> = items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect();
                match words {
                    Some(words) => {
                        set.insert(key, Phrase::List(words));
                    }
                    None => bad.push(key),
                }
            }
            toml::Value::Table(inner) => flatten(&key, inner, set, bad),
            _ => bad.push(key),
        }
    }
}

/// What `check` refuses in a set: keys followupd does not know, facts a phrase may not name,
/// a sentence where a list belongs (or the other way), a week without seven days.
fn validate(set: &Set, shipped: &Set, path: &Path) -> Vec<TemplateError> {
    let error = |reason: String| TemplateError::Template {
        file: path.to_path_buf(),
        line: None,
        reason,
    };
    let mut errors = Vec::new();
    for (key, phrase) in set {
        match (phrase, shipped.get(key)) {
            // A language names its own time zones ("MEZ" for CET).
            (Phrase::Text(_), None) if key.starts_with("time.zones.") => {}
            (_, None) => errors.push(error(format!("`{key}` is not a phrase followupd uses"))),
            (Phrase::Text(text), Some(Phrase::Text(ours))) => {
                let mut known = places(ours);
                for (_, more) in MORE_FACTS.iter().filter(|(k, _)| k == key) {
                    known.extend(more.iter().map(|m| m.to_string()));
                }
                match places_checked(text) {
                    Err(why) => errors.push(error(format!("`{key}`: {why}"))),
                    Ok(used) => {
                        let unknown: Vec<&str> = used
                            .iter()
                            .filter(|p| !known.contains(*p))
                            .map(String::as_str)
                            .collect();
                        if !unknown.is_empty() {
                            let allowed: Vec<&str> = known.iter().map(String::as_str).collect();
                            errors.push(error(format!(
                                "`{key}` names {{{}}}, which it is not given (it has: {})",
                                unknown.join("}, {"),
                                if allowed.is_empty() {
                                    "none".to_string()
                                } else {
                                    format!("{{{}}}", allowed.join("}, {"))
                                }
                            )));
                        }
                    }
                }
            }
            (Phrase::List(zones), Some(Phrase::List(_))) if key == "time.customer_zones" => {
                for zone in zones {
                    if zone.parse::<chrono_tz::Tz>().is_err() {
                        errors.push(error(format!(
                            "`{key}`: `{zone}` is not a time zone name (write an IANA name such as \"America/Los_Angeles\")"
                        )));
                    }
                }
            }
            (Phrase::List(words), Some(Phrase::List(ours))) => {
                let fixed = key.starts_with("words.weekdays") || key == "words.months";
                if fixed && words.len() != ours.len() {
                    errors.push(error(format!(
                        "`{key}` needs {} words, not {}",
                        ours.len(),
                        words.len()
                    )));
                }
            }
            (Phrase::Text(_), Some(Phrase::List(_))) => {
                errors.push(error(format!("`{key}` is a list of words, not a sentence")))
            }
            (Phrase::List(_), Some(Phrase::Text(_))) => {
                errors.push(error(format!("`{key}` is a sentence, not a list")))
            }
        }
    }
    errors
}

/// The `{name}` places of a phrase (the shipped ones are well formed).
fn places(text: &str) -> BTreeSet<String> {
    places_checked(text).unwrap_or_default()
}

fn places_checked(text: &str) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) if c.is_ascii_alphanumeric() || c == '_' => name.push(c),
                        _ => {
                            return Err(
                                "a `{` with no name and `}` after it (write `{{` for a brace)"
                                    .into(),
                            )
                        }
                    }
                }
                out.insert(name);
            }
            '}' => return Err("a `}` with no `{` before it (write `}}` for a brace)".into()),
            _ => {}
        }
    }
    Ok(out)
}

/// The phrase with its facts in place.
fn fill(text: &str, args: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                match args.iter().find(|(n, _)| *n == name) {
                    Some((_, value)) => out.push_str(value),
                    None => {
                        out.push('{');
                        out.push_str(&name);
                        out.push('}');
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_phrases_parse_and_every_place_is_well_formed() {
        let set = parse(SHIPPED, Path::new("phrases.toml")).expect("shipped phrases parse");
        assert!(set.len() > 50, "{}", set.len());
        for (key, phrase) in &set {
            if let Phrase::Text(text) = phrase {
                places_checked(text).unwrap_or_else(|e| panic!("{key}: {e}"));
            }
        }
        assert!(validate(&set, &set, Path::new("x")).is_empty());
    }

    #[test]
    fn every_shipped_language_set_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let phrases = Phrases::load(&dir, &["de".to_string()]).expect("shipped sets are valid");
        assert_eq!(phrases.word(Some("de"), "words.weekdays", 0), "Montag");
        assert_eq!(phrases.word(None, "words.weekdays", 6), "Sunday");
    }

    #[test]
    fn facts_fill_their_places_and_braces_can_be_written() {
        let said = said!("x", from = "ann@example.test", n = 3);
        assert_eq!(
            fill("{from} wrote {n} times {{not a place}}", &said.args),
            "ann@example.test wrote 3 times {not a place}"
        );
        // A fact's own braces stay as written: it is never read as a phrase.
        let said = said!("x", from = "{n}");
        assert_eq!(fill("by {from}", &said.args), "by {n}");
    }

    #[test]
    fn a_set_that_names_an_unknown_phrase_or_fact_is_refused_with_its_file() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join("phrases.toml"),
            "[event]\nopened = \"eröffnet von {from}: {betreff}\"\nnonsense = \"x\"\n\
             [words]\nweekdays = [\"Mo\"]\n\
             [time]\ncustomer_zones = [\"America/Los_Angeles\", \"Pacific Time\"]\n",
        )
        .expect("write");
        let err = Phrases::load(dir.path(), &[])
            .expect_err("refused")
            .to_string();
        assert!(err.contains("phrases.toml"), "{err}");
        assert!(err.contains("{betreff}"), "{err}");
        assert!(err.contains("`event.nonsense` is not a phrase"), "{err}");
        assert!(err.contains("needs 7 words"), "{err}");
        assert!(
            err.contains("`Pacific Time` is not a time zone name"),
            "{err}"
        );
        assert_eq!(err.matches("is not a time zone name").count(), 1, "{err}");
    }

    #[test]
    fn a_missing_phrase_falls_back_to_the_default_set_then_the_shipped_one() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir(dir.path().join("fr")).expect("mkdir");
        std::fs::write(
            dir.path().join("fr/phrases.toml"),
            "[words]\nweekdays = [\"lundi\", \"mardi\", \"mercredi\", \"jeudi\", \"vendredi\", \"samedi\", \"dimanche\"]\n",
        )
        .expect("write");
        let phrases = Phrases::load(dir.path(), &["fr".to_string()]).expect("valid");
        assert_eq!(phrases.word(Some("fr"), "words.weekdays", 1), "mardi");
        assert_eq!(phrases.word(Some("fr"), "words.months", 0), "January");
    }
}
