//! The count against closed forms written out by hand for a small model: 8 x 8 grey
//! images in 4 x 4 patches (4 tokens and the class token), width 8, 2 heads, MLP 16,
//! 2 blocks, 3 classes; every layer has a bias, the class token is pooled.

use super::*;
use crate::model::{AdapterSpec, HeadSpec, LoraTarget, VitStyle};

const N: u64 = 4;
const T: u64 = N + 1;
const PD: u64 = 16;
const D: u64 = 8;
const M: u64 = 16;
const C: u64 = 3;

fn config() -> VitConfig {
    VitConfig {
        image: 8,
        channels: 1,
        patch: 4,
        dim: D as usize,
        depth: 2,
        heads: 2,
        mlp: M as usize,
        classes: C as usize,
        style: VitStyle::default(),
    }
}

/// `rows x k` by `k x n`, with a bias.
fn linear(rows: u64, k: u64, n: u64) -> u64 {
    2 * rows * k * n + rows * n
}

/// A product without its bias.
fn mul(rows: u64, k: u64, n: u64) -> u64 {
    2 * rows * k * n
}

/// A block's forward work over `t` tokens (`kv` keys and values), `rows` of them output.
fn block(rows: u64, kv: u64) -> u64 {
    let attention = mul(rows, D, kv) + mul(rows, kv, D);
    linear(rows, D, D)
        + 2 * linear(kv, D, D)
        + attention
        + linear(rows, D, D)
        + linear(rows, D, M)
        + linear(rows, M, D)
}

/// The plain model's forward work with `extra` tokens in every block's sequence and
/// `memory` keys and values.
fn forward(extra: u64, memory: u64) -> u64 {
    let t = T + extra;
    linear(N, PD, D) + block(t, t + memory) + block(1, t + memory) + linear(1, D, C)
}

fn count(adapter: AdapterSpec) -> SampleCost {
    SampleCost::count(&config(), &Adaptation::linear(adapter))
}

#[test]
fn head_only_trains_the_head_alone() {
    let cost = count(AdapterSpec::HeadOnly);
    assert_eq!(cost.flops.forward, forward(0, 0));
    assert_eq!(cost.flops.input_grads, 0);
    assert_eq!(cost.flops.weight_grads, linear(1, D, C));
    // The whole backbone is the prefix: once cached, a sample costs the head.
    assert_eq!(cost.cached(), 2 * linear(1, D, C));
    assert_eq!(cost.trainable, D * C + C);
}

#[test]
fn full_fine_tuning_differentiates_everything_but_the_pixels() {
    let cost = count(AdapterSpec::Full);
    assert_eq!(cost.flops.forward, forward(0, 0));
    // Every weight's gradient (a product and the bias's sum, as in the forward pass).
    assert_eq!(
        cost.flops.weight_grads,
        forward(0, 0) - attention_products()
    );
    // Every activation's gradient but the pixels': each product once for its input, the
    // attention's products once for each operand.
    let products = forward(0, 0) - biases() - mul(N, PD, D);
    assert_eq!(cost.flops.input_grads, products + attention_products());
    assert_eq!(cost.prefix, 0);
}

/// The attention's activation-by-activation products, both blocks.
fn attention_products() -> u64 {
    mul(T, D, T) + mul(T, T, D) + mul(1, D, T) + mul(1, T, D)
}

/// The bias additions of the plain forward pass.
fn biases() -> u64 {
    let block = |rows: u64, kv: u64| rows * D + 2 * kv * D + rows * D + rows * M + rows * D;
    N * D + block(T, T) + block(1, T) + C
}

#[test]
fn lora_differentiates_from_its_first_factor_on() {
    let r = 2;
    let cost = count(AdapterSpec::Lora {
        rank: r as usize,
        alpha: 4.0,
        targets: vec![LoraTarget::Q, LoraTarget::V],
    });
    let lora =
        |rows: u64, kv: u64| mul(rows, D, r) + mul(rows, r, D) + mul(kv, D, r) + mul(kv, r, D);
    assert_eq!(cost.flops.forward, forward(0, 0) + lora(T, T) + lora(1, T));
    assert_eq!(
        cost.flops.weight_grads,
        lora(T, T) + lora(1, T) + linear(1, D, C)
    );
    // Block 0: nothing before its factors trains, so its projections' inputs need no
    // gradient: the up-projections, the scores (through q only), the mixing (both),
    // the output projection and the MLP do.
    let first = mul(T, r, D)
        + mul(T, r, D)
        + mul(T, D, T)
        + 2 * mul(T, T, D)
        + mul(T, D, D)
        + mul(T, D, M)
        + mul(T, M, D);
    // Block 1 (its class row alone): everything.
    let second = mul(1, D, D)
        + 2 * mul(T, D, D)
        + lora(1, T)
        + 2 * (mul(1, D, T) + mul(1, T, D))
        + mul(1, D, D)
        + mul(1, D, M)
        + mul(1, M, D);
    assert_eq!(cost.flops.input_grads, first + second + mul(1, D, C));
    assert_eq!(cost.prefix, linear(N, PD, D));
}

#[test]
fn prompt_and_memory_tokens_lengthen_the_sequence() {
    let prompt = count(AdapterSpec::Prompt { tokens: 3 });
    assert_eq!(prompt.flops.forward, forward(3, 0));
    let memory = count(AdapterSpec::Memory { tokens: 2 });
    // Memory tokens are keys and values only: two more rows through k and v per block.
    assert_eq!(memory.flops.forward, forward(0, 2));
    // Their gradients start in block 0's keys and values: every product but the
    // embedding's needs its input's gradient, the queries' of block 0 excepted.
    assert_eq!(memory.flops.weight_grads, linear(1, D, C));
}

#[test]
fn film_trains_nothing_counted_but_the_head_and_differentiates_every_block() {
    let film = count(AdapterSpec::Film);
    let full = count(AdapterSpec::Full);
    assert_eq!(film.flops.forward, forward(0, 0));
    assert_eq!(film.flops.weight_grads, linear(1, D, C));
    assert_eq!(film.flops.input_grads, full.flops.input_grads);
}

#[test]
fn adaptive_prompts_add_a_frozen_pass_and_the_key_network() {
    let clients = 5;
    let tokens = 2;
    let adaptation = Adaptation {
        adapter: AdapterSpec::AdaptivePrompt {
            tokens: tokens as usize,
            key_loss: 1.0,
        },
        head: HeadSpec::Linear,
        clients: clients as usize,
    };
    let cost = SampleCost::count(&config(), &adaptation);
    let frozen = block(T, T) + block(1, T);
    let keys = linear(1, D, D) + mul(1, D, clients) + mul(1, clients, D) + linear(1, D, tokens * D);
    assert_eq!(cost.flops.forward, forward(tokens, 0) + frozen + keys);
}

#[test]
fn memory_grows_with_the_batch_and_the_optimiser_state() {
    let lora = count(AdapterSpec::Lora {
        rank: 2,
        alpha: 4.0,
        targets: vec![LoraTarget::Q],
    });
    let sgd = Optimizer::Sgd { lr: 0.1 };
    let adam = Optimizer::Adam { lr: 0.1 };
    assert_eq!(
        lora.training_memory(4, &sgd),
        4 * (lora.params + lora.trainable + 4 * lora.saved)
    );
    assert_eq!(
        lora.training_memory(4, &adam) - lora.training_memory(4, &sgd),
        4 * 2 * lora.trainable
    );
    let full = count(AdapterSpec::Full);
    assert!(full.training_memory(4, &sgd) > lora.training_memory(4, &sgd));
    assert!(full.saved > lora.saved);
}
