//! The model side: adapter parameter counts, frozen backbone, flat-vector round trips.

use crate::toy::{tiny, toy_data};
use burn::tensor::Device;
use flotilla::data::Dataset;
use flotilla::model::{
    Adaptation, AdapterSpec, Input, LocalData, LoraTarget, Objective, Optimizer, Samples,
    TrainConfig, Trainable, Vit, build_model, train_local, train_maml, train_moreau,
};

/// Plain cross-entropy through the linear head.
const PLAIN: Objective = Objective {
    naive_bayes: None,
    key: None,
};

fn lora(targets: Vec<LoraTarget>) -> Adaptation {
    Adaptation::linear(AdapterSpec::Lora {
        rank: 2,
        alpha: 4.0,
        targets,
    })
}

fn local<'a>(
    data: &'a Dataset,
    idx: &'a [u32],
    patch: usize,
    seed: u64,
    device: &'a Device,
) -> LocalData<'a> {
    LocalData {
        samples: Samples::new(data, patch),
        indices: idx,
        seed,
        device,
        objective: &PLAIN,
    }
}

#[test]
fn lora_parameter_count_matches_closed_form() {
    let c = tiny();
    let device = Device::flex().autodiff();
    for targets in [
        vec![LoraTarget::Q, LoraTarget::V],
        vec![LoraTarget::Q, LoraTarget::K, LoraTarget::V, LoraTarget::O],
    ] {
        let spec = lora(targets.clone());
        let model = build_model(&c, None, &spec, 1, &device).unwrap();
        let per_target = c.dim * 2 + 2 * c.dim;
        let expected = c.depth * targets.len() * per_target + c.dim * c.classes + c.classes;
        assert_eq!(spec.trainable().count(&model).0, expected);
        assert_eq!(spec.trainable().extract(&model).len(), expected);
    }
}

#[test]
fn training_changes_only_adapter_and_head() {
    let c = tiny();
    let device = Device::flex().autodiff();
    let spec = lora(vec![LoraTarget::Q, LoraTarget::V]);
    let model = build_model(&c, None, &spec, 1, &device).unwrap();
    let before = Trainable::all_params(&model);
    let data = toy_data(24);
    let idx: Vec<u32> = (0..24).collect();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 8,
        optimizer: Optimizer::Sgd { lr: 0.1 },
    };
    let (trained, loss) = train_local(model, &local(&data, &idx, c.patch, 7, &device), &cfg);
    assert!(loss.is_finite());
    let after = Trainable::all_params(&trained);
    assert_eq!(before.len(), after.len());
    let sel = spec.trainable();
    let mut changed = 0;
    for ((path, b), (path2, a)) in before.iter().zip(&after) {
        assert_eq!(path, path2);
        if sel.matches(path) {
            changed += usize::from(a != b);
        } else {
            // Bit-identical, not merely close.
            let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "frozen parameter {path} changed");
        }
    }
    // Every LoRA B factor starts at zero and must move, as must the head.
    assert!(changed >= 4, "only {changed} trainable tensors changed");
}

#[test]
fn flat_vector_round_trips() {
    let c = tiny();
    let device = Device::flex().autodiff();
    let spec = lora(vec![LoraTarget::V]);
    let sel = spec.trainable();
    let model = build_model(&c, None, &spec, 3, &device).unwrap();
    let v: Vec<f32> = (0..sel.count(&model).0).map(|i| i as f32 * 0.5).collect();
    let loaded = sel.load(model, &v);
    assert_eq!(sel.extract(&loaded), v);
}

#[test]
fn same_seed_same_training() {
    let c = tiny();
    let device = Device::flex().autodiff();
    let spec = lora(vec![LoraTarget::Q, LoraTarget::V]);
    let data = toy_data(24);
    let idx: Vec<u32> = (0..24).collect();
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 5,
        optimizer: Optimizer::Sgd { lr: 0.1 },
    };
    let run = || {
        let model = build_model(&c, None, &spec, 1, &device).unwrap();
        let (m, _) = train_local(model, &local(&data, &idx, c.patch, 11, &device), &cfg);
        spec.trainable().extract(&m)
    };
    assert_eq!(run(), run());
}

