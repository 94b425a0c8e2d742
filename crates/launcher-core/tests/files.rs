//! Integration tests for the config-file module, on real files in temp dirs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use launcher_core::files::env_file::{EnvFile, EnvLineKind};
use launcher_core::files::toml_doc::{self, apply_full, apply_patch, toml_to_json};
use launcher_core::files::{
    ConfigFile, FileError, resolve_inside, resolve_inside_for_create, write_atomic,
};
use serde_json::{Value, json};

/// A MaiBot-like `bot_config.toml`: comments everywhere, inline tables, arrays of tables,
/// multi-line strings, floats, datetimes.
const BOT_CONFIG: &str = r###"# MaiBot configuration (test fixture modelled on the shipped template)
# Edit with care: every comment here must survive a save from the web UI.

[inner]
version = "6.3.1" # config schema version, do not edit

#----------------------------------------------------------------
# Basic bot identity
#----------------------------------------------------------------
[bot]
platform = "qq"
qq_account = 1145141919 # the bot's QQ number
nickname = "麦麦"
# Other names people use for the bot
alias_names = ["麦叠", "牢麦"]

[personality]
# Core personality, one or two sentences
personality_core = "是一个积极向上的女大学生"
personality_sides = [
    "用一句话或几句话描述人格的一些侧面", # side 1
    "用一句话或几句话描述人格的另一个侧面",
]
compress_personality = false
identity_detail = '''
身份特点：
- 喜欢猫
- 住在上海
'''

[expression]
# Style of replies
expression_style = "描述麦麦说话的表达风格，表达习惯"
enable_expression_learning = true
learning_interval = 600 # seconds

[chat]
chat_mode = "normal" # normal / focus / auto
max_context_size = 18
replyer_random_probability = 0.5
talk_frequency = 1.0
time_based_talk_frequency = ["8:00,1", "12:00,1.5", "18:00,2", "01:00,0.5"]
# Per-chat overrides, as inline tables
talk_frequency_adjust = [
    { chat = "qq:114514:group", frequency = 1.2 },
    { chat = "qq:1919810:private", frequency = 0.8 },
]

[message_receive]
# Messages matching these are dropped
ban_words = [
    # "example banned word",
]
ban_msgs_regex = [
    # "https?://[^\\s]+",
]

[normal_chat]
willing_mode = "classical"
response_interested_rate_amplifier = 1
emoji_chance = 0.2
thinking_timeout = 120.5
mentioned_bot_inevitable_reply = true
at_bot_inevitable_reply = true

[emoji]
max_reg_num = 60
do_replace = true
check_interval = 10
steal_emoji = true
content_filtration = false
filtration_prompt = "符合公序良俗"

[memory]
memory_build_interval = 2000
memory_build_distribution = [6.0, 3.0, 0.6, 32.0, 12.0, 0.4]
forget_memory_interval = 1000
memory_forget_time = 24
memory_ban_words = ["表情包", "图片", "回复", "聊天记录"]

[mood]
enable_mood = true
mood_update_interval = 1.0
mood_decay_rate = 0.95

[keyword_reaction]
keyword_rules = []

[[keyword_reaction.regex_rules]]
regex = ["^(?P<n>\\S{1,20})是这样的$"]
reaction = "请按照以下模板造句：[n]是这样的，xx只要xx就可以"

[[keyword_reaction.regex_rules]]
regex = ["(?:[^，。.\\s]+，\\s*)?我(?:也)?[没沒]要求你\\s*(?P<action>.+?)[.。,，]?$"]
reaction = "进行一些反讽"

[chinese_typo]
enable = true # typo generator
error_rate = 0.01
min_freq = 9
tone_error_rate = 0.1
word_replace_rate = 0.006

[response_splitter]
enable = true
max_length = 256
max_sentence_num = 4
enable_kaomoji_protection = false

[log]
date_style = "m-d H:i:s"
color_text = "full"
log_level = "INFO"
suppress_libraries = { faiss = "WARNING", httpx = "WARNING", "jieba.main" = "ERROR" }

[maintenance]
last_reviewed = 2025-06-01T09:30:00+08:00 # when a human last looked at this file
quiet_hours_start = 23:30:00

[experimental]
enable_friend_chat = false
pfc_chatting = false

# End of file: keep this trailing comment
"###;

fn setup(text: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    (dir, path)
}

fn bak(path: &Path) -> PathBuf {
    launcher_core::files::atomic::backup_path(path)
}

