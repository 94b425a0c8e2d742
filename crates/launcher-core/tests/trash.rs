//! The trash against real folders, a real SQLite catalog and (when the machine has one) a
//! second filesystem: delete moves an instance's owned folders with MaiBot's data and the
//! user's files, restore puts them back byte for byte, refusals overwrite nothing, purges
//! honour the age.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use launcher_core::CoreError;
use launcher_core::catalog::{Catalog, NewComponent, NewInstance};
use launcher_core::deploy::cleanup::{MARKER_FILE, Marker, MarkerRole};
use launcher_core::supervisor::{Supervisor, SupervisorConfig};
use launcher_core::trash::{MANIFEST_FILE, Trash, TrashError};
use maim_db::{DbOptions, SystemScope, TenantScope};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Env {
    db: maim_db::Db,
    tenant: TenantScope,
    catalog: Catalog,
    trash: Trash,
    /// Where instance folders live.
    bots: PathBuf,
    _dirs: Vec<tempfile::TempDir>,
}

/// A catalog on a real SQLite file; the data dir (and so the trash) under `data_root`.
async fn env_at(data_root: tempfile::TempDir, days: u32) -> Env {
    let work = tempfile::tempdir().unwrap();
    let data_dir = data_root.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let db = maim_db::connect(
        &maim_db::sqlite_url(&data_dir.join("l.db")),
        &DbOptions::default(),
    )
    .await
    .unwrap();
    db.migrate(&SystemScope::new("test")).await.unwrap();
    db.tenants()
        .ensure(&SystemScope::new("test"), "local", "local")
        .await
        .unwrap();
    let tenant = TenantScope::new("local").unwrap();
    let mut cfg = SupervisorConfig::new(work.path().join("logs"));
    cfg.stop.grace = Duration::from_secs(2);
    let supervisor = Supervisor::new(db.clone(), tenant.clone(), cfg);
    let trash = Trash::new(&data_dir, days);
    let catalog = Catalog::new(db.clone(), tenant.clone(), supervisor, trash.clone());
    let bots = work.path().join("bots");
    std::fs::create_dir_all(&bots).unwrap();
    Env {
        db,
        tenant,
        catalog,
        trash,
        bots,
        _dirs: vec![work, data_root],
    }
}

async fn env(days: u32) -> Env {
    env_at(tempfile::tempdir().unwrap(), days).await
}

fn mark(dir: &Path, role: MarkerRole) {
    let m = Marker {
        launcher: "mailauncher".into(),
        job_id: "job0000000000000".into(),
        created_at: chrono::Utc::now(),
        role,
    };
    std::fs::write(dir.join(MARKER_FILE), serde_json::to_vec(&m).unwrap()).unwrap();
}

/// A deployed-looking MaiBot folder with its chat database, a user's file, a venv symlink
/// and the adapter nested inside, both marked as created by the launcher.
fn deployed(root: &Path, name: &str) -> (PathBuf, PathBuf) {
    let main = root.join(name);
    let ada = main.join("napcat-ada");
    std::fs::create_dir_all(main.join("data")).unwrap();
    std::fs::create_dir_all(&ada).unwrap();
    mark(&main, MarkerRole::Root);
    mark(&ada, MarkerRole::Root);
    std::fs::write(main.join("bot.py"), "print('hi')\n").unwrap();
    std::fs::write(
        main.join("data/MaiBot.db"),
        b"SQLite format 3\0chat history \xff\x00\x01",
    )
    .unwrap();
    std::fs::write(main.join("我的笔记.txt"), "用户放的文件\n").unwrap();
    std::os::unix::fs::symlink("data/MaiBot.db", main.join("db-link")).unwrap();
    std::fs::write(ada.join("main.py"), "print('ada')\n").unwrap();
    std::fs::write(ada.join("config.toml"), "[Napcat_Server]\nport = 8095\n").unwrap();
    (main, ada)
}

