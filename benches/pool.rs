//! Local training through the pool on workload W1 (scenarios/w1.ron): images per second
//! with each client alone and with clients batched.

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flotilla::measure::PoolBench;

fn pool(c: &mut Criterion) {
    let w1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/w1.ron");
    let mut group = c.benchmark_group("pool");
    group.sample_size(10);
    let mut backends = vec!["Flex"];
    if cfg!(feature = "tch") {
        backends.push("Tch");
    }
    for backend in backends {
        for batch in [1, 5] {
            let set = [
                format!("pool.backend={backend}"),
                format!("pool.batch_clients={batch}"),
            ];
            let pool = PoolBench::new(&w1, &set).expect("W1 pool");
            let images = pool.round(0).expect("a round");
            group.throughput(Throughput::Elements(images));
            group.bench_function(format!("{backend}, {batch} client(s) per batch"), |b| {
                b.iter(|| pool.round(0).expect("a round"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, pool);
criterion_main!(benches);
