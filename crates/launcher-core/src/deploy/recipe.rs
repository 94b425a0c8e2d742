//! What a MaiBot release family looks like, as data: which files its tree has, where each
//! port it opens is set, which adapter pairs with it and how that adapter is installed,
//! which Python it needs and where its telemetry switch lives. Derived from the real trees
//! (`shared/upstream/FACTS.md`); a family not listed here is refused, never guessed.

use super::versions::{VersionKey, parse_version};
use serde::Serialize;
use std::path::Path;

/// The two MaiBot tree layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// 0.7–0.12: `template/` with config templates and `template.env`; ports in `.env`.
    V0,
    /// 1.x: no `template/`; the launcher writes `config/bot_config.toml` before the first
    /// start (MaiBot would otherwise generate it with its default ports).
    V1,
}

/// A template copied into place (and possibly edited afterwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateCopy {
    /// Template path relative to the component root.
    pub template: &'static str,
    /// Destination relative to the component root.
    pub target: &'static str,
}

/// Where a value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A variable of the checkout's `.env` (0.x loads it with override, so it beats the
    /// process environment).
    Env(&'static str),
    /// A key of a TOML table in a file relative to the component root.
    Toml {
        /// File relative to the component root.
        file: &'static str,
        /// Table name (matched case-insensitively).
        table: &'static str,
        /// Key in that table.
        key: &'static str,
    },
}

/// What a port is for. Every port an instance opens has a role, so each can be allocated,
/// registered and written where its version reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum PortRole {
    /// MaiBot's main server (adapters connect to its `/ws`).
    Main,
    /// MaiBot's WebUI.
    Webui,
    /// The standalone adapter's server that NapCat's reverse WebSocket connects to.
    AdapterNapcat,
    /// NapCat's forward WebSocket server that the plugin adapter connects to (NapCat
    /// listens; the port is reserved for the instance all the same).
    NapcatWs,
}

impl PortRole {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PortRole::Main => "main",
            PortRole::Webui => "webui",
            PortRole::AdapterNapcat => "adapter_napcat",
            PortRole::NapcatWs => "napcat_ws",
        }
    }
}

/// One port of a family: where its number and its host go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    /// What it is for.
    pub role: PortRole,
    /// Where the number is written.
    pub port: Key,
    /// Where the bind host is written (`None`: not configurable, or written elsewhere).
    pub host: Option<Key>,
    /// Whether the host key holds an array of hosts (1.x `[webui] host`).
    pub host_is_list: bool,
    /// Whether a process of this instance listens on it (NapCat's port is only reserved).
    pub listens: bool,
    /// The component that listens (`main`, `napcat-ada`), when one does.
    pub component: &'static str,
}

/// How config files come to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigStyle {
    /// 0.x: copied from `template/`; the process exits after creating each one itself, so
    /// the launcher pre-creates all of them.
    Templates {
        /// Template copies (missing optional templates are skipped).
        copies: &'static [TemplateCopy],
        /// `.env` from this template.
        dotenv: TemplateCopy,
    },
    /// 1.x: MaiBot generates `bot_config.toml` from code defaults when missing and keeps a
    /// file whose `[inner] version` equals its own; the launcher writes one with that
    /// version (read from the checkout) and only the keys it must set.
    Generated {
        /// The file written.
        bot_config: &'static str,
        /// Source file that declares the config version.
        version_file: &'static str,
        /// The constant in it (`CONFIG_VERSION = "8.14.37"`).
        version_const: &'static str,
        /// Lowest config version that does not trigger the interactive 0.x-upgrade prompt.
        min_version: &'static str,
    },
}

/// How the NapCat adapter of a family is installed and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterStyle {
    /// A separate checkout and process (`python main.py`), paired through MaiBot's main port.
    Standalone,
    /// A MaiBot plugin copied into `plugins/<dir>/`, chosen by its manifest's
    /// `host_application` range; no process of its own.
    Plugin {
        /// Folder under the MaiBot checkout.
        dir: &'static str,
    },
}

/// How MaiBot decides whether a plugin whose host range ends below the running version is
/// still loaded ("compatibility mode").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostGate {
    /// 1.0.x: any host with the range maximum's major version.
    SameMajor,
    /// 1.1 and later: only a host with the maximum's major and minor version.
    SameMinor,
}

