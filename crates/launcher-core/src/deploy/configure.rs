//! Phase 4: config files from templates. TOML is edited with `toml_edit` (comments and
//! layout stay); `.env` is edited line by line, touching only the `HOST` and `PORT` lines.
//! Files are written atomically (temp file in the same directory, fsync, rename).

use super::error::StepResult;
use super::recipe::{ADAPTER_CONFIG, ADAPTER_TEMPLATE, Recipe};
use super::runner::Runner;
use super::sink::LogLevel;
use super::validate::ComponentKind;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use toml_edit::{DocumentMut, Item, Table, Value};

type Lines = Vec<(LogLevel, String)>;

impl Runner<'_> {
    pub(crate) async fn configure(&mut self) -> StepResult<()> {
        let Some(recipe) = self.recipe else {
            return Err(super::error::StepError::Failed(
                "no recipe was selected".to_string(),
            ));
        };
        self.current = Some(ComponentKind::Main);
        self.component(
            ComponentKind::Main,
            "configuring",
            85,
            "writing config files",
        );
        let root = self.plan.install_path.clone();
        let (host, port) = (self.plan.host.clone(), self.plan.port);
        let lines = self
            .blocking(move || {
                let mut lines = Lines::new();
                configure_maibot(&root, recipe, &host, port, &mut lines)?;
                Ok(lines)
            })
            .await?;
        self.emit(lines);

        if let Some(a) = self.plan.adapter.clone() {
            self.at(0.5);
            self.current = Some(ComponentKind::NapcatAdapter);
            self.component(
                ComponentKind::NapcatAdapter,
                "configuring",
                85,
                "writing config.toml",
            );
            let (host, mport) = (self.plan.host.clone(), self.plan.port);
            let lines = self
                .blocking(move || {
                    let mut lines = Lines::new();
                    configure_adapter(&a.path, a.port, &host, mport, &mut lines)?;
                    Ok(lines)
                })
                .await?;
            self.emit(lines);
        }
        self.at(1.0);
        Ok(())
    }

    fn emit(&self, lines: Lines) {
        for (l, m) in lines {
            self.log(l, m);
        }
    }
}

/// MaiBot's files for `recipe`: template copies, `.env`, and host/port in a TOML file that
/// MaiBot generated (if it exists).
pub fn configure_maibot(
    root: &Path,
    recipe: &Recipe,
    host: &str,
    port: u16,
    log: &mut Vec<(LogLevel, String)>,
) -> Result<(), String> {
    let missing: Vec<&str> = recipe
        .required
        .iter()
        .copied()
        .filter(|f| f.starts_with("template/") && !root.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing template {}", missing.join(", ")));
    }
    if !recipe.one_of.is_empty() && !recipe.one_of.iter().any(|f| root.join(f).is_file()) {
        return Err(format!(
            "missing template: one of {}",
            recipe.one_of.join(", ")
        ));
    }
    for c in recipe.copies {
        let src = root.join(c.template);
        if !src.is_file() {
            continue;
        }
        let dst = root.join(c.target);
        if dst.exists() {
            log.push((
                LogLevel::Warning,
                format!("{} already exists; left as is", c.target),
            ));
            continue;
        }
        let body = fs::read(&src).map_err(|e| format!("{}: {e}", c.template))?;
        // Parse only to fail early on a broken template; the bytes are copied verbatim.
        let text = std::str::from_utf8(&body).map_err(|e| format!("{}: {e}", c.template))?;
        text.parse::<DocumentMut>()
            .map_err(|e| format!("{} is not valid TOML: {e}", c.template))?;
        write_atomic(&dst, &body)?;
        log.push((
            LogLevel::Info,
            format!("wrote {} from {}", c.target, c.template),
        ));
    }
    if let Some(env) = recipe.dotenv {
        let src = root.join(env.template);
        let text = fs::read_to_string(&src)
            .map_err(|e| format!("missing template {}: {e}", env.template))?;
        let port_s = port.to_string();
        let (out, appended) = set_env_keys(&text, &[("HOST", host), ("PORT", &port_s)]);
        write_atomic(&root.join(env.target), out.as_bytes())?;
        log.push((
            LogLevel::Info,
            format!(
                "wrote {} from {} with HOST={host} PORT={port}",
                env.target, env.template
            ),
        ));
        for k in appended {
            log.push((
                LogLevel::Warning,
                format!("{} had no {k} line; appended one", env.template),
            ));
        }
    }

    if let Some(t) = recipe.toml_server {
        let path = root.join(t.file);
        if path.is_file() {
            let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", t.file))?;
            let mut doc: DocumentMut = text
                .parse()
                .map_err(|e| format!("{} is not valid TOML: {e}", t.file))?;
            let table = find_table(&mut doc, t.section)
                .ok_or_else(|| format!("{} has no [{}] table", t.file, t.section))?;
            set_value(table, t.host_key, Value::from(host))
                .ok_or_else(|| format!("{} has no [{}] {}", t.file, t.section, t.host_key))?;
            set_value(table, t.port_key, Value::from(i64::from(port)))
                .ok_or_else(|| format!("{} has no [{}] {}", t.file, t.section, t.port_key))?;
            write_atomic(&path, doc.to_string().as_bytes())?;
            log.push((
                LogLevel::Info,
                format!("set [{}] host/port in {}", t.section, t.file),
            ));
        } else {
            log.push((
                LogLevel::Warning,
                format!(
                    "{} does not exist yet: MaiBot generates it on first start; set \
                     [{}] {} = \"{host}\" and {} = {port} there afterwards",
                    t.file, t.section, t.host_key, t.port_key
                ),
            ));
        }
    }
    Ok(())
}

