//! Host and per-instance metrics, sampled in the background.
//!
//! Requests never measure anything: a sampler task refreshes sysinfo every interval (on a
//! blocking thread) and publishes an immutable snapshot; handlers read the latest one. CPU
//! percentages need two readings, so the sampler keeps its `System` across ticks.

use crate::supervisor::procfs;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use sysinfo::{
    CpuRefreshKind, Disks, MemoryRefreshKind, Networks, Pid, ProcessRefreshKind, ProcessesToUpdate,
    System,
};

/// How often and how long to sample.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Time between samples.
    pub interval: Duration,
    /// How much per-instance history to keep.
    pub history: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            history: Duration::from_secs(600),
        }
    }
}

/// Memory in bytes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Memory {
    /// Installed memory.
    pub total: u64,
    /// In use.
    pub used: u64,
    /// Available to new processes.
    pub available: u64,
    /// Not used at all.
    pub free: u64,
}

/// One mounted filesystem.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiskUsage {
    /// Mount point.
    pub mount_point: PathBuf,
    /// Size in bytes.
    pub total: u64,
    /// Free bytes.
    pub available: u64,
}

/// Cumulative counters of one network interface.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// Bytes sent since boot.
    pub bytes_sent: u64,
    /// Bytes received since boot.
    pub bytes_recv: u64,
    /// Packets sent since boot.
    pub packets_sent: u64,
    /// Packets received since boot.
    pub packets_recv: u64,
    /// Receive errors.
    pub errin: u64,
    /// Transmit errors.
    pub errout: u64,
}

/// One host sample.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostSample {
    /// When it was taken.
    pub at: Option<DateTime<Utc>>,
    /// Whole-machine CPU usage, 0–100.
    pub cpu_usage_percent: f32,
    /// CPU model.
    pub cpu_model: String,
    /// Physical cores (0 when unknown).
    pub physical_cores: usize,
    /// Logical CPUs.
    pub logical_cpus: usize,
    /// Memory.
    pub memory: Memory,
    /// Mounted filesystems.
    pub disks: Vec<DiskUsage>,
    /// Bytes/s sent over the counted interfaces since the previous sample.
    pub network_up: f64,
    /// Bytes/s received over the counted interfaces since the previous sample.
    pub network_down: f64,
    /// Counted interfaces (loopback and virtual ones excluded) with cumulative counters.
    pub interfaces: Vec<Interface>,
    /// OS name and version.
    pub os: String,
    /// Kernel version.
    pub kernel: String,
    /// Host name.
    pub hostname: String,
    /// CPU architecture.
    pub arch: String,
}

impl HostSample {
    /// The filesystem holding `path` (longest mount-point prefix).
    pub fn disk_of(&self, path: &Path) -> Option<&DiskUsage> {
        self.disks
            .iter()
            .filter(|d| path.starts_with(&d.mount_point))
            .max_by_key(|d| d.mount_point.as_os_str().len())
    }
}

/// Resource use of one process tree (or the sum of several).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct TreeUsage {
    /// CPU use in percent of one core (may exceed 100 on several cores).
    pub cpu_percent: f32,
    /// Resident memory in bytes.
    pub rss_bytes: u64,
    /// Threads over all processes.
    pub threads: u64,
    /// Processes in the tree.
    pub processes: usize,
}

impl TreeUsage {
    fn add(&mut self, o: &TreeUsage) {
        self.cpu_percent += o.cpu_percent;
        self.rss_bytes += o.rss_bytes;
        self.threads += o.threads;
        self.processes += o.processes;
    }
}

/// One instance's usage at one time.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InstanceSample {
    /// When it was taken.
    pub at: Option<DateTime<Utc>>,
    /// Sum over the components.
    pub total: TreeUsage,
    /// Per component kind.
    pub components: HashMap<String, TreeUsage>,
}

/// A running component the sampler should measure: `(instance id, component kind, leader pid)`.
pub type Tracked = (String, String, u32);

/// Owns the sysinfo state; one `sample` call per tick, on a blocking thread.
#[derive(Debug)]
pub struct Sampler {
    sys: System,
    networks: Networks,
    disks: Disks,
    last_net: Option<(Instant, u64, u64)>,
    static_info: (String, String, String, String, usize),
}

