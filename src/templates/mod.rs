//! Templates: support staff own every word the daemon sends.
//!
//! Each kind of mail is up to three files in the templates directory:
//! `KIND.subject.hbs`, `KIND.text.hbs` (both required) and `KIND.html.hbs` (optional).
//! Shared pieces live in `partials/NAME.hbs` (text) and `partials/NAME.html.hbs` (HTML).
//!
//! Handlebars runs in strict mode, so a misspelt variable is an error and not a blank in a
//! customer's mail. Text templates are not HTML-escaped; HTML templates are. Customer text is
//! only ever passed as data, never compiled, so `{{…}}` typed by a customer stays literal.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use handlebars::{Handlebars, RenderErrorReason};
use serde_json::Value;

mod conditions;
mod data;
mod intents;
mod phrases;
mod words;

pub use data::*;
pub use intents::Intents;
pub use phrases::{Phrases, Said};

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{file}{}: {reason}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Template {
        file: PathBuf,
        line: Option<usize>,
        reason: String,
    },
    #[error("{dir}: cannot read the templates directory")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Many(Vec<TemplateError>),
}

/// A rendered mail, before headers are added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// The language set that rendered it (None: the default set).
    pub lang: Option<String>,
}

/// A customer's plain text as their phone shows it: each paragraph one line, which their
/// mail client wraps to its width, so no sentence breaks where a template line happened to end
/// ("We have closed incident⏎2."), whatever was filled in. A break stays before an indented or
/// quoted line or a list item, after a line ending in `:`, around blank lines, and throughout
/// the last paragraph (the signature). Two blank lines in a row are one.
pub fn unwrapped(text: &str) -> String {
    fn apart(line: &str) -> bool {
        let mut chars = line.chars();
        match chars.next() {
            None => true,
            Some(c) if c.is_whitespace() || matches!(c, '>' | '-' | '*' | '•' | '|') => true,
            Some(c) if c.is_ascii_digit() => {
                let rest: String = chars.skip_while(char::is_ascii_digit).take(2).collect();
                rest.starts_with(". ") || rest.starts_with(") ")
            }
            _ => false,
        }
    }
    let lines: Vec<&str> = text.split('\n').collect();
    // The signature: from the last blank line followed by text.
    let last_text = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .unwrap_or(0);
    let signature = lines
        .get(..last_text)
        .and_then(|before| before.iter().rposition(|l| l.trim().is_empty()))
        .unwrap_or(lines.len());
    let mut out = String::with_capacity(text.len());
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            let before = lines[i - 1].trim_end_matches('\r');
            let join = i < signature
                && !before.trim().is_empty()
                && !line.trim().is_empty()
                && !apart(before)
                && !apart(line)
                && !before.trim_end().ends_with(':');
            if join {
                let kept = out.trim_end().len();
                out.truncate(kept);
                out.push(' ');
                out.push_str(line.trim_start());
                continue;
            }
            out.push('\n');
        }
        out.push_str(line);
    }
    // A branch left empty leaves no gap of two blank lines.
    while out.contains("\n\n\n") {
        out = out.replace("\n\n\n", "\n\n");
    }
    out
}

#[derive(Debug)]
pub struct Templates {
    dir: PathBuf,
    /// The kinds of mail loaded, in the order `check` reports them.
    kinds: Vec<&'static str>,
    /// The default set (the directory itself).
    default: Set,
    /// A set per language directory (`de/`): its own files and partials, the default's where
    /// it has none.
    languages: BTreeMap<String, Set>,
    /// The fixed lines of the staff-only templates (`staff/…`, `partials/staff_…`) that no
    /// customer template has: words a customer mail must never carry. Made ready to be
    /// looked for once, here: every customer mail queued is checked against them.
    staff_only: crate::mail::our_mail::OurMail,
    /// Every sentence said outside the templates, per language (`phrases.toml`); shared with
    /// the sender's database closures, which must own what they use.
    phrases: std::sync::Arc<Phrases>,
    /// What customers write that followupd acts on, in every language (`intents/LANG.toml`).
    intents: Intents,
    /// The keys of `languages`.
    language_names: Vec<String>,
    /// The canned replies staff use with `#reply NAME` (`staff/replies/NAME.hbs`), by name.
    replies: Vec<String>,
}