/// Lines of `new` that differ from `old`; both must have the same line count.
fn changed_lines(old: &str, new: &str) -> Vec<String> {
    let (a, b): (Vec<_>, Vec<_>) = (old.lines().collect(), new.lines().collect());
    assert_eq!(a.len(), b.len(), "line count changed:\n{new}");
    a.iter()
        .zip(&b)
        .filter(|(x, y)| x != y)
        .map(|(_, y)| (*y).to_owned())
        .collect()
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn cfg() -> ConfigFile {
    ConfigFile::new()
}

// ---------------------------------------------------------------------------------------------
// TOML

#[test]
fn json_view_of_template() {
    let (_d, path) = setup(BOT_CONFIG, "bot_config.toml");
    let j = cfg().read_toml_as_json(&path).unwrap();
    assert_eq!(j["inner"]["version"], json!("6.3.1"));
    assert_eq!(j["bot"]["qq_account"], json!(1145141919));
    assert_eq!(j["bot"]["alias_names"], json!(["麦叠", "牢麦"]));
    assert_eq!(j["chat"]["talk_frequency"], json!(1.0));
    assert_eq!(
        j["chat"]["talk_frequency_adjust"][1]["frequency"],
        json!(0.8)
    );
    assert_eq!(
        j["personality"]["identity_detail"],
        json!("身份特点：\n- 喜欢猫\n- 住在上海\n")
    );
    assert_eq!(j["log"]["suppress_libraries"]["jieba.main"], json!("ERROR"));
    assert_eq!(
        j["maintenance"]["last_reviewed"],
        json!("2025-06-01T09:30:00+08:00")
    );
    assert_eq!(j["maintenance"]["quiet_hours_start"], json!("23:30:00"));
    let rules = j["keyword_reaction"]["regex_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[1]["reaction"], json!("进行一些反讽"));
    assert_eq!(j["message_receive"]["ban_words"], json!([]));
}

#[test]
fn same_json_round_trip_is_byte_identical_and_does_not_write() {
    let (dir, path) = setup(BOT_CONFIG, "bot_config.toml");
    let j = cfg().read_toml_as_json(&path).unwrap();
    // Through JSON text, as the frontend does, to exercise float parsing.
    let j: Value = serde_json::from_str(&serde_json::to_string(&j).unwrap()).unwrap();
    let summary = cfg().update_toml_full(&path, &j).unwrap();
    assert!(summary.is_empty(), "{summary:?}");
    assert_eq!(fs::read_to_string(&path).unwrap(), BOT_CONFIG);
    assert!(!bak(&path).exists(), "no-op must not write");
    assert_eq!(dir_entries(dir.path()), vec!["bot_config.toml"]);

    let mut doc = toml_doc::parse_document(BOT_CONFIG).unwrap();
    assert!(apply_full(&mut doc, &j).unwrap().is_empty());
    assert_eq!(doc.to_string(), BOT_CONFIG);
}

#[test]
fn changing_one_nested_key_changes_only_its_line() {
    let (_d, path) = setup(BOT_CONFIG, "bot_config.toml");
    let mut j = cfg().read_toml_as_json(&path).unwrap();
    j["chat"]["max_context_size"] = json!(30);
    let s = cfg().update_toml_full(&path, &j).unwrap();
    assert_eq!(s.changed, vec!["chat.max_context_size"]);
    assert!(s.added.is_empty() && s.removed.is_empty());
    let new = fs::read_to_string(&path).unwrap();
    assert_eq!(
        changed_lines(BOT_CONFIG, &new),
        vec!["max_context_size = 30"]
    );
    assert_eq!(fs::read_to_string(bak(&path)).unwrap(), BOT_CONFIG);
}

#[test]
fn changed_value_keeps_comment_above_and_after() {
    let (_d, path) = setup(BOT_CONFIG, "bot_config.toml");
    let mut j = cfg().read_toml_as_json(&path).unwrap();
    j["bot"]["qq_account"] = json!(10001);
    j["chinese_typo"]["enable"] = json!(false);
    j["bot"]["alias_names"] = json!(["麦叠", "牢麦", "小麦"]);
    cfg().update_toml_full(&path, &j).unwrap();
    let new = fs::read_to_string(&path).unwrap();
    assert_eq!(
        changed_lines(BOT_CONFIG, &new),
        vec![
            "qq_account = 10001 # the bot's QQ number",
            "alias_names = [\"麦叠\", \"牢麦\", \"小麦\"]",
            "enable = false # typo generator",
        ]
    );
    assert!(new.contains("# Other names people use for the bot\nalias_names"));
}

#[test]
fn adding_a_key_appends_it_to_its_table() {
    let (_d, path) = setup(BOT_CONFIG, "bot_config.toml");
    let mut j = cfg().read_toml_as_json(&path).unwrap();
    j["bot"]["nickname_suffix"] = json!("酱");
    j["new_section"] = json!({"enabled": true, "ratio": 0.25});
    let s = cfg().update_toml_full(&path, &j).unwrap();
    assert_eq!(s.added, vec!["bot.nickname_suffix", "new_section"]);
    let new = fs::read_to_string(&path).unwrap();
    assert!(
        new.contains(
            "alias_names = [\"麦叠\", \"牢麦\"]\nnickname_suffix = \"酱\"\n\n[personality]"
        ),
        "{new}"
    );
    assert!(
        new.contains("\n[new_section]\nenabled = true\nratio = 0.25\n"),
        "{new}"
    );
    // Everything else is untouched: removing the two additions gives the original back.
    let stripped = new
        .replace("nickname_suffix = \"酱\"\n", "")
        .replace("\n[new_section]\nenabled = true\nratio = 0.25\n", "");
    assert_eq!(stripped, BOT_CONFIG);
    assert_eq!(cfg().read_toml_as_json(&path).unwrap(), j);
}

#[test]
fn full_update_removes_missing_keys() {
    let (_d, path) = setup(BOT_CONFIG, "bot_config.toml");
    let mut j = cfg().read_toml_as_json(&path).unwrap();
    j["chat"].as_object_mut().unwrap().remove("talk_frequency");
    j.as_object_mut().unwrap().remove("experimental");
    let s = cfg().update_toml_full(&path, &j).unwrap();
    let mut removed = s.removed.clone();
    removed.sort();
    assert_eq!(removed, vec!["chat.talk_frequency", "experimental"]);
    let new = fs::read_to_string(&path).unwrap();
    assert!(!new.contains("talk_frequency = 1.0"));
    assert!(!new.contains("[experimental]"));
    assert!(new.contains("time_based_talk_frequency"));
    assert!(new.ends_with("# End of file: keep this trailing comment\n"));
    assert_eq!(cfg().read_toml_as_json(&path).unwrap(), j);
}

#[test]
fn type_mismatch_is_an_error_and_file_is_unchanged() {
    let (dir, path) = setup(BOT_CONFIG, "bot_config.toml");
    let mut j = cfg().read_toml_as_json(&path).unwrap();
    j["chat"]["max_context_size"] = json!(20); // a valid change, to prove nothing is applied
    j["bot"]["qq_account"] = json!("not a number");
    let err = cfg().update_toml_full(&path, &j).unwrap_err();
    assert_eq!(err.code(), "config_type_mismatch");
    assert_eq!(
        err.to_string(),
        "bot.qq_account: expected integer, got string"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), BOT_CONFIG);
    assert_eq!(dir_entries(dir.path()), vec!["bot_config.toml"]);

    for (patch, expected) in [
        (json!({"chat": 5}), "chat: expected table, got integer"),
        (
            json!({"chat": {"talk_frequency": "fast"}}),
            "chat.talk_frequency: expected float, got string",
        ),
        (
            json!({"keyword_reaction": {"regex_rules": {"a": 1}}}),
            "keyword_reaction.regex_rules: expected array of tables, got object",
        ),
        (
            json!({"keyword_reaction": {"regex_rules": [1]}}),
            "keyword_reaction.regex_rules[0]: expected table, got integer",
        ),
        (
            json!({"bot": {"alias_names": [1]}}),
            "bot.alias_names[0]: expected string, got integer",
        ),
        (
            json!({"maintenance": {"last_reviewed": "2025-06-01"}}),
            "maintenance.last_reviewed: expected offset datetime, got local date",
        ),
        (
            json!({"maintenance": {"quiet_hours_start": "soon"}}),
            "maintenance.quiet_hours_start: expected local time, got string",
        ),
        (
            json!({"bot": {"qq_account": 1.5}}),
            "bot.qq_account: expected integer, got float",
        ),
        (json!([1, 2]), "<root>: expected table, got array"),
    ] {
        let err = cfg().patch_toml(&path, &patch).unwrap_err();
        assert_eq!(err.code(), "config_type_mismatch", "{patch}");
        assert_eq!(err.to_string(), expected);
    }
    let err = cfg()
        .patch_toml(&path, &json!({"bot": {"qq_account": u64::MAX}}))
        .unwrap_err();
    assert_eq!(err.code(), "config_invalid_value");
    assert_eq!(fs::read_to_string(&path).unwrap(), BOT_CONFIG);
}

#[test]
fn null_is_an_error_naming_the_path() {
    let (_d, path) = setup(BOT_CONFIG, "bot_config.toml");
    let cases = [
        (
            json!({"chat": {"max_context_size": null}}),
            "chat.max_context_size",
        ),
        (
            json!({"personality": {"personality_sides": ["a", null]}}),
            "personality.personality_sides[1]",
        ),
        (
            json!({"log": {"suppress_libraries": {"jieba.main": null}}}),
            "log.suppress_libraries.\"jieba.main\"",
        ),
        (
            json!({"brand_new": {"deep": [{"x": null}]}}),
            "brand_new.deep[0].x",
        ),
        (json!(null), "<root>"),
    ];
    for (patch, key) in cases {
        let err = cfg().patch_toml(&path, &patch).unwrap_err();
        assert_eq!(err.code(), "config_null_value", "{patch}");
        assert!(
            matches!(&err, FileError::NullValue { key: k } if k == key),
            "{err}"
        );
    }
    let mut j = cfg().read_toml_as_json(&path).unwrap();
    j["emoji"]["max_reg_num"] = Value::Null;
    let err = cfg().update_toml_full(&path, &j).unwrap_err();
    assert_eq!(err.to_string().split(':').next(), Some("emoji.max_reg_num"));
    assert_eq!(fs::read_to_string(&path).unwrap(), BOT_CONFIG);
    assert!(!bak(&path).exists());
}

#[test]
fn patch_merges_deep_and_keeps_everything_else() {
    let (_d, path) = setup(BOT_CONFIG, "bot_config.toml");
    let before = cfg().read_toml_as_json(&path).unwrap();
    let s = cfg()
        .patch_toml(
            &path,
            &json!({
                "log": {"suppress_libraries": {"httpx": "ERROR", "urllib3": "WARNING"}},
                "bot": {"nickname": "麦麦二号"},
                "chat": {"talk_frequency_adjust": [{"chat": "qq:1:group", "frequency": 2}]},
            }),
        )
        .unwrap();
    assert_eq!(
        s.changed,
        vec![
            "bot.nickname",
            "chat.talk_frequency_adjust[0].chat",
            "chat.talk_frequency_adjust[0].frequency",
            "log.suppress_libraries.httpx"
        ]
    );
    assert_eq!(s.added, vec!["log.suppress_libraries.urllib3"]);
    assert_eq!(s.removed, vec!["chat.talk_frequency_adjust[1]"]);
    let new = fs::read_to_string(&path).unwrap();
    assert!(new.contains(
        "suppress_libraries = { faiss = \"WARNING\", httpx = \"ERROR\", \"jieba.main\" = \"ERROR\", urllib3 = \"WARNING\" }"
    ), "{new}");
    assert!(
        new.contains("{ chat = \"qq:1:group\", frequency = 2.0 },\n]"),
        "{new}"
    );
    let after = cfg().read_toml_as_json(&path).unwrap();
    for section in [
        "inner",
        "personality",
        "memory",
        "keyword_reaction",
        "maintenance",
    ] {
        assert_eq!(after[section], before[section], "{section}");
    }
    assert_eq!(after["bot"]["alias_names"], before["bot"]["alias_names"]);
    // An empty patch is a no-op.
    let snapshot = fs::read_to_string(&path).unwrap();
    assert!(cfg().patch_toml(&path, &json!({})).unwrap().is_empty());
    assert_eq!(fs::read_to_string(&path).unwrap(), snapshot);
}

#[test]
fn arrays_of_tables_stay_arrays_of_tables() {
    let (_d, path) = setup(BOT_CONFIG, "bot_config.toml");
    let mut j = cfg().read_toml_as_json(&path).unwrap();
    j["keyword_reaction"]["regex_rules"][1]["reaction"] = json!("换个说法");
    j["keyword_reaction"]["regex_rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"regex": ["^hi$"], "reaction": "say hi"}));
    let s = cfg().update_toml_full(&path, &j).unwrap();
    assert_eq!(s.changed, vec!["keyword_reaction.regex_rules[1].reaction"]);
    assert_eq!(s.added, vec!["keyword_reaction.regex_rules[2]"]);
    let new = fs::read_to_string(&path).unwrap();
    assert_eq!(
        new.matches("[[keyword_reaction.regex_rules]]").count(),
        3,
        "{new}"
    );
    assert!(new.contains("reaction = \"换个说法\"\n"));
    assert_eq!(cfg().read_toml_as_json(&path).unwrap(), j);

    // Shrinking to one element keeps the header form; emptying it keeps the key.
    let mut j2 = j.clone();
    j2["keyword_reaction"]["regex_rules"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    cfg().update_toml_full(&path, &j2).unwrap();
    let new = fs::read_to_string(&path).unwrap();
    assert_eq!(new.matches("[[keyword_reaction.regex_rules]]").count(), 1);
    j2["keyword_reaction"]["regex_rules"] = json!([]);
    cfg().update_toml_full(&path, &j2).unwrap();
    assert_eq!(cfg().read_toml_as_json(&path).unwrap(), j2);
}

#[test]
fn new_array_of_objects_becomes_array_of_tables() {
    let mut doc = toml_doc::parse_document("[plugins]\nenabled = true\n").unwrap();
    apply_patch(
        &mut doc,
        &json!({"plugins": {"list": [{"name": "a"}, {"name": "b", "opts": {"x": 1}}]}}),
    )
    .unwrap();
    let out = doc.to_string();
    assert_eq!(out.matches("[[plugins.list]]").count(), 2, "{out}");
    assert!(out.contains("[plugins.list.opts]\nx = 1\n"), "{out}");
    assert_eq!(
        toml_doc::toml_str_to_json(&out).unwrap()["plugins"]["list"][1]["opts"]["x"],
        json!(1)
    );
}

#[test]
fn multiline_strings_floats_and_datetimes() {
    let (_d, path) = setup(BOT_CONFIG, "bot_config.toml");
    let s = cfg()
        .patch_toml(
            &path,
            &json!({
                "personality": {"identity_detail": "第一行\n第二行 with \"quotes\" and \\ backslash\n"},
                "chat": {"talk_frequency": 1, "replyer_random_probability": 0.75},
                "maintenance": {"last_reviewed": "2025-07-01T10:00:00+08:00", "quiet_hours_start": "23:30:00"},
                "memory": {"memory_build_distribution": [6, 3.0, 0.6, 32.0, 12.0, 0.4]},
            }),
        )
        .unwrap();
    assert_eq!(
        s.changed,
        vec![
            "chat.replyer_random_probability",
            "maintenance.last_reviewed",
            "personality.identity_detail"
        ]
    );
    let new = fs::read_to_string(&path).unwrap();
    assert!(new.contains("talk_frequency = 1.0\n"));
    assert!(new.contains("replyer_random_probability = 0.75\n"));
    assert!(new.contains(
        "last_reviewed = 2025-07-01T10:00:00+08:00 # when a human last looked at this file\n"
    ));
    let j = cfg().read_toml_as_json(&path).unwrap();
    assert_eq!(
        j["personality"]["identity_detail"],
        json!("第一行\n第二行 with \"quotes\" and \\ backslash\n")
    );
    // Float keys take integers but keep the float type.
    cfg()
        .patch_toml(&path, &json!({"normal_chat": {"thinking_timeout": 90}}))
        .unwrap();
    assert!(
        fs::read_to_string(&path)
            .unwrap()
            .contains("thinking_timeout = 90.0\n")
    );
}

#[test]
fn existing_invalid_toml_is_a_parse_error_and_untouched() {
    let broken = "[bot]\nnickname = \"unterminated\n";
    let (_d, path) = setup(broken, "bot_config.toml");
    assert_eq!(
        cfg().read_toml_as_json(&path).unwrap_err().code(),
        "config_parse_error"
    );
    let err = cfg()
        .patch_toml(&path, &json!({"bot": {"nickname": "x"}}))
        .unwrap_err();
    assert_eq!(err.code(), "config_parse_error");
    assert_eq!(fs::read_to_string(&path).unwrap(), broken);
}

#[test]
fn size_limit_missing_file_and_non_utf8() {
    let (dir, path) = setup(BOT_CONFIG, "bot_config.toml");
    let small = ConfigFile::new().with_max_size(100);
    let err = small.read_toml_as_json(&path).unwrap_err();
    assert_eq!(err.code(), "file_too_large");
    let err = small.patch_toml(&path, &json!({})).unwrap_err();
    assert_eq!(err.code(), "file_too_large");

    let missing = dir.path().join("lpmm_config.toml");
    assert_eq!(
        cfg().read_toml_as_json(&missing).unwrap_err().code(),
        "file_not_found"
    );
    assert_eq!(
        cfg().patch_toml(&missing, &json!({})).unwrap_err().code(),
        "file_not_found"
    );
    assert!(!missing.exists());

    let latin1 = dir.path().join("latin1.toml");
    fs::write(&latin1, b"a = \"\xe9\"\n").unwrap();
    assert_eq!(
        cfg().read_toml_as_json(&latin1).unwrap_err().code(),
        "config_parse_error"
    );
    assert_eq!(
        cfg().read_env(&latin1).unwrap_err().code(),
        "config_parse_error"
    );
}

#[test]
fn toml_crlf_file_round_trips_and_edits_keep_crlf() {
    let text = "# c\r\n[a]\r\nx = 1 # n\r\ny = \"s\"\r\n";
    let mut doc = toml_doc::parse_document(text).unwrap();
    let j = toml_to_json(&doc);
    assert!(apply_full(&mut doc, &j).unwrap().is_empty());
    assert_eq!(toml_doc::render(&doc, text), text);
    apply_patch(&mut doc, &json!({"a": {"x": 2}})).unwrap();
    assert_eq!(
        toml_doc::render(&doc, text),
        "# c\r\n[a]\r\nx = 2 # n\r\ny = \"s\"\r\n"
    );

    // Through the file helper: a no-op does not write, an edit keeps CRLF everywhere.
    let (_d, path) = setup(&BOT_CONFIG.replace('\n', "\r\n"), "bot_config.toml");
    let j = cfg().read_toml_as_json(&path).unwrap();
    assert!(cfg().update_toml_full(&path, &j).unwrap().is_empty());
    assert!(!bak(&path).exists());
    cfg()
        .patch_toml(
            &path,
            &json!({"personality": {"identity_detail": "a\nb"}, "bot": {"nickname": "x"}}),
        )
        .unwrap();
    let new = fs::read_to_string(&path).unwrap();
    assert!(
        !new.replace("\r\n", "").contains('\n'),
        "lone LF in {new:?}"
    );
    assert_eq!(
        cfg().read_toml_as_json(&path).unwrap()["personality"]["identity_detail"],
        json!("a\nb")
    );
}

// ---------------------------------------------------------------------------------------------
// atomic writes

#[cfg(unix)]
#[test]
fn atomic_write_keeps_one_backup_and_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, path) = setup("v1\n", ".env");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    write_atomic(&path, b"v2\n", true).unwrap();
    write_atomic(&path, b"v3\n", true).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"v3\n");
    assert_eq!(fs::read(bak(&path)).unwrap(), b"v2\n");
    assert_eq!(dir_entries(dir.path()), vec![".env", ".env.bak"]);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o640);
    assert_eq!(mode(&bak(&path)), 0o640);

    write_atomic(&path, b"v4\n", false).unwrap();
    assert_eq!(
        fs::read(bak(&path)).unwrap(),
        b"v2\n",
        "backup untouched when disabled"
    );
}

