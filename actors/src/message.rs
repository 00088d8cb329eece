//! Messages that cross links: models down, updates up.

use crate::client::ClientEvent;
use crate::event::Event;
use crate::learner::ClientId;
use crate::net::LinkId;
use crate::payload::Params;
use crate::server::ServerEvent;

/// The global model, as a client receives it.
#[derive(Clone, Debug)]
pub struct ModelMsg {
    pub round: u32,
    pub version: u64,
    /// Decoded values (with the wire encoding's rounding).
    pub params: Params,
    pub bytes: u64,
}

/// A client's trained parameters, as the server receives them.
#[derive(Clone, Debug)]
pub struct UpdateMsg {
    pub client: ClientId,
    pub round: u32,
    /// The model version the client started from.
    pub base_version: u64,
    pub params: Params,
    pub num_samples: u64,
    pub loss: f64,
    pub bytes: u64,
}

/// A message on a link.
#[derive(Clone, Debug)]
pub enum Message {
    Model(ModelMsg),
    Update(UpdateMsg),
}

impl Message {
    /// Encoded size on the wire.
    pub fn bytes(&self) -> u64 {
        match self {
            Message::Model(m) => m.bytes,
            Message::Update(u) => u.bytes,
        }
    }

    /// The event that hands the message to its receiver.
    pub(crate) fn delivery(self, link: LinkId) -> Event {
        match self {
            Message::Model(m) => Event::Client(link.client, ClientEvent::ModelArrived(m)),
            Message::Update(u) => Event::Server(ServerEvent::UpdateArrived(u)),
        }
    }

    /// The event that tells the client its transfer ended, delivered or given up.
    pub(crate) fn transfer_ended(link: LinkId, delivered: bool) -> Event {
        Event::Client(
            link.client,
            ClientEvent::TransferEnded {
                dir: link.dir,
                delivered,
            },
        )
    }
}
