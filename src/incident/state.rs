//! The core's vocabulary: an incident's state, the kinds of mail we send and to whom, who acts,
//! and what the event log records. Each is an enum with one spelling, shared by the code and
//! the database (the store converts at its boundary), so the two cannot disagree.

use std::fmt;

use serde::Serialize;

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Being worked on: the customer gets updates on the agreed cadence.
    Open,
    /// Waiting on the customer: updates pause.
    Waiting,
    /// Fixed and explained; a check-back follows, then the close.
    Resolved,
    Closed,
}

impl State {
    pub const ALL: [State; 4] = [State::Open, State::Waiting, State::Resolved, State::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Waiting => "waiting",
            State::Resolved => "resolved",
            State::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the incident is over (resolved or closed): a reply reopens it.
    pub fn is_over(self) -> bool {
        matches!(self, State::Resolved | State::Closed)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a mail is for. Customer mail and staff mail never share a thread or a send cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    Customer,
    Staff,
}

/// Every kind of mail the daemon sends; each is a set of templates of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum MailKind {
    /// A new incident was opened: sorry, we understood, next update by …
    #[serde(rename = "acknowledgement")]
    Acknowledgement,
    /// A promised update, or a staff note sent at once.
    #[serde(rename = "progress")]
    Progress,
    /// The customer asked for news.
    #[serde(rename = "status")]
    Status,
    /// We need something from the customer; updates pause until they answer.
    #[serde(rename = "waiting")]
    Waiting,
    /// Fixed: what went wrong and what will stop it happening again.
    #[serde(rename = "resolution")]
    Resolution,
    /// Some days after the resolution: is all well?
    #[serde(rename = "check_back")]
    CheckBack,
    /// Open again (a reply after resolution, staff, or a late reply continuing an incident).
    #[serde(rename = "reopened")]
    Reopened,
    /// The customer answered the check-back "yes, it works": closed, with thanks.
    #[serde(rename = "thank_you")]
    ThankYou,
    /// To staff: a new incident, with the customer's whole text.
    #[serde(rename = "staff/new")]
    StaffNew,
    /// To staff: the customer wrote again.
    #[serde(rename = "staff/reply")]
    StaffReply,
    /// To staff: an incident is open again.
    #[serde(rename = "staff/reopened")]
    StaffReopened,
    /// To staff: an incident needs attention.
    #[serde(rename = "staff/escalation")]
    Escalation,
    /// To staff: a promised update is near and nobody has written the news.
    #[serde(rename = "staff/at_risk")]
    StaffAtRisk,
    /// To staff: the customer's address bounced.
    #[serde(rename = "staff/undeliverable")]
    StaffUndeliverable,
    /// To one staff member: a command in their mail was not carried out, and why.
    #[serde(rename = "staff/refused")]
    StaffRefused,
    /// To staff: someone sent mail as a staff member without the proof a real reply carries.
    #[serde(rename = "staff/forged")]
    StaffForged,
    /// To staff: the notifications held back by the staff cap, in one mail.
    #[serde(rename = "staff/digest")]
    StaffDigest,
    /// To staff: the global send cap held automatic mail back.
    #[serde(rename = "staff/capped")]
    StaffCapped,
    /// To a staff member: their reply was not sent to the customer (it was all quote, carried
    /// staff-only text, or could not be read with confidence), and how to send it; to staff: a
    /// mail to the customer was stopped because it carried staff-only text.
    #[serde(rename = "staff/held")]
    StaffHeld,
    /// To the team: what a member did on an incident (a reply and the exact text the
    /// customer got, an internal note, an assignment, a resolution): everyone sees every
    /// action, and the author has their copy.
    #[serde(rename = "staff/activity")]
    StaffActivity,
}

impl MailKind {
    pub const ALL: [MailKind; 20] = [
        MailKind::Acknowledgement,
        MailKind::Progress,
        MailKind::Status,
        MailKind::Waiting,
        MailKind::Resolution,
        MailKind::CheckBack,
        MailKind::Reopened,
        MailKind::ThankYou,
        MailKind::StaffNew,
        MailKind::StaffReply,
        MailKind::StaffReopened,
        MailKind::Escalation,
        MailKind::StaffAtRisk,
        MailKind::StaffUndeliverable,
        MailKind::StaffRefused,
        MailKind::StaffForged,
        MailKind::StaffDigest,
        MailKind::StaffCapped,
        MailKind::StaffHeld,
        MailKind::StaffActivity,
    ];

