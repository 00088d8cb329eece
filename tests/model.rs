//! The model side: adapter parameter counts, frozen backbone, flat-vector round trips.

use burn::tensor::Device;
use flotilla::data::Dataset;
use flotilla::model::{
    AdapterSpec, LoraTarget, Optimizer, TrainConfig, Trainable, VitConfig, build_model, train_local,
};

fn tiny() -> VitConfig {
    VitConfig {
        image: 8,
        channels: 1,
        patch: 4,
        dim: 16,
        depth: 2,
        heads: 2,
        mlp: 32,
        classes: 3,
    }
}

fn lora(targets: Vec<LoraTarget>) -> AdapterSpec {
    AdapterSpec::Lora {
        rank: 2,
        alpha: 4.0,
        targets,
    }
}

fn toy_data() -> Dataset {
    let n = 24;
    Dataset {
        pixels: (0..n * 64)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect(),
        labels: (0..n).map(|i| (i % 3) as u8).collect(),
        side: 8,
        channels: 1,
        classes: 3,
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
    let data = toy_data();
    let idx: Vec<u32> = (0..24).collect();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 8,
        optimizer: Optimizer::Sgd { lr: 0.1 },
    };
    let (trained, loss) = train_local(model, &data, &idx, &cfg, c.patch, 7, &device);
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
    let data = toy_data();
    let idx: Vec<u32> = (0..24).collect();
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 5,
        optimizer: Optimizer::Sgd { lr: 0.1 },
    };
    let run = || {
        let model = build_model(&c, None, &spec, 1, &device).unwrap();
        let (m, _) = train_local(model, &data, &idx, &cfg, c.patch, 11, &device);
        spec.trainable().extract(&m)
    };
    assert_eq!(run(), run());
}