/// How to deploy one release family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Family name as shown to users (`0.x`, `1.0-1.1`, `1.2`).
    pub family: &'static str,
    /// Which layout.
    pub layout: Layout,
    /// Lowest version (inclusive) this recipe applies to.
    pub from: (u64, u64),
    /// First version (exclusive) it no longer applies to.
    pub until: (u64, u64),
    /// Minimum Python `(major, minor)` when the checkout's `pyproject.toml` says nothing.
    pub min_python: (u32, u32),
    /// Files that must exist in the checkout.
    pub required: &'static [&'static str],
    /// Config files.
    pub config: ConfigStyle,
    /// Every port the family opens.
    pub ports: &'static [PortSpec],
    /// The adapter.
    pub adapter: AdapterStyle,
    /// Constraint lines (pip/uv `-c` syntax) for the standalone adapter's install. It ships
    /// no lock file, so its open requirements would take whatever the index has today,
    /// which can be a release that no longer speaks MaiBot's protocol.
    pub adapter_constraints: &'static [&'static str],
    /// Host version gate for plugin adapters.
    pub gate: HostGate,
    /// Where the telemetry switch is (`true` sends anonymous statistics).
    pub telemetry: Key,
}

const V0_COPIES: &[TemplateCopy] = &[
    TemplateCopy {
        template: "template/bot_config_template.toml",
        target: "config/bot_config.toml",
    },
    TemplateCopy {
        template: "template/lpmm_config_template.toml",
        target: "config/lpmm_config.toml",
    },
    TemplateCopy {
        template: "template/model_config_template.toml",
        target: "config/model_config.toml",
    },
];

/// The standalone adapter's config file and its keys.
pub const ADAPTER_CONFIG: &str = "config.toml";
/// The standalone adapter's config template.
pub const ADAPTER_TEMPLATE: &str = "template/template_config.toml";
/// The standalone adapter's own requirements: its entry point and its config template.
pub const ADAPTER_REQUIRED: &[&str] = &["main.py", ADAPTER_TEMPLATE];
/// The plugin adapter's manifest.
pub const PLUGIN_MANIFEST: &str = "_manifest.json";
/// The plugin adapter's config file (inside its plugin folder).
pub const PLUGIN_CONFIG: &str = "config.toml";

const V0_PORTS: &[PortSpec] = &[
    PortSpec {
        role: PortRole::Main,
        port: Key::Env("PORT"),
        host: Some(Key::Env("HOST")),
        host_is_list: false,
        listens: true,
        component: "main",
    },
    PortSpec {
        role: PortRole::Webui,
        port: Key::Env("WEBUI_PORT"),
        host: Some(Key::Env("WEBUI_HOST")),
        host_is_list: false,
        listens: true,
        component: "main",
    },
    PortSpec {
        role: PortRole::AdapterNapcat,
        port: Key::Toml {
            file: ADAPTER_CONFIG,
            table: "napcat_server",
            key: "port",
        },
        host: None,
        host_is_list: false,
        listens: true,
        component: "napcat-ada",
    },
];

const V1_BOT_CONFIG: &str = "config/bot_config.toml";

const V1_PORTS: &[PortSpec] = &[
    PortSpec {
        role: PortRole::Main,
        port: Key::Toml {
            file: V1_BOT_CONFIG,
            table: "maim_message",
            key: "ws_server_port",
        },
        host: Some(Key::Toml {
            file: V1_BOT_CONFIG,
            table: "maim_message",
            key: "ws_server_host",
        }),
        host_is_list: false,
        listens: true,
        component: "main",
    },
    PortSpec {
        role: PortRole::Webui,
        port: Key::Toml {
            file: V1_BOT_CONFIG,
            table: "webui",
            key: "port",
        },
        host: Some(Key::Toml {
            file: V1_BOT_CONFIG,
            table: "webui",
            key: "host",
        }),
        host_is_list: true,
        listens: true,
        component: "main",
    },
    PortSpec {
        role: PortRole::NapcatWs,
        port: Key::Toml {
            file: PLUGIN_CONFIG,
            table: "napcat_server",
            key: "port",
        },
        host: Some(Key::Toml {
            file: PLUGIN_CONFIG,
            table: "napcat_server",
            key: "host",
        }),
        host_is_list: false,
        listens: false,
        component: "",
    },
];

const V1_CONFIG: ConfigStyle = ConfigStyle::Generated {
    bot_config: V1_BOT_CONFIG,
    version_file: "src/config/config.py",
    version_const: "CONFIG_VERSION",
    min_version: "8.9.4",
};

