//! What each adapter costs on a given backbone: trainable values and bytes per update,
//! for the methods flotilla implements.

use burn::tensor::Device;

use crate::model::{
    Adaptation, AdapterSpec, Covariance, HeadSpec, LoraTarget, VitConfig, build_model,
};

/// One adapter and head on the backbone.
#[derive(Clone, Debug, PartialEq)]
pub struct AdapterCost {
    /// The adapter, as a short name.
    pub adapter: String,
    /// The head, as a short name.
    pub head: &'static str,
    /// Values that train and travel in one update.
    pub trainable: usize,
    /// The lengths of those values' tensors (per-tensor wire scales).
    pub layout: Vec<usize>,
    /// Values of the backbone alone (no adapter, no head).
    pub backbone: usize,
}

impl AdapterCost {
    /// The trainable values as a share of the backbone's.
    pub fn share(&self) -> f64 {
        self.trainable as f64 / self.backbone.max(1) as f64
    }

    /// Measures `adaptation` on a randomly initialised `config`.
    pub fn measure(config: &VitConfig, adaptation: &Adaptation) -> Self {
        let device = Device::flex();
        let model =
            build_model(config, None, adaptation, 0, &device).expect("no checkpoint is read");
        let plain = build_model(
            config,
            None,
            &Adaptation::linear(AdapterSpec::HeadOnly),
            0,
            &device,
        )
        .expect("no checkpoint is read");
        let (head, total) = Adaptation::head().count(&plain);
        Self {
            adapter: adaptation.adapter.name(),
            head: adaptation.head.name(),
            trainable: adaptation.trainable().count(&model).0,
            layout: adaptation.trainable().layout(&model),
            backbone: total - head,
        }
    }
}

/// The methods flotilla implements, with the settings of the shipped scenarios, for
/// `clients` clients (FedAPT's keys).
pub fn catalog(clients: usize) -> Vec<Adaptation> {
    let with = |adapter, head| Adaptation {
        adapter,
        head,
        clients,
    };
    let naive_bayes = HeadSpec::NaiveBayes {
        covariance: Covariance::Qda,
        shrinkage: 0.5,
    };
    vec![
        with(AdapterSpec::HeadOnly, HeadSpec::Linear),
        with(
            AdapterSpec::Lora {
                rank: 4,
                alpha: 8.0,
                targets: vec![LoraTarget::Q, LoraTarget::V],
            },
            HeadSpec::Linear,
        ),
        with(AdapterSpec::Film, naive_bayes),
        with(AdapterSpec::Film, HeadSpec::Linear),
        with(AdapterSpec::Prompt { tokens: 8 }, HeadSpec::Linear),
        with(
            AdapterSpec::AdaptivePrompt {
                tokens: 8,
                key_loss: 1.0,
            },
            HeadSpec::Linear,
        ),
        with(AdapterSpec::Memory { tokens: 4 }, HeadSpec::Linear),
        with(AdapterSpec::Full, HeadSpec::Frozen),
        with(AdapterSpec::Full, HeadSpec::Linear),
    ]
}
