//! Configuration: built-in defaults -> config file -> environment -> CLI flags (figment).

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The built-in defaults, documented key by key.
pub const DEFAULTS: &str = include_str!("../../../config/default.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: Server,
    pub storage: Storage,
    pub logging: Logging,
    pub security: SecuritySettings,
    pub supervisor: SupervisorSettings,
    pub metrics: MetricsSettings,
    pub deploy: launcher_core::deploy::DeployConfig,
    pub jobs: JobsSettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobsSettings {
    pub parallel: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    pub allowed_origins: Vec<String>,
    pub allow_loopback_origins: bool,
    pub require_token: TokenPolicy,
    pub same_user_only: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TokenPolicy {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisorSettings {
    pub stop_signal: String,
    pub stop_grace_secs: u64,
    pub backoff_initial_secs: u64,
    pub backoff_max_secs: u64,
    pub give_up_crashes: u32,
    pub give_up_window_secs: u64,
    pub ready_timeout_secs: u64,
    pub on_shutdown: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    pub interval_ms: u64,
    pub history_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub api_prefix: String,
    pub ws_max_total: usize,
    pub ws_max_per_instance: usize,
    pub max_file_bytes: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    pub data_dir: String,
    pub database_url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    pub dir: String,
    pub level: String,
    pub retention_days: usize,
}

/// Values given on the command line; `None` leaves the lower layers in charge.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerOverrides>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageOverrides>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<LoggingOverrides>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StorageOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LoggingOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

impl Settings {
    /// Loads every layer. `config` is an explicit file (must exist); without it,
    /// `<data_dir>/config.toml` is read when present.
    pub fn load(config: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        // Only the three sections: other MAILAUNCHER_* variables (e.g. MAILAUNCHER_DATA_DIR,
        // read by the path defaults) are not configuration keys.
        let env = || {
            Env::prefixed("MAILAUNCHER_")
                .filter(|k| {
                    let k = k.as_str().to_ascii_lowercase();
                    [
                        "server__",
                        "storage__",
                        "logging__",
                        "security__",
                        "supervisor__",
                        "metrics__",
                        "deploy__",
                        "jobs__",
                    ]
                    .iter()
                    .any(|p| k.starts_with(p))
                })
                .split("__")
        };
        let base = Figment::from(Toml::string(DEFAULTS));
        let file = match config {
            Some(p) => {
                anyhow::ensure!(p.is_file(), "config file {} does not exist", p.display());
                Some(p.to_path_buf())
            }
            None => {
                // The data dir may itself come from env or flags: resolve it first.
                let pre: Settings = base
                    .clone()
                    .merge(env())
                    .merge(Serialized::defaults(overrides))
                    .extract()
                    .map_err(explain)?;
                let p = pre.data_dir().join("config.toml");
                p.is_file().then_some(p)
            }
        };
        let mut fig = base;
        if let Some(p) = &file {
            fig = fig.merge(Toml::file(p));
        }
        let s: Settings = fig
            .merge(env())
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(explain)?;
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.server.api_prefix.starts_with('/') && !self.server.api_prefix.ends_with('/'),
            "server.api_prefix must start with '/' and not end with one, got {:?}",
            self.server.api_prefix
        );
        anyhow::ensure!(
            self.storage.max_connections >= 1,
            "storage.max_connections must be at least 1"
        );
        anyhow::ensure!(
            self.metrics.interval_ms >= 100,
            "metrics.interval_ms must be at least 100"
        );
        anyhow::ensure!(
            self.supervisor.backoff_initial_secs >= 1
                && self.supervisor.backoff_max_secs >= self.supervisor.backoff_initial_secs,
            "supervisor.backoff_initial_secs must be >= 1 and <= supervisor.backoff_max_secs"
        );
        anyhow::ensure!(
            self.supervisor.ready_timeout_secs >= 1,
            "supervisor.ready_timeout_secs must be at least 1"
        );
        self.stop_signal()?;
        anyhow::ensure!(
            self.server.ws_max_total >= 1 && self.server.ws_max_per_instance >= 1,
            "server.ws_max_total and server.ws_max_per_instance must be at least 1"
        );
        anyhow::ensure!(
            self.server.max_file_bytes >= 1024,
            "server.max_file_bytes must be at least 1024"
        );
        for r in &self.deploy.allowed_roots {
            anyhow::ensure!(
                r.is_absolute(),
                "deploy.allowed_roots: {} is not an absolute path",
                r.display()
            );
        }
        if self.security.require_token == TokenPolicy::Never && !self.loopback_bind() {
            anyhow::bail!(
                "security.require_token = \"never\" is refused for the non-loopback bind \
                 address server.host = {:?}",
                self.server.host
            );
        }
        if !self.storage.database_url.is_empty() {
            maim_db::backend_of(&self.storage.database_url)
                .map_err(|e| anyhow::anyhow!("storage.database_url: {e}"))?;
        }
        Ok(())
    }

    pub fn stop_signal(&self) -> anyhow::Result<launcher_core::supervisor::Signal> {
        use launcher_core::supervisor::Signal;
        Ok(
            match self.supervisor.stop_signal.to_ascii_uppercase().as_str() {
                "SIGINT" | "INT" => Signal::SIGINT,
                "SIGTERM" | "TERM" => Signal::SIGTERM,
                "SIGHUP" | "HUP" => Signal::SIGHUP,
                "SIGQUIT" | "QUIT" => Signal::SIGQUIT,
                other => anyhow::bail!(
                    "supervisor.stop_signal: {other:?} is not one of SIGINT, SIGTERM, SIGHUP, SIGQUIT"
                ),
            },
        )
    }

    /// `supervisor.on_shutdown`: only `stop` for now. `leave-running` needs a per-component
    /// shim that owns the terminal in the daemon's place; without it a bot left running
    /// would get SIGHUP and EIO the moment the daemon exits.
    pub fn check_on_shutdown(&self) -> anyhow::Result<()> {
        match self.supervisor.on_shutdown.as_str() {
            "stop" => Ok(()),
            "leave-running" => anyhow::bail!(
                "supervisor.on_shutdown: \"leave-running\" is not available yet (it needs the per-component shim); use \"stop\""
            ),
            other => anyhow::bail!("supervisor.on_shutdown: {other:?} is not \"stop\""),
        }
    }

    /// Whether `server.host` is a loopback address (or `localhost`).
    pub fn loopback_bind(&self) -> bool {
        let h = self.server.host.trim_matches(|c| c == '[' || c == ']');
        h.eq_ignore_ascii_case("localhost")
            || h.parse::<std::net::IpAddr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false)
    }

    /// Whether connections of other OS users must present the token (loopback binds with
    /// `security.same_user_only`, on a platform that can tell who owns a client socket).
    pub fn same_user_only(&self) -> bool {
        self.security.same_user_only && self.loopback_bind()
    }

    /// Whether requests must carry the access token.
    pub fn token_required(&self) -> bool {
        match self.security.require_token {
            TokenPolicy::Always => true,
            TokenPolicy::Never => false,
            TokenPolicy::Auto => !self.loopback_bind(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        if self.storage.data_dir.is_empty() {
            launcher_core::paths::default_data_dir()
        } else {
            PathBuf::from(&self.storage.data_dir)
        }
    }

    pub fn database_url(&self) -> String {
        if self.storage.database_url.is_empty() {
            maim_db::sqlite_url(&launcher_core::paths::database_file(&self.data_dir()))
        } else {
            self.storage.database_url.clone()
        }
    }

    pub fn logs_dir(&self) -> PathBuf {
        if !self.logging.dir.is_empty() {
            return PathBuf::from(&self.logging.dir);
        }
        match std::env::var("LOGS_DIR") {
            Ok(d) if !d.is_empty() => PathBuf::from(d),
            _ => self.data_dir().join("logs"),
        }
    }
}

fn explain(e: figment::Error) -> anyhow::Error {
    let mut msgs = Vec::new();
    for err in e {
        let key = err.path.join(".");
        msgs.push(if key.is_empty() {
            err.kind.to_string()
        } else {
            format!("{key}: {}", err.kind)
        });
    }
    anyhow::anyhow!("invalid configuration: {}", msgs.join("; "))
}
