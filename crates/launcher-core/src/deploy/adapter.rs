//! Which NapCat adapter pairs with a MaiBot version.
//!
//! - 0.x runs the *standalone* adapter: the newest adapter release tag below 1.0 (its line
//!   ends at 0.7.0, also the `standalone` branch), or that branch when no such tag exists.
//! - 1.x loads the *plugin* adapter, and loads it only when the plugin's `_manifest.json`
//!   `host_application` range admits the running MaiBot: inside the range, or (compatibility
//!   mode) above its maximum with the same major (1.0.x) or the same major and minor (1.1
//!   and later). The pairing is read from the manifests themselves, never from a table of
//!   versions: a manifest that admits the host strictly wins over one that only admits it in
//!   compatibility mode; among equals the newest adapter version wins.

use super::recipe::HostGate;
use super::versions::{VersionKey, parse_version};
use serde::Serialize;

/// The parts of a plugin manifest that decide pairing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The adapter's own version.
    pub version: String,
    /// `host_application.min_version`.
    pub host_min: String,
    /// `host_application.max_version`.
    pub host_max: String,
    /// `id`, when present.
    pub id: Option<String>,
}

impl Manifest {
    /// Parses `_manifest.json` text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("_manifest.json is not JSON: {e}"))?;
        let s = |ptr: &str| v.pointer(ptr).and_then(|x| x.as_str()).map(str::to_string);
        Ok(Self {
            version: s("/version").ok_or("_manifest.json has no version")?,
            host_min: s("/host_application/min_version")
                .ok_or("_manifest.json has no host_application.min_version")?,
            host_max: s("/host_application/max_version")
                .ok_or("_manifest.json has no host_application.max_version")?,
            id: s("/id"),
        })
    }

    /// How MaiBot `host` would treat this plugin under `gate`.
    pub fn admits(&self, host: &VersionKey, gate: HostGate) -> Admission {
        let (Some(min), Some(max)) = (parse_version(&self.host_min), parse_version(&self.host_max))
        else {
            return Admission::No;
        };
        // Compare release numbers only: a pre-release host is judged by its release.
        let h = host.parts;
        if h < min.parts {
            return Admission::No;
        }
        if h <= max.parts {
            return Admission::Strict;
        }
        let same = match gate {
            HostGate::SameMajor => h[0] == max.parts[0],
            HostGate::SameMinor => h[0] == max.parts[0] && h[1] == max.parts[1],
        };
        if same {
            Admission::Compat
        } else {
            Admission::No
        }
    }

    /// `1.4.0 (MaiBot 1.2.0–1.2.99)`.
    pub fn describe(&self) -> String {
        format!(
            "{} (MaiBot {}–{})",
            self.version, self.host_min, self.host_max
        )
    }
}

/// Whether a plugin loads on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Admission {
    /// Not loaded.
    No,
    /// Loaded with a compatibility warning.
    Compat,
    /// Inside the declared range.
    Strict,
}

/// One candidate the deployer looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// Tag, branch or commit as fetched.
    pub name: String,
    /// Its commit.
    pub commit: String,
    /// Its manifest.
    pub manifest: Manifest,
}

/// The best candidate for `host`: strict before compatibility mode, then the newest adapter
/// version, then the order given (tags and branches before history commits).
pub fn best<'a>(
    cands: &'a [Candidate],
    host: &VersionKey,
    gate: HostGate,
) -> Option<(&'a Candidate, Admission)> {
    let mut best: Option<(&Candidate, Admission, Option<VersionKey>)> = None;
    for c in cands {
        let a = c.manifest.admits(host, gate);
        if a == Admission::No {
            continue;
        }
        let v = parse_version(&c.manifest.version);
        let better = match &best {
            None => true,
            Some((_, ba, bv)) => (a, v.as_ref()) > (*ba, bv.as_ref()),
        };
        if better {
            best = Some((c, a, v));
        }
    }
    best.map(|(c, a, _)| (c, a))
}

/// The newest standalone adapter tag (below 1.0) among `tags`.
pub fn newest_standalone_tag(tags: &[(String, String)]) -> Option<&(String, String)> {
    tags.iter()
        .filter_map(|t| parse_version(&t.0).map(|k| (k, t)))
        .filter(|(k, _)| k.parts[0] == 0 && k.pre.is_none())
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, t)| t)
}

/// Plugin adapter tags (1.0 and later), newest first.
pub fn plugin_tags(tags: &[(String, String)]) -> Vec<&(String, String)> {
    let mut v: Vec<(VersionKey, &(String, String))> = tags
        .iter()
        .filter_map(|t| parse_version(&t.0).map(|k| (k, t)))
        .filter(|(k, _)| k.parts[0] >= 1)
        .collect();
    v.sort_by(|a, b| b.0.cmp(&a.0));
    v.into_iter().map(|(_, t)| t).collect()
}

/// Whether an adapter ref name is of the standalone line (`0.x` tags, `standalone` and
/// `dev` branches) — used to refuse a named adapter of the wrong kind before any fetch.
pub fn named_kind_is_standalone(name: &str) -> Option<bool> {
    match parse_version(name) {
        Some(k) => Some(k.parts[0] == 0),
        None if name == "standalone" || name == "dev" => Some(true),
        None if name == "main" => Some(false),
        // A commit or another branch: decided by its tree after the fetch.
        None => None,
    }
}

