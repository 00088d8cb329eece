//! A small, noisy scenario on the bundled data for whole-program tests: a tiny ViT from
//! scratch, 30 phones and laptops with losses, dropouts and a shared ingress.

pub(crate) mod same;

use std::path::{Path, PathBuf};

/// Clients in the small scenario.
pub(crate) const CLIENTS: usize = 30;

/// The small scenario's default algorithm.
pub(crate) const FEDAVG: &str =
    r#"FedAvg(clients_per_round: 4, over_selection: 0.5, deadline: "20s")"#;

/// Writes the small scenario with `algorithm` to `dir/<name>.ron` and returns its path.
pub(crate) fn small_scenario(
    dir: &Path,
    name: &str,
    algorithm: &str,
    rounds: u32,
    workers: usize,
    wire: &str,
) -> PathBuf {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/data/mnist-10k");
    let text = format!(
        r#"Scenario(
    name: "{name}", seed: 5,
    data: (source: Idx(dir: "{data}"), partition: Dirichlet(alpha: 0.5), clients: {CLIENTS}, min_samples: 20),
    model: (backbone: Vit(patch: 7, dim: 16, depth: 1, heads: 2, mlp: 32),
            adapter: Lora(rank: 2, alpha: 4.0, targets: [Q, V])),
    training: (epochs: 1, batch_size: 16, optimizer: Sgd(lr: 0.1)),
    algorithm: {algorithm},
    population: [
        (class: "phone", count: 20, speed: LogNormal(median: "40 samples/s", sigma: 0.7),
         uplink: (latency: Normal(mean: "80ms", std: "20ms"), bandwidth: LogNormal(median: "1Mbit/s", sigma: 0.5), loss: 0.1),
         downlink: (latency: Const("40ms"), bandwidth: Const("10Mbit/s")), dropout: 0.1),
        (class: "laptop", count: 10, speed: Const("200 samples/s"),
         uplink: (latency: Const("10ms"), bandwidth: Const("20Mbit/s")),
         downlink: (latency: Const("10ms"), bandwidth: Const("50Mbit/s"))),
    ],
    server: (ingress: "2Mbit/s"),
    wire: (encoding: {wire}),
    stop: (rounds: {rounds}),
    pool: (workers: {workers}),
)
"#,
        data = data.display()
    );
    let file = dir.join(format!("{name}.ron"));
    std::fs::write(&file, text).unwrap();
    file
}
