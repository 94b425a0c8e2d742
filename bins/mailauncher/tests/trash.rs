//! Black-box: deleting an instance through the API moves its folders (MaiBot's chat
//! database and the user's files included) to the trash; the trash routes list, restore
//! and purge them; refusals are 409s that overwrite nothing. Real server, real SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{App, fake_adapter, fake_maibot, spawn_app, spawn_app_at};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn data_dir(app: &App) -> PathBuf {
    app.home.path().join(".local/share/mailauncher")
}

fn mark(dir: &Path) {
    let marker = json!({
        "launcher": "mailauncher", "job_id": "job0000000000000",
        "created_at": "2026-01-01T00:00:00Z", "role": "root",
    });
    std::fs::write(dir.join(".mailauncher-owned"), marker.to_string()).unwrap();
}

/// Every path under `root` with its bytes (directories: none).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(root: &Path, p: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        if p.is_dir() {
            out.insert(rel, None);
            for e in std::fs::read_dir(p).unwrap() {
                walk(root, &e.unwrap().path(), out);
            }
        } else {
            out.insert(rel, Some(std::fs::read(p).unwrap()));
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// An instance as a deploy leaves it: folders marked as the launcher's, the adapter nested
/// in MaiBot's folder, a chat database and a file the user put there, and `owned` set.
/// Registered through the API, then marked owned in the database while the server is down.
fn owned_instance(name: &str, port: u16) -> (App, String, PathBuf) {
    let app = spawn_app();
    let root = app.home.path().join("MaiBot/Deployments");
    let main = fake_maibot(&root, name);
    let ada = fake_adapter(&main, "napcat-ada");
    mark(&main);
    mark(&ada);
    std::fs::create_dir_all(main.join("data")).unwrap();
    std::fs::write(main.join("data/MaiBot.db"), b"SQLite format 3\0chat\xff").unwrap();
    std::fs::write(main.join("我的设定.txt"), "用户的文件").unwrap();
    let r = app.post(
        "/instances/add",
        &json!({
            "instance_name": name, "maibot_path": main, "port": port,
            "adapter_path": ada,
            "install_services": [{"name": "napcat-ada", "path": ada, "port": port + 95}],
        }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["instance_id"].as_str().unwrap().to_owned();
    let home = app.crash();
    let db =
        rusqlite::Connection::open(home.path().join(".local/share/mailauncher/mailauncher.db"))
            .unwrap();
    assert_eq!(
        db.execute("UPDATE instances SET owned = 1 WHERE id = ?1", [&id])
            .unwrap(),
        1
    );
    drop(db);
    (spawn_app_at(home, &[], &[]), id, main)
}

fn trash_entries(app: &App) -> Vec<Value> {
    let r = app.get("/trash");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["trash_days"], 7);
    r.body["entries"].as_array().unwrap().clone()
}

#[test]
fn delete_restore_and_purge_through_the_api() {
    let (app, id, main) = owned_instance("trashed", 18000);
    let before = snapshot(&main);
    assert!(trash_entries(&app).is_empty());

    // The legacy delete keeps the shape the frontend reads.
    let d = app.delete(&format!("/instance/{id}/delete"));
    assert_eq!(d.status, 200, "{}", d.body);
    assert_eq!(d.body["success"], true);
    let msg = d.body["message"].as_str().unwrap();
    assert!(msg.contains("trash"), "{msg}");
    let entry = d.body["trash_entry"].as_str().unwrap().to_owned();
    assert!(!main.exists());
    assert_eq!(app.get("/instances").body["instances"], json!([]));

    let entries = trash_entries(&app);
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e["id"], entry.as_str());
    assert_eq!(
        (&e["instance_id"], &e["instance_name"]),
        (&json!(id), &json!("trashed"))
    );
    assert_eq!(e["folders"].as_array().unwrap().len(), 1, "{e}");
    assert_eq!(e["folders"][0]["original"], json!(main));
    assert!(e["size_bytes"].as_u64().unwrap() > 0);
    assert!(e["expires_at"].as_str().unwrap() > e["deleted_at"].as_str().unwrap());
    let files = data_dir(&app).join("trash").join(&entry).join("files");
    let stored = std::fs::read_dir(&files)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        snapshot(&stored),
        before,
        "the data and the user's file are in the trash"
    );

    // The path was taken again: 409, the new folder and the entry untouched.
    std::fs::create_dir_all(&main).unwrap();
    std::fs::write(main.join("new.txt"), "new").unwrap();
    let r = app.post(&format!("/trash/{entry}/restore"), &json!({}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["code"], "restore_target_exists");
    assert!(r.body["detail"].as_str().unwrap().contains("trashed"));
    assert_eq!(
        std::fs::read_to_string(main.join("new.txt")).unwrap(),
        "new"
    );
    assert_eq!(snapshot(&stored), before);
    assert_eq!(trash_entries(&app).len(), 1);

    // Freed: the restore puts everything back and the instance is listed again.
    std::fs::remove_dir_all(&main).unwrap();
    let r = app.post(&format!("/trash/{entry}/restore"), &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (&r.body["instance_id"], &r.body["same_id"]),
        (&json!(id), &json!(true))
    );
    assert_eq!(snapshot(&main), before, "restored byte for byte");
    let inst = app.wait_instance(&id, "listed again", |i| !i.is_null());
    assert_eq!(inst["name"], "trashed");
    assert_eq!(inst["owned"], true);
    assert_eq!(inst["services"][0]["name"], "napcat-ada");
    assert!(trash_entries(&app).is_empty());

    // Modern delete answers the entry; a trash folder that vanished is a 409.
    let d = app.delete(&format!("/instances/{id}?remove_files=true"));
    assert_eq!(d.status, 200, "{}", d.body);
    assert_eq!(d.body["deleted"], id.as_str());
    let entry = d.body["trash_entry"].as_str().unwrap().to_owned();
    let files = data_dir(&app).join("trash").join(&entry).join("files");
    let stored = std::fs::read_dir(&files)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let aside = app.home.path().join("aside");
    std::fs::rename(&stored, &aside).unwrap();
    let r = app.post(&format!("/trash/{entry}/restore"), &json!({}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["code"], "restore_source_missing");
    assert!(!main.exists(), "nothing half-restored");
    assert_eq!(app.get("/instances").body["instances"], json!([]));

    // Purge one entry; it is gone for every route after.
    let p = app.delete(&format!("/trash/{entry}"));
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.body["purged"], entry.as_str());
    assert!(trash_entries(&app).is_empty());
    assert!(!data_dir(&app).join("trash").join(&entry).exists());
    for r in [
        app.post(&format!("/trash/{entry}/restore"), &json!({})),
        app.delete(&format!("/trash/{entry}")),
    ] {
        assert_eq!(r.status, 404, "{}", r.body);
        assert_eq!(r.body["code"], "trash_entry_not_found");
    }
    let r = app.post("/trash/bad%20id/restore", &json!({}));
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("invalid_id"))
    );
    assert!(
        aside.join("data/MaiBot.db").exists(),
        "only the trash entry was purged"
    );
}