async fn register(e: &Env, name: &str, main: &Path, ada: Option<&Path>, owned: bool) -> String {
    let port = 20000 + (name.len() as u16) * 7;
    let mut components = vec![NewComponent {
        kind: "main".into(),
        path: main.to_path_buf(),
        port: Some(port),
        argv: Vec::new(),
        ports: Vec::new(),
    }];
    if let Some(a) = ada {
        components.push(NewComponent {
            kind: "napcat-ada".into(),
            path: a.to_path_buf(),
            port: Some(port + 95),
            argv: Vec::new(),
            ports: Vec::new(),
        });
    }
    let new = NewInstance {
        name: name.into(),
        version: "0.10.1".into(),
        install_path: main.to_path_buf(),
        components,
        owned,
    };
    e.catalog.check_new(&new).await.unwrap();
    e.catalog.register(&new).await.unwrap()
}

/// Every path under `root` with its bytes (files), target (symlinks) or nothing (dirs).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(root: &Path, p: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        let meta = std::fs::symlink_metadata(p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        if meta.file_type().is_symlink() {
            let t = std::fs::read_link(p).unwrap();
            out.insert(rel, Some(t.as_os_str().as_encoded_bytes().to_vec()));
        } else if meta.is_dir() {
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

fn trash_error(e: CoreError) -> TrashError {
    match e {
        CoreError::Trash(t) => t,
        other => panic!("expected a trash error, got {other:?}"),
    }
}

#[tokio::test]
async fn delete_moves_everything_to_the_trash_and_restore_brings_it_back_byte_identical() {
    let e = env(7).await;
    let (main, ada) = deployed(&e.bots, "bot-one");
    let before = snapshot(&main);
    let id = register(&e, "bot-one", &main, Some(&ada), true).await;

    let report = e.catalog.delete(&id, true).await.unwrap();
    let entry_id = report.trash_entry.clone().expect("a trash entry");
    assert!(report.kept.is_empty(), "{:?}", report.kept);
    assert_eq!(report.removed.len(), 2, "{:?}", report.removed);
    assert!(!main.exists(), "the folder left its place");
    assert!(e.catalog.list().await.unwrap().is_empty());

    // The entry: one folder (the adapter went with its parent), the records, the data.
    let entries = e.trash.list().await.unwrap();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.id, entry_id);
    assert_eq!(
        (entry.instance_id.as_str(), entry.instance_name.as_str()),
        (id.as_str(), "bot-one")
    );
    assert!(entry.complete);
    assert_eq!(entry.folders.len(), 1, "{:?}", entry.folders);
    assert_eq!(entry.folders[0].original, main);
    assert_eq!(entry.instance["name"], "bot-one");
    assert_eq!(entry.components.len(), 2);
    assert!(entry.size_bytes > 0);
    let entry_dir = e.trash.root().join(&entry_id);
    assert!(entry_dir.join(MANIFEST_FILE).is_file());
    let stored = entry_dir.join("files").join(&entry.folders[0].stored);
    assert_eq!(
        std::fs::read(stored.join("data/MaiBot.db")).unwrap(),
        b"SQLite format 3\0chat history \xff\x00\x01"
    );
    assert_eq!(
        std::fs::read_to_string(stored.join("我的笔记.txt")).unwrap(),
        "用户放的文件\n"
    );
    assert_eq!(snapshot(&stored), before);

    let r = e.catalog.restore(&entry_id).await.unwrap();
    assert_eq!((r.instance_id.as_str(), r.same_id), (id.as_str(), true));
    assert_eq!(snapshot(&main), before, "restored byte for byte");
    let listed = e.catalog.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].row.id, id);
    assert_eq!(listed[0].row.name, "bot-one");
    assert!(listed[0].row.owned);
    assert_eq!(listed[0].components.len(), 2);
    assert!(
        listed[0]
            .components
            .iter()
            .any(|c| c.kind == "napcat-ada" && Path::new(&c.path) == ada && c.port.is_some())
    );
    assert!(e.trash.list().await.unwrap().is_empty());
    assert!(!entry_dir.exists(), "a restored entry is gone");
    assert!(matches!(
        trash_error(e.catalog.restore(&entry_id).await.unwrap_err()),
        TrashError::NotFound(_)
    ));

    // Deleted again, it is still restorable: the markers came back with the folders.
    let again = e.catalog.delete(&id, true).await.unwrap();
    assert!(again.trash_entry.is_some() && !main.exists());
}