/// One language's templates: a text and an HTML registry, and the file each name came from
/// (so an error names the file that has it, a partial's included).
#[derive(Debug)]
struct Set {
    text: Handlebars<'static>,
    html: Handlebars<'static>,
    files: HashMap<String, PathBuf>,
}

impl Set {
    fn new() -> Set {
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        Set {
            text,
            html,
            files: HashMap::new(),
        }
    }
}

impl Templates {
    /// Loads and compiles the templates of every kind of mail in `kinds`, and every language
    /// directory beside them (`de/` …), reporting every broken file at once, each once.
    pub fn load(dir: &Path, kinds: &[&'static str]) -> Result<Templates, TemplateError> {
        let mut errors = Vec::new();
        let replies = reply_names(&dir.join("staff").join("replies"));
        let mut default = load_set(dir, None, kinds, &mut errors)?;
        register_replies(dir, None, &replies, &mut default, &mut errors)?;
        let mut languages = BTreeMap::new();
        for lang in language_dirs(dir) {
            let mut set = load_set(dir, Some(&lang), kinds, &mut errors)?;
            register_replies(dir, Some(&lang), &replies, &mut set, &mut errors)?;
            languages.insert(lang, set);
        }
        let names: Vec<String> = languages.keys().cloned().collect();
        let phrases = match Phrases::load(dir, &names) {
            Ok(p) => p,
            Err(TemplateError::Many(many)) => {
                errors.extend(many);
                Phrases::default()
            }
            Err(e) => {
                errors.push(e);
                Phrases::default()
            }
        };
        let intents = match Intents::load(dir) {
            Ok(i) => i,
            Err(TemplateError::Many(many)) => {
                errors.extend(many);
                Intents::default()
            }
            Err(e) => {
                errors.push(e);
                Intents::default()
            }
        };
        let mut seen = std::collections::HashSet::new();
        errors.retain(|e| seen.insert(e.to_string()));
        if errors.is_empty() {
            let mut staff_only = crate::mail::our_mail::OurMail::none();
            for line in staff_only_lines(std::iter::once(&default).chain(languages.values())) {
                staff_only.add(&line, true);
            }
            Ok(Templates {
                dir: dir.to_path_buf(),
                kinds: kinds.to_vec(),
                default,
                languages,
                staff_only,
                phrases: std::sync::Arc::new(phrases),
                intents,
                language_names: names,
                replies,
            })
        } else {
            Err(TemplateError::Many(errors))
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The words said outside the templates, in every language of this set.
    pub fn phrases(&self) -> &Phrases {
        &self.phrases
    }

    /// What customers write that followupd acts on, in every language.
    pub fn intents(&self) -> &Intents {
        &self.intents
    }

    /// The phrases, for work that must own them (a closure run on the database thread).
    pub fn shared_phrases(&self) -> std::sync::Arc<Phrases> {
        self.phrases.clone()
    }

    /// The fixed lines only staff mail carries ("Reply to this mail to answer the customer",
    /// the command list), ready to be looked for: the last guard before a customer mail is
    /// queued starts from a copy of it.
    pub fn staff_only(&self) -> &crate::mail::our_mail::OurMail {
        &self.staff_only
    }

    /// The languages with a template set of their own besides the default.
    pub fn languages(&self) -> Vec<String> {
        self.languages.keys().cloned().collect()
    }

    /// The same, borrowed (what a decision is given).
    pub fn language_sets(&self) -> &[String] {
        &self.language_names
    }

    /// The canned replies (`staff/replies/NAME.hbs`), by name.
    pub fn reply_names(&self) -> &[String] {
        &self.replies
    }

    /// The canned reply `name` with the incident's data, in the language `data.lang` names
    /// (its own `LANG/staff/replies/NAME.hbs`, else the default's). None: no such reply.
    pub fn render_reply(&self, name: &str, data: &Value) -> Option<Result<String, TemplateError>> {
        if !self.replies.iter().any(|r| r == name) {
            return None;
        }
        let completed = complete(data);
        let set = completed
            .get("lang")
            .and_then(Value::as_str)
            .and_then(|lang| self.languages.get(lang))
            .unwrap_or(&self.default);
        Some(
            self.render_one(set, false, &format!("replies/{name}"), &completed)
                .map(|t| t.trim().to_string()),
        )
    }

    /// Renders `kind` in the language `data.lang` names (its own set, else the default).
    pub fn render(&self, kind: &str, data: &Value) -> Result<Rendered, TemplateError> {
        crate::contain::test_panic("rendering", || data.to_string());
        let completed = complete(data);
        let data = &completed;
        let lang = data
            .get("lang")
            .and_then(Value::as_str)
            .filter(|lang| self.languages.contains_key(*lang));
        let set = lang
            .and_then(|lang| self.languages.get(lang))
            .unwrap_or(&self.default);
        let subject = self.render_one(set, false, &format!("{kind}.subject.hbs"), data)?;
        let mut text = self.render_one(set, false, &format!("{kind}.text.hbs"), data)?;
        if !kind.starts_with("staff/") {
            text = unwrapped(&text);
        }
        let html_name = format!("{kind}.html.hbs");
        let html = if set.html.has_template(&html_name) {
            Some(self.render_one(set, true, &html_name, data)?)
        } else {
            None
        };
        Ok(Rendered {
            subject,
            text,
            html,
            lang: lang.map(str::to_string),
        })
    }

    fn render_one(
        &self,
        set: &Set,
        html: bool,
        name: &str,
        data: &Value,
    ) -> Result<String, TemplateError> {
        let registry = if html { &set.html } else { &set.text };
        registry.render(name, data).map_err(|e| {
            // The file the error is in: a partial's own when it is in a partial.
            let inner = e.template_name.as_deref().unwrap_or(name);
            let key = if html {
                format!("html:{inner}")
            } else {
                format!("text:{inner}")
            };
            let file = set
                .files
                .get(&key)
                .cloned()
                .unwrap_or_else(|| self.dir.join(inner));
            let reason = match e.reason() {
                RenderErrorReason::MissingVariable(Some(var)) => {
                    format!("unknown variable `{var}` (docs/templates.md lists the variables each mail gets)")
                }
                RenderErrorReason::PartialNotFound(p) => {
                    format!("unknown partial `{p}` (put it in partials/{p}.hbs)")
                }
                RenderErrorReason::HelperNotFound(h) => format!("unknown helper `{h}`"),
                other => other.to_string(),
            };
            TemplateError::Template {
                file,
                line: e.line_no,
                reason,
            }
        })
    }

    /// Renders every kind, in every language set, with complete and with sparse sample data.
    /// Strict mode does not catch a missing variable inside `{{#if}}`/`{{#each}}` with complete
    /// data alone, hence both. Each broken line is reported once, with the file it is in.
    pub fn check(&self, support_name: &str, support_address: &str) -> Result<usize, TemplateError> {
        let mut errors: Vec<TemplateError> = Vec::new();
        let mut rendered = 0;
        let langs: Vec<String> = std::iter::once(String::new())
            .chain(self.languages.keys().cloned())
            .collect();
        for lang in &langs {
            for kind in &self.kinds {
                for mut data in sample_data(support_name, support_address) {
                    data["lang"] = Value::String(lang.clone());
                    match self.render(kind, &data) {
                        Ok(mail) => {
                            rendered += 1;
                            if mail.subject.trim().is_empty() {
                                let dir = if lang.is_empty() {
                                    self.dir.clone()
                                } else {
                                    self.dir.join(lang)
                                };
                                errors.push(TemplateError::Template {
                                    file: dir.join(format!("{kind}.subject.hbs")),
                                    line: None,
                                    reason: "renders to an empty subject".into(),
                                });
                            }
                        }
                        // The same broken line fails for every sample: say it once.
                        Err(e) if errors.iter().any(|seen| seen.to_string() == e.to_string()) => {}
                        Err(e) => errors.push(e),
                    }
                }
            }
        }
        for lang in &langs {
            for name in &self.replies {
                for mut data in sample_data(support_name, support_address) {
                    data["lang"] = Value::String(lang.clone());
                    match self.render_reply(name, &data) {
                        Some(Ok(_)) | None => rendered += 1,
                        Some(Err(e))
                            if errors.iter().any(|seen| seen.to_string() == e.to_string()) => {}
                        Some(Err(e)) => errors.push(e),
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(rendered)
        } else {
            Err(TemplateError::Many(errors))
        }
    }

    /// What rendering cannot see: a template testing a variable no mail has (`{{#if
    /// incident.nubmer}}`), which is always false, so its paragraph never shows. Warnings for
    /// `followupd check`, never a reason to refuse a set: a dead condition an earlier version
    /// accepted must not stop the daemon. Partials are not read (their data is the caller's).
    pub fn unknown_conditions(&self, support_name: &str, support_address: &str) -> Vec<String> {
        let samples = sample_data(support_name, support_address);
        let mut out: Vec<String> = Vec::new();
        for set in std::iter::once(&self.default).chain(self.languages.values()) {
            for (registry, kind) in [(&set.text, "text"), (&set.html, "html")] {
                let mut names: Vec<&String> = registry
                    .get_templates()
                    .keys()
                    .filter(|n| n.ends_with(".hbs") || n.starts_with("replies/"))
                    .collect();
                names.sort();
                for name in names {
                    let Some(template) = registry.get_template(name) else {
                        continue;
                    };
                    for (line, condition) in conditions::unknown(template, &samples) {
                        let file = set
                            .files
                            .get(&format!("{kind}:{name}"))
                            .cloned()
                            .unwrap_or_else(|| self.dir.join(name));
                        let said = TemplateError::Template {
                            file,
                            line,
                            reason: format!(
                                "`{condition}` tests a variable no mail has, so it is always \
                                 false (docs/templates.md lists the variables each mail gets)"
                            ),
                        }
                        .to_string();
                        if !out.contains(&said) {
                            out.push(said);
                        }
                    }
                }
            }
        }
        out
    }
}

/// The names of the canned replies in `dir` (`refund-approved` for refund-approved.hbs).
fn reply_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.strip_suffix(".hbs")?.to_string();
            (!name.is_empty() && !name.starts_with('.')).then_some(name)
        })
        .collect();
    names.sort();
    names
}

/// Registers each canned reply in a set: the language directory's own file, else the
/// default's.
fn register_replies(
    dir: &Path,
    lang: Option<&str>,
    names: &[String],
    set: &mut Set,
    errors: &mut Vec<TemplateError>,
) -> Result<(), TemplateError> {
    let default = dir.join("staff").join("replies");
    for name in names {
        let file_name = format!("{name}.hbs");
        let own = match lang {
            Some(lang) => {
                let d = dir.join(lang).join("staff").join("replies");
                read(&d, &file_name)?.map(|s| (d.join(&file_name), s))
            }
            None => None,
        };
        let Some((file, source)) =
            own.or(read(&default, &file_name)?.map(|s| (default.join(&file_name), s)))
        else {
            continue;
        };
        let key = format!("replies/{name}");
        if let Err(e) = set.text.register_template_string(&key, &source) {
            errors.push(syntax_error(file.clone(), &source, &e));
        }
        set.files.insert(format!("text:{key}"), file);
    }
    Ok(())
}

/// Anything that renders a kind of mail (a loaded set; tests may render with a stand-in).
pub trait Render {
    fn render(&self, kind: &str, data: &Value) -> Result<Rendered, TemplateError>;
}

impl Render for Templates {
    fn render(&self, kind: &str, data: &Value) -> Result<Rendered, TemplateError> {
        Templates::render(self, kind, data)
    }
}

/// Subdirectories named like a language ("de", "fr"): template sets of their own.
fn language_dirs(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|name| crate::lang::normalise(name).as_deref() == Some(name.as_str()))
        .collect();
    out.sort();
    out
}

/// One set: the default's partials and templates, each replaced by the language directory's
/// own file where it has one. Only the default set must have every required file.
fn load_set(
    dir: &Path,
    lang: Option<&str>,
    kinds: &[&'static str],
    errors: &mut Vec<TemplateError>,
) -> Result<Set, TemplateError> {
    let mut set = Set::new();
    register_partials(dir, &dir.join("partials"), &mut set, errors)?;
    if let Some(lang) = lang {
        let own = dir.join(lang).join("partials");
        if own.is_dir() {
            register_partials(dir, &own, &mut set, errors)?;
        }
    }
    for kind in kinds {
        for part in ["subject", "text", "html"] {
            let name = format!("{kind}.{part}.hbs");
            let own = match lang {
                Some(lang) => {
                    read(&dir.join(lang), &name)?.map(|s| (dir.join(lang).join(&name), s))
                }
                None => None,
            };
            let source = match own {
                Some(found) => Some(found),
                None => read(dir, &name)?.map(|s| (dir.join(&name), s)),
            };
            match source {
                Some((file, source)) => {
                    let html = part == "html";
                    let registry = if html { &mut set.html } else { &mut set.text };
                    if let Err(e) = registry.register_template_string(&name, &source) {
                        errors.push(syntax_error(file.clone(), &source, &e));
                    }
                    let key = format!("{}:{name}", if html { "html" } else { "text" });
                    set.files.insert(key, file);
                }
                None if part != "html" => errors.push(TemplateError::Template {
                    file: dir.join(&name),
                    line: None,
                    reason: format!("missing: every `{kind}` mail needs this file"),
                }),
                None => {}
            }
        }
    }
    Ok(set)
}

fn read(dir: &Path, name: &str) -> Result<Option<String>, TemplateError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TemplateError::Template {
            file: path,
            line: None,
            reason: format!("cannot read: {e}"),
        }),
    }
}

