//! The server actor: holds the global model and its version, runs the strategy, evaluates.

use std::sync::{Arc, Mutex};

use crate::client::{ClientEvent, PersonalModels};
use crate::event::{Event, Out, deliver_to};
use crate::learner::{ClientId, EvalJob, EvalOutcome, Learner, Pending, TaskId};
use crate::message::{Message, ModelMsg, UpdateMsg};
use crate::net::{Direction, LinkEvent, LinkId};
use crate::payload::{Encoded, Encoder, Params, Wire};
use crate::record::{
    ClusteringRecord, DiscardReason, Records, TimelineRow, UpdateRecord, nearest_rank,
};
use crate::rng::{ActorKey, SimRng, stream};
use crate::strategy::Strategy;
use crate::time::SimTime;

/// When a run ends.
#[derive(Clone, Debug, PartialEq)]
pub struct StopRule {
    /// After this many completed rounds (synchronous algorithms).
    pub rounds: Option<u32>,
    /// At this simulated time.
    pub virtual_time: Option<SimTime>,
    /// As soon as an evaluation reaches this global accuracy.
    pub target_accuracy: Option<f64>,
}

/// Events the server handles.
#[derive(Debug)]
pub enum ServerEvent {
    /// The run begins.
    Start,
    /// A client's update arrived.
    UpdateArrived(UpdateMsg),
    /// A timer the strategy set (a round deadline).
    Timer(u64),
    /// A client working for the server failed; the server notices the lost connection.
    ClientFailed(ClientId),
    /// A client came online or went offline.
    CheckIn { client: ClientId, online: bool },
    /// An evaluation of `version` finished.
    EvalDone {
        round: u32,
        version: u64,
        /// Boxed, as is `progress`: every event is as large as the largest, and this one
        /// comes once a round.
        outcome: Box<Pending<EvalOutcome>>,
        /// Whether the run waits for it: its result can stop the run (a target accuracy,
        /// the final evaluation). The clock may deliver any other evaluation later, as
        /// its result comes in, for it only writes records.
        blocking: bool,
        /// The records' counters as the evaluation started, for its timeline row.
        progress: Box<Progress>,
    },
    /// The virtual-time limit.
    Horizon,
    /// Time for a periodic evaluation.
    EvalTick,
}

/// The counters an evaluation's timeline row reports, as they stood when it started.
#[derive(Clone, Debug)]
pub struct Progress {
    cluster_purity: Option<f64>,
    updates_applied: u64,
    updates_discarded: u64,
    bytes_up: u64,
    bytes_down: u64,
}

/// The server: its models, version counter, strategy, evaluation schedule.
pub struct ServerActor {
    /// The models it serves: one global model, or one per cluster (FL-TAC).
    models: Vec<Params>,
    /// Which model each client's slot receives, by client and slot; `None` until a
    /// clustering places the slot, which then receives the initial model.
    routes: Vec<Vec<Option<usize>>>,
    initial: Params,
    /// The true task behind each client's slot, for reports only (strategies never see it).
    slot_tasks: Vec<Vec<Option<TaskId>>>,
    tasks: usize,
    /// What each client was last sent: the version and one model per slot.
    sent: Vec<Option<(u64, Vec<Params>)>>,
    version: u64,
    strategy: Box<dyn Strategy>,
    rng: SimRng,
    clients: usize,
    wire: Encoder,
    learner: Arc<dyn Learner>,
    records: Arc<Mutex<Records>>,
    stop: StopRule,
    eval_every_rounds: Option<u32>,
    eval_every: Option<SimTime>,
    /// Each model as encoded for the current version, shared by every download.
    encoded: Vec<Option<(u64, Encoded)>>,
    round_started: SimTime,
    /// Set once the run is winding down: the final evaluation then stops it.
    stopping: bool,
    evaluated_version: Option<u64>,
    /// Blocking evaluations started and not yet delivered.
    evals_in_flight: u32,
    /// Which clients are online, as their check-ins tell.
    online: Vec<bool>,
    /// The clients' personal models, read for evaluation only.
    personal: PersonalModels,
}

