//! Black-box tests of the HTTP and WebSocket surface the frontend uses, against the real
//! server binary, real child processes and a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{App, Got, fake_adapter, fake_maibot, listen_on, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn add_instance(app: &App, name: &str, port: u16, with_adapter: bool) -> String {
    let root = app.home.path().join("bots");
    let main = fake_maibot(&root, name);
    listen_on(&main, port);
    let mut body = json!({
        "instance_name": name,
        "maibot_path": main,
        "install_path": main,
        "port": port,
        "version": "检测到的MaiBot版本",
        "host": "localhost",
        "token": "",
        "install_services": [],
    });
    if with_adapter {
        let ada = fake_adapter(&root, &format!("{name}-ada"));
        listen_on(&ada, port + 95);
        body["adapter_path"] = json!(ada);
        body["install_services"] = json!([{
            "name": "napcat-ada", "path": ada, "port": port + 95, "run_cmd": "rm -rf / # never run"
        }]);
    }
    let r = app.post("/instances/add", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true);
    r.body["instance_id"].as_str().unwrap().to_owned()
}

#[test]
fn frontend_startup_calls_have_the_shapes_it_reads() {
    let app = spawn_app();
    let h = app.get("/system/health");
    assert_eq!(
        (h.status, h.body["status"].as_str()),
        (200, Some("success"))
    );
    assert!(h.body["time"].is_string());

    let v = app.get("/version/current");
    assert_eq!(v.status, 200);
    assert_eq!(v.body["data"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(v.body["data"]["internal_version"].is_u64());

    let c = app.get("/version/check");
    for k in [
        "current_version",
        "latest_version",
        "has_update",
        "update_description",
    ] {
        assert!(!c.body[k].is_null(), "flat {k} missing: {}", c.body);
    }
    assert_eq!(c.body["status"], "success");
    for k in [
        "has_update",
        "latest_version",
        "latest_internal",
        "update_type",
    ] {
        assert!(!c.body["data"][k].is_null(), "data.{k} missing");
    }
    let hist = app.get("/version/history");
    assert!(hist.body["data"].as_array().is_some_and(|a| !a.is_empty()));

    // Metrics come from the background sampler; wait for a sample with a rate.
    let deadline = Instant::now() + SECS(10);
    let m = loop {
        let m = app.get("/system/metrics");
        if !m.body["data"]["sampled_at"].is_null() {
            break m;
        }
        assert!(Instant::now() < deadline, "no metrics sample");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(m.body["status"], "success");
    let d = &m.body["data"];
    let cpu = d["cpu_usage_percent"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&cpu));
    assert!(d["system_info"]["processor"].is_string());
    let mem = &d["memory_usage"];
    assert!(mem["total_mb"].as_f64().unwrap() > 0.0);
    assert!(mem["used_mb"].as_f64().unwrap() <= mem["total_mb"].as_f64().unwrap());
    for k in ["available_mb", "percent"] {
        assert!(mem[k].is_number());
    }
    for k in ["total_gb", "used_gb", "free_gb", "percent"] {
        assert!(d["disk_usage_root"][k].is_number(), "disk {k}");
    }
    assert!(d["network_up"].as_f64().unwrap() >= 0.0);
    assert!(d["network_down"].as_f64().unwrap() >= 0.0);
    assert!(d["network_stats"]["interfaces"].is_array());

    let l = app.get("/instances");
    assert_eq!(l.body["instances"], json!([]));
    let s = app.get("/instances/stats");
    assert_eq!(s.body["total"], 0);
}

#[test]
fn instance_lifecycle_through_the_legacy_routes() {
    let app = spawn_app();
    let id = add_instance(&app, "bot-one", 8000, true);
    let inst = app.wait_instance(&id, "listed", |i| !i.is_null());
    assert_eq!(inst["name"], "bot-one");
    assert_eq!(inst["status"], "stopped");
    assert_eq!(inst["port"], 8000);
    assert_eq!(inst["services"][0]["name"], "napcat-ada");
    assert_eq!(inst["services"][0]["port"], 8095);
    assert_eq!(inst["start_count"], 0);
    assert!(inst["installedAt"].is_string());
    assert_eq!(
        inst["version"], "unknown",
        "the placeholder is not stored as a version"
    );

    let r = app.get(&format!("/instance/{id}/start"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true);
    let inst = app.wait_instance(&id, "running with stats", |i| {
        i["status"] == "running" && i["start_count"] == 1 && !i["cpu_percent"].is_null()
    });
    assert!(inst["last_start_time"].is_string());
    assert!(inst["uptime"].is_u64());
    assert!(inst["memory_mb"].as_f64().unwrap() > 0.0);
    assert_eq!(inst["services"][0]["status"], "running");
    assert_eq!(
        inst["state"], "running",
        "the modern state beside the legacy status"
    );

    let r = app.get(&format!("/instance/{id}/restart"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true);
    app.wait_instance(&id, "restarted", |i| {
        i["status"] == "running" && i["start_count"] == 2
    });

    let r = app.get(&format!("/instance/{id}/stop"));
    assert_eq!((r.status, &r.body["success"]), (200, &json!(true)));
    let inst = app.wait_instance(&id, "stopped", |i| i["status"] == "stopped");
    assert!(inst["last_exit"].is_object());
    assert_eq!(inst["crash_count"], 0);

    let r = app.delete(&format!("/instance/{id}/delete"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["success"], true);
    assert!(
        app.home.path().join("bots/bot-one/bot.py").exists(),
        "an added instance's files are never deleted"
    );
    assert_eq!(app.get("/instances").body["instances"], json!([]));
    assert_eq!(app.get(&format!("/instance/{id}/start")).status, 404);
}

#[test]
fn terminal_protocol_end_to_end() {
    let app = spawn_app();
    let id = add_instance(&app, "term", 8100, false);
    let session = format!("{id}_main");

    // Connecting to a stopped component: a status line, input refused, socket open.
    let mut early = app.ws(&session);
    let first = early.until(SECS(5), "status", |m| m["type"] == "status");
    assert!(first["message"].as_str().unwrap().contains("not running"));
    early.send(json!({"type": "input", "data": "x\r"}));
    early.until(SECS(5), "input refused", |m| m["type"] == "error");

    assert_eq!(app.get(&format!("/instance/{id}/start")).status, 200);
    // The early viewer starts receiving output without reconnecting.
    early.output_until("maibot ready");

    let mut a = app.ws(&session);
    a.until(SECS(5), "status", |m| m["type"] == "status");
    // Scrollback arrives as ordinary output.
    a.output_until("maibot ready");
    let mut b = app.ws(&session);
    b.output_until("maibot ready");

    a.send(json!({"type": "resize", "cols": 120, "rows": 40}));
    a.send(json!({"type": "ping", "timestamp": 12345}));
    let pong = a.until(SECS(15), "pong", |m| m["type"] == "pong");
    assert_eq!(pong["timestamp"], 12345);
    a.send(json!({"type": "request_history", "timestamp": 1, "fromTime": 0, "toTime": 1}));
    a.send(json!({"type": "input", "data": "hello\r"}));
    a.output_until("echo:hello");
    // Every viewer sees every output.
    b.output_until("echo:hello");
    early.output_until("echo:hello");
    drop(b);

    // Reconnect while running: the earlier exchange is replayed.
    let mut c = app.ws(&session);
    c.output_until("echo:hello");
    c.send(json!({"type": "input", "data": "again\n"}));
    c.output_until("echo:again");

    // Unknown instance / component: an error, then a distinct close code.
    for bad in ["nosuchinstance_main".to_owned(), format!("{id}_napcat")] {
        let mut ws = app.ws(&bad);
        let mut saw_error = false;
        loop {
            match ws.next(SECS(5)) {
                Some(Got::Msg(m)) => saw_error |= m["type"] == "error",
                Some(Got::Closed(code)) => {
                    assert_eq!(code, Some(4404));
                    break;
                }
                None => panic!("no close for {bad}"),
            }
        }
        assert!(saw_error);
    }
}

#[test]
fn cors_and_origin_policy() {
    let app = spawn_app();
    let pre = |origin: &str| {
        app.request(
            "OPTIONS",
            "/instances",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "GET"),
                (
                    "Access-Control-Request-Headers",
                    "x-client-name,x-client-version",
                ),
            ],
            None,
        )
    };
    let ok = pre("tauri://localhost");
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("tauri://localhost")
    );
    let evil = pre("https://evil.example");
    assert_eq!(evil.status, 403);
    assert_eq!(evil.header("access-control-allow-origin"), None);

    let get = app.request(
        "GET",
        "/instances",
        &[("Origin", "http://localhost:1420")],
        None,
    );
    assert_eq!(get.status, 200);
    let get = app.request(
        "GET",
        "/instances",
        &[("Origin", "https://evil.example")],
        None,
    );
    assert_eq!(get.status, 403);
    assert_eq!(get.body["code"], "origin_not_allowed");
    assert!(get.body["detail"].is_string());

    // A GET power action smuggled in as a cross-site sub-resource (no Origin header).
    let img = app.request(
        "GET",
        "/instances",
        &[("Sec-Fetch-Site", "cross-site")],
        None,
    );
    assert_eq!(img.status, 403);
    // DNS rebinding: a foreign Host on the loopback bind.
    let reb = app.request("GET", "/instances", &[("Host", "evil.example")], None);
    assert_eq!(reb.status, 403);

    let id = add_instance(&app, "origin", 8200, false);
    assert!(
        app.ws_with(&format!("{id}_main"), &[("Origin", "https://evil.example")])
            .is_err(),
        "a foreign origin gets no WebSocket"
    );
    assert!(
        app.ws_with(&format!("{id}_main"), &[("Origin", "tauri://localhost")])
            .is_ok()
    );
}

#[test]
fn bad_input_gets_the_documented_error_body() {
    let app = spawn_app();
    let r = app.request("POST", "/instances/add", &[], Some(b"{not json"));
    assert_eq!(r.status, 400);
    assert_eq!(r.body["code"], "malformed_json");
    assert!(r.body["detail"].is_string());

    let r = app.post("/instances/add", &json!({"instance_name": 5}));
    assert_eq!(r.status, 422);
    assert_eq!(r.body["code"], "invalid_body");

    let big = vec![b' '; 5 << 20];
    let r = app.request("POST", "/instances/add", &[], Some(&big));
    assert_eq!(r.status, 413);
    assert_eq!(r.body["code"], "body_too_large");

    let r = app.get("/instance/..%2F..%2Fetc/start");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["code"], "invalid_id");
    let r = app.get("/instance/doesnotexist/start");
    assert_eq!(r.status, 404);
    assert!(r.body["detail"].is_string());
    let r = app.get("/no/such/route");
    assert_eq!(r.status, 404);
    assert_eq!(r.body["code"], "route_not_found");

    // Add-existing validation.
    let root = app.home.path().join("bots");
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let r = app.post(
        "/instances/add",
        &json!({"instance_name": "x", "maibot_path": empty, "port": 8000, "install_services": []}),
    );
    assert_eq!(r.status, 400);
    assert!(r.body["detail"].as_str().unwrap().contains("bot.py"));
    let good = fake_maibot(&root, "good");
    for (body, status) in [
        (
            json!({"instance_name": "x", "maibot_path": good, "port": 80}),
            400,
        ),
        (
            json!({"instance_name": "x", "maibot_path": good, "port": 70000}),
            400,
        ),
        (
            json!({"instance_name": "a/b", "maibot_path": good, "port": 8000}),
            400,
        ),
        (
            json!({"instance_name": "x", "maibot_path": "relative/path", "port": 8000}),
            400,
        ),
        (
            json!({"instance_name": "x", "maibot_path": good, "port": 8000,
                   "install_services": [{"name": "nonebot", "path": good, "port": 9000}]}),
            400,
        ),
    ] {
        let r = app.post("/instances/add", &body);
        assert_eq!(r.status, status, "{body} -> {}", r.body);
        assert!(r.body["detail"].is_string());
    }
    add_instance(&app, "dup", 8300, false);
    let again = fake_maibot(&root, "dup2");
    let r = app.post(
        "/instances/add",
        &json!({"instance_name": "dup", "maibot_path": again, "port": 8301}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    let r = app.post(
        "/instances/add",
        &json!({"instance_name": "other", "maibot_path": again, "port": 8300}),
    );
    assert_eq!(r.status, 409, "port clash: {}", r.body);
}

#[test]
fn token_is_required_beyond_loopback() {
    let mut app = spawn_app_with(&["--host", "0.0.0.0"], &[]);
    let r = app.get("/system/health");
    assert_eq!(r.status, 401);
    assert_eq!(r.body["code"], "unauthorized");
    let token_file = app.home.path().join(".local/share/mailauncher/token");
    let meta = std::fs::metadata(&token_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(&token_file).unwrap();
    app.token = Some(token.trim().to_owned());
    assert_eq!(app.get("/system/health").status, 200);
    let r = app.request(
        "GET",
        "/system/health",
        &[("Authorization", "Bearer wrong")],
        None,
    );
    assert_eq!(r.status, 401);

    // WebSocket: the token as a sub-protocol.
    let id = add_instance(&app, "tok", 8400, false);
    let proto = format!("mailauncher.token.{}", token.trim());
    let mut ws = app
        .ws_with(&format!("{id}_main"), &[("Sec-WebSocket-Protocol", &proto)])
        .unwrap();
    ws.until(SECS(5), "status", |m| m["type"] == "status");
    // Or as the first message; anything else closes with 4401.
    let mut ws = app.ws(&format!("{id}_main"));
    ws.send(json!({"type": "auth", "token": token.trim()}));
    ws.until(SECS(5), "connected", |m| {
        m["message"]
            .as_str()
            .is_some_and(|s| s.contains("connected"))
    });
    let mut ws = app.ws(&format!("{id}_main"));
    ws.send(json!({"type": "ping"}));
    loop {
        match ws.next(SECS(10)) {
            Some(Got::Closed(code)) => {
                assert_eq!(code, Some(4401));
                break;
            }
            Some(Got::Msg(_)) => {}
            None => panic!("no close without auth"),
        }
    }
}

#[test]
fn graceful_shutdown_closes_sockets_and_stops_instances() {
    let app = spawn_app();
    let id = add_instance(&app, "shut", 8500, false);
    assert_eq!(app.get(&format!("/instance/{id}/start")).status, 200);
    let inst = app.wait_instance(&id, "running", |i| i["status"] == "running");
    let pid = inst["components"][0]["pid"].as_u64().unwrap() as i32;
    let mut ws = app.ws(&format!("{id}_main"));
    ws.output_until("maibot ready");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(app.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut code = None;
    let deadline = Instant::now() + SECS(10);
    while Instant::now() < deadline {
        if let Some(Got::Closed(c)) = ws.next(Duration::from_millis(200)) {
            code = c;
            break;
        }
    }
    assert_eq!(
        code,
        Some(1001),
        "viewers are told the server is going away"
    );
    let mut app = app;
    let deadline = Instant::now() + SECS(15);
    let status = loop {
        if let Some(s) = app.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "server did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false);
    assert!(!alive, "the instance's process was stopped");
    let _: Value = Value::Null;
}

/// The first `/system/metrics` body that carries a sample.
fn first_sample(app: &App) -> Value {
    let deadline = Instant::now() + SECS(10);
    loop {
        let m = app.get("/system/metrics");
        assert_eq!(m.status, 200);
        if !m.body["data"]["sampled_at"].is_null() {
            return m.body;
        }
        assert!(Instant::now() < deadline, "no metrics sample");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_requests_read_the_background_sample_whatever_the_interval() {
    // An hour between samples: requests are still answered, all from the sample taken at
    // start, so no request ever waits for (or triggers) sampling. How long a request takes
    // therefore cannot depend on the interval; `cargo xtask bench api` reports the figure.
    let slow = spawn_app_with(&[], &[("MAILAUNCHER_METRICS__INTERVAL_MS", "3600000")]);
    let first = first_sample(&slow);
    assert_eq!(first["data"]["sample_interval_ms"], 3_600_000);
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1200) {
        let m = slow.get("/system/metrics");
        assert_eq!(m.status, 200);
        assert_eq!(
            m.body["data"]["sampled_at"], first["data"]["sampled_at"],
            "a request must not take a sample of its own"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // At 200 ms the same route shows newer samples as they are taken.
    let fast = spawn_app();
    let first = first_sample(&fast);
    let deadline = Instant::now() + SECS(10);
    loop {
        let m = fast.get("/system/metrics");
        if m.body["data"]["sampled_at"] != first["data"]["sampled_at"] {
            break;
        }
        assert!(Instant::now() < deadline, "the sample never moved");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The live calls of the frontend (`frontend-calls.json`), method and path template.
const FRONTEND_CALLS: &[(&str, &str)] = &[
    ("get", "/api/v1/version/current"),
    ("get", "/api/v1/version/check"),
    ("get", "/api/v1/system/health"),
    ("get", "/api/v1/system/metrics"),
    ("get", "/api/v1/instances"),
    ("get", "/api/v1/instance/{id}/start"),
    ("get", "/api/v1/instance/{id}/stop"),
    ("get", "/api/v1/instance/{id}/restart"),
    ("delete", "/api/v1/instance/{id}/delete"),
    ("post", "/api/v1/instances/add"),
    ("get", "/api/v1/deploy/versions"),
    ("post", "/api/v1/deploy/deploy"),
    ("get", "/api/v1/deploy/install-status/{instance_id}"),
    ("post", "/api/v1/resource/{id}/emoji/count"),
    ("post", "/api/v1/resource/{id}/emoji/batch"),
    ("post", "/api/v1/resource/{id}/emoji"),
    ("delete", "/api/v1/resource/{id}/emoji/{emoji_id}"),
    ("post", "/api/v1/resource/{id}/person/count"),
    ("post", "/api/v1/resource/{id}/person/batch"),
    ("post", "/api/v1/resource/{id}/person"),
    ("delete", "/api/v1/resource/{id}/person/{person_id}"),
    (
        "post",
        "/api/v1/resource/{id}/person/{person_id}/interaction",
    ),
    ("get", "/api/v1/resource/{id}/info"),
    ("get", "/api/v1/resources/{id}/config/get"),
    ("post", "/api/v1/resources/{id}/config/update"),
    ("get", "/api/v1/resources/{id}/lpmm/get"),
    ("post", "/api/v1/resources/{id}/lpmm/update"),
    ("get", "/api/v1/resources/{id}/env/get"),
    ("post", "/api/v1/resources/{id}/env/update"),
    ("get", "/api/v1/resources/{id}/adapter/napcat/get"),
    ("post", "/api/v1/resources/{id}/adapter/napcat/update"),
    ("get", "/api/v1/ws/{session}"),
];

/// Whether a documented template covers a concrete template (`{…}` matches any segment;
/// a literal segment of the call may fall under a documented `{kind}`).
fn covers(doc: &str, call: &str) -> bool {
    let (d, c): (Vec<&str>, Vec<&str>) = (doc.split('/').collect(), call.split('/').collect());
    d.len() == c.len()
        && d.iter()
            .zip(&c)
            .all(|(d, c)| d == c || (d.starts_with('{') && (c.starts_with('{') || !c.is_empty())))
}

#[test]
fn openapi_documents_every_route_and_the_docs_page_is_served() {
    // Version listing would ask the default (network) git sources: point them nowhere.
    let app = spawn_app_with(
        &[],
        &[
            (
                "MAILAUNCHER_DEPLOY__SOURCES__MAIBOT__URL",
                "file:///nonexistent/maibot.git",
            ),
            ("MAILAUNCHER_DEPLOY__SOURCES__MAIBOT__MIRRORS", "[]"),
            (
                "MAILAUNCHER_DEPLOY__SOURCES__ADAPTER__URL",
                "file:///nonexistent/adapter.git",
            ),
            ("MAILAUNCHER_DEPLOY__SOURCES__ADAPTER__MIRRORS", "[]"),
        ],
    );
    let doc = app.request("GET", "/openapi.json", &[], None);
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc.body["info"]["version"], env!("CARGO_PKG_VERSION"));
    let paths = doc.body["paths"].as_object().unwrap();
    let ops: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                .map(move |m| (m.clone(), p.clone()))
        })
        .collect();
    assert!(ops.len() >= 60, "{} operations", ops.len());

    // Everything the frontend calls is documented.
    for (m, call) in FRONTEND_CALLS {
        assert!(
            ops.iter().any(|(dm, dp)| dm == m && covers(dp, call)),
            "{m} {call} is not in the OpenAPI document"
        );
    }
    // Everything documented is served: no operation falls through to the unknown-route
    // answer (ids that exist nowhere get a 404 of their own kind, not `route_not_found`).
    for (m, p) in &ops {
        let concrete = p
            .replace("{id}", "nosuchinstance")
            .replace("{component}", "main")
            .replace("{kind}", "config")
            .replace("{session}", "nosuchinstance_main")
            .replace("{emoji_id}", "1")
            .replace("{person_id}", "p1")
            .replace("{record_id}", "1")
            .replace("{entry_id}", "nosuchentry");
        let path = concrete.strip_prefix("/api/v1").unwrap();
        let body = (m != "get" && m != "delete").then_some(b"{}".as_slice());
        let r = app.request(&m.to_uppercase(), path, &[], body);
        assert_ne!(
            r.body["code"], "route_not_found",
            "{m} {p} is documented but not served"
        );
        if r.status >= 400 {
            assert!(
                r.body["detail"].is_string() || path.starts_with("/ws/") || path == "/events",
                "{m} {p}: {}",
                r.body
            );
        }
    }
    // Typed schemas are in the components.
    for s in ["InstanceView", "InstanceList", "DeployRequest", "ErrorBody"] {
        assert!(
            doc.body["components"]["schemas"][s].is_object(),
            "schema {s}"
        );
    }

    // The browsable page, from assets inside the binary.
    let page = ureq::get(&format!("http://127.0.0.1:{}/docs/", app.port))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(page.to_lowercase().contains("swagger"), "{page}");
    // `/docs` without the slash is redirected there (ureq follows redirects).
    let bare = ureq::get(&format!("http://127.0.0.1:{}/docs", app.port))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(bare.to_lowercase().contains("swagger"), "{bare}");
    let index = ureq::get(&format!("http://127.0.0.1:{}/", app.port))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(index.contains("/docs/"));
}
