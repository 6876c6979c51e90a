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
    /// Loads the templates named by every kind of mail and the secret key (created on first
    /// use).
    pub fn load(config: Config, clock: Clock) -> Result<Deps, DepsError> {
        let templates = load_templates(&config)?;
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
}

/// The template set of every kind of mail the daemon sends.
pub fn load_templates(config: &Config) -> Result<Templates, TemplateError> {
    Templates::load(&config.templates, &MailKind::template_names())
}
