//! SQLite: the source of truth and the written record. SQL lives here and nowhere else, and
//! nothing here decides anything.
//!
//! Every function takes a `&Connection` so callers decide the transaction: intake wraps one IMAP
//! batch (messages, incidents, outbox rows, checkpoint) in a single transaction, which is what
//! makes a crash at any point safe: either all of it happened, or none of it did.
//!
//! One file per thing kept: [`messages`] (the message log and threading index), [`incidents`]
//! (incidents, participants, notes, tags), [`outbox`] (mail to send, suppressed mail,
//! undeliverable addresses), [`promises`] (the ledger), [`events`] (the append-only log),
//! [`checkpoints`] (IMAP progress). Types cross the boundary once, here: the core's enums and
//! newtypes are read and written through `ToSql`/`FromSql`, and times through [`Ts`].

/// SQL whose states are written as the enums spell them: `{State::Open}` is `'open'`,
/// `{OutboxState::Queued}` is `'queued'`, `{EventKind::Closed}` is `'closed'`. Still literal SQL (SQLite matches a partial index's
/// `WHERE state = 'open'` only against a literal), built once per statement.
macro_rules! sql {
    ($text:expr) => {{
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| $crate::store::with_states($text));
        SQL.as_str()
    }};
}

pub mod checkpoints;
pub mod erasure;
pub mod events;
pub mod incidents;
pub mod messages;
pub mod outbox;
pub mod promises;
pub mod satisfaction;
pub mod stats;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

use crate::clock::{parse_stamp, stamp};
use crate::incident::{
    Actor, EventKind, IncidentNo, MailKind, MessageRow, NoteVisibility, Role, State,
};
use crate::mail::{MessageClass, Trust};

