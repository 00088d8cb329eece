//! The parameter-efficient methods: what trains, how much, and what each piece computes.

use crate::toy::{tiny, toy_data};
use crate::trains::train_only_the_trainable;
use burn::tensor::{Device, Tensor, TensorData};
use flotilla::model::{
    Adaptation, AdapterSpec, Covariance, HeadSpec, LoraTarget, NaiveBayes, NaiveBayesHead,
    Trainable, Vit, VitConfig, build_model, inverse_logdet,
};

const CLIENTS: usize = 5;

fn with(adapter: AdapterSpec, head: HeadSpec) -> Adaptation {
    Adaptation {
        adapter,
        head,
        clients: CLIENTS,
    }
}

fn naive_bayes(covariance: Covariance) -> HeadSpec {
    HeadSpec::NaiveBayes {
        covariance,
        shrinkage: 0.5,
    }
}

/// Every method with its trainable count in closed form, for [`tiny`].
fn methods() -> Vec<(Adaptation, usize)> {
    let c = tiny();
    let (d, depth, k) = (c.dim, c.depth, c.classes);
    let head = d * k + k;
    let block = 4 * (d * d + d) + (d * c.mlp + c.mlp) + (c.mlp * d + d) + 4 * d;
    let backbone = (c.patch_dim() * d + d) + d + (c.tokens() + 1) * d + depth * block + 2 * d;
    let lora = Adaptation::linear(AdapterSpec::Lora {
        rank: 2,
        alpha: 4.0,
        targets: vec![LoraTarget::Q, LoraTarget::V],
    });
    vec![
        (lora, depth * 2 * (d * 2 + 2 * d) + head),
        // Two FiLM layers (scale and shift) per block.
        (
            with(AdapterSpec::Film, HeadSpec::Linear),
            depth * 2 * 2 * d + head,
        ),
        (
            with(AdapterSpec::Film, naive_bayes(Covariance::Qda)),
            depth * 2 * 2 * d,
        ),
        (
            with(AdapterSpec::Prompt { tokens: 3 }, HeadSpec::Linear),
            3 * d + head,
        ),
        (
            with(
                AdapterSpec::AdaptivePrompt {
                    tokens: 3,
                    key_loss: 1.0,
                },
                HeadSpec::Linear,
            ),
            // Meta prompt, query (d -> d) and generator (d -> tokens * d); keys are frozen.
            3 * d + (d * d + d) + (d * 3 * d + 3 * d) + head,
        ),
        (
            with(AdapterSpec::Memory { tokens: 2 }, HeadSpec::Linear),
            depth * 2 * d + head,
        ),
        (with(AdapterSpec::HeadOnly, HeadSpec::Linear), head),
        (with(AdapterSpec::Full, HeadSpec::Frozen), backbone),
        (with(AdapterSpec::Full, HeadSpec::Linear), backbone + head),
        (
            with(AdapterSpec::Blocks { blocks: vec![1] }, HeadSpec::Linear),
            block + head,
        ),
    ]
}

#[test]
fn every_adapter_count_matches_its_closed_form() {
    let device = Device::flex();
    for (adaptation, expected) in methods() {
        let model = build_model(&tiny(), None, &adaptation, 1, &device).unwrap();
        let sel = adaptation.trainable();
        assert_eq!(sel.count(&model).0, expected, "{adaptation:?}");
        assert_eq!(sel.extract(&model).len(), expected, "{adaptation:?}");
    }
}

#[test]
fn training_leaves_everything_else_bit_identical() {
    let c = tiny();
    let device = Device::flex().autodiff();
    let data = toy_data(36);
    for (adaptation, _) in methods() {
        let model = build_model(&c, None, &adaptation, 1, &device).unwrap();
        train_only_the_trainable(model, &adaptation, &data, (c.patch, 12, 2), &device);
    }
}

