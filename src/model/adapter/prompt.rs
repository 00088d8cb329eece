//! FedAPT's adaptive prompt network (Su et al. 2022): it maps a sample's frozen features,
//! matched against one frozen random key per client, to a personalized prompt.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Distribution, Tensor};

/// `a = softmax(query(f) · Kᵀ / √d_k)`, `prompt(x) = meta + generate(a K)`.
///
/// The keys are drawn once (the server's assignment: key `c` is client `c`'s) and never
/// train; `query` learns to recognise a sample's domain among the keys and `generate`
/// turns the matched key into an offset of the meta prompt (the model's `prompt`).
#[derive(Module, Debug)]
pub struct PromptNet {
    /// One frozen random key per client `[clients, dim]`, in the prompt tokens' width.
    pub keys: Param<Tensor<2>>,
    /// Maps a sample's frozen features to a query over the keys.
    pub query: Linear,
    /// Turns the matched key into the prompt's offset.
    pub generate: Linear,
    /// Prompt tokens.
    #[module(skip)]
    pub tokens: usize,
}

impl PromptNet {
    /// A network for `clients` keys, reading frozen features of width `features` and
    /// making `tokens` prompt tokens of width `dim`.
    pub fn new(
        clients: usize,
        tokens: usize,
        features: usize,
        dim: usize,
        device: &Device,
    ) -> Self {
        Self {
            keys: Param::from_tensor(Tensor::random(
                [clients.max(1), dim],
                Distribution::Normal(0.0, 1.0),
                device,
            )),
            query: LinearConfig::new(features, dim).init(device),
            generate: LinearConfig::new(dim, tokens * dim).init(device),
            tokens,
        }
    }

    /// The key-matching logits `[batch, clients]` of frozen features `[batch, features]`.
    pub fn key_logits(&self, features: Tensor<2>) -> Tensor<2> {
        let keys = self.keys.val();
        let dk = keys.dims()[1];
        self.query
            .forward(features)
            .matmul(keys.transpose())
            .div_scalar((dk as f64).sqrt())
    }

    /// Each sample's prompt offset `[batch, tokens, dim]` from its key logits.
    pub(crate) fn offsets(&self, key_logits: Tensor<2>) -> Tensor<3> {
        let [b, _] = key_logits.dims();
        let key = softmax(key_logits, 1).matmul(self.keys.val());
        let dim = key.dims()[1];
        self.generate.forward(key).reshape([b, self.tokens, dim])
    }
}
