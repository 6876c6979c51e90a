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
}
