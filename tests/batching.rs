//! Client batching and the frozen-prefix cache: batched training equals training alone,
//! the cache returns exactly what the model computes, and batched runs stay reproducible.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::toy::{tiny, toy_data};
use burn::module::Module;
use burn::tensor::Device;
use flotilla::model::{
    Adaptation, AdapterSpec, Depth, HeadSpec, Input, LocalData, LoraTarget, Objective, Optimizer,
    Prefix, Samples, TrainConfig, build_model, train_group, train_local,
};
use flotilla::run::{RunOptions, run};

use crate::common;

/// Largest difference allowed between a parameter trained in a group and alone: the
/// group sums over a larger batch, so float rounding differs in the last bits.
const TOLERANCE: f32 = 1e-5;

fn kinds() -> Vec<Adaptation> {
    let with = |adapter, head| Adaptation {
        adapter,
        head,
        clients: 3,
    };
    vec![
        with(
            AdapterSpec::Lora {
                rank: 2,
                alpha: 4.0,
                targets: vec![LoraTarget::Q, LoraTarget::V],
            },
            HeadSpec::Linear,
        ),
        with(
            AdapterSpec::Lora {
                rank: 3,
                alpha: 3.0,
                targets: vec![LoraTarget::K, LoraTarget::O],
            },
            HeadSpec::Frozen,
        ),
        with(AdapterSpec::Film, HeadSpec::Linear),
        with(AdapterSpec::Prompt { tokens: 3 }, HeadSpec::Linear),
        with(AdapterSpec::Memory { tokens: 2 }, HeadSpec::Linear),
        with(AdapterSpec::HeadOnly, HeadSpec::Linear),
    ]
}

/// Three clients with 30, 17 and 9 samples: 4, 3 and 2 batches of 8, so members leave
/// the group at different steps.
fn shards() -> Vec<Vec<u32>> {
    vec![(0..30).collect(), (30..47).collect(), (47..56).collect()]
}

#[test]
fn a_group_trains_every_adapter_kind_as_its_clients_alone() {
    let c = tiny();
    let device = Device::flex().autodiff();
    let data = toy_data(56);
    let shards = shards();
    for optimizer in [Optimizer::Sgd { lr: 0.2 }, Optimizer::Adam { lr: 0.01 }] {
        let config = TrainConfig {
            epochs: 2,
            batch_size: 8,
            optimizer,
        };
        for adaptation in kinds() {
            assert!(adaptation.groups(), "{adaptation:?}");
            let model = build_model(&c, None, &adaptation, 1, &device).unwrap();
            let trainable = adaptation.trainable();
            let base = trainable.extract(&model);
            // Distinct starting adapters, so a mixed-up slice would show.
            let starts: Vec<Vec<f32>> = (0..shards.len())
                .map(|k| {
                    let shift = 0.01 * (k as f32 + 1.0);
                    base.iter()
                        .enumerate()
                        .map(|(i, v)| v + shift * ((i % 7) as f32 - 3.0))
                        .collect()
                })
                .collect();
            let objective = Objective::default();
            let members: Vec<LocalData> = shards
                .iter()
                .enumerate()
                .map(|(k, idx)| LocalData {
                    samples: Samples::new(&data, c.patch),
                    indices: idx,
                    seed: 40 + k as u64,
                    device: &device,
                    objective: &objective,
                })
                .collect();
            let alone: Vec<(Vec<f32>, f64)> = members
                .iter()
                .zip(&starts)
                .map(|(local, start)| {
                    let m = trainable.load(model.clone(), start);
                    let (m, loss) = train_local(m, local, &config);
                    (trainable.extract(&m), loss)
                })
                .collect();
            let refs: Vec<&[f32]> = starts.iter().map(Vec::as_slice).collect();
            let together = train_group(
                model.clone(),
                &trainable,
                &members,
                &refs,
                &config,
                adaptation.head.trains(),
            );
            assert_eq!(together.len(), alone.len());
            for (k, ((g, gl), (a, al))) in together.iter().zip(&alone).enumerate() {
                let what = format!("{} {:?}, client {k}", adaptation.adapter.name(), config);
                assert_eq!(g.len(), a.len(), "{what}");
                let moved = a.iter().zip(&starts[k]).any(|(x, y)| (x - y).abs() > 1e-4);
                assert!(moved, "{what}: training changed nothing");
                let worst = g
                    .iter()
                    .zip(a)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0f32, f32::max);
                assert!(worst <= TOLERANCE, "{what}: differs by {worst}");
                assert!((gl - al).abs() <= 1e-5, "{what}: loss {gl} vs {al}");
            }
        }
    }
}

