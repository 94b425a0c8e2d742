//! The component actor.

use super::members::{self, COMPONENT_ENV};
use super::procfs::Member;
use super::spawn::{ProcessSpec, spawn};
use super::{
    ExitInfo, Failure, Readiness, RestartMode, RestartPolicy, State, Status, StopPolicy,
    SupervisorError,
};
use crate::logs::{LineWatch, LogConfig, LogPipeline, spawn_reader_watching};
use nix::sys::signal::Signal;
use portable_pty::{MasterPty, PtySize};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Everything a component actor needs.
#[derive(Debug, Clone)]
pub struct ComponentConfig {
    /// Name for logs and threads, e.g. `inst1-main`.
    pub name: String,
    /// What to run.
    pub spec: ProcessSpec,
    /// Crash handling.
    pub restart: RestartPolicy,
    /// Stop handling.
    pub stop: StopPolicy,
    /// When a spawned process counts as `running`.
    pub ready: Readiness,
    /// An exit with this code after the process was ready is a restart it asked for: it
    /// is started again at once and counted as a restart, not a crash.
    pub restart_exit_code: Option<i32>,
    /// Output buffering and files.
    pub log: LogConfig,
    /// Quiet period after which a partial line (a prompt) is published.
    pub flush_after: Duration,
}

type Reply = oneshot::Sender<Result<(), SupervisorError>>;

/// Told of every status the actor publishes, in order, from the actor itself: whoever
/// records statuses has the last one queued by the time a stop returns.
pub(crate) type Observer = Box<dyn Fn(&Status) + Send + Sync>;

enum Cmd {
    Start(Reply),
    Stop(Reply),
    Restart(Reply),
    Kill(Reply),
    Input(Vec<u8>, Reply),
    Resize(u16, u16, Reply),
    NotStarted(String, Reply),
    Queue(Reply),
}

/// A handle to one component's actor. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Component {
    tx: mpsc::Sender<Cmd>,
    status: watch::Receiver<Status>,
    logs: LogPipeline,
}

impl Component {
    /// Starts the actor (not the process) on the current tokio runtime. Its processes are
    /// members of the component as [`COMPONENT_ENV`] in `cfg.spec.env` names them (the
    /// supervisor always sets it).
    pub fn new(cfg: ComponentConfig) -> std::io::Result<Self> {
        Self::new_on(cfg, &tokio::runtime::Handle::current(), None)
    }

