//! Everything a decision or a mail needs besides the database, built once and borrowed
//! everywhere: the configuration, the templates, the secret key and the clock.

use crate::clock::Clock;
use crate::config::Config;
use crate::incident::MailKind;
use crate::secret::{Secret, SecretError};
use crate::templates::{TemplateError, Templates};

#[derive(Debug)]
pub struct Deps {
    pub config: Config,
    /// Swapped with the rest by a reload of the running daemon (see [`Current`]).
    pub templates: Templates,
    pub secret: Secret,
    pub clock: Clock,
}

#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error(transparent)]
    Templates(#[from] TemplateError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl Deps {
    /// For tests: the shipped templates, `config`, a fixed secret and the system clock.
    #[cfg(test)]
    pub(crate) fn for_tests(config: Config) -> Deps {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        Deps {
            templates: Templates::load(&dir, &crate::incident::MailKind::template_names())
                .expect("templates"),
            config,
            secret: Secret::from_bytes(b"k"),
            clock: Clock::system(),
        }
    }

    /// What decisions may know: the rules of the configuration and the phrase book.
    pub fn policy(&self) -> crate::incident::policy::Policy<'_> {
        crate::incident::policy::Policy::new(
            &self.config,
            self.templates.phrases(),
            self.templates.intents(),
            self.templates.language_sets(),
        )
    }

    /// Loads the templates named by every kind of mail and the secret key (created on first
    /// use).
    pub fn load(config: Config, clock: Clock) -> Result<Deps, DepsError> {
        let templates = load_templates(&config)?;
        Deps::with_templates(config, clock, templates)
    }

    /// As [`Deps::load`], with a template set already loaded (the daemon's last good one when
    /// the configured set is broken).
    pub fn with_templates(
        config: Config,
        clock: Clock,
        templates: Templates,
    ) -> Result<Deps, DepsError> {
        let secret = Secret::load_or_create(&config.secret_file)?;
        Ok(Deps {
            config,
            templates,
            secret,
            clock,
        })
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The same secret key and clock with a reloaded configuration and template set.
    pub fn reloaded(&self, config: Config, templates: Templates) -> Deps {
        Deps {
            config,
            templates,
            secret: self.secret.clone(),
            clock: self.clock,
        }
    }
}

/// The dependencies in force in the running daemon, swapped whole by a reload. Each step takes
/// one snapshot ([`Current::get`]) and keeps it to its end, so no step ever mixes old and new
/// settings.
pub struct Current(std::sync::RwLock<std::sync::Arc<Deps>>);

impl Current {
    pub fn new(deps: std::sync::Arc<Deps>) -> Current {
        Current(std::sync::RwLock::new(deps))
    }

    pub fn get(&self) -> std::sync::Arc<Deps> {
        // A poisoned lock only means a panic while swapping an Arc: the value is whole.
        match self.0.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn swap(&self, deps: Deps) {
        let new = std::sync::Arc::new(deps);
        match self.0.write() {
            Ok(mut d) => *d = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

/// The template set of every kind of mail the daemon sends.
pub fn load_templates(config: &Config) -> Result<Templates, TemplateError> {
    Templates::load(&config.templates, &MailKind::template_names())
}

/// Where the daemon keeps a copy of the last template set that loaded and passed `check`: in
/// the state directory, beside the database.
pub fn last_good_dir(config: &Config) -> std::path::PathBuf {
    config
        .database
        .parent()
        .map_or_else(
            || std::path::PathBuf::from("."),
            std::path::Path::to_path_buf,
        )
        .join("templates.last-good")
}

/// Loads the configured templates and renders them with sample data.
pub fn load_checked(config: &Config) -> Result<Templates, TemplateError> {
    let templates = load_templates(config)?;
    templates.check(&config.support.name, &config.support.address)?;
    Ok(templates)
}

/// Keeps a copy of a template set that passed `check` in the state directory, replacing the
/// previous copy whole (a crash leaves the old copy or the new one, never a mix).
pub fn save_last_good(config: &Config, templates: &Templates) -> std::io::Result<()> {
    let target = last_good_dir(config);
    let staging = target.with_extension(format!("new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    crate::files::copy_tree(templates.dir(), &staging)?;
    // Only the daemon reads its copy: private like the rest of the state directory.
    crate::files::set_mode(
        &staging,
        if crate::files::shared_with_group(staging.parent().unwrap_or(&staging)) {
            0o750
        } else {
            0o700
        },
    )?;
    let old = target.with_extension(format!("old-{}", std::process::id()));
    if target.exists() {
        std::fs::rename(&target, &old)?;
    }
    std::fs::rename(&staging, &target)?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}
