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
    let row = record_message(conn, incoming, mail, incident, now)?;
    store::events::log(
        conn,
        &NewEvent {
            incident,
            message: Some(row),
            kind: EventKind::AutomatedIgnored,
            actor: Actor::Daemon,
            detail: format!(
                "{} mail from {} not answered ({})",
                mail.class, mail.from.address, mail.class_reason
            ),
        },
        now,
    )?;
    Ok(Outcome::Ignored { class: mail.class })
}

/// An address a bounce says failed for good, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeliverableMark {
    pub address: String,
    pub incident: IncidentNo,
    pub reason: String,
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
            reason: format!(
                "{} bounced ({})",
                sent.kind,
                if report.is_dsn {
                    "delivery status report: failed"
                } else {
                    "mailer-daemon notice"
                }
            ),
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
    let row = record_message(conn, incoming, mail, incident, now)?;
    for mark in undeliverable_marks(report, &ours) {
        if store::outbox::mark_undeliverable(
            conn,
            &mark.address,
            &mark.reason,
            Some(mark.incident),
            row,
            now,
        )? {
            store::events::log(
                conn,
                &NewEvent {
                    incident: Some(mark.incident),
                    message: Some(row),
                    kind: EventKind::RecipientUndeliverable,
                    actor: Actor::Daemon,
                    detail: format!(
                        "{} marked undeliverable: {}; no automatic mail goes there until a \
                         human reply from it arrives or staff clear it",
                        mark.address, mark.reason
                    ),
                },
                now,
            )?;
            let event = Event::Undeliverable {
                address: mark.address.clone(),
                reason: mark.reason.clone(),
            };
            let (_, applied) = act(conn, deps, mark.incident, &event, Pass::Real, now)?;
            *queued += applied.queued();
        }
    }
    let detail = match (&incident, ours.is_empty()) {
        (Some(n), false) => format!(
            "bounce from {} about our mail to incident #{n}; failed: {}; delayed: {}",
            mail.from.address,
            list_or_none(&report.failed),
            list_or_none(&report.delayed)
        ),
        (Some(n), true) => format!(
            "bounce from {} names a mail of incident #{n} we have no record of sending",
            mail.from.address
        ),
        (None, _) => format!(
            "bounce from {} about mail we did not send ({}); not answered",
            mail.from.address,
            if report.original_ids.is_empty() {
                "no Message-ID found in it".to_string()
            } else {
                format!("original <{}>", report.original_ids.join(">, <"))
            }
        ),
    };
    store::events::log(
        conn,
        &NewEvent {
            incident,
            message: Some(row),
            kind: EventKind::Bounce,
            actor: Actor::Daemon,
            detail,
        },
        now,
    )?;
    Ok(Outcome::Ignored {
        class: MessageClass::Bounce,
    })
}

pub(super) fn list_or_none(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}