/// Every adapter ref the pairing can choose from, read from a bare cache of the adapter
/// repository (tags, the default branch, and the default branch's `_manifest.json`
/// history), refreshed through the configured URLs and mirrors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Catalog {
    /// Standalone release tags `(tag, commit)`.
    pub standalone: Vec<(String, String)>,
    /// Plugin candidates, tags and branch first, then history commits.
    pub plugins: Vec<Candidate>,
}

/// How a MaiBot version pairs, for the versions list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pairing {
    /// `standalone` or `plugin`.
    pub style: &'static str,
    /// The adapter ref a deploy would choose today, when one pairs.
    #[serde(rename = "ref")]
    pub refname: Option<String>,
    /// Its own version (plugin manifests), when known.
    pub version: Option<String>,
    /// `strict` / `compat` for plugins.
    pub admission: Option<Admission>,
}

impl Catalog {
    /// The pairing a deploy would make for MaiBot `host` of family `recipe`.
    pub fn pair(&self, host: Option<&VersionKey>, recipe: &super::recipe::Recipe) -> Pairing {
        match recipe.adapter {
            super::recipe::AdapterStyle::Standalone => Pairing {
                style: "standalone",
                refname: newest_standalone_tag(&self.standalone).map(|t| t.0.clone()),
                version: None,
                admission: None,
            },
            super::recipe::AdapterStyle::Plugin { .. } => {
                let best = host.and_then(|h| best(&self.plugins, h, recipe.gate_for(h)));
                Pairing {
                    style: "plugin",
                    refname: best.map(|(c, _)| c.name.clone()),
                    version: best.map(|(c, _)| c.manifest.version.clone()),
                    admission: best.map(|(_, a)| a),
                }
            }
        }
    }
}

