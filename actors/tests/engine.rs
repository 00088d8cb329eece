//! The engine against closed forms: round times, processor sharing, deadlines, bytes.
//!
//! One file on purpose: every test builds on the same few fixtures (`config`, `client`,
//! `link`), and each is one closed form that reads best beside the others.

use std::sync::Arc;

use flotilla_actors::config::{Clustering, FedAsyncConfig, FedAvgConfig, FedBuffConfig, Staleness};
use flotilla_actors::device::{Availability, DeviceSpec};
use flotilla_actors::learner::SlotOutcome;
use flotilla_actors::net::{LinkSpec, LinkValue, Rate, Steps};
use flotilla_actors::record::DiscardReason;
use flotilla_actors::{
    AlgorithmSpec, ClientId, ClientSpec, Dist, EvalJob, EvalOutcome, Learner, Pending, SimConfig,
    SimOutcome, SimTime, StopReason, StopRule, TrainJob, TrainOutcome, Wire,
};
use flotilla_actors::{Encoding, Rounding};
use flotilla_actors::{SpeedUnit, Work};

use crate::common::{Mock, P, WORK, client, link, run_to_end};

fn config(clients: Vec<ClientSpec>, fedavg: FedAvgConfig, rounds: u32) -> SimConfig {
    SimConfig {
        seed: 1,
        clients,
        ingress: None,
        egress: None,
        wire: Wire::uniform(Encoding::F32),
        algorithm: AlgorithmSpec::FedAvg(fedavg),
        clustering: None,
        tasks: 1,
        stop: StopRule {
            rounds: Some(rounds),
            virtual_time: None,
            target_accuracy: None,
        },
        eval_every_rounds: Some(1),
        eval_every: None,
        tracked_clients: 2,
    }
}

fn fedavg(k: usize) -> FedAvgConfig {
    FedAvgConfig {
        clients_per_round: k,
        over_selection: 0.0,
        deadline: None,
    }
}

fn run(c: &SimConfig) -> SimOutcome {
    let learner = Arc::new(Mock {
        clients: c.clients.len(),
    });
    run_to_end(c.clone(), learner)
}

/// The global accuracy of every timeline row of `records` after the first, in order; the
/// first must be the initial model's (its parameters, all 0), at time zero.
fn global_accuracies(records: &flotilla_actors::Records) -> Vec<f64> {
    let (first, rest) = records
        .timeline
        .split_first()
        .expect("the initial model's row");
    assert_eq!(
        (
            first.sim_seconds,
            first.round,
            first.version,
            first.global_accuracy
        ),
        (0.0, 0, 0, 0.0)
    );
    rest.iter().map(|t| t.global_accuracy).collect()
}

#[test]
fn one_client_round_is_download_plus_compute_plus_upload() {
    // Down: 50 ms + 32,000 bits at 16 Mbit/s (2 ms). Compute: 300 samples at 150/s (2 s).
    // Up: 30 ms + 32,000 bits at 8 Mbit/s (4 ms).
    let c = config(
        vec![client(150.0, link(0.030, 8e6), link(0.050, 16e6))],
        fedavg(1),
        3,
    );
    let out = run(&c);
    let round_us = 52_000 + 2_000_000 + 34_000;
    assert_eq!(out.records.round_seconds, vec![round_us as f64 / 1e6; 3]);
    assert_eq!(out.clock.end, SimTime(3 * round_us));
    // Each round adds 1 to the parameters.
    let values = global_accuracies(&out.records);
    assert_eq!(values, vec![1.0, 2.0, 3.0]);
    // The tracked client's activity: each state entered at its exact time.
    use flotilla_actors::record::ClientState::*;
    let first: Vec<(f64, _)> = out.records.activity[..5]
        .iter()
        .map(|a| (a.sim_seconds, a.state))
        .collect();
    assert_eq!(
        first,
        vec![
            (0.0, Idle),
            (0.0, Downloading),
            (0.052, Training),
            (2.052, Uploading),
            (2.086, Idle)
        ]
    );
}

