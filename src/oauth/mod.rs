//! OAuth2 access tokens that look after themselves.
//!
//! A [`TokenSource`] is one sign-in (one `[oauth2]` section): it hands out an access token that
//! stays good for a while yet, refreshes it before it expires, and once more when a server
//! refuses it. With `grant = "refresh_token"` the refresh token a person gave at `followupd
//! oauth2 login` is read from the state directory at every exchange and replaced there when the
//! provider rotates it; with `client_credentials` the app signs in as itself.
//!
//! A refusal by the provider names its reason (RFC 6749 5.2 `error` and `error_description`)
//! and what to do. A refresh token the provider refused is remembered, so followupd does not
//! ask again with it until someone signs in anew (the file changes). Exchanges are blocking
//! HTTP (oauth2 over ureq, with the same rustls and ring as IMAP) on tokio's blocking pool.

pub mod assertion;
pub mod login;
pub mod saved;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::Digest as _;

use oauth2::basic::{BasicClient, BasicErrorResponse};
use oauth2::{
    AuthType, ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, RefreshToken,
    RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use tokio_rustls::rustls::ClientConfig;

use crate::config::{Auth, ClientAuth, Config, Grant, Mechanism, OAuth2Config, PasswordSource};
use crate::errors::Chain;

/// The oauth2 client as followupd builds it: token endpoint always, authorization and device
/// endpoints when configured.
pub(crate) type OAuthClient =
    BasicClient<EndpointMaybeSet, EndpointMaybeSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Why no access token could be had. Every message names the section, what happened and what
/// to do; they are plain text (not a source chain) so a refusal can be remembered and repeated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("[{section}] no saved sign-in in {file} ({reason}); sign in with `followupd oauth2 login {server}`")]
    NotSignedIn {
        section: String,
        server: &'static str,
        file: String,
        reason: String,
    },
    #[error("{0}")]
    Refused(Box<Refused>),
    #[error("[{section}] cannot reach the token endpoint {url}: {reason}; will try again")]
    Unreachable {
        section: String,
        url: String,
        reason: String,
    },
    #[error("[{section}] the token endpoint {url} answered something that is not an OAuth2 token response ({reason})")]
    BadAnswer {
        section: String,
        url: String,
        reason: String,
    },
    #[error("[{section}] sign-in file {file}: {reason}")]
    File {
        section: String,
        file: String,
        reason: String,
    },
    #[error("[{section}] cannot sign the client assertion: {reason}")]
    Assertion { section: String, reason: String },
    /// The client secret or key file cannot be used (its message names file, line and fix).
    #[error("{0}")]
    Credential(String),
}

/// The provider said no (RFC 6749 5.2), and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[{section}] the provider at {url} refused {what}: {error}{}; {fix}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct Refused {
    pub section: String,
    pub url: String,
    pub what: &'static str,
    /// RFC 6749 5.2 `error`: invalid_grant, invalid_client, …
    pub error: String,
    /// RFC 6749 5.2 `error_description`, as the provider wrote it.
    pub description: Option<String>,
    pub fix: String,
}

/// An access token and how long it may be used. The secret never appears in `{:?}`.
#[derive(Clone)]
pub struct AccessToken {
    secret: String,
    /// After this, the token is refreshed before use and connections opened with it are
    /// renewed (providers such as Exchange Online end sessions when their token expires).
    pub usable_until: Instant,
}

impl AccessToken {
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"<hidden>")
            .field("usable_until", &self.usable_until)
            .finish()
    }
}

/// One sign-in, shared by the servers that use its section.
pub struct TokenSource {
    account: Arc<OAuth2Config>,
    /// Which server a person signs in for with `followupd oauth2 login SERVER`.
    server: &'static str,
    http: Http,
    state: tokio::sync::Mutex<Cached>,
}

#[derive(Default)]
struct Cached {
    current: Option<AccessToken>,
    /// The refresh token the provider refused (SHA-256) and the refusal, repeated without
    /// asking again until the saved sign-in changes.
    refused: Option<([u8; 32], TokenError)>,
}

