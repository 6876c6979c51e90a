//! Incidents, who takes part in them, staff notes and tags, and the scheduler's due lists.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{column, secs, ts_at, ts_opt, Result, Ts};
use crate::incident::EventKind;
use crate::incident::{
    Incident, IncidentNo, MessageRow, Note, NoteVisibility, Resolution, Resolved, Role, Stage,
    State,
};
use crate::mail::facts::Fact;
use crate::mail::Trust;
use crate::thread::OpenOfTheirs;

#[derive(Debug, Clone)]
pub struct NewIncident<'a> {
    pub subject: &'a str,
    pub summary: &'a str,
    pub customer_address: &'a str,
    pub customer_name: Option<&'a str>,
    pub reply_address: &'a str,
    pub reply_name: Option<&'a str>,
    pub sender_trust: Trust,
    pub cadence: Duration,
    pub next_update_at: DateTime<Utc>,
}

/// Creates an incident; its token needs its number, so it is set right after, in the same
/// transaction.
pub fn create_incident(
    conn: &Connection,
    new: &NewIncident<'_>,
    token_for: impl Fn(IncidentNo) -> String,
    now: DateTime<Utc>,
) -> Result<IncidentNo> {
    conn.prepare_cached(sql!(
        "INSERT INTO incidents (state, subject, summary, customer_address, customer_name,
             opened_at, updated_at, cadence_secs, next_update_at, reply_address, reply_name,
             sender_trust)
         VALUES ({State::Open}, ?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![
        new.subject,
        new.summary,
        new.customer_address,
        new.customer_name,
        Ts(now),
        secs(new.cadence),
        Ts(new.next_update_at),
        new.reply_address,
        new.reply_name,
        new.sender_trust,
    ])?;
    let id = IncidentNo(conn.last_insert_rowid());
    conn.prepare_cached("UPDATE incidents SET token = ?2 WHERE id = ?1")?
        .execute(params![id, token_for(id)])?;
    Ok(id)
}

/// Where the customer writes from: their language (Content-Language) and UTC offset in
/// minutes (their Date: header), recorded as their complaint opens the incident.
pub fn set_origin(
    conn: &Connection,
    id: IncidentNo,
    lang: Option<&str>,
    utc_offset: Option<i32>,
) -> Result<()> {
    conn.prepare_cached("UPDATE incidents SET lang = ?2, customer_utc_offset = ?3 WHERE id = ?1")?
        .execute(params![id, lang, utc_offset])?;
    Ok(())
}

const INCIDENT_COLUMNS: &str = "i.id, i.token, i.state, i.subject, i.summary, i.customer_address,
    i.customer_name, i.opened_at, i.updated_at, i.cadence_secs, i.next_update_at,
    i.last_note_at, i.updates_without_news, i.resolved_at, i.check_back_at, i.close_at,
    i.root_cause, i.prevention, i.compensation, i.escalated_at, i.recurring, i.previous_incident,
    (SELECT group_concat(tag, ' ') FROM (SELECT tag FROM tags t WHERE t.incident_id = i.id
        ORDER BY tag)),
    i.updates_stopped, i.assigned_to, i.at_risk_warned_for, i.customer_wrote_at,
    i.told_customer_at, coalesce(i.reply_address, i.customer_address), i.reply_name,
    i.sender_trust, i.vouched_by, i.lang, i.customer_utc_offset, i.repeat_count,
    i.recurring_reason, i.previous_opened_at, i.check_question, i.waiting_for, i.hold_until,
    i.hold_reason, i.team_alarm_at";

/// How many columns [`INCIDENT_COLUMNS`] reads: a listing's counts come after them.
const INCIDENT_COLUMN_COUNT: usize = 42;

fn incident_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Incident> {
    let state: State = r.get(2)?;
    let stage = match state {
        State::Open => Stage::Open {
            next_update_at: ts_opt(r, 10)?,
        },
        State::Waiting => Stage::Waiting {
            waiting_for: r.get::<_, Option<String>>(38)?.unwrap_or_default(),
        },
        State::Resolved => Stage::Resolved {
            check_back_at: ts_opt(r, 14)?,
            close_at: ts_opt(r, 15)?,
        },
        State::Closed => Stage::Closed,
    };
    let resolution = match ts_opt(r, 13)? {
        Some(at) => Some(Resolved {
            at,
            resolution: Resolution {
                root_cause: r.get::<_, Option<String>>(16)?.unwrap_or_default(),
                prevention: r.get::<_, Option<String>>(17)?.unwrap_or_default(),
                compensation: r.get(18)?,
                question: r.get(37)?,
            },
        }),
        None => None,
    };
    Ok(Incident {
        number: r.get(0)?,
        token: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
        stage,
        subject: r.get(3)?,
        summary: r.get(4)?,
        customer_address: r.get(5)?,
        customer_name: r.get(6)?,
        opened_at: ts_at(r, 7)?,
        updated_at: ts_at(r, 8)?,
        cadence: Duration::from_secs(u64::try_from(r.get::<_, i64>(9)?).unwrap_or(0)),
        last_note_at: ts_opt(r, 11)?,
        updates_without_news: r.get(12)?,
        resolution,
        escalated_at: ts_opt(r, 19)?,
        recurring: r.get(20)?,
        previous_incident: r.get(21)?,
        tags: r
            .get::<_, Option<String>>(22)?
            .map(|t| t.split(' ').map(str::to_string).collect())
            .unwrap_or_default(),
        updates_stopped: r.get(23)?,
        assigned_to: r.get(24)?,
        at_risk_warned_for: ts_opt(r, 25)?,
        customer_wrote_at: ts_opt(r, 26)?,
        told_customer_at: ts_opt(r, 27)?,
        reply_address: r.get(28)?,
        reply_name: r.get(29)?,
        sender_trust: r.get(30)?,
        vouched_by: r.get(31)?,
        lang: r.get(32)?,
        customer_utc_offset: r.get(33)?,
        repeat_count: r.get(34)?,
        recurring_reason: r.get(35)?,
        previous_opened_at: ts_opt(r, 36)?,
        on_hold: match ts_opt(r, 39)? {
            Some(until) => Some(crate::incident::Hold {
                until,
                why: r.get::<_, Option<String>>(40)?.unwrap_or_default(),
            }),
            None => None,
        },
        team_alarm_at: ts_opt(r, 41)?,
    })
}

pub fn incident(conn: &Connection, number: IncidentNo) -> Result<Option<Incident>> {
    let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([number], incident_row)
        .optional()?)
}