#[test]
fn link_steps_change_transfer_times_at_the_listed_times() {
    // Round 1's upload starts at 2.052 s (52 ms down, 2 s compute). The uplink drops
    // from 8 to 1 Mbit/s at 2.054 s: 16,000 of the 32,000 bits have gone by then, the
    // other 16,000 take 16 ms more, then 30 ms latency.
    let mut up = link(0.030, 8e6);
    up.bandwidth = LinkValue::Steps(
        Steps::new(vec![(SimTime::ZERO, 8e6), (SimTime(2_054_000), 1e6)]).unwrap(),
    );
    let c = config(vec![client(150.0, up, link(0.050, 16e6))], fedavg(1), 2);
    let out = run(&c);
    let round1 = 52_000 + 2_000_000 + 2_000 + 16_000 + 30_000;
    // Round 2's upload runs entirely at 1 Mbit/s: 32 ms.
    let round2 = 52_000 + 2_000_000 + 32_000 + 30_000;
    assert_eq!(
        out.records.round_seconds,
        vec![round1 as f64 / 1e6, round2 as f64 / 1e6]
    );
}

/// `n` identical clients whose uploads start together and share a 1 Mbit/s ingress.
fn shared_ingress(n: usize) -> SimOutcome {
    let clients = (0..n)
        .map(|_| client(300.0, link(0.010, 100e6), link(0.010, 100e6)))
        .collect();
    let mut c = config(clients, fedavg(n), 1);
    c.ingress = Some(Rate::Fixed(1e6));
    run(&c)
}

#[test]
fn concurrent_uploads_share_the_ingress_fairly() {
    for n in [2u64, 10] {
        let out = shared_ingress(n as usize);
        // Down: 10 ms + 320 µs. Compute: 1 s. Up: each of n gets 1/n Mbit/s, so all
        // finish after n x 32 ms, then 10 ms latency.
        let expected = 10_320 + 1_000_000 + n * 32_000 + 10_000;
        assert_eq!(out.clock.end, SimTime(expected), "{n} clients");
        assert_eq!(out.records.updates_applied, n);
    }
}

#[test]
fn capped_upload_leaves_its_share_to_the_others() {
    // 3 Mbit/s ingress; client 0's own uplink is 0.5 Mbit/s, so 1 and 2 get 1.25 each:
    // they finish at 25.6 ms, client 0 at 64 ms.
    let slow = client(300.0, link(0.0, 0.5e6), link(0.0, 32e6));
    let fast = client(300.0, link(0.0, 100e6), link(0.0, 32e6));
    let mut c = config(vec![slow, fast.clone(), fast], fedavg(3), 1);
    c.ingress = Some(Rate::Fixed(3e6));
    let out = run(&c);
    assert_eq!(out.clock.end, SimTime(1_000 + 1_000_000 + 64_000));
}

/// Client 0: fast compute (1 s), quick upload (10 ms). Client 1: 0.75 s compute but a
/// 32 kbit/s uplink (1 s): its round-1 update arrives after round 1 closed.
fn straggler_pair(fedavg: FedAvgConfig, rounds: u32, wire: Wire) -> SimOutcome {
    let fast = client(300.0, link(0.0, 3.2e6), link(0.0, 32e6));
    let slow = client(400.0, link(0.0, 32e3), link(0.0, 32e6));
    let mut c = config(vec![fast, slow], fedavg, rounds);
    c.wire = wire;
    run(&c)
}

#[test]
fn over_selection_closes_on_first_updates_and_discards_late_ones() {
    let cfg = FedAvgConfig {
        clients_per_round: 1,
        over_selection: 1.0,
        deadline: None,
    };
    let out = straggler_pair(cfg, 2, Wire::uniform(Encoding::F32));
    let r = &out.records;
    // Round 1 closes when the fast update arrives: 1 ms + 1 s + 10 ms.
    assert_eq!(r.round_seconds, vec![1.011, 1.011]);
    assert_eq!(out.clock.end, SimTime(2_022_000));
    assert_eq!(r.updates_applied, 2);
    assert_eq!(r.clients[0].updates_applied, 2);
    // The slow round-1 update arrives at 1.751 s, during round 2: late.
    assert_eq!(r.updates_discarded_total(), 1);
    assert_eq!(r.clients[1].updates_discarded, 1);
    assert_eq!(r.updates_received, 3);
}

