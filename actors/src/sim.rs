//! Building the actors of a simulation and running it to the end.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use actix::Actor;

use crate::client::{ClientActor, ClientSetup, PersonalModels};
use crate::clock::{Actors, ClockActor, ClockOutcome, Observer, Run};
use crate::config::SimConfig;
use crate::event::Event;
use crate::learner::{Learner, LearnerFailed};
use crate::net::{BottleneckActor, Direction, LinkActor, LinkId};
use crate::record::Records;
use crate::rng::{ActorKey, stream};
use crate::server::{ServerActor, ServerSetup};
use crate::strategy::{self, Clusterer};
use crate::time::SimTime;

/// The result of a run: how it ended and everything recorded on the way.
#[derive(Clone, Debug)]
pub struct SimOutcome {
    /// How and when the run ended.
    pub clock: ClockOutcome,
    /// What the actors recorded.
    pub records: Records,
}

/// Runs `config` with `learner` on an actix system of its own, until the stop rule holds,
/// nothing is left to happen, or `interrupt` is set. Records made before an interruption
/// are returned all the same.
pub fn simulate(
    config: &SimConfig,
    learner: Arc<dyn Learner>,
    interrupt: Arc<AtomicBool>,
    observer: Box<dyn Observer>,
) -> Result<SimOutcome, LearnerFailed> {
    let records = Arc::new(Mutex::new(Records::new(
        config.clients.iter().map(|c| c.class.clone()),
    )));
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
        clock.send(Run).await.map_err(|_| LearnerFailed)?
    })?;
    let records = records.lock().expect("records lock").clone();
    Ok(SimOutcome { clock, records })
}

/// Builds every actor; returns their addresses and the events due before the server
/// starts (the first availability changes).
fn spawn_actors(
    config: &SimConfig,
    learner: Arc<dyn Learner>,
    records: &Arc<Mutex<Records>>,
) -> (Actors, Vec<(SimTime, Event)>) {
    let clusterer = config
        .clustering
        .clone()
        .map(|c| Clusterer::new(c, stream(config.seed, ActorKey::Server, "cluster")));
    let strategy = strategy::build(&config.algorithm, clusterer);
    let personal: PersonalModels = Arc::new(Mutex::new(vec![None; config.clients.len()]));
    let clients: Vec<ClientActor> = config
        .clients
        .iter()
        .enumerate()
        .map(|(id, spec)| {
            let setup = ClientSetup {
                id,
                seed: config.seed,
                class: &spec.class,
                device: &spec.device,
                availability: &spec.availability,
                wire: &config.wire,
                personal: personal.clone(),
                tracked: SimConfig::tracks(id, config.clients.len(), config.tracked_clients),
            };
            ClientActor::new(setup, learner.clone(), records.clone())
        })
        .collect();
    let initial = clients
        .iter()
        .filter_map(ClientActor::first_event)
        .collect();
    let setup = ServerSetup {
        seed: config.seed,
        models: config.clustering.as_ref().map_or(1, |c| c.k),
        clustered: config.clustering.is_some(),
        tasks: config.tasks,
        slot_tasks: config.clients.iter().map(|c| c.slots.clone()).collect(),
        online: clients.iter().map(ClientActor::online).collect(),
        personal,
        wire: config.wire.clone(),
        stop: config.stop.clone(),
        eval_every_rounds: config.eval_every_rounds,
        eval_every: config.eval_every,
    };
    let server = ServerActor::new(setup, strategy, learner, records.clone()).start();
    let mut actors = Actors {
        server,
        clients: clients.into_iter().map(Actor::start).collect(),
        uplinks: Vec::new(),
        downlinks: Vec::new(),
        ingress: BottleneckActor::new(Direction::Up, config.ingress.clone()).start(),
        egress: BottleneckActor::new(Direction::Down, config.egress.clone()).start(),
    };
    for (id, spec) in config.clients.iter().enumerate() {
        for (dir, link_spec, links) in [
            (Direction::Up, &spec.uplink, &mut actors.uplinks),
            (Direction::Down, &spec.downlink, &mut actors.downlinks),
        ] {
            let rng = stream(
                config.seed,
                ActorKey::Link {
                    client: id,
                    up: dir == Direction::Up,
                },
                "link",
            );
            let link = LinkActor::new(
                LinkId { client: id, dir },
                &spec.class,
                link_spec.clone(),
                rng,
                records.clone(),
            );
            links.push(link.start());
        }
    }
    (actors, initial)
}
