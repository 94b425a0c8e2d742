//! Where instances may live: the one rule for deploy targets, added instances and path
//! inspection.
//!
//! A path is refused when it is (or contains) a system directory ([`SYSTEM_DIRS`]) —
//! whoever the launcher runs as, so a launcher running as root cannot be talked into
//! writing into `/etc` or registering `/usr/bin` as a bot — or, when the operator listed
//! `deploy.allowed_roots`, when it is outside all of them. Both the path as written
//! (`.`/`..` removed) and the path with symlinks resolved are checked, so a link from
//! `/tmp` into `/etc` does not get through.
//!
//! `/opt` is not a system directory here: it is where add-on software conventionally
//! lives, and an administrator deploying `/opt/maibot` for a service account is a normal
//! setup. Operators who want it closed list their own roots in `deploy.allowed_roots`.
//! Paths strictly inside the launcher user's home directory are never system paths, even
//! when the home itself lies under one (a service account whose home is
//! `/var/lib/mailauncher`).

use std::path::{Component, Path, PathBuf};

/// Directories no instance may be in or contain.
pub const SYSTEM_DIRS: &[&str] = &[
    "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/dev",
    "/proc", "/sys", "/run", "/var/lib", "/var/run", "/snap",
];

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRefusal {
    /// The path is the filesystem root, or inside or containing a system directory.
    #[error(
        "{} is inside or contains the system directory {}; choose a directory under your \
         home or another place outside the system directories",
        .path.display(), .dir.display()
    )]
    System {
        /// The path (resolved).
        path: PathBuf,
        /// The system directory it overlaps.
        dir: PathBuf,
    },
    /// `deploy.allowed_roots` is set and the path is under none of them.
    #[error(
        "{} is outside the directories this launcher may use (deploy.allowed_roots: {}); \
         choose a path inside one of them or ask the operator to add one",
        .path.display(), .roots
    )]
    NotAllowed {
        /// The path (resolved).
        path: PathBuf,
        /// The configured roots, comma-separated.
        roots: String,
    },
}

impl PathRefusal {
    /// Stable machine code: `forbidden_path` (system directory) or `path_not_allowed`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::System { .. } => "forbidden_path",
            Self::NotAllowed { .. } => "path_not_allowed",
        }
    }
}

/// The operator's narrowing (`deploy.allowed_roots`) plus the launcher user's home.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathPolicy {
    allowed_roots: Vec<PathBuf>,
    home: Option<PathBuf>,
}

impl PathPolicy {
    /// A policy with these allowed roots (empty: anywhere outside the system directories)
    /// and `home` as the launcher user's home directory.
    pub fn new(allowed_roots: Vec<PathBuf>, home: Option<PathBuf>) -> Self {
        Self {
            allowed_roots,
            home,
        }
    }

    /// [`PathPolicy::new`] with `home` from `$HOME`.
    pub fn from_env(allowed_roots: Vec<PathBuf>) -> Self {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        Self::new(allowed_roots, home)
    }

    /// The configured allowed roots.
    pub fn allowed_roots(&self) -> &[PathBuf] {
        &self.allowed_roots
    }

