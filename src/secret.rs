//! The one place secrets and randomness come from.
//!
//! Incident tokens (`[FU-42-1f9c0a7b3e]` in subjects) and our outgoing Message-IDs carry an
//! HMAC over what they claim, so a stranger cannot make up a token or Message-ID that threads
//! their mail into somebody else's incident.

use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::digest::to_hex;

type HmacSha256 = Hmac<Sha256>;

/// Hex characters of MAC kept in tokens: 40 bits, far beyond guessing by email.
const MAC_HEX: usize = 10;
const KEY_LEN: usize = 32;
/// Length of the conversation header at the start of an Outlook Thread-Index (time + GUID):
/// every message of one conversation starts with the same 22 bytes.
pub const THREAD_INDEX_ROOT: usize = 22;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: cannot read the secret key")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: cannot create the secret key")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: the secret key must hold at least {KEY_LEN} bytes; it holds {len}")]
    TooShort { path: String, len: usize },
    #[error("the operating system could not provide random bytes: {0}")]
    Random(String),
    #[error("{path}: the secret key {why}")]
    Exposed { path: String, why: String },
}

#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// An incident token parsed out of a subject line, MAC already verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedToken {
    pub incident: i64,
}

impl Secret {
    /// Loads the key, creating it (mode 0600) on first run.
    pub fn load_or_create(path: &Path) -> Result<Secret, SecretError> {
        let shown = path.display().to_string();
        match std::fs::read(path) {
            Ok(key) if key.len() >= KEY_LEN => {
                // Whoever can read the key can forge our tokens and staff replies.
                crate::files::check_private(path).map_err(|why| SecretError::Exposed {
                    path: shown.clone(),
                    why,
                })?;
                Ok(Secret { key })
            }
            Ok(key) => Err(SecretError::TooShort {
                path: shown,
                len: key.len(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(source) => Err(SecretError::Read {
                path: shown,
                source,
            }),
        }
    }

    fn create(path: &Path) -> Result<Secret, SecretError> {
        let shown = path.display().to_string();
        let key = random_bytes(KEY_LEN)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| SecretError::Create {
                path: shown.clone(),
                source,
            })?;
        }
        let mut options = std::fs::OpenOptions::new();
        // create_new: two processes starting at once must not each write a different key.
        options.write(true).create_new(true);
        #[cfg(unix)]
        let mode = crate::files::new_file_mode(path.parent().unwrap_or(Path::new(".")), 0o040);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        match options.open(path) {
            Ok(mut file) => {
                // The umask (systemd's UMask=0077) would take the staff group's read bit away.
                crate::files::set_mode(path, mode)
                    .and_then(|()| file.write_all(&key))
                    .and_then(|()| file.sync_all())
                    .map_err(|source| SecretError::Create {
                        path: shown,
                        source,
                    })?;
                Ok(Secret { key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load_or_create(path),
            Err(source) => Err(SecretError::Create {
                path: shown,
                source,
            }),
        }
    }

    /// A key for tests and `followupd check`, where nothing is persisted.
    pub fn from_bytes(key: &[u8]) -> Secret {
        Secret { key: key.to_vec() }
    }

    fn mac(&self, purpose: &str, payload: &str) -> Vec<u8> {
        // new_from_slice accepts any key length for HMAC; the error arm is unreachable.
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.key) else {
            return Vec::new();
        };
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(payload.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn mac_hex(&self, purpose: &str, payload: &str) -> String {
        let mut hex = to_hex(&self.mac(purpose, payload));
        hex.truncate(MAC_HEX);
        hex
    }

    /// Our Outlook conversation id for an incident (the 22-byte head of a Thread-Index, hex),
    /// used when the customer's own mail carried none.
    pub fn thread_root(&self, incident: i64) -> String {
        let mut bytes = self.mac("thread-index", &incident.to_string());
        bytes.truncate(THREAD_INDEX_ROOT);
        to_hex(&bytes)
    }

    /// The token customers see in subjects: `FU-42-1f9c0a7b3e`.
    pub fn incident_token(&self, incident: i64) -> String {
        format!(
            "FU-{incident}-{}",
            self.mac_hex("incident", &incident.to_string())
        )
    }

    /// Every genuine incident token in a subject, in order, each incident once.
    pub fn find_tokens(&self, subject: &str) -> Vec<VerifiedToken> {
        let mut found: Vec<VerifiedToken> = Vec::new();
        for token in subject
            .match_indices("FU-")
            .filter_map(|(at, _)| subject.get(at..))
            .filter_map(|rest| self.verify_token_prefix(rest))
            .take(10)
        {
            if !found.iter().any(|t| t.incident == token.incident) {
                found.push(token);
            }
        }
        found
    }

    fn verify_token_prefix(&self, text: &str) -> Option<VerifiedToken> {
        let body = text.strip_prefix("FU-")?;
        let digits: String = body.chars().take_while(char::is_ascii_digit).collect();
        let incident: i64 = digits.parse().ok()?;
        let mac: String = body
            .get(digits.len()..)?
            .strip_prefix('-')?
            .chars()
            .take(MAC_HEX)
            .collect();
        let expected = self.mac_hex("incident", &digits);
        // Compare in constant time: the attacker controls `mac`.
        (mac.len() == MAC_HEX && constant_time_eq(mac.as_bytes(), expected.as_bytes()))
            .then_some(VerifiedToken { incident })
    }

    /// A fresh Message-ID for mail we send about `incident`, without angle brackets.
    pub fn message_id(&self, incident: i64, domain: &str) -> Result<String, SecretError> {
        let nonce = to_hex(&random_bytes(8)?);
        let payload = format!("{incident}.{nonce}");
        Ok(format!(
            "fu.{payload}.{}@{domain}",
            self.mac_hex("message-id", &payload)
        ))
    }

    /// A Message-ID for a notification to the staff address `recipient` about `incident`, sent
    /// on `day` (days since 1970): a reply that names it proves its sender received that
    /// notification, and when.
    pub fn staff_message_id(
        &self,
        incident: i64,
        recipient: &str,
        day: i64,
        domain: &str,
    ) -> Result<String, SecretError> {
        let nonce = to_hex(&random_bytes(8)?);
        let payload = format!("{incident}.d{day}.{nonce}");
        let mac = self.mac_hex(
            "staff-message-id",
            &format!("{payload}.{}", recipient.to_lowercase()),
        );
        Ok(format!("fu.s.{payload}.{mac}@{domain}"))
    }

    /// If `id` is a staff notification's Message-ID signed for one of `recipients`: the
    /// incident it is about and the day it was sent (None for one made before ids carried
    /// their day: too old to act on).
    pub fn verify_staff_message_id(&self, id: &str, recipients: &[&str]) -> Option<StaffId> {
        let local = id.split_once('@')?.0.strip_prefix("fu.s.")?;
        let (payload, mac) = local.rsplit_once('.')?;
        let mut parts = payload.split('.');
        let incident: i64 = parts.next()?.parse().ok()?;
        let day = match (parts.next(), parts.next()) {
            (Some(day), Some(_nonce)) => Some(day.strip_prefix('d')?.parse().ok()?),
            _ => None,
        };
        recipients.iter().find_map(|r| {
            let expected = self.mac_hex(
                "staff-message-id",
                &format!("{payload}.{}", r.to_lowercase()),
            );
            constant_time_eq(mac.as_bytes(), expected.as_bytes())
                .then_some(StaffId { incident, day })
        })
    }

    /// If `id` is a Message-ID we generated, the incident it belongs to.
    pub fn verify_message_id(&self, id: &str) -> Option<i64> {
        let local = id.split_once('@')?.0.strip_prefix("fu.")?;
        let (payload, mac) = local.rsplit_once('.')?;
        let (incident, _nonce) = payload.split_once('.')?;
        let expected = self.mac_hex("message-id", payload);
        if constant_time_eq(mac.as_bytes(), expected.as_bytes()) {
            incident.parse().ok()
        } else {
            None
        }
    }
}

/// What a verified staff notification Message-ID says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaffId {
    pub incident: i64,
    /// The day it was sent, in days since 1970.
    pub day: Option<i64>,
}

pub fn random_bytes(len: usize) -> Result<Vec<u8>, SecretError> {
    let mut buf = vec![0u8; len];
    getrandom::fill(&mut buf).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(buf)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::from_bytes(&[7u8; 32])
    }

    #[test]
    fn a_token_we_made_is_found_in_a_reply_subject() {
        let s = secret();
        let subject = format!("Re: AW: [{}] My order never arrived", s.incident_token(42));
        assert_eq!(
            s.find_tokens(&subject),
            vec![VerifiedToken { incident: 42 }]
        );
    }

    #[test]
    fn a_forged_or_edited_token_is_ignored() {
        let s = secret();
        let genuine = s.incident_token(42);
        let forged = genuine.replacen("FU-42-", "FU-43-", 1);
        assert!(s.find_tokens(&format!("[{forged}] hello")).is_empty());
        assert!(s.find_tokens("[FU-42-0000000000] hello").is_empty());
        assert!(s.find_tokens("FU-").is_empty());
        assert!(s.find_tokens("FU-99999999999999999999999-abc").is_empty());
    }

    #[test]
    fn our_message_ids_verify_and_forgeries_do_not() {
        let s = secret();
        let id = s.message_id(7, "example.test").expect("random");
        assert_eq!(s.verify_message_id(&id), Some(7));
        let forged = id.replacen("fu.7.", "fu.8.", 1);
        assert_eq!(s.verify_message_id(&forged), None);
        assert_eq!(s.verify_message_id("CAF00@mail.gmail.com"), None);
        let other_key = Secret::from_bytes(&[8u8; 32]);
        assert_eq!(other_key.verify_message_id(&id), None);
    }

    #[test]
    fn a_staff_message_id_proves_only_its_recipient_received_it() {
        let s = secret();
        let id = s
            .staff_message_id(7, "Anna@Support.example", 20_000, "example.test")
            .expect("random");
        let proven = Some(StaffId {
            incident: 7,
            day: Some(20_000),
        });
        assert_eq!(
            s.verify_staff_message_id(&id, &["anna@support.example"]),
            proven
        );
        assert_eq!(
            s.verify_staff_message_id(&id, &["bob@support.example", "anna@support.example"]),
            proven
        );
        let moved = id.replacen(".d20000.", ".d20500.", 1);
        assert_eq!(
            s.verify_staff_message_id(&moved, &["anna@support.example"]),
            None,
            "the day is signed"
        );
        assert_eq!(
            s.verify_staff_message_id(&id, &["mallory@evil.example"]),
            None
        );
        let forged = id.replacen("fu.s.7.", "fu.s.8.", 1);
        assert_eq!(
            s.verify_staff_message_id(&forged, &["anna@support.example"]),
            None
        );
        assert_eq!(s.verify_message_id(&id), None, "not a customer-mail id");
    }

    #[test]
    fn the_key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/secret.key");
        let first = Secret::load_or_create(&path).expect("create");
        let second = Secret::load_or_create(&path).expect("load");
        assert_eq!(first.incident_token(1), second.incident_token(1));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
