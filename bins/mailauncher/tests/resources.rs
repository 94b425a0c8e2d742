//! Black-box: the MaiBot resource routes over a real MaiBot-shaped SQLite database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fake_maibot, spawn_app};
use serde_json::json;

const SCHEMA: &str = r#"
CREATE TABLE "emoji" ("id" INTEGER NOT NULL PRIMARY KEY, "full_path" TEXT NOT NULL,
  "format" TEXT NOT NULL, "emoji_hash" TEXT NOT NULL, "description" TEXT NOT NULL,
  "query_count" INTEGER NOT NULL, "is_registered" INTEGER NOT NULL, "is_banned" INTEGER NOT NULL,
  "emotion" TEXT, "record_time" REAL NOT NULL, "register_time" REAL,
  "usage_count" INTEGER NOT NULL, "last_used_time" REAL);
CREATE UNIQUE INDEX "emoji_full_path" ON "emoji" ("full_path");
CREATE TABLE "person_info" ("id" INTEGER NOT NULL PRIMARY KEY, "person_id" TEXT NOT NULL,
  "person_name" TEXT, "name_reason" TEXT, "platform" TEXT NOT NULL, "user_id" TEXT NOT NULL,
  "nickname" TEXT NOT NULL, "impression" TEXT, "short_impression" TEXT, "points" TEXT,
  "forgotten_points" TEXT, "info_list" TEXT, "know_times" REAL, "know_since" REAL,
  "last_know" REAL, "attitude" INTEGER);
CREATE UNIQUE INDEX "person_info_person_id" ON "person_info" ("person_id");
"#;

// The smallest valid PNG header is enough for type sniffing.
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