/// Server settings besides the strategy.
pub struct ServerSetup {
    pub seed: u64,
    /// Models the server serves (one per cluster for FL-TAC, else one).
    pub models: usize,
    /// Whether clusterings route slots to models (FL-TAC); else every slot gets model 0.
    pub clustered: bool,
    /// Number of tasks in the scenario.
    pub tasks: usize,
    /// The true task behind each client's slot (`None` for a slot mixing tasks).
    pub slot_tasks: Vec<Vec<Option<TaskId>>>,
    /// Whether each client starts online.
    pub online: Vec<bool>,
    pub personal: PersonalModels,
    pub wire: Wire,
    pub stop: StopRule,
    pub eval_every_rounds: Option<u32>,
    pub eval_every: Option<SimTime>,
}

impl ServerActor {
    pub fn new(
        setup: ServerSetup,
        strategy: Box<dyn Strategy>,
        learner: Arc<dyn Learner>,
        records: Arc<Mutex<Records>>,
    ) -> Self {
        // Register every series at zero, so that dashboards show them before the first event.
        for reason in DiscardReason::ALL {
            metrics::counter!(crate::metrics::UPDATES_DISCARDED, "reason" => reason.as_str())
                .increment(0);
        }
        metrics::counter!(crate::metrics::UPDATES_RECEIVED).increment(0);
        metrics::counter!(crate::metrics::UPDATES_APPLIED).increment(0);
        metrics::gauge!(crate::metrics::MODEL_VERSION).set(0.0);
        let initial = Arc::new(learner.initial_params());
        let models = setup.models.max(1);
        let route = (!setup.clustered).then_some(0);
        Self {
            models: vec![initial.clone(); models],
            initial,
            routes: setup
                .slot_tasks
                .iter()
                .map(|s| vec![route; s.len()])
                .collect(),
            sent: vec![None; setup.slot_tasks.len()],
            slot_tasks: setup.slot_tasks,
            tasks: setup.tasks,
            version: 0,
            strategy,
            rng: stream(setup.seed, ActorKey::Server, "select"),
            clients: setup.online.len(),
            wire: Encoder::new(
                setup.wire.down,
                setup.wire.layout,
                stream(setup.seed, ActorKey::Server, "wire"),
            ),
            learner,
            records,
            stop: setup.stop,
            eval_every_rounds: setup.eval_every_rounds.filter(|&r| r > 0),
            eval_every: setup.eval_every.filter(|t| *t > SimTime::ZERO),
            encoded: vec![None; models + 1],
            round_started: SimTime::ZERO,
            stopping: false,
            evaluated_version: None,
            evals_in_flight: 0,
            online: setup.online,
            personal: setup.personal,
        }
    }

