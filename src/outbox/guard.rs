//! What a thread holds of ours, and the last guard before a customer mail is queued.
//!
//! A reply is read against every mail we sent into its thread (see
//! [`crate::mail::own_words`]): what the client quoted of ours, however it quoted it, is not the
//! writer's. The staff-only part of that (notifications, escalations, internal notes) must never
//! reach a customer: [`staff_only_text`] finds it in a customer mail about to be queued.

use rusqlite::Connection;
use serde_json::Value;

use crate::deps::Deps;
use crate::incident::{Audience, IncidentNo, NoteVisibility};
use crate::mail::OurMail;
use crate::store::{self, StoreError};

/// Mails read per thread, newest first: a long incident's whole staff thread and the customer
/// mails a reply may quote. The byte budget of [`OurMail`] bounds it too.
const THREAD_MAILS: usize = 80;

/// Everything we wrote into incident `n`'s threads, the notes staff keep to themselves, and
/// what the customer wrote (never staff-only, though notifications quote it).
pub fn thread_mail(conn: &Connection, n: IncidentNo) -> Result<OurMail, StoreError> {
    let mut ours = OurMail::none();
    add_notes(conn, n, &mut ours)?;
    add_customer_words(conn, n, &mut ours)?;
    // Customer mail is added as public (`staff_only` false), staff mail as staff-only.
    for (kind, raw) in store::outbox::composed_about(conn, n, THREAD_MAILS)? {
        let staff_only = kind.audience() == Audience::Staff;
        for text in crate::mail::sent_texts(&raw) {
            if !ours.add(&text, staff_only) {
                return Ok(ours);
            }
        }
    }
    Ok(ours)
}

fn add_notes(conn: &Connection, n: IncidentNo, ours: &mut OurMail) -> Result<(), StoreError> {
    for note in store::incidents::notes(conn, n)? {
        match note.visibility {
            NoteVisibility::Internal => ours.add(&note.text, true),
            _ => ours.add_public(&note.text),
        };
    }
    Ok(())
}

/// What the customer wrote: an internal note or a notification that repeats it does not make
/// it staff-only.
fn add_customer_words(
    conn: &Connection,
    n: IncidentNo,
    ours: &mut OurMail,
) -> Result<(), StoreError> {
    for raw in store::messages::human_raws_about(conn, n, THREAD_MAILS)? {
        for text in crate::mail::sent_texts(&raw) {
            if !ours.add_public(&text) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// What the customer wrote, and what we sent them.
fn add_public(conn: &Connection, n: IncidentNo, ours: &mut OurMail) -> Result<(), StoreError> {
    add_customer_words(conn, n, ours)?;
    for (kind, raw) in store::outbox::composed_about(conn, n, THREAD_MAILS)? {
        if kind.audience() == Audience::Customer {
            for text in crate::mail::sent_texts(&raw) {
                if !ours.add_public(&text) {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// The lines of `texts` that carry an internal note of incident `n` or a fixed line of a
/// staff-only template: what a customer mail must never say. Empty when it is clean.
pub fn staff_only_text(
    conn: &Connection,
    deps: &Deps,
    n: IncidentNo,
    texts: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut guard = deps.templates.staff_only().clone();
    add_notes(conn, n, &mut guard)?;
    let found = found_in(&guard, texts);
    if found.is_empty() {
        return Ok(found);
    }
    // Rare: only then is what the customer wrote and was sent read, so that a note quoting
    // the customer does not stop the mail that quotes them too.
    add_public(conn, n, &mut guard)?;
    Ok(found_in(&guard, texts))
}

fn found_in(guard: &OurMail, texts: &[String]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for text in texts {
        for line in guard.staff_only_lines(text) {
            if !found.contains(&line) {
                found.push(line);
            }
        }
    }
    found
}

/// Every string in a mail's template data, one per line: what staff and customers wrote that
/// it carries, whatever template renders it.
pub fn data_text(data: &Value) -> String {
    fn walk(value: &Value, out: &mut String) {
        match value {
            Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Value::Array(list) => list.iter().for_each(|v| walk(v, out)),
            Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    walk(data, &mut out);
    out
}
