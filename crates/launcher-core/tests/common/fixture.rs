//! Fixture git repositories that look like MaiBot and MaiBot-Napcat-Adapter, built with the
//! real `git` in a temporary directory and served over `file://` (so `--depth 1` works as
//! it does over the network). Nothing here touches the network.
//!
//! MaiBot fixture (`maibot.git`):
//! - commit A: `bot.py`, comment-only `requirements.txt`, `template/` with
//!   `bot_config_template.toml`, `lpmm_config_template.toml`, `template.env`, `EULA.md`
//!   (CRLF + Chinese, to exercise MaiBot's text-mode hashing), `PRIVACY.md`,
//!   `src/config/config.py` (`MMC_VERSION`) — tag `0.9.0` (lightweight), plus the
//!   non-version tag `EasyInstall-windows`;
//! - commit B: `MMC_VERSION = "0.10.1"` — tag `0.10.1` (annotated), branch `main`;
//! - commit C: `template/` removed (1.x layout) — tag `1.0.0`, branch `dev`.
//!
//! Adapter fixture (`adapter.git`): `main.py`, `requirements.txt`,
//! `template/template_config.toml` with commented `[Napcat_Server]` and `[MaiBot_Server]`
//! tables — tag `0.10.1`, then one more commit on the default branch `main`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use launcher_core::deploy::{Source, SourcesConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// `template/template.env` of the fixture.
pub const TEMPLATE_ENV: &str =
    "HOST=127.0.0.1\nPORT=8000\n# comment\nOTHER_PORT=1\nWEBUI_HOST=127.0.0.1\nWEBUI_PORT=8001\n";

/// `template/bot_config_template.toml` of the fixture.
pub const BOT_CONFIG_TEMPLATE: &str = "\
# MaiBot bot config (fixture)
[inner]
version = \"1.2.3\" # bump when the layout changes

[bot]
nickname = \"麦麦\" # the bot's name
";

/// `template/lpmm_config_template.toml` of the fixture.
pub const LPMM_TEMPLATE: &str = "\
# knowledge base
[lpmm]
enable = false # off by default
";

/// `template/template_config.toml` of the adapter fixture.
pub const ADAPTER_TEMPLATE: &str = "\
[inner]
version = \"0.1.2\" # 版本号

[Napcat_Server] # Napcat 连接的 ws 服务设置
host = \"localhost\" # Napcat 设定的主机地址
port = 8095        # Napcat 设定的端口
heartbeat_interval = 30

[MaiBot_Server] # 连接麦麦的 ws 服务设置
host = \"localhost\" # 麦麦在 .env 文件中设置的主机地址
port = 8000        # 麦麦在 .env 文件中设置的端口
";

/// `EULA.md` of the fixture (CRLF line ends on purpose).
pub const EULA: &str = "# 最终用户许可协议\r\nUse at your own risk.\r\n";
/// `PRIVACY.md` of the fixture.
pub const PRIVACY: &str = "# Privacy\nWe store chat logs locally.\n";

/// Knobs for a fixture variant.
#[derive(Debug, Clone)]
pub struct FixtureOptions {
    /// MaiBot's `requirements.txt` (all commits).
    pub maibot_requirements: String,
    /// The standalone adapter's `requirements.txt` (its tags 0.6.0 and 0.7.0).
    pub adapter_requirements: String,
    /// `[tool.uv] index-url` written into the 0.12.3 tree's real `pyproject.toml` in place
    /// of upstream's mirror (tests point it at an unreachable URL).
    pub repo_index_url: String,
}

/// The upstream data beside the repository (`shared/upstream`): real templates, manifests,
/// `pyproject.toml` and lock files per ref.
pub fn upstream() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/upstream");
    assert!(
        p.join("FACTS.md").is_file(),
        "the upstream data is missing at {} (shared/ must sit beside the repository)",
        p.display()
    );
    p
}