    /// The template name (`templates/NAME.text.hbs`) and the spelling in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Acknowledgement => "acknowledgement",
            MailKind::Progress => "progress",
            MailKind::Status => "status",
            MailKind::Waiting => "waiting",
            MailKind::Resolution => "resolution",
            MailKind::CheckBack => "check_back",
            MailKind::Reopened => "reopened",
            MailKind::ThankYou => "thank_you",
            MailKind::StaffNew => "staff/new",
            MailKind::StaffReply => "staff/reply",
            MailKind::StaffReopened => "staff/reopened",
            MailKind::Escalation => "staff/escalation",
            MailKind::StaffAtRisk => "staff/at_risk",
            MailKind::StaffUndeliverable => "staff/undeliverable",
            MailKind::StaffRefused => "staff/refused",
            MailKind::StaffForged => "staff/forged",
            MailKind::StaffDigest => "staff/digest",
            MailKind::StaffCapped => "staff/capped",
            MailKind::StaffHeld => "staff/held",
            MailKind::StaffActivity => "staff/activity",
        }
    }

    pub fn parse(text: &str) -> Option<MailKind> {
        MailKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Every template name, for loading and checking the template set.
    pub fn template_names() -> Vec<&'static str> {
        MailKind::ALL.iter().map(|k| k.as_str()).collect()
    }

    /// The kinds that go to customers (and count against their send caps).
    pub fn customer_kinds() -> Vec<MailKind> {
        MailKind::ALL
            .into_iter()
            .filter(|k| k.audience() == Audience::Customer)
            .collect()
    }

    pub fn audience(self) -> Audience {
        if self.as_str().starts_with("staff/") {
            Audience::Staff
        } else {
            Audience::Customer
        }
    }
}

impl fmt::Display for MailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How someone takes part in an incident; only participants can add to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Who complained.
    Customer,
    /// The Reply-To of the complaint.
    ReplyTo,
    /// Someone the customer copied in.
    Cc,
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::ReplyTo => "reply-to",
            Role::Cc => "cc",
            Role::Staff => "staff",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [Role::Customer, Role::ReplyTo, Role::Cc, Role::Staff]
            .into_iter()
            .find(|r| r.as_str() == text)
    }

    /// Only the customer widens the circle: someone they copied in cannot copy in others.
    pub fn may_add_participants(self) -> bool {
        matches!(self, Role::Customer | Role::ReplyTo)
    }
}

/// Who or what caused a change: a staff member, the customer, or the daemon itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    Staff(String),
    Customer(String),
    Daemon,
}

impl Actor {
    /// How the event log names the actor: `alice`, `customer ann@example.com`, `followupd`.
    pub fn name(&self) -> String {
        match self {
            Actor::Staff(who) => who.clone(),
            Actor::Customer(address) => format!("customer {address}"),
            Actor::Daemon => "followupd".into(),
        }
    }

