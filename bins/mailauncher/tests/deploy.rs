//! Black-box: deploying from local fixture repositories through the legacy wizard's calls
//! and the modern job routes, including a daemon crash mid-job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../../crates/launcher-core/tests/common/fixture.rs"]
mod fixture;

use common::{App, spawn_app_at, spawn_app_with};
use fixture::Fixture;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn env_for(fx: &Fixture, use_uv: &str) -> Vec<(String, String)> {
    vec![
        // The first source is unreachable: versions and clones fall back to the mirror.
        (
            "MAILAUNCHER_DEPLOY__SOURCES__MAIBOT__URL".into(),
            fx.unreachable_url(),
        ),
        (
            "MAILAUNCHER_DEPLOY__SOURCES__MAIBOT__MIRRORS".into(),
            format!("[\"{}\"]", fx.maibot_url()),
        ),
        (
            "MAILAUNCHER_DEPLOY__SOURCES__ADAPTER__URL".into(),
            fx.adapter_url(),
        ),
        (
            "MAILAUNCHER_DEPLOY__SOURCES__ADAPTER__MIRRORS".into(),
            "[]".into(),
        ),
        ("MAILAUNCHER_DEPLOY__USE_UV".into(), use_uv.into()),
        ("MAILAUNCHER_JOBS__PARALLEL".into(), "1".into()),
    ]
}

fn start(fx: &Fixture, use_uv: &str, home: Option<tempfile::TempDir>) -> App {
    let env = env_for(fx, use_uv);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    match home {
        Some(h) => spawn_app_at(h, &[], &env),
        None => spawn_app_with(&[], &env),
    }
}

fn wizard_body(app: &App, name: &str, port: u16, ada_port: u16) -> Value {
    let path = app.home.path().join("MaiBot/Deployments").join(name);
    json!({
        "instance_name": name, "version": "0.10.1", "install_path": path,
        "port": port, "host": "127.0.0.1", "token": "",
        "install_services": [{"name": "napcat-ada", "path": path.join("napcat-ada"),
                              "port": ada_port, "run_cmd": "python main.py"}],
    })
}