/// A template that does not parse, said where the writer can mend it: a block opened and never
/// closed (or closed by the wrong name) is named at the line that opened it, not at the end
/// of the file where the parser gave up; anything else in a sentence, not the parser's list of
/// every token it could have wanted.
fn syntax_error(file: PathBuf, source: &str, e: &handlebars::TemplateError) -> TemplateError {
    if let Some((line, reason)) = unbalanced_block(source) {
        return TemplateError::Template {
            file,
            line: Some(line),
            reason,
        };
    }
    let reason = e.reason().to_string();
    let reason = if reason.contains("expected ") && reason.len() > 120 {
        "this is not handlebars: look for `{{` without `}}`, a `}}` too many, or a `{{` meant \
         as text (write `\\{{`)"
            .to_string()
    } else {
        reason
    };
    TemplateError::Template {
        file,
        line: e.pos().map(|(line, _)| line),
        reason,
    }
}

/// The first block that is not closed, or closed by another name: its line and what to do.
fn unbalanced_block(source: &str) -> Option<(usize, String)> {
    let mut open: Vec<(String, usize)> = Vec::new();
    for (index, text) in source.lines().enumerate() {
        let line = index + 1;
        let mut rest = text;
        while let Some(at) = rest.find("{{") {
            rest = &rest[at + 2..];
            let tag = rest.trim_start_matches('~').trim_start_matches('{');
            let name = |t: &str| {
                t.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                    .collect::<String>()
            };
            if let Some(after) = tag.strip_prefix('#') {
                let after = after.strip_prefix('>').unwrap_or(after);
                let block = name(after);
                if !block.is_empty() {
                    open.push((block, line));
                }
            } else if let Some(after) = tag.strip_prefix('/') {
                let block = name(after);
                match open.pop() {
                    Some((opened, _)) if opened == block => {}
                    Some((opened, at)) => {
                        return Some((
                            line,
                            format!(
                                "`{{{{/{block}}}}}` closes `{{{{#{opened}}}}}` from line {at}; \
                                 close that first with `{{{{/{opened}}}}}`"
                            ),
                        ))
                    }
                    None => {
                        return Some((
                            line,
                            format!("`{{{{/{block}}}}}` closes no block; remove it"),
                        ))
                    }
                }
            }
        }
    }
    open.pop().map(|(block, line)| {
        (
            line,
            format!("`{{{{#{block}}}}}` is never closed: add `{{{{/{block}}}}}` where it ends"),
        )
    })
}

