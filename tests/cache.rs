//! The frozen-prefix cache, filled by the pool's workers as jobs need it: the same results
//! whatever the worker count and with the cache on or off, and no activation computed that
//! no job reads.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use flotilla::pool::CacheUse;
use flotilla::run::{RunOptions, RunResult, run};
use flotilla::scenario::{self, Loaded};

use crate::common::{self, same};

/// The small scenario, `rounds` rounds, training `adapter` with `workers` workers and a
/// `cache` budget, with `more` assignments.
fn scenario(
    dir: &Path,
    adapter: &str,
    rounds: u32,
    workers: usize,
    cache: &str,
    more: &[String],
) -> Loaded {
    let dir = dir.join("scenarios");
    std::fs::create_dir_all(&dir).unwrap();
    let file = common::small_scenario(&dir, "cache", common::FEDAVG, rounds, workers, "F32");
    let mut set = vec![
        format!("model.adapter={adapter}"),
        format!("pool.cache=\"{cache}\""),
    ];
    set.extend_from_slice(more);
    scenario::load_with(&file, &set).unwrap()
}

fn go(loaded: &Loaded, out: &Path) -> RunResult {
    let opts = RunOptions::quiet(Some(out.to_path_buf()), Arc::new(AtomicBool::new(false)));
    run(loaded, opts).unwrap_or_else(|e| panic!("{e}"))
}

/// Head-only and LoRA runs (the features and the embedding cached) give the same bits
/// with 1, 2 and 4 workers and with the cache off.
#[test]
fn results_are_the_same_whatever_the_workers_and_with_the_cache_off() {
    let tmp = tempfile::tempdir().unwrap();
    for adapter in ["HeadOnly", "Lora(rank: 2, alpha: 4.0, targets: [Q, V])"] {
        let reference = tmp.path().join(format!("{}-reference", adapter.len()));
        let first = go(
            &scenario(tmp.path(), adapter, 2, 2, "256MB", &[]),
            &reference,
        );
        let used = first.cache.expect("a cache");
        // The whole data set fits; two rounds read every test image and some training
        // images, not all.
        assert_eq!((used.train_held, used.test_held), (8000, 2000));
        assert_eq!(used.test_filled, 2000);
        assert!(used.train_filled > 0, "{used:?}");
        for (workers, cache) in [(1, "256MB"), (4, "256MB"), (2, "0B"), (2, "300kB")] {
            let out = tmp
                .path()
                .join(format!("{}-{workers}-{cache}", adapter.len()));
            let run = go(&scenario(tmp.path(), adapter, 2, workers, cache, &[]), &out);
            same::assert_same(
                &reference,
                &out,
                &format!("{adapter}, {workers} workers, cache {cache}"),
            );
            if cache == "0B" {
                assert_eq!(run.cache, None);
            }
        }
    }
}

/// `stop: (rounds: 0)` evaluates the initial model on the test images and the clients'
/// local test splits: the cache computes their activations and none of the images
/// clients train on.
#[test]
fn a_run_that_trains_nothing_computes_no_training_features() {
    let tmp = tempfile::tempdir().unwrap();
    let zero = |fraction: &str| {
        let more = [format!("data.local_test_fraction={fraction}")];
        let loaded = scenario(tmp.path(), "HeadOnly", 0, 2, "256MB", &more);
        go(&loaded, &tmp.path().join(format!("zero-{fraction}")))
            .cache
            .expect("a cache")
    };
    // Without local test splits, not one training image.
    assert_eq!(
        zero("0.0"),
        CacheUse {
            train_held: 8000,
            train_filled: 0,
            test_held: 2000,
            test_filled: 2000,
        }
    );
    // With a fifth of each client's samples held out, those alone (their chunks are
    // their own).
    let used = zero("0.2");
    assert_eq!((used.test_filled, used.train_held), (2000, 8000));
    assert!(
        used.train_filled > 1000 && used.train_filled <= 2000,
        "{used:?}"
    );
}

/// The cache's size and the FLOPs of filling it, from the scenario alone: the small
/// scenario's LoRA caches patch embeddings, 16 tokens of width 16 per 28x28 image.
#[test]
fn validate_tells_the_cache_size_and_its_flops() {
    let tmp = tempfile::tempdir().unwrap();
    let lora = "Lora(rank: 2, alpha: 4.0, targets: [Q, V])";
    let whole = scenario(tmp.path(), lora, 1, 1, "256MB", &[])
        .prefix_cache()
        .expect("a cache");
    // Per image: 16 tokens x 16 f32 = 1,024 bytes; the embedding's product, 16 x 49 x 16
    // multiply-adds (two FLOPs each), and one add per output value.
    let per_image = 2 * 16 * 49 * 16 + 16 * 16;
    assert_eq!(
        (whole.train, whole.test, whole.bytes, whole.flops),
        (8000, 2000, 10_000 * 1024, 10_000 * per_image)
    );
    // 300 kB: 292 training images, no test image.
    let part = scenario(tmp.path(), lora, 1, 1, "300kB", &[])
        .prefix_cache()
        .expect("a cache");
    assert_eq!((part.train, part.test, part.bytes), (292, 0, 292 * 1024));
    assert_eq!(
        scenario(tmp.path(), lora, 1, 1, "0B", &[]).prefix_cache(),
        None
    );
    assert_eq!(
        scenario(tmp.path(), "Full", 1, 1, "256MB", &[]).prefix_cache(),
        None
    );
    let file = tmp.path().join("scenarios/cache.ron");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["validate", file.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            "prefix cache: up to 8000 training and 2000 test images, 10.2 MB, 0.3 GFLOP to fill"
        ),
        "{text}"
    );
}
