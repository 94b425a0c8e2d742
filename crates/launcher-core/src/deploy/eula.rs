//! Phase 5: MaiBot's EULA / privacy confirmation, only with the user's explicit consent.
//!
//! MaiBot's `bot.py` (`check_eula`) hashes `EULA.md` and `PRIVACY.md` (MD5 of the UTF-8 text
//! read in Python text mode, i.e. with `\r\n`/`\r` turned into `\n`) and accepts the
//! agreement when `eula.confirmed` / `privacy.confirmed` hold that hex digest, or when the
//! environment variables `EULA_AGREE` / `PRIVACY_AGREE` hold it. Otherwise it prints the
//! texts' hashes and waits for the user to type 同意 / `confirmed` on its terminal.

use super::configure::write_atomic;
use super::error::StepResult;
use super::md5;
use super::runner::Runner;
use super::sink::LogLevel;
use std::fs;
use std::path::Path;

/// `(text file, confirmation file, environment variable)` pairs MaiBot checks.
pub const AGREEMENTS: &[(&str, &str, &str)] = &[
    ("EULA.md", "eula.confirmed", "EULA_AGREE"),
    ("PRIVACY.md", "privacy.confirmed", "PRIVACY_AGREE"),
];

/// The hash MaiBot expects for an agreement text (`None` if it is not UTF-8, which MaiBot
/// itself could not read either).
pub fn agreement_hash(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    Some(md5::hex(normalized.as_bytes()))
}

/// Writes the confirmation files for every agreement text present in `root`; returns log
/// lines. Missing texts are reported, not invented.
pub fn write_confirmations(root: &Path) -> Result<(bool, Vec<(LogLevel, String)>), String> {
    let mut lines = Vec::new();
    let mut all = true;
    for (text, confirm, _env) in AGREEMENTS {
        let src = root.join(text);
        let bytes = match fs::read(&src) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                all = false;
                lines.push((
                    LogLevel::Warning,
                    format!("{text} not found; {confirm} not written"),
                ));
                continue;
            }
            Err(e) => return Err(format!("{text}: {e}")),
        };
        let Some(hash) = agreement_hash(&bytes) else {
            return Err(format!("{text} is not valid UTF-8"));
        };
        write_atomic(&root.join(confirm), hash.as_bytes())?;
        lines.push((LogLevel::Info, format!("wrote {confirm} ({hash})")));
    }
    Ok((all, lines))
}

impl Runner<'_> {
    pub(crate) async fn eula(&mut self) -> StepResult<bool> {
        if !self.plan.eula_accepted {
            self.log(
                LogLevel::Warning,
                "EULA and privacy policy not accepted in this request: no confirmation \
                 files written; MaiBot will ask for consent on its first start",
            );
            return Ok(false);
        }
        let root = self.plan.install_path.clone();
        let (all, lines) = self.blocking(move || write_confirmations(&root)).await?;
        for (l, m) in lines {
            self.log(l, m);
        }
        if all {
            self.log(
                LogLevel::Success,
                "EULA and privacy policy accepted by the user; confirmations written",
            );
        }
        Ok(all)
    }
}
