//! Splitting a data set among clients (IID, Dirichlet over labels, few-shot, or sampled
//! with sharing), then each client's shard into local train and test parts.
//!
//! One file on purpose: every partition ends in the same dealing of shards and the same
//! train/test split, which the partitions share here.

use rand::SeedableRng;
use rand::seq::{SliceRandom, index};
use rand_chacha::ChaCha8Rng;
use rand_distr::weighted::WeightedIndex;
use rand_distr::{Distribution, Gamma};
use serde::{Deserialize, Serialize};

/// How samples are spread over clients.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum PartitionSpec {
    /// Shuffled and dealt out evenly.
    Iid,
    /// Per class, proportions over clients drawn from Dirichlet(alpha): small alpha gives
    /// clients few classes each.
    Dirichlet {
        /// Concentration: small gives skewed clients.
        alpha: f64,
    },
    /// Few-shot clients: each holds `shots` images of each of its classes (every class,
    /// or `classes` of them drawn at random per client), no image held twice.
    Shots {
        /// Images of each class a client holds.
        shots: usize,
        /// Classes per client (all when absent).
        #[serde(default)]
        classes: Option<usize>,
    },
    /// McMahan et al.'s pathological split: the images sorted by label are cut into
    /// `clients * classes_per_client` equal shards, and each client gets
    /// `classes_per_client` of them at random (so at most that many classes). Images past
    /// the last whole shard are left out, as Flower's `ShardPartitioner` does.
    Shards {
        /// Shards per client.
        classes_per_client: usize,
    },
    /// One client per group the source gives (LEAF's writers or users, folder domains),
    /// in the source's group order; the scenario's `clients` must equal the groups.
    Natural,
    /// Each client draws `samples` distinct images of its own, but clients may share
    /// images: for populations far larger than the data set (cross-device FL, where a
    /// FedScale trace has ~100k devices). With `alpha`, a client's class mix is drawn from
    /// Dirichlet(alpha) first (label skew); else its images are drawn uniformly.
    Sampled {
        /// Images each client holds (before the local test split).
        samples: usize,
        /// Dirichlet concentration of each client's class mix (uniform draw when absent).
        #[serde(default)]
        alpha: Option<f64>,
    },
}

/// Each client's local training and test indices into the training set.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    /// Each client's local training indices.
    pub train: Vec<Vec<u32>>,
    /// Each client's local test indices.
    pub test: Vec<Vec<u32>>,
}

/// The group (writer, user, domain) of every image, and the groups' names.
#[derive(Clone, Copy, Debug)]
pub struct Groups<'a> {
    /// Each image's group: an index into `names`.
    pub of: &'a [u32],
    /// The groups' names.
    pub names: &'a [String],
}

/// Why no partition could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PartitionError {
    /// Fewer samples than the clients need between them.
    #[error("{clients} clients need at least {min} samples each, but the data has {samples}")]
    TooFewSamples {
        /// Clients to serve.
        clients: usize,
        /// Samples each must hold at least.
        min: usize,
        /// Samples there are.
        samples: usize,
    },
    /// No Dirichlet draw met the minimum.
    #[error(
        "no Dirichlet(alpha = {alpha}) draw gave every client at least {min} samples in {tries} tries; raise alpha or lower min_samples"
    )]
    MinimumNotMet {
        /// The Dirichlet concentration.
        alpha: f64,
        /// Samples each client must hold at least.
        min: usize,
        /// Draws tried.
        tries: usize,
    },
    /// A sampled partition asks each client for more images than the data has.
    #[error("each client draws {samples} images, but the data has {available}")]
    SampledTooMany {
        /// Images each client draws.
        samples: usize,
        /// Images there are.
        available: usize,
    },
    /// A sampled partition gives clients fewer images than the minimum.
    #[error("each client draws {samples} images, below min_samples = {min}")]
    SampledBelowMinimum {
        /// Images each client draws.
        samples: usize,
        /// Samples each client must hold at least.
        min: usize,
    },
    /// A natural partition has one client per group, and the counts differ.
    #[error(
        "a Natural partition gives one client per writer, user or domain: the data has {groups} of them, but data.clients is {clients}"
    )]
    NaturalClients {
        /// Groups in the data.
        groups: usize,
        /// Clients asked for.
        clients: usize,
    },
    /// A natural group holds fewer images than the minimum.
    #[error("\"{group}\" holds {samples} images, below min_samples = {min}")]
    GroupTooSmall {
        /// The group's name.
        group: String,
        /// Images it holds.
        samples: usize,
        /// Samples each client must hold at least.
        min: usize,
    },
    /// Fewer images than the shards need.
    #[error(
        "{shards} shards ({clients} clients x {per_client}) need at least one image each, but the data has {samples}"
    )]
    TooFewForShards {
        /// Shards to cut.
        shards: usize,
        /// Clients to serve.
        clients: usize,
        /// Shards per client.
        per_client: usize,
        /// Images there are.
        samples: usize,
    },
    /// A class ran out of images before every client had its shots.
    #[error("class {class} has too few images for {clients} clients with {shots} shots of it")]
    TooFewShots {
        /// The class that ran out.
        class: usize,
        /// Images of it each client holds.
        shots: usize,
        /// Clients to serve.
        clients: usize,
    },
}