#[cfg(unix)]
#[test]
fn atomic_write_through_symlink_keeps_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.toml");
    fs::write(&real, "a = 1\n").unwrap();
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    write_atomic(&link, b"a = 2\n", true).unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(&real).unwrap(), b"a = 2\n");
    assert_eq!(fs::read(bak(&real)).unwrap(), b"a = 1\n");
}

#[test]
fn failed_atomic_write_leaves_original_and_no_temp_files() {
    let (dir, path) = setup("original\n", "bot_config.toml");
    // A directory where the backup must go makes the backup rename fail.
    fs::create_dir(bak(&path)).unwrap();
    let err = write_atomic(&path, b"new\n", true).unwrap_err();
    assert_eq!(err.code(), "io_error", "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"original\n");
    assert_eq!(
        dir_entries(dir.path()),
        vec!["bot_config.toml", "bot_config.toml.bak"]
    );

    // Same through the high-level helper: the file on disk is byte-for-byte unchanged.
    fs::write(&path, BOT_CONFIG).unwrap();
    let err = cfg()
        .patch_toml(&path, &json!({"bot": {"nickname": "x"}}))
        .unwrap_err();
    assert_eq!(err.code(), "io_error");
    assert_eq!(fs::read_to_string(&path).unwrap(), BOT_CONFIG);
    assert_eq!(
        dir_entries(dir.path()),
        vec!["bot_config.toml", "bot_config.toml.bak"]
    );

    let err = write_atomic(dir.path(), b"x", false).unwrap_err();
    assert_eq!(err.code(), "config_invalid_value");
    let err = write_atomic(&dir.path().join("no/such/dir.toml"), b"x", false).unwrap_err();
    assert_eq!(err.code(), "file_not_found");
}

// ---------------------------------------------------------------------------------------------
// .env

const ENV: &str = "# MaiBot .env\n\
HOST=127.0.0.1\n\
PORT=8000 # main port\n\
\n\
export OPENAI_KEY='sk-abc'\n\
  SILICONFLOW_BASE_URL = \"https://api.siliconflow.cn/v1/\"  # trailing comment\n\
EMPTY=\n\
BARE_FLAG\n\
MULTI=\"line one\nline two\"\n\
not valid line\n\
# end";

#[test]
fn env_parse_and_byte_identical_render() {
    let f = EnvFile::parse(ENV);
    assert_eq!(f.render(), ENV);
    let m = f.to_map();
    assert_eq!(m["HOST"], "127.0.0.1");
    assert_eq!(m["PORT"], "8000");
    assert_eq!(m["OPENAI_KEY"], "sk-abc");
    assert_eq!(m["SILICONFLOW_BASE_URL"], "https://api.siliconflow.cn/v1/");
    assert_eq!(m["EMPTY"], "");
    assert_eq!(m["MULTI"], "line one\nline two");
    assert!(!m.contains_key("BARE_FLAG"));
    assert_eq!(m.len(), 6);
    let lines: Vec<_> = f.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.key == Some("OPENAI_KEY") && l.export)
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.kind == EnvLineKind::Invalid)
            .count(),
        1
    );
    assert_eq!(lines.last().unwrap().kind, EnvLineKind::Comment);

    for text in [
        "A=1\r\nB='x' # c\r\n\r\nexport C=\"y\"\r\n",
        "A=1\r\nB=2",
        "\u{feff}A=1\n",
        "",
        "\n\n",
        "A=\"unterminated\nB=2\n",
        "   \t\n#only comment",
    ] {
        assert_eq!(EnvFile::parse(text).render(), text, "{text:?}");
    }
}

