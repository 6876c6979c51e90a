//! The Debian package and the systemd unit, checked as an admin's tools check them: the .deb
//! is built from the binary these tests run (`cargo deb --no-build`), unpacked and linted; the
//! unit is scored by `systemd-analyze security` and verified by `systemd-analyze verify`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The man pages and completions, generated from the CLI as the package build does (once per
/// test run: two tests need them and must not write them at the same time).
fn generate_assets() -> PathBuf {
    static ASSETS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ASSETS
        .get_or_init(|| {
            let assets = repo().join("target/assets");
            let (ok, out, err) = run(Command::new(env!("CARGO_BIN_EXE_followupd"))
                .arg("generate")
                .arg(&assets));
            assert!(ok, "{out}{err}");
            assets
        })
        .clone()
}

fn systemd_analyze() -> Option<()> {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        // Only where the tool does not exist at all (not a Debian 12 CI machine).
        crate::harness::cannot_run_here("systemd-analyze is not installed on this machine");
    }
    found.then_some(())
}

#[test]
fn the_unit_scores_2_0_or_lower_in_systemd_analyze_security() {
    if systemd_analyze().is_none() {
        return;
    }
    let unit = repo().join("systemd/followupd.service");
    let (ok, out, err) = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
        .arg(&unit));
    let score: f64 = out
        .lines()
        .chain(err.lines())
        .find_map(|l| {
            l.split("Overall exposure level for followupd.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no overall score in:\n{out}{err}"));
    assert!(
        ok && score <= 2.0,
        "exposure {score} (at most 2.0):\n{out}{err}"
    );
}

#[test]
fn the_unit_verifies_without_a_word_from_systemd_analyze() {
    if systemd_analyze().is_none() {
        return;
    }
    // The unit as installed, with the binary where this build put it, and the generated man
    // page where `Documentation=man:followupd(1)` is looked up.
    let assets = generate_assets();
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(repo().join("systemd/followupd.service")).expect("unit");
    let unit = dir.path().join("followupd.service");
    std::fs::write(
        &unit,
        text.replace("/usr/bin/followupd", env!("CARGO_BIN_EXE_followupd")),
    )
    .expect("write unit");
    let (ok, out, err) = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .env("MANPATH", assets.join("man")));
    // verify exits 0 even on unknown keys: any word on stderr is a finding.
    assert!(ok && err.trim().is_empty(), "{out}{err}");
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let (ok, out, err) = run(Command::new("dpkg-deb").args(args).arg(deb));
    assert!(ok, "dpkg-deb {args:?}: {err}");
    out
}