/// The adapter's `config.toml` from its template, with `[napcat_server] port` = its own
/// port and `[maibot_server] port` = MaiBot's (table and key names matched
/// case-insensitively, so both `Napcat_Server` and `napcat_server` templates work). When
/// MaiBot listens on a specific non-loopback address, `[maibot_server] host` follows it.
pub fn configure_adapter(
    dir: &Path,
    adapter_port: u16,
    maibot_host: &str,
    maibot_port: u16,
    log: &mut Vec<(LogLevel, String)>,
) -> Result<(), String> {
    let src = dir.join(ADAPTER_TEMPLATE);
    let text = fs::read_to_string(&src)
        .map_err(|e| format!("missing adapter template {ADAPTER_TEMPLATE}: {e}"))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("{ADAPTER_TEMPLATE} is not valid TOML: {e}"))?;
    for (section, port) in [
        ("napcat_server", adapter_port),
        ("maibot_server", maibot_port),
    ] {
        let table = find_table(&mut doc, section)
            .ok_or_else(|| format!("{ADAPTER_TEMPLATE} has no [{section}] table"))?;
        set_value(table, "port", Value::from(i64::from(port)))
            .ok_or_else(|| format!("{ADAPTER_TEMPLATE} has no [{section}] port"))?;
    }
    let specific = maibot_host
        .parse::<IpAddr>()
        .is_ok_and(|ip| !ip.is_loopback() && !ip.is_unspecified());
    if specific
        && let Some(t) = find_table(&mut doc, "maibot_server")
        && set_value(t, "host", Value::from(maibot_host)).is_some()
    {
        log.push((
            LogLevel::Info,
            format!("adapter connects to MaiBot at {maibot_host}"),
        ));
    }
    write_atomic(&dir.join(ADAPTER_CONFIG), doc.to_string().as_bytes())?;
    log.push((
        LogLevel::Info,
        format!(
            "wrote adapter {ADAPTER_CONFIG}: napcat_server.port={adapter_port} \
             maibot_server.port={maibot_port}"
        ),
    ));
    Ok(())
}

/// The top-level table whose name equals `name` ignoring ASCII case.
pub fn find_table<'a>(doc: &'a mut DocumentMut, name: &str) -> Option<&'a mut Table> {
    let key = doc
        .as_table()
        .iter()
        .map(|(k, _)| k.to_string())
        .find(|k| k.eq_ignore_ascii_case(name))?;
    doc.get_mut(&key).and_then(Item::as_table_mut)
}

/// Replaces the value of `key` (matched ignoring ASCII case) keeping the old value's
/// surrounding whitespace and trailing comment; `None` when the key is absent.
pub fn set_value(table: &mut Table, key: &str, new: Value) -> Option<()> {
    let actual = table
        .iter()
        .map(|(k, _)| k.to_string())
        .find(|k| k.eq_ignore_ascii_case(key))?;
    let v = table.get_mut(&actual)?.as_value_mut()?;
    let decor = v.decor().clone();
    *v = new;
    *v.decor_mut() = decor;
    Some(())
}

