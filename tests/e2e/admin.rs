//! What an admin meets: root's commands leave the state directory to the service, `status`
//! says when the daemon is down, a broken configuration fails once with its file and line,
//! output piped into `head` ends quietly.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use crate::harness::*;
use crate::staff::at;

/// A system user and group for the service (removed when dropped), and the state directory
/// given to them as the package gives `/var/lib/followupd` to `followupd` (2770).
struct ServiceUser {
    name: String,
}

impl ServiceUser {
    fn create(fu: &Followupd, stack: &MailStack) -> ServiceUser {
        let name = format!("fusvc{}", std::process::id() % 100_000);
        let ok = |cmd: &mut Command| {
            let out = cmd.output().expect("run");
            assert!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ok(Command::new("groupadd").args(["-f", &name]));
        let _ = Command::new("useradd")
            .args(["-M", "-N", "-g", &name, "-s", "/usr/sbin/nologin", &name])
            .output();
        let state = fu.database.parent().expect("state dir").to_path_buf();
        std::fs::create_dir_all(&state).expect("mkdir");
        ok(Command::new("chown")
            .arg(format!("{name}:{name}"))
            .arg(&state));
        ok(Command::new("chmod").arg("2770").arg(&state));
        // The service may walk to its state directory and read the stack's CA, as it may
        // walk to /var/lib/followupd and read /etc/ssl on a real host.
        for dir in [state.clone(), stack.dir.path().to_path_buf()] {
            let mut dir = dir;
            while let Some(parent) = dir.parent() {
                if parent == std::path::Path::new("/tmp") || parent == std::path::Path::new("/") {
                    break;
                }
                let _ = Command::new("chmod").arg("o+x").arg(parent).status();
                dir = parent.to_path_buf();
            }
        }
        let _ = Command::new("chmod")
            .args(["-R", "o+rX"])
            .arg(stack.dir.path().join("ms/tls"))
            .status();
        ServiceUser { name }
    }

    fn uid(&self) -> u32 {
        let out = Command::new("id")
            .args(["-u", &self.name])
            .output()
            .expect("id");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("uid")
    }
}

impl Drop for ServiceUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
        let _ = Command::new("groupdel").arg(&self.name).output();
    }
}

/// Ann's complaint about a lost parcel, in the support mailbox.
fn ann_complains(stack: &MailStack) {
    stack.deliver(
        SUPPORT,
        complaint(
            "ann@example.test",
            "ann-1@client.example.test",
            "Parcel lost",
            "Hello,\r\n\r\nmy parcel never came.\r\n",
        )
        .as_bytes(),
    );
}

/// The daemon in the background, once it holds the database's lock (`status` says so).
fn running(fu: &Followupd) -> (Running, std::path::PathBuf) {
    let (daemon, log) = fu.spawn_logged();
    eventually_logged(
        "the daemon holds its lock",
        std::time::Duration::from_secs(15),
        &log,
        || fu.run(&["status"]).status.code() == Some(0),
    );
    (daemon, log)
}

#[test]
fn what_root_runs_leaves_every_file_in_the_state_directory_to_the_service() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let service = ServiceUser::create(&fu, &stack);
    // The password file stays root's alone, as the package leaves it.
    let password = stack.var("PASSWORD_FILE").to_string();
    let meta = std::fs::metadata(&password).expect("password file");
    assert_eq!((meta.uid(), meta.mode() & 0o077), (0, 0), "root's alone");
    ann_complains(&stack);
    // Root runs a pass, a connection check (which reads the root-only password) and a
    // staff command, as an admin does.
    let t0 = at("2026-11-23T09:00:00Z");
    fu.once_at(t0);
    stack.wait_for_mail("ann@example.test", 1);
    let out = fu.run(&["check", "--connect"]);
    assert!(
        out.status.success(),
        "root's check still reads the password: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = fu.run_at(
        t0,
        &["incident", "note", "1", "--internal", "Asked the carrier."],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Everything in the state directory is the service's.
    let uid = service.uid();
    let state = fu.database.parent().expect("state dir");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(state).expect("state dir").flatten() {
        let meta = entry.metadata().expect("stat");
        seen.push(entry.file_name().to_string_lossy().to_string());
        assert_eq!(
            meta.uid(),
            uid,
            "{} belongs to uid {}, not the service",
            entry.path().display(),
            meta.uid()
        );
    }
    assert!(seen.iter().any(|f| f == "followupd.db"), "{seen:?}");
    // And the service's user writes to them as before (the service would get the password as
    // a credential; writing the record is what root's files could have broken).
    let out = Command::new("runuser")
        .args([
            "-u",
            &service.name,
            "--",
            env!("CARGO_BIN_EXE_followupd"),
            "--config",
        ])
        .arg(&fu.config)
        .args([
            "incident",
            "note",
            "1",
            "--internal",
            "The carrier found it.",
        ])
        .env("FOLLOWUPD_TEST_NOW", "2026-11-23T09:10:00Z")
        .output()
        .expect("runuser");
    assert!(
        out.status.success(),
        "the service's user after root's commands: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = fu.incident(1);
    assert!(
        shown.to_string().contains("The carrier found it."),
        "{shown}"
    );
    // A file root left there some other way (a copy, an old version): `check` names it.
    let stray = state.join("followupd.db.bak");
    std::fs::write(&stray, "x").expect("stray");
    let out = fu.run(&["check"]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.contains(&format!("warning    {} belongs to uid 0", stray.display())),
        "{said}"
    );
}

#[test]
fn status_exits_3_when_no_daemon_runs_and_0_while_one_does() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    fu.once();
    let out = fu.run(&["status"]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains("daemon      not running"), "{said}");
    let json = fu.run(&["status", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(value["running"], false, "{value}");
    let (daemon, _) = running(&fu);
    let said = String::from_utf8_lossy(&fu.run(&["status"]).stdout).to_string();
    assert!(said.contains("daemon      running"), "{said}");
    daemon.stop();
}

#[test]
fn a_broken_configuration_fails_once_with_its_file_and_line_and_exit_78() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let text = std::fs::read_to_string(&fu.config).expect("config");
    std::fs::write(
        &fu.config,
        format!("{text}\n[cadence]\ndefault = \"soon\"\n"),
    )
    .expect("write");
    let out = fu.run(&["run"]);
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(78),
        "EX_CONFIG, which the unit does not restart on: {said}"
    );
    let path = fu.config.display().to_string();
    assert!(said.contains(&path) && said.contains("default"), "{said}");
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/followupd.service"),
    )
    .expect("unit");
    assert!(unit.contains("\nRestartPreventExitStatus=78\n"), "{unit}");
}

