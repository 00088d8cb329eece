//! The frozen-prefix cache: activations of the frozen layers before the first trainable
//! one are the same in every round, so they are computed once per sample and reused.
//!
//! A cache holds samples of a data set in an order the caller gives (groups of samples
//! read together), as many as its share of the memory budget allows, so which samples it
//! holds is a function of the scenario alone. It is filled only as needed, in fixed chunks
//! of at most [`FILL_BATCH`] held samples of one group: a chunk is computed the first time
//! a job reads one of its samples, or ahead of that job by a worker given the chunk to
//! fill ([`Prefix::request`], [`Prefix::fill_chunk`]), whichever worker comes first. A
//! chunk's samples never change, so its rows are the same whoever computes them and
//! whenever.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

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

/// Samples per fill chunk.
const FILL_BATCH: usize = 250;

/// How far the caches that share it have been filled: samples asked for and samples
/// computed, for the progress display.
#[derive(Debug, Default)]
pub struct FillCount {
    requested: AtomicU64,
    done: AtomicU64,
    /// When the first chunk was asked for.
    since: OnceLock<Instant>,
}

impl FillCount {
    /// Samples whose rows have been asked for.
    pub fn requested(&self) -> u64 {
        self.requested.load(Ordering::Relaxed)
    }

    /// Samples whose rows are computed.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// When the first rows were asked for; `None` before.
    pub fn since(&self) -> Option<Instant> {
        self.since.get().copied()
    }

    fn request(&self, samples: usize) {
        self.since.get_or_init(Instant::now);
        self.requested.fetch_add(samples as u64, Ordering::Relaxed);
    }
}

/// One chunk's rows, computed once.
#[derive(Debug, Default)]
struct Chunk {
    /// Whether a fill has been asked for (counted in [`FillCount::requested`]).
    requested: AtomicBool,
    /// Whether a worker has begun computing it: a hint that spares the others the wait.
    claimed: AtomicBool,
    rows: OnceLock<Vec<f32>>,
}

/// Cached activations of some samples of one data set.
#[derive(Debug)]
pub struct Prefix {
    depth: Depth,
    /// `[tokens, dim]` per sample (embedding) or `[dim]` (features).
    row_shape: Vec<usize>,
    /// The samples held, in fill order.
    held: Vec<u32>,
    /// `(sample, position in held)`, by sample.
    lookup: Vec<(u32, u32)>,
    /// Where each chunk's samples start in `held` (and, last, `held.len()`).
    starts: Vec<usize>,
    chunks: Vec<Chunk>,
    count: Arc<FillCount>,
}

impl Prefix {
    /// The bytes one sample's row takes for `model` at `depth`.
    pub fn row_bytes(model: &Vit, depth: Depth, data: &Dataset, patch: usize) -> u64 {
        let row: usize = row_shape(model, depth, data, patch).iter().product();
        (row * std::mem::size_of::<f32>()) as u64
    }

    /// A cache, empty for now, of `model`'s prefix activations for the samples of `data`
    /// in `groups` (each sample once, every group in the order it fills), as many as fit
    /// in `budget` bytes; its fills are counted in `count`.
    pub fn lazy(
        model: &Vit,
        depth: Depth,
        data: &Dataset,
        patch: usize,
        budget: u64,
        groups: &[Vec<u32>],
        count: Arc<FillCount>,
    ) -> Self {
        let fits = budget / Self::row_bytes(model, depth, data, patch);
        let mut left = usize::try_from(fits).unwrap_or(usize::MAX);
        let taken: Vec<&[u32]> = groups
            .iter()
            .map(|group| {
                let n = group.len().min(left);
                left -= n;
                &group[..n]
            })
            .collect();
        Self::holding(&taken, model, depth, data, patch, count)
    }

    /// `model`'s prefix activations for samples `indices` of `data`, computed now.
    pub fn of(model: &Vit, depth: Depth, data: &Dataset, indices: &[u32], patch: usize) -> Self {
        let mut held = indices.to_vec();
        held.sort_unstable();
        held.dedup();
        let prefix = Self::holding(&[&held], model, depth, data, patch, Arc::default());
        for c in 0..prefix.chunks.len() {
            prefix.chunk_rows(c, model, data, patch);
        }
        prefix
    }

    fn holding(
        groups: &[&[u32]],
        model: &Vit,
        depth: Depth,
        data: &Dataset,
        patch: usize,
        count: Arc<FillCount>,
    ) -> Self {
        let held: Vec<u32> = groups.concat();
        let mut starts = Vec::new();
        let mut at = 0;
        for group in groups {
            starts.extend((0..group.len()).step_by(FILL_BATCH).map(|s| at + s));
            at += group.len();
        }
        let chunks = starts.len();
        starts.push(at);
        let mut lookup: Vec<(u32, u32)> = held.iter().zip(0..).map(|(&s, p)| (s, p)).collect();
        lookup.sort_unstable();
        Self {
            depth,
            row_shape: row_shape(model, depth, data, patch),
            held,
            lookup,
            starts,
            chunks: (0..chunks).map(|_| Chunk::default()).collect(),
            count,
        }
    }