    fn handle(&mut self, out: &mut Out, event: ServerEvent) {
        let mut strategy = std::mem::replace(&mut self.strategy, Box::new(crate::strategy::Idle));
        match event {
            ServerEvent::Start => {
                if let Some(t) = self.stop.virtual_time {
                    out.at(t, Event::Server(ServerEvent::Horizon));
                }
                if let Some(every) = self.eval_every {
                    out.at(every, Event::Server(ServerEvent::EvalTick));
                }
                strategy.start(&mut ServerCtx { server: self, out });
            }
            ServerEvent::UpdateArrived(update) => {
                self.records.lock().expect("records lock").updates_received += 1;
                metrics::counter!(crate::metrics::UPDATES_RECEIVED).increment(1);
                let staleness = self.version.saturating_sub(update.base_version);
                metrics::histogram!(crate::metrics::STALENESS).record(staleness as f64);
                self.records
                    .lock()
                    .expect("records lock")
                    .updates
                    .push(UpdateRecord {
                        sim_seconds: out.time().as_secs_f64(),
                        client: update.client,
                        base_version: update.base_version,
                        staleness,
                    });
                if self.stopping {
                    self.discard(update.client, DiscardReason::Late);
                } else {
                    strategy.on_update(&mut ServerCtx { server: self, out }, update);
                }
            }
            ServerEvent::Timer(token) => {
                if !self.stopping {
                    strategy.on_timer(&mut ServerCtx { server: self, out }, token);
                }
            }
            ServerEvent::ClientFailed(client) => {
                if !self.stopping {
                    strategy.on_failure(&mut ServerCtx { server: self, out }, client);
                }
            }
            ServerEvent::CheckIn { client, online } => {
                self.online[client] = online;
                let ctx = &mut ServerCtx { server: self, out };
                if !online {
                    strategy.on_offline(ctx, client);
                } else if !ctx.server.stopping {
                    strategy.on_online(ctx, client);
                }
            }
            ServerEvent::EvalDone {
                round,
                version,
                outcome,
                blocking,
                progress,
            } => {
                let outcome = outcome
                    .into_ready()
                    .expect("the clock resolves results before dispatch");
                let reached = self
                    .stop
                    .target_accuracy
                    .is_some_and(|t| outcome.global_accuracy >= t);
                self.record_eval(out.time(), round, version, outcome, *progress);
                if blocking {
                    self.evals_in_flight -= 1;
                    if reached {
                        self.stopping = true;
                    }
                    if self.stopping && self.evals_in_flight == 0 {
                        out.now(Event::Stop);
                    }
                }
            }
            ServerEvent::Horizon => self.finish(out),
            ServerEvent::EvalTick => {
                if !self.stopping {
                    let round = self.records.lock().expect("records lock").rounds;
                    self.evaluate(out, round);
                    if let Some(every) = self.eval_every {
                        out.after(every, Event::Server(ServerEvent::EvalTick));
                    }
                }
            }
        }
        self.strategy = strategy;
    }

    fn record_eval(
        &mut self,
        now: SimTime,
        round: u32,
        version: u64,
        outcome: EvalOutcome,
        progress: Progress,
    ) {
        let mut records = self.records.lock().expect("records lock");
        for ((stats, &acc), &personal) in records
            .clients
            .iter_mut()
            .zip(&outcome.client_accuracy)
            .zip(&outcome.personalized_accuracy)
        {
            stats.local_accuracy = Some(acc);
            stats.personalized_accuracy = Some(personal);
        }
        let (local, local_p10) = mean_and_p10(&outcome.client_accuracy);
        let (mean, p10) = mean_and_p10(&outcome.personalized_accuracy);
        metrics::gauge!(crate::metrics::GLOBAL_ACCURACY).set(outcome.global_accuracy);
        metrics::gauge!(crate::metrics::PERSONALIZED_ACCURACY).set(mean);
        let row = TimelineRow {
            sim_seconds: now.as_secs_f64(),
            round,
            version,
            global_accuracy: outcome.global_accuracy,
            global_loss: outcome.global_loss,
            local_accuracy: local,
            local_accuracy_p10: local_p10,
            personalized_accuracy: mean,
            personalized_accuracy_p10: p10,
            task_accuracy: outcome.task_accuracy,
            cluster_purity: progress.cluster_purity,
            updates_applied: progress.updates_applied,
            updates_discarded: progress.updates_discarded,
            bytes_up: progress.bytes_up,
            bytes_down: progress.bytes_down,
        };
        records.timeline.push(row);
    }

    fn evaluate(&mut self, out: &mut Out, round: u32) {
        if self.evaluated_version == Some(self.version) {
            return;
        }
        self.evaluated_version = Some(self.version);
        let blocking = self.stopping || self.stop.target_accuracy.is_some();
        if blocking {
            self.evals_in_flight += 1;
        }
        let progress = {
            let records = self.records.lock().expect("records lock");
            Box::new(Progress {
                cluster_purity: records.clusterings.last().map(|c| c.purity),
                updates_applied: records.updates_applied,
                updates_discarded: records.updates_discarded_total(),
                bytes_up: records.bytes_up,
                bytes_down: records.bytes_down,
            })
        };
        let personal = self.personal.lock().expect("personal models").clone();
        let slots = self
            .routes
            .iter()
            .map(|r| r.iter().map(|&m| self.served(m).clone()).collect())
            .collect();
        let tasks = (0..self.tasks)
            .map(|t| self.models[self.task_model(t)].clone())
            .collect();
        let outcome = self.learner.evaluate(EvalJob {
            tasks,
            slots,
            personal,
        });
        out.now(Event::Server(ServerEvent::EvalDone {
            round,
            version: self.version,
            outcome: Box::new(outcome),
            blocking,
            progress,
        }));
    }

