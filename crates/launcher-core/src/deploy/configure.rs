//! Phase 4: config files. 0.x: from templates, ports in `.env`; 1.x: `bot_config.toml`
//! written before the first start with the config version the checkout declares; the
//! adapter's config (standalone or plugin). TOML is edited with `toml_edit` (comments and
//! layout stay); `.env` is edited line by line, touching only the keys the recipe names.
//! Files are written atomically (temp file in the same directory, fsync, rename).

use super::error::{StepError, StepResult};
use super::recipe::{
    ADAPTER_CONFIG, ADAPTER_TEMPLATE, AdapterStyle, ConfigStyle, Key, PLUGIN_CONFIG, PortRole,
    PortSpec, Recipe, TemplateCopy, read_py_constant,
};
use super::runner::Runner;
use super::sink::LogLevel;
use super::validate::ComponentKind;
use super::versions::parse_version;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use toml_edit::{DocumentMut, Item, Table, Value};

type Lines = Vec<(LogLevel, String)>;

impl Runner<'_> {
    pub(crate) async fn configure(&mut self) -> StepResult<()> {
        let Some(recipe) = self.recipe else {
            return Err(StepError::Failed("no recipe was selected".to_string()));
        };
        self.current = Some(ComponentKind::Main);
        self.component(
            ComponentKind::Main,
            "configuring",
            85,
            "writing config files",
        );
        let root = self.plan.install_path.clone();
        let host = self.plan.host.clone();
        let assigned = self.assigned_ports(recipe);
        let telemetry = self.plan.telemetry;
        let a = assigned.clone();
        let lines = self
            .blocking(move || {
                let mut lines = Lines::new();
                configure_maibot(&root, recipe, &host, &a, telemetry, &mut lines)?;
                Ok(lines)
            })
            .await?;
        self.emit(lines);

        if self.plan.adapter.is_some() {
            self.at(0.5);
            self.current = Some(ComponentKind::NapcatAdapter);
            self.component(
                ComponentKind::NapcatAdapter,
                "configuring",
                85,
                "writing config.toml",
            );
            let dir = self
                .adapter_dir
                .clone()
                .ok_or_else(|| StepError::Failed("the adapter was not fetched".into()))?;
            let napcat = self.plan.ports.napcat.unwrap_or_default();
            let (host, mport) = (self.plan.host.clone(), self.plan.port);
            let lines = match recipe.adapter {
                AdapterStyle::Standalone => {
                    self.blocking(move || {
                        let mut lines = Lines::new();
                        configure_adapter(&dir, napcat, &host, mport, &mut lines)?;
                        Ok(lines)
                    })
                    .await?
                }
                AdapterStyle::Plugin { .. } => {
                    let token = nanoid::nanoid!(32);
                    self.blocking(move || {
                        let mut lines = Lines::new();
                        configure_plugin_adapter(&dir, napcat, &token, &mut lines)?;
                        Ok(lines)
                    })
                    .await?
                }
            };
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

/// MaiBot's files for `recipe`, with every assigned port (and its bind host) written where
/// that family reads it, and the telemetry switch.
pub fn configure_maibot(
    root: &Path,
    recipe: &Recipe,
    host: &str,
    ports: &[(PortSpec, u16)],
    telemetry: bool,
    log: &mut Vec<(LogLevel, String)>,
) -> Result<(), String> {
    let bot_config = match recipe.config {
        ConfigStyle::Templates { copies, dotenv } => {
            copy_templates(root, copies, log)?;
            let src = root.join(dotenv.template);
            let text = fs::read_to_string(&src)
                .map_err(|e| format!("missing template {}: {e}", dotenv.template))?;
            let mut pairs: Vec<(&str, String)> = Vec::new();
            for (spec, port) in ports.iter().filter(|(s, _)| s.component == "main") {
                if let Key::Env(k) = spec.port {
                    pairs.push((k, port.to_string()));
                }
                if let Some(Key::Env(k)) = spec.host {
                    pairs.push((k, bind_host(spec.role, host)));
                }
            }
            let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (out, appended) = set_env_keys(&text, &refs);
            write_atomic(&root.join(dotenv.target), out.as_bytes())?;
            let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            log.push((
                LogLevel::Info,
                format!(
                    "wrote {} from {} with {}",
                    dotenv.target,
                    dotenv.template,
                    shown.join(" ")
                ),
            ));
            for k in appended {
                log.push((
                    LogLevel::Warning,
                    format!("{} had no {k} line; appended one", dotenv.template),
                ));
            }
            "config/bot_config.toml"
        }
        ConfigStyle::Generated {
            bot_config,
            version_file,
            version_const,
            min_version,
        } => {
            let version =
                read_py_constant(&root.join(version_file), version_const).ok_or_else(|| {
                    format!(
                        "cannot read {version_const} from {version_file}: the config version this \
                     MaiBot expects is unknown, and a file with another version would be \
                     rewritten by MaiBot with its default ports"
                    )
                })?;
            if parse_version(&version) < parse_version(min_version) {
                return Err(format!(
                    "{version_file} declares config version {version}, below {min_version}: \
                     MaiBot would stop at its interactive 0.x-upgrade prompt"
                ));
            }
            let path = root.join(bot_config);
            if path.exists() {
                return Err(format!(
                    "{bot_config} already exists in a fresh checkout; refusing to overwrite it"
                ));
            }
            let mut doc = DocumentMut::new();
            doc.decor_mut().set_prefix(
                "# Written by MaiLauncher before MaiBot's first start: the ports the launcher\n\
                 # assigned to this instance. MaiBot fills in every other setting with its\n\
                 # defaults and keeps this file while its [inner] version is its own.\n",
            );
            set_toml(&mut doc, "inner", "version", Value::from(version.as_str()));
            for (spec, port) in ports.iter().filter(|(s, _)| s.component == "main") {
                if let Key::Toml { file, table, key } = spec.port
                    && file == bot_config
                {
                    set_toml(&mut doc, table, key, Value::from(i64::from(*port)));
                }
                if let Some(Key::Toml { file, table, key }) = spec.host
                    && file == bot_config
                {
                    let h = bind_host(spec.role, host);
                    let v = if spec.host_is_list {
                        Value::Array(toml_edit::Array::from_iter([h.as_str()]))
                    } else {
                        Value::from(h.as_str())
                    };
                    set_toml(&mut doc, table, key, v);
                }
            }
            // The extra API server binds 0.0.0.0:8090 when enabled: keep it off explicitly.
            set_toml(
                &mut doc,
                "maim_message",
                "enable_api_server",
                Value::from(false),
            );
            write_atomic(&path, doc.to_string().as_bytes())?;
            let shown: Vec<String> = ports
                .iter()
                .filter(|(s, _)| s.component == "main")
                .map(|(s, p)| format!("{}={p}", s.role.as_str()))
                .collect();
            log.push((
                LogLevel::Info,
                format!(
                    "wrote {bot_config} (config version {version}) with {}",
                    shown.join(" ")
                ),
            ));
            bot_config
        }
    };
    if let Key::Toml { file, table, key } = recipe.telemetry {
        let path = root.join(file);
        let text = fs::read_to_string(&path).map_err(|e| format!("{file}: {e}"))?;
        let mut doc: DocumentMut = text
            .parse()
            .map_err(|e| format!("{file} is not valid TOML: {e}"))?;
        let kept = find_table(&mut doc, table)
            .and_then(|t| set_value(t, key, Value::from(telemetry)))
            .is_some();
        if !kept {
            set_toml(&mut doc, table, key, Value::from(telemetry));
        }
        write_atomic(&path, doc.to_string().as_bytes())?;
        log.push((
            LogLevel::Info,
            format!(
                "telemetry {} ([{table}] {key} = {telemetry} in {file})",
                if telemetry { "on" } else { "off" }
            ),
        ));
    }
    let _ = bot_config;
    Ok(())
}

/// The bind host for a port: MaiBot's main server follows the request; the WebUI stays on
/// loopback (it hands out an access token to whoever reaches it first).
fn bind_host(role: PortRole, host: &str) -> String {
    match role {
        PortRole::Main => host.to_string(),
        _ => "127.0.0.1".to_string(),
    }
}

fn copy_templates(
    root: &Path,
    copies: &[TemplateCopy],
    log: &mut Vec<(LogLevel, String)>,
) -> Result<(), String> {
    for c in copies {
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
    Ok(())
}

/// Sets `[table] key = value`, creating the table (matched case-insensitively) when absent.
fn set_toml(doc: &mut DocumentMut, table: &str, key: &str, value: Value) {
    if find_table(doc, table).is_none() {
        doc.insert(table, Item::Table(Table::new()));
    }
    if let Some(t) = find_table(doc, table)
        && set_value(t, key, value.clone()).is_none()
    {
        t.insert(key, Item::Value(value));
    }
}

/// The plugin adapter's `config.toml`: enabled, connecting to NapCat's forward WebSocket on
/// the port assigned to this instance, with a per-instance access token (NapCat must be
/// given the same token).
pub fn configure_plugin_adapter(
    dir: &Path,
    napcat_port: u16,
    token: &str,
    log: &mut Vec<(LogLevel, String)>,
) -> Result<(), String> {
    let path = dir.join(PLUGIN_CONFIG);
    let mut doc: DocumentMut = match fs::read_to_string(&path) {
        Ok(t) => t
            .parse()
            .map_err(|e| format!("{PLUGIN_CONFIG} is not valid TOML: {e}"))?,
        Err(_) => DocumentMut::new(),
    };
    set_toml(&mut doc, "plugin", "enabled", Value::from(true));
    if find_table(&mut doc, "plugin")
        .and_then(|t| t.get("config_version"))
        .is_none()
    {
        set_toml(&mut doc, "plugin", "config_version", Value::from("0.1.0"));
    }
    set_toml(&mut doc, "napcat_server", "host", Value::from("127.0.0.1"));
    set_toml(
        &mut doc,
        "napcat_server",
        "port",
        Value::from(i64::from(napcat_port)),
    );
    set_toml(&mut doc, "napcat_server", "token", Value::from(token));
    write_atomic(&path, doc.to_string().as_bytes())?;
    log.push((
        LogLevel::Info,
        format!(
            "wrote the plugin adapter's {PLUGIN_CONFIG}: enabled, NapCat forward WebSocket \
             ws://127.0.0.1:{napcat_port} with an access token (give NapCat the same token)"
        ),
    ));
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
