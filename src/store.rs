//! SQLite: the source of truth and the written record.
//!
//! Every function takes a `&Connection` so callers decide the transaction: intake wraps one IMAP
//! batch (messages, incidents, outbox rows, checkpoint) in a single transaction, which is what
//! makes a crash at any point safe: either all of it happened, or none of it did.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use rusqlite_migration::{Migrations, M};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("database {path}: cannot create its directory: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] rusqlite_migration::Error),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database holds an unreadable value in {what}: {value}")]
    Corrupt { what: &'static str, value: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Schema versions, applied in order and recorded in `user_version`. Never edit a released
/// migration: add a new one.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/001_spine.sql")),
        M::up(include_str!("../migrations/002_safe_intake.sql")),
        M::up(include_str!("../migrations/003_promises.sql")),
    ])
}

/// Opens (creating if needed) the database, sets the pragmas every connection needs and brings
/// the schema up to date.
pub fn open(path: &Path) -> Result<Connection> {
    let shown = path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: shown.clone(),
            source,
        })?;
    }
    let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: shown.clone(),
        source,
    })?;
    configure(&conn).map_err(|source| StoreError::Open {
        path: shown,
        source,
    })?;
    migrations().to_latest(&mut conn)?;
    Ok(conn)
}

/// A private in-memory database with the full schema, for `probe` (fuzzing, corpus tests).
pub fn open_in_memory() -> Result<Connection> {
    let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
        path: ":memory:".into(),
        source,
    })?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrations().to_latest(&mut conn)?;
    Ok(conn)
}

/// Opens the database for the outbox sender. Its commits record what the relay already
/// accepted, so they must be quick: every millisecond between the relay's `250` and this commit
/// is a window in which a crash makes the mail go out twice. WAL with synchronous=NORMAL is
/// durable against a process crash (the case that matters here) and skips the fsync; only a
/// power cut could lose the mark, and then the mail is resent with the same Message-ID.
pub fn open_for_sending(path: &Path) -> Result<Connection> {
    let conn = open(path)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // WAL lets the CLI read while the daemon writes. synchronous=FULL: a committed intake batch
    // must survive a power cut, because the IMAP message may be moved away right after.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(Duration::from_secs(30))?;
    Ok(())
}

/// Timestamps are stored as fixed-width RFC 3339 UTC text: readable in `sqlite3`, sortable as text.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse_ts(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt {
            what: "a timestamp",
            value: text.to_string(),
        })
}

// --- IMAP checkpoint ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub uidvalidity: u32,
    pub last_uid: u32,
}

pub fn checkpoint(conn: &Connection, mailbox: &str) -> Result<Option<Checkpoint>> {
    Ok(conn
        .query_row(
            "SELECT uidvalidity, last_uid FROM imap_checkpoint WHERE mailbox = ?1",
            [mailbox],
            |r| {
                Ok(Checkpoint {
                    uidvalidity: r.get(0)?,
                    last_uid: r.get(1)?,
                })
            },
        )
        .optional()?)
}

pub fn set_checkpoint(
    conn: &Connection,
    mailbox: &str,
    cp: Checkpoint,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO imap_checkpoint (mailbox, uidvalidity, last_uid, updated_at)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = ?2, last_uid = ?3, updated_at = ?4",
        params![mailbox, cp.uidvalidity, cp.last_uid, ts(now)],
    )?;
    Ok(())
}

// --- Messages ----------------------------------------------------------------------------------

/// Where an incoming message came from on the IMAP server.
#[derive(Debug, Clone, Copy)]
pub struct ImapOrigin<'a> {
    pub mailbox: &'a str,
    pub uidvalidity: u32,
    pub uid: u32,
}

/// One row of the message log, incoming or outgoing.
#[derive(Debug, Clone, Default)]
pub struct NewMessage<'a> {
    pub direction: &'static str,
    pub incident: Option<i64>,
    pub message_id: Option<&'a str>,
    pub dedupe_key: Option<&'a str>,
    pub from_addr: Option<&'a str>,
    pub to_addr: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub date_header: Option<&'a str>,
    pub in_reply_to: Option<&'a str>,
    pub references: Option<&'a str>,
    pub class: &'a str,
    pub class_reason: Option<&'a str>,
    pub sha256: &'a str,
    pub raw: &'a [u8],
    /// The real size when `raw` holds only the headers of an oversized message.
    pub oversize: Option<u64>,
}

pub fn insert_message(
    conn: &Connection,
    m: &NewMessage<'_>,
    origin: Option<ImapOrigin<'_>>,
    now: DateTime<Utc>,
) -> Result<i64> {
    conn.execute(
        "INSERT INTO messages (direction, incident_id, message_id, dedupe_key, from_addr, to_addr,
             subject, date_header, in_reply_to, references_, class, class_reason, sha256, size,
             raw, imap_mailbox, imap_uidvalidity, imap_uid, recorded_at, headers_only)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
                 ?20)",
        params![
            m.direction,
            m.incident,
            m.message_id,
            m.dedupe_key,
            m.from_addr,
            m.to_addr,
            m.subject,
            m.date_header,
            m.in_reply_to,
            m.references,
            m.class,
            m.class_reason,
            m.sha256,
            m.oversize
                .map_or(m.raw.len() as i64, |n| i64::try_from(n).unwrap_or(i64::MAX)),
            m.raw,
            origin.map(|o| o.mailbox),
            origin.map(|o| o.uidvalidity),
            origin.map(|o| o.uid),
            ts(now),
            m.oversize.is_some(),
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// A message already recorded under a dedupe key (Message-ID, or content hash without one).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub id: i64,
    pub incident: Option<i64>,
    pub sha256: String,
}