    /// Samples held (computed or not).
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Samples whose rows are computed.
    pub fn filled(&self) -> usize {
        self.chunks
            .iter()
            .enumerate()
            .filter(|(_, chunk)| chunk.rows.get().is_some())
            .map(|(c, _)| self.chunk_samples(c).len())
            .sum()
    }

    /// Bytes the held samples' rows take once all are computed.
    pub fn capacity_bytes(&self) -> u64 {
        let row: usize = self.row_shape.iter().product();
        (self.held.len() * row * std::mem::size_of::<f32>()) as u64
    }

    /// Asks for the rows of `indices`' held samples: the chunks holding them that nobody
    /// has asked for yet, to be filled ahead of the jobs that read them.
    pub fn request(&self, indices: &[u32]) -> Vec<usize> {
        self.chunks_of(indices)
            .into_iter()
            .filter(|&c| self.ask(c))
            .collect()
    }

    /// Computes chunk `c` with `model` unless a worker has begun it already (it is not
    /// waited for).
    pub fn fill_chunk(&self, c: usize, model: &Vit, data: &Dataset, patch: usize) {
        if first(&self.chunks[c].claimed) {
            self.chunk_rows(c, model, data, patch);
        }
    }

    /// Counts chunk `c` as asked for, once; whether this was the first time.
    fn ask(&self, c: usize) -> bool {
        let fresh = first(&self.chunks[c].requested);
        if fresh {
            self.count.request(self.chunk_samples(c).len());
        }
        fresh
    }

    /// Samples `idx` of `data` as `model`'s input: cached rows where held (computed now if
    /// not yet), the rest computed by `model` now, so that the result is the same with or
    /// without the cache.
    pub fn input(
        &self,
        model: &Vit,
        data: &Dataset,
        idx: &[u32],
        patch: usize,
        device: &Device,
    ) -> Input {
        let row: usize = self.row_shape.iter().product();
        let chunks = self.chunks_of(idx);
        // Nothing held of an embedding: the model embeds the patches itself.
        if chunks.is_empty() && self.depth == Depth::Embedding {
            return Input::Patches(patches(data, idx, patch, device));
        }
        // The chunks nobody has begun first, then (below) those others are computing.
        for &c in &chunks {
            self.ask(c);
            self.fill_chunk(c, model, data, patch);
        }
        let missing: Vec<u32> = idx
            .iter()
            .copied()
            .filter(|&i| self.position(i).is_none())
            .collect();
        let computed = if missing.is_empty() {
            Vec::new()
        } else {
            let x = patches(data, &missing, patch, device);
            to_vec(activations(&model.valid(), self.depth, x))
        };
        let mut values = Vec::with_capacity(idx.len() * row);
        let mut next = 0;
        for &i in idx {
            if let Some((c, at)) = self.position(i) {
                let rows = self.chunk_rows(c, model, data, patch);
                values.extend_from_slice(&rows[at * row..(at + 1) * row]);
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

    /// Where `sample`'s row is: its chunk and its row in the chunk; `None` if not held.
    fn position(&self, sample: u32) -> Option<(usize, usize)> {
        let at = self
            .lookup
            .binary_search_by_key(&sample, |&(s, _)| s)
            .ok()?;
        let p = self.lookup[at].1 as usize;
        let c = self.starts.partition_point(|&start| start <= p) - 1;
        Some((c, p - self.starts[c]))
    }

    fn chunk_samples(&self, c: usize) -> &[u32] {
        &self.held[self.starts[c]..self.starts[c + 1]]
    }

    /// The chunks holding any of `indices`, ascending.
    fn chunks_of(&self, indices: &[u32]) -> Vec<usize> {
        let mut chunks: Vec<usize> = indices
            .iter()
            .filter_map(|&i| self.position(i))
            .map(|(c, _)| c)
            .collect();
        chunks.sort_unstable();
        chunks.dedup();
        chunks
    }

    /// Chunk `c`'s rows: computed now by `model` if no worker has, else waited for while
    /// one does.
    fn chunk_rows(&self, c: usize, model: &Vit, data: &Dataset, patch: usize) -> &[f32] {
        self.chunks[c].rows.get_or_init(|| {
            let model = model.valid();
            let samples = self.chunk_samples(c);
            let device = model.patch_embed.weight.val().device();
            let rows = to_vec(activations(
                &model,
                self.depth,
                patches(data, samples, patch, &device),
            ));
            self.count
                .done
                .fetch_add(samples.len() as u64, Ordering::Relaxed);
            rows
        })
    }
}

/// Sets `flag`; whether it was clear. Read first, so that a flag long set (every chunk
/// once the cache is full) costs every batch a shared read, not a write.
fn first(flag: &AtomicBool) -> bool {
    !flag.load(Ordering::Relaxed) && !flag.swap(true, Ordering::Relaxed)
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
