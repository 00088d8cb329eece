//! The crowd: every client and its two links, hosted in tables by the clock, which
//! calls their handlers directly.
//!
//! A client and its links are actors all the same: each owns its state and acts only on
//! the events delivered to it, and tells others only through events. They have no actix
//! mailbox of their own: with a million clients the mailboxes would cost more memory
//! than the clients, and a mailbox round trip per event was the event loop's largest cost.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::{ClassMetrics, ClientActor, ClientCx, PersonalModels, Profile, Shared};
use crate::config::{ClientSpec, SimConfig};
use crate::device::Availability;
use crate::event::{ClientEvent, Event, LinkEvent, Out};
use crate::learner::{ClientId, Learner};
use crate::link::{LinkActor, LinkCx};
use crate::net::{Direction, LinkId};
use crate::record::{ClientState, Records};
use crate::time::SimTime;
use crate::wire::Encoder;

/// A client and its uplink and downlink, side by side in memory: an event for any of
/// the three touches the same few cache lines. Aligned to a cache line, so that no
/// member shares a line with the next (see the test of its size).
#[repr(align(64))]
struct Member {
    client: ClientActor,
    links: [LinkActor; 2],
}

/// Every client and its links, with what they share.
pub(crate) struct Crowd {
    members: Vec<Member>,
    profiles: Vec<Profile>,
    classes: Vec<ClassMetrics>,
    shared: Shared,
}

impl Crowd {
    /// The clients of `clients` (taken, so that each spec is freed once its client is
    /// built); returns them and the events due before the server starts (their first
    /// availability changes). `tracked` clients record every change of state.
    pub(crate) fn new(
        clients: Vec<ClientSpec>,
        seed: u64,
        tracked: usize,
        uplink: Encoder,
        learner: Arc<dyn Learner>,
        records: Rc<RefCell<Records>>,
        personal: PersonalModels,
    ) -> (Self, Vec<(SimTime, Event)>) {
        let shared = Shared {
            learner,
            records,
            personal,
            uplink,
            states: ClientState::ALL
                .map(|s| metrics::gauge!(crate::metrics::CLIENTS, "state" => s.as_str())),
        };
        let n = clients.len();
        let mut crowd = Self {
            members: Vec::with_capacity(n),
            profiles: Vec::new(),
            classes: Vec::new(),
            shared,
        };
        let mut class_names: Vec<String> = Vec::new();
        let mut initial = Vec::new();
        for (id, spec) in clients.into_iter().enumerate() {
            let (profile, trace) = crowd.profile_of(spec, &mut class_names);
            let tracked = SimConfig::tracks(id, n, tracked);
            let cx = crowd.cx(id, profile);
            let (client, first) = ClientActor::new(id, seed, profile as u32, &cx, trace, tracked);
            if let Some(at) = first {
                initial.push((at, Event::Client(id, ClientEvent::Availability)));
            }
            let links = [Direction::Up, Direction::Down]
                .map(|dir| LinkActor::new(LinkId { client: id, dir }, seed));
            crowd.members.push(Member { client, links });
        }
        (crowd, initial)
    }

    /// The profile `spec` follows (an earlier one when it matches the last, else a new
    /// one), and the client's own trace if its availability is one.
    fn profile_of(
        &mut self,
        spec: ClientSpec,
        class_names: &mut Vec<String>,
    ) -> (usize, Option<Box<Availability>>) {
        let (shared, trace) = match spec.availability {
            trace @ (Availability::Trace(_) | Availability::Periodic { .. }) => {
                (Availability::Trace(Vec::new()), Some(Box::new(trace)))
            }
            other => (other, None),
        };
        let class = match class_names.iter().position(|c| *c == spec.class) {
            Some(c) => c,
            None => {
                self.classes.push(ClassMetrics::new(&spec.class));
                class_names.push(spec.class);
                class_names.len() - 1
            }
        };
        let same = self.profiles.last().is_some_and(|p| {
            p.class == class
                && p.device == spec.device
                && p.uplink == spec.uplink
                && p.downlink == spec.downlink
                && p.availability == shared
        });
        if !same {
            self.profiles.push(Profile {
                class,
                device: spec.device,
                uplink: spec.uplink,
                downlink: spec.downlink,
                availability: shared,
            });
        }
        (self.profiles.len() - 1, trace)
    }

    fn cx(&self, id: ClientId, profile: usize) -> ClientCx<'_> {
        let profile = &self.profiles[profile];
        ClientCx {
            id,
            shared: &self.shared,
            profile,
            metrics: &self.classes[profile.class],
        }
    }

    /// Whether the server may pick each client at the start, by id: online, and with
    /// the memory for a job.
    pub(crate) fn selectable(&self) -> Vec<bool> {
        self.members.iter().map(|m| m.client.selectable()).collect()
    }

    /// Delivers `event` to client `id`.
    pub(crate) fn client(&mut self, id: ClientId, out: &mut Out, event: ClientEvent) {
        let client = &mut self.members[id].client;
        let profile = &self.profiles[client.profile as usize];
        let cx = ClientCx {
            id,
            shared: &self.shared,
            profile,
            metrics: &self.classes[profile.class],
        };
        client.handle(&cx, out, event);
    }

    /// Delivers `event` to link `id`. Nothing starts on the link of an offline device:
    /// a model sent to one chosen the instant it left never leaves the server.
    pub(crate) fn link(&mut self, id: LinkId, out: &mut Out, event: LinkEvent) {
        let member = &mut self.members[id.client];
        if matches!(event, LinkEvent::Send(_)) && !member.client.online() {
            return;
        }
        let profile = &self.profiles[member.client.profile as usize];
        let cx = LinkCx {
            spec: profile.link(id.dir),
            metrics: self.classes[profile.class].link(id.dir),
            records: &self.shared.records,
        };
        let slot = match id.dir {
            Direction::Up => 0,
            Direction::Down => 1,
        };
        member.links[slot].handle(id, &cx, out, event);
    }
}

#[cfg(test)]
mod tests {
    use super::Member;

    /// With a million clients every event finds its member cold: one that starts on a
    /// cache line and fills four exactly costs the fewest misses. A field that grows
    /// it past 256 bytes costs a fifth line for every member.
    #[test]
    fn a_member_fills_four_cache_lines() {
        assert_eq!(std::mem::align_of::<Member>(), 64);
        assert_eq!(std::mem::size_of::<Member>(), 256);
    }
}
