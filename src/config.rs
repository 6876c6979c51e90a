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

/// A kind of fact and the words that introduce it in a customer's text ("order", "order no.",
/// "Bestellnummer"). The value is the next word with at least `crate::mail::facts::MIN_DIGITS` digits in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactRule {
    pub name: String,
    /// Lower case.
    pub words: Vec<String>,
}

/// The shipped rules: order and invoice numbers, in English and German.
pub fn default_fact_rules() -> Vec<FactRule> {
    let rule = |name: &str, words: &[&str]| FactRule {
        name: name.to_string(),
        words: words.iter().map(|w| w.to_string()).collect(),
    };
    vec![
        rule(
            "order",
            &[
                "order",
                "order number",
                "bestellung",
                "bestellnummer",
                "auftrag",
                "auftragsnummer",
            ],
        ),
        rule(
            "invoice",
            &["invoice", "invoice number", "rechnung", "rechnungsnummer"],
        ),
    ]
}

/// How a mail greets the customer (`[wording] greeting`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GreetingRule {
    /// "Maria" from "Maria Schneider", "Schneider, Maria" or "Dr. Maria Schneider"; the whole
    /// name when it is unclear which word is the first name.
    #[default]
    FirstName,
    /// The display name as they sent it.
    DisplayName,
    /// Nobody by name: "Hello,".
    None,
}

impl GreetingRule {
    pub fn parse(text: &str) -> Option<GreetingRule> {
        match text {
            "first_name" => Some(GreetingRule::FirstName),
            "display_name" => Some(GreetingRule::DisplayName),
            "none" => Some(GreetingRule::None),
            _ => None,
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

/// How mails word what the customer told us (`[wording]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordingConfig {
    /// How the greeting names the customer.
    pub greeting: GreetingRule,
    /// Facts found in a complaint (order and invoice numbers) that no mail asks for again.
    pub facts: Vec<FactRule>,
}

impl Default for WordingConfig {
    fn default() -> Self {
        WordingConfig {
            greeting: GreetingRule::default(),
            facts: default_fact_rules(),
        }
    }
}

/// The language a customer is answered in (`[language]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageConfig {
    /// When neither the customer's mail nor staff say otherwise: `en`.
    pub default: String,
}

impl Default for LanguageConfig {
    fn default() -> Self {
        LanguageConfig {
            default: "en".into(),
        }
    }
}

/// What mail gets, by how far the receiving server proved its sender (`[trust]`). A verified
/// sender is always answered in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustPolicy {
    /// Nothing proves the sender (or no `[intake] trusted_authserv_id` is set).
    pub unverified: Treatment,
    /// DMARC failed at the trusted server, or it judged the mail spam.
    pub failed: Treatment,
}

impl Default for TrustPolicy {
    fn default() -> Self {
        TrustPolicy {
            unverified: Treatment::Plain,
            failed: Treatment::Hold,
        }
    }
}

/// How a sender's mail is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Answered as written: the mail may quote them, and they may set the pace, copy people in
    /// and clear an undeliverable mark.
    Full,
    /// The incident opens and is answered, but no mail repeats a word they wrote, and they
    /// cannot set the pace, add participants or clear an undeliverable mark.
    Plain,
    /// Recorded and kept in quarantine for staff; nothing is sent.
    Hold,
}

impl Treatment {
    pub fn as_str(self) -> &'static str {
        match self {
            Treatment::Full => "full",
            Treatment::Plain => "plain",
            Treatment::Hold => "hold",
        }
    }
}

/// Phrases added to the built-in English ones (`src/incident/replies.rs`), lower-case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepliesConfig {
    /// A reply with one of these asks for news and is answered with the status at once.
    pub news_phrases: Vec<String>,
    /// A reply with one of these asks for no more automatic updates.
    pub stop_phrases: Vec<String>,
}

/// The support team: who may act by mail, and where they are told what happens.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Per recipient: at most this many notifications; the ones over it wait for one digest.
    pub notify_cap: CapWindow,
    /// `alignment = "relaxed"`: a staff reply verified by a parent or subdomain of its From
    /// domain acts too. Default strict: the From domain itself signed or passed SPF.
    pub relaxed_alignment: bool,
    /// How long a notification can be answered: a reply to an older one is not acted on, and
    /// the member is told to answer a fresh one.
    pub reply_valid_for: Duration,
}

impl Default for StaffConfig {
    fn default() -> Self {
        StaffConfig {
            members: Vec::new(),
            notify: Vec::new(),
            internal_address: None,
            at_risk_before: Duration::from_secs(3600),
            notify_cap: CapWindow {
                max: 20,
                within: Duration::from_secs(3600),
            },
            relaxed_alignment: false,
            reply_valid_for: Duration::from_secs(90 * 86_400),
        }
    }
}

