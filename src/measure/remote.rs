//! The remote pool's measurement: a whole run whose jobs go through a NATS server of the
//! measurement's own to local `flotilla worker` processes, with what crossed the server.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Figures, MeasureError, Traffic};
use crate::report::{peak_rss_bytes, peak_rss_bytes_of};

/// How long a server or a worker may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the measurement's NATS server cannot be started or read.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The OS hands out no free loopback port.
    #[error("no free loopback port")]
    Port(#[source] std::io::Error),
    /// `nats-server` cannot be started.
    #[error("cannot start nats-server; install it (Debian: apt-get install nats-server)")]
    Start(#[source] std::io::Error),
    /// It did not take connections in time.
    #[error("nats-server did not listen on {0} in time")]
    Late(String),
    /// Its monitoring endpoint did not answer.
    #[error("{url}")]
    Monitoring {
        /// The page asked for.
        url: String,
        /// What the HTTP client said.
        source: ureq::Error,
    },
    /// Its monitoring endpoint's answer is not JSON.
    #[error("{url}: not JSON")]
    Json {
        /// The page asked for.
        url: String,
        /// What the parser said.
        source: serde_json::Error,
    },
    /// A figure is missing from its monitoring pages.
    #[error("nats-server's monitoring has no {0}")]
    Missing(String),
}

/// A NATS server with JetStream on free loopback ports, its store in a directory of its
/// own; stopped, and its store removed, when dropped.
pub struct LocalNats {
    child: Child,
    url: String,
    monitor: u16,
    store: PathBuf,
}

impl LocalNats {
    /// Starts `nats-server` from the `PATH` and waits until it takes connections.
    pub fn start() -> Result<Self, NatsError> {
        let (port, monitor) = (free_port()?, free_port()?);
        let store =
            std::env::temp_dir().join(format!("flotilla-nats-{}-{port}", std::process::id()));
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", &monitor.to_string(), "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(NatsError::Start)?;
        let nats = Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            monitor,
            store,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > START_TIMEOUT {
                return Err(NatsError::Late(nats.url.clone()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(nats)
    }

    /// The URL clients connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory JetStream keeps its streams in.
    pub fn store(&self) -> &Path {
        &self.store
    }

    /// Messages and bytes through the server so far, both ways, from its monitoring
    /// endpoint.
    pub fn traffic(&self) -> Result<Traffic, NatsError> {
        let varz = self.monitoring("varz")?;
        let count = |field: &str| {
            varz[field]
                .as_u64()
                .ok_or_else(|| NatsError::Missing(format!("/varz {field}")))
        };
        Ok(Traffic {
            messages: count("in_msgs")? + count("out_msgs")?,
            bytes: count("in_bytes")? + count("out_bytes")?,
        })
    }

    /// Messages ever published to the JetStream stream `name`.
    pub fn published(&self, name: &str) -> Result<u64, NatsError> {
        let stream = self.stream("jsz?accounts=true&streams=true", name)?;
        stream["state"]["last_seq"]
            .as_u64()
            .ok_or_else(|| NatsError::Missing(format!("stream {name} last_seq")))
    }

    /// Deliveries of stream `name`'s messages that no consumer has acknowledged yet:
    /// jobs a worker holds and has not answered.
    pub fn unacknowledged(&self, name: &str) -> Result<u64, NatsError> {
        let stream = self.stream("jsz?accounts=true&streams=true&consumers=true", name)?;
        Ok(stream["consumer_detail"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["num_ack_pending"].as_u64())
            .sum())
    }

    /// Stream `name`'s details from the JetStream monitoring `page`.
    fn stream(&self, page: &str, name: &str) -> Result<Value, NatsError> {
        let mut jsz = self.monitoring(page)?;
        jsz["account_details"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .flat_map(|a| a["stream_detail"].as_array_mut().into_iter().flatten())
            .find(|s| s["name"] == name)
            .map(Value::take)
            .ok_or_else(|| NatsError::Missing(format!("stream {name}")))
    }

    /// Connections the server holds now.
    fn connections(&self) -> Result<u64, NatsError> {
        self.monitoring("varz")?["connections"]
            .as_u64()
            .ok_or_else(|| NatsError::Missing("/varz connections".into()))
    }

    fn monitoring(&self, page: &str) -> Result<Value, NatsError> {
        let url = format!("http://127.0.0.1:{}/{page}", self.monitor);
        let text = ureq::get(&url)
            .call()
            .and_then(|mut r| r.body_mut().read_to_string());
        match text {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|source| NatsError::Json { url, source })
            }
            Err(source) => Err(NatsError::Monitoring { url, source }),
        }
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// A free loopback port, as the OS hands one out.
fn free_port() -> Result<u16, NatsError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(NatsError::Port)
}

/// `flotilla worker` processes of this executable, killed when dropped.
struct Workers(Vec<Child>);

impl Workers {
    /// `count` workers of one thread each on `nats`, connected once this returns.
    fn start(nats: &LocalNats, count: usize) -> Result<Self, MeasureError> {
        let exe = std::env::current_exe().map_err(MeasureError::Executable)?;
        let before = nats.connections()?;
        let mut workers = Self(Vec::with_capacity(count));
        for i in 0..count {
            let child = Command::new(&exe)
                .args(["worker", "--nats", nats.url(), "--threads", "1"])
                .args(["--name", &format!("bench-{i}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(MeasureError::Worker)?;
            workers.0.push(child);
        }
        let started = Instant::now();
        while nats.connections()? < before + count as u64 {
            if started.elapsed() > START_TIMEOUT {
                return Err(MeasureError::WorkersLate);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(workers)
    }

    /// Their peak resident memory, summed.
    fn peak_rss_bytes(&self) -> u64 {
        self.0.iter().map(|c| peak_rss_bytes_of(c.id())).sum()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A whole run of `scenario_file` with the overrides `set`, its jobs answered by `workers`
/// local worker processes of one thread each over a NATS server started for it. The wall
/// time is the run's, from its start (the workers already connected and idle) to its end,
/// so it holds what the workers spend building the run's model and data.
pub(super) fn measure(
    workers: usize,
    set: &[String],
    scenario_file: &Path,
) -> Result<Figures, MeasureError> {
    let nats = LocalNats::start()?;
    let mut set = set.to_vec();
    set.push(format!(r#"pool.remote=Nats(url: "{}")"#, nats.url()));
    let loaded = super::overridden(scenario_file, &set)?;
    let pool = Workers::start(&nats, workers)?;
    let before = nats.traffic()?;
    let (result, wall_seconds) = super::timed_run(&loaded)?;
    let after = nats.traffic()?;
    let jobs = nats.published(crate::pool::remote::JOBS)?;
    Ok(Figures {
        wall_seconds,
        work: result.summary.rounds as f64,
        peak_rss_bytes: peak_rss_bytes(),
        accuracy: result.summary.global_accuracy,
        remote: Some(super::RemoteFigures {
            jobs,
            traffic: Traffic {
                messages: after.messages - before.messages,
                bytes: after.bytes - before.bytes,
            },
            workers_peak_rss_bytes: pool.peak_rss_bytes(),
        }),
        ..Figures::default()
    })
}
