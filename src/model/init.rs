//! Parameter initialisation from our own seeded stream.
//!
//! Burn's random initialisation uses one process-wide generator, which concurrent threads
//! (tests, pool workers) share in no fixed order. Drawing every initial value from a
//! ChaCha stream in module order makes a model a pure function of its seed.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::Trainable;
use super::params::track_path;

/// Re-initialises the parameters whose paths `which` selects:
/// linear weights and biases `U(-1/sqrt(d_in), 1/sqrt(d_in))`; class token, positions,
/// prompt and memory tokens `N(0, 0.02)`; LoRA `A ~ N(0, 1/rank)` and `B = 0`; layer norms
/// and FiLM at the identity; a feature projection `N(0, 1/width)`; FedAPT's keys `N(0, 1)` and its prompt generator at zero (so
/// the adaptive prompt starts as the meta prompt).
pub(crate) fn init_params<M: Module>(module: M, which: &Trainable, seed: u64) -> M {
    module.map(&mut Init {
        which,
        rng: ChaCha8Rng::seed_from_u64(seed),
        path: Vec::new(),
        fan_in: 1,
    })
}

struct Init<'a> {
    which: &'a Trainable,
    rng: ChaCha8Rng,
    path: Vec<String>,
    fan_in: usize,
}

impl ModuleMapper for Init<'_> {
    track_path!();
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.join(".");
        let leaf = self.path.last().map(String::as_str).unwrap_or("");
        let dims = param.val().dims();
        if leaf == "weight" && D == 2 {
            self.fan_in = dims[0];
        }
        if !self.which.matches(&path) {
            return param;
        }
        let n: usize = dims.iter().product();
        let bound = 1.0 / (self.fan_in as f64).sqrt();
        let values: Vec<f32> = match leaf {
            "lora_b" | "beta" | "shift" => vec![0.0; n],
            _ if path.starts_with("prompt_net.generate") => vec![0.0; n],
            "gamma" | "scale" => vec![1.0; n],
            "lora_a" => normal(&mut self.rng, 1.0 / dims[D - 1] as f64, n),
            "cls" | "pos" | "prompt" | "memory" => normal(&mut self.rng, 0.02, n),
            "keys" => normal(&mut self.rng, 1.0, n),
            "projection" => normal(&mut self.rng, (dims[0] as f64).powf(-0.5), n),
            _ => (0..n)
                .map(|_| self.rng.random_range(-bound..=bound) as f32)
                .collect(),
        };
        let require_grad = param.is_require_grad();
        param
            .map(|t| Tensor::from_data(TensorData::new(values, t.shape()), &t.device()))
            .set_require_grad(require_grad)
    }
}

fn normal(rng: &mut ChaCha8Rng, std: f64, n: usize) -> Vec<f32> {
    let d = Normal::new(0.0, std).expect("std > 0");
    (0..n).map(|_| d.sample(rng) as f32).collect()
}
