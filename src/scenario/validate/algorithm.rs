//! The algorithm: the server strategy's settings, and what PersA-FL and FL-TAC add.

use flotilla_actors::config::{MAX_CLUSTERS, Staleness};

use super::Rule;
use crate::model::PersonalStep;
use crate::scenario::{AlgorithmSection, Loaded, ScenarioError};

impl Loaded {
    /// Checks the algorithm.
    pub(super) fn validate_algorithm(&self) -> Result<(), ScenarioError> {
        self.validate_section(&self.scenario.algorithm)
    }

    fn validate_section(&self, algorithm: &AlgorithmSection) -> Result<(), ScenarioError> {
        let clients = self.scenario.data.clients;
        match algorithm {
            AlgorithmSection::PersAfl { server, personal } => {
                if !matches!(
                    **server,
                    AlgorithmSection::FedAsync { .. } | AlgorithmSection::FedBuff { .. }
                ) {
                    return Err(
                        self.invalid("algorithm.server", "must be FedAsync(..) or FedBuff(..)")
                    );
                }
                self.validate_personal(personal)?;
                self.validate_section(server)
            }
            AlgorithmSection::FlTac {
                k,
                iterations,
                restarts,
                server,
                ..
            } => {
                if !matches!(
                    **server,
                    AlgorithmSection::FedAvg { .. } | AlgorithmSection::FedBuff { .. }
                ) {
                    return Err(
                        self.invalid("algorithm.server", "must be FedAvg(..) or FedBuff(..)")
                    );
                }
                self.require("algorithm.k", *k, Rule::UpTo(MAX_CLUSTERS))?;
                self.require("algorithm.iterations", *iterations, Rule::AtLeastOne)?;
                self.require("algorithm.restarts", *restarts, Rule::AtLeastOne)?;
                self.validate_section(server)
            }
            AlgorithmSection::FedAvg {
                clients_per_round,
                over_selection,
                deadline,
            } => {
                self.require(
                    "algorithm.clients_per_round",
                    *clients_per_round,
                    Rule::UpTo(clients),
                )?;
                self.require(
                    "algorithm.over_selection",
                    *over_selection,
                    Rule::NonNegative,
                )?;
                if let Some(d) = deadline {
                    self.require("algorithm.deadline", d.value(), Rule::Positive)?;
                }
                Ok(())
            }
            AlgorithmSection::FedAsync {
                concurrency,
                alpha,
                staleness,
            } => {
                self.require("algorithm.concurrency", *concurrency, Rule::UpTo(clients))?;
                self.require("algorithm.alpha", *alpha, Rule::Share)?;
                self.validate_staleness(staleness)
            }
            AlgorithmSection::FedBuff {
                concurrency,
                buffer,
                server_lr,
                staleness,
                ..
            } => {
                self.require("algorithm.concurrency", *concurrency, Rule::UpTo(clients))?;
                self.require("algorithm.buffer", *buffer, Rule::AtLeastOne)?;
                self.require("algorithm.server_lr", *server_lr, Rule::Positive)?;
                self.validate_staleness(staleness)
            }
        }
    }

    /// PersA-FL's client procedure, against the training learning rate.
    fn validate_personal(&self, personal: &PersonalStep) -> Result<(), ScenarioError> {
        match *personal {
            PersonalStep::Maml { inner_lr } => {
                self.require("algorithm.personal.inner_lr", inner_lr, Rule::Positive)
            }
            PersonalStep::Moreau {
                lambda,
                inner_steps,
            } => {
                let lr = self.scenario.training.optimizer.lr();
                if !(Rule::Positive.holds(lambda) && lr * lambda <= 1.0) {
                    return Err(self.invalid(
                        "algorithm.personal.lambda",
                        format!(
                            "must be > 0 with training lr x lambda <= 1 (the pull toward the \
                             personal model would overshoot), got {lambda} with lr {lr}"
                        ),
                    ));
                }
                self.require(
                    "algorithm.personal.inner_steps",
                    inner_steps,
                    Rule::AtLeastOne,
                )
            }
        }
    }

    fn validate_staleness(&self, staleness: &Staleness) -> Result<(), ScenarioError> {
        let bad = match *staleness {
            Staleness::Polynomial { exponent } if !Rule::NonNegative.holds(exponent) => {
                Some(format!("exponent must be >= 0, got {exponent}"))
            }
            Staleness::Hinge { a, b }
                if !(Rule::NonNegative.holds(a) && Rule::NonNegative.holds(b)) =>
            {
                Some(format!("a and b must be >= 0, got a = {a}, b = {b}"))
            }
            _ => None,
        };
        bad.map_or(Ok(()), |m| Err(self.invalid("algorithm.staleness", m)))
    }
}
