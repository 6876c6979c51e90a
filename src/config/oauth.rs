//! `auth = "oauth2"` and the `[oauth2]` sections: how followupd signs in where passwords are
//! switched off (Microsoft 365, Google).
//!
//! One `[oauth2]` section serves every server with `auth = "oauth2"`; a server with its own
//! `[imap.oauth2]` or `[smtp.oauth2]` uses that one instead (a different account or app). Each
//! section is one sign-in: one refresh token file, one cached access token, shared by the
//! servers that use it. Presets fill in the provider's endpoints and scopes, so a Microsoft 365
//! setup is `provider`, `tenant` and `client_id`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use sha2::Digest as _;
use toml::Spanned;

use super::{duration, ConfigError, Line, Validator};

/// How a server is logged in to.
#[derive(Debug, Clone)]
pub enum Auth {
    /// IMAP LOGIN, SMTP AUTH PLAIN/LOGIN with `password_file` / `password_env`.
    Password,
    /// SASL XOAUTH2 or OAUTHBEARER with an access token from `account`.
    OAuth2 {
        mechanism: Mechanism,
        account: Arc<OAuth2Config>,
    },
}

/// The SASL mechanism that carries the access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// Google's and Microsoft's `XOAUTH2` (what both document for IMAP and SMTP).
    Xoauth2,
    /// RFC 7628 `OAUTHBEARER`.
    Oauthbearer,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Xoauth2 => "XOAUTH2",
            Mechanism::Oauthbearer => "OAUTHBEARER",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Microsoft365,
    Google,
    Custom,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Microsoft365 => "microsoft365",
            Provider::Google => "google",
            Provider::Custom => "custom",
        }
    }
}

/// Where access tokens come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// A person signed in once (`followupd oauth2 login`); the refresh token they gave is kept
    /// in `token_file` and exchanged for access tokens.
    RefreshToken,
    /// The app signs in as itself (Microsoft 365 app-only access to a shared mailbox).
    ClientCredentials,
}

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::RefreshToken => "refresh_token",
            Grant::ClientCredentials => "client_credentials",
        }
    }
}

/// How the client proves itself to the token endpoint. Secrets are files read when a token is
/// needed, never at load time (as passwords are: staff run the CLI without them).
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// A public client (device sign-in without a secret, as Entra ID allows).
    None,
    /// `client_secret_file`.
    Secret(SecretFile),
    /// An RFC 7523 assertion signed with the certificate's key (Entra ID certificate
    /// credentials).
    Certificate(ClientCertificate),
}

#[derive(Debug, Clone)]
pub struct ClientCertificate {
    pub certificate: PathBuf,
    /// Base64url SHA-256 of the certificate's DER: the `x5t#S256` the provider looks it up by.
    pub thumbprint: String,
    /// `client_key_file`: the certificate's RSA key (PEM).
    pub key: SecretFile,
}

/// A file holding a secret, and the line of the configuration that names it (for errors). A
/// relative name is looked up in systemd's `$CREDENTIALS_DIRECTORY` first (`LoadCredential=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFile {
    pub path: PathBuf,
    /// The key that named it: `client_secret_file`, `client_key_file`.
    pub key: &'static str,
    pub at: Line,
    /// Its bytes, read already (see [`crate::config::Config::read_secrets_now`]).
    pub read: Option<super::servers::Secret>,
}

impl OAuth2Config {
    /// Reads the client's secret or key now, if it can (see
    /// [`crate::config::Config::read_secrets_now`]).
    pub fn read_secrets_now(&mut self) {
        let file = match &mut self.client_auth {
            ClientAuth::None => return,
            ClientAuth::Secret(file) => file,
            ClientAuth::Certificate(c) => &mut c.key,
        };
        // A file others may read stays named: using it refuses it, as before.
        if crate::files::check_private(&file.path).is_err() {
            return;
        }
        if let Ok(bytes) = std::fs::read(&file.path) {
            file.read = Some(super::servers::Secret(bytes));
        }
    }
}

impl SecretFile {
    fn bytes(&self, section: &str) -> Result<Vec<u8>, ConfigError> {
        if let Some(read) = &self.read {
            return Ok(read.0.clone());
        }
        let shown = self.path.display();
        crate::files::check_private(&self.path).map_err(|why| {
            self.at
                .error(format!("[{section}] {} `{shown}` {why}", self.key))
        })?;
        std::fs::read(&self.path).map_err(|e| {
            self.at.error(format!(
                "[{section}] cannot read {} `{shown}`: {e}",
                self.key
            ))
        })
    }