#[test]
fn deadline_closes_the_round_with_what_arrived() {
    let cfg = FedAvgConfig {
        clients_per_round: 2,
        over_selection: 0.0,
        deadline: Some(SimTime(1_500_000)),
    };
    // Make the slow client compute for 3 s: it misses both deadlines.
    let fast = client(300.0, link(0.0, 3.2e6), link(0.0, 32e6));
    let slow = client(100.0, link(0.0, 3.2e6), link(0.0, 32e6));
    let out = run(&config(vec![fast, slow], cfg, 2));
    let r = &out.records;
    assert_eq!(r.round_seconds, vec![1.5, 1.5]);
    assert_eq!(out.clock.end, SimTime(3_000_000));
    assert_eq!(r.updates_applied, 2);
    assert_eq!(r.clients[1].updates_applied, 0);
    // Round 2's model reached the slow client while it still trained for round 1.
    assert_eq!(r.clients[1].abandoned, 1);
    let values = global_accuracies(r);
    assert_eq!(values, vec![1.0, 2.0]);
}

#[test]
fn bytes_are_messages_times_encoded_size() {
    // The closed forms: Int8 adds one 4-byte scale per tensor (two here), top-k sends
    // ceil(fraction x P) (index, value) pairs up while the model comes down in f32.
    let layout: Arc<[usize]> = Arc::from([P - 1, 1]);
    let int8 = Encoding::Int8(Rounding::Stochastic);
    for (up, down, up_size, down_size) in [
        (Encoding::F32, Encoding::F32, 4 * P as u64, 4 * P as u64),
        (Encoding::F16, Encoding::F16, 2 * P as u64, 2 * P as u64),
        (Encoding::Bf16, Encoding::Bf16, 2 * P as u64, 2 * P as u64),
        (int8, int8, P as u64 + 8, P as u64 + 8),
        (
            Encoding::TopK(0.5),
            Encoding::F32,
            8 * P.div_ceil(2) as u64,
            4 * P as u64,
        ),
    ] {
        let wire = Wire {
            up,
            down,
            layout: layout.clone(),
        };
        let cfg = FedAvgConfig {
            clients_per_round: 1,
            over_selection: 1.0,
            deadline: None,
        };
        let r = straggler_pair(cfg, 2, wire).records;
        // Two rounds of two downloads; both clients start two uploads before the end
        // (the slow one's second is still in flight when the run stops).
        assert_eq!((r.messages_down, r.messages_up), (4, 4));
        assert_eq!(r.bytes_down, r.messages_down * down_size);
        assert_eq!(r.bytes_up, r.messages_up * up_size);
    }
}

#[test]
fn fedavg_weights_updates_by_samples() {
    // Client 0 moves to 1 with 10 samples, client 1 to 2 with 11: (10 + 22) / 21.
    let a = client(300.0, link(0.0, 1e9), link(0.0, 1e9));
    let out = run(&config(vec![a.clone(), a], fedavg(2), 1));
    let values = global_accuracies(&out.records);
    assert_eq!(values, vec![(32.0f64 / 21.0) as f32 as f64]);
}

fn noisy_population(seed: u64) -> SimConfig {
    let noisy_link = LinkSpec {
        latency: LinkValue::Draw(Dist::Normal {
            mean: 0.08,
            std: 0.02,
        }),
        bandwidth: LinkValue::Draw(Dist::LogNormal {
            median: 5e6,
            sigma: 0.7,
        }),
        loss: 0.1,
        timeout: SimTime(500_000),
        retries: 2,
    };
    let phone = ClientSpec {
        class: "phone".into(),
        device: DeviceSpec {
            speed: Dist::LogNormal {
                median: 150.0,
                sigma: 0.6,
            },
            unit: SpeedUnit::Samples,
            dropout: 0.1,
            memory: None,
        },
        availability: Availability::Always,
        uplink: noisy_link.clone(),
        downlink: noisy_link,
        slots: vec![Some(0)],
    };
    let mut c = config(
        vec![phone; 20],
        FedAvgConfig {
            clients_per_round: 5,
            over_selection: 0.4,
            deadline: Some(SimTime(10_000_000)),
        },
        8,
    );
    c.seed = seed;
    c.ingress = Some(Rate::Fixed(20e6));
    c
}

#[test]
fn same_seed_same_run_different_seed_different_run() {
    let a = run(&noisy_population(3));
    let b = run(&noisy_population(3));
    assert_eq!(format!("{:?}", a.records), format!("{:?}", b.records));
    assert_eq!(a.clock, b.clock);
    assert!(a.records.messages_lost > 0 && a.records.dropouts > 0);
    let c = run(&noisy_population(4));
    assert_ne!(a.clock.end, c.clock.end);
}

/// [`Mock`], with every evaluation taking wall time on another thread: the run goes on
/// meanwhile and delivers it later.
struct SlowEvaluations(Mock);

