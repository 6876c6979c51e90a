//! followupd: keeps promises to customers when something has gone wrong.
//!
//! The modules follow one email's journey:
//! [`config`] → [`imap`] (intake) → [`mail`] (parse, classify) → [`thread`] (which incident) →
//! [`incident`] (the decision core: what the incident needs now) → [`apply`] (the one door:
//! effects written in one transaction) → [`outbox`] (queue, compose, send) → [`smtp`].
//! [`intake`] runs one IMAP batch through that journey; [`scheduler`] acts when time passes;
//! [`store`] is SQLite and nothing else; [`clock`] owns time and promises; [`templates`],
//! [`secret`] and [`deps`] stand beside them; [`daemon`] (three tasks) and [`cli`] are the
//! edges. [`probe`] drives intake on raw bytes without any server, for the fuzz target and the
//! fixture corpus.
//!
//! Imports only point one way: the edges (cli, daemon, probe) → intake, scheduler → apply →
//! outbox → deps → store → incident, thread → mail → config, templates, secret → clock,
//! digest, errors; the network edges [`imap`] and [`smtp`] → [`oauth`] (access tokens),
//! [`sasl`] → config, [`tls`]; [`journal`] writes the log lines under systemd.

pub(crate) mod apply;
pub mod cli;
pub(crate) mod clock;
pub mod config;
pub(crate) mod contain;
pub(crate) mod daemon;
pub(crate) mod deps;
pub(crate) mod digest;
pub(crate) mod errors;
pub(crate) mod files;
pub(crate) mod imap;
pub mod incident;
pub(crate) mod intake;
pub(crate) mod journal;
pub(crate) mod lang;
pub mod mail;
pub(crate) mod oauth;
pub(crate) mod outbox;
pub mod probe;
pub(crate) mod sasl;
pub(crate) mod scheduler;
pub(crate) mod secret;
pub(crate) mod smtp;
pub(crate) mod store;
pub(crate) mod templates;
pub(crate) mod thread;
pub(crate) mod tls;

#[cfg(test)]
mod layout {
    //! The shape the module overview above promises: imports point one way, and SQL lives in
    //! the store only.

    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// Each top-level module's non-test code, comments removed.
    fn sources() -> BTreeMap<String, String> {
        fn walk(dir: &Path, top: Option<&str>, out: &mut BTreeMap<String, String>) {
            for entry in std::fs::read_dir(dir).expect("src").flatten() {
                let path = entry.path();
                let name = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("")
                    .to_string();
                let module = top.map_or(name.clone(), str::to_string);
                if path.is_dir() {
                    walk(&path, Some(&module), out);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !matches!(module.as_str(), "main" | "lib")
                {
                    let text = std::fs::read_to_string(&path).expect("read");
                    let code = text.split("#[cfg(test)]").next().unwrap_or("");
                    let code: String = code
                        .lines()
                        .map(|l| l.split("//").next().unwrap_or(""))
                        .collect::<Vec<_>>()
                        .join("\n");
                    out.entry(module).or_default().push_str(&code);
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            None,
            &mut out,
        );
        out
    }

    #[test]
    fn no_module_imports_one_that_imports_it_back() {
        let sources = sources();
        let graph: BTreeMap<&str, BTreeSet<String>> = sources
            .iter()
            .map(|(module, code)| {
                let uses = code
                    .match_indices("crate::")
                    .map(|(at, _)| {
                        code[at + 7..]
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                            .collect::<String>()
                    })
                    .filter(|m| m != module && !m.is_empty())
                    .collect();
                (module.as_str(), uses)
            })
            .collect();
        fn reaches(
            graph: &BTreeMap<&str, BTreeSet<String>>,
            from: &str,
            to: &str,
            seen: &mut BTreeSet<String>,
        ) -> bool {
            graph.get(from).is_some_and(|next| {
                next.iter()
                    .any(|n| n == to || (seen.insert(n.clone()) && reaches(graph, n, to, seen)))
            })
        }
        for (module, uses) in &graph {
            for used in uses {
                assert!(
                    !reaches(&graph, used, module, &mut BTreeSet::new()),
                    "import cycle: {module} -> {used} -> … -> {module}"
                );
            }
        }
    }

    #[test]
    fn sql_lives_in_the_store_only() {
        let statement = |line: &str| {
            ["SELECT ", "INSERT INTO ", "DELETE FROM "]
                .iter()
                .any(|k| line.contains(k))
                || (line.contains("UPDATE ") && line.contains(" SET "))
        };
        for (module, code) in sources() {
            if module == "store" {
                continue;
            }
            if let Some(line) = code.lines().find(|l| statement(l)) {
                panic!("SQL outside the store, in src/{module}: {}", line.trim());
            }
        }
    }
}