/// Splits `labels` (of images in `groups`) among `clients` and holds `test_fraction` of
/// each shard out for local tests.
pub fn partition(
    labels: &[u8],
    groups: Groups<'_>,
    clients: usize,
    spec: &PartitionSpec,
    min_samples: usize,
    test_fraction: f64,
    seed: u64,
) -> Result<Partition, PartitionError> {
    if let PartitionSpec::Sampled { samples, .. } = *spec {
        // Clients share images, so each needs only its own draw to fit the data.
        if samples > labels.len() {
            return Err(PartitionError::SampledTooMany {
                samples,
                available: labels.len(),
            });
        }
        if samples < min_samples {
            return Err(PartitionError::SampledBelowMinimum {
                samples,
                min: min_samples,
            });
        }
    } else if clients.saturating_mul(min_samples) > labels.len() {
        return Err(PartitionError::TooFewSamples {
            clients,
            min: min_samples,
            samples: labels.len(),
        });
    }
    if clients == 0 {
        return Err(PartitionError::TooFewSamples {
            clients,
            min: min_samples,
            samples: labels.len(),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let shards = match spec {
        PartitionSpec::Iid => {
            let mut idx: Vec<u32> = (0..labels.len() as u32).collect();
            idx.shuffle(&mut rng);
            (0..clients)
                .map(|c| idx.iter().skip(c).step_by(clients).copied().collect())
                .collect()
        }
        PartitionSpec::Dirichlet { alpha } => {
            dirichlet(labels, clients, *alpha, min_samples, &mut rng)?
        }
        PartitionSpec::Shots { shots, classes } => {
            few_shot(labels, clients, *shots, *classes, &mut rng)?
        }
        PartitionSpec::Sampled { samples, alpha } => {
            sampled(labels, clients, *samples, *alpha, &mut rng)
        }
        PartitionSpec::Shards { classes_per_client } => {
            shards(labels, clients, *classes_per_client, &mut rng)?
        }
        PartitionSpec::Natural => natural(groups, clients, min_samples)?,
    };
    let mut train = Vec::with_capacity(clients);
    let mut test = Vec::with_capacity(clients);
    for mut shard in shards {
        shard.shuffle(&mut rng);
        let n_test = if shard.len() >= 2 {
            ((shard.len() as f64 * test_fraction).round() as usize)
                .clamp(usize::from(test_fraction > 0.0), shard.len() - 1)
        } else {
            0
        };
        let tr = shard.split_off(n_test);
        test.push(shard);
        train.push(tr);
    }
    Ok(Partition { train, test })
}

/// Deals `shots` images of each of a client's classes to every client in turn.
fn few_shot(
    labels: &[u8],
    clients: usize,
    shots: usize,
    classes: Option<usize>,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Vec<u32>>, PartitionError> {
    let mut by_class = by_class(labels);
    by_class.iter_mut().for_each(|m| m.shuffle(rng));
    let all: Vec<usize> = (0..by_class.len()).collect();
    let mut shards = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut mine = all.clone();
        mine.shuffle(rng);
        mine.truncate(classes.unwrap_or(all.len()));
        mine.sort_unstable();
        // Sized as it fills: `shots` is the user's, and may ask for more than there is.
        let mut shard = Vec::new();
        for k in mine {
            let members = &mut by_class[k];
            if members.len() < shots {
                return Err(PartitionError::TooFewShots {
                    class: k,
                    shots,
                    clients,
                });
            }
            shard.extend(members.split_off(members.len() - shots));
        }
        shards.push(shard);
    }
    Ok(shards)
}

/// Cuts the images sorted by label (shuffled within each class) into
/// `clients * per_client` equal shards and deals `per_client` random ones to each client.
fn shards(
    labels: &[u8],
    clients: usize,
    per_client: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Vec<u32>>, PartitionError> {
    let count = clients.saturating_mul(per_client);
    if count == 0 || count > labels.len() {
        return Err(PartitionError::TooFewForShards {
            shards: count,
            clients,
            per_client,
            samples: labels.len(),
        });
    }
    let mut sorted = by_class(labels);
    sorted.iter_mut().for_each(|m| m.shuffle(rng));
    let sorted: Vec<u32> = sorted.concat();
    let size = labels.len() / count;
    let mut order: Vec<usize> = (0..count).collect();
    order.shuffle(rng);
    Ok(order
        .chunks(per_client)
        .map(|mine| {
            mine.iter()
                .flat_map(|&s| sorted[s * size..(s + 1) * size].iter().copied())
                .collect()
        })
        .collect())
}

/// One shard per group present, in group order.
fn natural(
    groups: Groups<'_>,
    clients: usize,
    min: usize,
) -> Result<Vec<Vec<u32>>, PartitionError> {
    let mut by_group: Vec<Vec<u32>> = vec![Vec::new(); groups.names.len()];
    for (i, &g) in groups.of.iter().enumerate() {
        by_group[g as usize].push(i as u32);
    }
    by_group.retain(|members| !members.is_empty());
    if by_group.len() != clients {
        return Err(PartitionError::NaturalClients {
            groups: by_group.len(),
            clients,
        });
    }
    if let Some(small) = by_group.iter().find(|m| m.len() < min) {
        return Err(PartitionError::GroupTooSmall {
            group: groups.names[groups.of[small[0] as usize] as usize].clone(),
            samples: small.len(),
            min,
        });
    }
    Ok(by_group)
}

fn by_class(labels: &[u8]) -> Vec<Vec<u32>> {
    let classes = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut by_class: Vec<Vec<u32>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i as u32);
    }
    by_class
}

/// Draws `samples` distinct images per client, shared between clients; with `alpha`,
/// through a Dirichlet(alpha) class mix per client.
fn sampled(
    labels: &[u8],
    clients: usize,
    samples: usize,
    alpha: Option<f64>,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<u32>> {
    let Some(alpha) = alpha else {
        return (0..clients)
            .map(|_| {
                let mut shard: Vec<u32> = index::sample(rng, labels.len(), samples)
                    .into_iter()
                    .map(|i| i as u32)
                    .collect();
                shard.sort_unstable();
                shard
            })
            .collect();
    };
    let by_class = by_class(labels);
    let gamma = Gamma::new(alpha, 1.0).expect("alpha validated > 0");
    let mut weights = vec![0.0; by_class.len()];
    let mut counts = vec![0usize; by_class.len()];
    (0..clients)
        .map(|_| {
            for (w, members) in weights.iter_mut().zip(&by_class) {
                // Classes with no images can hold no share.
                *w = if members.is_empty() {
                    0.0
                } else {
                    gamma.sample(rng) + 1e-300
                };
            }
            let mix = WeightedIndex::new(&weights).expect("some class has images");
            counts.fill(0);
            let mut drawn = 0;
            while drawn < samples {
                let k = mix.sample(rng);
                // A class runs out only when the client asks for more than it has; its
                // draws then go to the other classes.
                if counts[k] < by_class[k].len() {
                    counts[k] += 1;
                    drawn += 1;
                }
            }
            let mut shard = Vec::with_capacity(samples);
            for (members, &n) in by_class.iter().zip(&counts) {
                shard.extend(
                    index::sample(rng, members.len(), n)
                        .into_iter()
                        .map(|i| members[i]),
                );
            }
            shard.sort_unstable();
            shard
        })
        .collect()
}

const DIRICHLET_TRIES: usize = 1000;

fn dirichlet(
    labels: &[u8],
    clients: usize,
    alpha: f64,
    min: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Vec<u32>>, PartitionError> {
    let by_class = by_class(labels);
    let gamma = Gamma::new(alpha, 1.0).expect("alpha validated > 0");
    for _ in 0..DIRICHLET_TRIES {
        let mut shards: Vec<Vec<u32>> = vec![Vec::new(); clients];
        for members in &by_class {
            let mut members = members.clone();
            members.shuffle(rng);
            let weights: Vec<f64> = (0..clients).map(|_| gamma.sample(rng) + 1e-300).collect();
            let total: f64 = weights.iter().sum();
            // Cumulative cut points, so every sample goes to exactly one client.
            let mut acc = 0.0;
            let mut start = 0usize;
            for (c, w) in weights.iter().enumerate() {
                acc += w / total;
                let end = if c + 1 == clients {
                    members.len()
                } else {
                    ((acc * members.len() as f64).round() as usize).min(members.len())
                };
                shards[c].extend_from_slice(&members[start..end.max(start)]);
                start = end.max(start);
            }
        }
        if shards.iter().all(|s| s.len() >= min) {
            return Ok(shards);
        }
    }
    Err(PartitionError::MinimumNotMet {
        alpha,
        min,
        tries: DIRICHLET_TRIES,
    })
}

#[cfg(test)]
mod tests;
