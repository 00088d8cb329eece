//! The partitions' sizes, overlaps and errors.

use super::*;

const NO_GROUPS: Groups<'static> = Groups {
    of: &[],
    names: &[],
};

fn labels() -> Vec<u8> {
    (0..1000).map(|i| (i % 10) as u8).collect()
}

#[test]
fn every_sample_goes_to_exactly_one_place() {
    for spec in [PartitionSpec::Iid, PartitionSpec::Dirichlet { alpha: 0.5 }] {
        let p = partition(&labels(), NO_GROUPS, 20, &spec, 10, 0.2, 3).unwrap();
        let mut all: Vec<u32> = p.train.iter().chain(&p.test).flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<u32>>());
        for (tr, te) in p.train.iter().zip(&p.test) {
            assert!(tr.len() + te.len() >= 10);
            assert!(!te.is_empty());
        }
        assert_eq!(
            p,
            partition(&labels(), NO_GROUPS, 20, &spec, 10, 0.2, 3).unwrap()
        );
    }
}

#[test]
fn small_alpha_skews_labels() {
    let l = labels();
    let p = partition(
        &l,
        NO_GROUPS,
        10,
        &PartitionSpec::Dirichlet { alpha: 0.1 },
        5,
        0.0,
        1,
    )
    .unwrap();
    // With alpha = 0.1 a typical client is dominated by one or two classes.
    let dominant: f64 = p
        .train
        .iter()
        .map(|s| {
            let mut counts = [0usize; 10];
            s.iter().for_each(|&i| counts[l[i as usize] as usize] += 1);
            *counts.iter().max().unwrap() as f64 / s.len() as f64
        })
        .sum::<f64>()
        / 10.0;
    assert!(dominant > 0.5, "mean dominant-class share {dominant}");
}

#[test]
fn few_shot_clients_hold_exactly_their_shots() {
    let l = labels();
    let spec = PartitionSpec::Shots {
        shots: 4,
        classes: Some(3),
    };
    let p = partition(&l, NO_GROUPS, 12, &spec, 1, 0.0, 5).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for shard in &p.train {
        let mut counts = [0usize; 10];
        for &i in shard {
            assert!(seen.insert(i), "image {i} held twice");
            counts[l[i as usize] as usize] += 1;
        }
        let held: Vec<usize> = counts.into_iter().filter(|&c| c > 0).collect();
        assert_eq!(held, vec![4, 4, 4]);
    }
    let too_many = PartitionSpec::Shots {
        shots: 30,
        classes: None,
    };
    assert!(matches!(
        partition(&l, NO_GROUPS, 12, &too_many, 1, 0.0, 5),
        Err(PartitionError::TooFewShots { .. })
    ));
}

#[test]
fn sampled_clients_hold_distinct_images_and_may_share_them() {
    let l = labels();
    for alpha in [None, Some(0.1)] {
        let spec = PartitionSpec::Sampled { samples: 30, alpha };
        // Twice as many clients as the data could give 30 images each without sharing.
        let p = partition(&l, NO_GROUPS, 80, &spec, 30, 0.2, 9).unwrap();
        assert_eq!(p, partition(&l, NO_GROUPS, 80, &spec, 30, 0.2, 9).unwrap());
        let mut holders = vec![0usize; l.len()];
        for (tr, te) in p.train.iter().zip(&p.test) {
            let mut mine: Vec<u32> = tr.iter().chain(te).copied().collect();
            assert_eq!(mine.len(), 30);
            assert_eq!(te.len(), 6);
            mine.sort_unstable();
            mine.dedup();
            assert_eq!(mine.len(), 30, "a client holds an image twice");
            mine.iter().for_each(|&i| holders[i as usize] += 1);
        }
        assert!(holders.iter().any(|&h| h > 1), "no image is shared");
        let dominant: f64 = p
            .train
            .iter()
            .zip(&p.test)
            .map(|(tr, te)| {
                let mut counts = [0usize; 10];
                tr.iter()
                    .chain(te)
                    .for_each(|&i| counts[l[i as usize] as usize] += 1);
                *counts.iter().max().unwrap() as f64 / 30.0
            })
            .sum::<f64>()
            / 80.0;
        // Uniform draws give each class about a tenth; alpha = 0.1 lets one dominate.
        match alpha {
            None => assert!(dominant < 0.35, "mean dominant-class share {dominant}"),
            Some(_) => assert!(dominant > 0.5, "mean dominant-class share {dominant}"),
        }
    }
    let short = PartitionSpec::Sampled {
        samples: 5,
        alpha: None,
    };
    assert_eq!(
        partition(&l, NO_GROUPS, 10, &short, 8, 0.0, 1),
        Err(PartitionError::SampledBelowMinimum { samples: 5, min: 8 })
    );
    let huge = PartitionSpec::Sampled {
        samples: 1001,
        alpha: Some(1.0),
    };
    assert_eq!(
        partition(&l, NO_GROUPS, 10, &huge, 1, 0.0, 1),
        Err(PartitionError::SampledTooMany {
            samples: 1001,
            available: 1000
        })
    );
}

