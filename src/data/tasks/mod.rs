//! Tasks over a data set, and each client's slots.
//!
//! A task is a class subset under a domain shift, held by chosen clients. The training
//! images are dealt out to the tasks without overlap, each task's share is partitioned
//! among its clients, and every task gets the central test images of its classes under its
//! domain. A client trains one adapter per slot: one slot per task it holds when the
//! algorithm keeps task adapters apart (FL-TAC), else one slot over all its data.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{
    DataSplit, Dataset, Domain, Groups, PartitionError, PartitionSpec, partition, shift_domain,
};

/// One task of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// The task's name, for reports.
    pub name: String,
    /// The labels the task uses; all when empty.
    #[serde(default)]
    pub classes: Vec<u8>,
    /// The source domain (a name in `Domains`, a writer or user) the task's images come
    /// from; all of them when absent.
    #[serde(default)]
    pub source: Option<String>,
    /// Transforms applied, in order, to every image of the task.
    #[serde(default)]
    pub domain: Vec<Domain>,
    /// The clients holding the task (indices in population order).
    pub clients: Vec<usize>,
}

/// One adapter a client trains: the task behind it (`None` when it mixes tasks) and its
/// local train and test indices.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    /// The task behind the slot, `None` when it mixes tasks.
    pub task: Option<usize>,
    /// Local training indices (into the training images).
    pub train: Vec<u32>,
    /// Local test indices (into the training images too: a held-out part of the shard).
    pub test: Vec<u32>,
}

/// A run's data laid out by task.
pub struct TaskData {
    /// The tasks' names, in order.
    pub names: Vec<String>,
    /// Every task's training images (domain-shifted); slots index into it.
    pub train: Dataset,
    /// Every task's central test images (domain-shifted).
    pub test: Dataset,
    /// Each task's central test images: indices into `test`.
    pub task_test: Vec<Vec<u32>>,
    /// Each client's slots.
    pub slots: Vec<Vec<Slot>>,
}

/// How to lay the data out.
pub struct Layout<'a> {
    /// The scenario's tasks; none means one task over all the data, held by every client.
    pub tasks: &'a [TaskSpec],
    /// Number of clients.
    pub clients: usize,
    /// How a task's images are spread over its clients.
    pub partition: &'a PartitionSpec,
    /// Fewest samples a client may hold.
    pub min_samples: usize,
    /// Share of each shard held out as the local test split.
    pub test_fraction: f64,
    /// Seeds the dealing and partitions.
    pub seed: u64,
    /// One slot per task a client holds (else one slot for all its data).
    pub separate: bool,
}

/// Why the data cannot be laid out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LayoutError {
    /// A task names a class the data does not have.
    #[error("class {class} is not in the data (classes 0..{classes})")]
    UnknownClass {
        /// The task's index.
        task: usize,
        /// The class it names.
        class: u8,
        /// Classes the data has.
        classes: usize,
    },
    /// A task names a source domain the data does not have.
    #[error("source \"{name}\" is not a domain of the data ({known})")]
    UnknownSource {
        /// The task's index.
        task: usize,
        /// The name it gives.
        name: String,
        /// The domains there are, listed.
        known: String,
    },
    /// A task's images cannot be partitioned among its clients.
    #[error("task \"{name}\"")]
    Task {
        /// The task's index.
        task: usize,
        /// The task's name.
        name: String,
        /// Why the partition failed.
        source: PartitionError,
    },
    /// The images cannot be partitioned among the clients.
    #[error(transparent)]
    Partition(#[from] PartitionError),
}

impl LayoutError {
    /// The scenario field at fault.
    pub fn field(&self) -> String {
        match self {
            LayoutError::UnknownClass { task, .. } => format!("data.tasks[{task}].classes"),
            LayoutError::UnknownSource { task, .. } => format!("data.tasks[{task}].source"),
            LayoutError::Task { task, .. } => format!("data.tasks[{task}]"),
            LayoutError::Partition(_) => "data.partition".into(),
        }
    }
}

/// The true task behind each client's slots, as [`Layout::apply`] lays them out: one slot
/// per task a client holds when `separate`, else one slot (`None` when it mixes tasks).
pub(crate) fn slot_tasks(
    tasks: &[TaskSpec],
    clients: usize,
    separate: bool,
) -> Vec<Vec<Option<usize>>> {
    if tasks.is_empty() {
        return vec![vec![Some(0)]; clients];
    }
    (0..clients)
        .map(|c| {
            let held: Vec<Option<usize>> = (0..tasks.len())
                .filter(|&t| tasks[t].clients.contains(&c))
                .map(Some)
                .collect();
            if separate || held.len() == 1 {
                held
            } else {
                vec![None]
            }
        })
        .collect()
}

/// Seeds the dealing of images to tasks.
const DEAL_SEED: u64 = 0x7a5c_dea1_0000_0001;

