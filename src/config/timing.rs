//! `[cadence]`, `[outbox]` and `[recurring]`: promises, retries and repeats over time.

use super::*;

/// The promise: how often customers hear from us, and what happens around resolution.
#[derive(Debug, Clone)]
pub struct CadenceConfig {
    /// A new incident's cadence.
    pub default: Duration,
    /// Bounds for a cadence set by the customer or staff.
    pub min: Duration,
    pub max: Duration,
    /// A progress update goes out this long before the promised time.
    pub lead: Duration,
    /// After resolution, when the check-back mail goes out.
    pub check_back_after: Duration,
    /// After the check-back, when a quiet incident closes.
    pub close_after: Duration,
    /// A customer reply this long after resolution still reopens the incident; later ones open
    /// a new incident that continues it.
    pub reopen_within: Duration,
    /// When promised updates may arrive; None: any time. Closed on `[cadence] holidays`.
    pub window: Option<crate::clock::Window>,
    /// Promised times are rounded up to this (13:15, not 13:06); zero: not rounded.
    pub step: Duration,
    /// The time zone of the window and of every time a customer reads.
    pub timezone: chrono_tz::Tz,
    /// After this many updates in a row without news, the pace slows a step (see `slower`),
    /// said once in that update, and staff are asked for news; 0: never.
    pub quiet_after: u32,
}

impl Default for CadenceConfig {
    fn default() -> Self {
        CadenceConfig {
            default: Duration::from_secs(4 * 3600),
            min: Duration::from_secs(30 * 60),
            max: Duration::from_secs(7 * 86_400),
            lead: Duration::from_secs(10 * 60),
            check_back_after: Duration::from_secs(3 * 86_400),
            close_after: Duration::from_secs(4 * 86_400),
            reopen_within: Duration::from_secs(14 * 86_400),
            window: None,
            step: Duration::from_secs(15 * 60),
            timezone: chrono_tz::Tz::UTC,
            quiet_after: 3,
        }
    }
}

impl CadenceConfig {
    /// The pace after `quiet_after` updates in a row without news: doubled, and past half a
    /// day rounded up to whole days (a customer reads "every 2 days", not "every 1 day and 8
    /// hours"), never past `max`; the same when it is that slow already. Each step is a new
    /// run of at most `quiet_after` updates, so a customer with nothing new hears from us less
    /// and less often but never falls silent: 4 h, 8 h, 1 day, 2 days, 4 days, `max`.
    pub fn slower(&self, cadence: Duration) -> Duration {
        const DAY: u64 = 86_400;
        let doubled = (cadence * 2).as_secs();
        let stepped = if doubled > DAY / 2 {
            doubled.div_ceil(DAY) * DAY
        } else {
            doubled
        };
        Duration::from_secs(stepped).min(self.max.max(cadence))
    }

    /// A requested cadence, kept within [min, max].
    pub fn clamp(&self, wanted: Duration) -> Duration {
        wanted.clamp(self.min, self.max)
    }

    /// The next update one `cadence` after `from`, placed in the sending window if there is one.
    pub fn promise(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        cadence: Duration,
    ) -> crate::clock::Promise {
        crate::clock::next_promise(from, cadence, self.window.as_ref(), self.lead, self.step)
    }

    /// A time that falls when the team works (check-backs, closes, a late update): inside the
    /// window.
    pub fn working_time(&self, t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        crate::clock::working_time(t, self.window.as_ref())
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCadence {
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) default: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) min: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) max: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) lead: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) check_back_after: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) close_after: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) reopen_within: Option<Duration>,
    pub(super) window: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) window_length: Option<Duration>,
    pub(super) timezone: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) step: Option<Duration>,
    pub(super) holidays: Option<Spanned<RawHolidays>>,
    pub(super) quiet_after: Option<u32>,
}

/// `[cadence] holidays`: a list of dates, or the path of an iCalendar file.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawHolidays {
    Dates(Vec<String>),
    File(PathBuf),
}

