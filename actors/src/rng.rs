//! Named random streams: one independent generator per (seed, actor, purpose).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The generator behind every random draw in a simulation.
pub(crate) type SimRng = ChaCha8Rng;

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
    let (kind, id) = match actor {
        ActorKey::Server => (1u64, 0u64),
        ActorKey::Client(c) => (2, c as u64),
        ActorKey::Link { client, up } => (3 + up as u64, client as u64),
    };
    let mut h = fnv1a(purpose.as_bytes());
    for word in [seed, kind, id] {
        h = splitmix64(h ^ word);
    }
    SimRng::seed_from_u64(h)
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