impl Layout<'_> {
    /// Lays `data` out by task.
    pub fn apply(&self, data: DataSplit) -> Result<TaskData, LayoutError> {
        if self.tasks.is_empty() {
            return self.single(data);
        }
        for (t, task) in self.tasks.iter().enumerate() {
            if let Some(&c) = task
                .classes
                .iter()
                .find(|&&c| c as usize >= data.train.classes)
            {
                return Err(LayoutError::UnknownClass {
                    task: t,
                    class: c,
                    classes: data.train.classes,
                });
            }
        }
        let mut sources = Vec::with_capacity(self.tasks.len());
        for (t, task) in self.tasks.iter().enumerate() {
            sources.push(match &task.source {
                None => None,
                Some(name) => Some(data.groups.iter().position(|g| g == name).ok_or_else(|| {
                    LayoutError::UnknownSource {
                        task: t,
                        name: name.clone(),
                        known: data.groups.join(", "),
                    }
                })? as u32),
            });
        }
        let uses = |t: usize, set: &Dataset, i: u32| {
            let task = &self.tasks[t];
            let label = set.labels[i as usize];
            (task.classes.is_empty() || task.classes.contains(&label))
                && sources[t].is_none_or(|g| set.groups[i as usize] == g)
        };
        // Deal the training images out: each goes to the next task (round robin per label)
        // among those that use its label.
        let mut order: Vec<u32> = (0..data.train.len() as u32).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(self.seed ^ DEAL_SEED));
        let mut pools = vec![Vec::new(); self.tasks.len()];
        let mut dealt = vec![0usize; data.train.classes];
        for i in order {
            let label = data.train.labels[i as usize];
            let eligible: Vec<usize> = (0..self.tasks.len())
                .filter(|&t| uses(t, &data.train, i))
                .collect();
            if !eligible.is_empty() {
                pools[eligible[dealt[label as usize] % eligible.len()]].push(i);
                dealt[label as usize] += 1;
            }
        }
        let mut train_parts = Vec::new();
        let mut test_parts = Vec::new();
        let mut task_test = Vec::new();
        let mut held: Vec<Vec<(usize, Slot)>> = vec![Vec::new(); self.clients];
        let (mut train_offset, mut test_offset) = (0u32, 0u32);
        for (t, task) in self.tasks.iter().enumerate() {
            let task_seed = self.seed ^ (t as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let train = shift_domain(&data.train.subset(&pools[t]), &task.domain, task_seed);
            let test_idx: Vec<u32> = (0..data.test.len() as u32)
                .filter(|&i| uses(t, &data.test, i))
                .collect();
            let test = shift_domain(&data.test.subset(&test_idx), &task.domain, !task_seed);
            let part = partition(
                &train.labels,
                Groups {
                    of: &train.groups,
                    names: &data.groups,
                },
                task.clients.len(),
                self.partition,
                self.min_samples,
                self.test_fraction,
                task_seed,
            )
            .map_err(|source| LayoutError::Task {
                task: t,
                name: task.name.clone(),
                source,
            })?;
            let shift = |v: &[u32]| -> Vec<u32> { v.iter().map(|&i| i + train_offset).collect() };
            for (k, &client) in task.clients.iter().enumerate() {
                held[client].push((
                    t,
                    Slot {
                        task: Some(t),
                        train: shift(&part.train[k]),
                        test: shift(&part.test[k]),
                    },
                ));
            }
            task_test.push((test_offset..test_offset + test.len() as u32).collect());
            train_offset += train.len() as u32;
            test_offset += test.len() as u32;
            train_parts.push(train);
            test_parts.push(test);
        }
        let slots = held
            .into_iter()
            .map(|mut slots| {
                slots.sort_by_key(|(t, _)| *t);
                let slots: Vec<Slot> = slots.into_iter().map(|(_, s)| s).collect();
                if self.separate || slots.len() == 1 {
                    slots
                } else {
                    vec![Slot {
                        task: None,
                        train: slots.iter().flat_map(|s| s.train.iter().copied()).collect(),
                        test: slots.iter().flat_map(|s| s.test.iter().copied()).collect(),
                    }]
                }
            })
            .collect();
        Ok(TaskData {
            names: self.tasks.iter().map(|t| t.name.clone()).collect(),
            train: Dataset::concat(train_parts),
            test: Dataset::concat(test_parts),
            task_test,
            slots,
        })
    }

    /// No tasks: one task over all the data, one slot per client.
    fn single(&self, data: DataSplit) -> Result<TaskData, LayoutError> {
        let part = partition(
            &data.train.labels,
            Groups {
                of: &data.train.groups,
                names: &data.groups,
            },
            self.clients,
            self.partition,
            self.min_samples,
            self.test_fraction,
            self.seed,
        )?;
        let slots = part
            .train
            .into_iter()
            .zip(part.test)
            .map(|(train, test)| {
                vec![Slot {
                    task: Some(0),
                    train,
                    test,
                }]
            })
            .collect();
        Ok(TaskData {
            names: vec!["all".into()],
            task_test: vec![(0..data.test.len() as u32).collect()],
            train: data.train,
            test: data.test,
            slots,
        })
    }
}

#[cfg(test)]
mod tests;