    /// The first line (a trailing newline is how editors save files, never part of a secret).
    pub fn read_line(&self, section: &str) -> Result<String, ConfigError> {
        let bytes = self.bytes(section)?;
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .next()
            .unwrap_or("")
            .to_string())
    }

    /// An RSA private key in PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
    pub fn read_rsa_key(&self, section: &str) -> Result<ring::signature::RsaKeyPair, ConfigError> {
        let bytes = self.bytes(section)?;
        let bad = |reason: String| {
            self.at.error(format!(
                "[{section}] {} `{}`: {reason}",
                self.key,
                self.path.display()
            ))
        };
        let pair = match PrivateKeyDer::from_pem_slice(&bytes) {
            Ok(PrivateKeyDer::Pkcs8(k)) => {
                ring::signature::RsaKeyPair::from_pkcs8(k.secret_pkcs8_der())
            }
            Ok(PrivateKeyDer::Pkcs1(k)) => {
                ring::signature::RsaKeyPair::from_der(k.secret_pkcs1_der())
            }
            Ok(_) => {
                return Err(bad(
                    "not an RSA key (certificate credentials are RSA)".into()
                ))
            }
            Err(e) => return Err(bad(format!("no PEM private key: {e}"))),
        };
        pair.map_err(|e| bad(format!("not a usable RSA key: {e}")))
    }
}