fn upstream_text(rel: &str) -> String {
    std::fs::read_to_string(upstream().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// MaiBot 1.x stand-in: binds its ports where 1.x reads them — `[maim_message]
/// ws_server_host/ws_server_port` and `[webui] host (a list)/port` of
/// `config/bot_config.toml`, with 1.x's defaults (127.0.0.1:8000, 8001) for absent keys —
/// then prints the ready banner and waits.
pub const STAND_IN_BOT_V1: &str = r##"import socket, time, tomllib
cfg = tomllib.load(open("config/bot_config.toml", "rb"))
mm, webui = cfg.get("maim_message", {}), cfg.get("webui", {})
binds = [(mm.get("ws_server_host", "127.0.0.1"), mm.get("ws_server_port", 8000))]
binds += [(h, webui.get("port", 8001)) for h in webui.get("host", ["127.0.0.1"])]
socks = []
for host, port in binds:
    s = socket.socket()
    s.bind((host, int(port)))
    s.listen()
    socks.append(s)
print("全部系统初始化完成，麦麦 已成功唤醒", flush=True)
time.sleep(600)
"##;

/// MaiBot 0.x stand-in: loads `.env` over the environment (as 0.x's `load_dotenv(override=
/// True)`), binds `HOST:PORT` and `WEBUI_HOST:WEBUI_PORT` (code default 127.0.0.1:8001),
/// prints the banner and waits.
pub const STAND_IN_BOT_V0: &str = r##"import os, socket, time
for line in open(".env", encoding="utf-8"):
    line = line.strip()
    if line and not line.startswith("#") and "=" in line:
        k, v = line.split("=", 1)
        os.environ[k.strip()] = v.strip().strip("\"'")
socks = []
for host, port in [(os.environ["HOST"], os.environ["PORT"]),
                   (os.environ.get("WEBUI_HOST", "127.0.0.1"), os.environ.get("WEBUI_PORT", "8001"))]:
    s = socket.socket()
    s.bind((host, int(port)))
    s.listen()
    socks.append(s)
print("全部系统初始化完成，麦麦已成功唤醒", flush=True)
time.sleep(600)
"##;

/// Standalone adapter stand-in: binds `[napcat_server] port` of its `config.toml` (the
/// adapter's server for NapCat) and prints its ready line.
pub const STAND_IN_ADAPTER: &str = r##"import socket, time
section, port = None, None
for line in open("config.toml", encoding="utf-8"):
    t = line.split("#", 1)[0].strip()
    if t.startswith("["):
        section = t.strip("[]").strip().lower()
    elif section == "napcat_server" and t.replace(" ", "").startswith("port="):
        port = int(t.split("=", 1)[1])
s = socket.socket()
s.bind(("127.0.0.1", port))
s.listen()
print("✅ Adapter 启动成功! 监听: ws://127.0.0.1:%d" % port, flush=True)
time.sleep(600)
"##;

/// A MaiBot stand-in entry point for 1.x trees.
const STAND_IN_BOT: &str = STAND_IN_BOT_V1;

/// `src/config/config.py` of a 1.x stand-in: only the constant the deployer reads.
fn config_py_1x(config_version: &str) -> String {
    format!(
        "# stand-in: the launcher reads only this constant\nCONFIG_VERSION: str = \"{config_version}\"\n"
    )
}

impl Default for FixtureOptions {
    fn default() -> Self {
        Self {
            maibot_requirements: "# no third-party packages in the fixture\n".to_string(),
            adapter_requirements: "# nothing to install\n".to_string(),
            repo_index_url: "http://127.0.0.1:9/simple".to_string(),
        }
    }
}

/// The built repositories; removed when dropped.
pub struct Fixture {
    pub dir: TempDir,
    /// Bare MaiBot repository.
    pub maibot: PathBuf,
    /// Bare adapter repository.
    pub adapter: PathBuf,
}

impl Fixture {
    /// Builds the default fixture.
    pub fn build() -> Self {
        Self::build_with(FixtureOptions::default())
    }

    /// Builds a fixture variant.
    pub fn build_with(opts: FixtureOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let maibot = build_maibot(dir.path(), &opts);
        let adapter = build_adapter(dir.path(), &opts);
        Self {
            dir,
            maibot,
            adapter,
        }
    }

    /// `file://` URL of the MaiBot repository.
    pub fn maibot_url(&self) -> String {
        file_url(&self.maibot)
    }

    /// `file://` URL of the adapter repository.
    pub fn adapter_url(&self) -> String {
        file_url(&self.adapter)
    }

    /// A `file://` URL under the fixture directory that does not exist.
    pub fn unreachable_url(&self) -> String {
        file_url(&self.dir.path().join("no-such-mirror.git"))
    }

    /// Sources pointing at the fixture, no mirrors.
    pub fn sources(&self) -> SourcesConfig {
        SourcesConfig {
            maibot: Source::new(self.maibot_url(), Vec::<String>::new()),
            adapter: Source::new(self.adapter_url(), Vec::<String>::new()),
        }
    }

    /// Sources whose primary URLs are unreachable and whose first mirror is the fixture.
    pub fn sources_via_mirror(&self) -> SourcesConfig {
        SourcesConfig {
            maibot: Source::new(self.unreachable_url(), [self.maibot_url()]),
            adapter: Source::new(self.unreachable_url(), [self.adapter_url()]),
        }
    }

    /// The commit a ref of the MaiBot repository resolves to.
    pub fn maibot_commit(&self, rev: &str) -> String {
        let out = git_out(&self.maibot, &["rev-parse", &format!("{rev}^{{commit}}")]);
        out.trim().to_string()
    }
}

pub fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// Runs git with a fixed identity and no user/system configuration.
pub fn git(dir: &Path, args: &[&str]) {
    let out = git_command(dir, args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn git_out(dir: &Path, args: &[&str]) -> String {
    let out = git_command(dir, args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .args([
            "-c",
            "user.name=Fixture",
            "-c",
            "user.email=fixture@example.invalid",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0");
    c
}

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn config_py(version: &str) -> String {
    format!("import os\n\n# hard-coded, as upstream does\nMMC_VERSION = \"{version}\"\n")
}

fn build_maibot(base: &Path, opts: &FixtureOptions) -> PathBuf {
    let work = base.join("maibot-work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    write(&work, "bot.py", "print('MaiBot fixture')\n");
    write(&work, "requirements.txt", &opts.maibot_requirements);
    write(
        &work,
        "template/bot_config_template.toml",
        BOT_CONFIG_TEMPLATE,
    );
    write(&work, "template/lpmm_config_template.toml", LPMM_TEMPLATE);
    write(&work, "template/template.env", TEMPLATE_ENV);
    write(&work, "EULA.md", EULA);
    write(&work, "PRIVACY.md", PRIVACY);
    write(&work, "src/config/config.py", &config_py("0.9.0"));
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "0.9.0"]);
    git(&work, &["tag", "0.9.0"]);
    git(&work, &["tag", "EasyInstall-windows"]);

    write(&work, "src/config/config.py", &config_py("0.10.1"));
    git(&work, &["commit", "-q", "-am", "0.10.1"]);
    git(&work, &["tag", "-a", "0.10.1", "-m", "release 0.10.1"]);
    git(&work, &["branch", "-f", "release-0.x"]);

    // 0.12.3: the real templates and pyproject (its [tool.uv] mirror replaced by the
    // test's URL), EULA and PRIVACY texts.
    for f in [
        "template/template.env",
        "template/bot_config_template.toml",
        "template/model_config_template.toml",
        "EULA.md",
        "PRIVACY.md",
    ] {
        write(&work, f, &upstream_text(&format!("maibot/0.12.3/{f}")));
    }
    let py = upstream_text("maibot/0.12.3/pyproject.toml").replace(
        "https://pypi.tuna.tsinghua.edu.cn/simple",
        &opts.repo_index_url,
    );
    write(&work, "pyproject.toml", &py);
    write(&work, "src/config/config.py", &config_py("0.12.2"));
    write(&work, "bot.py", STAND_IN_BOT_V0);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "0.12.3"]);
    git(&work, &["tag", "0.12.3"]);

    // 1.x: no template/; the real pyproject.toml and uv.lock, EULA/PRIVACY of each ref.
    git(&work, &["rm", "-q", "-r", "template"]);
    for (tag, config_version) in [("1.0.8", "8.14.20"), ("1.2.1", "8.14.37")] {
        for f in ["pyproject.toml", "uv.lock", "EULA.md", "PRIVACY.md"] {
            write(&work, f, &upstream_text(&format!("maibot/{tag}/{f}")));
        }
        write(&work, "bot.py", STAND_IN_BOT);
        write(&work, "src/config/config.py", &config_py_1x(config_version));
        write(
            &work,
            "plugins/hello_world_plugin/_manifest.json",
            &upstream_text(&format!(
                "maibot/{tag}/plugins/hello_world_plugin/_manifest.json"
            )),
        );
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", tag]);
        git(&work, &["tag", tag]);
    }
    git(&work, &["branch", "-f", "dev"]);
    // main stays on the 0.x layout so branch deploys exercise both detections.
    git(&work, &["checkout", "-q", "dev"]);
    git(&work, &["branch", "-f", "main", "release-0.x"]);
    git(&work, &["checkout", "-q", "main"]);

    let bare = base.join("maibot.git");
    git(
        base,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    bare
}

fn build_adapter(base: &Path, opts: &FixtureOptions) -> PathBuf {
    let work = base.join("adapter-work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    // The standalone line: real template, stand-in entry point.
    write(&work, "main.py", "print('adapter stand-in')\n");
    write(&work, "requirements.txt", &opts.adapter_requirements);
    write(
        &work,
        "template/template_config.toml",
        &upstream_text("adapter/0.7.0/template/template_config.toml"),
    );
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "adapter 0.6.0"]);
    git(&work, &["tag", "0.6.0"]);
    write(&work, "main.py", STAND_IN_ADAPTER);
    git(&work, &["commit", "-q", "-am", "adapter 0.7.0"]);
    git(&work, &["tag", "0.7.0"]);
    git(&work, &["branch", "-f", "standalone"]);
    // The plugin line on main: real manifests; a 1.3.3 between the tags as upstream has
    // (host 1.0.0-1.2.99, untagged), then main's 1.4.0 (host 1.2.x only).
    git(
        &work,
        &["rm", "-q", "-r", "main.py", "template", "requirements.txt"],
    );
    write(&work, "plugin.py", "# plugin adapter stand-in\n");
    let m101 = upstream_text("adapter/1.0.1/_manifest.json");
    write(&work, "_manifest.json", &m101);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "plugin adapter 1.0.1"]);
    git(&work, &["tag", "1.0.1"]);
    let main = upstream_text("adapter/main/_manifest.json");
    let m133 = main
        .replace("\"version\": \"1.4.0\"", "\"version\": \"1.3.3\"")
        .replace("\"min_version\": \"1.2.0\"", "\"min_version\": \"1.0.0\"");
    assert_ne!(m133, main, "the 1.4.0 manifest changed shape");
    write(&work, "_manifest.json", &m133);
    git(&work, &["commit", "-q", "-am", "plugin adapter 1.3.3"]);
    write(&work, "_manifest.json", &main);
    git(&work, &["commit", "-q", "-am", "plugin adapter 1.4.0"]);
    let bare = base.join("adapter.git");
    git(
        base,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    bare
}
