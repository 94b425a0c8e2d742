//! `spawn_app`: the real binary on port 0 with its own HOME, data and logs directories.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{WebSocket, stream::MaybeTlsStream};

pub struct App {
    pub child: Child,
    pub port: u16,
    pub home: tempfile::TempDir,
    pub token: Option<String>,
    dead: bool,
}

impl Drop for App {
    fn drop(&mut self) {
        // Already reaped by the test: its pid may belong to someone else by now.
        if self.dead || matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGTERM first so the server stops its instances, then make sure.
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

pub fn spawn_app_with(args: &[&str], env: &[(&str, &str)]) -> App {
    spawn_app_at(tempfile::tempdir().unwrap(), args, env)
}

/// Starts the server with an existing HOME (a "daemon restart").
pub fn spawn_app_at(home: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> App {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailauncher"));
    cmd.args(["serve", "--port", "0"])
        .args(args)
        .env("HOME", home.path())
        .env_remove("XDG_DATA_HOME")
        .env_remove("MAILAUNCHER_DATA_DIR")
        .env_remove("LOGS_DIR")
        // Fast metrics so tests need not wait; short grace so stops are quick.
        .env("MAILAUNCHER_METRICS__INTERVAL_MS", "200")
        .env("MAILAUNCHER_SUPERVISOR__STOP_GRACE_SECS", "3")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    App {
        child,
        port,
        home,
        token: None,
        dead: false,
    }
}

pub fn spawn_app() -> App {
    spawn_app_with(&[], &[])
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl App {
    /// Kills the server with SIGKILL (a crash) and hands back its HOME.
    pub fn crash(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dead = true;
        std::mem::replace(&mut self.home, tempfile::tempdir().unwrap())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/api/v1{path}", self.port)
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            self.url(path)
        };
        let mut b = ureq::http::Request::builder().method(method).uri(&url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(t) = &self.token {
            b = b.header("Authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            b = b.header("Content-Type", "application/json");
        }
        let req = b
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .unwrap();
        let mut res = Self::agent().run(req).unwrap();
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            body,
            headers,
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.request("POST", path, &[], Some(body.to_string().as_bytes()))
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.request("DELETE", path, &[], None)
    }

    pub fn ws(&self, session: &str) -> Ws {
        self.ws_with(session, &[]).unwrap()
    }

    pub fn ws_with(
        &self,
        session: &str,
        headers: &[(&str, &str)],
    ) -> Result<Ws, tungstenite::Error> {
        self.ws_path(&format!("/ws/{session}"), headers)
    }

    /// The event WebSocket, after its `hello`.
    #[allow(dead_code)]
    pub fn events(&self) -> Ws {
        let mut ws = self.ws_path("/events", &[]).unwrap();
        ws.until(Duration::from_secs(5), "hello", |m| m["type"] == "hello");
        ws
    }

    /// A WebSocket to `/api/v1{path}`.
    pub fn ws_path(&self, path: &str, headers: &[(&str, &str)]) -> Result<Ws, tungstenite::Error> {
        use tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://127.0.0.1:{}/api/v1{path}", self.port)
            .into_client_request()
            .unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                tungstenite::http::HeaderValue::from_str(v).unwrap(),
            );
        }
        let (ws, _) = tungstenite::connect(req)?;
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
        }
        Ok(Ws { ws })
    }

    /// Waits until `f` holds for the instance list entry of `id`.
    pub fn wait_instance(&self, id: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let list = self.get("/instances").body;
            let inst = list["instances"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["id"] == id)
                .cloned()
                .unwrap_or(Value::Null);
            if f(&inst) {
                return inst;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {inst}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub struct Ws {
    pub ws: WebSocket<MaybeTlsStream<TcpStream>>,
}

pub enum Got {
    Msg(Value),
    Closed(Option<u16>),
}

impl Ws {
    pub fn send(&mut self, v: Value) {
        self.ws
            .send(tungstenite::Message::Text(v.to_string().into()))
            .unwrap();
    }

    /// The next JSON message, or the close, within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<Got> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    return Some(Got::Msg(serde_json::from_str(&t).unwrap()));
                }
                Ok(tungstenite::Message::Close(c)) => {
                    return Some(Got::Closed(c.map(|c| u16::from(c.code))));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Some(Got::Closed(None));
                }
                Err(e) => panic!("websocket error: {e}"),
            }
        }
        None
    }

    /// Reads messages until one satisfies `f`; returns it. Panics after `timeout`.
    pub fn until(
        &mut self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match self.next(Duration::from_millis(200)) {
                Some(Got::Msg(m)) => {
                    if f(&m) {
                        return m;
                    }
                    seen.push(m);
                }
                Some(Got::Closed(c)) => {
                    panic!("closed ({c:?}) while waiting for {what}; saw {seen:?}")
                }
                None => {}
            }
        }
        panic!("timed out waiting for {what}; saw {seen:?}");
    }

