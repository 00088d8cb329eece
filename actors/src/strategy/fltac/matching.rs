//! Matching new clusters to the server's previous models, exactly.

use super::kmeans::distance2;
use crate::config::MAX_CLUSTERS;

/// Matches each of `clusters` (their means) to a distinct one of `models`, minimising the
/// total squared distance; ties go to the assignment that is first in lexicographic order.
/// Needs `clusters.len() <= models.len() <= MAX_CLUSTERS`.
pub(crate) fn match_clusters(clusters: &[Vec<f32>], models: &[&[f32]]) -> Vec<usize> {
    assert!(clusters.len() <= models.len() && models.len() <= MAX_CLUSTERS);
    let cost: Vec<Vec<f64>> = clusters
        .iter()
        .map(|c| models.iter().map(|m| distance2(c, m)).collect())
        .collect();
    let mut best = (f64::INFINITY, Vec::new());
    let mut current = Vec::with_capacity(clusters.len());
    search(
        &cost,
        &mut vec![false; models.len()],
        &mut current,
        0.0,
        &mut best,
    );
    best.1
}

fn search(
    cost: &[Vec<f64>],
    taken: &mut [bool],
    current: &mut Vec<usize>,
    sum: f64,
    best: &mut (f64, Vec<usize>),
) {
    if current.len() == cost.len() {
        if sum < best.0 {
            *best = (sum, current.clone());
        }
        return;
    }
    let row = &cost[current.len()];
    for m in 0..taken.len() {
        if !taken[m] {
            taken[m] = true;
            current.push(m);
            search(cost, taken, current, sum + row[m], best);
            current.pop();
            taken[m] = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_go_to_their_nearest_models() {
        let models: [&[f32]; 3] = [&[0.0], &[5.0], &[9.0]];
        let clusters = [vec![8.5], vec![0.2]];
        assert_eq!(match_clusters(&clusters, &models), vec![2, 0]);
    }

    #[test]
    fn matching_is_exact_not_greedy() {
        // Greedy in cluster order would give cluster 0 model 1 (cost 1), leaving cluster 1
        // model 0 (cost 25); the optimum pairs them the other way (9 + 1).
        let models: [&[f32]; 2] = [&[0.0], &[4.0]];
        let clusters = [vec![3.0], vec![5.0]];
        assert_eq!(match_clusters(&clusters, &models), vec![0, 1]);
        let models: [&[f32]; 2] = [&[0.0], &[3.0]];
        let clusters = [vec![2.0], vec![-3.0]];
        assert_eq!(match_clusters(&clusters, &models), vec![1, 0]);
    }
}