#[test]
fn output_piped_into_a_reader_that_stops_early_ends_quietly() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    for args in [
        &["check"][..],
        &["incidents"][..],
        &["template", "list"][..],
    ] {
        let mut child = fu
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // The reader goes away before a line is read, as `| head -0` or a closed pager does.
        drop(child.stdout.take());
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("read");
        let status = child.wait().expect("wait");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(status.success(), "{args:?}: {status:?} {err}");
    }
}

#[test]
fn reload_fails_on_a_broken_file_with_its_line_and_succeeds_once_the_daemon_took_the_new_ones() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    let templates = crate::service::own_templates(&fu);
    let (daemon, _) = running(&fu);
    let said = |out: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let out = fu.run(&["reload"]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("reloaded: ok"), "{}", said(&out));
    // A broken configuration: refused before the daemon is troubled, with the file and line.
    let good = std::fs::read_to_string(&fu.config).expect("config");
    std::fs::write(
        &fu.config,
        format!("{good}\n[cadence]\ndefault = \"soon\"\n"),
    )
    .expect("write");
    let out = fu.run(&["reload"]);
    assert_eq!(out.status.code(), Some(78), "{}", said(&out));
    let line = good.lines().count() + 3;
    assert!(
        said(&out).contains(&format!("{}:{line}", fu.config.display())),
        "{}",
        said(&out)
    );
    std::fs::write(&fu.config, &good).expect("write");
    // A broken template: refused, naming it; the daemon keeps running the old ones.
    let ack = templates.join("acknowledgement.text.hbs");
    let text = std::fs::read_to_string(&ack).expect("template");
    std::fs::write(&ack, format!("{text}\n{{{{#if incident.number}}\n")).expect("write");
    let out = fu.run(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        said(&out).contains("acknowledgement.text.hbs"),
        "{}",
        said(&out)
    );
    assert_eq!(fu.run(&["status"]).status.code(), Some(0), "still running");
    std::fs::write(&ack, &text).expect("write");
    let out = fu.run(&["reload", "--wait", "20s"]);
    assert!(said(&out).contains("reloaded: ok"), "{}", said(&out));
    daemon.stop();
}

#[test]
fn retention_switched_on_by_a_reload_runs_without_a_restart() {
    let stack = MailStack::start();
    let fu = Followupd::new(&stack, Tls::ImapsAndSmtpStarttls);
    ann_complains(&stack);
    // Closed on 23 November: long ago by the time the daemon runs.
    let t0 = at("2026-11-23T09:00:00Z");
    fu.once_at(t0);
    stack.wait_for_mail("ann@example.test", 1);
    let out = fu.run_at(t0, &["incident", "close", "1", "--by", "anna"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (daemon, log) = running(&fu);
    let config = std::fs::read_to_string(&fu.config).expect("config");
    std::fs::write(
        &fu.config,
        format!("{config}\n[retention]\nraw_after = \"1d\"\n"),
    )
    .expect("write");
    let out = fu.run(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually_logged(
        "retention runs after the reload, not an hour or a restart later",
        std::time::Duration::from_secs(15),
        &log,
        || fu.count("SELECT count(*) FROM messages WHERE raw_dropped_at IS NOT NULL") >= 1,
    );
    assert!(read_log(&log).contains("retention: raw text dropped"));
    daemon.stop();
}
