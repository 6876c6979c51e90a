//! What customers write that followupd acts on, per language: `templates/intents/LANG.toml`
//! (news requests, stop requests, check-back answers, ratings in words). Every language's
//! table is read together: a customer answers in whatever language they like, and one reply
//! may mix two. A file in the templates directory replaces the shipped table of its language,
//! and a new file adds a language; `check` refuses a table with a key it does not know.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::TemplateError;

/// The shipped tables, by language.
const SHIPPED: &[(&str, &str)] = &[
    ("en", include_str!("../../templates/intents/en.toml")),
    ("de", include_str!("../../templates/intents/de.toml")),
    ("fr", include_str!("../../templates/intents/fr.toml")),
    ("es", include_str!("../../templates/intents/es.toml")),
    ("it", include_str!("../../templates/intents/it.toml")),
    ("nl", include_str!("../../templates/intents/nl.toml")),
    ("pt", include_str!("../../templates/intents/pt.toml")),
];

/// One language's table, as its file writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    #[serde(default)]
    pub news: Vec<String>,
    #[serde(default)]
    pub status_words: Vec<String>,
    #[serde(default)]
    pub stop: Vec<String>,
    #[serde(default)]
    pub negations: Vec<String>,
    #[serde(default)]
    pub yes: Vec<String>,
    #[serde(default)]
    pub no: Vec<String>,
    #[serde(default)]
    pub unhappy: Vec<String>,
    #[serde(default)]
    pub thanks: Vec<String>,
    #[serde(default)]
    pub thanks_markers: Vec<String>,
    #[serde(default)]
    pub rating_numbers: Vec<String>,
    #[serde(default)]
    pub rating_words: Vec<String>,
    #[serde(default)]
    pub pleasantries: Vec<String>,
    #[serde(default)]
    pub lead_ins: Vec<String>,
    #[serde(default)]
    pub impact: Vec<String>,
    #[serde(default)]
    pub deadline: Vec<String>,
}

/// Every language's table, merged: what a reply is read against.
#[derive(Debug, Clone, Default)]
pub struct Intents {
    pub news: Vec<String>,
    pub status_words: Vec<String>,
    pub stop: Vec<String>,
    pub negations: Vec<String>,
    pub yes: Vec<String>,
    pub no: Vec<String>,
    pub unhappy: Vec<String>,
    pub thanks: Vec<String>,
    pub thanks_markers: Vec<String>,
    /// A rating in words ("four", "vier", "quatre") and its value.
    pub rating_numbers: Vec<(String, u8)>,
    pub rating_words: Vec<String>,
    /// Sentences of pure politeness ("i hope this email finds you well"), not the problem.
    pub pleasantries: Vec<String>,
    /// Sentence openings that only name the subject ("i am writing regarding").
    pub lead_ins: Vec<String>,
    /// What the problem does to the customer ("my clients are waiting").
    pub impact: Vec<String>,
    /// By when they need it ("before friday").
    pub deadline: Vec<String>,
    /// The languages read, for `check`.
    pub languages: Vec<String>,
    /// Each language's table alone: a customer's own language is read first (one language's
    /// word is another's "no": Italian and French "non", Portuguese "no" = "in the").
    pub by_language: BTreeMap<String, Intents>,
}

impl Intents {
    /// `lang`'s own table, if there is one.
    pub fn of(&self, lang: &str) -> Option<&Intents> {
        self.by_language.get(lang)
    }

    /// The shipped tables alone.
    pub fn shipped() -> Intents {
        let tables = SHIPPED
            .iter()
            .filter_map(|(lang, text)| parse(text, Path::new(lang)).ok().map(|t| (*lang, t)))
            .map(|(lang, t)| (lang.to_string(), t))
            .collect();
        Intents::merged(tables)
    }