impl TokenSource {
    pub fn new(account: Arc<OAuth2Config>, server: &'static str, tls: Arc<ClientConfig>) -> Self {
        TokenSource {
            http: http_agent(&account, tls),
            account,
            server,
            state: tokio::sync::Mutex::new(Cached::default()),
        }
    }

    /// A token good for a while yet: the cached one, or a new one from the provider.
    pub async fn token(&self) -> Result<AccessToken, TokenError> {
        let mut state = self.state.lock().await;
        if let Some(token) = &state.current {
            if Instant::now() < token.usable_until {
                return Ok(token.clone());
            }
        }
        self.exchange(&mut state).await
    }

    /// A server refused `used`: forget it and ask the provider for a new one, once.
    pub async fn renewed(&self, used: &AccessToken) -> Result<AccessToken, TokenError> {
        let mut state = self.state.lock().await;
        let still_current = state
            .current
            .as_ref()
            .is_some_and(|t| t.secret == used.secret);
        if !still_current {
            // Someone else renewed it meanwhile.
            if let Some(token) = &state.current {
                if Instant::now() < token.usable_until {
                    return Ok(token.clone());
                }
            }
        }
        state.current = None;
        self.exchange(&mut state).await
    }

    async fn exchange(&self, state: &mut Cached) -> Result<AccessToken, TokenError> {
        let account = self.account.clone();
        let http = self.http.clone();
        let server = self.server;
        let refused = state.refused.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            exchange_blocking(&account, server, &http, refused.as_ref())
        })
        .await
        .unwrap_or_else(|e| {
            Err(Exchanged::Failed(TokenError::Unreachable {
                section: self.account.section.clone(),
                url: self.account.token_url.clone(),
                reason: format!("the exchange stopped unexpectedly: {e}"),
            }))
        });
        match outcome {
            Ok(token) => {
                state.refused = None;
                state.current = Some(token.clone());
                Ok(token)
            }
            Err(Exchanged::Remembered(e)) => Err(e),
            Err(Exchanged::Failed(e)) => {
                tracing::error!(account = %self.account.section, error = %e, "OAuth2 token refresh failed");
                Err(e)
            }
            Err(Exchanged::Refused(digest, e)) => {
                tracing::error!(account = %self.account.section, error = %e, "OAuth2 token refresh failed");
                state.refused = Some((digest, e.clone()));
                Err(e)
            }
        }
    }
}

enum Exchanged {
    Failed(TokenError),
    /// The provider refused this refresh token: remember it.
    Refused([u8; 32], TokenError),
    /// Already refused before; nothing was asked.
    Remembered(TokenError),
}

