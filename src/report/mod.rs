//! What a run leaves behind: the resolved scenario, `summary.json`, `timeline.csv`,
//! `clients.csv`, `updates.csv`, `availability.csv`, `activity.csv`, for FL-TAC
//! `clusterings.csv`, and the report: `report.md` with its plots (PNG and SVG).

mod classes;
mod data;
mod figures;
pub(crate) mod plots;
mod stream;

pub use classes::ClassSummary;
pub use data::{ReadError, RunData};
pub use figures::{comparison_table, write_report};
pub(crate) use stream::Streams;

use std::path::Path;

use flotilla_actors::record::TimelineRow;
use flotilla_actors::{Records, SimOutcome, StopReason};
use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// Wall-clock figures, kept apart because they differ from run to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Wall {
    /// Wall seconds from start to finish.
    pub wall_seconds: f64,
    /// Events dispatched per wall second.
    pub events_per_second: f64,
    /// Simulated seconds per wall second.
    pub sim_speed: f64,
    /// The process's peak resident memory when the run ended (0 where unknown).
    #[serde(default)]
    pub peak_rss_bytes: u64,
}

/// The process's peak resident set size so far, from `/proc/self/status` (Linux); 0 where
/// it cannot be read.
pub fn peak_rss_bytes() -> u64 {
    status_bytes("self", "VmHWM:")
}

/// CPU seconds this process has used, user and system, all threads, from
/// `/proc/self/stat` (Linux, whose clock ticks are 1/100 s); `None` where it cannot be read.
pub(crate) fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command's name (in parentheses, which may hold spaces):
    // state is the 3rd field, utime and stime the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Process `pid`'s peak resident memory, in bytes (0 where the OS does not tell).
pub(crate) fn peak_rss_bytes_of(pid: u32) -> u64 {
    status_bytes(&pid.to_string(), "VmHWM:")
}

/// This process's resident memory now, in bytes (0 where the OS does not tell).
pub(crate) fn rss_bytes() -> u64 {
    status_bytes("self", "VmRSS:")
}

/// A `kB` line of `/proc/<process>/status`, in bytes.
fn status_bytes(process: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with(key))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0)
}

/// The run's headline figures; everything but `wall` is deterministic.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// The scenario's name.
    pub name: String,
    /// The seed the run used.
    pub seed: u64,
    /// Why the run ended.
    pub stop_reason: StopReason,
    /// Why it ended early, in words, when it stalled or diverged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_detail: Option<String>,
    /// Whether the user stopped it.
    pub interrupted: bool,
    /// Accuracy of the final global model on the central test set.
    pub global_accuracy: Option<f64>,
    /// Mean loss of the final global model on the central test set.
    pub global_loss: Option<f64>,
    /// Mean over clients of the final global model's accuracy on their own test split.
    pub local_accuracy: Option<f64>,
    /// 10th percentile over clients of that accuracy.
    pub local_accuracy_p10: Option<f64>,
    /// Mean over clients of their personalized model's accuracy on their own test split
    /// (the global model's when the scenario personalizes nothing).
    pub personalized_accuracy: Option<f64>,
    /// 10th percentile over clients of that accuracy.
    pub personalized_accuracy_p10: Option<f64>,
    /// Simulated seconds at the end.
    pub sim_seconds: f64,
    /// Rounds completed (synchronous algorithms).
    pub rounds: u32,
    /// Aggregations applied to the global model.
    pub model_version: u64,
    /// Simulated seconds to the first evaluation at or above `stop.target_accuracy`.
    pub time_to_target: Option<f64>,
    /// Updates that reached the server.
    pub updates_received: u64,
    /// Updates aggregated.
    pub updates_applied: u64,
    /// Updates received but not aggregated.
    pub updates_discarded: u64,
    /// Those, by reason.
    pub updates_discarded_by_reason: std::collections::BTreeMap<String, u64>,
    /// Staleness of the updates that reached the server (versions), nearest-rank quantiles.
    pub staleness: Staleness,
    /// Bytes sent up, every attempt.
    pub bytes_up: u64,
    /// Bytes sent down, every attempt.
    pub bytes_down: u64,
    /// Attempts to send an update.
    pub messages_up: u64,
    /// Attempts to send a model.
    pub messages_down: u64,
    /// Attempts lost.
    pub messages_lost: u64,
    /// Jobs and transfers lost to dropouts and devices going offline.
    pub dropouts: u64,
    /// Events the clock dispatched.
    pub events: u64,
    /// Trainable (and transmitted) parameters: adapter + head.
    pub adapter_params: usize,
    /// All parameters of the model, frozen backbone included.
    pub model_params: usize,
    /// Bytes of one encoded adapter on the wire.
    pub update_bytes: u64,
    /// Mean bytes sent up and down per round (model version for asynchronous algorithms).
    pub bytes_up_per_round: Option<f64>,
    /// Mean bytes sent down per round.
    pub bytes_down_per_round: Option<f64>,
    /// The final accuracy of the model serving each task, on the task's central test set.
    pub tasks: Vec<TaskAccuracy>,
    /// Purity of the final clustering of adapters against the true tasks (FL-TAC), and of
    /// every clustering in order.
    pub cluster_purity: Option<f64>,
    /// Purity of every clustering, in order.
    pub cluster_purity_history: Vec<f64>,
    /// Participation by device class, in the population's order.
    #[serde(default)]
    pub classes: Vec<ClassSummary>,
    /// The wall-clock figures, which differ from run to run.
    pub wall: Wall,
}

