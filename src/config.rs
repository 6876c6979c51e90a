//! Configuration: one TOML file, validated completely before anything runs.
//!
//! Every error names the file, the line and the key, because the person reading it is an admin
//! at a terminal with the file open in another window.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

/// Where the configuration is looked for when neither `--config` nor `FOLLOWUPD_CONFIG` is given.
pub const DEFAULT_PATH: &str = "/etc/followupd/followupd.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the configuration file: {source}")]
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
    pub cadence: Duration,
    pub outbox: OutboxConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS on 993, SMTPS on 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS; refused if the server does not offer it.
    Starttls,
    /// No encryption at all: only to loopback unless `allow_plaintext = true`.
    None,
}

/// A server we connect to, with credentials. Shared by IMAP and SMTP.
#[derive(Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Extra CA certificate (PEM) trusted besides the system's roots.
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub timeout: Duration,
}

impl fmt::Debug for Endpoint {
    // Hand-written so a password can never reach a log line through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterProcessing {
    Leave,
    MarkSeen,
    Move(String),
}

#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub endpoint: Endpoint,
    pub mailbox: String,
    pub poll_interval: Duration,
    pub batch_size: u32,
    pub after_processing: AfterProcessing,
    pub reconnect_max: Duration,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub endpoint: Endpoint,
    pub connections: u32,
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

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Send every mail also to the support address (envelope only): the copy coming back
    /// through intake is the receipt that settles a mail left in doubt by a crash.
    pub receipt_copies: bool,
    /// How long a mail in doubt waits for its receipt before it is sent again.
    pub in_doubt_grace: Duration,
}

// ---------------------------------------------------------------------------------------------
// The file as written. Spanned fields are the ones validated after parsing, so that their errors
// can still point at a line.

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
}

/// Connection settings shared by `[imap]` and `[smtp]`.
struct RawServer {
    host: Spanned<String>,
    port: Option<u16>,
    tls: Spanned<TlsMode>,
    allow_plaintext: bool,
    ca_file: Option<Spanned<PathBuf>>,
    username: Option<String>,
    password_file: Option<Spanned<PathBuf>>,
    password_env: Option<Spanned<String>>,
    timeout: Duration,
}

/// Declares a server section: the shared connection keys plus the section's own. (serde's
/// `flatten` would be shorter but silently disables both `deny_unknown_fields` and the line
/// numbers `Spanned` gives us.)
macro_rules! server_section {
    ($name:ident { $($field:ident : $ty:ty = $default:expr $(, with $with:literal)?;)* }) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            host: Spanned<String>,
            port: Option<u16>,
            tls: Spanned<TlsMode>,
            #[serde(default)]
            allow_plaintext: bool,
            ca_file: Option<Spanned<PathBuf>>,
            username: Option<String>,
            password_file: Option<Spanned<PathBuf>>,
            password_env: Option<Spanned<String>>,
            #[serde(default = "default_timeout", deserialize_with = "duration")]
            timeout: Duration,
            $(
                #[serde(default = $default $(, deserialize_with = $with)?)]
                $field: $ty,
            )*
        }

        impl $name {
            fn server(&mut self) -> RawServer {
                RawServer {
                    host: std::mem::replace(&mut self.host, Spanned::new(0..0, String::new())),
                    port: self.port,
                    tls: self.tls.clone(),
                    allow_plaintext: self.allow_plaintext,
                    ca_file: self.ca_file.take(),
                    username: self.username.take(),
                    password_file: self.password_file.take(),
                    password_env: self.password_env.take(),
                    timeout: self.timeout,
                }
            }
        }
    };
}

server_section!(RawImap {
    mailbox: String = "default_mailbox";
    poll_interval: Duration = "default_poll", with "duration";
    batch_size: Spanned<u32> = "default_batch";
    after_processing: Spanned<String> = "default_after";
    move_to: Option<Spanned<String>> = "Option::default";
    reconnect_max: Duration = "default_reconnect_max", with "duration";
});

