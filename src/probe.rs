//! Intake without servers: raw .eml in, effects out, through the very path the daemon runs
//! (parse → classify → thread → decide → apply → outbox) on a private in-memory database.
//!
//! The fuzz target (`fuzz/`) feeds it arbitrary bytes and the test suite feeds it the fixture
//! corpus; both rely on [`Probe::feed`] checking the promises that must hold whatever arrives.
//! Each fixture's expected facts (class, reason, sender, subject, summary, what became of it
//! and which mails it caused) sit beside it as `NAME.json` and are checked by the unit tests
//! below, in-process, without root and without servers.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;

use crate::clock::Clock;
use crate::config::Config;
use crate::deps::Deps;
use crate::imap::Fetched;
use crate::intake::{ingest_batch, Outcome, Source};
use crate::mail::{self, MessageClass};
use crate::secret::Secret;
use crate::store::{self, StoreError};
use crate::templates::{TemplateError, Templates};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("broken promise after UID {uid}: {what}")]
    Broken { uid: u32, what: String },
}

pub struct Probe {
    conn: Connection,
    deps: Deps,
    next_uid: u32,
    now: DateTime<Utc>,
}

/// What one message became: the facts read from it and the mails it caused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fed {
    /// None when the message could not be parsed at all.
    pub class: Option<MessageClass>,
    pub reason: String,
    pub from: Option<String>,
    /// Further addresses From named (only the first usable one is answered).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_from: Vec<String>,
    pub name: Option<String>,
    pub subject: Option<String>,
    pub summary: String,
    /// Pieces whose charset was missing or wrong, and what they were read as.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub charsets: Vec<String>,
    /// "opened #1", "joined #1", "ignored", "quarantined: …", "held: …", "duplicate of #3"…
    pub outcome: String,
    /// "acknowledgement to ann@example.test", in the order queued.
    pub mails: Vec<String>,
    #[serde(skip)]
    pub result: Outcome,
}

impl Probe {
    /// A probe for support@example.test (also help@example.test; staff@example.test is
    /// staff) with the templates in `templates`, such as the repository's `templates/`.
    pub fn new(templates: &Path) -> Result<Probe, ProbeError> {
        let mut config = Config::example()?;
        config.support.own_addresses = vec!["help@example.test".into()];
        config.staff.members = vec!["staff@example.test".into()];
        let templates = Templates::load(templates, &crate::incident::MailKind::template_names())?;
        Ok(Probe {
            conn: store::open_in_memory()?,
            deps: Deps {
                config,
                templates,
                secret: Secret::from_bytes(b"probe key"),
                clock: Clock::system(),
            },
            next_uid: 1,
            now: crate::clock::parse_stamp("2026-11-23T09:00:00Z").unwrap_or_else(Utc::now),
        })
    }