pub fn find_by_dedupe_key(conn: &Connection, key: &str) -> Result<Option<Recorded>> {
    Ok(conn
        .query_row(
            "SELECT id, incident_id, sha256 FROM messages WHERE dedupe_key = ?1",
            [key],
            |r| {
                Ok(Recorded {
                    id: r.get(0)?,
                    incident: r.get(1)?,
                    sha256: r.get(2)?,
                })
            },
        )
        .optional()?)
}

pub fn message_raw(conn: &Connection, row: i64) -> Result<Vec<u8>> {
    Ok(
        conn.query_row("SELECT raw FROM messages WHERE id = ?1", [row], |r| {
            r.get(0)
        })?,
    )
}

pub fn imap_uid_recorded(conn: &Connection, origin: ImapOrigin<'_>) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM messages WHERE imap_mailbox = ?1 AND imap_uidvalidity = ?2 AND imap_uid = ?3",
            params![origin.mailbox, origin.uidvalidity, origin.uid],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// UIDs recorded but whose after-processing (mark seen / move) has not been confirmed yet.
pub fn pending_after_processing(
    conn: &Connection,
    mailbox: &str,
    uidvalidity: u32,
) -> Result<Vec<u32>> {
    let mut stmt = conn.prepare(
        "SELECT imap_uid FROM messages
         WHERE imap_mailbox = ?1 AND imap_uidvalidity = ?2 AND after_processing = 'pending'
         ORDER BY imap_uid LIMIT 1000",
    )?;
    let uids = stmt
        .query_map(params![mailbox, uidvalidity], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<u32>>>()?;
    Ok(uids)
}

pub fn set_after_processing(
    conn: &Connection,
    mailbox: &str,
    uidvalidity: u32,
    uids: &[u32],
    state: &str,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE messages SET after_processing = ?4
         WHERE imap_mailbox = ?1 AND imap_uidvalidity = ?2 AND imap_uid = ?3",
    )?;
    for uid in uids {
        stmt.execute(params![mailbox, uidvalidity, uid, state])?;
    }
    Ok(())
}

// --- Threading index ---------------------------------------------------------------------------

pub fn incident_of_message_id(conn: &Connection, message_id: &str) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT incident_id FROM message_ids WHERE message_id = ?1",
            [message_id],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn index_message_id(conn: &Connection, message_id: &str, incident: i64) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO message_ids (message_id, incident_id) VALUES (?1, ?2)",
        params![message_id, incident],
    )?;
    Ok(())
}

// --- Incidents ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct NewIncident<'a> {
    pub subject: &'a str,
    pub summary: &'a str,
    pub customer_address: &'a str,
    pub customer_name: Option<&'a str>,
    pub cadence: Duration,
    pub next_update_at: DateTime<Utc>,
}

/// Creates an incident; its token needs its number, so it is set right after, in the same
/// transaction.
pub fn create_incident(
    conn: &Connection,
    new: &NewIncident<'_>,
    token_for: impl Fn(i64) -> String,
    now: DateTime<Utc>,
) -> Result<i64> {
    conn.execute(
        "INSERT INTO incidents (state, subject, summary, customer_address, customer_name,
             opened_at, updated_at, cadence_secs, next_update_at)
         VALUES ('open', ?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
        params![
            new.subject,
            new.summary,
            new.customer_address,
            new.customer_name,
            ts(now),
            new.cadence.as_secs() as i64,
            ts(new.next_update_at),
        ],
    )?;
    let id = conn.last_insert_rowid();
    conn.execute(
        "UPDATE incidents SET token = ?2 WHERE id = ?1",
        params![id, token_for(id)],
    )?;
    Ok(id)
}

pub fn incident_exists(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM incidents WHERE id = ?1", [id], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn touch_incident(conn: &Connection, id: i64, now: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "UPDATE incidents SET updated_at = ?2 WHERE id = ?1",
        params![id, ts(now)],
    )?;
    Ok(())
}

pub fn add_participant(conn: &Connection, incident: i64, address: &str, role: &str) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO participants (incident_id, address, role) VALUES (?1, ?2, ?3)",
        params![incident, address, role],
    )?;
    Ok(())
}

/// The sender's role in an incident (customer, reply-to, cc, staff), if they take part in it.
pub fn participant_role(conn: &Connection, incident: i64, address: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT role FROM participants WHERE incident_id = ?1 AND address = ?2",
            params![incident, address],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn add_attachments(
    conn: &Connection,
    message_row: i64,
    list: &[crate::mail::Attachment],
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO attachments (message_row, position, name, content_type, size)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (i, a) in list.iter().enumerate() {
        stmt.execute(params![
            message_row,
            i as i64,
            a.name,
            a.content_type,
            i64::try_from(a.size).unwrap_or(i64::MAX)
        ])?;
    }
    Ok(())
}

pub fn index_thread_root(conn: &Connection, root: &str, incident: i64) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO thread_indexes (root, incident_id) VALUES (?1, ?2)",
        params![root, incident],
    )?;
    Ok(())
}

pub fn incidents_of_thread_root(conn: &Connection, root: &str) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT incident_id FROM thread_indexes WHERE root = ?1 ORDER BY incident_id",
    )?;
    let rows = stmt
        .query_map([root], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(rows)
}

// --- Undeliverable addresses and suppressed mail -----------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct Undeliverable {
    pub address: String,
    pub since: String,
    pub reason: String,
    pub incident: Option<i64>,
    pub bounce_message: Option<i64>,
}

