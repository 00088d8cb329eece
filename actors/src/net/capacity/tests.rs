//! Closed forms, and the fast algorithm against the reference on random traffic.

use rand::{Rng, SeedableRng};

use super::reference::Reference;
use super::*;
use crate::net::{Direction, Steps};

#[test]
fn two_transfers_split_the_capacity() {
    // 10 Mbit/s shared by two 1 Mbit transfers with fast links: each gets 5 Mbit/s.
    let mut c = SharedCapacity::new(Some(Rate::Fixed(10e6)));
    for client in 0..2 {
        let link = LinkId {
            client,
            dir: Direction::Up,
        };
        let cap = Rate::Fixed(1e9);
        c.start(
            SimTime::ZERO,
            Transfer {
                link,
                attempt: 0,
                bits: 1e6,
                cap,
                latency: SimTime::ZERO,
            },
        );
    }
    assert_eq!(c.next_completion(), Some(SimTime(200_000)));
}

fn transfer(client: usize, bits: f64, cap: f64) -> Transfer {
    Transfer {
        link: LinkId {
            client,
            dir: Direction::Up,
        },
        attempt: 0,
        bits,
        cap: Rate::Fixed(cap),
        latency: SimTime::ZERO,
    }
}

fn drain(c: &mut SharedCapacity) -> Vec<(SimTime, usize)> {
    let mut done = vec![];
    while let Some(t) = c.next_completion() {
        for tr in c.finish_due(t) {
            done.push((t, tr.link.client));
        }
    }
    done
}

#[test]
fn capped_transfer_frees_share_for_others() {
    // 30 Mbit/s shared; client 0 is capped at 5 Mbit/s, so 1 and 2 get 12.5 each.
    let mut c = SharedCapacity::new(Some(Rate::Fixed(30e6)));
    c.start(SimTime::ZERO, transfer(0, 5e6, 5e6));
    c.start(SimTime::ZERO, transfer(1, 12.5e6, 1e9));
    c.start(SimTime::ZERO, transfer(2, 25e6, 1e9));
    // t=1s: 0 and 1 finish. Then 2 has 12.5 Mbit left at 30 Mbit/s: 5/12 s more.
    assert_eq!(
        drain(&mut c),
        vec![
            (SimTime(1_000_000), 0),
            (SimTime(1_000_000), 1),
            (SimTime(1_416_667), 2)
        ]
    );
}

#[test]
fn bandwidth_steps_retime_at_exactly_the_listed_times() {
    // 1 Mbit at 1 Mbit/s for 0.5 s, then 0.25 Mbit/s: 0.5 Mbit left takes 2 s more.
    let steps = Steps::new(vec![(SimTime::ZERO, 1e6), (SimTime(500_000), 0.25e6)]).unwrap();
    let mut c = SharedCapacity::new(None);
    let mut t = transfer(0, 1e6, 0.0);
    t.cap = Rate::Steps(steps);
    c.start(SimTime::ZERO, t);
    assert_eq!(c.next_completion(), Some(SimTime(500_000)));
    assert_eq!(drain(&mut c), vec![(SimTime(2_500_000), 0)]);
}

#[test]
fn capacity_steps_reshare_running_transfers() {
    // 4 Mbit/s shared by two 2 Mbit transfers; at 0.5 s the capacity drops to 1 Mbit/s.
    // Each has 1 Mbit left at 0.5 Mbit/s: both finish at 2.5 s.
    let steps = Steps::new(vec![(SimTime::ZERO, 4e6), (SimTime(500_000), 1e6)]).unwrap();
    let mut c = SharedCapacity::new(Some(Rate::Steps(steps)));
    c.start(SimTime::ZERO, transfer(0, 2e6, 1e9));
    c.start(SimTime::ZERO, transfer(1, 2e6, 1e9));
    assert_eq!(
        drain(&mut c),
        vec![(SimTime(2_500_000), 0), (SimTime(2_500_000), 1)]
    );
}

#[test]
fn late_arrival_retimes_the_running_transfer() {
    // 8 Mbit/s: A (8 Mbit) alone for 0.5 s, then shares with B (2 Mbit).
    let mut c = SharedCapacity::new(Some(Rate::Fixed(8e6)));
    c.start(SimTime::ZERO, transfer(0, 8e6, 1e9));
    c.start(SimTime(500_000), transfer(1, 2e6, 1e9));
    // B: 2 Mbit at 4 Mbit/s -> t = 1.0 s; A has 4 - 2 = 2 Mbit left, alone -> t = 1.25 s.
    assert_eq!(
        drain(&mut c),
        vec![(SimTime(1_000_000), 1), (SimTime(1_250_000), 0)]
    );
}

/// What both algorithms must agree on: the same operations, in the same order.
trait Sharing {
    fn start(&mut self, now: SimTime, transfer: Transfer);
    fn finish_due(&mut self, now: SimTime) -> Vec<Transfer>;
    fn cancel(&mut self, now: SimTime, link: LinkId) -> usize;
    fn next_completion(&self) -> Option<SimTime>;
}