    /// Ingests one message as the next UID of the inbox, checks every invariant, and says what
    /// became of it.
    pub fn feed(&mut self, raw: &[u8]) -> Result<Fed, ProbeError> {
        let uid = self.next_uid;
        self.next_uid += 1;
        // Time moves a minute per message, so send caps see a realistic stream.
        self.now += chrono::Duration::minutes(1);
        let last_before = store::outbox::last_id(&self.conn)?;
        let batch = [Fetched {
            uid,
            raw: crate::imap::Raw::Owned(raw.to_vec()),
            size: raw.len() as u64,
            headers_only: false,
        }];
        let source = Source {
            mailbox: "INBOX",
            uidvalidity: 1,
            checkpoint_to: uid,
            after_processing: true,
        };
        let report = ingest_batch(&mut self.conn, &self.deps, source, &batch, self.now)?;
        let outcome = report
            .outcomes
            .into_iter()
            .next()
            .map(|(_, o)| o)
            .ok_or_else(|| ProbeError::Broken {
                uid,
                what: "ingest reported no outcome".into(),
            })?;
        self.check(uid, raw, &outcome)?;
        let mails = store::outbox::queued_after(&self.conn, last_before)?
            .into_iter()
            .map(|(kind, to, state, error)| match state {
                store::outbox::OutboxState::Failed => {
                    format!("{kind} to {to} failed: {}", error.unwrap_or_default())
                }
                _ => format!("{kind} to {to}"),
            })
            .chain(
                store::outbox::suppressed_at(&self.conn, self.now)?
                    .into_iter()
                    .map(|(kind, to, reason)| format!("{kind} to {to} suppressed: {reason}")),
            )
            .collect();
        let parsed = mail::parse(raw, &self.deps.config);
        let (class, reason, from, name, subject, summary) = match &parsed {
            Ok(m) => (
                Some(m.class),
                m.class_reason.clone(),
                Some(m.from.address.clone()),
                m.from.name.clone(),
                Some(m.subject.clone()),
                m.summary.clone(),
            ),
            Err(q) => (
                None,
                self.deps
                    .policy()
                    .say(&crate::incident::arrival::unreadable(&q.reason)),
                q.from.clone(),
                None,
                q.subject.clone(),
                String::new(),
            ),
        };
        let (other_from, charsets) = match &parsed {
            Ok(m) => (
                m.other_from.clone(),
                m.charsets.iter().map(ToString::to_string).collect(),
            ),
            Err(_) => (Vec::new(), Vec::new()),
        };
        Ok(Fed {
            class,
            reason,
            from,
            other_from,
            name,
            subject,
            summary,
            charsets,
            outcome: describe(&outcome),
            mails,
            result: outcome,
        })
    }

    fn broken(uid: u32, what: String) -> ProbeError {
        ProbeError::Broken { uid, what }
    }

    fn check(&self, uid: u32, raw: &[u8], outcome: &Outcome) -> Result<(), ProbeError> {
        let conn = &self.conn;
        // Nothing lost: every UID fed is on record (or was a duplicate of a recorded one).
        let recorded = store::messages::rows_of_uid(conn, uid)?;
        let duplicate = matches!(outcome, Outcome::Duplicate { .. } | Outcome::Receipt { .. });
        if recorded != 1 && !duplicate {
            return Err(Self::broken(
                uid,
                format!("{outcome:?} but {recorded} rows"),
            ));
        }
        // Never answer a robot, never answer ourselves.
        if store::outbox::answered_non_human(conn)? > 0 {
            return Err(Self::broken(uid, "automated mail was answered".into()));
        }
        let own = [
            self.deps.config.support.address.as_str(),
            "help@example.test",
        ];
        if store::outbox::mail_to_any(conn, &own)? > 0 {
            return Err(Self::broken(uid, "mail queued to our own address".into()));
        }
        // One acknowledgement per incident, at most.
        if store::outbox::incidents_acknowledged_twice(conn)? > 0 {
            return Err(Self::broken(
                uid,
                "an incident was acknowledged twice".into(),
            ));
        }
        // A joined message came from a participant (or staff).
        if let Outcome::Joined { incident } = outcome {
            let from = store::messages::sender_of_uid(conn, uid)?.unwrap_or_default();
            let member = self.deps.config.staff.is_member(&from)
                || store::incidents::participant_role(conn, *incident, &from)?.is_some();
            if !member {
                return Err(Self::broken(
                    uid,
                    format!("{from} joined incident {incident} without taking part in it"),
                ));
            }
        }
        self.check_text(uid, raw)
    }

    /// Text that reaches headers and templates is one clean line, and subject normalising is
    /// stable.
    fn check_text(&self, uid: u32, raw: &[u8]) -> Result<(), ProbeError> {
        let Ok(parsed) = mail::parse(raw, &self.deps.config) else {
            return Ok(());
        };
        let name = parsed.from.name.as_deref().unwrap_or("");
        for text in [parsed.subject.as_str(), parsed.summary.as_str(), name] {
            if text.chars().any(|c| c.is_control()) {
                return Err(Self::broken(uid, format!("control character in {text:?}")));
            }
        }
        let base = mail::base_subject(&parsed.subject);
        if mail::base_subject(&base) != base {
            return Err(Self::broken(
                uid,
                format!("base_subject is not stable on {:?}", parsed.subject),
            ));
        }
        Ok(())
    }

