//! Configuration: one TOML file, validated completely before anything runs.
//!
//! Every error names the file, the line and the key, because the person reading it is an admin
//! at a terminal with the file open in another window.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

mod caps;
mod intake;
mod servers;
mod staff;
mod timing;
mod wording;

pub use caps::*;
pub use intake::*;
pub use servers::*;
pub use staff::*;
pub use timing::*;
pub use wording::*;

mod oauth;

pub use oauth::{
    is_loopback_http, Auth, ClientAuth, ClientCertificate, Grant, Mechanism, OAuth2Config,
    Provider, SecretFile,
};

/// Where the configuration is looked for when neither `--config` nor `FOLLOWUPD_CONFIG` is given.
pub const DEFAULT_PATH: &str = "/etc/followupd/followupd.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the configuration file")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Whole { path: PathBuf, message: String },
}

/// The validated configuration. Relative paths have been resolved against the config file's
/// directory, secrets have been read, and durations are real `Duration`s.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub imap: ImapConfig,
    pub smtp: SmtpConfig,
    pub support: SupportConfig,
    pub database: PathBuf,
    pub secret_file: PathBuf,
    pub templates: PathBuf,
    pub cadence: CadenceConfig,
    pub outbox: OutboxConfig,
    pub intake: IntakeConfig,
    pub send_caps: SendCaps,
    pub escalation: EscalationConfig,
    pub recurring: RecurringConfig,
    pub staff: StaffConfig,
    pub replies: RepliesConfig,
    pub trust: TrustPolicy,
    pub service: ServiceConfig,
    pub metrics: MetricsConfig,
    pub retention: RetentionConfig,
    pub wording: WordingConfig,
    pub language: LanguageConfig,
}

impl Config {
    /// Reads every password and client secret file now, for a process about to give up the
    /// rights that let it read them (root working as the state directory's owner, see
    /// `followupd`'s CLI). A file it cannot read stays named, to be reported when it is used,
    /// as before: a command that needs no server must not fail on a server's password.
    pub fn read_secrets_now(&mut self) {
        // One sign-in shared by IMAP and SMTP stays one (the same `Arc`).
        let mut done: Vec<(Arc<OAuth2Config>, Arc<OAuth2Config>)> = Vec::new();
        for endpoint in [&mut self.imap.endpoint, &mut self.smtp.endpoint] {
            if let Some(servers::PasswordSource::File { path, .. }) = &endpoint.password {
                // A file others may read stays named: using it refuses it, as before.
                if crate::files::check_private(path).is_err() {
                    continue;
                }
                if let Ok(bytes) = std::fs::read(path) {
                    endpoint.password = Some(servers::PasswordSource::Read(servers::Secret(bytes)));
                }
            }
            if let oauth::Auth::OAuth2 { account, .. } = &mut endpoint.auth {
                if let Some((_, read)) = done.iter().find(|(was, _)| Arc::ptr_eq(was, account)) {
                    *account = read.clone();
                } else {
                    let mut read = (**account).clone();
                    read.read_secrets_now();
                    let read = Arc::new(read);
                    done.push((account.clone(), read.clone()));
                    *account = read;
                }
            }
        }
    }
}

/// How the daemon talks to systemd (`[service]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// READY=1 is sent after the first successful IMAP login, or after this long whatever
    /// IMAP does (a mail server down at boot must not fail the unit's start).
    pub ready_grace: Duration,
    /// A task (intake, scheduler, sender) that has not come round its loop for this long is
    /// stuck: the watchdog pings stop and systemd restarts the daemon.
    pub stall_after: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            ready_grace: default_ready_grace(),
            stall_after: default_stall_after(),
        }
    }
}

/// The optional metrics and health listener (`[metrics]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// None: no listener (the default).
    pub listen: Option<std::net::SocketAddr>,
}

/// How long raw mail is kept (`[retention]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionConfig {
    /// The raw bytes of messages of incidents closed longer ago than this are dropped; None
    /// keeps them forever (the default).
    pub raw_after: Option<Duration>,
}

