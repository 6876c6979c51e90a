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
    /// The Message-IDs of their mail and of ours to them (without angle brackets): what
    /// `erase --imap` removes from the support mailbox.
    pub message_ids: Vec<String>,
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
    let needle = address.to_lowercase();
    conn.execute("INSERT INTO erasing (since) VALUES (?1)", [Ts(now)])?;
    let mut person = Person::new(&needle);

    // The person's incidents: their address as customer or reply address, in any form that
    // reaches the same mailbox (`Ann+shop@`, `a.nn@gmail.com`).
    {
        let mut stmt = conn.prepare(
            "SELECT id, customer_address, reply_address, customer_name, reply_name
             FROM incidents ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, IncidentNo>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        for row in rows {
            let (id, customer, reply, customer_name, reply_name) = row?;
            let mut theirs = false;
            if person.is(&customer) {
                theirs = true;
                person.add_name(customer_name.as_deref());
            }
            if person.is(&reply) {
                theirs = true;
                person.add_name(reply_name.as_deref());
            }
            if theirs {
                out.incidents.push(id);
            }
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
    // Mail they sent, wherever it was filed (a quarantined one, one to another incident).
    for (id, from) in rows_of(
        conn,
        "SELECT id, from_addr FROM messages WHERE from_addr IS NOT NULL",
    )? {
        if person.is(&from) {
            conn.execute(
                "INSERT OR IGNORE INTO erase_messages (id) VALUES (?1)",
                [id],
            )?;
        }
    }
    // The names they signed with, from their own mail's From.
    {
        let mut stmt = conn.prepare(
            "SELECT r.raw FROM message_raw r JOIN erase_messages e ON e.id = r.message_id",
        )?;
        let raws: Vec<Vec<u8>> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for raw in raws {
            let readable = crate::mail::readable(&raw);
            for (name, value) in &readable.headers {
                if name == "From" {
                    for one in value.split(", ") {
                        if let Some((display, address)) = one.rsplit_once(" <") {
                            if person.is(address) {
                                person.add_name(Some(display.trim_matches('"')));
                            }
                        }
                    }
                }
            }
        }
    }
    conn.execute(
        "INSERT OR IGNORE INTO erase_outbox (id)
         SELECT id FROM outbox WHERE incident_id IN (SELECT id FROM erase_incidents)",
        [],
    )?;
    // Mail to them.
    for (id, to) in rows_of(conn, "SELECT id, recipient FROM outbox")? {
        if person.is(&to) {
            conn.execute("INSERT OR IGNORE INTO erase_outbox (id) VALUES (?1)", [id])?;
        }
    }
    let suppressed: Vec<i64> = rows_of(conn, "SELECT id, recipient FROM suppressed")?
        .into_iter()
        .filter(|(_, to)| person.is(to))
        .map(|(id, _)| id)
        .collect();

    {
        let mut stmt = conn.prepare(
            "SELECT message_id FROM messages
             WHERE id IN (SELECT id FROM erase_messages) AND message_id IS NOT NULL
             UNION
             SELECT message_id FROM outbox
             WHERE id IN (SELECT id FROM erase_outbox) AND message_id IS NOT NULL",
        )?;
        out.message_ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
    }
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
        sql!(
            "UPDATE outbox SET recipient = ?1, recipient_name = NULL, recipient_mailbox = ?1,
             recipient_domain = NULL, in_reply_to = NULL, references_ = '', context = '{}',
             raw = NULL, subject = NULL, thread_index = NULL,
             last_error = CASE WHEN state IN ({OutboxState::Queued}, {OutboxState::Sending})
                               THEN 'erased before it was sent' ELSE NULL END,
             state = CASE WHEN state IN ({OutboxState::Queued}, {OutboxState::Sending})
                          THEN {OutboxState::Failed} ELSE state END
         WHERE id IN (SELECT id FROM erase_outbox)"
        ),
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
        "DELETE FROM undeliverable WHERE incident_id IN (SELECT id FROM erase_incidents)",
        [],
    )?;
    conn.execute(
        "DELETE FROM participants WHERE incident_id IN (SELECT id FROM erase_incidents)",
        [],
    )?;
    // An order number is the customer's too.
    conn.execute(
        "DELETE FROM incident_facts WHERE incident_id IN (SELECT id FROM erase_incidents)",
        [],
    )?;
    for table in ["undeliverable", "participants"] {
        let mut stmt = conn.prepare(&format!("SELECT DISTINCT address FROM {table}"))?;
        let addresses: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for address in addresses.into_iter().filter(|a| person.is(a)) {
            conn.execute(
                &format!("DELETE FROM {table} WHERE address = ?1"),
                [address],
            )?;
        }
    }
    conn.execute(
        "UPDATE notes SET text = ?1 WHERE incident_id IN (SELECT id FROM erase_incidents)",
        [ERASED],
    )?;
    conn.execute(
        "UPDATE held_replies SET text = ?1, greeting = NULL
         WHERE incident_id IN (SELECT id FROM erase_incidents)",
        [ERASED],
    )?;
    // Nobody is left to write to: the incident closes (an open one would fail a mail at every
    // update), its record stays.
    conn.execute(
        sql!(
            "UPDATE incidents SET subject = ?1, summary = ?1, customer_address = ?1,
             customer_name = NULL, reply_address = ?1, reply_name = NULL,
             root_cause = CASE WHEN root_cause IS NULL THEN NULL ELSE ?1 END,
             prevention = CASE WHEN prevention IS NULL THEN NULL ELSE ?1 END,
             compensation = CASE WHEN compensation IS NULL THEN NULL ELSE ?1 END,
             recurring_reason = CASE WHEN recurring_reason IS NULL THEN NULL ELSE ?1 END,
             state = {State::Closed}, next_update_at = NULL, check_back_at = NULL, close_at = NULL
         WHERE id IN (SELECT id FROM erase_incidents)"
        ),
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
    // Everyone else's rows that mention them (a colleague's complaint naming their address, a
    // subject with their name, a recurring reason): only the mention goes.
    out.events += mentions(conn, &person)?;
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

/// The person being erased: their address, the mailbox it reaches (sub-addresses, case and
/// the dots Gmail ignores folded away), and the full names they wrote under.
struct Person {
    key: String,
    names: Vec<String>,
}

impl Person {
    fn new(address: &str) -> Person {
        Person {
            key: crate::config::MailboxRules::default().mailbox(address),
            names: Vec::new(),
        }
    }

    fn is(&self, address: &str) -> bool {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        address.contains('@') && crate::config::MailboxRules::default().mailbox(address) == self.key
    }

    /// A display name they used. Only a full name (two words or more) is looked for in other
    /// people's text: "Ann" alone would erase every Ann.
    fn add_name(&mut self, name: Option<&str>) {
        let Some(name) = name.map(str::trim) else {
            return;
        };
        if name.split_whitespace().count() >= 2
            && name.chars().count() >= 5
            && !name.contains('@')
            && !self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
        {
            self.names.push(name.to_string());
        }
    }

    /// `text` with every mention of them replaced by [`ERASED`]; None when it names them not.
    fn scrub(&self, text: &str) -> Option<String> {
        let mut ranges = address_ranges(text, |token| self.is(token));
        for name in &self.names {
            ranges.extend(name_ranges(text, name));
        }
        if ranges.is_empty() {
            return None;
        }
        ranges.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in ranges {
            if start < at {
                at = at.max(end);
                continue;
            }
            out.push_str(text.get(at..start).unwrap_or(""));
            out.push_str(ERASED);
            at = end;
        }
        out.push_str(text.get(at..).unwrap_or(""));
        Some(out)
    }
}

/// The byte ranges of the addresses in `text` that `theirs` accepts: each `@` with the local
/// part before it and the domain after it (a sentence's final dot is not the domain's).
fn address_ranges(text: &str, theirs: impl Fn(&str) -> bool) -> Vec<(usize, usize)> {
    let local = |c: char| c.is_ascii_alphanumeric() || "._%+-=!#$&'*/?^`{|}~".contains(c);
    let domain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_';
    let mut out = Vec::new();
    for (at, _) in text.match_indices('@') {
        let before = text.get(..at).unwrap_or("");
        let start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| local(*c))
            .last()
            .map_or(at, |(i, _)| i);
        let after = text.get(at + 1..).unwrap_or("");
        let len: usize = after
            .chars()
            .take_while(|c| domain(*c))
            .map(char::len_utf8)
            .sum();
        let mut end = at + 1 + len;
        while end > at + 1 && text.get(..end).is_some_and(|t| t.ends_with('.')) {
            end -= 1;
        }
        if start < at && end > at + 1 && text.get(start..end).is_some_and(&theirs) {
            out.push((start, end));
        }
    }
    out
}

/// The byte ranges where `name` stands in `text` as whole words, case-blind.
fn name_ranges(text: &str, name: &str) -> Vec<(usize, usize)> {
    let wanted: Vec<char> = name.chars().flat_map(char::to_lowercase).collect();
    let mut out = Vec::new();
    let mut previous: Option<char> = None;
    for (start, c) in text.char_indices() {
        let boundary = !previous.is_some_and(char::is_alphanumeric);
        previous = Some(c);
        if !boundary {
            continue;
        }
        let mut lowered = Vec::with_capacity(wanted.len());
        let mut end = start;
        for (i, c) in text.get(start..).unwrap_or("").char_indices() {
            if lowered.len() >= wanted.len() {
                break;
            }
            lowered.extend(c.to_lowercase());
            end = start + i + c.len_utf8();
        }
        let next = text.get(end..).and_then(|t| t.chars().next());
        if lowered == wanted && !next.is_some_and(char::is_alphanumeric) {
            out.push((start, end));
        }
    }
    out
}

/// `(id, text)` of every row `sql` selects (a NULL text is skipped).
fn rows_of(conn: &Connection, sql: &str) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        if let (id, Some(text)) = row? {
            out.push((id, text));
        }
    }
    Ok(out)
}