pub fn mark_undeliverable(
    conn: &Connection,
    address: &str,
    reason: &str,
    incident: Option<i64>,
    bounce_row: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let changed = conn.execute(
        "INSERT OR IGNORE INTO undeliverable (address, since, reason, incident_id, bounce_row)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![address, ts(now), reason, incident, bounce_row],
    )?;
    Ok(changed > 0)
}

pub fn undeliverable(conn: &Connection, address: &str) -> Result<Option<Undeliverable>> {
    Ok(conn
        .query_row(
            "SELECT address, since, reason, incident_id, bounce_row FROM undeliverable
             WHERE address = ?1",
            [address],
            undeliverable_row,
        )
        .optional()?)
}

pub fn all_undeliverable(conn: &Connection) -> Result<Vec<Undeliverable>> {
    let mut stmt = conn.prepare(
        "SELECT address, since, reason, incident_id, bounce_row FROM undeliverable ORDER BY since",
    )?;
    let rows = stmt
        .query_map([], undeliverable_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn undeliverable_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Undeliverable> {
    Ok(Undeliverable {
        address: r.get(0)?,
        since: r.get(1)?,
        reason: r.get(2)?,
        incident: r.get(3)?,
        bounce_message: r.get(4)?,
    })
}

/// Returns whether the address was marked.
pub fn clear_undeliverable(conn: &Connection, address: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM undeliverable WHERE address = ?1", [address])? > 0)
}

/// Automatic mail to `recipient` queued since `since` (anything not refused by the relay).
pub fn automatic_mail_since(
    conn: &Connection,
    recipient: &str,
    since: DateTime<Utc>,
) -> Result<u32> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM outbox
         WHERE recipient = ?1 AND created_at > ?2 AND state != 'failed'",
        params![recipient, ts(since)],
        |r| r.get(0),
    )?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

pub struct NewSuppressed<'a> {
    pub incident: i64,
    pub kind: &'a str,
    pub caused_by: Option<i64>,
    pub recipient: &'a str,
    pub reason: &'a str,
    pub context: &'a str,
}

pub fn record_suppressed(
    conn: &Connection,
    s: &NewSuppressed<'_>,
    now: DateTime<Utc>,
) -> Result<i64> {
    conn.execute(
        "INSERT INTO suppressed (incident_id, kind, caused_by, recipient, reason, context, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![s.incident, s.kind, s.caused_by, s.recipient, s.reason, s.context, ts(now)],
    )?;
    Ok(conn.last_insert_rowid())
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineSuppressed {
    pub kind: String,
    pub recipient: String,
    pub reason: String,
    pub at: String,
}

pub fn incident_suppressed(conn: &Connection, incident: i64) -> Result<Vec<TimelineSuppressed>> {
    let mut stmt = conn.prepare(
        "SELECT kind, recipient, reason, created_at FROM suppressed
         WHERE incident_id = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([incident], |r| {
            Ok(TimelineSuppressed {
                kind: r.get(0)?,
                recipient: r.get(1)?,
                reason: r.get(2)?,
                at: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    pub number: i64,
    pub token: String,
    pub state: String,
    pub subject: String,
    pub summary: String,
    pub customer_address: String,
    pub customer_name: Option<String>,
    pub opened_at: String,
    pub updated_at: String,
    pub cadence_secs: i64,
    pub next_update_at: Option<String>,
    pub messages: i64,
    pub outbox_pending: i64,
    pub last_note_at: Option<String>,
    pub updates_without_news: i64,
    pub resolved_at: Option<String>,
    pub check_back_at: Option<String>,
    pub close_at: Option<String>,
    pub root_cause: Option<String>,
    pub prevention: Option<String>,
    pub compensation: Option<String>,
    pub recurring: bool,
    pub previous_incident: Option<i64>,
    pub tags: Vec<String>,
}

const INCIDENT_COLUMNS: &str = "i.id, i.token, i.state, i.subject, i.summary, i.customer_address,
    i.customer_name, i.opened_at, i.updated_at, i.cadence_secs, i.next_update_at,
    (SELECT COUNT(*) FROM messages m WHERE m.incident_id = i.id),
    (SELECT COUNT(*) FROM outbox o WHERE o.incident_id = i.id AND o.state = 'queued'),
    i.last_note_at, i.updates_without_news, i.resolved_at, i.check_back_at, i.close_at,
    i.root_cause, i.prevention, i.compensation, i.recurring, i.previous_incident,
    (SELECT group_concat(tag, ' ') FROM (SELECT tag FROM tags t WHERE t.incident_id = i.id
        ORDER BY tag))";

impl Incident {
    /// The agreed cadence.
    pub fn cadence(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.cadence_secs).unwrap_or(0))
    }
}

fn incident_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Incident> {
    Ok(Incident {
        number: r.get(0)?,
        token: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
        state: r.get(2)?,
        subject: r.get(3)?,
        summary: r.get(4)?,
        customer_address: r.get(5)?,
        customer_name: r.get(6)?,
        opened_at: r.get(7)?,
        updated_at: r.get(8)?,
        cadence_secs: r.get(9)?,
        next_update_at: r.get(10)?,
        messages: r.get(11)?,
        outbox_pending: r.get(12)?,
        last_note_at: r.get(13)?,
        updates_without_news: r.get(14)?,
        resolved_at: r.get(15)?,
        check_back_at: r.get(16)?,
        close_at: r.get(17)?,
        root_cause: r.get(18)?,
        prevention: r.get(19)?,
        compensation: r.get(20)?,
        recurring: r.get(21)?,
        previous_incident: r.get(22)?,
        tags: r
            .get::<_, Option<String>>(23)?
            .map(|t| t.split(' ').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

pub fn incidents(conn: &Connection, state: Option<&str>) -> Result<Vec<Incident>> {
    let sql = format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE (?1 IS NULL OR i.state = ?1) ORDER BY i.id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([state], incident_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn incident(conn: &Connection, number: i64) -> Result<Option<Incident>> {
    let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.id = ?1");
    Ok(conn.query_row(&sql, [number], incident_row).optional()?)
}

// --- Lifecycle and promises --------------------------------------------------------------------

pub fn set_state(conn: &Connection, id: i64, state: &str, now: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "UPDATE incidents SET state = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, state, ts(now)],
    )?;
    Ok(())
}

pub fn set_next_update(conn: &Connection, id: i64, at: Option<DateTime<Utc>>) -> Result<()> {
    conn.execute(
        "UPDATE incidents SET next_update_at = ?2 WHERE id = ?1",
        params![id, at.map(ts)],
    )?;
    Ok(())
}

pub fn set_cadence(conn: &Connection, id: i64, cadence: Duration) -> Result<()> {
    conn.execute(
        "UPDATE incidents SET cadence_secs = ?2 WHERE id = ?1",
        params![id, i64::try_from(cadence.as_secs()).unwrap_or(i64::MAX)],
    )?;
    Ok(())
}

pub fn set_updates_without_news(conn: &Connection, id: i64, n: i64) -> Result<()> {
    conn.execute(
        "UPDATE incidents SET updates_without_news = ?2 WHERE id = ?1",
        params![id, n],
    )?;
    Ok(())
}

pub fn add_note(
    conn: &Connection,
    id: i64,
    author: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO notes (incident_id, at, author, text) VALUES (?1, ?2, ?3, ?4)",
        params![id, ts(now), author, text],
    )?;
    conn.execute(
        "UPDATE incidents SET last_note_at = ?2, updates_without_news = 0, escalated_at = NULL
         WHERE id = ?1",
        params![id, ts(now)],
    )?;
    Ok(())
}

/// The newest note written after `since` (the customer has not been told it yet).
pub fn note_since(conn: &Connection, id: i64, since: Option<&str>) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT text FROM notes WHERE incident_id = ?1 AND (?2 IS NULL OR at > ?2)
             ORDER BY id DESC LIMIT 1",
            params![id, since],
            |r| r.get(0),
        )
        .optional()?)
}

/// The newest note at all, for status mails and `template render`.
pub fn latest_note(conn: &Connection, id: i64) -> Result<Option<String>> {
    note_since(conn, id, None)
}

pub fn add_tag(conn: &Connection, id: i64, tag: &str, now: DateTime<Utc>) -> Result<bool> {
    Ok(conn.execute(
        "INSERT OR IGNORE INTO tags (incident_id, tag, at) VALUES (?1, ?2, ?3)",
        params![id, tag, ts(now)],
    )? > 0)
}

/// A customer's incidents opened since `since`.
pub fn customer_incidents_since(
    conn: &Connection,
    customer: &str,
    since: DateTime<Utc>,
) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM incidents WHERE customer_address = ?1 AND opened_at >= ?2",
        params![customer, ts(since)],
        |r| r.get(0),
    )?)
}

pub fn mark_recurring(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE incidents SET recurring = 1 WHERE id = ?1 AND recurring = 0",
        [id],
    )? > 0)
}

