//! The parts of `flotilla bench` measured only when asked for: the remote pool (it needs
//! `nats-server`) and the real-size backbone (it takes minutes).

use std::path::Path;

use flotilla::Chain;
use flotilla::measure::{Figures, Item};

use super::in_child;

/// Measures one item in a child process and prints its row: what, the item, and how
/// its figure reads.
pub(super) type Row<'a> =
    dyn FnMut(String, Item, &dyn Fn(&Figures) -> String) -> Option<Figures> + 'a;

/// The scenario on two worker processes over NATS against the in-process pool with two
/// workers, in turn twice, and the overhead of the sums; messages and bytes per job.
pub(super) fn remote_rows(row: &mut Row) {
    let accuracy = |f: &Figures| format!("{:.2}% accuracy", f.accuracy.unwrap_or(0.0) * 100.0);
    let remote = |f: &Figures| {
        let Some(r) = &f.remote else {
            return accuracy(f);
        };
        let jobs = r.jobs.max(1) as f64;
        format!(
            "{}; {} jobs, {:.1} messages and {:.1} kB per job; workers' peak RSS {:.0} MB",
            accuracy(f),
            r.jobs,
            r.traffic.messages as f64 / jobs,
            r.traffic.bytes as f64 / jobs / 1e3,
            r.workers_peak_rss_bytes as f64 / 1e6
        )
    };
    let (mut here, mut there) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let item = Item::Run {
            set: vec!["pool.workers=2".into()],
        };
        here.push(row(
            "whole run, in-process pool, 2 workers".into(),
            item,
            &accuracy,
        ));
        let item = Item::Remote {
            workers: 2,
            set: Vec::new(),
        };
        let what = "whole run, remote pool, 2 worker processes over NATS".into();
        there.push(row(what, item, &remote));
    }
    let wall = |runs: &[Option<Figures>]| -> Option<f64> {
        runs.iter()
            .map(|f| f.as_ref().map(|f| f.wall_seconds))
            .sum()
    };
    if let (Some(here), Some(there)) = (wall(&here), wall(&there)) {
        out!(
            "| remote pool overhead, 2 workers: wall remote / in-process - 1 | {:+.1}% | | |",
            (there / here - 1.0) * 100.0
        );
    }
}

/// ViT-S/16 at 224 px on 2 workers, with random weights written to a temporary directory
/// (the data: the MNIST images beside `scenario`, in `data/mnist-10k`): the time-zero
/// evaluation of the 2,000 test images alone, with the prefix cache and without, then
/// with one round of head-only training on 10 clients (every training image's features). Each row says the CPU the run kept
/// busy (200% is both cores of a 2-core machine). False if any measurement failed.
pub(super) fn backbone_rows(scenario: &Path) -> bool {
    let data = scenario
        .parent()
        .unwrap_or(Path::new("."))
        .join("data/mnist-10k");
    let data = std::path::absolute(&data).unwrap_or(data);
    let dir = std::env::temp_dir().join(format!("flotilla-vit-small-{}", std::process::id()));
    let file = match flotilla::measure::write_vit_small_fixture(&dir, &data) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("writing the ViT-S/16 fixture: {}", Chain(&e));
            return false;
        }
    };
    let mut ok = true;
    for (what, rounds, cache, images) in [
        (
            "head-only evaluation of 2,000 test images (rounds: 0)",
            0,
            "1GB",
            2_000.0,
        ),
        (
            "head-only evaluation of 2,000 test images (rounds: 0), cache off",
            0,
            "0B",
            2_000.0,
        ),
        (
            "one round of head-only training on 10 clients",
            1,
            "1GB",
            10_000.0,
        ),
    ] {
        let item = Item::Run {
            set: vec![
                format!("stop.rounds={rounds}"),
                format!("pool.cache=\"{cache}\""),
            ],
        };
        let what = format!("ViT-S/16 at 224 px, 2 workers, {what}");
        match in_child(&item, &file) {
            Ok(f) => {
                let cpu = f.cpu_seconds.unwrap_or(0.0) / f.wall_seconds.max(1e-9);
                out!(
                    "| {what} | {:.1} images/s through the backbone, {:.0}% CPU | {:.1} | {:.0} |",
                    images / f.wall_seconds.max(1e-9),
                    cpu * 100.0,
                    f.wall_seconds,
                    f.peak_rss_bytes as f64 / 1e6
                );
            }
            Err(e) => {
                eprintln!("{what}: {}", Chain(&e));
                ok = false;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    ok
}