fn register_partials(
    dir: &Path,
    partials: &Path,
    set: &mut Set,
    errors: &mut Vec<TemplateError>,
) -> Result<(), TemplateError> {
    let entries = match std::fs::read_dir(partials) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dir.is_dir() {
                return Ok(());
            }
            return Err(TemplateError::Dir {
                dir: dir.to_path_buf(),
                source: e,
            });
        }
        Err(source) => {
            return Err(TemplateError::Dir {
                dir: partials.to_path_buf(),
                source,
            })
        }
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for path in files {
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let (html, name) = if let Some(stem) = file_name.strip_suffix(".html.hbs") {
            (true, stem)
        } else if let Some(stem) = file_name.strip_suffix(".hbs") {
            (false, stem)
        } else {
            continue;
        };
        match std::fs::read_to_string(&path) {
            Ok(source) => {
                let registry = if html { &mut set.html } else { &mut set.text };
                if let Err(e) = registry.register_partial(name, &source) {
                    errors.push(syntax_error(path.clone(), &source, &e));
                }
                let key = format!("{}:{name}", if html { "html" } else { "text" });
                set.files.insert(key, path.clone());
            }
            Err(e) => errors.push(TemplateError::Template {
                file: path.clone(),
                line: None,
                reason: format!("cannot read: {e}"),
            }),
        }
    }
    Ok(())
}