    /// Waits until each predicate has matched a message, in any order (events of separate
    /// sources, e.g. an instance's state and its terminal output, may arrive either way
    /// round); returns the first match of each, in predicate order.
    pub fn until_each(
        &mut self,
        timeout: Duration,
        what: &str,
        preds: &[&dyn Fn(&Value) -> bool],
    ) -> Vec<Value> {
        let mut found: Vec<Option<Value>> = vec![None; preds.len()];
        self.until(timeout, what, |m| {
            for (slot, p) in found.iter_mut().zip(preds) {
                if slot.is_none() && p(m) {
                    *slot = Some(m.clone());
                }
            }
            found.iter().all(Option::is_some)
        });
        found.into_iter().flatten().collect()
    }

    /// Output text received until `needle` appears.
    pub fn output_until(&mut self, needle: &str) -> String {
        let mut out = String::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(Got::Msg(m)) = self.next(Duration::from_millis(200))
                && m["type"] == "output"
            {
                out.push_str(m["data"].as_str().unwrap());
                if out.contains(needle) {
                    return out;
                }
            }
        }
        panic!("no {needle:?} in output {out:?}");
    }
}

/// Python shared by the fakes: `listen()` accepts connections on the port named in
/// `fake_port` (see [`listen_on`]) in a background thread, as the real programs do once
/// they are up (the launcher counts them ready only then). The port may be taken by a
/// concurrent test run elsewhere on the machine: then someone answers on it already,
/// which is all readiness needs, so a failed bind is ignored.
const FAKE_LISTEN: &str = "import os, socket, threading
def listen():
    if not os.path.exists('fake_port'):
        return
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(('127.0.0.1', int(open('fake_port').read())))
        s.listen(16)
    except OSError as e:
        print('fake: could not listen:', e, flush=True)
        return
    def serve():
        while True:
            c, _ = s.accept()
            c.close()
    threading.Thread(target=serve, daemon=True).start()
";

/// A directory that looks like MaiBot: `bot.py` greets with MaiBot's ready banner, listens
/// on its port (when [`listen_on`] named one), then echoes every line it reads.
pub fn fake_maibot(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bot.py"),
        format!(
            "{FAKE_LISTEN}import sys\nprint('maibot ready', flush=True)\n\
             print('全部系统初始化完成，麦麦已成功唤醒', flush=True)\nlisten()\n\
             for line in sys.stdin:\n    print('echo:' + line.strip(), flush=True)\n"
        ),
    )
    .unwrap();
    dir
}

/// A directory that looks like the napcat adapter (its ready line, then its port).
pub fn fake_adapter(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.py"),
        format!(
            "{FAKE_LISTEN}import time\nprint('adapter ready', flush=True)\n\
             print('✅ Adapter 启动成功! 监听: ws://127.0.0.1', flush=True)\nlisten()\n\
             while True:\n    time.sleep(1)\n"
        ),
    )
    .unwrap();
    dir
}

/// Makes the fake in `dir` listen on `port` (the port it is registered with).
pub fn listen_on(dir: &Path, port: u16) {
    std::fs::write(dir.join("fake_port"), port.to_string()).unwrap();
}