    /// The inverse of [`Actor::name`].
    pub fn from_name(name: &str) -> Actor {
        match name {
            "followupd" => Actor::Daemon,
            other => match other.strip_prefix("customer ") {
                Some(address) => Actor::Customer(address.to_string()),
                None => Actor::Staff(other.to_string()),
            },
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for Actor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// What the event log records. The log is the incident's written history; every kind here is
/// something a support lead may want to find again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    // The incident's life.
    IncidentOpened,
    CustomerReply,
    StrangerReference,
    Continues,
    Continued,
    NoteAdded,
    CadenceChanged,
    Waiting,
    Resumed,
    Resolved,
    Closed,
    Reopened,
    Tagged,
    Recurring,
    Escalated,
    EscalationDue,
    ProgressDue,
    PromiseBreached,
    CheckBack,
    AcknowledgementSkipped,
    UpdatesStopped,
    Assigned,
    /// Put on hold until a time, for a reason (`#hold`).
    OnHold,
    PromiseAtRisk,
    StaffCommandRefused,
    ForgedStaffReply,
    /// The receiving server verified the customer's own mail.
    SenderVerified,
    /// A staff member acted on an incident whose customer nobody had proven.
    Vouched,
    /// A reply `[trust]` kept for staff.
    HeldForStaff,
    /// A staff member's reply was not sent to the customer: all quote, staff-only text in it,
    /// or words that could not be told apart with confidence.
    StaffReplyHeld,
    /// A held staff reply was sent after all (`#send`).
    StaffReplyReleased,
    /// A customer reply that could not be read with confidence: nothing automatic was done.
    ReplyUnclear,
    /// Staff chose the language the customer is answered in.
    LanguageSet,
    // Mail.
    MailQueued,
    MailSuppressed,
    /// A customer mail carried staff-only text and was stopped by the last guard.
    MailStopped,
    MailSent,
    MailFailed,
    MailInDoubt,
    /// A recipient address no mail can ever be written to (lettre cannot parse it).
    RecipientInvalid,
    // Intake.
    Quarantined,
    /// A person released a quarantined message; it went through intake again.
    QuarantineReleased,
    DuplicateDelivery,
    AutomatedIgnored,
    Bounce,
    RecipientUndeliverable,
    UndeliverableCleared,
    Oversize,
    UidvalidityChanged,
    /// A person's data was erased (`followupd erase`): the tombstone.
    Erased,
    /// The raw bytes of an incident's messages were dropped by `[retention] raw_after`.
    RawDropped,
    /// followupd's own code failed (a panic) while acting on this incident: it waits for a
    /// person, with the message.
    InternalError,
}

impl EventKind {
    pub const ALL: [EventKind; 52] = [
        EventKind::IncidentOpened,
        EventKind::CustomerReply,
        EventKind::StrangerReference,
        EventKind::Continues,
        EventKind::Continued,
        EventKind::NoteAdded,
        EventKind::CadenceChanged,
        EventKind::Waiting,
        EventKind::Resumed,
        EventKind::Resolved,
        EventKind::Closed,
        EventKind::Reopened,
        EventKind::Tagged,
        EventKind::Recurring,
        EventKind::LanguageSet,
        EventKind::Escalated,
        EventKind::EscalationDue,
        EventKind::ProgressDue,
        EventKind::PromiseBreached,
        EventKind::CheckBack,
        EventKind::AcknowledgementSkipped,
        EventKind::UpdatesStopped,
        EventKind::Assigned,
        EventKind::OnHold,
        EventKind::PromiseAtRisk,
        EventKind::StaffCommandRefused,
        EventKind::ForgedStaffReply,
        EventKind::SenderVerified,
        EventKind::Vouched,
        EventKind::HeldForStaff,
        EventKind::StaffReplyHeld,
        EventKind::StaffReplyReleased,
        EventKind::ReplyUnclear,
        EventKind::MailQueued,
        EventKind::MailSuppressed,
        EventKind::MailStopped,
        EventKind::MailSent,
        EventKind::MailFailed,
        EventKind::MailInDoubt,
        EventKind::RecipientInvalid,
        EventKind::Quarantined,
        EventKind::QuarantineReleased,
        EventKind::DuplicateDelivery,
        EventKind::AutomatedIgnored,
        EventKind::Bounce,
        EventKind::RecipientUndeliverable,
        EventKind::UndeliverableCleared,
        EventKind::Oversize,
        EventKind::UidvalidityChanged,
        EventKind::Erased,
        EventKind::RawDropped,
        EventKind::InternalError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::IncidentOpened => "incident_opened",
            EventKind::CustomerReply => "customer_reply",
            EventKind::StrangerReference => "stranger_reference",
            EventKind::Continues => "continues",
            EventKind::Continued => "continued",
            EventKind::NoteAdded => "note_added",
            EventKind::CadenceChanged => "cadence_changed",
            EventKind::Waiting => "waiting",
            EventKind::Resumed => "resumed",
            EventKind::Resolved => "resolved",
            EventKind::Closed => "closed",
            EventKind::Reopened => "reopened",
            EventKind::Tagged => "tagged",
            EventKind::Recurring => "recurring",
            EventKind::LanguageSet => "language_set",
            EventKind::Escalated => "escalated",
            EventKind::EscalationDue => "escalation_due",
            EventKind::ProgressDue => "progress_due",
            EventKind::PromiseBreached => "promise_breached",
            EventKind::CheckBack => "check_back",
            EventKind::AcknowledgementSkipped => "acknowledgement_skipped",
            EventKind::UpdatesStopped => "updates_stopped",
            EventKind::Assigned => "assigned",
            EventKind::OnHold => "on_hold",
            EventKind::PromiseAtRisk => "promise_at_risk",
            EventKind::StaffCommandRefused => "staff_command_refused",
            EventKind::ForgedStaffReply => "forged_staff_reply",
            EventKind::SenderVerified => "sender_verified",
            EventKind::Vouched => "vouched",
            EventKind::HeldForStaff => "held_for_staff",
            EventKind::StaffReplyHeld => "staff_reply_held",
            EventKind::StaffReplyReleased => "staff_reply_released",
            EventKind::ReplyUnclear => "reply_unclear",
            EventKind::MailQueued => "mail_queued",
            EventKind::MailSuppressed => "mail_suppressed",
            EventKind::MailStopped => "mail_stopped",
            EventKind::MailSent => "mail_sent",
            EventKind::MailFailed => "mail_failed",
            EventKind::MailInDoubt => "mail_in_doubt",
            EventKind::RecipientInvalid => "recipient_invalid",
            EventKind::Quarantined => "quarantined",
            EventKind::QuarantineReleased => "quarantine_released",
            EventKind::DuplicateDelivery => "duplicate_delivery",
            EventKind::AutomatedIgnored => "automated_ignored",
            EventKind::Bounce => "bounce",
            EventKind::RecipientUndeliverable => "recipient_undeliverable",
            EventKind::UndeliverableCleared => "undeliverable_cleared",
            EventKind::Oversize => "oversize",
            EventKind::UidvalidityChanged => "uidvalidity_changed",
            EventKind::Erased => "erased",
            EventKind::RawDropped => "raw_dropped",
            EventKind::InternalError => "internal_error",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_reads_back() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        for k in MailKind::ALL {
            assert_eq!(MailKind::parse(k.as_str()), Some(k));
        }
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).expect("json"),
                serde_json::json!(k.as_str())
            );
        }
        for a in [
            Actor::Daemon,
            Actor::Staff("alice".into()),
            Actor::Customer("ann@example.test".into()),
        ] {
            assert_eq!(Actor::from_name(&a.name()), a);
        }
    }

    #[test]
    fn the_shipped_templates_cover_every_kind_of_mail_and_pass_check() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let templates = crate::templates::Templates::load(&dir, &MailKind::template_names())
            .expect("shipped templates load");
        let rendered = templates
            .check("Support", "support@example.com")
            .expect("check");
        assert_eq!(
            templates.languages(),
            vec!["de".to_string(), "es".to_string(), "fr".to_string()],
            "German, Spanish and French sets are shipped"
        );
        assert_eq!(templates.reply_names(), ["refund-approved"]);
        assert_eq!(
            rendered,
            (MailKind::ALL.len() + templates.reply_names().len()) * 12 * 4,
            "every kind and canned reply, every sample, every set"
        );
    }
}