/// Sets each `KEY` in dotenv text: the value of every uncommented `KEY=` / `export KEY=`
/// line with exactly that key is replaced, keeping the rest of the line (quotes, trailing
/// comment) and every other byte of the file. Keys with no line are appended; their names
/// are returned.
pub fn set_env_keys<'k>(text: &str, pairs: &[(&'k str, &str)]) -> (String, Vec<&'k str>) {
    let mut found = vec![false; pairs.len()];
    let mut out = String::with_capacity(text.len() + 32);
    for raw in text.split_inclusive('\n') {
        let (body, eol) = match raw.strip_suffix("\r\n") {
            Some(b) => (b, "\r\n"),
            None => match raw.strip_suffix('\n') {
                Some(b) => (b, "\n"),
                None => (raw, ""),
            },
        };
        let replaced = pairs
            .iter()
            .enumerate()
            .find_map(|(i, (k, v))| replace_env_value(body, k, v).map(|line| (i, line)));
        match replaced {
            Some((i, line)) => {
                found[i] = true;
                out.push_str(&line);
            }
            None => out.push_str(body),
        }
        out.push_str(eol);
    }
    let mut appended = Vec::new();
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    for (i, (k, v)) in pairs.iter().enumerate() {
        if !found[i] {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push_str(eol);
            }
            out.push_str(&format!("{k}={v}{eol}"));
            appended.push(*k);
        }
    }
    (out, appended)
}

/// The line with its value replaced, if the line assigns exactly `key`.
fn replace_env_value(line: &str, key: &str, value: &str) -> Option<String> {
    let indent_len = line.len() - line.trim_start().len();
    let rest = &line[indent_len..];
    let (export, rest) = match rest.strip_prefix("export") {
        Some(r) if r.starts_with([' ', '\t']) => {
            let trimmed = r.trim_start();
            (&line[indent_len..line.len() - trimmed.len()], trimmed)
        }
        _ => ("", rest),
    };
    let after_key = rest.strip_prefix(key)?;
    let after_ws = after_key.trim_start_matches([' ', '\t']);
    let after_eq = after_ws.strip_prefix('=')?;
    let key_part = &rest[..rest.len() - after_eq.len()];
    let lead_len = after_eq.len() - after_eq.trim_start_matches([' ', '\t']).len();
    let (lead, val) = after_eq.split_at(lead_len);
    // Keep everything after the old value: a closing quote's remainder or a ` #` comment.
    let suffix = match val.chars().next() {
        Some(q @ ('"' | '\'')) => match val[1..].find(q) {
            Some(end) => &val[end + 2..],
            None => "",
        },
        _ => match val.find(" #").or_else(|| val.find("\t#")) {
            Some(i) => &val[i..],
            None => "",
        },
    };
    let quoted = matches!(val.chars().next(), Some('"' | '\''));
    let new_val = if quoted {
        let q = &val[..1];
        format!("{q}{value}{q}")
    } else {
        value.to_string()
    };
    Some(format!(
        "{}{export}{key_part}{lead}{new_val}{suffix}",
        &line[..indent_len]
    ))
}

/// Writes `body` to `path` via a temp file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, body: &[u8]) -> Result<(), String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", path.display()))?;
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    res.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("writing {}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_sets_only_exact_keys() {
        let t = "HOST=127.0.0.1\nPORT=8000\n# PORT=1\nOTHER_PORT=1\nMONGODB_PORT=27017\n";
        let (o, a) = set_env_keys(t, &[("HOST", "0.0.0.0"), ("PORT", "8123")]);
        assert_eq!(
            o,
            "HOST=0.0.0.0\nPORT=8123\n# PORT=1\nOTHER_PORT=1\nMONGODB_PORT=27017\n"
        );
        assert!(a.is_empty());
    }

    #[test]
    fn env_keeps_comments_quotes_crlf_and_appends() {
        let t = "export PORT = \"8000\" # main port\r\nX=1";
        let (o, a) = set_env_keys(t, &[("PORT", "9000"), ("HOST", "::1")]);
        assert_eq!(
            o,
            "export PORT = \"9000\" # main port\r\nX=1\r\nHOST=::1\r\n"
        );
        assert_eq!(a, vec!["HOST"]);
        let (o, _) = set_env_keys("PORT=8000 # c\n", &[("PORT", "1")]);
        assert_eq!(o, "PORT=1 # c\n");
        let (o, _) = set_env_keys("PORTX=1\n", &[("PORT", "2")]);
        assert_eq!(o, "PORTX=1\nPORT=2\n");
    }

    #[test]
    fn toml_keeps_comments() {
        let mut doc: DocumentMut = "# top\n[Napcat_Server] # s\nPort = 8095 # napcat port\n"
            .parse()
            .unwrap();
        let t = find_table(&mut doc, "napcat_server").unwrap();
        set_value(t, "port", Value::from(9001)).unwrap();
        assert_eq!(
            doc.to_string(),
            "# top\n[Napcat_Server] # s\nPort = 9001 # napcat port\n"
        );
    }
}
