//! SMTP: hand finished messages to the relay over a few long-lived connections ("lanes").
//!
//! We open the sockets ourselves instead of using lettre's pool, for one reason measured here:
//! lettre writes the message body and the closing `\r\n.\r\n` as two writes, and without
//! TCP_NODELAY (which its pool does not set) Nagle holds the terminator back until the relay's
//! delayed ACK, 40 ms later, capping a connection at ~20 mails/s. lettre still speaks the
//! protocol (EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA) on our sockets. Bearer-token AUTH (XOAUTH2,
//! OAUTHBEARER) is spoken here: lettre's XOAUTH2 cannot answer the error challenge a refusing
//! server sends, and it has no OAUTHBEARER.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::Address;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, MutexGuard};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

use crate::config::{Endpoint, Mechanism as BearerMechanism, TlsMode};
use crate::oauth::{AccessToken, Login, TokenSource};

/// A connection idle longer than this is checked with NOOP before use: relays drop idle
/// clients (Postfix after 300 s), and a dead connection must not cost a mail a retry delay.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    #[error("[smtp] ca_file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("[smtp] TLS setup for {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error(transparent)]
    Password(#[from] crate::config::ConfigError),
}

/// Why a send failed, and so whether to try again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The relay cannot take any mail now (down, unreachable, TLS or login refused, timed out,
    /// `421`): the relay is retried, and the whole queue goes once it answers.
    #[error("{0}")]
    Unreachable(String),
    /// A 4xx answer about this mail (a busy mailbox, greylisting): this mail is retried later.
    #[error("{0}")]
    Transient(String),
    /// 5xx or an address the relay cannot take: retrying would not help.
    #[error("{0}")]
    Permanent(String),
}

#[derive(Default)]
struct Lane {
    conn: Option<AsyncSmtpConnection>,
    last_used: Option<Instant>,
    /// When the access token the connection logged in with expires: it is not used after.
    usable_until: Option<Instant>,
}

pub struct Smtp {
    host: String,
    port: u16,
    server: String,
    timeout: Duration,
    hello: ClientId,
    /// Set for STARTTLS (lettre upgrades the socket).
    starttls: Option<TlsParameters>,
    /// Set for implicit TLS (we wrap the socket before the greeting).
    implicit: Option<Arc<ClientConfig>>,
    login: SmtpLogin,
    /// At least one lane, by construction.
    first_lane: Mutex<Lane>,
    more_lanes: Vec<Mutex<Lane>>,
}

