//! The data every template gets: what a mail may say about the incident, the customer, the
//! team and the staff member's words, and the sample data `check` renders every template with.

use serde::Serialize;
use serde_json::Value;

/// What every mail about an incident can say. Serialised as the template's data and stored
/// with the queued mail, so a retry renders exactly what was decided at queue time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MailData {
    pub incident: IncidentData,
    pub customer: CustomerData,
    pub support: SupportData,
    /// When the customer will hear from us next, for people ("Monday 23 November 2026, 13:00 UTC").
    pub next_update: String,
    /// The same time in RFC 3339, for machines and `{{#if}}`.
    pub next_update_iso: String,
    /// The agreed cadence in words ("4 hours").
    pub cadence: String,
    /// The same as a person says it, in the mail's language: "every hour", "every 4 hours",
    /// "once a day" (never "every 1 hour").
    pub pace: String,
    /// The latest staff note not yet told to the customer ("" when there is none).
    pub note: String,
    /// Who wrote the note, as the customer may read it ("Anna"); "" for the team.
    pub note_by: String,
    /// When the quoted note was written ("on Tuesday at 14:30", "today at 09:10"); "" when
    /// no note is quoted.
    pub note_at: String,
    /// No note is quoted because the customer has heard the newest already: when we last gave
    /// them news ("on Tuesday at 14:30"); "" when there was none since the last fix.
    pub last_news_at: String,
    /// How long the incident has been open, in words ("2 days", "an hour"): updates without
    /// news say how long the team has been on it, so no two are the same.
    pub working_for: String,
    /// For `progress` without news: which update in a row without news this is, in words
    /// ("third"), from the second on; "" otherwise.
    pub no_news_nth: String,
    /// For `progress`: after `[cadence] quiet_after` updates in a row without news, the pace
    /// slowed a step to `pace`; this update says so, once.
    pub pace_slowed: bool,
    /// The greeting a staff member wrote above their note to the customer ("Hi Ann,"): the
    /// mail opens with it instead of the template's own, so the customer is not greeted twice.
    pub greeting: String,
    /// What we need from the customer while we wait on them (`waiting`).
    pub waiting_for: String,
    /// When the customer sent what this mail thanks them for ("Tuesday"); "" when nothing.
    pub thanks_for: String,
    /// The same as the mail says it: "earlier today" the same day, "on Tuesday" before.
    pub thanks_when: String,
    /// The customer asked for no more automatic updates; this mail confirms it.
    pub updates_stopped: bool,
    /// We were waiting on the customer and carry on now; this mail says so and promises the
    /// next update.
    pub resumed: bool,
    /// Nothing proves who wrote to us (`[trust]`): this mail must not repeat a word they wrote.
    /// Their subject, name and summary are already blank; the template says less.
    pub plain: bool,
    /// This update comes later than we promised (the daemon was down past the time).
    pub overdue: bool,
    /// The customer asked for a different cadence; this mail confirms it.
    pub cadence_changed: bool,
    /// With `cadence_changed`: the pace is not quite what they asked for, but the closest the
    /// configured bounds allow (`[cadence] min`/`max`); the mail says so instead of "as you
    /// asked".
    pub pace_clamped: bool,
    /// The team's working hours when `[cadence] window` sets them ("Monday to Friday,
    /// 09:00–17:00 (CET)"); "" without a window. Promised times fall within them.
    pub working_hours: String,
    /// The same hours at the customer's own UTC offset when it differs from ours ("00:00–08:00
    /// your time, PST"); "" otherwise.
    pub working_hours_theirs: String,
    /// Holidays between now and the promised update on which the team would otherwise work
    /// ("Thursday 24 December, Friday 25 December"); "" when none.
    pub closed_days: String,
    /// The team is away now (outside the working hours): when they are back ("on Monday at
    /// 09:00"); "" while they work. Nothing should say "we are working on it" then.
    pub team_back: String,
    /// The promised time was moved to the start of the sending window.
    pub window_moved: bool,
    /// For `progress`: staff put the incident on hold (`#hold`) until `next_update`, for the
    /// reason in `note`; nothing comes before then unless there is news.
    pub on_hold: bool,
    /// The language of this mail ("en", "de"): which template set renders it.
    pub lang: String,
    /// `next_update` at the customer's own UTC offset when it differs from the team's ("08:00
    /// your time, EST", or "UTC-07:00" where the offset fits zones with other names); ""
    /// otherwise.
    pub next_update_theirs: String,
    /// Staff mail: `next_update` as short as a subject line wants it ("14:00" today, "Tue
    /// 14:00" on another day, in the team's zone); "" when nothing is promised.
    pub next_update_short: String,
    /// Facts the customer already gave (acknowledgement): `{{#each facts}}{{name}} {{value}}`.
    pub facts: Vec<FactData>,
    /// What we understood from the complaint (acknowledgement): `understood.problem` (the
    /// sentences that state it, without pleasantries), `understood.impact` ("My clients are
    /// waiting.") and `understood.deadline` ("I need it by Friday."), "" when not said.
    pub understood: Understood,
    /// What the customer already sent with their complaint (acknowledgement): `{{#each
    /// attachments}}{{name}} ({{size}}){{/each}}`, so the mail does not ask for it again.
    pub attachments: Vec<AttachmentData>,
    /// This problem came back (`recurring.count` is 2 or more).
    pub recurring: RecurringData,
    /// For `check_back`: the problem in the customer's words (their subject), "" when unknown.
    pub problem: String,
    /// For `check_back`: the one question staff wrote with the resolution ("Is your refund
    /// showing on your statement now?"), "" for the default question.
    pub check_question: String,
    /// For `thank_you`: they rated us (1–5), 0 when not.
    pub rating: i64,
    /// For `thank_you`: it works, but they are unhappy with how long it took or how it went
    /// ("not impressed"): the mail owns that.
    pub unhappy: bool,
    /// For `thank_you`: they gave a rating and said nothing else; the incident stays resolved
    /// (it closes when its time comes), so the mail does not say it is closed.
    pub rating_only: bool,
    /// For `reopened`: staff reopened it (the customer did not write): the mail does not
    /// thank them for writing back.
    pub reopened_by_staff: bool,
    /// For `resolution` and `reopened`: we had told the customer this was fixed before.
    pub fixed_before: bool,
    pub resolution: ResolutionData,
    /// How long after the check-back an incident closes when nobody answers ("4 days").
    pub close_after: String,
    /// For `reopened`: the earlier incident this one continues (0 when none).
    pub previous_incident: i64,
    pub escalation: EscalationData,
    /// What staff notifications say.
    pub staff: StaffData,
}

