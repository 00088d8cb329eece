//! Building the actors of a simulation and running it to the end.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix::Actor;

use crate::client::{Crowd, PersonalModels};
use crate::clock::{Actors, ClockActor, Observer, Run};
use crate::config::SimConfig;
use crate::learner::Learner;
use crate::link::BottleneckActor;
use crate::net::Direction;
use crate::outcome::{SimError, SimOutcome};
use crate::record::{RecordSink, Records, Sink};
use crate::rng::{ActorKey, stream};
use crate::server::{Routes, ServerActor, ServerSetup};
use crate::strategy::{self, Clusterer};
use crate::wire::Encoder;

/// Runs `config` with `learner` on an actix system of its own, until the stop rule holds,
/// nothing is left to happen, `interrupt` is set, or the learner drops a job
/// ([`StopReason::PoolFailed`](crate::StopReason::PoolFailed)). Records made before an
/// interruption or a failure are returned all the same.
///
/// The config is taken: each client's spec is freed as soon as its actor is built, so
/// that the run does not hold the population's specs (about 300 bytes a client) while
/// it runs, and reuses their memory instead of asking the OS for more.
///
/// Two clients and synchronous FedAvg, with a learner whose "training" adds one to every
/// value: each round is exactly a download, the slower client's compute and an upload.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::AtomicBool;
///
/// use flotilla_actors::config::FedAvgConfig;
/// use flotilla_actors::device::{Availability, DeviceSpec};
/// use flotilla_actors::learner::SlotOutcome;
/// use flotilla_actors::net::{LinkSpec, LinkValue};
/// use flotilla_actors::{
///     AlgorithmSpec, ClientId, ClientSpec, Dist, Encoding, EvalJob, EvalOutcome, Learner,
///     Pending, SimConfig, SimTime, SpeedUnit, StopReason, StopRule, TrainJob, TrainOutcome,
///     Wire, Work, simulate,
/// };
///
/// /// Adds one to every value; its "accuracy" is the model's first value.
/// struct AddOne;
///
/// impl Learner for AddOne {
///     fn initial_params(&self) -> Vec<f32> {
///         vec![0.0; 250] // 1,000 bytes in f32
///     }
///     fn train_work(&self, _: ClientId) -> Work {
///         Work::samples(100)
///     }
///     fn train(&self, job: TrainJob) -> Pending<TrainOutcome> {
///         let params = job.params[0].iter().map(|v| v + 1.0).collect();
///         let slots = vec![SlotOutcome { params, num_samples: 100 }];
///         Pending::ready(TrainOutcome { slots, loss: 0.0, personal: None })
///     }
///     fn evaluate(&self, job: EvalJob) -> Pending<EvalOutcome> {
///         let first = f64::from(job.tasks[0][0]);
///         Pending::ready(EvalOutcome {
///             global_accuracy: first,
///             global_loss: 0.0,
///             task_accuracy: vec![first],
///             client_accuracy: vec![None; 2],
///             personalized_accuracy: vec![None; 2],
///         })
///     }
/// }
///
/// // 10 ms each way, 8 Mbit/s: 1,000 bytes take 1 ms on the wire.
/// let link = LinkSpec {
///     latency: LinkValue::Draw(Dist::Const(0.010)),
///     bandwidth: LinkValue::Draw(Dist::Const(8e6)),
///     loss: 0.0,
///     timeout: SimTime::from_micros(1_000_000),
///     retries: 0,
/// };
/// // 100 samples at 100 and 50 samples/s: the round waits 2 s for the slower one.
/// let client = |speed: f64| ClientSpec {
///     class: "phone".into(),
///     device: DeviceSpec {
///         speed: Dist::Const(speed),
///         unit: SpeedUnit::Samples,
///         dropout: 0.0,
///         memory: None,
///     },
///     availability: Availability::Always,
///     uplink: link.clone(),
///     downlink: link.clone(),
///     slots: vec![Some(0)],
/// };
/// let config = SimConfig {
///     seed: 7,
///     clients: vec![client(100.0), client(50.0)],
///     ingress: None,
///     egress: None,
///     wire: Wire::uniform(Encoding::F32),
///     algorithm: AlgorithmSpec::FedAvg(FedAvgConfig {
///         clients_per_round: 2,
///         over_selection: 0.0,
///         deadline: None,
///     }),
///     clustering: None,
///     tasks: 1,
///     stop: StopRule { rounds: Some(3), virtual_time: None, target_accuracy: None },
///     eval_every_rounds: Some(1),
///     eval_every: None,
///     tracked_clients: 0,
/// };
/// let interrupt = Arc::new(AtomicBool::new(false));
/// let outcome = simulate(config, Arc::new(AddOne), interrupt, Box::new(())).unwrap();
///
/// assert_eq!(outcome.clock.reason, StopReason::Finished);
/// // Down 11 ms, compute 2 s, up 11 ms: three rounds of 2.022 s.
/// assert_eq!(outcome.records.round_seconds, vec![2.022; 3]);
/// assert_eq!(outcome.clock.end, SimTime::from_micros(3 * 2_022_000));
/// // Every round adds one to the mean of the two updates.
/// let models: Vec<f64> = outcome.records.timeline.iter().map(|r| r.global_accuracy).collect();
/// assert_eq!(models, vec![0.0, 1.0, 2.0, 3.0]);
/// ```
pub fn simulate(
    config: SimConfig,
    learner: Arc<dyn Learner>,
    interrupt: Arc<AtomicBool>,
    observer: Box<dyn Observer>,
) -> Result<SimOutcome, SimError> {
    run(config, learner, interrupt, observer, Sink::default())
}

