//! Black-box tests of issue 14, "secure by default against local web pages and other local
//! users", against the real server binary: origins, other OS users on loopback (a real
//! second account), the token's exemptions, the Host check, path and name rules on every
//! route that takes one, and the read and WebSocket caps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{App, Got, fake_maibot, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn add(app: &App, name: &str, port: u16) -> String {
    let dir = fake_maibot(&app.home.path().join("bots"), name);
    let r = app.post(
        "/instances/add",
        &json!({"instance_name": name, "maibot_path": dir, "port": port}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["instance_id"].as_str().unwrap().to_owned()
}

/// One raw HTTP exchange (status line and body), for requests a client library will not
/// send (no Host header).
fn raw(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn security_pages_from_other_localhost_ports_are_refused_by_default() {
    let app = spawn_app();
    let port = app.port;
    let with_origin = |method: &str, path: &str, origin: &str, body: Option<&Value>| {
        let b = body.map(Value::to_string);
        app.request(
            method,
            path,
            &[("Origin", origin)],
            b.as_deref().map(str::as_bytes),
        )
    };
    let dir = fake_maibot(&app.home.path().join("bots"), "evil");
    let add_body = json!({"instance_name": "evil", "maibot_path": dir, "port": 8700});
    // A dev server, a notebook, an XSS on another localhost port: refused, nothing added.
    for origin in [
        "http://127.0.0.1:5173",
        "http://localhost:8888",
        "http://[::1]:3000",
        "https://localhost",
    ] {
        let r = with_origin("POST", "/instances/add", origin, Some(&add_body));
        assert_eq!(r.status, 403, "{origin}: {}", r.body);
        assert_eq!(r.body["code"], "origin_not_allowed");
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("allowed_origins")
        );
        let pre = app.request(
            "OPTIONS",
            "/instances/add",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
            ],
            None,
        );
        assert_eq!(pre.status, 403, "{origin} preflight");
        assert_eq!(pre.header("access-control-allow-origin"), None);
    }
    assert_eq!(app.get("/instances").body["instances"], json!([]));
    assert!(
        app.ws_with("x_main", &[("Origin", "http://127.0.0.1:5173")])
            .is_err(),
        "no WebSocket for another localhost port"
    );
    // The desktop frontend's origins and the launcher's own pages keep working.
    for origin in [
        "tauri://localhost",
        "http://tauri.localhost",
        "http://localhost:1420",
        "http://127.0.0.1:11111",
        &format!("http://127.0.0.1:{port}"),
    ] {
        let r = with_origin("GET", "/instances", origin, None);
        assert_eq!(r.status, 200, "{origin}: {}", r.body);
    }
    // Opting in to loopback origins restores the old behaviour.
    let open = spawn_app_with(
        &[],
        &[("MAILAUNCHER_SECURITY__ALLOW_LOOPBACK_ORIGINS", "true")],
    );
    let r = open.request(
        "GET",
        "/instances",
        &[("Origin", "http://127.0.0.1:5173")],
        None,
    );
    assert_eq!(r.status, 200);
}

/// A second OS account for the test's lifetime, removed on drop.
struct OsUser {
    name: String,
}

impl OsUser {
    /// `None` (after saying so loudly) when accounts cannot be created here; under
    /// `CI=true` that is a failure instead.
    fn create() -> Option<Self> {
        Self::create_named(&format!("mlsec{}", std::process::id()))
    }

    fn create_named(name: &str) -> Option<Self> {
        let name = name.to_owned();
        let ok = Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", &name])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let msg = "cannot create a second OS user (useradd failed; the test needs root)";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
            eprintln!("SKIPPED security_other_os_users…: {msg}");
            return None;
        }
        Some(Self { name })
    }

    /// Whether this account can run the test client (python3 on its own PATH, not a shim
    /// under /root); says so loudly when not, and fails under `CI=true`.
    fn can_run_client(&self) -> bool {
        let ok = Command::new("runuser")
            .args(["-u", &self.name, "--", "python3", "-c", "pass"])
            .current_dir("/")
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let msg = "python3 is not runnable by another OS user";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
            eprintln!("SKIPPED (other-user security test): {msg}");
        }
        ok
    }

    /// Runs a small HTTP client as this user; returns (status, body).
    fn get(&self, port: u16, path: &str, token: Option<&str>) -> (u16, Value) {
        let script = r#"
import socket, sys
port, path, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
auth = "Authorization: Bearer %s\r\n" % token if token else ""
s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sConnection: close\r\n\r\n" % (path, port, auth)).encode())
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
sys.stdout.write(data.decode("utf-8", "replace"))
"#;
        let out = Command::new("runuser")
            .args(["-u", &self.name, "--", "python3", "-c", script])
            .arg(port.to_string())
            .arg(format!("/api/v1{path}"))
            .arg(token.unwrap_or(""))
            .current_dir("/")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "client failed: {text} {:?}", out);
        parse_response(&text)
    }
}

