//! `[staff]` and `[escalation]`: the team, where it is told, and when an incident needs it.

use super::*;

/// The support team: who may act by mail, and where they are told what happens.
#[derive(Debug, Clone)]
pub struct StaffConfig {
    /// Staff addresses (lower-cased): they take part in every incident and may act on it by
    /// replying to a notification.
    pub members: Vec<String>,
    /// Where notifications go: a team list, or each member. Empty: the members.
    pub notify: Vec<String>,
    /// A staff reply sent to (or copying) this address is an internal note, never relayed.
    pub internal_address: Option<String>,
    /// Staff are warned this long before a promised update that has no note since the last
    /// one ("promise at risk").
    pub at_risk_before: Duration,
    /// At-risk alarms go out together: when one falls due, every other promise due within
    /// this much more is warned in the same tick, and each member gets one mail listing them
    /// (at most one such mail per member per this long). Zero: one mail per promise.
    pub at_risk_batch: Duration,
    /// Per recipient: at most this many notifications; the ones over it wait for one digest.
    pub notify_cap: CapWindow,
    /// A burst: past `max` new incidents within `within`, each further one is assigned in turn
    /// to one member (the one with the fewest open incidents), who alone gets its
    /// notification; the rest of the team hears of it in their digest. None: every member
    /// hears of every new incident.
    pub burst: Option<CapWindow>,
    /// `alignment = "relaxed"`: a staff reply verified by a parent or subdomain of its From
    /// domain acts too. Default strict: the From domain itself signed or passed SPF.
    pub relaxed_alignment: bool,
    /// How long a notification can be answered: a reply to an older one is not acted on, and
    /// the member is told to answer a fresh one.
    pub reply_valid_for: Duration,
    /// Most bytes of a customer's attachments carried by one staff notification; the ones
    /// past it are listed, not attached.
    pub attach_max: u64,
    /// Who hears of what a member did (`staff/activity`).
    pub copies: Copies,
    /// When alarms (a promise at risk, an escalation) may go out; None: any time. Default the
    /// `[cadence]` window.
    pub window: Option<crate::clock::Window>,
    /// An escalation goes to the assignee alone first; the team is told this long after if
    /// nobody has written since.
    pub team_after: Duration,
    /// No alarm this soon after the customer wrote (they just answered; staff have their mail).
    pub grace_after_customer: Duration,
}

/// `[staff.copies]`: per kind of action, who is sent the team's copy of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copies {
    /// A member's words went to the customer (with the exact text they got).
    pub replies: Vec<CopyTo>,
    /// An internal note.
    pub notes: Vec<CopyTo>,
    /// Everything else: assignment, resolution, close, reopen, wait, pace, tag, language.
    pub changes: Vec<CopyTo>,
}

impl Default for Copies {
    fn default() -> Self {
        Copies {
            replies: vec![CopyTo::Team],
            notes: vec![CopyTo::Team],
            changes: vec![CopyTo::Team],
        }
    }
}

/// Who a copy goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyTo {
    /// Where notifications go (`notify`, else every member): the author included.
    Team,
    /// The member the incident is assigned to.
    Assignee,
    /// The member who acted: their copy of what was done.
    Author,
}

impl Default for StaffConfig {
    fn default() -> Self {
        StaffConfig {
            members: Vec::new(),
            notify: Vec::new(),
            internal_address: None,
            at_risk_before: Duration::from_secs(3600),
            at_risk_batch: Duration::from_secs(3600),
            notify_cap: CapWindow {
                max: 20,
                within: Duration::from_secs(3600),
            },
            burst: Some(CapWindow {
                max: 5,
                within: Duration::from_secs(15 * 60),
            }),
            relaxed_alignment: false,
            reply_valid_for: Duration::from_secs(90 * 86_400),
            attach_max: 10 * 1000 * 1000,
            copies: Copies::default(),
            window: None,
            team_after: Duration::from_secs(3600),
            grace_after_customer: Duration::from_secs(30 * 60),
        }
    }
}

impl StaffConfig {
    pub fn is_member(&self, address: &str) -> bool {
        self.members.iter().any(|s| s.eq_ignore_ascii_case(address))
    }

