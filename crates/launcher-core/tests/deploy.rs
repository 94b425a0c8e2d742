//! Black-box tests of the deploy engine with real git, real Python and real venvs against
//! fixture repositories served over file://. No test touches the network.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fixture::{self, Fixture, FixtureOptions};
use common::{RecordingSink, free_port, python_at_least, uv_available};
use launcher_core::deploy::{
    CancelToken, ComponentKind, ComponentRequest, DeployConfig, DeployError, DeployRequest,
    Deployer, InstallKind, Installer, Layout, LogLevel, MARKER_FILE, Phase, PortRole, RefKind,
    Source, UseUv, ValidationContext, ValidationError, inspect, remove_owned,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(fx: &Fixture) -> DeployConfig {
    DeployConfig {
        sources: fx.sources(),
        use_uv: UseUv::Never,
        ..DeployConfig::default()
    }
}

fn ctx(home: &Path) -> ValidationContext {
    ValidationContext {
        forbidden_roots: Vec::new(),
        ports_in_use: HashSet::new(),
        home: Some(home.to_path_buf()),
        policy: Default::default(),
    }
}

fn request(install: &Path, version: &str, with_adapter: bool) -> DeployRequest {
    let mut components = vec![ComponentRequest {
        kind: "main".to_string(),
        path: None,
        port: None,
    }];
    if with_adapter {
        components.push(ComponentRequest {
            kind: "napcat-ada".to_string(),
            path: None,
            port: Some(u32::from(free_port())),
        });
    }
    DeployRequest {
        instance_name: "麦麦 test-1".to_string(),
        install_path: install.display().to_string(),
        version: version.to_string(),
        host: "127.0.0.1".to_string(),
        port: u32::from(free_port()),
        components,
        eula_accepted: true,
        adapter_version: None,
        webui_port: None,
        telemetry: false,
    }
}

/// MD5 of a text file as MaiBot's bot.py computes it (Python text mode), via real Python.
fn python_md5(path: &Path) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.md5(open(sys.argv[1], 'r', encoding='utf-8').read().encode('utf-8')).hexdigest())",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn deploy_full(installer: UseUv) -> Duration {
    let fx = Fixture::build();
    let work = tempfile::tempdir().unwrap();
    let install = work.path().join("instances").join("bot1");
    let mut cfg = config(&fx);
    cfg.sources = fx.sources_via_mirror();
    cfg.use_uv = installer;
    let deployer = Deployer::new(cfg);
    let req = request(&install, "0.10.1", true);
    let plan = deployer.validate(&req, &ctx(work.path())).await.unwrap();
    let sink = RecordingSink::default();
    let started = Instant::now();
    let out = deployer
        .run(plan, "job-full", &sink, &CancelToken::new())
        .await
        .unwrap_or_else(|e| panic!("deploy failed: {e}\n{}", sink.dump()));
    let took = started.elapsed();
    if std::env::var_os("DEPLOY_DUMP").is_some() {
        eprintln!("{}", sink.dump());
        eprintln!("{:?}", sink.phases());
    }

    // Outcome.
    assert_eq!(out.install_path, install);
    assert_eq!(out.version, "0.10.1");
    assert_eq!(out.adapter_version.as_deref(), Some("0.7.0"));
    assert_eq!(out.family, "0.x");
    assert_eq!(out.layout, Layout::V0);
    assert!(out.eula_confirmed);
    assert_eq!(out.components.len(), 2);
    let main = &out.components[0];
    let ada = &out.components[1];
    assert_eq!(main.kind, ComponentKind::Main);
    assert_eq!(main.port, u16::try_from(req.port).unwrap());
    assert_eq!(main.python, install.join(".venv/bin/python"));
    assert_eq!(
        main.argv,
        vec![main.python.display().to_string(), "bot.py".to_string()]
    );
    assert!(main.python.exists());
    assert_eq!(ada.kind, ComponentKind::NapcatAdapter);
    assert_eq!(ada.path, install.join("napcat-ada"));
    assert_eq!(ada.argv[1], "main.py");
    assert!(ada.python.exists());
    // instances/ was missing: created as a parent, then bot1, then the adapter dir.
    assert_eq!(
        out.created_dirs,
        vec![
            work.path().join("instances"),
            install.clone(),
            install.join("napcat-ada")
        ]
    );

    // Config files: template bytes kept, exactly the port and host keys changed; the
    // WebUI got a port of its own, registered with the main component.
    let webui = main
        .ports
        .iter()
        .find(|p| p.role == PortRole::Webui)
        .map(|p| p.port)
        .unwrap();
    assert_ne!(webui, 8001);
    assert_ne!(webui, main.port);
    let env = std::fs::read_to_string(install.join(".env")).unwrap();
    assert_eq!(
        env,
        format!(
            "HOST=127.0.0.1\nPORT={}\n# comment\nOTHER_PORT=1\nWEBUI_HOST=127.0.0.1\nWEBUI_PORT={webui}\n",
            req.port
        )
    );
    // The template, plus the telemetry switch (off: not asked for).
    assert_eq!(
        std::fs::read_to_string(install.join("config/bot_config.toml")).unwrap(),
        format!(
            "{}\n[telemetry]\nenable = false\n",
            fixture::BOT_CONFIG_TEMPLATE
        )
    );
    assert_eq!(
        std::fs::read_to_string(install.join("config/lpmm_config.toml")).unwrap(),
        fixture::LPMM_TEMPLATE
    );
    let ada_cfg = std::fs::read_to_string(install.join("napcat-ada/config.toml")).unwrap();
    let template = std::fs::read_to_string(
        fixture::upstream().join("adapter/0.7.0/template/template_config.toml"),
    )
    .unwrap();
    let expected = template
        .replace(
            "port = 8095             # Napcat",
            &format!("port = {}             # Napcat", ada.port),
        )
        .replace(
            "port = 8000               # 麦麦",
            &format!("port = {}               # 麦麦", main.port),
        );
    assert_ne!(expected, template);
    assert_eq!(ada_cfg, expected, "adapter config:\n{ada_cfg}");

    // EULA files hold exactly what MaiBot computes.
    assert_eq!(
        std::fs::read_to_string(install.join("eula.confirmed")).unwrap(),
        python_md5(&install.join("EULA.md"))
    );
    assert_eq!(
        std::fs::read_to_string(install.join("privacy.confirmed")).unwrap(),
        python_md5(&install.join("PRIVACY.md"))
    );

    // Markers exist and git does not see them (nor the nested adapter).
    assert!(install.join(MARKER_FILE).is_file());
    assert!(install.join("napcat-ada").join(MARKER_FILE).is_file());
    let status = fixture::git_out(&install, &["status", "--porcelain", "--ignored=no"]);
    assert!(!status.contains(MARKER_FILE), "git status: {status}");
    assert!(!status.contains("napcat-ada"), "git status: {status}");
    let ada_status = fixture::git_out(&install.join("napcat-ada"), &["status", "--porcelain"]);
    assert!(!ada_status.contains(MARKER_FILE), "{ada_status}");

    // Mirror fallback was used and logged; progress honest; statuses final.
    assert!(sink.has_log("trying the next URL"), "{}", sink.dump());
    assert!(sink.has_log("adapter 0.7.0"), "{}", sink.dump());
    assert!(
        sink.has_log("from the index https://pypi.org/simple"),
        "{}",
        sink.dump()
    );
    sink.assert_monotonic();
    assert_eq!(sink.phases().last(), Some(&(Phase::Eula, 96)));
    assert!(sink.phases().iter().any(|(p, _)| *p == Phase::Environment));
    assert_eq!(sink.last_status("main").as_deref(), Some("completed"));
    assert_eq!(sink.last_status("napcat-ada").as_deref(), Some("completed"));

    // Inspection of what was deployed.
    let ins = inspect(&install).await;
    assert_eq!(ins.kind, InstallKind::MaiBot);
    assert!(ins.has_bot_py && ins.has_venv && ins.owned);
    assert_eq!(ins.version.as_deref(), Some("0.10.1"));
    assert_eq!(ins.version_source.as_deref(), Some("src/config/config.py"));
    assert!(ins.config_files.bot_config && ins.config_files.lpmm_config);
    assert!(ins.config_files.env && !ins.config_files.model_config);
    assert_eq!(ins.adapter_dir, Some(install.join("napcat-ada")));
    let ains = inspect(&install.join("napcat-ada")).await;
    assert_eq!(ains.kind, InstallKind::Adapter);
    assert!(ains.config_files.adapter_config && ains.has_venv && ains.owned);
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_deploy_with_adapter_pip() {
    let took = deploy_full(UseUv::Never).await;
    eprintln!("TIMING full fixture deploy (pip): {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_deploy_with_adapter_uv() {
    if !uv_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "uv is required under CI (the uv deploy path must be tested)"
        );
        eprintln!("SKIPPED (loud): uv not on PATH; the uv path was not tested");
        return;
    }
    let took = deploy_full(UseUv::Always).await;
    eprintln!("TIMING full fixture deploy (uv): {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_sorted_with_branches_and_peeled_tags() {
    let fx = Fixture::build();
    let d = Deployer::new(config(&fx));
    let list = d.versions().await.unwrap();
    assert_eq!(
        list.names(),
        vec!["1.2.1", "1.0.8", "0.12.3", "0.10.1", "0.9.0", "main", "dev"]
    );
    assert!(!list.stale);
    assert_eq!(list.source, fx.maibot_url());
    let t = list.find("0.10.1").unwrap();
    assert_eq!(t.kind, RefKind::Tag);
    assert_eq!(
        t.commit,
        fx.maibot_commit("0.10.1"),
        "annotated tag is peeled"
    );
    assert_eq!(list.find("dev").unwrap().kind, RefKind::Branch);
    assert!(list.find("EasyInstall-windows").is_none());
    assert!(list.find("release-0.x").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_fall_back_through_mirrors() {
    let fx = Fixture::build();
    let mut cfg = config(&fx);
    cfg.sources.maibot = Source::new(
        "file:///nonexistent/first.git",
        [fx.unreachable_url(), fx.maibot_url()],
    );
    let list = Deployer::new(cfg).versions().await.unwrap();
    assert_eq!(list.source, fx.maibot_url());
    assert_eq!(list.versions.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_cached_then_stale_on_failed_refresh() {
    let fx = Fixture::build();
    let mut cfg = config(&fx);
    cfg.versions_cache_ttl = 3600;
    let d = Deployer::new(cfg);
    let first = d.versions().await.unwrap();

    let moved = fx.dir.path().join("moved.git");
    std::fs::rename(&fx.maibot, &moved).unwrap();
    // Within the TTL the cache answers without touching the remote.
    let cached = d.versions().await.unwrap();
    assert_eq!(cached, first);
    // A forced refresh fails and serves the last good list, flagged.
    let stale = d.refresh_versions().await.unwrap();
    assert!(stale.stale);
    assert!(
        stale.error.as_deref().unwrap().contains("maibot.git"),
        "{stale:?}"
    );
    assert_eq!(stale.versions, first.versions);
    std::fs::rename(&moved, &fx.maibot).unwrap();
    let fresh = d.refresh_versions().await.unwrap();
    assert!(!fresh.stale && fresh.error.is_none());

    // Nothing cached and unreachable: an error.
    let mut cfg = config(&fx);
    cfg.sources.maibot = Source::new(fx.unreachable_url(), Vec::<String>::new());
    assert!(Deployer::new(cfg).versions().await.is_err());
}

fn need_python_312() -> Option<PathBuf> {
    let py = python_at_least((3, 12));
    if py.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "a Python >= 3.12 is required under CI (MaiBot 1.x deploys must be tested)"
        );
        eprintln!("SKIPPED (loud): no Python >= 3.12 on this machine; 1.x deploy not tested");
    }
    py
}

/// Deploys a 1.x tag with the plugin adapter. The install step is the test hook: it keeps
/// the requirements file it was handed, so the test sees what the lock pinned (the real
/// lock's packages are not installable offline).
async fn deploy_1x(
    tag: &str,
    adapter_version: Option<&str>,
) -> (
    tempfile::TempDir,
    launcher_core::deploy::DeployOutcome,
    RecordingSink,
    String,
) {
    let py = need_python_312().unwrap();
    let fx = Fixture::build();
    let work = tempfile::tempdir().unwrap();
    let install = work.path().join("bot1x");
    let captured = work.path().join("captured-requirements.txt");
    let mut cfg = config(&fx);
    cfg.python = Some(py);
    cfg.install_command = Some(vec![
        "cp".to_string(),
        "{requirements}".to_string(),
        captured.display().to_string(),
    ]);
    let d = Deployer::new(cfg);
    let mut req = request(&install, tag, true);
    req.eula_accepted = false;
    req.adapter_version = adapter_version.map(str::to_string);
    let plan = d.validate(&req, &ctx(work.path())).await.unwrap();
    assert!(plan.python.found().unwrap().version >= (3, 12, 0));
    let sink = RecordingSink::default();
    let out = d
        .run(plan, &format!("job-{tag}"), &sink, &CancelToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sink.dump()));
    let pins =
        std::fs::read_to_string(&captured).unwrap_or_else(|e| panic!("{e}\n{}", sink.dump()));
    (work, out, sink, pins)
}

fn toml_at(path: &Path) -> toml_edit::DocumentMut {
    std::fs::read_to_string(path).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_1_2_with_the_plugin_adapter_its_manifest_admits() {
    if need_python_312().is_none() {
        return;
    }
    let (work, out, sink, pins) = deploy_1x("1.2.1", None).await;
    let install = work.path().join("bot1x");
    assert_eq!(out.layout, Layout::V1);
    assert_eq!(out.family, "1.2");
    // main (manifest 1.4.0, host 1.2.0–1.2.99) admits 1.2.1.
    assert_eq!(out.adapter_version.as_deref(), Some("main"));
    assert!(
        sink.has_log(
            "plugin 1.4.0 (MaiBot 1.2.0–1.2.99), loads on MaiBot 1.2.1 inside its host range"
        ),
        "{}",
        sink.dump()
    );
    let plugin = install.join("plugins/MaiBot-Napcat-Adapter");
    assert_eq!(out.plugin_adapter.as_deref(), Some(plugin.as_path()));
    assert!(plugin.join("_manifest.json").is_file());
    // One component: the adapter runs inside MaiBot.
    assert_eq!(out.components.len(), 1);
    let main = &out.components[0];
    let port = |r: PortRole| {
        main.ports
            .iter()
            .find(|p| p.role == r)
            .map(|p| (p.port, p.listens))
            .unwrap()
    };
    let (webui, _) = port(PortRole::Webui);
    let (napcat, listens) = port(PortRole::NapcatWs);
    assert!(!listens, "NapCat listens on its port, MaiBot does not");
    // bot_config.toml written before the first start with the checkout's config version.
    let bc = toml_at(&install.join("config/bot_config.toml"));
    assert_eq!(bc["inner"]["version"].as_str(), Some("8.14.37"));
    assert_eq!(
        bc["maim_message"]["ws_server_port"].as_integer(),
        Some(i64::from(main.port))
    );
    assert_eq!(
        bc["maim_message"]["ws_server_host"].as_str(),
        Some("127.0.0.1")
    );
    assert_eq!(
        bc["maim_message"]["enable_api_server"].as_bool(),
        Some(false)
    );
    assert_eq!(bc["webui"]["port"].as_integer(), Some(i64::from(webui)));
    assert_eq!(bc["webui"]["host"].as_array().map(|a| a.len()), Some(1));
    assert_eq!(bc["telemetry"]["enable"].as_bool(), Some(false));
    assert!(!install.join(".env").exists(), "1.x does not read .env");
    // The plugin's config: enabled, pointing at NapCat's port with a token.
    let pc = toml_at(&plugin.join("config.toml"));
    assert_eq!(pc["plugin"]["enabled"].as_bool(), Some(true));
    assert_eq!(
        pc["napcat_server"]["port"].as_integer(),
        Some(i64::from(napcat))
    );
    assert_eq!(
        pc["napcat_server"]["token"].as_str().map(str::len),
        Some(32)
    );
    // Installed from the lock: exact pins with hashes, and the log says so.
    assert!(pins.contains("maim-message==0.6.8"), "{pins}");
    assert!(pins.contains("--hash=sha256:"), "{pins}");
    assert!(
        pins.contains("maibot-dashboard==1.7.1.dev20260819402"),
        "the lock's pin, not pyproject's range: {pins}"
    );
    assert!(
        sink.has_log("pinned packages from uv.lock"),
        "{}",
        sink.dump()
    );
    // MaiBot's git status stays clean of the plugin folder.
    let status = fixture::git_out(&install, &["status", "--porcelain"]);
    assert!(!status.contains("MaiBot-Napcat-Adapter"), "{status}");
    // Not accepted: no confirmation files.
    assert!(!out.eula_confirmed);
    assert!(!install.join("eula.confirmed").exists());
    sink.assert_monotonic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_1_0_pairs_the_newest_adapter_its_host_range_admits() {
    if need_python_312().is_none() {
        return;
    }
    // main's 1.4.0 requires 1.2; tag 1.0.1 (max 1.0.0) would load only in compatibility
    // mode; the untagged 1.3.3 on main's history admits 1.0.8 inside its range.
    let (_work, out, sink, pins) = deploy_1x("1.0.8", None).await;
    assert_eq!(out.family, "1.0-1.1");
    let name = out.adapter_version.clone().unwrap();
    assert_eq!(name.len(), 7, "a commit of main's history: {name}");
    assert!(
        sink.has_log(
            "plugin 1.3.3 (MaiBot 1.0.0–1.2.99), loads on MaiBot 1.0.8 inside its host range"
        ),
        "{}",
        sink.dump()
    );
    assert!(pins.contains("maibot-plugin-sdk==2.5.4"), "{pins}");

    // Named: tag 1.0.1 loads on 1.0.8 in compatibility mode, and the log says so.
    let (_w2, out2, sink2, _) = deploy_1x("1.0.8", Some("1.0.1")).await;
    assert_eq!(out2.adapter_version.as_deref(), Some("1.0.1"));
    assert!(
        sink2.has_log("in MaiBot's compatibility mode"),
        "{}",
        sink2.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_adapter_refusals() {
    let fx = Fixture::build();
    let work = tempfile::tempdir().unwrap();
    let d = Deployer::new(config(&fx));
    let mut req = request(&work.path().join("x"), "0.12.3", true);
    req.adapter_version = Some("9.9.9".into());
    let e = d.validate(&req, &ctx(work.path())).await.unwrap_err();
    assert_eq!(e.code(), "unknown_adapter_version", "{e}");
    req.adapter_version = Some("1.0.1".into());
    let e = d.validate(&req, &ctx(work.path())).await.unwrap_err();
    assert_eq!(e.code(), "adapter_incompatible", "{e}");
    assert!(e.to_string().contains("standalone adapter"), "{e}");
    req.adapter_version = Some("--upload-pack=x".into());
    let e = d.validate(&req, &ctx(work.path())).await.unwrap_err();
    assert_eq!(e.code(), "unknown_adapter_version", "{e}");
    let mut req = request(&work.path().join("y"), "1.2.1", true);
    req.adapter_version = Some("0.7.0".into());
    let e = d.validate(&req, &ctx(work.path())).await.unwrap_err();
    assert_eq!(e.code(), "adapter_incompatible", "{e}");
    // A family the launcher does not know is refused, not guessed.
    let mut req = request(&work.path().join("z"), "0.9.0", false);
    req.version = "0.9.0".into();
    assert!(d.validate(&req, &ctx(work.path())).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_get_distinct_ports_and_the_repo_index_is_not_followed() {
    // The 0.12.3 tree's pyproject says `[tool.uv] index-url = http://127.0.0.1:9/simple`
    // (unreachable); the deploy's index is a local PEP 503 index holding the one package
    // its requirements name. Only an install that ignores the repository's setting works.
    let work = tempfile::tempdir().unwrap();
    let index = common::local_index(work.path(), "mlpkg");
    let fx = Fixture::build_with(FixtureOptions {
        maibot_requirements: "mlpkg==1.0\n".to_string(),
        ..FixtureOptions::default()
    });
    let installers: Vec<UseUv> = if uv_available() {
        vec![UseUv::Always, UseUv::Never]
    } else {
        assert!(std::env::var_os("CI").is_none(), "uv is required under CI");
        vec![UseUv::Never]
    };
    for (n, installer) in installers.into_iter().enumerate() {
        let mut cfg = config(&fx);
        cfg.use_uv = installer;
        cfg.index_url = index.clone();
        let d = Deployer::new(cfg);
        let mut taken: HashSet<u16> = HashSet::new();
        for i in 0..2 {
            let install = work.path().join(format!("inst{n}-{i}"));
            let mut req = request(&install, "0.12.3", true);
            req.instance_name = format!("bot {n}-{i}");
            let mut c = ctx(work.path());
            c.ports_in_use = taken.clone();
            let plan = d.validate(&req, &c).await.unwrap();
            let sink = RecordingSink::default();
            let out = d
                .run(plan, &format!("job-{n}-{i}"), &sink, &CancelToken::new())
                .await
                .unwrap_or_else(|e| panic!("{installer:?}: {e}\n{}", sink.dump()));
            assert!(
                sink.has_log(&format!("from the index {index}")),
                "{}",
                sink.dump()
            );
            let mut mine: Vec<u16> = Vec::new();
            for c in &out.components {
                mine.push(c.port);
                mine.extend(c.ports.iter().map(|p| p.port));
            }
            mine.sort_unstable();
            mine.dedup();
            assert_eq!(mine.len(), 3, "main, webui, adapter: {mine:?}");
            for p in &mine {
                assert!(taken.insert(*p), "port {p} given twice");
            }
            // Every port is written where 0.12.3 reads it.
            let env = std::fs::read_to_string(install.join(".env")).unwrap();
            let webui = out.components[0]
                .ports
                .iter()
                .find(|p| p.role == PortRole::Webui)
                .unwrap()
                .port;
            let line = format!("WEBUI_PORT={webui}");
            assert!(env.lines().any(|l| l == line), "{env}");
            let ada = toml_at(&install.join("napcat-ada/config.toml"));
            assert_eq!(
                ada["napcat_server"]["port"].as_integer(),
                Some(i64::from(out.components[1].port))
            );
            assert_eq!(
                ada["maibot_server"]["port"].as_integer(),
                Some(i64::from(out.components[0].port))
            );
            // The package came from our index.
            let st = std::process::Command::new(install.join(".venv/bin/python"))
                .args(["-c", "import mlpkg"])
                .status()
                .unwrap();
            assert!(st.success(), "mlpkg not installed\n{}", sink.dump());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branch_deploy_detects_layout_into_existing_empty_dir() {
    let fx = Fixture::build();
    let work = tempfile::tempdir().unwrap();
    let install = work.path().join("empty");
    std::fs::create_dir(&install).unwrap();
    let d = Deployer::new(config(&fx));
    let mut req = request(&install, "main", false);
    req.eula_accepted = false;
    let plan = d.validate(&req, &ctx(work.path())).await.unwrap();
    assert!(
        plan.recipe.is_none(),
        "branch layout is decided after checkout"
    );
    let sink = RecordingSink::default();
    let out = d
        .run(plan, "job-branch", &sink, &CancelToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sink.dump()));
    assert_eq!(out.layout, Layout::V0);
    assert!(sink.has_log("branch main has the 0.x layout"));
    assert_eq!(out.created_dirs, vec![install.clone()]);
    assert!(install.join(".env").is_file());
    assert!(!install.join("eula.confirmed").exists());
    let ins = inspect(&install).await;
    assert_eq!(ins.git_ref.as_deref(), Some("main"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_refusals() {
    let fx = Fixture::build();
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let data = work.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let d = Deployer::new(config(&fx));
    let mut base_ctx = ctx(&home);
    base_ctx.forbidden_roots = vec![data.clone()];
    let ok_path = work.path().join("new-instance");

    async fn refuse(d: &Deployer, req: DeployRequest, c: &ValidationContext) -> ValidationError {
        match d.validate(&req, c).await {
            Ok(p) => panic!("expected a refusal, got a plan for {:?}", p.install_path),
            Err(e) => e,
        }
    }

    // Sanity: the base request passes.
    d.validate(&request(&ok_path, "0.10.1", true), &base_ctx)
        .await
        .unwrap();

    // Non-empty directory.
    let full = work.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep.txt"), "x").unwrap();
    let e = refuse(&d, request(&full, "0.10.1", false), &base_ctx).await;
    assert_eq!(
        e,
        ValidationError::PathNotEmpty(full.canonicalize().unwrap())
    );
    assert_eq!(e.code(), "path_not_empty");

    // Root, home (via ~ and directly), inside the data dir, containing the data dir.
    let e = refuse(&d, request(Path::new("/"), "0.10.1", false), &base_ctx).await;
    assert!(matches!(e, ValidationError::PathIsRoot(_)), "{e}");
    let mut r = request(&ok_path, "0.10.1", false);
    r.install_path = "~".to_string();
    assert!(matches!(
        refuse(&d, r, &base_ctx).await,
        ValidationError::PathIsHome(_)
    ));
    let e = refuse(&d, request(&home, "0.10.1", false), &base_ctx).await;
    assert!(matches!(e, ValidationError::PathIsHome(_)), "{e}");
    let e = refuse(&d, request(&data.join("inst"), "0.10.1", false), &base_ctx).await;
    assert!(matches!(e, ValidationError::PathForbidden { .. }), "{e}");
    let mut c2 = base_ctx.clone();
    c2.forbidden_roots = vec![work.path().join("new-instance").join("data")];
    let e = refuse(&d, request(&ok_path, "0.10.1", false), &c2).await;
    assert!(matches!(e, ValidationError::PathForbidden { .. }), "{e}");
    let mut r = request(&ok_path, "0.10.1", false);
    r.install_path = "relative/path".to_string();
    assert!(matches!(
        refuse(&d, r, &base_ctx).await,
        ValidationError::PathNotAbsolute(_)
    ));
    // `..` cannot sneak into the data dir.
    let mut r = request(&ok_path, "0.10.1", false);
    r.install_path = format!("{}/x/../data/inst", work.path().display());
    assert!(matches!(
        refuse(&d, r, &base_ctx).await,
        ValidationError::PathForbidden { .. }
    ));

    // Names.
    for (name, want) in [
        ("", ValidationError::NameEmpty),
        ("   ", ValidationError::NameEmpty),
        ("a/b", ValidationError::NameInvalidChar('/')),
        ("a\\b", ValidationError::NameInvalidChar('\\')),
        ("bad\u{7}bell", ValidationError::NameInvalidChar('\u{7}')),
        ("..", ValidationError::NameInvalidChar('.')),
    ] {
        let mut r = request(&ok_path, "0.10.1", false);
        r.instance_name = name.to_string();
        assert_eq!(refuse(&d, r, &base_ctx).await, want, "name {name:?}");
    }
    let mut r = request(&ok_path, "0.10.1", false);
    r.instance_name = "x".repeat(65);
    assert!(matches!(
        refuse(&d, r, &base_ctx).await,
        ValidationError::NameTooLong { .. }
    ));
    let mut r = request(&ok_path, "0.10.1", false);
    r.instance_name = "麦麦_Bot.v2 测试".to_string();
    d.validate(&r, &base_ctx).await.unwrap();

    // Ports: range, duplicates, other instances, bound on the host.
    for p in [80u32, 70000] {
        let mut r = request(&ok_path, "0.10.1", false);
        r.port = p;
        assert_eq!(
            refuse(&d, r, &base_ctx).await,
            ValidationError::PortOutOfRange(p)
        );
    }
    let mut r = request(&ok_path, "0.10.1", true);
    r.components[1].port = Some(r.port);
    assert_eq!(
        refuse(&d, r.clone(), &base_ctx).await,
        ValidationError::PortDuplicate(u16::try_from(r.port).unwrap())
    );
    let r = request(&ok_path, "0.10.1", false);
    let mut c3 = base_ctx.clone();
    c3.ports_in_use.insert(u16::try_from(r.port).unwrap());
    assert!(matches!(
        refuse(&d, r, &c3).await,
        ValidationError::PortInUse(_)
    ));
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let held_port = held.local_addr().unwrap().port();
    let mut r = request(&ok_path, "0.10.1", false);
    r.port = u32::from(held_port);
    assert_eq!(
        refuse(&d, r, &base_ctx).await,
        ValidationError::PortBound(held_port)
    );
    drop(held);

    // Components, host, version.
    let mut r = request(&ok_path, "0.10.1", false);
    r.components.push(ComponentRequest {
        kind: "nonebot-ada".to_string(),
        path: None,
        port: None,
    });
    assert_eq!(
        refuse(&d, r, &base_ctx).await,
        ValidationError::UnknownComponent("nonebot-ada".to_string())
    );
    let mut r = request(&ok_path, "0.10.1", false);
    r.host = "127.0.0.1\nEVIL=1".to_string();
    assert!(matches!(
        refuse(&d, r, &base_ctx).await,
        ValidationError::InvalidHost(_)
    ));
    let e = refuse(&d, request(&ok_path, "0.99.9", false), &base_ctx).await;
    assert_eq!(e, ValidationError::UnknownVersion("0.99.9".to_string()));

    // Missing tools: a bogus configured python / git; the error names the config key.
    let mut cfg = config(&fx);
    cfg.python = Some(PathBuf::from("/nonexistent/bin/python3"));
    let e = refuse(
        &Deployer::new(cfg),
        request(&ok_path, "0.10.1", false),
        &base_ctx,
    )
    .await;
    match &e {
        ValidationError::ToolMissing {
            tool, config_key, ..
        } => {
            assert_eq!(*config_key, "deploy.python");
            assert!(tool.contains("3.10"), "{tool}");
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("deploy.python"));
    let mut cfg = config(&fx);
    cfg.git = PathBuf::from("/nonexistent/bin/git");
    let e = refuse(
        &Deployer::new(cfg),
        request(&ok_path, "0.10.1", false),
        &base_ctx,
    )
    .await;
    assert!(
        matches!(
            e,
            ValidationError::ToolMissing {
                config_key: "deploy.git",
                ..
            }
        ),
        "{e}"
    );
    // uv: `auto` falls back to pip when uv is missing; `always` refuses and names deploy.uv.
    let mut cfg = config(&fx);
    cfg.uv = Some(PathBuf::from("/nonexistent/bin/uv"));
    cfg.use_uv = UseUv::Auto;
    let plan = Deployer::new(cfg.clone())
        .validate(&request(&ok_path, "0.10.1", false), &base_ctx)
        .await
        .unwrap();
    assert_eq!(plan.installer, Installer::Pip);
    cfg.use_uv = UseUv::Always;
    let e = refuse(
        &Deployer::new(cfg),
        request(&ok_path, "0.10.1", false),
        &base_ctx,
    )
    .await;
    assert!(
        matches!(
            e,
            ValidationError::ToolMissing {
                config_key: "deploy.uv",
                ..
            }
        ),
        "{e}"
    );
    // Nothing was created by any of this.
    assert!(!ok_path.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_failure_removes_only_what_the_job_created() {
    let fx = Fixture::build_with(FixtureOptions {
        maibot_requirements: "./nonexistent-local-package\n".to_string(),
        ..Default::default()
    });
    let work = tempfile::tempdir().unwrap();
    let parent = work.path().join("existing-parent");
    std::fs::create_dir(&parent).unwrap();
    std::fs::write(parent.join("keep.txt"), "user data").unwrap();
    let install = parent.join("new1").join("new2").join("bot");
    let d = Deployer::new(config(&fx));
    let plan = d
        .validate(&request(&install, "0.10.1", true), &ctx(work.path()))
        .await
        .unwrap();
    let sink = RecordingSink::default();
    let err = d
        .run(plan, "job-fail", &sink, &CancelToken::new())
        .await
        .unwrap_err();
    let DeployError::Failed {
        phase,
        message,
        cleanup,
    } = err
    else {
        panic!("expected Failed\n{}", sink.dump());
    };
    assert_eq!(phase, Phase::Environment);
    assert!(
        message.contains("[main] installing requirements failed"),
        "{message}"
    );
    assert!(
        message.contains("nonexistent-local-package"),
        "real pip message: {message}"
    );
    assert!(cleanup.kept.is_empty(), "{cleanup:?}");
    assert_eq!(cleanup.removed.len(), 4, "{cleanup:?}");
    assert!(!parent.join("new1").exists());
    assert_eq!(
        std::fs::read_to_string(parent.join("keep.txt")).unwrap(),
        "user data"
    );
    assert_eq!(std::fs::read_dir(&parent).unwrap().count(), 1);
    assert!(
        sink.logs()
            .iter()
            .any(|(l, m)| *l == LogLevel::Error && m.contains("nonexistent-local-package"))
    );
    assert_eq!(sink.last_status("main").as_deref(), Some("failed"));
    sink.assert_monotonic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_in_an_adopted_empty_dir_empties_it_but_keeps_it() {
    let fx = Fixture::build();
    let work = tempfile::tempdir().unwrap();
    let install = work.path().join("mine");
    std::fs::create_dir(&install).unwrap();
    let mut cfg = config(&fx);
    cfg.install_command = Some(vec![
        "{python}".to_string(),
        "-c".to_string(),
        "import sys; print('installer broke'); sys.exit(7)".to_string(),
    ]);
    let d = Deployer::new(cfg);
    let plan = d
        .validate(&request(&install, "0.9.0", false), &ctx(work.path()))
        .await
        .unwrap();
    let sink = RecordingSink::default();
    let err = d
        .run(plan, "job-adopt", &sink, &CancelToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exit code 7"), "{err}");
    assert!(err.to_string().contains("installer broke"), "{err}");
    assert!(install.is_dir());
    assert_eq!(std::fs::read_dir(&install).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_timeout_kills_and_cleans_up() {
    let fx = Fixture::build();
    let work = tempfile::tempdir().unwrap();
    let install = work.path().join("slow");
    let mut cfg = config(&fx);
    cfg.timeouts.install = 1;
    cfg.install_command = Some(vec![
        "{python}".to_string(),
        "-c".to_string(),
        "import time; time.sleep(60)".to_string(),
    ]);
    let d = Deployer::new(cfg);
    let plan = d
        .validate(&request(&install, "0.10.1", false), &ctx(work.path()))
        .await
        .unwrap();
    let sink = RecordingSink::default();
    let t = Instant::now();
    let err = d
        .run(plan, "job-timeout", &sink, &CancelToken::new())
        .await
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(120));
    assert!(
        err.to_string().contains("did not finish within 1 s"),
        "{err}"
    );
    assert!(!install.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_install_kills_the_process_group_and_cleans_up() {
    let fx = Fixture::build();
    let work = tempfile::tempdir().unwrap();
    let install = work.path().join("to-cancel");
    let pidfile = work.path().join("grandchild.pid");
    let mut cfg = config(&fx);
    // A fake installer that starts a grandchild (as pip's build backends do) and hangs.
    cfg.install_command = Some(vec![
        "{python}".to_string(),
        "-c".to_string(),
        format!(
            "import subprocess, time\n\
             p = subprocess.Popen(['sleep', '300'])\n\
             open({:?}, 'w').write(str(p.pid))\n\
             print('fake installer ' + 'running', flush=True)\n\
             time.sleep(300)",
            pidfile.display().to_string()
        ),
    ]);
    let d = Arc::new(Deployer::new(cfg));
    let plan = d
        .validate(&request(&install, "0.10.1", true), &ctx(work.path()))
        .await
        .unwrap();
    let sink = Arc::new(RecordingSink::default());
    let cancel = CancelToken::new();
    let task = {
        let (d, sink, cancel) = (d.clone(), sink.clone(), cancel.clone());
        tokio::spawn(async move { d.run(plan, "job-cancel", &*sink, &cancel).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sink.has_log("fake installer running") {
        assert!(
            Instant::now() < deadline,
            "installer never ran\n{}",
            sink.dump()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The command line itself (logged before it runs) does not contain the joined text,
    // so this line is the installer's own output, written after the pid file.
    let grandchild: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // What the installer started carries the job id, which is how recovery after a
    // daemon crash finds it.
    let env = std::fs::read(format!("/proc/{grandchild}/environ")).unwrap();
    assert!(
        env.split(|b| *b == 0)
            .any(|v| v == b"MAILAUNCHER_JOB_ID=job-cancel"),
        "the job's processes are not marked"
    );
    let t = Instant::now();
    cancel.cancel();
    let res = task.await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "cancel took {:?}",
        t.elapsed()
    );
    match res {
        Err(DeployError::Canceled { phase, cleanup }) => {
            assert_eq!(phase, Phase::Environment);
            assert!(cleanup.kept.is_empty(), "{cleanup:?}");
        }
        other => panic!("expected Canceled, got {other:?}"),
    }
    assert!(!install.exists());
    assert!(
        process_gone(grandchild).await,
        "grandchild {grandchild} survived"
    );
    assert_eq!(sink.last_status("main").as_deref(), Some("canceled"));
    assert_eq!(sink.last_status("napcat-ada").as_deref(), Some("canceled"));
}

/// Dead or a zombie (the container's init may not reap promptly).
async fn process_gone(pid: i32) -> bool {
    for _ in 0..150 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(s) => {
                let state = s
                    .rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next());
                if state == Some("Z") {
                    return true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn inspect_random_and_missing_dirs() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("notes.txt"), "hi").unwrap();
    let ins = inspect(work.path()).await;
    assert!(ins.exists && ins.is_dir);
    assert_eq!(ins.kind, InstallKind::Unknown);
    assert!(!ins.owned && !ins.has_venv && ins.version.is_none() && ins.git_ref.is_none());
    let missing = inspect(&work.path().join("nope")).await;
    assert!(!missing.exists && !missing.is_dir);
    let file = inspect(&work.path().join("notes.txt")).await;
    assert!(file.exists && !file.is_dir);

    // A plain clone (not deployed by us) at a tag: version from config.py, ref = tag.
    let fx = Fixture::build();
    let clone = work.path().join("clone");
    fixture::git(
        work.path(),
        &[
            "clone",
            "-q",
            "--branch",
            "0.9.0",
            &fx.maibot_url(),
            clone.to_str().unwrap(),
        ],
    );
    std::fs::create_dir(clone.join("venv")).unwrap();
    std::fs::write(clone.join("venv/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
    let ins = inspect(&clone).await;
    assert_eq!(ins.kind, InstallKind::MaiBot);
    assert_eq!(ins.version.as_deref(), Some("0.9.0"));
    assert_eq!(ins.git_ref.as_deref(), Some("0.9.0"));
    assert_eq!(ins.venv_dir, Some(clone.join("venv")));
    assert!(!ins.owned);
}

fn marker_json(job: &str, role: &str) -> String {
    format!(
        "{{\"launcher\":\"mailauncher\",\"job_id\":\"{job}\",\"created_at\":\"2025-01-01T00:00:00Z\",\"role\":\"{role}\"}}"
    )
}

#[tokio::test]
async fn remove_owned_only_removes_marked_dirs() {
    let work = tempfile::tempdir().unwrap();
    let marked = work.path().join("marked");
    std::fs::create_dir_all(marked.join("sub")).unwrap();
    std::fs::write(marked.join("sub/file"), "x").unwrap();
    std::fs::write(marked.join(MARKER_FILE), marker_json("j1", "root")).unwrap();
    let plain = work.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join("file"), "x").unwrap();
    let fake = work.path().join("fake");
    std::fs::create_dir(&fake).unwrap();
    std::fs::write(fake.join(MARKER_FILE), "not json").unwrap();
    let parent = work.path().join("parent");
    std::fs::create_dir_all(parent.join("user-stuff")).unwrap();
    std::fs::write(parent.join(MARKER_FILE), marker_json("j1", "parent")).unwrap();

    let report = remove_owned(&[
        marked.clone(),
        plain.clone(),
        fake.clone(),
        parent.clone(),
        work.path().join("missing"),
        PathBuf::from("/"),
    ])
    .await;
    assert_eq!(report.removed, vec![marked.clone()]);
    assert_eq!(report.kept.len(), 5, "{report:?}");
    assert!(!marked.exists());
    assert!(plain.join("file").exists());
    assert!(fake.exists());
    assert!(parent.join("user-stuff").exists());
    let reason = |p: &Path| {
        report
            .kept
            .iter()
            .find(|(k, _)| k == p)
            .map(|(_, r)| r.clone())
            .unwrap()
    };
    assert!(reason(&plain).contains("no .mailauncher-owned marker"));
    assert!(reason(&parent).contains("other entries"));

    // cleanup() insists on the job id.
    let other = work.path().join("other-job");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join(MARKER_FILE), marker_json("j2", "root")).unwrap();
    let r = launcher_core::deploy::cleanup(std::slice::from_ref(&other), "j1").await;
    assert!(r.removed.is_empty());
    assert!(r.kept[0].1.contains("belongs to job j2"));
    let r = launcher_core::deploy::cleanup(std::slice::from_ref(&other), "j2").await;
    assert_eq!(r.removed, vec![other.clone()]);
    assert!(!other.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_details_say_family_python_and_the_paired_adapter() {
    let fx = Fixture::build();
    let work = tempfile::tempdir().unwrap();
    let mut cfg = config(&fx);
    cfg.cache_dir = Some(work.path().join("cache"));
    let d = Deployer::new(cfg);
    let (_, details) = d.version_details().await.unwrap();
    let get = |n: &str| details.iter().find(|v| v.entry.name == n).unwrap();
    let v12 = get("1.2.1");
    assert!(v12.latest, "latest is the newest stable release");
    assert_eq!(v12.family, Some("1.2"));
    assert_eq!(v12.requires_python.as_deref(), Some(">=3.12"));
    let a = v12.adapter.as_ref().unwrap();
    assert_eq!((a.style, a.refname.as_deref()), ("plugin", Some("main")));
    assert_eq!(a.version.as_deref(), Some("1.4.0"));
    let a = get("1.0.8").adapter.clone().unwrap();
    assert_eq!(a.version.as_deref(), Some("1.3.3"), "{a:?}");
    assert_eq!(
        a.admission,
        Some(launcher_core::deploy::adapter::Admission::Strict)
    );
    let v0 = get("0.12.3");
    assert_eq!(v0.family, Some("0.x"));
    assert_eq!(v0.python, "ready", "python3 >= 3.10 is on PATH");
    let a = v0.adapter.as_ref().unwrap();
    assert_eq!(
        (a.style, a.refname.as_deref()),
        ("standalone", Some("0.7.0"))
    );
    let main = get("main");
    assert_eq!(main.family, None, "a branch's family is read from its tree");
    assert!(!main.latest);
    // The cache answers when the adapter repository no longer does.
    std::fs::rename(&fx.adapter, fx.dir.path().join("gone.git")).unwrap();
    let d2 = {
        let mut cfg = config(&fx);
        cfg.cache_dir = Some(work.path().join("cache"));
        Deployer::new(cfg)
    };
    let (_, again) = d2.version_details().await.unwrap();
    let a = again
        .iter()
        .find(|v| v.entry.name == "1.2.1")
        .unwrap()
        .adapter
        .clone()
        .unwrap();
    assert_eq!(a.refname.as_deref(), Some("main"));
}

#[test]
fn prerelease_order_is_semver() {
    use launcher_core::deploy::versions::parse_version;
    let mut v: Vec<&str> = vec![
        "1.0.0-pre.24",
        "1.0.0-pre.2",
        "1.0.0",
        "1.0.0-pre.9",
        "1.0.0-rc",
        "1.0.0-rc.1",
    ];
    v.sort_by_key(|a| parse_version(a));
    assert_eq!(
        v,
        vec![
            "1.0.0-pre.2",
            "1.0.0-pre.9",
            "1.0.0-pre.24",
            "1.0.0-rc",
            "1.0.0-rc.1",
            "1.0.0"
        ]
    );
}

/// A PEP 503 index under `dir` with stub wheels of `dist` at each of `versions`.
fn versioned_index(dir: &Path, dist: &str, versions: &[&str]) -> String {
    let simple = dir.join("simple");
    let pkg = simple.join(dist);
    std::fs::create_dir_all(&pkg).unwrap();
    let script = r#"
import base64, hashlib, sys, zipfile
out, dist, versions = sys.argv[1], sys.argv[2], sys.argv[3:]
mod = dist.replace("-", "_")
links = ""
for v in versions:
    files = {
        f"{mod}/__init__.py": f"VERSION = {v!r}\n".encode(),
        f"{mod}-{v}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {v}\n".encode(),
        f"{mod}-{v}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: mailauncher-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = ""
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(data)}\n"
    record += f"{mod}-{v}.dist-info/RECORD,,\n"
    files[f"{mod}-{v}.dist-info/RECORD"] = record.encode()
    whl = f"{mod}-{v}-py3-none-any.whl"
    with zipfile.ZipFile(f"{out}/{whl}", "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
    sha = hashlib.sha256(open(f"{out}/{whl}", "rb").read()).hexdigest()
    links += f'<a href="{whl}#sha256={sha}">{whl}</a>\n'
open(f"{out}/index.html", "w").write(f"<!DOCTYPE html><html><body>{links}</body></html>\n")
"#;
    let st = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&pkg)
        .arg(dist)
        .args(versions)
        .status()
        .unwrap();
    assert!(st.success(), "building the local index failed");
    std::fs::write(
        simple.join("index.html"),
        format!("<!DOCTYPE html><html><body><a href=\"{dist}/\">{dist}</a></body></html>\n"),
    )
    .unwrap();
    format!("file://{}", simple.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_adapter_is_held_below_maim_message_0_7() {
    // Found by `cargo xtask e2e maibot` on the real 0.12.3 + adapter 0.7.0: the adapter's
    // open `maim-message>=0.6.2` took 0.7.5 from the index, whose client speaks Socket.IO,
    // and it never connected to MaiBot's plain-WebSocket `/ws` (lock: 0.5.7). The index
    // here offers both lines; the adapter must get the 0.6 one, with uv and with pip.
    let work = tempfile::tempdir().unwrap();
    let index = versioned_index(work.path(), "maim-message", &["0.6.8", "0.7.5"]);
    let fx = Fixture::build_with(FixtureOptions {
        adapter_requirements: "maim-message>=0.6.2\n".to_string(),
        ..FixtureOptions::default()
    });
    let installers: Vec<UseUv> = if uv_available() {
        vec![UseUv::Always, UseUv::Never]
    } else {
        assert!(std::env::var_os("CI").is_none(), "uv is required under CI");
        vec![UseUv::Never]
    };
    for (n, installer) in installers.into_iter().enumerate() {
        let mut cfg = config(&fx);
        cfg.use_uv = installer;
        cfg.index_url = index.clone();
        let d = Deployer::new(cfg);
        let install = work.path().join(format!("inst{n}"));
        let plan = d
            .validate(&request(&install, "0.10.1", true), &ctx(work.path()))
            .await
            .unwrap();
        let sink = RecordingSink::default();
        d.run(plan, &format!("job-mm-{n}"), &sink, &CancelToken::new())
            .await
            .unwrap_or_else(|e| panic!("{installer:?}: {e}\n{}", sink.dump()));
        assert!(
            sink.has_log("constrained to maim-message<0.7"),
            "{}",
            sink.dump()
        );
        let out = std::process::Command::new(install.join("napcat-ada/.venv/bin/python"))
            .args(["-c", "import maim_message; print(maim_message.VERSION)"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "0.6.8",
            "{installer:?}\n{}",
            sink.dump()
        );
    }
}

/// TCP ports `pid` listens on: its socket inodes (`/proc/<pid>/fd`) matched against the
/// LISTEN entries of `/proc/net/tcp` and `/proc/net/tcp6`.
fn listening_ports(pid: u32) -> std::collections::BTreeSet<u16> {
    let mut inodes = HashSet::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(t) = std::fs::read_link(e.path())
                && let Some(i) = t
                    .to_string_lossy()
                    .strip_prefix("socket:[")
                    .and_then(|r| r.strip_suffix(']'))
            {
                inodes.insert(i.to_string());
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is f[1] ("0100007F:1F90"), st is f[3] (0A = LISTEN), inode f[9].
            if f.len() > 9
                && f[3] == "0A"
                && inodes.contains(f[9])
                && let Some((_, port)) = f[1].rsplit_once(':')
                && let Ok(p) = u16::from_str_radix(port, 16)
            {
                out.insert(p);
            }
        }
    }
    out
}

/// Kills the stand-ins however the test ends.
struct Running(Vec<std::process::Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_port_a_deployed_instance_listens_on_is_registered_for_it() {
    // Stand-ins open their ports exactly where each family reads them (0.x: `.env`, which
    // overrides the environment; 1.x: `config/bot_config.toml`; the standalone adapter:
    // its `config.toml`). Two instances of each family side by side: every port each one
    // listens on is one registered for it, and none is shared.
    let py312 = need_python_312();
    let fx = Fixture::build();
    let work = tempfile::tempdir().unwrap();
    let mut families = vec![("0.12.3", UseUv::Never)];
    if py312.is_some() {
        families.push(("1.2.1", UseUv::Never));
    }
    let mut taken: HashSet<u16> = HashSet::new();
    let mut running = Running(Vec::new());
    for (version, installer) in families {
        let mut cfg = config(&fx);
        cfg.use_uv = installer;
        if version.starts_with('1') {
            cfg.python = py312.clone();
            // The real lock's packages are not installable offline; the stand-in needs none.
            cfg.install_command = Some(vec!["true".to_string()]);
        }
        let d = Deployer::new(cfg);
        for i in 0..2 {
            let install = work.path().join(format!("{version}-{i}"));
            let mut req = request(&install, version, true);
            req.instance_name = format!("bot {version} {i}");
            let mut c = ctx(work.path());
            c.ports_in_use = taken.clone();
            let plan = d.validate(&req, &c).await.unwrap();
            let sink = RecordingSink::default();
            let out = d
                .run(
                    plan,
                    &format!("job-ports-{version}-{i}"),
                    &sink,
                    &CancelToken::new(),
                )
                .await
                .unwrap_or_else(|e| panic!("{e}\n{}", sink.dump()));
            let mut registered_here: HashSet<u16> = HashSet::new();
            for comp in &out.components {
                registered_here.insert(comp.port);
                registered_here.extend(comp.ports.iter().map(|p| p.port));
            }
            for p in &registered_here {
                assert!(taken.insert(*p), "port {p} registered for two instances");
            }
            for comp in &out.components {
                let entry = if comp.kind == ComponentKind::Main {
                    "bot.py"
                } else {
                    "main.py"
                };
                let child = std::process::Command::new(&comp.python)
                    .arg(entry)
                    .current_dir(&comp.path)
                    // The launcher's own environment must not decide any port.
                    .env("HOST", "0.0.0.0")
                    .env("PORT", "8000")
                    .env("WEBUI_PORT", "8001")
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                let pid = child.id();
                running.0.push(child);
                let want: std::collections::BTreeSet<u16> = std::iter::once(comp.port)
                    .chain(comp.ports.iter().filter(|p| p.listens).map(|p| p.port))
                    .collect();
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut got = listening_ports(pid);
                while got.len() < want.len() && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    got = listening_ports(pid);
                }
                assert_eq!(
                    got, want,
                    "{version} #{i} {:?} listens on {got:?}, registered {want:?}",
                    comp.kind
                );
            }
        }
    }
}
