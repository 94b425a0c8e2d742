#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests against real SQLite files shaped like MaiBot's peewee schema.

use std::fs;
use std::path::PathBuf;

use launcher_core::maibot_db::emoji::{
    EmojiBatch, EmojiCreate, EmojiFilter, EmojiSearch, EmojiUpdate,
};
use launcher_core::maibot_db::person::{
    PersonBatch, PersonCreate, PersonFilter, PersonInteraction, PersonSearch, PersonUpdate,
};
use launcher_core::maibot_db::{
    MaibotDb, MaibotDbError, db_info, emoji, emoji_image_path, locate_db, parse_input, person,
};
use serde_json::{Value, json};
use tempfile::TempDir;

// ---------------------------------------------------------------- fixtures

#[derive(Debug, Clone, Copy)]
enum Schema {
    /// MaiBot 0.7/0.8 as peewee creates it.
    Old,
    /// Old plus newer columns, one NOT NULL without SQL default, an unknown
    /// NOT NULL column and a BLOB column.
    New,
    /// 0.10-style person_info without impression/points.
    Slim,
}

const EMOJI_OLD: &str = r#"
CREATE TABLE "emoji" ("id" INTEGER NOT NULL PRIMARY KEY, "full_path" TEXT NOT NULL,
  "format" TEXT NOT NULL, "emoji_hash" TEXT NOT NULL, "description" TEXT NOT NULL,
  "query_count" INTEGER NOT NULL, "is_registered" INTEGER NOT NULL, "is_banned" INTEGER NOT NULL,
  "emotion" TEXT, "record_time" REAL NOT NULL, "register_time" REAL,
  "usage_count" INTEGER NOT NULL, "last_used_time" REAL);
CREATE UNIQUE INDEX "emoji_full_path" ON "emoji" ("full_path");
CREATE INDEX "emoji_emoji_hash" ON "emoji" ("emoji_hash");
"#;

const EMOJI_NEW_EXTRA: &str = r#"
ALTER TABLE emoji ADD COLUMN "extra_note" TEXT NOT NULL DEFAULT 'x';
ALTER TABLE emoji ADD COLUMN "thumb" BLOB;
"#;

const PERSON_OLD: &str = r#"
CREATE TABLE "person_info" ("id" INTEGER NOT NULL PRIMARY KEY, "person_id" TEXT NOT NULL,
  "person_name" TEXT, "name_reason" TEXT, "platform" TEXT NOT NULL, "user_id" TEXT NOT NULL,
  "nickname" TEXT NOT NULL, "impression" TEXT, "short_impression" TEXT, "points" TEXT,
  "forgotten_points" TEXT, "info_list" TEXT, "know_times" REAL, "know_since" REAL, "last_know" REAL);
CREATE UNIQUE INDEX "person_info_person_id" ON "person_info" ("person_id");
CREATE INDEX "person_info_user_id" ON "person_info" ("user_id");
"#;

const PERSON_NEW_EXTRA: &str = r#"
CREATE TABLE "person_info_new" ("id" INTEGER NOT NULL PRIMARY KEY, "is_known" INTEGER NOT NULL,
  "person_id" TEXT NOT NULL, "person_name" TEXT, "name_reason" TEXT, "platform" TEXT NOT NULL,
  "user_id" TEXT NOT NULL, "nickname" TEXT NOT NULL, "impression" TEXT, "short_impression" TEXT,
  "points" TEXT, "forgotten_points" TEXT, "info_list" TEXT, "know_times" REAL, "know_since" REAL,
  "last_know" REAL, "attitude" INTEGER, "group_nick_name" TEXT, "memory_points" TEXT,
  "future_score" REAL NOT NULL);
DROP TABLE person_info;
ALTER TABLE person_info_new RENAME TO person_info;
CREATE UNIQUE INDEX "person_info_person_id" ON "person_info" ("person_id");
"#;

const PERSON_SLIM: &str = r#"
CREATE TABLE "person_info" ("id" INTEGER NOT NULL PRIMARY KEY, "is_known" INTEGER NOT NULL,
  "person_id" TEXT NOT NULL, "person_name" TEXT, "name_reason" TEXT, "platform" TEXT NOT NULL,
  "user_id" TEXT NOT NULL, "nickname" TEXT, "group_nick_name" TEXT, "memory_points" TEXT,
  "know_times" REAL, "know_since" REAL, "last_know" REAL);
CREATE UNIQUE INDEX "person_info_person_id" ON "person_info" ("person_id");
"#;

struct Instance {
    _tmp: TempDir,
    dir: PathBuf,
}

impl Instance {
    fn empty() -> Self {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("instance");
        fs::create_dir_all(&dir).unwrap();
        Self { _tmp: tmp, dir }
    }

