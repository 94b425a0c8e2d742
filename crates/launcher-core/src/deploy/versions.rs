//! Which MaiBot versions can be deployed: release tags and the `main`/`dev` branches, read
//! with `git ls-remote` (mirrors tried in order) and cached.

use super::cancel::CancelToken;
use super::config::Source;
use super::process::{self, Cmd, RunError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::cmp::Ordering;
use std::path::Path;
use std::time::{Duration, Instant};

/// Branches offered next to the release tags, in this order.
pub const OFFERED_BRANCHES: &[&str] = &["main", "dev"];

/// Whether a version is a tag or a branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    /// A release tag: immutable.
    Tag,
    /// A branch: moves; its layout is detected after checkout.
    Branch,
}

/// One deployable version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionEntry {
    /// The tag or branch name exactly as upstream spells it (e.g. `v0.10.1`, `main`).
    pub name: String,
    /// Tag or branch.
    pub kind: RefKind,
    /// The commit the ref points at (peeled for annotated tags).
    pub commit: String,
    /// Tags with a pre-release suffix (`0.8.0-beta.1`).
    pub prerelease: bool,
}

/// The version list as served to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionList {
    /// Release tags newest first, then the offered branches that exist.
    pub versions: Vec<VersionEntry>,
    /// The URL that answered.
    pub source: String,
    /// When the list was read from the remote.
    pub fetched_at: DateTime<Utc>,
    /// True when the last refresh failed and this is the previous good list.
    pub stale: bool,
    /// Why the last refresh failed (only when `stale`).
    pub error: Option<String>,
}

impl VersionList {
    /// The entry named exactly `name`.
    pub fn find(&self, name: &str) -> Option<&VersionEntry> {
        self.versions.iter().find(|v| v.name == name)
    }

    /// Just the names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.versions.iter().map(|v| v.name.as_str()).collect()
    }
}

/// A parsed release number: up to four numeric parts plus an optional pre-release suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionKey {
    /// Numeric parts, padded with zeros to four.
    pub parts: [u64; 4],
    /// Text after the first `-`, if any.
    pub pre: Option<String>,
}

impl VersionKey {
    /// `major.minor`.
    pub fn major_minor(&self) -> (u64, u64) {
        (self.parts[0], self.parts[1])
    }
}

impl Ord for VersionKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts
            .cmp(&other.parts)
            .then_with(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                // A release sorts after its own pre-releases.
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => cmp_prerelease(a, b),
            })
    }
}

impl PartialOrd for VersionKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Semver pre-release order: dot-separated identifiers compared left to right, numeric
/// ones as numbers (`pre.2 < pre.9 < pre.24`), numeric before alphanumeric, and a shorter
/// list before a longer one it prefixes (`rc < rc.1`).
fn cmp_prerelease(a: &str, b: &str) -> Ordering {
    let mut x = a.split('.');
    let mut y = b.split('.');
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => p.cmp(q),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// Parses `v0.10.1`, `0.7`, `1.0.0-rc.1`; `None` for anything that is not a version
/// (`EasyInstall-windows`, `latest`).
pub fn parse_version(tag: &str) -> Option<VersionKey> {
    let t = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
    let t = t.split('+').next().unwrap_or(t);
    let (core, pre) = match t.split_once('-') {
        Some((c, p)) if !p.is_empty() => (c, Some(p.to_string())),
        Some(_) => return None,
        None => (t, None),
    };
    let mut parts = [0u64; 4];
    let mut n = 0;
    for piece in core.split('.') {
        if n == 4 || piece.is_empty() || !piece.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        parts[n] = piece.parse().ok()?;
        n += 1;
    }
    if n < 2 {
        // A bare number ("2024") is more likely a date or build id than a release.
        return None;
    }
    Some(VersionKey { parts, pre })
}

/// Refs read from a remote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RemoteRefs {
    /// `(tag, commit)`, peeled where the remote sent `^{}`.
    pub(crate) tags: Vec<(String, String)>,
    /// `(branch, commit)`.
    pub(crate) heads: Vec<(String, String)>,
    /// The branch `HEAD` points at, when the remote said.
    pub(crate) default_branch: Option<String>,
}

