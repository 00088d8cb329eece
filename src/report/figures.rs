//! A run's report: its plots and `report.md`, and the table that compares runs.

use std::fmt::Write as _;
use std::path::PathBuf;

use flotilla_actors::record::ClientState;
use plotters::style::RGBColor;

use super::RunData;
use super::plots::{self, LineChart, Series, Timeline, TimelineRow};

/// Formats an optional value, `-` when absent.
pub(crate) fn or_dash<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map_or("-".into(), f)
}

/// A percentage with two decimals.
pub(crate) fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

/// Megabytes with one decimal (10^6 bytes).
fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// The markdown table comparing runs, one row each.
pub fn comparison_table(runs: &[RunData]) -> String {
    let mut t = String::from(
        "| run | algorithm | adapter | uplink | global acc. | personalized | time to target (s) | simulated (s) | rounds | MB up | MB down | staleness p50 / p90 |\n\
         | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in runs {
        let s = &r.summary;
        let name = r
            .dir
            .file_name()
            .map_or(s.name.clone(), |n| n.to_string_lossy().into_owned());
        let _ = writeln!(
            t,
            "| {name} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} / {} |",
            r.algorithm(),
            r.adapter(),
            r.uplink_encoding(),
            or_dash(s.global_accuracy, pct),
            or_dash(s.personalized_accuracy, pct),
            or_dash(s.time_to_target, |t| format!("{t:.1}")),
            s.sim_seconds,
            s.rounds.max(s.model_version as u32),
            mb(s.bytes_up),
            mb(s.bytes_down),
            or_dash(s.staleness.p50, |v| v.to_string()),
            or_dash(s.staleness.p90, |v| v.to_string()),
        );
    }
    t
}

/// The client activities a timeline shows, with their colours (idle is left blank).
const LANES: [(&str, RGBColor); 4] = [
    ("downloading", RGBColor(31, 119, 180)),
    ("training", RGBColor(44, 160, 44)),
    ("uploading", RGBColor(255, 127, 14)),
    ("offline", RGBColor(160, 160, 160)),
];

fn lane(state: ClientState) -> Option<usize> {
    match state {
        ClientState::Downloading => Some(0),
        ClientState::Training => Some(1),
        ClientState::Uploading => Some(2),
        ClientState::Offline => Some(3),
        ClientState::Idle => None,
    }
}

/// The tracked clients' rows: each state from its change to the next (or the run's end).
fn timeline_rows(run: &RunData) -> Vec<TimelineRow> {
    let end = run.summary.sim_seconds;
    let mut clients: Vec<usize> = run.activity.iter().map(|a| a.client).collect();
    clients.sort_unstable();
    clients.dedup();
    clients
        .into_iter()
        .map(|c| {
            let changes: Vec<_> = run.activity.iter().filter(|a| a.client == c).collect();
            let spans = changes
                .iter()
                .enumerate()
                .filter_map(|(i, a)| {
                    let until = changes.get(i + 1).map_or(end, |n| n.sim_seconds);
                    lane(a.state).map(|l| (a.sim_seconds, until, l))
                })
                .collect();
            let class = run.classes.get(c).map_or("", String::as_str);
            TimelineRow {
                label: format!("client {c} ({class})"),
                spans,
            }
        })
        .collect()
}

/// Writes the run's plots (PNG and SVG) and `report.md` into its directory; returns the
/// files written.
pub fn write_report(run: &RunData) -> std::io::Result<Vec<PathBuf>> {
    let dir = &run.dir;
    let s = &run.summary;
    let mut files = Vec::new();
    // Evaluations without the value (no client holds a local split) are left out.
    let acc = |f: fn(&super::data::Evaluation) -> Option<f64>,
               x: fn(&super::data::Evaluation) -> f64| {
        run.timeline
            .iter()
            .filter_map(|e| Some((x(e), f(e)? * 100.0)))
            .collect::<Vec<_>>()
    };
    let personalized_differs = run.timeline.iter().any(|e| {
        e.personalized_accuracy
            .is_some_and(|p| (p - e.global_accuracy).abs() > 1e-12)
    });
    for (stem, x_label, x) in [
        (
            "accuracy-time",
            "simulated time (s)",
            (|e: &super::data::Evaluation| e.sim_seconds) as fn(&_) -> f64,
        ),
        ("accuracy-bytes", "traffic, up + down (MB)", |e| {
            (e.bytes_up + e.bytes_down) as f64 / 1e6
        }),
    ] {
        let mut series = vec![Series {
            name: "global model, central test set".into(),
            points: acc(|e| Some(e.global_accuracy), x),
        }];
        if personalized_differs {
            series.push(Series {
                name: "personalized, clients' own test splits".into(),
                points: acc(|e| e.personalized_accuracy, x),
            });
        }
        let title = format!(
            "{}: accuracy over {}",
            s.name,
            if stem == "accuracy-time" {
                "simulated time"
            } else {
                "traffic"
            }
        );
        files.extend(plots::line_chart(
            &dir.join(stem),
            &LineChart {
                title: &title,
                x_label,
                y_label: "accuracy (%)",
                series: &series,
                x_log: false,
                y_range: Some(0.0..100.0),
                legend: plots::SeriesLabelPosition::LowerRight,
            },
        )?);
    }
    files.extend(plots::bar_chart(
        &dir.join("staleness"),
        &format!("{}: staleness of arriving updates", s.name),
        "staleness (model versions behind)",
        "updates",
        if s.staleness.histogram.is_empty() {
            &[0]
        } else {
            &s.staleness.histogram
        },
    )?);
    let rows = timeline_rows(run);
    files.extend(plots::timeline(
        &dir.join("timeline"),
        &Timeline {
            title: &format!(
                "{}: client activity ({} sampled clients)",
                s.name,
                rows.len()
            ),
            lanes: &LANES,
            rows: &rows,
            end: s.sim_seconds,
        },
    )?);
    let mut md = format!("# {}\n\n", s.name);
    let _ = writeln!(
        md,
        "{}, adapter {}, uplink {}; {} rounds (model versions) in {:.1} simulated seconds, \
         stopped by {:?}.\n",
        run.algorithm(),
        run.adapter(),
        run.uplink_encoding(),
        s.rounds.max(s.model_version as u32),
        s.sim_seconds,
        s.stop_reason,
    );
    if let Some(detail) = &s.stop_detail {
        let _ = writeln!(md, "Why: {detail}.\n");
    }
    md += &comparison_table(std::slice::from_ref(run));
    md += "\n![Accuracy over simulated time](accuracy-time.png)\n\n\
           ![Accuracy over traffic](accuracy-bytes.png)\n\n\
           ![Staleness of the updates that reached the server](staleness.png)\n\n\
           ![Client activity](timeline.png)\n";
    let report = dir.join("report.md");
    std::fs::write(&report, md)?;
    files.push(report);
    Ok(files)
}