fn patches(c: &VitConfig, n: usize, device: &Device) -> Tensor<3> {
    let values: Vec<f32> = (0..n * c.tokens() * c.patch_dim())
        .map(|i| ((i * 53 % 97) as f32 / 48.0) - 1.0)
        .collect();
    Tensor::from_data(
        TensorData::new(values, [n, c.tokens(), c.patch_dim()]),
        device,
    )
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn film_starts_as_the_identity_and_prompts_do_not() {
    let c = tiny();
    let device = Device::flex();
    let x = patches(&c, 4, &device);
    let plain = build_model(
        &c,
        None,
        &with(AdapterSpec::HeadOnly, HeadSpec::Linear),
        1,
        &device,
    )
    .unwrap();
    let reference = values(plain.forward(x.clone()));
    let film = build_model(
        &c,
        None,
        &with(AdapterSpec::Film, HeadSpec::Linear),
        1,
        &device,
    )
    .unwrap();
    assert_eq!(values(film.forward(x.clone())), reference);
    let prompt = with(AdapterSpec::Prompt { tokens: 2 }, HeadSpec::Linear);
    let prompted = build_model(&c, None, &prompt, 1, &device).unwrap();
    assert_ne!(values(prompted.forward(x.clone())), reference);
    // The adaptive prompt's generator starts at zero: it begins as its meta prompt, and
    // reports one key-matching logit per client.
    let adaptive = with(
        AdapterSpec::AdaptivePrompt {
            tokens: 2,
            key_loss: 1.0,
        },
        HeadSpec::Linear,
    );
    let adaptive = build_model(&c, None, &adaptive, 1, &device).unwrap();
    let as_plain = Vit {
        prompt_net: None,
        ..adaptive.clone()
    };
    let encoded = adaptive.encode(x.clone());
    assert_eq!(encoded.key_logits.unwrap().dims(), [4, CLIENTS]);
    assert_eq!(
        values(adaptive.head.forward(encoded.features)),
        values(as_plain.forward(x))
    );
}

#[test]
fn memory_tokens_act_only_through_attention() {
    let c = tiny();
    let device = Device::flex();
    let x = patches(&c, 3, &device);
    let spec = with(AdapterSpec::Memory { tokens: 2 }, HeadSpec::Linear);
    let model = build_model(&c, None, &spec, 1, &device).unwrap();
    let sel = Trainable::new(r"blocks\.\d+\.memory");
    let other: Vec<f32> = (0..sel.count(&model).0).map(|i| (i as f32).sin()).collect();
    let moved = sel.load(model.clone(), &other);
    // Different memory, different outputs: the sequence attends to it.
    assert_ne!(
        values(model.forward(x.clone())),
        values(moved.forward(x.clone()))
    );
    // With every value projection at zero, attention outputs nothing whatever it attends
    // to, so the memory tokens can no longer change anything: they produce no outputs of
    // their own and reach the sequence through attention alone.
    let silence = Trainable::new(r"blocks\.\d+\.attn\.v\.base\.(weight|bias)");
    let zeros = vec![0.0; silence.count(&model).0];
    let (a, b) = (silence.load(model, &zeros), silence.load(moved, &zeros));
    assert_eq!(values(a.forward(x.clone())), values(b.forward(x)));
}

#[test]
fn naive_bayes_fit_matches_a_hand_computation() {
    let device = Device::flex();
    // Class 0: (0,0), (2,0), (1,3); class 1: (4,4), (6,4); class 2 absent.
    let f = [[0.0, 0.0], [2.0, 0.0], [4.0, 4.0], [1.0, 3.0], [6.0, 4.0]];
    let labels = [0, 0, 1, 0, 1];
    let features = Tensor::from_data(
        TensorData::new(f.iter().flatten().copied().collect::<Vec<f32>>(), [5, 2]),
        &device,
    );
    let s = 0.5;
    let lda = NaiveBayes {
        covariance: Covariance::Lda,
        shrinkage: s,
    };
    let head = NaiveBayesHead::fit(features.clone(), &labels, 3, &lda);
    let means = head.means();
    assert_eq!(means[0], vec![1.0, 1.0]);
    assert_eq!(means[1], vec![5.0, 4.0]);
    // Scatter of class 0 about (1,1): (-1,-1), (1,-1), (0,2) -> [[2, 0], [0, 6]];
    // class 1 about (5,4): (-1,0), (1,0) -> [[2, 0], [0, 0]]. Pooled over 5 - 2 = 3
    // degrees of freedom: [[4/3, 0], [0, 2]]; shrunk halfway to the identity.
    let pooled = [4.0 / 3.0, 0.0, 0.0, 2.0];
    let shrunk: Vec<f64> = pooled
        .iter()
        .zip([1.0, 0.0, 0.0, 1.0])
        .map(|(p, i)| (1.0 - s) * p + s * i)
        .collect();
    for k in 0..2 {
        close(head.covariances()[k].as_ref().unwrap(), &shrunk);
    }
    assert!(head.covariances()[2].is_none());
    // QDA: class 0's own covariance [[1, 0], [0, 3]] (3 - 1 = 2 degrees of freedom),
    // weighted 3/4 against the pooled one; class 1's [[2, 0], [0, 0]] weighted 2/3.
    let qda = NaiveBayes {
        covariance: Covariance::Qda,
        shrinkage: s,
    };
    let head = NaiveBayesHead::fit(features.clone(), &labels, 3, &qda);
    let mix = |own: [f64; 4], l: f64| -> Vec<f64> {
        own.iter()
            .zip(pooled)
            .zip([1.0, 0.0, 0.0, 1.0])
            .map(|((o, p), i)| (1.0 - s) * (l * o + (1.0 - l) * p) + s * i)
            .collect()
    };
    close(
        head.covariances()[0].as_ref().unwrap(),
        &mix([1.0, 0.0, 0.0, 3.0], 0.75),
    );
    close(
        head.covariances()[1].as_ref().unwrap(),
        &mix([2.0, 0.0, 0.0, 0.0], 2.0 / 3.0),
    );
    // Logits: log prior - Mahalanobis / 2 - log|Σ| / 2 for the point (1, 1), class 0.
    let logits = values(head.logits(features.narrow(0, 0, 1)));
    let sigma0 = mix([1.0, 0.0, 0.0, 3.0], 0.75);
    let (d0, d1) = (0.0 - 1.0, 0.0 - 1.0);
    let maha = d0 * d0 / sigma0[0] + d1 * d1 / sigma0[3];
    let expected = (3.0f64 / 5.0).ln() - maha / 2.0 - (sigma0[0] * sigma0[3]).ln() / 2.0;
    assert!(
        (logits[0] as f64 - expected).abs() < 1e-4,
        "{} vs {expected}",
        logits[0]
    );
    assert!(logits[2] < -1.0e8, "an absent class is never predicted");
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-5, "{a:?} vs {b:?}");
    }
}

#[test]
fn cholesky_inverse_and_log_determinant() {
    let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
    let (inv, logdet) = inverse_logdet(&a, 3);
    for i in 0..3 {
        for j in 0..3 {
            let v: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
            assert!((v - f64::from(u8::from(i == j))).abs() < 1e-12);
        }
    }
    // det = 4(15 - 1) - 2(6 - 0.6) + 0.6(2 - 3) = 44.6
    assert!((logdet - 44.6f64.ln()).abs() < 1e-12);
}

#[test]
fn fedbabus_head_stays_at_its_initialisation_and_is_not_sent() {
    let c = tiny();
    let device = Device::flex();
    let babu = with(AdapterSpec::Full, HeadSpec::Frozen);
    let model = build_model(&c, None, &babu, 1, &device).unwrap();
    assert!(!babu.trainable().matches("head.weight"));
    assert!(babu.trainable().matches("blocks.1.fc2.weight"));
    // The same seed gives every client the same random head.
    let again = build_model(&c, None, &babu, 1, &device).unwrap();
    let head = Adaptation::head();
    assert_eq!(head.extract(&model), head.extract(&again));
    assert!(!model.head.weight.is_require_grad());
}