pub fn set_previous_incident(conn: &Connection, id: i64, previous: i64) -> Result<()> {
    conn.execute(
        "UPDATE incidents SET previous_incident = ?2 WHERE id = ?1",
        params![id, previous],
    )?;
    Ok(())
}

pub struct Resolution<'a> {
    pub root_cause: &'a str,
    pub prevention: &'a str,
    pub compensation: Option<&'a str>,
}

pub fn set_resolved(
    conn: &Connection,
    id: i64,
    resolution: &Resolution<'_>,
    check_back_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "UPDATE incidents SET state = 'resolved', resolved_at = ?2, check_back_at = ?3,
             close_at = NULL, next_update_at = NULL, root_cause = ?4, prevention = ?5,
             compensation = ?6, updated_at = ?2
         WHERE id = ?1",
        params![
            id,
            ts(now),
            ts(check_back_at),
            resolution.root_cause,
            resolution.prevention,
            resolution.compensation
        ],
    )?;
    Ok(())
}

pub fn set_check_back(
    conn: &Connection,
    id: i64,
    check_back_at: Option<DateTime<Utc>>,
    close_at: Option<DateTime<Utc>>,
) -> Result<()> {
    conn.execute(
        "UPDATE incidents SET check_back_at = ?2, close_at = ?3 WHERE id = ?1",
        params![id, check_back_at.map(ts), close_at.map(ts)],
    )?;
    Ok(())
}

pub fn set_escalated(conn: &Connection, id: i64, now: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "UPDATE incidents SET escalated_at = ?2 WHERE id = ?1",
        params![id, ts(now)],
    )?;
    Ok(())
}

/// Records a promised update.
pub fn record_promise(
    conn: &Connection,
    id: i64,
    made_by: &str,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    // A mail that repeats a promise already open (a status answer) adds no second row.
    conn.execute(
        "INSERT INTO promises (incident_id, made_at, due_at, made_by)
         SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (
             SELECT 1 FROM promises WHERE incident_id = ?1 AND due_at = ?3
                AND kept_at IS NULL AND breached_at IS NULL)",
        params![id, ts(now), ts(due), made_by],
    )?;
    Ok(())
}

