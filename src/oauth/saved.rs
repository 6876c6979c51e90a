//! The saved sign-in: the refresh token a person gave followupd, in the state directory.
//!
//! The file is JSON, mode 0600, replaced atomically (written beside, then renamed), so a crash
//! never leaves half a token. It also names the client and token endpoint it belongs to, so a
//! changed `[oauth2]` section is noticed instead of sending one provider's token to another.
//! Every exchange happens under an exclusive lock on `FILE.lock`: the daemon and a `check
//! --connect` in another process never both spend the same refresh token (with providers that
//! rotate it, the loser would be locked out).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
pub struct SavedSignIn {
    pub refresh_token: String,
    pub client_id: String,
    pub token_url: String,
    /// The scopes granted, as the provider listed them (empty when it did not say).
    #[serde(default)]
    pub scope: String,
    /// When the person signed in (RFC 3339).
    pub signed_in_at: String,
    /// When the refresh token was last replaced by the provider (RFC 3339).
    #[serde(default)]
    pub rotated_at: Option<String>,
}

impl fmt::Debug for SavedSignIn {
    // Hand-written so the refresh token never reaches a log line through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SavedSignIn")
            .field("refresh_token", &"<hidden>")
            .field("client_id", &self.client_id)
            .field("token_url", &self.token_url)
            .field("scope", &self.scope)
            .field("signed_in_at", &self.signed_in_at)
            .field("rotated_at", &self.rotated_at)
            .finish()
    }
}

/// The saved sign-in, or None when there is no file.
pub fn read(path: &Path) -> std::io::Result<Option<SavedSignIn>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Writes the sign-in with mode 0600, atomically.
pub fn write(path: &Path, saved: &SavedSignIn) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = sibling(path, ".new");
    let json = serde_json::to_vec_pretty(saved).map_err(std::io::Error::other)?;
    let _ = std::fs::remove_file(&tmp);
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&json)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename is durable only once the directory is.
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// Takes the exclusive lock that guards every exchange of this sign-in (blocks until free).
pub fn lock(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(sibling(path, ".lock"))?;
    crate::files::make_private(&sibling(path, ".lock"))?;
    file.lock()?;
    Ok(file)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn sample(token: &str) -> SavedSignIn {
        SavedSignIn {
            refresh_token: token.into(),
            client_id: "app".into(),
            token_url: "https://login.example/token".into(),
            scope: "mail".into(),
            signed_in_at: "2026-12-02T09:00:00Z".into(),
            rotated_at: None,
        }
    }

    #[test]
    fn a_saved_sign_in_is_private_and_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/oauth2.token");
        assert!(read(&path).expect("read").is_none());
        write(&path, &sample("first")).expect("write");
        write(&path, &sample("second")).expect("rewrite");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            read(&path).expect("read").expect("saved").refresh_token,
            "second"
        );
        assert!(!format!("{:?}", sample("secret-value")).contains("secret-value"));
    }
}
