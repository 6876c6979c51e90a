//! Times, durations, paces and counts in a language's words, from its phrase set (`[words]`,
//! `[time]`, `[duration]`, `[pace]`, `[since]`, `[ordinal]` in `phrases.toml`).

use std::time::Duration;

use chrono::{DateTime, Datelike, FixedOffset, Offset, Utc};

use super::{Phrases, Said};
use crate::said;

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;
const WEEK: u64 = 7 * DAY;

impl Phrases {
    /// "Monday 23 November 2026, 13:00 UTC" ("Montag, 23. November 2026, 13:00 Uhr MEZ").
    pub fn human_time(&self, set: Option<&str>, t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
        let local = t.with_timezone(&tz);
        let zone = local.format("%Z").to_string();
        let zone = self
            .list_or_text(set, &format!("time.zones.{zone}"))
            .unwrap_or(zone);
        self.say(
            set,
            &said!(
                "time.full",
                weekday = self.weekday_of(set, local.weekday()),
                day = local.day(),
                month = self.word(set, "words.months", local.month0() as usize),
                year = local.year(),
                time = local.format("%H:%M"),
                zone = zone,
            ),
        )
    }

    /// When something happened or will happen, as a mail says it to someone reading it
    /// `now`: "today at 14:30", "on Tuesday at 14:30" within a week either way, "on 3
    /// December at 14:30" further off.
    pub fn when(
        &self,
        set: Option<&str>,
        t: DateTime<Utc>,
        now: DateTime<Utc>,
        tz: chrono_tz::Tz,
    ) -> String {
        let (local, today) = (t.with_timezone(&tz), now.with_timezone(&tz).date_naive());
        let time = local.format("%H:%M").to_string();
        let days = (today - local.date_naive()).num_days();
        if days == 0 {
            self.say(set, &said!("time.when_today", time = time))
        } else if (-6..7).contains(&days) {
            self.say(
                set,
                &said!(
                    "time.when_day",
                    weekday = self.weekday_of(set, local.weekday()),
                    time = time
                ),
            )
        } else {
            self.say(
                set,
                &said!(
                    "time.when_date",
                    day = local.day(),
                    month = self.word(set, "words.months", local.month0() as usize),
                    time = time
                ),
            )
        }
    }

    /// The team's working hours as the window opens them: "Monday to Friday, 09:00–17:00
    /// (CET)" (days with the same hours in a row named as a range), the zone as it is at `at`.
    pub fn working_hours(
        &self,
        set: Option<&str>,
        window: &crate::clock::Window,
        at: DateTime<Utc>,
    ) -> String {
        type Day = crate::clock::WorkingDay;
        let mut groups: Vec<(chrono::Weekday, Day)> = Vec::new();
        for &day in window.week() {
            match groups.last_mut() {
                Some((_, last)) if last.1 == day.1 && last.2 == day.2 && last.0.succ() == day.0 => {
                    *last = day;
                }
                _ => groups.push((day.0, day)),
            }
        }
        let parts: Vec<String> = groups
            .iter()
            .map(|(first, (last, open, close))| {
                let days = if first == last {
                    self.weekday_of(set, *first)
                } else {
                    self.say(
                        set,
                        &said!(
                            "time.days_range",
                            first = self.weekday_of(set, *first),
                            last = self.weekday_of(set, *last)
                        ),
                    )
                };
                self.say(
                    set,
                    &said!(
                        "time.hours",
                        days = days,
                        open = open.format("%H:%M"),
                        close = close.format("%H:%M")
                    ),
                )
            })
            .collect();
        if parts.is_empty() {
            return String::new();
        }
        let zone = at.with_timezone(&window.tz()).format("%Z").to_string();
        let zone = self
            .list_or_text(set, &format!("time.zones.{zone}"))
            .unwrap_or(zone);
        self.say(
            set,
            &said!("time.working_hours", hours = parts.join("; "), zone = zone),
        )
    }

