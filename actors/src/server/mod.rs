//! The server actor: holds the global model and its version, runs the strategy, evaluates.

mod ctx;
mod eval;
mod routing;

pub(crate) use ctx::ServerCtx;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use crate::client::PersonalModels;
use crate::config::StopRule;
use crate::event::{Event, Out, ServerEvent, deliver_to};
use crate::learner::{ClientId, Learner, Params};
use crate::outcome::StopReason;
use crate::record::{DiscardReason, Records, UpdateRecord};
use crate::rng::{ActorKey, SimRng, Stream, stream};
use crate::strategy::Strategy;
use crate::time::SimTime;
use crate::wire::{Encoded, Encoder, Sender, Wire};
pub(crate) use routing::Routes;

/// The server: its models, version counter, strategy, evaluation schedule.
pub(crate) struct ServerActor {
    /// The models it serves: one global model, or one per cluster (FL-TAC).
    models: Vec<Params>,
    /// Which model each client's slot receives.
    routes: Routes,
    initial: Params,
    tasks: usize,
    /// What each client at work was last sent: the version and one model per slot
    /// (forgotten once its update arrives or it fails, so idle clients pin no model).
    sent: Vec<Option<(u64, Vec<Params>)>>,
    /// Whether the strategy reads what clients started from, so `sent` is kept.
    remembers_sent: bool,
    version: u64,
    strategy: Box<dyn Strategy>,
    rng: SimRng,
    clients: usize,
    wire: Encoder,
    /// The server's side of the downlink: stochastic rounding's stream.
    sender: Sender,
    learner: Arc<dyn Learner>,
    records: Rc<RefCell<Records>>,
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
pub(crate) struct ServerSetup {
    pub seed: u64,
    /// Models the server serves (one per cluster for FL-TAC, else one).
    pub models: usize,
    /// Number of tasks in the scenario.
    pub tasks: usize,
    /// Which model each client's slot receives, with the true tasks behind them.
    pub routes: Routes,
    /// Whether each client starts online.
    pub online: Vec<bool>,
    pub personal: PersonalModels,
    pub wire: Wire,
    pub stop: StopRule,
    pub eval_every_rounds: Option<u32>,
    pub eval_every: Option<SimTime>,
}

impl ServerActor {
    pub(crate) fn new(
        setup: ServerSetup,
        strategy: Box<dyn Strategy>,
        learner: Arc<dyn Learner>,
        records: Rc<RefCell<Records>>,
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
        let remembers_sent = strategy.reads_bases();
        Self {
            models: vec![initial.clone(); models],
            initial,
            sent: if remembers_sent {
                vec![None; setup.routes.clients()]
            } else {
                Vec::new()
            },
            remembers_sent,
            routes: setup.routes,
            tasks: setup.tasks,
            version: 0,
            strategy,
            rng: stream(setup.seed, ActorKey::Server, "select"),
            clients: setup.online.len(),
            wire: Encoder::new(setup.wire.down, setup.wire.layout),
            sender: Sender::new(Stream::new(setup.seed, ActorKey::Server, "wire")),
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

    /// Tells the strategy that `client` will not deliver its job of `round`, unless the
    /// run is stopping.
    fn lost(&mut self, strategy: &mut dyn Strategy, out: &mut Out, client: ClientId, round: u32) {
        if !self.stopping {
            let ctx = &mut ServerCtx {
                server: self,
                out,
                base: None,
            };
            strategy.on_failure(ctx, client, round);
        }
    }

    fn handle(&mut self, out: &mut Out, event: ServerEvent) {
        let mut strategy = std::mem::replace(&mut self.strategy, Box::new(crate::strategy::Idle));
        match event {
            ServerEvent::Start if self.stop.rounds == Some(0) => {
                // Nothing but the initial model's evaluation: how good it is before any
                // round.
                self.finish(out);
            }
            ServerEvent::Start => {
                // The initial model, at time zero: every timeline starts from it.
                self.evaluate(out, 0);
                if let Some(t) = self.stop.virtual_time {
                    out.at(t, Event::Server(ServerEvent::Horizon));
                }
                if let Some(every) = self.eval_every {
                    out.at(every, Event::Server(ServerEvent::EvalTick));
                }
                strategy.start(&mut ServerCtx {
                    server: self,
                    out,
                    base: None,
                });
            }
            ServerEvent::UpdateArrived(update) => {
                self.records.borrow_mut().updates_received += 1;
                metrics::counter!(crate::metrics::UPDATES_RECEIVED).increment(1);
                let staleness = self.version.saturating_sub(update.base_version);
                metrics::histogram!(crate::metrics::STALENESS).record(staleness as f64);
                self.records.borrow_mut().on_update(UpdateRecord {
                    sim_seconds: out.time().as_secs_f64(),
                    client: update.client,
                    base_version: update.base_version,
                    staleness,
                });
                // What the client started from is needed for this update alone.
                let base = match self.sent.get_mut(update.client).and_then(Option::take) {
                    Some((v, models)) if v == update.base_version => Some(models),
                    newer => {
                        if let Some(sent) = self.sent.get_mut(update.client) {
                            *sent = newer;
                        }
                        None
                    }
                };
                let flawed = if update.adapters.iter().any(|a| a.num_samples == 0) {
                    Some(DiscardReason::Empty)
                } else if !update.adapters.iter().all(|a| a.finite) {
                    Some(DiscardReason::NonFinite)
                } else {
                    None
                };
                if let Some(reason) = flawed {
                    // Never averaged in: the strategy treats the client as failed.
                    self.discard(update.client, reason);
                    self.lost(strategy.as_mut(), out, update.client, update.round);
                } else if self.stopping {
                    self.discard(update.client, DiscardReason::Late);
                } else {
                    let ctx = &mut ServerCtx {
                        server: self,
                        out,
                        base,
                    };
                    strategy.on_update(ctx, update);
                }
            }
            ServerEvent::Timer(token) => {
                if !self.stopping {
                    strategy.on_timer(
                        &mut ServerCtx {
                            server: self,
                            out,
                            base: None,
                        },
                        token,
                    );
                }
            }
            ServerEvent::ClientFailed { client, round } => {
                // The failed job's models will not be needed.
                if let Some(sent) = self.sent.get_mut(client) {
                    *sent = None;
                }
                self.lost(strategy.as_mut(), out, client, round);
            }
            ServerEvent::CheckIn { client, online } => {
                self.online[client] = online;
                let ctx = &mut ServerCtx {
                    server: self,
                    out,
                    base: None,
                };
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
                        out.now(Event::Stop(StopReason::Finished));
                    }
                }
            }
            ServerEvent::Horizon => self.finish(out),
            ServerEvent::Stalled => {
                let online = self.online.iter().filter(|&&o| o).count();
                let why = format!(
                    "{}, and no client can deliver one: {online} of {} clients online, none \
                     at work, and no device will change its availability",
                    strategy.awaiting(),
                    self.clients
                );
                self.records.borrow_mut().stop_detail = Some(why);
            }
            ServerEvent::EvalTick => {
                if !self.stopping {
                    let round = self.records.borrow_mut().rounds;
                    self.evaluate(out, round);
                    if let Some(every) = self.eval_every {
                        out.after(every, Event::Server(ServerEvent::EvalTick));
                    }
                }
            }
        }
        self.strategy = strategy;
    }

    /// Winds the run down: a final evaluation of the current model, then stop.
    fn finish(&mut self, out: &mut Out) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        let round = self.records.borrow_mut().rounds;
        self.evaluate(out, round);
        if self.evals_in_flight == 0 {
            out.now(Event::Stop(StopReason::Finished));
        }
    }

    /// The model a slot routed to `route` receives.
    fn served(&self, route: Option<usize>) -> &Params {
        route.map_or(&self.initial, |m| &self.models[m])
    }

    fn discard(&mut self, client: ClientId, reason: DiscardReason) {
        metrics::counter!(crate::metrics::UPDATES_DISCARDED, "reason" => reason.as_str())
            .increment(1);
        self.records.borrow_mut().on_discard(client, reason);
    }
}

deliver_to!(ServerActor, ServerEvent);