macro_rules! sharing {
    ($t:ty) => {
        impl Sharing for $t {
            fn start(&mut self, now: SimTime, transfer: Transfer) {
                <$t>::start(self, now, transfer)
            }
            fn finish_due(&mut self, now: SimTime) -> Vec<Transfer> {
                <$t>::finish_due(self, now)
            }
            fn cancel(&mut self, now: SimTime, link: LinkId) -> usize {
                <$t>::cancel(self, now, link)
            }
            fn next_completion(&self) -> Option<SimTime> {
                <$t>::next_completion(self)
            }
        }
    };
}
sharing!(SharedCapacity);
sharing!(Reference);

/// Random traffic through a capacity: arrivals at random microseconds, caps drawn over
/// four orders of magnitude (some following steps), some transfers cancelled; every
/// completion as `(time, client, attempt)`, in the order reported.
fn random_traffic(
    c: &mut dyn Sharing,
    seed: u64,
    transfers: usize,
    cap_steps: &Steps,
) -> Vec<(SimTime, usize, u64)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut done = Vec::new();
    let mut now = SimTime::ZERO;
    let mut sent = 0;
    while sent < transfers || c.next_completion().is_some() {
        let arrival = (sent < transfers).then(|| now + SimTime(rng.random_range(0..16_000u64)));
        let next = c.next_completion();
        match (arrival, next) {
            (Some(a), Some(n)) if n < a => {
                now = n;
                done.extend(
                    c.finish_due(n)
                        .into_iter()
                        .map(|t| (n, t.link.client, t.attempt)),
                );
            }
            (Some(a), _) => {
                now = a;
                let cap = if rng.random::<f64>() < 0.1 {
                    cap_steps.clone()
                } else {
                    Steps::new(vec![(
                        SimTime::ZERO,
                        10f64.powf(rng.random_range(5.0..8.0)),
                    )])
                    .unwrap()
                };
                let cap = if cap.points().len() == 1 {
                    Rate::Fixed(cap.points()[0].1)
                } else {
                    Rate::Steps(cap)
                };
                let client = rng.random_range(0..500usize);
                c.start(
                    a,
                    Transfer {
                        link: LinkId {
                            client,
                            dir: Direction::Up,
                        },
                        attempt: sent as u64,
                        bits: 8.0 * rng.random_range(100..60_000u64) as f64,
                        cap,
                        latency: SimTime::ZERO,
                    },
                );
                sent += 1;
                if rng.random::<f64>() < 0.005 {
                    let gone = rng.random_range(0..500usize);
                    c.cancel(
                        a,
                        LinkId {
                            client: gone,
                            dir: Direction::Up,
                        },
                    );
                }
            }
            (None, Some(n)) => {
                now = n;
                done.extend(
                    c.finish_due(n)
                        .into_iter()
                        .map(|t| (n, t.link.client, t.attempt)),
                );
            }
            (None, None) => break,
        }
    }
    done
}

#[test]
fn ten_thousand_transfers_finish_when_the_reference_says() {
    let steps = Steps::new(vec![
        (SimTime::ZERO, 2e6),
        (SimTime(300_000), 5e5),
        (SimTime(900_000), 8e6),
        (SimTime(4_000_000), 1e5),
    ])
    .unwrap();
    let capacities = [
        Some(Rate::Fixed(50e6)),
        Some(Rate::Fixed(1e9)),
        Some(Rate::Steps(
            Steps::new(vec![
                (SimTime::ZERO, 20e6),
                (SimTime(1_000_000), 3e6),
                (SimTime(2_500_000), 80e6),
                (SimTime(6_000_000), 45e6),
            ])
            .unwrap(),
        )),
        None,
    ];
    // The two shared capacities carry 10,000 transfers each; the fast and the unlimited
    // ones, where every transfer runs at its cap, fewer.
    for (i, (capacity, transfers)) in capacities
        .into_iter()
        .zip([10_000, 2_000, 10_000, 2_000])
        .enumerate()
    {
        let seed = 40 + i as u64;
        let fast = random_traffic(
            &mut SharedCapacity::new(capacity.clone()),
            seed,
            transfers,
            &steps,
        );
        let slow = random_traffic(
            &mut Reference::new(capacity.clone()),
            seed,
            transfers,
            &steps,
        );
        let first = fast.iter().zip(&slow).position(|(a, b)| a != b);
        assert_eq!(
            first.map(|k| (fast[k], slow[k])),
            None,
            "capacity {i}: first difference at completion {first:?}"
        );
        assert_eq!(fast.len(), slow.len(), "capacity {i}");
        // Some transfers are cancelled; the others all complete.
        assert!(
            fast.len() > transfers * 9 / 10,
            "capacity {i}: {} completions",
            fast.len()
        );
    }
}