impl Learner for SlowEvaluations {
    fn initial_params(&self) -> Vec<f32> {
        self.0.initial_params()
    }
    fn train_work(&self, client: ClientId) -> Work {
        self.0.train_work(client)
    }
    fn train(&self, job: TrainJob) -> Pending<TrainOutcome> {
        self.0.train(job)
    }
    fn evaluate(&self, job: EvalJob) -> Pending<EvalOutcome> {
        let outcome = self.0.evaluate(job).wait().unwrap();
        let (done, pending) = Pending::channel();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            done.complete(outcome);
        });
        pending
    }
}

#[test]
fn when_an_evaluation_finishes_changes_nothing_in_the_run() {
    let c = noisy_population(3);
    let slow = Arc::new(SlowEvaluations(Mock {
        clients: c.clients.len(),
    }));
    let late = run_to_end(c.clone(), slow);
    let prompt = run(&c);
    assert_eq!(
        late.records.timeline.len(),
        1 + 8,
        "the initial model, then one per round, the last one final"
    );
    assert_eq!(
        format!("{:?}", late.records),
        format!("{:?}", prompt.records)
    );
    assert_eq!(late.clock, prompt.clock);
}

/// [`Mock`], dropping every job after the first `trains` trainings and `evals`
/// evaluations without an answer, as a pool whose workers died does.
struct Dropping {
    mock: Mock,
    trains: std::sync::atomic::AtomicUsize,
    evals: std::sync::atomic::AtomicUsize,
}

impl Dropping {
    fn new(clients: usize, trains: usize, evals: usize) -> Self {
        Self {
            mock: Mock { clients },
            trains: trains.into(),
            evals: evals.into(),
        }
    }

    /// `pending`, or a job dropped unanswered once `left` is spent.
    fn answer<T>(left: &std::sync::atomic::AtomicUsize, pending: Pending<T>) -> Pending<T> {
        use std::sync::atomic::Ordering;
        match left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)) {
            Ok(_) => pending,
            Err(_) => Pending::channel().1,
        }
    }
}

impl Learner for Dropping {
    fn initial_params(&self) -> Vec<f32> {
        self.mock.initial_params()
    }
    fn train_work(&self, client: ClientId) -> Work {
        self.mock.train_work(client)
    }
    fn train(&self, job: TrainJob) -> Pending<TrainOutcome> {
        Self::answer(&self.trains, self.mock.train(job))
    }
    fn evaluate(&self, job: EvalJob) -> Pending<EvalOutcome> {
        Self::answer(&self.evals, self.mock.evaluate(job))
    }
}

/// `records`' `rows` as text, to compare runs row by row.
fn rows<T: std::fmt::Debug>(rows: &[T]) -> Vec<String> {
    rows.iter().map(|r| format!("{r:?}")).collect()
}

#[test]
fn a_dropped_job_stops_the_run_and_keeps_what_came_before() {
    let c = noisy_population(3);
    let full = run(&c);
    let n = c.clients.len();
    let dropped = |trains, evals| {
        let learner = Arc::new(Dropping::new(n, trains, evals));
        run_to_end(c.clone(), learner)
    };
    // A training dropped mid-run: the updates and evaluations before it are the full
    // run's, and the run says why it stopped.
    let trained = dropped(20, usize::MAX);
    assert_eq!(trained.clock.reason, StopReason::PoolFailed);
    let updates = rows(&trained.records.updates);
    assert!(!updates.is_empty() && updates.len() < full.records.updates.len());
    assert_eq!(updates, rows(&full.records.updates[..updates.len()]));
    let timeline = rows(&trained.records.timeline);
    assert!(
        timeline.len() >= 2,
        "the initial model and a round were evaluated"
    );
    assert_eq!(timeline, rows(&full.records.timeline[..timeline.len()]));
    assert!(trained.clock.end < full.clock.end);
    // The fourth evaluation dropped (it is set aside while the next round trains): the
    // three before it are kept, nothing after it is delivered.
    let evaluated = dropped(usize::MAX, 3);
    assert_eq!(evaluated.clock.reason, StopReason::PoolFailed);
    assert_eq!(
        rows(&evaluated.records.timeline),
        rows(&full.records.timeline[..3])
    );
}