impl RawCadence {
    pub(super) fn resolve(&self) -> CadenceConfig {
        let d = CadenceConfig::default();
        CadenceConfig {
            default: self.default.unwrap_or(d.default),
            min: self.min.unwrap_or(d.min),
            max: self.max.unwrap_or(d.max),
            lead: self.lead.unwrap_or(d.lead),
            check_back_after: self.check_back_after.unwrap_or(d.check_back_after),
            close_after: self.close_after.unwrap_or(d.close_after),
            reopen_within: self.reopen_within.unwrap_or(d.reopen_within),
            window: None,
            step: self.step.unwrap_or(d.step),
            timezone: d.timezone,
            quiet_after: self.quiet_after.unwrap_or(d.quiet_after),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Send every mail also to the support address (envelope only): the copy coming back
    /// through intake is the receipt that settles a mail left in doubt by a crash.
    pub receipt_copies: bool,
    /// The longest a mail in doubt waits for its receipt while intake cannot read the
    /// support mailbox; with intake working, receipts decide (see `receipt_margin`).
    pub in_doubt_grace: Duration,
    /// How long the relay takes, at most, to deliver a receipt copy to the support mailbox: a
    /// mail in doubt since T is sent again once intake has read everything delivered before
    /// T + this margin and found no receipt.
    pub receipt_margin: Duration,
}

// ---------------------------------------------------------------------------------------------
// The file as written. Spanned fields are the ones validated after parsing, so that their errors
// can still point at a line.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutbox {
    #[serde(default = "default_retry_initial", deserialize_with = "duration")]
    pub(super) retry_initial: Duration,
    #[serde(default = "default_retry_max", deserialize_with = "duration")]
    pub(super) retry_max: Duration,
    #[serde(default = "default_true")]
    pub(super) receipt_copies: bool,
    #[serde(default = "default_in_doubt_grace", deserialize_with = "duration")]
    pub(super) in_doubt_grace: Duration,
    #[serde(default = "default_receipt_margin", deserialize_with = "duration")]
    pub(super) receipt_margin: Duration,
}

impl Default for RawOutbox {
    fn default() -> Self {
        RawOutbox {
            retry_initial: default_retry_initial(),
            retry_max: default_retry_max(),
            receipt_copies: true,
            in_doubt_grace: default_in_doubt_grace(),
            receipt_margin: default_receipt_margin(),
        }
    }
}

pub(super) fn default_retry_initial() -> Duration {
    Duration::from_secs(30)
}

pub(super) fn default_retry_max() -> Duration {
    Duration::from_secs(3600)
}

pub(super) fn default_in_doubt_grace() -> Duration {
    Duration::from_secs(600)
}

pub(super) fn default_receipt_margin() -> Duration {
    Duration::from_secs(10)
}

/// When incidents count as fire drills that keep coming back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecurringConfig {
    pub window: Duration,
    /// A complaint this soon after the customer's previous incident (open, or last changed
    /// within it) is linked to it as a repeat of the same problem.
    pub link_within: Duration,
    /// A new mail (not a reply) from the customer of an open incident joins it when it names
    /// one of its order or invoice numbers, or has its subject and comes within this long of
    /// the incident's last change: a follow-up, not a second problem.
    pub follow_up_within: Duration,
    /// A customer's incident is recurring when they opened this many within the window.
    pub incidents: u32,
    /// A tag is recurring when this many incidents within the window carry it.
    pub tag_incidents: u32,
}

