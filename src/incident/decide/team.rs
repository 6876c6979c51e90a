//! The team's copy of what a member did: after a staff action that changed something, the
//! members `[staff.copies]` names are told who did what, and what the customer was sent, in
//! the incident's staff thread. One member's reply, note, assignment or resolution is never
//! invisible to the others, and the author has their copy of the customer's mail.

use super::*;
use crate::config::CopyTo;
use crate::incident::Audience;

/// What a member's action was, for who hears of it and the subject's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reply,
    Note,
    Change,
}

impl Decision<'_> {
    /// Tells the team what `by` just did: the effects from `start` on are this action's. A
    /// refused or held action did nothing (its author is told apart), so nobody else is.
    pub(super) fn tell_team(
        &mut self,
        by: &str,
        name: &str,
        start: usize,
        caused_by: Option<MessageRow>,
    ) {
        let actor = Actor::Staff(by.to_string());
        let mut sent = Vec::new();
        let mut lines = Vec::new();
        let mut kinds = Vec::new();
        // A note for the customer is in the copy of their mail; its log line would say it twice.
        let mut for_customer = false;
        // The member wrote to the customer themselves (a reply-all, a mail with support in Cc).
        let mut direct = false;
        for effect in &self.fx.list[start..] {
            match effect {
                Effect::Mail(m) if m.kind.audience() == Audience::Customer => sent.push(m.kind),
                Effect::Note { visibility, .. } => {
                    for_customer = *visibility == NoteVisibility::Customer;
                    direct |= *visibility == NoteVisibility::Correspondence;
                }
                Effect::Event(e) if e.kind == EventKind::StaffCommandRefused => return,
                Effect::Event(e) if e.kind == EventKind::NoteAdded && for_customer => {
                    kinds.push(e.kind);
                }
                Effect::Event(e) if e.actor == actor && e.kind != EventKind::Vouched => {
                    kinds.push(e.kind);
                    lines.push(e.detail.clone());
                }
                _ => {}
            }
        }
        if sent.is_empty() && lines.is_empty() {
            return;
        }
        // A tag is bookkeeping (an outage tags dozens at once): shown in every staff mail and
        // in `incidents`, not worth a mail of its own.
        if sent.is_empty()
            && kinds
                .iter()
                .all(|k| matches!(k, EventKind::Tagged | EventKind::Recurring))
        {
            return;
        }
        let kind = if !sent.is_empty() || direct {
            Kind::Reply
        } else if kinds.iter().all(|k| *k == EventKind::NoteAdded) {
            Kind::Note
        } else {
            Kind::Change
        };
        let label = self.say(match (kind, sent.first()) {
            (_, _) if kinds.contains(&EventKind::Resolved) => said!("team.label.resolved"),
            (_, _) if kinds.contains(&EventKind::Closed) => said!("team.label.closed"),
            (_, _) if kinds.contains(&EventKind::Reopened) => said!("team.label.reopened"),
            (_, Some(MailKind::Waiting)) => said!("team.label.waiting"),
            (_, None) if direct => said!("team.label.direct"),
            (Kind::Reply, _) => said!("team.label.reply"),
            (Kind::Note, _) => said!("team.label.note"),
            (Kind::Change, _) if kinds.contains(&EventKind::Assigned) => said!(
                "team.label.assigned",
                member = short_name(self.incident.assigned_to.as_deref().unwrap_or(""))
            ),
            (Kind::Change, _) => said!("team.label.changed"),
        });
        for mail in &sent {
            let what = self.say(match mail {
                MailKind::Progress => said!("team.sent.progress"),
                MailKind::Waiting => said!("team.sent.waiting"),
                MailKind::Resolution => said!("team.sent.resolution"),
                MailKind::Reopened => said!("team.sent.reopened"),
                MailKind::Status => said!("team.sent.status"),
                _ => said!("team.sent.other"),
            });
            lines.push(self.say(said!("team.sent_line", what = what)));
        }
        let copies = &self.policy.staff.copies;
        let wanted = match kind {
            Kind::Reply => &copies.replies,
            Kind::Note => &copies.notes,
            Kind::Change => &copies.changes,
        };
        let author = self
            .policy
            .staff
            .member_named(by)
            .ok()
            .filter(|a| a.contains('@'));
        let mut recipients: Vec<String> = Vec::new();
        for to in wanted {
            let more: Vec<String> = match to {
                CopyTo::Team => self.policy.staff.recipients().to_vec(),
                CopyTo::Assignee => self.incident.assigned_to.iter().cloned().collect(),
                CopyTo::Author => author.iter().cloned().collect(),
            };
            for address in more {
                if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&address)) {
                    recipients.push(address);
                }
            }
        }
        let by = if name.is_empty() || name.eq_ignore_ascii_case(by) {
            by.to_string()
        } else {
            format!("{name} <{by}>")
        };
        self.staff_mail(MailKind::StaffActivity, &recipients, caused_by, |d| {
            d.staff = StaffData {
                by: by.clone(),
                label: label.clone(),
                activity: lines.clone(),
                ..StaffData::default()
            };
        });
    }
}

