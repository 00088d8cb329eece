//! Named random streams: one independent generator per (seed, actor, purpose).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator behind every random draw in a simulation.
pub type SimRng = ChaCha8Rng;

/// Who draws: the server, one client, or one link of a client.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ActorKey {
    /// The server.
    Server,
    /// Client `id`.
    Client(usize),
    /// The link of client `id` in one direction (`up` is client to server).
    Link { client: usize, up: bool },
}

/// A generator seeded from the scenario seed, the actor and the purpose of the draws.
///
/// Streams never share state, so adding a draw for one purpose never shifts the numbers
/// another purpose sees, and actors may draw in any order.
pub(crate) fn stream(seed: u64, actor: ActorKey, purpose: &str) -> SimRng {
    SimRng::seed_from_u64(key(seed, actor, purpose))
}

/// The stream of client `client` for `purpose`, for draws made while the scenario is
/// resolved (which trace device a client is): one more of the engine's named streams.
pub fn client_rng(seed: u64, client: usize, purpose: &str) -> SimRng {
    stream(seed, ActorKey::Client(client), purpose)
}

/// The seed of the stream of `actor` for `purpose`.
fn key(seed: u64, actor: ActorKey, purpose: &str) -> u64 {
    let (kind, id) = match actor {
        ActorKey::Server => (1u64, 0u64),
        ActorKey::Client(c) => (2, c as u64),
        ActorKey::Link { client, up } => (3 + up as u64, client as u64),
    };
    let mut h = fnv1a(purpose.as_bytes());
    for word in [seed, kind, id] {
        h = splitmix64(h ^ word);
    }
    h
}

/// A named stream kept as its seed and its position alone (16 bytes instead of the
/// generator's 300): for the many actors that draw now and then. Each use rebuilds the
/// generator at its position, so the numbers are exactly those of [`stream`].
#[derive(Copy, Clone, Debug)]
pub(crate) struct Stream {
    key: u64,
    /// Words of the stream used so far.
    used: u64,
}

impl Stream {
    /// The stream of `actor` for `purpose`, from its start.
    pub(crate) fn new(seed: u64, actor: ActorKey, purpose: &str) -> Self {
        Self {
            key: key(seed, actor, purpose),
            used: 0,
        }
    }

    /// Runs `draw` with the generator at the stream's position, and moves past what it
    /// used.
    pub(crate) fn draw<T>(&mut self, draw: impl FnOnce(&mut SimRng) -> T) -> T {
        let mut rng = SimRng::seed_from_u64(self.key);
        if self.used > 0 {
            rng.set_word_pos(u128::from(self.used));
        }
        let value = draw(&mut rng);
        self.used = u64::try_from(rng.get_word_pos()).expect("fewer than 2^64 words drawn");
        value
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn a_compact_stream_draws_what_the_generator_does() {
        let mut rng = stream(7, ActorKey::Client(3), "dropout");
        let mut compact = Stream::new(7, ActorKey::Client(3), "dropout");
        // Draws of every size, in uneven bursts that cross the generator's buffers.
        for burst in 0..200u64 {
            let expected: Vec<u64> = (0..burst % 7)
                .map(|i| {
                    if i % 2 == 0 {
                        rng.random::<u64>()
                    } else {
                        rng.random::<u32>() as u64
                    }
                })
                .collect();
            let got: Vec<u64> = compact.draw(|r| {
                (0..burst % 7)
                    .map(|i| {
                        if i % 2 == 0 {
                            r.random::<u64>()
                        } else {
                            r.random::<u32>() as u64
                        }
                    })
                    .collect()
            });
            assert_eq!(got, expected, "burst {burst}");
        }
        assert_eq!(std::mem::size_of::<Stream>(), 16);
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draw = |a, p| stream(7, a, p).random::<u64>();
        assert_eq!(
            draw(ActorKey::Client(3), "speed"),
            draw(ActorKey::Client(3), "speed")
        );
        assert_ne!(
            draw(ActorKey::Client(3), "speed"),
            draw(ActorKey::Client(4), "speed")
        );
        assert_ne!(
            draw(ActorKey::Client(3), "speed"),
            draw(ActorKey::Client(3), "dropout")
        );
        assert_ne!(
            draw(
                ActorKey::Link {
                    client: 0,
                    up: true
                },
                "x"
            ),
            draw(
                ActorKey::Link {
                    client: 0,
                    up: false
                },
                "x"
            )
        );
    }
}
