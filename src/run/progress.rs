//! What a run shows while it goes: wall-clock gauges, and the terminal progress bar.

use std::time::Instant;

use flotilla_actors::{Observer, Records, SimTime};
use indicatif::{ProgressBar, ProgressStyle};

/// Publishes wall-clock gauges and drives the progress bar.
pub(super) struct RunObserver {
    pub(super) started: Instant,
    pub(super) sim_speed: metrics::Gauge,
    pub(super) wall_seconds: metrics::Gauge,
    pub(super) progress: Option<Progress>,
}

impl Observer for RunObserver {
    fn progress(&mut self, now: SimTime, records: &Records) {
        let wall = self.started.elapsed().as_secs_f64();
        self.wall_seconds.set(wall);
        self.sim_speed.set(now.as_secs_f64() / wall.max(1e-9));
        if let Some(p) = &mut self.progress {
            p.progress(now, records);
        }
    }
}

/// The terminal progress bar: simulated time, round, latest accuracy, ETA.
pub(super) struct Progress {
    pub(super) bar: ProgressBar,
    rounds: Option<u32>,
    horizon: Option<SimTime>,
}

impl Progress {
    pub(super) fn new(stop: &flotilla_actors::StopRule) -> Self {
        let len = match (stop.rounds, stop.virtual_time) {
            (Some(r), _) => r as u64,
            (None, Some(t)) => t.as_micros() / 1_000_000,
            (None, None) => 0,
        };
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} {msg} [{elapsed_precise} eta {eta}]",
            )
            .expect("valid template"),
        );
        Self {
            bar,
            rounds: stop.rounds,
            horizon: stop.virtual_time,
        }
    }
}

impl Observer for Progress {
    fn progress(&mut self, now: SimTime, records: &Records) {
        let pos = match (self.rounds, self.horizon) {
            (Some(_), _) => records.rounds as u64,
            _ => now.as_micros() / 1_000_000,
        };
        self.bar.set_position(pos);
        let acc = records.timeline.last().map_or("-".to_string(), |r| {
            format!("{:.2}%", r.global_accuracy * 100.0)
        });
        self.bar
            .set_message(format!("sim {now} round {} acc {acc}", records.rounds));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // Where the run stopped, which is short of the end after Ctrl-C or a failure.
        self.bar.abandon();
    }
}