#[tokio::test]
async fn restore_refuses_a_recreated_path_and_a_vanished_trash_folder_touching_nothing() {
    let e = env(7).await;
    let (main, ada) = deployed(&e.bots, "taken");
    let id = register(&e, "taken", &main, Some(&ada), true).await;
    let entry_id = e
        .catalog
        .delete(&id, true)
        .await
        .unwrap()
        .trash_entry
        .unwrap();
    let entry_dir = e.trash.root().join(&entry_id);
    let trashed_before = snapshot(&entry_dir);

    // Someone made a new folder at the old path.
    std::fs::create_dir_all(&main).unwrap();
    std::fs::write(main.join("new.txt"), "new work").unwrap();
    let err = trash_error(e.catalog.restore(&entry_id).await.unwrap_err());
    assert!(
        matches!(&err, TrashError::RestoreTargetTaken { path } if *path == main),
        "{err:?}"
    );
    assert_eq!(
        snapshot(&main).keys().cloned().collect::<Vec<_>>(),
        [PathBuf::new(), PathBuf::from("new.txt")]
    );
    assert_eq!(
        std::fs::read_to_string(main.join("new.txt")).unwrap(),
        "new work"
    );
    assert_eq!(
        snapshot(&entry_dir),
        trashed_before,
        "the entry is untouched"
    );
    assert!(
        e.catalog.list().await.unwrap().is_empty(),
        "nothing registered"
    );

    // The path is free again but the trashed folder went missing.
    std::fs::remove_dir_all(&main).unwrap();
    let stored = &e.trash.get(&entry_id).await.unwrap().folders[0].stored;
    let moved_away = e.bots.join("elsewhere");
    std::fs::rename(entry_dir.join("files").join(stored), &moved_away).unwrap();
    let err = trash_error(e.catalog.restore(&entry_id).await.unwrap_err());
    assert!(
        matches!(&err, TrashError::RestoreSourceGone { path } if *path == main),
        "{err:?}"
    );
    assert!(!main.exists(), "nothing half-restored");
    assert!(e.catalog.list().await.unwrap().is_empty());
    assert!(entry_dir.join(MANIFEST_FILE).exists());
}