/// Settles the incident's open promises as an update goes out now: kept if their time has not
/// passed, breached if it has. Returns how many were breached.
pub fn settle_promises(conn: &Connection, id: i64, now: DateTime<Utc>) -> Result<usize> {
    let breached = conn.execute(
        "UPDATE promises SET breached_at = ?2
         WHERE incident_id = ?1 AND kept_at IS NULL AND breached_at IS NULL AND due_at < ?2",
        params![id, ts(now)],
    )?;
    conn.execute(
        "UPDATE promises SET kept_at = ?2
         WHERE incident_id = ?1 AND kept_at IS NULL AND breached_at IS NULL",
        params![id, ts(now)],
    )?;
    Ok(breached)
}

/// When the last promise to this customer was made (what notes are "new" against).
pub fn last_promise_made(conn: &Connection, id: i64) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT MAX(made_at) FROM promises WHERE incident_id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

/// Open incidents whose next update is due by `until`, soonest first.
pub fn due_updates(conn: &Connection, until: DateTime<Utc>, limit: usize) -> Result<Vec<i64>> {
    ids(
        conn,
        "SELECT id FROM incidents WHERE state = 'open' AND next_update_at <= ?1
         ORDER BY next_update_at LIMIT ?2",
        until,
        limit,
    )
}

pub fn due_check_backs(conn: &Connection, until: DateTime<Utc>, limit: usize) -> Result<Vec<i64>> {
    ids(
        conn,
        "SELECT id FROM incidents WHERE state = 'resolved' AND check_back_at <= ?1
         ORDER BY check_back_at LIMIT ?2",
        until,
        limit,
    )
}

pub fn due_closes(conn: &Connection, until: DateTime<Utc>, limit: usize) -> Result<Vec<i64>> {
    ids(
        conn,
        "SELECT id FROM incidents WHERE state = 'resolved' AND close_at <= ?1
         ORDER BY close_at LIMIT ?2",
        until,
        limit,
    )
}

fn ids(conn: &Connection, sql: &str, until: DateTime<Utc>, limit: usize) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map(
            params![ts(until), i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(rows)
}

/// How a new mail about an incident threads: In-Reply-To the newest message of the thread, and
/// References from the customer's first message through our recent mail (at most 10).
pub fn thread_of(conn: &Connection, id: i64) -> Result<(Option<String>, Vec<String>)> {
    let mut stmt = conn.prepare_cached(
        "SELECT message_id FROM (
             SELECT message_id, recorded_at AS at, id FROM messages
              WHERE incident_id = ?1 AND direction = 'in' AND message_id IS NOT NULL
                AND class = 'human'
             UNION ALL
             SELECT message_id, created_at AS at, id FROM outbox WHERE incident_id = ?1)
         ORDER BY at, id",
    )?;
    let all = stmt
        .query_map([id], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    let mut refs: Vec<String> = Vec::new();
    if let Some(first) = all.first() {
        refs.push(first.clone());
    }
    let tail = all.len().saturating_sub(9);
    for id in all.iter().skip(tail.max(1)) {
        if !refs.contains(id) {
            refs.push(id.clone());
        }
    }
    Ok((all.last().cloned(), refs))
}

pub fn thread_root_of(conn: &Connection, id: i64) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT root FROM thread_indexes WHERE incident_id = ?1 LIMIT 1",
            [id],
            |r| r.get(0),
        )
        .optional()?)
}

/// Open incidents with no staff note since `before` (or none at all since they opened before
/// it) and not escalated yet, through the `incidents_quiet` index.
pub fn quiet_incidents(conn: &Connection, before: DateTime<Utc>, limit: usize) -> Result<Vec<i64>> {
    ids(
        conn,
        "SELECT id FROM incidents
         WHERE state = 'open' AND escalated_at IS NULL AND COALESCE(last_note_at, opened_at) <= ?1
         ORDER BY COALESCE(last_note_at, opened_at) LIMIT ?2",
        before,
        limit,
    )
}

/// Incidents marked recurring, newest first, for `followupd report recurring`.
pub fn recurring_incidents(conn: &Connection) -> Result<Vec<Incident>> {
    let sql = format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.recurring = 1 ORDER BY i.id DESC"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([], incident_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Incidents with `tag` opened since `since`.
pub fn incidents_tagged_since(
    conn: &Connection,
    tag: &str,
    since: DateTime<Utc>,
) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id FROM tags t JOIN incidents i ON i.id = t.incident_id
         WHERE t.tag = ?1 AND i.opened_at >= ?2 ORDER BY i.id",
    )?;
    let rows = stmt
        .query_map(params![tag, ts(since)], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(rows)
}

/// One mail (or step) the daemon will take, for `followupd upcoming`.
#[derive(Debug, Clone, Serialize)]
pub struct Upcoming {
    pub at: String,
    /// progress | check_back | close | a queued mail's kind
    pub what: String,
    pub incident: i64,
    pub recipient: Option<String>,
    pub detail: String,
}

