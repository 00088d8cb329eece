//! The data section: the source on disk, the partition, the tasks, the local split.

use super::Rule;
use crate::data::PartitionSpec;
use crate::scenario::{DataSource, Loaded, ScenarioError};

/// The files an IDX source directory holds (each may also be gzip-compressed).
const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

impl Loaded {
    /// The source directory and its files.
    pub(super) fn validate_data_source(&self) -> Result<(), ScenarioError> {
        let d = &self.scenario.data;
        let DataSource::Idx { dir } = &d.source;
        let dir_path = self.path(dir);
        if !dir_path.is_dir() {
            return Err(self.invalid(
                "data.source.dir",
                format!(
                    "directory \"{dir}\" not found (looked in {})",
                    dir_path.display()
                ),
            ));
        }
        if let Some(name) = IDX_FILES
            .iter()
            .find(|name| !crate::data::idx_file(&dir_path, name).exists())
        {
            return Err(self.invalid("data.source.dir", format!("\"{dir}\" has no {name}[.gz]")));
        }
        self.require("data.clients", d.clients, Rule::AtLeastOne)
    }

    /// The partition, the tasks and the local split (after the resource check: the tasks'
    /// check allocates per client).
    pub(super) fn validate_data(&self) -> Result<(), ScenarioError> {
        let d = &self.scenario.data;
        match d.partition {
            PartitionSpec::Iid => {}
            PartitionSpec::Dirichlet { alpha } => {
                self.require("data.partition.alpha", alpha, Rule::Positive)?;
            }
            PartitionSpec::Shots { shots, classes } => {
                self.require("data.partition.shots", shots, Rule::AtLeastOne)?;
                if let Some(classes) = classes {
                    self.require("data.partition.classes", classes, Rule::AtLeastOne)?;
                }
            }
            PartitionSpec::Sampled { samples, alpha } => {
                self.require("data.partition.samples", samples, Rule::AtLeastOne)?;
                if let Some(alpha) = alpha {
                    self.require("data.partition.alpha", alpha, Rule::Positive)?;
                }
            }
        }
        self.validate_tasks()?;
        self.require(
            "data.local_test_fraction",
            d.local_test_fraction,
            Rule::Fraction,
        )
    }

    fn validate_tasks(&self) -> Result<(), ScenarioError> {
        let d = &self.scenario.data;
        let mut held = vec![false; d.clients];
        for (t, task) in d.tasks.iter().enumerate() {
            let at = |f: &str| format!("data.tasks[{t}].{f}");
            if task.name.is_empty() {
                return Err(self.invalid(at("name"), "must not be empty"));
            }
            if d.tasks[..t].iter().any(|o| o.name == task.name) {
                return Err(self.invalid(
                    at("name"),
                    format!("\"{}\" names an earlier task too", task.name),
                ));
            }
            if task.clients.is_empty() {
                return Err(self.invalid(at("clients"), "list at least one client"));
            }
            for (k, &c) in task.clients.iter().enumerate() {
                if c >= d.clients {
                    return Err(self.invalid(
                        at("clients"),
                        format!("client {c} does not exist (data.clients is {})", d.clients),
                    ));
                }
                if task.clients[..k].contains(&c) {
                    return Err(self.invalid(at("clients"), format!("client {c} is listed twice")));
                }
                held[c] = true;
            }
            for (i, domain) in task.domain.iter().enumerate() {
                domain
                    .check()
                    .map_err(|e| self.refused(at(&format!("domain[{i}]")), e))?;
            }
        }
        if !d.tasks.is_empty()
            && let Some(c) = held.iter().position(|h| !h)
        {
            return Err(self.invalid(
                "data.tasks",
                format!("client {c} holds no task; every client needs at least one"),
            ));
        }
        Ok(())
    }
}
