//! FL-TAC (Ping et al. 2024): every client trains one adapter per task it holds; the server
//! clusters the adapters it receives with k-means and aggregates inside each cluster, so
//! each task gets a model of its own without the server being told which adapter is for
//! which task.
//!
//! The clustering plugs into the synchronous ([`FedAvg`](super::FedAvg)) and buffered
//! ([`FedBuff`](super::FedBuff)) servers: they cluster each round's (or each flush's)
//! adapters and keep one model per cluster. Clusters are matched to the previous models by
//! the least total squared distance between the new clusters' means and the old models, so
//! a model's identity (and the clients routed to it) stays stable across rounds.

mod kmeans;
mod matching;

pub(crate) use kmeans::{inertia, kmeans};
pub(crate) use matching::match_clusters;

use super::{apply_buffer, weighted_mean};
use crate::config::Clustering;
use crate::learner::ClientId;
use crate::learner::Params;
use crate::message::UpdateMsg;
use crate::rng::SimRng;
use crate::server::ServerCtx;
use kmeans::lloyd;

/// One adapter to cluster: whose, which slot, its values and its weight in averages.
#[derive(Clone, Debug)]
pub(crate) struct Member<'a> {
    pub client: ClientId,
    pub slot: usize,
    pub params: &'a [f32],
    pub weight: f64,
}

/// Clusters adapters and keeps cluster identities stable, with its own random stream.
pub(crate) struct Clusterer {
    config: Clustering,
    rng: SimRng,
}

impl Clusterer {
    pub(crate) fn new(config: Clustering, rng: SimRng) -> Self {
        Self { config, rng }
    }

    /// Clusters `members` (k-means, at most `k` clusters) and matches every non-empty
    /// cluster to one of `models`, the clusters' previous models: returns each member's
    /// model index.
    pub(crate) fn cluster(&mut self, members: &[Member<'_>], models: &[Params]) -> Vec<usize> {
        let points: Vec<&[f32]> = members.iter().map(|m| m.params).collect();
        let distinct = models.iter().any(|m| m != &models[0]);
        if self.config.warm_start && distinct {
            let centres = models.iter().map(|m| m.to_vec()).collect();
            return lloyd(&points, centres, self.config.iterations);
        }
        let k = self.config.k.min(models.len()).min(points.len());
        let mut best: Option<(f64, Vec<usize>)> = None;
        for _ in 0..self.config.restarts.max(1) {
            let labels = kmeans(&points, k, self.config.iterations, &mut self.rng);
            let cost = inertia(&points, &labels);
            if best.as_ref().is_none_or(|(b, _)| cost < *b) {
                best = Some((cost, labels));
            }
        }
        let (_, labels) = best.expect("at least one run");
        let clusters = by_model(&labels);
        let means: Vec<Vec<f32>> = clusters
            .iter()
            .map(|(_, idx)| mean_of(members, idx))
            .collect();
        let models: Vec<&[f32]> = models.iter().map(|m| m.as_slice()).collect();
        let matched = match_clusters(&means, &models);
        let mut routed = labels;
        for ((_, idx), &model) in clusters.iter().zip(&matched) {
            for &i in idx {
                routed[i] = model;
            }
        }
        routed
    }
}

/// The members routed to each model, in model order: `(model, member indices)`.
fn by_model(routed: &[usize]) -> Vec<(usize, Vec<usize>)> {
    let mut models: Vec<usize> = routed.to_vec();
    models.sort_unstable();
    models.dedup();
    models
        .into_iter()
        .map(|m| (m, (0..routed.len()).filter(|&i| routed[i] == m).collect()))
        .collect()
}

/// The weighted mean of members `idx`.
fn mean_of(members: &[Member<'_>], idx: &[usize]) -> Vec<f32> {
    let items: Vec<(&[f32], f64)> = idx
        .iter()
        .map(|&i| (members[i].params, members[i].weight))
        .collect();
    weighted_mean(&items)
}

/// Every adapter of `updates` as a clustering member, weighted by its samples.
fn members(updates: &[UpdateMsg]) -> Vec<Member<'_>> {
    updates
        .iter()
        .flat_map(|u| {
            u.adapters.iter().enumerate().map(|(slot, a)| Member {
                client: u.client,
                slot,
                params: &a.params,
                weight: a.num_samples as f64,
            })
        })
        .collect()
}

impl Clusterer {
    /// Synchronous FL-TAC: clusters the round's adapters, replaces each cluster's model by
    /// the sample-weighted mean of its adapters and routes the adapters' slots to it.
    pub(crate) fn aggregate(
        &mut self,
        ctx: &mut ServerCtx<'_>,
        updates: &[UpdateMsg],
        contributors: &[ClientId],
    ) {
        let members = members(updates);
        let routed = self.cluster(&members, ctx.models());
        let models = by_model(&routed)
            .into_iter()
            .map(|(m, idx)| (m, mean_of(&members, &idx)))
            .collect();
        ctx.apply_models(models, contributors);
        ctx.assign(&assignments(&members, &routed));
    }