#[test]
fn lost_attempts_are_retried_and_counted() {
    let mut c = noisy_population(5);
    for spec in &mut c.clients {
        spec.device.dropout = 0.0;
    }
    let r = run(&c).records;
    // Every attempt, lost or not, crossed the link and is counted in bytes.
    assert_eq!(r.bytes_up, r.messages_up * 4 * P as u64);
    assert!(r.messages_lost > 0);
    assert!(r.messages_given_up <= r.messages_lost);
}

/// Client 0 trains in 1 s, client 1 in 2.5 s; transfers take 1 µs.
fn async_pair(algorithm: AlgorithmSpec, versions: u32) -> SimOutcome {
    let fast = client(300.0, link(0.0, 32e9), link(0.0, 32e9));
    let slow = client(120.0, link(0.0, 32e9), link(0.0, 32e9));
    let mut c = config(vec![fast, slow], fedavg(1), versions);
    c.algorithm = algorithm;
    run(&c)
}

#[test]
fn fedasync_mixes_each_update_with_its_staleness_weight() {
    let out = async_pair(
        AlgorithmSpec::FedAsync(FedAsyncConfig {
            concurrency: 2,
            alpha: 0.5,
            staleness: Staleness::Polynomial { exponent: 0.5 },
        }),
        4,
    );
    // Arrivals: fast (base v0) at 1 s, fast (v1) at 2 s, slow (v0) at 2.5 s, fast (v2) at 3 s.
    let arrivals: Vec<(usize, u64)> = out
        .records
        .updates
        .iter()
        .map(|u| (u.client, u.staleness))
        .collect();
    assert_eq!(arrivals, vec![(0, 0), (0, 0), (1, 2), (0, 1)]);
    // Client c adds c + 1 to what it received. w1 = 0.5 * 1; w2 = mix(w1, w1 + 1, 0.5);
    // w3 = mix(w2, 0 + 2, 0.5 / sqrt(3)); w4 = mix(w3, w2 + 1, 0.5 / sqrt(2)).
    let f = |x: f64| x as f32 as f64;
    let w1 = f(0.5);
    let w2 = f(0.5 * w1 + 0.5 * (w1 + 1.0));
    let a3 = 0.5 / 3f64.sqrt();
    let w3 = f((1.0 - a3) * w2 + a3 * 2.0);
    let a4 = 0.5 / 2f64.sqrt();
    let w4 = f((1.0 - a4) * w3 + a4 * (w2 + 1.0));
    let values = global_accuracies(&out.records);
    assert_eq!(values, vec![w1, w2, w3, w4]);
    assert_eq!(out.records.updates_applied, 4);
}

#[test]
fn fedbuff_applies_the_mean_buffered_delta() {
    let fedbuff = |max_staleness| {
        AlgorithmSpec::FedBuff(FedBuffConfig {
            concurrency: 2,
            buffer: 2,
            server_lr: 1.0,
            staleness: Staleness::Constant,
            max_staleness,
        })
    };
    // Deltas: fast +1 (1 s), fast +1 (2 s) -> w = 1; slow from v0 +2 (2.5 s, staleness 1),
    // fast from v1 +1 (3 s) -> w = 1 + (2 + 1) / 2.
    let out = async_pair(fedbuff(None), 2);
    let values = global_accuracies(&out.records);
    assert_eq!(values, vec![1.0, 2.5]);
    assert_eq!(out.records.updates_applied, 4);
    // With a maximum staleness of 0 the slow delta is discarded: w = 1 + (1 + 1) / 2.
    let out = async_pair(fedbuff(Some(0)), 2);
    let values = global_accuracies(&out.records);
    assert_eq!(values, vec![1.0, 2.0]);
    assert_eq!(out.records.updates_discarded[&DiscardReason::Stale], 1);
}

#[test]
fn async_servers_replace_failed_clients() {
    // Every phone drops out half the time; FedAsync keeps 3 at work and still advances.
    let mut c = noisy_population(9);
    c.algorithm = AlgorithmSpec::FedAsync(FedAsyncConfig {
        concurrency: 3,
        alpha: 0.6,
        staleness: Staleness::Hinge { a: 1.0, b: 2.0 },
    });
    for spec in &mut c.clients {
        spec.device.dropout = 0.5;
    }
    let out = run(&c);
    assert_eq!(out.clock.reason, flotilla_actors::StopReason::Finished);
    assert_eq!(out.records.updates_applied, 8);
    assert!(out.records.dropouts > 0);
}

fn with_availability(mut spec: ClientSpec, availability: Availability) -> ClientSpec {
    spec.availability = availability;
    spec
}

