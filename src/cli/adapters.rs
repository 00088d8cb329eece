//! `flotilla adapters`: each method's trainable values and bytes per update.

use std::path::Path;
use std::process::ExitCode;

use flotilla::model::{AdapterCost, VitConfig, VitStyle, catalog};
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

pub(crate) fn adapters_command(file: Option<&Path>) -> ExitCode {
    let (vit, mut methods) = match file {
        None => (bundled_vit(), catalog(1)),
        Some(file) => {
            let loaded = match scenario::load(file) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(BAD_INPUT);
                }
            };
            let vit = match loaded.vit_before_loading() {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(BAD_INPUT);
                }
            };
            let mut methods = vec![loaded.adaptation()];
            methods.extend(catalog(loaded.scenario.data.clients));
            (vit, methods)
        }
    };
    methods.dedup();
    let dtypes = [
        Encoding::F32,
        Encoding::F16,
        Encoding::Int8(Rounding::Nearest),
        Encoding::TopK(0.1),
    ];
    println!(
        "ViT patch {} dim {} depth {} heads {} mlp {}, {} classes",
        vit.patch, vit.dim, vit.depth, vit.heads, vit.mlp, vit.classes
    );
    let names: Vec<String> = dtypes
        .iter()
        .map(|d| format!("bytes/update {d:?}"))
        .collect();
    println!(
        "| adapter | head | trainable | of backbone | {} |",
        names.join(" | ")
    );
    println!(
        "| --- | --- | ---: | ---: |{}",
        " ---: |".repeat(dtypes.len())
    );
    for m in &methods {
        let cost = AdapterCost::measure(&vit, m);
        let bytes: Vec<String> = dtypes
            .iter()
            .map(|d| d.encoded_bytes(&cost.layout).to_string())
            .collect();
        println!(
            "| {} | {} | {} | {:.2}% | {} |",
            cost.adapter,
            cost.head,
            cost.trainable,
            cost.share() * 100.0,
            bytes.join(" | ")
        );
    }
    ExitCode::SUCCESS
}
