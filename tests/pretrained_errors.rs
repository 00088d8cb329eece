//! A pretrained checkpoint that does not fit the model it describes: every missing,
//! unexpected or mis-shaped tensor is named, with both shapes.

use std::path::{Path, PathBuf};

use crate::checkpoints::{fixture, pretrained};
use flotilla::Chain;
use flotilla::model::{CheckpointLayout, Pretrained, Problem, TensorProblem};
use safetensors::SafeTensors;

/// A copy of fixture `name` with tensor `bad` one row short.
fn with_one_row_short(name: &str, bad: &str, dir: &Path) -> PathBuf {
    let bytes = std::fs::read(fixture(name)).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors = Vec::new();
    for (key, view) in file.tensors() {
        let mut shape = view.shape().to_vec();
        let mut data = view.data().to_vec();
        if key == bad {
            let row = data.len() / shape[0];
            shape[0] -= 1;
            data.truncate(data.len() - row);
        }
        tensors.push((key, shape, data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(k, s, d)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                .unwrap();
            (k.clone(), view)
        })
        .collect();
    let out = dir.join(name);
    safetensors::serialize_to_file(views, None, &out).unwrap();
    out
}

#[test]
fn a_mis_shaped_tensor_is_named_with_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    for (name, layout, bad, expected, found) in [
        (
            "timm-vit.safetensors",
            CheckpointLayout::Timm,
            "blocks.1.mlp.fc1.weight",
            vec![192, 48],
            vec![191, 48],
        ),
        (
            "clip-vit.safetensors",
            CheckpointLayout::OpenClip,
            "visual.transformer.resblocks.0.attn.in_proj_weight",
            vec![144, 48],
            vec![143, 48],
        ),
    ] {
        let p = Pretrained {
            file: with_one_row_short(name, bad, dir.path()),
            ..pretrained(name, layout)
        };
        let error = p.inspect().unwrap_err();
        let Problem::Tensors(problems) = &error.problem else {
            panic!("{error}");
        };
        assert_eq!(
            problems,
            &[TensorProblem::Shape {
                name: bad.into(),
                expected,
                found
            }],
            "{error}"
        );
        let message = Chain(&error).to_string();
        assert!(message.contains(bad) && message.contains(name), "{message}");
    }
}

#[test]
fn missing_and_unexpected_tensors_are_all_named() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("timm-vit.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .filter(|(k, _)| k != "blocks.0.norm2.bias" && k != "norm.weight")
        .collect();
    let scale = [0u8; 4 * 48];
    views.push((
        "blocks.0.ls1.gamma".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![48], &scale).unwrap(),
    ));
    let path = dir.path().join("broken.safetensors");
    safetensors::serialize_to_file(views, None, &path).unwrap();
    let p = Pretrained {
        file: path,
        ..pretrained("timm-vit.safetensors", CheckpointLayout::Timm)
    };
    let error = p.inspect().unwrap_err();
    let Problem::Tensors(problems) = &error.problem else {
        panic!("{error}");
    };
    assert_eq!(
        problems,
        &[
            TensorProblem::Missing {
                name: "blocks.0.norm2.bias".into(),
                expected: vec![48]
            },
            TensorProblem::Missing {
                name: "norm.weight".into(),
                expected: vec![48]
            },
            TensorProblem::Unexpected {
                name: "blocks.0.ls1.gamma".into(),
                shape: vec![48]
            },
        ]
    );
}

/// At the command line: exit code 2, the field, the file and the tensor with its shapes.
#[test]
fn validate_names_the_field_the_file_and_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let bad = "blocks.0.attn.qkv.weight";
    let file = with_one_row_short("timm-vit.safetensors", bad, dir.path());
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/data/uci-digits/digits.csv.gz");
    let scenario = dir.path().join("bad.ron");
    std::fs::write(
        &scenario,
        format!(
            r#"Scenario(
    name: "bad", seed: 1,
    data: (source: Csv(file: "{}", width: 8, height: 8, max: 16), image: (side: 32, channels: 3),
           partition: Iid, clients: 4),
    model: (backbone: Pretrained(file: "{}", layout: Timm, heads: 3), adapter: HeadOnly),
    training: (epochs: 1, batch_size: 16, optimizer: Sgd(lr: 0.1)),
    algorithm: FedAvg(clients_per_round: 2),
    population: [(class: "laptop", count: 4, speed: Const("100 samples/s"),
        uplink: (latency: Const("10ms"), bandwidth: Const("20Mbit/s")),
        downlink: (latency: Const("10ms"), bandwidth: Const("50Mbit/s")))],
    stop: (rounds: 1),
)"#,
            data.display(),
            file.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["validate", scenario.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let want = format!(
        "model.backbone.file: {}: tensor `{bad}` has shape [143, 48], the model needs [144, 48]",
        file.display()
    );
    assert!(err.contains(&want), "{err}");
}
