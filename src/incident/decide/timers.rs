//! What happens when time passes: progress updates, a promise at risk, the check-back, the
//! escalation of a quiet incident.

use super::*;

impl Decision<'_> {
    /// "Ann was promised an update by 14:00; reply with the news": once per promise, and only
    /// when no staff note came since the last promise.
    pub(super) fn promise_at_risk(&mut self) {
        let Some(promised) = self.incident.next_update_at else {
            return;
        };
        if self.incident.state != State::Open
            || self.incident.updates_stopped
            || self.incident.at_risk_warned_for == Some(promised)
            || clock::before(promised, self.config.staff.at_risk_before) > self.now
        {
            return;
        }
        self.incident.at_risk_warned_for = Some(promised);
        self.fx.push(Effect::AtRiskWarned(promised));
        if self
            .facts
            .unheard_note
            .as_ref()
            .is_some_and(|n| n.visibility == NoteVisibility::Customer)
        {
            return;
        }
        self.fx.log(
            EventKind::PromiseAtRisk,
            &Actor::Daemon,
            format!(
                "no news written for the update promised by {}",
                stamp(promised)
            ),
        );
        self.notify_staff(MailKind::StaffAtRisk, None, |_| {});
    }

    /// The promised update: the newest note the customer has not heard, or an honest "still
    /// working on it"; the next promise one cadence on. An update whose time already passed
    /// (the daemon was down) goes out once, says it is late, and the breach is recorded.
    pub(super) fn progress_due(&mut self) {
        if self.incident.state != State::Open || self.incident.updates_stopped {
            return;
        }
        if let Some(opening) = self.outside_window() {
            // Due while the team is away (the daemon was down over the time, or the window
            // changed): the update goes at the next opening, and says it is late if it is.
            let at = clock::after(opening, self.config.cadence.lead);
            self.set_next_update(Some(at));
            return;
        }
        let promised = self.incident.next_update_at;
        // Late only against a promise the customer was given (the ledger holds exactly those):
        // a time set without a mail (after staff wrote to them directly, say) breaks nothing.
        let overdue = self.facts.open_promises.iter().any(|due| *due < self.now);
        let note = self
            .facts
            .unheard_note
            .as_ref()
            .filter(|n| n.visibility == NoteVisibility::Customer)
            .map(|n| n.text.clone());
        let thanks = self.thanks_for();
        self.settle_promises();
        if overdue {
            let given = self.facts.open_promises.iter().min().copied();
            self.fx.log(
                EventKind::PromiseBreached,
                &Actor::Daemon,
                format!(
                    "the update promised for {} goes out late, at {}",
                    given.map(stamp).unwrap_or_default(),
                    stamp(self.now)
                ),
            );
        }
        // From the promised time when on time, so the cadence does not drift earlier by the
        // lead.
        let base = promised.filter(|p| *p > self.now).unwrap_or(self.now);
        let next = self.promise(base);
        self.set_next_update(Some(next.at));
        let no_news = if note.is_some() {
            0
        } else {
            self.incident.updates_without_news + 1
        };
        self.incident.updates_without_news = no_news;
        self.fx.push(Effect::UpdatesWithoutNews(no_news));
        let with_news = note.is_some();
        self.mail_customer(MailKind::Progress, Some(next.at), None, |d| {
            d.note = note.unwrap_or_default();
            d.overdue = overdue;
            d.window_moved = next.moved_by_window;
            d.thanks_for = thanks;
        });
        self.fx.log(
            EventKind::ProgressDue,
            &Actor::Daemon,
            format!(
                "progress update {}; next by {}",
                if with_news {
                    "with the latest note"
                } else {
                    "with no news"
                },
                stamp(next.at)
            ),
        );
        // Escalate once, when the run of updates without news reaches the limit.
        if no_news == i64::from(self.config.escalation.no_news_updates)
            && self.incident.escalated_at.is_none()
        {
            let mut reason = format!("{no_news} updates in a row went out with no news");
            if self.incident.last_note_at.is_none() {
                reason = format!("{reason}, and {}", self.quiet_for());
            }
            self.escalate(&reason);
        }
    }

    pub(super) fn check_back_due(&mut self) {
        if self.incident.state != State::Resolved {
            return;
        }
        if let Some(later) = self.outside_window() {
            self.incident.check_back_at = Some(later);
            self.fx.push(Effect::CheckBack {
                check_back_at: Some(later),
                close_at: None,
            });
            return;
        }
        let close_at = self
            .config
            .cadence
            .working_time(clock::after(self.now, self.config.cadence.close_after));
        self.incident.check_back_at = None;
        self.incident.close_at = Some(close_at);
        self.fx.push(Effect::CheckBack {
            check_back_at: None,
            close_at: Some(close_at),
        });
        self.mail_customer(MailKind::CheckBack, None, None, |_| {});
        self.fx.log(
            EventKind::CheckBack,
            &Actor::Daemon,
            format!(
                "asked whether all is well; closes at {} unless the customer replies",
                stamp(close_at)
            ),
        );
    }

    /// The next opening of the sending window when now is outside it (None: mail may go now).
    pub(super) fn outside_window(&self) -> Option<DateTime<Utc>> {
        let window = self.config.cadence.window.as_ref()?;
        if window.includes(self.now) {
            return None;
        }
        Some(self.config.cadence.working_time(self.now))
    }

    /// How long no staff member has written, as it really is: "no staff note since the
    /// incident opened 8 hours ago", or "no staff note for 9 hours (the last on Monday …)".
    pub(super) fn quiet_for(&self) -> String {
        let tz = self.config.cadence.timezone;
        match self.incident.last_note_at {
            None => format!(
                "no staff note since the incident opened {} ago",
                elapsed(self.now - self.incident.opened_at)
            ),
            Some(last) => format!(
                "no staff note for {} (the last one {})",
                elapsed(self.now - last),
                clock::human_time(last, tz)
            ),
        }
    }

    /// Tells staff an incident needs them; it is not escalated again until a note is added.
    pub(super) fn escalate(&mut self, reason: &str) {
        self.incident.escalated_at = Some(self.now);
        self.fx.push(Effect::Escalated(Some(self.now)));
        let recipients = if self.config.escalation.staff.is_empty() {
            self.config.staff.recipients().to_vec()
        } else {
            self.config.escalation.staff.clone()
        };
        if recipients.is_empty() {
            self.fx.log(
                EventKind::EscalationDue,
                &Actor::Daemon,
                format!(
                    "{reason}; no [escalation] staff or [staff] notify configured, so nobody was \
                     mailed"
                ),
            );
            return;
        }
        let quiet_since = self
            .incident
            .last_note_at
            .unwrap_or(self.incident.opened_at);
        let escalation = EscalationData {
            reason: reason.to_string(),
            customer: self.incident.customer_display(),
            updates_without_news: self.incident.updates_without_news,
            hours_without_note: (self.now - quiet_since).num_hours(),
        };
        self.fx.log(EventKind::Escalated, &Actor::Daemon, reason);
        self.staff_mail(MailKind::Escalation, &recipients, None, |d| {
            d.escalation = escalation.clone();
        });
    }
}
