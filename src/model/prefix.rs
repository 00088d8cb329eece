//! The frozen-prefix cache: activations of the frozen layers before the first trainable
//! one are the same in every round, so they are computed once per sample and reused.
//!
//! The cache is filled once, before any job runs, for the first samples of each data set
//! in index order until its share of the memory budget is spent; which samples it holds is
//! therefore a function of the scenario alone, never of which job ran first.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

use super::patches::batch_tensors;
use super::vit::{Input, Vit};
use crate::data::Dataset;

/// How deep the frozen prefix reaches.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Depth {
    /// The patch embedding and positions ([`Vit::embed`]): frozen under every adapter but
    /// full fine-tuning.
    Embedding,
    /// The whole backbone up to the class token's features: frozen when only the head
    /// trains.
    Features,
}

/// Samples per fill batch.
const FILL_BATCH: usize = 250;

/// Cached activations of some samples of one data set.
#[derive(Debug)]
pub struct Prefix {
    depth: Depth,
    /// `[tokens, dim]` per sample (embedding) or `[dim]` (features).
    row_shape: Vec<usize>,
    /// The samples held, ascending; `rows` holds theirs in this order.
    held: Vec<u32>,
    rows: Vec<f32>,
}

impl Prefix {
    /// The bytes one sample's row takes for `model` at `depth`.
    pub fn row_bytes(model: &Vit, depth: Depth, data: &Dataset, patch: usize) -> u64 {
        let row: usize = row_shape(model, depth, data, patch).iter().product();
        (row * std::mem::size_of::<f32>()) as u64
    }

    /// `model`'s prefix activations for the first samples of `data` whose rows fit in
    /// `budget` bytes.
    pub fn fill(model: &Vit, depth: Depth, data: &Dataset, patch: usize, budget: u64) -> Self {
        let fits = budget / Self::row_bytes(model, depth, data, patch);
        let n = data.len().min(usize::try_from(fits).unwrap_or(usize::MAX));
        let all: Vec<u32> = (0..n as u32).collect();
        Self::of(model, depth, data, &all, patch)
    }

    /// `model`'s prefix activations for samples `indices` of `data`.
    pub fn of(model: &Vit, depth: Depth, data: &Dataset, indices: &[u32], patch: usize) -> Self {
        let model = model.valid();
        let device = model.patch_embed.weight.val().device();
        let row_shape = row_shape(&model, depth, data, patch);
        let mut held = indices.to_vec();
        held.sort_unstable();
        held.dedup();
        let mut rows = Vec::with_capacity(held.len() * row_shape.iter().product::<usize>());
        for chunk in held.chunks(FILL_BATCH) {
            let x = patches(data, chunk, patch, &device);
            rows.extend(to_vec(activations(&model, depth, x)));
        }
        Self {
            depth,
            row_shape,
            held,
            rows,
        }
    }

    /// Samples held.
    pub fn cached(&self) -> usize {
        self.held.len()
    }

    fn position(&self, sample: u32) -> Option<usize> {
        self.held.binary_search(&sample).ok()
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        (self.rows.len() * std::mem::size_of::<f32>()) as u64
    }

    /// Samples `idx` of `data` as `model`'s input: cached rows where held, the rest
    /// computed by `model` now (so the result is the same with or without the cache).
    pub fn input(
        &self,
        model: &Vit,
        data: &Dataset,
        idx: &[u32],
        patch: usize,
        device: &Device,
    ) -> Input {
        let row: usize = self.row_shape.iter().product();
        let missing: Vec<u32> = idx
            .iter()
            .copied()
            .filter(|&i| self.position(i).is_none())
            .collect();
        // Nothing cached of an embedding: the model embeds the patches itself.
        if missing.len() == idx.len() && self.depth == Depth::Embedding {
            return Input::Patches(patches(data, idx, patch, device));
        }
        let computed = if missing.is_empty() {
            Vec::new()
        } else {
            let x = patches(data, &missing, patch, device);
            to_vec(activations(&model.valid(), self.depth, x))
        };
        let mut values = Vec::with_capacity(idx.len() * row);
        let mut next = 0;
        for &i in idx {
            if let Some(p) = self.position(i) {
                values.extend_from_slice(&self.rows[p * row..(p + 1) * row]);
            } else {
                values.extend_from_slice(&computed[next * row..(next + 1) * row]);
                next += 1;
            }
        }
        let mut shape = vec![idx.len()];
        shape.extend(&self.row_shape);
        match self.depth {
            Depth::Embedding => {
                Input::Embedded(Tensor::from_data(TensorData::new(values, shape), device))
            }
            Depth::Features => {
                Input::Features(Tensor::from_data(TensorData::new(values, shape), device))
            }
        }
    }
}

fn row_shape(model: &Vit, depth: Depth, data: &Dataset, patch: usize) -> Vec<usize> {
    match depth {
        Depth::Embedding => vec![(data.side / patch).pow(2), model.dim()],
        Depth::Features => vec![model.feature_width()],
    }
}

fn patches(data: &Dataset, idx: &[u32], patch: usize, device: &Device) -> Tensor<3> {
    batch_tensors(data, idx, patch, device).0
}

/// The prefix's output for patches `x`, flattened per sample.
fn activations(model: &Vit, depth: Depth, x: Tensor<3>) -> Tensor<2> {
    let n = x.dims()[0];
    match depth {
        Depth::Embedding => {
            let e = model.embed(x);
            let [_, t, d] = e.dims();
            e.reshape([n, t * d])
        }
        Depth::Features => model.encode(x).features,
    }
}

fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .try_to_vec::<f32>()
        .expect("activations are f32")
}