/// Reads (and first refreshes) the adapter catalog kept as a bare repository at `cache`.
/// Every git call has `timeout`; a failed refresh falls back to what the cache holds.
pub(crate) async fn load_catalog(
    git: &std::path::Path,
    source: &super::config::Source,
    cache: &std::path::Path,
    timeout: std::time::Duration,
) -> Result<Catalog, String> {
    use super::process::{self, Cmd};
    let g = |args: &[&str]| {
        Cmd::new(git)
            .arg("--git-dir")
            .arg(cache)
            .args(args.iter().copied())
            .env("LC_ALL", "C")
    };
    let ok = |r: &Result<(process::Finished, Vec<String>), process::RunError>| matches!(r, Ok((f, _)) if f.status.success());
    if !cache.join("HEAD").is_file() {
        let init = Cmd::new(git).args(["init", "--bare", "-q"]).arg(cache);
        let r = process::capture(&init, timeout, None).await;
        if !ok(&r) {
            return Err(format!(
                "cannot create the adapter cache at {}",
                cache.display()
            ));
        }
    }
    let mut fetched = false;
    let mut errors = Vec::new();
    for url in source.urls() {
        let r = process::capture(
            &g(&[
                "fetch",
                "-q",
                "--prune",
                "--depth",
                "300",
                url,
                "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*",
            ]),
            timeout,
            None,
        )
        .await;
        match r {
            Ok((f, _)) if f.status.success() => {
                fetched = true;
                break;
            }
            Ok((f, _)) => errors.push(format!("{url}: {}", f.failure_summary())),
            Err(e) => errors.push(format!("{url}: {e}")),
        }
    }
    let refs = match process::capture(
        &g(&[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/tags",
            "refs/heads",
        ]),
        timeout,
        None,
    )
    .await
    {
        Ok((f, lines)) if f.status.success() => lines,
        _ => Vec::new(),
    };
    if refs.is_empty() {
        return Err(if fetched {
            "the adapter repository has no refs".to_string()
        } else {
            format!("cannot read the adapter repository: {}", errors.join("; "))
        });
    }
    let mut tags = Vec::new();
    let mut heads = Vec::new();
    for l in &refs {
        let Some((name, sha)) = l.split_once(' ') else {
            continue;
        };
        if let Some(t) = name.strip_prefix("refs/tags/") {
            tags.push((t.to_string(), sha.to_string()));
        } else if let Some(h) = name.strip_prefix("refs/heads/") {
            heads.push((h.to_string(), sha.to_string()));
        }
    }
    let manifest = |rev: String| {
        let cmd = g(&["show", &format!("{rev}:{}", super::recipe::PLUGIN_MANIFEST)]);
        async move {
            match process::capture(&cmd, timeout, None).await {
                Ok((f, lines)) if f.status.success() => Manifest::parse(&lines.join("\n")).ok(),
                _ => None,
            }
        }
    };
    let mut cat = Catalog::default();
    let mut seen = Vec::new();
    for (t, sha) in &tags {
        if let Some(m) = manifest(format!("refs/tags/{t}")).await {
            seen.push(sha.clone());
            cat.plugins.push(Candidate {
                name: t.clone(),
                commit: sha.clone(),
                manifest: m,
            });
        } else if parse_version(t).is_some_and(|k| k.parts[0] == 0) {
            cat.standalone.push((t.clone(), sha.clone()));
        }
    }
    let default = ["main", "master"]
        .iter()
        .find(|b| heads.iter().any(|(h, _)| h == *b))
        .map(|b| b.to_string());
    if let Some(b) = default {
        if let Some((_, sha)) = heads.iter().find(|(h, _)| *h == b)
            && let Some(m) = manifest(format!("refs/heads/{b}")).await
        {
            seen.push(sha.clone());
            cat.plugins.insert(
                0,
                Candidate {
                    name: b.clone(),
                    commit: sha.clone(),
                    manifest: m,
                },
            );
        }
        if let Ok((f, lines)) = process::capture(
            &g(&[
                "log",
                "--format=%H",
                &format!("refs/heads/{b}"),
                "--",
                super::recipe::PLUGIN_MANIFEST,
            ]),
            timeout,
            None,
        )
        .await
            && f.status.success()
        {
            for c in lines.iter().map(|l| l.trim().to_string()) {
                if c.is_empty() || seen.contains(&c) {
                    continue;
                }
                if let Some(m) = manifest(c.clone()).await {
                    seen.push(c.clone());
                    cat.plugins.push(Candidate {
                        name: c.get(..7).unwrap_or(&c).to_string(),
                        commit: c,
                        manifest: m,
                    });
                }
            }
        }
    }
    Ok(cat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: &str, min: &str, max: &str) -> Manifest {
        Manifest {
            version: v.into(),
            host_min: min.into(),
            host_max: max.into(),
            id: None,
        }
    }

    fn host(v: &str) -> VersionKey {
        parse_version(v).unwrap()
    }

    #[test]
    fn real_manifests_parse() {
        let base = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/upstream/adapter"
        );
        for (dir, ver, max) in [("main", "1.4.0", "1.2.99"), ("1.0.1", "1.0.1", "1.0.0")] {
            let p = format!("{base}/{dir}/_manifest.json");
            let Ok(text) = std::fs::read_to_string(&p) else {
                assert!(std::env::var_os("CI").is_none(), "{p} missing under CI");
                eprintln!("SKIPPED: {p} not present");
                return;
            };
            let man = Manifest::parse(&text).unwrap();
            assert_eq!((man.version.as_str(), man.host_max.as_str()), (ver, max));
        }
    }

    #[test]
    fn gates() {
        let tag101 = m("1.0.1", "1.0.0", "1.0.0");
        let main140 = m("1.4.0", "1.2.0", "1.2.99");
        let c133 = m("1.3.3", "1.0.0", "1.2.99");
        assert_eq!(
            tag101.admits(&host("1.0.8"), HostGate::SameMajor),
            Admission::Compat
        );
        assert_eq!(
            tag101.admits(&host("1.1.4"), HostGate::SameMinor),
            Admission::No
        );
        assert_eq!(
            main140.admits(&host("1.0.8"), HostGate::SameMajor),
            Admission::No
        );
        assert_eq!(
            main140.admits(&host("1.2.1"), HostGate::SameMinor),
            Admission::Strict
        );
        assert_eq!(
            c133.admits(&host("1.1.4"), HostGate::SameMinor),
            Admission::Strict
        );
        let cands = vec![
            Candidate {
                name: "main".into(),
                commit: "a".into(),
                manifest: main140.clone(),
            },
            Candidate {
                name: "1.0.1".into(),
                commit: "b".into(),
                manifest: tag101,
            },
            Candidate {
                name: "85bec00".into(),
                commit: "c".into(),
                manifest: c133,
            },
        ];
        let pick = |v: &str, g| best(&cands, &host(v), g).map(|(c, a)| (c.name.as_str(), a));
        assert_eq!(
            pick("1.2.1", HostGate::SameMinor),
            Some(("main", Admission::Strict))
        );
        assert_eq!(
            pick("1.0.8", HostGate::SameMajor),
            Some(("85bec00", Admission::Strict))
        );
        assert_eq!(pick("1.3.0", HostGate::SameMinor), None);
    }

    #[test]
    fn standalone_tags() {
        let tags: Vec<(String, String)> = ["0.2.3", "0.7.0", "0.6.0", "1.0.1", "0.8.0-rc.1"]
            .iter()
            .map(|t| (t.to_string(), String::new()))
            .collect();
        assert_eq!(
            newest_standalone_tag(&tags).map(|t| t.0.as_str()),
            Some("0.7.0")
        );
        assert_eq!(
            plugin_tags(&tags)
                .iter()
                .map(|t| t.0.as_str())
                .collect::<Vec<_>>(),
            vec!["1.0.1"]
        );
        assert_eq!(named_kind_is_standalone("0.7.0"), Some(true));
        assert_eq!(named_kind_is_standalone("1.0.1"), Some(false));
        assert_eq!(named_kind_is_standalone("standalone"), Some(true));
        assert_eq!(named_kind_is_standalone("85bec00"), None);
    }
}