#[test]
fn emoji_and_person_routes_with_the_frontend_envelopes() {
    let app = spawn_app();
    let dir = fake_maibot(&app.home.path().join("bots"), "res");
    let r = app.post(
        "/instances/add",
        &json!({"instance_name": "res", "maibot_path": dir, "port": 8600}),
    );
    let id = r.body["instance_id"].as_str().unwrap().to_owned();

    // No database yet: a clear HTTP error, and nothing is created.
    let r = app.post(&format!("/resource/{id}/emoji/count"), &json!({}));
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.body["code"], "maibot_db_missing");
    assert!(!dir.join("data/MaiBot.db").exists());
    let info = app.get(&format!("/resource/{id}/info"));
    assert_eq!(info.body["data"]["database"]["exists"], false);

    std::fs::create_dir_all(dir.join("data/emoji")).unwrap();
    let conn = rusqlite::Connection::open(dir.join("data/MaiBot.db")).unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    drop(conn);
    std::fs::write(dir.join("data/emoji/a.png"), PNG).unwrap();

    let info = app.get(&format!("/resource/{id}/info"));
    assert_eq!(info.body["status"], "success");
    let db = &info.body["data"]["database"];
    assert_eq!(
        (db["exists"].as_bool(), db["valid"].as_bool()),
        (Some(true), Some(true))
    );
    assert!(db["size"].as_u64().unwrap() > 0);

    let r = app.post(
        &format!("/resource/{id}/emoji"),
        &json!({"full_path": "data/emoji/a.png", "format": "png", "emoji_hash": "h1",
                "description": "a happy cat", "emotion": "happy"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let eid = r.body["data"]["emoji_id"]
        .as_i64()
        .expect("create returns the new id");
    for (i, desc) in ["100% sad", "angry dog"].iter().enumerate() {
        app.post(
            &format!("/resource/{id}/emoji"),
            &json!({"full_path": format!("data/emoji/{i}.gif"), "format": "gif",
                    "emoji_hash": format!("x{i}"), "description": desc, "emotion": "other"}),
        );
    }
    let c = app.post(&format!("/resource/{id}/emoji/count"), &json!({}));
    assert_eq!(
        (
            c.body["status"].as_str(),
            c.body["data"]["total_count"].as_u64()
        ),
        (Some("success"), Some(3))
    );
    let c = app.post(
        &format!("/resource/{id}/emoji/count"),
        &json!({"description_like": "%"}),
    );
    assert_eq!(c.body["data"]["total_count"], 1, "a % is matched literally");

    let b = app.post(
        &format!("/resource/{id}/emoji/batch"),
        &json!({"batch_size": 2, "offset": 0, "emotion": "other"}),
    );
    assert_eq!(b.status, 200, "{}", b.body);
    let rows = b.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for k in [
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
        assert!(rows[0].get(k).is_some(), "batch row lacks {k}");
    }
    assert_eq!(b.body["limit"], 2);
    for bad in [
        json!({"batch_size": -1}),
        json!({"batch_size": 1001}),
        json!({"offset": -5}),
    ] {
        let r = app.post(&format!("/resource/{id}/emoji/batch"), &bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }

    let img = app.request(
        "GET",
        &format!("/resource/{id}/emoji/{eid}/image"),
        &[],
        None,
    );
    assert_eq!(img.status, 200);
    assert_eq!(img.header("content-type"), Some("image/png"));
    // An emoji row pointing outside the instance is never served.
    let r = app.post(
        &format!("/resource/{id}/emoji"),
        &json!({"full_path": "../../../../etc/passwd", "format": "png", "emoji_hash": "evil"}),
    );
    let evil = r.body["data"]["emoji_id"].as_i64().unwrap();
    let r = app.get(&format!("/resource/{id}/emoji/{evil}/image"));
    assert_eq!(r.status, 403, "{}", r.body);
    std::os::unix::fs::symlink("/etc/hostname", dir.join("data/emoji/link.png")).unwrap();
    let r = app.post(
        &format!("/resource/{id}/emoji"),
        &json!({"full_path": "data/emoji/link.png", "format": "png", "emoji_hash": "lnk"}),
    );
    let link = r.body["data"]["emoji_id"].as_i64().unwrap();
    assert_eq!(
        app.get(&format!("/resource/{id}/emoji/{link}/image"))
            .status,
        403
    );

    let d = app.delete(&format!("/resource/{id}/emoji/{eid}"));
    assert_eq!(
        (d.status, d.body["status"].as_str()),
        (200, Some("success"))
    );
    assert_eq!(
        app.delete(&format!("/resource/{id}/emoji/{eid}")).status,
        404
    );

    // Persons, with the frontend's create body (times as float epoch seconds).
    let now = 1_760_000_000.5;
    let r = app.post(
        &format!("/resource/{id}/person"),
        &json!({"person_id": "p1", "platform": "qq", "user_id": "10001", "person_name": "Alice",
                "name_reason": "", "nickname": "ally", "impression": "", "short_impression": "",
                "points": "", "know_times": now, "know_since": now, "last_know": now}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["data"]["record_id"].is_i64());
    app.post(
        &format!("/resource/{id}/person"),
        &json!({"person_id": "p2", "platform": "qq", "user_id": "10002", "nickname": "bob"}),
    );
    let c = app.post(
        &format!("/resource/{id}/person/count"),
        &json!({"has_person_name": true}),
    );
    assert_eq!(c.body["data"]["total_count"], 1);
    let b = app.post(
        &format!("/resource/{id}/person/batch"),
        &json!({"batch_size": 10, "offset": 0}),
    );
    let rows = b.body["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for k in [
        "person_id",
        "platform",
        "user_id",
        "person_name",
        "nickname",
        "impression",
        "short_impression",
        "points",
        "last_know",
        "attitude",
    ] {
        assert!(rows[0].get(k).is_some(), "person row lacks {k}");
    }
    let r = app.post(
        &format!("/resource/{id}/person/p1/interaction"),
        &json!({"impression_update": "kind", "short_impression_update": "", "points_update": ""}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let p = app.get(&format!("/resource/{id}/person/p1"));
    assert_eq!(p.body["data"]["impression"], "kind");
    let r = app.post(
        &format!("/resource/{id}/person"),
        &json!({"person_id": "p1", "platform": "qq", "user_id": "1", "nickname": "dup"}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(app.delete(&format!("/resource/{id}/person/p2")).status, 200);
    let all = app.get("/resource/all");
    assert_eq!(all.body["total_count"], 1);
}
