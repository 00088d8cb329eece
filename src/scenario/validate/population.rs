//! The population: device classes, their counts, speeds, links and availability.

use super::Rule;
use crate::scenario::{AvailabilitySection, DistSpec, Loaded, ScenarioError, to_dist};

impl Loaded {
    /// Checks every device class.
    pub(super) fn validate_population(&self) -> Result<(), ScenarioError> {
        let s = &self.scenario;
        if s.population.is_empty() {
            return Err(self.invalid("population", "needs at least one device class"));
        }
        // Wide enough that no sum of counts overflows.
        let total: u128 = s.population.iter().map(|c| c.count as u128).sum();
        if total != s.data.clients as u128 {
            return Err(self.invalid(
                "population",
                format!(
                    "device class counts add up to {total}, but data.clients is {}",
                    s.data.clients
                ),
            ));
        }
        for (i, c) in s.population.iter().enumerate() {
            let at = |f: &str| format!("population[{i}].{f}");
            match (&c.speed, to_dist(&c.speed)) {
                // Read, and checked, with the class's traces.
                (DistSpec::Traces, _) => {}
                (_, Some(dist)) => dist.validate().map_err(|e| self.refused(at("speed"), e))?,
                (_, None) => {
                    return Err(self.invalid(
                        at("speed"),
                        "a device's speed is drawn once: Steps and Trace apply to links",
                    ));
                }
            }
            if c.speed.unit().is_none() {
                return Err(self.invalid(
                    at("speed"),
                    "give every value of a speed in samples/s or every value in FLOP/s",
                ));
            }
            if let Some(memory) = &c.memory {
                self.require(&at("memory"), memory.value(), Rule::Positive)?;
            }
            // Latency and bandwidth are checked where `sim_config` converts them.
            for (name, link) in [("uplink", &c.uplink), ("downlink", &c.downlink)] {
                self.require(&at(&format!("{name}.loss")), link.loss, Rule::Fraction)?;
                if link.loss > 0.0 && !Rule::Positive.holds(link.timeout.value()) {
                    return Err(
                        self.invalid(at(&format!("{name}.timeout")), "must be > 0 when loss > 0")
                    );
                }
            }
            // A device that always drops out could never deliver an update.
            self.require(&at("dropout"), c.dropout, Rule::Fraction)?;
            if let AvailabilitySection::Markov { mean_on, mean_off } = &c.availability
                && !(Rule::Positive.holds(mean_on.value())
                    && Rule::Positive.holds(mean_off.value()))
            {
                return Err(self.invalid(at("availability"), "mean_on and mean_off must be > 0"));
            }
        }
        Ok(())
    }
}
