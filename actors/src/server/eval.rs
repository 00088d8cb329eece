//! Evaluation bookkeeping: when the served models are evaluated, and the timeline rows
//! their results become.

use super::ServerActor;
use crate::event::{Event, Out, ServerEvent};
use crate::learner::{EvalJob, EvalOutcome};
use crate::record::{Progress, TimelineRow, nearest_rank};
use crate::time::SimTime;

impl ServerActor {
    pub(super) fn record_eval(
        &mut self,
        now: SimTime,
        round: u32,
        version: u64,
        outcome: EvalOutcome,
        progress: Progress,
    ) {
        let mut records = self.records.borrow_mut();
        for ((stats, &acc), &personal) in records
            .clients
            .iter_mut()
            .zip(&outcome.client_accuracy)
            .zip(&outcome.personalized_accuracy)
        {
            stats.local_accuracy = acc;
            stats.personalized_accuracy = personal;
        }
        let (local, local_p10) = mean_and_p10(&outcome.client_accuracy).unzip();
        let (mean, p10) = mean_and_p10(&outcome.personalized_accuracy).unzip();
        metrics::gauge!(crate::metrics::GLOBAL_ACCURACY).set(outcome.global_accuracy);
        if let Some(mean) = mean {
            metrics::gauge!(crate::metrics::PERSONALIZED_ACCURACY).set(mean);
        }
        let row = TimelineRow {
            sim_seconds: now.as_secs_f64(),
            round,
            version,
            global_accuracy: outcome.global_accuracy,
            global_loss: outcome.global_loss,
            local_accuracy: local,
            local_accuracy_p10: local_p10,
            personalized_accuracy: mean,
            personalized_accuracy_p10: p10,
            task_accuracy: outcome.task_accuracy,
            cluster_purity: progress.cluster_purity,
            updates_applied: progress.updates_applied,
            updates_discarded: progress.updates_discarded,
            bytes_up: progress.bytes_up,
            bytes_down: progress.bytes_down,
        };
        records.timeline.push(row);
    }

    pub(super) fn evaluate(&mut self, out: &mut Out, round: u32) {
        if self.evaluated_version == Some(self.version) {
            return;
        }
        self.evaluated_version = Some(self.version);
        let blocking = self.stopping || self.stop.target_accuracy.is_some();
        if blocking {
            self.evals_in_flight += 1;
        }
        let progress = Box::new(self.records.borrow().progress());
        let personal = {
            let map = self.personal.borrow();
            (0..self.clients).map(|c| map.get(&c).cloned()).collect()
        };
        let slots = (0..self.routes.clients())
            .map(|c| self.routes.of(c).map(|m| self.served(m).clone()).collect())
            .collect();
        let tasks = (0..self.tasks)
            .map(|t| self.models[self.routes.task_model(t)].clone())
            .collect();
        let outcome = self.learner.evaluate(EvalJob {
            tasks,
            slots,
            personal,
        });
        out.now(Event::Server(ServerEvent::EvalDone {
            round,
            version: self.version,
            outcome: Box::new(outcome),
            blocking,
            progress,
        }));
    }
}

/// The mean (summed in client order) and the 10th percentile of the defined values.
fn mean_and_p10(values: &[Option<f64>]) -> Option<(f64, f64)> {
    let mut sorted: Vec<f64> = values.iter().flatten().copied().collect();
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    sorted.sort_by(f64::total_cmp);
    Some((mean, nearest_rank(&sorted, 0.10)?))
}
