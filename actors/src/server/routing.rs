//! Which model each client's slot receives: one global model, or (FL-TAC) the model its
//! adapter's cluster was matched to; and how well clusterings recover the true tasks.

use crate::learner::{ClientId, TaskId};

/// The server's routing table: for every client's slot, the index of the model it is
/// served (`None`: no clustering has placed it yet, so it gets the initial model), beside
/// the true task behind each slot (for reports only; strategies never see it).
pub(crate) struct Routes {
    routes: Vec<Vec<Option<usize>>>,
    slot_tasks: Vec<Vec<Option<TaskId>>>,
    models: usize,
}

/// One clustering's outcome, scored against the true tasks.
pub(crate) struct Placement {
    /// Share of the labelled slots whose true task is their model's majority task.
    pub(crate) purity: f64,
    /// Slots placed with each model.
    pub(crate) sizes: Vec<u64>,
}

impl Routes {
    /// Routes for clients with the given slots' true tasks, over `models` models: every
    /// slot served model 0 unless `clustered`, where slots start unplaced.
    pub(crate) fn new(
        slot_tasks: Vec<Vec<Option<TaskId>>>,
        models: usize,
        clustered: bool,
    ) -> Self {
        let route = (!clustered).then_some(0);
        Self {
            routes: slot_tasks.iter().map(|s| vec![route; s.len()]).collect(),
            slot_tasks,
            models,
        }
    }

    /// The models `client`'s slots are served, in slot order.
    pub(crate) fn of(&self, client: ClientId) -> &[Option<usize>] {
        &self.routes[client]
    }

    /// Every client's routes, by client.
    pub(crate) fn all(&self) -> &[Vec<Option<usize>>] {
        &self.routes
    }

    /// The model serving task `t`: the one most of the task's slots are routed to (ties to
    /// the lower index), the first when no slot belongs to the task alone.
    pub(crate) fn task_model(&self, t: TaskId) -> usize {
        let mut votes = vec![0usize; self.models];
        for (routes, tasks) in self.routes.iter().zip(&self.slot_tasks) {
            for (&m, &task) in routes.iter().zip(tasks) {
                if let (Some(m), true) = (m, task == Some(t)) {
                    votes[m] += 1;
                }
            }
        }
        let best = votes.iter().copied().max().unwrap_or(0);
        votes.iter().position(|&v| v == best && v > 0).unwrap_or(0)
    }

    /// Routes each `(client, slot)` to a model from now on: the result of one clustering,
    /// scored against the true tasks.
    pub(crate) fn assign(
        &mut self,
        assignments: &[(ClientId, usize, usize)],
        tasks: usize,
    ) -> Placement {
        let mut counts = vec![vec![0u64; tasks]; self.models];
        let mut labelled = 0u64;
        let mut sizes = vec![0u64; self.models];
        for &(client, slot, model) in assignments {
            self.routes[client][slot] = Some(model);
            sizes[model] += 1;
            if let Some(t) = self.slot_tasks[client][slot] {
                counts[model][t] += 1;
                labelled += 1;
            }
        }
        let majority: u64 = counts
            .iter()
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .sum();
        Placement {
            purity: majority as f64 / labelled.max(1) as f64,
            sizes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purity_counts_each_model_by_its_majority_task() {
        // Four clients, one slot each: tasks 0, 0, 1, 1.
        let mut routes = Routes::new(
            vec![vec![Some(0)], vec![Some(0)], vec![Some(1)], vec![Some(1)]],
            2,
            true,
        );
        assert_eq!(routes.of(0), &[None]);
        // Model 0 gets tasks 0, 0, 1; model 1 gets task 1: 3 of 4 in their majority.
        let placed = routes.assign(&[(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 1)], 2);
        assert_eq!(placed.purity, 0.75);
        assert_eq!(placed.sizes, vec![3, 1]);
        assert_eq!(routes.task_model(0), 0);
        // Task 1 has one slot on each model: the tie goes to the lower index.
        assert_eq!(routes.task_model(1), 0);
    }
}