fn counted_interface(name: &str) -> bool {
    // As the Python launcher did: loopback and virtual bridges are not the user's traffic.
    !(name == "lo" || name.starts_with("vir") || name.starts_with("veth") || name == "docker0")
}

impl Sampler {
    /// Takes the first readings (CPU usage becomes meaningful from the second sample on).
    pub fn new() -> Result<Self, crate::CoreError> {
        let err = |e: sysinfo::Error| crate::CoreError::Io(format!("sysinfo: {e}"));
        let mut sys = System::new().map_err(err)?;
        sys.refresh_cpu_list(CpuRefreshKind::nothing().with_usage());
        let networks = Networks::new_with_refreshed_list().map_err(err)?;
        let disks = Disks::new_with_refreshed_list().map_err(err)?;
        let static_info = (
            System::long_os_version().unwrap_or_default(),
            System::kernel_version().unwrap_or_default(),
            System::host_name().unwrap_or_default(),
            System::cpu_arch(),
            System::physical_core_count().unwrap_or(0),
        );
        Ok(Self {
            sys,
            networks,
            disks,
            last_net: None,
            static_info,
        })
    }

    /// Refreshes everything and measures the tracked process trees.
    pub fn sample(&mut self, tracked: &[Tracked]) -> (HostSample, HashMap<String, InstanceSample>) {
        let now = Utc::now();
        self.sys.refresh_cpu_usage();
        self.sys
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        self.networks.refresh(true);
        self.disks.refresh(true);

        let (mut up_total, mut down_total) = (0u64, 0u64);
        let mut interfaces = Vec::new();
        for (name, data) in self.networks.iter() {
            let name = name.to_string_lossy().into_owned();
            if !counted_interface(&name) {
                continue;
            }
            up_total += data.total_transmitted();
            down_total += data.total_received();
            interfaces.push(Interface {
                name,
                bytes_sent: data.total_transmitted(),
                bytes_recv: data.total_received(),
                packets_sent: data.total_packets_transmitted(),
                packets_recv: data.total_packets_received(),
                errin: data.total_errors_on_received(),
                errout: data.total_errors_on_transmitted(),
            });
        }
        interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        let t = Instant::now();
        let (network_up, network_down) = match self.last_net {
            Some((t0, up0, down0)) => {
                let secs = t.duration_since(t0).as_secs_f64().max(1e-3);
                // Counters can go backwards when an interface disappears: never report a
                // negative rate.
                (
                    up_total.saturating_sub(up0) as f64 / secs,
                    down_total.saturating_sub(down0) as f64 / secs,
                )
            }
            None => (0.0, 0.0),
        };
        self.last_net = Some((t, up_total, down_total));

        let cpus = self.sys.cpus();
        let (os, kernel, hostname, arch, physical) = self.static_info.clone();
        let host = HostSample {
            at: Some(now),
            cpu_usage_percent: self.sys.global_cpu_usage(),
            cpu_model: cpus
                .first()
                .map(|c| c.brand().trim().to_owned())
                .unwrap_or_default(),
            physical_cores: physical,
            logical_cpus: cpus.len(),
            memory: Memory {
                total: self.sys.total_memory(),
                used: self.sys.used_memory(),
                available: self.sys.available_memory(),
                free: self.sys.free_memory(),
            },
            disks: self
                .disks
                .iter()
                .map(|d| DiskUsage {
                    mount_point: d.mount_point().to_path_buf(),
                    total: d.total_space(),
                    available: d.available_space(),
                })
                .collect(),
            network_up,
            network_down,
            interfaces,
            os,
            kernel,
            hostname,
            arch,
        };
        (host, self.sample_trees(tracked, now))
    }

