//! One epoch of local training, and what every method must pass: what it trains changes,
//! and nothing else moves by a bit.

use burn::tensor::Device;
use flotilla::data::Dataset;
use flotilla::model::{
    Adaptation, LocalData, Optimizer, Samples, TrainConfig, Trainable, Vit, train_local,
};

/// Trains `model` (built for `adaptation`) for one epoch of SGD on all of `data` as
/// client `client`, and checks that some trainable value changed and no frozen one did.
pub(crate) fn train_only_the_trainable(
    model: Vit,
    adaptation: &Adaptation,
    data: &Dataset,
    (patch, batch_size, client): (usize, usize, usize),
    device: &Device,
) {
    let idx: Vec<u32> = (0..data.len() as u32).collect();
    let cfg = TrainConfig {
        epochs: 1,
        batch_size,
        optimizer: Optimizer::Sgd { lr: 0.1 },
    };
    let before = Trainable::all_params(&model);
    let objective = adaptation.objective(client);
    let local = LocalData {
        samples: Samples::new(data, patch),
        indices: &idx,
        seed: 3,
        device,
        objective: &objective,
    };
    let (trained, loss) = train_local(model, &local, &cfg);
    assert!(loss.is_finite(), "{adaptation:?}");
    let sel = adaptation.trainable();
    let mut changed = 0;
    for ((path, b), (path2, a)) in before.iter().zip(&Trainable::all_params(&trained)) {
        assert_eq!(path, path2);
        if sel.matches(path) {
            changed += usize::from(a != b);
        } else {
            let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{adaptation:?}: frozen {path} changed");
        }
    }
    assert!(changed > 0, "{adaptation:?}: nothing trained");
}