    /// Winds the run down: a final evaluation of the current model, then stop.
    fn finish(&mut self, out: &mut Out) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        let round = self.records.lock().expect("records lock").rounds;
        self.evaluate(out, round);
        if self.evals_in_flight == 0 {
            out.now(Event::Stop);
        }
    }

    /// The model a slot routed to `route` receives.
    fn served(&self, route: Option<usize>) -> &Params {
        route.map_or(&self.initial, |m| &self.models[m])
    }

    /// The model serving task `t`: the one most of the task's slots are routed to (ties to
    /// the lower index), the first when no slot belongs to the task alone.
    fn task_model(&self, t: TaskId) -> usize {
        let mut votes = vec![0usize; self.models.len()];
        for (routes, tasks) in self.routes.iter().zip(&self.slot_tasks) {
            for (&m, &task) in routes.iter().zip(tasks) {
                if let (Some(m), true) = (m, task == Some(t)) {
                    votes[m] += 1;
                }
            }
        }
        let best = votes.iter().copied().max().unwrap_or(0);
        votes.iter().position(|&v| v == best && v > 0).unwrap_or(0)
    }

    fn discard(&mut self, client: ClientId, reason: DiscardReason) {
        metrics::counter!(crate::metrics::UPDATES_DISCARDED, "reason" => reason.as_str())
            .increment(1);
        self.records
            .lock()
            .expect("records lock")
            .on_discard(client, reason);
    }
}

/// What a strategy may do while the server handles an event.
pub struct ServerCtx<'a> {
    server: &'a mut ServerActor,
    out: &'a mut Out,
}