    /// The member `name` means in `#assign NAME`: their address, their mailbox name ("ben"
    /// for ben@…) or its first part ("ben" for ben.carter@…), any case. Err: the members it
    /// could be (none: nobody is called that). With no members configured any name stands.
    pub fn member_named(&self, name: &str) -> Result<String, Vec<String>> {
        let name = name.trim();
        if self.members.is_empty() {
            return Ok(name.to_string());
        }
        if name.contains('@') {
            return self
                .members
                .iter()
                .find(|m| m.eq_ignore_ascii_case(name))
                .cloned()
                .ok_or_else(Vec::new);
        }
        let local = |m: &str| m.split('@').next().unwrap_or_default().to_lowercase();
        let wanted = name.to_lowercase();
        let exact: Vec<String> = self
            .members
            .iter()
            .filter(|m| local(m) == wanted)
            .cloned()
            .collect();
        let first_part: Vec<String> = self
            .members
            .iter()
            .filter(|m| {
                local(m)
                    .split(['.', '_', '-', '+'])
                    .next()
                    .is_some_and(|p| p == wanted)
            })
            .cloned()
            .collect();
        match (exact.as_slice(), first_part.as_slice()) {
            ([one], _) | ([], [one]) => Ok(one.clone()),
            ([], many) => Err(many.to_vec()),
            (many, _) => Err(many.to_vec()),
        }
    }

    /// Where notifications go.
    pub fn recipients(&self) -> &[String] {
        if self.notify.is_empty() {
            &self.members
        } else {
            &self.notify
        }
    }
}

/// When staff are told an incident needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationConfig {
    /// Who gets escalation mail; empty turns escalation off.
    pub staff: Vec<String>,
    /// An open incident with no staff note for this long is escalated.
    pub after_no_note: Duration,
    /// …or after this many progress updates in a row went out with no news.
    pub no_news_updates: u32,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        EscalationConfig {
            staff: Vec::new(),
            after_no_note: Duration::from_secs(8 * 3600),
            no_news_updates: 3,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStaff {
    #[serde(default)]
    pub(super) members: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) notify: Vec<Spanned<String>>,
    pub(super) internal_address: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) at_risk_before: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) at_risk_batch: Option<Duration>,
    pub(super) notify_cap: Option<Spanned<RawCapWindow>>,
    pub(super) burst: Option<Spanned<RawBurst>>,
    pub(super) alignment: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) reply_valid_for: Option<Duration>,
    pub(super) attach_max: Option<Spanned<String>>,
    pub(super) copies: Option<RawCopies>,
    pub(super) window: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) window_length: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) team_after: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) grace_after_customer: Option<Duration>,
}

/// `burst = { max = 5, within = "15m" }`, or `burst = false` to tell every member of every
/// new incident.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawBurst {
    Off(bool),
    Window(RawCapWindow),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCopies {
    pub(super) replies: Option<Vec<Spanned<String>>>,
    pub(super) notes: Option<Vec<Spanned<String>>>,
    pub(super) changes: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEscalation {
    #[serde(default)]
    pub(super) staff: Vec<Spanned<String>>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) after_no_note: Option<Duration>,
    pub(super) no_news_updates: Option<Spanned<u32>>,
}