    fn with_schema(schema: Schema) -> Self {
        let inst = Self::empty();
        fs::create_dir_all(inst.dir.join("data")).unwrap();
        let conn = rusqlite::Connection::open(inst.db_path()).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        conn.execute_batch(EMOJI_OLD).unwrap();
        match schema {
            Schema::Old => conn.execute_batch(PERSON_OLD).unwrap(),
            Schema::New => {
                conn.execute_batch(EMOJI_NEW_EXTRA).unwrap();
                conn.execute_batch(PERSON_OLD).unwrap();
                conn.execute_batch(PERSON_NEW_EXTRA).unwrap();
            }
            Schema::Slim => conn.execute_batch(PERSON_SLIM).unwrap(),
        }
        inst
    }

    fn db_path(&self) -> PathBuf {
        self.dir.join("data").join("MaiBot.db")
    }

    fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db_path()).unwrap()
    }
}

fn emoji_input(path: &str, hash: &str, description: &str) -> EmojiCreate {
    parse_input(json!({
        "full_path": path, "format": "png", "emoji_hash": hash,
        "description": description, "emotion": "happy"
    }))
    .unwrap()
}

/// The exact body the frontend's "add person" dialog sends.
fn person_input(person_id: &str, name: &str) -> PersonCreate {
    parse_input(json!({
        "person_id": person_id, "platform": "qq", "user_id": "10001",
        "person_name": name, "name_reason": "", "nickname": "nick",
        "impression": "", "short_impression": "", "points": "",
        "know_times": 1_700_000_000.5, "know_since": 1_700_000_000.5, "last_know": 1_700_000_000.5
    }))
    .unwrap()
}