/// Everything due by `until`, soonest first: queued mail, progress updates (sent `lead` before
/// their promised time), check-backs and closes. Each part reads through its partial index.
pub fn upcoming(
    conn: &Connection,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    lead: chrono::Duration,
) -> Result<Vec<Upcoming>> {
    let mut stmt = conn.prepare(
        "SELECT at, what, incident, recipient, detail FROM (
             SELECT next_attempt_at AS at, kind AS what, incident_id AS incident,
                    recipient, 'queued, attempt ' || (attempts + 1) AS detail
               FROM outbox WHERE state = 'queued' AND next_attempt_at <= ?2
             UNION ALL
             SELECT next_update_at, 'progress', id, customer_address,
                    'promised for ' || next_update_at
               FROM incidents WHERE state = 'open' AND next_update_at <= ?3
             UNION ALL
             SELECT check_back_at, 'check_back', id, customer_address, 'after resolution'
               FROM incidents WHERE state = 'resolved' AND check_back_at <= ?2
             UNION ALL
             SELECT close_at, 'close', id, NULL, 'no mail; closes unless the customer replies'
               FROM incidents WHERE state = 'resolved' AND close_at <= ?2)
         ORDER BY at, incident",
    )?;
    // Progress goes out `lead` before the promise, so promises up to until + lead are due.
    let rows = stmt
        .query_map(params![ts(now), ts(until), ts(until + lead)], |r| {
            Ok(Upcoming {
                at: r.get(0)?,
                what: r.get(1)?,
                incident: r.get(2)?,
                recipient: r.get(3)?,
                detail: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .map(|mut u| {
            if u.what == "progress" {
                // Shown at the time it will really go out.
                if let Ok(promised) = parse_ts(&u.at) {
                    u.at = ts((promised - lead).max(now));
                }
            } else if let Ok(t) = parse_ts(&u.at) {
                u.at = ts(t.max(now));
            }
            u
        })
        .collect::<Vec<_>>())
    .map(|mut list| {
        list.sort_by(|a, b| a.at.cmp(&b.at).then(a.incident.cmp(&b.incident)));
        list
    })
}

// --- Event log ---------------------------------------------------------------------------------

/// Appends to the event log. The table refuses UPDATE and DELETE (see the migration).
pub fn log_event(
    conn: &Connection,
    now: DateTime<Utc>,
    incident: Option<i64>,
    message: Option<i64>,
    kind: &str,
    detail: &str,
) -> Result<()> {
    log_event_by(conn, now, incident, message, kind, "followupd", detail)
}

/// An event caused by a person (`--by`), not by the daemon.
pub fn log_event_by(
    conn: &Connection,
    now: DateTime<Utc>,
    incident: Option<i64>,
    message: Option<i64>,
    kind: &str,
    actor: &str,
    detail: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO events (at, incident_id, message_row, kind, actor, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![ts(now), incident, message, kind, actor, detail],
    )?;
    Ok(())
}

// --- Outbox ------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct NewOutgoing<'a> {
    pub incident: i64,
    pub kind: &'a str,
    pub caused_by: Option<i64>,
    pub message_id: &'a str,
    pub recipient: &'a str,
    pub recipient_name: Option<&'a str>,
    pub in_reply_to: Option<&'a str>,
    pub references: &'a str,
    pub context: &'a str,
    pub raw: Option<&'a [u8]>,
    pub render_error: Option<&'a str>,
    pub thread_index: Option<&'a str>,
}

pub fn enqueue(conn: &Connection, out: &NewOutgoing<'_>, now: DateTime<Utc>) -> Result<i64> {
    conn.execute(
        "INSERT INTO outbox (incident_id, kind, caused_by, message_id, recipient, recipient_name,
             in_reply_to, references_, context, raw, last_error, state, attempts,
             next_attempt_at, created_at, thread_index)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'queued', 0, ?12, ?12, ?13)",
        params![
            out.incident,
            out.kind,
            out.caused_by,
            out.message_id,
            out.recipient,
            out.recipient_name,
            out.in_reply_to,
            out.references,
            out.context,
            out.raw,
            out.render_error,
            ts(now),
            out.thread_index,
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// A queued mail, as the sender needs it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: i64,
    pub incident: i64,
    pub kind: String,
    pub message_id: String,
    pub recipient: String,
    pub recipient_name: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: String,
    pub context: String,
    pub raw: Option<Vec<u8>>,
    pub attempts: i64,
    pub thread_index: Option<String>,
}

pub fn due_outgoing(conn: &Connection, now: DateTime<Utc>, limit: usize) -> Result<Vec<Outgoing>> {
    let sql = format!(
        "SELECT {OUTGOING_COLUMNS} FROM outbox
         WHERE state = 'queued' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(params![ts(now), limit as i64], outgoing_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The columns `outgoing_row` reads, in its order.
const OUTGOING_COLUMNS: &str = "id, incident_id, kind, message_id, recipient, recipient_name,
    in_reply_to, references_, context, raw, attempts, thread_index";

fn outgoing_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Outgoing> {
    Ok(Outgoing {
        id: r.get(0)?,
        incident: r.get(1)?,
        kind: r.get(2)?,
        message_id: r.get(3)?,
        recipient: r.get(4)?,
        recipient_name: r.get(5)?,
        in_reply_to: r.get(6)?,
        references: r.get(7)?,
        context: r.get(8)?,
        raw: r.get(9)?,
        attempts: r.get(10)?,
        thread_index: r.get(11)?,
    })
}

/// When the next queued mail falls due, so the sender can sleep until then.
pub fn next_due(conn: &Connection) -> Result<Option<DateTime<Utc>>> {
    let next: Option<String> = conn.query_row(
        "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'queued'",
        [],
        |r| r.get(0),
    )?;
    next.as_deref().map(parse_ts).transpose()
}

pub fn queued_count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM outbox WHERE state = 'queued'",
        [],
        |r| r.get(0),
    )?)
}

pub fn store_rendered(conn: &Connection, outbox_id: i64, raw: &[u8]) -> Result<()> {
    conn.execute(
        "UPDATE outbox SET raw = ?2 WHERE id = ?1 AND raw IS NULL",
        params![outbox_id, raw],
    )?;
    Ok(())
}

fn record_attempt(
    conn: &Connection,
    outbox_id: i64,
    outcome: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO send_attempts (outbox_id, at, outcome, detail) VALUES (?1, ?2, ?3, ?4)",
        params![outbox_id, ts(now), outcome, detail],
    )?;
    Ok(())
}

