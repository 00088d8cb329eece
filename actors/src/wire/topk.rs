//! Top-k sparsification with error feedback.

/// Error-feedback top-k: adds `residual` to `delta`, keeps the `k` largest magnitudes in
/// `delta` (ties to the lower index) and moves everything else into `residual`.
pub(super) fn top_k(delta: &mut [f32], residual: &mut [f32], k: usize) {
    for (d, r) in delta.iter_mut().zip(residual.iter()) {
        *d += r;
    }
    let mut order: Vec<usize> = (0..delta.len()).collect();
    let by_magnitude =
        |a: &usize, b: &usize| delta[*b].abs().total_cmp(&delta[*a].abs()).then(a.cmp(b));
    if k < order.len() {
        order.select_nth_unstable_by(k, by_magnitude);
    }
    let mut sent = vec![false; delta.len()];
    for &i in &order[..k] {
        sent[i] = true;
    }
    for (i, (d, r)) in delta.iter_mut().zip(residual.iter_mut()).enumerate() {
        if sent[i] {
            *r = 0.0;
        } else {
            *r = *d;
            *d = 0.0;
        }
    }
}