/// What a mail to staff says besides the incident: why it was sent, what the customer wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StaffData {
    /// Why this notification ("New incident", "The customer replied", …).
    pub reason: String,
    /// Who wrote the mail it is about, as "Ann Example <ann@example.com>".
    pub from: String,
    /// Their own words, whole (quotes and signature cut).
    pub text: String,
    pub attachments: Vec<AttachmentData>,
    /// How far the sender is proven ("verified: dkim=pass aligned"…), or "".
    pub trust: String,
    /// The staff member a refusal or a forgery is about.
    pub member: String,
    /// Why a command was not carried out.
    pub refusal: String,
    /// Lines of a digest.
    pub digest: Vec<String>,
    /// The language the customer is answered in ("de"); staff mail itself is always in the
    /// default set.
    pub language: String,
    /// Why the incident counts as recurring ("ann@… wrote again within 30 days of incident
    /// #1 …"), "" when it does not.
    pub recurring_reason: String,
    /// The signature under the writer's own words (their phone number, their company), set
    /// apart from the words themselves.
    pub signature: String,
    /// Why a staff member's reply, or a mail to the customer, was held back (`staff/held`).
    pub held: HeldData,
    /// `staff/activity`: who acted ("Anna Berg <anna@example.com>", or a CLI user's name).
    pub by: String,
    /// `staff/activity`: the subject's label ("Reply sent", "Resolved", "Internal note").
    pub label: String,
    /// `staff/activity`: what the action did, one line each ("assigned to ben@…").
    pub activity: Vec<String>,
    /// `staff/activity`: the exact text of the mail the customer was sent, as they read it;
    /// "" when none was sent.
    pub copy: String,
    /// `staff/at_risk`: the member's other promises at risk, told in this one mail, one line
    /// each.
    pub also_at_risk: Vec<String>,
}