    /// The shipped tables, each replaced by `dir/intents/LANG.toml` where there is one, and
    /// any other language there added. Every broken file is reported.
    pub fn load(dir: &Path) -> Result<Intents, TemplateError> {
        let mut tables: BTreeMap<String, Table> = BTreeMap::new();
        let mut errors = Vec::new();
        for (lang, text) in SHIPPED {
            match parse(text, Path::new(lang)) {
                Ok(t) => {
                    tables.insert((*lang).to_string(), t);
                }
                Err(e) => errors.push(e),
            }
        }
        let own = dir.join("intents");
        if let Ok(entries) = std::fs::read_dir(&own) {
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            files.sort();
            for path in files {
                let Some(lang) = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .map(str::to_string)
                else {
                    continue;
                };
                let read = std::fs::read_to_string(&path).map_err(|e| TemplateError::Template {
                    file: path.clone(),
                    line: None,
                    reason: format!("cannot read the intents: {e}"),
                });
                match read.and_then(|text| parse(&text, &path)) {
                    Ok(t) => {
                        tables.insert(lang, t);
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
        if errors.is_empty() {
            Ok(Intents::merged(tables))
        } else {
            Err(TemplateError::Many(errors))
        }
    }

    fn merged(tables: BTreeMap<String, Table>) -> Intents {
        let mut out = Intents::one(tables.clone());
        out.by_language = tables
            .into_iter()
            .map(|(lang, t)| (lang.clone(), Intents::one(BTreeMap::from([(lang, t)]))))
            .collect();
        out
    }

    /// The tables given, merged into one, without per-language tables.
    fn one(tables: BTreeMap<String, Table>) -> Intents {
        let mut out = Intents::default();
        for (lang, t) in tables {
            let lower = |list: Vec<String>| list.into_iter().map(|p| p.trim().to_lowercase());
            out.news.extend(lower(t.news));
            out.status_words.extend(lower(t.status_words));
            out.stop.extend(lower(t.stop));
            out.negations.extend(lower(t.negations));
            out.yes.extend(lower(t.yes));
            out.no.extend(lower(t.no));
            out.unhappy.extend(lower(t.unhappy));
            out.thanks.extend(lower(t.thanks));
            out.thanks_markers.extend(lower(t.thanks_markers));
            out.rating_words.extend(lower(t.rating_words));
            out.pleasantries.extend(lower(t.pleasantries));
            out.lead_ins.extend(lower(t.lead_ins));
            out.impact.extend(lower(t.impact));
            out.deadline.extend(lower(t.deadline));
            out.rating_numbers.extend(
                lower(t.rating_numbers)
                    .zip(1u8..=5)
                    .filter(|(w, _)| !w.is_empty()),
            );
            out.languages.push(lang);
        }
        for list in [
            &mut out.news,
            &mut out.status_words,
            &mut out.stop,
            &mut out.negations,
            &mut out.yes,
            &mut out.no,
            &mut out.unhappy,
            &mut out.thanks,
            &mut out.thanks_markers,
            &mut out.rating_words,
            &mut out.pleasantries,
            &mut out.lead_ins,
            &mut out.impact,
            &mut out.deadline,
        ] {
            list.retain(|p| !p.is_empty());
            list.sort();
            list.dedup();
        }
        out
    }
}

fn parse(text: &str, path: &Path) -> Result<Table, TemplateError> {
    toml::from_str(text).map_err(|e| TemplateError::Template {
        file: path.to_path_buf(),
        line: e
            .span()
            .map(|s| text.get(..s.start).map_or(0, |b| b.lines().count())),
        reason: e.message().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_table_parses() {
        for (lang, text) in SHIPPED {
            let t = parse(text, Path::new(lang)).unwrap_or_else(|e| panic!("{lang}: {e}"));
            assert!(t.news.len() >= 15, "{lang}: {} news phrases", t.news.len());
            assert!(t.stop.len() >= 15, "{lang}: {} stop phrases", t.stop.len());
            assert_eq!(t.rating_numbers.len(), 5, "{lang}: one to five");
        }
        let all = Intents::shipped();
        assert_eq!(all.languages.len(), SHIPPED.len());
    }

    #[test]
    fn a_table_with_an_unknown_key_is_refused_with_its_file() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir(dir.path().join("intents")).expect("mkdir");
        std::fs::write(
            dir.path().join("intents/fr.toml"),
            "news = [\"des nouvelles\"]\nnouvelles = [\"x\"]\n",
        )
        .expect("write");
        let err = Intents::load(dir.path()).expect_err("refused").to_string();
        assert!(err.contains("fr.toml"), "{err}");
        assert!(err.contains("nouvelles"), "{err}");
    }

    #[test]
    fn an_own_table_replaces_its_language_and_a_new_one_adds_one() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir(dir.path().join("intents")).expect("mkdir");
        std::fs::write(
            dir.path().join("intents/sv.toml"),
            "news = [\"några nyheter\"]\n",
        )
        .expect("write");
        let intents = Intents::load(dir.path()).expect("valid");
        assert!(intents.news.iter().any(|p| p == "några nyheter"));
        assert!(intents.languages.iter().any(|l| l == "sv"));
        assert!(intents.news.iter().any(|p| p == "any news"));
    }
}