/// "ben" for ben@example.com: a member as a subject line names them.
fn short_name(address: &str) -> &str {
    address.split('@').next().unwrap_or(address)
}

#[cfg(test)]
mod tests {
    use super::super::test_kit::decide;
    use super::super::test_kit::*;
    use super::super::tests_support::{at, T0};
    use super::*;

    fn two_members() -> crate::config::Config {
        let mut config = staffed();
        config.staff.members = vec!["anna@example.test".into(), "ben@example.test".into()];
        config
    }

    fn activity(fx: &Effects) -> Vec<&Mail> {
        fx.mails()
            .filter(|m| m.kind == MailKind::StaffActivity)
            .collect()
    }

    #[test]
    fn the_team_hears_of_a_change_and_copies_go_where_the_config_says() {
        let f = facts(open_incident());
        let by_anna = |action| Event::Staff {
            by: "anna@example.test".into(),
            action,
        };
        let mut config = two_members();
        let fx = decide(
            &f,
            &by_anna(StaffAction::Assign("ben".into())),
            &config,
            at(T0),
        )
        .expect("assigned");
        let told: Vec<&str> = activity(&fx).iter().map(|m| m.to.as_str()).collect();
        assert_eq!(told, ["anna@example.test", "ben@example.test"]);
        let mail = activity(&fx)[0];
        assert_eq!(mail.data.staff.label, "Assigned to ben");
        assert_eq!(mail.data.staff.activity, ["assigned to ben@example.test"]);
        assert_eq!(mail.data.incident.assignee, "ben@example.test");

        config.staff.copies.notes = vec![CopyTo::Author];
        let fx = decide(
            &f,
            &by_anna(StaffAction::InternalNote("She sounds upset.".into())),
            &config,
            at(T0),
        )
        .expect("noted");
        let told: Vec<&str> = activity(&fx).iter().map(|m| m.to.as_str()).collect();
        assert_eq!(told, ["anna@example.test"], "only her own copy");
        assert!(fx
            .mails()
            .all(|m| m.kind.audience() == crate::incident::Audience::Staff));

        // Refused: nothing happened, so nobody but the author hears (of the refusal).
        let fx = decide(
            &f,
            &by_anna(StaffAction::Assign("dora".into())),
            &config,
            at(T0),
        );
        assert!(fx.is_err());
    }

    #[test]
    fn an_escalation_goes_to_the_assignee_then_the_team_and_never_just_after_the_customer_wrote() {
        let config = two_members();
        let mut incident = open_incident();
        incident.assigned_to = Some("ben@example.test".into());
        let mut f = facts(incident);
        let now = at("2026-11-23T17:30:00Z");
        let fx = decide(&f, &Event::QuietTooLong, &config, now).expect("decided");
        let to: Vec<&str> = fx
            .mails()
            .filter(|m| m.kind == MailKind::Escalation)
            .map(|m| m.to.as_str())
            .collect();
        assert_eq!(to, ["ben@example.test"], "Ben alone first");
        let later = at("2026-11-23T18:30:00Z");
        assert!(fx.list.contains(&Effect::TeamAlarm(Some(later))));
        for effect in &fx.list {
            effect.evolve(&mut f.incident, now);
        }
        let fx = decide(&f, &Event::TeamAlarmDue, &config, later).expect("decided");
        let to: Vec<&str> = fx
            .mails()
            .filter(|m| m.kind == MailKind::Escalation)
            .map(|m| m.to.as_str())
            .collect();
        assert_eq!(to, ["anna@example.test"], "then the rest of the team");
        let reason = &fx.mails().next().expect("mail").data.escalation.reason;
        assert!(reason.contains("assigned to ben@example.test"), "{reason}");

        // Had anyone written in the hour, the team would not hear of it.
        let mut quiet = f.clone();
        quiet.incident.escalated_at = None;
        let fx = decide(&quiet, &Event::TeamAlarmDue, &config, later).expect("decided");
        assert_eq!(fx.mails().count(), 0);
        assert!(fx.list.contains(&Effect::TeamAlarm(None)));

        // The customer wrote ten minutes ago: no alarm now.
        let mut just_wrote = facts(open_incident());
        just_wrote.incident.customer_wrote_at = Some(at("2026-11-23T17:20:00Z"));
        let fx = decide(&just_wrote, &Event::QuietTooLong, &config, now).expect("decided");
        assert_eq!(fx.mails().count(), 0, "{fx:#?}");
    }
}
