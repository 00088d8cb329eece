//! How the run goes: training, the stop rule, evaluation, the wire, the pool, monitoring.

use flotilla_actors::Encoding;

use super::Rule;
use crate::pool::{Backend, DeviceKind};
use crate::scenario::{Loaded, ScenarioError};

/// The most passes a local job may make over a client's data: FL clients run a few (the
/// FedAvg paper 1 to 20), and a job of more would hold the run for days.
const MAX_EPOCHS: usize = 1_000;

/// The most worker threads a pool may start: far more than any machine has cores,
/// far fewer than a system's thread limit.
const MAX_WORKERS: usize = 1024;

impl Loaded {
    pub(super) fn validate_training(&self) -> Result<(), ScenarioError> {
        let t = &self.scenario.training;
        self.require("training.epochs", t.epochs, Rule::UpTo(MAX_EPOCHS))?;
        self.require("training.batch_size", t.batch_size, Rule::AtLeastOne)?;
        self.require("training.optimizer.lr", t.optimizer.lr(), Rule::Positive)
    }

    pub(super) fn validate_stop_and_eval(&self) -> Result<(), ScenarioError> {
        let s = &self.scenario;
        let stop = &s.stop;
        if stop.rounds.is_none() && stop.virtual_time.is_none() {
            return Err(self.invalid(
                "stop",
                "set rounds or virtual_time (target_accuracy alone may never be reached)",
            ));
        }
        if let Some(t) = &stop.virtual_time {
            self.require("stop.virtual_time", t.value(), Rule::Positive)?;
        }
        if let Some(a) = stop.target_accuracy {
            self.require("stop.target_accuracy", a, Rule::Share)?;
        }
        if let Some(every) = s.eval.every_rounds {
            self.require("eval.every_rounds", every, Rule::AtLeastOne)?;
        }
        if s.eval.personalize_on_device && s.eval.personalize.is_none() {
            return Err(self.invalid(
                "eval.personalize_on_device",
                "there is no personalization to run: give eval.personalize",
            ));
        }
        if let Some(every) = &s.eval.every {
            self.require("eval.every", every.value(), Rule::Positive)?;
        }
        Ok(())
    }

    pub(super) fn validate_wire(&self) -> Result<(), ScenarioError> {
        let w = &self.scenario.wire;
        for (field, e) in [
            ("wire.encoding", Some(w.encoding)),
            ("wire.up", w.up),
            ("wire.down", w.down),
        ] {
            if let Some(Encoding::TopK(f)) = e
                && !Rule::Share.holds(f)
            {
                return Err(
                    self.invalid(field, format!("TopK's fraction {}", Rule::Share.message(f)))
                );
            }
        }
        if w.down().needs_reference() {
            let field = if w.down.is_some() {
                "wire.down"
            } else {
                "wire.encoding"
            };
            return Err(self.invalid(
                field,
                "TopK sparsifies updates against the model the client received; models going \
                 down need a dense encoding (e.g. `encoding: F32, up: TopK(0.1)`)",
            ));
        }
        Ok(())
    }

    /// The pool's backend must be built in and fit its device; counts must be positive.
    pub(super) fn validate_pool(&self) -> Result<(), ScenarioError> {
        let pool = &self.scenario.pool;
        if pool.backend == Backend::Tch && !cfg!(feature = "tch") {
            return Err(self.invalid(
                "pool.backend",
                "this flotilla was built without LibTorch; build it with `--features tch` \
                 (see scripts/setup-libtorch.sh)",
            ));
        }
        if pool.device == DeviceKind::Cuda && pool.backend != Backend::Tch {
            return Err(self.invalid(
                "pool.device",
                "CUDA devices need the LibTorch backend (backend: Tch)",
            ));
        }
        if pool.workers > MAX_WORKERS {
            return Err(self.invalid(
                "pool.workers",
                format!(
                    "must be at most {MAX_WORKERS} threads (0: one per core), got {}",
                    pool.workers
                ),
            ));
        }
        self.require("pool.per_gpu", pool.per_gpu, Rule::UpTo(MAX_WORKERS))?;
        self.require("pool.batch_clients", pool.batch_clients, Rule::AtLeastOne)
    }

    pub(super) fn validate_monitoring(&self) -> Result<(), ScenarioError> {
        if let Some(addr) = &self.scenario.monitoring.prometheus {
            crate::monitor::parse_addr(addr)
                .map_err(|e| self.refused("monitoring.prometheus", e))?;
        }
        Ok(())
    }
}