#[test]
fn the_cache_returns_exactly_the_uncached_activations() {
    let c = tiny();
    let device = Device::flex().autodiff();
    let data = toy_data(40);
    // Cached: samples 0..25 fill the budget; the batch mixes held and missing samples.
    let batch: Vec<u32> = vec![3, 31, 0, 24, 25, 39, 7];
    for (adapter, depth) in [
        (
            AdapterSpec::Lora {
                rank: 2,
                alpha: 4.0,
                targets: vec![LoraTarget::Q],
            },
            Depth::Embedding,
        ),
        (AdapterSpec::HeadOnly, Depth::Features),
    ] {
        let adaptation = Adaptation::linear(adapter);
        assert_eq!(adaptation.frozen_prefix(), Some(depth));
        let model = build_model(&c, None, &adaptation, 1, &device).unwrap();
        let row = Prefix::row_bytes(&model, depth, &data, c.patch);
        let prefix = Prefix::lazy(
            &model,
            depth,
            &data,
            c.patch,
            25 * row + row / 2,
            &[(0..40).collect()],
            Arc::default(),
        );
        assert_eq!(prefix.held(), 25);
        assert_eq!(prefix.capacity_bytes(), 25 * row);
        // Filled only once read.
        assert_eq!(prefix.filled(), 0);
        let plain = Samples::new(&data, c.patch);
        let cached = Samples {
            prefix: Some(&prefix),
            ..plain
        };
        let valid = model.valid();
        let (Input::Patches(x), y) = plain.input(&valid, &batch, &device) else {
            panic!("no cache: patches")
        };
        let (input, y2) = cached.input(&valid, &batch, &device);
        assert_eq!(prefix.filled(), 25);
        assert_eq!(y.into_data(), y2.into_data());
        let (want, got) = match (depth, input) {
            (Depth::Embedding, Input::Embedded(e)) => (valid.embed(x).into_data(), e.into_data()),
            (Depth::Features, Input::Features(f)) => {
                (valid.encode(x).features.into_data(), f.into_data())
            }
            _ => panic!("{depth:?}: wrong input kind"),
        };
        let (want, got) = (
            want.try_to_vec::<f32>().unwrap(),
            got.try_to_vec::<f32>().unwrap(),
        );
        match depth {
            // The patch embedding is a per-row product: the same bits in any batch.
            Depth::Embedding => {
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&want), bits(&got));
            }
            // Through the whole backbone, flex's batched products round differently with
            // the batch's size, so features agree to float rounding only.
            Depth::Features => {
                let worst = want
                    .iter()
                    .zip(&got)
                    .map(|(a, b)| (a - b).abs() / a.abs().max(1.0))
                    .fold(0.0f32, f32::max);
                assert!(worst <= TOLERANCE, "features differ by {worst}");
            }
        }
    }
}

/// The small scenario with a pool section of its own.
fn with_pool(dir: &Path, name: &str, algorithm: &str, pool: &str) -> flotilla::scenario::Loaded {
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let file = common::small_scenario(&dir, name, algorithm, 3, 1, "F32");
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text.replace("pool: (workers: 1)", &format!("pool: {pool}"));
    std::fs::write(&file, text).unwrap();
    flotilla::scenario::load(&file).unwrap()
}