/// What held a mail back from the customer, as facts for `staff/held`. One of the first four
/// is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HeldData {
    /// The reply had no words of its own: it was all quote.
    pub all_quote: bool,
    /// The reply's own words carry text of a staff-only mail or note (the lines are in `found`).
    pub staff_only: bool,
    /// It could not be told with confidence which words are the writer's: why.
    pub unsure: String,
    /// A mail of this kind to the customer was stopped by the last guard (lines in `found`).
    pub stopped: String,
    /// The staff-only lines found.
    pub found: Vec<String>,
    /// Another member's reply reached the customer after the notification this one answers.
    pub collision: bool,
    /// That reply: who wrote it, when, and its words.
    pub other_by: String,
    pub other_at: String,
    pub other_text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AttachmentData {
    pub name: String,
    pub content_type: String,
    /// "120 KB".
    pub size: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResolutionData {
    pub root_cause: String,
    pub prevention: String,
    pub compensation: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EscalationData {
    pub reason: String,
    pub customer: String,
    pub updates_without_news: i64,
    pub hours_without_note: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IncidentData {
    pub number: i64,
    pub token: String,
    pub subject: String,
    pub summary: String,
    pub opened: String,
    pub opened_iso: String,
    /// open | waiting | resolved | closed
    pub state: String,
    pub tags: Vec<String>,
    /// The customer has had several incidents lately.
    pub recurring: bool,
    /// The staff member the incident is assigned to (their address), "" when nobody.
    pub assignee: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CustomerData {
    pub name: Option<String>,
    pub address: String,
    /// The name to greet them by ("Maria" for "Maria Schneider", `[wording] greeting`); ""
    /// for "Hello,".
    pub greeting_name: String,
    /// `greeting_name` is their whole name (`[wording] greeting = "display_name"`): the
    /// formal greeting goes with it ("Guten Tag Maria Schneider," beside "Sie"; "Hallo
    /// Maria," for a first name).
    pub full_name_greeting: bool,
}

/// What we understood from a complaint (`understood.problem`, `.impact`, `.deadline`), read
/// by `incident::understood`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Understood {
    /// The sentences that state the problem, in their words, within the summary's length.
    pub problem: String,
    /// The sentence that says what it does to them ("My clients are waiting."), "" when
    /// they said none or the problem quote holds it already.
    pub impact: String,
    /// The sentence that says by when they need it ("I need it before Friday."), "" when
    /// they said none or the problem quote holds it already.
    pub deadline: String,
}

/// A fact the customer already gave us ("order", "48391"): no mail asks for it again.
pub type FactData = crate::mail::facts::Fact;

/// The customer has had this problem before (`[recurring] link_within`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecurringData {
    /// Which time this is: 1 the first, 2 the second…
    pub count: i64,
    /// The same as a word in the mail's language ("second", "zweite"); "" for the first.
    pub count_words: String,
    /// The earlier incident this one repeats (0 when none).
    pub previous: i64,
    /// How long ago the earlier incident opened, in words ("three weeks", "2 days").
    pub since: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SupportData {
    pub name: String,
    pub address: String,
}

/// Sample data for `check`: for every incident state, one complete set (every optional value
/// present, every flag on) and one sparse set (no name, empty texts, flags off). Built from
/// [`MailData`] itself, so the sample cannot lack a key the daemon sends.
pub(super) fn sample_data(support_name: &str, support_address: &str) -> Vec<Value> {
    let full = MailData {
        incident: IncidentData {
            number: 1042,
            token: "FU-1042-3fa9c01b2e".into(),
            subject: "Order #5521 arrived damaged {{not a template}}".into(),
            summary: "The vase I ordered arrived in pieces and I need it by Friday.".into(),
            opened: "Monday 23 November 2026, 09:12 UTC".into(),
            opened_iso: "2026-11-23T09:12:00.000Z".into(),
            state: String::new(),
            tags: vec!["shipping".into(), "breakage".into()],
            recurring: true,
            assignee: "ben@example.com".into(),
        },
        customer: CustomerData {
            name: Some("Ann Example".into()),
            address: "ann@example.com".into(),
            greeting_name: "Ann".into(),
            full_name_greeting: false,
        },
        support: SupportData {
            name: support_name.into(),
            address: support_address.into(),
        },
        next_update: "Monday 23 November 2026, 13:12 UTC".into(),
        next_update_iso: "2026-11-23T13:12:00.000Z".into(),
        cadence: "4 hours".into(),
        pace: "every 4 hours".into(),
        note: "The courier confirmed the parcel was dropped; a replacement ships today.".into(),
        overdue: true,
        cadence_changed: true,
        pace_clamped: true,
        working_hours: "Monday to Friday, 09:00–17:00 (CET)".into(),
        working_hours_theirs: "00:00–08:00 your time, PST".into(),
        closed_days: "Thursday 24 December, Friday 25 December".into(),
        team_back: "on Monday at 09:00".into(),
        window_moved: true,
        on_hold: true,
        lang: String::new(),
        next_update_theirs: "08:12 your time, EST".into(),
        next_update_short: "13:12".into(),
        facts: vec![FactData {
            name: "order".into(),
            value: "5521".into(),
        }],
        understood: Understood {
            problem: "The vase I ordered arrived in pieces.".into(),
            impact: "My shop opens on Saturday and the display is empty.".into(),
            deadline: "I need it by Friday.".into(),
        },
        attachments: vec![AttachmentData {
            name: "photo.jpg".into(),
            content_type: "image/jpeg".into(),
            size: "120 KB".into(),
        }],
        recurring: RecurringData {
            count: 2,
            count_words: "second".into(),
            previous: 977,
            since: "three weeks".into(),
        },
        problem: "Order #5521 arrived damaged".into(),
        check_question: "Has the replacement vase arrived in one piece?".into(),
        rating: 5,
        unhappy: true,
        rating_only: false,
        reopened_by_staff: true,
        fixed_before: true,
        resolution: ResolutionData {
            root_cause: "Our packing station used the wrong box size for fragile items.".into(),
            prevention: "Fragile items now get a double box and a packing check.".into(),
            compensation: "We refunded the shipping cost.".into(),
        },
        close_after: "4 days".into(),
        previous_incident: 977,
        note_by: "Anna".into(),
        note_at: "on Tuesday at 14:30".into(),
        last_news_at: "on Monday at 10:05".into(),
        working_for: "2 days".into(),
        no_news_nth: "third".into(),
        pace_slowed: true,
        greeting: "Hi Ann,".into(),
        waiting_for: "the serial number on the back of the device".into(),
        thanks_for: "Tuesday".into(),
        thanks_when: "on Tuesday".into(),
        updates_stopped: true,
        resumed: true,
        plain: false,
        staff: StaffData {
            reason: "The customer replied".into(),
            from: "Ann Example <ann@example.com>".into(),
            text: "It broke again this morning.\nOrder #48391, photo attached.".into(),
            attachments: vec![AttachmentData {
                name: "photo.jpg".into(),
                content_type: "image/jpeg".into(),
                size: "120 KB".into(),
            }],
            trust: "verified: dkim=pass aligned (header.d=example.com)".into(),
            member: "anna@support.example".into(),
            refusal: "a resolution needs a root cause".into(),
            digest: vec!["#1043 new incident: Refund missing".into()],
            language: "de".into(),
            recurring_reason: "ann@example.com wrote again within 30 days of incident #977".into(),
            signature: "Ann Example\nExample Ltd\n+44 20 7946 0000".into(),
            held: HeldData {
                all_quote: false,
                staff_only: true,
                unsure: "a line looks like the header of a quoted mail".into(),
                stopped: "progress".into(),
                found: vec!["Start with #internal for a note the customer never sees.".into()],
                collision: true,
                other_by: "ben@support.example".into(),
                other_at: "Monday 23 November 2026, 10:02 UTC".into(),
                other_text: "A replacement ships today.".into(),
            },
            by: "Anna Berg <anna@support.example>".into(),
            label: "Reply sent".into(),
            activity: vec!["assigned to ben@support.example".into()],
            copy: "Hi Ann,\n\nThe courier found your parcel; it arrives tomorrow.\n\nAnna".into(),
            also_at_risk: vec![
                "#1044 Ben Carter <ben@example.com>: Parcel lost, update promised by 14:40".into(),
            ],
        },
        escalation: EscalationData {
            reason: "no staff note for 8 hours".into(),
            customer: "Ann Example <ann@example.com>".into(),
            updates_without_news: 3,
            hours_without_note: 8,
        },
    };
    let sparse = MailData {
        incident: IncidentData {
            subject: String::new(),
            summary: String::new(),
            tags: Vec::new(),
            recurring: false,
            assignee: String::new(),
            ..full.incident.clone()
        },
        customer: CustomerData {
            name: None,
            address: full.customer.address.clone(),
            greeting_name: String::new(),
            full_name_greeting: false,
        },
        next_update: String::new(),
        next_update_theirs: String::new(),
        next_update_short: String::new(),
        facts: Vec::new(),
        understood: Default::default(),
        attachments: Vec::new(),
        recurring: RecurringData {
            count: 1,
            ..RecurringData::default()
        },
        problem: String::new(),
        check_question: String::new(),
        rating: 0,
        unhappy: false,
        rating_only: false,
        fixed_before: false,
        next_update_iso: String::new(),
        note: String::new(),
        overdue: false,
        cadence_changed: false,
        window_moved: false,
        resolution: ResolutionData {
            compensation: String::new(),
            ..full.resolution.clone()
        },
        previous_incident: 0,
        note_by: String::new(),
        note_at: String::new(),
        last_news_at: String::new(),
        working_for: String::new(),
        no_news_nth: String::new(),
        greeting: String::new(),
        waiting_for: String::new(),
        thanks_for: String::new(),
        updates_stopped: false,
        resumed: false,
        staff: StaffData::default(),
        escalation: EscalationData {
            updates_without_news: 0,
            hours_without_note: 0,
            ..full.escalation.clone()
        },
        ..full.clone()
    };
    // What an unproven sender's mail looks like: every flag on, their own words gone.
    let plain = MailData {
        incident: IncidentData {
            subject: String::new(),
            summary: String::new(),
            ..full.incident.clone()
        },
        customer: CustomerData {
            name: None,
            address: full.customer.address.clone(),
            greeting_name: String::new(),
            full_name_greeting: false,
        },
        facts: Vec::new(),
        problem: String::new(),
        plain: true,
        ..full.clone()
    };
    let mut out = Vec::new();
    for state in ["open", "waiting", "resolved", "closed"] {
        for sample in [&full, &plain, &sparse] {
            let mut data = sample.clone();
            data.incident.state = state.into();
            out.push(serde_json::to_value(&data).unwrap_or(Value::Null));
        }
    }
    out
}