impl Smtp {
    pub fn new(
        endpoint: &Endpoint,
        login: Login,
        connections: u32,
        hello: &str,
    ) -> Result<Smtp, SmtpSetupError> {
        let (starttls, implicit) = match endpoint.tls {
            TlsMode::None => (None, None),
            TlsMode::Starttls => (Some(tls_parameters(endpoint)?), None),
            TlsMode::Implicit => {
                let config =
                    crate::tls::client_config(endpoint.ca_file.as_deref()).map_err(|e| {
                        SmtpSetupError::Tls {
                            host: endpoint.host.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                (None, Some(config))
            }
        };
        let login = match login {
            // No password: the relay takes our mail without AUTH.
            Login::None | Login::Password { password: None, .. } => SmtpLogin::None,
            Login::Password {
                user,
                password: Some(source),
            } => SmtpLogin::Password {
                credentials: Credentials::new(user.clone(), source.read("smtp")?),
                user,
            },
            Login::Bearer {
                user,
                mechanism,
                tokens,
            } => SmtpLogin::Bearer {
                user,
                mechanism,
                tokens,
            },
        };
        Ok(Smtp {
            host: endpoint.host.clone(),
            port: endpoint.port,
            server: format!("{}:{}", endpoint.host, endpoint.port),
            timeout: endpoint.timeout,
            hello: ClientId::Domain(hello.to_string()),
            starttls,
            implicit,
            login,
            first_lane: Mutex::default(),
            more_lanes: (1..connections).map(|_| Mutex::default()).collect(),
        })
    }

    /// Sends one finished message to the envelope recipients `to` (the headers say who it is
    /// for); returns the server's reply ("250 2.0.0 Ok: queued as …").
    pub async fn send(&self, from: &str, to: &[&str], raw: &[u8]) -> Result<String, SendError> {
        let envelope = envelope(from, to)?;
        let mut lane = self.lane().await;
        // lettre has no timeout past the connect (lettre issue #1027): bound the whole
        // exchange, so a relay that stalls after DATA cannot stall the outbox.
        let result = tokio::time::timeout(self.timeout, self.send_on(&mut lane, &envelope, raw))
            .await
            .unwrap_or_else(|_| {
                Err(SendError::Unreachable(format!(
                    "{}: no answer within {}",
                    self.server,
                    humantime::format_duration(self.timeout)
                )))
            });
        match &result {
            Ok(_) => lane.last_used = Some(Instant::now()),
            // After any failure the connection's state is unknown (lettre has already sent
            // QUIT for protocol errors): start the next mail on a fresh one.
            Err(_) => lane.conn = None,
        }
        result
    }

    /// A free lane. The sender never has more mails in flight than there are lanes, so
    /// `try_lock` finds one; waiting on the first is only a fallback.
    async fn lane(&self) -> MutexGuard<'_, Lane> {
        for lane in std::iter::once(&self.first_lane).chain(&self.more_lanes) {
            if let Ok(guard) = lane.try_lock() {
                return guard;
            }
        }
        self.first_lane.lock().await
    }

    async fn send_on(
        &self,
        lane: &mut Lane,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<String, SendError> {
        if lane.usable_until.is_some_and(|t| Instant::now() >= t) {
            // Its token has expired: the relay may end the session any moment; start afresh
            // with a new token.
            if let Some(mut conn) = lane.conn.take() {
                let _ = conn.quit().await;
            }
        }
        let idle = lane
            .last_used
            .is_none_or(|t| t.elapsed() > CHECK_AFTER_IDLE);
        if idle {
            if let Some(conn) = lane.conn.as_mut() {
                if !conn.test_connected().await {
                    lane.conn = None;
                }
            }
        }
        let conn = match lane.conn.as_mut() {
            Some(conn) => conn,
            None => {
                let (conn, usable_until) = self.connect().await?;
                lane.usable_until = usable_until;
                lane.conn.insert(conn)
            }
        };
        tracing::debug!(
            server = %self.server,
            "SMTP > MAIL FROM:<{}> RCPT TO: {} recipient(s), DATA {} bytes",
            envelope.from().map(ToString::to_string).unwrap_or_default(),
            envelope.to().len(),
            raw.len()
        );
        let response = conn.send(envelope, raw).await.map_err(|e| {
            tracing::debug!(server = %self.server, "SMTP < {e}");
            self.classify(e)
        })?;
        let said = format!(
            "{} {}",
            response.code(),
            response.message().collect::<Vec<_>>().join(" ")
        );
        tracing::debug!(server = %self.server, "SMTP < {said}");
        Ok(said)
    }

    /// Connects, says EHLO, upgrades to TLS and logs in as configured, then says QUIT: what
    /// `check --connect` reports. Returns how it logged in.
    pub async fn probe(&self) -> Result<String, SendError> {
        let result = tokio::time::timeout(self.timeout, async {
            let (mut conn, _) = self.connect().await?;
            let _ = conn.quit().await;
            Ok(match &self.login {
                SmtpLogin::None => "no AUTH (none configured)".to_string(),
                SmtpLogin::Password { user, .. } => format!("AUTH as {user}"),
                SmtpLogin::Bearer {
                    user, mechanism, ..
                } => format!("AUTH {} as {user}", mechanism.as_str()),
            })
        })
        .await;
        result.unwrap_or_else(|_| {
            Err(SendError::Unreachable(format!(
                "{}: no answer within {}",
                self.server,
                humantime::format_duration(self.timeout)
            )))
        })
    }

    async fn connect(&self) -> Result<(AsyncSmtpConnection, Option<Instant>), SendError> {
        let transient = |what: &str, e: &dyn std::fmt::Display| {
            SendError::Unreachable(format!("{}: {what}: {e}", self.server))
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                transient(
                    "cannot connect (check [smtp] host and port, and that the relay runs)",
                    &e,
                )
            })?;
        tcp.set_nodelay(true)
            .map_err(|e| transient("cannot set TCP_NODELAY", &e))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.implicit {
            Some(config) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| transient("not a TLS server name", &e))?;
                let tls = TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| {
                        transient(
                            "TLS handshake failed (check [smtp] tls, and ca_file for a private CA)",
                            &e,
                        )
                    })?;
                Box::new(ImplicitTls(tls))
            }
            None => Box::new(tcp),
        };
        tracing::debug!(server = %self.server, "SMTP > EHLO");
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| self.unreachable(e))?;
        tracing::debug!(server = %self.server, "SMTP < EHLO answered");
        if let Some(params) = &self.starttls {
            tracing::debug!(server = %self.server, "SMTP > STARTTLS");
            conn.starttls(params.clone(), &self.hello)
                .await
                .map_err(|e| self.unreachable(e))?;
            tracing::debug!(server = %self.server, "SMTP < TLS established, EHLO again");
        }
        match &self.login {
            SmtpLogin::None => {}
            // The user only: the password and the token are never logged.
            SmtpLogin::Password { user, .. } => {
                tracing::debug!(server = %self.server, "SMTP > AUTH PLAIN/LOGIN as {user}");
            }
            SmtpLogin::Bearer {
                user, mechanism, ..
            } => {
                tracing::debug!(server = %self.server, "SMTP > AUTH {} as {user}", mechanism.as_str());
            }
        }
        let usable_until = match &self.login {
            SmtpLogin::None => None,
            SmtpLogin::Password { user, credentials } => {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await
                    .map_err(|e| {
                        if e.is_permanent() {
                            SendError::Unreachable(format!(
                                "{}: the relay refused the password for {user} ({e}); check \
                                 [smtp] username and password_file",
                                self.server
                            ))
                        } else {
                            self.unreachable(e)
                        }
                    })?;
                None
            }
            SmtpLogin::Bearer {
                user,
                mechanism,
                tokens,
            } => Some(self.bearer(&mut conn, user, *mechanism, tokens).await?),
        };
        Ok((conn, usable_until))
    }

    /// AUTH with an access token; a refused token is renewed and tried once more. A refusal is
    /// transient for the mail (it waits, queued) but says what to fix.
    async fn bearer(
        &self,
        conn: &mut AsyncSmtpConnection,
        user: &str,
        mechanism: BearerMechanism,
        tokens: &TokenSource,
    ) -> Result<Instant, SendError> {
        let no_token = |e: crate::oauth::TokenError| {
            SendError::Unreachable(format!("{}: cannot get an access token: {e}", self.server))
        };
        let mut token = tokens.token().await.map_err(no_token)?;
        let mut renewed = false;
        loop {
            match self.sasl(conn, user, mechanism, &token).await {
                Ok(()) => return Ok(token.usable_until),
                Err(Refusal::Refused { .. }) if !renewed => {
                    renewed = true;
                    token = tokens.renewed(&token).await.map_err(no_token)?;
                }
                Err(Refusal::Refused { answer, challenge }) => {
                    let said = challenge
                        .map(|c| format!("; it said {}", crate::sasl::describe_error_challenge(&c)))
                        .unwrap_or_default();
                    return Err(SendError::Unreachable(format!(
                        "{}: the relay refused the {} access token for {user} ({answer}{said}); \
                         check that the token grants sending mail (Microsoft 365: SMTP.Send, or \
                         SMTP.SendAsApp with the mailbox permission; SMTP AUTH enabled for the \
                         mailbox) and that [smtp] username is the mailbox",
                        self.server,
                        mechanism.as_str()
                    )));
                }
                Err(Refusal::Failed(e)) => return Err(self.unreachable(e)),
            }
        }
    }

    /// One SASL exchange: `AUTH MECH initial-response`; a 334 error challenge is answered as
    /// RFC 7628 asks, and then the relay's refusal follows.
    async fn sasl(
        &self,
        conn: &mut AsyncSmtpConnection,
        user: &str,
        mechanism: BearerMechanism,
        token: &AccessToken,
    ) -> Result<(), Refusal> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let initial = crate::sasl::initial_response(mechanism, user, token.secret());
        let first = conn
            .command(Line(format!(
                "AUTH {} {}",
                mechanism.as_str(),
                b64.encode(initial)
            )))
            .await;
        let refused = |e: lettre::transport::smtp::Error, challenge| {
            if e.is_permanent() {
                Refusal::Refused {
                    answer: e.to_string(),
                    challenge,
                }
            } else {
                Refusal::Failed(e)
            }
        };
        match first {
            Ok(response) if response.has_code(334) => {
                let challenge = response
                    .message()
                    .next()
                    .and_then(|text| b64.decode(text.trim()).ok());
                let answer = conn
                    .command(Line(b64.encode(crate::sasl::answer_to_error(mechanism))))
                    .await;
                match answer {
                    Err(e) => Err(refused(e, challenge)),
                    Ok(response) if response.has_code(235) => Ok(()),
                    Ok(response) => Err(Refusal::Refused {
                        answer: format!(
                            "{} {}",
                            response.code(),
                            response.message().collect::<Vec<_>>().join(" ")
                        ),
                        challenge,
                    }),
                }
            }
            Ok(_) => Ok(()),
            Err(e) => Err(refused(e, None)),
        }
    }

    /// What an error while sending one mail means: a 5xx is about this mail for good, another
    /// 4xx about this mail for now; `421`, a dropped connection, a timeout or a TLS failure
    /// are about the relay.
    fn classify(&self, e: lettre::transport::smtp::Error) -> SendError {
        let shown = format!("{}: {e}", self.server);
        if e.is_permanent() {
            SendError::Permanent(shown)
        } else if e.is_transient() && e.status().is_some_and(|c| c.to_string() != "421") {
            SendError::Transient(shown)
        } else {
            SendError::Unreachable(shown)
        }
    }

    /// An error before any mail was given: the relay cannot take mail now.
    fn unreachable(&self, e: lettre::transport::smtp::Error) -> SendError {
        SendError::Unreachable(format!("{}: {e}", self.server))
    }
}