impl StaffConfig {
    pub fn is_member(&self, address: &str) -> bool {
        self.members.iter().any(|s| s.eq_ignore_ascii_case(address))
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

impl Config {
    /// A complete configuration with every default, for support@example.test, pointing at
    /// servers on loopback. What `probe` and the unit tests decide with; never read from disk.
    pub fn example() -> Config {
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
        // The text above is valid by construction (a unit test parses it too), so the
        // fallback is unreachable; it exists so no `expect` sits in library code.
        parse(Path::new("/example/followupd.toml"), EXAMPLE).unwrap_or_else(|_| Config {
            path: PathBuf::new(),
            imap: ImapConfig {
                endpoint: Endpoint::loopback(143),
                mailbox: default_mailbox(),
                poll_interval: default_poll(),
                batch_size: 100,
                after_processing: AfterProcessing::MarkSeen,
                reconnect_max: default_reconnect_max(),
                idle: true,
            },
            smtp: SmtpConfig {
                endpoint: Endpoint::loopback(25),
                connections: 4,
            },
            support: SupportConfig {
                address: "support@example.test".into(),
                name: "Example Support".into(),
                own_addresses: Vec::new(),
            },
            database: PathBuf::from("followupd.db"),
            secret_file: PathBuf::from("secret.key"),
            templates: PathBuf::from("templates"),
            cadence: CadenceConfig::default(),
            outbox: OutboxConfig {
                retry_initial: default_retry_initial(),
                retry_max: default_retry_max(),
                receipt_copies: true,
                in_doubt_grace: default_in_doubt_grace(),
                receipt_margin: default_receipt_margin(),
            },
            intake: IntakeConfig::default(),
            send_caps: SendCaps::default(),
            escalation: EscalationConfig::default(),
            recurring: RecurringConfig::default(),
            staff: StaffConfig::default(),
            replies: RepliesConfig::default(),
            trust: TrustPolicy::default(),
            service: ServiceConfig::default(),
            metrics: MetricsConfig { listen: None },
            retention: RetentionConfig::default(),
            wording: WordingConfig::default(),
            language: LanguageConfig::default(),
        })
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
    /// Where the password is read from when a connection needs it: never at load time, so staff
    /// who may not read the password files can still use the CLI.
    pub password: Option<PasswordSource>,
    pub timeout: Duration,
    pub auth: Auth,
}

/// Where a password comes from, and where the configuration said so (for errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// The first line of a file (a trailing newline is how editors save files, never part of a
    /// password). A relative name is looked up in `$CREDENTIALS_DIRECTORY` first (systemd's
    /// `LoadCredential=`), then beside the configuration.
    File {
        path: PathBuf,
        at: Line,
    },
    Env {
        name: String,
        at: Line,
    },
}

/// A line of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub file: PathBuf,
    pub line: usize,
}

impl Line {
    fn error(&self, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.file.clone(),
            line: self.line,
            message,
        }
    }
}

impl PasswordSource {
    /// Reads the password now. A file that anyone may read is refused, as ssh refuses a private
    /// key others can read: the password would be everyone's.
    pub fn read(&self, section: &str) -> Result<String, ConfigError> {
        match self {
            PasswordSource::File { path, at } => {
                crate::files::check_private(path).map_err(|why| {
                    at.error(format!(
                        "[{section}] password_file `{}` {why}",
                        path.display()
                    ))
                })?;
                std::fs::read_to_string(path)
                    .map(|text| text.lines().next().unwrap_or("").to_string())
                    .map_err(|e| {
                        at.error(format!(
                            "[{section}] cannot read password_file `{}`: {e}",
                            path.display()
                        ))
                    })
            }
            PasswordSource::Env { name, at } => std::env::var(name).map_err(|_| {
                at.error(format!(
                    "[{section}] password_env names `{name}` but that environment variable is \
                     not set"
                ))
            }),
        }
    }
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
            .field("password", &self.password)
            .field("timeout", &self.timeout)
            .field("auth", &self.auth)
            .finish()
    }
}

impl Endpoint {
    /// The password, read now (`section` names the server in errors).
    pub fn password(&self, section: &str) -> Result<Option<String>, ConfigError> {
        self.password.as_ref().map(|p| p.read(section)).transpose()
    }

    fn loopback(port: u16) -> Endpoint {
        Endpoint {
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::None,
            ca_file: None,
            username: None,
            password: None,
            timeout: default_timeout(),
            auth: Auth::Password,
        }
    }

    /// `host:port`, as every message names the server.
    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
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
    /// Wait in IMAP IDLE (RFC 2177) when the server offers it; otherwise poll.
    pub idle: bool,
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

/// How incoming mail is screened before anything acts on it.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// Larger mail is recorded with its headers only.
    pub max_message_size: u64,
    /// Senders that never read replies (no-reply@ and friends): mail whose From, Sender or
    /// Return-Path matches is bulk.
    pub noreply_patterns: Vec<AddressPattern>,
    pub strangers: StrangerPolicy,
    /// The authserv-id of the receiving server whose `Authentication-Results` we believe.
    pub trusted_authserv_id: Option<String>,
    /// Headers by which the receiving server says a message is spam.
    pub spam_headers: Vec<HeaderRule>,
}

