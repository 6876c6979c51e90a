//! `followupd check`: an admin's typo or a broken template is reported with file, line and
//! reason, before the daemon ever runs.

use std::path::Path;
use std::process::Command;

fn check(config: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_followupd"))
        .arg("--config")
        .arg(config)
        .arg("check")
        .output()
        .expect("run followupd check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write_config(dir: &Path, templates: &Path, extra_imap: &str) -> std::path::PathBuf {
    let path = dir.join("followupd.toml");
    std::fs::write(
        &path,
        format!(
            r#"[imap]
host = "127.0.0.1"
tls = "none"
username = "support@example.test"
{extra_imap}
[smtp]
host = "127.0.0.1"
tls = "none"

[support]
address = "support@example.test"
name = "Example Support"

[database]
path = "state/followupd.db"

[templates]
dir = "{}"
"#,
            templates.display()
        ),
    )
    .expect("write config");
    path
}

fn shipped_templates() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
}

#[test]
fn check_passes_on_a_good_config_and_the_shipped_templates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &shipped_templates(), "");
    let (ok, text) = check(&config);
    assert!(ok, "{text}");
    assert!(text.contains("templates"), "{text}");
}

#[test]
fn check_names_file_line_and_key_of_a_typo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &shipped_templates(),
        "poll_intervall = \"30s\"\n",
    );
    let (ok, text) = check(&config);
    assert!(!ok, "a typo must fail check");
    let expected = format!("{}:5:", config.display());
    assert!(text.contains(&expected), "wanted {expected} in: {text}");
    assert!(text.contains("poll_intervall"), "{text}");
}

/// Copies a directory tree (the shipped templates: kinds, partials, staff/).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy");
        }
    }
}

#[test]
fn check_reports_a_broken_template_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let templates = dir.path().join("templates");
    copy_tree(&shipped_templates(), &templates);
    let text_template = templates.join("acknowledgement.text.hbs");
    let original = std::fs::read_to_string(&text_template).expect("read");
    std::fs::write(
        &text_template,
        format!("{original}\nYour engineer is {{{{engineer.name}}}}.\n"),
    )
    .expect("write");
    let config = write_config(dir.path(), &templates, "");
    let (ok, text) = check(&config);
    assert!(!ok, "an unknown variable must fail check");
    let line = original.lines().count() + 2;
    let expected =
        format!("acknowledgement.text.hbs line {line}: unknown variable `engineer.name`");
    assert!(text.contains(&expected), "wanted `{expected}` in: {text}");
}
