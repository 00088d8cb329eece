//! The engine alone: simulated events per second with a learner that trains nothing.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flotilla::measure;

fn engine_events(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    for (clients, params) in [(1_000, 10), (10_000, 10), (10_000, 4_746)] {
        let events = measure::engine(clients, 20_000, params)
            .expect("engine scenario")
            .events;
        group.throughput(Throughput::Elements(events));
        group.bench_function(format!("{clients} clients, {params} params"), |b| {
            b.iter(|| measure::engine(clients, 20_000, params).expect("engine scenario"))
        });
    }
    group.finish();
}

criterion_group!(benches, engine_events);
criterion_main!(benches);
