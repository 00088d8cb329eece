//! Availability is a hard invariant: over many seeds, every server strategy, Markov and
//! trace availability, dropouts and lossy links, no client downloads, trains or uploads
//! while its device is offline, and no update arrives from an offline device.

use std::collections::BTreeMap;
use std::sync::Arc;

use flotilla_actors::config::{Clustering, FedAsyncConfig, FedAvgConfig, FedBuffConfig, Staleness};
use flotilla_actors::device::Availability;
use flotilla_actors::record::ClientState;
use flotilla_actors::{
    AlgorithmSpec, ClientSpec, Dist, Records, SimConfig, SimOutcome, SimTime, StopReason, StopRule,
    Wire,
};
use flotilla_actors::{Encoding, net::LinkValue};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::{Mock, client, link, run_to_end};

const CLIENTS: usize = 12;

/// A lossy link with a random latency and bandwidth per attempt.
fn lossy(latency: f64, bps: f64) -> flotilla_actors::net::LinkSpec {
    let mut l = link(latency, bps);
    l.latency = LinkValue::Draw(Dist::Exponential { mean: latency });
    l.loss = 0.15;
    l.retries = 2;
    l.timeout = SimTime(500_000);
    l
}

/// Random online intervals covering about half of `[0, horizon)`.
fn random_trace(rng: &mut ChaCha8Rng, horizon: u64) -> Availability {
    let mut t = rng.random_range(0..5_000_000);
    let mut intervals = Vec::new();
    while t < horizon {
        let on = rng.random_range(1..8_000_000);
        intervals.push((SimTime(t), SimTime(t + on)));
        t += on + rng.random_range(1..8_000_000);
    }
    // Some devices leave for good before the end.
    if rng.random::<f64>() < 0.3 {
        intervals.truncate(intervals.len() / 2);
    }
    Availability::Trace(intervals)
}

fn algorithms() -> Vec<(&'static str, AlgorithmSpec, bool)> {
    let fedavg = |over_selection: f64, deadline: Option<u64>| {
        AlgorithmSpec::FedAvg(FedAvgConfig {
            clients_per_round: 4,
            over_selection,
            deadline: deadline.map(SimTime),
        })
    };
    let fedbuff = AlgorithmSpec::FedBuff(FedBuffConfig {
        concurrency: 5,
        buffer: 2,
        server_lr: 1.0,
        staleness: Staleness::Polynomial { exponent: 0.5 },
        max_staleness: Some(8),
    });
    vec![
        ("fedavg", fedavg(0.0, None), false),
        ("fedavg, over-selection", fedavg(0.5, None), false),
        ("fedavg, deadline", fedavg(0.25, Some(6_000_000)), false),
        (
            "fedasync",
            AlgorithmSpec::FedAsync(FedAsyncConfig {
                concurrency: 5,
                alpha: 0.5,
                staleness: Staleness::Polynomial { exponent: 0.5 },
            }),
            false,
        ),
        ("fedbuff", fedbuff.clone(), false),
        ("fl-tac over fedavg", fedavg(0.0, None), true),
        ("fl-tac over fedbuff", fedbuff, true),
    ]
}

fn scenario(seed: u64, algorithm: AlgorithmSpec, clustered: bool, markov: bool) -> SimConfig {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let horizon = 120_000_000;
    let clients = (0..CLIENTS)
        .map(|c| {
            let mut spec: ClientSpec = client(
                rng.random_range(100.0..900.0),
                lossy(0.05, 2e6),
                lossy(0.05, 8e6),
            );
            spec.device.speed = Dist::LogNormal {
                median: rng.random_range(100.0..900.0),
                sigma: 0.8,
            };
            spec.device.dropout = 0.1;
            spec.availability = if markov {
                Availability::Markov {
                    mean_on: rng.random_range(1.0..6.0),
                    mean_off: rng.random_range(1.0..6.0),
                }
            } else {
                random_trace(&mut rng, horizon)
            };
            if clustered {
                spec.slots = vec![Some(c % 2)];
            }
            spec
        })
        .collect();
    SimConfig {
        seed,
        clients,
        ingress: None,
        egress: None,
        wire: Wire::uniform(Encoding::F32),
        algorithm,
        clustering: clustered.then_some(Clustering {
            k: 2,
            iterations: 5,
            restarts: 2,
            warm_start: false,
        }),
        tasks: if clustered { 2 } else { 1 },
        stop: StopRule {
            rounds: Some(400),
            virtual_time: Some(SimTime(horizon)),
            target_accuracy: None,
        },
        eval_every_rounds: None,
        eval_every: Some(SimTime(10_000_000)),
        tracked_clients: CLIENTS,
    }
}