    fn sample_trees(
        &mut self,
        tracked: &[Tracked],
        now: DateTime<Utc>,
    ) -> HashMap<String, InstanceSample> {
        let leaders: Vec<u32> = tracked.iter().map(|t| t.2).collect();
        let members = procfs::session_members(&leaders);
        let pids: Vec<Pid> = members.iter().map(|m| Pid::from_u32(m.pid)).collect();
        // Only the tracked trees are refreshed, never the whole process table.
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&pids),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        let live: HashSet<Pid> = pids.iter().copied().collect();
        let mut out: HashMap<String, InstanceSample> = HashMap::new();
        for (instance, kind, leader) in tracked {
            let mut usage = TreeUsage::default();
            for m in members.iter().filter(|m| m.session == *leader) {
                let pid = Pid::from_u32(m.pid);
                if let Some(p) = self.sys.process(pid).filter(|_| live.contains(&pid)) {
                    usage.cpu_percent += p.cpu_usage();
                    usage.rss_bytes += p.memory();
                }
                usage.threads += m.threads;
                usage.processes += 1;
            }
            let entry = out
                .entry(instance.clone())
                .or_insert_with(|| InstanceSample {
                    at: Some(now),
                    ..Default::default()
                });
            entry.total.add(&usage);
            entry.components.insert(kind.clone(), usage);
        }
        out
    }
}

#[derive(Debug, Default)]
struct Snapshot {
    host: Arc<HostSample>,
    instances: HashMap<String, VecDeque<Arc<InstanceSample>>>,
    /// Samples published so far (a cache key for views built from them).
    published: u64,
}

/// The latest samples and a short per-instance history, shared with request handlers.
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<RwLock<Snapshot>>,
    cfg: MetricsConfig,
}

impl Metrics {
    /// An empty store; nothing is sampled until [`Metrics::run`] is spawned.
    pub fn new(cfg: MetricsConfig) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Snapshot::default())),
            cfg,
        }
    }

    /// The sampling interval.
    pub fn interval(&self) -> Duration {
        self.cfg.interval
    }

    /// How many samples were published: changes exactly when the latest sample does.
    pub fn generation(&self) -> u64 {
        self.inner.read().map(|s| s.published).unwrap_or_default()
    }

    /// The latest host sample (an empty one before the first tick).
    pub fn host(&self) -> Arc<HostSample> {
        self.inner
            .read()
            .map(|s| s.host.clone())
            .unwrap_or_default()
    }

    /// The latest sample of one instance, when it has running components.
    pub fn instance(&self, id: &str) -> Option<Arc<InstanceSample>> {
        let s = self.inner.read().ok()?;
        s.instances.get(id)?.back().cloned()
    }

    /// The kept history of one instance, oldest first.
    pub fn history(&self, id: &str) -> Vec<Arc<InstanceSample>> {
        self.inner
            .read()
            .ok()
            .and_then(|s| s.instances.get(id).map(|h| h.iter().cloned().collect()))
            .unwrap_or_default()
    }

    /// Stores one tick's results.
    pub fn publish(&self, host: HostSample, instances: HashMap<String, InstanceSample>) {
        let keep = (self.cfg.history.as_secs_f64() / self.cfg.interval.as_secs_f64().max(0.001))
            .ceil()
            .max(1.0) as usize;
        let Ok(mut s) = self.inner.write() else {
            return;
        };
        s.host = Arc::new(host);
        s.published += 1;
        // Instances that stopped keep their history (for the chart) but get no new points.
        for (id, sample) in instances {
            let h = s.instances.entry(id).or_default();
            h.push_back(Arc::new(sample));
            while h.len() > keep {
                h.pop_front();
            }
        }
    }

    /// Forgets a deleted instance.
    pub fn forget(&self, id: &str) {
        if let Ok(mut s) = self.inner.write() {
            s.instances.remove(id);
        }
    }

    /// The sampling loop: every interval, ask `tracked` for the running components, sample
    /// on a blocking thread, publish. Ends when `tracked` returns `None`.
    pub async fn run<F, Fut>(self, mut sampler: Sampler, mut tracked: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<Vec<Tracked>>>,
    {
        let mut tick = tokio::time::interval(self.cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(list) = tracked().await else {
                return;
            };
            let res = tokio::task::spawn_blocking(move || {
                let r = sampler.sample(&list);
                (sampler, r)
            })
            .await;
            match res {
                Ok((s, (host, inst))) => {
                    sampler = s;
                    self.publish(host, inst);
                }
                Err(e) => {
                    tracing::error!(error = %e, "metrics sampler panicked; sampling stops");
                    return;
                }
            }
        }
    }
}