/// As [`simulate`], but the rows that grow with the run (updates, availability changes)
/// go to `sink` as they happen instead of into the returned records.
pub fn simulate_streaming(
    config: SimConfig,
    learner: Arc<dyn Learner>,
    interrupt: Arc<AtomicBool>,
    observer: Box<dyn Observer>,
    sink: Box<dyn RecordSink>,
) -> Result<SimOutcome, SimError> {
    run(config, learner, interrupt, observer, Sink(Some(sink)))
}

fn run(
    config: SimConfig,
    learner: Arc<dyn Learner>,
    interrupt: Arc<AtomicBool>,
    observer: Box<dyn Observer>,
    sink: Sink,
) -> Result<SimOutcome, SimError> {
    let mut records = Records::new(config.clients.iter().map(|c| c.class.clone()));
    records.sink = sink;
    let records = Rc::new(RefCell::new(records));
    let system = actix::System::new();
    let clock = system.block_on(async {
        let (actors, initial) = spawn_actors(config, learner.clone(), &records);
        let clock = ClockActor::new(
            actors,
            initial,
            records.clone(),
            interrupt,
            observer,
            learner,
        )
        .start();
        clock
            .send(Run)
            .await
            .map_err(|_| SimError::Actor("clock"))?
    })?;
    let records = records.take();
    Ok(SimOutcome { clock, records })
}

/// Builds every actor; returns them and the events due before the server starts (the
/// first availability changes).
fn spawn_actors(
    mut config: SimConfig,
    learner: Arc<dyn Learner>,
    records: &Rc<RefCell<Records>>,
) -> (Actors, Vec<(crate::time::SimTime, crate::event::Event)>) {
    let clusterer = config
        .clustering
        .clone()
        .map(|c| Clusterer::new(c, stream(config.seed, ActorKey::Server, "cluster")));
    let strategy = strategy::build(&config.algorithm, clusterer);
    let personal: PersonalModels = Rc::default();
    let models = config.clustering.as_ref().map_or(1, |c| c.k);
    let routes = Routes::new(
        config.clients.iter().map(|c| c.slots.as_slice()),
        models,
        config.clustering.is_some(),
    );
    let (crowd, initial) = Crowd::new(
        std::mem::take(&mut config.clients),
        config.seed,
        config.tracked_clients,
        Encoder::new(config.wire.up, config.wire.layout.clone()),
        learner.clone(),
        records.clone(),
        personal.clone(),
    );
    let setup = ServerSetup {
        seed: config.seed,
        models,
        tasks: config.tasks,
        routes,
        online: crowd.selectable(),
        personal,
        wire: config.wire,
        stop: config.stop,
        eval_every_rounds: config.eval_every_rounds,
        eval_every: config.eval_every,
    };
    let server = ServerActor::new(setup, strategy, learner, records.clone()).start();
    let actors = Actors {
        server,
        crowd,
        ingress: BottleneckActor::new(Direction::Up, config.ingress),
        egress: BottleneckActor::new(Direction::Down, config.egress),
    };
    (actors, initial)
}
