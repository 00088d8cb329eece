//! The benchmark's measurements measure something real and repeatable.

use flotilla::measure::engine;

#[test]
fn the_engine_measurement_is_deterministic_and_does_the_work_asked() {
    let run = engine(300, 2_000, 10).unwrap();
    let (a, b) = (run.events, engine(300, 2_000, 10).unwrap().events);
    assert_eq!(a, b);
    // The event loop was timed, from its first event to its last.
    assert!(run.loop_seconds > 0.0);
    // Every applied update took at least a download, a training job and an upload.
    assert!(a > 2_000 * 6, "{a} events");
    // A larger model changes the transfer times, not the protocol's work per update.
    let c = engine(300, 2_000, 4_746).unwrap().events;
    assert!(c > 2_000 * 6, "{c} events");
}
