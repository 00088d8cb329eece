//! Pretrained backbones from timm's and open_clip's safetensors files: the same outputs as
//! timm and open_clip compute (tests/fixtures/pretrained/, made by
//! scripts/fixtures/pretrained.py), at the checkpoints' resolution and at others, and every
//! method training on them.

use burn::tensor::{Device, Tensor, TensorData};
use flotilla::data::{Dataset, MEAN, Pixels, STD};
use flotilla::model::{
    Adaptation, AdapterSpec, Architecture, CheckpointLayout, HeadSpec, Pretrained, Vit, Weights,
    build_model, catalog,
};
use safetensors::SafeTensors;

use crate::checkpoints::{fixture, pretrained};
use crate::trains::train_only_the_trainable;

/// The reference file's tensor `name`: its values as `f32` (uint8 images as 0..255).
fn reference(name: &str) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(fixture("reference.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let view = file.tensor(name).unwrap();
    let values = match view.dtype() {
        safetensors::Dtype::U8 => view.data().iter().map(|&b| f32::from(b)).collect(),
        safetensors::Dtype::F32 => view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        other => panic!("{name}: {other:?}"),
    };
    (values, view.shape().to_vec())
}

/// The reference images `name` (`[n, side, side, channels]` bytes) as a data set.
fn images(name: &str) -> Dataset {
    let (values, shape) = reference(name);
    let n = shape[0];
    Dataset {
        pixels: Pixels::Bytes(values.iter().map(|&v| v as u8).collect()),
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
        groups: vec![0; n],
        side: shape[1],
        channels: shape[3],
        classes: 10,
    }
}

/// The checkpoint built for `data` with `adaptation`.
fn model(p: &Pretrained, data: &Dataset, adaptation: &Adaptation, device: &Device) -> Vit {
    let arch = p.inspect().unwrap();
    let config = p.config(&arch, data.side, data.channels, data.classes);
    let weights = Weights::Pretrained(p, &arch, (MEAN, STD));
    build_model(&config, Some(weights), adaptation, 7, device).unwrap()
}

fn patches(data: &Dataset, patch: usize, device: &Device) -> Tensor<3> {
    let idx: Vec<u32> = (0..data.len() as u32).collect();
    let (values, _) = data.patches(&idx, patch);
    let tokens = (data.side / patch).pow(2);
    let dim = patch * patch * data.channels;
    Tensor::from_data(TensorData::new(values, [idx.len(), tokens, dim]), device)
}

/// The largest absolute difference between `got` and the reference `name`.
fn max_error(got: Tensor<2>, name: &str) -> f32 {
    let (want, shape) = reference(name);
    assert_eq!(got.dims().to_vec(), shape, "{name}");
    let got = got.into_data().try_to_vec::<f32>().unwrap();
    got.iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

const TOLERANCE: f32 = 1e-4;

#[test]
fn timm_vits_compute_what_timm_computes_at_every_resolution() {
    let device = Device::flex();
    for name in ["timm-vit", "timm-vit-avg"] {
        let p = pretrained(&format!("{name}.safetensors"), CheckpointLayout::Timm);
        for side in [32, 48, 24] {
            let data = images(&format!("images{side}"));
            let keep_head = Adaptation::linear(AdapterSpec::HeadOnly);
            let keep_head = Adaptation {
                head: HeadSpec::Pretrained,
                ..keep_head
            };
            let vit = model(&p, &data, &keep_head, &device);
            let encoded = vit.encode(patches(&data, 4, &device)).features;
            let logits = vit.head.forward(encoded.clone());
            let features = max_error(encoded, &format!("{name}/features{side}"));
            let logits = max_error(logits, &format!("{name}/logits{side}"));
            assert!(
                features <= TOLERANCE && logits <= TOLERANCE,
                "{name} at {side}: features off by {features}, logits by {logits}"
            );
        }
    }
}

#[test]
fn a_grey_data_set_on_a_colour_checkpoint_is_its_channel_replicated() {
    let device = Device::flex();
    let p = pretrained("timm-vit.safetensors", CheckpointLayout::Timm);
    let data = images("grey32");
    assert_eq!(data.channels, 1);
    let adaptation = Adaptation {
        head: HeadSpec::Pretrained,
        ..Adaptation::linear(AdapterSpec::HeadOnly)
    };
    let vit = model(&p, &data, &adaptation, &device);
    let error = max_error(
        vit.forward(patches(&data, 4, &device)),
        "timm-vit/logits-grey32",
    );
    assert!(error <= TOLERANCE, "off by {error}");
}

#[test]
fn clip_vision_towers_compute_what_open_clip_computes_at_every_resolution() {
    let device = Device::flex();
    let p = pretrained("clip-vit.safetensors", CheckpointLayout::OpenClip);
    let arch = p.inspect().unwrap();
    assert_eq!(
        (
            arch.prefix.as_str(),
            arch.projection,
            arch.pre_norm,
            arch.head
        ),
        ("visual.", Some(24), true, None)
    );
    for side in [32, 48, 24] {
        let data = images(&format!("images{side}"));
        let vit = model(
            &p,
            &data,
            &Adaptation::linear(AdapterSpec::HeadOnly),
            &device,
        );
        let error = max_error(
            vit.encode(patches(&data, 4, &device)).features,
            &format!("clip-vit/features{side}"),
        );
        assert!(error <= TOLERANCE, "at {side}: off by {error}");
    }
}

#[test]
fn the_architecture_is_read_from_the_shapes() {
    let plain = pretrained("timm-vit.safetensors", CheckpointLayout::Timm)
        .inspect()
        .unwrap();
    let avg = pretrained("timm-vit-avg.safetensors", CheckpointLayout::Timm)
        .inspect()
        .unwrap();
    let want = Architecture {
        layout: CheckpointLayout::Timm,
        prefix: String::new(),
        channels: 3,
        patch: 4,
        grid: 8,
        dim: 48,
        depth: 2,
        mlp: 192,
        qkv_bias: true,
        patch_bias: true,
        pre_norm: false,
        projection: None,
        pool: flotilla::model::Pooling::Class,
        head: Some(10),
    };
    assert_eq!(plain, want);
    assert_eq!(
        avg,
        Architecture {
            qkv_bias: false,
            pool: flotilla::model::Pooling::Mean,
            ..want
        }
    );
    assert_eq!(plain.image(), 32);
}

#[test]
fn every_method_trains_on_both_layouts_and_leaves_the_rest_bit_identical() {
    let device = Device::flex().autodiff();
    // Two classes of two images each, so that naive Bayes has a covariance to fit.
    let data = Dataset {
        labels: vec![0, 1, 0, 1],
        classes: 2,
        ..images("images32")
    };
    // Every method of the shipped scenarios, and FedBABU's partial body.
    let mut methods = catalog(4);
    methods.push(Adaptation::linear(AdapterSpec::Blocks { blocks: vec![1] }));
    for (file, layout) in [
        ("timm-vit.safetensors", CheckpointLayout::Timm),
        ("clip-vit.safetensors", CheckpointLayout::OpenClip),
    ] {
        let p = pretrained(file, layout);
        for adaptation in &methods {
            let vit = model(&p, &data, adaptation, &device);
            // One batch of both classes twice: naive Bayes's episode has a query.
            train_only_the_trainable(vit, adaptation, &data, (4, 4, 1), &device);
        }
    }
}