/// `X-Spam-Flag: YES`: a header name and the start of its value, both case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRule {
    pub name: String,
    pub value_prefix: String,
}

impl HeaderRule {
    /// Reads `Name: value`; None without a colon or a name.
    pub fn parse(text: &str) -> Option<HeaderRule> {
        let (name, value) = text.split_once(':')?;
        let name = name.trim();
        (!name.is_empty() && !name.contains(char::is_whitespace)).then(|| HeaderRule {
            name: name.to_string(),
            value_prefix: value.trim().to_lowercase(),
        })
    }

    pub fn matches(&self, name: &str, value: &str) -> bool {
        name.eq_ignore_ascii_case(&self.name)
            && value.trim().to_lowercase().starts_with(&self.value_prefix)
    }
}

/// The spam verdicts of SpamAssassin and Rspamd, as receiving servers write them.
pub const DEFAULT_SPAM_HEADERS: &[&str] = &[
    "X-Spam-Flag: YES",
    "X-Spam-Status: Yes",
    "X-Spam: Yes",
    "X-Spam-Action: reject",
    "X-Spam-Action: add header",
    "X-Spam-Action: rewrite subject",
];

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            noreply_patterns: DEFAULT_NOREPLY
                .iter()
                .map(|p| AddressPattern::new(p))
                .collect(),
            strangers: StrangerPolicy::NewIncident,
            trusted_authserv_id: None,
            spam_headers: DEFAULT_SPAM_HEADERS
                .iter()
                .filter_map(|r| HeaderRule::parse(r))
                .collect(),
        }
    }
}

pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 25 * 1000 * 1000;

/// Local parts that announce nobody reads the replies. `*` matches any run of characters.
pub const DEFAULT_NOREPLY: &[&str] = &[
    "noreply*@*",
    "no-reply*@*",
    "no_reply*@*",
    "donotreply*@*",
    "do-not-reply*@*",
    "do_not_reply*@*",
    "*-noreply@*",
    "*.noreply@*",
    "bounce*@*",
    "bounces*@*",
    "*-bounces@*",
];

/// What to do with mail that points at an incident its sender does not take part in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrangerPolicy {
    /// It becomes its own incident (and is acknowledged like any new complaint).
    NewIncident,
    /// It is kept for staff in quarantine; nothing is sent.
    Hold,
}

/// A case-insensitive address glob: `*` matches any run of characters, nothing else is special.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPattern(String);

