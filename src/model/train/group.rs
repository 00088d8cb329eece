//! Client batching: several clients' adapters trained in one forward and backward pass.

use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Tensor, TensorData};

use super::{Batches, LocalData, TrainConfig, mean};
use crate::model::{Owners, Trainable, Vit};

/// Trains a group of clients' adapters together (client batching): the adapters start
/// from `starts`, stacked in one model (see [`group`](super::group)); step `j` runs every
/// member's `j`-th batch in one forward/backward pass and one optimiser step, each
/// member's samples through its own adapter. A member whose batches run out keeps the
/// adapter of its last step.
///
/// Equals [`train_local`] of each member alone up to float rounding. The members read the
/// same samples (one data set, one prefix cache) and train through the linear head (or a
/// frozen one) without an extra loss term; see
/// [`Adaptation::groups`](super::Adaptation::groups).
pub fn train_group(
    model: Vit,
    trainable: &Trainable,
    members: &[LocalData<'_>],
    starts: &[&[f32]],
    config: &TrainConfig,
    head_trains: bool,
) -> Vec<(Vec<f32>, f64)> {
    let k = members.len();
    let Some(first) = members.first() else {
        return Vec::new();
    };
    let (device, samples) = (first.device, first.samples);
    assert!(
        members
            .iter()
            .all(|m| std::ptr::eq(m.samples.data, samples.data)),
        "a group's members read one data set"
    );
    let mut model = trainable.load_group(model, starts);
    let mut batches: Vec<Batches> = members
        .iter()
        .map(|m| m.batches(config.batch_size, m.steps(config)))
        .collect();
    let lens: Vec<usize> = batches.iter().map(ExactSizeIterator::len).collect();
    let steps = lens.iter().copied().max().unwrap_or(0);
    let mut out: Vec<(Vec<f32>, f64)> = starts.iter().map(|s| (s.to_vec(), 0.0)).collect();
    let mut loss_sums = vec![0.0f64; k];
    let mut optim = config.optimizer.init();
    for step in 0..steps {
        let active: Vec<usize> = (0..k).filter(|&i| lens[i] > step).collect();
        // The active members' batches, one after another, read as one.
        let (mut idx, mut owner, mut weight) = (Vec::new(), Vec::new(), Vec::new());
        let mut sizes = vec![0; k];
        for &i in &active {
            let batch = batches[i]
                .next()
                .expect("an active member has a batch left");
            idx.extend_from_slice(&batch);
            owner.extend(std::iter::repeat_n(i, batch.len()));
            weight.extend(std::iter::repeat_n(1.0 / batch.len() as f32, batch.len()));
            sizes[i] = batch.len();
        }
        let n = idx.len();
        let (x, y) = samples.input(&model, &idx, device);
        let owners = Owners::new(&sizes, device);
        let encoded = model.encode_input(x, Some(&owners));
        let logits = if head_trains {
            // Every client's logits side by side; each sample keeps its own client's.
            owners.own_block(model.head.forward(encoded.features))
        } else {
            model.head.forward(encoded.features)
        };
        // Each member's mean loss, summed: every adapter gets its own member's gradient.
        let y = y.reshape([n, 1]);
        let nll = log_softmax(logits, 1).gather(1, y).reshape([n]).neg();
        let w: Tensor<1> = Tensor::from_data(TensorData::new(weight, [n]), device);
        let per_sample = nll * w;
        let values = per_sample
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .expect("losses are f32");
        // Weighted by 1 / batch size, a member's values add up to its mean batch loss.
        for (&i, v) in owner.iter().zip(&values) {
            loss_sums[i] += *v as f64;
        }
        let grads = GradientsParams::from_grads(per_sample.sum().backward(), &model);
        model = optim.step(config.optimizer.lr(), model, grads);
        let finished: Vec<usize> = active
            .iter()
            .copied()
            .filter(|&i| lens[i] == step + 1)
            .collect();
        if !finished.is_empty() {
            let params = trainable.extract_group(&model, k);
            for i in finished {
                out[i] = (params[i].clone(), mean(loss_sums[i], lens[i]));
            }
        }
    }
    out
}
