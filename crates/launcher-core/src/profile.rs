//! Component profiles: what the launcher knows about each kind of program it runs, as
//! data. A profile says when the program is ready, how it is stopped, which exit code is
//! its own restart request, and how its environment differs from the launcher's.
//!
//! The facts behind the MaiBot and adapter profiles (how they start, print their ready
//! lines, bind their ports and react to signals) are summarised in the upstream notes the
//! deployer follows; the values below are the ones those notes give.

use crate::supervisor::{ProcessSpec, Signal, StopPolicy};
use std::path::Path;
use std::time::Duration;

/// What the launcher knows about one kind of component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Short name for logs, e.g. `maibot-1.x`.
    pub name: &'static str,
    /// An output line containing any of these (ANSI escapes removed) means "ready line
    /// seen". Empty: no line is waited for.
    pub ready_lines: &'static [&'static str],
    /// Whether readiness also needs every registered port of the component to accept a
    /// TCP connection on 127.0.0.1 (the program prints its ready line before it binds).
    pub wait_ports: bool,
    /// How it is stopped; `None` uses the supervisor's configured stop policy.
    pub stop: Option<StopPolicy>,
    /// An exit with this code is a restart the program asked for itself: it is started
    /// again at once, counted as a restart and not as a crash.
    pub restart_exit_code: Option<i32>,
    /// Variables set for the child (before the component row's own variables, which win).
    pub env_set: &'static [(&'static str, &'static str)],
    /// Variables of the launcher's own environment the child must not inherit.
    pub env_remove: &'static [&'static str],
}

impl Profile {
    /// Whether the component is ready as soon as it is spawned (nothing to wait for).
    pub fn ready_at_spawn(&self) -> bool {
        self.ready_lines.is_empty() && !self.wait_ports
    }

    /// The process spec of a component with this profile: the one environment policy.
    ///
    /// Removed from what the launcher inherited: the launcher's own secrets and settings
    /// ([`crate::supervisor::spawn::ENV_DENY_LIST`]) and the profile's `env_remove`. Then
    /// set, in order (a later value wins): the profile's `env_set`, then `row_env`, the
    /// component row's own variables, so a recipe can still set a removed name on purpose.
    pub fn spec(
        &self,
        argv: Vec<String>,
        cwd: impl Into<std::path::PathBuf>,
        row_env: Vec<(String, String)>,
    ) -> ProcessSpec {
        let mut spec = ProcessSpec::new(argv, cwd);
        spec.env_remove
            .extend(self.env_remove.iter().map(|s| (*s).to_owned()));
        spec.env = self
            .env_set
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain(row_env)
            .collect();
        spec
    }
}

/// What MaiBot reads from its environment in ways that would override what the deployer
/// wrote into its config files: 0.x reads `HOST`/`PORT`/`WEBUI_*` (its `.env` overrides
/// them anyway, but a missing `.env` key would not), 1.x migrates `HOST`/`PORT`/`WEBUI_*`
/// into its config once and adds `WEBUI_HOST` as a bind host on every start; the EULA,
/// upgrade and locale switches change its behaviour silently.
const MAIBOT_ENV_REMOVE: &[&str] = &[
    "HOST",
    "PORT",
    "WEBUI_HOST",
    "WEBUI_PORT",
    "EULA_AGREE",
    "PRIVACY_AGREE",
    "MAIBOT_LEGACY_0X_UPGRADE_CONFIRMED",
    "MAIBOT_LOCALE",
];

/// Run the worker directly: without it `bot.py` is a runner that SIGTERMs the worker on
/// Ctrl-C (cutting its graceful shutdown short) and orphans it when itself signalled. The
/// launcher does the runner's one job, restarting on exit code 42.
const MAIBOT_ENV_SET: &[(&str, &str)] = &[("MAIBOT_WORKER_PROCESS", "1")];

/// SIGINT is MaiBot's graceful shutdown (SIGTERM is not handled: immediate death). 0.x
/// cancels its tasks within 15 s; 1.x's shutdown steps add up to about 25 s.
const MAIBOT_STOP: StopPolicy = StopPolicy {
    signal: Signal::SIGINT,
    grace: Duration::from_secs(30),
};