impl Drop for OsUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

fn parse_response(text: &str) -> (u16, Value) {
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // Chunked bodies: the JSON object is between the first '{' and the last '}'.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) => serde_json::from_str(&body[a..=b]).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, json)
}

#[test]
fn security_other_os_users_on_loopback_need_the_token() {
    let Some(user) = OsUser::create() else {
        return;
    };
    if !user.can_run_client() {
        return;
    }
    let app = spawn_app();
    let id = add(&app, "mine", 8710);
    // The launcher's own user: no token needed on loopback.
    assert_eq!(app.get("/instances").status, 200);
    assert_eq!(app.get(&format!("/instance/{id}/stop")).status, 200);

    // Another account: refused without the token, on every route but the docs.
    for path in [
        "/instances",
        &format!("/instance/{id}/start"),
        "/system/health",
    ] {
        let (status, body) = user.get(app.port, path, None);
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["code"], "foreign_user");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("mailauncher token")
        );
    }
    let (status, body) = user.get(app.port, "/instances", Some("wrong"));
    assert_eq!((status, &body["code"]), (403, &json!("foreign_user")));
    let (status, _) = user.get(app.port, "/openapi.json", None);
    assert_eq!(status, 200, "the documentation needs no token");
    assert_eq!(
        app.get("/instances").body["instances"][0]["status"],
        "stopped",
        "the refused start did nothing"
    );

    // With the token (readable only by the launcher's user), accepted.
    let token_file = app.home.path().join(".local/share/mailauncher/token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (status, body) = user.get(app.port, "/instances", Some(token.trim()));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["instances"][0]["id"], json!(id));

    // Turned off, another user is trusted like before.
    let open = spawn_app_with(&[], &[("MAILAUNCHER_SECURITY__SAME_USER_ONLY", "false")]);
    assert_eq!(user.get(open.port, "/instances", None).0, 200);
}

