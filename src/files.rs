//! Files that hold secrets or customers' mail: who may read them.
//!
//! followupd creates its database and key private to the service user (0600). When the admin
//! has opened the state directory to a staff group (setgid and group access, e.g. `chmod 2770`
//! with group `followupd`, as docs/admin-guide.md says in "Staff on the command line"), new
//! files let that group in too: the database read-write (0660, staff run `incident note`), the
//! key read-only (0640). Nobody else ever gets in.

use std::path::Path;

/// The mode for a new private file in `dir`: owner `rw`, plus `group` bits when the directory
/// is shared with a group.
pub fn new_file_mode(dir: &Path, group: u32) -> u32 {
    if shared_with_group(dir) {
        0o600 | (group & 0o060)
    } else {
        0o600
    }
}

/// Whether the admin shared `dir` with a group: the setgid bit (new files get the directory's
/// group) and group read and enter, as in `chmod 2770`. A plain 0755 directory is not shared.
pub fn shared_with_group(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o2050 == 0o2050)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        false
    }
}

/// Sets `path`'s mode (a no-op where there are no Unix modes).
pub fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// Takes away what users other than the owner and group may do with an existing `path`
/// (a database, its WAL, a lock or a key from an older version or a careless copy): returns
/// the old mode when it changed, for a warning. None when it was private already or does not
/// exist.
pub fn make_private(path: &Path) -> std::io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(None);
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o007 == 0 {
            return Ok(None);
        }
        set_mode(path, mode & !0o007)?;
        Ok(Some(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

/// Copies a directory tree (regular files and directories; anything else is skipped).
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() || kind.is_symlink() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Refuses a secret file that users other than its owner and group may read or anyone may
/// write: says which and how to fix it, as ssh does for a private key.
pub fn check_private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot be read: {e}"))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o007 != 0 {
            return Err(format!(
                "is open to everyone (mode {mode:04o}); make it private: chmod o-rwx {}",
                path.display()
            ));
        }
        if mode & 0o020 != 0 {
            return Err(format!(
                "may be changed by its group (mode {mode:04o}): chmod g-w {}",
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_file_others_may_read_is_made_private_and_the_old_mode_said() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f.db");
        std::fs::write(&file, b"x").expect("write");
        set_mode(&file, 0o644).expect("chmod");
        assert_eq!(make_private(&file).expect("fix"), Some(0o644));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(make_private(&file).expect("again"), None);
        assert_eq!(
            make_private(&dir.path().join("absent")).expect("absent"),
            None
        );
    }

    #[test]
    fn new_files_are_private_unless_the_directory_is_shared_with_a_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        set_mode(dir.path(), 0o700).expect("chmod");
        assert_eq!(new_file_mode(dir.path(), 0o060), 0o600);
        set_mode(dir.path(), 0o755).expect("chmod");
        assert_eq!(
            new_file_mode(dir.path(), 0o060),
            0o600,
            "readable is not shared"
        );
        set_mode(dir.path(), 0o2770).expect("chmod");
        assert_eq!(new_file_mode(dir.path(), 0o060), 0o660);
        assert_eq!(new_file_mode(dir.path(), 0o040), 0o640);
    }

    #[test]
    fn a_secret_others_may_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("password");
        std::fs::write(&file, "x").expect("write");
        set_mode(&file, 0o644).expect("chmod");
        let why = check_private(&file).unwrap_err();
        assert!(
            why.contains("mode 0644") && why.contains("chmod o-rwx"),
            "{why}"
        );
        set_mode(&file, 0o640).expect("chmod");
        assert!(check_private(&file).is_ok());
    }
}