server_section!(RawSmtp {
    connections: Spanned<u32> = "default_connections";
});

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSupport {
    address: Spanned<String>,
    name: String,
    #[serde(default)]
    own_addresses: Vec<String>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCadence {
    #[serde(default = "default_cadence", deserialize_with = "duration")]
    default: Duration,
}

impl Default for RawCadence {
    fn default() -> Self {
        RawCadence {
            default: default_cadence(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutbox {
    #[serde(default = "default_retry_initial", deserialize_with = "duration")]
    retry_initial: Duration,
    #[serde(default = "default_retry_max", deserialize_with = "duration")]
    retry_max: Duration,
    #[serde(default = "default_true")]
    receipt_copies: bool,
    #[serde(default = "default_in_doubt_grace", deserialize_with = "duration")]
    in_doubt_grace: Duration,
}

impl Default for RawOutbox {
    fn default() -> Self {
        RawOutbox {
            retry_initial: default_retry_initial(),
            retry_max: default_retry_max(),
            receipt_copies: true,
            in_doubt_grace: default_in_doubt_grace(),
        }
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_mailbox() -> String {
    "INBOX".into()
}
fn default_poll() -> Duration {
    Duration::from_secs(30)
}
fn default_batch() -> Spanned<u32> {
    Spanned::new(0..0, 100)
}
fn default_after() -> Spanned<String> {
    Spanned::new(0..0, "seen".into())
}
fn default_reconnect_max() -> Duration {
    Duration::from_secs(300)
}
fn default_connections() -> Spanned<u32> {
    Spanned::new(0..0, 4)
}
fn default_cadence() -> Duration {
    Duration::from_secs(4 * 3600)
}
fn default_retry_initial() -> Duration {
    Duration::from_secs(30)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(3600)
}
fn default_true() -> bool {
    true
}
fn default_in_doubt_grace() -> Duration {
    Duration::from_secs(600)
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
    parse(path, &source)
}

/// Parses and validates configuration text; `path` is used for error messages and to resolve
/// relative paths.
pub fn parse(path: &Path, source: &str) -> Result<Config, ConfigError> {
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
    Validator { path, source }.validate(raw)
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
        let imap_endpoint = self.endpoint("imap", raw.imap.server(), 143, 993)?;
        let smtp_endpoint = self.endpoint("smtp", raw.smtp.server(), 25, 465)?;
        let after_processing =
            self.after_processing(raw.imap.after_processing, raw.imap.move_to)?;
        let batch_size = raw.imap.batch_size;
        if !(1..=1000).contains(batch_size.get_ref()) {
            return self.err(
                batch_size.span(),
                "[imap] batch_size must be between 1 and 1000".into(),
            );
        }
        let connections = raw.smtp.connections;
        if !(1..=32).contains(connections.get_ref()) {
            return self.err(
                connections.span(),
                "[smtp] connections must be between 1 and 32".into(),
            );
        }
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
        if raw.outbox.retry_initial.is_zero() || raw.outbox.retry_max < raw.outbox.retry_initial {
            return Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message: "[outbox] retry_initial must be above zero and not above retry_max".into(),
            });
        }
        if raw.outbox.receipt_copies && raw.outbox.in_doubt_grace < raw.imap.poll_interval * 2 {
            return Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message: format!(
                    "[outbox] in_doubt_grace ({}) must be at least twice [imap] poll_interval ({}): \
                     a receipt can only be seen on a poll",
                    humantime::format_duration(raw.outbox.in_doubt_grace),
                    humantime::format_duration(raw.imap.poll_interval)
                ),
            });
        }
        if raw.imap.poll_interval.is_zero() || raw.cadence.default.is_zero() {
            return Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message: "[imap] poll_interval and [cadence] default must be above zero".into(),
            });
        }
        let database = self.resolve(&raw.database.path);
        let secret_file = match raw.database.secret_file {
            Some(p) => self.resolve(&p),
            None => database.with_file_name("secret.key"),
        };
        Ok(Config {
            path: self.path.to_path_buf(),
            imap: ImapConfig {
                endpoint: imap_endpoint,
                mailbox: raw.imap.mailbox,
                poll_interval: raw.imap.poll_interval,
                batch_size: *batch_size.get_ref(),
                after_processing,
                reconnect_max: raw.imap.reconnect_max,
            },
            smtp: SmtpConfig {
                endpoint: smtp_endpoint,
                connections: *connections.get_ref(),
            },
            support: SupportConfig {
                address: address.into_inner(),
                name: raw.support.name,
                own_addresses: raw.support.own_addresses,
            },
            database,
            secret_file,
            templates: self.resolve(&raw.templates.dir),
            cadence: raw.cadence.default,
            outbox: OutboxConfig {
                retry_initial: raw.outbox.retry_initial,
                retry_max: raw.outbox.retry_max,
                receipt_copies: raw.outbox.receipt_copies,
                in_doubt_grace: raw.outbox.in_doubt_grace,
            },
        })
    }

    fn endpoint(
        &self,
        section: &str,
        raw: RawServer,
        plain_port: u16,
        tls_port: u16,
    ) -> Result<Endpoint, ConfigError> {
        let tls = *raw.tls.get_ref();
        let host = raw.host.get_ref().trim().to_string();
        if host.is_empty() {
            return self.err(raw.host.span(), format!("[{section}] host is empty"));
        }
        if tls == TlsMode::None && !raw.allow_plaintext && !is_loopback(&host) {
            return self.err(
                raw.tls.span(),
                format!(
                    "[{section}] tls = \"none\" would send the password and customers' mail in \
                     clear text to `{host}`; use \"implicit\" or \"starttls\", or set \
                     allow_plaintext = true if you really mean it"
                ),
            );
        }
        let ca_file = match raw.ca_file {
            Some(p) => {
                let resolved = self.resolve(p.get_ref());
                if !resolved.is_file() {
                    return self.err(
                        p.span(),
                        format!(
                            "[{section}] ca_file `{}` does not exist or is not a file",
                            resolved.display()
                        ),
                    );
                }
                Some(resolved)
            }
            None => None,
        };
        let password = self.password(section, raw.password_file, raw.password_env)?;
        if password.is_some() && raw.username.is_none() {
            return Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message: format!("[{section}] a password is configured but no username"),
            });
        }
        let port = raw.port.unwrap_or(match tls {
            TlsMode::Implicit => tls_port,
            _ => plain_port,
        });
        Ok(Endpoint {
            host,
            port,
            tls,
            ca_file,
            username: raw.username,
            password,
            timeout: raw.timeout,
        })
    }

    /// Secrets come from a file or the environment, never from this file, so the config can be
    /// world-readable and kept in version control.
    fn password(
        &self,
        section: &str,
        file: Option<Spanned<PathBuf>>,
        env: Option<Spanned<String>>,
    ) -> Result<Option<String>, ConfigError> {
        match (file, env) {
            (Some(_), Some(env)) => self.err(
                env.span(),
                format!("[{section}] set only one of password_file and password_env"),
            ),
            (Some(file), None) => {
                let resolved = self.resolve(file.get_ref());
                match std::fs::read_to_string(&resolved) {
                    // A trailing newline is how editors save files, never part of a password.
                    Ok(text) => Ok(Some(text.trim_end_matches(['\r', '\n']).to_string())),
                    Err(e) => self.err(
                        file.span(),
                        format!(
                            "[{section}] cannot read password_file `{}`: {e}",
                            resolved.display()
                        ),
                    ),
                }
            }
            (None, Some(env)) => match std::env::var(env.get_ref()) {
                Ok(value) => Ok(Some(value)),
                Err(_) => self.err(
                    env.span(),
                    format!(
                        "[{section}] password_env names `{}` but that environment variable is not set",
                        env.get_ref()
                    ),
                ),
            },
            (None, None) => Ok(None),
        }
    }

    fn after_processing(
        &self,
        action: Spanned<String>,
        move_to: Option<Spanned<String>>,
    ) -> Result<AfterProcessing, ConfigError> {
        match (action.get_ref().as_str(), move_to) {
            ("leave", None) => Ok(AfterProcessing::Leave),
            ("seen", None) => Ok(AfterProcessing::MarkSeen),
            ("move", Some(folder)) if !folder.get_ref().trim().is_empty() => {
                Ok(AfterProcessing::Move(folder.into_inner()))
            }
            ("move", _) => self.err(
                action.span(),
                "[imap] after_processing = \"move\" needs move_to = \"Folder\"".into(),
            ),
            ("leave" | "seen", Some(folder)) => self.err(
                folder.span(),
                "[imap] move_to is only used with after_processing = \"move\"".into(),
            ),
            (other, _) => self.err(
                action.span(),
                format!(
                    "[imap] after_processing = \"{other}\" is not one of \"leave\", \"seen\", \"move\""
                ),
            ),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
        parse(Path::new("/etc/followupd/test.toml"), text)
    }

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let config = parse_str(MINIMAL).expect("minimal config is valid");
        assert_eq!(config.imap.poll_interval, Duration::from_secs(30));
        assert_eq!(config.imap.after_processing, AfterProcessing::MarkSeen);
        assert_eq!(config.imap.endpoint.port, 143);
        assert_eq!(config.cadence, Duration::from_secs(4 * 3600));
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
    fn the_shipped_sample_config_documents_only_real_keys() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/followupd.toml");
        let text = std::fs::read_to_string(&path).expect("sample config");
        // The sample points at the demo stack's CA and password; only the files' existence
        // depends on that stack, so compare everything else by parsing with them stubbed.
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        let password = dir.path().join("password");
        std::fs::write(&ca, "not checked here").expect("write");
        std::fs::write(&password, "secret").expect("write");
        let text = text
            .replace(
                "/tmp/followupd-demo/tls/ca.pem",
                ca.to_str().expect("utf-8"),
            )
            .replace(
                "/tmp/followupd-demo/password",
                password.to_str().expect("utf-8"),
            );
        let config = parse(&path, &text).expect("the sample config is valid");
        assert_eq!(config.imap.poll_interval, Duration::from_secs(30));
        assert!(config.outbox.receipt_copies);
        assert_eq!(config.outbox.in_doubt_grace, Duration::from_secs(600));
        assert_eq!(config.imap.endpoint.password.as_deref(), Some("secret"));
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
        let err = parse_str(&text).unwrap_err().to_string();
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

    #[test]
    fn wrong_tls_mode_lists_the_choices() {
        let text = MINIMAL.replacen("tls = \"none\"", "tls = \"ssl\"", 1);
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("test.toml:4:"), "{err}");
        assert!(err.contains("implicit"), "{err}");
    }
}