    /// The window's hours on a working day at the customer's own UTC offset ("00:00–08:00
    /// your time, PST": what "Monday to Friday, 09:00–17:00 (CET)" means in Los
    /// Angeles); "" when their offset is unknown or the team's own.
    pub fn hours_theirs(
        &self,
        set: Option<&str>,
        window: &crate::clock::Window,
        now: DateTime<Utc>,
        offset_minutes: Option<i32>,
    ) -> String {
        let Some((ours, theirs, minutes)) = another_offset(now, window.tz(), offset_minutes) else {
            return String::new();
        };
        let Some((_, open, close)) = window.week().first().copied() else {
            return String::new();
        };
        let there = |t: chrono::NaiveTime| {
            ours.date_naive()
                .and_time(t)
                .and_local_timezone(window.tz())
                .earliest()
                .map(|at| at.with_timezone(&theirs).format("%H:%M").to_string())
        };
        let (Some(open), Some(close)) = (there(open), there(close)) else {
            return String::new();
        };
        self.say(
            set,
            &said!(
                "time.hours_theirs",
                open = open,
                close = close,
                utc = self.zone_of(set, now, minutes)
            ),
        )
    }

    /// `t` as short as a subject line wants it: "14:00" on `now`'s day, "Tue 14:00" on
    /// another.
    pub fn short_time(
        &self,
        set: Option<&str>,
        t: DateTime<Utc>,
        now: DateTime<Utc>,
        tz: chrono_tz::Tz,
    ) -> String {
        let (at, today) = (t.with_timezone(&tz), now.with_timezone(&tz));
        let time = at.format("%H:%M").to_string();
        if at.date_naive() == today.date_naive() {
            time
        } else {
            let day = self.word(
                set,
                "words.weekdays_short",
                at.weekday().num_days_from_monday() as usize,
            );
            self.say(
                set,
                &said!("time.short_other_day", weekday = day, time = time),
            )
        }
    }