#[test]
fn env_update_edits_in_place_appends_and_keeps_missing_keys() {
    let mut f = EnvFile::parse(ENV);
    let changed = f
        .update([
            ("PORT", "8080"),
            ("OPENAI_KEY", "sk-new"),
            ("SILICONFLOW_BASE_URL", "https://example.com/v1"),
            ("HOST", "127.0.0.1"),
            ("NEW_B", "b"),
            ("NEW_A", "a value"),
        ])
        .unwrap();
    assert_eq!(
        changed,
        vec![
            "PORT",
            "OPENAI_KEY",
            "SILICONFLOW_BASE_URL",
            "NEW_B",
            "NEW_A"
        ]
    );
    let expected = "# MaiBot .env\n\
HOST=127.0.0.1\n\
PORT=8080 # main port\n\
\n\
export OPENAI_KEY='sk-new'\n\
  SILICONFLOW_BASE_URL = \"https://example.com/v1\"  # trailing comment\n\
EMPTY=\n\
BARE_FLAG\n\
MULTI=\"line one\nline two\"\n\
not valid line\n\
# end\n\
NEW_B=b\n\
NEW_A=\"a value\"\n";
    assert_eq!(f.render(), expected);

    assert!(f.remove("MULTI"));
    assert!(!f.remove("MULTI"));
    assert!(!f.render().contains("line two"));
    assert!(!f.to_map().contains_key("MULTI"));
}

