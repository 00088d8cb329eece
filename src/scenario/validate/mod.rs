//! Everything parsing cannot check: ranges, consistency between sections, files that must
//! exist. One file per section; every numeric bound goes through one [`Rule`].

mod algorithm;
mod cache;
mod data;
mod model;
mod population;
mod resources;
mod run;

use crate::scenario::rule::{Number, Rule};
pub use cache::CacheSize;
pub use resources::{Footprint, human_bytes};

use super::{Loaded, ScenarioError};

impl Loaded {
    /// Checks the whole scenario, section by section; the first problem is the error.
    /// Sizes are checked against this machine's memory before anything is allocated per
    /// client.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        self.validate_data_source()?;
        self.validate_pool()?;
        self.validate_model()?;
        self.validate_training()?;
        self.validate_population()?;
        self.validate_resources()?;
        self.validate_data()?;
        self.validate_algorithm()?;
        self.validate_stop_and_eval()?;
        self.validate_wire()?;
        // Also checks links, traces and server capacities as it converts them.
        self.sim_config()?;
        self.validate_monitoring()?;
        // Last, so that a scenario waiting for its checkpoint is otherwise known sound.
        self.validate_backbone_file()
    }

    /// `field` must follow `rule`.
    pub(crate) fn require(
        &self,
        field: &str,
        value: impl Number,
        rule: Rule,
    ) -> Result<(), ScenarioError> {
        let value = value.as_f64();
        if rule.holds(value) {
            Ok(())
        } else {
            Err(self.invalid(field, rule.message(value)))
        }
    }

    /// An error for `field`.
    pub(crate) fn invalid(
        &self,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// An error for `field` that a lower layer gave.
    pub(crate) fn refused(
        &self,
        field: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> ScenarioError {
        ScenarioError::Refused {
            file: self.file.clone(),
            field: field.into(),
            source: Box::new(source),
        }
    }
}