    /// Buffered FL-TAC: clusters the buffer's adapters, then applies to each cluster's
    /// model the staleness-weighted mean of its members' deltas (`deltas[i]` with weight
    /// `s[i]` belongs to `members[i]`) with server learning rate `lr`.
    pub(crate) fn apply_buffer(
        &mut self,
        ctx: &mut ServerCtx<'_>,
        members: &[Member<'_>],
        deltas: &[(&[f32], f64)],
        lr: f64,
        contributors: &[ClientId],
    ) {
        let routed = self.cluster(members, ctx.models());
        let models = by_model(&routed)
            .into_iter()
            .map(|(m, idx)| {
                let mine: Vec<(&[f32], f64)> = idx.iter().map(|&i| deltas[i]).collect();
                (m, apply_buffer(&ctx.models()[m], &mine, lr))
            })
            .collect();
        ctx.apply_models(models, contributors);
        ctx.assign(&assignments(members, &routed));
    }
}

fn assignments(members: &[Member<'_>], routed: &[usize]) -> Vec<(ClientId, usize, usize)> {
    members
        .iter()
        .zip(routed)
        .map(|(m, &model)| (m.client, m.slot, model))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::SeedableRng;

    use super::*;

    fn rng(seed: u64) -> SimRng {
        SimRng::seed_from_u64(seed)
    }

    /// Each point as client `i`'s only adapter, of weight 1.
    fn as_members(points: &[Vec<f32>]) -> Vec<Member<'_>> {
        points
            .iter()
            .enumerate()
            .map(|(i, p)| Member {
                client: i,
                slot: 0,
                params: p,
                weight: 1.0,
            })
            .collect()
    }

    fn config(restarts: usize, warm_start: bool) -> Clustering {
        Clustering {
            k: 3,
            iterations: 20,
            restarts,
            warm_start,
        }
    }

    /// Three well separated groups of four points in 3-D.
    pub(super) fn groups() -> Vec<Vec<f32>> {
        let centres = [[0.0f32, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 5.0]];
        let jitter = [
            [0.1f32, 0.0, 0.0],
            [0.0, -0.2, 0.1],
            [-0.1, 0.1, 0.0],
            [0.0, 0.0, -0.3],
        ];
        (0..12)
            .map(|i| {
                let (c, j) = (centres[i % 3], jitter[i / 3]);
                vec![c[0] + j[0], c[1] + j[1], c[2] + j[2]]
            })
            .collect()
    }

    #[test]
    fn identities_stay_when_centroids_move_slightly() {
        let points = groups();
        let members = as_members(&points);
        // Last round's models, listed in an order unrelated to k-means' labels.
        let models: Vec<Params> = [[0.0f32, 10.3, 5.0], [0.2, 0.1, 0.0], [9.8, 0.0, 0.2]]
            .iter()
            .map(|m| Arc::new(m.to_vec()))
            .collect();
        for seed in 0..10 {
            let mut clusterer = Clusterer::new(config(1, false), rng(seed));
            let routed = clusterer.cluster(&members, &models);
            let expected: Vec<usize> = (0..12).map(|i| [1, 2, 0][i % 3]).collect();
            assert_eq!(routed, expected, "seed {seed}");
        }
    }

    #[test]
    fn restarts_keep_the_tightest_clustering() {
        // Two tight pairs and a far point: a seeding that starts in one pair can end with
        // that pair split; the best of several runs never does.
        let points: Vec<Vec<f32>> = vec![vec![0.0], vec![0.1], vec![5.0], vec![5.1], vec![100.0]];
        let refs: Vec<&[f32]> = points.iter().map(|p| p.as_slice()).collect();
        let tight = inertia(&refs, &[0, 0, 1, 1, 2]);
        assert!((tight - 0.01).abs() < 1e-6);
        let members = as_members(&points);
        let models: Vec<Params> = (0..3).map(|_| Arc::new(vec![0.0])).collect();
        for seed in 0..20 {
            let routed = Clusterer::new(config(8, false), rng(seed)).cluster(&members, &models);
            assert_eq!(routed[0], routed[1], "seed {seed}");
            assert_eq!(routed[2], routed[3], "seed {seed}");
            assert_ne!(routed[0], routed[2], "seed {seed}");
            assert_ne!(routed[2], routed[4], "seed {seed}");
        }
    }

    #[test]
    fn a_warm_start_leaves_a_missing_task_alone() {
        // Three distinct models; this flush holds adapters of the first two tasks only.
        let models: Vec<Params> = [0.0f32, 10.0, 20.0]
            .iter()
            .map(|&v| Arc::new(vec![v]))
            .collect();
        let points: Vec<Vec<f32>> = [0.5f32, 1.5, 2.0, 9.0, 11.0]
            .iter()
            .map(|&v| vec![v])
            .collect();
        let members = as_members(&points);
        let warm = Clusterer::new(config(8, true), rng(1)).cluster(&members, &models);
        assert_eq!(warm, vec![0, 0, 0, 1, 1]);
        // Fresh seedings must use three clusters, so one task is split in two.
        let fresh = Clusterer::new(config(8, false), rng(1)).cluster(&members, &models);
        let mut used = fresh.clone();
        used.sort_unstable();
        used.dedup();
        assert_eq!(used.len(), 3);
    }
}