pub use incidents::{IncidentListing, NewIncident};
pub use messages::{ImapOrigin, NewMessage, TimelineMessage};
pub use outbox::{OutboxState, Outgoing, Undeliverable};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: cannot open")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database {path}: cannot create its directory")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("database migration failed")]
    Migrate(#[from] rusqlite_migration::Error),
    #[error("database error")]
    Sql(#[from] rusqlite::Error),
    #[error("database work failed unexpectedly: {0}")]
    Panicked(String),
}

impl StoreError {
    /// Whether the database is out of space or cannot be written (SQLITE_FULL, read-only,
    /// I/O errors): a condition that clears when an admin frees space, not a bug.
    pub fn is_disk_trouble(&self) -> bool {
        let code = match self {
            StoreError::Sql(rusqlite::Error::SqliteFailure(e, _))
            | StoreError::Open {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } => e.code,
            _ => return false,
        };
        matches!(
            code,
            rusqlite::ErrorCode::DiskFull
                | rusqlite::ErrorCode::ReadOnly
                | rusqlite::ErrorCode::SystemIoFailure
                | rusqlite::ErrorCode::CannotOpen
        )
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Schema versions, applied in order and recorded in `user_version`. Never edit a released
/// migration: add a new one.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/001_spine.sql")),
        M::up(include_str!("../../migrations/002_safe_intake.sql")),
        M::up(include_str!("../../migrations/003_promises.sql")),
        M::up(include_str!("../../migrations/004_one_vocabulary.sql")),
        M::up(include_str!("../../migrations/005_staff.sql")),
        M::up(include_str!("../../migrations/006_trust.sql")),
        M::up(include_str!("../../migrations/007_raw_apart.sql")),
        M::up(include_str!("../../migrations/008_sender_heals.sql")),
        M::up(include_str!("../../migrations/009_erasure.sql")),
        M::up(include_str!("../../migrations/010_careful_promises.sql")),
        M::up(include_str!("../../migrations/011_customer_index.sql")),
        M::up(include_str!("../../migrations/012_held_replies.sql")),
        M::up(include_str!("../../migrations/013_faults.sql")),
        M::up(include_str!("../../migrations/014_waiting_for.sql")),
        M::up(include_str!("../../migrations/015_what_they_said.sql")),
        M::up(include_str!("../../migrations/016_signed_notes.sql")),
        M::up(include_str!("../../migrations/017_on_hold.sql")),
        M::up(include_str!("../../migrations/018_team_alarm.sql")),
        M::up(include_str!("../../migrations/019_digest_lists.sql")),
        M::up(include_str!("../../migrations/020_released.sql")),
        M::up(include_str!("../../migrations/021_digest_listing.sql")),
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
    if !path.exists() {
        create(path)?;
    }
    // SQLite creates the WAL and shared-memory files with the database's own mode: a database
    // others can read (an older version, a copy made by hand) would leak through all three.
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        let file = std::path::PathBuf::from(name);
        match crate::files::make_private(&file) {
            Ok(Some(old)) => tracing::warn!(
                file = %file.display(),
                "the database file was readable by everyone (mode {old:04o}); made private"
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(
                file = %file.display(),
                error = %e,
                "the database file is readable by everyone and could not be made private: chmod o-rwx it"
            ),
        }
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
    // Intake, the scheduler, the sender and the CLI write concurrently. A deferred transaction
    // that reads and then writes fails at once with "database is locked" when another
    // connection committed meanwhile (WAL cannot upgrade a stale snapshot, and the busy
    // timeout does not apply); taking the write lock at BEGIN waits its turn instead.
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    Ok(conn)
}

/// A new database appears whole or not at all: it is built under a temporary name and linked
/// into place, so a CLI command or a second process never finds it without its tables.
fn create(path: &Path) -> Result<()> {
    let shown = path.display().to_string();
    let temporary = path.with_extension(format!("new-{}", std::process::id()));
    let opened = |source| StoreError::Open {
        path: shown.clone(),
        source,
    };
    let dir_error = |source| StoreError::Dir {
        path: shown.clone(),
        source,
    };
    // Private from the first byte: created empty with the right mode, then filled.
    let mode = crate::files::new_file_mode(path.parent().unwrap_or(Path::new(".")), 0o060);
    std::fs::write(&temporary, b"").map_err(dir_error)?;
    crate::files::set_mode(&temporary, mode).map_err(dir_error)?;
    {
        let mut conn = Connection::open(&temporary).map_err(opened)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(opened)?;
        migrations().to_latest(&mut conn)?;
        // Closing checkpoints the WAL into the file, so the file alone is the database. SQLite
        // gives the WAL and shared-memory files the database file's mode.
    }
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(()),
        // Someone else created it first: theirs is as good as ours.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(dir_error(source)),
    }
}

/// `text` with each `{State::…}`, `{OutboxState::…}` and `{EventKind::…}` replaced by that state's spelling,
/// quoted (see [`sql!`]). A placeholder that names no state is left as written, and a test
/// below makes sure no statement has one.
pub(crate) fn with_states(text: &str) -> String {
    let incident = State::ALL.map(|s| (format!("{{State::{s:?}}}"), s.as_str()));
    let outbox = outbox::OutboxState::ALL.map(|s| (format!("{{OutboxState::{s:?}}}"), s.as_str()));
    let events = EventKind::ALL.map(|k| (format!("{{EventKind::{k:?}}}"), k.as_str()));
    incident
        .iter()
        .chain(outbox.iter())
        .chain(events.iter())
        .fold(text.to_string(), |sql, (placeholder, spelling)| {
            sql.replace(placeholder.as_str(), &format!("'{spelling}'"))
        })
}

/// A private in-memory database with the full schema, for `probe` (fuzzing, fixtures).
pub fn open_in_memory() -> Result<Connection> {
    let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
        path: ":memory:".into(),
        source,
    })?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    statements(&conn)?;
    migrations().to_latest(&mut conn)?;
    Ok(conn)
}

/// A fresh in-memory database copied from `template` (one made by `open_in_memory`): for
/// property tests that start thousands of stores, where running every migration each time
/// would be most of the work.
#[cfg(test)]
pub fn open_in_memory_like(template: &Connection) -> Result<Connection> {
    let mut conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
        path: ":memory:".into(),
        source,
    })?;
    rusqlite::backup::Backup::new(template, &mut conn)?.run_to_completion(
        i32::MAX,
        Duration::ZERO,
        None,
    )?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    statements(&conn)?;
    Ok(conn)
}

/// Opens a private copy of the database, in memory, for `upcoming`: its preview writes a
/// day's or a week's worth of decisions and throws them away. Done on the database itself, it
/// would hold the write lock all that time, and intake, the sender and every CLI action would
/// wait behind it; the copy is read under a read transaction (WAL: writers go on meanwhile).
pub fn open_for_preview(path: &Path) -> Result<Connection> {
    let source = open(path)?;
    let mut copy = Connection::open_in_memory().map_err(|source| StoreError::Open {
        path: ":memory:".into(),
        source,
    })?;
    // All pages in one step: one consistent snapshot, read in one read transaction.
    rusqlite::backup::Backup::new(&source, &mut copy)?.run_to_completion(
        i32::MAX,
        Duration::ZERO,
        None,
    )?;
    drop(source);
    copy.pragma_update(None, "cache_size", -64 * 1024)?;
    // Nothing the preview writes is kept, so checking its references buys nothing.
    copy.pragma_update(None, "foreign_keys", "OFF")?;
    statements(&copy)?;
    Ok(copy)
}