/// The fixed text of every staff-only template and partial, line by line: the lines of six
/// words or more none of whose six-word runs a customer template or partial has too (a shared
/// greeting, signature or "the next update by").
fn staff_only_lines<'a>(sets: impl Iterator<Item = &'a Set>) -> Vec<String> {
    const RUN: usize = 6;
    fn words(text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    }
    let mut staff: Vec<String> = Vec::new();
    let mut customer_runs: std::collections::HashSet<Vec<String>> =
        std::collections::HashSet::new();
    let mut read_files = std::collections::HashSet::new();
    for set in sets {
        for (key, path) in &set.files {
            if !read_files.insert(path.clone()) {
                continue;
            }
            let Ok(source) = std::fs::read_to_string(path) else {
                continue;
            };
            let name = key.split_once(':').map_or(key.as_str(), |(_, n)| n);
            let staff_only = name.starts_with("staff/") || name.starts_with("staff_");
            let lines = literal_lines(&source, key.starts_with("html:"));
            if staff_only {
                staff.extend(lines);
            } else {
                let all = words(&lines.join("\n"));
                customer_runs.extend(all.windows(RUN).map(<[String]>::to_vec));
            }
        }
    }
    staff.retain(|line| {
        let w = words(line);
        w.len() >= RUN && w.windows(RUN).all(|run| !customer_runs.contains(run))
    });
    staff.sort();
    staff.dedup();
    staff
}