fn field_of(err: &MaibotDbError) -> &str {
    match err {
        MaibotDbError::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

// ---------------------------------------------------------------- locate / info

#[test]
fn locate_defaults_to_data_maibot_db() {
    let inst = Instance::with_schema(Schema::Old);
    let path = locate_db(&inst.dir).unwrap();
    assert_eq!(path, fs::canonicalize(inst.db_path()).unwrap());
}

#[test]
fn locate_honours_configured_sqlite_path() {
    let inst = Instance::empty();
    fs::create_dir_all(inst.dir.join("config")).unwrap();
    fs::write(
        inst.dir.join("config/bot_config.toml"),
        "[inner]\nversion = \"1\"\n\n[database]\ntype = \"sqlite\"\nsqlite_path = \"db/other.db\"\n",
    )
    .unwrap();
    let path = locate_db(&inst.dir).unwrap();
    assert!(path.ends_with("db/other.db"), "{path:?}");

    fs::write(
        inst.dir.join("config/bot_config.toml"),
        "[data_base]\nfile = \"sqlite:///x/y.db\"\n",
    )
    .unwrap();
    assert!(locate_db(&inst.dir).unwrap().ends_with("x/y.db"));
}

#[test]
fn locate_refuses_escape_and_other_backends() {
    let inst = Instance::empty();
    fs::create_dir_all(inst.dir.join("config")).unwrap();
    let cfg = inst.dir.join("config/bot_config.toml");

    fs::write(&cfg, "[database]\nsqlite_path = \"../outside.db\"\n").unwrap();
    let err = locate_db(&inst.dir).unwrap_err();
    assert!(matches!(err, MaibotDbError::PathEscape { .. }), "{err:?}");
    assert_eq!(err.http_status(), 403);

    fs::write(&cfg, "[database]\npath = \"/etc/passwd\"\n").unwrap();
    assert!(matches!(
        locate_db(&inst.dir).unwrap_err(),
        MaibotDbError::PathEscape { .. }
    ));

    fs::write(&cfg, "[data_base]\ntype = \"mysql\"\n").unwrap();
    let err = locate_db(&inst.dir).unwrap_err();
    assert_eq!(err.code(), "maibot_db_unsupported_backend");

    // An unparsable config must not hide the database.
    fs::write(&cfg, "this is [ not toml").unwrap();
    assert!(locate_db(&inst.dir).unwrap().ends_with("data/MaiBot.db"));

    let err = locate_db(&inst.dir.join("nope")).unwrap_err();
    assert_eq!(err.code(), "maibot_instance_dir_missing");
}

#[test]
fn info_reports_missing_valid_and_invalid() {
    let inst = Instance::empty();
    let info = db_info(&inst.dir).unwrap();
    assert!(!info.exists && !info.valid);
    assert_eq!(info.size, 0);
    assert!(info.path.ends_with("MaiBot.db"));
    assert!(!inst.db_path().exists(), "probe must not create the db");

    let inst = Instance::with_schema(Schema::New);
    let info = db_info(&inst.dir).unwrap();
    assert!(info.exists && info.valid && info.size > 0);
    let v = serde_json::to_value(&info).unwrap();
    for key in ["path", "exists", "valid", "size"] {
        assert!(v.get(key).is_some(), "{key}");
    }

    let inst = Instance::empty();
    fs::create_dir_all(inst.dir.join("data")).unwrap();
    fs::write(
        inst.db_path(),
        b"definitely not sqlite, just some text padding it out....",
    )
    .unwrap();
    let info = db_info(&inst.dir).unwrap();
    assert!(info.exists && !info.valid);
    let err = emoji::count(&inst.dir, &EmojiFilter::default()).unwrap_err();
    assert_eq!(err.code(), "maibot_db_not_a_database");

    // An SQLite file without MaiBot's tables.
    let inst = Instance::empty();
    fs::create_dir_all(inst.dir.join("data")).unwrap();
    rusqlite::Connection::open(inst.db_path())
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    assert!(!db_info(&inst.dir).unwrap().valid);
    let err = emoji::count(&inst.dir, &EmojiFilter::default()).unwrap_err();
    assert!(matches!(
        err,
        MaibotDbError::TableMissing { table: "emoji" }
    ));
}

#[test]
fn missing_database_is_never_created() {
    let inst = Instance::empty();
    let err = emoji::create(&inst.dir, &emoji_input("a.png", "h", "d")).unwrap_err();
    assert!(matches!(err, MaibotDbError::Missing { .. }));
    assert_eq!((err.code(), err.http_status()), ("maibot_db_missing", 404));
    assert!(matches!(
        person::count(&inst.dir, &PersonFilter::default()).unwrap_err(),
        MaibotDbError::Missing { .. }
    ));
    assert!(matches!(
        emoji::get(&inst.dir, 1).unwrap_err(),
        MaibotDbError::Missing { .. }
    ));
    assert!(!inst.db_path().exists());
    assert!(!inst.dir.join("data").exists());
}

// ---------------------------------------------------------------- emoji

fn emoji_flow(schema: Schema) {
    let inst = Instance::with_schema(schema);
    let d = &inst.dir;

    let id1 = emoji::create(d, &emoji_input("data/emoji/a.png", "hash-a", "a cat")).unwrap();
    let id2 = emoji::create(d, &emoji_input("data/emoji/b.png", "hash-b", "a dog")).unwrap();
    assert!(id2 > id1);
    let err = emoji::create(d, &emoji_input("data/emoji/a.png", "hash-c", "dup")).unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("maibot_db_conflict", 409));

    let row = emoji::get(d, id1).unwrap();
    assert_eq!(row["full_path"], "data/emoji/a.png");
    assert_eq!(row["query_count"], 0);
    assert_eq!(row["usage_count"], 0);
    assert_eq!(row["is_registered"], 0);
    assert!(
        row["record_time"].as_f64().unwrap() > 1.6e9,
        "record_time defaults to now"
    );
    assert_eq!(row["register_time"], Value::Null);
    if matches!(schema, Schema::New) {
        assert_eq!(row["extra_note"], "x", "extra columns are returned");
    }

    assert_eq!(emoji::get_by_hash(d, "hash-b").unwrap()["id"], id2);
    assert!(matches!(
        emoji::get_by_hash(d, "nope").unwrap_err(),
        MaibotDbError::NotFound {
            entity: "emoji",
            ..
        }
    ));
    assert!(matches!(
        emoji::get(d, 999).unwrap_err(),
        MaibotDbError::NotFound { .. }
    ));

    // Update: partial, registered via 0/1 and bool.
    let upd: EmojiUpdate =
        parse_input(json!({"is_registered": 1, "description": "a big cat"})).unwrap();
    assert!(emoji::update(d, id1, &upd).unwrap());
    assert!(!emoji::update(d, 999, &upd).unwrap());
    let upd: EmojiUpdate = parse_input(json!({"is_banned": true})).unwrap();
    assert!(emoji::update(d, id2, &upd).unwrap());
    let err = emoji::update(d, id1, &EmojiUpdate::default()).unwrap_err();
    assert_eq!(field_of(&err), "body");
    let err = emoji::update(
        d,
        id2,
        &parse_input(json!({"full_path": "data/emoji/a.png"})).unwrap(),
    )
    .unwrap_err();
    assert!(matches!(err, MaibotDbError::Conflict { .. }));
    let err = parse_input::<EmojiUpdate>(json!({"id": 5})).unwrap_err();
    assert_eq!(field_of(&err), "id");

    // Filters: bool and 0/1 are equivalent.
    let f: EmojiFilter = parse_input(json!({"is_registered": true})).unwrap();
    assert_eq!(emoji::count(d, &f).unwrap(), 1);
    let f: EmojiFilter = parse_input(json!({"is_banned": 1})).unwrap();
    assert_eq!(emoji::count(d, &f).unwrap(), 1);
    let f: EmojiFilter =
        parse_input(json!({"description_like": "cat", "format": "png", "emotion": "happy"}))
            .unwrap();
    assert_eq!(emoji::count(d, &f).unwrap(), 1);
    let f: EmojiFilter = parse_input(json!({"emotion": "", "format": ""})).unwrap();
    assert_eq!(
        emoji::count(d, &f).unwrap(),
        2,
        "empty strings mean no filter"
    );
    assert!(parse_input::<EmojiFilter>(json!({"is_banned": 2})).is_err());

    let s: EmojiSearch = parse_input(json!({"description_like": "a ", "limit": 10})).unwrap();
    let page = emoji::search(d, &s).unwrap();
    assert_eq!(page.total_count, Some(2));
    assert_eq!(page.limit, 10);
    assert_eq!(page.items.len(), 2);

    // The frontend's batch body: batch_size + offset + flattened filters.
    let b: EmojiBatch =
        parse_input(json!({"batch_size": 1, "offset": 0, "format": "png"})).unwrap();
    let page = emoji::batch(d, &b).unwrap();
    assert_eq!(page.total_count, None);
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0]["id"], id2, "batch is id DESC");
    for key in [
        "id",
        "full_path",
        "format",
        "description",
        "emotion",
        "query_count",
        "usage_count",
        "is_registered",
        "is_banned",
    ] {
        assert!(page.items[0].contains_key(key), "{key}");
    }

    // Counters.
    assert!(emoji::increment_usage(d, id1).unwrap());
    assert!(emoji::increment_usage(d, id1).unwrap());
    assert!(emoji::increment_query(d, id1).unwrap());
    assert!(!emoji::increment_usage(d, 999).unwrap());
    assert!(!emoji::increment_query(d, 999).unwrap());
    let row = emoji::get(d, id1).unwrap();
    assert_eq!(row["usage_count"], 2);
    assert_eq!(row["query_count"], 1);
    assert!(row["last_used_time"].as_f64().is_some());

    assert!(emoji::delete(d, id1).unwrap());
    assert!(!emoji::delete(d, id1).unwrap());
    assert_eq!(emoji::count(d, &EmojiFilter::default()).unwrap(), 1);
}

