//! The data section: the source on disk, the partition, the tasks, the local split.

use super::Rule;
use crate::data::PartitionSpec;
use crate::scenario::{DataSource, Loaded, ScenarioError};

/// The largest image side a source or `data.image` may give (a 4096x4096 RGB image is
/// 50 MB).
const MAX_SIDE: usize = 4096;

/// The files an IDX source directory holds (each may also be gzip-compressed).
const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

impl Loaded {
    /// The source's files and folders, its numbers, and the image shape.
    pub(super) fn validate_data_source(&self) -> Result<(), ScenarioError> {
        let d = &self.scenario.data;
        self.validate_source(&d.source, "data.source")?;
        if let Some(shape) = d.image {
            self.require("data.image.side", shape.side, Rule::UpTo(MAX_SIDE))?;
            if !matches!(shape.channels, 1 | 3) {
                return Err(self.invalid(
                    "data.image.channels",
                    format!("must be 1 (grey) or 3 (RGB), got {}", shape.channels),
                ));
            }
        }
        self.require("data.clients", d.clients, Rule::AtLeastOne)
    }

    /// One source, at `field`.
    fn validate_source(&self, source: &DataSource, field: &str) -> Result<(), ScenarioError> {
        match source {
            DataSource::Csv {
                width,
                height,
                max,
                test_fraction,
                ..
            } => {
                self.require(&format!("{field}.width"), *width, Rule::UpTo(MAX_SIDE))?;
                self.require(&format!("{field}.height"), *height, Rule::UpTo(MAX_SIDE))?;
                self.require(&format!("{field}.max"), *max as usize, Rule::AtLeastOne)?;
                self.require(
                    &format!("{field}.test_fraction"),
                    *test_fraction,
                    Rule::Part,
                )?;
            }
            DataSource::ImageFolder { test_fraction, .. }
            | DataSource::Parquet { test_fraction, .. } => {
                self.require(
                    &format!("{field}.test_fraction"),
                    *test_fraction,
                    Rule::Part,
                )?;
            }
            DataSource::Domains(parts) => {
                if parts.is_empty() {
                    return Err(self.invalid(field, "list at least one domain"));
                }
                for (i, part) in parts.iter().enumerate() {
                    let at = format!("{field}[{i}]");
                    if part.name.is_empty() {
                        return Err(self.invalid(format!("{at}.name"), "must not be empty"));
                    }
                    if parts[..i].iter().any(|p| p.name == part.name) {
                        return Err(self.invalid(
                            format!("{at}.name"),
                            format!("\"{}\" names an earlier domain too", part.name),
                        ));
                    }
                    self.validate_source(&part.source, &format!("{at}.source"))?;
                }
                return Ok(());
            }
            _ => {}
        }
        for (name, relative) in source.paths() {
            let path = self.path(relative);
            let at = format!("{field}.{name}");
            let (found, kind) = if name == "dir" {
                (path.is_dir(), "directory")
            } else {
                (path.is_file(), "file")
            };
            if !found {
                return Err(self.invalid(
                    at,
                    format!(
                        "{kind} \"{relative}\" not found (looked in {})",
                        path.display()
                    ),
                ));
            }
        }
        if let DataSource::Idx { dir } = source
            && let Some(name) = IDX_FILES
                .iter()
                .find(|name| !crate::data::idx_file(&self.path(dir), name).exists())
        {
            return Err(self.invalid(
                format!("{field}.dir"),
                format!("\"{dir}\" has no {name}[.gz]"),
            ));
        }
        Ok(())
    }

    /// The partition, the tasks and the local split (after the resource check: the tasks'
    /// check allocates per client).
    pub(super) fn validate_data(&self) -> Result<(), ScenarioError> {
        let d = &self.scenario.data;
        match d.partition {
            PartitionSpec::Iid | PartitionSpec::Natural => {}
            PartitionSpec::Shards { classes_per_client } => {
                self.require(
                    "data.partition.classes_per_client",
                    classes_per_client,
                    Rule::AtLeastOne,
                )?;
            }
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