/// The mail was accepted by the SMTP server: mark it sent and log it as an outgoing message,
/// all in one transaction.
pub fn mark_sent(
    conn: &mut Connection,
    out: &Outgoing,
    raw: &[u8],
    from: &str,
    reply: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let tx = conn.transaction()?;
    record_sent(&tx, out, raw, from, reply, now)?;
    tx.commit()?;
    Ok(())
}

/// Marks a mail sent inside the caller's transaction. Idempotent: a mail already confirmed
/// (by the relay's answer or by its receipt copy, whichever came first) is left alone.
/// Returns whether this call did the marking.
pub fn record_sent(
    conn: &Connection,
    out: &Outgoing,
    raw: &[u8],
    from: &str,
    reply: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE outbox SET state = 'sent', sent_at = ?2, attempts = attempts + 1, last_error = NULL
         WHERE id = ?1 AND state IN ('queued', 'sending')",
        params![out.id, ts(now)],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    record_attempt(conn, out.id, "sent", reply, now)?;
    let sha = sha256_hex(raw);
    let subject = subject_of(raw);
    let message = insert_message(
        conn,
        &NewMessage {
            direction: "out",
            incident: Some(out.incident),
            message_id: Some(&out.message_id),
            from_addr: Some(from),
            to_addr: Some(&out.recipient),
            subject: subject.as_deref(),
            in_reply_to: out.in_reply_to.as_deref(),
            references: Some(&out.references),
            class: &out.kind,
            sha256: &sha,
            raw,
            ..NewMessage::default()
        },
        None,
        now,
    )?;
    log_event(
        conn,
        now,
        Some(out.incident),
        Some(message),
        "mail_sent",
        &format!("{} to {} accepted: {reply}", out.kind, out.recipient),
    )?;
    Ok(true)
}

/// Records that these mails are being handed to the relay. Committed before the first byte is
/// sent, so a daemon that dies mid-send leaves a trace of exactly which mails were in flight.
pub fn mark_sending(conn: &mut Connection, ids: &[i64]) -> Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE outbox SET state = 'sending' WHERE id = ?1 AND state = 'queued'",
        )?;
        for id in ids {
            stmt.execute([id])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// At start: mails left 'sending' by a daemon that died may or may not have been accepted by
/// the relay. They go back to the queue, due only after `resend_at`, giving their receipt
/// copy time to arrive and confirm them; only a mail without a receipt is sent again.
pub fn hold_in_doubt(
    conn: &mut Connection,
    resend_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<usize> {
    let tx = conn.transaction()?;
    let rows: Vec<(i64, i64, String, String)> = {
        let mut stmt = tx.prepare(
            "SELECT id, incident_id, kind, recipient FROM outbox WHERE state = 'sending'",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows
    };
    for (id, incident, kind, recipient) in &rows {
        tx.execute(
            "UPDATE outbox SET state = 'queued', next_attempt_at = ?2,
                 last_error = 'in doubt: in flight when followupd stopped; waiting for its receipt'
             WHERE id = ?1",
            params![id, ts(resend_at)],
        )?;
        log_event(
            &tx,
            now,
            Some(*incident),
            None,
            "mail_in_doubt",
            &format!(
                "{kind} to {recipient} was in flight when followupd stopped; resent at {} unless its receipt arrives first",
                ts(resend_at)
            ),
        )?;
    }
    tx.commit()?;
    Ok(rows.len())
}

/// A queued or in-flight mail with this Message-ID, if it is one of ours.
pub fn unconfirmed_by_message_id(conn: &Connection, message_id: &str) -> Result<Option<Outgoing>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {OUTGOING_COLUMNS} FROM outbox
                 WHERE message_id = ?1 AND state IN ('queued', 'sending')"
            ),
            [message_id],
            outgoing_row,
        )
        .optional()?)
}

/// A mail we queued, found by its Message-ID (for bounces).
#[derive(Debug, Clone)]
pub struct SentMail {
    pub incident: i64,
    pub kind: String,
    pub recipient: String,
}

pub fn sent_mail_by_message_id(conn: &Connection, message_id: &str) -> Result<Option<SentMail>> {
    Ok(conn
        .query_row(
            "SELECT incident_id, kind, recipient FROM outbox WHERE message_id = ?1",
            [message_id],
            |r| {
                Ok(SentMail {
                    incident: r.get(0)?,
                    kind: r.get(1)?,
                    recipient: r.get(2)?,
                })
            },
        )
        .optional()?)
}

