//! A person's mail: where it goes (a new incident, a reply that joins one, a stranger held),
//! what their own words are, and the opening of an incident through the one door.

use super::*;
use crate::incident::understood;

pub(super) fn record_human(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Outcome, ActError> {
    let treatment = policy::for_sender(mail.trust.level, &deps.config.trust);
    // A person writing from an address that bounced proves it works again, if the receiving
    // server proved it is them (anyone can write any From): cleared before anything is
    // decided, so this very mail can be answered.
    if treatment == Treatment::Full && store::outbox::clear_undeliverable(conn, &mail.from.address)?
    {
        let arrival = Arrival::UndeliverableCleared {
            address: &mail.from.address,
        };
        note(conn, deps, None, None, &arrival, now)?;
    }
    if deps.config.staff.is_member(&mail.from.address) {
        if let Some(outcome) = record_staff(conn, deps, incoming, mail, now, queued)? {
            return Ok(outcome);
        }
    }
    let decision = thread::decide(&candidates(conn, deps, mail)?);
    let mut lookup_failed = None;
    // Released by a person: a stranger's mail opens their own incident (never joins
    // another customer's), whatever `strangers` says.
    let strangers = if incoming.vouched {
        crate::config::StrangerPolicy::NewIncident
    } else {
        deps.config.intake.strangers
    };
    let route = route(decision, strangers, |n| {
        match store::incidents::incident(conn, n) {
            Ok(Some(incident)) => {
                too_late_to_reopen(&incident, deps.config.cadence.reopen_within, now)
            }
            Ok(None) => false,
            Err(e) => {
                lookup_failed = Some(e);
                false
            }
        }
    });
    if let Some(e) = lookup_failed {
        return Err(e.into());
    }
    let route = match route {
        // Nothing in it points at an incident: it may still be the customer following up on
        // their open one by a new mail ("Order 48391 – any news?").
        Route::Open {
            continues: None,
            ref stranger_to,
        } if stranger_to.is_empty() => match follow_up_of(conn, deps, mail, now)? {
            Some((incident, via)) => Route::Join { incident, via },
            None => route,
        },
        route => route,
    };
    if treatment == Treatment::Hold {
        let answers = match route {
            Route::Join { incident, .. } => Some(incident),
            _ => None,
        };
        return held_by_trust(conn, deps, incoming, mail, answers, now, queued);
    }
    match route {
        Route::Join { incident, via } => {
            join(conn, deps, incoming, mail, incident, via, now, queued)
        }
        Route::Hold { stranger_to } => Ok(hold_for_staff(
            conn,
            deps,
            incoming,
            mail,
            &stranger_to,
            now,
        )?),
        Route::Open {
            continues,
            stranger_to,
        } => open(
            conn,
            deps,
            incoming,
            mail,
            continues,
            stranger_to,
            now,
            queued,
        ),
    }
}

/// The customer's open incident a new mail of theirs follows up, if it does (see
/// [`thread::follow_up`]).
fn follow_up_of(
    conn: &Connection,
    deps: &Deps,
    mail: &ParsedMail,
    now: DateTime<Utc>,
) -> Result<Option<(IncidentNo, Evidence)>, StoreError> {
    let theirs = store::incidents::open_of_customer(conn, &mail.from.address)?;
    if theirs.is_empty() {
        return Ok(None);
    }
    let subject = mail::base_subject(&mail.subject);
    Ok(thread::follow_up(
        &theirs,
        &subject,
        &facts_of(&subject, &mail.own.text(), deps),
        now,
        deps.config.recurring.follow_up_within,
    ))
}

/// The order, invoice and tracking numbers a complaint names, in its subject or its words.
pub(super) fn facts_of(subject: &str, own_text: &str, deps: &Deps) -> Vec<mail::facts::Fact> {
    mail::facts::find(
        &format!("{subject}\n{own_text}"),
        &deps.config.wording.facts,
    )
}

/// `[trust]` says to keep this sender's mail for staff (by default: the receiving server's
/// check failed, or it judged the mail spam). Recorded in quarantine, nothing sent; if it
/// answers an incident, staff on that incident are told.
#[allow(clippy::too_many_arguments)]
pub(super) fn held_by_trust(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    answers: Option<IncidentNo>,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Outcome, ActError> {
    let level = mail.trust.level.to_string();
    let policy = deps.policy();
    let why = policy.say(&arrival::sender_check(&level, &mail.trust.reason));
    let reason = policy.say(
        &Held::SenderCheck {
            from: &mail.from.address,
            level: &level,
            reason: &mail.trust.reason,
        }
        .reason(),
    );
    let row = hold_parsed(conn, deps, incoming, mail, &reason, now)?;
    if let Some(incident) = answers {
        let own = own_in_thread(conn, mail, incident)?;
        let event = Event::HeldReply {
            message: row,
            from: mail.from.address.clone(),
            why,
            written: written(mail, &own, deps.templates.phrases()),
        };
        let (_, applied) = act(conn, deps, incident, &event, Pass::Real, now)?;
        *queued += applied.queued();
    }
    Ok(Outcome::Held { reason })
}

/// A reply's own words, read against everything we sent into incident `n`'s threads: what
/// the client quoted of ours, however it quoted it, is not the writer's.
pub(super) fn own_in_thread(
    conn: &Connection,
    mail: &ParsedMail,
    n: IncidentNo,
) -> Result<OwnWords, StoreError> {
    let ours = crate::outbox::guard::thread_mail(conn, n)?;
    Ok(mail::own_words::read(&mail.body, &ours, Context::Reply))
}

/// What a person's mail says (`own`: their own words in it), for staff to read.
pub(super) fn written(mail: &ParsedMail, own: &OwnWords, words: &Phrases) -> Written {
    Written {
        text: own.text(),
        unsure: own
            .doubt
            .as_ref()
            .map(|d| words.say(None, &arrival::doubt(d)))
            .unwrap_or_default(),
        signature: own.signature.clone().unwrap_or_default(),
        attachments: mail
            .attachments
            .iter()
            .map(|a| AttachmentData {
                name: a
                    .name
                    .clone()
                    .unwrap_or_else(|| words.say(None, &crate::said!("attachment.unnamed"))),
                content_type: a.content_type.clone(),
                size: words.size(None, a.size),
            })
            .collect(),
        trust: format!("{}: {}", mail.trust.level, mail.trust.reason),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn join(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    incident: IncidentNo,
    via: Evidence,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Outcome, ActError> {
    let row = record_message(conn, deps, incoming, mail, Some(incident), now)?;
    index_ids(conn, mail, incident)?;
    let role = store::incidents::participant_role(conn, incident, &mail.from.address)?;
    // Only someone we know is who they say may bring others in.
    let proven = policy::for_sender(mail.trust.level, &deps.config.trust) == Treatment::Full;
    if proven && role.is_some_and(Role::may_add_participants) {
        add_cc_participants(conn, deps, incident, mail)?;
    }
    store::incidents::touch(conn, incident, now)?;
    let via = match via {
        Evidence::Reference => JoinedVia::References,
        Evidence::ThreadIndex => JoinedVia::ThreadIndex,
        Evidence::SubjectToken => JoinedVia::SubjectToken,
        Evidence::SameFact => JoinedVia::SameFact,
        Evidence::SameSubject => JoinedVia::SameSubject,
    };
    let arrival = Arrival::Joined {
        from: &mail.from.address,
        via,
    };
    note(conn, deps, Some(incident), Some(row), &arrival, now)?;
    {
        let own = own_in_thread(conn, mail, incident)?;
        let event = Event::CustomerReply {
            message: row,
            from: mail.from.address.clone(),
            trust: mail.trust.level,
            written: written(mail, &own, deps.templates.phrases()),
        };
        let (_, applied) = act(conn, deps, incident, &event, Pass::Real, now)?;
        *queued += applied.queued();
    }
    Ok(Outcome::Joined { incident })
}

/// `strangers = "hold"`: the message is kept, unanswered, in quarantine for staff to look at.
pub(super) fn hold_for_staff(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    stranger_to: &[IncidentNo],
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let reason = deps.policy().say(
        &Held::Stranger {
            from: &mail.from.address,
            incidents: stranger_to
                .iter()
                .map(|n| format!("#{n}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
        .reason(),
    );
    hold_parsed(conn, deps, incoming, mail, &reason, now)?;
    Ok(Outcome::Held { reason })
}

pub(super) fn add_cc_participants(
    conn: &Connection,
    deps: &Deps,
    incident: IncidentNo,
    mail: &ParsedMail,
) -> Result<(), StoreError> {
    for cc in &mail.cc {
        if !deps.config.support.is_own_address(cc) {
            store::incidents::add_participant(conn, incident, cc, Role::Cc)?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) fn open(
    conn: &Connection,
    deps: &Deps,
    incoming: &Incoming<'_>,
    mail: &ParsedMail,
    continues: Option<IncidentNo>,
    stranger_to: Vec<IncidentNo>,
    now: DateTime<Utc>,
    queued: &mut usize,
) -> Result<Outcome, ActError> {
    let config = &deps.config;
    // The customer's earlier incident this one repeats, read before this one exists.
    let repeats = store::incidents::previous_of_customer(
        conn,
        &mail.from.address,
        IncidentNo(0),
        clock::before(now, config.recurring.link_within),
    )?;
    // A repeat keeps the pace its customer had (within today's bounds), as they asked it.
    let cadence = repeats
        .map(|p| config.cadence.clamp(p.cadence))
        .unwrap_or(config.cadence.default);
    let promise = config.cadence.promise(now, cadence);
    let treatment = policy::for_sender(mail.trust.level, &config.trust);
    let answer_to = policy::reply_address(&mail.from, mail.reply_to.as_ref(), treatment, |a| {
        config.support.is_own_address(a)
    });
    // "Fwd: AW: Order broken [FU-3-…]" is about "Order broken": prefixes and copied tokens go.
    let mut subject = mail::base_subject(&mail.subject);
    if subject.is_empty() {
        subject = mail::NO_SUBJECT.into();
    }
    // What they wrote is the problem, not the pleasantries around it: staff read it as the
    // incident's summary, and the acknowledgement quotes it back.
    let understood = understood::read(&mail.own, deps.templates.intents(), mail::SUMMARY_CHARS);
    let incident = store::incidents::create_incident(
        conn,
        &store::NewIncident {
            subject: &subject,
            summary: if understood.problem.is_empty() {
                &mail.summary
            } else {
                &understood.problem
            },
            customer_address: &mail.from.address,
            customer_name: mail.from.name.as_deref(),
            reply_address: &answer_to.address,
            reply_name: answer_to.name.as_deref(),
            sender_trust: mail.trust.level,
            cadence,
            next_update_at: promise.at,
        },
        |n| deps.secret.incident_token(n.0),
        now,
    )?;
    let language = crate::lang::of_complaint(mail.content_language.as_deref(), &mail.own.text());
    store::incidents::set_origin(
        conn,
        incident,
        language.as_ref().map(|(lang, _)| lang.as_str()),
        mail.date.as_deref().and_then(crate::lang::offset_of_date),
    )?;
    store::incidents::add_participant(conn, incident, &mail.from.address, Role::Customer)?;
    let facts = facts_of(&subject, &mail.own.text(), deps);
    store::incidents::add_facts(conn, incident, &facts)?;
    if answer_to.address != mail.from.address {
        store::incidents::add_participant(conn, incident, &answer_to.address, Role::ReplyTo)?;
    }
    if treatment == Treatment::Full {
        add_cc_participants(conn, deps, incident, mail)?;
    }
    let row = record_message(conn, deps, incoming, mail, Some(incident), now)?;
    index_ids(conn, mail, incident)?;
    // Outlook files our replies by Thread-Index: continue the customer's conversation if they
    // started one, else start ours.
    let thread_root = mail
        .thread_index_root
        .clone()
        .unwrap_or_else(|| deps.secret.thread_root(incident.0));
    store::messages::index_thread_root(conn, &thread_root, incident)?;
    let since = clock::before(now, config.recurring.window);
    let opening = Opening {
        message: row,
        from: mail.from.clone(),
        other_from: mail.other_from.clone(),
        promise,
        continues,
        stranger_to,
        customer_incidents_in_window: store::incidents::customer_incidents_since(
            conn,
            &mail.from.address,
            since,
        )?,
        repeats: repeats.map(|p| Repeat {
            previous: p.incident,
            opened_at: p.first_opened_at,
            count: p.count,
        }),
        written: written(mail, &mail.own, deps.templates.phrases()),
        language,
        understood,
        facts,
        share: burst_share(conn, &config.staff, incident, now)?,
    };
    // The acknowledgement answers the complaint itself: its references, then it.
    let mut ids: Vec<String> = mail
        .references
        .iter()
        .filter(|r| Some(*r) != mail.message_id.as_ref())
        .cloned()
        .collect();
    ids.extend(mail.message_id.clone());
    let incident_row =
        store::incidents::incident(conn, incident)?.ok_or(ActError::NotFound(incident))?;
    let facts = Facts::new(
        incident_row,
        crate::incident::letters::Conversation {
            ids,
            thread_root: Some(thread_root),
        },
    );
    let (_, applied) = act_on(conn, deps, &facts, &Event::Opened(opening), Pass::Real, now)?;
    *queued += applied.queued();
    Ok(Outcome::Opened { incident })
}

/// How far back a burst's earlier incidents are looked for: more than this many new incidents
/// before the burst counted as one is no burst setting anyone would choose.
const BURST_LOOKBACK: usize = 500;

/// In a burst (more than `[staff] burst` new incidents within its window, this one included),
/// the member this one goes to: the one with the fewest open incidents, the first listed on
/// a tie. None outside a burst, with fewer than two members to share among, or when
/// notifications go to a team list.
fn burst_share(
    conn: &Connection,
    staff: &crate::config::StaffConfig,
    this: IncidentNo,
    now: DateTime<Utc>,
) -> Result<Option<crate::incident::Share>, StoreError> {
    let Some(burst) = staff.burst else {
        return Ok(None);
    };
    // A team list (`notify`) is one mailbox the whole team reads: nothing to share out.
    if staff.members.len() < 2
        || !staff.notify.is_empty()
        || !store::incidents::opened_more_than(conn, burst.max, clock::before(now, burst.within))?
    {
        return Ok(None);
    }
    let open = store::incidents::open_assigned(conn)?;
    let load = |m: &String| open.get(m).copied().unwrap_or(0);
    let Some(to) = staff.members.iter().min_by_key(|m| load(m)) else {
        return Ok(None);
    };
    let mut earlier = Vec::new();
    let since = clock::before(now, burst.within);
    for n in store::incidents::opened_since(conn, since, BURST_LOOKBACK)? {
        if n != this && !store::outbox::listed_for_digest(conn, n)? {
            earlier.push(n);
        }
    }
    earlier.reverse();
    Ok(Some(crate::incident::Share {
        to: to.clone(),
        earlier,
    }))
}
