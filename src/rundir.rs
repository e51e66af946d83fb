//! Where the PID file and the upgrade socket live by default: a directory only the
//! gateway's user can write.
//!
//! Both paths are trusted by the process: on `--upgrade` the running gateway connects to
//! `upgrade_sock` and hands it the listening sockets, and the PID file is written (as root,
//! often) and read by service managers. In a world-writable directory such as `/tmp`
//! another local user can create either path first (a socket of their own that receives the
//! listeners, a symlink that redirects the write), so the defaults are in a private
//! directory instead, created with mode 0700 at startup and refused when someone else owns
//! it or others can write to it.

use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// File name of the default PID file inside the run directory.
pub const PID_FILE: &str = "mcp-gateway.pid";
/// File name of the default upgrade socket inside the run directory.
pub const UPGRADE_SOCK: &str = "upgrade.sock";

/// The default run directory for this process (see [`default_dir_for`]).
pub fn default_dir() -> PathBuf {
    default_dir_for(
        std::env::var_os("XDG_RUNTIME_DIR"),
        nix::unistd::geteuid().as_raw(),
    )
}

/// `/run/mcp-gateway` for root; otherwise `$XDG_RUNTIME_DIR/mcp-gateway` (the per-user,
/// 0700 runtime directory of systemd sessions) when that is an absolute path; otherwise
/// `/tmp/mcp-gateway-<uid>`, which [`ensure_private`] refuses if another user made it first.
///
/// Root ignores `XDG_RUNTIME_DIR`: under `sudo -E` it names the invoking user's directory,
/// which that user controls.
pub fn default_dir_for(xdg_runtime_dir: Option<OsString>, euid: u32) -> PathBuf {
    if euid == 0 {
        return PathBuf::from("/run/mcp-gateway");
    }
    match xdg_runtime_dir.map(PathBuf::from) {
        Some(d) if d.is_absolute() => d.join("mcp-gateway"),
        _ => PathBuf::from(format!("/tmp/mcp-gateway-{euid}")),
    }
}

/// Create `dir` with mode 0700 if it is missing, then check that it is a real directory (not
/// a symlink) owned by this process's user and not writable by group or others.
pub fn ensure_private(dir: &Path) -> Result<(), String> {
    ensure_private_for(dir, nix::unistd::geteuid().as_raw())
}

/// [`ensure_private`] for the user `euid` (a parameter so the owner check is testable).
pub fn ensure_private_for(dir: &Path, euid: u32) -> Result<(), String> {
    let shown = dir.display();
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(format!(
                "cannot create the run directory {shown} for the PID file and upgrade socket: {e}; \
                 create it (mode 0700) or set server.pid_file and server.upgrade_sock"
            ))
        }
    }
    // Checked after creating too: someone may have made it between our look and our mkdir.
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("cannot inspect the run directory {shown}: {e}"))?;
    if !meta.file_type().is_dir() {
        return Err(format!(
            "the run directory {shown} is not a directory (a symlink or file is in its place); remove it or set server.pid_file and server.upgrade_sock"
        ));
    }
    if meta.uid() != euid {
        return Err(format!(
            "the run directory {shown} is owned by uid {}, not by this process (uid {euid}); \
             someone else may control it: remove it, or set server.pid_file and server.upgrade_sock",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "the run directory {shown} has mode {mode:o}, writable by group or others; \
             run chmod 700 {shown}"
        ));
    }
    Ok(())
}

/// Whether a directory (the parent of an explicitly configured path) can be written by
/// users other than its owner; such paths are allowed but warned about at startup.
pub fn writable_by_others(dir: &Path) -> bool {
    std::fs::metadata(dir).is_ok_and(|m| m.mode() & 0o022 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn root_uses_run_and_ignores_xdg() {
        assert_eq!(
            default_dir_for(Some("/run/user/1000".into()), 0),
            PathBuf::from("/run/mcp-gateway")
        );
        assert_eq!(default_dir_for(None, 0), PathBuf::from("/run/mcp-gateway"));
    }

    #[test]
    fn users_use_xdg_runtime_dir_else_a_per_uid_tmp_dir() {
        assert_eq!(
            default_dir_for(Some("/run/user/1000".into()), 1000),
            PathBuf::from("/run/user/1000/mcp-gateway")
        );
        assert_eq!(
            default_dir_for(None, 1000),
            PathBuf::from("/tmp/mcp-gateway-1000")
        );
        // A relative XDG_RUNTIME_DIR is invalid per the spec and ignored.
        assert_eq!(
            default_dir_for(Some("run".into()), 1000),
            PathBuf::from("/tmp/mcp-gateway-1000")
        );
    }

    fn me() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    #[test]
    fn a_missing_directory_is_created_private() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("run");
        ensure_private(&d).unwrap();
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // Idempotent: the second start finds it and accepts it.
        ensure_private(&d).unwrap();
    }

    #[test]
    fn a_group_or_world_writable_directory_is_refused() {
        let t = tempfile::tempdir().unwrap();
        for mode in [0o777, 0o770, 0o702] {
            let d = t.path().join(format!("m{mode:o}"));
            std::fs::create_dir(&d).unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = ensure_private(&d).unwrap_err();
            assert!(e.contains("writable by group or others"), "{e}");
        }
        let d = t.path().join("ok");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private(&d).unwrap();
    }

    #[test]
    fn a_directory_owned_by_someone_else_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("run");
        std::fs::create_dir(&d).unwrap();
        let e = ensure_private_for(&d, me().wrapping_add(1)).unwrap_err();
        assert!(e.contains("owned by uid"), "{e}");
    }

    #[test]
    fn a_symlink_or_file_in_its_place_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        let link = t.path().join("run");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = ensure_private(&link).unwrap_err();
        assert!(e.contains("not a directory"), "{e}");
        let file = t.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(ensure_private(&file)
            .unwrap_err()
            .contains("not a directory"));
    }

    #[test]
    fn a_directory_that_cannot_be_created_says_what_to_set() {
        let e = ensure_private(Path::new("/nonexistent-parent/for-sure/run")).unwrap_err();
        assert!(e.contains("server.pid_file"), "{e}");
    }
}
