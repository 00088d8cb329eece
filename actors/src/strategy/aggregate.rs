//! The arithmetic of aggregation: means and mixes of flat parameter vectors, in f64.

/// The weighted mean of parameter vectors, accumulated in f64. The weights are sample
/// counts, never all zero: the server discards updates trained on no samples.
pub(crate) fn weighted_mean(items: &[(&[f32], f64)]) -> Vec<f32> {
    let Some((first, _)) = items.first() else {
        return Vec::new();
    };
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    debug_assert!(total > 0.0, "a mean of updates with no samples behind them");
    let mut acc = vec![0f64; first.len()];
    for (values, w) in items {
        for (a, &v) in acc.iter_mut().zip(values.iter()) {
            *a += w * v as f64;
        }
    }
    acc.into_iter().map(|a| (a / total) as f32).collect()
}

/// `(1 - a) w + a u`, accumulated in f64, written over `u`: the update's buffer becomes
/// the new model, so mixing allocates nothing and writes only where it has just read.
pub(crate) fn mix_into(global: &[f32], update: &mut [f32], a: f64) {
    debug_assert_eq!(
        global.len(),
        update.len(),
        "a model and its update differ in length"
    );
    for (u, &w) in update.iter_mut().zip(global) {
        *u = ((1.0 - a) * w as f64 + a * *u as f64) as f32;
    }
}

/// `w + lr · (1/K) Σ s_i Δ_i` for `K` deltas with staleness weights `s_i`, in f64.
pub(crate) fn apply_buffer(global: &[f32], deltas: &[(&[f32], f64)], lr: f64) -> Vec<f32> {
    let k = deltas.len() as f64;
    let mut acc: Vec<f64> = global.iter().map(|&w| w as f64).collect();
    for (delta, s) in deltas {
        for (a, &d) in acc.iter_mut().zip(delta.iter()) {
            *a += lr * s * d as f64 / k;
        }
    }
    acc.into_iter().map(|a| a as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_mean_weighs_each_vector() {
        let m = weighted_mean(&[(&[1.0, 0.0], 1.0), (&[4.0, 3.0], 2.0)]);
        assert_eq!(m, vec![3.0, 2.0]);
    }

    #[test]
    fn mix_moves_a_fraction_towards_the_update() {
        let mut update = [3.0, 6.0];
        mix_into(&[1.0, 2.0], &mut update, 0.25);
        assert_eq!(update, [1.5, 3.0]);
    }

    #[test]
    fn apply_buffer_adds_the_mean_weighted_delta() {
        let deltas: [(&[f32], f64); 2] = [(&[2.0, 0.0], 1.0), (&[4.0, 2.0], 0.5)];
        assert_eq!(apply_buffer(&[1.0, 1.0], &deltas, 0.5), vec![2.0, 1.25]);
    }
}