#[tokio::test]
async fn restore_refuses_a_taken_name_and_keeps_the_entry() {
    let e = env(7).await;
    let (main, _) = deployed(&e.bots, "twin");
    let id = register(&e, "twin", &main, None, true).await;
    let entry_id = e
        .catalog
        .delete(&id, true)
        .await
        .unwrap()
        .trash_entry
        .unwrap();
    let other = e.bots.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("bot.py"), "").unwrap();
    register(&e, "twin", &other, None, false).await;

    let err = trash_error(e.catalog.restore(&entry_id).await.unwrap_err());
    assert!(
        matches!(&err, TrashError::NameTaken { name } if name == "twin"),
        "{err:?}"
    );
    assert!(!main.exists(), "no folder moved back");
    assert_eq!(e.trash.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_added_instance_keeps_its_folder_and_gets_no_trash_entry() {
    let e = env(7).await;
    let main = e.bots.join("added");
    std::fs::create_dir_all(main.join("data")).unwrap();
    std::fs::write(main.join("bot.py"), "").unwrap();
    std::fs::write(main.join("data/MaiBot.db"), "db").unwrap();
    // Even a marker does not make an added instance's folder the launcher's.
    mark(&main, MarkerRole::Root);
    let before = snapshot(&main);
    let id = register(&e, "added", &main, None, false).await;

    let report = e.catalog.delete(&id, true).await.unwrap();
    assert_eq!(report.trash_entry, None);
    assert!(report.removed.is_empty());
    assert_eq!(report.kept.len(), 1);
    assert_eq!(snapshot(&main), before);
    assert!(
        e.catalog.list().await.unwrap().is_empty(),
        "its records went"
    );
    assert!(e.trash.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_adopted_folder_stays_in_place_and_its_contents_come_back() {
    let e = env(7).await;
    // The user's empty folder, claimed by a deploy.
    let main = e.bots.join("adopted");
    std::fs::create_dir_all(main.join("data")).unwrap();
    mark(&main, MarkerRole::Adopted);
    std::fs::write(main.join("bot.py"), "").unwrap();
    std::fs::write(main.join("data/MaiBot.db"), "chat").unwrap();
    let before = snapshot(&main);
    let id = register(&e, "adopted", &main, None, true).await;

    let entry_id = e
        .catalog
        .delete(&id, true)
        .await
        .unwrap()
        .trash_entry
        .unwrap();
    assert!(main.is_dir(), "the folder that existed before stays");
    assert_eq!(std::fs::read_dir(&main).unwrap().count(), 0, "emptied");
    assert!(e.trash.get(&entry_id).await.unwrap().folders[0].contents_only);

    e.catalog.restore(&entry_id).await.unwrap();
    assert_eq!(snapshot(&main), before);
}

#[tokio::test]
async fn unmarked_folders_stay_and_trash_days_zero_removes_as_before() {
    let e = env(0).await;
    let (main, ada) = deployed(&e.bots, "gone");
    let stray = e.bots.join("stray");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("keep.txt"), "mine").unwrap();
    let id = {
        let new = NewInstance {
            name: "gone".into(),
            version: "0.10.1".into(),
            install_path: main.clone(),
            components: vec![
                NewComponent {
                    kind: "main".into(),
                    path: main.clone(),
                    port: None,
                    argv: Vec::new(),
                    ports: Vec::new(),
                },
                NewComponent {
                    kind: "napcat-ada".into(),
                    path: stray.clone(),
                    port: None,
                    argv: Vec::new(),
                    ports: Vec::new(),
                },
            ],
            owned: true,
        };
        e.catalog.register(&new).await.unwrap()
    };
    let report = e.catalog.delete(&id, true).await.unwrap();
    assert_eq!(report.trash_entry, None);
    assert!(!main.exists() && !ada.exists(), "removed at once");
    assert_eq!(
        std::fs::read_to_string(stray.join("keep.txt")).unwrap(),
        "mine"
    );
    assert!(report.kept.iter().any(|(p, _)| *p == stray));
    assert!(e.trash.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn purges_honour_the_age_and_the_explicit_purge_removes_one_entry() {
    let e = env(7).await;
    let mut entries = Vec::new();
    for name in ["old", "fresh", "explicit"] {
        let (main, _) = deployed(&e.bots, name);
        let id = register(&e, name, &main, None, true).await;
        entries.push(
            e.catalog
                .delete(&id, true)
                .await
                .unwrap()
                .trash_entry
                .unwrap(),
        );
    }
    // "old" was deleted ten days ago, as its manifest says.
    let manifest = e.trash.root().join(&entries[0]).join(MANIFEST_FILE);
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let ten_days_ago = chrono::Utc::now() - chrono::Duration::days(10);
    m["deleted_at"] = serde_json::json!(ten_days_ago);
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();

    let purged = e.trash.purge_due().await.unwrap();
    assert_eq!(purged, vec![entries[0].clone()]);
    assert!(!e.trash.root().join(&entries[0]).exists());
    let left: Vec<String> = e
        .trash
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(left.len(), 2);

    e.trash.purge(&entries[2]).await.unwrap();
    assert!(!e.trash.root().join(&entries[2]).exists());
    assert!(matches!(
        e.trash.purge(&entries[2]).await.unwrap_err(),
        TrashError::NotFound(_)
    ));
    assert!(matches!(
        e.trash.purge("../../etc").await.unwrap_err(),
        TrashError::NotFound(_)
    ));

    // With the clock eight days on, the fresh one is due too.
    let later = chrono::Utc::now() + chrono::Duration::days(8);
    let purged = e
        .trash
        .purge_expired(chrono::Duration::days(7), later)
        .await
        .unwrap();
    assert_eq!(purged, vec![entries[1].clone()]);
    assert!(e.trash.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn across_filesystems_the_folders_are_copied_then_removed() {
    // /dev/shm is a tmpfs on Linux: a data dir there makes every move cross devices.
    let shm = Path::new("/dev/shm");
    let Ok(data_root) = tempfile::tempdir_in(shm) else {
        eprintln!("skipped: no /dev/shm");
        return;
    };
    let e = env_at(data_root, 7).await;
    let dev = |p: &Path| std::fs::metadata(p).unwrap().dev();
    if dev(e.trash.root().parent().unwrap()) == dev(&e.bots) {
        eprintln!("skipped: /dev/shm is on the same filesystem as the temp dir");
        return;
    }
    let (main, ada) = deployed(&e.bots, "far");
    let before = snapshot(&main);
    let id = register(&e, "far", &main, Some(&ada), true).await;
    let entry_id = e
        .catalog
        .delete(&id, true)
        .await
        .unwrap()
        .trash_entry
        .unwrap();
    assert!(!main.exists());
    let entry = e.trash.get(&entry_id).await.unwrap();
    let stored = e
        .trash
        .root()
        .join(&entry_id)
        .join("files")
        .join(&entry.folders[0].stored);
    assert_eq!(snapshot(&stored), before);
    e.catalog.restore(&entry_id).await.unwrap();
    assert_eq!(snapshot(&main), before);
}

#[tokio::test]
async fn a_taken_port_refuses_and_a_taken_id_gives_a_new_one() {
    use maim_db::entity::launcher::instances as insts;
    use maim_db::prelude::*;
    let e = env(7).await;
    let (main, _) = deployed(&e.bots, "portly");
    let id = register(&e, "portly", &main, None, true).await;
    let port = e.catalog.get(&id).await.unwrap().components[0]
        .port
        .unwrap();
    let entry_id = e
        .catalog
        .delete(&id, true)
        .await
        .unwrap()
        .trash_entry
        .unwrap();

    // Another instance took the port meanwhile.
    let other = e.bots.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let new = NewInstance {
        name: "other".into(),
        version: "x".into(),
        install_path: other.clone(),
        components: vec![NewComponent {
            kind: "main".into(),
            path: other.clone(),
            port: Some(port),
            argv: Vec::new(),
            ports: Vec::new(),
        }],
        owned: false,
    };
    let other_id = e.catalog.register(&new).await.unwrap();
    let err = trash_error(e.catalog.restore(&entry_id).await.unwrap_err());
    assert!(
        matches!(err, TrashError::PortTaken { port: p } if p == port),
        "{err:?}"
    );
    assert!(!main.exists());
    e.catalog.delete(&other_id, false).await.unwrap();

    // Another row has the old id (it was free, so someone may take it): a new id.
    e.db.table::<insts::Entity>()
        .insert(
            &e.tenant,
            insts::ActiveModel {
                id: Set(id.clone()),
                name: Set("squatter".into()),
                install_path: Set("/nonexistent".into()),
                version: Set("x".into()),
                desired_state: Set("stopped".into()),
                observed_state: Set("stopped".into()),
                restart_policy: Set("on-failure".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let r = e.catalog.restore(&entry_id).await.unwrap();
    assert!(!r.same_id);
    assert_ne!(r.instance_id, id);
    assert_eq!(
        e.catalog.get(&r.instance_id).await.unwrap().row.name,
        "portly"
    );
    assert!(main.join("data/MaiBot.db").exists());
}