impl Validator<'_> {
    pub(super) fn staff(
        &self,
        raw: RawStaff,
        old_members: Vec<Spanned<String>>,
        cadence: &CadenceConfig,
    ) -> Result<StaffConfig, ConfigError> {
        let mut members = self.address_list("[staff] members", raw.members)?;
        members.extend(self.address_list("[support] staff", old_members)?);
        members.dedup();
        let mut out = StaffConfig {
            members,
            notify: self.address_list("[staff] notify", raw.notify)?,
            ..StaffConfig::default()
        };
        if let Some(internal) = raw.internal_address {
            out.internal_address = self
                .address_list("[staff] internal_address", vec![internal])?
                .pop();
        }
        if let Some(before) = raw.at_risk_before {
            out.at_risk_before = before;
        }
        if let Some(batch) = raw.at_risk_batch {
            out.at_risk_batch = batch;
        }
        if let Some(alignment) = raw.alignment {
            out.relaxed_alignment = match alignment.get_ref().as_str() {
                "strict" => false,
                "relaxed" => true,
                other => {
                    return self.err(
                        alignment.span(),
                        format!(
                            "[staff] alignment = \"{other}\" is not one of \"strict\", \"relaxed\""
                        ),
                    )
                }
            };
        }
        if let Some(valid) = raw.reply_valid_for {
            out.reply_valid_for = valid;
        }
        if let Some(size) = raw.attach_max {
            out.attach_max = match super::intake::parse_size(size.get_ref()) {
                Some(n) => n,
                None => {
                    return self.err(
                        size.span(),
                        format!(
                            "[staff] attach_max `{}` is not a size; write it like \"10MB\" \
                             (\"0\": list attachments, never attach them)",
                            size.get_ref()
                        ),
                    )
                }
            };
        }
        // Staff hours default to the customers' sending window: alarms come when updates can.
        out.window = match self.window(
            "staff",
            raw.window.as_ref(),
            raw.window_length,
            cadence.timezone,
        )? {
            Some(own) => Some(own),
            None => cadence.window.clone(),
        };
        if let Some(after) = raw.team_after {
            out.team_after = after;
        }
        if let Some(grace) = raw.grace_after_customer {
            out.grace_after_customer = grace;
        }
        if let Some(copies) = raw.copies {
            let read = |list: Option<Vec<Spanned<String>>>, was: Vec<CopyTo>| {
                match list {
                None => Ok(was),
                Some(list) => list
                    .into_iter()
                    .map(|to| match to.get_ref().as_str() {
                        "team" => Ok(CopyTo::Team),
                        "assignee" => Ok(CopyTo::Assignee),
                        "author" => Ok(CopyTo::Author),
                        other => self.err(
                            to.span(),
                            format!(
                                "[staff.copies] `{other}` is not one of \"team\", \"assignee\", \"author\""
                            ),
                        ),
                    })
                    .collect(),
            }
            };
            let d = Copies::default();
            out.copies = Copies {
                replies: read(copies.replies, d.replies)?,
                notes: read(copies.notes, d.notes)?,
                changes: read(copies.changes, d.changes)?,
            };
        }
        if let Some(cap) = raw.notify_cap {
            let span = cap.span();
            let cap = cap.into_inner();
            if cap.max == 0 || cap.within.is_zero() {
                return self.err(
                    span,
                    "[staff] notify_cap needs max of at least 1 and a non-zero `within`".into(),
                );
            }
            out.notify_cap = CapWindow {
                max: cap.max,
                within: cap.within,
            };
        }
        if let Some(burst) = raw.burst {
            let span = burst.span();
            out.burst = match burst.into_inner() {
                RawBurst::Off(false) => None,
                RawBurst::Window(w) if w.max > 0 && !w.within.is_zero() => Some(CapWindow {
                    max: w.max,
                    within: w.within,
                }),
                _ => {
                    return self.err(
                        span,
                        "[staff] burst is either false or { max = 5, within = \"15m\" } with \
                         max of at least 1 and a non-zero `within`"
                            .into(),
                    )
                }
            };
        }
        Ok(out)
    }

    pub(super) fn escalation(&self, raw: RawEscalation) -> Result<EscalationConfig, ConfigError> {
        let mut out = EscalationConfig::default();
        for address in raw.staff {
            if !is_plausible_address(address.get_ref()) {
                return self.err(
                    address.span(),
                    format!(
                        "[escalation] staff address `{}` is not an email address",
                        address.get_ref()
                    ),
                );
            }
            out.staff.push(address.into_inner().to_lowercase());
        }
        if let Some(after) = raw.after_no_note {
            out.after_no_note = after;
        }
        if let Some(n) = raw.no_news_updates {
            if *n.get_ref() == 0 {
                return self.err(
                    n.span(),
                    "[escalation] no_news_updates must be at least 1".into(),
                );
            }
            out.no_news_updates = *n.get_ref();
        }
        Ok(out)
    }

    pub(super) fn address_list(
        &self,
        key: &str,
        list: Vec<Spanned<String>>,
    ) -> Result<Vec<String>, ConfigError> {
        let mut out = Vec::new();
        for address in list {
            if !is_plausible_address(address.get_ref()) {
                return self.err(
                    address.span(),
                    format!(
                        "{key} address `{}` is not an email address",
                        address.get_ref()
                    ),
                );
            }
            out.push(address.into_inner().trim().to_lowercase());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_is_named_by_address_mailbox_or_first_name_and_never_guessed() {
        let team = StaffConfig {
            members: vec![
                "anna@example.test".into(),
                "ben.carter@example.test".into(),
                "ben.ng@example.test".into(),
                "chris@example.test".into(),
            ],
            ..StaffConfig::default()
        };
        let named = |n: &str| team.member_named(n);
        assert_eq!(named("Anna"), Ok("anna@example.test".into()));
        assert_eq!(named("CHRIS@example.test"), Ok("chris@example.test".into()));
        assert_eq!(named("ben.ng"), Ok("ben.ng@example.test".into()));
        assert_eq!(
            named("ben"),
            Err(vec![
                "ben.carter@example.test".into(),
                "ben.ng@example.test".into()
            ]),
            "two Bens: the address decides"
        );
        assert_eq!(named("dora"), Err(vec![]));
        assert_eq!(named("anna@elsewhere.test"), Err(vec![]));
        let nobody = StaffConfig::default();
        assert_eq!(nobody.member_named("ops"), Ok("ops".into()));
    }
}