fn exchange_blocking(
    account: &OAuth2Config,
    server: &'static str,
    http: &Http,
    refused: Option<&([u8; 32], TokenError)>,
) -> Result<AccessToken, Exchanged> {
    let client = client(account).map_err(Exchanged::Failed)?;
    let started = Instant::now();
    let scopes = account.scopes.iter().map(|s| Scope::new(s.clone()));
    match account.grant {
        Grant::ClientCredentials => {
            let mut request = client.exchange_client_credentials().add_scopes(scopes);
            if let Some(jwt) = assertion(account).map_err(Exchanged::Failed)? {
                request = request
                    .add_extra_param("client_assertion_type", assertion::ASSERTION_TYPE)
                    .add_extra_param("client_assertion", jwt);
            }
            let response = request
                .request(http)
                .map_err(|e| Exchanged::Failed(token_error(account, "the app's credentials", e)))?;
            tracing::info!(account = %account.section, expires_in = %response.expires_in().map_or_else(|| "unknown".to_string(), |d| humantime::format_duration(d).to_string()), "OAuth2 access token obtained (client credentials)");
            Ok(access_token(
                response.access_token().secret(),
                response.expires_in(),
                started,
            ))
        }
        Grant::RefreshToken => {
            let file = account.token_file.display().to_string();
            let file_error = |reason: String| {
                Exchanged::Failed(TokenError::File {
                    section: account.section.clone(),
                    file: file.clone(),
                    reason,
                })
            };
            let _lock = saved::lock(&account.token_file)
                .map_err(|e| file_error(format!("cannot lock: {e}")))?;
            let saved = match saved::read(&account.token_file) {
                Ok(Some(saved)) => saved,
                Ok(None) => {
                    return Err(Exchanged::Failed(not_signed_in(account, server, "missing")))
                }
                Err(e) => return Err(file_error(format!("cannot read: {e}"))),
            };
            if saved.client_id != account.client_id || saved.token_url != account.token_url {
                return Err(Exchanged::Failed(not_signed_in(
                    account,
                    server,
                    &format!(
                        "it is for client {} at {}, not the configured one",
                        saved.client_id, saved.token_url
                    ),
                )));
            }
            let digest: [u8; 32] = sha2::Sha256::digest(saved.refresh_token.as_bytes()).into();
            if let Some((refused_digest, error)) = refused {
                if *refused_digest == digest {
                    return Err(Exchanged::Remembered(error.clone()));
                }
            }
            let refresh = RefreshToken::new(saved.refresh_token.clone());
            let mut request = client.exchange_refresh_token(&refresh).add_scopes(scopes);
            if let Some(jwt) = assertion(account).map_err(Exchanged::Failed)? {
                request = request
                    .add_extra_param("client_assertion_type", assertion::ASSERTION_TYPE)
                    .add_extra_param("client_assertion", jwt);
            }
            let response = match request.request(http) {
                Ok(response) => response,
                Err(e) => {
                    let error = token_error(account, "the saved refresh token", e);
                    return Err(match &error {
                        TokenError::Refused(r) if r.error == "invalid_grant" => {
                            Exchanged::Refused(digest, error)
                        }
                        _ => Exchanged::Failed(error),
                    });
                }
            };
            if let Some(new) = response.refresh_token() {
                if new.secret() != &saved.refresh_token {
                    let rotated = saved::SavedSignIn {
                        refresh_token: new.secret().clone(),
                        rotated_at: Some(crate::clock::stamp(chrono::Utc::now())),
                        ..saved
                    };
                    saved::write(&account.token_file, &rotated).map_err(|e| {
                        file_error(format!("cannot keep the rotated refresh token: {e}"))
                    })?;
                    tracing::debug!(account = %account.section, "refresh token rotated by the provider and saved");
                }
            }
            tracing::info!(account = %account.section, expires_in = %response.expires_in().map_or_else(|| "unknown".to_string(), |d| humantime::format_duration(d).to_string()), "OAuth2 access token refreshed");
            Ok(access_token(
                response.access_token().secret(),
                response.expires_in(),
                started,
            ))
        }
    }
}