impl ServerCtx<'_> {
    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.out.time()
    }

    /// Number of clients in the population.
    pub fn clients(&self) -> usize {
        self.server.clients
    }

    /// Whether `client` is online now.
    pub fn is_online(&self, client: ClientId) -> bool {
        self.server.online[client]
    }

    /// The clients online now, in id order.
    pub fn online_clients(&self) -> Vec<ClientId> {
        (0..self.server.clients)
            .filter(|&c| self.server.online[c])
            .collect()
    }

    /// The server's selection stream.
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.server.rng
    }

    /// The current global parameters (the first model where the server keeps several).
    pub fn global(&self) -> &Params {
        &self.server.models[0]
    }

    /// The server's models (one per cluster for FL-TAC).
    pub fn models(&self) -> &[Params] {
        &self.server.models
    }

    /// Number of slots (adapters) `client` trains.
    pub fn slots(&self, client: ClientId) -> usize {
        self.server.routes[client].len()
    }

    /// What `client` was last sent: the model version and one model per slot.
    pub fn sent(&self, client: ClientId) -> Option<&(u64, Vec<Params>)> {
        self.server.sent[client].as_ref()
    }

    /// The current model version (number of aggregations applied).
    pub fn version(&self) -> u64 {
        self.server.version
    }

    /// Marks the start of a round (for round-time records).
    pub fn begin_round(&mut self) {
        self.server.round_started = self.now();
    }

    /// Sends `client` its models over its downlink: for each slot, the model it is routed to.
    pub fn send_model(&mut self, client: ClientId, round: u32) {
        let server = &mut *self.server;
        let version = server.version;
        let mut bytes = 0;
        let mut params = Vec::with_capacity(server.routes[client].len());
        for &route in &server.routes[client] {
            // The initial model's encoding sits after the models'.
            let at = route.unwrap_or(server.models.len());
            let encoded = match &server.encoded[at] {
                Some((v, e)) if *v == version => e.clone(),
                _ => {
                    let values = server.served(route).clone();
                    let e = server.wire.encode_model(&values);
                    server.encoded[at] = Some((version, e.clone()));
                    e
                }
            };
            bytes += encoded.bytes;
            params.push(encoded.values);
        }
        server.sent[client] = Some((version, params.clone()));
        server.records.lock().expect("records lock").clients[client].selected += 1;
        let msg = ModelMsg {
            round,
            version,
            params,
            bytes,
        };
        let link = LinkId {
            client,
            dir: Direction::Down,
        };
        self.out.now(Event::Client(client, ClientEvent::Selected));
        self.out
            .now(Event::Link(link, LinkEvent::Send(Message::Model(msg))));
    }

    /// Calls the strategy's `on_timer(token)` at `at`.
    pub fn set_timer(&mut self, at: SimTime, token: u64) {
        self.out.at(at, Event::Server(ServerEvent::Timer(token)));
    }

    /// Replaces the global model with `params`, built from the updates of `contributors`.
    pub fn apply(&mut self, params: Vec<f32>, contributors: &[ClientId]) {
        self.apply_models(vec![(0, params)], contributors);
    }

    /// Replaces several models at once (one new version), built from the updates of
    /// `contributors`.
    pub fn apply_models(&mut self, models: Vec<(usize, Vec<f32>)>, contributors: &[ClientId]) {
        for (m, params) in models {
            self.server.models[m] = Arc::new(params);
        }
        self.server.version += 1;
        metrics::gauge!(crate::metrics::MODEL_VERSION).set(self.server.version as f64);
        metrics::counter!(crate::metrics::UPDATES_APPLIED).increment(contributors.len() as u64);
        let mut records = self.server.records.lock().expect("records lock");
        records.model_version = self.server.version;
        for &c in contributors {
            records.on_applied(c);
        }
    }

    /// Routes each `(client, slot)` to a model from now on: the result of one clustering,
    /// whose purity against the true tasks is recorded.
    pub fn assign(&mut self, assignments: &[(ClientId, usize, usize)]) {
        let server = &mut *self.server;
        let mut counts = vec![vec![0u64; server.tasks]; server.models.len()];
        let mut labelled = 0u64;
        for &(client, slot, model) in assignments {
            server.routes[client][slot] = Some(model);
            if let Some(t) = server.slot_tasks[client][slot] {
                counts[model][t] += 1;
                labelled += 1;
            }
        }
        let majority: u64 = counts
            .iter()
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .sum();
        let purity = majority as f64 / labelled.max(1) as f64;
        metrics::gauge!(crate::metrics::CLUSTER_PURITY).set(purity);
        let mut sizes = vec![0u64; server.models.len()];
        for &(_, _, model) in assignments {
            sizes[model] += 1;
        }
        server
            .records
            .lock()
            .expect("records lock")
            .clusterings
            .push(ClusteringRecord {
                sim_seconds: self.out.time().as_secs_f64(),
                version: server.version,
                purity,
                sizes,
            });
    }

    /// Counts an update that will not be applied.
    pub fn discard(&mut self, client: ClientId, reason: DiscardReason) {
        self.server.discard(client, reason);
    }

    /// Ends round `round`: evaluates when due and applies the stop rule.
    /// Returns whether the strategy should start another round.
    pub fn end_round(&mut self, round: u32) -> bool {
        let server = &mut *self.server;
        server
            .records
            .lock()
            .expect("records lock")
            .on_round_end(server.round_started, self.out.time());
        let last = server.stop.rounds.is_some_and(|r| round >= r);
        if last {
            server.finish(self.out);
            return false;
        }
        if server
            .eval_every_rounds
            .is_some_and(|every| round.is_multiple_of(every))
        {
            server.evaluate(self.out, round);
        }
        true
    }
}

fn mean_and_p10(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    (mean, nearest_rank(&sorted, 0.10).unwrap_or(f64::NAN))
}

deliver_to!(ServerActor, ServerEvent);