/// Seconds each client was online in `[0, end]`, from the availability log.
fn online_seconds(r: &flotilla_actors::Records, clients: usize, end: f64) -> Vec<f64> {
    (0..clients)
        .map(|c| {
            let log: Vec<_> = r.availability.iter().filter(|a| a.client == c).collect();
            log.iter()
                .enumerate()
                .filter(|(_, a)| a.online)
                .map(|(i, a)| log.get(i + 1).map_or(end, |b| b.sim_seconds) - a.sim_seconds)
                .sum()
        })
        .collect()
}

#[test]
fn markov_availability_is_online_mean_on_over_the_cycle() {
    let markov = Availability::Markov {
        mean_on: 30.0,
        mean_off: 10.0,
    };
    let phone = with_availability(client(1.0, link(0.0, 1e9), link(0.0, 1e9)), markov);
    let mut c = config(
        vec![phone; 20],
        FedAvgConfig {
            clients_per_round: 2,
            over_selection: 0.0,
            deadline: Some(SimTime(1_000_000_000)),
        },
        1_000,
    );
    let horizon = 100_000.0;
    c.stop.virtual_time = Some(SimTime::from_secs_ceil(horizon));
    // FedAvg no longer waits for lost clients, so rounds are quick: run to the horizon.
    c.stop.rounds = None;
    let out = run(&c);
    assert_eq!(out.clock.end, SimTime::from_secs_ceil(horizon));
    let online: f64 = online_seconds(&out.records, 20, horizon).iter().sum();
    let fraction = online / (20.0 * horizon);
    assert!(
        (fraction - 0.75).abs() < 0.02 * 0.75,
        "online fraction {fraction}"
    );
    // Thousands of cycles per device, all logged.
    assert!(out.records.availability.len() > 20 * 4000);
}

#[test]
fn a_trace_drives_exactly_the_listed_times() {
    let trace = Availability::Trace(vec![
        (SimTime(0), SimTime(10_000_000)),
        (SimTime(20_000_000), SimTime(30_000_000)),
    ]);
    let traced = with_availability(client(300.0, link(0.0, 1e9), link(0.0, 1e9)), trace);
    let always = client(300.0, link(0.0, 1e9), link(0.0, 1e9));
    let mut c = config(vec![traced, always], fedavg(1), 1_000);
    c.stop.virtual_time = Some(SimTime(40_000_000));
    let out = run(&c);
    let log: Vec<(f64, usize, bool)> = out
        .records
        .availability
        .iter()
        .map(|a| (a.sim_seconds, a.client, a.online))
        .collect();
    assert_eq!(
        log,
        vec![
            (0.0, 0, true),
            (10.0, 0, false),
            (20.0, 0, true),
            (30.0, 0, false)
        ]
    );
}

#[test]
fn going_offline_mid_upload_loses_the_transfer_and_frees_the_ingress() {
    // Both clients train 1 s and start 32,000-bit uploads at 1.000001 s through a shared
    // 1 Mbit/s ingress. Client 0 goes offline 10 ms later: client 1 has 27,000 bits left,
    // alone at 1 Mbit/s, so its update arrives at 1.037001 s (not 1.064001 s).
    let leaves = Availability::Trace(vec![(SimTime(0), SimTime(1_010_001))]);
    let a = with_availability(client(300.0, link(0.0, 1e9), link(0.0, 32e9)), leaves);
    let b = client(300.0, link(0.0, 1e9), link(0.0, 32e9));
    let cfg = FedAvgConfig {
        clients_per_round: 2,
        over_selection: 0.0,
        deadline: Some(SimTime(5_000_000)),
    };
    let mut c = config(vec![a, b], cfg, 1);
    c.ingress = Some(Rate::Fixed(1e6));
    let out = run(&c);
    let r = &out.records;
    let arrivals: Vec<(f64, usize)> = r
        .updates
        .iter()
        .map(|u| (u.sim_seconds, u.client))
        .collect();
    assert_eq!(arrivals, vec![(1.037001, 1)]);
    assert_eq!((r.dropouts, r.clients[0].dropouts), (1, 1));
    // Every attempt counts its full size when it starts, the interrupted one too.
    assert_eq!(r.bytes_up, 2 * 4 * P as u64);
    assert_eq!(r.updates_applied, 1);
}

/// Keeps, as each client's personal state, the number of jobs it has run.
struct Counting;

