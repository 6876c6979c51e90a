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
        }
    }
}

impl CadenceConfig {
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
    pub(super) incidents: Option<Spanned<u32>>,
    pub(super) tag_incidents: Option<Spanned<u32>>,
}

impl Validator<'_> {
    pub(super) fn recurring(&self, raw: RawRecurring) -> Result<RecurringConfig, ConfigError> {
        let mut out = RecurringConfig::default();
        if let Some(w) = raw.window {
            out.window = w;
        }
        if let Some(w) = raw.link_within {
            out.link_within = w;
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
