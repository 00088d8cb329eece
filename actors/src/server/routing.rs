//! Which model each client's slot receives: one global model, or (FL-TAC) the model its
//! adapter's cluster was matched to; and how well clusterings recover the true tasks.

use crate::learner::{ClientId, TaskId};

/// A slot no clustering has placed yet: it receives the initial model.
const UNPLACED: u8 = u8::MAX;
/// A slot whose adapter mixes tasks.
const MIXED: u32 = u32::MAX;

/// The server's routing table, flat: every client's slots one after another (a few bytes
/// per slot, for populations of millions), each with the model it is served and the true
/// task behind it (for reports only; strategies never see it).
pub(crate) struct Routes {
    /// Where each client's slots start, by client; one more entry closes the last.
    starts: Vec<u32>,
    /// Each slot's model, [`UNPLACED`] until a clustering places it.
    routes: Vec<u8>,
    /// Each slot's true task, [`MIXED`] when it mixes tasks.
    tasks: Vec<u32>,
    models: usize,
    /// Every client has one slot, served model 0 for good: nothing to look up.
    single: bool,
}

/// The routes of a client with one slot served model 0.
static SINGLE: [u8; 1] = [0];

/// One clustering's outcome, scored against the true tasks.
pub(crate) struct Placement {
    /// Share of the labelled slots whose true task is their model's majority task.
    pub(crate) purity: f64,
    /// Slots placed with each model.
    pub(crate) sizes: Vec<u64>,
}

impl Routes {
    /// Routes for clients with the given slots' true tasks, over `models` models (at most
    /// 255): every slot served model 0 unless `clustered`, where slots start unplaced.
    pub(crate) fn new<'a>(
        slot_tasks: impl ExactSizeIterator<Item = &'a [Option<TaskId>]>,
        models: usize,
        clustered: bool,
    ) -> Self {
        let route = if clustered { UNPLACED } else { 0 };
        let mut starts = Vec::with_capacity(slot_tasks.len() + 1);
        let mut tasks = Vec::with_capacity(slot_tasks.len());
        for slots in slot_tasks {
            starts.push(u32::try_from(tasks.len()).expect("fewer than 2^32 slots"));
            tasks.extend(
                slots
                    .iter()
                    .map(|t| t.map_or(MIXED, |t| u32::try_from(t).expect("fewer than 2^32 tasks"))),
            );
        }
        starts.push(u32::try_from(tasks.len()).expect("fewer than 2^32 slots"));
        Self {
            single: !clustered && tasks.len() == starts.len() - 1,
            routes: vec![route; tasks.len()],
            starts,
            tasks,
            models,
        }
    }

    /// The range of `client`'s slots in the flat tables.
    fn slots(&self, client: ClientId) -> std::ops::Range<usize> {
        self.starts[client] as usize..self.starts[client + 1] as usize
    }

    /// The models `client`'s slots are served, in slot order (`None`: the initial model).
    pub(crate) fn of(&self, client: ClientId) -> impl ExactSizeIterator<Item = Option<usize>> {
        let routes = if self.single {
            &SINGLE
        } else {
            &self.routes[self.slots(client)]
        };
        routes
            .iter()
            .map(|&r| (r != UNPLACED).then_some(r as usize))
    }

    /// Number of clients.
    pub(crate) fn clients(&self) -> usize {
        self.starts.len() - 1
    }

    /// The model serving task `t`: the one most of the task's slots are routed to (ties to
    /// the lower index), the first when no slot belongs to the task alone.
    pub(crate) fn task_model(&self, t: TaskId) -> usize {
        let mut votes = vec![0usize; self.models];
        for (&route, &task) in self.routes.iter().zip(&self.tasks) {
            if route != UNPLACED && task as usize == t && task != MIXED {
                votes[route as usize] += 1;
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
            let at = self.slots(client).start + slot;
            self.routes[at] = u8::try_from(model).expect("fewer than 255 models");
            sizes[model] += 1;
            if self.tasks[at] != MIXED {
                counts[model][self.tasks[at] as usize] += 1;
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
        let slots = [[Some(0)], [Some(0)], [Some(1)], [Some(1)]];
        let mut routes = Routes::new(slots.iter().map(|s| &s[..]), 2, true);
        assert_eq!(routes.of(0).collect::<Vec<_>>(), vec![None]);
        // Model 0 gets tasks 0, 0, 1; model 1 gets task 1: 3 of 4 in their majority.
        let placed = routes.assign(&[(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 1)], 2);
        assert_eq!(placed.purity, 0.75);
        assert_eq!(placed.sizes, vec![3, 1]);
        assert_eq!(routes.of(3).collect::<Vec<_>>(), vec![Some(1)]);
        assert_eq!(routes.task_model(0), 0);
        // Task 1 has one slot on each model: the tie goes to the lower index.
        assert_eq!(routes.task_model(1), 0);
        assert_eq!(routes.clients(), 4);
    }
}
