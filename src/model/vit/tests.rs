//! The encoder's shortcuts against the plain computation.

use burn::tensor::{Device, Distribution, Tensor};

use super::*;
use crate::model::AdapterSpec;
use crate::model::fused::layer_norm;

/// The last block's class-token shortcut gives what the full block gives for the
/// class token, in value and in gradient, through three blocks: memory tokens make the
/// keys and values outnumber the queries of every block.
#[test]
fn the_last_block_computes_the_class_token_as_the_full_block_does() {
    let device = Device::flex().autodiff();
    let config = VitConfig {
        image: 6,
        channels: 1,
        patch: 2,
        dim: 12,
        depth: 3,
        heads: 3,
        mlp: 24,
        classes: 2,
        style: VitStyle::default(),
    };
    let vit = config
        .init(&device)
        .attach(&AdapterSpec::Memory { tokens: 2 }, 1, &device);
    let x = Tensor::<3>::random([3, 1 + config.tokens(), 12], Distribution::Default, &device)
        .require_grad();
    let shortcut = vit.run_blocks(x.clone(), None, None);
    let mut full = x.clone();
    for block in &vit.blocks {
        full = block.forward(full, None, Rows::All);
    }
    let full = layer_norm(&vit.norm, full.narrow(1, 0, 1), vit.epsilon).reshape([3, 12]);
    let weights = Tensor::<2>::random([3, 12], Distribution::Default, &device);
    let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    let gradient = |y: Tensor<2>| {
        let grads = (y * weights.clone()).sum().backward();
        x.grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    for (want, got) in [
        (values(full.clone()), values(shortcut.clone())),
        (gradient(full), gradient(shortcut)),
    ] {
        for (a, b) in want.iter().zip(&got) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
}
