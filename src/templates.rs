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
use serde::Serialize;
use serde_json::Value;

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
    /// customer template has: words a customer mail must never carry.
    staff_only_lines: Vec<String>,
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
        let default = load_set(dir, None, kinds, &mut errors)?;
        let mut languages = BTreeMap::new();
        for lang in language_dirs(dir) {
            let set = load_set(dir, Some(&lang), kinds, &mut errors)?;
            languages.insert(lang, set);
        }
        let mut seen = std::collections::HashSet::new();
        errors.retain(|e| seen.insert(e.to_string()));
        if errors.is_empty() {
            let staff_only_lines =
                staff_only_lines(std::iter::once(&default).chain(languages.values()));
            Ok(Templates {
                dir: dir.to_path_buf(),
                kinds: kinds.to_vec(),
                default,
                languages,
                staff_only_lines,
            })
        } else {
            Err(TemplateError::Many(errors))
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The fixed lines only staff mail carries ("Reply to this mail to answer the customer",
    /// the command list): the last guard before a customer mail is queued looks for them.
    pub fn staff_only_lines(&self) -> &[String] {
        &self.staff_only_lines
    }

    /// The languages with a template set of their own besides the default.
    pub fn languages(&self) -> Vec<String> {
        self.languages.keys().cloned().collect()
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
        let text = self.render_one(set, false, &format!("{kind}.text.hbs"), data)?;
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
                    format!("unknown variable `{var}` (see the README for the variables each mail gets)")
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
        if errors.is_empty() {
            Ok(rendered)
        } else {
            Err(TemplateError::Many(errors))
        }
    }
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
                    if let Err(e) = registry.register_template_string(&name, source) {
                        errors.push(syntax_error(file.clone(), &e));
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

fn syntax_error(file: PathBuf, e: &handlebars::TemplateError) -> TemplateError {
    TemplateError::Template {
        file,
        line: e.pos().map(|(line, _)| line),
        reason: format!("{}", e.reason()),
    }
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
                if let Err(e) = registry.register_partial(name, source) {
                    errors.push(syntax_error(path.clone(), &e));
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

// --- Template data -----------------------------------------------------------------------------

/// What every mail about an incident can say. Serialised as the template's data and stored
/// with the queued mail, so a retry renders exactly what was decided at queue time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MailData {
    pub incident: IncidentData,
    pub customer: CustomerData,
    pub support: SupportData,
    /// When the customer will hear from us next, for people ("Monday 23 November 2026, 13:00 UTC").
    pub next_update: String,
    /// The same time in RFC 3339, for machines and `{{#if}}`.
    pub next_update_iso: String,
    /// The agreed cadence in words ("4 hours").
    pub cadence: String,
    /// The same as a person says it, in the mail's language: "every hour", "every 4 hours",
    /// "once a day" (never "every 1 hour").
    pub pace: String,
    /// The latest staff note not yet told to the customer ("" when there is none).
    pub note: String,
    /// Who wrote the note, as the customer may read it ("Anna"); "" for the team.
    pub note_by: String,
    /// The greeting a staff member wrote above their note to the customer ("Hi Ann,"): the
    /// mail opens with it instead of the template's own, so the customer is not greeted twice.
    pub greeting: String,
    /// What we need from the customer while we wait on them (`waiting`).
    pub waiting_for: String,
    /// When the customer sent what this mail thanks them for ("Tuesday"); "" when nothing.
    pub thanks_for: String,
    /// The customer asked for no more automatic updates; this mail confirms it.
    pub updates_stopped: bool,
    /// We were waiting on the customer and carry on now; this mail says so and promises the
    /// next update.
    pub resumed: bool,
    /// Nothing proves who wrote to us (`[trust]`): this mail must not repeat a word they wrote.
    /// Their subject, name and summary are already blank; the template says less.
    pub plain: bool,
    /// This update comes later than we promised (the daemon was down past the time).
    pub overdue: bool,
    /// The customer asked for a different cadence; this mail confirms it.
    pub cadence_changed: bool,
    /// The promised time was moved to the start of the sending window.
    pub window_moved: bool,
    /// The language of this mail ("en", "de"): which template set renders it.
    pub lang: String,
    /// `next_update` at the customer's own UTC offset when it differs from the team's ("08:00
    /// your time, UTC-05:00"); "" otherwise.
    pub next_update_theirs: String,
    /// Facts the customer already gave (acknowledgement): `{{#each facts}}{{name}} {{value}}`.
    pub facts: Vec<FactData>,
    /// This problem came back (`recurring.count` is 2 or more).
    pub recurring: RecurringData,
    /// For `check_back`: the problem in the customer's words (their subject), "" when unknown.
    pub problem: String,
    /// For `check_back`: the one question staff wrote with the resolution ("Is your refund
    /// showing on your statement now?"), "" for the default question.
    pub check_question: String,
    /// For `thank_you`: they rated us (1–5), 0 when not.
    pub rating: i64,
    /// For `resolution` and `reopened`: we had told the customer this was fixed before.
    pub fixed_before: bool,
    pub resolution: ResolutionData,
    /// How long after the check-back an incident closes when nobody answers ("4 days").
    pub close_after: String,
    /// For `reopened`: the earlier incident this one continues (0 when none).
    pub previous_incident: i64,
    pub escalation: EscalationData,
    /// What staff notifications say.
    pub staff: StaffData,
}

/// What a mail to staff says besides the incident: why it was sent, what the customer wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StaffData {
    /// Why this notification ("New incident", "The customer replied", …).
    pub reason: String,
    /// Who wrote the mail it is about, as "Ann Example <ann@example.com>".
    pub from: String,
    /// Their own words, whole (quotes and signature cut).
    pub text: String,
    pub attachments: Vec<AttachmentData>,
    /// How far the sender is proven ("verified: dkim=pass aligned"…), or "".
    pub trust: String,
    /// The staff member a refusal or a forgery is about.
    pub member: String,
    /// Why a command was not carried out.
    pub refusal: String,
    /// Lines of a digest.
    pub digest: Vec<String>,
    /// The language the customer is answered in ("de"); staff mail itself is always in the
    /// default set.
    pub language: String,
    /// Why the incident counts as recurring ("ann@… wrote again within 30 days of incident
    /// #1 …"), "" when it does not.
    pub recurring_reason: String,
    /// The signature under the writer's own words (their phone number, their company), set
    /// apart from the words themselves.
    pub signature: String,
    /// Why a staff member's reply, or a mail to the customer, was held back (`staff/held`).
    pub held: HeldData,
}

/// What held a mail back from the customer, as facts for `staff/held`. One of the first four
/// is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HeldData {
    /// The reply had no words of its own: it was all quote.
    pub all_quote: bool,
    /// The reply's own words carry text of a staff-only mail or note (the lines are in `found`).
    pub staff_only: bool,
    /// It could not be told with confidence which words are the writer's: why.
    pub unsure: String,
    /// A mail of this kind to the customer was stopped by the last guard (lines in `found`).
    pub stopped: String,
    /// The staff-only lines found.
    pub found: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AttachmentData {
    pub name: String,
    pub content_type: String,
    /// "120 KB".
    pub size: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResolutionData {
    pub root_cause: String,
    pub prevention: String,
    pub compensation: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EscalationData {
    pub reason: String,
    pub customer: String,
    pub updates_without_news: i64,
    pub hours_without_note: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IncidentData {
    pub number: i64,
    pub token: String,
    pub subject: String,
    pub summary: String,
    pub opened: String,
    pub opened_iso: String,
    /// open | waiting | resolved | closed
    pub state: String,
    pub tags: Vec<String>,
    /// The customer has had several incidents lately.
    pub recurring: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CustomerData {
    pub name: Option<String>,
    pub address: String,
    /// The name to greet them by ("Maria" for "Maria Schneider", `[wording] greeting`); ""
    /// for "Hello,".
    pub greeting_name: String,
}

/// A fact the customer already gave us ("order", "48391"): no mail asks for it again.
pub type FactData = crate::mail::facts::Fact;

/// The customer has had this problem before (`[recurring] link_within`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecurringData {
    /// Which time this is: 1 the first, 2 the second…
    pub count: i64,
    /// The same as a word in the mail's language ("second", "zweite"); "" for the first.
    pub count_words: String,
    /// The earlier incident this one repeats (0 when none).
    pub previous: i64,
    /// How long ago the earlier incident opened, in words ("three weeks", "2 days").
    pub since: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SupportData {
    pub name: String,
    pub address: String,
}

/// Sample data for `check`: for every incident state, one complete set (every optional value
/// present, every flag on) and one sparse set (no name, empty texts, flags off). Built from
/// [`MailData`] itself, so the sample cannot lack a key the daemon sends.
fn sample_data(support_name: &str, support_address: &str) -> Vec<Value> {
    let full = MailData {
        incident: IncidentData {
            number: 1042,
            token: "FU-1042-3fa9c01b2e".into(),
            subject: "Order #5521 arrived damaged {{not a template}}".into(),
            summary: "The vase I ordered arrived in pieces and I need it by Friday.".into(),
            opened: "Monday 23 November 2026, 09:12 UTC".into(),
            opened_iso: "2026-11-23T09:12:00.000Z".into(),
            state: String::new(),
            tags: vec!["shipping".into(), "breakage".into()],
            recurring: true,
        },
        customer: CustomerData {
            name: Some("Ann Example".into()),
            address: "ann@example.com".into(),
            greeting_name: "Ann".into(),
        },
        support: SupportData {
            name: support_name.into(),
            address: support_address.into(),
        },
        next_update: "Monday 23 November 2026, 13:12 UTC".into(),
        next_update_iso: "2026-11-23T13:12:00.000Z".into(),
        cadence: "4 hours".into(),
        pace: "every 4 hours".into(),
        note: "The courier confirmed the parcel was dropped; a replacement ships today.".into(),
        overdue: true,
        cadence_changed: true,
        window_moved: true,
        lang: String::new(),
        next_update_theirs: "08:12 your time, UTC-05:00".into(),
        facts: vec![FactData {
            name: "order".into(),
            value: "5521".into(),
        }],
        recurring: RecurringData {
            count: 2,
            count_words: "second".into(),
            previous: 977,
            since: "three weeks".into(),
        },
        problem: "Order #5521 arrived damaged".into(),
        check_question: "Has the replacement vase arrived in one piece?".into(),
        rating: 5,
        fixed_before: true,
        resolution: ResolutionData {
            root_cause: "Our packing station used the wrong box size for fragile items.".into(),
            prevention: "Fragile items now get a double box and a packing check.".into(),
            compensation: "We refunded the shipping cost.".into(),
        },
        close_after: "4 days".into(),
        previous_incident: 977,
        note_by: "Anna".into(),
        greeting: "Hi Ann,".into(),
        waiting_for: "the serial number on the back of the device".into(),
        thanks_for: "Tuesday".into(),
        updates_stopped: true,
        resumed: true,
        plain: false,
        staff: StaffData {
            reason: "The customer replied".into(),
            from: "Ann Example <ann@example.com>".into(),
            text: "It broke again this morning.\nOrder #48391, photo attached.".into(),
            attachments: vec![AttachmentData {
                name: "photo.jpg".into(),
                content_type: "image/jpeg".into(),
                size: "120 KB".into(),
            }],
            trust: "verified: dkim=pass aligned (header.d=example.com)".into(),
            member: "anna@support.example".into(),
            refusal: "a resolution needs a root cause".into(),
            digest: vec!["#1043 new incident: Refund missing".into()],
            language: "de".into(),
            recurring_reason: "ann@example.com wrote again within 30 days of incident #977".into(),
            signature: "Ann Example\nExample Ltd\n+44 20 7946 0000".into(),
            held: HeldData {
                all_quote: false,
                staff_only: true,
                unsure: "a line looks like the header of a quoted mail".into(),
                stopped: "progress".into(),
                found: vec!["Start with #internal for a note the customer never sees.".into()],
            },
        },
        escalation: EscalationData {
            reason: "no staff note for 8 hours".into(),
            customer: "Ann Example <ann@example.com>".into(),
            updates_without_news: 3,
            hours_without_note: 8,
        },
    };
    let sparse = MailData {
        incident: IncidentData {
            subject: String::new(),
            summary: String::new(),
            tags: Vec::new(),
            recurring: false,
            ..full.incident.clone()
        },
        customer: CustomerData {
            name: None,
            address: full.customer.address.clone(),
            greeting_name: String::new(),
        },
        next_update: String::new(),
        next_update_theirs: String::new(),
        facts: Vec::new(),
        recurring: RecurringData {
            count: 1,
            ..RecurringData::default()
        },
        problem: String::new(),
        check_question: String::new(),
        rating: 0,
        fixed_before: false,
        next_update_iso: String::new(),
        note: String::new(),
        overdue: false,
        cadence_changed: false,
        window_moved: false,
        resolution: ResolutionData {
            compensation: String::new(),
            ..full.resolution.clone()
        },
        previous_incident: 0,
        note_by: String::new(),
        greeting: String::new(),
        waiting_for: String::new(),
        thanks_for: String::new(),
        updates_stopped: false,
        resumed: false,
        staff: StaffData::default(),
        escalation: EscalationData {
            updates_without_news: 0,
            hours_without_note: 0,
            ..full.escalation.clone()
        },
        ..full.clone()
    };
    // What an unproven sender's mail looks like: every flag on, their own words gone.
    let plain = MailData {
        incident: IncidentData {
            subject: String::new(),
            summary: String::new(),
            ..full.incident.clone()
        },
        customer: CustomerData {
            name: None,
            address: full.customer.address.clone(),
            greeting_name: String::new(),
        },
        facts: Vec::new(),
        problem: String::new(),
        plain: true,
        ..full.clone()
    };
    let mut out = Vec::new();
    for state in ["open", "waiting", "resolved", "closed"] {
        for sample in [&full, &plain, &sparse] {
            let mut data = sample.clone();
            data.incident.state = state.into();
            out.push(serde_json::to_value(&data).unwrap_or(Value::Null));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The tests here change the acknowledgement; the shipped set as a whole is checked
    /// where the kinds of mail are defined (`incident::state`).
    const SHIPPED: &[&str] = &["acknowledgement"];

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
