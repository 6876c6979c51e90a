//! Threading: which incident does an incoming message belong to?
//!
//! A pure decision over what the store already knows. The rule that matters most: a message
//! only ever joins an incident its sender already takes part in. Someone who copies an
//! In-Reply-To header or a subject token from a forwarded mail gets their own incident, and the
//! original customer's incident is left untouched.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock;
use crate::config::StrangerPolicy;
use crate::incident::{Incident, IncidentNo};
use crate::mail::facts::Fact;

/// What the store knows about one candidate incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub incident: IncidentNo,
    /// How the message pointed at it.
    pub via: Evidence,
    /// Whether the sender is already a participant (customer, their Cc, staff).
    pub sender_is_participant: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// In-Reply-To or References named a message of the incident.
    Reference,
    /// Outlook's Thread-Index continues the incident's conversation.
    ThreadIndex,
    /// Only the (verified) token in the subject.
    SubjectToken,
    /// A new mail from the customer names an order or invoice number of their open incident.
    SameFact,
    /// A new mail from the customer has their open incident's subject, soon after.
    SameSubject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Join {
        incident: IncidentNo,
        via: Evidence,
    },
    /// A new incident. `stranger_to` lists incidents the message pointed at but whose
    /// participants do not include the sender; recorded for staff, never joined.
    Open {
        stranger_to: Vec<IncidentNo>,
    },
}

/// Picks the incident. Candidates come in order of strength: references first (In-Reply-To, then
/// References newest first), then Outlook's Thread-Index, the subject token last.
pub fn decide(candidates: &[Candidate]) -> Decision {
    if let Some(hit) = candidates.iter().find(|c| c.sender_is_participant) {
        return Decision::Join {
            incident: hit.incident,
            via: hit.via,
        };
    }
    let mut stranger_to: Vec<IncidentNo> = Vec::new();
    for c in candidates {
        if !stranger_to.contains(&c.incident) {
            stranger_to.push(c.incident);
        }
    }
    Decision::Open { stranger_to }
}

/// What to do with a person's mail once its incident candidates are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// It answers this incident.
    Join { incident: IncidentNo, via: Evidence },
    /// A new incident; `continues` when it answers one resolved too long ago to reopen, and
    /// `stranger_to` lists incidents it pointed at without its sender taking part.
    Open {
        continues: Option<IncidentNo>,
        stranger_to: Vec<IncidentNo>,
    },
    /// Kept for staff in quarantine (`[intake] strangers = "hold"`).
    Hold { stranger_to: Vec<IncidentNo> },
}

/// Routes a person's mail: threading's decision, the stranger policy, and whether the incident
/// it answers is too long over to reopen (`too_late` is asked only about a joined incident).
pub fn route(
    decision: Decision,
    strangers: StrangerPolicy,
    too_late: impl FnOnce(IncidentNo) -> bool,
) -> Route {
    match decision {
        Decision::Join { incident, .. } if too_late(incident) => Route::Open {
            continues: Some(incident),
            stranger_to: Vec::new(),
        },
        Decision::Join { incident, via } => Route::Join { incident, via },
        Decision::Open { stranger_to }
            if !stranger_to.is_empty() && strangers == StrangerPolicy::Hold =>
        {
            Route::Hold { stranger_to }
        }
        Decision::Open { stranger_to } => Route::Open {
            continues: None,
            stranger_to,
        },
    }
}

/// One of the sender's own open or waiting incidents, as a new mail of theirs may follow it
/// up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOfTheirs {
    pub incident: IncidentNo,
    pub subject: String,
    pub updated_at: DateTime<Utc>,
    pub facts: Vec<Fact>,
}