/// The lines of a template's own text: expressions (`{{…}}`) and, in HTML, tags taken out.
fn literal_lines(source: &str, html: bool) -> Vec<String> {
    let mut text = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(at) = rest.find("{{") {
        text.push_str(rest.get(..at).unwrap_or(""));
        let after = rest.get(at..).unwrap_or("");
        match after.find("}}") {
            Some(end) => {
                text.push('\n');
                rest = after.get(end + 2..).unwrap_or("").trim_start_matches('}');
            }
            None => {
                rest = "";
            }
        }
    }
    text.push_str(rest);
    // In HTML, a tag ends a line of text (it is a `<p>`, a `<br>` or a cell, near enough).
    let text = if html {
        let mut plain = String::with_capacity(text.len());
        let mut in_tag = false;
        for c in text.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => {
                    in_tag = false;
                    plain.push('\n');
                }
                _ if !in_tag => plain.push(c),
                _ => {}
            }
        }
        plain.replace("&nbsp;", " ")
    } else {
        text
    };
    text.lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Mail queued by an older version was stored without the keys added since; strict mode would
/// fail its retry on them. Every key missing from `data` takes its default, and `pace` is
/// derived from the stored `cadence`.
fn complete(data: &Value) -> Value {
    fn overlay(base: &mut Value, top: &Value) {
        match (base, top) {
            (Value::Object(base), Value::Object(top)) => {
                for (k, v) in top {
                    match base.get_mut(k) {
                        Some(b) => overlay(b, v),
                        None => {
                            base.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            (base, top) => *base = top.clone(),
        }
    }
    let mut full = serde_json::to_value(MailData::default()).unwrap_or(Value::Null);
    if !full.is_object() || !data.is_object() {
        return data.clone();
    }
    overlay(&mut full, data);
    if data.get("pace").is_none() {
        if let Some(cadence) = data.get("cadence").and_then(Value::as_str) {
            if !cadence.is_empty() {
                full["pace"] = Value::String(format!("every {cadence}"));
            }
        }
    }
    full
}

#[cfg(test)]
mod unwrap_tests {
    use super::unwrapped;

    #[test]
    fn paragraphs_are_one_line_and_quotes_lists_and_the_signature_keep_their_breaks() {
        let text = "Hello Ann,\n\nI'm sorry this happened, and thank you\nfor telling us. We \
                    have closed incident\n2.\n\nWhat we understood:\n\n    \"The vase\n    \
                    broke.\"\nWe have:\n    order number: 5521\n- one\n- two\n\nExample \
                    Support\nsupport@example.test\n";
        assert_eq!(
            unwrapped(text),
            "Hello Ann,\n\nI'm sorry this happened, and thank you for telling us. We have \
             closed incident 2.\n\nWhat we understood:\n\n    \"The vase\n    broke.\"\n\
             We have:\n    order number: 5521\n- one\n- two\n\nExample Support\n\
             support@example.test\n"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The tests here change the acknowledgement; the shipped set as a whole is checked
    /// where the kinds of mail are defined (`incident::state`).
    const SHIPPED: &[&str] = &["acknowledgement"];

    #[test]
    fn a_block_left_open_or_closed_by_another_name_is_named_where_it_opened() {
        assert_eq!(
            unbalanced_block("Hi\n{{#if a}}\n{{#each b}}x{{/each}}\n"),
            Some((
                2,
                "`{{#if}}` is never closed: add `{{/if}}` where it ends".into()
            ))
        );
        assert_eq!(
            unbalanced_block("{{#if a}}\n{{/each}}"),
            Some((
                2,
                "`{{/each}}` closes `{{#if}}` from line 1; close that first with `{{/if}}`".into()
            ))
        );
        assert_eq!(unbalanced_block("{{#if a}}{{else}}{{/if}} {{{raw}}}"), None);
    }

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }

    /// The shipped templates, with the acknowledgement replaced.
    fn set(subject: &str, text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        for sub in ["", "partials"] {
            for entry in std::fs::read_dir(shipped.join(sub))
                .expect("templates")
                .flatten()
            {
                if entry.path().is_file() {
                    let name = Path::new(sub).join(entry.file_name());
                    let text = std::fs::read_to_string(entry.path()).expect("read");
                    write(dir.path(), name.to_str().expect("utf-8"), &text);
                }
            }
        }
        let _ = std::fs::remove_file(dir.path().join("acknowledgement.html.hbs"));
        write(dir.path(), "acknowledgement.subject.hbs", subject);
        write(dir.path(), "acknowledgement.text.hbs", text);
        dir
    }

    #[test]
    fn an_unknown_variable_is_reported_with_file_and_line() {
        let dir = set(
            "Re: {{incident.subject}}",
            "Hello\n\nYour ETA is {{eta}}.\n",
        );
        let templates = Templates::load(dir.path(), SHIPPED).expect("compiles");
        let err = templates.check("S", "s@e.test").unwrap_err().to_string();
        assert!(err.contains("acknowledgement.text.hbs line 3"), "{err}");
        assert!(err.contains("unknown variable `eta`"), "{err}");
    }

    #[test]
    fn a_variable_only_used_under_if_is_caught_by_sparse_data() {
        let dir = set(
            "x",
            "{{#if customer.name}}{{customer.nmae}}{{else}}Hello{{/if}}",
        );
        let templates = Templates::load(dir.path(), SHIPPED).expect("compiles");
        assert!(templates.check("S", "s@e.test").is_err());
    }

    #[test]
    fn a_syntax_error_names_file_and_line() {
        let dir = set("ok", "line one\n{{#if incident.number}}\nunclosed\n");
        let err = Templates::load(dir.path(), SHIPPED)
            .unwrap_err()
            .to_string();
        assert!(err.contains("acknowledgement.text.hbs line"), "{err}");
    }

    #[test]
    fn an_error_in_a_partial_names_the_partial_once() {
        let dir = set("Re: {{incident.subject}}", "{{> greeting}}\n\nBody\n");
        write(
            dir.path(),
            "partials/greeting.hbs",
            "Hello {{customer.nmae}},",
        );
        let templates =
            Templates::load(dir.path(), &["acknowledgement", "progress"]).expect("compiles");
        let err = templates.check("S", "s@e.test").unwrap_err().to_string();
        assert_eq!(err.lines().count(), 1, "once: {err}");
        assert!(err.contains("partials/greeting.hbs"), "{err}");
        assert!(err.contains("unknown variable `customer.nmae`"), "{err}");
    }

    #[test]
    fn a_language_set_uses_its_own_files_and_falls_back_to_the_default() {
        let dir = set(
            "Re: {{incident.subject}}",
            "{{> greeting}} {{incident.number}}",
        );
        write(
            dir.path(),
            "de/acknowledgement.text.hbs",
            "{{> greeting}} Nr. {{incident.number}}",
        );
        write(dir.path(), "de/partials/greeting.hbs", "Hallo,");
        let templates = Templates::load(dir.path(), SHIPPED).expect("compiles");
        assert_eq!(templates.languages(), vec!["de".to_string()]);
        let mut data = sample_data("S", "s@e.test")[0].clone();
        data["lang"] = json!("de");
        let mail = templates.render("acknowledgement", &data).expect("renders");
        assert_eq!(mail.text, "Hallo, Nr. 1042");
        assert!(mail.subject.starts_with("Re: "), "the default subject");
        data["lang"] = json!("fr");
        let mail = templates.render("acknowledgement", &data).expect("renders");
        assert_eq!(
            mail.text, "Hi Ann,\n 1042",
            "no French set: the default (the sample carries a staff greeting)"
        );
        templates.check("S", "s@e.test").expect("both sets check");
    }

    #[test]
    fn a_missing_required_file_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "acknowledgement.subject.hbs", "x");
        let err = Templates::load(dir.path(), SHIPPED)
            .unwrap_err()
            .to_string();
        assert!(err.contains("acknowledgement.text.hbs: missing"), "{err}");
    }

    #[test]
    fn customer_text_is_data_never_template_code() {
        let dir = set("{{incident.subject}}", "{{incident.summary}}");
        write(
            dir.path(),
            "acknowledgement.html.hbs",
            "<p>{{incident.summary}}</p>",
        );
        let templates = Templates::load(dir.path(), SHIPPED).expect("compiles");
        let mut data = sample_data("S", "s@e.test")[0].clone();
        data["incident"]["subject"] = json!("{{#each support}}{{this}}{{/each}}");
        data["incident"]["summary"] = json!("<script>{{support.address}}</script>");
        let mail = templates.render("acknowledgement", &data).expect("renders");
        assert_eq!(mail.subject, "{{#each support}}{{this}}{{/each}}");
        assert_eq!(mail.text, "<script>{{support.address}}</script>");
        let html = mail.html.expect("html part");
        assert!(
            html.contains("&lt;script&gt;{{support.address}}&lt;/script&gt;"),
            "{html}"
        );
    }
}