#[test]
fn impossible_minimum_is_an_error() {
    assert!(matches!(
        partition(&labels(), NO_GROUPS, 200, &PartitionSpec::Iid, 10, 0.2, 0),
        Err(PartitionError::TooFewSamples { .. })
    ));
}

#[test]
fn shards_give_each_client_its_shards_of_sorted_labels() {
    // 1000 images of 10 classes, 20 clients x 2 shards of 25: a shard never spans
    // more than two classes, so a client holds at most four (two when shards align).
    let spec = PartitionSpec::Shards {
        classes_per_client: 2,
    };
    let p = partition(&labels(), NO_GROUPS, 20, &spec, 10, 0.0, 4).unwrap();
    let l = labels();
    let mut all: Vec<u32> = p.train.concat();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 1000, "every image in exactly one shard");
    for shard in &p.train {
        assert_eq!(shard.len(), 50);
        let mut classes: Vec<u8> = shard.iter().map(|&i| l[i as usize]).collect();
        classes.sort_unstable();
        classes.dedup();
        // 100 images per class = 4 whole shards: every shard is one class.
        assert!(classes.len() <= 2, "{classes:?}");
    }
    // 7 images do not make 8 shards.
    let few = partition(&l[..7], NO_GROUPS, 4, &spec, 1, 0.0, 4);
    assert!(matches!(
        few,
        Err(PartitionError::TooFewForShards { shards: 8, .. })
    ));
}

#[test]
fn natural_gives_one_client_per_group_in_order() {
    let names: Vec<String> = ["w0", "w1", "w2"].map(String::from).to_vec();
    let of: Vec<u32> = (0..30).map(|i| [2, 0, 1][i % 3] as u32).collect();
    let l: Vec<u8> = (0..30).map(|i| (i % 10) as u8).collect();
    let groups = Groups {
        of: &of,
        names: &names,
    };
    let p = partition(&l, groups, 3, &PartitionSpec::Natural, 5, 0.2, 1).unwrap();
    for (c, (train, test)) in p.train.iter().zip(&p.test).enumerate() {
        assert_eq!((train.len(), test.len()), (8, 2));
        assert!(
            train
                .iter()
                .chain(test)
                .all(|&i| of[i as usize] == c as u32)
        );
    }
    let wrong = partition(&l, groups, 4, &PartitionSpec::Natural, 5, 0.2, 1);
    assert_eq!(
        wrong.unwrap_err().to_string(),
        "a Natural partition gives one client per writer, user or domain: the data has 3 \
         of them, but data.clients is 4"
    );
    // w0 holds 6 images, the others 12.
    let uneven: Vec<u32> = (0..30).map(|i| if i < 6 { 0 } else { 1 + i % 2 }).collect();
    let groups = Groups {
        of: &uneven,
        names: &names,
    };
    let small = partition(&l, groups, 3, &PartitionSpec::Natural, 7, 0.2, 1);
    assert_eq!(
        small.unwrap_err().to_string(),
        "\"w0\" holds 6 images, below min_samples = 7"
    );
}
