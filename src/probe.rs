//! Intake without servers: raw bytes in, the same parse → classify → thread → store → policy →
//! outbox path the daemon runs, on a private in-memory database.
//!
//! The fuzz target (`fuzz/`) feeds it arbitrary bytes and the test suite feeds it the seed
//! corpus; both rely on [`Probe::feed`] checking the promises that must hold whatever arrives.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use crate::config::{IntakeConfig, SendCaps, SupportConfig};
use crate::imap::Fetched;
use crate::ingest::{self, Context, Outcome};
use crate::mail::{self, Rules};
use crate::secret::Secret;
use crate::store::{self, StoreError};
use crate::templates::{TemplateError, Templates};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("broken promise after UID {uid}: {what}")]
    Broken { uid: u32, what: String },
}

pub struct Probe {
    conn: Connection,
    support: SupportConfig,
    intake: IntakeConfig,
    caps: SendCaps,
    cadence: crate::config::CadenceConfig,
    escalation: crate::config::EscalationConfig,
    recurring: crate::config::RecurringConfig,
    secret: Secret,
    templates: Templates,
    next_uid: u32,
    now: DateTime<Utc>,
}

impl Probe {
    /// `templates` is a template directory such as the repository's `templates/`.
    pub fn new(templates: &Path) -> Result<Probe, ProbeError> {
        Ok(Probe {
            conn: store::open_in_memory()?,
            support: SupportConfig {
                address: "support@example.test".into(),
                name: "Example Support".into(),
                own_addresses: vec!["help@example.test".into()],
                staff: vec!["staff@example.test".into()],
            },
            intake: IntakeConfig::default(),
            caps: SendCaps::default(),
            cadence: crate::config::CadenceConfig::default(),
            escalation: crate::config::EscalationConfig::default(),
            recurring: crate::config::RecurringConfig::default(),
            secret: Secret::from_bytes(b"probe key"),
            templates: Templates::load(templates)?,
            next_uid: 1,
            now: Utc::now(),
        })
    }

    /// Ingests one message as the next UID of the inbox and checks every invariant.
    pub fn feed(&mut self, raw: &[u8]) -> Result<Outcome, ProbeError> {
        let uid = self.next_uid;
        self.next_uid += 1;
        // Time moves a minute per message, so send caps see a realistic stream.
        self.now += chrono::Duration::minutes(1);
        let ctx = Context {
            support: &self.support,
            intake: &self.intake,
            caps: &self.caps,
            secret: &self.secret,
            templates: &self.templates,
            cadence: &self.cadence,
            escalation: &self.escalation,
            recurring: &self.recurring,
            after_processing: true,
        };
        let batch = [Fetched {
            uid,
            raw: raw.to_vec(),
            size: raw.len() as u64,
            headers_only: false,
        }];
        let report = ingest::ingest_batch(&mut self.conn, &ctx, "INBOX", 1, &batch, uid, self.now)?;
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
        Ok(outcome)
    }

    fn broken(uid: u32, what: String) -> ProbeError {
        ProbeError::Broken { uid, what }
    }

    fn check(&self, uid: u32, raw: &[u8], outcome: &Outcome) -> Result<(), ProbeError> {
        let count = |sql: &str| -> Result<i64, ProbeError> {
            Ok(self
                .conn
                .query_row(sql, [], |r| r.get(0))
                .map_err(StoreError::from)?)
        };
        // Nothing lost: every UID fed is on record (or was a duplicate of a recorded one).
        let recorded = count(&format!(
            "SELECT COUNT(*) FROM messages WHERE imap_uid = {uid}"
        ))?;
        let duplicate = matches!(outcome, Outcome::Duplicate { .. } | Outcome::Receipt { .. });
        if recorded != 1 && !duplicate {
            return Err(Self::broken(
                uid,
                format!("{outcome:?} but {recorded} rows"),
            ));
        }
        // Never answer a robot, never answer ourselves.
        let answered_robots = count(
            "SELECT COUNT(*) FROM outbox o JOIN messages m ON m.id = o.caused_by
             WHERE m.class != 'human'",
        )?;
        if answered_robots > 0 {
            return Err(Self::broken(uid, "automated mail was answered".into()));
        }
        let to_us = count(
            "SELECT COUNT(*) FROM outbox WHERE recipient IN
             ('support@example.test', 'help@example.test')",
        )?;
        if to_us > 0 {
            return Err(Self::broken(uid, "mail queued to our own address".into()));
        }
        // One acknowledgement per incident, at most.
        let doubled = count(
            "SELECT COUNT(*) FROM (SELECT incident_id FROM outbox WHERE kind = 'acknowledgement'
             GROUP BY incident_id HAVING COUNT(*) > 1)",
        )?;
        if doubled > 0 {
            return Err(Self::broken(
                uid,
                "an incident was acknowledged twice".into(),
            ));
        }
        // A joined message came from a participant (or staff).
        if let Outcome::Joined { incident } = outcome {
            let from = self
                .conn
                .query_row(
                    "SELECT from_addr FROM messages WHERE imap_uid = ?1",
                    [uid],
                    |r| r.get::<_, Option<String>>(0),
                )
                .map_err(StoreError::from)?
                .unwrap_or_default();
            let member = self.support.is_staff(&from)
                || store::participant_role(&self.conn, *incident, &from)?.is_some();
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
        let rules = Rules {
            support: &self.support,
            intake: &self.intake,
        };
        let Ok(parsed) = mail::parse(raw, &rules) else {
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
    pub fn incidents(&self) -> Result<i64, ProbeError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM incidents", [], |r| r.get(0))
            .map_err(StoreError::from)?)
    }
}
