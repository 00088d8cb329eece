//! What a strategy may see and do while the server handles an event.

use std::sync::Arc;

use super::ServerActor;
use crate::event::{ClientEvent, Event, LinkEvent, Out, ServerEvent};
use crate::learner::{ClientId, Params};
use crate::message::{Message, ModelMsg};
use crate::net::{Direction, LinkId};
use crate::outcome::StopReason;
use crate::record::{ClusteringRecord, DiscardReason};
use crate::rng::SimRng;
use crate::time::SimTime;

/// What a strategy may do while the server handles an event.
pub(crate) struct ServerCtx<'a> {
    pub(super) server: &'a mut ServerActor,
    pub(super) out: &'a mut Out,
    /// While an update is handled: the models its client started from, if the server
    /// has not sent it newer ones since.
    pub(super) base: Option<Vec<Params>>,
}

impl ServerCtx<'_> {
    /// The current simulated time.
    pub(crate) fn now(&self) -> SimTime {
        self.out.time()
    }

    /// Number of clients in the population.
    pub(crate) fn clients(&self) -> usize {
        self.server.clients
    }

    /// Whether `client` is online now.
    pub(crate) fn is_online(&self, client: ClientId) -> bool {
        self.server.online[client]
    }

    /// The clients online now, in id order.
    pub(crate) fn online_clients(&self) -> Vec<ClientId> {
        (0..self.server.clients)
            .filter(|&c| self.server.online[c])
            .collect()
    }

    /// The server's selection stream.
    pub(crate) fn rng(&mut self) -> &mut SimRng {
        &mut self.server.rng
    }

    /// The current global parameters (the first model where the server keeps several).
    pub(crate) fn global(&self) -> &Params {
        &self.server.models[0]
    }

    /// The server's models (one per cluster for FL-TAC).
    pub(crate) fn models(&self) -> &[Params] {
        &self.server.models
    }

    /// While an update is handled: the models its client started from (one per slot),
    /// gone if the server has sent the client newer ones since.
    pub(crate) fn base(&self) -> Option<&[Params]> {
        self.base.as_deref()
    }

    /// The current model version (number of aggregations applied).
    pub(crate) fn version(&self) -> u64 {
        self.server.version
    }

    /// Marks the start of a round (for round-time records).
    pub(crate) fn begin_round(&mut self) {
        self.server.round_started = self.now();
    }

    /// Sends `client` its models over its downlink: for each slot, the model it is routed to.
    pub(crate) fn send_model(&mut self, client: ClientId, round: u32) {
        let server = &mut *self.server;
        let version = server.version;
        let mut bytes = 0;
        let mut params = Vec::with_capacity(server.routes.of(client).len());
        for route in server.routes.of(client) {
            // The initial model's encoding sits after the models'.
            let at = route.unwrap_or(server.models.len());
            let encoded = match &server.encoded[at] {
                Some((v, e)) if *v == version => e.clone(),
                _ => {
                    let values = server.served(route).clone();
                    let e = server.wire.encode_model(&mut server.sender, &values);
                    server.encoded[at] = Some((version, e.clone()));
                    e
                }
            };
            bytes += encoded.bytes;
            params.push(encoded.values);
        }
        if server.remembers_sent {
            server.sent[client] = Some((version, params.clone()));
        }
        server.records.borrow_mut().clients[client].selected += 1;
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
        self.out
            .now(Event::Client(client, ClientEvent::Selected { round }));
        self.out
            .now(Event::Link(link, LinkEvent::Send(Message::Model(msg))));
    }

    /// Calls the strategy's `on_timer(token)` at `at`.
    pub(crate) fn set_timer(&mut self, at: SimTime, token: u64) {
        self.out.at(at, Event::Server(ServerEvent::Timer(token)));
    }

    /// Replaces the global model with `params`, built from the updates of `contributors`.
    pub(crate) fn apply(&mut self, params: Vec<f32>, contributors: &[ClientId]) {
        self.apply_models(vec![(0, params)], contributors);
    }

    /// Replaces several models at once (one new version), built from the updates of
    /// `contributors`. A model with a NaN or infinite value is never applied: the run
    /// stops there as diverged, the last finite models kept.
    pub(crate) fn apply_models(
        &mut self,
        models: Vec<(usize, Vec<f32>)>,
        contributors: &[ClientId],
    ) {
        if let Some((m, _)) = models
            .iter()
            .find(|(_, params)| !crate::finite::all_finite(params))
        {
            let detail = format!(
                "aggregating the updates of clients {contributors:?} into model {m} at version \
                 {} gave NaN or infinite values (lower the learning rate); the last finite \
                 model is kept",
                self.server.version + 1
            );
            self.server.records.borrow_mut().stop_detail = Some(detail);
            self.server.stopping = true;
            self.out.now(Event::Stop(StopReason::Diverged));
            return;
        }
        for (m, params) in models {
            self.server.models[m] = Arc::new(params);
        }
        self.server.version += 1;
        metrics::gauge!(crate::metrics::MODEL_VERSION).set(self.server.version as f64);
        metrics::counter!(crate::metrics::UPDATES_APPLIED).increment(contributors.len() as u64);
        let mut records = self.server.records.borrow_mut();
        records.model_version = self.server.version;
        for &c in contributors {
            records.on_applied(c);
        }
    }

    /// Routes each `(client, slot)` to a model from now on: the result of one clustering,
    /// whose purity against the true tasks is recorded.
    pub(crate) fn assign(&mut self, assignments: &[(ClientId, usize, usize)]) {
        let server = &mut *self.server;
        let placed = server.routes.assign(assignments, server.tasks);
        metrics::gauge!(crate::metrics::CLUSTER_PURITY).set(placed.purity);
        server
            .records
            .borrow_mut()
            .clusterings
            .push(ClusteringRecord {
                sim_seconds: self.out.time().as_secs_f64(),
                version: server.version,
                purity: placed.purity,
                sizes: placed.sizes,
            });
    }

    /// Counts an update that will not be applied.
    pub(crate) fn discard(&mut self, client: ClientId, reason: DiscardReason) {
        self.server.discard(client, reason);
    }

    /// Ends round `round`: evaluates when due and applies the stop rule.
    /// Returns whether the strategy should start another round (never once the run is
    /// winding down).
    pub(crate) fn end_round(&mut self, round: u32) -> bool {
        let server = &mut *self.server;
        if server.stopping {
            return false;
        }
        server
            .records
            .borrow_mut()
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
