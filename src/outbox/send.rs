//! Send: due mail handed to the relay over pooled SMTP connections, every attempt recorded.
//!
//! Mails are marked `sending` before the hand-off and each result is committed as soon as the
//! server has answered, so a crash leaves only the mails in flight in doubt, and knows which
//! they are. Every mail also goes, envelope-only, to the support address: that copy coming back
//! through intake is its receipt.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde_json::Value;

use super::compose::{compose, ComposeError, Letter};
use crate::clock::{after, stamp};
use crate::config::OutboxConfig;
use crate::deps::Deps;
use crate::errors::Chain;
use crate::incident::{Actor, EventKind, NewEvent};
use crate::said;
use crate::smtp::{SendError, Smtp};
use crate::store::outbox::InDoubtRule;
use crate::store::{self, Handle, Outgoing, StoreError};
use crate::templates::Phrases;

/// Rows taken from the outbox per round.
const ROUND: usize = 256;

/// Exponential backoff: initial, 2×, 4×, … capped at max.
pub fn retry_delay(attempts_so_far: i64, cfg: &OutboxConfig) -> Duration {
    let exponent = u32::try_from(attempts_so_far.clamp(0, 30)).unwrap_or(30);
    cfg.retry_initial
        .checked_mul(2u32.saturating_pow(exponent))
        .unwrap_or(cfg.retry_max)
        .min(cfg.retry_max)
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DrainReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
    /// The relay could not be reached (why): the rest of the queue waits for it.
    pub unreachable: Option<String>,
}

/// Database writes that fail (a full disk, a read-only directory) are retried with backoff and
/// logged once when the trouble starts, with its cause, and once when it ends.
#[derive(Default)]
pub struct DbTrouble {
    since: Option<std::time::Instant>,
    /// Retry until the write works (the daemon), or give up after one round of retries and
    /// report the error (`run --once`).
    patient: bool,
    /// Called on every retry: a task patiently waiting for the disk is alive, and must not look
    /// stuck to the watchdog.
    alive: Option<Box<dyn Fn() + Send + Sync>>,
}

/// The longest wait between two tries of a failed database write.
const DB_RETRY_MAX: Duration = Duration::from_secs(5);

impl DbTrouble {
    /// For the daemon: a write is retried until it works or the daemon stops.
    pub fn patient(alive: impl Fn() + Send + Sync + 'static) -> DbTrouble {
        DbTrouble {
            since: None,
            patient: true,
            alive: Some(Box::new(alive)),
        }
    }

    pub fn failed(&mut self, what: &str, e: &StoreError) {
        if self.since.is_none() {
            self.since = Some(std::time::Instant::now());
            tracing::error!(error = %Chain(e), what, "database write failed; retrying until it works");
        } else {
            tracing::debug!(error = %Chain(e), what, "database write failed again");
        }
    }

    pub fn cleared(&mut self) {
        if let Some(since) = self.since.take() {
            let secs = since.elapsed().as_secs();
            tracing::info!(
                after = %humantime::format_duration(Duration::from_secs(secs)),
                "database writes work again"
            );
        }
    }
}