impl AddressPattern {
    pub fn new(pattern: &str) -> AddressPattern {
        AddressPattern(pattern.trim().to_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `address` must already be lower-cased.
    pub fn matches(&self, address: &str) -> bool {
        let mut pieces = self.0.split('*');
        let Some(first) = pieces.next() else {
            return false;
        };
        let Some(mut rest) = address.strip_prefix(first) else {
            return false;
        };
        let pieces: Vec<&str> = pieces.collect();
        let Some((last, middle)) = pieces.split_last() else {
            return rest.is_empty(); // no `*` at all: exact match
        };
        for piece in middle {
            match rest.find(piece) {
                Some(i) => rest = &rest[i + piece.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

/// Limits on automatic mail to customers, counted over sliding windows in SQLite.
#[derive(Debug, Clone)]
pub struct SendCaps {
    /// Per recipient mailbox (see [`MailboxRules`]): every automatic customer mail.
    pub windows: Vec<CapWindow>,
    /// Per recipient domain.
    pub domain_windows: Vec<CapWindow>,
    /// All automatic customer mail together: protects the domain's reputation. Staff are told
    /// when it is reached.
    pub global_windows: Vec<CapWindow>,
    /// Per incident: answers the customer's own mail causes (status answers, confirmations,
    /// the reopen notice).
    pub answer_windows: Vec<CapWindow>,
    /// Per recipient mailbox: mail about incidents whose sender could not be verified and that
    /// no staff member has acted on yet.
    pub unverified_windows: Vec<CapWindow>,
    pub mailbox: MailboxRules,
}

/// How recipient addresses fold into one mailbox for the caps: `Ann.Lee+x@GMail.com` and
/// `annlee@gmail.com` are one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxRules {
    /// Characters that start a sub-address in the local part (`+` by default; `-` where the
    /// recipient's servers use it, as qmail and some Postfix setups do).
    pub subaddress_separators: Vec<char>,
    /// Domains whose mailboxes ignore dots in the local part (lower-case).
    pub dotless_domains: Vec<String>,
}

impl MailboxRules {
    /// The mailbox `address` reaches: case folded, a sub-address cut, dots ignored where the
    /// domain ignores them, googlemail.com as gmail.com.
    pub fn mailbox(&self, address: &str) -> String {
        let rules = self;
        let address = address.trim().to_lowercase();
        let Some((local, domain)) = address.rsplit_once('@') else {
            return address;
        };
        let domain = domain.trim_end_matches('.');
        // One mailbox under two names: Google delivers googlemail.com to gmail.com.
        let domain = if domain == "googlemail.com" {
            "gmail.com"
        } else {
            domain
        };
        if local.starts_with('"') {
            return format!("{local}@{domain}");
        }
        let base = local
            .split(|c| rules.subaddress_separators.contains(&c))
            .next()
            .filter(|b| !b.is_empty())
            .unwrap_or(local);
        let base = if rules.dotless_domains.iter().any(|d| d == domain) {
            base.replace('.', "")
        } else {
            base.to_string()
        };
        format!("{base}@{domain}")
    }
}

impl Default for MailboxRules {
    fn default() -> Self {
        MailboxRules {
            subaddress_separators: vec!['+'],
            dotless_domains: vec!["gmail.com".into(), "googlemail.com".into()],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapWindow {
    pub max: u32,
    pub within: Duration,
}

const fn window(max: u32, secs: u64) -> CapWindow {
    CapWindow {
        max,
        within: Duration::from_secs(secs),
    }
}

impl Default for SendCaps {
    fn default() -> Self {
        SendCaps {
            windows: vec![window(3, 600), window(10, 3600), window(40, 86_400)],
            // Off: in an outage hundreds of real customers of one provider write within the
            // hour, and each must hear from us. The per-mailbox caps bound what a forger gets.
            domain_windows: Vec::new(),
            global_windows: vec![window(1000, 3600)],
            answer_windows: vec![window(3, 86_400)],
            unverified_windows: vec![window(5, 86_400)],
            mailbox: MailboxRules::default(),
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWording {
    greeting: Option<Spanned<String>>,
    facts: Option<std::collections::BTreeMap<String, Vec<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLanguage {
    default: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReplies {
    #[serde(default)]
    news_phrases: Vec<String>,
    #[serde(default)]
    stop_phrases: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStaff {
    #[serde(default)]
    members: Vec<Spanned<String>>,
    #[serde(default)]
    notify: Vec<Spanned<String>>,
    internal_address: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "opt_duration")]
    at_risk_before: Option<Duration>,
    notify_cap: Option<Spanned<RawCapWindow>>,
    alignment: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "opt_duration")]
    reply_valid_for: Option<Duration>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEscalation {
    #[serde(default)]
    staff: Vec<Spanned<String>>,
    #[serde(default, deserialize_with = "opt_duration")]
    after_no_note: Option<Duration>,
    no_news_updates: Option<Spanned<u32>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRecurring {
    #[serde(default, deserialize_with = "opt_duration")]
    window: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    link_within: Option<Duration>,
    incidents: Option<Spanned<u32>>,
    tag_incidents: Option<Spanned<u32>>,
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
    auth: Option<Spanned<String>>,
    oauth2_mechanism: Option<Spanned<String>>,
    oauth2: Option<oauth::RawOAuth2>,
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
            auth: Option<Spanned<String>>,
            oauth2_mechanism: Option<Spanned<String>>,
            oauth2: Option<oauth::RawOAuth2>,
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
                    auth: self.auth.take(),
                    oauth2_mechanism: self.oauth2_mechanism.take(),
                    oauth2: self.oauth2.take(),
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
    idle: bool = "default_true";
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCadence {
    #[serde(default, deserialize_with = "opt_duration")]
    default: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    min: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    max: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    lead: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    check_back_after: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    close_after: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    reopen_within: Option<Duration>,
    window: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "opt_duration")]
    window_length: Option<Duration>,
    timezone: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "opt_duration")]
    step: Option<Duration>,
    holidays: Option<Spanned<RawHolidays>>,
}

/// `[cadence] holidays`: a list of dates, or the path of an iCalendar file.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawHolidays {
    Dates(Vec<String>),
    File(PathBuf),
}

impl RawCadence {
    fn resolve(&self) -> CadenceConfig {
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

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
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
    #[serde(default = "default_receipt_margin", deserialize_with = "duration")]
    receipt_margin: Duration,
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIntake {
    max_message_size: Option<Spanned<String>>,
    noreply_patterns: Option<Vec<Spanned<String>>>,
    strangers: Option<Spanned<String>>,
    trusted_authserv_id: Option<Spanned<String>>,
    spam_headers: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSendCaps {
    windows: Option<Spanned<Vec<RawCapWindow>>>,
    domain_windows: Option<Spanned<Vec<RawCapWindow>>>,
    global_windows: Option<Spanned<Vec<RawCapWindow>>>,
    answer_windows: Option<Spanned<Vec<RawCapWindow>>>,
    unverified_windows: Option<Spanned<Vec<RawCapWindow>>>,
    subaddress_separators: Option<Spanned<Vec<String>>>,
    dotless_domains: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTrust {
    unverified: Option<Spanned<String>>,
    failed: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapWindow {
    max: u32,
    #[serde(deserialize_with = "duration")]
    within: Duration,
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
    Duration::from_secs(60)
}
fn default_connections() -> Spanned<u32> {
    Spanned::new(0..0, 4)
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
fn default_receipt_margin() -> Duration {
    Duration::from_secs(10)
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
        let database = self.resolve(&raw.database.path);
        // Sign-ins live in the state directory, beside the database.
        let state_dir = database
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let shared_oauth2 = match raw.oauth2.take() {
            Some(section) => Some(Arc::new(self.oauth2(
                "oauth2",
                section,
                state_dir.join("oauth2.token"),
            )?)),
            None => None,
        };
        // A server with a password and no username logs in as the support address: the
        // common case, one key fewer to edit.
        let with_login = |mut server: RawServer| {
            if server.username.is_none()
                && (server.password_file.is_some() || server.password_env.is_some())
            {
                server.username = Some(raw.support.address.get_ref().trim().to_string());
            }
            server
        };
        let imap_endpoint = self.endpoint(
            "imap",
            with_login(raw.imap.server()),
            (143, 993),
            &shared_oauth2,
            &state_dir,
        )?;
        let smtp_endpoint = self.endpoint(
            "smtp",
            with_login(raw.smtp.server()),
            (25, 465),
            &shared_oauth2,
            &state_dir,
        )?;
        let uses_shared = |e: &Endpoint| match (&e.auth, &shared_oauth2) {
            (Auth::OAuth2 { account, .. }, Some(shared)) => Arc::ptr_eq(account, shared),
            _ => false,
        };
        if shared_oauth2.is_some() && !uses_shared(&imap_endpoint) && !uses_shared(&smtp_endpoint) {
            return Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message: "[oauth2] is configured but no server uses it: set auth = \"oauth2\" \
                          in [imap] and/or [smtp]"
                    .into(),
            });
        }
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
        // Past its grace a mail in doubt is resent without its receipt if intake made no
        // progress meanwhile; a grace shorter than one slow pass would take a busy intake for a
        // stalled one and send twice.
        let needed = raw.outbox.receipt_margin + raw.imap.poll_interval + raw.imap.timeout;
        if raw.outbox.in_doubt_grace < needed {
            return Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message: format!(
                    "[outbox] in_doubt_grace ({}) must be at least receipt_margin + [imap] \
                     poll_interval + [imap] timeout ({}): a shorter grace resends mail whose \
                     receipt intake has not had the time to read",
                    humantime::format_duration(raw.outbox.in_doubt_grace),
                    humantime::format_duration(needed)
                ),
            });
        }
        let mut cadence = raw.cadence.resolve();
        if let Some(tz) = &raw.cadence.timezone {
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
        match (&raw.cadence.window, raw.cadence.window_length) {
            (Some(expr), Some(length)) => {
                match crate::clock::Window::parse(expr.get_ref(), length, cadence.timezone) {
                    Ok(w) => cadence.window = Some(w),
                    Err(e) => return self.err(expr.span(), format!("[cadence] window {e}")),
                }
            }
            (Some(expr), None) => {
                return self.err(
                    expr.span(),
                    "[cadence] window needs window_length (how long each window stays open, \
                     like \"8h\")"
                        .into(),
                )
            }
            (None, Some(_)) => {
                return Err(ConfigError::Whole {
                    path: self.path.to_path_buf(),
                    message: "[cadence] window_length is set but window is not".into(),
                })
            }
            (None, None) => {}
        }
        if let Some(holidays) = &raw.cadence.holidays {
            let parsed = match holidays.get_ref() {
                RawHolidays::Dates(dates) => {
                    crate::clock::Holidays::from_dates(dates.iter().map(String::as_str))
                }
                RawHolidays::File(path) => {
                    let path = self.resolve(path);
                    std::fs::read_to_string(&path)
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
        if raw.imap.poll_interval.is_zero() || cadence.default.is_zero() {
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
        let intake = self.intake(raw.intake)?;
        let send_caps = self.send_caps(raw.send_caps)?;
        let staff = self.staff(raw.staff, raw.support.staff)?;
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
                idle: raw.imap.idle,
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
            cadence,
            outbox: OutboxConfig {
                retry_initial: raw.outbox.retry_initial,
                retry_max: raw.outbox.retry_max,
                receipt_copies: raw.outbox.receipt_copies,
                in_doubt_grace: raw.outbox.in_doubt_grace,
                receipt_margin: raw.outbox.receipt_margin,
            },
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

    fn address_list(
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

    fn staff(
        &self,
        raw: RawStaff,
        old_members: Vec<Spanned<String>>,
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
        Ok(out)
    }

    fn escalation(&self, raw: RawEscalation) -> Result<EscalationConfig, ConfigError> {
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

    fn wording(&self, raw: RawWording) -> Result<WordingConfig, ConfigError> {
        let mut out = WordingConfig::default();
        if let Some(g) = raw.greeting {
            out.greeting = match GreetingRule::parse(g.get_ref()) {
                Some(rule) => rule,
                None => {
                    return self.err(
                        g.span(),
                        format!(
                            "[wording] greeting `{}`: use \"first_name\", \"display_name\" or \
                             \"none\"",
                            g.get_ref()
                        ),
                    )
                }
            };
        }
        if let Some(facts) = raw.facts {
            out.facts = facts
                .into_iter()
                .map(|(name, words)| FactRule {
                    name,
                    words: words
                        .iter()
                        .map(|w| w.trim().to_lowercase())
                        .filter(|w| !w.is_empty())
                        .collect(),
                })
                .collect();
        }
        Ok(out)
    }

    fn language(&self, raw: RawLanguage) -> Result<LanguageConfig, ConfigError> {
        let mut out = LanguageConfig::default();
        if let Some(lang) = raw.default {
            match crate::lang::normalise(lang.get_ref()) {
                Some(code) => out.default = code,
                None => {
                    return self.err(
                        lang.span(),
                        format!(
                            "[language] default `{}` is not a language code like \"en\" or \"de\"",
                            lang.get_ref()
                        ),
                    )
                }
            }
        }
        Ok(out)
    }

    fn recurring(&self, raw: RawRecurring) -> Result<RecurringConfig, ConfigError> {
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

    fn intake(&self, raw: RawIntake) -> Result<IntakeConfig, ConfigError> {
        let mut intake = IntakeConfig::default();
        if let Some(size) = raw.max_message_size {
            intake.max_message_size = match parse_size(size.get_ref()) {
                Some(n) if n >= 1024 => n,
                _ => {
                    return self.err(
                        size.span(),
                        format!(
                            "[intake] max_message_size `{}` is not a size of at least 1 KB; \
                             write it like \"25MB\" or \"500KB\"",
                            size.get_ref()
                        ),
                    )
                }
            };
        }
        if let Some(patterns) = raw.noreply_patterns {
            let mut parsed = Vec::new();
            for p in patterns {
                if !p.get_ref().contains('@') {
                    return self.err(
                        p.span(),
                        format!(
                            "[intake] noreply pattern `{}` has no `@`; patterns match whole \
                             addresses, like \"noreply*@*\"",
                            p.get_ref()
                        ),
                    );
                }
                parsed.push(AddressPattern::new(p.get_ref()));
            }
            intake.noreply_patterns = parsed;
        }
        if let Some(strangers) = raw.strangers {
            intake.strangers = match strangers.get_ref().as_str() {
                "new-incident" => StrangerPolicy::NewIncident,
                "hold" => StrangerPolicy::Hold,
                other => {
                    return self.err(
                        strangers.span(),
                        format!(
                        "[intake] strangers = \"{other}\" is not one of \"new-incident\", \"hold\""
                    ),
                    )
                }
            };
        }
        if let Some(id) = raw.trusted_authserv_id {
            let text = id.get_ref().trim();
            if text.is_empty() || text.contains(char::is_whitespace) || text.contains(';') {
                return self.err(
                    id.span(),
                    format!(
                        "[intake] trusted_authserv_id `{}` is not an authserv-id; it is the first \
                         word of your mail server's Authentication-Results header, like \
                         \"mx.example.com\"",
                        id.get_ref()
                    ),
                );
            }
            intake.trusted_authserv_id = Some(text.to_string());
        }
        if let Some(rules) = raw.spam_headers {
            let mut parsed = Vec::new();
            for rule in rules {
                match HeaderRule::parse(rule.get_ref()) {
                    Some(r) => parsed.push(r),
                    None => {
                        return self.err(
                            rule.span(),
                            format!(
                                "[intake] spam header `{}` is not `Name: value`, like \
                                 \"X-Spam-Flag: YES\"",
                                rule.get_ref()
                            ),
                        )
                    }
                }
            }
            intake.spam_headers = parsed;
        }
        Ok(intake)
    }

    fn send_caps(&self, raw: RawSendCaps) -> Result<SendCaps, ConfigError> {
        let defaults = SendCaps::default();
        let mut mailbox = defaults.mailbox.clone();
        if let Some(separators) = raw.subaddress_separators {
            let span = separators.span();
            mailbox.subaddress_separators = Vec::new();
            for text in separators.into_inner() {
                let mut chars = text.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if c.is_ascii_punctuation() && c != '@' && c != '.' => {
                        mailbox.subaddress_separators.push(c)
                    }
                    _ => {
                        return self.err(
                            span,
                            format!(
                                "[send_caps] subaddress_separators: `{text}` is not one \
                                 punctuation character like \"+\" or \"-\""
                            ),
                        )
                    }
                }
            }
        }
        if let Some(domains) = raw.dotless_domains {
            mailbox.dotless_domains = domains
                .into_iter()
                .map(|d| d.trim().to_ascii_lowercase())
                .collect();
        }
        Ok(SendCaps {
            windows: self.cap_windows("windows", raw.windows, defaults.windows)?,
            domain_windows: self.cap_windows(
                "domain_windows",
                raw.domain_windows,
                defaults.domain_windows,
            )?,
            global_windows: self.cap_windows(
                "global_windows",
                raw.global_windows,
                defaults.global_windows,
            )?,
            answer_windows: self.cap_windows(
                "answer_windows",
                raw.answer_windows,
                defaults.answer_windows,
            )?,
            unverified_windows: self.cap_windows(
                "unverified_windows",
                raw.unverified_windows,
                defaults.unverified_windows,
            )?,
            mailbox,
        })
    }

    fn cap_windows(
        &self,
        key: &str,
        raw: Option<Spanned<Vec<RawCapWindow>>>,
        default: Vec<CapWindow>,
    ) -> Result<Vec<CapWindow>, ConfigError> {
        let Some(windows) = raw else {
            return Ok(default);
        };
        let span = windows.span();
        let mut caps = Vec::new();
        for w in windows.into_inner() {
            if w.max == 0 || w.within.is_zero() {
                return self.err(
                    span,
                    format!(
                        "[send_caps] {key}: every window needs max of at least 1 and a non-zero \
                         `within`; to turn these caps off, write {key} = []"
                    ),
                );
            }
            caps.push(CapWindow {
                max: w.max,
                within: w.within,
            });
        }
        Ok(caps)
    }

    fn trust(&self, raw: RawTrust) -> Result<TrustPolicy, ConfigError> {
        let mut policy = TrustPolicy::default();
        for (key, value, slot) in [
            ("unverified", raw.unverified, &mut policy.unverified),
            ("failed", raw.failed, &mut policy.failed),
        ] {
            let Some(value) = value else { continue };
            *slot = match value.get_ref().as_str() {
                "full" => Treatment::Full,
                "plain" => Treatment::Plain,
                "hold" => Treatment::Hold,
                other => {
                    return self.err(
                        value.span(),
                        format!(
                        "[trust] {key} = \"{other}\" is not one of \"full\", \"plain\", \"hold\""
                    ),
                    )
                }
            };
        }
        Ok(policy)
    }

    fn endpoint(
        &self,
        section: &str,
        mut raw: RawServer,
        (plain_port, tls_port): (u16, u16),
        shared_oauth2: &Option<Arc<OAuth2Config>>,
        state_dir: &Path,
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
        let auth = self.auth(section, &mut raw, shared_oauth2, state_dir)?;
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
                // Loaded now, as the connection will load it: a file that is not PEM would
                // otherwise pass here and fail every connection later. (A certificate is
                // public; unlike a password it may be read by every command.)
                if let Err(crate::tls::TlsError::CaFile { reason, .. }) =
                    crate::tls::read_pem_certs(&resolved)
                {
                    return self.err(
                        p.span(),
                        format!(
                            "[{section}] ca_file `{}` holds no usable PEM certificate: {reason}",
                            resolved.display()
                        ),
                    );
                }
                Some(resolved)
            }
            None => None,
        };
        let password = self.password_source(section, raw.password_file, raw.password_env)?;
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
            auth,
        })
    }

    /// `auth`, `oauth2_mechanism` and the server's own `[SECTION.oauth2]`.
    fn auth(
        &self,
        section: &str,
        raw: &mut RawServer,
        shared: &Option<Arc<OAuth2Config>>,
        state_dir: &Path,
    ) -> Result<Auth, ConfigError> {
        let own = match raw.oauth2.take() {
            Some(own) => Some(Arc::new(self.oauth2(
                &format!("{section}.oauth2"),
                own,
                state_dir.join(format!("oauth2-{section}.token")),
            )?)),
            None => None,
        };
        let oauth2 = match raw.auth.as_ref().map(|a| a.get_ref().as_str()) {
            None | Some("password") => false,
            Some("oauth2") => true,
            Some(other) => {
                let span = raw.auth.as_ref().map_or(0..0, |a| a.span());
                return self.err(
                    span,
                    format!(
                        "[{section}] auth = \"{other}\" is not one of \"password\", \"oauth2\""
                    ),
                );
            }
        };
        if !oauth2 {
            if let Some(m) = &raw.oauth2_mechanism {
                return self.err(
                    m.span(),
                    format!("[{section}] oauth2_mechanism is only used with auth = \"oauth2\""),
                );
            }
            if own.is_some() {
                return Err(ConfigError::Whole {
                    path: self.path.to_path_buf(),
                    message: format!(
                        "[{section}.oauth2] is configured but [{section}] auth is not \"oauth2\""
                    ),
                });
            }
            return Ok(Auth::Password);
        }
        let span = raw.auth.as_ref().map_or(0..0, |a| a.span());
        if raw.username.is_none() {
            return self.err(
                span,
                format!(
                    "[{section}] auth = \"oauth2\" needs username (the mailbox to sign in to, \
                     like support@example.com)"
                ),
            );
        }
        if let Some(p) = raw.password_file.as_ref() {
            return self.err(
                p.span(),
                format!("[{section}] password_file is not used with auth = \"oauth2\"; remove it"),
            );
        }
        if let Some(p) = raw.password_env.as_ref() {
            return self.err(
                p.span(),
                format!("[{section}] password_env is not used with auth = \"oauth2\"; remove it"),
            );
        }
        let mechanism = match raw.oauth2_mechanism.as_ref().map(|m| m.get_ref().as_str()) {
            None | Some("xoauth2") => Mechanism::Xoauth2,
            Some("oauthbearer") => Mechanism::Oauthbearer,
            Some(other) => {
                let span = raw.oauth2_mechanism.as_ref().map_or(0..0, |m| m.span());
                return self.err(
                    span,
                    format!(
                        "[{section}] oauth2_mechanism = \"{other}\" is not one of \"xoauth2\", \
                         \"oauthbearer\""
                    ),
                );
            }
        };
        let Some(account) = own.or_else(|| shared.clone()) else {
            return self.err(
                span,
                format!(
                    "[{section}] auth = \"oauth2\" needs an [oauth2] section (or [{section}.oauth2]) \
                     saying how to get tokens"
                ),
            );
        };
        Ok(Auth::OAuth2 { mechanism, account })
    }

    /// Secrets come from a file or the environment, never from this file, so the config can be
    /// world-readable and kept in version control. They are read when a connection needs them
    /// (and by `check`), not here.
    fn password_source(
        &self,
        section: &str,
        file: Option<Spanned<PathBuf>>,
        env: Option<Spanned<String>>,
    ) -> Result<Option<PasswordSource>, ConfigError> {
        match (file, env) {
            (Some(_), Some(env)) => self.err(
                env.span(),
                format!("[{section}] set only one of password_file and password_env"),
            ),
            (Some(file), None) => Ok(Some(PasswordSource::File {
                path: self.resolve_credential(file.get_ref()),
                at: self.line(file.span()),
            })),
            (None, Some(env)) => Ok(Some(PasswordSource::Env {
                name: env.get_ref().clone(),
                at: self.line(env.span()),
            })),
            (None, None) => Ok(None),
        }
    }

    fn line(&self, span: std::ops::Range<usize>) -> Line {
        Line {
            file: self.path.to_path_buf(),
            line: line_of(self.source, span.start),
        }
    }

    /// A credential file: a relative name found in systemd's `$CREDENTIALS_DIRECTORY` wins.
    fn resolve_credential(&self, p: &Path) -> PathBuf {
        if p.is_relative() {
            if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
                let candidate = Path::new(&dir).join(p);
                if candidate.exists() {
                    return candidate;
                }
            }
        }
        self.resolve(p)
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

fn phrases(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect()
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `"25MB"`, `"500 KB"`, `"1MiB"`, `"1048576"`: decimal units are powers of 1000, binary of 1024.
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1000,
        "kib" => 1024,
        "mb" | "m" => 1000 * 1000,
        "mib" => 1024 * 1024,
        "gb" | "g" => 1000 * 1000 * 1000,
        "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor)
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
    fn the_example_config_is_valid() {
        let config = Config::example();
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
        let config = parse(Path::new("/etc/followupd/followupd.toml"), &text).expect("valid");
        assert_eq!(
            config.imap.endpoint.username.as_deref(),
            Some("support@example.test")
        );
        assert_eq!(
            config.smtp.endpoint.username.as_deref(),
            Some("support@example.test")
        );
        let no_password = parse(Path::new("/x.toml"), MINIMAL).expect("valid");
        assert_eq!(
            no_password.smtp.endpoint.username, None,
            "no password: no SMTP AUTH"
        );
    }

    #[test]
    fn service_metrics_and_retention_have_safe_defaults_and_say_what_is_wrong() {
        let config = parse(Path::new("/x.toml"), MINIMAL).expect("valid");
        assert_eq!(config.metrics.listen, None, "off by default");
        assert_eq!(
            config.retention.raw_after, None,
            "raw mail kept unless configured"
        );
        assert_eq!(config.service.stall_after, Duration::from_secs(300));
        let on = parse(
            Path::new("/x.toml"),
            &format!("{MINIMAL}\n[metrics]\nenabled = true\n[retention]\nraw_after = \"365d\"\n"),
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
        let config = parse(&path, &text).expect("the sample config is valid");
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