impl Config {
    /// A complete configuration with every default, for support@example.test, pointing at
    /// servers on loopback. What `probe` and the unit tests decide with; never read from disk.
    pub fn example() -> Result<Config, ConfigError> {
        const EXAMPLE: &str = r#"
[imap]
host = "127.0.0.1"
tls = "none"
username = "support@example.test"
[smtp]
host = "127.0.0.1"
tls = "none"
[support]
address = "support@example.test"
name = "Example Support"
[database]
path = "followupd.db"
[templates]
dir = "templates"
"#;
        parse(Path::new("/example/followupd.toml"), EXAMPLE, &|p| {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}: the example configuration reads no files", p.display()),
            ))
        })
    }
}

#[derive(Debug, Clone)]
pub struct SupportConfig {
    pub address: String,
    pub name: String,
    /// Other addresses that are ours: mail from them is our own and is never answered.
    pub own_addresses: Vec<String>,
}

impl SupportConfig {
    /// The domain our Message-IDs live under.
    pub fn domain(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("localhost")
    }

    pub fn is_own_address(&self, address: &str) -> bool {
        address.eq_ignore_ascii_case(&self.address)
            || self
                .own_addresses
                .iter()
                .any(|own| own.eq_ignore_ascii_case(address))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    imap: RawImap,
    smtp: RawSmtp,
    support: RawSupport,
    database: RawDatabase,
    templates: RawTemplates,
    #[serde(default)]
    cadence: RawCadence,
    #[serde(default)]
    outbox: RawOutbox,
    #[serde(default)]
    intake: RawIntake,
    #[serde(default)]
    send_caps: RawSendCaps,
    #[serde(default)]
    escalation: RawEscalation,
    #[serde(default)]
    recurring: RawRecurring,
    #[serde(default)]
    staff: RawStaff,
    #[serde(default)]
    replies: RawReplies,
    #[serde(default)]
    trust: RawTrust,
    #[serde(default)]
    service: RawService,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    wording: RawWording,
    #[serde(default)]
    language: RawLanguage,
    oauth2: Option<oauth::RawOAuth2>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(default = "default_ready_grace", deserialize_with = "duration")]
    ready_grace: Duration,
    #[serde(default = "default_stall_after", deserialize_with = "duration")]
    stall_after: Duration,
}

impl Default for RawService {
    fn default() -> Self {
        RawService {
            ready_grace: default_ready_grace(),
            stall_after: default_stall_after(),
        }
    }
}

fn default_ready_grace() -> Duration {
    Duration::from_secs(30)
}
fn default_stall_after() -> Duration {
    Duration::from_secs(300)
}

/// The metrics listener's address when `[metrics] enabled = true` names none: loopback only.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9847";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    #[serde(default)]
    enabled: bool,
    listen: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    #[serde(default, deserialize_with = "opt_duration")]
    raw_after: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSupport {
    address: Spanned<String>,
    name: String,
    #[serde(default)]
    own_addresses: Vec<String>,
    /// The older name of `[staff] members`.
    #[serde(default)]
    staff: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    path: PathBuf,
    secret_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    dir: PathBuf,
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

fn default_true() -> bool {
    true
}
/// Human durations (`"30s"`, `"4h"`, `"1h 30m"`) so nobody has to count seconds.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration ({e}); write it like \"30s\", \"5m\" or \"4h\""
        ))
    })
}

/// Finds the configuration file: `--config`, then `FOLLOWUPD_CONFIG`, then the system default.
/// (clap fills `explicit` from either of the first two.)
pub fn resolve_path(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &source, &|p| std::fs::read_to_string(p))
}

/// How parsing reads a file the configuration names (an iCalendar file of holidays): given by
/// the caller, so that parsing itself does no I/O ([`load`] reads from disk).
pub type ReadFile<'a> = &'a dyn Fn(&Path) -> std::io::Result<String>;

/// Parses and validates configuration text; `path` is used for error messages and to resolve
/// relative paths.
pub fn parse(path: &Path, source: &str, read: ReadFile<'_>) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(source).map_err(|e| {
        let line = e.span().map(|s| line_of(source, s.start)).unwrap_or(0);
        let message = e.message().trim().to_string();
        let message = match e.span().map(|s| line_text(source, s.start)) {
            Some(text) if !text.is_empty() && !message.contains(text) => {
                format!("{message} (in `{text}`)")
            }
            _ => message,
        };
        if line == 0 {
            ConfigError::Whole {
                path: path.to_path_buf(),
                message,
            }
        } else {
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                message,
            }
        }
    })?;
    Validator { path, source, read }.validate(raw)
}