/// Opens the database for the outbox sender. Its commits record what the relay already
/// accepted, so they must be quick: every millisecond between the relay's `250` and this commit
/// is a window in which a crash makes the mail go out twice. WAL with synchronous=NORMAL is
/// durable against a process crash (the case that matters here) and skips the fsync; only a
/// power cut could lose the mark, and then the mail is resent with the same Message-ID.
pub fn open_for_sending(path: &Path) -> Result<Connection> {
    let conn = open(path)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // It reads each queued mail once and writes small rows: a small page cache is enough.
    conn.pragma_update(None, "cache_size", -512)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // WAL lets the CLI read while the daemon writes. synchronous=FULL: a committed intake batch
    // must survive a power cut, because the IMAP message may be moved away right after.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(Duration::from_secs(30))?;
    statements(conn)
}

/// How every connection prepares its statements. Intake, the scheduler and the sender each
/// cycle through a few dozen; the default cache of 16 would re-parse them on every call. And
/// a cached statement must stay prepared: without the query planner stability guarantee,
/// SQLite re-parses a statement on every run whose bound value it compares with a partial
/// index's condition (`next_update_at <= ?1` against `WHERE state = 'open'`), which made
/// every due query of every tick a fresh parse.
fn statements(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(128);
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// A connection used from async code: each call runs on tokio's blocking pool, so SQLite work
/// (a batch commit with fsync, a large query) never stalls the reactor thread that drives IMAP,
/// SMTP and the timers. The connection is reopened if a call panicked while holding it.
pub struct Handle {
    path: std::path::PathBuf,
    sending: bool,
    conn: Option<Connection>,
}

impl Handle {
    /// A handle opening connections like [`open`] (or [`open_for_sending`]).
    pub fn new(path: &Path, sending: bool) -> Result<Handle> {
        let conn = if sending {
            open_for_sending(path)?
        } else {
            open(path)?
        };
        Ok(Handle {
            path: path.to_path_buf(),
            sending,
            conn: Some(conn),
        })
    }

    /// Runs `work` on the connection, off the reactor thread.
    pub async fn run<T, F>(&mut self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None if self.sending => open_for_sending(&self.path)?,
            None => open(&self.path)?,
        };
        let joined = tokio::task::spawn_blocking(move || {
            let result = work(&mut conn);
            (conn, result)
        })
        .await;
        match joined {
            Ok((conn, result)) => {
                self.conn = Some(conn);
                result
            }
            // The work panicked: its transaction was rolled back with the connection; the next
            // call opens a fresh one.
            Err(e) => Err(StoreError::Panicked(e.to_string())),
        }
    }
}

/// Runs `work` under a savepoint of the caller's transaction: undone alone if it fails (the
/// rest of the transaction goes on), kept if it succeeds.
pub fn in_savepoint<T, E: From<StoreError>>(
    conn: &Connection,
    work: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let sql = |s: &str| -> Result<()> {
        conn.prepare_cached(s)?.execute([])?;
        Ok(())
    };
    sql("SAVEPOINT step")?;
    match work() {
        Ok(value) => {
            sql("RELEASE step")?;
            Ok(value)
        }
        Err(e) => {
            sql("ROLLBACK TO step")?;
            sql("RELEASE step")?;
            Err(e)
        }
    }
}

// --- The boundary: the core's types as SQLite values ------------------------------------------

/// A time as stored: fixed-width RFC 3339 UTC text ([`crate::clock::stamp`]), sortable as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ts(pub DateTime<Utc>);

impl ToSql for Ts {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(stamp(self.0)))
    }
}

impl FromSql for Ts {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        parse_stamp(text)
            .map(Ts)
            .ok_or_else(|| FromSqlError::Other(format!("`{text}` is not a timestamp").into()))
    }
}

/// Reads an optional time column.
fn ts_opt(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    Ok(r.get::<_, Option<Ts>>(i)?.map(|t| t.0))
}