fn summary(loaded: &flotilla::scenario::Loaded, out: &Path) -> serde_json::Value {
    let opts = RunOptions::quiet(Some(out.to_path_buf()), Arc::new(AtomicBool::new(false)));
    let r = run(loaded, opts).unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(r.dir.join("summary.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let fields = v.as_object_mut().unwrap();
    fields.remove("wall");
    fields.remove("name");
    v
}

#[test]
fn batched_runs_are_reproducible_and_match_unbatched_ones() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, algorithm) in [
        common::FEDAVG,
        "FedBuff(concurrency: 6, buffer: 3, server_lr: 1.0, max_staleness: 4)",
    ]
    .into_iter()
    .enumerate()
    {
        let go = |name: &str, pool: &str| {
            let name = format!("{name}-{i}");
            summary(
                &with_pool(tmp.path(), &name, algorithm, pool),
                &tmp.path().join(format!("{name}-out")),
            )
        };
        let one = go("one", "(workers: 1, batch_clients: 3)");
        let two = go("two", "(workers: 2, batch_clients: 3)");
        assert_eq!(
            one, two,
            "{algorithm}: batching depends on the worker count"
        );
        let alone = go("alone", "(workers: 2, batch_clients: 1, cache: \"0B\")");
        let loss = |v: &serde_json::Value| v["global_loss"].as_f64().unwrap();
        let acc = |v: &serde_json::Value| v["global_accuracy"].as_f64().unwrap();
        assert!((loss(&one) - loss(&alone)).abs() < 1e-4, "{algorithm}");
        assert!((acc(&one) - acc(&alone)).abs() <= 0.002, "{algorithm}");
        // Everything the engine decides is the same: the same updates at the same times.
        for key in ["rounds", "updates_received", "sim_seconds", "bytes_up"] {
            assert_eq!(one[key], alone[key], "{algorithm}: {key}");
        }
    }
}

#[test]
fn a_group_reads_a_partly_cached_data_set() {
    let c = tiny();
    let device = Device::flex().autodiff();
    let data = toy_data(56);
    let config = TrainConfig {
        epochs: 1,
        batch_size: 8,
        optimizer: Optimizer::Sgd { lr: 0.2 },
    };
    let adaptation = kinds().remove(0);
    let model = build_model(&c, None, &adaptation, 1, &device).unwrap();
    let trainable = adaptation.trainable();
    let start = trainable.extract(&model);
    // Samples 0..20 are cached: one client's batches are all cached, one's partly, and
    // the last client's (47..56) not at all.
    let depth = Depth::Embedding;
    let row = Prefix::row_bytes(&model, depth, &data, c.patch);
    let all = [(0..56).collect()];
    let prefix = Prefix::lazy(
        &model,
        depth,
        &data,
        c.patch,
        20 * row,
        &all,
        Arc::default(),
    );
    let shards: Vec<Vec<u32>> = vec![(0..16).collect(), (10..40).collect(), (47..56).collect()];
    let objective = Objective::default();
    let plain = Samples::new(&data, c.patch);
    let cached = Samples {
        prefix: Some(&prefix),
        ..plain
    };
    let local = |samples, k: usize| LocalData {
        samples,
        indices: &shards[k],
        seed: 7 + k as u64,
        device: &device,
        objective: &objective,
    };
    let members: Vec<LocalData> = (0..3).map(|k| local(cached, k)).collect();
    let starts = vec![start.as_slice(); 3];
    let together = train_group(model.clone(), &trainable, &members, &starts, &config, true);
    for (k, (params, _)) in together.iter().enumerate() {
        let alone = local(plain, k);
        let (m, _) = train_local(trainable.load(model.clone(), &start), &alone, &config);
        let worst = trainable
            .extract(&m)
            .iter()
            .zip(params)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= TOLERANCE, "client {k}: differs by {worst}");
    }
}