#[test]
fn env_crlf_files_get_crlf_appends() {
    let mut f = EnvFile::parse("A=1\r\nB=2");
    f.update([("C", "3")]).unwrap();
    assert_eq!(f.render(), "A=1\r\nB=2\r\nC=3\r\n");
}

#[test]
fn env_hostile_values_round_trip() {
    let hostile = [
        "",
        "plain",
        "with spaces",
        " leading and trailing ",
        "double \" quote",
        "single ' quote",
        "both \"'",
        "back\\slash",
        "\\\\server\\share",
        "ends with backslash\\"
            .replace(' ', "_")
            .as_str()
            .to_owned()
            .leak(),
        "line\nbreak",
        "crlf\r\nbreak",
        "tab\there",
        "# hash first",
        "a #not comment",
        "a#b",
        "key=value=more",
        "$HOME and ${NOT_EXPANDED_HERE}",
        "unicode 麦麦 ✓ é",
        "\"quoted\"",
        "'quoted'",
        "\\\"",
        "\\n literal",
    ];
    let mut f = EnvFile::parse(ENV);
    let mut expected = f.to_map();
    let mut changes: Vec<(String, String)> = Vec::new();
    for (i, v) in hostile.iter().enumerate() {
        changes.push((format!("NEW_{i}"), (*v).to_owned()));
    }
    // Existing keys of every quoting style get hostile values too.
    for (k, v) in [
        ("HOST", "a b"),
        ("PORT", "x\ny"),
        ("OPENAI_KEY", "it's"),
        ("SILICONFLOW_BASE_URL", "\\"),
        ("EMPTY", "now # set"),
        ("BARE_FLAG", "\"x"),
        ("MULTI", "é\\"),
    ] {
        changes.push((k.to_owned(), v.to_owned()));
    }
    for (k, v) in &changes {
        expected.insert(k.clone(), v.clone());
    }
    f.update(changes.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .unwrap();
    let rendered = f.render();
    assert_eq!(EnvFile::parse(&rendered).to_map(), expected, "{rendered}");
    // Lines that were not edited are still there verbatim.
    assert!(rendered.starts_with("# MaiBot .env\n"));
    assert!(rendered.contains("\nnot valid line\n# end\n"));
    assert!(rendered.contains("  # trailing comment\n"));
}

#[test]
fn env_rejects_bad_keys_and_unrepresentable_values_atomically() {
    for key in ["BAD-KEY", "1ABC", "A B", "A\nB", "", "A=B", "键"] {
        let mut f = EnvFile::parse(ENV);
        let err = f.update([("GOOD", "1"), (key, "x")]).unwrap_err();
        assert!(
            matches!(&err, FileError::InvalidEnvKey { key: k } if k == key),
            "{err}"
        );
        assert_eq!(err.code(), "env_invalid_key");
        assert_eq!(f.render(), ENV, "nothing applied");
    }
    let mut f = EnvFile::parse(ENV);
    let err = f.update([("GOOD", "1"), ("W", " spaced\\")]).unwrap_err();
    assert_eq!(err.code(), "env_invalid_value");
    assert_eq!(f.render(), ENV);
}

#[test]
fn env_config_file_round_trip_on_disk() {
    let (dir, path) = setup(ENV, ".env");
    let map = cfg().read_env(&path).unwrap();
    // The frontend posts the whole map back unchanged: no write at all.
    assert!(cfg().update_env(&path, &map).unwrap().is_empty());
    assert_eq!(dir_entries(dir.path()), vec![".env"]);

    let mut changes = BTreeMap::new();
    changes.insert("PORT".to_owned(), "9000".to_owned());
    assert_eq!(cfg().update_env(&path, &changes).unwrap(), vec!["PORT"]);
    assert_eq!(fs::read_to_string(bak(&path)).unwrap(), ENV);
    assert_eq!(cfg().read_env(&path).unwrap()["PORT"], "9000");
    assert_eq!(cfg().read_env(&path).unwrap().len(), map.len());

    let err = cfg().update_env(&path, [("BAD KEY", "1")]).unwrap_err();
    assert_eq!(err.code(), "env_invalid_key");
    assert_eq!(
        cfg().remove_env_keys(&path, &["HOST", "NOPE"]).unwrap(),
        vec!["HOST"]
    );
    assert!(!cfg().read_env(&path).unwrap().contains_key("HOST"));
    assert!(
        fs::read_to_string(&path)
            .unwrap()
            .starts_with("# MaiBot .env\nPORT=9000 # main port\n")
    );
}

// ---------------------------------------------------------------------------------------------
// safe paths

#[test]
fn resolve_inside_confines_paths() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("instance");
    fs::create_dir_all(root.join("config")).unwrap();
    fs::write(root.join("config/bot_config.toml"), "").unwrap();
    fs::write(outer.path().join("secret.txt"), "").unwrap();

    let ok = resolve_inside(&root, Path::new("config/bot_config.toml")).unwrap();
    assert_eq!(
        ok,
        fs::canonicalize(root.join("config/bot_config.toml")).unwrap()
    );
    let abs_inside = fs::canonicalize(root.join("config")).unwrap();
    assert!(resolve_inside(&root, &abs_inside).is_ok());
    assert!(resolve_inside(&root, Path::new("config/../config/./bot_config.toml")).is_ok());

    for bad in [
        "../secret.txt",
        "../x",
        "config/../../secret.txt",
        "/etc/passwd",
        "/nonexistent/x",
    ] {
        let err = resolve_inside(&root, Path::new(bad)).unwrap_err();
        assert_eq!(err.code(), "path_escape", "{bad}");
    }
    assert_eq!(
        resolve_inside(&root, Path::new("config/missing.toml"))
            .unwrap_err()
            .code(),
        "file_not_found"
    );

    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(outer.path().join("secret.txt"), root.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(outer.path(), root.join("linkdir")).unwrap();
        std::os::unix::fs::symlink(root.join("config"), root.join("inner_link")).unwrap();
        for bad in ["link.txt", "linkdir/secret.txt", "linkdir"] {
            let err = resolve_inside(&root, Path::new(bad)).unwrap_err();
            assert_eq!(err.code(), "path_escape", "{bad}");
        }
        assert!(resolve_inside(&root, Path::new("inner_link/bot_config.toml")).is_ok());
        let err = resolve_inside_for_create(&root, Path::new("link.txt")).unwrap_err();
        assert_eq!(err.code(), "path_escape");
        let err = resolve_inside_for_create(&root, Path::new("linkdir/new.toml")).unwrap_err();
        assert_eq!(err.code(), "path_escape");
    }
}