    /// Starts the actor on `rt`, which must outlive every process it runs: an actor on a
    /// runtime that is torn down (an HTTP worker's) drops its processes' terminals with it.
    pub(crate) fn new_on(
        cfg: ComponentConfig,
        rt: &tokio::runtime::Handle,
        observer: Option<Observer>,
    ) -> std::io::Result<Self> {
        members::init();
        let logs = LogPipeline::new(cfg.log.clone())?;
        let (tx, rx) = mpsc::channel(256);
        let (status_tx, status) = watch::channel(Status::default());
        let (exit_tx, exit_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = mpsc::unbounded_channel();
        let actor = Actor {
            size: cfg.spec.size,
            marker: cfg
                .spec
                .env
                .iter()
                .rev()
                .find(|(k, _)| k == COMPONENT_ENV)
                .map(|(k, v)| format!("{k}={v}")),
            observer,
            cfg,
            logs: logs.clone(),
            status_tx,
            st: Status::default(),
            run: None,
            exit_tx,
            ready_tx,
            ready_deadline: None,
            stop_waiters: Vec::new(),
            restart_waiters: Vec::new(),
            restart_pending: false,
            stop_deadline: None,
            backoff_until: None,
            consecutive: 0,
            crashes: VecDeque::new(),
        };
        rt.spawn(actor.run(rx, exit_rx, ready_rx));
        Ok(Self { tx, status, logs })
    }

    async fn call(&self, make: impl FnOnce(Reply) -> Cmd) -> Result<(), SupervisorError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| SupervisorError::Gone)?;
        rx.await.map_err(|_| SupervisorError::Gone)?
    }

    /// Starts the process (no-op when it runs; clears `failed`).
    pub async fn start(&self) -> Result<(), SupervisorError> {
        self.call(Cmd::Start).await
    }

    /// Stops the process: the stop signal to its group, then SIGKILL after the grace
    /// period. Returns once it is reaped.
    pub async fn stop(&self) -> Result<(), SupervisorError> {
        self.call(Cmd::Stop).await
    }

    /// A confirmed stop (process reaped) followed by a start.
    pub async fn restart(&self) -> Result<(), SupervisorError> {
        self.call(Cmd::Restart).await
    }

    /// SIGKILL to the process group at once; returns once it is reaped.
    pub async fn kill(&self) -> Result<(), SupervisorError> {
        self.call(Cmd::Kill).await
    }

    /// Writes raw bytes to the terminal.
    pub async fn input(&self, bytes: Vec<u8>) -> Result<(), SupervisorError> {
        self.call(|r| Cmd::Input(bytes, r)).await
    }

    /// Sets the terminal size (kept for later starts too).
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<(), SupervisorError> {
        self.call(|r| Cmd::Resize(rows, cols, r)).await
    }

    /// Marks a component without a process as `starting` with no pid: it will be started
    /// once the component before it in the start order is ready. A no-op while a process
    /// exists; a stop returns it to `stopped`.
    pub async fn queue(&self) -> Result<(), SupervisorError> {
        self.call(Cmd::Queue).await
    }

    /// Marks a component without a process as `failed` with `reason` (it was not started
    /// because something it depends on failed); a no-op while a process exists. A user's
    /// start clears it.
    pub async fn not_started(&self, reason: String) -> Result<(), SupervisorError> {
        self.call(|r| Cmd::NotStarted(reason, r)).await
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn watch(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// The output stream.
    pub fn logs(&self) -> &LogPipeline {
        &self.logs
    }
}

struct Running {
    pid: u32,
    /// Members found so far (pid + start time), shared with the waiter thread, which ends
    /// them when the leader exits.
    members: Arc<Mutex<Vec<Member>>>,
    master: Box<dyn MasterPty + Send>,
    input: std::sync::mpsc::Sender<Vec<u8>>,
    started: Instant,
    /// Whether it became ready (it reached `running`).
    ready: bool,
    /// The readiness probe, while starting.
    probe: Option<tokio::task::AbortHandle>,
    /// Set when the launcher ends the process on its own as a failure (the reason).
    ending: Option<String>,
}

impl Running {
    fn stop_probe(&mut self) {
        if let Some(p) = self.probe.take() {
            p.abort();
        }
    }
}

struct Exited {
    pid: u32,
    code: Option<i32>,
    signal: Option<i32>,
}

struct Actor {
    cfg: ComponentConfig,
    /// `MAILAUNCHER_COMPONENT=…` as its processes carry it.
    marker: Option<String>,
    observer: Option<Observer>,
    size: (u16, u16),
    logs: LogPipeline,
    status_tx: watch::Sender<Status>,
    st: Status,
    run: Option<Running>,
    exit_tx: mpsc::UnboundedSender<Exited>,
    /// The probe reports "ready" with the pid it watched.
    ready_tx: mpsc::UnboundedSender<u32>,
    ready_deadline: Option<Instant>,
    stop_waiters: Vec<Reply>,
    restart_waiters: Vec<Reply>,
    restart_pending: bool,
    stop_deadline: Option<Instant>,
    backoff_until: Option<Instant>,
    consecutive: u32,
    crashes: VecDeque<Instant>,
}

/// `sig` to the leader's group and every member of the component (see `members`).
fn signal_members(pid: u32, marker: Option<&str>, known: &Mutex<Vec<Member>>, sig: Signal) {
    // A panic elsewhere under this lock leaves a list that is still valid.
    let mut known = known.lock().unwrap_or_else(|e| e.into_inner());
    members::signal_all(pid, marker, sig, &mut known);
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Whether every port accepts a TCP connection on the loopback address.
async fn ports_accept(ports: &[u16]) -> bool {
    for &port in ports {
        let connect = tokio::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port));
        match tokio::time::timeout(Duration::from_secs(1), connect).await {
            Ok(Ok(_)) => {}
            _ => return false,
        }
    }
    true
}

