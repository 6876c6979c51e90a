//! Mail no person wrote: recorded with its class, linked to the incident it is about, never
//! answered; a delivery report marks the address it names undeliverable.

use super::*;

pub(super) fn record_automated(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Outcome, ActError> {
    if let Some(report) = &mail.bounce {
        return record_bounce(conn, deps, incoming, mail, report, now, queued);
    }
    // Linked to an incident only through its references, for the record; never answered.
    let incident = candidates(conn, deps, mail)?
        .into_iter()
        .find(|c| c.via == Evidence::Reference)
        .map(|c| c.incident);
    let row = record_message(conn, deps, incoming, mail, incident, now)?;
    let class = mail.class.to_string();
    let arrival = Arrival::Automated {
        class: &class,
        from: &mail.from.address,
        reason: &mail.class_reason,
    };
    note(conn, deps, incident, Some(row), &arrival, now)?;
    Ok(Outcome::Ignored { class: mail.class })
}

/// An address a bounce says failed for good, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeliverableMark {
    pub address: String,
    pub incident: IncidentNo,
    /// Why, for staff: which of our mails bounced, and how the report said so.
    pub reason: Said,
}

/// Which recipients a bounce marks undeliverable: only those we really sent the bounced mail
/// to, so a forged or misdirected report cannot silence anyone else. A machine-readable report
/// names them (`Action: failed`); an old-style notice names nobody a program can trust, so it
/// is about the recipient of the mail it quotes.
pub fn undeliverable_marks(report: &BounceReport, ours: &[SentMail]) -> Vec<UndeliverableMark> {
    let failed: Vec<&String> = if report.is_dsn {
        report.failed.iter().collect()
    } else {
        ours.iter().map(|s| &s.recipient).collect()
    };
    let mut marks: Vec<UndeliverableMark> = Vec::new();
    for address in failed {
        let Some(sent) = ours.iter().find(|s| &s.recipient == address) else {
            continue;
        };
        if marks.iter().any(|m| &m.address == address) {
            continue;
        }
        marks.push(UndeliverableMark {
            address: address.clone(),
            incident: sent.incident,
            reason: arrival::bounced(sent.kind, report.is_dsn),
        });
    }
    marks
}

/// A bounce: linked to the incident of the mail that bounced, and the recipients it says failed
/// marked undeliverable (see [`undeliverable_marks`]); staff are told.
pub(super) fn record_bounce(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    report: &BounceReport,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Outcome, ActError> {
    let mut ours: Vec<SentMail> = Vec::new();
    for id in &report.original_ids {
        if let Some(sent) = store::outbox::by_message_id(conn, id)? {
            ours.push(sent);
        }
    }
    let incident = ours.first().map(|s| s.incident).or_else(|| {
        report
            .original_ids
            .iter()
            .find_map(|id| deps.secret.verify_message_id(id).map(IncidentNo))
    });
    let row = record_message(conn, deps, incoming, mail, incident, now)?;
    for mark in undeliverable_marks(report, &ours) {
        let reason = deps.policy().say(&mark.reason);
        if store::outbox::mark_undeliverable(
            conn,
            &mark.address,
            &reason,
            Some(mark.incident),
            row,
            now,
        )? {
            let arrival = Arrival::Undeliverable {
                address: &mark.address,
                reason: &reason,
            };
            note(conn, deps, Some(mark.incident), Some(row), &arrival, now)?;
            let event = Event::Undeliverable {
                address: mark.address.clone(),
                reason,
            };
            let (_, applied) = act(conn, deps, mark.incident, &event, Pass::Real, now)?;
            *queued += applied.queued();
        }
    }
    let arrival = Arrival::Bounce {
        from: &mail.from.address,
        incident,
        ours: !ours.is_empty(),
        failed: &report.failed,
        delayed: &report.delayed,
        original_ids: &report.original_ids,
    };
    note(conn, deps, incident, Some(row), &arrival, now)?;
    Ok(Outcome::Ignored {
        class: MessageClass::Bounce,
    })
}