/// Replaces the mentions of `person` in the rows of everyone else (the person's own rows are
/// scrubbed whole before this runs): text columns, and raw mail, where a mention in plain
/// bytes is overwritten and one only found once decoded (RFC 2047, base64, quoted-printable)
/// drops the raw bytes. Returns how many event details changed.
fn mentions(conn: &Connection, person: &Person) -> Result<usize> {
    let columns: &[(&str, &str, &str)] = &[
        (
            "incidents",
            "subject",
            "id NOT IN (SELECT id FROM erase_incidents)",
        ),
        (
            "incidents",
            "summary",
            "id NOT IN (SELECT id FROM erase_incidents)",
        ),
        (
            "incidents",
            "recurring_reason",
            "id NOT IN (SELECT id FROM erase_incidents)",
        ),
        (
            "incidents",
            "root_cause",
            "id NOT IN (SELECT id FROM erase_incidents)",
        ),
        (
            "incidents",
            "prevention",
            "id NOT IN (SELECT id FROM erase_incidents)",
        ),
        (
            "incidents",
            "compensation",
            "id NOT IN (SELECT id FROM erase_incidents)",
        ),
        (
            "incidents",
            "customer_name",
            "id NOT IN (SELECT id FROM erase_incidents)",
        ),
        (
            "incidents",
            "reply_name",
            "id NOT IN (SELECT id FROM erase_incidents)",
        ),
        (
            "notes",
            "text",
            "incident_id NOT IN (SELECT id FROM erase_incidents)",
        ),
        (
            "held_replies",
            "text",
            "incident_id NOT IN (SELECT id FROM erase_incidents)",
        ),
        ("suppressed", "reason", "1"),
        ("suppressed", "context", "1"),
        (
            "outbox",
            "context",
            "id NOT IN (SELECT id FROM erase_outbox)",
        ),
        (
            "outbox",
            "subject",
            "id NOT IN (SELECT id FROM erase_outbox)",
        ),
        (
            "outbox",
            "recipient_name",
            "id NOT IN (SELECT id FROM erase_outbox)",
        ),
        (
            "outbox",
            "last_error",
            "id NOT IN (SELECT id FROM erase_outbox)",
        ),
        (
            "send_attempts",
            "detail",
            "outbox_id NOT IN (SELECT id FROM erase_outbox)",
        ),
        (
            "messages",
            "subject",
            "id NOT IN (SELECT id FROM erase_messages)",
        ),
        (
            "messages",
            "from_addr",
            "id NOT IN (SELECT id FROM erase_messages)",
        ),
        (
            "messages",
            "to_addr",
            "id NOT IN (SELECT id FROM erase_messages)",
        ),
        (
            "messages",
            "class_reason",
            "id NOT IN (SELECT id FROM erase_messages)",
        ),
        (
            "messages",
            "trust_reason",
            "id NOT IN (SELECT id FROM erase_messages)",
        ),
        ("events", "detail", "1"),
        ("events", "actor", "1"),
    ];
    let mut events = 0;
    for (table, column, others) in columns {
        let rows = rows_of(
            conn,
            &format!("SELECT rowid, {column} FROM {table} WHERE {others}"),
        )?;
        for (id, text) in rows {
            if let Some(clean) = person.scrub(&text) {
                conn.execute(
                    &format!("UPDATE {table} SET {column} = ?1 WHERE rowid = ?2"),
                    params![clean, id],
                )?;
                if *table == "events" && *column == "detail" {
                    events += 1;
                }
            }
        }
    }
    // Attachment names (a table without rowids).
    {
        let mut stmt = conn.prepare(
            "SELECT message_row, position, name FROM attachments
             WHERE name IS NOT NULL AND message_row NOT IN (SELECT id FROM erase_messages)",
        )?;
        let rows: Vec<(i64, i64, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (row, position, name) in rows {
            if let Some(clean) = person.scrub(&name) {
                conn.execute(
                    "UPDATE attachments SET name = ?1 WHERE message_row = ?2 AND position = ?3",
                    params![clean, row, position],
                )?;
            }
        }
    }
    // Raw mail, ours and theirs.
    for (table, key, raw, others) in [
        (
            "message_raw",
            "message_id",
            "raw",
            "message_id NOT IN (SELECT id FROM erase_messages)",
        ),
        (
            "outbox",
            "id",
            "raw",
            "id NOT IN (SELECT id FROM erase_outbox) AND raw IS NOT NULL",
        ),
    ] {
        let mut stmt = conn.prepare(&format!("SELECT {key}, {raw} FROM {table} WHERE {others}"))?;
        let rows: Vec<(i64, Vec<u8>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, bytes) in rows {
            // Plain mentions are overwritten in place (UTF-8 mail, which is nearly all);
            // whatever still names them once decoded cannot be, and the raw bytes go.
            let (kept, still) = match std::str::from_utf8(&bytes) {
                Ok(text) => {
                    let kept = person
                        .scrub(text)
                        .map_or_else(|| bytes.clone(), String::into_bytes);
                    let still = person.scrub(&decoded(&kept)).is_some();
                    (kept, still)
                }
                Err(_) => {
                    let plain = String::from_utf8_lossy(&bytes);
                    let still =
                        person.scrub(&plain).is_some() || person.scrub(&decoded(&bytes)).is_some();
                    (bytes.clone(), still)
                }
            };
            if still {
                // Encoded where it cannot be rewritten in place: the bytes go, the record stays.
                if table == "message_raw" {
                    conn.execute("DELETE FROM message_raw WHERE message_id = ?1", [id])?;
                    conn.execute(
                        "UPDATE messages SET raw_dropped_at = (SELECT since FROM erasing LIMIT 1)
                         WHERE id = ?1",
                        [id],
                    )?;
                } else {
                    conn.execute("UPDATE outbox SET raw = NULL WHERE id = ?1", [id])?;
                }
            } else if kept != bytes {
                conn.execute(
                    &format!("UPDATE {table} SET {raw} = ?1 WHERE {key} = ?2"),
                    params![kept, id],
                )?;
            }
        }
    }
    Ok(events)
}

/// Everything a reader of the mail sees, decoded: its headers, text and HTML parts.
fn decoded(raw: &[u8]) -> String {
    let readable = crate::mail::readable(raw);
    let mut out = String::new();
    for (name, value) in &readable.headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push('\n');
    }
    out.push_str(&readable.text);
    for text in crate::mail::sent_texts(raw) {
        out.push('\n');
        out.push_str(&text);
    }
    out
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
        let mut stmt = conn.prepare_cached(sql!(
            "SELECT i.id FROM incidents i
             WHERE i.state = {State::Closed}
               AND (SELECT max(e.at) FROM events e
                    WHERE e.incident_id = i.id AND e.kind = {EventKind::Closed}) < ?1
               AND EXISTS (SELECT 1 FROM messages m JOIN message_raw r ON r.message_id = m.id
                           WHERE m.incident_id = i.id)
             ORDER BY i.id"
        ))?;
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
    use super::Person;

    #[test]
    fn every_form_of_their_address_and_their_full_name_is_scrubbed_and_nothing_else() {
        let mut ann = Person::new("ann.lee@gmail.com");
        ann.add_name(Some("Ann Lee"));
        ann.add_name(Some("Ann"));
        let text = "From Ann Lee <Ann.Lee+shop@GoogleMail.com>, cc annlee@gmail.com, joann.lee@gmail.com; \
                    ask ANN LEE. Ann said hi. Anne Leeway wrote to ann.lee@gmail.com.";
        let clean = ann.scrub(text).expect("mentions");
        assert_eq!(
            clean,
            "From [erased] <[erased]>, cc [erased], joann.lee@gmail.com; ask [erased]. Ann said hi. \
             Anne Leeway wrote to [erased]."
        );
        assert_eq!(ann.scrub("Bob wrote: all fine"), None);
        assert_eq!(
            ann.scrub("İstanbul: Ann Lee, ünïcode"),
            Some("İstanbul: [erased], ünïcode".into())
        );
    }
}