#[test]
fn the_debian_package_holds_the_service_its_conffiles_and_docs_and_lintian_finds_no_error() {
    generate_assets();
    let dir = tempfile::tempdir().expect("tempdir");
    let deb = dir.path().join("followupd.deb");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The binary this test run already built: no second (release) build in CI.
    let (ok, out, err) = run(Command::new(&cargo)
        .current_dir(repo())
        .args([
            "deb",
            "--no-build",
            "--profile",
            "dev",
            "--strip",
            "--fast",
            "-o",
        ])
        .arg(&deb));
    assert!(
        ok,
        "cargo deb failed (scripts/install-deps installs cargo-deb):\n{out}{err}"
    );

    let listing = dpkg_deb(&["-c"], &deb);
    for path in [
        "./usr/bin/followupd",
        "./usr/lib/systemd/system/followupd.service",
        "./usr/lib/sysusers.d/followupd.conf",
        "./usr/lib/tmpfiles.d/followupd.conf",
        "./etc/followupd/followupd.toml",
        "./etc/followupd/templates/acknowledgement.text.hbs",
        "./etc/followupd/templates/partials/signature.hbs",
        "./etc/followupd/templates/staff/new.text.hbs",
        "./usr/share/doc/followupd/README.md",
        "./usr/share/doc/followupd/docs/admin-guide.md",
        "./usr/share/doc/followupd/docs/staff-guide.md",
        "./usr/share/doc/followupd/copyright",
        "./usr/share/doc/followupd/changelog.Debian.gz",
        "./usr/share/man/man1/followupd.1.gz",
        "./usr/share/man/man1/followupd-erase.1.gz",
        "./usr/share/bash-completion/completions/followupd",
        "./usr/share/zsh/vendor-completions/_followupd",
        "./usr/share/fish/vendor_completions.d/followupd.fish",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(path)),
            "{path} missing from the package:\n{listing}"
        );
    }
    let conffiles = dpkg_deb(&["--info"], &deb);
    let (ok, conffiles_text, err) = run(Command::new("dpkg-deb")
        .args(["--info"])
        .arg(&deb)
        .arg("conffiles"));
    assert!(ok, "{conffiles}{err}");
    for conffile in [
        "/etc/followupd/followupd.toml",
        "/etc/followupd/templates/acknowledgement.text.hbs",
    ] {
        assert!(
            conffiles_text.lines().any(|l| l.trim() == conffile),
            "{conffile} is not a conffile (an admin's edits would be lost on upgrade):\n{conffiles_text}"
        );
    }

    // The maintainer scripts parse, and the one that creates the user names the sysusers.d
    // file the package ships (a wrong name fails the install under `set -e`).
    let control = dir.path().join("control");
    let (ok, _, err) = run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    assert!(ok, "{err}");
    for script in ["postinst", "prerm", "postrm"] {
        let (ok, out, err) = run(Command::new("sh").arg("-n").arg(control.join(script)));
        assert!(ok, "{script} does not parse: {out}{err}");
    }
    // Purge deletes the customer database, the secret key, the sign-ins and the passwords;
    // remove keeps them.
    let postrm = std::fs::read_to_string(control.join("postrm")).expect("postrm");
    // Ours is the last purge block (cargo-deb's systemd snippets come first).
    let purge = postrm
        .rsplit("if [ \"$1\" = \"purge\" ]; then")
        .next()
        .unwrap_or_default();
    for gone in ["/var/lib/followupd\"", "/etc/followupd\""] {
        assert!(
            purge.contains(&format!("rm -rf \"${{DPKG_ROOT:-}}{gone}")),
            "purge leaves {gone}:\n{postrm}"
        );
    }
    let postinst = std::fs::read_to_string(control.join("postinst")).expect("postinst");
    assert!(
        postinst.contains("systemd-sysusers ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} followupd.conf"),
        "{postinst}"
    );
    assert!(
        postinst.contains("chgrp -R followupd /etc/followupd"),
        "{postinst}"
    );
    assert!(
        postinst.find("systemd-sysusers") < postinst.find("chgrp -R followupd"),
        "the group must exist before the config is given to it:\n{postinst}"
    );

    // Unpacked, the shipped configuration and templates pass `followupd check` once the two
    // password files exist (and the paths point into the unpacked tree).
    let root = dir.path().join("root");
    let (ok, _, err) = run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    assert!(ok, "{err}");
    let etc = root.join("etc/followupd");
    // Every word the daemon says outside the templates, and the German set, are shipped.
    for shipped in [
        "templates/phrases.toml",
        "templates/de/phrases.toml",
        "templates/de/acknowledgement.text.hbs",
        "templates/de/partials/greeting.hbs",
        "templates/intents/fr.toml",
    ] {
        assert!(
            etc.join(shipped).is_file(),
            "{shipped} is not in the package"
        );
    }
    let config = std::fs::read_to_string(etc.join("followupd.toml")).expect("config");
    assert!(config.contains("# EDIT"), "{config}");
    let config = config
        .replace(
            "/var/lib/followupd",
            &root.join("var/lib/followupd").display().to_string(),
        )
        .replace("/etc/followupd", &etc.display().to_string());
    std::fs::write(etc.join("followupd.toml"), config).expect("config");
    for name in ["imap-password", "smtp-password"] {
        std::fs::write(etc.join(name), "secret\n").expect("password");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(etc.join(name), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    let (ok, out, err) = run(Command::new(root.join("usr/bin/followupd"))
        .arg("--config")
        .arg(etc.join("followupd.toml"))
        .arg("check")
        .env_remove("CREDENTIALS_DIRECTORY"));
    assert!(ok, "the packaged configuration fails check:\n{out}{err}");
    assert!(out.contains("imap       imap.example.com:993"), "{out}");

    // lintian must exist (scripts/install-deps installs it): `run` panics if it does not.
    let (ok, out, err) = run(Command::new("lintian")
        .args(["--tag-display-limit", "0"])
        .arg(&deb));
    let errors: Vec<&str> = out
        .lines()
        .chain(err.lines())
        .filter(|l| l.starts_with("E:"))
        .collect();
    assert!(ok && errors.is_empty(), "lintian errors:\n{out}{err}");
}

#[test]
fn completions_and_man_pages_follow_the_cli() {
    for (shell, marker) in [
        ("bash", "_followupd()"),
        ("zsh", "#compdef followupd"),
        ("fish", "complete -c followupd"),
    ] {
        let (ok, out, err) =
            run(Command::new(env!("CARGO_BIN_EXE_followupd")).args(["completions", shell]));
        assert!(ok, "{err}");
        assert!(out.contains(marker), "{shell}: {out}");
        assert!(
            out.contains("erase") && out.contains("status"),
            "{shell}: {out}"
        );
        // The testing clock is an environment variable, not an option anyone is offered.
        assert!(!out.contains("--now"), "{shell} offers --now");
    }
    let page = std::fs::read_to_string(generate_assets().join("man/man1/followupd-erase.1"))
        .expect("man page of erase");
    assert!(
        page.contains("right to erasure") && page.contains("\\-\\-by"),
        "{page}"
    );
    let (ok, _, err) =
        run(Command::new(env!("CARGO_BIN_EXE_followupd")).args(["completions", "tcsh"]));
    assert!(!ok && err.contains("possible values"), "{err}");
}