impl Learner for Counting {
    fn initial_params(&self) -> Vec<f32> {
        vec![0.0; P]
    }
    fn train_work(&self, _: ClientId) -> Work {
        Work::samples(WORK)
    }
    fn train(&self, job: TrainJob) -> Pending<TrainOutcome> {
        let jobs = job.personal.map_or(0.0, |p| p[0]) + 1.0;
        Pending::ready(TrainOutcome {
            slots: vec![SlotOutcome {
                params: job.params[0].to_vec(),
                num_samples: 1,
            }],
            loss: 0.0,
            personal: Some(vec![jobs]),
        })
    }
    fn evaluate(&self, job: EvalJob) -> Pending<EvalOutcome> {
        let n = job.personal.len();
        Pending::ready(EvalOutcome {
            global_accuracy: 0.0,
            global_loss: 0.0,
            task_accuracy: vec![0.0],
            client_accuracy: vec![Some(0.0); n],
            personalized_accuracy: job
                .personal
                .iter()
                .map(|p| Some(p.as_ref().map_or(0.0, |v| v[0] as f64)))
                .collect(),
        })
    }
}

#[test]
fn personal_state_persists_across_a_clients_jobs_and_reaches_evaluation() {
    let a = client(300.0, link(0.0, 1e9), link(0.0, 1e9));
    let c = config(vec![a; 5], fedavg(2), 6);
    let out = run_to_end(c, Arc::new(Counting));
    for stats in &out.records.clients {
        // Every job the client ran started from the count its previous job left.
        assert_eq!(
            stats.personalized_accuracy,
            Some(stats.trained as f64),
            "client {}",
            stats.client
        );
    }
    assert_eq!(
        out.records.clients.iter().map(|s| s.trained).sum::<u64>(),
        12
    );
}

#[test]
fn periodic_evaluation_happens_at_exact_multiples_of_its_period() {
    // Rounds take 2.086 s; evaluations every 5 s see the model of the last round before.
    let mut c = config(
        vec![client(150.0, link(0.030, 8e6), link(0.050, 16e6))],
        fedavg(1),
        10,
    );
    c.eval_every_rounds = None;
    c.eval_every = Some(SimTime(5_000_000));
    let out = run(&c);
    let rows: Vec<(f64, u64)> = out
        .records
        .timeline
        .iter()
        .map(|t| (t.sim_seconds, t.version))
        .collect();
    // The initial model at 0 s, ticks at 5, 10, 15, 20 s (versions 2, 4, 7, 9), then the
    // final evaluation at 20.86 s.
    assert_eq!(
        rows,
        vec![
            (0.0, 0),
            (5.0, 2),
            (10.0, 4),
            (15.0, 7),
            (20.0, 9),
            (20.86, 10)
        ]
    );
}

/// Values per adapter in the multi-task tests.
const D: usize = 3;

/// Three tasks with far-apart targets; training moves a slot's adapter to its task's
/// target plus `0.01 * (client + 1)`, from `5 + client` samples.
struct MultiTask {
    slots: Vec<Vec<usize>>,
}

impl MultiTask {
    fn target(task: usize) -> [f32; D] {
        [[10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]][task]
    }

    fn trained(task: usize, client: usize) -> Vec<f32> {
        Self::target(task)
            .iter()
            .map(|v| v + 0.01 * (client + 1) as f32)
            .collect()
    }
}

impl Learner for MultiTask {
    fn initial_params(&self) -> Vec<f32> {
        vec![0.0; D]
    }
    fn train_work(&self, client: ClientId) -> Work {
        Work::samples(WORK * self.slots[client].len() as u64)
    }
    fn train(&self, job: TrainJob) -> Pending<TrainOutcome> {
        assert_eq!(job.params.len(), self.slots[job.client].len());
        Pending::ready(TrainOutcome {
            slots: self.slots[job.client]
                .iter()
                .map(|&task| SlotOutcome {
                    params: Self::trained(task, job.client),
                    num_samples: 5 + job.client as u64,
                })
                .collect(),
            loss: 0.0,
            personal: None,
        })
    }
    fn evaluate(&self, job: EvalJob) -> Pending<EvalOutcome> {
        // A task's "accuracy" is the served model's coordinate on the task's own axis.
        let task_accuracy: Vec<f64> = job
            .tasks
            .iter()
            .enumerate()
            .map(|(t, m)| m[t] as f64)
            .collect();
        Pending::ready(EvalOutcome {
            global_accuracy: 0.0,
            global_loss: 0.0,
            task_accuracy,
            client_accuracy: vec![Some(0.0); job.slots.len()],
            personalized_accuracy: vec![Some(0.0); job.slots.len()],
        })
    }
}

