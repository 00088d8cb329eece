//! What a run shows while it goes: wall-clock gauges, the terminal progress bar, and the
//! prefix cache's fill (on the bar, or a line on standard error every few seconds without
//! a terminal).

use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flotilla_actors::{Observer, Records, SimTime};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};

use crate::model::FillCount;
use crate::notice::Notice;

/// How often the cache's fill is told on standard error when no bar is drawn.
const FILL_LINE_EVERY: Duration = Duration::from_secs(10);

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

/// The terminal progress bar: simulated time, round, latest accuracy, ETA, and the prefix
/// cache's fill while it goes on.
pub(super) struct Progress {
    pub(super) bar: ProgressBar,
    rounds: Option<u32>,
    horizon: Option<SimTime>,
    /// Tells the cache's fill on standard error when the bar is hidden.
    _lines: Option<FillLines>,
}

impl Progress {
    /// A bar for a run that stops by `stop`, showing the fill of `cache` when there is one;
    /// without a terminal, that fill goes to `notice` instead.
    pub(super) fn new(
        stop: &flotilla_actors::StopRule,
        cache: Option<Arc<FillCount>>,
        notice: Notice,
    ) -> Self {
        let len = match (stop.rounds, stop.virtual_time) {
            (Some(r), _) => r as u64,
            (None, Some(t)) => t.as_micros() / 1_000_000,
            (None, None) => 0,
        };
        let bar = ProgressBar::new(len);
        let fill = cache.clone();
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} {msg}{cache} [{elapsed_precise} eta {eta}]",
            )
            .expect("valid template")
            .with_key(
                "cache",
                move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    if let Some(line) = fill.as_deref().and_then(fill_line) {
                        let _ = write!(w, " | {line}");
                    }
                },
            ),
        );
        let lines = match cache {
            Some(cache) if bar.is_hidden() => Some(FillLines::start(cache, notice)),
            Some(_) => {
                // Redrawn while the clock waits on the pool, so the fill moves.
                bar.enable_steady_tick(Duration::from_millis(500));
                None
            }
            None => None,
        };
        Self {
            bar,
            rounds: stop.rounds,
            horizon: stop.virtual_time,
            _lines: lines,
        }
    }
}

/// The cache's fill in words while rows asked for are not all computed: images done, of
/// how many, the rate and the time left at that rate.
fn fill_line(count: &FillCount) -> Option<String> {
    let (asked, done) = (count.requested(), count.done());
    let since = count.since()?;
    (done < asked).then(|| describe_fill(done, asked, since.elapsed().as_secs_f64()))
}

fn describe_fill(done: u64, asked: u64, secs: f64) -> String {
    let rate = done as f64 / secs.max(1e-9);
    let left = if rate > 0.0 {
        format!("{:.0} s left", (asked - done) as f64 / rate)
    } else {
        "time left unknown".to_string()
    };
    format!("prefix cache {done}/{asked} images, {rate:.1}/s, {left}")
}

/// A thread that tells the cache's fill through a notice every [`FILL_LINE_EVERY`] while
/// it goes on; stopped when dropped.
struct FillLines {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl FillLines {
    fn start(count: Arc<FillCount>, notice: Notice) -> Self {
        let (stop, stopped) = channel::<()>();
        let thread = std::thread::Builder::new()
            .name("flotilla-fill-progress".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(FILL_LINE_EVERY)
                {
                    if let Some(line) = fill_line(&count) {
                        notice(&line);
                    }
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for FillLines {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
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

#[cfg(test)]
mod tests {
    use super::describe_fill;

    #[test]
    fn the_fill_is_told_with_its_rate_and_time_left() {
        assert_eq!(
            describe_fill(500, 2000, 10.0),
            "prefix cache 500/2000 images, 50.0/s, 30 s left"
        );
        assert_eq!(
            describe_fill(0, 250, 3.0),
            "prefix cache 0/250 images, 0.0/s, time left unknown"
        );
    }
}
