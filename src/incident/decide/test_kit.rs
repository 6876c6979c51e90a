//! What the scenarios of every room share: a configuration, an incident, its facts.

use super::tests_support::{at, T0};
use super::*;
use crate::config::Config;

/// The decision with the shipped phrases (English, and German for `de`).
pub(super) fn decide(
    facts: &Facts,
    event: &Event,
    config: &crate::config::Config,
    now: DateTime<Utc>,
) -> Result<Effects, Refusal> {
    static PHRASES: std::sync::LazyLock<crate::templates::Phrases> =
        std::sync::LazyLock::new(|| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
            crate::templates::Phrases::load(&dir, &["de".to_string()]).expect("shipped phrases")
        });
    static INTENTS: std::sync::LazyLock<crate::templates::Intents> =
        std::sync::LazyLock::new(crate::templates::Intents::shipped);
    let sets = ["de".to_string(), "es".to_string(), "fr".to_string()];
    super::decide(
        facts,
        event,
        &Policy::new(config, &PHRASES, &INTENTS, &sets),
        now,
    )
}

pub(super) fn config() -> Config {
    Config::example().expect("example config")
}

/// With a support team to notify.
pub(super) fn staffed() -> Config {
    let mut config = Config::example().expect("example config");
    config.staff.members = vec!["lead@example.test".into()];
    config
}

pub(super) fn open_incident() -> Incident {
    super::tests_support::incident()
}

pub(super) fn facts(incident: Incident) -> Facts {
    let mut f = Facts::new(
        incident,
        Conversation {
            ids: vec![
                "ann-1@client.example.test".into(),
                "fu.1.a.b@example.test".into(),
            ],
            thread_root: None,
        },
    );
    f.open_promises = vec![at("2026-11-23T13:00:00Z")];
    f
}

pub(super) fn staff(action: StaffAction) -> Event {
    Event::Staff {
        by: "alice".into(),
        action,
    }
}

pub(super) fn only_mail(fx: &Effects) -> &Mail {
    let mails: Vec<&Mail> = fx.mails().collect();
    assert_eq!(mails.len(), 1, "{fx:#?}");
    mails[0]
}

pub(super) fn an_opening(message: i64) -> Opening {
    let config = config();
    Opening {
        message: MessageRow(message),
        from: Person {
            address: "ann@example.test".into(),
            name: Some("Ann Example".into()),
        },
        other_from: Vec::new(),
        promise: super::opening(
            &Policy::new(
                &config,
                &crate::templates::Phrases::default(),
                &crate::templates::Intents::default(),
                &[],
            ),
            at(T0),
        ),
        continues: None,
        stranger_to: Vec::new(),
        customer_incidents_in_window: 1,
        repeats: None,
        written: Written {
            text: "Every payment attempt ends with an error page.".into(),
            ..Written::default()
        },
        language: None,
        understood: crate::incident::understood::Understood {
            problem: "Every payment attempt ends with an error page.".into(),
            ..Default::default()
        },
        facts: Vec::new(),
        share: None,
    }
}

pub(super) fn office_hours() -> Config {
    let mut config = config();
    let tz = chrono_tz::Tz::Europe__Berlin;
    config.cadence.timezone = tz;
    config.cadence.window = Some(
        clock::Window::parse("0 0 9 * * Mon-Fri", Duration::from_secs(8 * 3600), tz)
            .expect("window")
            .with_holidays(clock::Holidays::from_dates(["2026-12-25"]).expect("dates")),
    );
    config
}

/// Ann's incident, resolved at T0, closing on 30 November unless she answers; no promise open.
pub(super) fn resolved_facts() -> Facts {
    let mut resolved = open_incident();
    resolved.resolution = Some(super::tests_support::fixed(at(T0)));
    resolved.stage = Stage::Resolved {
        check_back_at: None,
        close_at: Some(at("2026-11-30T09:00:00Z")),
    };
    let mut f = facts(resolved);
    f.open_promises.clear();
    f
}

/// Ann writes `text` (verified), as message `message`.
pub(super) fn ann_writes(message: i64, text: &str) -> Event {
    Event::CustomerReply {
        message: MessageRow(message),
        from: "ann@example.test".into(),
        trust: crate::mail::Trust::Verified,
        written: Written {
            text: text.into(),
            ..Written::default()
        },
    }
}