/// Nine clients: three hold task 0, three task 1, three hold both 1 and 2.
fn multi_task(algorithm: AlgorithmSpec, stop: u32) -> (SimConfig, Vec<Vec<usize>>) {
    let slots: Vec<Vec<usize>> = (0..9)
        .map(|c| match c % 3 {
            0 => vec![0],
            1 => vec![1],
            _ => vec![1, 2],
        })
        .collect();
    let clients = slots
        .iter()
        .map(|s| ClientSpec {
            slots: s.iter().map(|&t| Some(t)).collect(),
            ..client(300.0, link(0.0, 1e9), link(0.0, 1e9))
        })
        .collect();
    let mut c = config(clients, fedavg(9), stop);
    c.algorithm = algorithm;
    c.tasks = 3;
    c.clustering = Some(Clustering {
        k: 3,
        iterations: 10,
        restarts: 4,
        warm_start: false,
    });
    (c, slots)
}

#[test]
fn fltac_clusters_by_task_and_averages_inside_each_cluster() {
    let (c, slots) = multi_task(AlgorithmSpec::FedAvg(fedavg(9)), 2);
    let out = run_to_end(
        c,
        Arc::new(MultiTask {
            slots: slots.clone(),
        }),
    );
    let r = &out.records;
    assert_eq!(r.clusterings.len(), 2);
    for clustering in &r.clusterings {
        assert_eq!(clustering.purity, 1.0);
        let mut sizes = clustering.sizes.clone();
        sizes.sort_unstable();
        assert_eq!(sizes, vec![3, 3, 6]);
    }
    // Each task's model is the sample-weighted mean of its adapters, by hand.
    for t in 0..3 {
        let holders: Vec<usize> = (0..9).filter(|&c| slots[c].contains(&t)).collect();
        let total: f64 = holders.iter().map(|&c| (5 + c) as f64).sum();
        let mean = holders
            .iter()
            .map(|&c| (5 + c) as f64 * MultiTask::trained(t, c)[t] as f64)
            .sum::<f64>()
            / total;
        let last = r.timeline.last().unwrap();
        assert_eq!(last.task_accuracy[t], mean as f32 as f64, "task {t}");
        assert_eq!(last.cluster_purity, Some(1.0));
    }
    // Bytes count every adapter: a two-task client moves two adapters each way.
    let adapter = 4 * D as u64;
    for (client, stats) in r.clients.iter().enumerate() {
        let n = slots[client].len() as u64;
        assert_eq!(stats.bytes_up, 2 * n * adapter, "client {client}");
        assert_eq!(stats.bytes_down, 2 * n * adapter, "client {client}");
    }
}

#[test]
fn fltac_clusters_on_each_fedbuff_flush() {
    let fedbuff = FedBuffConfig {
        concurrency: 9,
        buffer: 9,
        server_lr: 1.0,
        staleness: Staleness::Constant,
        max_staleness: None,
    };
    let (mut c, slots) = multi_task(AlgorithmSpec::FedBuff(fedbuff), 3);
    // After the first flush, k-means starts from the cluster models.
    c.clustering.as_mut().unwrap().warm_start = true;
    c.stop.rounds = None;
    c.stop.virtual_time = Some(SimTime(10_000_000));
    let run = || {
        run_to_end(
            c.clone(),
            Arc::new(MultiTask {
                slots: slots.clone(),
            }),
        )
    };
    let out = run();
    let r = &out.records;
    assert!(r.clusterings.len() >= 2);
    assert!(r.clusterings.iter().all(|c| c.purity == 1.0));
    // With server lr 1, the first flush (every client trained from the initial zeros)
    // makes each task's model the plain mean of its adapters.
    // (Row 0 is the initial model's.)
    let first = &r.timeline[1];
    for t in 0..3 {
        let holders: Vec<usize> = (0..9).filter(|&c| slots[c].contains(&t)).collect();
        let mean = holders
            .iter()
            .map(|&c| MultiTask::trained(t, c)[t])
            .sum::<f32>()
            / holders.len() as f32;
        assert!(
            (first.task_accuracy[t] - mean as f64).abs() < 1e-4,
            "task {t}"
        );
    }
    let again = run();
    assert_eq!(format!("{:?}", again.records), format!("{r:?}"));
}