/// The exit code MaiBot's WebUI restart uses.
const MAIBOT_RESTART_CODE: i32 = 42;

/// MaiBot 0.x: Chinese log lines only.
pub static MAIBOT_0X: Profile = Profile {
    name: "maibot-0.x",
    ready_lines: &["全部系统初始化完成"],
    wait_ports: true,
    stop: Some(MAIBOT_STOP),
    restart_exit_code: Some(MAIBOT_RESTART_CODE),
    env_set: MAIBOT_ENV_SET,
    env_remove: MAIBOT_ENV_REMOVE,
};

/// MaiBot 1.x: zh-CN by default, en-US when its locale says so.
pub static MAIBOT_1X: Profile = Profile {
    name: "maibot-1.x",
    ready_lines: &["全部系统初始化完成", "All systems initialized"],
    wait_ports: true,
    stop: Some(MAIBOT_STOP),
    restart_exit_code: Some(MAIBOT_RESTART_CODE),
    env_set: MAIBOT_ENV_SET,
    env_remove: MAIBOT_ENV_REMOVE,
};

/// The standalone NapCat adapter (`✅ Adapter 启动成功! 监听: ws://<host>:<port>`); SIGINT
/// is its graceful shutdown.
pub static NAPCAT_ADAPTER: Profile = Profile {
    name: "napcat-adapter",
    ready_lines: &["Adapter 启动成功"],
    wait_ports: true,
    stop: Some(StopPolicy {
        signal: Signal::SIGINT,
        grace: Duration::from_secs(10),
    }),
    restart_exit_code: None,
    env_set: &[],
    env_remove: &[],
};

/// Anything else: ready when spawned, stopped as configured, environment as inherited
/// (minus the launcher's own variables).
pub static GENERIC: Profile = Profile {
    name: "generic",
    ready_lines: &[],
    wait_ports: false,
    stop: None,
    restart_exit_code: None,
    env_set: &[],
    env_remove: &[],
};

/// The profile of a component of `kind` installed in `dir`. MaiBot 0.x ships a
/// `template/` folder (its config templates) that 1.x no longer has.
pub fn profile_for(kind: &str, dir: &Path) -> &'static Profile {
    match kind {
        "main" if dir.join("template").is_dir() => &MAIBOT_0X,
        "main" => &MAIBOT_1X,
        "napcat-ada" => &NAPCAT_ADAPTER,
        _ => &GENERIC,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn kinds_and_layouts_pick_their_profiles() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(profile_for("main", dir.path()).name, "maibot-1.x");
        std::fs::create_dir(dir.path().join("template")).unwrap();
        assert_eq!(profile_for("main", dir.path()).name, "maibot-0.x");
        assert_eq!(profile_for("napcat-ada", dir.path()).name, "napcat-adapter");
        assert_eq!(profile_for("napcat", dir.path()).name, "generic");
        assert!(profile_for("napcat", dir.path()).ready_at_spawn());
        assert!(!profile_for("main", dir.path()).ready_at_spawn());
    }

    #[test]
    fn the_row_env_comes_after_the_profile_and_survives_removal() {
        let spec = MAIBOT_1X.spec(
            vec!["python3".into()],
            "/tmp",
            vec![
                ("PORT".into(), "8123".into()),
                ("MAIBOT_WORKER_PROCESS".into(), "1".into()),
            ],
        );
        assert!(spec.env_remove.iter().any(|n| n == "HOST"));
        assert!(spec.env_remove.iter().any(|n| n == "MAILAUNCHER_"));
        assert_eq!(spec.env[0], ("MAIBOT_WORKER_PROCESS".into(), "1".into()));
        assert_eq!(
            spec.env.last().unwrap(),
            &("MAIBOT_WORKER_PROCESS".into(), "1".into())
        );
        assert!(spec.env.contains(&("PORT".into(), "8123".into())));
    }
}
