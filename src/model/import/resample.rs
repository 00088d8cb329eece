//! Position embeddings on another patch grid, as timm resamples them: bicubic with
//! antialiasing (`F.interpolate(mode="bicubic", antialias=True)`), the class token apart.

/// The `[old, old, width]` grid `values` resampled to `[new, new, width]`.
///
/// Separable: rows first, then columns, each output a normalised sum of the inputs within
/// the filter's reach, as PyTorch's antialiased kernel does (Keys' cubic with `a = -0.5`,
/// stretched by the scale when shrinking).
pub(crate) fn resample_grid(values: &[f32], old: usize, new: usize, width: usize) -> Vec<f32> {
    assert_eq!(
        values.len(),
        old * old * width,
        "grid of {old}x{old}x{width}"
    );
    let taps = weights(old, new);
    // Along x: [old rows, new columns, width].
    let mut rows = vec![0.0f32; old * new * width];
    for y in 0..old {
        for (x, (start, w)) in taps.iter().enumerate() {
            let out = &mut rows[(y * new + x) * width..][..width];
            for (k, &wk) in w.iter().enumerate() {
                let src = &values[(y * old + start + k) * width..][..width];
                for (o, &s) in out.iter_mut().zip(src) {
                    *o += wk * s;
                }
            }
        }
    }
    // Along y: [new, new, width].
    let mut out = vec![0.0f32; new * new * width];
    for (y, (start, w)) in taps.iter().enumerate() {
        for x in 0..new {
            let dst = &mut out[(y * new + x) * width..][..width];
            for (k, &wk) in w.iter().enumerate() {
                let src = &rows[((start + k) * new + x) * width..][..width];
                for (o, &s) in dst.iter_mut().zip(src) {
                    *o += wk * s;
                }
            }
        }
    }
    out
}

/// For every output index, the first input index it reads and the weights of the inputs
/// from there on.
fn weights(input: usize, output: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = input as f64 / output as f64;
    let (support, stretch) = if scale >= 1.0 {
        (2.0 * scale, 1.0 / scale)
    } else {
        (2.0, 1.0)
    };
    (0..output)
        .map(|i| {
            let centre = scale * (i as f64 + 0.5);
            // Truncation toward zero, then clamping, as PyTorch's integer casts do.
            let min = ((centre - support + 0.5) as i64).max(0) as usize;
            let max = ((centre + support + 0.5) as i64).min(input as i64) as usize;
            let raw: Vec<f64> = (min..max)
                .map(|j| cubic((j as f64 - centre + 0.5) * stretch))
                .collect();
            let total: f64 = raw.iter().sum();
            let w = raw
                .iter()
                .map(|&w| if total != 0.0 { w / total } else { w } as f32)
                .collect();
            (min, w)
        })
        .collect()
}

/// Keys' cubic convolution kernel with `a = -0.5` (PIL's and PyTorch's antialiased one).
fn cubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enlarging_a_constant_grid_keeps_it_constant() {
        let out = resample_grid(&[2.0; 4 * 3], 2, 5, 3);
        assert!(out.iter().all(|v| (v - 2.0).abs() < 1e-6));
        assert_eq!(out.len(), 5 * 5 * 3);
    }

    /// Same size: every output is its own input (the kernel is 1 at 0 and 0 at ±1, ±2).
    #[test]
    fn the_same_grid_comes_back_unchanged() {
        let values: Vec<f32> = (0..3 * 3 * 2).map(|v| v as f32 * 0.37 - 1.0).collect();
        let out = resample_grid(&values, 3, 3, 2);
        for (a, b) in values.iter().zip(&out) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    /// Every output row's weights sum to one, enlarging and shrinking, and shrinking by
    /// four reaches over sixteen inputs (the filter stretched by the scale).
    #[test]
    fn weights_are_normalised_and_stretched_when_shrinking() {
        for (input, output) in [(2, 7), (7, 2), (14, 4), (16, 4)] {
            for (_, w) in weights(input, output) {
                let total: f32 = w.iter().sum();
                assert!((total - 1.0).abs() < 1e-6, "{input}->{output}: {total}");
            }
        }
        let (start, w) = &weights(64, 16)[8];
        assert_eq!((*start, w.len()), (26, 16));
    }
}
