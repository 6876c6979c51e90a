//! A staff member's mail: a signed reply acts on its incident, anything else claiming a staff
//! address is held as a forgery; a reply that cannot go to the customer as read is held.

use super::*;

/// A staff member's mail. A reply that names a notification signed for them (and, with a
/// trusted receiving server, passed its sender check) acts on that incident. Without that
/// proof, a mail that points at an incident is either the staff member's own mail to the
/// customer (the customer is among its recipients: recorded, it counts as news) or not to be
/// believed: held for staff, who are told. A fresh mail that points at nothing is left to the
/// ordinary path (staff may open an incident like anyone). None: not a staff matter.
pub(super) fn record_staff(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Option<Outcome>, ActError> {
    let staff = &deps.config.staff;
    let sender = mail.from.address.as_str();
    // Signed for this member, or for a team list every member reads; never for another
    // member's own address (a notification forwarded or leaked from them proves nothing).
    let mut signed_for: Vec<&str> = vec![sender];
    signed_for.extend(
        staff
            .notify
            .iter()
            .filter(|a| !staff.is_member(a))
            .map(String::as_str),
    );
    let answering = mail.referenced_ids.iter().find_map(|id| {
        deps.secret
            .verify_staff_message_id(id, &signed_for)
            .map(|s| (id.as_str(), s))
    });
    let signed = answering.as_ref().map(|(_, s)| *s);
    // A digest lists several incidents: a reply to it answers none of them alone (without
    // `#all` it is refused), and it is recorded on the first of them still open.
    let digest = match answering {
        Some((id, _)) => store::outbox::digest_listed(conn, id)?,
        None => Vec::new(),
    };
    let mut answered = signed.map(|s| IncidentNo(s.incident));
    for &listed in &digest {
        if store::incidents::incident(conn, listed)?
            .is_some_and(|i| i.state() == crate::incident::State::Open)
        {
            answered = Some(listed);
            break;
        }
    }
    let checked = crate::incident::policy::staff_sender_proven(
        deps.config.intake.trusted_authserv_id.is_some(),
        &mail.trust,
        staff,
    );
    let pointed: Vec<IncidentNo> = {
        let mut list: Vec<IncidentNo> = candidates(conn, deps, mail)?
            .into_iter()
            .map(|c| c.incident)
            .collect();
        list.dedup();
        list
    };
    let (incident, event) = match answered {
        Some(n) if checked && store::incidents::exists(conn, n)? => {
            let row = record_message_as(
                conn,
                deps,
                incoming,
                mail,
                Some(n),
                MessageClass::Staff,
                now,
            )?;
            index_ids(conn, mail, n)?;
            let ours = crate::outbox::guard::thread_mail(conn, n)?;
            let own = mail::own_words::read(&mail.body, &ours, Context::Reply);
            let mut staff_mail = crate::incident::staff_mail::read(&own);
            let unreadable = not_readable(deps, incoming, signed, now).or_else(|| {
                let all = staff_mail
                    .commands
                    .iter()
                    .any(|c| matches!(c, crate::incident::staff_mail::Command::ToAll { .. }));
                (!digest.is_empty() && !all)
                    .then(|| crate::said!("refusal.digest_reply", count = digest.len(), number = n))
            });
            if let Some(why) = unreadable.clone() {
                // Refused as a whole: the member is told why and what to do.
                staff_mail = crate::incident::staff_mail::StaffMail::refused("this reply", why);
            }
            let to_internal = staff.internal_address.as_deref().is_some_and(|internal| {
                mail.to
                    .iter()
                    .chain(&mail.cc)
                    .chain(&mail.delivered_to)
                    .any(|a| a.eq_ignore_ascii_case(internal))
            });
            staff_mail.internal |= to_internal;
            if staff_mail.release && unreadable.is_none() {
                staff_mail.release = false;
                let notice = answering.map(|(id, _)| id);
                let why = release_held(conn, deps, n, notice, sender, now, queued)?;
                let name = mail.from.name.clone().unwrap_or_default();
                if let Some(why) = why {
                    *queued += tell_member(conn, deps, (n, row), (sender, &name), why, now)?;
                    return Ok(Some(Outcome::Joined { incident: n }));
                }
                // The release was the whole answer: nothing else to act on.
                if staff_mail.text.trim().is_empty()
                    && staff_mail.commands.is_empty()
                    && !staff_mail.send
                {
                    return Ok(Some(Outcome::Joined { incident: n }));
                }
            }
            canned(conn, deps, n, &mut staff_mail)?;
            to_tag_targets(conn, n, &mut staff_mail)?;
            to_all_targets(conn, n, &digest, &mut staff_mail)?;
            let pending = store::incidents::held_reply(conn, n, sender)?;
            let held = if staff_mail.send {
                if let Some(kept) = &pending {
                    // `#send`: the held words, as they were shown, in place of this mail's.
                    let mut again = crate::incident::staff_mail::read_text(&kept.text);
                    again.greeting = kept.greeting.clone();
                    again.body = kept.text.clone();
                    again.send = true;
                    again.internal |= staff_mail.internal;
                    staff_mail = again;
                    canned(conn, deps, n, &mut staff_mail)?;
                    to_tag_targets(conn, n, &mut staff_mail)?;
                    to_all_targets(conn, n, &digest, &mut staff_mail)?;
                }
                None
            } else if unreadable.is_some() {
                None
            } else {
                match held_staff_reply(conn, deps, n, (&ours, &own), &staff_mail)? {
                    Some(held) => Some(held),
                    None => collision(
                        conn,
                        deps,
                        n,
                        sender,
                        answering.map(|(id, _)| id),
                        &staff_mail,
                    )?,
                }
            };
            let name = mail
                .from
                .name
                .clone()
                .unwrap_or_else(|| sender.split('@').next().unwrap_or(sender).to_string());
            // Reply-all: the customer has this mail from the member already, quoted
            // notification and all. Relaying it would send the same words twice; it is
            // recorded as the member's own mail to the customer (news, no mail).
            if let Some(customer) = store::incidents::incident(conn, n)? {
                let copied = mail.to.iter().chain(&mail.cc).any(|a| {
                    a.eq_ignore_ascii_case(&customer.customer_address)
                        || a.eq_ignore_ascii_case(&customer.reply_address)
                });
                if copied && !staff_mail.send {
                    let event = Event::StaffCorrespondence {
                        message: row,
                        by: sender.to_string(),
                        text: own.text(),
                    };
                    store::incidents::touch(conn, n, now)?;
                    let (_, applied) = act(conn, deps, n, &event, Pass::Real, now)?;
                    *queued += applied.queued();
                    // Its commands were not run (the customer read them raw): the member is
                    // told, rather than finding out from a resolution that never went.
                    if !staff_mail.commands.is_empty() {
                        let why = crate::said!("refusal.reply_all_commands");
                        let told = tell_member(conn, deps, (n, row), (sender, &name), why, now)?;
                        *queued += told;
                    }
                    return Ok(Some(Outcome::Joined { incident: n }));
                }
            }
            (
                n,
                Event::StaffReply {
                    message: row,
                    by: sender.to_string(),
                    name,
                    mail: staff_mail,
                    attachments: !mail.attachments.is_empty(),
                    held,
                    pending: pending.map(|p| p.id),
                },
            )
        }
        Some(n) if store::incidents::exists(conn, n)? => {
            let why = deps.policy().say(&if mail.trust.level == Trust::Verified {
                crate::said!("staff_sender.relaxed_only", reason = mail.trust.reason)
            } else {
                crate::said!(
                    "staff_sender.unverified_reply",
                    level = mail.trust.level,
                    reason = mail.trust.reason
                )
            });
            return forged(conn, deps, incoming, mail, n, why, now, queued).map(Some);
        }
        _ => {
            let Some(&n) = pointed.first() else {
                return Ok(None);
            };
            let customer = store::incidents::incident(conn, n)?
                .map(|i| i.customer_address)
                .unwrap_or_default();
            let to_customer = mail
                .to
                .iter()
                .chain(&mail.cc)
                .any(|a| a.eq_ignore_ascii_case(&customer));
            // The member's own mail, verified, that answers no notification of theirs (a
            // forwarded notification, a fresh mail naming the incident): a mistake, not an
            // attack. Kept, nothing done, and the member alone is told how to do it.
            if checked && !to_customer {
                let why = crate::said!("refusal.not_a_reply", number = n);
                let reason = deps.policy().say(&why);
                let row = hold_parsed(conn, deps, incoming, mail, &reason, now)?;
                let name = mail.from.name.clone().unwrap_or_default();
                *queued += tell_member(conn, deps, (n, row), (sender, &name), why, now)?;
                return Ok(Some(Outcome::Held { reason }));
            }
            if !(to_customer && checked) {
                let why = deps.policy().say(&if to_customer {
                    crate::said!(
                        "staff_sender.unverified",
                        level = mail.trust.level,
                        reason = mail.trust.reason
                    )
                } else {
                    crate::said!("staff_sender.no_notification")
                });
                return forged(conn, deps, incoming, mail, n, why, now, queued).map(Some);
            }
            let row = record_message(conn, deps, incoming, mail, Some(n), now)?;
            index_ids(conn, mail, n)?;
            let own = own_in_thread(conn, mail, n)?;
            (
                n,
                Event::StaffCorrespondence {
                    message: row,
                    by: sender.to_string(),
                    text: own.text(),
                },
            )
        }
    };
    store::incidents::touch(conn, incident, now)?;
    let (effects, applied) = act(conn, deps, incident, &event, Pass::Real, now)?;
    *queued += applied.queued();
    // `#to-tag` and `#all`: only once the reply itself was acted on (not held, nothing
    // refused), its words and its commands about the incident's course are carried out on
    // every other incident it names, each customer in their own thread and language.
    if let Event::StaffReply {
        message,
        by,
        name,
        mail,
        ..
    } = &event
    {
        let acted = !effects.logs(EventKind::StaffCommandRefused)
            && !effects.logs(EventKind::StaffReplyHeld);
        if acted {
            // An incident named by both `#all` and a `#to-tag` (or two tags) is acted on once.
            let mut done = std::collections::HashSet::from([incident]);
            for command in &mail.commands {
                let sent_to = match command {
                    crate::incident::staff_mail::Command::ToTag { sent_to, .. }
                    | crate::incident::staff_mail::Command::ToAll { sent_to } => sent_to,
                    _ => continue,
                };
                for &other in sent_to {
                    if !done.insert(other) {
                        continue;
                    }
                    let theirs = Event::ToOthers {
                        message: *message,
                        by: by.clone(),
                        name: name.clone(),
                        mail: mail.for_the_others(),
                    };
                    match act(conn, deps, other, &theirs, Pass::Real, now) {
                        Ok((_, applied)) => *queued += applied.queued(),
                        Err(ActError::Refused(why)) => tracing::warn!(
                            incident = other.0,
                            reason = %why,
                            "#to-tag or #all: not carried out on this incident"
                        ),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
    Ok(Some(Outcome::Joined { incident }))
}

/// Does nothing with a member's mail about incident `n` but tell them why (a refusal through
/// the decision core, so it is recorded like any other). Returns the mails queued.
fn tell_member(
    conn: &Connection,
    deps: &Deps,
    (n, row): (IncidentNo, MessageRow),
    (by, name): (&str, &str),
    why: Said,
    now: DateTime<Utc>,
) -> Result<usize, ActError> {
    let event = Event::StaffReply {
        message: row,
        by: by.to_string(),
        name: name.to_string(),
        mail: crate::incident::staff_mail::StaffMail::refused("this mail", why),
        attachments: false,
        held: None,
        pending: None,
    };
    let (_, applied) = act(conn, deps, n, &event, Pass::Real, now)?;
    Ok(applied.queued())
}

/// `#to-tag LABEL`: the other open incidents carrying the tag, for the decision to record and
/// for intake to send to once the reply is acted on.
fn to_tag_targets(
    conn: &Connection,
    n: IncidentNo,
    mail: &mut crate::incident::staff_mail::StaffMail,
) -> Result<(), StoreError> {
    for command in &mut mail.commands {
        if let crate::incident::staff_mail::Command::ToTag { label, sent_to } = command {
            let tagged = store::incidents::incidents_where(
                conn,
                &store::incidents::Filter {
                    state: Some(crate::incident::State::Open),
                    tag: Some(label.trim().to_string()),
                    ..Default::default()
                },
            )?;
            *sent_to = tagged
                .into_iter()
                .map(|l| l.incident.number)
                .filter(|m| *m != n)
                .collect();
        }
    }
    Ok(())
}

/// `#release` in a reply to a held-mail notice on incident `n`: the newest mail still held
/// that a notice sent before `notice` was about goes through intake again, vouched for by
/// the member, under a savepoint (a release that fails changes nothing). Returns why not,
/// for the member, or None once it was taken in.
fn release_held(
    conn: &Connection,
    deps: &Deps,
    n: IncidentNo,
    notice: Option<&str>,
    member: &str,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Option<Said>, ActError> {
    let sent = match notice {
        Some(id) => store::outbox::queued_at(conn, id)?,
        None => None,
    };
    let Some(row) = store::messages::held_for_incident(conn, n, sent.unwrap_or(now))? else {
        return Ok(Some(crate::said!("refusal.release_nothing", number = n)));
    };
    conn.execute_batch("SAVEPOINT release_held")
        .map_err(StoreError::from)?;
    match super::release(conn, deps, row, member, now) {
        Ok((_, more)) => {
            conn.execute_batch("RELEASE release_held")
                .map_err(StoreError::from)?;
            *queued += more;
            Ok(None)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO release_held; RELEASE release_held")
                .map_err(StoreError::from)?;
            match e {
                super::ReleaseError::Act(e) => Err(e),
                e => Ok(Some(crate::said!("refusal.release", why = e.to_string()))),
            }
        }
    }
}

/// `#all` in a reply to a digest: the other open incidents it listed (the one the reply is
/// recorded on gets the reply itself).
fn to_all_targets(
    conn: &Connection,
    n: IncidentNo,
    digest: &[IncidentNo],
    mail: &mut crate::incident::staff_mail::StaffMail,
) -> Result<(), StoreError> {
    let mut open = Vec::new();
    for &other in digest.iter().filter(|m| **m != n) {
        if store::incidents::incident(conn, other)?
            .is_some_and(|i| i.state() == crate::incident::State::Open)
        {
            open.push(other);
        }
    }
    mail.commands.retain_mut(|command| {
        let crate::incident::staff_mail::Command::ToAll { sent_to } = command else {
            return true;
        };
        *sent_to = open.clone();
        // A digest whose other incidents are all closed by now: the reply itself is all
        // there is to send. Outside a digest it stays, empty, to be refused.
        digest.is_empty() || !open.is_empty()
    });
    Ok(())
}

/// Why a staff reply cannot be acted on at all, to tell its writer: it answers a notification
/// older than `[staff] reply_valid_for`, or it was over the size limit and only its headers
/// were kept.
pub(super) fn not_readable(
    deps: &Deps,
    incoming: &Incoming<'_>,
    signed: Option<crate::secret::StaffId>,
    now: DateTime<Utc>,
) -> Option<Said> {
    if let Some(size) = incoming.oversize {
        return Some(crate::said!(
            "refusal.staff_mail_too_large",
            size = deps
                .templates
                .phrases()
                .size(None, usize::try_from(size).unwrap_or(usize::MAX))
        ));
    }
    let today = now.timestamp().div_euclid(86_400);
    match signed.map(|s| s.day) {
        Some(day)
            if crate::incident::policy::notification_still_answerable(
                day,
                today,
                &deps.config.staff,
            ) =>
        {
            None
        }
        Some(_) => Some(crate::said!(
            "refusal.notification_too_old",
            valid_for = deps
                .templates
                .phrases()
                .duration(None, deps.config.staff.reply_valid_for)
        )),
        None => None,
    }
}

/// Why a staff reply's words may not go to the customer as read: it is all quote, its words
/// carry text of a staff-only mail or note, or which words are the writer's is in doubt.
/// None: they may (an `#internal` note never reaches the customer, so it is never held).
pub(super) fn held_staff_reply(
    conn: &Connection,
    deps: &Deps,
    n: IncidentNo,
    (ours, own): (&mail::OurMail, &OwnWords),
    read: &crate::incident::staff_mail::StaffMail,
) -> Result<Option<HeldData>, StoreError> {
    if read.internal {
        return Ok(None);
    }
    if read.text.trim().is_empty() && read.commands.is_empty() {
        return Ok(Some(HeldData {
            all_quote: true,
            ..HeldData::default()
        }));
    }
    let mut found = ours.staff_only_lines(&own.body);
    for line in
        crate::outbox::guard::staff_only_text(conn, deps, n, std::slice::from_ref(&own.body))?
    {
        if !found.contains(&line) {
            found.push(line);
        }
    }
    if !found.is_empty() {
        return Ok(Some(HeldData {
            staff_only: true,
            found,
            ..HeldData::default()
        }));
    }
    Ok(own.doubt.as_ref().map(|doubt| HeldData {
        unsure: deps.policy().say(&arrival::doubt(doubt)),
        ..HeldData::default()
    }))
}

/// `#reply NAME`: the canned reply's text, with the incident's data and in the customer's
/// language, goes before the member's own words. A name with no file, or a file that does not
/// render, is left for the decision to refuse (with the names there are).
fn canned(
    conn: &Connection,
    deps: &Deps,
    n: IncidentNo,
    mail: &mut crate::incident::staff_mail::StaffMail,
) -> Result<(), StoreError> {
    use crate::incident::staff_mail::Command;
    if !mail.commands.iter().any(|c| matches!(c, Command::Reply(_))) {
        return Ok(());
    }
    let Some(incident) = store::incidents::incident(conn, n)? else {
        return Ok(());
    };
    let policy = deps.policy();
    let mut data =
        crate::incident::letters::mail_data(&incident, &policy, incident.next_update_at());
    data.lang = crate::incident::letters::language(&incident, &policy);
    let value = serde_json::to_value(&data).unwrap_or_default();
    let mut texts = Vec::new();
    let mut kept = Vec::new();
    for command in std::mem::take(&mut mail.commands) {
        match command {
            Command::Reply(name) => match deps.templates.render_reply(name.trim(), &value) {
                Some(Ok(text)) => texts.push(text),
                Some(Err(e)) => kept.push(Command::Unreadable {
                    line: format!("#reply {name}"),
                    why: crate::said!("refusal.canned_reply_broken", error = e),
                }),
                None => kept.push(Command::Unreadable {
                    line: format!("#reply {name}"),
                    why: if deps.templates.reply_names().is_empty() {
                        crate::said!("refusal.no_canned_replies", name = name)
                    } else {
                        crate::said!(
                            "refusal.no_canned_reply",
                            name = name,
                            names = deps.templates.reply_names().join(", ")
                        )
                    },
                }),
            },
            other => kept.push(other),
        }
    }
    mail.commands = kept;
    if !mail.text.trim().is_empty() {
        texts.push(mail.text.clone());
    }
    mail.text = texts.join("\n\n");
    Ok(())
}

/// Another member's words reached the customer after the notification this reply answers:
/// the writer has not seen them, and two answers that may contradict each other would reach
/// the customer. Held; the writer is shown the other reply and may still `#send` theirs.
fn collision(
    conn: &Connection,
    deps: &Deps,
    n: IncidentNo,
    sender: &str,
    answered: Option<&str>,
    read: &crate::incident::staff_mail::StaffMail,
) -> Result<Option<HeldData>, StoreError> {
    if read.internal || read.text.trim().is_empty() {
        return Ok(None);
    }
    let Some(seen_at) = answered.and_then(|id| store::outbox::queued_at(conn, id).transpose())
    else {
        return Ok(None);
    };
    let Some(other) = store::incidents::customer_note_by_other_since(conn, n, sender, seen_at?)?
    else {
        return Ok(None);
    };
    let tz = deps.config.cadence.timezone;
    Ok(Some(HeldData {
        collision: true,
        other_by: other.author,
        other_at: deps.policy().phrases.human_time(None, other.at, tz),
        other_text: other.text,
        ..HeldData::default()
    }))
}

/// Mail claiming a staff sender that we do not believe: kept in quarantine for staff, and
/// staff are told about it on the incident it pointed at.
#[allow(clippy::too_many_arguments)]
pub(super) fn forged(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    incident: IncidentNo,
    why: String,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Outcome, ActError> {
    let reason = deps.policy().say(
        &Held::ForgedStaff {
            from: &mail.from.address,
            incident,
            why: &why,
        }
        .reason(),
    );
    let row = hold_parsed(conn, deps, incoming, mail, &reason, now)?;
    let own = own_in_thread(conn, mail, incident)?;
    let alerts = store::events::count_since(
        conn,
        incident,
        EventKind::ForgedStaffReply,
        clock::before(now, Duration::from_secs(86_400)),
    )?;
    let event = Event::ForgedStaffReply {
        message: row,
        claimed: mail.from.address.clone(),
        why,
        written: written(mail, &own, deps.templates.phrases()),
        alerts_today: alerts,
    };
    let (_, applied) = act(conn, deps, incident, &event, Pass::Real, now)?;
    *queued += applied.queued();
    Ok(Outcome::Held { reason })
}