    /// Incidents opened so far.
    pub fn incidents(&self) -> Result<usize, ProbeError> {
        Ok(store::incidents::incidents(&self.conn, None)?.len())
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Opened { incident } => format!("opened #{incident}"),
        Outcome::Joined { incident } => format!("joined #{incident}"),
        Outcome::Ignored { class } => format!("ignored ({class})"),
        Outcome::Duplicate { of } => format!("duplicate of message #{of}"),
        Outcome::Quarantined { reason } => format!("quarantined: {reason}"),
        Outcome::Held { reason } => format!("held: {reason}"),
        Outcome::AlreadyRecorded => "already recorded".into(),
        Outcome::Receipt { confirmed } => format!("receipt (confirmed: {confirmed})"),
    }
}

/// The shipped tables of what customers write, every language: for the fuzz target.
pub fn shipped_intents() -> &'static crate::templates::Intents {
    static SHIPPED: std::sync::LazyLock<crate::templates::Intents> =
        std::sync::LazyLock::new(crate::templates::Intents::shipped);
    &SHIPPED
}

/// A cadence as a customer reads it in `lang` ("every 2 hours", "alle 2 Stunden"), with the
/// shipped phrases: for the fuzz target, which cannot reach the phrase book itself.
pub fn pace_in_words(cadence: std::time::Duration, lang: &str) -> String {
    static SHIPPED: std::sync::LazyLock<crate::templates::Phrases> =
        std::sync::LazyLock::new(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
            crate::templates::Phrases::load(&dir, &["de".to_string()]).unwrap_or_default()
        });
    SHIPPED.pace((lang != "en").then_some(lang), cadence)
}

#[cfg(test)]
mod tests {
    //! The fixture corpus, each message against the facts expected beside it.
    //!
    //! `FOLLOWUPD_BLESS=1 cargo test --lib fixtures` writes the `.json` files from what the
    //! code does now; review the diff before committing it.

    use super::*;
    use std::path::PathBuf;

    fn fixtures() -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("fixture directory")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
    }

    /// Fills a fixture's placeholders the way a real delivery would have them.
    fn filled(path: &Path) -> Vec<u8> {
        let raw = std::fs::read(path).expect("fixture");
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("fixture");
        let msgid = format!("fx-{stem}");
        let mut out = raw;
        for (key, value) in [
            ("%SUPPORT%", "support@example.test"),
            ("%MSGID%", msgid.as_str()),
            ("%CUSTOMER%", "ann@example.test"),
            ("%ACK_ID%", "fu.1.0000000000000000.0000000000@example.test"),
            ("%TOKEN%", "FU-1-0000000000"),
            ("%THREAD_INDEX%", "AdbA1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"),
            ("%C%", "c"),
        ] {
            out = replace(&out, key.as_bytes(), value.as_bytes());
        }
        out
    }

    fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(haystack.len());
        let mut i = 0;
        while i < haystack.len() {
            if haystack[i..].starts_with(from) {
                out.extend_from_slice(to);
                i += from.len();
            } else {
                out.push(haystack[i]);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn the_mail_fixtures_each_give_the_facts_expected_beside_them() {
        let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let bless = std::env::var_os("FOLLOWUPD_BLESS").is_some();
        let files = fixtures();
        assert!(files.len() >= 150, "the corpus is there: {}", files.len());
        let mut wrong = Vec::new();
        for path in &files {
            // Each message alone, on a fresh database: its own facts, nothing threaded.
            let mut probe = Probe::new(&templates).expect("probe");
            let fed = probe
                .feed(&filled(path))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let got = serde_json::to_string_pretty(&fed).expect("json") + "\n";
            let expected_path = path.with_extension("json");
            if bless {
                std::fs::write(&expected_path, &got).expect("write expectation");
                continue;
            }
            match std::fs::read_to_string(&expected_path) {
                Ok(expected) if expected == got => {}
                Ok(expected) => wrong.push(format!(
                    "{}:\nexpected {expected}\n     got {got}",
                    path.display()
                )),
                Err(_) => wrong.push(format!(
                    "{}: no {} (run with FOLLOWUPD_BLESS=1 and review it)",
                    path.display(),
                    expected_path.display()
                )),
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