fn not_signed_in(account: &OAuth2Config, server: &'static str, reason: &str) -> TokenError {
    TokenError::NotSignedIn {
        section: account.section.clone(),
        server,
        file: account.token_file.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Tokens are used until shortly before they expire: five minutes, or a quarter of their life
/// when that is shorter (a provider may hand out short ones).
fn access_token(secret: &str, expires_in: Option<Duration>, obtained: Instant) -> AccessToken {
    let life = expires_in.unwrap_or(Duration::from_secs(3600));
    let margin = (life / 4).min(Duration::from_secs(300));
    AccessToken {
        secret: secret.to_string(),
        usable_until: obtained + (life - margin),
    }
}

/// The oauth2 client for an account: how it authenticates, and its endpoints.
pub(crate) fn client(account: &OAuth2Config) -> Result<OAuthClient, TokenError> {
    let bad_url = |what: &str, e: oauth2::url::ParseError| TokenError::BadAnswer {
        section: account.section.clone(),
        url: what.to_string(),
        reason: format!("not a URL: {e}"),
    };
    let token_url =
        TokenUrl::new(account.token_url.clone()).map_err(|e| bad_url(&account.token_url, e))?;
    let device = account
        .device_url
        .as_ref()
        .map(|u| oauth2::DeviceAuthorizationUrl::new(u.clone()).map_err(|e| bad_url(u, e)))
        .transpose()?;
    let authorize = account
        .authorize_url
        .as_ref()
        .map(|u| oauth2::AuthUrl::new(u.clone()).map_err(|e| bad_url(u, e)))
        .transpose()?;
    // Client id and secret in the form body (client_secret_post): every provider takes it,
    // and a public client sends its id the same way.
    let mut client = BasicClient::new(ClientId::new(account.client_id.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_auth_uri_option(authorize)
        .set_device_authorization_url_option(device)
        .set_token_uri(token_url);
    if let ClientAuth::Secret(file) = &account.client_auth {
        let secret = file
            .read_line(&account.section)
            .map_err(|e| TokenError::Credential(e.to_string()))?;
        client = client.set_client_secret(ClientSecret::new(secret));
    }
    Ok(client)
}

/// The RFC 7523 `client_assertion` for a client with a certificate (sent with
/// `client_assertion_type` = [`assertion::ASSERTION_TYPE`]).
pub(crate) fn assertion(account: &OAuth2Config) -> Result<Option<String>, TokenError> {
    let ClientAuth::Certificate(cert) = &account.client_auth else {
        return Ok(None);
    };
    let key = cert
        .key
        .read_rsa_key(&account.section)
        .map_err(|e| TokenError::Credential(e.to_string()))?;
    let now = chrono::Utc::now().timestamp();
    let jwt = assertion::client_assertion(
        &key,
        &cert.thumbprint,
        &account.client_id,
        &account.token_url,
        now,
    )
    .map_err(|reason| TokenError::Assertion {
        section: account.section.clone(),
        reason,
    })?;
    Ok(Some(jwt))
}

/// What the provider's refusal means, in the admin's terms.
pub(crate) fn token_error<RE: std::error::Error + 'static>(
    account: &OAuth2Config,
    what: &'static str,
    e: RequestTokenError<RE, BasicErrorResponse>,
) -> TokenError {
    let section = account.section.clone();
    let url = account.token_url.clone();
    match e {
        RequestTokenError::ServerResponse(response) => {
            let error = response.error().to_string();
            let fix = fix_for(&error, account);
            TokenError::Refused(Box::new(Refused {
                section,
                url,
                what,
                error,
                description: response.error_description().cloned(),
                fix,
            }))
        }
        RequestTokenError::Request(e) => TokenError::Unreachable {
            section,
            url,
            reason: Chain(&e).to_string(),
        },
        RequestTokenError::Parse(e, body) => TokenError::BadAnswer {
            section,
            url,
            reason: format!(
                "{e}; it began: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(120)
                    .collect::<String>()
            ),
        },
        RequestTokenError::Other(reason) => TokenError::BadAnswer {
            section,
            url,
            reason,
        },
    }
}

/// The fix for each RFC 6749 5.2 error code.
pub(crate) fn fix_for(error: &str, account: &OAuth2Config) -> String {
    let server = if account.section.starts_with("smtp") {
        "smtp"
    } else {
        "imap"
    };
    match error {
        "invalid_grant" => match account.grant {
            Grant::RefreshToken => format!(
                "the sign-in has expired or was revoked: sign in again with `followupd oauth2 \
                 login {server}` (intake keeps retrying and catches up afterwards)"
            ),
            Grant::ClientCredentials => {
                "check that the app's permissions were granted admin consent".into()
            }
        },
        "invalid_client" | "unauthorized_client" => format!(
            "check [{}] client_id and the client secret or certificate, and that the app \
             registration allows the {} grant",
            account.section,
            account.grant.as_str()
        ),
        "invalid_scope" => format!("check [{}] scope", account.section),
        "access_denied" => "the sign-in was declined; try again and accept".into(),
        "expired_token" => "the code expired before anyone signed in; run the login again".into(),
        _ => "see the provider's description above".into(),
    }
}

fn http_agent(account: &OAuth2Config, tls: Arc<ClientConfig>) -> Http {
    Http(
        oauth2::ureq::AgentBuilder::new()
            .tls_config(tls)
            .timeout(account.timeout)
            // A token endpoint that redirects is a misconfiguration or an attack (the oauth2
            // crate asks for this, to prevent SSRF): never follow it with credentials.
            .redirects(0)
            .build(),
    )
}

/// The HTTP client under oauth2. oauth2 5.0's own ureq glue turns every 4xx answer into a
/// transport error and drops its body, which is where the provider's RFC 6749 reason is
/// (`invalid_grant`, "AADSTS70008: … revoked"): this one hands every HTTP answer to oauth2.
#[derive(Clone)]
pub(crate) struct Http(oauth2::ureq::Agent);

/// The answers of token endpoints are small; a larger one is not a token response.
const MAX_ANSWER: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct HttpError(String);

impl oauth2::SyncHttpClient for Http {
    type Error = HttpError;

    fn call(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, HttpError> {
        use std::io::Read as _;
        let uri = request.uri().to_string();
        let post = request.method() == oauth2::http::Method::POST;
        let mut req = if post {
            self.0.post(&uri)
        } else {
            self.0.get(&uri)
        };
        for (name, value) in request.headers() {
            let value = value
                .to_str()
                .map_err(|_| HttpError(format!("header {name} is not text")))?;
            req = req.set(name.as_str(), value);
        }
        let sent = if post {
            req.send_bytes(request.body())
        } else {
            req.call()
        };
        let response = match sent {
            Ok(response) | Err(oauth2::ureq::Error::Status(_, response)) => response,
            Err(e) => return Err(HttpError(e.to_string())),
        };
        let mut answer = oauth2::http::Response::builder().status(response.status());
        if let Some(content_type) = response.header("content-type") {
            answer = answer.header("content-type", content_type);
        }
        let mut body = Vec::new();
        response
            .into_reader()
            .take(MAX_ANSWER)
            .read_to_end(&mut body)
            .map_err(|e| HttpError(format!("reading the answer: {e}")))?;
        answer.body(body).map_err(|e| HttpError(e.to_string()))
    }
}

/// How to log in to one server, ready to use.
#[derive(Clone)]
pub enum Login {
    /// No authentication (an SMTP relay that trusts our address).
    None,
    /// The password is read when a connection needs it (see [`PasswordSource`]).
    Password {
        user: String,
        password: Option<PasswordSource>,
    },
    Bearer {
        user: String,
        mechanism: Mechanism,
        tokens: Arc<TokenSource>,
    },
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Login::None => f.write_str("None"),
            Login::Password { user, .. } => write!(f, "Password({user})"),
            Login::Bearer {
                user, mechanism, ..
            } => write!(f, "Bearer({user}, {})", mechanism.as_str()),
        }
    }
}

/// The logins for IMAP and SMTP, with one [`TokenSource`] per `[oauth2]` section so servers
/// sharing a sign-in share its tokens (and never both spend a rotating refresh token).
pub struct Logins {
    pub imap: Login,
    pub smtp: Login,
}

impl Logins {
    pub fn new(config: &Config, tls: &Arc<ClientConfig>) -> Logins {
        let mut sources: Vec<Arc<TokenSource>> = Vec::new();
        let mut login = |endpoint: &crate::config::Endpoint, server: &'static str| -> Login {
            match (&endpoint.auth, &endpoint.username, &endpoint.password) {
                (Auth::OAuth2 { mechanism, account }, Some(user), _) => {
                    let tokens = match sources.iter().find(|s| Arc::ptr_eq(&s.account, account)) {
                        Some(shared) => shared.clone(),
                        None => {
                            let source =
                                Arc::new(TokenSource::new(account.clone(), server, tls.clone()));
                            sources.push(source.clone());
                            source
                        }
                    };
                    Login::Bearer {
                        user: user.clone(),
                        mechanism: *mechanism,
                        tokens,
                    }
                }
                (Auth::Password, Some(user), password) => Login::Password {
                    user: user.clone(),
                    password: password.clone(),
                },
                _ => Login::None,
            }
        };
        Logins {
            imap: login(&config.imap.endpoint, "imap"),
            smtp: login(&config.smtp.endpoint, "smtp"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_used_until_shortly_before_they_expire() {
        let now = Instant::now();
        let hour = access_token("t", Some(Duration::from_secs(3600)), now);
        assert_eq!(hour.usable_until - now, Duration::from_secs(3300));
        let short = access_token("t", Some(Duration::from_secs(8)), now);
        assert_eq!(short.usable_until - now, Duration::from_secs(6));
        assert!(!format!("{hour:?}").contains("\"t\""));
    }
}
