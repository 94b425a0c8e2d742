//! The boot sweep of interrupted atomic writes: only the launcher's own temp files, only
//! when their writer is gone (or the file is stale), never a user's file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use launcher_core::files::atomic::write_atomic;
use launcher_core::instance_files::sweep_temp_files;
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The pid of a process that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn only_temp_files_of_dead_writers_are_removed() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("config");
    fs::create_dir(&config).unwrap();
    let me = std::process::id();
    let dead = dead_pid();

    let dead_editor = config.join(format!(".bot_config.toml.tmp-{dead}-a1B2c3"));
    let dead_deployer = root.path().join(format!(".env.tmp-{dead}"));
    let live = config.join(format!(".bot_config.toml.tmp-{me}-x9Y8z7"));
    let live_but_stale = config.join(format!(".model_config.toml.tmp-{me}-q1w2e3"));
    for p in [&dead_editor, &dead_deployer, &live, &live_but_stale] {
        fs::write(p, vec![b'x'; 4096]).unwrap();
    }
    fs::File::options()
        .write(true)
        .open(&live_but_stale)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(120))
        .unwrap();
    // Similar names that are not ours, and shapes of ours that are not regular files.
    let user_files = [
        ".bot_config.toml.tmp".to_owned(),
        format!("bot_config.toml.tmp-{dead}"),
        format!(".bot_config.toml.tmp-{dead}-abc"),
        format!(".bot_config.toml.tmp-{dead}.bak"),
        format!(".notes.tmp-{dead}x"),
    ];
    for n in &user_files {
        fs::write(config.join(n), b"mine").unwrap();
    }
    let dir_like_ours = config.join(format!(".cache.tmp-{dead}"));
    fs::create_dir(&dir_like_ours).unwrap();
    let link_like_ours = config.join(format!(".link.tmp-{dead}"));
    std::os::unix::fs::symlink(config.join(&user_files[0]), &link_like_ours).unwrap();

    let dirs = [
        root.path().to_path_buf(),
        config.clone(),
        root.path().join("missing"),
    ];
    assert_eq!(sweep_temp_files(&dirs), 3);

    assert!(!dead_editor.exists() && !dead_deployer.exists() && !live_but_stale.exists());
    assert!(live.exists(), "a write in progress is left alone");
    for n in &user_files {
        assert_eq!(fs::read(config.join(n)).unwrap(), b"mine", "{n}");
    }
    assert!(dir_like_ours.is_dir());
    assert!(link_like_ours.symlink_metadata().is_ok());
    assert_eq!(sweep_temp_files(&dirs), 0, "a second sweep finds nothing");
}

#[test]
fn a_completed_write_leaves_nothing_for_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bot_config.toml");
    write_atomic(&p, b"a = 1\n", true).unwrap();
    write_atomic(&p, b"a = 2\n", true).unwrap();
    assert_eq!(
        names(dir.path()),
        vec!["bot_config.toml", "bot_config.toml.bak"]
    );
    assert_eq!(sweep_temp_files(&[dir.path().to_path_buf()]), 0);
}
