//! Lossy value formats: floats rounded to a narrower type, and Int8 with a scale per tensor.

use half::{bf16, f16};
use rand::Rng;

use super::{Encoding, Rounding};
use crate::rng::SimRng;

/// Float formats: each value rounded to the format and back.
pub(super) fn round_float(encoding: Encoding, values: &mut [f32]) {
    match encoding {
        Encoding::F16 => values
            .iter_mut()
            .for_each(|v| *v = f16::from_f32(*v).to_f32()),
        Encoding::Bf16 => values
            .iter_mut()
            .for_each(|v| *v = bf16::from_f32(*v).to_f32()),
        _ => {}
    }
}

/// Replaces `values` with their Int8 decoding, tensor by tensor (`layout` lengths; a
/// layout that does not cover `values` counts as one tensor).
pub(super) fn quantize_int8(
    values: &mut [f32],
    layout: &[usize],
    rounding: Rounding,
    rng: &mut SimRng,
) {
    let whole = [values.len()];
    let layout = if layout.iter().sum::<usize>() == values.len() {
        layout
    } else {
        &whole
    };
    let mut start = 0;
    for &n in layout {
        let tensor = &mut values[start..start + n];
        start += n;
        let max = tensor.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if max == 0.0 || !max.is_finite() {
            tensor.fill(0.0);
            continue;
        }
        let scale = max / 127.0;
        for v in tensor.iter_mut() {
            let x = *v / scale;
            let q = match rounding {
                Rounding::Nearest => x.round(),
                Rounding::Stochastic => (x + rng.random::<f32>()).floor(),
            };
            *v = q.clamp(-127.0, 127.0) * scale;
        }
    }
}