/// A new mail (not a reply: nothing in it points at an incident) from the customer of an open
/// incident that is about that incident: it names one of its order or invoice numbers, or it
/// has its subject and comes within `within` of the incident's last change (and names no
/// other number of the same kind: "Order problem" about order 2 is not order 1's). The
/// customer is following up, not reporting a second problem. `theirs` newest first.
pub fn follow_up(
    theirs: &[OpenOfTheirs],
    subject: &str,
    facts: &[Fact],
    now: DateTime<Utc>,
    within: Duration,
) -> Option<(IncidentNo, Evidence)> {
    let same = |a: &Fact, b: &Fact| a.name == b.name && a.value.eq_ignore_ascii_case(&b.value);
    if let Some(hit) = theirs
        .iter()
        .find(|o| o.facts.iter().any(|f| facts.iter().any(|g| same(f, g))))
    {
        return Some((hit.incident, Evidence::SameFact));
    }
    let subject = subject.trim();
    if subject.is_empty() || subject == crate::mail::NO_SUBJECT {
        return None;
    }
    let since = clock::before(now, within);
    theirs
        .iter()
        .find(|o| {
            o.updated_at >= since
                && o.subject.trim().to_lowercase() == subject.to_lowercase()
                && !o
                    .facts
                    .iter()
                    .any(|f| facts.iter().any(|g| g.name == f.name && !same(f, g)))
        })
        .map(|o| (o.incident, Evidence::SameSubject))
}

