//! A sweep's report: the table, and plots of each figure against the numeric axis.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::{SweepData, SweepRow};
use crate::report::Summary;
use crate::report::plots::{self, LineChart, Series};

impl SweepData {
    /// The first axis whose labels all start with a number: the plots' x axis, with the
    /// unit its labels share.
    fn numeric_axis(&self) -> Option<(usize, String)> {
        (0..self.axes.len()).find_map(|a| {
            let parsed: Option<Vec<(f64, &str)>> = self
                .rows
                .iter()
                .map(|r| leading_number(&r.labels[a]))
                .collect();
            let parsed = parsed?;
            let unit = parsed.first().map_or("", |p| p.1);
            parsed
                .iter()
                .all(|p| p.1 == unit)
                .then(|| (a, unit.to_string()))
        })
    }

    /// One series per combination of the other axes: `y` (averaged over repeats, points
    /// where it is missing in any repeat left out) against the x axis.
    fn series(&self, x_axis: usize, y: &dyn Fn(&SweepRow) -> Option<f64>) -> Vec<Series> {
        let mut series: Vec<Series> = Vec::new();
        for group in self.groups() {
            let rows: Vec<&SweepRow> = group.iter().map(|&i| &self.rows[i]).collect();
            let ys: Vec<f64> = rows.iter().filter_map(|r| y(r)).collect();
            let others: Vec<&str> = rows[0]
                .labels
                .iter()
                .enumerate()
                .filter(|(a, _)| *a != x_axis)
                .map(|(_, l)| l.as_str())
                .collect();
            let name = others.join(", ");
            let idx = match series.iter().position(|s| s.name == name) {
                Some(i) => i,
                None => {
                    series.push(Series {
                        name,
                        points: Vec::new(),
                    });
                    series.len() - 1
                }
            };
            let x = leading_number(&rows[0].labels[x_axis]).map_or(f64::NAN, |p| p.0);
            if ys.len() == rows.len() && !ys.is_empty() {
                let mean = ys.iter().sum::<f64>() / ys.len() as f64;
                series[idx].points.push((x, mean));
            }
        }
        for s in &mut series {
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        series
    }
}

impl SweepData {
    /// Each point's participation by device class, read from its `summary.json`: who
    /// could train (memory), was selected, trained and was aggregated. Empty when every
    /// point has one class and no ineligible client.
    fn participation(&self) -> String {
        let mut rows = Vec::new();
        for r in &self.rows {
            let file = self.dir.join(&r.dir).join("summary.json");
            let Some(summary) = std::fs::read_to_string(file)
                .ok()
                .and_then(|t| serde_json::from_str::<Summary>(&t).ok())
            else {
                continue;
            };
            rows.push((r, summary.classes));
        }
        let shown = rows
            .iter()
            .any(|(_, c)| c.len() > 1 || c.iter().any(|k| k.ineligible > 0));
        if !shown {
            return String::new();
        }
        let mut md = String::from("\n## Participation by device class\n\n");
        let _ = writeln!(
            md,
            "| {} | repeat | class | clients | ineligible | selected | trained | applied | \
             compute s |",
            self.axes.join(" | ")
        );
        let _ = writeln!(
            md,
            "|{}",
            " --- |".repeat(self.axes.len() + 2) + &" ---: |".repeat(6)
        );
        for (r, classes) in rows {
            for k in classes {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
                    r.labels.join(" | "),
                    r.repeat,
                    k.class,
                    k.clients,
                    k.ineligible,
                    k.selected,
                    k.trained,
                    k.updates_applied,
                    k.compute_seconds
                );
            }
        }
        md
    }
}

/// The number a label starts with and the unit after it ("0.5 Mbit/s" is 0.5 and
/// "Mbit/s"; "20%" is 20 and "%").
fn leading_number(label: &str) -> Option<(f64, &str)> {
    let t = label.trim();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(t.len());
    let n: f64 = t[..end].parse().ok()?;
    Some((n, t[end..].trim()))
}

/// A figure of a sweep's row, plotted against the numeric axis.
type Figure = fn(&SweepRow) -> Option<f64>;

/// Writes the sweep's plots and `report.md`; returns the files written.
pub fn write_sweep_report(data: &SweepData) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut md = format!("# Sweep: {}\n\n", data.name);
    let _ = writeln!(
        md,
        "{} points over {}. Figures are means over repeats; time to target is left out \
         where any repeat missed the target.\n",
        data.rows.len(),
        data.axes.join(" × ")
    );
    md += &data.table();
    if let Some((x, unit)) = data.numeric_axis() {
        let xs: Vec<f64> = data
            .rows
            .iter()
            .filter_map(|r| leading_number(&r.labels[x]).map(|p| p.0))
            .collect();
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(0.0f64, f64::max);
        let x_log = lo > 0.0 && hi / lo >= 20.0;
        let x_label = if unit.is_empty() {
            data.axes[x].clone()
        } else {
            format!("{} ({unit})", data.axes[x])
        };
        let plots: [(&str, &str, &str, Figure); 2] = [
            (
                "time-to-target",
                "time to target",
                "simulated time to target accuracy (s)",
                |r| r.time_to_target,
            ),
            (
                "final-accuracy",
                "final accuracy",
                "final global accuracy (%)",
                |r| r.global_accuracy.map(|a| a * 100.0),
            ),
        ];
        for (stem, what, y_label, y) in &plots {
            let series = data.series(x, y);
            files.extend(plots::line_chart(
                &data.dir.join(stem),
                &LineChart {
                    title: &format!("{}: {what} vs {}", data.name, data.axes[x]),
                    x_label: &x_label,
                    y_label,
                    series: &series,
                    x_log,
                    y_range: None,
                    legend: plots::SeriesLabelPosition::UpperRight,
                },
            )?);
            let _ = write!(md, "\n![{what} vs {}]({stem}.png)\n", data.axes[x]);
        }
    }
    md += &data.participation();
    md += "\n## Points\n\n";
    for r in &data.rows {
        let _ = writeln!(md, "- [{}]({}/report.md)", r.labels.join(", "), r.dir);
    }
    let path = data.dir.join("report.md");
    std::fs::write(&path, md)?;
    files.push(path);
    Ok(files)
}