fn ts_at(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    Ok(r.get::<_, Ts>(i)?.0)
}

/// A value stored by its spelling: `as_str` to write, `parse` to read.
macro_rules! spelled {
    ($ty:ty, $what:literal) => {
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                <$ty>::parse(text)
                    .ok_or_else(|| FromSqlError::Other(format!("`{text}` is not {}", $what).into()))
            }
        }
    };
}

spelled!(State, "an incident state");
spelled!(MailKind, "a kind of mail");
spelled!(EventKind, "an event kind");
spelled!(MessageClass, "a message class");
spelled!(OutboxState, "an outbox state");
spelled!(Role, "a participant role");
spelled!(NoteVisibility, "a note visibility");
spelled!(Trust, "a trust level");
spelled!(crate::incident::replies::Reading, "a check-back reading");

impl ToSql for Actor {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.name()))
    }
}

impl FromSql for Actor {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(Actor::from_name(value.as_str()?))
    }
}

macro_rules! row_id {
    ($ty:ident) => {
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.0))
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value.as_i64().map($ty)
            }
        }
    };
}

row_id!(IncidentNo);
row_id!(MessageRow);

/// A duration in whole seconds.
fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Reads rows of one column.
fn column<T: FromSql>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map(params, |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<T>>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every store source file's code (tests cut off).
    fn store_code() -> Vec<(String, String)> {
        fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
            for entry in std::fs::read_dir(dir).expect("dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("read");
                    let code = text.split("#[cfg(test)]").next().unwrap_or("");
                    // Comments may quote SQL as it reads.
                    let code: Vec<&str> = code
                        .lines()
                        .filter(|l| !l.trim_start().starts_with("//"))
                        .collect();
                    out.push((path.display().to_string(), code.join("\n")));
                }
            }
        }
        let mut out = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store"),
            &mut out,
        );
        out
    }

    #[test]
    fn states_in_sql_are_spelled_by_their_enums_and_every_placeholder_names_one() {
        assert_eq!(
            with_states("state = {State::Open} OR o.state IN ({OutboxState::Sending})"),
            "state = 'open' OR o.state IN ('sending')"
        );
        let spellings: Vec<&str> = State::ALL
            .iter()
            .map(|s| s.as_str())
            .chain(outbox::OutboxState::ALL.iter().map(|s| s.as_str()))
            .collect();
        for (file, code) in store_code() {
            for spelled in &spellings {
                for (at, _) in code.match_indices(&format!("'{spelled}'")) {
                    let before = code.get(at.saturating_sub(30)..at).unwrap_or("");
                    assert!(
                        !before.contains("state"),
                        "{file}: state '{spelled}' written by hand in SQL"
                    );
                }
            }
            for open in ["{State::", "{OutboxState::", "{EventKind::"] {
                for (at, _) in code.match_indices(open) {
                    let rest = code.get(at..).unwrap_or("");
                    let found = rest.get(..=rest.find('}').unwrap_or(0)).unwrap_or("");
                    let name = found.trim_start_matches(open).trim_end_matches('}');
                    if !name.chars().all(|c| c.is_ascii_alphabetic()) {
                        continue; // the code that builds placeholders, not one
                    }
                    assert_ne!(with_states(found), found, "{file}: {found} names nothing");
                }
            }
        }
        // The partial indexes were written once, as literals: they must still be the states'
        // spellings, or SQLite stops using them.
        let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for entry in std::fs::read_dir(migrations).expect("migrations").flatten() {
            let sql = std::fs::read_to_string(entry.path()).expect("read");
            for (at, head) in sql.match_indices("WHERE state = '") {
                let rest = sql.get(at + head.len()..).unwrap_or("");
                let spelled = rest.get(..rest.find('\'').unwrap_or(0)).unwrap_or("");
                assert!(
                    spellings.contains(&spelled),
                    "{}: an index on state '{spelled}'",
                    entry.path().display()
                );
            }
        }
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
        assert_eq!(version, 21);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_misspelt_value_in_the_database_is_an_error_not_a_guess() {
        let conn = open_in_memory().expect("db");
        let bad: rusqlite::Result<State> = conn.query_row("SELECT 'opne'", [], |r| r.get(0));
        assert!(bad.is_err());
        let good: State = conn
            .query_row("SELECT 'waiting'", [], |r| r.get(0))
            .expect("state");
        assert_eq!(good, State::Waiting);
    }
}
