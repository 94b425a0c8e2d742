//! Where the launcher keeps its files when nothing else is configured.

use std::path::{Path, PathBuf};

/// The data directory: `$MAILAUNCHER_DATA_DIR`, else `$XDG_DATA_HOME/mailauncher`, else
/// `~/.local/share/mailauncher`, else `./data` when no home directory is known.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = non_empty_env("MAILAUNCHER_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(x) = non_empty_env("XDG_DATA_HOME") {
        return Path::new(&x).join("mailauncher");
    }
    match home_dir() {
        Some(h) => h.join(".local").join("share").join("mailauncher"),
        None => PathBuf::from("data"),
    }
}

/// The embedded database file inside a data directory.
pub fn database_file(data_dir: &Path) -> PathBuf {
    data_dir.join("mailauncher.db")
}

/// The default database URL: the embedded SQLite file in the default data directory.
pub fn default_database_url() -> String {
    maim_db::sqlite_url(&database_file(&default_data_dir()))
}

/// The user's home directory (`$HOME`).
pub fn home_dir() -> Option<PathBuf> {
    non_empty_env("HOME").map(PathBuf::from)
}

fn non_empty_env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}