/// Where the plugin adapter goes (the folder upstream's Docker image uses).
pub const PLUGIN_ADAPTER_DIR: &str = "plugins/MaiBot-Napcat-Adapter";

/// 0.7–0.12: `.env` ports, template configs, standalone adapter.
pub const RECIPE_V0: Recipe = Recipe {
    family: "0.x",
    layout: Layout::V0,
    from: (0, 7),
    until: (1, 0),
    min_python: (3, 10),
    required: &[
        "bot.py",
        "template/bot_config_template.toml",
        "template/template.env",
    ],
    config: ConfigStyle::Templates {
        copies: V0_COPIES,
        dotenv: TemplateCopy {
            template: "template/template.env",
            target: ".env",
        },
    },
    ports: V0_PORTS,
    adapter: AdapterStyle::Standalone,
    // maim-message 0.7 replaced the plain WebSocket client with Socket.IO; MaiBot 0.x
    // serves plain WebSocket on `/ws` (its uv.lock pins 0.5.7), so an adapter with 0.7
    // never connects (404 / "Connection closed" on every retry). The 0.6 line is what
    // the standalone adapter 0.6/0.7 was released against (it asks for >=0.6.2).
    adapter_constraints: &["maim-message<0.7"],
    gate: HostGate::SameMajor,
    telemetry: Key::Toml {
        file: "config/bot_config.toml",
        table: "telemetry",
        key: "enable",
    },
};

/// 1.0–1.1: generated configs, plugin adapter. 1.0 loads a plugin built for an older 1.x
/// in compatibility mode; 1.1 only for the same minor (the gate is read per version by
/// [`Recipe::gate_for`]).
pub const RECIPE_V1_0: Recipe = Recipe {
    family: "1.0-1.1",
    layout: Layout::V1,
    from: (1, 0),
    until: (1, 2),
    min_python: (3, 12),
    required: &["bot.py", "pyproject.toml"],
    config: V1_CONFIG,
    ports: V1_PORTS,
    adapter: AdapterStyle::Plugin {
        dir: PLUGIN_ADAPTER_DIR,
    },
    adapter_constraints: &[],
    gate: HostGate::SameMajor,
    telemetry: Key::Toml {
        file: V1_BOT_CONFIG,
        table: "telemetry",
        key: "enable",
    },
};

/// 1.2.x: as 1.1, with the adapter line that requires host 1.2.
pub const RECIPE_V1_2: Recipe = Recipe {
    family: "1.2",
    layout: Layout::V1,
    from: (1, 2),
    until: (1, 3),
    min_python: (3, 12),
    required: &["bot.py", "pyproject.toml"],
    config: V1_CONFIG,
    ports: V1_PORTS,
    adapter: AdapterStyle::Plugin {
        dir: PLUGIN_ADAPTER_DIR,
    },
    adapter_constraints: &[],
    gate: HostGate::SameMinor,
    telemetry: Key::Toml {
        file: V1_BOT_CONFIG,
        table: "telemetry",
        key: "enable",
    },
};

/// Every recipe, oldest family first.
pub const RECIPES: &[&Recipe] = &[&RECIPE_V0, &RECIPE_V1_0, &RECIPE_V1_2];

/// The lowest Python any recipe accepts (used before a branch's family is known).
pub fn min_python_any() -> (u32, u32) {
    RECIPES
        .iter()
        .map(|r| r.min_python)
        .min()
        .unwrap_or((3, 10))
}

impl Recipe {
    /// Whether the version falls in this recipe's range.
    pub fn covers(&self, v: &VersionKey) -> bool {
        let mm = v.major_minor();
        mm >= self.from && mm < self.until
    }

    /// The plugin host gate for MaiBot `v` (1.0.x: same major; later: same minor).
    pub fn gate_for(&self, v: &VersionKey) -> HostGate {
        if v.major_minor() == (1, 0) {
            HostGate::SameMajor
        } else {
            HostGate::SameMinor
        }
    }

    /// The port spec for a role, when this family has that port.
    pub fn port(&self, role: PortRole) -> Option<&PortSpec> {
        self.ports.iter().find(|p| p.role == role)
    }

    /// The roles this family needs, with or without an adapter.
    pub fn roles(&self, with_adapter: bool) -> Vec<PortRole> {
        self.ports
            .iter()
            .map(|p| p.role)
            .filter(|r| with_adapter || !matches!(r, PortRole::AdapterNapcat | PortRole::NapcatWs))
            .collect()
    }