#[test]
fn deleting_an_added_instance_leaves_its_folder_and_the_legacy_shape() {
    let app = spawn_app();
    let main = fake_maibot(&app.home.path().join("bots"), "mine");
    std::fs::write(main.join("notes.txt"), "keep").unwrap();
    let before = snapshot(&main);
    let r = app.post(
        "/instances/add",
        &json!({"instance_name": "mine", "maibot_path": main, "port": 18500}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["instance_id"].as_str().unwrap();
    let d = app.delete(&format!("/instance/{id}/delete"));
    assert_eq!(d.status, 200, "{}", d.body);
    assert_eq!(d.body["success"], true);
    assert!(d.body["message"].is_string());
    assert_eq!(d.body["trash_entry"], Value::Null);
    assert_eq!(snapshot(&main), before);
    assert!(trash_entries(&app).is_empty());
}

#[test]
fn expired_entries_are_purged_at_boot_and_trash_days_is_read() {
    let (app, id, _main) = owned_instance("expiring", 18200);
    let d = app.delete(&format!("/instance/{id}/delete"));
    let entry = d.body["trash_entry"].as_str().unwrap().to_owned();
    let home = app.crash();
    let manifest = home
        .path()
        .join(".local/share/mailauncher/trash")
        .join(&entry)
        .join("entry.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["deleted_at"] = json!("2020-01-01T00:00:00Z");
    std::fs::write(&manifest, m.to_string()).unwrap();

    let app = spawn_app_at(home, &[], &[("MAILAUNCHER_DEPLOY__TRASH_DAYS", "3")]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = app.get("/trash");
        assert_eq!(r.body["trash_days"], 3);
        if r.body["entries"] == json!([]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not purged: {}",
            r.body
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!data_dir(&app).join("trash").join(&entry).exists());
}
