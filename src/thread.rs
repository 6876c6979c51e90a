//! Threading: which incident does an incoming message belong to?
//!
//! A pure decision over what the store already knows. The rule that matters most: a message
//! only ever joins an incident its sender already takes part in. Someone who copies an
//! In-Reply-To header or a subject token from a forwarded mail gets their own incident, and the
//! original customer's incident is left untouched.

use crate::incident::IncidentNo;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