fn poll(app: &App, job: &str, until: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let r = app.get(&format!("/deploy/install-status/{job}"));
        assert_eq!(r.status, 200, "{}", r.body);
        if until(&r.body) {
            return r.body;
        }
        assert!(Instant::now() < deadline, "job stuck: {}", r.body);
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn wizard_deploy_to_success_then_delete_removes_only_owned_files() {
    let fx = Fixture::build();
    let app = start(&fx, "auto", None);
    let v = app.get("/deploy/versions");
    assert_eq!(v.status, 200, "{}", v.body);
    let names: Vec<&str> = v.body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for want in ["1.2.1", "1.0.8", "0.12.3", "0.10.1", "0.9.0", "main", "dev"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(names.iter().position(|n| *n == "1.2.1") < names.iter().position(|n| *n == "0.9.0"));

    let (port, ada) = (free_port(), free_port());
    let body = wizard_body(&app, "deployed", port, ada);
    let mut events = app.events();
    events.send(json!({"type": "subscribe", "streams": ["jobs"]}));
    events.until(Duration::from_secs(5), "subscribed", |m| {
        m["type"] == "subscribed"
    });
    let r = app.post("/deploy/deploy", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true);
    // The legacy answer's instance_id is the id the instance will have (as the original
    // backend's); install-status answers to it and to the job id alike.
    let announced = r.body["instance_id"].as_str().unwrap().to_owned();
    let job = r.body["job_id"].as_str().unwrap().to_owned();
    assert_ne!(announced, job);

    let mut last_progress = 0;
    let done = poll(&app, &announced, |b| {
        let p = b["progress"].as_u64().unwrap();
        assert!(p >= last_progress.min(p), "progress went backwards");
        b["status"] == "completed" || b["status"] == "failed"
    });
    last_progress = done["progress"].as_u64().unwrap();
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(last_progress, 100);
    let logs = done["logs"].as_array().unwrap();
    assert!(logs.len() > 3);
    for (i, l) in logs.iter().enumerate() {
        assert_eq!(
            l["seq"],
            (i + 1) as u64,
            "log lines are numbered without gaps"
        );
        assert!(["info", "warning", "error", "success"].contains(&l["level"].as_str().unwrap()));
        assert_eq!(l["timestamp"].as_str().unwrap().len(), 8);
    }
    assert!(
        done["services_install_status"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "napcat-ada")
    );
    // The event socket saw the same job: its log lines in order, progress, the end.
    let mut log_seqs = Vec::new();
    let mut progress = Vec::new();
    let finished = events.until(Duration::from_secs(10), "job.finished", |m| {
        assert_eq!(m["stream"], format!("job:{job}"));
        match m["type"].as_str().unwrap() {
            "job.log" => log_seqs.push(m["data"]["seq"].as_u64().unwrap()),
            "job.progress" => progress.push((
                m["data"]["phase"].as_str().unwrap().to_owned(),
                m["data"]["progress"].as_u64().unwrap(),
            )),
            _ => {}
        }
        m["type"] == "job.finished"
    });
    assert_eq!(finished["data"]["status"], "succeeded");
    assert!(finished["data"]["error"].is_null());
    // `since` pages: only what came after, and the cumulative view says nothing was cut.
    assert_eq!(done["logs_omitted"], 0);
    let by_job = app.get(&format!("/deploy/install-status/{job}?since=3"));
    assert_eq!(by_job.status, 200, "{}", by_job.body);
    let after = by_job.body["logs"].as_array().unwrap();
    assert_eq!(after.len(), logs.len() - 3);
    assert_eq!(after[0]["seq"], 4);
    assert_eq!(by_job.body["next_since"], logs.len() as u64);
    // Progress events carry changes only (of the phase or of the figure).
    assert!(progress.windows(2).all(|w| w[0] != w[1]), "{progress:?}");
    assert_eq!(log_seqs, (1..=log_seqs.len() as u64).collect::<Vec<_>>());
    assert!(log_seqs.len() >= logs.len().saturating_sub(1));
    assert!(
        progress.windows(2).all(|w| w[0].1 <= w[1].1),
        "{progress:?}"
    );

    let iid = done["instance_id"].as_str().unwrap().to_owned();
    assert_eq!(iid, announced, "the deployed instance has the announced id");
    let inst = app.wait_instance(&iid, "registered", |i| !i.is_null());
    assert_eq!(inst["port"], port);
    assert_eq!(inst["owned"], true);
    assert_eq!(inst["services"][0]["port"], ada);
    // The detail names every registered port (what `cargo xtask e2e` checks listeners
    // against): MaiBot's main and WebUI ports, the adapter's NapCat-facing one.
    let detail = app.get(&format!("/instances/{iid}"));
    assert_eq!(detail.status, 200, "{}", detail.body);
    let ports: Vec<(String, u64, bool)> = detail.body["components"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["ports"].as_array().unwrap().clone())
        .map(|p| {
            (
                p["role"].as_str().unwrap().to_owned(),
                p["port"].as_u64().unwrap(),
                p["listens"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        ports.contains(&("main".into(), u64::from(port), true)),
        "{ports:?}"
    );
    assert!(
        ports.contains(&("adapter_napcat".into(), u64::from(ada), true)),
        "{ports:?}"
    );
    assert!(
        ports.iter().any(|(r, _, l)| r == "webui" && *l),
        "{ports:?}"
    );
    let dir = std::path::PathBuf::from(inst["path"].as_str().unwrap());
    let env = std::fs::read_to_string(dir.join(".env")).unwrap();
    assert!(
        env.contains(&format!("PORT={port}")) && env.contains("OTHER_PORT=1"),
        "{env}"
    );
    assert!(
        dir.join("eula.confirmed").exists(),
        "the wizard's EULA box counts as accepted"
    );

    // Same name again, non-empty target, bad port: refused before any job exists.
    let r = app.post("/deploy/deploy", &body);
    assert_eq!(r.status, 409, "{}", r.body);
    let mut b2 = wizard_body(&app, "second", free_port(), free_port());
    b2["install_path"] = json!(dir);
    let r = app.post("/deploy/deploy", &b2);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["code"], "path_not_empty");
    let mut b3 = wizard_body(&app, "third", 80, free_port());
    b3["port"] = json!(80);
    let r = app.post("/deploy/deploy", &b3);
    assert_eq!(r.status, 400, "{}", r.body);
    let mut b4 = wizard_body(&app, "fourth", free_port(), free_port());
    b4["version"] = json!("9.9.9");
    assert_eq!(app.post("/deploy/deploy", &b4).status, 400);
    assert_eq!(app.get("/jobs").body["jobs"].as_array().unwrap().len(), 1);

    // Inspect sees a MaiBot directory owned by the launcher.
    let i = app.post("/inspect", &json!({"path": dir}));
    assert_eq!(i.status, 200, "{}", i.body);
    assert_eq!(i.body["has_bot_py"], true);
    assert_eq!(i.body["owned"], true);

    let d = app.delete(&format!("/instance/{iid}/delete"));
    assert_eq!(d.status, 200, "{}", d.body);
    assert!(!dir.exists(), "the launcher's own deploy folder is removed");
    assert!(dir.parent().unwrap().exists(), "pre-existing parents stay");

    // It went to the trash, adapter and all, and comes back as it was.
    let entry = d.body["trash_entry"].as_str().unwrap();
    let r = app.post(&format!("/trash/{entry}/restore"), &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(std::fs::read_to_string(dir.join(".env")).unwrap(), env);
    assert!(dir.join("napcat-ada").is_dir());
    let back = app.wait_instance(&iid, "restored", |i| !i.is_null());
    assert_eq!(
        (&back["owned"], &back["port"]),
        (&json!(true), &json!(port))
    );
}

#[test]
fn queued_job_cancel_and_daemon_crash_mid_job() {
    let fx = Fixture::build();
    let app = start(&fx, "never", None);
    let first = app.post(
        "/deploy/deploy",
        &wizard_body(&app, "slow", free_port(), free_port()),
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let first = first.body["job_id"].as_str().unwrap().to_owned();
    // One slot: the second job waits queued and can be canceled deterministically.
    let second = app.post(
        "/deploy/deploy",
        &wizard_body(&app, "queued", free_port(), free_port()),
    );
    let second = second.body["job_id"].as_str().unwrap().to_owned();
    let r = app.post(&format!("/jobs/{second}/cancel"), &json!({}));
    assert_eq!(r.status, 202, "{}", r.body);
    let j = poll(&app, &second, |b| b["job_status"] != "queued");
    assert_eq!(j["job_status"], "canceled");
    assert!(!app.home.path().join("MaiBot/Deployments/queued").exists());

    // Crash the daemon while the first job runs (pip is slow enough to catch it).
    poll(&app, &first, |b| {
        b["job_status"] == "running" && b["progress"].as_u64().unwrap() > 2
    });
    let install = app.home.path().join("MaiBot/Deployments/slow");
    let home = app.crash();
    let app = start(&fx, "never", Some(home));
    let j = app.get(&format!("/jobs/{first}"));
    assert_eq!(j.body["status"], "failed", "{}", j.body);
    assert!(
        j.body["error"].as_str().unwrap().contains("stopped"),
        "{}",
        j.body
    );
    // Nothing the crashed daemon's job started still runs (its tools carry the job id).
    let marker = format!("MAILAUNCHER_JOB_ID={first}");
    let survivors: Vec<_> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
        })
        .map(|e| e.file_name())
        .collect();
    assert!(
        survivors.is_empty(),
        "job processes survived: {survivors:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while install.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !install.exists(),
        "what the interrupted job created is removed"
    );
    assert!(install.parent().unwrap().exists());
    assert_eq!(app.get("/instances").body["instances"], json!([]));
}
