//! `flotilla adapters`: each method's trainable values, bytes per update, FLOPs per
//! training sample and the memory of a training job.

use std::path::Path;
use std::process::ExitCode;

use flotilla::Chain;
use flotilla::model::{
    AdapterCost, Optimizer, SampleCost, TrainConfig, VitConfig, VitStyle, catalog,
};
use flotilla::scenario;
use flotilla_actors::{Encoding, Rounding};

use super::BAD_INPUT;

/// The bundled ViT (DESIGN.md's) on 28x28 grey images of 10 classes.
fn bundled_vit() -> VitConfig {
    VitConfig {
        image: 28,
        channels: 1,
        patch: 4,
        dim: 64,
        depth: 4,
        heads: 4,
        mlp: 128,
        classes: 10,
        style: VitStyle::default(),
    }
}

/// The quickstart's training settings, for the memory of a job without a scenario.
fn bundled_training() -> TrainConfig {
    TrainConfig {
        epochs: 1,
        batch_size: 16,
        optimizer: Optimizer::Sgd { lr: 0.2 },
    }
}

pub(crate) fn adapters_command(file: Option<&Path>) -> ExitCode {
    let (vit, mut methods, training) = match file {
        None => (bundled_vit(), catalog(1), bundled_training()),
        Some(file) => {
            let loaded = match scenario::load(file) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: {}", Chain(&e));
                    return ExitCode::from(BAD_INPUT);
                }
            };
            let vit = match loaded.vit_before_loading() {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("error: {}", Chain(&e));
                    return ExitCode::from(BAD_INPUT);
                }
            };
            let mut methods = vec![loaded.adaptation()];
            methods.extend(catalog(loaded.scenario.data.clients));
            (vit, methods, loaded.scenario.training.clone())
        }
    };
    // The scenario's own method first, each method once.
    let mut seen = Vec::new();
    methods.retain(|m| {
        let new = !seen.contains(m);
        if new {
            seen.push(m.clone());
        }
        new
    });
    let dtypes = [
        Encoding::F32,
        Encoding::F16,
        Encoding::Int8(Rounding::Nearest),
        Encoding::TopK(0.1),
    ];
    out!(
        "ViT patch {} dim {} depth {} heads {} mlp {}, {} classes",
        vit.patch,
        vit.dim,
        vit.depth,
        vit.heads,
        vit.mlp,
        vit.classes
    );
    let names: Vec<String> = dtypes
        .iter()
        .map(|d| format!("bytes/update {d:?}"))
        .collect();
    out!(
        "FLOPs of one training sample (forward + backward; cached: once the device keeps \
         its frozen prefix); memory of a training job at batch {} with {:?}",
        training.batch_size,
        training.optimizer
    );
    out!(
        "| adapter | head | trainable | of backbone | {} | MFLOP/sample | cached | job memory |",
        names.join(" | ")
    );
    out!(
        "| --- | --- | ---: | ---: |{} ---: | ---: | ---: |",
        " ---: |".repeat(dtypes.len())
    );
    for m in &methods {
        let cost = AdapterCost::measure(&vit, m);
        let work = SampleCost::count(&vit, m);
        let bytes: Vec<String> = dtypes
            .iter()
            .map(|d| d.encoded_bytes(&cost.layout).to_string())
            .collect();
        let memory = work.training_memory(training.batch_size, &training.optimizer);
        out!(
            "| {} | {} | {} | {:.2}% | {} | {:.3} | {:.3} | {:.1} MB |",
            cost.adapter,
            cost.head,
            cost.trainable,
            cost.share() * 100.0,
            bytes.join(" | "),
            work.flops.total() as f64 / 1e6,
            work.cached() as f64 / 1e6,
            memory as f64 / 1e6,
        );
    }
    ExitCode::SUCCESS
}
