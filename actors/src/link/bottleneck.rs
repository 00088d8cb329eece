//! The server's ingress or egress as an actor: wakes when the next transfer finishes.

use crate::event::{BottleneckEvent, Event, LinkEvent, Out};
use crate::net::{Direction, Rate, SharedCapacity};

/// The server's ingress or egress: a [`SharedCapacity`] as an actor.
pub(crate) struct BottleneckActor {
    dir: Direction,
    capacity: SharedCapacity,
    generation: u64,
}

impl BottleneckActor {
    /// The capacity going `dir`: fixed, following steps, or unlimited.
    pub(crate) fn new(dir: Direction, capacity: Option<Rate>) -> Self {
        Self {
            dir,
            capacity: SharedCapacity::new(capacity),
            generation: 0,
        }
    }

    fn reschedule(&mut self, out: &mut Out) {
        self.generation += 1;
        if let Some(at) = self.capacity.next_completion() {
            out.at(
                at,
                Event::Bottleneck(
                    self.dir,
                    BottleneckEvent::Wake {
                        generation: self.generation,
                    },
                ),
            );
        }
    }

    /// Handles `event`, then schedules a wake-up for the next completion.
    pub(crate) fn handle(&mut self, out: &mut Out, event: BottleneckEvent) {
        let now = out.time();
        match event {
            BottleneckEvent::Start(transfer) => self.capacity.start(now, transfer),
            BottleneckEvent::Cancel(link) => {
                self.capacity.cancel(now, link);
            }
            BottleneckEvent::Wake { generation } => {
                if generation != self.generation {
                    return;
                }
                for t in self.capacity.finish_due(now) {
                    out.after(
                        t.latency,
                        Event::Link(t.link, LinkEvent::Arrived { attempt: t.attempt }),
                    );
                }
            }
        }
        self.reschedule(out);
    }
}