/// Runs a database write until it works (or `stop()`): a result the relay gave must not be
/// lost because the disk was full for a minute.
async fn persist<T, F>(
    db: &mut Handle,
    trouble: &mut DbTrouble,
    stop: &dyn Fn() -> bool,
    what: &'static str,
    write: F,
) -> Result<T, StoreError>
where
    F: Fn(&mut rusqlite::Connection) -> Result<T, StoreError> + Clone + Send + 'static,
    T: Send + 'static,
{
    let mut wait = Duration::from_millis(250);
    loop {
        match db.run(write.clone()).await {
            Ok(done) => {
                trouble.cleared();
                return Ok(done);
            }
            Err(e) => {
                trouble.failed(what, &e);
                if stop() || (!trouble.patient && wait >= DB_RETRY_MAX) {
                    return Err(e);
                }
                if let Some(alive) = &trouble.alive {
                    alive();
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(DB_RETRY_MAX);
            }
        }
    }
}

/// Which mail in doubt may go again now: its receipt was looked for past the margin and none
/// came, or intake has been stuck for a whole grace (then it goes at its grace).
async fn in_doubt_rule(
    db: &mut Handle,
    deps: &Deps,
    now: DateTime<Utc>,
) -> Result<InDoubtRule, StoreError> {
    let mailbox = deps.config.imap.mailbox.clone();
    let status = db
        .run(move |c| store::checkpoints::intake_status(c, &mailbox))
        .await?;
    let outbox = &deps.config.outbox;
    Ok(InDoubtRule {
        settled_before: status
            .and_then(|s| s.read_through)
            .map(|t| crate::clock::before(t, outbox.receipt_margin)),
        intake_stalled: status
            .is_none_or(|s| s.progress_at < crate::clock::before(now, outbox.in_doubt_grace)),
    })
}

/// Sends everything due now; returns when nothing due is left, the relay cannot be reached,
/// or `stop()` says so. Every mail it marks `sending` ends recorded (sent, retried, failed),
/// or, if the database will not take the result before a stop, in doubt at the next drain.
pub async fn drain(
    db: &mut Handle,
    deps: &Arc<Deps>,
    smtp: &Smtp,
    stop: &dyn Fn() -> bool,
    trouble: &mut DbTrouble,
) -> Result<DrainReport, StoreError> {
    let mut report = DrainReport::default();
    let concurrency = (deps.config.smtp.connections as usize).max(1);
    // Nothing is in flight between drains: a row still `sending` lost its sender.
    hold_in_doubt(db, deps, "left in flight by a step that failed").await?;
    loop {
        if stop() {
            break;
        }
        let now = deps.now();
        let rule = in_doubt_rule(db, deps, now).await?;
        let due = db
            .run(move |c| store::outbox::due_outgoing(c, now, rule, ROUND))
            .await?;
        if due.is_empty() {
            break;
        }
        let mut ready = Vec::with_capacity(due.len());
        for out in due {
            match rendered(db, deps, out).await? {
                Rendered::Ready(out, raw) => ready.push((*out, raw)),
                Rendered::Later => report.retrying += 1,
                Rendered::Failed => report.failed += 1,
            }
        }
        // Keep `concurrency` mails in flight, each marked 'sending' just before its hand-off,
        // so a crash leaves at most that many in doubt.
        let mut waiting = ready.into_iter();
        let mut in_flight = FuturesUnordered::new();
        let mut cannot_mark: Option<StoreError> = None;
        loop {
            while in_flight.len() < concurrency
                && report.unreachable.is_none()
                && cannot_mark.is_none()
                && !stop()
            {
                let Some((out, raw)) = waiting.next() else {
                    break;
                };
                let id = out.id;
                match db.run(move |c| store::outbox::mark_sending(c, &[id])).await {
                    Ok(()) => in_flight.push(send_one(deps, smtp, out, raw)),
                    Err(e) => {
                        // Not sent: it stays queued. The mails in flight are still recorded.
                        trouble.failed("marking a mail as being sent", &e);
                        cannot_mark = Some(e);
                    }
                }
            }
            let Some((out, raw, result)) = in_flight.next().await else {
                break;
            };
            if let Err(SendError::Unreachable(why)) = &result {
                report.unreachable.get_or_insert_with(|| why.clone());
            }
            record(db, deps, out, raw, result, &mut report, stop, trouble).await?;
        }
        if let Some(e) = cannot_mark {
            return Err(e);
        }
        if report.unreachable.is_some() {
            break;
        }
    }
    Ok(report)
}

/// Hands one mail to the relay: to its recipient, plus the envelope-only receipt copy.
async fn send_one(
    deps: &Deps,
    smtp: &Smtp,
    out: Outgoing,
    raw: Vec<u8>,
) -> (Outgoing, Vec<u8>, Result<String, SendError>) {
    let support = deps.config.support.address.as_str();
    let mut to = vec![out.recipient.as_str()];
    if deps.config.outbox.receipt_copies {
        to.push(support);
    }
    let result = smtp.send(support, &to, &raw).await;
    (out, raw, result)
}

/// A queued mail made ready to send, or why not.
enum Rendered {
    Ready(Box<Outgoing>, Vec<u8>),
    /// Cannot be rendered yet (a template error staff can fix): rescheduled with backoff.
    Later,
    /// Can never be rendered (bad data, an address no mail can be written to): kept as failed.
    Failed,
}

/// What to do with a mail whose rendering failed `attempts_so_far` times already: retry after
/// the backoff, or give up for good.
pub fn after_render_error(
    error: &ComposeError,
    attempts_so_far: i64,
    cfg: &OutboxConfig,
) -> Option<Duration> {
    (!error.is_permanent()).then(|| retry_delay(attempts_so_far, cfg))
}

/// The bytes to send: stored ones, or rendered now (and stored) if rendering failed at queue
/// time. A template error reschedules the row with backoff; a permanent error fails it, with
/// an event for staff, so it is never retried forever.
async fn rendered(
    db: &mut Handle,
    deps: &Arc<Deps>,
    out: Outgoing,
) -> Result<Rendered, StoreError> {
    if let Some(raw) = out.raw.clone() {
        return Ok(Rendered::Ready(Box::new(out), raw));
    }
    let now = deps.now();
    // A staff reply's attachments travel with the note; read them from its recorded bytes.
    let attachments = match out.attachments_from {
        Some(row) => {
            let raw = db
                .run(move |c| store::messages::message_raw(c, row))
                .await?;
            crate::mail::attachment_parts(&raw, super::queue::MAX_FORWARDED)
        }
        None => Vec::new(),
    };
    let composed = serde_json::from_str::<Value>(&out.context)
        .map_err(ComposeError::from)
        .and_then(|data| {
            let letter = Letter {
                kind: out.kind,
                message_id: &out.message_id,
                recipient: &out.recipient,
                recipient_name: out.recipient_name.as_deref(),
                in_reply_to: out.in_reply_to.as_deref(),
                references: &out.references,
                thread_index: out.thread_index.as_deref(),
            };
            crate::contain::caught(|| {
                compose(
                    &letter,
                    &data,
                    &deps.templates,
                    &deps.config.support,
                    &attachments,
                    now,
                )
            })
            .unwrap_or_else(|panic| Err(ComposeError::Panic(panic)))
        });
    match composed {
        Ok(composed) => {
            let id = out.id;
            let raw = composed.raw.clone();
            let subject = composed.subject.clone();
            db.run(move |c| store::outbox::store_rendered(c, id, &composed.raw, &composed.subject))
                .await?;
            let mut out = out;
            out.subject = Some(subject);
            Ok(Rendered::Ready(Box::new(out), raw))
        }
        Err(e) => match after_render_error(&e, out.attempts, &deps.config.outbox) {
            Some(delay) => {
                let retry_at = after(now, delay);
                let error = format!("render: {}", Chain(&e));
                tracing::error!(outbox = out.id, incident = out.incident.0, error = %error, retry_in = %humantime::format_duration(delay), "cannot render queued mail; will retry");
                let id = out.id;
                db.run(move |c| store::outbox::retry_later(c, id, &error, retry_at, now))
                    .await?;
                Ok(Rendered::Later)
            }
            None => {
                let words = deps.templates.shared_phrases();
                let error = words.say(None, &said!("outbox.cannot_build", error = Chain(&e)));
                tracing::error!(outbox = out.id, incident = out.incident.0, error = %error, "queued mail can never be rendered; kept as failed for staff");
                let kind = match e {
                    ComposeError::Address { .. } => EventKind::RecipientInvalid,
                    _ => EventKind::MailFailed,
                };
                db.run(move |c| {
                    let tx = c.transaction()?;
                    store::outbox::give_up(&tx, out.id, &error, now)?;
                    store::events::log(
                        &tx,
                        &NewEvent {
                            incident: Some(out.incident),
                            message: None,
                            kind,
                            actor: Actor::Daemon,
                            detail: words.say(
                                None,
                                &said!(
                                    "outbox.failed",
                                    kind = out.kind,
                                    to = out.recipient,
                                    reason = error
                                ),
                            ),
                        },
                        now,
                    )?;
                    tx.commit()?;
                    Ok(())
                })
                .await?;
                Ok(Rendered::Failed)
            }
        },
    }
}

#[allow(clippy::too_many_arguments)]
async fn record(
    db: &mut Handle,
    deps: &Arc<Deps>,
    out: Outgoing,
    raw: Vec<u8>,
    result: Result<String, SendError>,
    report: &mut DrainReport,
    stop: &dyn Fn() -> bool,
    trouble: &mut DbTrouble,
) -> Result<(), StoreError> {
    let now = deps.now();
    match result {
        Ok(reply) => {
            tracing::info!(incident = out.incident.0, kind = %out.kind, to = %out.recipient, message_id = %out.message_id, "mail sent");
            let from = deps.config.support.address.clone();
            let out = Arc::new(out);
            let raw = Arc::new(raw);
            let words = deps.templates.shared_phrases();
            persist(db, trouble, stop, "recording a sent mail", move |c| {
                let tx = c.transaction()?;
                record_sent(&tx, &words, &out, &raw, &from, &reply, now)?;
                tx.commit()?;
                Ok(())
            })
            .await?;
            report.sent += 1;
        }
        Err(SendError::Unreachable(e)) => {
            tracing::debug!(incident = out.incident.0, kind = %out.kind, to = %out.recipient, error = %e, "relay unreachable; the mail waits for it");
            let id = out.id;
            persist(db, trouble, stop, "requeueing a mail", move |c| {
                store::outbox::requeue_unreachable(c, id, &e, now)
            })
            .await?;
            report.retrying += 1;
        }
        Err(SendError::Transient(e)) => {
            let delay = retry_delay(out.attempts, &deps.config.outbox);
            let retry_at = after(now, delay);
            tracing::warn!(incident = out.incident.0, kind = %out.kind, to = %out.recipient, error = %e, retry_in = %humantime::format_duration(delay), "send failed; will retry");
            let id = out.id;
            persist(db, trouble, stop, "rescheduling a mail", move |c| {
                store::outbox::retry_later(c, id, &e, retry_at, now)
            })
            .await?;
            report.retrying += 1;
        }
        Err(SendError::Permanent(e)) => {
            tracing::error!(incident = out.incident.0, kind = %out.kind, to = %out.recipient, error = %e, "send rejected permanently; kept as failed for staff");
            let (incident, kind, recipient, id) = (out.incident, out.kind, out.recipient, out.id);
            let detail = deps.templates.phrases().say(
                None,
                &said!("outbox.rejected", kind = kind, to = recipient, error = e),
            );
            persist(db, trouble, stop, "recording a refused mail", move |c| {
                let tx = c.transaction()?;
                store::outbox::give_up(&tx, id, &e, now)?;
                store::events::log(
                    &tx,
                    &NewEvent {
                        incident: Some(incident),
                        message: None,
                        kind: EventKind::MailFailed,
                        actor: Actor::Daemon,
                        detail: detail.clone(),
                    },
                    now,
                )?;
                tx.commit()?;
                Ok(())
            })
            .await?;
            report.failed += 1;
        }
    }
    Ok(())
}

/// Marks a mail sent (by the relay's answer or by its receipt) and logs it; idempotent.
/// Returns whether this call did the marking.
pub fn record_sent(
    conn: &rusqlite::Connection,
    words: &Phrases,
    out: &Outgoing,
    raw: &[u8],
    from: &str,
    reply: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Some(row) = store::outbox::record_sent(conn, out, raw, from, reply, now)? else {
        return Ok(false);
    };
    store::events::log(
        conn,
        &NewEvent {
            incident: Some(out.incident),
            message: Some(row),
            kind: EventKind::MailSent,
            actor: Actor::Daemon,
            detail: words.say(
                None,
                &said!(
                    "outbox.accepted",
                    kind = out.kind,
                    to = out.recipient,
                    reply = reply
                ),
            ),
        },
        now,
    )?;
    Ok(true)
}

/// Mails left `sending` (by a daemon that died, or a step that failed) may or may not have been
/// accepted by the relay. They go back to the queue in doubt since now: sent again only once
/// intake has read the support mailbox past now plus `receipt_margin` and found no receipt
/// (the receipt, if it comes, confirms them), or at `in_doubt_grace` if intake cannot read it.
/// Without receipt copies there is nothing to wait for: sent again at once (at-least-once,
/// with the same Message-ID).
pub async fn hold_in_doubt(
    db: &mut Handle,
    deps: &Deps,
    why: &'static str,
) -> Result<usize, StoreError> {
    let outbox = &deps.config.outbox;
    let now = deps.now();
    let (since, resend_at) = if outbox.receipt_copies {
        (Some(now), after(now, outbox.in_doubt_grace))
    } else {
        (None, now)
    };
    let words = deps.templates.shared_phrases();
    let held = db
        .run(move |c| requeue_in_doubt(c, &words, since, resend_at, now))
        .await?;
    if held > 0 {
        tracing::warn!(
            mails = held,
            why,
            receipt_margin = %humantime::format_duration(outbox.receipt_margin),
            "mails in doubt: each is sent again only if its receipt does not come back"
        );
    }
    Ok(held)
}

fn requeue_in_doubt(
    conn: &mut rusqlite::Connection,
    words: &Phrases,
    since: Option<DateTime<Utc>>,
    resend_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let rows = store::outbox::sending(conn)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let tx = conn.transaction()?;
    for mail in &rows {
        store::outbox::requeue_in_doubt(&tx, mail.id, since, resend_at)?;
        store::events::log(
            &tx,
            &NewEvent {
                incident: Some(mail.incident),
                message: None,
                kind: EventKind::MailInDoubt,
                actor: Actor::Daemon,
                detail: words.say(
                    None,
                    &match since {
                        Some(_) => said!(
                            "outbox.in_doubt",
                            kind = mail.kind,
                            to = mail.recipient,
                            resend = stamp(resend_at)
                        ),
                        None => said!(
                            "outbox.in_doubt_no_receipts",
                            kind = mail.kind,
                            to = mail.recipient
                        ),
                    },
                ),
            },
            now,
        )?;
    }
    tx.commit()?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented defaults.
    fn defaults() -> OutboxConfig {
        OutboxConfig {
            retry_initial: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            receipt_copies: true,
            in_doubt_grace: Duration::from_secs(600),
            receipt_margin: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let cfg = defaults();
        assert_eq!(retry_delay(0, &cfg), Duration::from_secs(30));
        assert_eq!(retry_delay(1, &cfg), Duration::from_secs(60));
        assert_eq!(retry_delay(3, &cfg), Duration::from_secs(240));
        assert_eq!(retry_delay(10, &cfg), Duration::from_secs(3600));
        assert_eq!(retry_delay(1_000, &cfg), Duration::from_secs(3600));
    }

    #[test]
    fn a_template_error_is_retried_with_backoff_an_impossible_address_never() {
        let cfg = defaults();
        let template = ComposeError::Template(crate::templates::TemplateError::Template {
            file: "acknowledgement.text.hbs".into(),
            line: Some(4),
            reason: "unknown variable `eta`".into(),
        });
        assert_eq!(
            after_render_error(&template, 0, &cfg),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            after_render_error(&template, 4, &cfg),
            Some(Duration::from_secs(480)),
            "not at full speed: the backoff grows"
        );
        let address = crate::outbox::compose::check_recipient("ann..smith@example.test")
            .expect_err("lettre refuses it");
        assert_eq!(after_render_error(&address, 0, &cfg), None);
        let data = ComposeError::Data(serde_json::from_str::<Value>("{").expect_err("bad json"));
        assert_eq!(after_render_error(&data, 0, &cfg), None);
    }
}