    /// Checks that the checkout at `root` has what this recipe needs; the error names every
    /// missing file.
    pub fn check_tree(&self, root: &Path) -> Result<(), String> {
        let missing: Vec<String> = self
            .required
            .iter()
            .filter(|f| !root.join(f).is_file())
            .map(|f| f.to_string())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the checkout does not match the MaiBot {} layout: missing {}",
                self.family,
                missing.join(", ")
            ))
        }
    }

    /// `0.x` / `1.0-1.1` / `1.2`.
    pub fn layout_name(&self) -> &'static str {
        self.family
    }
}

/// The recipe for a release version.
pub fn recipe_for_version(v: &VersionKey) -> Option<&'static Recipe> {
    RECIPES.iter().copied().find(|r| r.covers(v))
}

/// The recipe for a release tag, by version range.
pub fn recipe_for_tag(tag: &str) -> Option<&'static Recipe> {
    recipe_for_version(&parse_version(tag)?)
}

/// `[project] version` of a checkout's `pyproject.toml`.
pub fn project_version(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("pyproject.toml")).ok()?;
    let doc: toml_edit::DocumentMut = text.parse().ok()?;
    doc.get("project")?
        .get("version")?
        .as_str()
        .map(str::to_string)
}

/// The recipe for a checked-out branch: `template/` means 0.x; otherwise the family of
/// `pyproject.toml`'s `[project] version`. The tree must then satisfy that recipe. The
/// error says what was looked for and what is missing.
pub fn detect_recipe(root: &Path) -> Result<&'static Recipe, String> {
    let recipe: &'static Recipe = if root.join("template").is_dir() {
        &RECIPE_V0
    } else {
        let v = project_version(root).ok_or_else(|| {
            "the checkout has neither template/ (0.x) nor a [project] version in \
             pyproject.toml (1.x): matches no known MaiBot layout"
                .to_string()
        })?;
        let key = parse_version(&v)
            .ok_or_else(|| format!("pyproject.toml version {v:?} is not a version number"))?;
        recipe_for_version(&key).ok_or_else(|| {
            format!(
                "MaiBot {v} belongs to no release family this launcher knows (known: {})",
                known_families()
            )
        })?
    };
    recipe.check_tree(root).map(|()| recipe)
}

/// `0.x, 1.0-1.1, 1.2`.
pub fn known_families() -> String {
    RECIPES
        .iter()
        .map(|r| r.family)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads `NAME = "x.y.z"` from a Python source file (the 1.x config version constant).
pub fn read_py_constant(path: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix(name)?;
        // `CONFIG_VERSION: str = "8.14.20"` or `CONFIG_VERSION = "8.14.20"`.
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix(':') {
            Some(r) => r.split_once('=')?.1,
            None => rest.strip_prefix('=')?,
        };
        let rest = rest.trim();
        let q = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let inner = &rest[1..];
        inner.find(q).map(|end| inner[..end].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_by_version() {
        let f = |t: &str| recipe_for_tag(t).map(|r| r.family);
        assert_eq!(f("0.12.3"), Some("0.x"));
        assert_eq!(f("v0.7.0"), Some("0.x"));
        assert_eq!(f("1.0.8"), Some("1.0-1.1"));
        assert_eq!(f("1.1.4"), Some("1.0-1.1"));
        assert_eq!(f("1.2.1"), Some("1.2"));
        assert_eq!(f("1.3.0"), None);
        assert_eq!(f("0.6.3"), None);
        assert_eq!(f("2.0.0"), None);
    }

    #[test]
    fn py_constant() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.py");
        std::fs::write(
            &p,
            "MMC_VERSION: str = read()\nCONFIG_VERSION: str = \"8.14.20\"\nX = 'a'\n",
        )
        .unwrap();
        assert_eq!(
            read_py_constant(&p, "CONFIG_VERSION").as_deref(),
            Some("8.14.20")
        );
        assert_eq!(read_py_constant(&p, "X").as_deref(), Some("a"));
        assert_eq!(read_py_constant(&p, "Y"), None);
    }

    #[test]
    fn roles_without_adapter() {
        assert_eq!(
            RECIPE_V0.roles(false),
            vec![PortRole::Main, PortRole::Webui]
        );
        assert_eq!(
            RECIPE_V1_2.roles(true),
            vec![PortRole::Main, PortRole::Webui, PortRole::NapcatWs]
        );
    }
}