pub fn exists(conn: &Connection, number: IncidentNo) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM incidents WHERE id = ?1")?
        .query_row([number], |_| Ok(()))
        .optional()?
        .is_some())
}

/// An incident with the counts `followupd incidents` shows.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentListing {
    #[serde(flatten)]
    pub incident: Incident,
    pub messages: i64,
    /// Mail queued and not yet sent.
    pub outbox_pending: i64,
}

fn listing(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<IncidentListing>> {
    let sql = super::with_states(&format!(
        "SELECT {INCIDENT_COLUMNS},
             (SELECT COUNT(*) FROM messages m WHERE m.incident_id = i.id),
             (SELECT COUNT(*) FROM outbox o
              WHERE o.incident_id = i.id AND o.state = {{OutboxState::Queued}})
         FROM incidents i {filter}"
    ));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(args, |r| {
            Ok(IncidentListing {
                incident: incident_row(r)?,
                messages: r.get(INCIDENT_COLUMN_COUNT)?,
                outbox_pending: r.get(INCIDENT_COLUMN_COUNT + 1)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn incidents(conn: &Connection, state: Option<State>) -> Result<Vec<IncidentListing>> {
    incidents_where(
        conn,
        &Filter {
            state,
            ..Filter::default()
        },
    )
}

/// Which incidents `followupd incidents` lists; each `None` lets all through.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub state: Option<State>,
    /// The member an incident is assigned to (address, any case).
    pub assignee: Option<String>,
    pub tag: Option<String>,
    /// Only incidents whose next promised update falls before this.
    pub due_before: Option<DateTime<Utc>>,
    /// Text in the subject, the summary, the customer's address or name, or a staff note
    /// (any case).
    pub search: Option<String>,
}

pub fn incidents_where(conn: &Connection, filter: &Filter) -> Result<Vec<IncidentListing>> {
    listing(
        conn,
        "WHERE (?1 IS NULL OR i.state = ?1)
           AND (?2 IS NULL OR i.assigned_to = ?2 COLLATE NOCASE)
           AND (?3 IS NULL OR EXISTS (SELECT 1 FROM tags t
                                      WHERE t.incident_id = i.id AND t.tag = ?3 COLLATE NOCASE))
           AND (?4 IS NULL OR (i.next_update_at IS NOT NULL AND i.next_update_at <= ?4))
           AND (?5 IS NULL OR instr(lower(i.subject || ' ' || i.summary || ' '
                                          || i.customer_address || ' '
                                          || coalesce(i.customer_name, '')), lower(?5)) > 0
                OR EXISTS (SELECT 1 FROM notes n
                           WHERE n.incident_id = i.id AND instr(lower(n.text), lower(?5)) > 0))
         ORDER BY i.id",
        params![
            filter.state,
            filter.assignee,
            filter.tag,
            filter.due_before.map(crate::clock::stamp),
            filter.search,
        ],
    )
}

/// Incidents marked recurring, newest first, for `followupd report recurring`.
pub fn recurring_incidents(conn: &Connection) -> Result<Vec<IncidentListing>> {
    listing(conn, "WHERE i.recurring = 1 ORDER BY i.id DESC", [])
}

// --- Participants --------------------------------------------------------------------------------

pub fn add_participant(
    conn: &Connection,
    incident: IncidentNo,
    address: &str,
    role: Role,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO participants (incident_id, address, role) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![incident, address, role])?;
    Ok(())
}

/// The sender's role in an incident, if they take part in it.
pub fn participant_role(
    conn: &Connection,
    incident: IncidentNo,
    address: &str,
) -> Result<Option<Role>> {
    Ok(conn
        .prepare_cached("SELECT role FROM participants WHERE incident_id = ?1 AND address = ?2")?
        .query_row(params![incident, address], |r| r.get(0))
        .optional()?)
}

// --- Changes -------------------------------------------------------------------------------------

pub fn touch(conn: &Connection, id: IncidentNo, now: DateTime<Utc>) -> Result<()> {
    conn.prepare_cached("UPDATE incidents SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![id, Ts(now)])?;
    Ok(())
}

/// Writes the fields of an incident that differ between `before` and `after` (what its
/// effects made of it, see `Effect::evolve`) in one statement; a state change also moves
/// `updated_at`. The tags, notes and the rest live in their own tables.
pub fn write_changes(
    conn: &Connection,
    id: IncidentNo,
    before: &Incident,
    after: &Incident,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut columns: Vec<&str> = Vec::new();
    let mut values: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
    macro_rules! changed {
        ($field:ident, $column:literal, $value:expr) => {
            if before.$field != after.$field {
                columns.push($column);
                values.push(Box::new($value));
            }
        };
    }
    // A stage's fields are written whole: the columns of the stages it is not are empty.
    if before.stage != after.stage {
        let (check_back_at, close_at) = after.check_back();
        columns.push("state");
        values.push(Box::new(after.state()));
        if before.state() != after.state() {
            columns.push("updated_at");
            values.push(Box::new(Ts(now)));
        }
        columns.push("next_update_at");
        values.push(Box::new(after.next_update_at().map(Ts)));
        columns.push("check_back_at");
        values.push(Box::new(check_back_at.map(Ts)));
        columns.push("close_at");
        values.push(Box::new(close_at.map(Ts)));
        columns.push("waiting_for");
        values.push(Box::new(after.waiting_for().map(str::to_string)));
    }
    changed!(cadence, "cadence_secs", secs(after.cadence));
    if before.resolution != after.resolution {
        let r = after.resolution.as_ref();
        let fields: [(&'static str, Box<dyn rusqlite::ToSql>); 5] = [
            ("resolved_at", Box::new(r.map(|r| Ts(r.at)))),
            (
                "root_cause",
                Box::new(r.map(|r| r.resolution.root_cause.clone())),
            ),
            (
                "prevention",
                Box::new(r.map(|r| r.resolution.prevention.clone())),
            ),
            (
                "compensation",
                Box::new(r.and_then(|r| r.resolution.compensation.clone())),
            ),
            (
                "check_question",
                Box::new(r.and_then(|r| r.resolution.question.clone())),
            ),
        ];
        for (column, value) in fields {
            columns.push(column);
            values.push(value);
        }
    }
    changed!(last_note_at, "last_note_at", after.last_note_at.map(Ts));
    changed!(
        updates_without_news,
        "updates_without_news",
        after.updates_without_news
    );
    changed!(escalated_at, "escalated_at", after.escalated_at.map(Ts));
    changed!(
        previous_incident,
        "previous_incident",
        after.previous_incident
    );
    changed!(updates_stopped, "updates_stopped", after.updates_stopped);
    changed!(assigned_to, "assigned_to", after.assigned_to.clone());
    changed!(team_alarm_at, "team_alarm_at", after.team_alarm_at.map(Ts));
    if before.on_hold != after.on_hold {
        columns.push("hold_until");
        values.push(Box::new(after.on_hold.as_ref().map(|h| Ts(h.until))));
        columns.push("hold_reason");
        values.push(Box::new(after.on_hold.as_ref().map(|h| h.why.clone())));
    }
    changed!(
        at_risk_warned_for,
        "at_risk_warned_for",
        after.at_risk_warned_for.map(Ts)
    );
    changed!(
        customer_wrote_at,
        "customer_wrote_at",
        after.customer_wrote_at.map(Ts)
    );
    changed!(
        told_customer_at,
        "told_customer_at",
        after.told_customer_at.map(Ts)
    );
    changed!(sender_trust, "sender_trust", after.sender_trust);
    changed!(vouched_by, "vouched_by", after.vouched_by.clone());
    changed!(lang, "lang", after.lang.clone());
    changed!(repeat_count, "repeat_count", after.repeat_count);
    changed!(recurring, "recurring", after.recurring);
    changed!(
        recurring_reason,
        "recurring_reason",
        after.recurring_reason.clone()
    );
    changed!(
        previous_opened_at,
        "previous_opened_at",
        after.previous_opened_at.map(Ts)
    );
    if columns.is_empty() {
        return Ok(());
    }
    let assignments: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 2))
        .collect();
    let sql = format!(
        "UPDATE incidents SET {} WHERE id = ?1",
        assignments.join(", ")
    );
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![&id];
    params.extend(values.iter().map(|v| v.as_ref()));
    conn.prepare_cached(&sql)?.execute(params.as_slice())?;
    Ok(())
}

/// Takes an open incident off every due list (for the preview's rolled-back transaction only):
/// no next update, and marked escalated so it is not quiet either.
pub fn set_due_off(conn: &Connection, id: IncidentNo, now: DateTime<Utc>) -> Result<()> {
    conn.prepare_cached(
        "UPDATE incidents SET next_update_at = NULL, escalated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, Ts(now)])?;
    Ok(())
}

/// Marks an incident recurring; the first reason given stays (`report recurring` shows it).
pub fn mark_recurring(conn: &Connection, id: IncidentNo, reason: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE incidents SET recurring = 1, recurring_reason = COALESCE(recurring_reason, ?2)
         WHERE id = ?1",
    )?
    .execute(params![id, reason])?;
    Ok(())
}

/// The customer's newest other incident that is still open, or was last changed since
/// `since`: the one a new complaint repeats. With it, which time the customer is writing
/// about the problem as they count it (every earlier incident of the chain and every time
/// one was reopened), when the first of the chain opened, and the pace it had.
pub fn previous_of_customer(
    conn: &Connection,
    customer: &str,
    excluding: IncidentNo,
    since: DateTime<Utc>,
) -> Result<Option<Previous>> {
    Ok(conn
        .prepare_cached(sql!(
            "SELECT id, coalesce(previous_opened_at, opened_at),
                    repeat_count + (SELECT COUNT(*) FROM events e
                                     WHERE e.incident_id = i.id AND e.kind = ?4),
                    cadence_secs
             FROM incidents i
             WHERE customer_address = ?1 COLLATE NOCASE AND id != ?2
               AND (state IN ({State::Open}, {State::Waiting}) OR updated_at >= ?3 OR opened_at >= ?3)
             ORDER BY id DESC LIMIT 1"
        ))?
        .query_row(
            params![customer, excluding, Ts(since), EventKind::Reopened],
            |r| {
                Ok(Previous {
                    incident: r.get(0)?,
                    first_opened_at: ts_at(r, 1)?,
                    count: r.get(2)?,
                    cadence: Duration::from_secs(u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0)),
                })
            },
        )
        .optional()?)
}

/// A customer's earlier incident a new complaint repeats (see [`previous_of_customer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Previous {
    pub incident: IncidentNo,
    /// When the first incident of the chain opened.
    pub first_opened_at: DateTime<Utc>,
    /// Which time of the problem it was, reopens counted.
    pub count: i64,
    pub cadence: Duration,
}

/// The facts of an incident's complaint (order, invoice, tracking numbers), kept so a new
/// mail naming one of them is known as a follow-up.
pub fn add_facts(conn: &Connection, id: IncidentNo, facts: &[Fact]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO incident_facts (incident_id, name, value) VALUES (?1, ?2, ?3)",
    )?;
    for fact in facts {
        stmt.execute(params![id, fact.name, fact.value])?;
    }
    Ok(())
}

/// The customer's open and waiting incidents, newest first, with their subjects, last
/// change and facts: what a new mail of theirs may be following up.
pub fn open_of_customer(conn: &Connection, customer: &str) -> Result<Vec<OpenOfTheirs>> {
    let mut stmt = conn.prepare_cached(sql!(
        "SELECT i.id, i.subject, i.updated_at,
                (SELECT group_concat(f.name || char(31) || f.value, char(30))
                   FROM incident_facts f WHERE f.incident_id = i.id)
           FROM incidents i
          WHERE i.customer_address = ?1 COLLATE NOCASE
            AND i.state IN ({State::Open}, {State::Waiting})
          ORDER BY i.id DESC LIMIT 20"
    ))?;
    let rows = stmt
        .query_map([customer], |r| {
            let facts = r
                .get::<_, Option<String>>(3)?
                .unwrap_or_default()
                .split('\u{1e}')
                .filter_map(|f| f.split_once('\u{1f}'))
                .map(|(name, value)| Fact {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .collect();
            Ok(OpenOfTheirs {
                incident: r.get(0)?,
                subject: r.get(1)?,
                updated_at: ts_at(r, 2)?,
                facts,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Records a note and when the last one was written.
/// A note to record.
#[derive(Debug, Clone, Copy)]
pub struct NewNote<'a> {
    pub author: &'a str,
    pub text: &'a str,
    pub visibility: NoteVisibility,
    /// The name the customer read under it; "" for the team.
    pub signed: &'a str,
}

pub fn add_note(
    conn: &Connection,
    id: IncidentNo,
    note: &NewNote<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO notes (incident_id, at, author, text, visibility, signed)
         VALUES (?1, ?2, ?3, ?4, ?5, NULLIF(?6, ''))",
    )?
    .execute(params![
        id,
        Ts(now),
        note.author,
        note.text,
        note.visibility,
        note.signed
    ])?;
    Ok(())
}

/// The newest note (of `visibility`, or of any).
pub fn latest_note(
    conn: &Connection,
    id: IncidentNo,
    visibility: Option<NoteVisibility>,
) -> Result<Option<Note>> {
    Ok(conn
        .prepare_cached(
            "SELECT at, author, text, visibility, coalesce(signed, '') FROM notes
             WHERE incident_id = ?1 AND (?2 IS NULL OR visibility = ?2)
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![id, visibility], note_row)
        .optional()?)
}

/// The newest note for the customer written after `since` by someone other than `author`:
/// what a staff reply answering an older notification did not see.
pub fn customer_note_by_other_since(
    conn: &Connection,
    id: IncidentNo,
    author: &str,
    since: DateTime<Utc>,
) -> Result<Option<Note>> {
    Ok(conn
        .prepare_cached(
            "SELECT at, author, text, visibility, coalesce(signed, '') FROM notes
             WHERE incident_id = ?1 AND visibility = ?2 AND at > ?3
               AND author != ?4 COLLATE NOCASE
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row(
            params![id, NoteVisibility::Customer, Ts(since), author],
            note_row,
        )
        .optional()?)
}

/// Every note of an incident, oldest first.
pub fn notes(conn: &Connection, id: IncidentNo) -> Result<Vec<Note>> {
    let mut stmt = conn.prepare(
        "SELECT at, author, text, visibility, coalesce(signed, '') FROM notes
         WHERE incident_id = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([id], note_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A note from `SELECT at, author, text, visibility, coalesce(signed, '')`.
fn note_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Note> {
    Ok(Note {
        at: ts_at(r, 0)?,
        author: r.get(1)?,
        text: r.get(2)?,
        visibility: r.get(3)?,
        signed: r.get(4)?,
    })
}

/// A staff reply held back from the customer, waiting for its author's `#send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldReply {
    pub id: i64,
    pub message: MessageRow,
    /// Their own words as read, commands and all.
    pub text: String,
    /// Their greeting above them.
    pub greeting: Option<String>,
}

/// Keeps a staff reply that was not sent: its words as read and why.
pub fn hold_reply(
    conn: &Connection,
    id: IncidentNo,
    message: MessageRow,
    member: &str,
    (text, greeting): (&str, Option<&str>),
    reason: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO held_replies (incident_id, message_row, member, text, greeting, reason,
                                   held_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        id,
        message,
        member.to_lowercase(),
        text,
        greeting,
        reason,
        Ts(now)
    ])?;
    Ok(())
}

/// The newest reply of `member` on incident `id` that is held and not yet sent.
pub fn held_reply(conn: &Connection, id: IncidentNo, member: &str) -> Result<Option<HeldReply>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, message_row, text, greeting FROM held_replies
             WHERE incident_id = ?1 AND member = ?2 AND released_at IS NULL
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![id, member.to_lowercase()], |r| {
            Ok(HeldReply {
                id: r.get(0)?,
                message: r.get(1)?,
                text: r.get(2)?,
                greeting: r.get(3)?,
            })
        })
        .optional()?)
}

/// A held reply was sent after all.
pub fn release_reply(conn: &Connection, held: i64, now: DateTime<Utc>) -> Result<()> {
    conn.prepare_cached("UPDATE held_replies SET released_at = ?2 WHERE id = ?1")?
        .execute(params![held, Ts(now)])?;
    Ok(())
}

pub fn add_tag(conn: &Connection, id: IncidentNo, tag: &str, now: DateTime<Utc>) -> Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO tags (incident_id, tag, at) VALUES (?1, ?2, ?3)")?
        .execute(params![id, tag, Ts(now)])?;
    Ok(())
}

/// How many incidents a customer opened since `since`.
pub fn customer_incidents_since(
    conn: &Connection,
    customer: &str,
    since: DateTime<Utc>,
) -> Result<u32> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM incidents WHERE customer_address = ?1 AND opened_at >= ?2",
        )?
        .query_row(params![customer, Ts(since)], |r| r.get(0))?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Incidents with `tag` opened since `since`, with whether each is marked recurring.
pub fn tagged_since(
    conn: &Connection,
    tag: &str,
    since: DateTime<Utc>,
) -> Result<Vec<(IncidentNo, bool)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, i.recurring FROM tags t JOIN incidents i ON i.id = t.incident_id
         WHERE t.tag = ?1 AND i.opened_at >= ?2 ORDER BY i.id",
    )?;
    let rows = stmt
        .query_map(params![tag, Ts(since)], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

// --- Due work, read through partial indexes -----------------------------------------------------

/// Open incidents whose promised update is due by `until`, soonest first.
pub fn due_updates(
    conn: &Connection,
    until: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<IncidentNo>> {
    column(
        conn,
        sql!(
            "SELECT id FROM incidents WHERE state = {State::Open} AND next_update_at <= ?1
           AND updates_stopped = 0 AND fault IS NULL
         ORDER BY next_update_at LIMIT ?2"
        ),
        params![Ts(until), limit_param(limit)],
    )
}

pub fn due_check_backs(
    conn: &Connection,
    until: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<IncidentNo>> {
    column(
        conn,
        sql!("SELECT id FROM incidents WHERE state = {State::Resolved} AND check_back_at <= ?1 AND fault IS NULL
         ORDER BY check_back_at LIMIT ?2"),
        params![Ts(until), limit_param(limit)],
    )
}

pub fn due_closes(
    conn: &Connection,
    until: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<IncidentNo>> {
    column(
        conn,
        sql!("SELECT id FROM incidents WHERE state = {State::Resolved} AND close_at <= ?1 AND fault IS NULL
         ORDER BY close_at LIMIT ?2"),
        params![Ts(until), limit_param(limit)],
    )
}

/// Open incidents whose promised update falls before `until` and whose staff have not been
/// warned about that promise yet ("promise at risk").
pub fn at_risk(conn: &Connection, until: DateTime<Utc>, limit: usize) -> Result<Vec<IncidentNo>> {
    column(
        conn,
        sql!(
            "SELECT id FROM incidents
         WHERE state = {State::Open} AND next_update_at <= ?1 AND updates_stopped = 0
           AND (at_risk_warned_for IS NULL OR at_risk_warned_for != next_update_at)
           AND fault IS NULL
         ORDER BY next_update_at LIMIT ?2"
        ),
        params![Ts(until), limit_param(limit)],
    )
}

/// Whether more than `max` incidents opened since `since`: the newest `max + 1` are read, no
/// more, so a burst check costs the same in a database of any size.
pub fn opened_more_than(conn: &Connection, max: u32, since: DateTime<Utc>) -> Result<bool> {
    let recent: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM (SELECT opened_at FROM incidents ORDER BY id DESC LIMIT ?1)
             WHERE opened_at >= ?2",
        )?
        .query_row(params![i64::from(max) + 1, Ts(since)], |r| r.get(0))?;
    Ok(recent > i64::from(max))
}

/// The incidents opened since `since`, newest first, at most `limit` (read from the newest
/// down, so the cost does not grow with the database).
pub fn opened_since(
    conn: &Connection,
    since: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<IncidentNo>> {
    column(
        conn,
        "SELECT id FROM (SELECT id, opened_at FROM incidents ORDER BY id DESC LIMIT ?2)
         WHERE opened_at >= ?1",
        params![Ts(since), limit_param(limit)],
    )
}

/// How many open incidents each assignee holds.
pub fn open_assigned(conn: &Connection) -> Result<std::collections::HashMap<String, u32>> {
    let mut stmt = conn.prepare_cached(sql!(
        "SELECT assigned_to, COUNT(*) FROM incidents
         WHERE state = {State::Open} AND assigned_to IS NOT NULL GROUP BY assigned_to"
    ))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Open incidents whose assignee was alarmed alone and whose team is due to hear of it.
pub fn team_alarms(
    conn: &Connection,
    until: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<IncidentNo>> {
    column(
        conn,
        sql!("SELECT id FROM incidents WHERE state = {State::Open} AND team_alarm_at <= ?1 AND fault IS NULL
         ORDER BY team_alarm_at LIMIT ?2"),
        params![Ts(until), limit_param(limit)],
    )
}

/// Open incidents with no staff note since `before` (or none at all since they opened before
/// it), not escalated yet, not on hold and not just written to by the customer (before
/// `customer_before`), through the `incidents_quiet` index.
pub fn quiet_incidents(
    conn: &Connection,
    before: DateTime<Utc>,
    customer_before: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<(IncidentNo, DateTime<Utc>)>> {
    let mut stmt = conn.prepare_cached(sql!(
        "SELECT id, COALESCE(last_note_at, opened_at) FROM incidents
         WHERE state = {State::Open} AND escalated_at IS NULL AND COALESCE(last_note_at, opened_at) <= ?1
           AND hold_until IS NULL AND fault IS NULL
           AND (customer_wrote_at IS NULL OR customer_wrote_at <= ?3)
         ORDER BY COALESCE(last_note_at, opened_at) LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(
            params![Ts(before), limit_param(limit), Ts(customer_before)],
            |r| Ok((r.get(0)?, ts_at(r, 1)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// A bug stopped the scheduler on incident `id`: it is passed over until staff act on it.
pub fn set_fault(conn: &Connection, id: IncidentNo, fault: &str, now: DateTime<Utc>) -> Result<()> {
    conn.prepare_cached("UPDATE incidents SET fault = ?2, fault_at = ?3 WHERE id = ?1")?
        .execute(params![id, fault, Ts(now)])?;
    Ok(())
}

/// Staff acted on incident `id`: the scheduler tries it again.
pub fn clear_fault(conn: &Connection, id: IncidentNo) -> Result<()> {
    conn.prepare_cached(
        "UPDATE incidents SET fault = NULL, fault_at = NULL WHERE id = ?1 AND fault IS NOT NULL",
    )?
    .execute([id])?;
    Ok(())
}

/// What stopped incident `id`, if a bug did.
pub fn fault(conn: &Connection, id: IncidentNo) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT fault FROM incidents WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .flatten())
}

/// The earliest time each kind of due work falls due (for `upcoming`): the earliest promised
/// update, check-back, close, and the earliest quiet-since time of an incident not escalated.
#[derive(Debug, Clone, Copy, Default)]
pub struct Earliest {
    pub update: Option<DateTime<Utc>>,
    pub check_back: Option<DateTime<Utc>>,
    pub close: Option<DateTime<Utc>>,
    pub quiet_since: Option<DateTime<Utc>>,
}

/// `with_quiet`: whether to look for quiet incidents at all (the preview skips them when there
/// is nobody to escalate to).
pub fn earliest_due(conn: &Connection, with_quiet: bool) -> Result<Earliest> {
    let one = |sql: &str| -> Result<Option<DateTime<Utc>>> {
        Ok(conn
            .prepare_cached(sql)?
            .query_row([], |r| r.get::<_, Option<Ts>>(0))
            .optional()?
            .flatten()
            .map(|t| t.0))
    };
    // Each range condition (every stamp sorts after '0') lets SQLite walk its partial index
    // to the first entry instead of sorting every open incident.
    Ok(Earliest {
        update: one(sql!(
            "SELECT next_update_at FROM incidents WHERE state = {State::Open}
             AND next_update_at >= '0' AND updates_stopped = 0 AND fault IS NULL
             ORDER BY next_update_at LIMIT 1"
        ))?,
        check_back: one(sql!(
            "SELECT check_back_at FROM incidents WHERE state = {State::Resolved}
             AND check_back_at >= '0' AND fault IS NULL ORDER BY check_back_at LIMIT 1"
        ))?,
        close: one(sql!(
            "SELECT close_at FROM incidents WHERE state = {State::Resolved}
             AND close_at >= '0' AND fault IS NULL ORDER BY close_at LIMIT 1"
        ))?,
        quiet_since: if with_quiet {
            one(sql!(
                "SELECT COALESCE(last_note_at, opened_at) FROM incidents
                 WHERE state = {State::Open} AND escalated_at IS NULL
                   AND COALESCE(last_note_at, opened_at) >= '0' AND fault IS NULL
                 ORDER BY COALESCE(last_note_at, opened_at) LIMIT 1"
            ))?
        } else {
            None
        },
    })
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
