//! What a MaiBot checkout looks like per version range, as data: which templates become
//! which config files, where host and port go, which Python it needs.

use super::versions::{VersionKey, parse_version};
use serde::Serialize;
use std::path::Path;

/// The two known MaiBot tree layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// 0.7–0.12: `template/` with config templates and `template.env`; host/port in `.env`.
    V0,
    /// 1.x: no `template/`; MaiBot writes `config/*.toml` on first start; host/port live in
    /// `config/bot_config.toml`.
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

/// Where a TOML file keeps the listening address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TomlServerKeys {
    /// Config file relative to the MaiBot root.
    pub file: &'static str,
    /// Table name, matched case-insensitively.
    pub section: &'static str,
    /// Host key in that table.
    pub host_key: &'static str,
    /// Port key in that table.
    pub port_key: &'static str,
}

/// How to deploy one layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Which layout.
    pub layout: Layout,
    /// Lowest tag version (inclusive) this recipe applies to.
    pub from: (u64, u64),
    /// First tag version (exclusive) it no longer applies to.
    pub until: (u64, u64),
    /// Minimum Python `(major, minor)`.
    pub min_python: (u32, u32),
    /// Files that must exist in the checkout.
    pub required: &'static [&'static str],
    /// At least one of these must exist (all that exist are copied).
    pub one_of: &'static [&'static str],
    /// Templates copied when present; required ones are listed in `required`/`one_of`.
    pub copies: &'static [TemplateCopy],
    /// `.env` made from this template, with exactly `HOST` and `PORT` set.
    pub dotenv: Option<TemplateCopy>,
    /// Host/port in a TOML file MaiBot writes itself; edited only if it already exists.
    pub toml_server: Option<TomlServerKeys>,
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

/// The 0.x recipe.
pub const RECIPE_V0: Recipe = Recipe {
    layout: Layout::V0,
    from: (0, 7),
    until: (1, 0),
    min_python: (3, 10),
    required: &[
        "bot.py",
        "template/bot_config_template.toml",
        "template/template.env",
    ],
    one_of: &[
        "template/lpmm_config_template.toml",
        "template/model_config_template.toml",
    ],
    copies: V0_COPIES,
    dotenv: Some(TemplateCopy {
        template: "template/template.env",
        target: ".env",
    }),
    toml_server: None,
};

/// The 1.x recipe. The `[server]` table is where this launcher expects 1.x to keep its
/// listening address; it is only edited when MaiBot already generated the file.
pub const RECIPE_V1: Recipe = Recipe {
    layout: Layout::V1,
    from: (1, 0),
    until: (2, 0),
    min_python: (3, 12),
    required: &["bot.py"],
    one_of: &[],
    copies: &[],
    dotenv: None,
    toml_server: Some(TomlServerKeys {
        file: "config/bot_config.toml",
        section: "server",
        host_key: "host",
        port_key: "port",
    }),
};

/// Every recipe, oldest layout first.
pub const RECIPES: &[&Recipe] = &[&RECIPE_V0, &RECIPE_V1];

/// The lowest Python any recipe accepts (used before a branch's layout is known).
pub fn min_python_any() -> (u32, u32) {
    RECIPES
        .iter()
        .map(|r| r.min_python)
        .min()
        .unwrap_or((3, 10))
}

/// The adapter's own requirements: its entry point and its config template.
pub const ADAPTER_REQUIRED: &[&str] = &["main.py", ADAPTER_TEMPLATE];
/// The adapter's config template.
pub const ADAPTER_TEMPLATE: &str = "template/template_config.toml";
/// The adapter's config file.
pub const ADAPTER_CONFIG: &str = "config.toml";

impl Recipe {
    /// Whether the tag version falls in this recipe's range.
    pub fn covers(&self, v: &VersionKey) -> bool {
        let mm = v.major_minor();
        mm >= self.from && mm < self.until
    }

    /// Checks that the checkout at `root` has what this recipe needs; the error names every
    /// missing file.
    pub fn check_tree(&self, root: &Path) -> Result<(), String> {
        let mut missing: Vec<String> = self
            .required
            .iter()
            .filter(|f| !root.join(f).is_file())
            .map(|f| f.to_string())
            .collect();
        if !self.one_of.is_empty() && !self.one_of.iter().any(|f| root.join(f).is_file()) {
            missing.push(format!("one of {}", self.one_of.join(" / ")));
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the checkout does not match the {} layout: missing {}",
                self.layout_name(),
                missing.join(", ")
            ))
        }
    }

    /// `0.x` / `1.x`.
    pub fn layout_name(&self) -> &'static str {
        match self.layout {
            Layout::V0 => "0.x",
            Layout::V1 => "1.x",
        }
    }
}

/// The recipe for a release tag, by version range.
pub fn recipe_for_tag(tag: &str) -> Option<&'static Recipe> {
    let v = parse_version(tag)?;
    RECIPES.iter().copied().find(|r| r.covers(&v))
}

/// The recipe for a checked-out branch: `template/` means 0.x, its absence 1.x; the tree
/// must then satisfy that recipe. The error says what was looked for and missing.
pub fn detect_recipe(root: &Path) -> Result<&'static Recipe, String> {
    let recipe: &'static Recipe = if root.join("template").is_dir() {
        &RECIPE_V0
    } else {
        &RECIPE_V1
    };
    recipe.check_tree(root).map(|()| recipe).map_err(|e| {
        format!("{e} (layout detected from the presence of template/: matches no known recipe)")
    })
}