pub fn is_outbox_message_id(conn: &Connection, message_id: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM outbox WHERE message_id = ?1",
            [message_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// A failed attempt. `retry_at` None means the failure is permanent and the mail is given up.
pub fn mark_failed(
    conn: &mut Connection,
    out: &Outgoing,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    let tx = conn.transaction()?;
    match retry_at {
        Some(at) => {
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3,
                     state = 'queued'
                 WHERE id = ?1",
                params![out.id, error, ts(at)],
            )?;
            record_attempt(&tx, out.id, "retry", error, now)?;
        }
        None => {
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, state = 'failed'
                 WHERE id = ?1",
                params![out.id, error],
            )?;
            record_attempt(&tx, out.id, "failed", error, now)?;
            log_event(
                &tx,
                now,
                Some(out.incident),
                None,
                "mail_failed",
                &format!(
                    "{} to {} rejected permanently: {error}",
                    out.kind, out.recipient
                ),
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn sha2_digest(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

/// The decoded Subject of a message we composed ourselves (for the log).
fn subject_of(raw: &[u8]) -> Option<String> {
    mail_parser::MessageParser::default()
        .parse_headers(raw)
        .and_then(|m| m.subject().map(str::to_string))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::secret::to_hex(&sha2_digest(bytes))
}

// --- Timeline (for `incident show`) ------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct TimelineMessage {
    pub id: i64,
    pub direction: String,
    pub at: String,
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub subject: Option<String>,
    pub class: String,
    pub class_reason: Option<String>,
    pub size: i64,
    pub incident: Option<i64>,
    pub headers_only: bool,
    pub attachments: Vec<AttachmentRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentRow {
    pub name: Option<String>,
    pub content_type: String,
    pub size: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineEvent {
    pub at: String,
    pub kind: String,
    pub actor: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineOutgoing {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub recipient: String,
    pub message_id: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub sent_at: Option<String>,
}

const TIMELINE_COLUMNS: &str = "id, direction, recorded_at, message_id, from_addr, to_addr,
    subject, class, class_reason, size, incident_id, headers_only";

fn timeline_message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TimelineMessage> {
    Ok(TimelineMessage {
        id: r.get(0)?,
        direction: r.get(1)?,
        at: r.get(2)?,
        message_id: r.get(3)?,
        from: r.get(4)?,
        to: r.get(5)?,
        subject: r.get(6)?,
        class: r.get(7)?,
        class_reason: r.get(8)?,
        size: r.get(9)?,
        incident: r.get(10)?,
        headers_only: r.get(11)?,
        attachments: Vec::new(),
    })
}

/// Fills in each message's attachment list.
fn with_attachments(
    conn: &Connection,
    mut rows: Vec<TimelineMessage>,
) -> Result<Vec<TimelineMessage>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, content_type, size FROM attachments WHERE message_row = ?1 ORDER BY position",
    )?;
    for row in &mut rows {
        row.attachments = stmt
            .query_map([row.id], |r| {
                Ok(AttachmentRow {
                    name: r.get(0)?,
                    content_type: r.get(1)?,
                    size: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
    }
    Ok(rows)
}

/// The message log filtered by class, newest first, for `followupd messages`.
pub fn messages_by_class(
    conn: &Connection,
    class: Option<&str>,
    limit: usize,
) -> Result<Vec<TimelineMessage>> {
    let sql = format!(
        "SELECT {TIMELINE_COLUMNS} FROM messages WHERE (?1 IS NULL OR class = ?1)
         ORDER BY id DESC LIMIT ?2"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(
            params![class, i64::try_from(limit).unwrap_or(i64::MAX)],
            timeline_message_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    with_attachments(conn, rows)
}

pub fn incident_messages(conn: &Connection, incident: i64) -> Result<Vec<TimelineMessage>> {
    let sql = format!(
        "SELECT {TIMELINE_COLUMNS} FROM messages WHERE incident_id = ?1 ORDER BY recorded_at, id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([incident], timeline_message_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    with_attachments(conn, rows)
}

pub fn incident_events(conn: &Connection, incident: i64) -> Result<Vec<TimelineEvent>> {
    let mut stmt = conn.prepare(
        "SELECT at, kind, actor, COALESCE(detail, '') FROM events
         WHERE incident_id = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([incident], |r| {
            Ok(TimelineEvent {
                at: r.get(0)?,
                kind: r.get(1)?,
                actor: r.get(2)?,
                detail: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn incident_outbox(conn: &Connection, incident: i64) -> Result<Vec<TimelineOutgoing>> {
    let mut stmt = conn.prepare(
        "SELECT id, kind, state, recipient, message_id, attempts, next_attempt_at, last_error,
                sent_at
         FROM outbox WHERE incident_id = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([incident], |r| {
            Ok(TimelineOutgoing {
                id: r.get(0)?,
                kind: r.get(1)?,
                state: r.get(2)?,
                recipient: r.get(3)?,
                message_id: r.get(4)?,
                attempts: r.get(5)?,
                next_attempt_at: r.get(6)?,
                last_error: r.get(7)?,
                sent_at: r.get(8)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open(&dir.path().join("state/f.db")).expect("open");
        (dir, conn)
    }

    #[test]
    fn the_event_log_is_append_only() {
        let (_dir, conn) = db();
        log_event(&conn, Utc::now(), None, None, "test", "x").expect("insert");
        assert!(conn.execute("UPDATE events SET detail = 'y'", []).is_err());
        assert!(conn.execute("DELETE FROM events", []).is_err());
    }

    #[test]
    fn an_incident_gets_exactly_one_acknowledgement_row() {
        let (_dir, conn) = db();
        let now = Utc::now();
        let id = create_incident(
            &conn,
            &NewIncident {
                subject: "s",
                summary: "",
                customer_address: "a@b.c",
                customer_name: None,
                cadence: Duration::from_secs(60),
                next_update_at: now,
            },
            |n| format!("FU-{n}-x"),
            now,
        )
        .expect("incident");
        let out = |mid: &'static str| NewOutgoing {
            incident: id,
            kind: "acknowledgement",
            caused_by: None,
            message_id: mid,
            recipient: "a@b.c",
            recipient_name: None,
            in_reply_to: None,
            references: "",
            context: "{}",
            raw: None,
            render_error: None,
            thread_index: None,
        };
        enqueue(&conn, &out("m1@x"), now).expect("first");
        assert!(enqueue(&conn, &out("m2@x"), now).is_err());
    }

    #[test]
    fn reopening_applies_no_migration_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.db");
        drop(open(&path).expect("first"));
        let conn = open(&path).expect("second");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(version, 3);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
    }
}