    /// Checks an absolute path (blocking: symlinks in its existing part are resolved).
    pub fn check(&self, path: &Path) -> Result<(), PathRefusal> {
        let lexical = normalize(path);
        let real = canonical_prefix(&lexical);
        let home = self
            .home
            .as_deref()
            .map(|h| canonical_prefix(&normalize(h)))
            .filter(|h| h.parent().is_some() && !is_system_dir(h));
        for p in [&lexical, &real] {
            if p.parent().is_none() {
                return Err(PathRefusal::System {
                    path: real.clone(),
                    dir: p.clone(),
                });
            }
            let in_home = home.as_deref().is_some_and(|h| p.starts_with(h) && p != h);
            if in_home {
                continue;
            }
            for dir in SYSTEM_DIRS.iter().map(Path::new) {
                if p.starts_with(dir) || dir.starts_with(p) {
                    return Err(PathRefusal::System {
                        path: real.clone(),
                        dir: dir.to_path_buf(),
                    });
                }
            }
        }
        if self.allowed_roots.is_empty() {
            return Ok(());
        }
        let inside = self
            .allowed_roots
            .iter()
            .map(|r| canonical_prefix(&normalize(r)))
            .any(|r| real.starts_with(&r));
        if inside {
            Ok(())
        } else {
            Err(PathRefusal::NotAllowed {
                path: real,
                roots: self
                    .allowed_roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }
}

fn is_system_dir(p: &Path) -> bool {
    SYSTEM_DIRS.iter().any(|d| Path::new(d) == p)
}

/// Removes `.` and `..` lexically (`..` at the root stays at the root).
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Prefix(x) => out.push(x.as_os_str()),
            Component::RootDir => out.push(Component::RootDir.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    out
}

/// Canonicalizes the deepest existing ancestor and re-appends the rest.
pub(crate) fn canonical_prefix(p: &Path) -> PathBuf {
    let mut existing = p.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if std::fs::symlink_metadata(&existing).is_ok()
            && let Ok(c) = std::fs::canonicalize(&existing)
        {
            let mut out = c;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return out;
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn system_directories_are_refused_whoever_runs() {
        let p = PathPolicy::new(Vec::new(), Some("/home/u".into()));
        for bad in [
            "/",
            "/etc",
            "/etc/x",
            "/usr/local/bots",
            "/bin/x",
            "/boot/x",
            "/dev/shm/x",
            "/proc/1",
            "/sys/x",
            "/run/user/1/x",
            "/var/lib/x",
            "/var/run/x",
            "/snap/x",
            "/lib64/x",
            "/var",
            "/tmp/../etc/x",
        ] {
            let e = p.check(Path::new(bad)).unwrap_err();
            assert_eq!(e.code(), "forbidden_path", "{bad}");
        }
        for ok in ["/opt/maibot", "/tmp/x", "/home/u/MaiBot", "/srv/bots/a"] {
            assert!(p.check(Path::new(ok)).is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_symlink_into_a_system_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink("/etc", &link).unwrap();
        let p = PathPolicy::default();
        let e = p.check(&link.join("x")).unwrap_err();
        assert_eq!(e.code(), "forbidden_path");
    }

    #[test]
    fn inside_a_home_under_var_lib_is_allowed_but_not_the_rest() {
        let p = PathPolicy::new(Vec::new(), Some("/var/lib/mailauncher".into()));
        assert!(p.check(Path::new("/var/lib/mailauncher/MaiBot")).is_ok());
        assert!(p.check(Path::new("/var/lib/mailauncher")).is_err());
        assert!(p.check(Path::new("/var/lib/other")).is_err());
        // A home that is itself a system directory grants nothing.
        let p = PathPolicy::new(Vec::new(), Some("/etc".into()));
        assert!(p.check(Path::new("/etc/x")).is_err());
    }

    #[test]
    fn allowed_roots_narrow_further() {
        let d = tempfile::tempdir().unwrap();
        let p = PathPolicy::new(vec![d.path().join("bots")], None);
        assert!(p.check(&d.path().join("bots/a")).is_ok());
        let e = p.check(&d.path().join("other")).unwrap_err();
        assert_eq!(e.code(), "path_not_allowed");
        assert!(e.to_string().contains("deploy.allowed_roots"));
        assert_eq!(
            p.check(&d.path().join("bots/../other")).unwrap_err().code(),
            "path_not_allowed"
        );
        // Roots never open a system directory.
        let p = PathPolicy::new(vec!["/etc".into()], None);
        assert_eq!(
            p.check(Path::new("/etc/x")).unwrap_err().code(),
            "forbidden_path"
        );
    }
}
