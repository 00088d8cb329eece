//! The benchmark's measurements measure something real and repeatable.

use flotilla::bench::engine_events;

#[test]
fn the_engine_measurement_is_deterministic_and_does_the_work_asked() {
    let a = engine_events(300, 2_000, 10).unwrap();
    let b = engine_events(300, 2_000, 10).unwrap();
    assert_eq!(a, b);
    // Every applied update took at least a download, a training job and an upload.
    assert!(a > 2_000 * 6, "{a} events");
    // A larger model changes the transfer times, not the protocol's work per update.
    let c = engine_events(300, 2_000, 4_746).unwrap();
    assert!(c > 2_000 * 6, "{c} events");
}
