//! Forgetting: `followupd erase ADDRESS` (a person's right to erasure) and `[retention]
//! raw_after` (raw mail of long-closed incidents). What is forgotten is overwritten or
//! deleted; what happened (that an incident existed, its states, when mail went out, the
//! counts behind the metrics) stays, with a tombstone event saying what was erased, when and
//! by whom.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::{Result, Ts};
use crate::incident::{Actor, EventKind, IncidentNo, NewEvent};

/// What stands in for erased text.
pub const ERASED: &str = "[erased]";

/// What `erase` removed, for the tombstone and the CLI's answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Erased {
    /// The person's incidents (they were its customer or its reply address): scrubbed whole.
    pub incidents: Vec<IncidentNo>,
    /// Messages whose headers, text and attachments were removed.
    pub messages: usize,
    /// Outgoing mails whose recipient and content were removed (queued ones will not be sent).
    pub mails: usize,
    /// Events whose detail named the person.
    pub events: usize,
}

/// Erases everything the database holds about `address` (lower-cased by the caller), inside
/// the caller's transaction, and logs the tombstones. The connection should have
/// `secure_delete` on, and the caller vacuums afterwards (see [`vacuum`]), so no copy of the
/// erased bytes survives in free pages or the WAL.
pub fn erase(
    conn: &Connection,
    address: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Erased> {
    let mut out = Erased::default();
    // Case-insensitive containment, bound as a parameter (never spliced into SQL).
    let needle = address.to_lowercase();
    conn.execute("INSERT INTO erasing (since) VALUES (?1)", [Ts(now)])?;

    // The person's incidents.
    {
        let mut stmt = conn.prepare(
            "SELECT id FROM incidents
             WHERE lower(customer_address) = ?1 OR lower(reply_address) = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([&needle], |r| r.get::<_, IncidentNo>(0))?;
        for row in rows {
            out.incidents.push(row?);
        }
    }
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS erase_incidents (id INTEGER PRIMARY KEY);
         CREATE TEMP TABLE IF NOT EXISTS erase_messages (id INTEGER PRIMARY KEY);
         CREATE TEMP TABLE IF NOT EXISTS erase_outbox (id INTEGER PRIMARY KEY);
         DELETE FROM erase_incidents; DELETE FROM erase_messages; DELETE FROM erase_outbox;",
    )?;
    for incident in &out.incidents {
        conn.execute("INSERT INTO erase_incidents (id) VALUES (?1)", [incident])?;
    }
    // Messages of those incidents, and any other message that names the person (a bounce
    // about them, a copy to them, a quarantined mail from them).
    conn.execute(
        "INSERT OR IGNORE INTO erase_messages (id)
         SELECT id FROM messages WHERE incident_id IN (SELECT id FROM erase_incidents)",
        [],
    )?;
    for id in naming(
        conn,
        "SELECT m.id, coalesce(m.from_addr, '') || ' ' || coalesce(m.to_addr, '') || ' '
                || coalesce(CAST(r.raw AS TEXT), '')
         FROM messages m LEFT JOIN message_raw r ON r.message_id = m.id
         WHERE instr(lower(coalesce(m.from_addr, '') || ' ' || coalesce(m.to_addr, '') || ' '
                           || coalesce(CAST(r.raw AS TEXT), '')), ?1) > 0",
        &needle,
    )? {
        conn.execute(
            "INSERT OR IGNORE INTO erase_messages (id) VALUES (?1)",
            [id],
        )?;
    }
    conn.execute(
        "INSERT OR IGNORE INTO erase_outbox (id)
         SELECT id FROM outbox WHERE incident_id IN (SELECT id FROM erase_incidents)",
        [],
    )?;
    for id in naming(
        conn,
        "SELECT id, recipient || ' ' || coalesce(recipient_mailbox, '') || ' ' || context || ' '
                || coalesce(CAST(raw AS TEXT), '')
         FROM outbox
         WHERE instr(lower(recipient || ' ' || coalesce(recipient_mailbox, '') || ' ' || context
                           || ' ' || coalesce(CAST(raw AS TEXT), '')), ?1) > 0",
        &needle,
    )? {
        conn.execute("INSERT OR IGNORE INTO erase_outbox (id) VALUES (?1)", [id])?;
    }
    let suppressed = naming(
        conn,
        "SELECT id, recipient || ' ' || reason || ' ' || context FROM suppressed
         WHERE instr(lower(recipient || ' ' || reason || ' ' || context), ?1) > 0",
        &needle,
    )?;
    let events = naming(
        conn,
        "SELECT id, coalesce(detail, '') || ' ' || actor FROM events
         WHERE instr(lower(coalesce(detail, '') || ' ' || actor), ?1) > 0",
        &needle,
    )?;

    out.messages = conn.execute(
        "UPDATE messages SET message_id = NULL, dedupe_key = NULL, from_addr = ?1,
             to_addr = ?1, subject = ?1, date_header = NULL, in_reply_to = NULL,
             references_ = NULL, class_reason = NULL, trust_reason = NULL, sha256 = ''
         WHERE id IN (SELECT id FROM erase_messages)",
        [ERASED],
    )?;
    conn.execute(
        "DELETE FROM message_raw WHERE message_id IN (SELECT id FROM erase_messages)",
        [],
    )?;
    conn.execute(
        "DELETE FROM attachments WHERE message_row IN (SELECT id FROM erase_messages)",
        [],
    )?;
    conn.execute(
        "DELETE FROM message_ids WHERE incident_id IN (SELECT id FROM erase_incidents)",
        [],
    )?;
    conn.execute(
        "DELETE FROM thread_indexes WHERE incident_id IN (SELECT id FROM erase_incidents)",
        [],
    )?;

    // Mail to the person: nothing left to send, nothing left to read.
    out.mails = conn.execute(
        "UPDATE outbox SET recipient = ?1, recipient_name = NULL, recipient_mailbox = ?1,
             recipient_domain = NULL, in_reply_to = NULL, references_ = '', context = '{}',
             raw = NULL, subject = NULL, thread_index = NULL,
             last_error = CASE WHEN state IN ('queued', 'sending') THEN 'erased before it was sent'
                               ELSE NULL END,
             state = CASE WHEN state IN ('queued', 'sending') THEN 'failed' ELSE state END
         WHERE id IN (SELECT id FROM erase_outbox)",
        [ERASED],
    )?;
    conn.execute(
        "UPDATE send_attempts SET detail = ?1 WHERE outbox_id IN (SELECT id FROM erase_outbox)",
        [ERASED],
    )?;
    let scrub_suppressed = "UPDATE suppressed SET recipient = ?1, context = '{}',
             reason = CASE WHEN instr(reason, ':') > 0
                           THEN substr(reason, 1, instr(reason, ':') - 1) || ': ' || ?1
                           ELSE ?1 END";
    conn.execute(
        &format!("{scrub_suppressed} WHERE incident_id IN (SELECT id FROM erase_incidents)"),
        [ERASED],
    )?;
    for id in suppressed {
        conn.execute(
            &format!("{scrub_suppressed} WHERE id = ?2"),
            params![ERASED, id],
        )?;
    }
    conn.execute(
        "DELETE FROM undeliverable WHERE lower(address) = ?1
            OR incident_id IN (SELECT id FROM erase_incidents)",
        [&needle],
    )?;
    conn.execute(
        "DELETE FROM participants WHERE lower(address) = ?1
            OR incident_id IN (SELECT id FROM erase_incidents)",
        [&needle],
    )?;
    conn.execute(
        "UPDATE notes SET text = ?1 WHERE incident_id IN (SELECT id FROM erase_incidents)",
        [ERASED],
    )?;
    conn.execute(
        "UPDATE held_replies SET text = ?1, greeting = NULL
         WHERE incident_id IN (SELECT id FROM erase_incidents)",
        [ERASED],
    )?;
    conn.execute(
        "UPDATE incidents SET subject = ?1, summary = ?1, customer_address = ?1,
             customer_name = NULL, reply_address = ?1, reply_name = NULL,
             root_cause = CASE WHEN root_cause IS NULL THEN NULL ELSE ?1 END,
             prevention = CASE WHEN prevention IS NULL THEN NULL ELSE ?1 END,
             compensation = CASE WHEN compensation IS NULL THEN NULL ELSE ?1 END
         WHERE id IN (SELECT id FROM erase_incidents)",
        [ERASED],
    )?;
    // Events: the detail goes; an actor that was the person becomes `customer [erased]`.
    let scrub_event = "UPDATE events SET detail = ?1,
             actor = CASE WHEN actor LIKE 'customer %' THEN 'customer ' || ?1 ELSE actor END";
    out.events = conn.execute(
        &format!(
            "{scrub_event} WHERE incident_id IN (SELECT id FROM erase_incidents)
                OR message_row IN (SELECT id FROM erase_messages)"
        ),
        [ERASED],
    )?;
    for id in events {
        out.events += conn.execute(&format!("{scrub_event} WHERE id = ?2"), params![ERASED, id])?;
    }
    conn.execute("DELETE FROM erasing", [])?;
    conn.execute_batch(
        "DELETE FROM erase_incidents; DELETE FROM erase_messages; DELETE FROM erase_outbox;",
    )?;

    let numbers: Vec<String> = out.incidents.iter().map(|n| format!("#{n}")).collect();
    let what = format!(
        "erased at a person's request by {actor}: their name and address, {} message(s), {} mail(s) to them{}; the address itself is not kept",
        out.messages,
        out.mails,
        if numbers.is_empty() {
            String::new()
        } else {
            format!(", incidents {}", numbers.join(", "))
        }
    );
    super::events::log(
        conn,
        &NewEvent {
            incident: None,
            message: None,
            kind: EventKind::Erased,
            actor: actor.clone(),
            detail: what.clone(),
        },
        now,
    )?;
    for incident in &out.incidents {
        super::events::log(
            conn,
            &NewEvent {
                incident: Some(*incident),
                message: None,
                kind: EventKind::Erased,
                actor: actor.clone(),
                detail: what.clone(),
            },
            now,
        )?;
    }
    Ok(out)
}

/// The ids of the rows `sql` finds (`SELECT id, text … WHERE instr(lower(text), ?1) > 0`)
/// whose text names `address` as a whole address: `ann@example.test` is not found inside
/// `joann@example.test` or `ann@example.test.org`.
fn naming(conn: &Connection, sql: &str, address: &str) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([address], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, text) = row?;
        if names_address(&text, address) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Whether `text` contains `address` (lower case) with no address character joined to it on
/// either side.
pub fn names_address(text: &str, address: &str) -> bool {
    if address.is_empty() {
        return false;
    }
    let text = text.to_lowercase();
    let local = |c: char| c.is_ascii_alphanumeric() || "._%+-=!#$&'*/?^`{|}~".contains(c);
    let domain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut from = 0;
    while let Some(at) = text.get(from..).and_then(|rest| rest.find(address)) {
        let start = from + at;
        let end = start + address.len();
        let before = text.get(..start).and_then(|s| s.chars().next_back());
        let mut after = text.get(end..).map(str::chars).into_iter().flatten();
        let next = after.next();
        // A trailing dot ends a sentence; a dot followed by a label continues the domain.
        let joined_after = match next {
            Some('.') => after.next().is_some_and(domain),
            Some(c) => domain(c),
            None => false,
        };
        if !before.is_some_and(local) && !joined_after {
            return true;
        }
        from = start + address.len().max(1);
    }
    false
}

/// Rewrites the database file without free pages and empties the WAL, so erased bytes exist
/// nowhere on disk. Returns false when another connection kept the WAL from being emptied (its
/// old frames are overwritten by the next writes; run `erase` again with the daemon stopped for
/// certainty).
pub fn vacuum(conn: &Connection) -> Result<bool> {
    conn.execute_batch("VACUUM")?;
    for _ in 0..20 {
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy == 0 {
            return Ok(true);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(false)
}

/// `[retention] raw_after`: drops the raw bytes of the messages of incidents closed before
/// `closed_before` (headers, class and the event log stay), with a `raw_dropped` event per
/// incident. Returns the incidents and how many messages each lost.
pub fn drop_raw(
    conn: &Connection,
    closed_before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<(IncidentNo, usize)>> {
    let mut incidents = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT i.id FROM incidents i
             WHERE i.state = 'closed'
               AND (SELECT max(e.at) FROM events e
                    WHERE e.incident_id = i.id AND e.kind = 'closed') < ?1
               AND EXISTS (SELECT 1 FROM messages m JOIN message_raw r ON r.message_id = m.id
                           WHERE m.incident_id = i.id)
             ORDER BY i.id",
        )?;
        let rows = stmt.query_map([Ts(closed_before)], |r| r.get::<_, IncidentNo>(0))?;
        for row in rows {
            incidents.push(row?);
        }
    }
    let mut out = Vec::with_capacity(incidents.len());
    for incident in incidents {
        let dropped = conn.execute(
            "DELETE FROM message_raw
             WHERE message_id IN (SELECT id FROM messages WHERE incident_id = ?1)",
            [incident],
        )?;
        conn.execute(
            "UPDATE messages SET raw_dropped_at = ?2
             WHERE incident_id = ?1 AND raw_dropped_at IS NULL",
            params![incident, Ts(now)],
        )?;
        super::events::log(
            conn,
            &NewEvent {
                incident: Some(incident),
                message: None,
                kind: EventKind::RawDropped,
                actor: Actor::Daemon,
                detail: format!(
                    "raw text of {dropped} message(s) dropped by [retention] raw_after (closed before {})",
                    crate::clock::stamp(closed_before)
                ),
            },
            now,
        )?;
        out.push((incident, dropped));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::names_address;

    #[test]
    fn an_address_is_found_whole_and_not_inside_another() {
        let ann = "ann@example.test";
        assert!(names_address("From: Ann <Ann@Example.test>", ann));
        assert!(names_address("customer ann@example.test", ann));
        assert!(names_address("write to ann@example.test.", ann));
        assert!(!names_address("joann@example.test", ann));
        assert!(!names_address("ann@example.test.org", ann));
        assert!(!names_address("ann@example.tester", ann));
        assert!(names_address("joann@example.test, ann@example.test", ann));
    }
}