#[test]
fn moreau_pulls_the_update_onto_the_personal_model_when_lr_times_lambda_is_one() {
    let c = tiny();
    let device = Device::flex().autodiff();
    let spec = lora(vec![LoraTarget::Q, LoraTarget::V]);
    let sel = spec.trainable();
    let model = build_model(&c, None, &spec, 1, &device).unwrap();
    let global = sel.extract(&model);
    let before = Trainable::all_params(&model);
    let data = toy_data(24);
    let idx: Vec<u32> = (0..24).collect();
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 8,
        optimizer: Optimizer::Sgd { lr: 0.1 },
    };
    // w <- w - lr * lambda * (w - theta) with lr * lambda = 1 leaves w = theta.
    let local = local(&data, &idx, c.patch, 3, &device);
    let (w, personal, loss) = train_moreau(&global, model, &sel, &local, &cfg, 10.0, 2);
    assert!(loss.is_finite());
    let theta = sel.extract(&personal);
    assert_ne!(theta, global);
    for (a, b) in w.iter().zip(&theta) {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
    }
    // The differentiable flat view is the extracted vector.
    let flat = sel
        .flat_tensor(&personal)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(flat, theta);
    // Frozen parameters stay bit-identical.
    for ((path, b), (_, a)) in before.iter().zip(&Trainable::all_params(&personal)) {
        if !sel.matches(path) {
            assert!(
                a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{path}"
            );
        }
    }
}

#[test]
fn first_order_maml_trains_only_the_adapter_and_is_reproducible() {
    let c = tiny();
    let device = Device::flex().autodiff();
    let spec = lora(vec![LoraTarget::Q, LoraTarget::V]);
    let sel = spec.trainable();
    let data = toy_data(24);
    let idx: Vec<u32> = (0..24).collect();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 6,
        optimizer: Optimizer::Sgd { lr: 0.1 },
    };
    let run = || {
        let model = build_model(&c, None, &spec, 1, &device).unwrap();
        train_maml(model, &local(&data, &idx, c.patch, 9, &device), &cfg, 0.05)
    };
    let (a, loss) = run();
    let (b, _) = run();
    assert!(loss.is_finite());
    assert_eq!(sel.extract(&a), sel.extract(&b));
    let start = build_model(&c, None, &spec, 1, &device).unwrap();
    assert_ne!(sel.extract(&a), sel.extract(&start));
    for ((path, x), (_, y)) in Trainable::all_params(&start)
        .iter()
        .zip(&Trainable::all_params(&a))
    {
        if !sel.matches(path) {
            assert!(
                x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{path}"
            );
        }
    }
}

#[test]
fn a_merged_lora_model_computes_what_the_adapted_one_does() {
    let c = tiny();
    let device = Device::flex();
    let spec = lora(vec![
        LoraTarget::Q,
        LoraTarget::K,
        LoraTarget::V,
        LoraTarget::O,
    ]);
    let model = build_model(&c, None, &spec, 1, &device).unwrap();
    let trainable = spec.trainable();
    // Non-zero up-projections, so that every update changes the outputs.
    let n = trainable.extract(&model).len();
    let params: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 40.0)
        .collect();
    let adapted = trainable.load(model.clone(), &params);
    let data = toy_data(6);
    let idx: Vec<u32> = (0..6).collect();
    let (x, _) = Samples::new(&data, c.patch).input(&adapted, &idx, &device);
    let Input::Patches(x) = x else {
        panic!("an uncached batch is patches")
    };
    let merged = adapted.clone().merged();
    assert!(
        merged
            .blocks
            .iter()
            .all(|b| b.attn.q.lora_a.is_none() && b.attn.o.lora_b.is_none())
    );
    let values = |m: &Vit| {
        m.forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let (want, got, before) = (values(&adapted), values(&merged), values(&model));
    for (a, b) in want.iter().zip(&got) {
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
    }
    assert!(want.iter().zip(&before).any(|(a, b)| (a - b).abs() > 1e-3));
}