/// One task's final accuracy.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskAccuracy {
    /// The task's name.
    pub name: String,
    /// Its accuracy, when it was evaluated.
    pub accuracy: Option<f64>,
}

/// Quantiles of update staleness; `None` when no update arrived.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Staleness {
    /// Median.
    pub p50: Option<u64>,
    /// 90th percentile.
    pub p90: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
    /// Largest.
    pub max: Option<u64>,
    /// Updates by staleness: `histogram[s]` arrived `s` versions old.
    pub histogram: Vec<u64>,
}

impl Staleness {
    /// The quantiles of the updates counted in `histogram` (`histogram[s]` arrived `s`
    /// versions old).
    fn of(histogram: &[u64]) -> Self {
        let n: u64 = histogram.iter().sum();
        // The nearest-rank p-quantile: the value of the ceil(p n)-th smallest update.
        let q = |p: f64| {
            let rank = ((p * n as f64).ceil() as u64).max(1);
            let mut seen = 0;
            histogram.iter().enumerate().find_map(|(s, &k)| {
                seen += k;
                (seen >= rank).then_some(s as u64)
            })
        };
        let max = histogram.iter().rposition(|&k| k > 0).map(|s| s as u64);
        Staleness {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max,
            histogram: histogram[..max.map_or(0, |m| m as usize + 1)].to_vec(),
        }
    }
}

/// Model sizes reported beside the simulation's records.
pub struct ModelSize {
    /// Trainable (and transmitted) values: adapter and head.
    pub adapter_params: usize,
    /// Every value of the model, frozen backbone included.
    pub model_params: usize,
    /// Bytes of one encoded adapter on the wire.
    pub update_bytes: u64,
}

impl Summary {
    /// The summary of a run of `scenario` that ended as `outcome`.
    pub fn new(
        scenario: &Scenario,
        outcome: &SimOutcome,
        size: &ModelSize,
        tasks: &[String],
        wall_seconds: f64,
    ) -> Self {
        let r = &outcome.records;
        let last = r.timeline.last();
        let sim_seconds = outcome.clock.end.as_secs_f64();
        let rounds = r.rounds.max(r.model_version as u32);
        let per_round = |bytes: u64| (rounds > 0).then(|| bytes as f64 / rounds as f64);
        let time_to_target = scenario.stop.target_accuracy.and_then(|t| {
            r.timeline
                .iter()
                .find(|row| row.global_accuracy >= t)
                .map(|row| row.sim_seconds)
        });
        Summary {
            name: scenario.name.clone(),
            seed: scenario.seed,
            stop_reason: outcome.clock.reason,
            stop_detail: r.stop_detail.clone(),
            interrupted: outcome.clock.reason == StopReason::Interrupted,
            global_accuracy: last.map(|row| row.global_accuracy),
            global_loss: last.map(|row| row.global_loss),
            local_accuracy: last.and_then(|row| row.local_accuracy),
            local_accuracy_p10: last.and_then(|row| row.local_accuracy_p10),
            personalized_accuracy: last.and_then(|row| row.personalized_accuracy),
            personalized_accuracy_p10: last.and_then(|row| row.personalized_accuracy_p10),
            sim_seconds,
            rounds: r.rounds,
            model_version: r.model_version,
            time_to_target,
            updates_received: r.updates_received,
            updates_applied: r.updates_applied,
            updates_discarded: r.updates_discarded_total(),
            staleness: Staleness::of(&r.staleness),
            updates_discarded_by_reason: r
                .updates_discarded
                .iter()
                .map(|(k, v)| (format!("{k:?}").to_lowercase(), *v))
                .collect(),
            bytes_up: r.bytes_up,
            bytes_down: r.bytes_down,
            messages_up: r.messages_up,
            messages_down: r.messages_down,
            messages_lost: r.messages_lost,
            dropouts: r.dropouts,
            events: outcome.clock.events,
            adapter_params: size.adapter_params,
            model_params: size.model_params,
            update_bytes: size.update_bytes,
            bytes_up_per_round: per_round(r.bytes_up),
            bytes_down_per_round: per_round(r.bytes_down),
            tasks: tasks
                .iter()
                .enumerate()
                .map(|(t, name)| TaskAccuracy {
                    name: name.clone(),
                    accuracy: last.and_then(|row| row.task_accuracy.get(t).copied()),
                })
                .collect(),
            cluster_purity: r.clusterings.last().map(|c| c.purity),
            cluster_purity_history: r.clusterings.iter().map(|c| c.purity).collect(),
            classes: ClassSummary::of(&r.clients),
            wall: Wall {
                wall_seconds,
                events_per_second: outcome.clock.events as f64 / wall_seconds.max(1e-9),
                sim_speed: sim_seconds / wall_seconds.max(1e-9),
                peak_rss_bytes: peak_rss_bytes(),
            },
        }
    }
}

