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