/// Waits for the ready line (when one is needed), then probes the ports until they all
/// accept; reports `pid` as ready. Ends without a report when the line never comes (the
/// drain drops the watch at end of output) and is aborted when the process goes.
async fn probe_ready(
    pid: u32,
    line: Option<oneshot::Receiver<()>>,
    ports: Vec<u16>,
    ready: mpsc::UnboundedSender<u32>,
) {
    if let Some(line) = line
        && line.await.is_err()
    {
        return;
    }
    while !ports_accept(&ports).await {
        tokio::time::sleep(Readiness::PROBE_EVERY).await;
    }
    let _ = ready.send(pid);
}

impl Actor {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Cmd>,
        mut exits: mpsc::UnboundedReceiver<Exited>,
        mut ready: mpsc::UnboundedReceiver<u32>,
    ) {
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                Some(exit) = exits.recv() => self.on_exit(exit),
                Some(pid) = ready.recv() => self.on_ready(pid),
                _ = sleep_until_opt(self.ready_deadline) => {
                    self.ready_deadline = None;
                    self.not_ready();
                }
                _ = sleep_until_opt(self.stop_deadline) => {
                    self.stop_deadline = None;
                    if let Some(r) = &self.run {
                        tracing::warn!(component = %self.cfg.name, "grace period over; SIGKILL to every member");
                        signal_members(r.pid, self.marker.as_deref(), &r.members, Signal::SIGKILL);
                    }
                }
                _ = sleep_until_opt(self.backoff_until) => {
                    self.backoff_until = None;
                    self.st.restart_count += 1;
                    let _ = self.start_process();
                }
            }
        }
        // Every handle is gone: leave nothing running behind.
        if let Some(r) = self.run.take() {
            signal_members(r.pid, self.marker.as_deref(), &r.members, Signal::SIGKILL);
        }
    }

    fn publish(&mut self) {
        if let Some(o) = &self.observer {
            o(&self.st);
        }
        self.status_tx.send_replace(self.st.clone());
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Start(reply) => {
                let res = if self.run.is_some() {
                    Ok(())
                } else {
                    self.backoff_until = None;
                    self.crashes.clear();
                    self.consecutive = 0;
                    self.start_process()
                };
                let _ = reply.send(res);
            }
            Cmd::Stop(reply) => self.request_stop(reply, self.cfg.stop.signal),
            Cmd::Kill(reply) => self.request_stop(reply, Signal::SIGKILL),
            Cmd::Restart(reply) => {
                if let Some(r) = self.run.as_mut() {
                    // A user's restart wins over the launcher ending it as a failure.
                    r.ending = None;
                }
                if self.run.is_some() {
                    self.restart_pending = true;
                    self.restart_waiters.push(reply);
                    if self.st.state != State::Stopping {
                        self.begin_stop(self.cfg.stop.signal);
                    }
                } else {
                    self.backoff_until = None;
                    let _ = reply.send(self.start_process());
                }
            }
            Cmd::Input(bytes, reply) => {
                // Starting too: a program may ask something (a confirmation prompt)
                // before it is ready.
                let res = match &self.run {
                    Some(r) if matches!(self.st.state, State::Running | State::Starting) => {
                        r.input.send(bytes).map_err(|_| SupervisorError::NotRunning)
                    }
                    _ => Err(SupervisorError::NotRunning),
                };
                let _ = reply.send(res);
            }
            Cmd::Resize(rows, cols, reply) => {
                self.size = (rows.max(1), cols.max(1));
                if let Some(r) = &self.run {
                    let _ = r.master.resize(PtySize {
                        rows: self.size.0,
                        cols: self.size.1,
                        pixel_width: 0,
                        pixel_height: 0,
                    });
                }
                let _ = reply.send(Ok(()));
            }
            Cmd::Queue(reply) => {
                if self.run.is_none() && self.st.state != State::Starting {
                    self.backoff_until = None;
                    self.st.state = State::Starting;
                    self.st.failure = None;
                    self.publish();
                }
                let _ = reply.send(Ok(()));
            }
            Cmd::NotStarted(reason, reply) => {
                if self.run.is_none() {
                    self.backoff_until = None;
                    self.st.state = State::Failed;
                    self.st.failure = Some(Failure {
                        reason,
                        last_lines: self.logs.tail_plain(50),
                    });
                    self.publish();
                }
                let _ = reply.send(Ok(()));
            }
        }
    }

    /// The probe saw the ready line and open ports of the current process.
    fn on_ready(&mut self, pid: u32) {
        let Some(r) = self.run.as_mut().filter(|r| r.pid == pid) else {
            return;
        };
        r.probe = None;
        if self.st.state != State::Starting {
            return;
        }
        r.ready = true;
        self.ready_deadline = None;
        self.st.state = State::Running;
        self.publish();
        tracing::info!(component = %self.cfg.name, pid, "ready");
    }

    /// The ready timeout passed: say so in the component's own log and end the process as
    /// a failure, which the restart policy then handles like a crash. Staying `starting`
    /// forever would hide a MaiBot that hangs in its start-up behind a hopeful state.
    fn not_ready(&mut self) {
        let secs = self.cfg.ready.timeout.as_secs();
        let Some(r) = self.run.as_mut() else { return };
        if self.st.state != State::Starting {
            return;
        }
        r.stop_probe();
        let reason = format!("not ready after {secs} s");
        r.ending = Some(reason.clone());
        let line = format!(
            "[mailauncher] {}: {reason} (waiting for {}); stopping it as a failure\r\n",
            self.cfg.name,
            self.waited_for()
        );
        self.logs.publish([line.into_bytes()]);
        tracing::warn!(component = %self.cfg.name, "{reason}; stopping it as a failure");
        self.begin_stop(self.cfg.stop.signal);
    }

    /// What readiness waits for, in words, e.g. `a line with "Adapter 启动成功" and port 8095`.
    fn waited_for(&self) -> String {
        let ready = &self.cfg.ready;
        let mut parts = Vec::new();
        if !ready.lines.is_empty() {
            let lines: Vec<String> = ready.lines.iter().map(|l| format!("{l:?}")).collect();
            parts.push(format!("a line with {}", lines.join(" or ")));
        }
        if !ready.ports.is_empty() {
            let ports: Vec<String> = ready.ports.iter().map(|p| p.to_string()).collect();
            parts.push(format!("port {} to accept connections", ports.join(", ")));
        }
        parts.join(" and ")
    }

    fn request_stop(&mut self, reply: Reply, sig: Signal) {
        if let Some(r) = self.run.as_mut() {
            // A user's stop wins over the launcher ending it as a failure.
            r.ending = None;
        }
        if self.run.is_none() {
            // Nothing to stop; a pending restart, a queued start or a failure is cleared by
            // a user's stop.
            self.backoff_until = None;
            if matches!(
                self.st.state,
                State::Backoff | State::Failed | State::Starting
            ) {
                self.st.state = State::Stopped;
                self.publish();
            }
            let _ = reply.send(Ok(()));
            return;
        }
        self.stop_waiters.push(reply);
        self.begin_stop(sig);
    }

    fn begin_stop(&mut self, sig: Signal) {
        let Some(r) = self.run.as_mut() else { return };
        r.stop_probe();
        self.ready_deadline = None;
        // Blocking `/proc` reads on the actor: a few milliseconds, once per stop.
        signal_members(r.pid, self.marker.as_deref(), &r.members, sig);
        self.stop_deadline = if sig == Signal::SIGKILL {
            None
        } else {
            Some(Instant::now() + self.cfg.stop.grace)
        };
        if self.st.state != State::Stopping {
            self.st.state = State::Stopping;
            self.publish();
        }
    }

    fn start_process(&mut self) -> Result<(), SupervisorError> {
        self.st.state = State::Starting;
        self.st.failure = None;
        self.publish();
        let mut spec = self.cfg.spec.clone();
        spec.size = self.size;
        let spawned = match members::spawn_leader(|| {
            spawn(&spec).map(|s| {
                let pid = s.pid;
                (s, pid)
            })
        }) {
            Ok(s) => s,
            Err(e) => {
                let reason = format!("could not start {:?}: {e}", spec.argv);
                self.st.state = State::Failed;
                self.st.failure = Some(Failure {
                    reason: reason.clone(),
                    last_lines: self.logs.tail_plain(50),
                });
                self.publish();
                return Err(SupervisorError::Spawn(reason));
            }
        };
        let pid = spawned.pid;
        let immediate = self.cfg.ready.immediate();
        // The ready line is looked for on the drain's line path, and only until it is seen.
        let (watch, line_rx) = if self.cfg.ready.lines.is_empty() {
            (None, None)
        } else {
            let (tx, rx) = oneshot::channel();
            let watch = LineWatch::new(self.cfg.ready.lines.clone(), move || {
                let _ = tx.send(());
            });
            (Some(watch), Some(rx))
        };
        let drain = spawn_reader_watching(
            spawned.reader,
            self.logs.clone(),
            self.cfg.flush_after,
            &self.cfg.name,
            watch,
        );
        let (input_tx, input_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let mut writer = spawned.writer;
        let _ = std::thread::Builder::new()
            .name(format!("{}-input", self.cfg.name))
            .spawn(move || {
                use std::io::Write;
                while let Ok(bytes) = input_rx.recv() {
                    if writer
                        .write_all(&bytes)
                        .and_then(|_| writer.flush())
                        .is_err()
                    {
                        break;
                    }
                }
            });
        let exit_tx = self.exit_tx.clone();
        let mut child = spawned.child;
        let known = Arc::new(Mutex::new(Vec::new()));
        let waiter_known = known.clone();
        let marker = self.marker.clone();
        let waiter = std::thread::Builder::new()
            .name(format!("{}-wait", self.cfg.name))
            .spawn(move || {
                use std::os::unix::process::ExitStatusExt;
                let plain: &mut dyn portable_pty::Child = &mut *child;
                let (code, signal) = match plain.downcast_mut::<std::process::Child>() {
                    Some(c) => match c.wait() {
                        Ok(s) => (s.code(), s.signal()),
                        Err(_) => (None, None),
                    },
                    None => match plain.wait() {
                        Ok(s) => (Some(s.exit_code() as i32), None),
                        Err(_) => (None, None),
                    },
                };
                members::leader_reaped(pid);
                // Whatever the leader left behind dies with it (its group, and every member
                // by marker or as found before), so nothing holds the terminal open and no
                // descendant outlives the component.
                signal_members(pid, marker.as_deref(), &waiter_known, Signal::SIGKILL);
                // Let the drain publish the last bytes before the exit is reported.
                if let Ok(drain) = drain {
                    let deadline = std::time::Instant::now() + Duration::from_secs(1);
                    while !drain.is_finished() && std::time::Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                let _ = exit_tx.send(Exited { pid, code, signal });
            });
        if waiter.is_err() {
            signal_members(pid, self.marker.as_deref(), &known, Signal::SIGKILL);
        }
        let probe = (!immediate).then(|| {
            self.ready_deadline = Some(Instant::now() + self.cfg.ready.timeout);
            tokio::spawn(probe_ready(
                pid,
                line_rx,
                self.cfg.ready.ports.clone(),
                self.ready_tx.clone(),
            ))
            .abort_handle()
        });
        self.run = Some(Running {
            pid,
            members: known,
            master: spawned.master,
            input: input_tx,
            started: Instant::now(),
            ready: immediate,
            probe,
            ending: None,
        });
        self.st.state = if immediate {
            State::Running
        } else {
            State::Starting
        };
        self.st.pid = Some(pid);
        self.st.start_count += 1;
        self.st.started_at = Some(chrono::Utc::now());
        self.publish();
        tracing::info!(component = %self.cfg.name, pid, "started");
        Ok(())
    }

    fn on_exit(&mut self, exit: Exited) {
        let Some(mut run) = self.run.take_if(|r| r.pid == exit.pid) else {
            return;
        };
        run.stop_probe();
        self.ready_deadline = None;
        let ran = run.started.elapsed();
        let ending = run.ending.take();
        // Its own restart request, once it was up: the launcher does what MaiBot's runner
        // would. Before ready it is a crash, so a program that exits so at once cannot
        // loop without the backoff and give-up.
        let asked_restart = ending.is_none()
            && run.ready
            && self.st.state != State::Stopping
            && exit.signal.is_none()
            && exit.code.is_some()
            && exit.code == self.cfg.restart_exit_code;
        let requested = (self.st.state == State::Stopping && ending.is_none()) || asked_restart;
        let info = ExitInfo {
            code: exit.code,
            signal: exit.signal,
            at: chrono::Utc::now(),
            requested,
            reason: if asked_restart {
                Some("restart requested by the program".into())
            } else {
                ending
            },
        };
        self.st.total_runtime += ran;
        self.st.pid = None;
        self.st.started_at = None;
        self.stop_deadline = None;
        tracing::info!(component = %self.cfg.name, pid = exit.pid, how = %info.describe(), requested, "exited");
        self.st.last_exit = Some(info.clone());

        if asked_restart {
            self.st.restart_count += 1;
            let _ = self.start_process();
            return;
        }
        if requested {
            self.st.state = State::Stopped;
            self.publish();
            for w in self.stop_waiters.drain(..) {
                let _ = w.send(Ok(()));
            }
            if std::mem::take(&mut self.restart_pending) {
                let res = self.start_process();
                for w in self.restart_waiters.drain(..) {
                    let _ = w.send(res.clone());
                }
            }
            return;
        }

        // A crash: it exited without passing through `stopping`. Ended by the launcher as
        // a failure (not ready in time) is a failure even when it then exits cleanly.
        self.st.crash_count += 1;
        let clean = info.success() && info.reason.is_none();
        let policy: &RestartPolicy = &self.cfg.restart;
        if ran >= policy.reset_after {
            self.consecutive = 0;
        }
        let restart = match policy.mode {
            RestartMode::Never => false,
            RestartMode::OnFailure => !clean,
            RestartMode::Always => true,
        };
        if !restart {
            self.st.state = if clean { State::Stopped } else { State::Failed };
            if !clean {
                self.st.failure = Some(Failure {
                    reason: info.describe(),
                    last_lines: self.logs.tail_plain(50),
                });
            }
            self.publish();
            return;
        }
        let now = Instant::now();
        self.crashes.push_back(now);
        if let Some((max, window)) = policy.give_up {
            while self
                .crashes
                .front()
                .is_some_and(|t| now.duration_since(*t) > window)
            {
                self.crashes.pop_front();
            }
            if self.crashes.len() as u32 >= max {
                self.st.state = State::Failed;
                self.st.failure = Some(Failure {
                    reason: format!(
                        "crashed {} times within {} s; last: {}",
                        self.crashes.len(),
                        window.as_secs(),
                        info.describe()
                    ),
                    last_lines: self.logs.tail_plain(50),
                });
                self.publish();
                return;
            }
        }
        let factor = 2u32.saturating_pow(self.consecutive.min(16));
        let delay = policy
            .backoff_initial
            .saturating_mul(factor)
            .min(policy.backoff_max);
        self.consecutive += 1;
        self.backoff_until = Some(now + delay);
        self.st.state = State::Backoff;
        self.publish();
    }
}
