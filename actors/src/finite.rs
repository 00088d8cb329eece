//! Whether values are finite: checked on every update and model, so written to vectorise.

/// Whether every value is finite (neither NaN nor infinite). `v - v` is zero for a finite
/// value and NaN otherwise, and NaN survives any sum: sixteen independent running sums
/// let the compiler use vector instructions, with no branch per value.
#[allow(clippy::eq_op)] // `v - v` is the point: zero, or NaN for a non-finite `v`
pub(crate) fn all_finite(values: &[f32]) -> bool {
    let mut lanes = [0.0f32; 16];
    let chunks = values.chunks_exact(16);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += v - v;
        }
    }
    lanes.iter().all(|&l| l == 0.0) && rest.iter().all(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::all_finite;

    #[test]
    fn non_finite_values_are_found_anywhere() {
        let mut v = vec![f32::MAX, -f32::MAX, f32::MIN_POSITIVE, 1e-45, -0.0, 1.0];
        v.resize(1_000, 0.5);
        assert!(all_finite(&v));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for at in [0, 255, 256, 999] {
                let mut w = v.clone();
                w[at] = bad;
                assert!(!all_finite(&w), "{bad} at {at}");
            }
        }
        assert!(all_finite(&[]));
    }
}