/// Writes the run directory's files at the end of the run (the rows that grow with it
/// went to their files on the way, see [`Streams`]).
pub(crate) fn write_run(
    dir: &Path,
    scenario: &Scenario,
    summary: &Summary,
    records: &Records,
    tasks: &[String],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let ron = ron::ser::to_string_pretty(scenario, ron::ser::PrettyConfig::default())
        .map_err(std::io::Error::other)?;
    std::fs::write(dir.join("scenario.ron"), ron + "\n")?;
    let json = serde_json::to_string_pretty(summary).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("summary.json"), json + "\n")?;
    write_timeline(&dir.join("timeline.csv"), &records.timeline, tasks)?;
    write_csv(&dir.join("clients.csv"), &records.clients)?;
    write_csv(&dir.join("activity.csv"), &records.activity)?;
    if !records.clusterings.is_empty() {
        let rows: Vec<ClusteringRow> = records
            .clusterings
            .iter()
            .map(|c| ClusteringRow {
                sim_seconds: c.sim_seconds,
                version: c.version,
                purity: c.purity,
                sizes: c
                    .sizes
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            })
            .collect();
        write_csv(&dir.join("clusterings.csv"), &rows)?;
    }
    Ok(())
}

/// One clustering, a row of `clusterings.csv`.
#[derive(Serialize)]
struct ClusteringRow {
    sim_seconds: f64,
    version: u64,
    purity: f64,
    /// Adapters per cluster, space-separated, by model index.
    sizes: String,
}

/// `timeline.csv`: the timeline rows, then one `accuracy_<task>` column per task (empty
/// when nothing was evaluated, as the other CSV files).
fn write_timeline(path: &Path, rows: &[TimelineRow], tasks: &[String]) -> std::io::Result<()> {
    // Serialize the fixed columns through serde, then append the task columns.
    let mut fixed = csv::Writer::from_writer(Vec::new());
    for row in rows {
        fixed.serialize(row).map_err(std::io::Error::other)?;
    }
    let fixed = fixed.into_inner().map_err(|e| e.into_error())?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(fixed.as_slice());
    let mut w = csv::Writer::from_path(path).map_err(std::io::Error::other)?;
    for (i, record) in reader.records().enumerate() {
        let mut record = record.map_err(std::io::Error::other)?;
        if i == 0 {
            for name in tasks {
                record.push_field(&format!("accuracy_{name}"));
            }
        } else {
            for t in 0..tasks.len() {
                let v = rows[i - 1]
                    .task_accuracy
                    .get(t)
                    .copied()
                    .unwrap_or(f64::NAN);
                record.push_field(&v.to_string());
            }
        }
        w.write_record(&record).map_err(std::io::Error::other)?;
    }
    w.flush()
}

fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(std::io::Error::other)?;
    for row in rows {
        w.serialize(row).map_err(std::io::Error::other)?;
    }
    w.flush()
}
