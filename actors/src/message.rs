//! Messages that cross links: models down, updates up.

use crate::learner::{ClientId, Params};

/// The server's models for one client, as the client receives them.
#[derive(Clone, Debug)]
pub(crate) struct ModelMsg {
    pub round: u32,
    pub version: u64,
    /// One model per slot of the client, decoded (with the wire encoding's rounding).
    pub params: Vec<Params>,
    pub bytes: u64,
}

/// One trained adapter in an update.
#[derive(Clone, Debug)]
pub(crate) struct AdapterUpdate {
    /// Decoded values (with the wire encoding's rounding).
    pub params: Params,
    /// Training samples behind it, its weight in averages.
    pub num_samples: u64,
    /// Whether every value is finite: checked where the values are made (and still in
    /// cache), so that the server need not read them again to discard a flawed update.
    pub finite: bool,
}

/// A client's trained adapters, as the server receives them.
#[derive(Clone, Debug)]
pub(crate) struct UpdateMsg {
    pub client: ClientId,
    pub round: u32,
    /// The model version the client started from.
    pub base_version: u64,
    /// One adapter per slot of the client, in slot order.
    pub adapters: Vec<AdapterUpdate>,
    /// Encoded size: the sum of the adapters' encodings.
    pub bytes: u64,
}

impl UpdateMsg {
    /// The adapter of a single-slot update (every algorithm but FL-TAC trains one).
    pub(crate) fn single(&self) -> &AdapterUpdate {
        &self.adapters[0]
    }

    /// The adapter of a single-slot update, taken out of it.
    pub(crate) fn into_single(self) -> AdapterUpdate {
        self.adapters
            .into_iter()
            .next()
            .expect("an update has an adapter")
    }
}

/// A message on a link.
#[derive(Clone, Debug)]
pub(crate) enum Message {
    Model(ModelMsg),
    Update(UpdateMsg),
}

impl Message {
    /// Encoded size on the wire.
    pub(crate) fn bytes(&self) -> u64 {
        match self {
            Message::Model(m) => m.bytes,
            Message::Update(u) => u.bytes,
        }
    }

    /// The round of the job the message belongs to.
    pub(crate) fn round(&self) -> u32 {
        match self {
            Message::Model(m) => m.round,
            Message::Update(u) => u.round,
        }
    }
}
