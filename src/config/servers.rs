//! `[imap]` and `[smtp]`: where the servers are, how to reach and sign in to them.

use super::oauth::RawOAuth2;
use super::*;

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

impl TlsMode {
    /// As the configuration writes it (`tls = "implicit"`).
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Implicit => "implicit",
            TlsMode::Starttls => "starttls",
            TlsMode::None => "none",
        }
    }
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

    /// `host:port`, as every message names the server.
    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
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
    /// Read already: root read it before working as the state directory's owner, who may not
    /// read the file (see [`crate::config::Config::read_secrets_now`]).
    Read(Secret),
}

/// A secret read into memory; never shown, not even by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// A line of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub file: PathBuf,
    pub line: usize,
}

impl Line {
    pub(super) fn error(&self, message: String) -> ConfigError {
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
            PasswordSource::Read(secret) => Ok(String::from_utf8_lossy(&secret.0)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()),
            PasswordSource::Env { name, at } => std::env::var(name).map_err(|_| {
                at.error(format!(
                    "[{section}] password_env names `{name}` but that environment variable is \
                     not set"
                ))
            }),
        }
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

/// Connection settings shared by `[imap]` and `[smtp]`.
pub(super) struct RawServer {
    pub(super) host: Spanned<String>,
    pub(super) port: Option<u16>,
    pub(super) tls: Spanned<TlsMode>,
    pub(super) allow_plaintext: bool,
    pub(super) ca_file: Option<Spanned<PathBuf>>,
    pub(super) username: Option<String>,
    pub(super) password_file: Option<Spanned<PathBuf>>,
    pub(super) password_env: Option<Spanned<String>>,
    pub(super) timeout: Duration,
    pub(super) auth: Option<Spanned<String>>,
    pub(super) oauth2_mechanism: Option<Spanned<String>>,
    pub(super) oauth2: Option<oauth::RawOAuth2>,
}

/// Declares a server section: the shared connection keys plus the section's own. (serde's
/// `flatten` would be shorter but silently disables both `deny_unknown_fields` and the line
/// numbers `Spanned` gives us.)
macro_rules! server_section {
    ($name:ident { $($field:ident : $ty:ty = $default:expr $(, with $with:literal)?;)* }) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct $name {
            pub(super) host: Spanned<String>,
            pub(super) port: Option<u16>,
            pub(super) tls: Spanned<TlsMode>,
            #[serde(default)]
            pub(super) allow_plaintext: bool,
            pub(super) ca_file: Option<Spanned<PathBuf>>,
            pub(super) username: Option<String>,
            pub(super) password_file: Option<Spanned<PathBuf>>,
            pub(super) password_env: Option<Spanned<String>>,
            #[serde(default = "default_timeout", deserialize_with = "duration")]
            pub(super) timeout: Duration,
            pub(super) auth: Option<Spanned<String>>,
            pub(super) oauth2_mechanism: Option<Spanned<String>>,
            pub(super) oauth2: Option<oauth::RawOAuth2>,
            $(
                #[serde(default = $default $(, deserialize_with = $with)?)]
                pub(super) $field: $ty,
            )*
        }

        impl $name {
            pub(super) fn server(&mut self) -> RawServer {
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

pub(super) fn default_timeout() -> Duration {
    Duration::from_secs(60)
}

pub(super) fn default_mailbox() -> String {
    "INBOX".into()
}

pub(super) fn default_poll() -> Duration {
    Duration::from_secs(30)
}

pub(super) fn default_batch() -> Spanned<u32> {
    Spanned::new(0..0, 100)
}

pub(super) fn default_after() -> Spanned<String> {
    Spanned::new(0..0, "seen".into())
}

pub(super) fn default_reconnect_max() -> Duration {
    Duration::from_secs(60)
}

pub(super) fn default_connections() -> Spanned<u32> {
    Spanned::new(0..0, 4)
}

pub(super) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Validator<'_> {
    /// `[imap]` and `[smtp]`, with the `[oauth2]` account they may share (its sign-in kept in
    /// `state_dir`); a server with a password and no username logs in as the support address.
    pub(super) fn servers(
        &self,
        mut imap: RawImap,
        mut smtp: RawSmtp,
        oauth2: Option<RawOAuth2>,
        support_address: &str,
        state_dir: &Path,
    ) -> Result<(ImapConfig, SmtpConfig), ConfigError> {
        let shared_oauth2 = match oauth2 {
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
                server.username = Some(support_address.to_string());
            }
            server
        };
        let imap_endpoint = self.endpoint(
            "imap",
            with_login(imap.server()),
            (143, 993),
            &shared_oauth2,
            state_dir,
        )?;
        let smtp_endpoint = self.endpoint(
            "smtp",
            with_login(smtp.server()),
            (25, 465),
            &shared_oauth2,
            state_dir,
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
        let after_processing = self.after_processing(imap.after_processing, imap.move_to)?;
        let batch_size = imap.batch_size;
        if !(1..=1000).contains(batch_size.get_ref()) {
            return self.err(
                batch_size.span(),
                "[imap] batch_size must be between 1 and 1000".into(),
            );
        }
        let connections = smtp.connections;
        if !(1..=32).contains(connections.get_ref()) {
            return self.err(
                connections.span(),
                "[smtp] connections must be between 1 and 32".into(),
            );
        }
        Ok((
            ImapConfig {
                endpoint: imap_endpoint,
                mailbox: imap.mailbox,
                poll_interval: imap.poll_interval,
                batch_size: *batch_size.get_ref(),
                after_processing,
                reconnect_max: imap.reconnect_max,
                idle: imap.idle,
            },
            SmtpConfig {
                endpoint: smtp_endpoint,
                connections: *connections.get_ref(),
            },
        ))
    }

    pub(super) fn endpoint(
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
    pub(super) fn auth(
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
    pub(super) fn password_source(
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

    /// A credential file: a relative name found in systemd's `$CREDENTIALS_DIRECTORY` wins.
    pub(super) fn resolve_credential(&self, p: &Path) -> PathBuf {
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

    pub(super) fn after_processing(
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

    pub(super) fn line(&self, span: std::ops::Range<usize>) -> Line {
        Line {
            file: self.path.to_path_buf(),
            line: line_of(self.source, span.start),
        }
    }
}
