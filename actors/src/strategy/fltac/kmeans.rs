//! k-means with k-means++ seeding and Lloyd's iterations, in f64 over f32 points.

use rand::Rng;

use crate::strategy::weighted_mean;

/// Squared Euclidean distance, accumulated in f64.
pub(super) fn distance2(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x as f64 - y as f64;
            d * d
        })
        .sum()
}

/// The within-cluster sum of squared distances to the cluster means.
pub(crate) fn inertia(points: &[&[f32]], labels: &[usize]) -> f64 {
    let k = labels.iter().max().map_or(0, |&m| m + 1);
    (0..k)
        .map(|c| {
            let members: Vec<(&[f32], f64)> = points
                .iter()
                .zip(labels)
                .filter(|(_, l)| **l == c)
                .map(|(p, _)| (*p, 1.0))
                .collect();
            let mean = weighted_mean(&members);
            members
                .iter()
                .map(|(p, _)| distance2(p, &mean))
                .sum::<f64>()
        })
        .sum()
}

/// k-means of `points` into `k` clusters: k-means++ seeding from `rng`, then Lloyd
/// iterations (at most `iterations`, fewer once assignments settle). Returns each point's
/// cluster in `0..k`; ties go to the lower cluster, an emptied cluster keeps its centre.
pub(crate) fn kmeans(
    points: &[&[f32]],
    k: usize,
    iterations: usize,
    rng: &mut impl Rng,
) -> Vec<usize> {
    if points.is_empty() || k == 0 {
        return vec![0; points.len()];
    }
    let k = k.min(points.len());
    let mut centres: Vec<Vec<f32>> = vec![points[rng.random_range(0..points.len())].to_vec()];
    while centres.len() < k {
        let d2: Vec<f64> = points
            .iter()
            .map(|p| {
                centres
                    .iter()
                    .map(|c| distance2(p, c))
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let mut r = rng.random::<f64>() * total;
            d2.iter()
                .position(|&d| {
                    r -= d;
                    r < 0.0 && d > 0.0
                })
                .unwrap_or_else(|| d2.iter().rposition(|&d| d > 0.0).expect("total > 0"))
        } else {
            // Every point sits on a centre already: any choice gives the same clusters.
            rng.random_range(0..points.len())
        };
        centres.push(points[pick].to_vec());
    }
    lloyd(points, centres, iterations)
}

/// Lloyd's iterations from `centres` (at most `iterations`, fewer once assignments
/// settle): each point's cluster, the index of its nearest centre (ties to the lower); an
/// emptied cluster keeps its centre.
pub(super) fn lloyd(
    points: &[&[f32]],
    mut centres: Vec<Vec<f32>>,
    iterations: usize,
) -> Vec<usize> {
    let nearest = |p: &[f32], centres: &[Vec<f32>]| {
        let mut best = (0, f64::INFINITY);
        for (c, centre) in centres.iter().enumerate() {
            let d = distance2(p, centre);
            if d < best.1 {
                best = (c, d);
            }
        }
        best.0
    };
    let mut labels: Vec<usize> = points.iter().map(|p| nearest(p, &centres)).collect();
    for _ in 0..iterations {
        for (c, centre) in centres.iter_mut().enumerate() {
            let members: Vec<(&[f32], f64)> = points
                .iter()
                .zip(&labels)
                .filter(|(_, l)| **l == c)
                .map(|(p, _)| (*p, 1.0))
                .collect();
            if !members.is_empty() {
                *centre = weighted_mean(&members);
            }
        }
        let next: Vec<usize> = points.iter().map(|p| nearest(p, &centres)).collect();
        if next == labels {
            break;
        }
        labels = next;
    }
    labels
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn kmeans_separates_two_pairs() {
        use rand::SeedableRng;
        let points: [&[f32]; 4] = [&[0.0, 0.0], &[10.0, 10.0], &[0.5, 0.0], &[10.0, 9.5]];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let labels = kmeans(&points, 2, 10, &mut rng);
        assert_eq!(labels[0], labels[2]);
        assert_eq!(labels[1], labels[3]);
        assert_ne!(labels[0], labels[1]);
    }
    use crate::rng::SimRng;

    fn rng(seed: u64) -> SimRng {
        SimRng::seed_from_u64(seed)
    }

    use crate::strategy::fltac::tests::groups;

    #[test]
    fn kmeans_finds_known_clusters_for_any_seed() {
        let points = groups();
        let refs: Vec<&[f32]> = points.iter().map(|p| p.as_slice()).collect();
        for seed in 0..20 {
            let labels = kmeans(&refs, 3, 20, &mut rng(seed));
            for (i, &l) in labels.iter().enumerate() {
                assert_eq!(l, labels[i % 3], "seed {seed}: point {i}");
            }
            let mut distinct = labels[..3].to_vec();
            distinct.sort_unstable();
            assert_eq!(distinct, vec![0, 1, 2], "seed {seed}");
        }
    }

    #[test]
    fn kmeans_is_deterministic_per_seed() {
        let points: Vec<Vec<f32>> = (0..30)
            .map(|i| vec![(i * 7 % 11) as f32, (i * 3 % 5) as f32])
            .collect();
        let refs: Vec<&[f32]> = points.iter().map(|p| p.as_slice()).collect();
        assert_eq!(
            kmeans(&refs, 4, 50, &mut rng(9)),
            kmeans(&refs, 4, 50, &mut rng(9))
        );
    }
}