#[test]
fn emoji_operations_old_schema() {
    emoji_flow(Schema::Old);
}

#[test]
fn emoji_operations_new_schema() {
    emoji_flow(Schema::New);
}

#[test]
fn blob_columns_are_omitted() {
    let inst = Instance::with_schema(Schema::New);
    let id = emoji::create(&inst.dir, &emoji_input("p.png", "h", "d")).unwrap();
    inst.raw()
        .execute("UPDATE emoji SET thumb = x'0102' WHERE id = ?1", [id])
        .unwrap();
    let row = emoji::get(&inst.dir, id).unwrap();
    assert!(!row.contains_key("thumb"));
    assert!(row.contains_key("extra_note"));
}

#[test]
fn create_with_registration_and_explicit_times() {
    let inst = Instance::with_schema(Schema::Old);
    let input: EmojiCreate = parse_input(json!({
        "full_path": "r.png", "format": "png", "emoji_hash": "h",
        "is_registered": true, "record_time": 123.5
    }))
    .unwrap();
    let id = emoji::create(&inst.dir, &input).unwrap();
    let row = emoji::get(&inst.dir, id).unwrap();
    assert_eq!(row["record_time"], 123.5);
    assert!(row["register_time"].as_f64().is_some());
    assert_eq!(row["description"], "");

    let err = emoji::create(&inst.dir, &emoji_input(" ", "h", "d")).unwrap_err();
    assert_eq!(field_of(&err), "full_path");
    let err = parse_input::<EmojiCreate>(json!({"full_path": "x", "format": "png"})).unwrap_err();
    assert_eq!(field_of(&err), "emoji_hash");
}