/// Whether a reply to `incident` comes too long after its resolution to reopen it.
pub fn too_late_to_reopen(
    incident: &Incident,
    reopen_within: Duration,
    now: DateTime<Utc>,
) -> bool {
    if !incident.state().is_over() {
        return false;
    }
    let ended = incident.resolved_at().unwrap_or(incident.updated_at);
    clock::after(ended, reopen_within) < now
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::decide::tests_support::{at, fixed};
    use crate::incident::Stage;

    fn open_of_theirs(
        n: i64,
        subject: &str,
        updated: &str,
        facts: &[(&str, &str)],
    ) -> OpenOfTheirs {
        OpenOfTheirs {
            incident: IncidentNo(n),
            subject: subject.into(),
            updated_at: at(updated),
            facts: facts
                .iter()
                .map(|(name, value)| Fact {
                    name: (*name).into(),
                    value: (*value).into(),
                })
                .collect(),
        }
    }

    fn fact(name: &str, value: &str) -> Fact {
        Fact {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn a_new_mail_about_the_customers_open_incident_follows_it_up() {
        let theirs = [
            open_of_theirs(
                7,
                "Lamp arrived broken",
                "2026-12-01T09:00:00Z",
                &[("order", "48391")],
            ),
            open_of_theirs(
                4,
                "Invoice wrong",
                "2026-11-20T09:00:00Z",
                &[("invoice", "R-2026-118")],
            ),
        ];
        let now = at("2026-12-02T09:00:00Z");
        let three_days = Duration::from_secs(3 * 86_400);
        let follow =
            |subject: &str, facts: &[Fact]| follow_up(&theirs, subject, facts, now, three_days);
        // The same order, whatever the subject, however long ago the incident last moved.
        assert_eq!(
            follow("Any news?", &[fact("order", "48391")]),
            Some((IncidentNo(7), Evidence::SameFact))
        );
        assert_eq!(
            follow("Where is my refund", &[fact("invoice", "r-2026-118")]),
            Some((IncidentNo(4), Evidence::SameFact))
        );
        // The same subject, soon after.
        assert_eq!(
            follow("lamp arrived broken", &[]),
            Some((IncidentNo(7), Evidence::SameSubject))
        );
        // The same subject long after, or naming another order: a new problem.
        assert_eq!(follow("Invoice wrong", &[]), None);
        assert_eq!(
            follow("Lamp arrived broken", &[fact("order", "50017")]),
            None
        );
        // A subject that says nothing joins nothing.
        assert_eq!(follow(crate::mail::NO_SUBJECT, &[]), None);
        assert_eq!(follow("", &[]), None);
        assert_eq!(
            follow("Something else entirely", &[fact("order", "11111")]),
            None
        );
    }

    fn cand(incident: i64, via: Evidence, participant: bool) -> Candidate {
        Candidate {
            incident: IncidentNo(incident),
            via,
            sender_is_participant: participant,
        }
    }

    #[test]
    fn a_fresh_complaint_opens_an_incident() {
        assert_eq!(
            decide(&[]),
            Decision::Open {
                stranger_to: vec![]
            }
        );
    }

    #[test]
    fn the_customer_replying_to_the_acknowledgement_joins() {
        let d = decide(&[cand(4, Evidence::Reference, true)]);
        assert_eq!(
            d,
            Decision::Join {
                incident: IncidentNo(4),
                via: Evidence::Reference
            }
        );
    }

    #[test]
    fn a_subject_token_from_a_participant_joins() {
        let d = decide(&[cand(9, Evidence::SubjectToken, true)]);
        assert_eq!(
            d,
            Decision::Join {
                incident: IncidentNo(9),
                via: Evidence::SubjectToken
            }
        );
    }

    #[test]
    fn a_stranger_copying_the_token_or_references_gets_a_new_incident() {
        let d = decide(&[
            cand(9, Evidence::Reference, false),
            cand(9, Evidence::SubjectToken, false),
        ]);
        assert_eq!(
            d,
            Decision::Open {
                stranger_to: vec![IncidentNo(9)]
            }
        );
    }

    #[test]
    fn the_strongest_participating_candidate_wins() {
        let d = decide(&[
            cand(3, Evidence::Reference, false),
            cand(5, Evidence::Reference, true),
            cand(7, Evidence::SubjectToken, true),
        ]);
        assert_eq!(
            d,
            Decision::Join {
                incident: IncidentNo(5),
                via: Evidence::Reference
            }
        );
    }

    #[test]
    fn a_reply_to_an_incident_joins_it() {
        let decision = Decision::Join {
            incident: IncidentNo(4),
            via: Evidence::Reference,
        };
        assert_eq!(
            route(decision, StrangerPolicy::NewIncident, |_| false),
            Route::Join {
                incident: IncidentNo(4),
                via: Evidence::Reference
            }
        );
    }
    #[test]
    fn a_reply_long_after_the_resolution_opens_an_incident_that_continues_it() {
        let decision = Decision::Join {
            incident: IncidentNo(4),
            via: Evidence::SubjectToken,
        };
        assert_eq!(
            route(decision, StrangerPolicy::Hold, |n| n == IncidentNo(4)),
            Route::Open {
                continues: Some(IncidentNo(4)),
                stranger_to: vec![]
            }
        );
    }
    #[test]
    fn a_stranger_gets_a_new_incident_or_is_held_for_staff() {
        let decision = || Decision::Open {
            stranger_to: vec![IncidentNo(9)],
        };
        assert_eq!(
            route(decision(), StrangerPolicy::NewIncident, |_| false),
            Route::Open {
                continues: None,
                stranger_to: vec![IncidentNo(9)]
            }
        );
        assert_eq!(
            route(decision(), StrangerPolicy::Hold, |_| false),
            Route::Hold {
                stranger_to: vec![IncidentNo(9)]
            }
        );
        // A fresh complaint is never held.
        assert!(matches!(
            route(
                Decision::Open {
                    stranger_to: vec![]
                },
                StrangerPolicy::Hold,
                |_| false
            ),
            Route::Open { .. }
        ));
    }

    #[test]
    fn only_an_incident_over_for_longer_than_reopen_within_is_too_late() {
        let mut incident = crate::incident::decide::tests_support::incident();
        let within = Duration::from_secs(14 * 86_400);
        incident.stage = Stage::Resolved {
            check_back_at: None,
            close_at: None,
        };
        incident.resolution = Some(fixed(at("2026-11-01T00:00:00Z")));
        assert!(!too_late_to_reopen(
            &incident,
            within,
            at("2026-11-10T00:00:00Z")
        ));
        assert!(too_late_to_reopen(
            &incident,
            within,
            at("2026-11-20T00:00:00Z")
        ));
        incident.stage = Stage::Open {
            next_update_at: None,
        };
        assert!(!too_late_to_reopen(
            &incident,
            within,
            at("2026-12-20T00:00:00Z")
        ));
    }
}