/// One sign-in: an `[oauth2]`, `[imap.oauth2]` or `[smtp.oauth2]` section, validated.
#[derive(Debug, Clone)]
pub struct OAuth2Config {
    /// The section it came from, for messages: `oauth2`, `imap.oauth2`, `smtp.oauth2`.
    pub section: String,
    pub provider: Provider,
    pub token_url: String,
    /// RFC 8628 device authorization endpoint (for `followupd oauth2 login`).
    pub device_url: Option<String>,
    /// Authorization endpoint (for `followupd oauth2 login --browser`).
    pub authorize_url: Option<String>,
    pub client_id: String,
    pub client_auth: ClientAuth,
    pub scopes: Vec<String>,
    pub grant: Grant,
    /// Where the refresh token is kept (mode 0600); unused with client_credentials.
    pub token_file: PathBuf,
    /// Bound on each request to the provider.
    pub timeout: Duration,
    /// Where the browser sign-in redirects to (a loopback URL registered with the provider).
    pub redirect_uri: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth2 {
    provider: Option<Spanned<String>>,
    tenant: Option<Spanned<String>>,
    token_url: Option<Spanned<String>>,
    device_url: Option<Spanned<String>>,
    authorize_url: Option<Spanned<String>>,
    client_id: Spanned<String>,
    client_secret_file: Option<Spanned<PathBuf>>,
    client_certificate_file: Option<Spanned<PathBuf>>,
    client_key_file: Option<Spanned<PathBuf>>,
    scope: Option<Spanned<String>>,
    grant: Option<Spanned<String>>,
    token_file: Option<Spanned<PathBuf>>,
    #[serde(default = "default_http_timeout", deserialize_with = "duration")]
    timeout: Duration,
    redirect_uri: Option<Spanned<String>>,
}

fn default_http_timeout() -> Duration {
    Duration::from_secs(30)
}

const MICROSOFT: &str = "https://login.microsoftonline.com";
/// Delegated access to one mailbox for IMAP and SMTP; offline_access brings the refresh token.
const MICROSOFT_DELEGATED: &str = "https://outlook.office.com/IMAP.AccessAsUser.All \
                                   https://outlook.office.com/SMTP.Send offline_access";
/// App-only access: the permissions granted to the app (IMAP.AccessAsApp, SMTP.SendAsApp).
const MICROSOFT_APP_ONLY: &str = "https://outlook.office365.com/.default";
const GOOGLE_TOKEN: &str = "https://oauth2.googleapis.com/token";
const GOOGLE_DEVICE: &str = "https://oauth2.googleapis.com/device/code";
const GOOGLE_AUTHORIZE: &str = "https://accounts.google.com/o/oauth2/v2/auth";
const GOOGLE_MAIL: &str = "https://mail.google.com/";

impl Validator<'_> {
    /// `section` is `oauth2`, `imap.oauth2` or `smtp.oauth2`; `token_file` the default file.
    pub(super) fn oauth2(
        &self,
        section: &str,
        raw: RawOAuth2,
        default_token_file: PathBuf,
    ) -> Result<OAuth2Config, ConfigError> {
        let provider = match raw.provider.as_ref().map(|p| p.get_ref().as_str()) {
            None | Some("custom") => Provider::Custom,
            Some("microsoft365") => Provider::Microsoft365,
            Some("google") => Provider::Google,
            Some(other) => {
                let span = raw.provider.as_ref().map_or(0..0, |p| p.span());
                return self.err(
                    span,
                    format!(
                        "[{section}] provider = \"{other}\" is not one of \"microsoft365\", \
                         \"google\", \"custom\""
                    ),
                );
            }
        };
        let grant = match raw.grant.as_ref().map(|g| g.get_ref().as_str()) {
            None | Some("refresh_token") => Grant::RefreshToken,
            Some("client_credentials") => Grant::ClientCredentials,
            Some(other) => {
                let span = raw.grant.as_ref().map_or(0..0, |g| g.span());
                return self.err(
                    span,
                    format!(
                        "[{section}] grant = \"{other}\" is not one of \"refresh_token\", \
                         \"client_credentials\""
                    ),
                );
            }
        };
        let tenant = raw.tenant.as_ref().map(|t| t.get_ref().trim().to_string());
        if let (Some(t), false) = (&raw.tenant, provider == Provider::Microsoft365) {
            return self.err(
                t.span(),
                format!("[{section}] tenant is only used with provider = \"microsoft365\""),
            );
        }
        let (token_url, device_url, authorize_url, scope) = match provider {
            Provider::Microsoft365 => {
                let tenant = tenant.unwrap_or_else(|| "organizations".into());
                if grant == Grant::ClientCredentials
                    && matches!(tenant.as_str(), "organizations" | "common" | "consumers")
                {
                    let span = raw.tenant.as_ref().map_or(0..0, |t| t.span());
                    return self.err(
                        span,
                        format!(
                            "[{section}] grant = \"client_credentials\" needs tenant = your \
                             directory's ID or domain (like \"contoso.onmicrosoft.com\"): app-only \
                             tokens are issued by one tenant"
                        ),
                    );
                }
                let base = format!("{MICROSOFT}/{tenant}/oauth2/v2.0");
                let scope = match grant {
                    Grant::RefreshToken => MICROSOFT_DELEGATED,
                    Grant::ClientCredentials => MICROSOFT_APP_ONLY,
                };
                (
                    Some(format!("{base}/token")),
                    Some(format!("{base}/devicecode")),
                    Some(format!("{base}/authorize")),
                    scope.to_string(),
                )
            }
            Provider::Google => {
                if grant == Grant::ClientCredentials {
                    let span = raw.grant.as_ref().map_or(0..0, |g| g.span());
                    return self.err(
                        span,
                        format!(
                            "[{section}] Google has no client_credentials grant for Gmail; use \
                             grant = \"refresh_token\" and `followupd oauth2 login --browser`"
                        ),
                    );
                }
                (
                    Some(GOOGLE_TOKEN.to_string()),
                    Some(GOOGLE_DEVICE.to_string()),
                    Some(GOOGLE_AUTHORIZE.to_string()),
                    GOOGLE_MAIL.to_string(),
                )
            }
            Provider::Custom => (None, None, None, String::new()),
        };
        let url = |given: &Option<Spanned<String>>,
                   preset: Option<String>,
                   key: &str|
         -> Result<Option<String>, ConfigError> {
            match given {
                Some(u) => {
                    let text = u.get_ref().trim();
                    if !(text.starts_with("https://") || is_loopback_http(text)) {
                        return self.err(
                            u.span(),
                            format!(
                                "[{section}] {key} `{text}` must be an https:// URL (plain http \
                                 only to loopback, for tests)"
                            ),
                        );
                    }
                    Ok(Some(text.to_string()))
                }
                None => Ok(preset),
            }
        };
        let Some(token_url) = url(&raw.token_url, token_url, "token_url")? else {
            return Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message: format!(
                    "[{section}] needs token_url, or provider = \"microsoft365\" or \"google\""
                ),
            });
        };
        let device_url = url(&raw.device_url, device_url, "device_url")?;
        let authorize_url = url(&raw.authorize_url, authorize_url, "authorize_url")?;
        let scopes = raw
            .scope
            .as_ref()
            .map_or(scope, |s| s.get_ref().clone())
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let client_id = raw.client_id.get_ref().trim().to_string();
        if client_id.is_empty() {
            return self.err(
                raw.client_id.span(),
                format!("[{section}] client_id is empty"),
            );
        }
        let client_auth = self.client_auth(section, &raw)?;
        if grant == Grant::ClientCredentials && matches!(client_auth, ClientAuth::None) {
            return Err(ConfigError::Whole {
                path: self.path.to_path_buf(),
                message: format!(
                    "[{section}] grant = \"client_credentials\" needs the app's own credential: \
                     client_secret_file, or client_certificate_file with client_key_file"
                ),
            });
        }
        let token_file = raw
            .token_file
            .as_ref()
            .map_or(default_token_file, |p| self.resolve(p.get_ref()));
        let redirect_uri = match &raw.redirect_uri {
            Some(u) if is_loopback_http(u.get_ref()) => u.get_ref().clone(),
            Some(u) => {
                return self.err(
                    u.span(),
                    format!(
                        "[{section}] redirect_uri must be a loopback URL like \
                         \"http://localhost\" (the browser sign-in never leaves your machine)"
                    ),
                )
            }
            None => "http://localhost".into(),
        };
        Ok(OAuth2Config {
            section: section.to_string(),
            provider,
            token_url,
            device_url,
            authorize_url,
            client_id,
            client_auth,
            scopes,
            grant,
            token_file,
            timeout: raw.timeout,
            redirect_uri,
        })
    }

    fn client_auth(&self, section: &str, raw: &RawOAuth2) -> Result<ClientAuth, ConfigError> {
        let secret_file = |file: &Spanned<PathBuf>, key: &'static str| SecretFile {
            path: self.resolve_credential(file.get_ref()),
            key,
            at: self.line(file.span()),
            read: None,
        };
        match (
            &raw.client_secret_file,
            &raw.client_certificate_file,
            &raw.client_key_file,
        ) {
            (Some(_), Some(cert), _) => self.err(
                cert.span(),
                format!("[{section}] set a client secret or a certificate, not both"),
            ),
            (Some(secret), None, None) => Ok(ClientAuth::Secret(secret_file(
                secret,
                "client_secret_file",
            ))),
            (None, Some(cert), Some(key)) => Ok(ClientAuth::Certificate(ClientCertificate {
                certificate: self.resolve(cert.get_ref()),
                thumbprint: self.thumbprint(section, cert)?,
                key: secret_file(key, "client_key_file"),
            })),
            (_, Some(cert), None) => self.err(
                cert.span(),
                format!("[{section}] client_certificate_file needs client_key_file"),
            ),
            (_, None, Some(key)) => self.err(
                key.span(),
                format!("[{section}] client_key_file needs client_certificate_file"),
            ),
            (None, None, None) => Ok(ClientAuth::None),
        }
    }

    /// The certificate is public: read now, so a wrong file is reported by `check`.
    fn thumbprint(&self, section: &str, cert: &Spanned<PathBuf>) -> Result<String, ConfigError> {
        let path = self.resolve(cert.get_ref());
        match CertificateDer::from_pem_file(&path) {
            Ok(der) => {
                Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(sha2::Sha256::digest(&der)))
            }
            Err(e) => self.err(
                cert.span(),
                format!(
                    "[{section}] client_certificate_file `{}` holds no PEM certificate: {e}",
                    path.display()
                ),
            ),
        }
    }
}

/// `http://127.0.0.1:8080/...`, `http://localhost`, `http://[::1]`: plain HTTP that never leaves
/// the machine.
pub fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    super::is_loopback(host)
}

#[cfg(test)]
mod tests {
    use super::is_loopback_http;

    #[test]
    fn only_loopback_may_use_plain_http() {
        assert!(is_loopback_http("http://127.0.0.1:8080/token"));
        assert!(is_loopback_http("http://localhost"));
        assert!(is_loopback_http("http://[::1]:9/x"));
        assert!(!is_loopback_http("http://login.example.com/token"));
        assert!(!is_loopback_http("https://127.0.0.1/token"));
        assert!(!is_loopback_http("http://127.0.0.1.evil.example/token"));
    }
}
