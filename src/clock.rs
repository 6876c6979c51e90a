//! Time: the one clock, sending windows, promise arithmetic, and how times are written down.
//!
//! Every promise the daemon makes is computed here, so the acknowledgement, the scheduler and a
//! staff action can never disagree about when "one cadence from now, inside the window" is.

use std::time::Duration;

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};

/// Where "now" comes from: the system clock, or a fixed time for testing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    fixed: Option<DateTime<Utc>>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock { fixed: None }
    }

    /// Time stands still at `at` (the testing clock, `FOLLOWUPD_TEST_NOW`).
    pub fn fixed(at: DateTime<Utc>) -> Clock {
        Clock { fixed: Some(at) }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.fixed.unwrap_or_else(Utc::now)
    }
}

/// `t + d`, saturating instead of overflowing on absurd durations.
pub fn after(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - d`, saturating.
pub fn before(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// When mail may promise to arrive: windows that open at each time a cron expression names
/// (six fields, seconds first, in the support team's time zone) and stay open for a length.
/// `0 0 9 * * Mon-Fri` with 8h is 09:00–17:00 on weekdays.
#[derive(Debug, Clone)]
pub struct Window {
    opens: cron::Schedule,
    length: chrono::Duration,
    tz: chrono_tz::Tz,
    /// Days the window does not open (`[cadence] holidays`), in the team's time zone.
    holidays: Holidays,
    /// The working week it opens, read once from its openings (see [`Window::week`]).
    week: Vec<WorkingDay>,
}

/// A weekday the window opens on, with its opening and closing time of day (team's zone).
pub type WorkingDay = (chrono::Weekday, chrono::NaiveTime, chrono::NaiveTime);

/// Days nobody works: fixed dates, and dates that come back every year (an iCalendar event
/// with `RRULE:FREQ=YEARLY`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holidays {
    dates: BTreeSet<NaiveDate>,
    yearly: BTreeSet<(u32, u32)>,
}

impl Holidays {
    pub fn is_empty(&self) -> bool {
        self.dates.is_empty() && self.yearly.is_empty()
    }

    pub fn contains(&self, day: NaiveDate) -> bool {
        self.dates.contains(&day) || self.yearly.contains(&(day.month(), day.day()))
    }

    /// `2026-12-25` dates.
    pub fn from_dates<'a>(dates: impl IntoIterator<Item = &'a str>) -> Result<Holidays, String> {
        let mut out = Holidays::default();
        for d in dates {
            let day = NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                .map_err(|_| format!("`{d}` is not a date like \"2026-12-25\""))?;
            out.dates.insert(day);
        }
        Ok(out)
    }

    /// The all-day (or any) events of an iCalendar file (RFC 5545): each event's days from
    /// DTSTART up to DTEND (exclusive), every year when it has `RRULE:FREQ=YEARLY`. Other
    /// recurrence rules are refused rather than half understood.
    pub fn from_ical(text: &str) -> Result<Holidays, String> {
        // Unfold continuation lines (RFC 5545 3.1).
        let mut lines: Vec<String> = Vec::new();
        for raw in text.lines() {
            match raw.strip_prefix([' ', '\t']) {
                Some(rest) if !lines.is_empty() => {
                    if let Some(last) = lines.last_mut() {
                        last.push_str(rest);
                    }
                }
                _ => lines.push(raw.trim_end().to_string()),
            }
        }
        let mut out = Holidays::default();
        let mut event: Option<(Option<NaiveDate>, Option<NaiveDate>, bool)> = None;
        for line in &lines {
            let (name, value) = match line.split_once(':') {
                Some((n, v)) => (n.split(';').next().unwrap_or("").to_ascii_uppercase(), v),
                None => continue,
            };
            match (name.as_str(), &mut event) {
                ("BEGIN", _) if value.eq_ignore_ascii_case("VEVENT") => {
                    event = Some((None, None, false))
                }
                ("DTSTART", Some(e)) => e.0 = ical_date(value),
                ("DTEND", Some(e)) => e.1 = ical_date(value),
                ("RRULE", Some(e)) => {
                    if value.to_ascii_uppercase().contains("FREQ=YEARLY") {
                        e.2 = true;
                    } else {
                        return Err(format!(
                            "RRULE `{value}`: only yearly holidays (FREQ=YEARLY) are understood"
                        ));
                    }
                }
                ("END", Some((start, end, yearly))) if value.eq_ignore_ascii_case("VEVENT") => {
                    let Some(start) = *start else {
                        return Err("an event without a DTSTART date".into());
                    };
                    let end = end
                        .filter(|e| *e > start)
                        .unwrap_or(start + chrono::Days::new(1));
                    let mut day = start;
                    // Bounded: a holiday of more than a year is a mistake in the file.
                    for _ in 0..366 {
                        if day >= end {
                            break;
                        }
                        if *yearly {
                            out.yearly.insert((day.month(), day.day()));
                        } else {
                            out.dates.insert(day);
                        }
                        day = day + chrono::Days::new(1);
                    }
                    event = None;
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// `20261225` or `20261225T000000Z`: the date part.
fn ical_date(value: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(value.get(..8)?, "%Y%m%d").ok()
}

impl Window {
    pub fn parse(expr: &str, length: Duration, tz: chrono_tz::Tz) -> Result<Window, String> {
        let fields = expr.split_whitespace().count();
        if !(6..=7).contains(&fields) {
            return Err(format!(
                "`{expr}` has {fields} fields; a window needs 6 (seconds first), like \
                 \"0 0 9 * * Mon-Fri\" for 09:00 on weekdays"
            ));
        }
        let opens: cron::Schedule = expr
            .parse()
            .map_err(|e| format!("`{expr}` is not a cron expression: {e}"))?;
        let length = chrono::Duration::from_std(length).map_err(|e| e.to_string())?;
        if length <= chrono::Duration::zero() {
            return Err("window_length must be above zero".into());
        }
        let mut window = Window {
            opens,
            length,
            tz,
            holidays: Holidays::default(),
            week: Vec::new(),
        };
        window.week = window.read_week();
        Ok(window)
    }

    /// The same window, closed on these days.
    pub fn with_holidays(mut self, holidays: Holidays) -> Window {
        self.holidays = holidays;
        self
    }

    /// The working week as the window opens it: each weekday it opens on, with the opening
    /// and closing time of day in the team's zone, Monday first: what "Monday to Friday,
    /// 09:00–17:00" says.
    pub fn week(&self) -> &[WorkingDay] {
        &self.week
    }

    /// [`Window::week`], read from the openings of a reference week (no holidays).
    fn read_week(&self) -> Vec<WorkingDay> {
        let Some(monday) = NaiveDate::from_ymd_opt(2024, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|d| d.and_local_timezone(self.tz).earliest())
        else {
            return Vec::new();
        };
        let end = monday + chrono::Duration::days(7);
        let mut out: Vec<WorkingDay> = Vec::new();
        for open in self
            .opens
            .after(&(monday - chrono::Duration::seconds(1)))
            .take(64)
        {
            if open >= end {
                break;
            }
            let day = open.weekday();
            // The first opening of a day stands for it.
            if out.iter().any(|(d, _, _)| *d == day) {
                continue;
            }
            out.push((day, open.time(), (open + self.length).time()));
        }
        out
    }

    /// The team's time zone.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.tz
    }

    /// The holidays from `from`'s day to `to`'s day (in the team's zone) on which the window
    /// would otherwise open: the closures a mail promising `to` at `from` should name.
    pub fn closed_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<NaiveDate> {
        let (first, last) = (
            from.with_timezone(&self.tz).date_naive(),
            to.with_timezone(&self.tz).date_naive(),
        );
        let opens_on: Vec<chrono::Weekday> = self.week().iter().map(|(d, _, _)| *d).collect();
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .take(60)
            .filter(|d| self.holidays.contains(*d) && opens_on.contains(&d.weekday()))
            .collect()
    }

    /// When the window opens next if `t` is outside it; None inside it.
    pub fn reopens(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.includes(t) {
            None
        } else {
            self.next_open(t)
        }
    }

    /// The first opening after `t` that is not on a holiday.
    fn next_open(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.opens
            .after(&t.with_timezone(&self.tz))
            // Bounded: a window closed on every day for years is a configuration mistake.
            .take(2000)
            .find(|o| !self.holidays.contains(o.date_naive()))
            .map(|o| o.with_timezone(&Utc))
    }

    /// `t` if it is inside a window, else the next opening.
    pub fn next_inside(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        if self.includes(t) {
            t
        } else {
            self.next_open(t).unwrap_or(t)
        }
    }

    /// Whether `t` falls inside a window: some opening in (t - length, t].
    pub fn includes(&self, t: DateTime<Utc>) -> bool {
        self.next_open(t - self.length).is_some_and(|o| o <= t)
    }

    /// `d` of working time after `t`: the time inside the window is counted, the time
    /// outside it is not ("8 hours without a note" means a working day, not a night).
    pub fn after_working(&self, t: DateTime<Utc>, d: chrono::Duration) -> DateTime<Utc> {
        let mut at = t;
        let mut left = d;
        // Bounded: a window that stays shut for thousands of openings is a mistake.
        for _ in 0..2000 {
            let Some(open) = self.next_open(at - self.length) else {
                break;
            };
            let start = open.max(at);
            let end = open + self.length;
            // The window's end is outside it (`includes`): time running out exactly there
            // falls at the next opening, where the team can act on it.
            if start + left < end {
                return start + left;
            }
            left -= end - start;
            at = end;
        }
        at + left
    }

    /// A promise for `t` whose update goes out at `t - lead`: kept if both are inside a window,
    /// else moved to the next opening plus the lead. Returns the time and whether it moved.
    pub fn place(&self, t: DateTime<Utc>, lead: chrono::Duration) -> (DateTime<Utc>, bool) {
        if self.includes(t) && self.includes(t - lead) {
            return (t, false);
        }
        match self.next_open(t - lead) {
            Some(open) => (open + lead, open + lead != t),
            None => (t, false),
        }
    }
}

/// A promised update time, and whether the sending window moved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Promise {
    pub at: DateTime<Utc>,
    pub moved_by_window: bool,
}

/// The next update one `cadence` after `from`, moved into the sending window if there is one
/// (the update itself goes out `lead` before the promised time, so both must be inside).
/// The time is rounded up to `step` (a promise for 13:15, not 13:06), before and after the
/// window places it.
pub fn next_promise(
    from: DateTime<Utc>,
    cadence: Duration,
    window: Option<&Window>,
    lead: Duration,
    step: Duration,
) -> Promise {
    let t = round_up(after(from, cadence), step);
    match window {
        Some(w) => {
            let (at, moved) = w.place(t, chrono::Duration::from_std(lead).unwrap_or_default());
            let at = round_up(at, step);
            Promise {
                at,
                moved_by_window: moved && at != t,
            }
        }
        None => Promise {
            at: t,
            moved_by_window: false,
        },
    }
}

/// `t` rounded up to a whole multiple of `step` since the epoch (whole quarter hours for 15
/// minutes in every time zone whose offset is a whole number of quarter hours, i.e. all).
/// A zero step leaves `t` as it is.
pub fn round_up(t: DateTime<Utc>, step: Duration) -> DateTime<Utc> {
    let step_ms = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
    if step_ms <= 0 {
        return t;
    }
    let ms = t.timestamp_millis();
    let rest = ms.rem_euclid(step_ms);
    if rest == 0 {
        return t;
    }
    ms.checked_add(step_ms - rest)
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or(t)
}

/// `d` after `t`, counting only the time inside `window` when there is one.
pub fn after_working(t: DateTime<Utc>, d: Duration, window: Option<&Window>) -> DateTime<Utc> {
    match window {
        Some(w) => w.after_working(t, chrono::Duration::from_std(d).unwrap_or_default()),
        None => after(t, d),
    }
}

/// A time that is no promise of an update but should fall when the team works (a check-back,
/// a close): inside the window if there is one (an opening is a round time already).
pub fn working_time(t: DateTime<Utc>, window: Option<&Window>) -> DateTime<Utc> {
    match window {
        Some(w) => w.next_inside(t),
        None => t,
    }
}

/// Timestamps are stored and printed as fixed-width RFC 3339 UTC with milliseconds
/// (`2026-11-23T09:12:01.123Z`): readable in `sqlite3`, sortable as text.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reads any RFC 3339 time back into UTC.
pub fn parse_stamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// serde helpers so JSON output uses [`stamp`] too.
pub mod serde_stamp {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::stamp(*t))
    }

    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::Serializer;

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::stamp(*t)),
                None => s.serialize_none(),
            }
        }
    }
}

/// "4 hours", "1 hour 30 minutes", "1 day".
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let parts = [
        (secs / 86_400, "day"),
        (secs % 86_400 / 3600, "hour"),
        (secs % 3600 / 60, "minute"),
    ];
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    if words.is_empty() {
        format!("{secs} seconds")
    } else {
        words.join(" ")
    }
}

/// "until Thursday 10:00 waiting for the carrier", "until tomorrow", "until 2026-12-10 14:00",
/// "for 2d": when a hold ends, in `tz`, and the words after it (the reason). A day without a
/// time means `day_starts` that day. The time is the first such moment after `now`
/// ("Thursday" on a Thursday afternoon is next week's). None: no time could be read.
pub fn parse_until(
    text: &str,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
    day_starts: chrono::NaiveTime,
) -> Option<(DateTime<Utc>, String)> {
    let text = text.trim();
    let mut words = text.split_whitespace().peekable();
    let first = words.next()?.to_lowercase();
    let rest_of = |words: std::iter::Peekable<std::str::SplitWhitespace<'_>>| {
        words.collect::<Vec<_>>().join(" ")
    };
    if first == "for" {
        let span = humantime::parse_duration(words.next()?).ok()?;
        return Some((after(now, span), rest_of(words)));
    }
    let day_word = if first == "until" || first == "till" {
        words.next()?.to_lowercase()
    } else {
        first
    };
    let local_now = now.with_timezone(&tz);
    let today = local_now.date_naive();
    let time_of = |w: &str| chrono::NaiveTime::parse_from_str(w, "%H:%M").ok();
    // A day, then maybe a time; or a time alone (today, else tomorrow).
    let (day, explicit_day) = if let Some(time) = time_of(&day_word) {
        let at = today.and_time(time);
        let day = if at > local_now.naive_local() {
            today
        } else {
            today.succ_opt()?
        };
        return local_moment(day, time, tz).map(|t| (t, rest_of(words)));
    } else if day_word == "today" {
        (today, true)
    } else if day_word == "tomorrow" {
        (today.succ_opt()?, true)
    } else if let Ok(date) = NaiveDate::parse_from_str(&day_word, "%Y-%m-%d") {
        (date, true)
    } else {
        let weekday = WEEKDAYS
            .iter()
            .position(|w| day_word == *w || (day_word.len() >= 3 && w.starts_with(&day_word)))?;
        let ahead =
            (7 + weekday as i64 - i64::from(local_now.weekday().num_days_from_monday())) % 7;
        (today + chrono::Duration::days(ahead), false)
    };
    let time = match words.peek().and_then(|w| time_of(w)) {
        Some(time) => {
            words.next();
            time
        }
        None => day_starts,
    };
    let mut at = local_moment(day, time, tz)?;
    if at <= now {
        if explicit_day {
            return None;
        }
        at = local_moment(day + chrono::Duration::days(7), time, tz)?;
    }
    Some((at, rest_of(words)))
}

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// `day` at `time` in `tz` as UTC (the earlier of two in a clock change).
fn local_moment(
    day: NaiveDate,
    time: chrono::NaiveTime,
    tz: chrono_tz::Tz,
) -> Option<DateTime<Utc>> {
    day.and_time(time)
        .and_local_timezone(tz)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hold_ends_when_people_say_it_does() {
        let tz = chrono_tz::Tz::Europe__Berlin;
        let nine = chrono::NaiveTime::from_hms_opt(9, 0, 0).expect("time");
        // Monday 7 December 2026, 10:00 in Berlin.
        let now = super::parse_stamp("2026-12-07T09:00:00Z").expect("now");
        let until = |text: &str| {
            super::parse_until(text, now, tz, nine).map(|(t, why)| (super::stamp(t), why))
        };
        assert_eq!(
            until("until Thursday 10:00 waiting for the carrier"),
            Some((
                "2026-12-10T09:00:00.000Z".into(),
                "waiting for the carrier".into()
            ))
        );
        assert_eq!(
            until("until tomorrow the supplier answers"),
            Some((
                "2026-12-08T08:00:00.000Z".into(),
                "the supplier answers".into()
            ))
        );
        assert_eq!(
            until("until mon 08:00"),
            Some(("2026-12-14T07:00:00.000Z".into(), String::new())),
            "this Monday's 08:00 has passed: next week's"
        );
        assert_eq!(
            until("until 2026-12-21 14:30 stock arrives"),
            Some(("2026-12-21T13:30:00.000Z".into(), "stock arrives".into()))
        );
        assert_eq!(
            until("for 2d the bank checks it"),
            Some((
                "2026-12-09T09:00:00.000Z".into(),
                "the bank checks it".into()
            ))
        );
        assert_eq!(until("until 2026-12-01"), None, "in the past");
        assert_eq!(until("until someday"), None);
        assert_eq!(until(""), None);
    }

    use super::*;

    fn utc(stamp: &str) -> DateTime<Utc> {
        parse_stamp(stamp).expect("time")
    }

    fn office_hours() -> Window {
        Window::parse(
            "0 0 9 * * Mon-Fri",
            Duration::from_secs(8 * 3600),
            chrono_tz::Tz::Europe__Berlin,
        )
        .expect("valid window")
    }

    #[test]
    fn promises_inside_the_window_stay_and_others_move_to_the_next_opening_plus_lead() {
        let w = office_hours();
        let lead = chrono::Duration::minutes(10);
        // Monday 13:00 in Berlin: inside.
        assert_eq!(
            w.place(utc("2026-11-23T12:00:00Z"), lead),
            (utc("2026-11-23T12:00:00Z"), false)
        );
        // Monday 20:00 in Berlin: Tuesday 09:10.
        assert_eq!(
            w.place(utc("2026-11-23T19:00:00Z"), lead),
            (utc("2026-11-24T08:10:00Z"), true)
        );
        // Friday evening: Monday morning.
        assert_eq!(
            w.place(utc("2026-11-27T17:00:00Z"), lead),
            (utc("2026-11-30T08:10:00Z"), true)
        );
        // 09:05: the update itself would go out at 08:55, before the window opens.
        assert_eq!(
            w.place(utc("2026-11-23T08:05:00Z"), lead),
            (utc("2026-11-23T08:10:00Z"), true)
        );
    }

    #[test]
    fn working_time_counts_only_the_hours_inside_the_window() {
        let w = Window::parse(
            "0 0 9 * * Mon-Fri",
            Duration::from_secs(9 * 3600),
            chrono_tz::UTC,
        )
        .expect("window")
        .with_holidays(Holidays::from_dates(["2026-11-26"]).expect("holiday"));
        let eight = Duration::from_secs(8 * 3600);
        let t = |s: &str| parse_stamp(s).expect("time");
        // Monday 15:00: three hours that day, five on Tuesday.
        assert_eq!(
            after_working(t("2026-11-23T15:00:00Z"), eight, Some(&w)),
            t("2026-11-24T14:00:00Z")
        );
        // Wednesday 15:00: Thursday is a holiday, so Friday 14:00.
        assert_eq!(
            after_working(t("2026-11-25T15:00:00Z"), eight, Some(&w)),
            t("2026-11-27T14:00:00Z")
        );
        // Saturday: nothing counts until Monday's opening.
        assert_eq!(
            after_working(
                t("2026-11-28T10:00:00Z"),
                Duration::from_secs(3600),
                Some(&w)
            ),
            t("2026-11-30T10:00:00Z")
        );
        // Exactly at the close (09:00 + 9h): the next opening, when someone is there.
        assert_eq!(
            after_working(
                t("2026-11-23T09:00:00Z"),
                Duration::from_secs(9 * 3600),
                Some(&w)
            ),
            t("2026-11-24T09:00:00Z")
        );
        // Without a window, the clock's time.
        assert_eq!(
            after_working(t("2026-11-28T10:00:00Z"), eight, None),
            t("2026-11-28T18:00:00Z")
        );
    }

    #[test]
    fn the_next_promise_is_one_cadence_on_and_says_when_the_window_moved_it() {
        let lead = Duration::from_secs(600);
        let step = Duration::from_secs(15 * 60);
        let p = next_promise(
            utc("2026-11-23T09:00:00Z"),
            Duration::from_secs(4 * 3600),
            None,
            lead,
            step,
        );
        assert_eq!(stamp(p.at), "2026-11-23T13:00:00.000Z");
        assert!(!p.moved_by_window);
        let w = office_hours();
        let p = next_promise(
            utc("2026-11-23T15:00:00Z"),
            Duration::from_secs(4 * 3600),
            Some(&w),
            lead,
            step,
        );
        assert_eq!(p.at, utc("2026-11-24T08:15:00Z"), "09:15 in Berlin");
        assert!(p.moved_by_window);
        // Odd minutes become whole quarter hours, and inside the window nothing says "moved".
        let p = next_promise(
            utc("2026-11-26T12:01:13Z"),
            Duration::from_secs(3600),
            Some(&w),
            lead,
            step,
        );
        assert_eq!(p.at, utc("2026-11-26T13:15:00Z"));
        assert!(!p.moved_by_window);
    }

    #[test]
    fn holidays_are_skipped_from_dates_or_an_icalendar_file() {
        let lead = Duration::from_secs(600);
        let step = Duration::from_secs(15 * 60);
        let christmas = Holidays::from_dates(["2026-12-25"]).expect("dates");
        let w = office_hours().with_holidays(christmas);
        // Thursday 24 December 16:00 in Berlin, 4 hours on: not Friday the 25th, but Monday.
        let p = next_promise(
            utc("2026-12-24T15:00:00Z"),
            Duration::from_secs(4 * 3600),
            Some(&w),
            lead,
            step,
        );
        assert_eq!(p.at, utc("2026-12-28T08:15:00Z"), "{}", stamp(p.at));
        assert!(p.moved_by_window);
        let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Christmas\r\n\
                   DTSTART;VALUE=DATE:20261225\r\nDTEND;VALUE=DATE:20261227\r\n\
                   END:VEVENT\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20200101\r\n\
                   RRULE:FREQ=YEARLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let h = Holidays::from_ical(ics).expect("ics");
        for day in ["2026-12-25", "2026-12-26", "2027-01-01", "2031-01-01"] {
            let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("date");
            assert!(h.contains(d), "{day}");
        }
        assert!(!h.contains(NaiveDate::from_ymd_opt(2026, 12, 27).expect("date")));
        assert!(Holidays::from_ical(
            "BEGIN:VEVENT\nDTSTART:20261225\nRRULE:FREQ=WEEKLY\nEND:VEVENT"
        )
        .is_err());
        // A check-back due on Christmas Day falls on the next working morning.
        let w = office_hours().with_holidays(h);
        assert_eq!(
            working_time(utc("2026-12-25T10:00:00Z"), Some(&w)),
            utc("2026-12-28T08:00:00Z")
        );
    }

    #[test]
    fn a_five_field_expression_gets_an_explanation() {
        let err = Window::parse("0 9 * * 1-5", Duration::from_secs(3600), chrono_tz::Tz::UTC)
            .unwrap_err();
        assert!(
            err.contains("has 5 fields") && err.contains("seconds first"),
            "{err}"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(4 * 3600)), "4 hours");
        assert_eq!(
            human_duration(Duration::from_secs(5400)),
            "1 hour 30 minutes"
        );
        assert_eq!(human_duration(Duration::from_secs(86_400)), "1 day");
    }

    #[test]
    fn stamps_are_fixed_width_and_read_back() {
        let t = utc("2026-11-23T09:12:01.123Z");
        assert_eq!(stamp(t), "2026-11-23T09:12:01.123Z");
        assert_eq!(parse_stamp("2026-11-23T10:12:01.123+01:00"), Some(t));
        assert_eq!(parse_stamp("yesterday"), None);
    }
}
