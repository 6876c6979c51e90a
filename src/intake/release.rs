//! Held mail a person vouches for: `followupd quarantine release ID`, and `#release` in a
//! reply to a held-mail notice, put a quarantined message through intake again as if the check
//! that held it had passed. The sender check and the stranger rule are a person's call now;
//! what no person can vouch for stays held: mail claiming to be from staff (a forgery would
//! act as the team) and a second message under a Message-ID already on record.

use super::*;

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("there is no incoming message {0}")]
    NotFound(MessageRow),
    #[error("message {0} is not held in quarantine")]
    NotHeld(MessageRow),
    #[error("message {0} was released already, as message {1}")]
    Released(MessageRow, MessageRow),
    #[error("message {0}: its raw text is no longer kept, so it cannot go through intake again")]
    RawGone(MessageRow),
    #[error("message {0} still cannot be read: {1}")]
    Unreadable(MessageRow, String),
    #[error(
        "message {0} claims a staff sender ({1}): mail from staff is never released, since a \
         forgery would act as the team; ask them to reply to the notification again"
    )]
    StaffSender(MessageRow, String),
    #[error(
        "message {0} carries the Message-ID of message {1}, which is on record with other \
         content; it stays held"
    )]
    SameId(MessageRow, MessageRow),
    #[error("message {0} was held again: {1}")]
    HeldAgain(MessageRow, String),
    #[error(transparent)]
    Act(#[from] ActError),
}

impl From<StoreError> for ReleaseError {
    fn from(e: StoreError) -> Self {
        ReleaseError::Act(e.into())
    }
}

/// Puts held message `row` through intake again, vouched for by `by`, in the caller's
/// transaction. Returns what intake made of it and the mails it queued; an error changes
/// nothing (the caller rolls back).
pub fn release(
    conn: &Connection,
    deps: &Deps,
    row: MessageRow,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(Outcome, usize), ReleaseError> {
    let held = store::messages::held_message(conn, row)?.ok_or(ReleaseError::NotFound(row))?;
    if let Some(as_row) = held.released_as {
        return Err(ReleaseError::Released(row, as_row));
    }
    if !held.quarantined {
        return Err(ReleaseError::NotHeld(row));
    }
    let raw = store::messages::raw_if_kept(conn, row)?.ok_or(ReleaseError::RawGone(row))?;
    let sha = sha256_hex(&raw);
    let mut mail = mail::parse(&raw, &deps.config).map_err(|q| {
        ReleaseError::Unreadable(row, deps.policy().say(&arrival::unreadable(&q.reason)))
    })?;
    let staff = &deps.config.staff;
    let from = mail.from.address.clone();
    if staff.is_member(&from) || staff.notify.iter().any(|a| a.eq_ignore_ascii_case(&from)) {
        return Err(ReleaseError::StaffSender(row, from));
    }
    let key = dedupe_key(mail.message_id.as_deref(), &sha);
    if let Some(other) = store::messages::find_by_dedupe_key(conn, &key)? {
        if other.id != row {
            return Err(ReleaseError::SameId(row, other.id));
        }
    }
    // The mail keeps its identity and its place in the mailbox, now on the row intake
    // records it as.
    store::messages::hand_over_held(conn, row)?;
    mail.trust = crate::mail::Verdict {
        level: crate::mail::Trust::Verified,
        reason: deps.policy().say(&crate::said!("arrival.vouched", by = by)),
        strict: false,
    };
    let fallback = (
        "(released)".to_string(),
        0,
        u32::try_from(row.0).unwrap_or(0),
    );
    let (mailbox, uidvalidity, uid) = held.imap.clone().unwrap_or(fallback);
    let incoming = Incoming {
        origin: ImapOrigin {
            mailbox: &mailbox,
            uidvalidity,
            uid,
        },
        raw: &raw,
        sha,
        dedupe_key: key,
        oversize: None,
        vouched: true,
    };
    let mut queued = 0;
    let outcome = if mail.class == MessageClass::Human {
        record_human(conn, deps, &incoming, &mail, now, &mut queued)?
    } else {
        record_automated(conn, deps, &incoming, &mail, now, &mut queued)?
    };
    if let Outcome::Quarantined { reason } | Outcome::Held { reason } = &outcome {
        return Err(ReleaseError::HeldAgain(row, reason.clone()));
    }
    let incident = match &outcome {
        Outcome::Opened { incident } | Outcome::Joined { incident } => Some(*incident),
        _ => None,
    };
    if let Some(new) = store::messages::find_by_dedupe_key(conn, &incoming.dedupe_key)? {
        store::messages::mark_released(conn, row, new.id)?;
    }
    store::events::log(
        conn,
        &crate::incident::NewEvent {
            incident,
            message: Some(row),
            kind: EventKind::QuarantineReleased,
            actor: crate::incident::Actor::Staff(by.to_string()),
            detail: deps
                .policy()
                .say(&crate::said!("arrival.released", row = row, by = by)),
        },
        now,
    )?;
    // Finished with in the mailbox like any other mail: marked or moved on the next pass.
    if held.imap.is_some()
        && deps.config.imap.after_processing != crate::config::AfterProcessing::Leave
    {
        checkpoints::set_after_processing(
            conn,
            &mailbox,
            uidvalidity,
            &[uid],
            AfterProcessing::Pending,
        )?;
    }
    Ok((outcome, queued))
}
