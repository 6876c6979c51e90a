//! What the send caps count, and the mail they held back (`suppressed`, and the staff
//! notifications waiting for a digest).

use super::*;

pub use crate::incident::caps::CapScope;

/// The kinds of mail only staff read, as an SQL list (`'staff/new', 'staff/reply', …`), from
/// [`MailKind::audience`] itself: SQL tells staff mail apart by the same rule as the code.
pub(super) fn staff_kinds() -> String {
    MailKind::ALL
        .iter()
        .filter(|k| k.audience() == crate::incident::Audience::Staff)
        .map(|k| format!("'{}'", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How much automatic customer mail `scope` had since `since`.
pub fn customer_mail_count(
    conn: &Connection,
    scope: CapScope<'_>,
    since: DateTime<Utc>,
) -> Result<u32> {
    let customer = crate::store::with_states(&format!(
        "kind NOT IN ({}) AND state != {{OutboxState::Failed}} AND created_at > ?1",
        staff_kinds()
    ));
    let customer = customer.as_str();
    let count: i64 = match scope {
        CapScope::Mailbox(mailbox) => conn
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM outbox WHERE recipient_mailbox = ?2 AND {customer}"
            ))?
            .query_row(params![Ts(since), mailbox], |r| r.get(0))?,
        CapScope::UnverifiedMailbox(mailbox) => conn
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM outbox
                 WHERE recipient_mailbox = ?2 AND unverified = 1 AND {customer}"
            ))?
            .query_row(params![Ts(since), mailbox], |r| r.get(0))?,
        CapScope::UnverifiedDomain(domain) => conn
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM outbox
                 WHERE recipient_domain = ?2 AND unverified = 1 AND {customer}"
            ))?
            .query_row(params![Ts(since), domain], |r| r.get(0))?,
        CapScope::Answers(incident) => conn
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM outbox
                 WHERE incident_id = ?2 AND kind IN ('status', 'reopened')
                   AND caused_by IS NOT NULL AND {customer}"
            ))?
            .query_row(params![Ts(since), incident], |r| r.get(0))?,
        CapScope::All => conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM outbox WHERE {customer}"))?
            .query_row(params![Ts(since)], |r| r.get(0))?,
    };
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// Whether a mail of `kind` was queued since `since` (for a notice sent once per window).
pub fn kind_queued_since(conn: &Connection, kind: MailKind, since: DateTime<Utc>) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM outbox WHERE kind = ?1 AND created_at > ?2 LIMIT 1")?
        .query_row(params![kind, Ts(since)], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn automatic_mail_since(
    conn: &Connection,
    recipient: &str,
    since: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, MailKind)>> {
    let mut stmt = conn.prepare_cached(sql!(
        "SELECT created_at, kind FROM outbox
         WHERE recipient = ?1 AND created_at > ?2 AND state != {OutboxState::Failed}
         ORDER BY created_at DESC"
    ))?;
    let rows = stmt
        .query_map(params![recipient, Ts(since)], |r| {
            Ok((ts_at(r, 0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub struct NewSuppressed<'a> {
    pub incident: IncidentNo,
    pub kind: MailKind,
    pub caused_by: Option<MessageRow>,
    pub recipient: &'a str,
    pub reason: &'a str,
    pub context: &'a str,
    /// Held for the recipient's next digest (staff notifications over their cap).
    pub digest_pending: bool,
}

pub fn record_suppressed(
    conn: &Connection,
    s: &NewSuppressed<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO suppressed (incident_id, kind, caused_by, recipient, reason, context,
             created_at, digest_pending)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        s.incident,
        s.kind,
        s.caused_by,
        s.recipient,
        s.reason,
        s.context,
        Ts(now),
        s.digest_pending
    ])?;
    Ok(())
}

/// Lists `incident` in `recipient`'s next digest without a mail held back from them (a new
/// incident of a burst: see migration 021).
pub fn list_in_digest(
    conn: &Connection,
    incident: IncidentNo,
    recipient: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO suppressed (incident_id, kind, recipient, reason, context, created_at,
             digest_pending, listed_only)
         VALUES (?1, ?2, ?3, '', '', ?4, 1, 1)",
    )?
    .execute(params![incident, MailKind::StaffNew, recipient, Ts(now)])?;
    Ok(())
}

/// Whether `incident` is listed for any digest already (a burst's earlier incidents are
/// listed once, when the burst begins).
pub fn listed_for_digest(conn: &Connection, incident: IncidentNo) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM suppressed WHERE incident_id = ?1 AND listed_only = 1")?
        .exists([incident])?)
}

/// A staff notification held for a digest.
#[derive(Debug, Clone)]
pub struct Held {
    pub id: i64,
    pub incident: IncidentNo,
    pub kind: MailKind,
    pub at: DateTime<Utc>,
}

/// Staff recipients with notifications held for a digest.
pub fn digest_recipients(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT recipient FROM suppressed WHERE digest_pending = 1 ORDER BY recipient",
    )?;
    let rows = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(rows)
}

/// The notifications held for `recipient`'s digest, oldest first.
pub fn held_for(conn: &Connection, recipient: &str) -> Result<Vec<Held>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, incident_id, kind, created_at FROM suppressed
         WHERE digest_pending = 1 AND recipient = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([recipient], |r| {
            Ok(Held {
                id: r.get(0)?,
                incident: r.get(1)?,
                kind: r.get(2)?,
                at: ts_at(r, 3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The held notifications went out in a digest, under `message_id` when it was queued (a
/// reply naming it can answer every incident it lists).
pub fn digested(conn: &Connection, ids: &[i64], message_id: Option<&str>) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE suppressed SET digest_pending = 0, digest_message_id = ?2 WHERE id = ?1",
    )?;
    for id in ids {
        stmt.execute(params![id, message_id])?;
    }
    Ok(())
}

/// The incidents the digest sent under `message_id` listed, in the order it listed them;
/// empty when it is no digest.
pub fn digest_listed(conn: &Connection, message_id: &str) -> Result<Vec<IncidentNo>> {
    let mut listed: Vec<IncidentNo> = super::super::column(
        conn,
        "SELECT incident_id FROM suppressed WHERE digest_message_id = ?1 ORDER BY id",
        [message_id],
    )?;
    let mut seen = std::collections::HashSet::new();
    listed.retain(|n| seen.insert(*n));
    Ok(listed)
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineSuppressed {
    pub kind: MailKind,
    pub recipient: String,
    pub reason: String,
    #[serde(with = "serde_stamp")]
    pub at: DateTime<Utc>,
}

pub fn incident_suppressed(
    conn: &Connection,
    incident: IncidentNo,
) -> Result<Vec<TimelineSuppressed>> {
    let mut stmt = conn.prepare(
        "SELECT kind, recipient, reason, created_at FROM suppressed
         WHERE incident_id = ?1 AND listed_only = 0 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([incident], |r| {
            Ok(TimelineSuppressed {
                kind: r.get(0)?,
                recipient: r.get(1)?,
                reason: r.get(2)?,
                at: ts_at(r, 3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

// --- Undeliverable addresses -------------------------------------------------------------------

/// Kind, recipient and reason of every mail suppressed at `at`.
pub fn suppressed_at(
    conn: &Connection,
    at: DateTime<Utc>,
) -> Result<Vec<(MailKind, String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT kind, recipient, reason FROM suppressed
         WHERE created_at = ?1 AND listed_only = 0 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([Ts(at)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
