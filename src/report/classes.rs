//! Participation by device class: who could train, who was picked, who delivered.

use flotilla_actors::record::ClientStats;
use serde::{Deserialize, Serialize};

/// How one device class took part.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassSummary {
    /// The class's name.
    pub class: String,
    /// Its clients.
    pub clients: u64,
    /// Those whose device has too little memory for a training job: never selected.
    pub ineligible: u64,
    /// Times its clients were selected.
    pub selected: u64,
    /// Training jobs its clients started.
    pub trained: u64,
    /// Its clients' updates aggregated.
    pub updates_applied: u64,
    /// Simulated seconds its clients spent training.
    pub compute_seconds: f64,
}

impl ClassSummary {
    /// One row per class, in order of first appearance among the clients.
    pub(super) fn of(clients: &[ClientStats]) -> Vec<Self> {
        let mut classes: Vec<ClassSummary> = Vec::new();
        for c in clients {
            let at = match classes.iter().position(|k| k.class == c.class) {
                Some(at) => at,
                None => {
                    classes.push(ClassSummary {
                        class: c.class.clone(),
                        clients: 0,
                        ineligible: 0,
                        selected: 0,
                        trained: 0,
                        updates_applied: 0,
                        compute_seconds: 0.0,
                    });
                    classes.len() - 1
                }
            };
            let k = &mut classes[at];
            k.clients += 1;
            k.ineligible += u64::from(!c.eligible);
            k.selected += c.selected;
            k.trained += c.trained;
            k.updates_applied += c.updates_applied;
            k.compute_seconds += c.compute_seconds;
        }
        classes
    }
}