/// How the relay is logged in to, with the password already read.
enum SmtpLogin {
    None,
    Password {
        user: String,
        credentials: Credentials,
    },
    Bearer {
        user: String,
        mechanism: BearerMechanism,
        tokens: Arc<TokenSource>,
    },
}

enum Refusal {
    /// The relay refused the token (5xx), with the error challenge it sent, if any.
    Refused {
        answer: String,
        challenge: Option<Vec<u8>>,
    },
    Failed(lettre::transport::smtp::Error),
}

/// One command line as written, for `AsyncSmtpConnection::command` (which sends `to_string()`).
struct Line(String);

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\r\n", self.0)
    }
}

/// A rustls stream lettre can drive (it needs `AsyncTokioStream`, which the orphan rule keeps
/// us from implementing on tokio-rustls's type directly).
#[derive(Debug)]
struct ImplicitTls(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

fn envelope(from: &str, to: &[&str]) -> Result<Envelope, SendError> {
    let parse = |a: &str| {
        a.parse::<Address>()
            .map_err(|e| SendError::Permanent(format!("address `{a}` cannot be used: {e}")))
    };
    let recipients = to.iter().map(|a| parse(a)).collect::<Result<Vec<_>, _>>()?;
    Envelope::new(Some(parse(from)?), recipients)
        .map_err(|e| SendError::Permanent(format!("envelope {from} -> {}: {e}", to.join(", "))))
}

fn tls_parameters(endpoint: &Endpoint) -> Result<TlsParameters, SmtpSetupError> {
    let mut builder = TlsParameters::builder(endpoint.host.clone());
    if let Some(path) = &endpoint.ca_file {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| SmtpSetupError::CaFile {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| SmtpSetupError::CaFile {
            path: shown,
            reason: e.to_string(),
        })?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build_rustls().map_err(|e| SmtpSetupError::Tls {
        host: endpoint.host.clone(),
        reason: e.to_string(),
    })
}
