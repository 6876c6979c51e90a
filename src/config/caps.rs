//! `[send_caps]`: how much automatic mail anyone gets, counted by mailbox.

use super::*;

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

pub(super) const fn window(max: u32, secs: u64) -> CapWindow {
    CapWindow {
        max,
        within: Duration::from_secs(secs),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSendCaps {
    pub(super) windows: Option<Spanned<Vec<RawCapWindow>>>,
    pub(super) domain_windows: Option<Spanned<Vec<RawCapWindow>>>,
    pub(super) global_windows: Option<Spanned<Vec<RawCapWindow>>>,
    pub(super) answer_windows: Option<Spanned<Vec<RawCapWindow>>>,
    pub(super) unverified_windows: Option<Spanned<Vec<RawCapWindow>>>,
    pub(super) subaddress_separators: Option<Spanned<Vec<String>>>,
    pub(super) dotless_domains: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCapWindow {
    pub(super) max: u32,
    #[serde(deserialize_with = "duration")]
    pub(super) within: Duration,
}

impl Validator<'_> {
    pub(super) fn send_caps(&self, raw: RawSendCaps) -> Result<SendCaps, ConfigError> {
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

    pub(super) fn cap_windows(
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
}