impl Default for RecurringConfig {
    fn default() -> Self {
        RecurringConfig {
            window: Duration::from_secs(30 * 86_400),
            link_within: Duration::from_secs(30 * 86_400),
            follow_up_within: Duration::from_secs(3 * 86_400),
            incidents: 3,
            tag_incidents: 3,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecurring {
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) window: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) link_within: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub(super) follow_up_within: Option<Duration>,
    pub(super) incidents: Option<Spanned<u32>>,
    pub(super) tag_incidents: Option<Spanned<u32>>,
}

impl Validator<'_> {
    /// `[outbox]`, checked against one slow intake pass (`[imap] poll_interval` + `timeout`):
    /// a mail in doubt must wait it out.
    pub(super) fn outbox(
        &self,
        raw: &RawOutbox,
        one_pass: Duration,
    ) -> Result<OutboxConfig, ConfigError> {
        if raw.retry_initial.is_zero() || raw.retry_max < raw.retry_initial {
            return Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message: "[outbox] retry_initial must be above zero and not above retry_max".into(),
            });
        }
        // Past its grace a mail in doubt is resent without its receipt if intake made no
        // progress meanwhile; a grace shorter than one slow pass would take a busy intake for a
        // stalled one and send twice.
        let needed = raw.receipt_margin + one_pass;
        if raw.in_doubt_grace < needed {
            return Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message: format!(
                    "[outbox] in_doubt_grace ({}) must be at least receipt_margin + [imap] \
                     poll_interval + [imap] timeout ({}): a shorter grace resends mail whose \
                     receipt intake has not had the time to read",
                    humantime::format_duration(raw.in_doubt_grace),
                    humantime::format_duration(needed)
                ),
            });
        }
        Ok(OutboxConfig {
            retry_initial: raw.retry_initial,
            retry_max: raw.retry_max,
            receipt_copies: raw.receipt_copies,
            in_doubt_grace: raw.in_doubt_grace,
            receipt_margin: raw.receipt_margin,
        })
    }

    /// A `window` and `window_length` pair of `[section]` (the cadence's sending window, the
    /// staff's hours), in `tz`; None when neither is set.
    pub(super) fn window(
        &self,
        section: &str,
        expr: Option<&Spanned<String>>,
        length: Option<Duration>,
        tz: chrono_tz::Tz,
    ) -> Result<Option<crate::clock::Window>, ConfigError> {
        match (expr, length) {
            (Some(expr), Some(length)) => {
                match crate::clock::Window::parse(expr.get_ref(), length, tz) {
                    Ok(w) => Ok(Some(w)),
                    Err(e) => self.err(expr.span(), format!("[{section}] window {e}")),
                }
            }
            (Some(expr), None) => self.err(
                expr.span(),
                format!(
                    "[{section}] window needs window_length (how long each window stays open, \
                     like \"8h\")"
                ),
            ),
            (None, Some(_)) => Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message: format!("[{section}] window_length is set but window is not"),
            }),
            (None, None) => Ok(None),
        }
    }

    /// `[cadence]`: its time zone, sending window and holidays (the one file parsing reads,
    /// through the caller's reader), and bounds that make sense together.
    pub(super) fn cadence(&self, raw: &RawCadence) -> Result<CadenceConfig, ConfigError> {
        let mut cadence = raw.resolve();
        if let Some(tz) = &raw.timezone {
            cadence.timezone = match tz.get_ref().parse::<chrono_tz::Tz>() {
                Ok(tz) => tz,
                Err(_) => {
                    return self.err(
                        tz.span(),
                        format!(
                        "[cadence] timezone `{}` is not an IANA time zone like \"Europe/Berlin\"",
                        tz.get_ref()
                    ),
                    )
                }
            };
        }
        cadence.window = self.window(
            "cadence",
            raw.window.as_ref(),
            raw.window_length,
            cadence.timezone,
        )?;
        if let Some(holidays) = &raw.holidays {
            let parsed = match holidays.get_ref() {
                RawHolidays::Dates(dates) => {
                    crate::clock::Holidays::from_dates(dates.iter().map(String::as_str))
                }
                RawHolidays::File(path) => {
                    let path = self.resolve(path);
                    (self.read)(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))
                        .and_then(|text| crate::clock::Holidays::from_ical(&text))
                        .map_err(|e| format!("{e} (in {})", path.display()))
                }
            };
            let holidays_parsed = match parsed {
                Ok(h) => h,
                Err(e) => return self.err(holidays.span(), format!("[cadence] holidays: {e}")),
            };
            match cadence.window.take() {
                Some(w) => cadence.window = Some(w.with_holidays(holidays_parsed)),
                None => {
                    return self.err(
                        holidays.span(),
                        "[cadence] holidays need a sending window (window and window_length): \
                         they are the days it does not open"
                            .into(),
                    )
                }
            }
        }
        if cadence.step > Duration::from_secs(3600) {
            return Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message: "[cadence] step must be at most 1h (promised times are rounded up to \
                          it; \"15m\" by default, \"0s\" turns rounding off)"
                    .into(),
            });
        }
        if cadence.default.is_zero() {
            return Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message: "[imap] poll_interval and [cadence] default must be above zero".into(),
            });
        }
        if cadence.min.is_zero() || cadence.min > cadence.max || cadence.lead >= cadence.min {
            return Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message: format!(
                    "[cadence] needs 0 < lead < min <= max (lead {}, min {}, max {})",
                    humantime::format_duration(cadence.lead),
                    humantime::format_duration(cadence.min),
                    humantime::format_duration(cadence.max)
                ),
            });
        }
        Ok(cadence)
    }

    pub(super) fn recurring(&self, raw: RawRecurring) -> Result<RecurringConfig, ConfigError> {
        let mut out = RecurringConfig::default();
        if let Some(w) = raw.window {
            out.window = w;
        }
        if let Some(w) = raw.link_within {
            out.link_within = w;
        }
        if let Some(w) = raw.follow_up_within {
            out.follow_up_within = w;
        }
        for (field, value, target) in [
            ("incidents", raw.incidents, &mut out.incidents),
            ("tag_incidents", raw.tag_incidents, &mut out.tag_incidents),
        ] {
            if let Some(n) = value {
                if *n.get_ref() < 2 {
                    return self.err(
                        n.span(),
                        format!(
                            "[recurring] {field} must be at least 2: one incident is not a pattern"
                        ),
                    );
                }
                *target = *n.get_ref();
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_pace_slows_in_steps_a_person_would_name_and_stops_at_max() {
        let c = CadenceConfig::default();
        let h = |n: u64| Duration::from_secs(n * 3600);
        let mut pace = h(4);
        let mut steps = vec![];
        for _ in 0..7 {
            pace = c.slower(pace);
            steps.push(pace.as_secs() / 3600);
        }
        assert_eq!(steps, [8, 24, 48, 96, 168, 168, 168]);
        // A pace already slower than `max` (set by hand before max changed) is kept.
        assert_eq!(c.slower(h(24 * 10)), h(24 * 10));
        // 7 hours doubled is 14: past half a day, so a whole day.
        assert_eq!(c.slower(h(7)), h(24));
    }
}
