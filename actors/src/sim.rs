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