#[test]
fn paging_limits() {
    let inst = Instance::with_schema(Schema::Old);
    let d = &inst.dir;
    for i in 0..3 {
        emoji::create(d, &emoji_input(&format!("{i}.png"), "h", "d")).unwrap();
    }
    let search = |v: Value| emoji::search(d, &parse_input::<EmojiSearch>(v).unwrap());

    assert_eq!(search(json!({})).unwrap().limit, 100);
    assert_eq!(search(json!({"limit": 0})).unwrap().limit, 100);
    assert_eq!(search(json!({"limit": 1000})).unwrap().limit, 1000);
    assert_eq!(
        field_of(&search(json!({"limit": -1})).unwrap_err()),
        "limit"
    );
    let err = search(json!({"limit": 1001})).unwrap_err();
    assert_eq!((field_of(&err), err.http_status()), ("limit", 400));
    assert_eq!(
        field_of(&search(json!({"offset": -5})).unwrap_err()),
        "offset"
    );
    let page = search(json!({"limit": 2, "offset": 2})).unwrap();
    assert_eq!(
        (page.items.len(), page.total_count, page.offset),
        (1, Some(3), 2)
    );

    let batch = |v: Value| emoji::batch(d, &parse_input::<EmojiBatch>(v).unwrap());
    assert_eq!(batch(json!({})).unwrap().limit, 100);
    assert_eq!(
        field_of(&batch(json!({"batch_size": 5000})).unwrap_err()),
        "batch_size"
    );
    assert_eq!(
        field_of(&batch(json!({"batch_size": -1})).unwrap_err()),
        "batch_size"
    );

    let persons = |v: Value| person::search(d, &parse_input::<PersonSearch>(v).unwrap());
    assert_eq!(
        field_of(&persons(json!({"limit": 1001})).unwrap_err()),
        "limit"
    );
    let err = person::batch(
        d,
        &parse_input::<PersonBatch>(json!({"offset": -1})).unwrap(),
    )
    .unwrap_err();
    assert_eq!(field_of(&err), "offset");
}