/// Each client's availability changes, in order: `(time, online)`.
fn flips(r: &Records) -> BTreeMap<usize, Vec<(f64, bool)>> {
    let mut by_client: BTreeMap<usize, Vec<(f64, bool)>> = BTreeMap::new();
    for a in &r.availability {
        by_client
            .entry(a.client)
            .or_default()
            .push((a.sim_seconds, a.online));
    }
    by_client
}

/// Whether `client` is online at `t`, once the changes due at `t` have happened (they
/// come before anything else at that instant).
fn online_at(flips: &BTreeMap<usize, Vec<(f64, bool)>>, client: usize, t: f64) -> bool {
    flips.get(&client).is_none_or(|log| {
        log.iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .is_none_or(|&(_, online)| online)
    })
}

/// Every violation of the invariant in one run's records, in words.
fn violations(out: &SimOutcome) -> Vec<String> {
    let r = &out.records;
    let flips = flips(r);
    let mut found = Vec::new();
    for a in &r.activity {
        let working = matches!(
            a.state,
            ClientState::Downloading | ClientState::Training | ClientState::Uploading
        );
        if working && !online_at(&flips, a.client, a.sim_seconds) {
            found.push(format!(
                "client {} turns {:?} at {} s while offline",
                a.client, a.state, a.sim_seconds
            ));
        }
    }
    // Going offline leaves a client in the offline state at that very instant.
    for (&client, log) in &flips {
        for &(t, online) in log {
            let state = r
                .activity
                .iter()
                .rfind(|a| a.client == client && a.sim_seconds <= t)
                .map(|a| a.state);
            if !online && t > 0.0 && state != Some(ClientState::Offline) {
                found.push(format!(
                    "client {client} went offline at {t} s but is {state:?}"
                ));
            }
        }
    }
    for u in &r.updates {
        if !online_at(&flips, u.client, u.sim_seconds) {
            found.push(format!(
                "an update from client {} arrives at {} s while it is offline",
                u.client, u.sim_seconds
            ));
        }
    }
    found
}

fn run(c: &SimConfig) -> SimOutcome {
    let learner = Arc::new(Mock { clients: CLIENTS });
    run_to_end(c.clone(), learner)
}