fn line_of(source: &str, offset: usize) -> usize {
    source
        .as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn line_text(source: &str, offset: usize) -> &str {
    let start = source
        .get(..offset)
        .and_then(|s| s.rfind('\n'))
        .map_or(0, |i| i + 1);
    source
        .get(start..)
        .and_then(|rest| rest.lines().next())
        .unwrap_or("")
        .trim()
}

struct Validator<'a> {
    path: &'a Path,
    source: &'a str,
    read: ReadFile<'a>,
}

impl Validator<'_> {
    fn err<T>(&self, span: std::ops::Range<usize>, message: String) -> Result<T, ConfigError> {
        if span.is_empty() && span.start == 0 {
            // A default value has no position in the file.
            return Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message,
            });
        }
        Err(ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: line_of(self.source, span.start),
            message,
        })
    }

    fn base_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir().join(p)
        }
    }

    fn validate(&self, mut raw: RawConfig) -> Result<Config, ConfigError> {
        let database = self.resolve(&raw.database.path);
        // Sign-ins live in the state directory, beside the database.
        let state_dir = database
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let poll_interval = raw.imap.poll_interval;
        let one_pass = poll_interval + raw.imap.timeout;
        let (imap, smtp) = self.servers(
            raw.imap,
            raw.smtp,
            raw.oauth2.take(),
            raw.support.address.get_ref().trim(),
            &state_dir,
        )?;
        let address = raw.support.address;
        if !is_plausible_address(address.get_ref()) {
            return self.err(
                address.span(),
                format!(
                    "[support] address `{}` is not an email address like support@example.com",
                    address.get_ref()
                ),
            );
        }
        let outbox = self.outbox(&raw.outbox, one_pass)?;
        let cadence = self.cadence(&raw.cadence)?;
        if poll_interval.is_zero() {
            return Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message: "[imap] poll_interval and [cadence] default must be above zero".into(),
            });
        }
        let intake = self.intake(raw.intake)?;
        let send_caps = self.send_caps(raw.send_caps)?;
        let staff = self.staff(raw.staff, raw.support.staff, &cadence)?;
        let secret_file = match raw.database.secret_file {
            Some(p) => self.resolve(&p),
            None => database.with_file_name("secret.key"),
        };
        Ok(Config {
            path: self.path.to_path_buf(),
            imap,
            smtp,
            support: SupportConfig {
                address: address.into_inner(),
                name: raw.support.name,
                own_addresses: raw.support.own_addresses,
            },
            database,
            secret_file,
            templates: self.resolve(&raw.templates.dir),
            cadence,
            outbox,
            intake,
            send_caps,
            escalation: self.escalation(raw.escalation)?,
            recurring: self.recurring(raw.recurring)?,
            staff,
            replies: RepliesConfig {
                news_phrases: phrases(raw.replies.news_phrases),
                stop_phrases: phrases(raw.replies.stop_phrases),
            },
            trust: self.trust(raw.trust)?,
            service: ServiceConfig {
                ready_grace: raw.service.ready_grace,
                stall_after: raw.service.stall_after,
            },
            metrics: self.metrics(raw.metrics)?,
            retention: RetentionConfig {
                raw_after: raw.retention.raw_after,
            },
            wording: self.wording(raw.wording)?,
            language: self.language(raw.language)?,
        })
    }

    fn metrics(&self, raw: RawMetrics) -> Result<MetricsConfig, ConfigError> {
        if !raw.enabled {
            return Ok(MetricsConfig { listen: None });
        }
        let listen = match raw.listen {
            None => DEFAULT_METRICS_LISTEN.parse().ok(),
            Some(text) => match text.get_ref().parse::<std::net::SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    return self.err(
                        text.span(),
                        format!(
                            "[metrics] listen `{}` is not an address and port like \"{DEFAULT_METRICS_LISTEN}\"",
                            text.get_ref()
                        ),
                    )
                }
            },
        };
        Ok(MetricsConfig { listen })
    }
}