#[test]
fn like_wildcards_are_literal() {
    let inst = Instance::with_schema(Schema::Old);
    let d = &inst.dir;
    for (i, desc) in ["100% happy", "sad", "a_b", "axb", r"back\slash"]
        .iter()
        .enumerate()
    {
        emoji::create(d, &emoji_input(&format!("{i}.png"), "h", desc)).unwrap();
    }
    let count = |needle: &str| {
        emoji::count(
            d,
            &parse_input(json!({"description_like": needle})).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(count("%"), 1);
    assert_eq!(count("_"), 1);
    assert_eq!(count("a_b"), 1);
    assert_eq!(count(r"\"), 1);
    assert_eq!(count("a"), 5, "plain substring still works");
    assert_eq!(count("xb"), 1);
    // SQL-injection-looking text is just a value.
    assert_eq!(count("' OR 1=1 --"), 0);

    person::create(d, &person_input("p1", "50%off")).unwrap();
    person::create(d, &person_input("p2", "plain")).unwrap();
    let f: PersonFilter = parse_input(json!({"person_name_like": "%"})).unwrap();
    assert_eq!(person::count(d, &f).unwrap(), 1);
}

// ---------------------------------------------------------------- image path

#[test]
fn image_path_resolution() {
    let inst = Instance::with_schema(Schema::Old);
    let d = &inst.dir;
    fs::create_dir_all(d.join("data/emoji")).unwrap();
    fs::write(d.join("data/emoji/ok.png"), PNG).unwrap();
    fs::write(d.join("data/emoji/pic.gif"), b"GIF89a\x01\x00").unwrap();
    fs::write(d.join(".env"), b"API_KEY=secret").unwrap();

    let rel = emoji::create(d, &emoji_input("data/emoji/ok.png", "h", "d")).unwrap();
    let (path, mime) = emoji_image_path(d, rel).unwrap();
    assert_eq!(mime, "image/png");
    assert_eq!(path, fs::canonicalize(d.join("data/emoji/ok.png")).unwrap());

    let abs_path = d.join("data/emoji/pic.gif");
    let abs = emoji::create(d, &emoji_input(abs_path.to_str().unwrap(), "h", "d")).unwrap();
    assert_eq!(emoji_image_path(d, abs).unwrap().1, "image/gif");

    let escape = emoji::create(d, &emoji_input("../../etc/passwd", "h", "d")).unwrap();
    let err = emoji_image_path(d, escape).unwrap_err();
    assert!(matches!(err, MaibotDbError::PathEscape { .. }), "{err:?}");

    let outside_dir = TempDir::new().unwrap();
    let outside = outside_dir.path().join("x.png");
    fs::write(&outside, PNG).unwrap();
    let abs_out = emoji::create(d, &emoji_input(outside.to_str().unwrap(), "h", "d")).unwrap();
    assert!(matches!(
        emoji_image_path(d, abs_out).unwrap_err(),
        MaibotDbError::PathEscape { .. }
    ));

    // Non-existent outside paths are "escape" too, so existence cannot be probed.
    let probe = emoji::create(d, &emoji_input("../../no/such/file.png", "h", "d")).unwrap();
    assert!(matches!(
        emoji_image_path(d, probe).unwrap_err(),
        MaibotDbError::PathEscape { .. }
    ));

    let missing = emoji::create(d, &emoji_input("data/emoji/gone.png", "h", "d")).unwrap();
    assert!(matches!(
        emoji_image_path(d, missing).unwrap_err(),
        MaibotDbError::NotFound {
            entity: "emoji image",
            ..
        }
    ));

    let secret = emoji::create(d, &emoji_input(".env", "h", "d")).unwrap();
    let err = emoji_image_path(d, secret).unwrap_err();
    assert_eq!(
        (err.code(), err.http_status()),
        ("maibot_emoji_not_image", 415)
    );

    assert!(matches!(
        emoji_image_path(d, 4242).unwrap_err(),
        MaibotDbError::NotFound {
            entity: "emoji",
            ..
        }
    ));

    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&outside, d.join("data/emoji/link.png")).unwrap();
        let link = emoji::create(d, &emoji_input("data/emoji/link.png", "h", "d")).unwrap();
        assert!(matches!(
            emoji_image_path(d, link).unwrap_err(),
            MaibotDbError::PathEscape { .. }
        ));
        // Reaching the instance through a symlink: the stored absolute path is
        // lexically outside the canonical root but really inside, so it is served.
        let alias = outside_dir.path().join("alias");
        std::os::unix::fs::symlink(d, &alias).unwrap();
        let aliased = alias.join("data/emoji/ok.png");
        let via_alias =
            emoji::create(d, &emoji_input(aliased.to_str().unwrap(), "h2", "d")).unwrap();
        assert_eq!(emoji_image_path(&alias, via_alias).unwrap().1, "image/png");
        // A symlinked directory pointing outside is caught the same way.
        std::os::unix::fs::symlink(outside_dir.path(), d.join("data/linkdir")).unwrap();
        let via_dir = emoji::create(d, &emoji_input("data/linkdir/x.png", "h", "d")).unwrap();
        assert!(matches!(
            emoji_image_path(d, via_dir).unwrap_err(),
            MaibotDbError::PathEscape { .. }
        ));
    }
}

// ---------------------------------------------------------------- person

fn person_flow(schema: Schema) {
    let inst = Instance::with_schema(schema);
    let d = &inst.dir;

    let r1 = person::create(d, &person_input("pid-1", "Alice")).unwrap();
    let r2 = person::create(d, &person_input("pid-2", "")).unwrap();
    let numeric: PersonCreate = parse_input(
        json!({"person_id": "pid-3", "platform": "tg", "user_id": 42, "nickname": "n"}),
    )
    .unwrap();
    let r3 = person::create(d, &numeric).unwrap();
    assert!(r1 < r2 && r2 < r3);
    let err = person::create(d, &person_input("pid-1", "again")).unwrap_err();
    assert!(matches!(err, MaibotDbError::Conflict { .. }));

    let row = person::get(d, r1).unwrap();
    assert_eq!(row["person_id"], "pid-1");
    assert_eq!(row["points"], "[]", "empty JSON-list text becomes []");
    assert_eq!(
        person::get_by_person_id(d, "pid-3").unwrap()["user_id"],
        "42"
    );
    assert_eq!(
        person::get_by_platform_user(d, "tg", "42").unwrap()["id"],
        r3
    );
    assert!(matches!(
        person::get_by_platform_user(d, "tg", "43").unwrap_err(),
        MaibotDbError::NotFound {
            entity: "person",
            ..
        }
    ));
    assert!(person::get(d, 999).is_err());
    if matches!(schema, Schema::New) {
        assert_eq!(
            row["is_known"], 0,
            "NOT NULL without SQL default is zero-filled"
        );
        assert_eq!(
            row["future_score"], 0.0,
            "unknown NOT NULL column is zero-filled"
        );
        assert_eq!(row["memory_points"], Value::Null);
    }

    let count = |v: Value| person::count(d, &parse_input::<PersonFilter>(v).unwrap()).unwrap();
    assert_eq!(count(json!({})), 3);
    assert_eq!(count(json!({"has_person_name": true})), 1);
    assert_eq!(count(json!({"has_person_name": false})), 2);
    assert_eq!(count(json!({"platform": "qq"})), 2);
    assert_eq!(count(json!({"person_name_like": "lic"})), 1);

    let page = person::search(
        d,
        &parse_input(json!({"platform": "qq", "limit": 1})).unwrap(),
    )
    .unwrap();
    assert_eq!((page.items.len(), page.total_count), (1, Some(2)));
    let page = person::batch(
        d,
        &parse_input(json!({"batch_size": 10, "offset": 0})).unwrap(),
    )
    .unwrap();
    assert_eq!(page.items.len(), 3);
    assert_eq!(page.items[0]["id"], r3);
    assert_eq!(page.total_count, None);

    let upd: PersonUpdate =
        parse_input(json!({"person_name": "Bob", "nickname": "bobby"})).unwrap();
    assert!(person::update(d, "pid-2", &upd).unwrap());
    assert!(!person::update(d, "nope", &upd).unwrap());
    assert_eq!(person::get(d, r2).unwrap()["person_name"], "Bob");
    let err = person::update(d, "pid-2", &PersonUpdate::default()).unwrap_err();
    assert_eq!(field_of(&err), "body");
    let err = parse_input::<PersonUpdate>(json!({"person_id": "x"})).unwrap_err();
    assert_eq!(field_of(&err), "person_id");
    let err = person::update(
        d,
        "pid-2",
        &parse_input(json!({"points": "not json"})).unwrap(),
    )
    .unwrap_err();
    assert_eq!(field_of(&err), "points");

    // Interaction: empty strings change nothing, text replaces, plain points append.
    let before = person::get(d, r1).unwrap();
    let i: PersonInteraction = parse_input(json!({
        "impression_update": "kind", "short_impression_update": "", "points_update": "likes cats"
    }))
    .unwrap();
    assert!(person::update_interaction(d, "pid-1", &i).unwrap());
    let after = person::get(d, r1).unwrap();
    assert_eq!(after["impression"], "kind");
    assert_eq!(after["short_impression"], before["short_impression"]);
    assert!(after["last_know"].as_f64().unwrap() > 1_700_000_001.0);
    let points: Value = serde_json::from_str(after["points"].as_str().unwrap()).unwrap();
    assert_eq!(points[0][0], "likes cats");
    assert_eq!(points[0][1], 1.0);

    let i: PersonInteraction = parse_input(json!({"points_update": "second"})).unwrap();
    person::update_interaction(d, "pid-1", &i).unwrap();
    let points: Value =
        serde_json::from_str(person::get(d, r1).unwrap()["points"].as_str().unwrap()).unwrap();
    assert_eq!(points.as_array().unwrap().len(), 2);

    let i: PersonInteraction =
        parse_input(json!({"points_update": "[[\"x\", 2.0, \"t\"]]"})).unwrap();
    person::update_interaction(d, "pid-1", &i).unwrap();
    assert_eq!(person::get(d, r1).unwrap()["points"], r#"[["x",2.0,"t"]]"#);

    // Stored garbage is not merged into.
    inst.raw()
        .execute(
            "UPDATE person_info SET points = 'garbage' WHERE person_id = 'pid-1'",
            [],
        )
        .unwrap();
    let i: PersonInteraction = parse_input(json!({"points_update": "more"})).unwrap();
    assert_eq!(
        field_of(&person::update_interaction(d, "pid-1", &i).unwrap_err()),
        "points_update"
    );
    assert_eq!(person::get(d, r1).unwrap()["points"], "garbage");

    let empty: PersonInteraction = parse_input(
        json!({"impression_update": "", "short_impression_update": "", "points_update": ""}),
    )
    .unwrap();
    assert!(person::update_interaction(d, "pid-2", &empty).unwrap());
    assert!(!person::update_interaction(d, "nope", &empty).unwrap());

    assert!(person::delete(d, "pid-2").unwrap());
    assert!(!person::delete(d, "pid-2").unwrap());
    assert_eq!(count(json!({})), 2);
}

#[test]
fn person_operations_old_schema() {
    person_flow(Schema::Old);
}

#[test]
fn person_operations_new_schema() {
    person_flow(Schema::New);
}

#[test]
fn slim_schema_refuses_absent_columns_with_data() {
    let inst = Instance::with_schema(Schema::Slim);
    let d = &inst.dir;
    // The frontend body carries empty impression/points: accepted.
    let id = person::create(d, &person_input("p", "name")).unwrap();
    let row = person::get(d, id).unwrap();
    assert!(!row.contains_key("impression"));
    assert_eq!(row["is_known"], 0);

    let with_text: PersonCreate = parse_input(json!({
        "person_id": "q", "platform": "qq", "user_id": "1", "impression": "nice"
    }))
    .unwrap();
    assert_eq!(
        field_of(&person::create(d, &with_text).unwrap_err()),
        "impression"
    );

    let i: PersonInteraction = parse_input(json!({"impression_update": "x"})).unwrap();
    assert_eq!(
        field_of(&person::update_interaction(d, "p", &i).unwrap_err()),
        "impression_update"
    );
    let i: PersonInteraction = parse_input(json!({"points_update": "x"})).unwrap();
    assert_eq!(
        field_of(&person::update_interaction(d, "p", &i).unwrap_err()),
        "points_update"
    );
    let before = row["last_know"].as_f64().unwrap();
    assert!(person::update_interaction(d, "p", &PersonInteraction::default()).unwrap());
    assert!(person::get(d, id).unwrap()["last_know"].as_f64().unwrap() > before);

    let f: PersonFilter = parse_input(json!({"impression_like": "x"})).unwrap();
    assert_eq!(
        field_of(&person::count(d, &f).unwrap_err()),
        "impression_like"
    );

    let mp: PersonUpdate = parse_input(json!({"memory_points": "[\"a:b:1\"]"})).unwrap();
    assert!(person::update(d, "p", &mp).unwrap());
}

// ---------------------------------------------------------------- misc

#[test]
fn error_codes_and_statuses() {
    let cases = [
        (MaibotDbError::Busy, "maibot_db_busy", 503),
        (
            MaibotDbError::invalid("limit", "x"),
            "maibot_db_invalid_input",
            400,
        ),
        (
            MaibotDbError::NotFound {
                entity: "emoji",
                key: "1".into(),
            },
            "maibot_db_not_found",
            404,
        ),
        (
            MaibotDbError::NotADatabase {
                path: PathBuf::new(),
            },
            "maibot_db_not_a_database",
            422,
        ),
    ];
    for (err, code, status) in cases {
        assert_eq!((err.code(), err.http_status()), (code, status));
    }
    let msg = MaibotDbError::invalid("limit", "must be at most 1000").to_string();
    assert!(msg.contains("limit"));
}

#[test]
fn busy_database_reports_busy_not_hang() {
    let inst = Instance::with_schema(Schema::Old);
    let holder = inst.raw();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let start = std::time::Instant::now();
    let err = emoji::create(&inst.dir, &emoji_input("b.png", "h", "d")).unwrap_err();
    assert_eq!(err.code(), "maibot_db_busy", "{err:?}");
    assert!(start.elapsed() >= std::time::Duration::from_secs(4));
    holder.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn large_table_paging() {
    let inst = Instance::with_schema(Schema::Old);
    {
        let mut conn = inst.raw();
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO emoji (full_path, format, emoji_hash, description, query_count, \
                     is_registered, is_banned, emotion, record_time, usage_count) \
                     VALUES (?1, 'png', 'h', 'bulk', 0, 0, 0, 'e', ?2, 0)",
                )
                .unwrap();
            for i in 0..10_000 {
                stmt.execute(rusqlite::params![format!("p{i}.png"), f64::from(i)])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let started = std::time::Instant::now();
    let b: EmojiBatch = parse_input(json!({"batch_size": 100, "offset": 9_900})).unwrap();
    let page = emoji::batch(&inst.dir, &b).unwrap();
    assert_eq!(page.items.len(), 100);
    assert_eq!(page.items[0]["id"], 100);
    let s: EmojiSearch =
        parse_input(json!({"description_like": "bul", "limit": 100, "offset": 5000})).unwrap();
    let page = emoji::search(&inst.dir, &s).unwrap();
    assert_eq!(page.total_count, Some(10_000));
    assert_eq!(page.items[0]["record_time"], 4999.0);
    eprintln!("10k-row paging took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_facade_works() {
    let inst = Instance::with_schema(Schema::New);
    fs::create_dir_all(inst.dir.join("data/emoji")).unwrap();
    fs::write(inst.dir.join("data/emoji/a.png"), PNG).unwrap();
    let db = MaibotDb::new(&inst.dir);

    assert!(db.info().await.unwrap().valid);
    let id = db
        .emoji_create(emoji_input("data/emoji/a.png", "h", "d"))
        .await
        .unwrap();
    assert_eq!(db.emoji_get(id).await.unwrap()["id"], id);
    assert_eq!(db.emoji_count(EmojiFilter::default()).await.unwrap(), 1);
    assert_eq!(db.emoji_image_path(id).await.unwrap().1, "image/png");
    assert!(db.emoji_increment_usage(id).await.unwrap());

    let rid = db.person_create(person_input("pid", "n")).await.unwrap();
    assert_eq!(db.person_get(rid).await.unwrap()["person_id"], "pid");
    let page = db.person_batch(PersonBatch::default()).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let json = serde_json::to_value(&page).unwrap();
    assert!(json["total_count"].is_null());
    assert!(
        db.person_update_interaction("pid".into(), PersonInteraction::default())
            .await
            .unwrap()
    );
    assert!(db.person_delete("pid".into()).await.unwrap());

    let missing = MaibotDb::new(inst.dir.join("nope"));
    assert_eq!(
        missing
            .emoji_count(EmojiFilter::default())
            .await
            .unwrap_err()
            .code(),
        "maibot_instance_dir_missing"
    );
}