#[test]
fn resolve_for_create_checks_parent_and_name() {
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("instance");
    fs::create_dir_all(root.join("config")).unwrap();
    let p = resolve_inside_for_create(&root, Path::new("config/model_config.toml")).unwrap();
    assert_eq!(
        p,
        fs::canonicalize(root.join("config"))
            .unwrap()
            .join("model_config.toml")
    );
    assert!(resolve_inside_for_create(&root, Path::new(".env")).is_ok());
    assert_eq!(
        resolve_inside_for_create(&root, Path::new("config/.."))
            .unwrap_err()
            .code(),
        "config_invalid_value"
    );
    assert_eq!(
        resolve_inside_for_create(&root, Path::new("../evil.toml"))
            .unwrap_err()
            .code(),
        "path_escape"
    );
    assert_eq!(
        resolve_inside_for_create(&root, Path::new("/tmp/evil.toml"))
            .unwrap_err()
            .code(),
        "path_escape"
    );
    assert_eq!(
        resolve_inside_for_create(&root, Path::new("nope/x.toml"))
            .unwrap_err()
            .code(),
        "file_not_found"
    );
}

// ---------------------------------------------------------------------------------------------
// generated hostile inputs

/// Deterministic pseudo-random strings over an alphabet of troublemakers.
fn hostile_strings(count: usize) -> Vec<String> {
    let alphabet: Vec<char> = "a Z0 \"'\\\n\r\t#=${}é麦\u{7f}\u{1}`".chars().collect();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let len = (next() % 7) as usize;
            (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect()
        })
        .collect()
}