/// Parses `git ls-remote --symref` output.
pub(crate) fn parse_ls_remote(lines: &[String]) -> RemoteRefs {
    let mut refs = RemoteRefs::default();
    let mut peeled: Vec<(String, String)> = Vec::new();
    for line in lines {
        if let Some(rest) = line.strip_prefix("ref: ") {
            if let Some((target, name)) = rest.split_once('\t')
                && name.trim() == "HEAD"
                && let Some(b) = target.trim().strip_prefix("refs/heads/")
            {
                refs.default_branch = Some(b.to_string());
            }
            continue;
        }
        let Some((sha, name)) = line.split_once('\t') else {
            continue;
        };
        let (sha, name) = (sha.trim().to_string(), name.trim());
        if let Some(tag) = name.strip_prefix("refs/tags/") {
            match tag.strip_suffix("^{}") {
                Some(t) => peeled.push((t.to_string(), sha)),
                None => refs.tags.push((tag.to_string(), sha)),
            }
        } else if let Some(b) = name.strip_prefix("refs/heads/") {
            refs.heads.push((b.to_string(), sha));
        }
    }
    for (tag, sha) in peeled {
        if let Some(t) = refs.tags.iter_mut().find(|(n, _)| *n == tag) {
            t.1 = sha;
        }
    }
    refs
}

/// Release tags newest first (non-version tags dropped), then the offered branches.
pub(crate) fn build_versions(refs: &RemoteRefs) -> Vec<VersionEntry> {
    let mut tags: Vec<(VersionKey, &(String, String))> = refs
        .tags
        .iter()
        .filter_map(|t| parse_version(&t.0).map(|k| (k, t)))
        .collect();
    tags.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.0.cmp(&b.1.0)));
    let mut out: Vec<VersionEntry> = tags
        .into_iter()
        .map(|(k, (name, sha))| VersionEntry {
            name: name.clone(),
            kind: RefKind::Tag,
            commit: sha.clone(),
            prerelease: k.pre.is_some(),
        })
        .collect();
    for b in OFFERED_BRANCHES {
        if let Some((name, sha)) = refs.heads.iter().find(|(n, _)| n == b) {
            out.push(VersionEntry {
                name: name.clone(),
                kind: RefKind::Branch,
                commit: sha.clone(),
                prerelease: false,
            });
        }
    }
    out
}

/// `git ls-remote` against each URL of `source` in order until one answers. Returns the
/// refs and the URL that answered, or every attempt's error.
pub(crate) async fn ls_remote(
    git: &Path,
    source: &Source,
    timeout: Duration,
    cancel: Option<&CancelToken>,
    mut on_attempt_failed: impl FnMut(&str, &str),
) -> Result<(RemoteRefs, String), LsRemoteError> {
    let mut errors = Vec::new();
    for url in source.urls() {
        let cmd = Cmd::new(git)
            .args([
                "ls-remote",
                "--symref",
                url,
                "HEAD",
                "refs/heads/*",
                "refs/tags/*",
            ])
            .env("LC_ALL", "C");
        match process::capture(&cmd, timeout, cancel).await {
            Ok((fin, out)) if fin.status.success() => {
                return Ok((parse_ls_remote(&out), url.to_string()));
            }
            Ok((fin, _)) => {
                let e = fin.failure_summary();
                on_attempt_failed(url, &e);
                errors.push(format!("{url}: {e}"));
            }
            Err(RunError::Canceled) => return Err(LsRemoteError::Canceled),
            Err(e) => {
                let e = e.to_string();
                on_attempt_failed(url, &e);
                errors.push(format!("{url}: {e}"));
            }
        }
    }
    if errors.is_empty() {
        errors.push("no URL configured".to_string());
    }
    Err(LsRemoteError::Failed(errors.join("; ")))
}

/// Why no ref list could be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LsRemoteError {
    #[error("{0}")]
    Failed(String),
    #[error("canceled")]
    Canceled,
}

/// The cached version list of one source.
#[derive(Debug)]
pub(crate) struct VersionCache {
    ttl: Duration,
    // A tokio mutex held across the refresh, so concurrent callers wait for one ls-remote
    // instead of each starting their own.
    slot: tokio::sync::Mutex<Option<(Instant, VersionList)>>,
}

impl VersionCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slot: tokio::sync::Mutex::new(None),
        }
    }

    /// The cached list while fresh (unless `force`), else a refresh; a failed refresh
    /// returns the last good list marked stale, or the error when there is none.
    pub(crate) async fn get(
        &self,
        force: bool,
        git: &Path,
        source: &Source,
        timeout: Duration,
    ) -> Result<VersionList, String> {
        let mut slot = self.slot.lock().await;
        if !force
            && let Some((at, list)) = slot.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(list.clone());
        }
        match ls_remote(git, source, timeout, None, |url, e| {
            tracing::warn!(%url, error = %e, "ls-remote failed, trying next mirror");
        })
        .await
        {
            Ok((refs, url)) => {
                let list = VersionList {
                    versions: build_versions(&refs),
                    source: url,
                    fetched_at: Utc::now(),
                    stale: false,
                    error: None,
                };
                *slot = Some((Instant::now(), list.clone()));
                Ok(list)
            }
            Err(e) => match slot.as_ref() {
                Some((_, last)) => {
                    let mut l = last.clone();
                    l.stale = true;
                    l.error = Some(e.to_string());
                    Ok(l)
                }
                None => Err(e.to_string()),
            },
        }
    }
}
