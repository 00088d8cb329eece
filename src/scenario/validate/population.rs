//! The population: device classes, their counts, speeds, links and availability.

use super::Rule;
use crate::scenario::{AvailabilitySection, Loaded, ScenarioError, to_dist};

impl Loaded {
    /// Checks every device class. Returns whether any client can fail (drop out, go
    /// offline or lose messages), which the algorithm must then cope with.
    pub(super) fn validate_population(&self) -> Result<bool, ScenarioError> {
        let s = &self.scenario;
        if s.population.is_empty() {
            return Err(self.invalid("population", "needs at least one device class"));
        }
        let total: usize = s.population.iter().map(|c| c.count).sum();
        if total != s.data.clients {
            return Err(self.invalid(
                "population",
                format!(
                    "device class counts add up to {total}, but data.clients is {}",
                    s.data.clients
                ),
            ));
        }
        let mut failures = false;
        for (i, c) in s.population.iter().enumerate() {
            let at = |f: &str| format!("population[{i}].{f}");
            to_dist(&c.speed)
                .ok_or_else(|| {
                    self.invalid(
                        at("speed"),
                        "a device's speed is drawn once: Steps and Trace apply to links",
                    )
                })?
                .validate()
                .map_err(|e| self.refused(at("speed"), e))?;
            // Latency and bandwidth are checked where `sim_config` converts them.
            for (name, link) in [("uplink", &c.uplink), ("downlink", &c.downlink)] {
                self.require(&at(&format!("{name}.loss")), link.loss, Rule::Fraction)?;
                if link.loss > 0.0 && link.timeout.value() <= 0.0 {
                    return Err(
                        self.invalid(at(&format!("{name}.timeout")), "must be > 0 when loss > 0")
                    );
                }
            }
            self.require(&at("dropout"), c.dropout, Rule::Probability)?;
            if let AvailabilitySection::Markov { mean_on, mean_off } = &c.availability
                && (mean_on.value() <= 0.0 || mean_off.value() <= 0.0)
            {
                return Err(self.invalid(at("availability"), "mean_on and mean_off must be > 0"));
            }
            failures |= c.dropout > 0.0
                || c.uplink.loss > 0.0
                || c.downlink.loss > 0.0
                || c.availability != AvailabilitySection::Always;
        }
        Ok(failures)
    }
}