    /// Days as a mail names them ("Thursday 24 December, Friday 25 December").
    pub fn days(&self, set: Option<&str>, days: &[chrono::NaiveDate]) -> String {
        days.iter()
            .map(|d| {
                self.say(
                    set,
                    &said!(
                        "time.day_date",
                        weekday = self.weekday_of(set, d.weekday()),
                        day = d.day(),
                        month = self.word(set, "words.months", d.month0() as usize)
                    ),
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The day of the week `t` falls on in `tz` ("Tuesday").
    pub fn weekday(&self, set: Option<&str>, t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
        self.weekday_of(set, t.with_timezone(&tz).weekday())
    }

    fn weekday_of(&self, set: Option<&str>, day: chrono::Weekday) -> String {
        self.word(set, "words.weekdays", day.num_days_from_monday() as usize)
    }

    /// `t` at the customer's own offset when it differs from ours ("08:00 your time,
    /// EST", with the weekday when it is another day there); "" otherwise.
    pub fn their_time(
        &self,
        set: Option<&str>,
        t: DateTime<Utc>,
        tz: chrono_tz::Tz,
        offset_minutes: Option<i32>,
    ) -> String {
        let Some((ours, theirs, minutes)) = another_offset(t, tz, offset_minutes) else {
            return String::new();
        };
        let at = t.with_timezone(&theirs);
        let utc = self.zone_of(set, t, minutes);
        let time = at.format("%H:%M");
        if at.date_naive() == ours.date_naive() {
            self.say(set, &said!("time.theirs", time = time, utc = utc))
        } else {
            let weekday = self.weekday_of(set, at.weekday());
            self.say(
                set,
                &said!(
                    "time.theirs_other_day",
                    weekday = weekday,
                    time = time,
                    utc = utc
                ),
            )
        }
    }

    /// A span as a clock says it: "4 hours", "1 day 2 hours", "90 seconds".
    pub fn duration(&self, set: Option<&str>, d: Duration) -> String {
        let secs = d.as_secs();
        let parts = [
            (secs / DAY, "duration.day"),
            (secs % DAY / HOUR, "duration.hour"),
            (secs % HOUR / MINUTE, "duration.minute"),
        ];
        let words: Vec<String> = parts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, unit)| self.count(set, unit, *n))
            .collect();
        if words.is_empty() {
            self.count(set, "duration.second", secs)
        } else {
            words.join(" ")
        }
    }

    /// `{n} unit` in the singular or the plural phrase (`KEY.one`, `KEY.many`).
    fn count(&self, set: Option<&str>, key: &'static str, n: u64) -> String {
        let said = Said::new(key, vec![("n", n.to_string())]);
        let form = if n == 1 { "one" } else { "many" };
        self.say_form(set, &said, form)
    }

    fn say_form(&self, set: Option<&str>, said: &Said, form: &str) -> String {
        // The keys of plural forms are made here, not written in code: one lookup per form.
        let key = format!("{}.{form}", said.key);
        self.say_key(set, &key, &said.args)
    }

    /// A cadence as a person says it: "every hour", "twice a day", "every 4 hours" (never
    /// "every 1 hours").
    pub fn pace(&self, set: Option<&str>, cadence: Duration) -> String {
        let secs = cadence.as_secs().max(MINUTE);
        let named = match secs {
            HOUR => Some("pace.hourly"),
            s if s == 12 * HOUR => Some("pace.twice_daily"),
            DAY => Some("pace.daily"),
            WEEK => Some("pace.weekly"),
            _ => None,
        };
        if let Some(key) = named {
            return self.say_key(set, key, &[]);
        }
        // The largest unit it is a whole number of; minutes otherwise.
        let (n, unit) = if secs.is_multiple_of(WEEK) {
            (secs / WEEK, "pace.week")
        } else if secs.is_multiple_of(DAY) {
            (secs / DAY, "pace.day")
        } else if secs.is_multiple_of(HOUR) {
            (secs / HOUR, "pace.hour")
        } else {
            (secs.div_ceil(MINUTE).max(1), "pace.minute")
        };
        self.count(set, unit, n)
    }

    /// How long between two incidents, as in "within three weeks" ("2 days", "an hour"):
    /// number words up to ten where the set has them.
    pub fn since(&self, set: Option<&str>, span: chrono::Duration) -> String {
        let days = span.num_days().max(0);
        let (n, unit) = if days < 1 {
            (span.num_hours().max(1), "since.hour")
        } else if days < 14 {
            (days, "since.day")
        } else if days < 60 {
            (days / 7, "since.week")
        } else {
            (days / 30, "since.month")
        };
        let n = u64::try_from(n).unwrap_or(1);
        if n == 1 {
            return self.say_key(set, &format!("{unit}.one"), &[]);
        }
        let words = self.list(set, "words.numbers");
        let number = usize::try_from(n - 1)
            .ok()
            .and_then(|i| words.get(i))
            .cloned()
            .unwrap_or_else(|| n.to_string());
        self.say_key(set, &format!("{unit}.many"), &[("n", number)])
    }

    /// A size as people read it: "980 bytes", "12 KB", "3.4 MB".
    pub fn size(&self, set: Option<&str>, bytes: usize) -> String {
        match bytes {
            0..=999 => self.say(set, &said!("size.bytes", n = bytes)),
            1_000..=999_999 => self.say(set, &said!("size.kb", n = bytes / 1000)),
            _ => self.say(
                set,
                &said!("size.mb", n = format!("{:.1}", bytes as f64 / 1_000_000.0)),
            ),
        }
    }

    /// "second", "third" … (as in "the second time"); the `ordinal.beyond` phrase past the
    /// set's list.
    pub fn ordinal(&self, set: Option<&str>, n: i64) -> String {
        let words = self.list(set, "words.ordinals");
        match usize::try_from(n - 1).ok().and_then(|i| words.get(i)) {
            Some(word) if !word.is_empty() => word.clone(),
            _ => {
                let last = match n % 100 {
                    11..=13 => 0,
                    _ => usize::try_from(n % 10).unwrap_or(0),
                };
                let suffixes = self.list(set, "words.ordinal_suffixes");
                let suffix = suffixes
                    .get(last)
                    .filter(|_| last <= 3)
                    .or(suffixes.first())
                    .cloned()
                    .unwrap_or_default();
                self.say(set, &said!("ordinal.beyond", n = n, suffix = suffix))
            }
        }
    }
}

/// `t` in our zone, the customer's own offset and its minutes, when they know one and it is
/// not ours at `t`.
fn another_offset(
    t: DateTime<Utc>,
    tz: chrono_tz::Tz,
    offset_minutes: Option<i32>,
) -> Option<(DateTime<chrono_tz::Tz>, FixedOffset, i32)> {
    let minutes = offset_minutes?;
    let theirs = FixedOffset::east_opt(minutes.saturating_mul(60))?;
    let ours = t.with_timezone(&tz);
    (ours.offset().fix() != theirs).then_some((ours, theirs, minutes))
}

impl Phrases {
    /// The customer's offset at `t` as they would name it: the common abbreviation ("PST",
    /// "AEDT") when every zone of `time.customer_zones` at that offset then shares one, else
    /// "UTC-08:00". An offset alone cannot tell Arizona's MST from California's PDT in
    /// summer, so an ambiguous offset is written as the offset rather than guessed.
    fn zone_of(&self, set: Option<&str>, t: DateTime<Utc>, minutes: i32) -> String {
        let mut names = std::collections::BTreeSet::new();
        for zone in self.list(set, "time.customer_zones") {
            let Ok(tz) = zone.parse::<chrono_tz::Tz>() else {
                continue;
            };
            let local = t.with_timezone(&tz);
            if local.offset().fix().local_minus_utc() != minutes.saturating_mul(60) {
                continue;
            }
            // chrono-tz writes "+03" where a zone has no letters of its own.
            names.insert(local.format("%Z").to_string());
        }
        match names.first() {
            Some(name) if names.len() == 1 && name.chars().all(|c| c.is_ascii_alphabetic()) => self
                .list_or_text(set, &format!("time.zones.{name}"))
                .unwrap_or_else(|| name.clone()),
            _ => utc_label(minutes),
        }
    }
}

/// "UTC-08:00": an offset as a mail names it.
fn utc_label(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    format!(
        "UTC{sign}{:02}:{:02}",
        minutes.unsigned_abs() / 60,
        minutes.unsigned_abs() % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        crate::clock::parse_stamp(s).expect("time")
    }

    fn shipped() -> Phrases {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        Phrases::load(&dir, &["de".to_string()]).expect("shipped phrases")
    }

    #[test]
    fn times_read_as_people_write_them_in_each_language() {
        let p = shipped();
        let berlin = chrono_tz::Tz::Europe__Berlin;
        let t = utc("2026-11-23T12:00:00Z");
        assert_eq!(
            p.human_time(None, t, berlin),
            "Monday 23 November 2026, 13:00 CET"
        );
        assert_eq!(
            p.human_time(Some("de"), t, berlin),
            "Montag, 23. November 2026, 13:00 Uhr MEZ"
        );
        assert_eq!(p.weekday(Some("de"), t, berlin), "Montag");
        assert_eq!(
            p.their_time(None, t, berlin, Some(-300)),
            "07:00 your time, EST"
        );
        assert_eq!(
            p.their_time(Some("de"), t, berlin, Some(-300)),
            "07:00 Uhr bei Ihnen, EST"
        );
        assert_eq!(
            p.their_time(None, t, berlin, Some(60)),
            "",
            "the same offset"
        );
        assert_eq!(p.their_time(None, t, berlin, None), "");
        // Named only where the offset says which zone: PDT and Arizona's MST share UTC-07:00
        // in summer; India's half hour has its own name; an offset nobody listed stays one.
        let summer = utc("2026-07-06T12:00:00Z");
        assert_eq!(
            p.their_time(None, summer, berlin, Some(-420)),
            "05:00 your time, UTC-07:00"
        );
        assert_eq!(
            p.their_time(None, summer, berlin, Some(-480)),
            "04:00 your time, AKDT",
            "in July UTC-08:00 is Alaska's, not California's"
        );
        assert_eq!(
            p.their_time(None, t, berlin, Some(-480)),
            "04:00 your time, PST"
        );
        assert_eq!(
            p.their_time(None, t, berlin, Some(330)),
            "17:30 your time, IST"
        );
        assert_eq!(
            p.their_time(None, t, berlin, Some(11 * 60)),
            "23:00 your time, AEDT"
        );
        assert_eq!(
            p.their_time(None, t, berlin, Some(-150)),
            "09:30 your time, UTC-02:30"
        );
        let late = utc("2026-11-23T23:30:00Z");
        assert_eq!(
            p.their_time(None, late, berlin, Some(-300)),
            "Monday 18:30 your time, EST"
        );
    }

    #[test]
    fn durations_paces_spans_and_ordinals_and_never_every_1() {
        let p = shipped();
        let h = |n: u64| Duration::from_secs(n * HOUR);
        assert_eq!(p.duration(None, h(4)), "4 hours");
        assert_eq!(
            p.duration(None, Duration::from_secs(5400)),
            "1 hour 30 minutes"
        );
        assert_eq!(p.duration(None, h(24)), "1 day");
        assert_eq!(p.duration(None, Duration::from_secs(20)), "20 seconds");
        for (secs, en, de) in [
            (HOUR, "every hour", "jede Stunde"),
            (2 * HOUR, "every 2 hours", "alle 2 Stunden"),
            (12 * HOUR, "twice a day", "zweimal am Tag"),
            (DAY, "once a day", "einmal am Tag"),
            (3 * DAY, "every 3 days", "alle 3 Tage"),
            (WEEK, "once a week", "einmal pro Woche"),
            (2 * WEEK, "every 2 weeks", "alle 2 Wochen"),
            (30 * MINUTE, "every 30 minutes", "alle 30 Minuten"),
            (45 * MINUTE, "every 45 minutes", "alle 45 Minuten"),
            (90 * MINUTE, "every 90 minutes", "alle 90 Minuten"),
            (MINUTE, "every minute", "jede Minute"),
        ] {
            assert_eq!(p.pace(None, Duration::from_secs(secs)), en);
            assert_eq!(p.pace(Some("de"), Duration::from_secs(secs)), de);
        }
        let days = chrono::Duration::days;
        assert_eq!(p.since(None, days(21)), "three weeks");
        assert_eq!(p.since(Some("de"), days(21)), "drei Wochen");
        assert_eq!(p.since(None, days(1)), "a day");
        assert_eq!(p.since(Some("de"), days(4)), "vier Tagen");
        assert_eq!(p.since(None, chrono::Duration::minutes(5)), "an hour");
        assert_eq!(p.since(None, days(400)), "13 months");
        assert_eq!(p.ordinal(None, 2), "second");
        assert_eq!(p.ordinal(Some("de"), 3), "dritten");
        assert_eq!(p.ordinal(None, 11), "11th");
        assert_eq!(p.ordinal(None, 12), "12th");
        assert_eq!(p.ordinal(None, 21), "21st");
        assert_eq!(p.ordinal(None, 22), "22nd");
        assert_eq!(p.ordinal(None, 23), "23rd");
        assert_eq!(p.ordinal(None, 111), "111th");
        assert_eq!(p.ordinal(Some("de"), 11), "11.");
    }
}