#[test]
fn env_generated_values_read_back_exactly_or_are_refused() {
    let base = "A=1\nexport B='x' # c\nC=\"y\"\r\n";
    let mut refused = 0;
    for (i, value) in hostile_strings(3000).into_iter().enumerate() {
        let key = ["A", "B", "C", "NEW"][i % 4];
        let mut f = EnvFile::parse(base);
        match f.update([(key, value.as_str())]) {
            Ok(_) => {
                let reread = EnvFile::parse(&f.render());
                assert_eq!(reread.get(key), Some(value.as_str()), "{value:?}");
                assert_eq!(reread.to_map().len(), if key == "NEW" { 4 } else { 3 });
            }
            Err(FileError::EnvUnrepresentable { .. }) => {
                assert!(value.ends_with('\\'), "{value:?}");
                refused += 1;
            }
            Err(e) => panic!("{value:?}: {e}"),
        }
    }
    assert!(refused < 300, "{refused}");
}

#[test]
fn toml_generated_keys_and_values_round_trip() {
    let strings = hostile_strings(400);
    for original in ["[s]\nk = \"v\"\n", "[s]\r\nk = \"v\"\r\n"] {
        let mut doc = toml_doc::parse_document(original).unwrap();
        let mut patch = serde_json::Map::new();
        for (i, v) in strings.iter().enumerate() {
            // Half the strings are used as keys too.
            let key = if i % 2 == 0 {
                format!("k{i}")
            } else {
                format!("{v}{i}")
            };
            patch.insert(key, json!(v));
        }
        patch.insert("k".into(), json!("line\nbreak '''\"\"\""));
        let patch = json!({ "s": patch });
        apply_patch(&mut doc, &patch).unwrap();
        let out = toml_doc::render(&doc, original);
        let back = toml_doc::toml_str_to_json(&out).unwrap();
        assert_eq!(back, patch, "{out}");
        if original.contains('\r') {
            assert!(!out.replace("\r\n", "").contains('\n'));
        }
    }
}