#[test]
fn security_token_exemptions_are_exact_paths_and_power_routes_need_it() {
    let mut app = spawn_app_with(&["--host", "0.0.0.0"], &[]);
    let token = std::fs::read_to_string(app.home.path().join(".local/share/mailauncher/token"))
        .unwrap()
        .trim()
        .to_owned();
    app.token = Some(token.clone());
    let id = add(&app, "tok", 8720);
    app.token = None;
    // The documentation: exact paths only.
    assert_eq!(app.get("/openapi.json").status, 200);
    let docs = app.request(
        "GET",
        &format!("http://127.0.0.1:{}/docs/", app.port),
        &[],
        None,
    );
    assert_eq!(docs.status, 200);
    // The suffix bypass: a person row or any other route ending in /openapi.json.
    for path in [
        format!("/resource/{id}/person/openapi.json"),
        "/instances/openapi.json".to_owned(),
        format!("/instance/{id}/openapi.json"),
        format!("/instance/{id}/start/openapi.json"),
    ] {
        let r = app.get(&path);
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert_eq!(r.body["code"], "unauthorized");
    }
    // The legacy GET power routes need it like every other route.
    for action in ["start", "stop", "restart"] {
        let r = app.get(&format!("/instance/{id}/{action}"));
        assert_eq!(r.status, 401, "{action}");
    }
    assert_eq!(app.delete(&format!("/instance/{id}/delete")).status, 401);
    let r = app.request(
        "GET",
        &format!("/instance/{id}/stop"),
        &[("Authorization", &format!("Bearer {token}"))],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn security_a_missing_host_is_refused_on_loopback() {
    let app = spawn_app();
    // HTTP/1.0 allows leaving the Host out: the guard refuses it with its own code.
    let out = raw(app.port, "GET /api/v1/instances HTTP/1.0\r\n\r\n");
    let (status, body) = parse_response(&out);
    assert_eq!(status, 400, "{out}");
    assert_eq!(body["code"], "host_missing", "{out}");
    assert!(body["detail"].as_str().unwrap().contains("Host"));
    // HTTP/1.1 requires it: refused before any route (actix's own 400).
    let out = raw(
        app.port,
        "GET /api/v1/instances HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(parse_response(&out).0, 400, "{out}");
    let out = raw(
        app.port,
        "GET /api/v1/instances HTTP/1.1\r\nHost: rebind.example:80\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(parse_response(&out).1["code"], "host_not_allowed");
    let out = raw(
        app.port,
        &format!(
            "GET /api/v1/instances HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            app.port
        ),
    );
    assert_eq!(parse_response(&out).0, 200);
}

/// Every forbidden location, as the client would write it.
fn forbidden_paths(home: &Path) -> Vec<String> {
    let link = home.join("link-to-etc");
    if !link.exists() {
        std::os::unix::fs::symlink("/etc", &link).unwrap();
    }
    let mut v: Vec<String> = [
        "/",
        "/etc/x",
        "/usr/x",
        "/usr/local/bots",
        "/bin/x",
        "/sbin/x",
        "/lib/x",
        "/lib32/x",
        "/lib64/x",
        "/libx32/x",
        "/boot/x",
        "/dev/x",
        "/proc/x",
        "/sys/x",
        "/run/x",
        "/var/lib/x",
        "/var/run/x",
        "/snap/x",
        "/var",
        "/tmp/../etc/x",
        "/etc",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(link.join("x").display().to_string());
    v
}

#[test]
fn security_every_route_that_takes_a_path_refuses_system_directories() {
    let app = spawn_app();
    let home = app.home.path().to_path_buf();
    let good = fake_maibot(&home.join("bots"), "good");
    // (route, body for a path); each is probed with every forbidden path.
    type Probe = (&'static str, fn(&str, &Path) -> Value);
    let probes: &[Probe] = &[
        (
            "/instances/add",
            |p, _| json!({"instance_name": "p", "maibot_path": p, "port": 8730}),
        ),
        ("/instances/add", |p, good| {
            json!({"instance_name": "p", "maibot_path": good, "port": 8731,
                   "adapter_path": p,
                   "install_services": [{"name": "napcat-ada", "path": p, "port": 8732}]})
        }),
        ("/deploy/deploy", |p, _| {
            json!({"instance_name": "p", "version": "main", "install_path": p, "port": 8733,
                   "install_services": []})
        }),
        ("/deploy/deploy", |p, good| {
            json!({"instance_name": "p", "version": "main",
                   "install_path": good.join("new").display().to_string(), "port": 8734,
                   "install_services": [{"name": "napcat-ada", "path": p, "port": 8735}]})
        }),
        ("/deploy", |p, _| {
            json!({"instance_name": "p", "version": "main", "install_path": p, "port": 8736,
                   "eula_accepted": true})
        }),
        ("/deploy", |p, good| {
            json!({"instance_name": "p", "version": "main",
                   "install_path": good.join("new").display().to_string(), "port": 8737,
                   "eula_accepted": true,
                   "components": [{"kind": "napcat-ada", "path": p}]})
        }),
        ("/inspect", |p, _| json!({"path": p})),
    ];
    let mut n = 0;
    for path in forbidden_paths(&home) {
        for (route, body) in probes {
            let b = body(&path, &good);
            let r = app.post(route, &b);
            n += 1;
            assert!(
                (400..500).contains(&r.status),
                "{route} {path}: {} {}",
                r.status,
                r.body
            );
            let code = r.body["code"].as_str().unwrap_or("");
            assert!(r.body["detail"].is_string(), "{route} {path}");
            if path == "/" {
                // An adapter at `/` is first refused for containing the install path.
                assert!(
                    ["forbidden_path", "invalid_path"].contains(&code),
                    "{route} {path}: {}",
                    r.body
                );
            } else {
                assert_eq!(code, "forbidden_path", "{route} {path}: {}", r.body);
            }
        }
    }
    assert!(n >= 150, "{n} probes");
    assert_eq!(app.get("/instances").body["instances"], json!([]));
    assert_eq!(
        app.get("/jobs").body["jobs"].as_array().map(Vec::len),
        Some(0)
    );
    // /opt and the user's own folders are fine.
    let r = app.post("/inspect", &json!({"path": "/opt/maibot"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app.post("/inspect", &json!({"path": good}));
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn security_names_and_ids_that_are_paths_are_refused() {
    let app = spawn_app();
    let good = fake_maibot(&app.home.path().join("bots"), "good");
    let new = app.home.path().join("new");
    for name in [".", "..", "...", "a/b", "../x", "", " "] {
        for (route, body) in [
            (
                "/instances/add",
                json!({"instance_name": name, "maibot_path": good, "port": 8740}),
            ),
            (
                "/deploy/deploy",
                json!({"instance_name": name, "version": "main", "install_path": new,
                       "port": 8741, "install_services": []}),
            ),
            (
                "/deploy",
                json!({"instance_name": name, "version": "main", "install_path": new,
                       "port": 8742, "eula_accepted": true}),
            ),
        ] {
            let r = app.post(route, &body);
            assert_eq!(r.status, 400, "{route} {name:?}: {}", r.body);
            assert!(
                ["invalid_name", "invalid_request"].contains(&r.body["code"].as_str().unwrap()),
                "{route} {name:?}: {}",
                r.body
            );
        }
    }
    for name in [".", ".."] {
        let r = app.post(
            "/instances/add",
            &json!({"instance_name": name, "maibot_path": good, "port": 8743}),
        );
        assert_eq!(r.body["code"], "invalid_name", "{name}");
    }
    // Ids in every id-taking route: never a path, never found by traversal.
    for bad in ["..", "%2e%2e", "..%2F..%2Fetc", "a.b", "x%00"] {
        for route in [
            format!("/instance/{bad}/start"),
            format!("/instances/{bad}"),
            format!("/instances/{bad}/metrics"),
            format!("/resource/{bad}/info"),
            format!("/resources/{bad}/config/get"),
            format!("/jobs/{bad}"),
            format!("/deploy/install-status/{bad}"),
        ] {
            let r = app.get(&route);
            assert!(
                r.status == 400 || r.status == 404,
                "{route}: {} {}",
                r.status,
                r.body
            );
            assert!(r.body["code"].is_string(), "{route}");
        }
    }
}

#[test]
fn security_allowed_roots_narrow_where_instances_may_live() {
    let home = tempfile::tempdir().unwrap();
    let bots = home.path().join("bots");
    std::fs::create_dir_all(&bots).unwrap();
    let app = common::spawn_app_at(
        home,
        &[],
        &[(
            "MAILAUNCHER_DEPLOY__ALLOWED_ROOTS",
            &format!("[\"{}\"]", bots.display()),
        )],
    );
    let inside = fake_maibot(&bots, "in");
    let outside = fake_maibot(&app.home.path().join("elsewhere"), "out");
    let r = app.post(
        "/instances/add",
        &json!({"instance_name": "out", "maibot_path": outside, "port": 8750}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["code"], "path_not_allowed");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("deploy.allowed_roots")
    );
    let r = app.post("/inspect", &json!({"path": outside}));
    assert_eq!(r.body["code"], "path_not_allowed");
    let r = app.post(
        "/deploy",
        &json!({"instance_name": "d", "version": "main", "eula_accepted": true,
                "install_path": app.home.path().join("elsewhere/new"), "port": 8751}),
    );
    assert_eq!(r.body["code"], "path_not_allowed", "{}", r.body);
    let r = app.post(
        "/instances/add",
        &json!({"instance_name": "in", "maibot_path": inside, "port": 8752}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

#[test]
fn security_file_reads_are_capped() {
    let app = spawn_app_with(&[], &[("MAILAUNCHER_SERVER__MAX_FILE_BYTES", "4096")]);
    let id = add(&app, "caps", 8760);
    let dir = app.home.path().join("bots/caps");
    std::fs::create_dir_all(dir.join("data/emoji")).unwrap();
    let conn = rusqlite::Connection::open(dir.join("data/MaiBot.db")).unwrap();
    conn.execute_batch(
        r#"CREATE TABLE "emoji" ("id" INTEGER NOT NULL PRIMARY KEY, "full_path" TEXT NOT NULL,
  "format" TEXT NOT NULL, "emoji_hash" TEXT NOT NULL, "description" TEXT NOT NULL,
  "query_count" INTEGER NOT NULL, "is_registered" INTEGER NOT NULL, "is_banned" INTEGER NOT NULL,
  "emotion" TEXT, "record_time" REAL NOT NULL, "register_time" REAL,
  "usage_count" INTEGER NOT NULL, "last_used_time" REAL);"#,
    )
    .unwrap();
    drop(conn);
    let mut big = PNG.to_vec();
    big.resize(8192, 0);
    std::fs::write(dir.join("data/emoji/small.png"), PNG).unwrap();
    std::fs::write(dir.join("data/emoji/big.png"), &big).unwrap();
    let mut ids = Vec::new();
    for f in ["small", "big"] {
        let r = app.post(
            &format!("/resource/{id}/emoji"),
            &json!({"full_path": format!("data/emoji/{f}.png"), "format": "png",
                    "emoji_hash": f, "description": f, "emotion": "x"}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        ids.push(r.body["data"]["emoji_id"].as_i64().unwrap());
    }
    let r = app.get(&format!("/resource/{id}/emoji/{}/image", ids[0]));
    assert_eq!(r.status, 200);
    let r = app.get(&format!("/resource/{id}/emoji/{}/image", ids[1]));
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.body["code"], "file_too_large");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("max_file_bytes")
    );

    // Config files under the same cap.
    std::fs::create_dir_all(dir.join("config")).unwrap();
    let mut toml = String::from("[bot]\nnickname = \"m\"\n");
    std::fs::write(dir.join("config/bot_config.toml"), &toml).unwrap();
    assert_eq!(app.get(&format!("/resources/{id}/config/get")).status, 200);
    while toml.len() < 8192 {
        toml.push_str("# padding padding padding padding padding padding padding\n");
    }
    std::fs::write(dir.join("config/bot_config.toml"), &toml).unwrap();
    let r = app.get(&format!("/resources/{id}/config/get"));
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.body["code"], "file_too_large");
}

/// The close code of a socket refused past a cap (after its `error` message).
fn refused_code(mut ws: common::Ws) -> Option<u16> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match ws.next(Duration::from_millis(200)) {
            Some(Got::Closed(c)) => return c,
            Some(Got::Msg(m)) if m["code"] == "too_many_websockets" => {}
            Some(Got::Msg(m)) => panic!("accepted past the cap: {m}"),
            None => {}
        }
    }
    panic!("no close past the cap")
}

#[test]
fn security_websockets_are_capped_per_instance_and_in_total() {
    let app = spawn_app_with(
        &[],
        &[
            ("MAILAUNCHER_SERVER__WS_MAX_PER_INSTANCE", "2"),
            ("MAILAUNCHER_SERVER__WS_MAX_TOTAL", "3"),
        ],
    );
    let a = add(&app, "wsa", 8770);
    let b = add(&app, "wsb", 8771);
    let open = |s: &str| {
        let mut ws = app.ws(s);
        ws.until(Duration::from_secs(5), "status", |m| m["type"] == "status");
        ws
    };
    let a1 = open(&format!("{a}_main"));
    let _a2 = open(&format!("{a}_main"));
    assert_eq!(refused_code(app.ws(&format!("{a}_main"))), Some(1013));
    // Another instance still has room, until the total is reached.
    let _b1 = open(&format!("{b}_main"));
    assert_eq!(refused_code(app.ws(&format!("{b}_main"))), Some(1013));
    assert_eq!(
        refused_code(app.ws_path("/events", &[]).unwrap()),
        Some(1013),
        "the event socket counts toward the total"
    );
    // A closed socket frees its place.
    drop(a1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut ws = app.ws_path("/events", &[]).unwrap();
        match ws.next(Duration::from_secs(2)) {
            Some(Got::Msg(m)) if m["type"] == "hello" => break,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("the freed place was not reused: {}", other.is_some()),
        }
    }
}

/// The server binary run as another account (`setpriv`), stopped on drop.
struct ServerAs {
    child: std::process::Child,
    port: u16,
    _home: tempfile::TempDir,
}

impl Drop for ServerAs {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_as(user: &str) -> ServerAs {
    use std::io::BufRead;
    let home = tempfile::tempdir().unwrap();
    let ok = Command::new("chown")
        .args([
            &format!("{user}:{user}"),
            &home.path().display().to_string(),
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok, "chown of the server's HOME");
    let mut child = Command::new("setpriv")
        .args([
            &format!("--reuid={user}"),
            &format!("--regid={user}"),
            "--clear-groups",
            "--",
            env!("CARGO_BIN_EXE_mailauncher"),
            "serve",
            "--port",
            "0",
        ])
        .env("HOME", home.path())
        .env_remove("XDG_DATA_HOME")
        .env_remove("MAILAUNCHER_DATA_DIR")
        .env_remove("LOGS_DIR")
        .current_dir("/")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    ServerAs {
        child,
        port,
        _home: home,
    }
}

#[test]
fn security_the_launchers_own_user_and_root_pass_another_user_does_not() {
    // The launcher runs as account A; A's and root's clients pass, account B's does not.
    let pid = std::process::id();
    let Some(a) = OsUser::create_named(&format!("mlsa{pid}")) else {
        return;
    };
    let Some(b) = OsUser::create_named(&format!("mlsb{pid}")) else {
        return;
    };
    if !a.can_run_client() {
        return;
    }
    let server = serve_as(&a.name);
    let (status, body) = a.get(server.port, "/instances", None);
    assert_eq!(status, 200, "the launcher's own user: {body}");
    let (status, body) = b.get(server.port, "/instances", None);
    assert_eq!(
        (status, &body["code"]),
        (403, &json!("foreign_user")),
        "{body}"
    );
    let out = raw(
        server.port,
        &format!(
            "GET /api/v1/instances HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            server.port
        ),
    );
    assert_eq!(parse_response(&out).0, 200, "root: {out}");
}
