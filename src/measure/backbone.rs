//! A real-size backbone for `flotilla bench`: a checkpoint shaped as timm's ViT-S/16
//! (`vit_small_patch16_224`: 384 wide, 12 blocks of 6 heads, MLP 1536, 10 classes) with
//! random weights, written here (nothing is downloaded), and the scenario that evaluates
//! and trains its head on the bundled MNIST images enlarged to 224x224 RGB.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use safetensors::tensor::{Dtype, TensorView};

/// ViT-S/16's width, depth, MLP width and patch; its 224 px input; the data's classes.
const DIM: usize = 384;
const DEPTH: usize = 12;
const MLP: usize = 1536;
const PATCH: usize = 16;
const SIDE: usize = 224;
const CLASSES: usize = 10;

/// The checkpoint's file name in the fixture's directory.
const CHECKPOINT: &str = "vit_small_patch16_224.safetensors";

/// Why the fixture cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// A file cannot be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The checkpoint cannot be serialised.
    #[error("cannot write the checkpoint {}", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What safetensors said.
        source: safetensors::SafeTensorError,
    },
}

/// Writes the checkpoint and a scenario reading it and `data` (an IDX directory of 10
/// classes) into `dir`; returns the scenario's path. The scenario evaluates the initial
/// model once (`stop: (rounds: 0)`) on the 2,000 test images alone (no local test
/// splits), with a head-only adapter on the checkpoint's head, 10 clients that all
/// train in a round, and 2 workers.
pub fn write_vit_small_fixture(dir: &Path, data: &Path) -> Result<PathBuf, FixtureError> {
    let write = |path: PathBuf, bytes: &[u8]| {
        std::fs::write(&path, bytes).map_err(|source| FixtureError::Write { path, source })
    };
    std::fs::create_dir_all(dir).map_err(|source| FixtureError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let tensors = timm_vit_small(7);
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytes).expect("shape fits");
            (name.clone(), view)
        })
        .collect();
    let checkpoint = dir.join(CHECKPOINT);
    safetensors::serialize_to_file(views, None, &checkpoint).map_err(|source| {
        FixtureError::Checkpoint {
            path: checkpoint.clone(),
            source,
        }
    })?;
    let scenario = dir.join("vit-small.ron");
    write(scenario.clone(), scenario_text(data).as_bytes())?;
    Ok(scenario)
}

fn scenario_text(data: &Path) -> String {
    format!(
        r#"Scenario(
    name: "vit-small-224",
    seed: 7,
    data: (
        source: Idx(dir: "{data}"),
        image: (side: {SIDE}, channels: 3),
        partition: Iid,
        clients: 10,
        local_test_fraction: 0.0,
    ),
    model: (
        backbone: Pretrained(file: "{CHECKPOINT}", layout: Timm, heads: 6),
        adapter: HeadOnly,
        head: Pretrained,
    ),
    training: (epochs: 1, batch_size: 32, optimizer: Sgd(lr: 0.05)),
    algorithm: FedAvg(clients_per_round: 10),
    population: [
        (
            class: "laptop",
            count: 10,
            speed: Const("200 samples/s"),
            uplink: (latency: Const("20ms"), bandwidth: Const("50Mbit/s")),
            downlink: (latency: Const("20ms"), bandwidth: Const("100Mbit/s")),
        ),
    ],
    stop: (rounds: 0),
    pool: (workers: 2, cache: "1GB"),
)
"#,
        data = data.display()
    )
}

/// `(name, shape, little-endian f32 bytes)` of every tensor of timm's
/// `vit_small_patch16_224` with a 10-class head, normal random values (std 0.02, norms'
/// scales 1) drawn from `seed`.
fn timm_vit_small(seed: u64) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0f32, 0.02).expect("a valid deviation");
    let mut tensor = |name: String, shape: Vec<usize>, fill: Option<f32>| {
        let n: usize = shape.iter().product();
        let bytes = (0..n)
            .flat_map(|_| {
                fill.unwrap_or_else(|| normal.sample(&mut rng))
                    .to_le_bytes()
            })
            .collect();
        (name, shape, bytes)
    };
    let tokens = (SIDE / PATCH).pow(2) + 1;
    let mut all = vec![
        tensor("cls_token".into(), vec![1, 1, DIM], None),
        tensor("pos_embed".into(), vec![1, tokens, DIM], None),
        tensor(
            "patch_embed.proj.weight".into(),
            vec![DIM, 3, PATCH, PATCH],
            None,
        ),
        tensor("patch_embed.proj.bias".into(), vec![DIM], None),
    ];
    for i in 0..DEPTH {
        let b = |part: &str| format!("blocks.{i}.{part}");
        all.extend([
            tensor(b("norm1.weight"), vec![DIM], Some(1.0)),
            tensor(b("norm1.bias"), vec![DIM], Some(0.0)),
            tensor(b("attn.qkv.weight"), vec![3 * DIM, DIM], None),
            tensor(b("attn.qkv.bias"), vec![3 * DIM], None),
            tensor(b("attn.proj.weight"), vec![DIM, DIM], None),
            tensor(b("attn.proj.bias"), vec![DIM], None),
            tensor(b("norm2.weight"), vec![DIM], Some(1.0)),
            tensor(b("norm2.bias"), vec![DIM], Some(0.0)),
            tensor(b("mlp.fc1.weight"), vec![MLP, DIM], None),
            tensor(b("mlp.fc1.bias"), vec![MLP], None),
            tensor(b("mlp.fc2.weight"), vec![DIM, MLP], None),
            tensor(b("mlp.fc2.bias"), vec![DIM], None),
        ]);
    }
    all.extend([
        tensor("norm.weight".into(), vec![DIM], Some(1.0)),
        tensor("norm.bias".into(), vec![DIM], Some(0.0)),
        tensor("head.weight".into(), vec![CLASSES, DIM], None),
        tensor("head.bias".into(), vec![CLASSES], None),
    ]);
    all
}
