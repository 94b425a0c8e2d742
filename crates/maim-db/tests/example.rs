//! Runs the `downstream` example binary against each backend, as a downstream service
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! would run.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn example_binary() -> PathBuf {
    // target/<profile>/deps/example-… -> target/<profile>/examples/downstream
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("profile dir");
    profile_dir.join("examples").join("downstream")
}

fn run(args: &[&str]) -> String {
    let bin = example_binary();
    assert!(
        bin.exists(),
        "{bin:?} not built (cargo test builds examples)"
    );
    let out = Command::new(&bin).args(args).output().expect("run example");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "example failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn downstream_example_runs_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = maim_db::sqlite_url(&dir.path().join("example.db"));
    let out = run(&[&url]);
    assert!(
        out.starts_with("ok backend=Sqlite")
            && out.contains("messages=3")
            && out.contains("newest=Some(\"hello 2\")"),
        "{out}"
    );
}

#[test]
fn downstream_example_runs_on_postgres() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let schema = format!("example_{}", std::process::id());
    let out = run(&[&url, "--schema", &schema]);
    assert!(
        out.starts_with("ok backend=Postgres") && out.contains("messages=3"),
        "{out}"
    );
}