fn is_plausible_address(address: &str) -> bool {
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !address
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[imap]
host = "127.0.0.1"
tls = "none"
username = "support@example.test"

[smtp]
host = "127.0.0.1"
tls = "none"

[support]
address = "support@example.test"
name = "Example Support"

[database]
path = "state/followupd.db"

[templates]
dir = "templates"
"#;

    fn parse_str(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("/etc/followupd/test.toml"), text, &|p| {
            std::fs::read_to_string(p)
        })
    }

    #[test]
    fn the_example_config_is_valid() {
        let config = Config::example().expect("example config");
        assert_eq!(config.support.address, "support@example.test");
        assert_eq!(config.imap.batch_size, 100);
        assert!(
            !config.path.as_os_str().is_empty(),
            "parsed, not the fallback"
        );
    }

    #[test]
    fn a_server_with_a_password_and_no_username_logs_in_as_the_support_address() {
        let text = MINIMAL
            .replace(
                "username = \"support@example.test\"\n",
                "password_env = \"X\"\n",
            )
            .replace("[smtp]\n", "[smtp]\npassword_env = \"Y\"\n");
        let config = parse(Path::new("/etc/followupd/followupd.toml"), &text, &|p| {
            std::fs::read_to_string(p)
        })
        .expect("valid");
        assert_eq!(
            config.imap.endpoint.username.as_deref(),
            Some("support@example.test")
        );
        assert_eq!(
            config.smtp.endpoint.username.as_deref(),
            Some("support@example.test")
        );
        let no_password = parse(Path::new("/x.toml"), MINIMAL, &|p| {
            std::fs::read_to_string(p)
        })
        .expect("valid");
        assert_eq!(
            no_password.smtp.endpoint.username, None,
            "no password: no SMTP AUTH"
        );
    }

    #[test]
    fn service_metrics_and_retention_have_safe_defaults_and_say_what_is_wrong() {
        let config = parse(Path::new("/x.toml"), MINIMAL, &|p| {
            std::fs::read_to_string(p)
        })
        .expect("valid");
        assert_eq!(config.metrics.listen, None, "off by default");
        assert_eq!(
            config.retention.raw_after, None,
            "raw mail kept unless configured"
        );
        assert_eq!(config.service.stall_after, Duration::from_secs(300));
        let on = parse(
            Path::new("/x.toml"),
            &format!("{MINIMAL}\n[metrics]\nenabled = true\n[retention]\nraw_after = \"365d\"\n"),
            &|p| std::fs::read_to_string(p),
        )
        .expect("valid");
        assert_eq!(
            on.metrics.listen,
            Some(DEFAULT_METRICS_LISTEN.parse().expect("addr"))
        );
        assert!(on.metrics.listen.is_some_and(|a| a.ip().is_loopback()));
        assert_eq!(
            on.retention.raw_after,
            Some(Duration::from_secs(365 * 86400))
        );
        let bad = parse(
            Path::new("/x.toml"),
            &format!("{MINIMAL}\n[metrics]\nenabled = true\nlisten = \"localhost\"\n"),
            &|p| std::fs::read_to_string(p),
        )
        .expect_err("no port");
        assert!(
            bad.to_string().contains("[metrics] listen `localhost`"),
            "{bad}"
        );
    }

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let config = parse_str(MINIMAL).expect("minimal config is valid");
        assert_eq!(config.imap.poll_interval, Duration::from_secs(30));
        assert_eq!(config.imap.after_processing, AfterProcessing::MarkSeen);
        assert_eq!(config.imap.endpoint.port, 143);
        assert_eq!(config.cadence.default, Duration::from_secs(4 * 3600));
        assert_eq!(
            config.database,
            PathBuf::from("/etc/followupd/state/followupd.db")
        );
        assert_eq!(
            config.secret_file,
            PathBuf::from("/etc/followupd/state/secret.key")
        );
    }

    #[test]
    fn intake_and_caps_have_safe_defaults_and_report_bad_values_by_line() {
        let config = parse_str(MINIMAL).expect("valid");
        assert_eq!(config.intake.max_message_size, 25_000_000);
        assert_eq!(config.intake.strangers, StrangerPolicy::NewIncident);
        assert_eq!(
            config
                .send_caps
                .windows
                .iter()
                .map(|w| w.max)
                .collect::<Vec<_>>(),
            vec![3, 10, 40]
        );
        let custom = format!(
            "{MINIMAL}\n[intake]\nmax_message_size = \"2 MiB\"\nstrangers = \"hold\"\n\
             noreply_patterns = [\"robot@*\"]\n[send_caps]\nwindows = [{{ max = 1, within = \"1m\" }}]\n"
        );
        let config = parse_str(&custom).expect("valid");
        assert_eq!(config.intake.max_message_size, 2 * 1024 * 1024);
        assert_eq!(config.intake.strangers, StrangerPolicy::Hold);
        assert!(config.intake.noreply_patterns[0].matches("robot@shop.example"));
        assert_eq!(config.send_caps.windows[0].within, Duration::from_secs(60));

        let bad_size = format!("{MINIMAL}\n[intake]\nmax_message_size = \"huge\"\n");
        let err = parse_str(&bad_size).unwrap_err().to_string();
        assert!(err.starts_with("/etc/followupd/test.toml:22:"), "{err}");
        assert!(err.contains("max_message_size `huge`"), "{err}");
        let bad_stranger = format!("{MINIMAL}\n[intake]\nstrangers = \"ignore\"\n");
        let err = parse_str(&bad_stranger).unwrap_err().to_string();
        assert!(err.contains("\"new-incident\", \"hold\""), "{err}");
        let bad_cap =
            format!("{MINIMAL}\n[send_caps]\nwindows = [{{ max = 0, within = \"1m\" }}]\n");
        let err = parse_str(&bad_cap).unwrap_err().to_string();
        assert!(
            err.contains(":22:") && err.contains("max of at least 1"),
            "{err}"
        );
    }

    #[test]
    fn cadence_windows_and_time_zones_are_checked_with_their_line() {
        let good = format!(
            "{MINIMAL}\n[cadence]\nwindow = \"0 0 9 * * Mon-Fri\"\nwindow_length = \"8h\"\n\
             timezone = \"Europe/Berlin\"\n[escalation]\nstaff = [\"lead@example.test\"]\n"
        );
        let config = parse_str(&good).expect("valid");
        assert!(config.cadence.window.is_some());
        assert_eq!(config.cadence.timezone, chrono_tz::Tz::Europe__Berlin);
        assert_eq!(config.escalation.staff, vec!["lead@example.test"]);
        let five =
            format!("{MINIMAL}\n[cadence]\nwindow = \"0 9 * * 1-5\"\nwindow_length = \"8h\"\n");
        let err = parse_str(&five).unwrap_err().to_string();
        assert!(
            err.contains(":22:") && err.contains("seconds first"),
            "{err}"
        );
        let tz = format!("{MINIMAL}\n[cadence]\ntimezone = \"Mars/Olympus\"\n");
        let err = parse_str(&tz).unwrap_err().to_string();
        assert!(
            err.contains(":22:") && err.contains("IANA time zone"),
            "{err}"
        );
        let lonely = format!("{MINIMAL}\n[cadence]\nwindow = \"0 0 9 * * *\"\n");
        let err = parse_str(&lonely).unwrap_err().to_string();
        assert!(err.contains("needs window_length"), "{err}");
    }

    #[test]
    fn holidays_are_dates_or_an_icalendar_file_and_need_a_window() {
        let window = "window = \"0 0 9 * * Mon-Fri\"\nwindow_length = \"8h\"\n";
        let dates = format!("{MINIMAL}\n[cadence]\n{window}holidays = [\"2026-12-25\"]\n");
        let config = parse_str(&dates).expect("valid");
        assert_eq!(
            config.cadence.step,
            Duration::from_secs(15 * 60),
            "the default step"
        );
        let bad = format!("{MINIMAL}\n[cadence]\n{window}holidays = [\"25.12.2026\"]\n");
        let err = parse_str(&bad).unwrap_err().to_string();
        assert!(err.contains(":24:") && err.contains("2026-12-25"), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let ics = dir.path().join("holidays.ics");
        std::fs::write(
            &ics,
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\nEND:VEVENT\nEND:VCALENDAR\n",
        )
        .expect("write");
        let file = format!(
            "{MINIMAL}\n[cadence]\n{window}holidays = \"{}\"\nstep = \"5m\"\n",
            ics.display()
        );
        let config = parse_str(&file).expect("valid");
        assert_eq!(config.cadence.step, Duration::from_secs(300));
        let missing = format!("{MINIMAL}\n[cadence]\n{window}holidays = \"/nonexistent.ics\"\n");
        let err = parse_str(&missing).unwrap_err().to_string();
        assert!(err.contains("cannot read /nonexistent.ics"), "{err}");
        let alone = format!("{MINIMAL}\n[cadence]\nholidays = [\"2026-12-25\"]\n");
        let err = parse_str(&alone).unwrap_err().to_string();
        assert!(err.contains("need a sending window"), "{err}");
    }

    #[test]
    fn address_patterns_glob_whole_addresses() {
        let p = AddressPattern::new("NoReply*@*");
        assert!(p.matches("noreply@shop.example"));
        assert!(p.matches("noreply-orders@shop.example"));
        assert!(!p.matches("ann.noreply@shop.example"));
        let p = AddressPattern::new("*-bounces@*");
        assert!(p.matches("list-bounces@lists.example"));
        assert!(!p.matches("bounces@lists.example"));
        let exact = AddressPattern::new("robot@shop.example");
        assert!(exact.matches("robot@shop.example"));
        assert!(!exact.matches("robot@shop.example.org"));
        assert_eq!(parse_size("25MB"), Some(25_000_000));
        assert_eq!(parse_size("1 KiB"), Some(1024));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("MB"), None);
    }

    #[test]
    fn a_ca_file_that_is_not_pem_is_refused_with_its_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bad = dir.path().join("ca.der");
        std::fs::write(&bad, b"\x30\x82\x01\x0a not a PEM file").expect("write");
        let text = MINIMAL.replace(
            "[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n",
            &format!(
                "[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\nca_file = \"{}\"\n",
                bad.display()
            ),
        );
        let err = parse_str(&text).expect_err("refused").to_string();
        assert!(
            err.contains("test.toml:10:") && err.contains("holds no usable PEM certificate"),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_sample_config_documents_only_real_keys() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/followupd.toml");
        let text = std::fs::read_to_string(&path).expect("sample config");
        // The sample points at the demo stack's CA and password; only the files' existence
        // depends on that stack, so compare everything else by parsing with them stubbed.
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/test-ca.pem");
        let password = dir.path().join("password");
        std::fs::write(&password, "secret\n").expect("write");
        let text = text
            .replace(
                "/tmp/followupd-demo/tls/ca.pem",
                ca.to_str().expect("utf-8"),
            )
            .replace(
                "/tmp/followupd-demo/password",
                password.to_str().expect("utf-8"),
            );
        let config = parse(&path, &text, &|p| std::fs::read_to_string(p))
            .expect("the sample config is valid");
        assert_eq!(config.imap.poll_interval, Duration::from_secs(30));
        assert!(config.outbox.receipt_copies);
        assert_eq!(config.outbox.in_doubt_grace, Duration::from_secs(600));
        // Read only when asked, and only from a private file.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
            let err = config
                .imap
                .endpoint
                .password("imap")
                .unwrap_err()
                .to_string();
            assert!(err.contains("is open to everyone (mode 0644)"), "{err}");
            assert!(err.contains("chmod o-rwx"), "{err}");
            assert!(err.contains("followupd.toml:"), "names the line: {err}");
            std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        assert_eq!(
            config
                .imap
                .endpoint
                .password("imap")
                .expect("readable")
                .as_deref(),
            Some("secret")
        );
    }

    #[test]
    fn unknown_key_is_reported_with_file_and_line() {
        let text = MINIMAL.replace(
            "tls = \"none\"\nusername",
            "tls = \"none\"\nprot = 1\nusername",
        );
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.starts_with("/etc/followupd/test.toml:5: "), "{err}");
        assert!(err.contains("prot"), "{err}");
    }

    #[test]
    fn bad_duration_names_the_line_and_the_fix() {
        let text = MINIMAL.replace("[cadence]", "") + "\n[cadence]\ndefault = \"4 fortnights\"\n";
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("test.toml:22:"), "{err}");
        assert!(err.contains("not a duration"), "{err}");
    }

    #[test]
    fn a_grace_shorter_than_an_intake_pass_is_refused() {
        // Defaults: receipt_margin 10s, poll_interval 30s, timeout 60s.
        let short = format!("{MINIMAL}\n[outbox]\nin_doubt_grace = \"2s\"\n");
        let err = parse_str(&short).unwrap_err().to_string();
        assert!(
            err.contains("in_doubt_grace (2s) must be at least"),
            "{err}"
        );
        assert!(err.contains("(1m 40s)"), "{err}");
        let enough = format!("{MINIMAL}\n[outbox]\nin_doubt_grace = \"100s\"\n");
        assert!(parse_str(&enough).is_ok());
    }

    #[test]
    fn plaintext_to_a_remote_host_is_refused() {
        let text = MINIMAL.replacen("host = \"127.0.0.1\"", "host = \"imap.example.com\"", 1);
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("test.toml:4:"), "{err}");
        assert!(err.contains("allow_plaintext"), "{err}");
        let allowed = text.replacen(
            "tls = \"none\"",
            "tls = \"none\"\nallow_plaintext = true",
            1,
        );
        assert!(parse_str(&allowed).is_ok());
    }

    #[test]
    fn missing_password_env_is_reported() {
        let text = MINIMAL.replacen(
            "username = \"support@example.test\"",
            "username = \"support@example.test\"\npassword_env = \"FOLLOWUPD_TEST_SURELY_UNSET\"",
            1,
        );
        // Loading does not read secrets (staff run the CLI without them); using them does.
        let config = parse_str(&text).expect("loads");
        let err = config
            .imap
            .endpoint
            .password("imap")
            .unwrap_err()
            .to_string();
        assert!(err.contains("FOLLOWUPD_TEST_SURELY_UNSET"), "{err}");
        assert!(err.contains("test.toml:6:"), "{err}");
    }

    #[test]
    fn move_needs_a_folder() {
        let text = MINIMAL.replacen(
            "username = \"support@example.test\"",
            "username = \"support@example.test\"\nafter_processing = \"move\"",
            1,
        );
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("move_to"), "{err}");
    }

    /// MINIMAL with IMAP and SMTP signing in with OAuth2, and `oauth2` as the [oauth2] body.
    fn with_oauth2(oauth2: &str) -> String {
        MINIMAL
            .replacen(
                "username = \"support@example.test\"\n",
                "username = \"support@example.test\"\nauth = \"oauth2\"\n",
                1,
            )
            .replacen(
                "[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n",
                "[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"support@example.test\"\n\
                 auth = \"oauth2\"\noauth2_mechanism = \"oauthbearer\"\n",
                1,
            )
            + "\n[oauth2]\n"
            + oauth2
    }

    #[test]
    fn the_microsoft_preset_fills_endpoints_and_scopes_and_one_sign_in_serves_both_servers() {
        let config = parse_str(&with_oauth2(
            "provider = \"microsoft365\"\nclient_id = \"app\"\n",
        ))
        .expect("valid");
        let (
            Auth::OAuth2 {
                mechanism: m1,
                account: imap,
            },
            Auth::OAuth2 {
                mechanism: m2,
                account: smtp,
            },
        ) = (&config.imap.endpoint.auth, &config.smtp.endpoint.auth)
        else {
            panic!("both servers use OAuth2");
        };
        assert!(Arc::ptr_eq(imap, smtp), "one shared sign-in");
        assert_eq!(*m1, Mechanism::Xoauth2);
        assert_eq!(*m2, Mechanism::Oauthbearer);
        assert_eq!(
            imap.token_url,
            "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
        );
        assert!(imap.scopes.iter().any(|s| s == "offline_access"));
        assert_eq!(imap.grant, Grant::RefreshToken);
        assert_eq!(
            imap.token_file,
            PathBuf::from("/etc/followupd/state/oauth2.token")
        );
        assert!(matches!(imap.client_auth, ClientAuth::None));
        assert!(config.imap.idle, "IDLE is on by default");
        assert_eq!(config.imap.reconnect_max, Duration::from_secs(60));
    }

    #[test]
    fn a_server_may_have_a_sign_in_of_its_own() {
        let text = with_oauth2("token_url = \"https://idp.example/token\"\nclient_id = \"a\"\n")
            + "\n[smtp.oauth2]\ntoken_url = \"https://idp.example/token\"\nclient_id = \"b\"\n";
        let config = parse_str(&text).expect("valid");
        let (Auth::OAuth2 { account: imap, .. }, Auth::OAuth2 { account: smtp, .. }) =
            (&config.imap.endpoint.auth, &config.smtp.endpoint.auth)
        else {
            panic!("both servers use OAuth2");
        };
        assert_eq!(imap.client_id, "a");
        assert_eq!(smtp.client_id, "b");
        assert_eq!(smtp.section, "smtp.oauth2");
        assert_eq!(
            smtp.token_file,
            PathBuf::from("/etc/followupd/state/oauth2-smtp.token")
        );
    }

    #[test]
    fn oauth2_mistakes_are_named_with_their_line_and_fix() {
        let err = |text: &str| parse_str(text).unwrap_err().to_string();
        let e = err(&with_oauth2("provider = \"azure\"\nclient_id = \"a\"\n"));
        assert!(e.contains(":26:") && e.contains("\"microsoft365\""), "{e}");
        let e = err(&with_oauth2(
            "provider = \"microsoft365\"\nclient_id = \"a\"\ngrant = \"client_credentials\"\n\
             client_secret_file = \"/nonexistent\"\n",
        ));
        assert!(e.contains("needs tenant"), "{e}");
        let e = err(&with_oauth2("client_id = \"a\"\n"));
        assert!(e.contains("needs token_url"), "{e}");
        let e = err(&with_oauth2(
            "token_url = \"http://idp.example/token\"\nclient_id = \"a\"\n",
        ));
        assert!(e.contains("https://"), "{e}");
        let e = err(&with_oauth2(
            "token_url = \"https://idp.example/t\"\nclient_id = \"a\"\n\
             grant = \"client_credentials\"\n",
        ));
        assert!(e.contains("needs the app's own credential"), "{e}");
        // auth = "oauth2" without any [oauth2] section, and an [oauth2] nobody uses.
        let lonely = MINIMAL.replacen(
            "username = \"support@example.test\"\n",
            "username = \"support@example.test\"\nauth = \"oauth2\"\n",
            1,
        );
        let e = err(&lonely);
        assert!(
            e.contains(":6:") && e.contains("needs an [oauth2] section"),
            "{e}"
        );
        let unused = format!(
            "{MINIMAL}\n[oauth2]\ntoken_url = \"https://i.example/t\"\nclient_id = \"a\"\n"
        );
        assert!(err(&unused).contains("no server uses it"));
        let both = with_oauth2("token_url = \"https://i.example/t\"\nclient_id = \"a\"\n")
            .replacen(
                "auth = \"oauth2\"\n",
                "auth = \"oauth2\"\npassword_env = \"HOME\"\n",
                1,
            );
        assert!(err(&both).contains("password_env is not used with auth = \"oauth2\""));
    }

    #[test]
    fn a_client_secret_is_found_among_systemd_credentials_and_read_only_when_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("oauth2-secret");
        std::fs::write(&file, "s3cret\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        // SAFETY: no other test reads or writes CREDENTIALS_DIRECTORY.
        unsafe { std::env::set_var("CREDENTIALS_DIRECTORY", dir.path()) };
        let config = parse_str(&with_oauth2(
            "token_url = \"https://idp.example/t\"\nclient_id = \"a\"\n\
             client_secret_file = \"oauth2-secret\"\ngrant = \"client_credentials\"\n",
        ));
        unsafe { std::env::remove_var("CREDENTIALS_DIRECTORY") };
        let config = config.expect("valid");
        let Auth::OAuth2 { account, .. } = &config.imap.endpoint.auth else {
            panic!("oauth2");
        };
        let ClientAuth::Secret(secret) = &account.client_auth else {
            panic!("a secret");
        };
        assert_eq!(
            secret.path, file,
            "LoadCredential= wins for a relative name"
        );
        assert_eq!(secret.read_line("oauth2").expect("readable"), "s3cret");
        assert!(!format!("{config:?}").contains("s3cret"), "never in Debug");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = secret.read_line("oauth2").unwrap_err().to_string();
        assert!(
            e.contains("is open to everyone") && e.contains("test.toml:"),
            "{e}"
        );
    }

    #[test]
    fn wrong_tls_mode_lists_the_choices() {
        let text = MINIMAL.replacen("tls = \"none\"", "tls = \"ssl\"", 1);
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("test.toml:4:"), "{err}");
        assert!(err.contains("implicit"), "{err}");
    }
}
