//! Live monitoring against a real Prometheus: flotilla serves metrics while a small run
//! goes on, Prometheus scrapes it, and every expression of the Grafana dashboard must
//! return data; counters must agree with summary.json.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when dropped, so a failing assertion leaves no process behind.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Long enough (over ten wall seconds here) for Prometheus to scrape the run many times
/// while it goes on, which `rate()` panels need, even once its scrape loop starts late.
fn scenario(dir: &Path) -> PathBuf {
    common::small_scenario(dir, "monitored", common::FEDAVG, 400, 2, "F32")
}

fn get(url: &str) -> Option<String> {
    ureq::get(url).call().ok()?.body_mut().read_to_string().ok()
}

/// The dashboard's expressions, with its `$scenario` variable set to match everything.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("monitoring/grafana/dashboards/flotilla.json"))
        .unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut queries = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap().replace("$scenario", ".+");
            queries.push((panel["title"].as_str().unwrap().to_string(), expr));
        }
    }
    queries
}

fn query(prom: u16, expr: &str) -> Vec<serde_json::Value> {
    api(prom, &format!("query?query={}", urlencode(expr)))
}

/// Every finite value `expr` took between `start` and `end` (Unix seconds), 1 s apart.
fn finite_values(prom: u16, expr: &str, start: f64, end: f64) -> Vec<f64> {
    let path = format!(
        "query_range?query={}&start={start:.3}&end={end:.3}&step=1",
        urlencode(expr)
    );
    api(prom, &path)
        .iter()
        .flat_map(|series| series["values"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v[1].as_str()?.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .collect()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn api(prom: u16, path: &str) -> Vec<serde_json::Value> {
    let url = format!("http://127.0.0.1:{prom}/api/v1/{path}");
    let expr = path;
    let body = get(&url).unwrap_or_else(|| panic!("query failed: {expr}"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "{expr}: {body}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn dashboard_queries_return_data_from_a_real_prometheus() {
    // Never passes without its subject: `.ci/run` installs Prometheus.
    let prometheus = which_prometheus().expect(
        "no `prometheus` binary on PATH: install it (Debian: apt-get install prometheus), \
         as .ci/run does",
    );
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let (metrics_port, prom_port) = (free_port(), free_port());
    let config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 500ms\nscrape_configs:\n  - job_name: flotilla\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .unwrap();
    let _prom = Guard(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let ready = format!("http://127.0.0.1:{prom_port}/-/ready");
    assert!(
        wait_until(Duration::from_secs(30), || get(&ready).is_some()),
        "prometheus not ready"
    );

    let out = tmp.path().join("run");
    let run_start = unix_now();
    let _flotilla = Guard(
        Command::new(env!("CARGO_BIN_EXE_flotilla"))
            .args(["run", "-q", "--linger", "60s"])
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .arg("--out")
            .arg(&out)
            .arg(scenario(tmp.path()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start flotilla"),
    );
    // The run is over once its summary is written; it then lingers, still serving.
    let summary_file = out.join("summary.json");
    assert!(
        wait_until(Duration::from_secs(120), || summary_file.exists()),
        "run did not finish"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_file).unwrap()).unwrap();
    // Let Prometheus scrape the final values.
    let bytes_up = summary["bytes_up"].as_f64().unwrap();
    let scraped = || {
        query(prom_port, "sum(flotilla_bytes_up_total)")
            .first()
            .and_then(|r| r["value"][1].as_str()?.parse::<f64>().ok())
    };
    assert!(
        wait_until(Duration::from_secs(20), || scraped() == Some(bytes_up)),
        "bytes up: Prometheus has {:?}, summary.json {bytes_up}",
        scraped()
    );
    // rate() needs two samples in its window: wait for a few scrapes of the final values.
    let samples = || {
        query(prom_port, "min(count_over_time(flotilla_events_total[1m]))")
            .first()
            .and_then(|r| r["value"][1].as_str()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        wait_until(Duration::from_secs(20), || samples() >= 3.0),
        "too few scrapes"
    );

    // Every dashboard expression had real (finite) values while the run went on.
    let run_end = unix_now();
    for (panel, expr) in dashboard_queries() {
        let values = finite_values(prom_port, &expr, run_start, run_end);
        assert!(!values.is_empty(), "panel {panel:?}: no data for {expr}");
        let max = values.iter().copied().fold(f64::MIN, f64::max);
        eprintln!("{panel} | `{expr}` | {} points, max {max:.4}", values.len());
    }

    // Counters agree with the run's own accounting.
    for (expr, key) in [
        ("sum(flotilla_bytes_down_total)", "bytes_down"),
        ("sum(flotilla_updates_applied_total)", "updates_applied"),
        ("sum(flotilla_updates_received_total)", "updates_received"),
        ("sum(flotilla_messages_lost_total)", "messages_lost"),
        ("sum(flotilla_client_dropouts_total)", "dropouts"),
        ("max(flotilla_model_version)", "model_version"),
    ] {
        let got: f64 = query(prom_port, expr)[0]["value"][1]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            got,
            summary[key].as_f64().unwrap(),
            "{expr} vs summary.json {key}"
        );
    }
    let labels = query(prom_port, "flotilla_sim_seconds");
    assert_eq!(labels[0]["metric"]["scenario"], "monitored");
    assert_eq!(labels[0]["metric"]["strategy"], "fedavg");
    eprintln!(
        "monitoring test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn which_prometheus() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
}

#[test]
fn a_busy_metrics_port_is_a_clear_error_before_the_run() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["run", "-q", "--metrics-addr"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--out")
        .arg(tmp.path().join("run"))
        .arg(scenario(tmp.path()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!tmp.path().join("run").exists(), "nothing should have run");
}