#[test]
fn offline_clients_never_download_train_or_upload() {
    let mut checked = 0;
    let (mut updates, mut dropouts, mut offline_flips) = (0, 0, 0);
    for (name, algorithm, clustered) in algorithms() {
        for markov in [true, false] {
            for seed in 0..12 {
                let c = scenario(seed, algorithm.clone(), clustered, markov);
                let out = run(&c);
                let found = violations(&out);
                assert!(
                    found.is_empty(),
                    "{name}, {} availability, seed {seed}: {} violations, first: {}",
                    if markov { "Markov" } else { "trace" },
                    found.len(),
                    found[0]
                );
                updates += out.records.updates.len();
                dropouts += out.records.dropouts;
                offline_flips += out
                    .records
                    .availability
                    .iter()
                    .filter(|a| !a.online)
                    .count();
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 7 * 2 * 12);
    // The runs did work, lost work to churn, and saw devices leave: the checks bit.
    assert!(updates > 10_000, "{updates} updates");
    assert!(dropouts > 1_000, "{dropouts} dropouts");
    assert!(offline_flips > 10_000, "{offline_flips} departures");
}

#[test]
fn fedavg_without_deadline_outlasts_lost_clients() {
    // Every client drops out of a fifth of its jobs and links lose a sixth of their
    // attempts; with neither deadline nor over-selection each round still closes, with
    // whatever arrived, as soon as no chosen client is left working on it.
    let mut c = scenario(
        3,
        AlgorithmSpec::FedAvg(FedAvgConfig {
            clients_per_round: 6,
            over_selection: 0.0,
            deadline: None,
        }),
        false,
        true,
    );
    c.stop = StopRule {
        rounds: Some(200),
        virtual_time: None,
        target_accuracy: None,
    };
    for spec in &mut c.clients {
        spec.device.dropout = 0.2;
    }
    let out = run(&c);
    assert_eq!(out.clock.reason, StopReason::Finished);
    assert_eq!(out.records.rounds, 200);
    assert!(out.records.dropouts > 0);
    assert!(violations(&out).is_empty());
}

#[test]
fn a_round_with_nobody_online_waits_for_the_first_device_back() {
    // Every device is offline for the first 10 s, then online for good: round 1 starts
    // when they come back, not at time zero.
    let mut c = scenario(
        1,
        AlgorithmSpec::FedAvg(FedAvgConfig {
            clients_per_round: 2,
            over_selection: 0.0,
            deadline: None,
        }),
        false,
        true,
    );
    for spec in &mut c.clients {
        spec.availability = Availability::Trace(vec![(SimTime(10_000_000), SimTime(u64::MAX))]);
        spec.device.dropout = 0.0;
    }
    c.stop.rounds = Some(3);
    let out = run(&c);
    assert_eq!(out.clock.reason, StopReason::Finished);
    assert_eq!(out.records.rounds, 3);
    let first_download = out
        .records
        .activity
        .iter()
        .find(|a| a.state == ClientState::Downloading)
        .unwrap();
    assert_eq!(first_download.sim_seconds, 10.0);
}

#[test]
fn a_server_whose_devices_never_return_stalls_and_says_why() {
    // Every device leaves for good at 5 s; evaluation ticks would go on forever, so the
    // run ends as stalled, naming what the round waited for.
    for algorithm in [
        AlgorithmSpec::FedAvg(FedAvgConfig {
            clients_per_round: 4,
            over_selection: 0.0,
            deadline: None,
        }),
        AlgorithmSpec::FedBuff(FedBuffConfig {
            concurrency: 3,
            buffer: 1000,
            server_lr: 1.0,
            staleness: Staleness::Polynomial { exponent: 0.5 },
            max_staleness: None,
        }),
    ] {
        let mut c = scenario(2, algorithm, false, true);
        for spec in &mut c.clients {
            spec.availability = Availability::Trace(vec![(SimTime(0), SimTime(5_000_000))]);
        }
        c.stop = StopRule {
            rounds: Some(1_000_000),
            virtual_time: None,
            target_accuracy: None,
        };
        let out = run(&c);
        assert_eq!(out.clock.reason, StopReason::Stalled);
        let why = out.records.stop_detail.as_deref().unwrap();
        assert!(
            why.contains("waits for") && why.contains("0 of 12 clients online"),
            "{why}"
        );
        assert!(out.clock.end < SimTime(60_000_000), "{:?}", out.clock.end);
        assert!(violations(&out).is_empty());
    }
}

#[test]
fn a_client_chosen_the_instant_it_goes_offline_declines() {
    // Jobs take 30 s and round 1's deadline closes it at 10 s, the instant every device
    // goes offline (for half a second). The server starts round 2 before it hears of the
    // departures and chooses the departed devices: each declines, nothing is sent, the
    // round closes empty, and round 3 waits for the devices to come back at 10.5 s.
    let mut c = scenario(
        4,
        AlgorithmSpec::FedAvg(FedAvgConfig {
            clients_per_round: 3,
            over_selection: 0.0,
            deadline: Some(SimTime(10_000_000)),
        }),
        false,
        true,
    );
    c.clients.truncate(3);
    for spec in &mut c.clients {
        *spec = client(10.0, link(0.0, 1e9), link(0.0, 1e9));
        spec.availability = Availability::Trace(vec![
            (SimTime(0), SimTime(10_000_000)),
            (SimTime(10_500_000), SimTime(u64::MAX)),
        ]);
    }
    c.stop = StopRule {
        rounds: Some(3),
        virtual_time: None,
        target_accuracy: None,
    };
    c.eval_every = None;
    let out = run(&c);
    assert!(violations(&out).is_empty(), "{:?}", violations(&out));
    let r = &out.records;
    // Chosen for rounds 1, 2 and 3; round 2's choice sent nothing.
    assert!(r.clients.iter().all(|s| s.selected == 3));
    assert_eq!(r.messages_down, 6);
    let downloads: Vec<f64> = r
        .activity
        .iter()
        .filter(|a| a.state == ClientState::Downloading)
        .map(|a| a.sim_seconds)
        .collect();
    assert_eq!(downloads, vec![0.0, 0.0, 0.0, 10.5, 10.5, 10.5]);
    assert_eq!(r.rounds, 3);
}
