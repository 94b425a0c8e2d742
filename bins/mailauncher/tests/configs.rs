//! Black-box: config-file routes keep comments, change only what was changed, and leave the
//! file untouched on bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fake_adapter, fake_maibot, spawn_app};
use serde_json::json;

const BOT: &str = r#"# MaiBot config — comments must survive
[inner]
version = "1.2.0" # do not edit

[bot]
# the QQ account
qq_account = 123456
nickname = "麦麦"
alias_names = ["小麦", "mai"]

[chat]
# how chatty
talk_frequency = 0.5
enable = true

[model]
# model settings the 模型 tab edits
[model.chat]
name = "deepseek"
temp = 0.2
"#;

#[test]
fn bot_env_and_adapter_configs_round_trip_with_comments() {
    let app = spawn_app();
    let root = app.home.path().join("bots");
    let dir = fake_maibot(&root, "cfg");
    let ada = fake_adapter(&root, "cfg-ada");
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config/bot_config.toml"), BOT).unwrap();
    std::fs::write(
        dir.join(".env"),
        "# keys\nHOST=127.0.0.1\nPORT=8000\n\nSILICONFLOW_KEY=abc # mine\n",
    )
    .unwrap();
    std::fs::create_dir_all(ada.join("template")).unwrap();
    std::fs::write(
        ada.join("template/template_config.toml"),
        "# adapter\n[Napcat_Server]\nport = 8095 # napcat connects here\n\n[MaiBot_Server]\nport = 8000\n",
    )
    .unwrap();
    let r = app.post(
        "/instances/add",
        &json!({"instance_name": "cfg", "maibot_path": dir, "adapter_path": ada, "port": 8700,
                "install_services": [{"name": "napcat-ada", "path": ada, "port": 8795}]}),
    );
    let id = r.body["instance_id"].as_str().unwrap().to_owned();

    let g = app.get(&format!("/resources/{id}/config/get"));
    assert_eq!(g.status, 200, "{}", g.body);
    assert_eq!(g.body["status"], "success");
    let mut doc = g.body["data"].clone();
    assert_eq!(doc["model"]["chat"]["name"], "deepseek");
    doc["chat"]["talk_frequency"] = json!(0.8);
    doc["model"]["chat"]["name"] = json!("qwen");
    let u = app.post(
        &format!("/resources/{id}/config/update"),
        &json!({"instance_id": id, "config_data": doc}),
    );
    assert_eq!(u.status, 200, "{}", u.body);
    let after = std::fs::read_to_string(dir.join("config/bot_config.toml")).unwrap();
    let before_lines: Vec<&str> = BOT.lines().collect();
    let after_lines: Vec<&str> = after.lines().collect();
    assert_eq!(before_lines.len(), after_lines.len());
    let diff: Vec<(&str, &str)> = before_lines
        .iter()
        .zip(&after_lines)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (*a, *b))
        .collect();
    assert_eq!(
        diff,
        vec![
            ("talk_frequency = 0.5", "talk_frequency = 0.8"),
            ("name = \"deepseek\"", "name = \"qwen\"")
        ]
    );
    assert!(dir.join("config/bot_config.toml.bak").exists());

    // Bad input: the file stays byte for byte.
    let snapshot = std::fs::read(dir.join("config/bot_config.toml")).unwrap();
    let mut bad = g.body["data"].clone();
    bad["chat"]["enable"] = json!(null);
    let r = app.post(
        &format!("/resources/{id}/config/update"),
        &json!({"config_data": bad}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["code"], "config_null_value");
    let mut bad = g.body["data"].clone();
    bad["bot"]["qq_account"] = json!("not a number");
    let r = app.post(
        &format!("/resources/{id}/config/update"),
        &json!({"config_data": bad}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["code"], "config_type_mismatch");
    assert_eq!(
        std::fs::read(dir.join("config/bot_config.toml")).unwrap(),
        snapshot
    );

    // Modern PATCH merges a partial document.
    let p = app.request(
        "PATCH",
        &format!("/resources/{id}/config"),
        &[],
        Some(json!({"bot": {"nickname": "麦麦2"}}).to_string().as_bytes()),
    );
    assert_eq!(p.status, 200, "{}", p.body);
    let now = std::fs::read_to_string(dir.join("config/bot_config.toml")).unwrap();
    assert!(now.contains("nickname = \"麦麦2\"") && now.contains("# the QQ account"));

    // Missing file: 404 with a detail.
    let r = app.get(&format!("/resources/{id}/lpmm/get"));
    assert_eq!(r.status, 404);
    assert!(r.body["detail"].is_string());

    // .env: only the given keys change; comments, order and others stay.
    let e = app.get(&format!("/resources/{id}/env/get"));
    assert_eq!(e.body["data"]["SILICONFLOW_KEY"], "abc");
    let u = app.post(
        &format!("/resources/{id}/env/update"),
        &json!({"instance_id": id, "env_data": {"PORT": "8001", "NEW_KEY": "a b \"c\" \\d"}}),
    );
    assert_eq!(u.status, 200, "{}", u.body);
    let env = std::fs::read_to_string(dir.join(".env")).unwrap();
    assert!(
        env.starts_with("# keys\nHOST=127.0.0.1\nPORT=8001\n\nSILICONFLOW_KEY=abc # mine\n"),
        "{env}"
    );
    let e = app.get(&format!("/resources/{id}/env/get"));
    assert_eq!(e.body["data"]["NEW_KEY"], "a b \"c\" \\d");
    let r = app.post(
        &format!("/resources/{id}/env/update"),
        &json!({"env_data": {"BAD KEY": "x"}}),
    );
    assert_eq!(r.status, 400);
    let r = app.post(
        &format!("/resources/{id}/env/update"),
        &json!({"env_data": {"PORT": 1}}),
    );
    assert_eq!(r.status, 400);

    // Adapter: found at the component's registered path, seeded from its template.
    let a = app.get(&format!("/resources/{id}/adapter/napcat/get"));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["data"]["Napcat_Server"]["port"], 8095);
    let mut doc = a.body["data"].clone();
    doc["Napcat_Server"]["port"] = json!(8096);
    let u = app.post(
        &format!("/resources/{id}/adapter/napcat/update"),
        &json!({"config_data": doc}),
    );
    assert_eq!(u.status, 200, "{}", u.body);
    let cfg = std::fs::read_to_string(ada.join("config.toml")).unwrap();
    assert!(cfg.contains("port = 8096 # napcat connects here"), "{cfg}");

    // A config dir that is a symlink out of the instance is refused.
    let outside = app.home.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("lpmm_config.toml"), "a = 1\n").unwrap();
    std::os::unix::fs::symlink(
        outside.join("lpmm_config.toml"),
        dir.join("config/lpmm_config.toml"),
    )
    .unwrap();
    let r = app.get(&format!("/resources/{id}/lpmm/get"));
    assert_eq!(r.status, 403, "{}", r.body);
}
